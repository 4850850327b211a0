/**
 * TPE against random search on sweeps/lr-tpe-asha.yaml, over several sampler seeds: the best
 * value of the metric (val/loss, lower is better) among the completed trials after each trial
 * count, per method, as mean ± sample standard deviation over the seeds.
 *
 *   nice -n 15 npx ts-node --transpile-only bench/tpe-vs-random.ts [--seeds 3] [--trials 12]
 *     [--epochs 3] [--train-limit 4000] [--validation 1000] [--startup 4] [--out DIR]
 *
 * Each (method, seed) is one sweep of the file with these overrides: `method`, `seed`,
 * `budget.trials`, one worker, `train.epochs`, `data.trainLimit`, `data.validationSize` and
 * `tpe.startupTrials` (the file's 10 would leave a 12-trial budget with 2 TPE suggestions).
 * Everything else is the file's: the learning-rate and batch-size space, ASHA (eta 3, rungs at
 * 1, 3, 9 epochs up to train.epochs), the experiment. TPE's random startup points are the
 * random sampler's first points of the same seed (both draw suggestion i from the stream
 * derived from the seed and i), so the pairs differ only after the startup.
 *
 * One worker per sweep, sweeps one after another, so each sweep is deterministic given its
 * seed (the samplers see every earlier trial, and ASHA's rungs fill in trial order). Pruned
 * trials do not count as "best": their value is taken at an earlier epoch.
 *
 * Given an `--out` of an earlier run with the same settings, its sweeps are resumed (finished
 * ones run nothing), so `--seeds 10` after `--seeds 5` runs only seeds 5 to 9.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as YAML from 'yaml';
import { selectBackend } from '../core/backend/select';
import { PluginRegistry } from '../core/plugin';
import { runSweep } from '../core/sweep/runner';
import { loadSweepSpec } from '../core/sweep/spec';
import type { SweepState } from '../core/sweep/state';
import { plugins } from '../plugins';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const SEEDS = arg('seeds', 3);
const TRIALS = arg('trials', 12);
const EPOCHS = arg('epochs', 3);
const TRAIN_LIMIT = arg('train-limit', 4000);
const VALIDATION = arg('validation', 1000);
const STARTUP = arg('startup', 4);
const outIdx = process.argv.indexOf('--out');
const OUT = outIdx > 0 ? path.resolve(process.argv[outIdx + 1]) : fs.mkdtempSync(path.join(os.tmpdir(), 'vaelab-tpe-vs-random-'));
const SWEEP = path.join(__dirname, '..', 'sweeps', 'lr-tpe-asha.yaml');
const METHODS = ['tpe', 'random'] as const;

/** The sweep file of one (method, seed), written next to its directory. */
function sweepFileFor(method: string, seed: number): string {
  const raw = YAML.parse(fs.readFileSync(SWEEP, 'utf8')) as Record<string, unknown>;
  raw.experiment = path.resolve(path.dirname(SWEEP), raw.experiment as string);
  raw.name = `lr-${method}-seed${seed}`;
  raw.method = method;
  raw.seed = seed;
  raw.set = { ...(raw.set as object), 'train.epochs': EPOCHS, 'data.trainLimit': TRAIN_LIMIT, 'data.validationSize': VALIDATION };
  if (method === 'tpe') raw.tpe = { ...(raw.tpe as object), startupTrials: STARTUP };
  else delete raw.tpe;
  raw.budget = { trials: TRIALS, concurrent: 1 };
  raw.dir = path.join(OUT, `${method}-${seed}`);
  const f = path.join(OUT, `${method}-${seed}.yaml`);
  fs.writeFileSync(f, YAML.stringify(raw));
  return f;
}

/** best[n - 1]: the best completed value among trials 0..n-1 (null before the first completes). */
function bestSoFar(state: SweepState): Array<number | null> {
  let best: number | null = null;
  return state.trials.slice(0, TRIALS).map((t) => {
    if (t.status === 'completed' && t.value !== null && (best === null || t.value < best)) best = t.value;
    return best;
  });
}

const meanSd = (xs: number[]) => {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1)) : 0;
  return { m, sd };
};

async function main(): Promise<void> {
  fs.mkdirSync(OUT, { recursive: true });
  await selectBackend('cpu', { quiet: true });
  const registry = new PluginRegistry(plugins);
  const curves: Record<string, Array<Array<number | null>>> = { tpe: [], random: [] };
  const pruned: Record<string, number[]> = { tpe: [], random: [] };
  const started = Date.now();
  process.stderr.write(`tpe vs random: ${SEEDS} seeds x ${TRIALS} trials, ${EPOCHS} epochs of ${TRAIN_LIMIT - VALIDATION} images (${VALIDATION} for validation), TPE startup ${STARTUP}; sweeps in ${OUT}\n`);
  for (let seed = 0; seed < SEEDS; seed++) {
    for (const method of METHODS) {
      const t0 = Date.now();
      const spec = loadSweepSpec(sweepFileFor(method, seed), registry);
      const log = fs.createWriteStream(path.join(OUT, `${method}-${seed}.log`), { flags: 'a' });
      const resume = fs.existsSync(path.join(spec.dir, 'state.json'));
      const r = await runSweep(spec, registry, { workers: 1, resume, log: (l) => log.write(`${l}\n`), handleSignals: false, pictures: false });
      log.end();
      const state = r.state!;
      curves[method].push(bestSoFar(state));
      pruned[method].push(state.trials.filter((t) => t.status === 'pruned').length);
      const failed = state.trials.filter((t) => t.status === 'failed').length;
      const best = curves[method][seed][TRIALS - 1];
      process.stderr.write(`  ${method} seed ${seed}: best ${best?.toFixed(3) ?? '-'}, ${pruned[method][seed]} pruned, ${failed} failed, ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
    }
  }
  const head = ['trials', ...METHODS.map((m) => `${m} best (mean ± sd)`), 'seeds where tpe < random'];
  const rows: string[][] = [];
  for (let n = 1; n <= TRIALS; n++) {
    const cells = [String(n)];
    for (const m of METHODS) {
      const xs = curves[m].map((c) => c[n - 1]).filter((x): x is number => x !== null);
      if (xs.length < SEEDS) cells.push(xs.length === 0 ? '-' : `(${xs.length} of ${SEEDS} seeds)`);
      else {
        const { m: mu, sd } = meanSd(xs);
        cells.push(`${mu.toFixed(2)} ± ${sd.toFixed(2)}`);
      }
    }
    let wins = 0;
    let ties = 0;
    for (let s = 0; s < SEEDS; s++) {
      const a = curves.tpe[s][n - 1];
      const b = curves.random[s][n - 1];
      if (a !== null && b !== null && a < b) wins++;
      if (a !== null && a === b) ties++;
    }
    cells.push(`${wins} of ${SEEDS}${ties > 0 ? ` (${ties} equal)` : ''}`);
    rows.push(cells);
  }
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (c: string[]) => `| ${c.map((x, i) => x.padEnd(widths[i])).join(' | ')} |`;
  console.log(line(head));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of rows) console.log(line(r));
  console.log(`pruned trials per sweep: tpe ${pruned.tpe.join(', ')}; random ${pruned.random.join(', ')}`);
  console.log(`per seed, best after ${TRIALS}: tpe ${curves.tpe.map((c) => c[TRIALS - 1]?.toFixed(3) ?? '-').join(', ')}; random ${curves.random.map((c) => c[TRIALS - 1]?.toFixed(3) ?? '-').join(', ')}`);
  console.log(`total ${((Date.now() - started) / 60000).toFixed(1)} min`);
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exitCode = 1;
});
