/**
 * The curve of a staged reproduction (experiments/baselines/burda-*.yaml): for each run
 * directory given, the test NLL (−IW log-likelihood, the k and test images of each stage's final
 * evaluation) at the end of every finished stage, and the test loss after every epoch, against
 * the cumulative epoch; printed as a Markdown table and drawn as one PNG. An unfinished stage
 * contributes the `vaelab eval` of one of its epoch checkpoints (its eval.json) when there is one.
 *
 *   npx ts-node --transpile-only bench/stage-curve.ts RUN_DIR... [--out curve.png] [--title TEXT]
 *
 * A run's label is its experiment name. Stages still running contribute their finished epochs.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writePlot } from '../core/tracking/plots';

interface Point {
  run: string;
  epoch: number;
  value: number;
  series: string;
}

function readJsonl(file: string): Array<Record<string, unknown>> {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

function curve(runDir: string): { label: string; rows: string[]; points: Point[] } {
  const config = JSON.parse(fs.readFileSync(path.join(runDir, 'config.json'), 'utf8')) as { name: string };
  const label = config.name;
  const stagesDir = path.join(runDir, 'stages');
  const stages = fs.existsSync(stagesDir) ? fs.readdirSync(stagesDir).sort((a, b) => parseInt(a, 10) - parseInt(b, 10)) : [];
  const rows: string[] = [];
  const points: Point[] = [];
  let before = 0;
  for (const s of stages) {
    const dir = path.join(stagesDir, s);
    const lines = readJsonl(path.join(dir, 'metrics.jsonl'));
    let last = before;
    let lr = NaN;
    for (const l of lines) {
      if (l.kind === 'step' && typeof l.lr === 'number') lr = l.lr;
      if (l.kind === 'epoch' && typeof l['test/loss'] === 'number') {
        last = before + (l.epoch as number);
        points.push({ run: label, epoch: last, value: l['test/loss'] as number, series: 'test loss = the trained bound (per epoch)' });
      }
    }
    const summaryFile = path.join(dir, 'summary.json');
    const sm = fs.existsSync(summaryFile) ? (JSON.parse(fs.readFileSync(summaryFile, 'utf8')) as Record<string, any>) : null;
    const finalLl = sm?.test?.['test/iw-log-likelihood'];
    if (sm && typeof finalLl === 'number') {
      const epochs = before + (sm.epochsCompleted as number);
      points.push({ run: label, epoch: epochs, value: -finalLl, series: `NLL, k = ${sm.iw?.k} (${sm.iw?.examples} test images)` });
      rows.push(`| ${label} | ${s} | ${epochs} | ${lr.toPrecision(3)} | ${(-finalLl).toFixed(2)} | ${(sm.test['test/loss'] as number).toFixed(2)} | ${sm.test['test/active-units'] ?? '–'} | ${Math.round(sm.trainSeconds)} |`);
      before = epochs;
    } else {
      // an unfinished stage: a `vaelab eval` of one of its epoch checkpoints (eval.json) is a point too
      const ev = fs.existsSync(path.join(dir, 'eval.json')) ? (JSON.parse(fs.readFileSync(path.join(dir, 'eval.json'), 'utf8')) as Record<string, any>) : null;
      const at = ev ? /epoch-(\d+)\.ckpt$/.exec(String(ev.checkpoint)) : null;
      const ll = ev?.test?.['test/iw-log-likelihood'];
      if (ev && at && typeof ll === 'number') {
        const epochs = before + Number(at[1]);
        points.push({ run: label, epoch: epochs, value: -ll, series: `NLL, k = ${ev.iw?.k} (${ev.iw?.examples} test images)` });
        rows.push(`| ${label} | ${s} (${ev.checkpoint}, stage unfinished) | ${epochs} | ${lr.toPrecision(3)} | ${(-ll).toFixed(2)} | ${(ev.test['test/loss'] as number).toFixed(2)} | ${ev.test['test/active-units'] ?? '–'} | – |`);
      }
      before = last;
    }
  }
  return { label, rows, points };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const opt = (name: string) => {
    const i = args.indexOf(name);
    if (i < 0) return undefined;
    const v = args[i + 1];
    args.splice(i, 2);
    return v;
  };
  const out = opt('--out');
  const title = opt('--title') ?? 'test NLL against epochs';
  if (args.length === 0) throw new Error('usage: stage-curve.ts RUN_DIR... [--out curve.png] [--title TEXT]');
  const all = args.map(curve);
  console.log('| run | stage | epochs | lr | test NLL | test loss | active units | train s |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const c of all) for (const r of c.rows) console.log(r);
  if (out) {
    await writePlot(out, {
      width: 520,
      height: 320,
      title,
      data: { values: all.flatMap((c) => c.points) },
      mark: { type: 'line', point: true, clip: true },
      encoding: {
        x: { field: 'epoch', type: 'quantitative', scale: { type: 'log' }, title: 'epoch (log scale)' },
        y: { field: 'value', type: 'quantitative', scale: { zero: false }, title: 'nats' },
        color: { field: 'run', type: 'nominal', legend: { labelLimit: 400 } },
        strokeDash: { field: 'series', type: 'nominal', legend: { labelLimit: 400, orient: 'bottom', direction: 'vertical' } },
      },
    });
    console.log(`wrote ${out}`);
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
