/**
 * Sweeps as a user runs them: sweep files refused with one message naming the file, key, bad
 * value and what is allowed; every point validated with `vaelab validate`'s messages; a grid with
 * ASHA run in worker processes (decisions recorded with rung, value and threshold, results
 * sorted, best config ready to train); and a worker killed with SIGKILL mid-trial, then Ctrl-C
 * and --resume, with nothing finished run again. Trials are tiny (synthetic data, 2-4 epochs).
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { experimentFromObject, loadExperiment, readExperimentFile } from '../core/config/experiment';
import { ConfigError } from '../core/errors';
import { clearDatasetCache, datasetCached } from '../core/data';
import { openSession } from '../core/session';
import { closeSession } from '../core/session';
import { LiveTable, liveModeFor, standings } from '../core/sweep/live';
import { checkPoints, trialRaw } from '../core/sweep/points';
import { runSweep } from '../core/sweep/runner';
import { loadSweepSpec } from '../core/sweep/spec';
import { openState, readState, type SweepState, type TrialRecord } from '../core/sweep/state';
import { LocalPool } from '../core/sweep/pool';
import { warmUp, type TrialTask } from '../core/sweep/worker';
import { builtins } from './kits/build';

const BIN = path.join(__dirname, '..', 'bin', 'vaelab.js');
const TINY = path.join(__dirname, 'fixtures', 'tiny.yaml');

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'vaelab-sweep-'));
}

function sweepFile(dir: string, name: string, text: string): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, text.replace('BASE', TINY));
  return f;
}

function message(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof ConfigError) return e.message;
    throw e;
  }
  throw new Error('no ConfigError');
}

describe('sweep files', () => {
  const registry = builtins();

  it('Should refuse a file in one message naming each bad key, its value and what is allowed', () => {
    const d = tempDir();
    const f = sweepFile(
      d,
      'bad.yaml',
      `experiment: BASE
method: random
parameters:
  latent.gaussian.dmi: { values: [2, 4] }
  train.optimizer.learningRate: { distribution: log-uniform, min: 0, max: 0.01 }
  train.optimizer.beta1: { distribution: uniform, min: 0.9, max: 0.5 }
  train.batchSize: { distribution: int, min: 8, max: 32, step: 0.5 }
budget: { trials: 4 }
earlyTermination: { use: ahsa }
`,
    );
    expect(message(() => loadSweepSpec(f, registry))).to.equal(
      [
        `${f}: 5 problems`,
        `  - parameters.latent.gaussian.dmi: not a key of ${TINY} (keys of latent.gaussian: dim, minLogVar). Did you mean "latent.gaussian.dim"?`,
        '  - parameters.train.optimizer.learningRate: distribution log-uniform needs min > 0 (its log is taken); got min 0',
        '  - parameters.train.optimizer.beta1: min must be below max; got min 0.9, max 0.5',
        '  - parameters.train.batchSize.step: must be a positive integer; got 0.5',
        '  - earlyTermination.use: must be one of "none", "median", "asha"; got "ahsa". Did you mean "asha"?',
      ].join('\n'),
    );
  });

  it('Should refuse ranges in a grid, seeds given twice, and an unknown top-level key with a suggestion', () => {
    const d = tempDir();
    const f = sweepFile(
      d,
      'bad2.yaml',
      `experiment: BASE
method: grid
parameters:
  seed: { values: [0, 1] }
  train.optimizer.learningRate: { distribution: log-uniform, min: 1.0e-4, max: 1.0e-2 }
seeds: [0, 1]
budgte: { trials: 4 }
`,
    );
    expect(message(() => loadSweepSpec(f, registry))).to.equal(
      [
        `${f}: 4 problems`,
        '  - budgte: not a sweep key (keys here: name, description, experiment, set, method, seed, metric, parameters, seeds, budget, earlyTermination, tpe, retries, dir). Did you mean "budget"?',
        '  - method: grid needs values: [...] for every parameter; train.optimizer.learningRate is a range (use method random or tpe)',
        '  - seeds: seed is also a swept parameter; give the seeds in one place',
        '  - budget: must be a mapping { trials, concurrent, wallMinutes } with trials; got undefined',
      ].join('\n'),
    );
  });

  it('Should report a bad point with the very problems `vaelab validate` gives for that config', () => {
    const d = tempDir();
    const f = sweepFile(d, 'points.yaml', `experiment: BASE\nmethod: grid\nparameters:\n  latent.gaussian.dim: { values: [4, 0] }\n  encoder.mlp.activation: { values: [relu, rleu] }\nbudget: { trials: 4 }\n`);
    const spec = loadSweepSpec(f, registry);
    // What validate reports for the second point, (dim 4, rleu) and the fourth, (0, rleu).
    const validateProblems = (params: Record<string, unknown>) => {
      try {
        const s = openSession(experimentFromObject(trialRaw(spec, params, null), registry, TINY));
        closeSession(s);
        return [];
      } catch (e) {
        return (e as ConfigError).problems;
      }
    };
    const second = validateProblems({ 'latent.gaussian.dim': 4, 'encoder.mlp.activation': 'rleu' });
    const third = validateProblems({ 'latent.gaussian.dim': 0, 'encoder.mlp.activation': 'relu' });
    expect(second).to.have.length(1);
    expect(third).to.have.length(1);
    const msg = message(() => checkPoints(spec, registry, [{ 'latent.gaussian.dim': 4, 'encoder.mlp.activation': 'relu' }, { 'latent.gaussian.dim': 4, 'encoder.mlp.activation': 'rleu' }, { 'latent.gaussian.dim': 0, 'encoder.mlp.activation': 'relu' }]));
    expect(msg).to.equal(
      [`${f}: 2 problems`, `  - point 2 of 3 (latent.gaussian.dim=4, encoder.mlp.activation="rleu"): ${second[0]}`, `  - point 3 of 3 (latent.gaussian.dim=0, encoder.mlp.activation="relu"): ${third[0]}`].join('\n'),
    );
  });

  it('Should refuse a sweep directory written by another sweep file, and a second start without --resume', () => {
    const d = tempDir();
    const text = `experiment: BASE\nparameters:\n  latent.gaussian.dim: { values: [2] }\nbudget: { trials: 1 }\ndir: ${path.join(d, 'out')}\n`;
    const a = loadSweepSpec(sweepFile(d, 'a.yaml', text), registry);
    const b = loadSweepSpec(sweepFile(d, 'b.yaml', text), registry);
    const state = openState(a, false);
    fs.writeFileSync(path.join(a.dir, 'state.json'), JSON.stringify(state));
    const shownDir = path.relative(process.cwd(), a.dir);
    expect(message(() => openState(b, false))).to.equal(
      `${b.shownFile}: sweep directory ${shownDir} holds the sweep of ${a.file}, not of this file; set dir: in the sweep file or pass --out to use another directory`,
    );
    expect(message(() => openState(a, false))).to.equal(
      `${a.shownFile}: sweep directory ${shownDir} already holds this sweep (0 trials); continue it with --resume, or remove the directory to start again`,
    );
    expect(openState(a, true).sweepFile).to.equal(a.file);
  });
});

describe('sweep workers', () => {
  it('Should load the data set of the config a worker is told to prepare into its cache, and leave a bad config to the check', () => {
    const registry = builtins();
    const raw = { ...readExperimentFile(TINY), seed: 5 };
    const { config } = experimentFromObject(structuredClone(raw), registry, TINY);
    const opts = { ...config.data, synthetic: { ...config.data.synthetic } };
    clearDatasetCache();
    expect(datasetCached(opts, 5)).to.equal(false);
    warmUp({ type: 'prepare', raw, experimentFile: TINY }, registry);
    expect(datasetCached(opts, 5)).to.equal(true);
    expect(datasetCached(opts, 6)).to.equal(false);
    // Configs the check will refuse: nothing thrown here. An unknown plugin is refused before any
    // data is read, so nothing is cached.
    clearDatasetCache();
    expect(() => warmUp({ type: 'prepare', raw: { ...raw, latent: { use: 'gausian' } }, experimentFile: TINY }, registry)).not.to.throw();
    expect(datasetCached(opts, 5)).to.equal(false);
    expect(() => warmUp({ type: 'prepare', raw: { ...raw, data: { use: 'synthetic', validationSize: 100000 } }, experimentFile: TINY }, registry)).not.to.throw();
    clearDatasetCache();
  });

  it('Should send the prepare message to the workers started before the first trial, and to none started after it', async () => {
    const dir = tempDir();
    const record = path.join(dir, 'messages.jsonl');
    // A stand-in worker process that records every message it gets.
    const stub = path.join(dir, 'stub-worker.js');
    fs.writeFileSync(
      stub,
      "const fs = require('fs');\n" +
        "process.on('message', (m) => { fs.appendFileSync(process.argv[2], JSON.stringify({ pid: process.pid, type: m.type }) + '\\n'); if (m.type === 'exit') process.exit(0); });\n" +
        "process.send({ type: 'ready', pid: process.pid });\n",
    );
    const warm = { type: 'prepare' as const, raw: readExperimentFile(TINY), experimentFile: TINY };
    const pool = new LocalPool({ module: stub, args: [record] }, 2, {}, path.join(dir, 'workers.log'), { message: () => {}, lost: () => {}, wake: () => {} }, warm);
    const until = async (ok: () => boolean) => {
      for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 50));
      expect(ok()).to.equal(true);
    };
    pool.grow(1);
    await until(() => pool.free() === 1);
    pool.run({ number: 0, dir: path.join(dir, 'trial-0'), raw: {}, experimentFile: TINY, resume: false, metric: { name: 'val/loss', goal: 'minimize' }, rule: { kind: 'none' }, reports: [] } as unknown as TrialTask);
    pool.grow(1);
    await until(() => pool.free() === 1);
    await pool.close();
    const lines = fs.readFileSync(record, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { pid: number; type: string });
    const pids = [...new Set(lines.map((l) => l.pid))];
    expect(pids).to.have.length(2);
    const typesOf = (pid: number) => lines.filter((l) => l.pid === pid).map((l) => l.type);
    const [first, second] = pids.sort((a, b) => lines.findIndex((l) => l.pid === a) - lines.findIndex((l) => l.pid === b));
    expect(typesOf(first)).to.deep.equal(['prepare', 'run', 'exit']);
    expect(typesOf(second)).to.deep.equal(['exit']);
  });
});

describe('live results table', () => {
  const registry = builtins();
  const d = tempDir();
  const spec = loadSweepSpec(
    sweepFile(d, 'live.yaml', `experiment: BASE\nmethod: grid\nmetric: { name: test/loss, goal: minimize }\nparameters:\n  latent.gaussian.dim: { values: [2, 3, 4, 5, 6, 7] }\nbudget: { trials: 6 }\ndir: ${path.join(d, 'out')}\n`),
    registry,
  );
  const trial = (number: number, status: TrialRecord['status'], extra: Partial<TrialRecord> = {}): TrialRecord => ({
    number, params: { 'latent.gaussian.dim': number + 2 }, seed: null, dir: `trials/000${number}`, status, attempts: 1, failures: [], intermediate: {}, decisions: [], value: null, seconds: 1, ...extra,
  });
  const stateOf = (trials: TrialRecord[]): SweepState => ({
    version: 1, sweepFile: spec.file, specHash: '', name: 'live', method: 'grid', metric: spec.metric, createdAt: '', suggestions: 6, wallSeconds: 0, sessions: [], trials,
  });
  const mixed = () =>
    stateOf([
      trial(0, 'completed', { value: 5, intermediate: { 1: 6, 2: 5 } }),
      trial(1, 'pruned', { value: 7.5, intermediate: { 1: 7.5 } }),
      trial(2, 'running', { intermediate: { 1: 6.2, 2: 5.5 } }),
      trial(3, 'completed', { value: 4.25, intermediate: { 1: 5, 2: 4.25 } }),
      trial(4, 'failed', { attempts: 2 }),
      trial(5, 'queued', { attempts: 0 }),
    ]);
  // The order of results.csv: completed by value (4.25 < 5), pruned, running, queued (not shown), failed.
  const TABLE = [
    'sweep live: 4 of 6 trials ended (2 completed, 1 pruned, 1 running, 1 failed); by test/loss (minimize)',
    '  rank  trial  test/loss  status                 parameters',
    '  1     3      4.25       completed              latent.gaussian.dim=5',
    '  2     0      5          completed              latent.gaussian.dim=2',
    '  3     1      7.5        pruned at epoch 1      latent.gaussian.dim=3',
    '  4     2      -          running, epoch 2: 5.5  latent.gaussian.dim=4',
    '  6     4      -          failed (2 attempts)    latent.gaussian.dim=6',
  ];

  it('Should list the trials by the metric with their status: running with its newest epoch and value, pruned at its epoch, failed', () => {
    expect(standings(spec, mixed(), 10)).to.deep.equal(TABLE);
    // Room for 3 rows: the 2 best and the running trial; the rest counted.
    expect(standings(spec, mixed(), 3)).to.deep.equal([...TABLE.slice(0, 4), TABLE[5], '  ... 2 more in results.csv']);
    // Before the first trial: the summary line alone.
    expect(standings(spec, stateOf([trial(0, 'queued', { attempts: 0 })]), 10)).to.deep.equal(['sweep live: 0 of 6 trials ended; by test/loss (minimize)']);
  });

  it('Should print plain lines after each trial ends when the output is not a terminal, and redraw in place on one', () => {
    expect(liveModeFor('auto', { isTTY: false })).to.equal('plain');
    expect(liveModeFor('auto', { isTTY: true })).to.equal('redraw');
    expect(liveModeFor('none', { isTTY: true })).to.equal('none');

    const plain: string[] = [];
    const p = new LiveTable(spec, 'plain', (l) => plain.push(l), null);
    const s = mixed();
    p.update(s);
    p.update(s); // nothing ended since: nothing printed
    expect(plain).to.deep.equal(TABLE);
    s.trials[2] = { ...s.trials[2], status: 'completed', value: 5.25 };
    p.update(s);
    expect(plain.slice(TABLE.length, TABLE.length + 1)).to.deep.equal(['sweep live: 5 of 6 trials ended (3 completed, 1 pruned, 1 failed); by test/loss (minimize)']);

    const out: string[] = [];
    const r = new LiveTable(spec, 'redraw', (l) => out.push(`log: ${l}\n`), { write: (t) => out.push(t), columns: 200, rows: 40 });
    r.update(mixed());
    r.print('trial 2 epoch 3: test/loss 5.4');
    r.close();
    const drawn = `${TABLE.join('\n')}\n`;
    // Up 7 lines (ESC [ 7 A) and clear to the end of the screen (ESC [ J) before each line and at the end.
    expect(out).to.deep.equal([drawn, '\x1b[7A\x1b[J', 'log: trial 2 epoch 3: test/loss 5.4\n', drawn, '\x1b[7A\x1b[J']);

    // A narrow terminal: lines cut at its width (29 characters, the last an ellipsis), so none wraps.
    const narrow: string[] = [];
    new LiveTable(spec, 'redraw', () => {}, { write: (t) => narrow.push(t), columns: 30, rows: 40 }).update(mixed());
    expect(narrow[0].split('\n')[0]).to.equal(`${TABLE[0].slice(0, 28)}…`);
  });
});

/** The sweep state once `ok` holds of it, polling. */
async function until(dir: string, ok: (s: SweepState) => boolean, what: string, ms = 90000): Promise<SweepState> {
  const t0 = Date.now();
  for (;;) {
    const s = fs.existsSync(path.join(dir, 'state.json')) ? readState(dir) : undefined;
    if (s && ok(s)) return s;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('sweep runs @slow', function () {
  this.timeout(240000);
  const registry = builtins();

  it('Should run a grid with ASHA in worker processes: rung decisions recorded, results sorted, the best config ready to train', async () => {
    const d = tempDir();
    const f = sweepFile(
      d,
      'asha.yaml',
      `experiment: BASE
set: { train.epochs: 3, data.synthetic.size: 128, eval.iwSamples: 0, eval.images: false, train.progress: none }
method: grid
metric: { name: test/loss, goal: minimize }
parameters:
  train.optimizer.learningRate: { values: [0.003, 0.0001] }
  latent.gaussian.dim: { values: [2, 4] }
seeds: [0, 1]
budget: { trials: 7, concurrent: 1 }
earlyTermination: { use: asha, minEpochs: 1, reductionFactor: 2 }
retries: 0
dir: ${path.join(d, 'out')}
`,
    );
    const lines: string[] = [];
    const spec = loadSweepSpec(f, registry);
    const r = await runSweep(spec, registry, { log: (l) => lines.push(l), env: { VAELAB_BACKEND: 'cpu' }, handleSignals: false });
    expect(r.status).to.equal('completed');
    // 2 x 2 points x 2 seeds = 8 trials, budget 7.
    expect(lines).to.include(`warning: ${f}: the grid has 8 trials (4 points x 2 seeds) and budget.trials is 7: only the first 7 run`);
    const s = readState(spec.dir)!;
    expect(s.trials).to.have.length(7);
    // One worker: trials ran one after another, so at each decision the values competing at the
    // rung are those of the earlier trials at that epoch and the trial's own. ASHA's rule with
    // eta = 2: keep going if the value is within the best max(1, floor(n / 2)) of them.
    for (const t of s.trials) {
      expect(t.status).to.be.oneOf(['completed', 'pruned']);
      for (const dcs of t.decisions) {
        expect(dcs.epoch).to.be.oneOf([1, 2]); // rungs below 3 epochs: 1 and 2
        expect(dcs.rung).to.equal(dcs.epoch === 1 ? 0 : 1);
        const earlier = s.trials.filter((o) => o.number < t.number).map((o) => o.intermediate[dcs.epoch]).filter((v) => v !== undefined);
        const competing = [...earlier, t.intermediate[dcs.epoch]].sort((a, b) => a - b);
        expect(dcs.among).to.equal(competing.length);
        expect(dcs.value).to.equal(t.intermediate[dcs.epoch]);
        expect(dcs.threshold).to.equal(competing[Math.max(1, Math.floor(competing.length / 2)) - 1]);
        expect(dcs.action).to.equal(dcs.value <= dcs.threshold ? 'continue' : 'prune');
        expect(lines).to.include(`trial ${t.number}: ${dcs.reason}`);
      }
      const summary = JSON.parse(fs.readFileSync(path.join(spec.dir, t.dir, 'summary.json'), 'utf8'));
      const config = JSON.parse(fs.readFileSync(path.join(spec.dir, t.dir, 'config.json'), 'utf8'));
      expect(config.seed).to.equal(t.seed);
      expect(config.latent.gaussian.dim).to.equal(t.params['latent.gaussian.dim']);
      if (t.status === 'pruned') {
        const last = t.decisions[t.decisions.length - 1];
        expect(last.action).to.equal('prune');
        expect(summary.status).to.equal('pruned');
        expect(summary.stop.reason).to.equal(last.reason);
        expect(t.value).to.equal(last.value);
      } else {
        expect(t.value).to.equal(summary.test['test/loss']);
      }
    }
    // The first trial is always promoted (the only value at its rungs).
    expect(s.trials[0].status).to.equal('completed');
    const results = JSON.parse(fs.readFileSync(path.join(spec.dir, 'results.json'), 'utf8'));
    const completed = results.trials.filter((x: { status: string }) => x.status === 'completed').map((x: { value: number }) => x.value);
    expect(completed).to.deep.equal([...completed].sort((a: number, b: number) => a - b));
    expect(fs.readFileSync(path.join(spec.dir, 'results.csv'), 'utf8').split('\n')[0]).to.equal(
      'rank,trial,status,test/loss,epochs,seconds,attempts,train.optimizer.learningRate,latent.gaussian.dim,seed,dir,note',
    );
    // best-experiment.yaml is an experiment file: it loads, and it is the best trial's config.
    const best = loadExperiment(path.join(spec.dir, 'best-experiment.yaml'), registry);
    const bestTrial = s.trials[results.best.trial];
    expect(results.best.value).to.equal(Math.min(...completed));
    expect((best.config.latent.gaussian as { dim: number }).dim).to.equal(bestTrial.params['latent.gaussian.dim']);
    expect(best.config.seed).to.equal(bestTrial.seed);
  });

  it('Should retry a trial whose worker is killed (SIGKILL) from its checkpoint, stop on an interrupt, and re-run nothing finished on --resume', async () => {
    const d = tempDir();
    const out = path.join(d, 'out');
    const f = sweepFile(
      d,
      'kill.yaml',
      `experiment: BASE
set: { train.epochs: 3, data.synthetic.size: 256, eval.iwSamples: 0, eval.images: false, train.progress: none, train.keepCheckpoints: 3 }
method: grid
parameters:
  latent.gaussian.dim: { values: [2, 3, 4] }
budget: { trials: 3, concurrent: 1 }
retries: 1
dir: ${out}
`,
    );
    const spec = loadSweepSpec(f, registry);
    const lines: string[] = [];
    // control.stop is what the sweep's SIGINT handler sets (Ctrl-C).
    const control = { stop: false };
    const first = runSweep(spec, registry, { log: (l) => lines.push(l), env: { VAELAB_BACKEND: 'cpu' }, handleSignals: false, control });
    // Trial 1 running with its first epoch checkpointed: kill its worker.
    const s1 = await until(out, (s) => s.trials[1]?.status === 'running' && s.trials[1].intermediate[1] !== undefined, 'trial 1 after epoch 1');
    const finished0 = fs.statSync(path.join(out, s1.trials[0].dir, 'summary.json')).mtimeMs;
    const killedAt = Date.now();
    process.kill(s1.trials[1].worker!, 'SIGKILL');
    // It runs again on a new worker, from its checkpoint.
    const s2 = await until(out, (s) => s.trials[1].attempts === 2 && s.trials[1].status === 'running', 'trial 1 restarted');
    const restartSeconds = (Date.now() - killedAt) / 1000;
    expect(s2.trials[1].failures[0].reason).to.match(/^worker 1 \(pid \d+\) exited with signal SIGKILL during the trial, after epoch \d$/);
    // Then the interrupt, once trial 2 has reported an epoch.
    await until(out, (s) => s.trials[2]?.status === 'running' && s.trials[2].intermediate[1] !== undefined, 'trial 2 after epoch 1');
    control.stop = true;
    expect((await first).status).to.equal('interrupted');
    const s3 = readState(out)!;
    expect(s3.trials.map((t) => t.status)).to.deep.equal(['completed', 'completed', 'interrupted']);
    const log1 = fs.readFileSync(path.join(out, s3.trials[1].dir, 'train.log'), 'utf8');
    expect(log1).to.match(/resumed from .*epoch-000\d\.ckpt at step \d+ \(epoch \d, batch 0\)/);
    expect(lines).to.include(`trial 1: continues from ${path.join('trials', '0001', 'checkpoints', `epoch-000${Object.keys(s2.trials[1].intermediate).length}.ckpt`)}`);

    const again = await runSweep(loadSweepSpec(f, registry), registry, { resume: true, log: (l) => lines.push(l), env: { VAELAB_BACKEND: 'cpu' }, handleSignals: false });
    expect(again.status).to.equal('completed');
    const s4 = readState(out)!;
    expect(s4.trials).to.have.length(3); // the budget counts old and new trials
    expect(s4.trials.map((t) => t.status)).to.deep.equal(['completed', 'completed', 'completed']);
    expect(s4.trials.map((t) => t.attempts)).to.deep.equal([1, 2, 2]);
    // Nothing finished ran again: trial 0's summary is untouched; trial 2 continued from its interrupt checkpoint.
    expect(fs.statSync(path.join(out, s4.trials[0].dir, 'summary.json')).mtimeMs).to.equal(finished0);
    expect(fs.readFileSync(path.join(out, s4.trials[2].dir, 'train.log'), 'utf8')).to.match(/resumed from .*interrupt\.ckpt/);
    expect(s4.sessions.map((x) => x.ended)).to.deep.equal(['interrupted', 'completed']);
    // For the record: how long a killed trial waited to run again (a new worker's start included).
    console.log(`      (killed trial restarted after ${restartSeconds.toFixed(1)} s)`);
  });

  it('Should keep results.csv and results.json current while the sweep runs, and print the standings after each trial', async () => {
    const d = tempDir();
    const out = path.join(d, 'out');
    const f = sweepFile(
      d,
      'live.yaml',
      `experiment: BASE
set: { train.epochs: 12, data.synthetic.size: 256, eval.iwSamples: 0, eval.images: false, train.progress: none }
method: grid
metric: { name: test/loss, goal: minimize }
parameters:
  latent.gaussian.dim: { values: [2, 3, 4] }
budget: { trials: 3, concurrent: 1 }
retries: 0
dir: ${out}
`,
    );
    const lines: string[] = [];
    const done = runSweep(loadSweepSpec(f, registry), registry, { log: (l) => lines.push(l), env: { VAELAB_BACKEND: 'cpu' }, handleSignals: false, pictures: false });
    // Mid-sweep: trial 0 completed and trial 1 has reported an epoch, in the files (written at most a second after the change;
    // 12 epochs keep trial 1 running long enough to be seen on a loaded machine).
    const t0 = Date.now();
    let mid: { final: boolean; trials: Array<{ trial: number; status: string; value: number | null; latest?: { epoch: number; value: number } }> } | null = null;
    while (Date.now() - t0 < 90000) {
      const file = path.join(out, 'results.json');
      const r = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : null;
      if (r?.trials.some((t: { trial: number; latest?: unknown; status: string }) => t.trial === 1 && t.status === 'running' && t.latest)) {
        mid = r;
        break;
      }
      await new Promise((res) => setTimeout(res, 50));
    }
    expect(mid, 'results.json with trial 1 running and reported').to.not.equal(null);
    const state = readState(out)!;
    expect(mid!.final).to.equal(false);
    // Trial 2 is drawn from the sampler only when a worker is free for it.
    expect(mid!.trials.map((t) => [t.trial, t.status])).to.deep.equal([[0, 'completed'], [1, 'running']]);
    expect(mid!.trials[0].value).to.equal(state.trials[0].value);
    const latest = mid!.trials[1].latest!;
    expect(latest.value).to.equal(state.trials[1].intermediate[latest.epoch]);
    const csv = fs.readFileSync(path.join(out, 'results.csv'), 'utf8').trim().split('\n');
    expect(csv[2]).to.match(new RegExp(`^2,1,running,,\\d+,[\\d.]+,1,3,trials/0001,epoch \\d+: test/loss [\\d.]+$`));
    expect(fs.existsSync(path.join(out, 'best-experiment.yaml'))).to.equal(true); // trial 0's, the best so far

    expect((await done).status).to.equal('completed');
    const end = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
    expect(end.final).to.equal(true);
    expect(end.trials.map((t: { status: string }) => t.status)).to.deep.equal(['completed', 'completed', 'completed']);
    // Plain standings after each of the 3 trials ended (no terminal here), the table under each.
    const heads = lines.filter((l) => /^sweep live: \d+ of /.test(l));
    expect(heads).to.deep.equal([
      'sweep live: 1 of 3 trials ended (1 completed); by test/loss (minimize)',
      'sweep live: 2 of 3 trials ended (2 completed); by test/loss (minimize)',
      'sweep live: 3 of 3 trials ended (3 completed); by test/loss (minimize)',
    ]);
    expect(lines[lines.indexOf(heads[0]) + 1]).to.equal('  rank  trial  test/loss  status     parameters');
    expect(lines[lines.indexOf(heads[0]) + 2]).to.match(/^ {2}1 {5}0 {6}[\d.]+ +completed {2}latent\.gaussian\.dim=2$/);
    expect(fs.existsSync(path.join(out, 'plots'))).to.equal(false); // pictures: false
  });

  it('Should record a trial whose loss turns NaN with its reason, retry it, and finish the other trials', async () => {
    const d = tempDir();
    const base = path.join(d, 'base.yaml');
    // The tiny experiment with a test objective whose loss is NaN from step 3 on.
    fs.writeFileSync(base, `${fs.readFileSync(TINY, 'utf8')}\nplugins: [${path.join(__dirname, 'fixtures', 'nan-objective.ts')}]\n`);
    const f = path.join(d, 'nan.yaml');
    fs.writeFileSync(
      f,
      `experiment: ${base}
set: { train.epochs: 2, data.synthetic.size: 128, eval.iwSamples: 0, eval.images: false, train.progress: none }
method: grid
parameters:
  objective.use: { values: [elbo, nan-at] }
budget: { trials: 2, concurrent: 1 }
retries: 1
dir: ${path.join(d, 'out')}
`,
    );
    const lines: string[] = [];
    const spec = loadSweepSpec(f, registry);
    const r = await runSweep(spec, registry, { log: (l) => lines.push(l), env: { VAELAB_BACKEND: 'cpu', VAELAB_TYPECHECK: '0' }, handleSignals: false });
    expect(r.status).to.equal('completed');
    const s = readState(spec.dir)!;
    expect(s.trials.map((t) => t.status)).to.deep.equal(['completed', 'failed']);
    const bad = s.trials[1];
    // Tried once and retried once (retries: 1), failing the same way: the trainer's own message.
    // nanFromStep defaults to 3 (0-based), the 4th step: epoch 1, batch 4 (16 batches per epoch).
    expect(bad.attempts).to.equal(2);
    expect(bad.failures).to.have.length(2);
    for (const fl of bad.failures) expect(fl.reason).to.match(/^step 4 \(epoch 1, batch 4\): loss is NaN; last good checkpoint: none/);
    expect(lines).to.include(`trial 1 failed: ${bad.failures[0].reason}; retry 1 of 1`);
    expect(lines).to.include(`trial 1 failed: ${bad.failures[1].reason}; no retries left (retries: 1)`);
    const csv = fs.readFileSync(path.join(spec.dir, 'results.csv'), 'utf8').trim().split('\n');
    expect(csv[2].startsWith('2,1,failed,')).to.equal(true);
  });

  it('Should start no trial when a point fails its check, stop the workers started meanwhile, and leave no directory behind', async () => {
    const d = tempDir();
    const out = path.join(d, 'out');
    const f = sweepFile(d, 'bad-point.yaml', `experiment: BASE\nmethod: grid\nparameters:\n  latent.gaussian.dim: { values: [2, 0] }\nbudget: { trials: 2, concurrent: 2 }\ndir: ${out}\n`);
    const spec = loadSweepSpec(f, registry);
    let error: unknown = null;
    try {
      await runSweep(spec, registry, { log: () => {}, env: { VAELAB_BACKEND: 'cpu' }, handleSignals: false });
    } catch (e) {
      error = e;
    }
    expect(error).to.be.instanceOf(ConfigError);
    expect((error as ConfigError).message).to.match(new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: point 2 of 2 \\(latent\\.gaussian\\.dim=0\\): latent\\.gaussian\\.dim: `));
    // The directory was made for the worker processes' log; it goes with them.
    expect(fs.existsSync(out)).to.equal(false);
    // The same sweep, fixed, starts in that place as a new sweep.
    fs.writeFileSync(f, fs.readFileSync(f, 'utf8').replace('[2, 0]', '[2, 3]').replace('trials: 2, concurrent: 2', 'trials: 1, concurrent: 1'));
    const fixed = loadSweepSpec(f, registry);
    const r = await runSweep(fixed, registry, { log: () => {}, env: { VAELAB_BACKEND: 'cpu' }, handleSignals: false, pictures: false, table: 'none' });
    expect(r.status).to.equal('completed');
    expect(readState(out)!.trials.map((t) => t.status)).to.deep.equal(['completed']);
  });

  it('Should exit 2 from the command line on a bad sweep file, naming it', () => {
    const d = tempDir();
    const f = sweepFile(d, 'cli.yaml', `experiment: BASE\nparameters:\n  latent.gaussian.dim: { values: [2] }\nbudget: { trials: 0 }\n`);
    const r = spawnSync(process.execPath, [BIN, 'sweep', f], { env: { ...process.env, VAELAB_BACKEND: 'cpu' }, encoding: 'utf8' });
    expect(r.status).to.equal(2);
    expect(r.stderr).to.equal(`${f}: budget.trials: the number of trials to run, an integer >= 1; got 0\n`);
  });
});
