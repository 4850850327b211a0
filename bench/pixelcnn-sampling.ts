/**
 * Sampling 64 code grids (7x7, 512 codes) from the Gated PixelCNN prior of
 * bench/pixelcnn-mnist.yaml (8 gated layers of 64 channels, first kernel 7), position by
 * position, against the PyTorch twin's GatedPixelCNN.sample (../shared/peers/torch_variants.py),
 * one core each (taskset), one after the other. Untrained weights: the time of a draw does not
 * depend on them. Codes only, no decoding, as the twin's sample() does. Issue 12's target: ours
 * within 2x of PyTorch's time.
 *
 *   npx ts-node --transpile-only bench/pixelcnn-sampling.ts [--n 64] [--reps 5] [--variants-script PATH]
 *
 * Runs itself with --child for our side (so it can be pinned like the twin).
 */
import 'reflect-metadata';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../core/backend/select';
import { loadExperiment } from '../core/config/experiment';
import { PluginRegistry } from '../core/plugin';
import { Rng } from '../core/rng';
import { openSession } from '../core/session';
import { plugins } from '../plugins';

const REPO = path.resolve(__dirname, '..');
const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

async function child(n: number, reps: number): Promise<void> {
  const backend = await selectBackend(undefined, { log: () => undefined });
  const registry = new PluginRegistry();
  registry.addAll(plugins, 'builtin');
  const session = openSession(loadExperiment(path.join(REPO, 'bench', 'pixelcnn-mnist.yaml'), registry, ['data.trainLimit=1000', 'data.testLimit=100']));
  const prior = session.parts.model.prior;
  // warm-up: compiles every kernel the draw uses
  tf.dispose(prior.sample(4, Rng.derive(0, 'warm'), null));
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    const codes = prior.sample(n, Rng.derive(1, 'draw', r), null);
    await codes.data();
    times.push((performance.now() - t0) / 1000);
    codes.dispose();
  }
  process.stdout.write(`RESULT ${JSON.stringify({ backend: backend.name, times })}\n`);
}

const TWIN = `
import importlib.util, json, sys, time, torch
spec = importlib.util.spec_from_file_location("tv", sys.argv[1]); tv = importlib.util.module_from_spec(spec); spec.loader.exec_module(tv)
torch.set_num_threads(1); torch.manual_seed(0)
m = tv.GatedPixelCNN(n_layers=8, ch=64, first_k=7).eval()
m.sample(4, gen=torch.Generator().manual_seed(0))
times = []
for r in range(int(sys.argv[3])):
    t0 = time.perf_counter(); m.sample(int(sys.argv[2]), gen=torch.Generator().manual_seed(r)); times.append(time.perf_counter() - t0)
print("RESULT " + json.dumps({"backend": "torch " + torch.__version__, "times": times}))
`;

function parse(out: string, who: string): { backend: string; times: number[] } {
  const line = out.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) throw new Error(`${who} printed no RESULT line:\n${out}`);
  return JSON.parse(line.slice(7));
}

async function main(): Promise<void> {
  const n = Number(arg('--n', '64'));
  const reps = Number(arg('--reps', '5'));
  if (process.argv.includes('--child')) return child(n, reps);
  const variants = path.resolve(arg('--variants-script', process.env.VAELAB_TORCH_VARIANTS ?? path.join(REPO, '..', 'shared', 'peers', 'torch_variants.py')));
  const ours = spawnSync('taskset', ['-c', '0', process.execPath, '-r', 'ts-node/register/transpile-only', __filename, '--child', '--n', String(n), '--reps', String(reps)], { cwd: REPO, encoding: 'utf8' });
  const a = parse(ours.stdout + ours.stderr, 'vaelab');
  const twin = spawnSync('taskset', ['-c', '0', '/usr/bin/python3', '-c', TWIN, variants, String(n), String(reps)], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' } });
  const b = parse(twin.stdout + twin.stderr, 'PyTorch twin');
  const fmt = (t: number[]) => `${median(t).toFixed(2)} s (min ${Math.min(...t).toFixed(2)}, max ${Math.max(...t).toFixed(2)})`;
  console.log(`sampling ${n} grids of 7x7 codes, ${reps} draws each, one core`);
  console.log(`| side | backend | time per draw, median |\n|---|---|---|`);
  console.log(`| vaelab | ${a.backend} | ${fmt(a.times)} |`);
  console.log(`| PyTorch twin | ${b.backend} | ${fmt(b.times)} |`);
  console.log(`ratio (ours / PyTorch, medians): ${(median(a.times) / median(b.times)).toFixed(2)}x the twin's time (target <= 2)`);
  console.log(`load average at end: ${require('node:os').loadavg().map((x: number) => x.toFixed(2)).join(' ')}`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
