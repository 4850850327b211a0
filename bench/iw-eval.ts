/**
 * Benchmark: the importance-weighted log-likelihood evaluation (core/eval/evaluate.ts,
 * iwLogLikelihood) of the 784-400-20 MLP VAE of experiments/vae-mnist.yaml (weights as
 * initialised with seed 0: the speed does not depend on them) on the first `--n` MNIST test
 * images with `--k` importance samples each, drawn `--chunk` at a time (eval.iwChunk), on the wasm
 * backend (with the native pack when it is built; VAELAB_NATIVE=0 for pure wasm). Prints
 * importance samples per second, wall and CPU time, peak RSS and the estimate; never fails on speed.
 *
 *   taskset -c 0 npx ts-node --transpile-only bench/iw-eval.ts [--k 1000] [--n 1000] [--chunk 100]
 *     [--warmup 1] [--profile]
 *
 * `--warmup N` first runs the evaluation on N images (untimed: the first calls run un-optimised
 * wasm code). `--profile` adds a per-kernel breakdown of one evaluation of min(n, 100) images
 * (tf.profile; kernel times are wall times, so a host-side cost shows as the gap to the total).
 */
import 'reflect-metadata';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs';
import { selectBackend } from '../core/backend/select';
import { loadMnist } from '../core/data/mnist';
import { iwLogLikelihood, type EvalContext } from '../core/eval/evaluate';
import { MNIST_INFO, buildParts } from '../test/kits/build';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? Number(process.argv[i + 1]) : fallback;
}

async function main(): Promise<void> {
  const k = arg('--k', 1000);
  const n = arg('--n', 1000);
  const chunk = arg('--chunk', 100);
  const warmup = arg('--warmup', 1);
  let backendLine = '';
  await selectBackend('wasm', { log: (l) => (backendLine = l) });
  const parts = buildParts(
    {
      seed: 0,
      encoder: { use: 'mlp', mlp: { hiddenSizes: [400], activation: 'relu' } },
      latent: { use: 'gaussian', gaussian: { dim: 20 } },
      decoder: { use: 'mlp', mlp: { hiddenSizes: [400], activation: 'relu' } },
      likelihood: { use: 'bernoulli' },
    },
    MNIST_INFO,
  );
  const test = loadMnist({ dir: '', trainLimit: 1, testLimit: n }).test;
  const split = { x: test.x.subarray(0, n * 784), labels: test.labels.subarray(0, n), n };
  const ctx: EvalContext = {
    info: { ...MNIST_INFO, kind: 'image' } as EvalContext['info'],
    seed: 0,
    condition: { use: 'none', visibleQuadrants: [0], hiddenValue: -1 },
    stream: 'bench/iw',
    batchSize: 128,
    step: 0,
  };
  const head = (m: number) => ({ x: split.x.subarray(0, m * 784), labels: split.labels.subarray(0, m), n: m });
  if (warmup > 0) iwLogLikelihood(parts.model, head(Math.min(warmup, n)), ctx, k, chunk);
  const tensorsBefore = tf.memory().numTensors;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const iw = iwLogLikelihood(parts.model, split, ctx, k, chunk);
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const cpuS = (cpu.user + cpu.system) / 1e6;
  console.log(backendLine);
  console.log(
    `iw-eval k=${k} n=${n} chunk=${chunk}: ${wall.toFixed(2)} s wall, ${cpuS.toFixed(2)} s cpu (share ${(cpuS / wall).toFixed(2)}), ` +
      `${Math.round((k * n) / wall)} samples/s, peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB, ` +
      `estimate ${iw.mean.toFixed(4)}, tensors leaked ${tf.memory().numTensors - tensorsBefore}`,
  );
  if (process.argv.includes('--profile')) {
    const m = Math.min(n, 100);
    const t1 = Date.now();
    const prof = await tf.profile(() => {
      iwLogLikelihood(parts.model, head(m), ctx, k, chunk);
    });
    const total = Date.now() - t1;
    const by = new Map<string, { ms: number; calls: number }>();
    for (const kr of prof.kernels) {
      const e = by.get(kr.name) ?? { ms: 0, calls: 0 };
      e.ms += kr.kernelTimeMs as number;
      e.calls++;
      by.set(kr.name, e);
    }
    const rows = [...by.entries()].sort((a, b) => b[1].ms - a[1].ms);
    const sum = rows.reduce((s, [, e]) => s + e.ms, 0);
    console.log(`profile of ${m} images (${(k * m) / 1000}k samples): ${total} ms in all (profiler on), ${sum.toFixed(0)} ms in kernels`);
    for (const [name, e] of rows) console.log(`  ${name.padEnd(28)} ${e.ms.toFixed(1).padStart(8)} ms  ${String(e.calls).padStart(5)} calls`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
