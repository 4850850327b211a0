/**
 * What a sweep trial costs before and around its training steps, per part, in a fresh worker
 * process as `vaelab sweep` starts one, for its first trial and for a second trial in the same
 * process (what the worker's caches save):
 *
 *   npx ts-node --transpile-only bench/sweep-startup.ts [--sweep sweeps/eight-short-trials.yaml] [--reps 3]
 *
 * Each repetition forks one child (`node -e`, no ts-node of its own), which times:
 *   node          the Node.js process up to its first line (performance.now() at that line)
 *   modules       loading vaelab as bin/vaelab.js does (dist/ when it is current, else the
 *                 sources through ts-node, transpile only; the table says which) and the plugins
 *   registry      new PluginRegistry(plugins)
 *   backend       selectBackend(): $VAELAB_BACKEND, else auto (the table says which)
 * then, twice (trial 1, trial 2; the second with another learning rate), the parts of a trial
 * whose training is one step (train.maxSteps 1; the trainer cannot run zero), in the order
 * runTrial and openSession take them:
 *   config        experimentFromObject (composition, schema validation)
 *   data          loadDataset (+ binarisation of the evaluation splits for dynamic binarize)
 *   model         resolveParts (the container, the plugins' weights)
 *   check         checkShapes
 *   run dir       the run directory (config.json, run.json)
 *   first step    train() up to the end of its one step (run start, optimiser, first kernels)
 *   end           the rest of train(): the final evaluation of the validation and test splits,
 *                 the checkpoint, summary.json
 * and once, after the trials, what the coordinator spends per point before the first trial:
 *   validate      experimentFromObject + openSession + checkModelSelection + checkInit + closeSession
 * The first point of the sweep file is the trial config. Medians over the repetitions, ms.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PluginRegistry } from '../core/plugin';
import { gridPoints, randomPoint, randomStream, trialRaw } from '../core/sweep/points';
import { loadSweepSpec } from '../core/sweep/spec';
import { plugins } from '../plugins';

const ROOT = path.join(__dirname, '..');
const argOf = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const SWEEP = path.resolve(argOf('sweep', path.join(ROOT, 'sweeps', 'eight-short-trials.yaml')));
const REPS = Number(argOf('reps', '3'));

/** The child: plain JavaScript, so that its own start costs nothing but Node's. */
const CHILD = String.raw`
const { performance } = require('node:perf_hooks');
const t = { node: performance.now() };
let last = t.node;
const mark = (k) => { const n = performance.now(); t[k] = (t[k] ?? 0) + n - last; last = n; };
(async () => {
  const fs = require('node:fs');
  const path = require('node:path');
  const { root, code, task } = JSON.parse(process.env.BENCH_INPUT);
  if (code === root) require('ts-node').register({ transpileOnly: true, project: path.join(root, 'tsconfig.json') });
  require('reflect-metadata');
  require(path.join(code, 'core', 'cli'));
  const { plugins } = require(path.join(code, 'plugins'));
  const { experimentFromObject } = require(path.join(code, 'core', 'config', 'experiment'));
  const { loadDataset } = require(path.join(code, 'core', 'data'));
  const { binarizeEvaluationSplits, dataInfoOf, openSession, closeSession } = require(path.join(code, 'core', 'session'));
  const { resolveParts } = require(path.join(code, 'core', 'container'));
  const { checkShapes } = require(path.join(code, 'core', 'check'));
  const { train, checkModelSelection, checkInit } = require(path.join(code, 'core', 'train', 'trainer'));
  const { RunDir } = require(path.join(code, 'core', 'tracking', 'run-dir'));
  const { writeJsonAtomic } = require(path.join(code, 'core', 'tracking', 'files'));
  const { PluginRegistry } = require(path.join(code, 'core', 'plugin'));
  const { selectBackend } = require(path.join(code, 'core', 'backend', 'select'));
  mark('modules');
  const registry = new PluginRegistry(plugins);
  mark('registry');
  const backend = await selectBackend(undefined, { quiet: true });
  mark('backend');
  const trials = [];
  for (const [k, raw] of task.raws.entries()) {
    const r = {};
    last = performance.now();
    const m = (key) => { const n = performance.now(); r[key] = n - last; last = n; };
    const exp = experimentFromObject(structuredClone(raw), registry, task.experimentFile);
    const config = exp.config;
    m('config');
    const dataset = loadDataset({ ...config.data, synthetic: { ...config.data.synthetic } }, config.seed);
    if (config.data.binarize === 'dynamic') binarizeEvaluationSplits(dataset, config.seed);
    m('data');
    const info = dataInfoOf(dataset, config);
    const parts = resolveParts(exp, info);
    m('model');
    checkShapes(parts.model, parts.objective, info, config, registry);
    m('check');
    const dir = path.join(task.out, 'trial-' + k);
    fs.mkdirSync(path.join(dir, 'checkpoints'), { recursive: true });
    writeJsonAtomic(path.join(dir, 'config.json'), config);
    const run = RunDir.open(dir);
    run.writeSource({ experimentFile: task.experimentFile, overrides: [], argv: [], backend: backend.name, startedAt: new Date().toISOString() });
    m('run dir');
    const session = { experiment: exp, config, dataset, info, parts };
    let stepped = false;
    await train(session, { run, backend: backend.name, log: () => {}, handleSignals: false,
      callbacks: [{ name: 'bench', onStepEnd() { if (!stepped) { stepped = true; m('first step'); } } }] });
    m('end');
    closeSession(session);
    trials.push(r);
  }
  last = performance.now();
  const v = {};
  const exp = experimentFromObject(structuredClone(task.raws[0]), registry, task.experimentFile);
  const s = openSession(exp);
  checkModelSelection(s.config);
  checkInit(s);
  closeSession(s);
  v.validate = performance.now() - last;
  process.stdout.write(JSON.stringify({ start: t, trials, validate: v.validate, backend: backend.name }));
})().catch((e) => { process.stderr.write(String(e && e.stack || e)); process.exit(1); });
`;

/** dist/ when bin/vaelab.js would run it (present and newer than every source), else the sources. */
function codeDir(): string {
  const marker = path.join(ROOT, 'dist', '.built');
  if (!fs.existsSync(marker)) return ROOT;
  const built = fs.statSync(marker).mtimeMs;
  const newer = (dir: string): boolean =>
    fs.readdirSync(dir, { withFileTypes: true }).some((e) => {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) return newer(p);
      return e.name.endsWith('.ts') && !/\.(test|fixture)\.ts$/.test(e.name) && fs.statSync(p).mtimeMs > built;
    });
  return ['core', 'plugins', 'testing'].some((d) => fs.existsSync(path.join(ROOT, d)) && newer(path.join(ROOT, d))) ? ROOT : path.join(ROOT, 'dist');
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function main(): void {
  const registry = new PluginRegistry(plugins);
  const spec = loadSweepSpec(SWEEP, registry);
  const first = spec.method === 'grid' ? gridPoints(spec)[0] : randomPoint(spec, randomStream(spec, 0));
  const raw = trialRaw(spec, first, spec.seeds?.[0] ?? null);
  const set = (r: Record<string, unknown>, lr?: number) => {
    const x = structuredClone(r) as Record<string, Record<string, unknown>>;
    x.train = { ...x.train, maxSteps: 1, epochs: 1, progress: 'none' };
    if (lr !== undefined) x.train.optimizer = { ...(x.train.optimizer as object), learningRate: lr };
    return x;
  };
  const code = codeDir();
  const nodeOnly: number[] = [];
  const runs: Array<{ start: Record<string, number>; trials: Array<Record<string, number>>; validate: number; backend: string }> = [];
  for (let rep = 0; rep < REPS; rep++) {
    const t0 = process.hrtime.bigint();
    execFileSync(process.execPath, ['-e', '0']);
    nodeOnly.push(Number(process.hrtime.bigint() - t0) / 1e6);
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'vaelab-sweep-startup-'));
    const task = { raws: [set(raw), set(raw, 0.002)], experimentFile: spec.experiment, out };
    const r = spawnSync(process.execPath, ['-e', CHILD], { env: { ...process.env, BENCH_INPUT: JSON.stringify({ root: ROOT, code, task }) }, encoding: 'utf8', maxBuffer: 1 << 24 });
    if (r.status !== 0) throw new Error(`child failed (${r.status}): ${r.stderr}`);
    runs.push(JSON.parse(r.stdout));
    fs.rmSync(out, { recursive: true, force: true });
    process.stderr.write(`rep ${rep + 1} of ${REPS} done\n`);
  }
  const startParts = ['node', 'modules', 'registry', 'backend'];
  const trialParts = ['config', 'data', 'model', 'check', 'run dir', 'first step', 'end'];
  const ms = (x: number) => `${Math.round(x)}`;
  console.log(`sweep ${path.relative(process.cwd(), SWEEP)}, first point; code: ${code === ROOT ? 'sources through ts-node (dist/ missing or older than a source)' : 'dist/'}; backend ${runs[0].backend}; ${os.cpus().length} cores, load ${os.loadavg()[0].toFixed(1)}; medians of ${REPS}, ms`);
  console.log(`| part | first trial of a worker | second trial |`);
  console.log(`|---|---|---|`);
  console.log(`| (node -e 0, whole process, for scale) | ${ms(median(nodeOnly))} | |`);
  for (const p of startParts) console.log(`| ${p} | ${ms(median(runs.map((r) => r.start[p])))} | - |`);
  for (const p of trialParts) console.log(`| ${p} | ${ms(median(runs.map((r) => r.trials[0][p])))} | ${ms(median(runs.map((r) => r.trials[1][p])))} |`);
  const sum = (r: (typeof runs)[0], k: number) => trialParts.reduce((a, p) => a + r.trials[k][p], 0);
  const startSum = (r: (typeof runs)[0]) => startParts.reduce((a, p) => a + r.start[p], 0);
  console.log(`| **worker start (node..backend)** | ${ms(median(runs.map(startSum)))} | - |`);
  console.log(`| **trial (config..end)** | ${ms(median(runs.map((r) => sum(r, 0))))} | ${ms(median(runs.map((r) => sum(r, 1))))} |`);
  console.log(`| validate one point (coordinator, warm) | ${ms(median(runs.map((r) => r.validate)))} | |`);
}

main();
