/**
 * The dashboard at scale (issue 15, "Speed"): 1 000 generated runs of 10 000 metrics lines each
 * (test/fixtures/make-runs.ts; about 1.6 GB, written once and reused), then
 *   - the run index built cold (no cache file) and warm (cache present, nothing changed);
 *   - GET /api/index (the table's data): time and size;
 *   - the page in headless Chromium until the table is on it (navigation start to the
 *     table's rows in the DOM, measured in the page), cold and reloaded;
 *   - the curves of two selected runs (two metrics files of 10 000 lines read and downsampled).
 *
 *   npx ts-node --transpile-only bench/dashboard.ts [DIR] [--runs N] [--lines N]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium } from 'playwright-core';
import { startDashboard } from '../core/dashboard';
import { buildRunIndex } from '../core/tracking/run-index';
import { makeRuns } from '../test/fixtures/make-runs';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}

async function main(): Promise<void> {
  const runs = arg('--runs', 1000);
  const lines = arg('--lines', 10000);
  const dir = process.argv[2] && !process.argv[2].startsWith('--') ? process.argv[2] : path.join(os.tmpdir(), `vaelab-dashboard-bench-${runs}x${lines}`);
  const stamp = path.join(dir, '.complete');
  if (!fs.existsSync(stamp)) {
    fs.rmSync(dir, { recursive: true, force: true });
    const t = Date.now();
    makeRuns(dir, { runs, lines, images: 3 });
    fs.writeFileSync(stamp, '');
    console.log(`generated ${runs} runs x ${lines} lines in ${dir}: ${((Date.now() - t) / 1000).toFixed(1)} s`);
  }
  const ms = (t: bigint) => Number(process.hrtime.bigint() - t) / 1e6;

  fs.rmSync(path.join(dir, '.vaelab-index.json'), { force: true });
  let t = process.hrtime.bigint();
  const cold = buildRunIndex(dir);
  console.log(`index, cold (no cache): ${ms(t).toFixed(0)} ms for ${cold.runs.length} runs, ${cold.sweeps.length} sweep(s)`);
  t = process.hrtime.bigint();
  buildRunIndex(dir);
  console.log(`index, warm (cache, nothing changed): ${ms(t).toFixed(0)} ms`);

  const d = await startDashboard({ root: dir, port: 0 });
  try {
    t = process.hrtime.bigint();
    const body = await (await fetch(new URL('/api/index', d.url))).text();
    console.log(`GET /api/index: ${ms(t).toFixed(0)} ms, ${(body.length / 1024).toFixed(0)} KiB`);

    const browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
      for (const label of ['page with the table, first load', 'page with the table, reload']) {
        if (label.endsWith('reload')) await page.reload();
        else await page.goto(d.url);
        await page.waitForSelector('body[data-state=ready]', { timeout: 60000 });
        const ready = (await page.evaluate('window.tableReadyMs')) as number;
        const rows = (await page.evaluate("document.querySelectorAll('#runs tbody tr').length")) as number;
        console.log(`${label}: ${ready.toFixed(0)} ms from navigation to ${rows} table rows on the page`);
      }
      const ids = (JSON.parse(body) as { runs: Array<{ id: string; kind: string }> }).runs.filter((r) => r.kind === 'run').slice(0, 2).map((r) => r.id);
      t = process.hrtime.bigint();
      const c = await (await fetch(new URL(`/api/curves?${ids.map((id) => `id=${encodeURIComponent(id)}`).join('&')}`, d.url))).json() as { series: Array<{ logged: number; shown: number }> };
      console.log(`GET /api/curves of 2 runs (first read): ${ms(t).toFixed(0)} ms, ${c.series.map((s) => `${s.logged} values -> ${s.shown} points`).join(', ')}`);
      t = process.hrtime.bigint();
      await page.check(`input[data-select="${ids[0]}"]`);
      await page.check(`input[data-select="${ids[1]}"]`);
      await page.waitForFunction("document.querySelectorAll('#curves .layer_1_marks path').length === 2", null, { timeout: 60000 });
      console.log(`tick 2 runs to 2 curves drawn in the page: ${ms(t).toFixed(0)} ms`);
    } finally {
      await browser.close();
    }
  } finally {
    await d.close();
  }
  console.log(`machine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), node ${process.version}, load ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
