/**
 * The dashboard (core/dashboard): its API over generated runs directories (test/fixtures/make-runs.ts)
 * with bad runs among them, raw HTTP requests that try to leave the runs directory, the CLI's
 * bad input (a port in use, an unreadable directory), live updates, and the page itself driven in
 * headless Chromium (Debian's chromium with playwright-core; skipped with the reason when either
 * is missing). Screenshots are kept in test-artifacts/dashboard/ (git-ignored).
 */
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { startDashboard, type Dashboard } from '../core/dashboard';
import { sweepAxes } from '../core/dashboard/server';
import { downsample } from '../core/dashboard/source';
import { buildRunIndex } from '../core/tracking/run-index';
import { makeRuns, type MadeRuns } from './fixtures/make-runs';

const BIN = path.join(__dirname, '..', 'bin', 'vaelab.js');
const ARTIFACTS = path.join(__dirname, '..', 'test-artifacts', 'dashboard');
const CHROMIUM = '/usr/bin/chromium';

const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'vaelab-dash-'));

/** A raw request, the path sent byte for byte as given (no client-side normalisation). */
function raw(port: number, target: string, opts: { method?: string; host?: string } = {}): Promise<{ status: number; headers: string; body: string }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.write(`${opts.method ?? 'GET'} ${target} HTTP/1.1\r\nHost: ${opts.host ?? `127.0.0.1:${port}`}\r\nConnection: close\r\n\r\n`);
    });
    let data = '';
    s.setEncoding('latin1');
    s.on('data', (c) => (data += c));
    s.on('end', () => {
      const [head, ...rest] = data.split('\r\n\r\n');
      resolve({ status: Number(head.split(' ')[1]), headers: head.toLowerCase(), body: rest.join('\r\n\r\n') });
    });
    s.on('error', reject);
  });
}

async function getJson<T = Record<string, unknown>>(d: Dashboard, p: string): Promise<T> {
  const r = await fetch(new URL(p, d.url));
  expect(r.status, p).to.equal(200);
  return (await r.json()) as T;
}

type IndexRow = { id: string; status: string; reason: string | null; problems: string[]; kind: string; metrics: Record<string, number> };
type IndexPayload = { runs: IndexRow[]; sweeps: Array<{ id: string; trials: number; pruned: number }>; problems: string[]; configKeys: string[]; constants: Record<string, unknown> };

describe('dashboard server', function () {
  this.timeout(60000);
  let made: MadeRuns;
  let d: Dashboard;

  before(async () => {
    made = makeRuns(path.join(tempDir(), 'runs'), { runs: 12, lines: 3000 });
    d = await startDashboard({ root: made.root, port: 0, pollMs: 200 });
  });
  after(async () => d?.close());

  it('Should list every run and the sweep, marking the bad runs with why instead of failing', async () => {
    const ix = await getJson<IndexPayload>(d, '/api/index');
    // 12 runs + staged run and its 2 stages + 8 trials + 4 bad ones
    expect(ix.runs).to.have.length(12 + 3 + 8 + 4);
    const by = new Map(ix.runs.map((r) => [r.id, r]));
    expect(by.get(made.bad.noSummary)).to.include({ status: 'died', reason: 'no summary.json and no owner process recorded' });
    expect(by.get(made.bad.badSummary)!.status).to.equal('failed');
    expect(by.get(made.bad.badSummary)!.problems).to.deep.equal(['summary.json: not valid JSON']);
    expect(by.get(made.bad.corrupt)!.problems).to.deep.equal(['metrics.jsonl: 2 lines skipped near its end (not valid JSON)']);
    expect(by.get(made.bad.running)!.status).to.equal('running');
    expect(ix.sweeps).to.deep.equal([{ id: made.sweep, name: 'beta-grid', method: 'grid', metric: { name: 'test/loss', goal: 'minimize' }, parameters: ['train.optimizer.learningRate', 'objective.beta-vae.beta'], trials: 8, completed: 5, pruned: 3 }] as unknown as IndexPayload['sweeps']);
    // the table carries only the config keys that vary; the others once
    expect(ix.configKeys).to.include('train.optimizer.learningRate');
    expect(ix.constants['train.batchSize']).to.equal(100);
  });

  it('Should send a run\'s curve downsampled to the points asked for, counting the unreadable lines', async () => {
    const c = await getJson<{ metric: string; keys: string[]; series: Array<{ id: string; logged: number; shown: number; skipped: number }>; spec: { data: { values: unknown[] } } }>(
      d,
      `/api/curves?id=${encodeURIComponent(made.runs[0])}&id=${encodeURIComponent(made.bad.corrupt)}&points=500`,
    );
    expect(c.metric).to.equal('train/loss');
    expect(c.keys).to.include.members(['train/loss', 'val/loss', 'train/kl']);
    // 3000 lines: 2727 step records (one epoch record every 300 steps, and the test record)
    expect(c.series[0]).to.deep.include({ id: made.runs[0], shown: 500, skipped: 0 });
    expect(c.series[0].logged).to.be.above(2700);
    // 50 lines written, one corrupt line added in the middle and a truncated one at the end
    expect(c.series[1]).to.deep.include({ id: made.bad.corrupt, skipped: 2 });
    expect(c.spec.data.values).to.have.length(500 + c.series[1].shown);
  });

  it('Should average buckets of equal length when downsampling', () => {
    const s = { metric: 'm', x: [1, 2, 3, 4, 5, 6], y: [10, 20, 30, 40, 50, 60] };
    // 6 points into 3 buckets of 2: means (1.5, 15), (3.5, 35), (5.5, 55)
    expect(downsample(s, 3)).to.deep.equal([{ x: 1.5, value: 15 }, { x: 3.5, value: 35 }, { x: 5.5, value: 55 }]);
    expect(downsample(s, 10)).to.have.length(6);
  });

  it('Should give a sweep\'s trials and a parallel-coordinates spec with one line per ended trial', async () => {
    const s = await getJson<{ axes: { from: string; note: string }; trials: Array<{ status: string }>; specs: { parallelCoordinates: { layer: Array<{ params?: unknown[] }>; data: { values: Array<{ trial: number }> } } } }>(d, `/api/sweep?id=${encodeURIComponent(made.sweep!)}`);
    expect(s.axes).to.deep.equal({ from: 'sweep file', note: `axes from the sweep file ${path.join(path.dirname(made.root), 'sweeps', 'beta-grid.yaml')}` });
    expect(s.trials.filter((t) => t.status === 'pruned')).to.have.length(3);
    const trials = new Set(s.specs.parallelCoordinates.data.values.map((v) => v.trial));
    expect(trials.size).to.equal(8);
    expect(s.specs.parallelCoordinates.layer[0].params).to.have.length(1);
  });

  it('Should take a sweep\'s axes from its sweep file, read as data only, and guess them from the trials when the file is missing, unreadable or changed', () => {
    const m = makeRuns(path.join(tempDir(), 'runs'), { runs: 1, lines: 30, staged: false, bad: false });
    const entry = buildRunIndex(m.root, { cache: false }).sweeps[0];
    const file = entry.sweepFile!;
    const lr = 'train.optimizer.learningRate';
    const beta = 'objective.beta-vae.beta';
    // the grid of the fixture: both parameters choices, in the file's order
    expect(sweepAxes(entry)).to.deep.equal({
      from: 'sweep file',
      note: `axes from the sweep file ${file}`,
      axes: [{ path: lr, numeric: true, log: false, choices: [1e-4, 3e-4, 1e-3, 3e-3] }, { path: beta, numeric: true, log: false, choices: [1, 4] }],
    });
    // a log-uniform range, whose base experiment names a plugin module that would leave a mark if it were loaded: it is not
    const mark = path.join(path.dirname(file), 'loaded');
    fs.writeFileSync(path.join(path.dirname(file), 'evil.js'), `require('fs').writeFileSync(${JSON.stringify(mark)}, 'x'); exports.plugins = [];\n`);
    fs.writeFileSync(path.join(path.dirname(file), 'base.yaml'), 'plugins: [./evil.js]\nname: base\n');
    const rewrite = (params: string) => fs.writeFileSync(file, `experiment: base.yaml\nmethod: random\nmetric: { name: test/loss, goal: minimize }\nparameters:\n${params}budget: { trials: 8 }\n`);
    rewrite(`  ${lr}: { distribution: log-uniform, min: 1.0e-5, max: 1.0e-2 }\n  ${beta}: { values: [4, 1] }\n`);
    expect(sweepAxes(entry).axes).to.deep.equal([{ path: lr, numeric: true, log: true, min: 1e-5, max: 1e-2 }, { path: beta, numeric: true, log: false, choices: [4, 1] }]);
    expect(fs.existsSync(mark), 'the experiment\'s plugin module was loaded').to.equal(false);
    // guessed (lr log from 1e-4 to 3e-3, beta's two integers as categories), saying why
    const guessed = [{ path: lr, numeric: true, log: true }, { path: beta, numeric: true, log: false, choices: [1, 4] }];
    rewrite(`  ${lr}: { values: [0.01, 0.1] }\n  ${beta}: { values: [1, 4] }\n`);
    expect(sweepAxes(entry)).to.deep.equal({ from: 'trials', axes: guessed, note: `axes guessed from the trials: ${file}: trial 0 has ${lr} = 0.0001, which parameters.${lr} cannot give (the file changed since the sweep ran?)` });
    rewrite(`  ${beta}: { values: [1, 4] }\n`);
    expect(sweepAxes(entry).note).to.equal(`axes guessed from the trials: ${file} does not sweep ${lr}, which trial 0 sets (the file changed since the sweep ran?)`);
    fs.writeFileSync(file, 'parameters: [unclosed\n');
    expect(sweepAxes(entry).note).to.match(new RegExp(`^axes guessed from the trials: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: malformed YAML: line \\d+, column \\d+`));
    fs.rmSync(file);
    expect(sweepAxes(entry)).to.deep.equal({ from: 'trials', axes: guessed, note: `axes guessed from the trials: ${file}: no such file` });
    expect(sweepAxes({ ...entry, sweepFile: undefined }).note).to.equal('axes guessed from the trials: state.json names no sweep file');
    // a state.json naming any other file does not make the dashboard read it
    expect(sweepAxes({ ...entry, sweepFile: '/etc/passwd' }).note).to.equal('axes guessed from the trials: /etc/passwd is not a sweep file (.yaml, .yml or .json)');
  });

  it('Should serve a run\'s files and refuse every path out of the runs directory', async () => {
    const run = made.runs[0];
    const outside = path.join(path.dirname(made.root), 'secret.txt');
    fs.writeFileSync(outside, 'secret');
    fs.symlinkSync(outside, path.join(made.root, run, 'images', 'link.png'));
    fs.symlinkSync(path.dirname(made.root), path.join(made.root, run, 'up'));
    fs.symlinkSync(path.join(made.root, run, 'config.json'), path.join(made.root, run, 'inside.json'));
    fs.writeFileSync(path.join(made.root, run, 'page.html'), '<script>alert(1)</script>');
    const relOut = path.relative(made.root, outside);

    const ok = await raw(d.port, `/files/${run}/images/samples.png`);
    expect(ok.status).to.equal(200);
    expect(ok.headers).to.include('content-type: image/png');
    const cases: Array<[string, number]> = [
      [`/files/${relOut}`, 403], // ../secret.txt
      [`/files/../../../../etc/passwd`, 403],
      [`/files/${run}/../../../secret.txt`, 403],
      [`/files/%2e%2e/secret.txt`, 403],
      [`/files/%2E%2E%2Fsecret.txt`, 403],
      [`/files/..%5csecret.txt`, 403],
      [`/files/${run}/%2e%2e/%2e%2e/%2e%2e/secret.txt`, 403],
      [`/files//etc/passwd`, 403],
      [`/files/%2fetc%2fpasswd`, 403],
      [`/files/${encodeURIComponent(outside)}`, 403],
      [`/files/${run}/%00config.json`, 403],
      [`/files/%E0%A4%A`, 403], // malformed encoding
      [`/files/${run}/images/link.png`, 403], // a link to a file outside
      [`/files/${run}/up/secret.txt`, 403], // a link to a directory outside
      [`/files/%252e%252e/secret.txt`, 404], // double encoding is a name, not a traversal
      [`/files/${run}/images/none.png`, 404],
      [`/files/${run}`, 404], // a directory
    ];
    for (const [target, status] of cases) {
      const r = await raw(d.port, target);
      expect(r.status, target).to.equal(status);
      expect(r.body, target).not.to.include('secret');
    }
    // a link that stays inside is followed; files are data: plain text, nothing runs
    const inside = await raw(d.port, `/files/${run}/inside.json`);
    expect(inside.status).to.equal(200);
    expect(inside.headers).to.include('content-type: text/plain');
    const html = await raw(d.port, `/files/${run}/page.html`);
    expect(html.headers).to.include('content-type: text/plain');
    expect(html.headers).to.include("content-security-policy: default-src 'none'");
    expect(html.headers).to.include('x-content-type-options: nosniff');
    // only GET and HEAD; only loopback host names (no DNS rebinding)
    expect((await raw(d.port, '/api/index', { method: 'POST' })).status).to.equal(405);
    expect((await raw(d.port, '/api/index', { host: 'evil.example:80' })).status).to.equal(403);
    expect((await raw(d.port, '/api/index', { host: `localhost:${d.port}` })).status).to.equal(200);
    // the browser builds come from node_modules, not from a run directory or the network
    for (const lib of ['vega', 'vega-lite', 'vega-embed']) expect((await raw(d.port, `/vendor/${lib}.js`)).status, lib).to.equal(200);
    expect((await raw(d.port, '/vendor/../package.json')).status).to.equal(404);
    expect((await raw(d.port, '/api/run?id=..%2F..%2Fetc')).status).to.equal(404);
  });

  it('Should announce a running run\'s new metrics as a server-sent event', async () => {
    const events: string[] = [];
    const req = http.get(new URL('/api/events', d.url));
    const got = new Promise<void>((resolve) => {
      req.on('response', (res) => {
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          events.push(c);
          if (c.includes('event: index')) resolve();
        });
      });
    });
    await new Promise((r) => setTimeout(r, 300));
    const f = path.join(made.root, made.bad.running, 'metrics.jsonl');
    fs.appendFileSync(f, `${JSON.stringify({ time: new Date().toISOString(), kind: 'step', step: 999, epoch: 9, 'train/loss': 100 })}\n`);
    await got;
    req.destroy();
    const data = JSON.parse(events.join('').split('event: index\ndata: ')[1].split('\n')[0]) as { changed: string[] };
    expect(data.changed).to.deep.equal([made.bad.running]);
    const ix = await getJson<IndexPayload>(d, '/api/index');
    expect(ix.runs.find((r) => r.id === made.bad.running)!.metrics.step).to.equal(999);
  });
});

describe('dashboard command', function () {
  this.timeout(60000);

  it('Should exit with code 2 and one line, no stack trace, when the port is in use', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const r = spawnSync(process.execPath, [BIN, 'dashboard', '--port', String(port), tempDir()], { encoding: 'utf8', timeout: 60000 });
      expect(r.status).to.equal(2);
      expect(r.stderr.trim()).to.equal(`--port: 127.0.0.1:${port} is already in use; choose another port with --port (0 picks a free one)`);
      expect(r.stderr).not.to.match(/\n\s+at /);
    } finally {
      blocker.close();
    }
  });

  it('Should refuse a port that is not a number with exit code 2', () => {
    const r = spawnSync(process.execPath, [BIN, 'dashboard', '--port', 'http'], { encoding: 'utf8', timeout: 60000 });
    expect(r.status).to.equal(2);
    expect(r.stderr).to.include('--port: must be an integer from 0 to 65535; got "http"');
  });

  it('Should serve a runs directory it cannot read in part, saying what was left out', async function () {
    const made = makeRuns(path.join(tempDir(), 'runs'), { runs: 3, lines: 50, sweep: false, staged: false, bad: false });
    const locked = path.join(made.root, 'vae-mnist');
    fs.chmodSync(locked, 0o000);
    // root reads everything: run the command as nobody then (the files must be readable to it)
    const asNobody = process.getuid?.() === 0;
    if (asNobody) {
      for (let p = made.root; p !== path.dirname(p); p = path.dirname(p)) if (p.startsWith(os.tmpdir()) && p !== os.tmpdir()) fs.chmodSync(p, 0o755);
    }
    const child = spawn(process.execPath, [BIN, 'dashboard', '--port', '0', made.root], { ...(asNobody ? { uid: 65534, gid: 65534 } : {}), env: { ...process.env, HOME: os.tmpdir() } });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = '';
        let errText = '';
        child.stdout.on('data', (c) => {
          out += c;
          const m = /(http:\/\/\S+)/.exec(out);
          if (m) resolve(m[1]);
        });
        child.stderr.on('data', (c) => (errText += c));
        child.on('exit', (code) => reject(new Error(`exited with ${code}: ${errText}`)));
      });
      const ix = (await (await fetch(new URL('/api/index', url))).json()) as IndexPayload;
      expect(ix.problems).to.deep.equal(['vae-mnist: cannot be read (EACCES)']);
      expect(ix.runs.map((r) => r.id).sort()).to.deep.equal([made.runs[0], made.runs[2]].sort());
    } finally {
      child.kill('SIGINT');
      fs.chmodSync(locked, 0o755);
    }
  });
});

/** A PNG that is not blank: many grey levels, and both dark and light pixels in quantity. */
function expectNotBlank(png: Buffer, what: string): void {
  const img = PNG.sync.read(png);
  const levels = new Set<number>();
  let dark = 0;
  let light = 0;
  for (let i = 0; i < img.data.length; i += 4) {
    const g = Math.round((img.data[i] + img.data[i + 1] + img.data[i + 2]) / 3);
    levels.add(g);
    if (g < 128) dark++;
    if (g > 200) light++;
  }
  const n = img.width * img.height;
  expect(levels.size, `${what}: grey levels`).to.be.above(30);
  expect(dark / n, `${what}: share of dark pixels`).to.be.above(0.002);
  expect(light / n, `${what}: share of light pixels`).to.be.above(0.2);
}

describe('dashboard in Chromium @slow', function () {
  this.timeout(120000);
  type Browser = import('playwright-core').Browser;
  type Page = import('playwright-core').Page;
  let browser: Browser;
  let page: Page;
  let made: MadeRuns;
  let d: Dashboard;

  before(async function () {
    if (!fs.existsSync(CHROMIUM)) {
      console.log(`      skipped: ${CHROMIUM} is missing (apt-get install chromium; .ci/run installs it)`);
      this.skip();
    }
    let pw: typeof import('playwright-core');
    try {
      pw = await import('playwright-core');
    } catch {
      console.log('      skipped: playwright-core is not installed (npm ci installs it)');
      this.skip();
    }
    made = makeRuns(path.join(tempDir(), 'runs'), { runs: 12, lines: 2000 });
    d = await startDashboard({ root: made.root, port: 0, pollMs: 300 });
    browser = await pw!.chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(d.url);
    await page.waitForSelector('body[data-state=ready]');
    expect(errors).to.deep.equal([]);
    fs.mkdirSync(ARTIFACTS, { recursive: true });
  });
  after(async () => {
    await browser?.close();
    await d?.close();
  });

  const shot = async (name: string, selector?: string) => {
    const file = path.join(ARTIFACTS, `${name}.png`);
    const png = selector ? await page.locator(selector).screenshot({ path: file }) : await page.screenshot({ path: file, fullPage: true });
    expectNotBlank(png, name);
  };

  it('Should load the table with every run and the bad ones marked', async () => {
    const rows = await page.$$('#runs tbody tr');
    expect(rows).to.have.length(27);
    expect(await page.textContent('#count')).to.equal('27 of 27 runs');
    const banner = await page.textContent('#problems');
    expect(banner).to.include(`${made.bad.badSummary}: summary.json: not valid JSON`);
    expect(banner).to.include(`${made.bad.corrupt}: metrics.jsonl: 2 lines skipped near its end (not valid JSON)`);
    expect(await page.getAttribute(`tr:has(a[data-run="${made.bad.noSummary}"]) .status`, 'title')).to.equal('no summary.json and no owner process recorded');
    await shot('table');
  });

  it('Should filter the table by a config key and a metric, and group it by a key', async () => {
    await page.fill('#filter', 'train.optimizer.learningRate=0.001 kind=run');
    // plain runs 2, 6, 10 (i % 4 == 2) and the four bad runs
    expect(await page.$$('#runs tbody tr')).to.have.length(7);
    await page.fill('#filter', 'train.optimizer.learningRate=0.001 kind=run test/loss<1000');
    expect(await page.$$('#runs tbody tr')).to.have.length(4); // the bad runs have no test/loss (the corrupt one's test line is lost)
    await page.fill('#filter', 'kind=run');
    await page.selectOption('#group', 'experiment');
    const groups = await page.$$eval('#runs tbody tr.group td', (tds) => tds.map((t) => t.textContent));
    expect(groups).to.deep.equal(['experiment = beta-vae-mnist (4 runs)', 'experiment = broken (4 runs)', 'experiment = iwae-mnist (4 runs)', 'experiment = vae-mnist (4 runs)']);
    await shot('table-filtered-grouped');
    await page.selectOption('#group', '');
    await page.fill('#filter', '');
  });

  it('Should draw one curve per selected run, smoothed', async () => {
    await page.check(`input[data-select="${made.runs[0]}"]`);
    await page.check(`input[data-select="${made.runs[1]}"]`);
    await page.waitForFunction("document.querySelectorAll('#curves .layer_1_marks path').length === 2");
    // layer 0: the raw values, faint; layer 1: the smoothed ones, one line per run
    expect(await page.$$eval('#curves .layer_0_marks path', (p) => p.length)).to.equal(2);
    expect(await page.$$eval('#curves .role-legend-label text', (t) => t.map((x) => x.textContent))).to.deep.equal([made.runs[0], made.runs[1]]);
    await page.fill('#smoothing', '0.9');
    expect(await page.textContent('#smoothing-value')).to.equal('0.90');
    await shot('curves', '#compare');
    await page.click('#diff-button');
    await page.waitForSelector('#diff table');
    const diff = await page.$$eval('#diff tr td:first-child', (t) => t.map((x) => x.textContent));
    // runs 0 and 1: experiment name, seed, learning rate, beta (dim 2 for both)
    expect(diff).to.deep.equal(['name', 'objective.beta-vae.beta', 'seed', 'train.optimizer.learningRate']);
  });

  it('Should show a run\'s images, summary and config', async () => {
    await page.click(`a[data-run="${made.runs[0]}"]`);
    await page.waitForSelector('#detail .images img');
    await page.waitForFunction("[...document.querySelectorAll('#detail .images img')].every((i) => i.complete && i.naturalWidth > 0)");
    expect(await page.$$eval('#detail .images figcaption', (f) => f.map((x) => x.textContent))).to.deep.equal(['reconstructions.png', 'samples.png']);
    expect(await page.textContent('#detail')).to.include('test/iw-log-likelihood');
    await shot('run-images', '#detail');
  });

  it('Should show a sweep with one line per trial in parallel coordinates, pruned trials dashed, and brushing', async () => {
    await page.click('#tab-sweeps');
    await page.click(`a[data-sweep="${made.sweep}"]`);
    await page.waitForSelector('#sweep-parallel svg');
    const lines = () => page.$$eval('#sweep-parallel .layer_1_marks path', (ps) => ps.map((p) => ({ dashed: !['', '1,0', '1, 0'].includes(p.getAttribute('stroke-dasharray') ?? ''), opacity: Number(p.getAttribute('opacity') ?? 1) })));
    const before = await lines();
    expect(before).to.have.length(8);
    expect(before.filter((l) => l.dashed)).to.have.length(3);
    expect(before.every((l) => l.opacity > 0.5)).to.equal(true);
    expect(await page.$$eval('#sweep-scatter .mark-symbol.role-mark path', (p) => p.length)).to.equal(16); // 8 trials x 2 parameters
    // each axis has its own tick labels (layer 4; layer 3 is their white halo), read bottom to top
    const ticks = await page.$$eval('#sweep-parallel .layer_4_marks text', (ts) =>
      ts.map((t) => ({ label: t.textContent, x: Math.round(t.getBoundingClientRect().right), y: t.getBoundingClientRect().top })).sort((p, q) => p.x - q.x || q.y - p.y),
    );
    const byAxis = [...new Set(ticks.map((t) => t.x))].map((x) => ticks.filter((t) => t.x === x).map((t) => t.label));
    // learning rate and beta: the values of the sweep file's grid, as categories; test/loss, linear
    expect(byAxis).to.deep.equal([['1e-4', '3e-4', '1e-3', '3e-3'], ['1', '4'], ['90', '100', '110', '120', '130']]);
    expect(await page.textContent('#sweep-axes')).to.equal(`axes from the sweep file ${path.join(path.dirname(made.root), 'sweeps', 'beta-grid.yaml')}`);
    await shot('sweep', '#sweep');
    // drag from 80 % of the first axis (learning rate, its 4 values evenly spaced) to above the
    // plot (the brush stops at its edge): only the largest learning rate, 3e-3 (at the top), stays opaque
    const box = (await page.locator('#sweep-parallel .layer_0_marks').boundingBox())!;
    const x0 = box.x - 15;
    await page.mouse.move(x0, box.y + box.height * 0.2);
    await page.mouse.down();
    await page.mouse.move(x0 + 30, box.y - 10, { steps: 5 });
    await page.mouse.up();
    await page.waitForFunction("[...document.querySelectorAll('#sweep-parallel .layer_1_marks path')].some((p) => Number(p.getAttribute('opacity')) < 0.5)");
    const after = await lines();
    const kept = after.filter((l) => l.opacity > 0.5).length;
    // learning rate 3e-3 with beta 1 and 4: trials 6 and 7 (7 pruned)
    expect(kept).to.equal(2);
    await shot('sweep-brushed', '#sweep-parallel');
  });

  it('Should update a running run\'s row and its ticked curve without a reload when it logs an epoch, then show it finished', async () => {
    const id = made.bad.running!;
    const dir = path.join(made.root, id);
    await page.click('#tab-runs');
    // a mark on this page's window: a reload would lose it
    await page.evaluate('window.notReloaded = true');
    for (const r of [made.runs[0], made.runs[1]]) await page.uncheck(`input[data-select="${r}"]`);
    await page.check(`input[data-select="${id}"]`);
    const note = (text: string) => page.waitForFunction(`document.querySelector('#curves-note').textContent === ${JSON.stringify(text)}`, undefined, { timeout: 10000 });
    await note(`${id}: 28 values logged (running)`);
    await page.selectOption('#metric', 'val/loss');
    const row = `tr:has(a[data-run="${id}"])`;
    const cellOf = async (key: string) => {
      const keys = await page.$$eval('#runs thead th', (ths) => ths.map((th) => th.getAttribute('data-key')));
      return page.$eval(row, (tr, i) => tr.querySelectorAll('td')[i].textContent, keys.indexOf(key));
    };
    // the val/loss curve's vertices: its smoothed line's path, "M x,y L x,y ..."
    const vertices = () => page.$eval('#curves .layer_1_marks path', (p) => (p.getAttribute('d') ?? '').split(/[ML]/).filter((x: string) => x.trim() !== '').length);
    // 30 lines: steps 1-28 and epoch records at steps 10 and 20
    await note(`${id}: 2 values logged (running)`);
    expect([await cellOf('step'), await cellOf('status'), await vertices()]).to.deep.equal(['28', 'running', 2]);

    // the trainer logs epoch 3 (appended, as it does) ...
    const rec = { time: new Date().toISOString(), kind: 'epoch', epoch: 3, step: 30, seconds: 12.5, 'train/loss': 140, 'val/loss': 150, 'val/elbo': -150, 'val/kl': 20, evalSplit: 'validation' };
    fs.appendFileSync(path.join(dir, 'metrics.jsonl'), `${JSON.stringify(rec)}\n`);
    await note(`${id}: 3 values logged (running)`);
    expect([await cellOf('step'), await cellOf('status'), await vertices()]).to.deep.equal(['30', 'running', 3]);
    await shot('live-epoch', '#compare');

    // ... then ends: its summary, and the owner file removed (core/tracking/owner.ts)
    fs.writeFileSync(path.join(dir, 'summary.json'), JSON.stringify({ status: 'completed', steps: 30, epochsCompleted: 3, endedAt: new Date().toISOString(), lastEvaluation: { 'val/loss': 150 } }));
    fs.rmSync(path.join(dir, 'owner.json'));
    await page.waitForFunction(`document.querySelector(${JSON.stringify(`${row} .status`)}).textContent === 'finished'`, undefined, { timeout: 10000 });
    await note(`${id}: 3 values logged`);
    expect([await cellOf('step'), await vertices()]).to.deep.equal(['30', 3]);
    expect(await page.evaluate('window.notReloaded === true')).to.equal(true);
    await shot('live-finished');
  });
});
