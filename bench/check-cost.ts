/**
 * What the kernels' input checks (core/backend/wasm-kernels.ts: checkMatMul, checkConv2D, ...)
 * cost per training step: the time of one call of each check on the shapes of the MLP and conv
 * VAEs of experiments/ at batch 128, the number of checked kernel calls in one training step
 * (tf.profile of the step on wasm, with the native pack when it is built), and the step's wall
 * time. Prints figures; never fails on speed.
 *
 *   npx ts-node --transpile-only bench/check-cost.ts
 */
import 'reflect-metadata';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs';
import type { TensorInfo } from '@tensorflow/tfjs-core';
import { selectBackend } from '../core/backend/select';
import {
  checkConv2D, checkConv2DBackpropFilter, checkConv2DBackpropInput, checkConvBias, checkFusedMatMulExtras, checkMatMul,
} from '../core/backend/wasm-kernels';
import '../core/gradients';
import { Rng } from '../core/rng';
import { Adam, clipByGlobalNorm } from '../core/train/adam';
import { trainableVariables } from '../core/train/trainer';
import { MNIST_INFO, buildParts, greyBatch } from '../test/kits/build';

const info = (shape: number[]): TensorInfo => ({ dataId: {}, shape, dtype: 'float32' });

/** ns per call of `fn`, the least of 5 rounds of `n` calls. */
function nsPerCall(fn: () => unknown, n = 200000): number {
  let best = Infinity;
  for (let round = 0; round < 5; round++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn();
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / n);
  }
  return best;
}

/** The kernels whose checks run, by kernel name. */
const CHECKED = new Set(['BatchMatMul', '_FusedMatMul', 'Conv2D', 'FusedConv2D', 'Conv2DBackpropFilter', 'Conv2DBackpropInput', 'Add', 'Relu', 'Sum', 'Cast']);

async function main(): Promise<void> {
  const conv = { strides: 2 as const, pad: 'same' as const, dataFormat: 'NHWC', dilations: 1 as const };
  const costs: Array<[string, number]> = [
    ['checkMatMul [128,784] x [784,400]', nsPerCall(() => checkMatMul('matMul', info([128, 784]), info([784, 400]), false, false))],
    ['checkMatMul [128,400]ᵀ x [128,784] (a weight gradient)', nsPerCall(() => checkMatMul('matMul', info([128, 400]), info([128, 784]), true, false))],
    ['checkMatMul + checkFusedMatMulExtras, rank 3 with bias', nsPerCall(() => {
      const shape = checkMatMul('fused matMul', info([1, 128, 784]), info([1, 784, 400]), false, false);
      checkFusedMatMulExtras({ bias: info([400]) }, 'relu', shape);
    })],
    ['checkConv2D + checkConvBias [128,28,28,1] * [4,4,1,32] s2', nsPerCall(() => checkConvBias(info([32]), checkConv2D('conv2d', info([128, 28, 28, 1]), info([4, 4, 1, 32]), conv).outChannels))],
    ['checkConv2DBackpropFilter [128,14,14,32] -> [4,4,32,64]', nsPerCall(() => checkConv2DBackpropFilter(info([128, 14, 14, 32]), info([128, 7, 7, 64]), { ...conv, filterShape: [4, 4, 32, 64] }))],
    ['checkConv2DBackpropInput [128,7,7,64] -> [128,14,14,32]', nsPerCall(() => checkConv2DBackpropInput(info([128, 7, 7, 64]), info([4, 4, 32, 64]), { ...conv, inputShape: [128, 14, 14, 32] }))],
  ];
  console.log('one call of each check (least of 5 rounds of 200 000 calls):');
  for (const [what, ns] of costs) console.log(`  ${what.padEnd(58)} ${ns.toFixed(0).padStart(5)} ns`);
  // ns per call by kernel: the matMul checks' dearer form for the products; the conv checks
  // (which include computeConv2DInfo, which these kernels computed before they had checks too);
  // the rest (Add, Cast, Relu, Sum: one dtype comparison; the fused kernels: a few shape
  // comparisons) at the matMul check's cost, an overestimate.
  const matMul = Math.max(costs[0][1], costs[1][1], costs[2][1]);
  const perKernel = (name: string): number =>
    name === 'Conv2D' || name === 'FusedConv2D' ? costs[3][1] : name === 'Conv2DBackpropFilter' ? costs[4][1] : name === 'Conv2DBackpropInput' ? costs[5][1] : matMul;

  const backend = await selectBackend('wasm', { quiet: true });
  console.log(`\nbackend: ${backend.detail}`);
  const models: Record<string, Record<string, unknown>> = {
    mlp: {
      encoder: { use: 'mlp', mlp: { hiddenSizes: [400], activation: 'relu' } },
      latent: { use: 'gaussian', gaussian: { dim: 20 } },
      decoder: { use: 'mlp', mlp: { hiddenSizes: [400], activation: 'relu' } },
    },
    conv: {
      encoder: { use: 'conv', conv: { channels: [32, 64], kernelSize: 4, activation: 'relu' } },
      latent: { use: 'gaussian', gaussian: { dim: 16 } },
      decoder: { use: 'conv', conv: { channels: [64, 32], kernelSize: 4, activation: 'relu' } },
    },
  };
  for (const [name, slots] of Object.entries(models)) {
    const parts = buildParts({ seed: 0, ...slots }, MNIST_INFO);
    const vars = trainableVariables(parts.model, parts.objective);
    const list = [...vars.values()];
    const keyOf = new Map([...vars.entries()].map(([k, v]) => [v.name, k]));
    const adam = new Adam(vars, { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 });
    const batch = greyBatch(128, MNIST_INFO, 1);
    const step = (s: number) => {
      const { value, grads } = tf.variableGrads(
        () => tf.mean(parts.objective.terms(batch, { training: true, rng: Rng.derive(0, 'bench', s), step: s }).loss) as tf.Scalar,
        list,
      );
      const byKey = new Map<string, tf.Tensor>();
      for (const [n, g] of Object.entries(grads)) byKey.set(keyOf.get(n)!, g);
      const clipped = clipByGlobalNorm(byKey, 0);
      adam.apply(clipped.grads, 1e-3);
      value.dataSync();
      tf.dispose([value, clipped.norm, ...byKey.values()]);
    };
    for (let s = 0; s < 10; s++) step(s);
    const times: number[] = [];
    for (let s = 10; s < 30; s++) {
      const t0 = process.hrtime.bigint();
      step(s);
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    times.sort((p, q) => p - q);
    const profile = await tf.profile(() => step(30));
    const counts = new Map<string, number>();
    for (const k of profile.kernels) if (CHECKED.has(k.name) || k.name.startsWith('Vaelab')) counts.set(k.name, (counts.get(k.name) ?? 0) + 1);
    const calls = [...counts.values()].reduce((p, q) => p + q, 0);
    const ns = [...counts].reduce((sum, [k, c]) => sum + c * perKernel(k), 0);
    const median = times[times.length >> 1];
    console.log(`\n${name} VAE, batch 128: median step ${median.toFixed(2)} ms; checked kernel calls per step: ${calls} (${[...counts].map(([k, c]) => `${k} ${c}`).join(', ')})`);
    console.log(`  checks: ~${(ns / 1e3).toFixed(1)} us per step = ${((100 * ns) / 1e6 / median).toFixed(3)} % of the step`);
    adam.dispose();
    for (const v of vars.values()) v.dispose();
    batch.x.dispose();
  }
}

void main();
