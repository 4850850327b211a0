/**
 * The run index (core/tracking/run-index.ts) and `vaelab runs`: status from real trainings (a
 * finished run, a failed one, one whose process is killed while it trains), metrics that match
 * the run's own summary, staged runs and sweeps, corrupt files marked and never fatal, the cache
 * reused and rebuilt, filters and sorting.
 */
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { experimentFromObject } from '../core/config/experiment';
import { openSession } from '../core/session';
import { train } from '../core/train/trainer';
import { OWNER_FILE } from '../core/tracking/owner';
import { buildRunIndex, flatten, readMetricsFile, type RunEntry } from '../core/tracking/run-index';
import { parseFilter, runsReport } from '../core/tracking/runs-cli';
import { RunDir } from '../core/tracking/run-dir';
import { builtins, experimentObject } from './kits/build';
import { plugins as nanPlugins } from './fixtures/nan-objective';

const BIN = path.join(__dirname, '..', 'bin', 'vaelab.js');
const TINY = path.join(__dirname, 'fixtures', 'tiny.yaml');
const tmp = (p: string) => fs.mkdtempSync(path.join(os.tmpdir(), `vaelab-index-${p}-`));

function small(over: Record<string, unknown> = {}) {
  return experimentObject({
    name: 'indexed',
    seed: 5,
    data: { use: 'synthetic', synthetic: { kind: 'shapes', size: 64 } },
    encoder: { use: 'mlp', mlp: { hiddenSizes: [8] } },
    decoder: { use: 'mlp', mlp: { hiddenSizes: [8] } },
    latent: { use: 'gaussian', gaussian: { dim: 2 } },
    train: { epochs: 2, batchSize: 16, logEvery: 1, progress: 'none', optimizer: { learningRate: 3e-3 } },
    eval: { iwSamples: 2, iwChunk: 2, batchSize: 32, gridSize: 2, images: false },
    ...over,
  });
}

async function trainInto(root: string, raw: Record<string, unknown>, registry = builtins()) {
  const session = openSession(experimentFromObject(raw, registry));
  const run = RunDir.create(root, session.config.name, session.config.seed);
  run.writeConfig(session.config);
  run.writeSource({ experimentFile: '<inline>', overrides: [], argv: [], backend: 'cpu', startedAt: new Date().toISOString() });
  try {
    await train(session, { run, backend: 'cpu', log: () => undefined, handleSignals: false });
  } catch {
    // a failing run is part of what is indexed
  }
  return run;
}

const byId = (runs: RunEntry[], id: string) => {
  const r = runs.find((x) => x.id === id);
  expect(r, `${id} in ${runs.map((x) => x.id).join(', ')}`).to.not.equal(undefined);
  return r!;
};

/** A run directory written by hand, in the trainer's layout. */
function writeRun(dir: string, files: Record<string, string | object>): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const [name, v] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), typeof v === 'string' ? v : JSON.stringify(v));
}

describe('run index', () => {
  it('Should flatten nested config to dotted keys, arrays as JSON text', () => {
    expect(flatten({ a: { b: 1, c: { d: 'x' } }, e: [1, 2], f: null, g: true })).to.deep.equal({ 'a.b': 1, 'a.c.d': 'x', e: '[1,2]', f: null, g: true });
  });

  it('Should read metrics.jsonl records and count truncated or corrupt lines instead of failing', () => {
    const f = path.join(tmp('lines'), 'metrics.jsonl');
    fs.writeFileSync(f, '{"kind":"step","step":1}\n{"kind":"st\nnot json\n[1,2]\n{"kind":"epoch","epoch":1}\n{"kind":"step","st');
    const r = readMetricsFile(f);
    expect(r.records.map((x) => x.kind)).to.deep.equal(['step', 'epoch']);
    expect(r.skipped).to.equal(4);
  });

  describe('from real trainings @slow', () => {
    const root = tmp('real');
    let done: RunDir;
    let failed: RunDir;

    before(async () => {
      done = await trainInto(root, small());
      const reg = builtins();
      reg.addAll(nanPlugins, 'test');
      failed = await trainInto(root, small({ name: 'breaks', objective: { use: 'nan-at', 'nan-at': { nanFromStep: 6 } } }), reg);
    });

    it('Should index a finished run with its config and the metrics of its own summary', () => {
      const idx = buildRunIndex(root, { cache: false });
      const summary = JSON.parse(fs.readFileSync(done.file('summary.json'), 'utf8'));
      const config = JSON.parse(fs.readFileSync(done.file('config.json'), 'utf8'));
      const e = byId(idx.runs, path.relative(root, done.dir));
      expect(e.status).to.equal('finished');
      expect(e.rawStatus).to.equal('completed');
      expect(e.kind).to.equal('run');
      expect(e.experiment).to.equal('indexed');
      expect(e.config['train.batchSize']).to.equal(config.train.batchSize);
      expect(e.config['latent.use']).to.equal('gaussian');
      for (const [k, v] of Object.entries(summary.test as Record<string, number>)) expect(e.metrics[k], k).to.equal(v);
      expect(e.metrics.step).to.equal(summary.steps);
      expect(e.metrics.epoch).to.equal(2);
      expect(e.endedAt).to.equal(summary.endedAt);
      expect(Date.parse(e.endedAt!)).to.be.at.least(Date.parse(e.startedAt!));
      expect(fs.existsSync(done.file(OWNER_FILE)), 'owner.json removed at the end').to.equal(false);
    });

    it('Should record a failed run in its summary (status failed, the error) and index it as failed', () => {
      const summary = JSON.parse(fs.readFileSync(failed.file('summary.json'), 'utf8'));
      expect(summary.status).to.equal('failed');
      expect(summary.error).to.match(/^step \d+ \(epoch \d, batch \d\): loss is NaN/);
      const e = byId(buildRunIndex(root, { cache: false }).runs, path.relative(root, failed.dir));
      expect(e.status).to.equal('failed');
      expect(e.reason).to.equal(summary.error);
      expect(fs.existsSync(failed.file(OWNER_FILE))).to.equal(false);
    });

    it('Should list, filter and sort the runs as `vaelab runs` prints them', () => {
      const r = runsReport(root, { filter: ['status=failed'], cache: false });
      const lines = r.out.split('\n');
      expect(lines[0]).to.match(/^id\s+status\s+experiment/);
      expect(lines.filter((l) => l.includes('breaks/'))).to.have.length(1);
      expect(r.out).to.not.contain('indexed/');
      expect(lines[lines.length - 1]).to.equal('1 of 2 runs (1 failed)');
      const json = JSON.parse(runsReport(root, { filter: ['train.batchSize>=16', 'experiment!=breaks'], json: true, cache: false }).out) as RunEntry[];
      expect(json.map((x) => x.experiment)).to.deep.equal(['indexed']);
      const down = JSON.parse(runsReport(root, { filter: [], sort: '-experiment', json: true, cache: false }).out) as RunEntry[];
      expect(down.map((x) => x.experiment)).to.deep.equal(['indexed', 'breaks']);
      const up = JSON.parse(runsReport(root, { filter: [], sort: 'experiment', json: true, cache: false }).out) as RunEntry[];
      expect(up.map((x) => x.experiment)).to.deep.equal(['breaks', 'indexed']);
    });

    it('Should name an unknown key with the nearest known one', () => {
      expect(() => runsReport(root, { filter: ['train.batchsize=16'], cache: false })).to.throw('--filter train.batchsize=16: no run has the key "train.batchsize"; did you mean "train.batchSize"?');
      expect(() => runsReport(root, { filter: [], sort: 'tset/loss', cache: false })).to.throw('did you mean "test/loss"?');
      expect(() => parseFilter('beta')).to.throw('--filter "beta": expected KEY=VALUE');
      expect(() => parseFilter('beta>big')).to.throw('--filter "beta>big": > compares numbers; got "big"');
    });
  });

  describe('a run whose process is killed @slow', () => {
    it('Should show the run as running while it trains and as died once its process is killed', async function () {
      this.timeout(120000);
      const out = tmp('killed');
      const child = spawn(process.execPath, [BIN, 'train', TINY, '--out', out, '--set', 'train.epochs=200', '--set', 'train.progress=plain'], {
        env: { ...process.env, VAELAB_BACKEND: 'cpu' },
      });
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
      // wait until the first epoch's record is in metrics.jsonl: the run is under way
      const t0 = Date.now();
      let running: RunEntry[] = [];
      while (Date.now() - t0 < 90000) {
        running = buildRunIndex(out).runs;
        if (running[0]?.metrics.epoch === 1) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(running, err).to.have.length(1);
      expect(running[0].status).to.equal('running');
      expect(running[0].metrics.epoch, err).to.equal(1);
      expect(running[0].metrics['train/loss']).to.be.a('number');
      child.kill('SIGKILL');
      await exited;
      // the cached entry is reused; the liveness is checked again
      const after = buildRunIndex(out).runs[0];
      expect(after.status).to.equal('died');
      expect(after.reason).to.equal(`process ${child.pid} ended without writing summary.json`);
      expect(after.endedAt).to.equal(null);
    });
  });

  describe('from directories written by hand', () => {
    const root = tmp('hand');
    const cfg = (name: string, extra: object = {}) => ({ name, seed: 1, objective: { use: 'elbo' }, ...extra });
    before(() => {
      writeRun(path.join(root, 'a', 'r1'), {
        'config.json': cfg('a'),
        'summary.json': { status: 'completed', steps: 10, epochsCompleted: 1, test: { 'test/loss': 3.5 } },
        'metrics.jsonl': '{"kind":"step","step":10,"train/loss":4}\n{"kind":"epoch","epoch":1,"step":10,"train/loss":4.1}\n{"kind":"ep',
      });
      writeRun(path.join(root, 'a', 'r2'), { 'config.json': cfg('a'), 'summary.json': '{"status": "compl' });
      writeRun(path.join(root, 'a', 'r3'), { 'config.json': cfg('a'), 'metrics.jsonl': '{"kind":"step","step":3,"train/loss":9}\n' });
      writeRun(path.join(root, 'a', 'r4'), { 'config.json': cfg('a'), 'summary.json': { status: 'interrupted', steps: 4 } });
      // a staged run: the first stage finished, the second died
      const staged = path.join(root, 'vq', 'r5');
      writeRun(staged, { 'config.json': cfg('vq', { stages: [{ name: 'one' }, { name: 'two' }] }) });
      writeRun(path.join(staged, 'stages', '01-one'), { 'config.json': cfg('vq'), 'summary.json': { status: 'completed', steps: 5, test: { 'test/loss': 2 } } });
      writeRun(path.join(staged, 'stages', '02-two'), { 'config.json': cfg('vq'), 'metrics.jsonl': '{"kind":"step","step":2,"train/loss":1}\n' });
      // a sweep with a completed and a pruned trial
      const sweep = path.join(root, 'sweeps', 'lr');
      writeRun(sweep, {
        'state.json': {
          version: 1,
          sweepFile: '/work/sweeps/lr.yaml',
          name: 'lr',
          method: 'random',
          metric: { name: 'val/loss', goal: 'minimize' },
          trials: [
            { number: 0, params: { 'train.optimizer.learningRate': 0.001 }, dir: 'trials/0000', status: 'completed', value: 1.5, intermediate: { 1: 2, 2: 1.5 } },
            { number: 1, params: { 'train.optimizer.learningRate': 0.1 }, dir: 'trials/0001', status: 'pruned', value: 9, intermediate: { 1: 9 } },
          ],
        },
      });
      writeRun(path.join(sweep, 'trials', '0000'), { 'config.json': cfg('lr'), 'summary.json': { status: 'completed', steps: 8 } });
      writeRun(path.join(sweep, 'trials', '0001'), { 'config.json': cfg('lr'), 'summary.json': { status: 'pruned', steps: 2, stop: { reason: 'below the median' } } });
    });

    it('Should mark runs with corrupt or missing files and say why, never failing', () => {
      const idx = buildRunIndex(root, { cache: false });
      const r1 = byId(idx.runs, 'a/r1');
      expect(r1.status).to.equal('finished');
      expect(r1.metrics['test/loss']).to.equal(3.5);
      expect(r1.metrics['train/loss']).to.equal(4.1);
      expect(r1.problems).to.deep.equal(['metrics.jsonl: 1 line skipped near its end (not valid JSON)']);
      const r2 = byId(idx.runs, 'a/r2');
      expect(r2.status).to.equal('failed');
      expect(r2.reason).to.equal('summary.json: not valid JSON');
      const r3 = byId(idx.runs, 'a/r3');
      expect(r3.status).to.equal('died');
      expect(r3.reason).to.equal('no summary.json and no owner process recorded');
      expect(r3.metrics).to.deep.equal({ 'train/loss': 9, step: 3 });
      expect(byId(idx.runs, 'a/r4').status).to.equal('interrupted');
    });

    it('Should index a staged run with its stages, and a sweep with its trials', () => {
      const idx = buildRunIndex(root, { cache: false });
      const top = byId(idx.runs, 'vq/r5');
      expect(top.kind).to.equal('staged');
      expect(top.status).to.equal('died');
      const stages = idx.runs.filter((r) => r.parent === 'vq/r5');
      expect(stages.map((s) => [s.id, s.kind, s.status])).to.deep.equal([
        ['vq/r5/stages/01-one', 'stage', 'finished'],
        ['vq/r5/stages/02-two', 'stage', 'died'],
      ]);
      expect(idx.sweeps).to.have.length(1);
      const sw = idx.sweeps[0];
      expect(sw.id).to.equal('sweeps/lr');
      expect(sw.parameters).to.deep.equal(['train.optimizer.learningRate']);
      // the sweep file, for readers that want the parameters' distributions (the dashboard)
      expect(sw.sweepFile).to.equal('/work/sweeps/lr.yaml');
      expect(sw.trials.map((t) => [t.runId, t.status, t.value])).to.deep.equal([
        ['sweeps/lr/trials/0000', 'completed', 1.5],
        ['sweeps/lr/trials/0001', 'pruned', 9],
      ]);
      const pruned = byId(idx.runs, 'sweeps/lr/trials/0001');
      expect([pruned.kind, pruned.parent, pruned.status, pruned.reason]).to.deep.equal(['trial', 'sweeps/lr', 'pruned', 'below the median']);
      const table = runsReport(root, { filter: [], sweeps: true, cache: false }).out.split('\n');
      expect(table[2]).to.match(/^sweeps\/lr\s+random\s+min val\/loss\s+2\s+1\s+1\s+0\s+0\s+1\.500$/);
    });

    it('Should reuse the cache, read a changed run again, and rebuild from a corrupt cache', () => {
      const cache = path.join(root, '.vaelab-index.json');
      fs.rmSync(cache, { force: true });
      const first = buildRunIndex(root);
      expect(fs.existsSync(cache)).to.equal(true);
      // an entry whose files did not change is served from the cache (here edited to tell)
      const f = path.join(root, 'a', 'r4', 'summary.json');
      const saved = JSON.parse(fs.readFileSync(cache, 'utf8'));
      expect(saved.entries['a/r4'].entry.rawStatus).to.equal('interrupted');
      saved.entries['a/r4'].entry.rawStatus = 'pruned';
      fs.writeFileSync(cache, JSON.stringify(saved));
      expect(byId(buildRunIndex(root).runs, 'a/r4').status).to.equal('pruned');
      // a change of size or time is read again
      fs.writeFileSync(f, JSON.stringify({ status: 'completed', steps: 4 }));
      expect(byId(buildRunIndex(root).runs, 'a/r4').status).to.equal('finished');
      fs.writeFileSync(cache, '{"version": 1, "entries": {"a/r1": ');
      const rebuilt = buildRunIndex(root);
      expect(rebuilt.runs.map((r) => [r.id, r.status])).to.deep.equal(first.runs.map((r) => [r.id, r.id === 'a/r4' ? 'finished' : r.status]));
    });

    it('Should report a runs directory that cannot be read instead of failing', () => {
      const file = path.join(root, 'a', 'r1', 'config.json');
      const idx = buildRunIndex(file, { cache: false });
      expect(idx.runs).to.deep.equal([]);
      expect(idx.problems[0]).to.match(/cannot be read \(ENOTDIR\)$/);
      expect(buildRunIndex(path.join(root, 'nothing-here')).problems).to.deep.equal([`${path.join(root, 'nothing-here')}: no such directory`]);
    });
  });

  describe('vaelab runs (the command)', () => {
    it('Should print the table, and exit 2 with the key named for a bad filter', () => {
      const root = tmp('cmd');
      writeRun(path.join(root, 'x', 'r1'), { 'config.json': { name: 'x' }, 'summary.json': { status: 'completed', steps: 3 } });
      const env = { ...process.env, VAELAB_BACKEND: 'cpu' };
      const ok = spawnSync(process.execPath, [BIN, 'runs', root, '--columns', 'id,status,step'], { env, encoding: 'utf8' });
      expect(ok.status, ok.stderr).to.equal(0);
      expect(ok.stdout.split('\n').slice(0, 3)).to.deep.equal(['id    status    step', '----  --------  ----', 'x/r1  finished     3']);
      const bad = spawnSync(process.execPath, [BIN, 'runs', root, '--filter', 'stauts=finished'], { env, encoding: 'utf8' });
      expect(bad.status).to.equal(2);
      expect(bad.stderr.trim()).to.equal('--filter stauts=finished: no run has the key "stauts"; did you mean "status"? (keys: the fields id, experiment, kind, parent, status, reason, startedAt, endedAt, seconds, dotted config keys, metric names)');
    });
  });
});
