/**
 * Benchmark: matMul and conv backprop on the wasm backend, stock kernels vs the kernels of
 * core/backend/wasm-kernels.ts. Prints median milliseconds; never fails on speed.
 *
 *   npx ts-node --transpile-only bench/matmul.ts [--runs 10]
 *
 * Shapes: a dense layer at batch 128 (128 x 784 x 512) and the conv VAE's two stride-2 layers at
 * batch 128 (28x28x1 -> 14x14x32 and 14x14x32 -> 7x7x64, kernel 4, 'same').
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { installWasmKernels } from '../core/backend/wasm-kernels';
import { Rng } from '../core/rng';

interface Case {
  name: string;
  /** Floating-point operations of one run, for the GFLOP/s column. */
  flops: number;
  run: () => tf.Tensor;
}

const runsArg = process.argv.indexOf('--runs');
const RUNS = Math.max(10, runsArg >= 0 ? Number(process.argv[runsArg + 1]) : 10);

function normal(seed: number, shape: number[]): tf.Tensor {
  return new Rng(seed).normalTensor(shape);
}

const SWAPPED = ['BatchMatMul', '_FusedMatMul', 'Conv2DBackpropFilter', 'Conv2DBackpropInput'];
type KernelSet = Map<string, tf.KernelConfig | undefined>;

function currentKernels(): KernelSet {
  return new Map(SWAPPED.map((name) => [name, tf.getKernel(name, 'wasm')]));
}

/** Registers one set of kernels for 'wasm' (stock or vaelab); a missing entry stays unregistered. */
function useKernels(set: KernelSet): void {
  for (const name of SWAPPED) {
    if (tf.getKernel(name, 'wasm') !== undefined) tf.unregisterKernel(name, 'wasm');
    const config = set.get(name);
    if (config !== undefined) tf.registerKernel(config);
  }
}

function timeOnce(run: () => tf.Tensor): number {
  const t0 = performance.now();
  const out = run();
  out.dataSync();
  const ms = performance.now() - t0;
  out.dispose();
  return ms;
}

function median(times: number[]): number {
  const sorted = [...times].sort((x, y) => x - y);
  return sorted[Math.floor(sorted.length / 2)];
}

/**
 * Median ms of `RUNS` runs with each kernel set, runs interleaved (stock, vaelab, vaelab, stock, ...)
 * so that load from other processes and CPU clock changes hit both alike. Each set is warmed up
 * first (at least 3 runs and 0.3 s). A set that cannot run the op reports the reason instead.
 */
function compare(c: Case, sets: KernelSet[]): Array<number | string> {
  const times: number[][] = sets.map(() => []);
  const failed: Array<string | null> = sets.map(() => null);
  sets.forEach((set, i) => {
    useKernels(set);
    try {
      const warmEnd = performance.now() + 300;
      for (let k = 0; k < 3 || performance.now() < warmEnd; k++) timeOnce(c.run);
    } catch (err) {
      const msg = (err as Error).message;
      failed[i] = /not registered/.test(msg) ? 'not registered' : `error: ${msg.split('\n')[0]}`;
    }
  });
  for (let r = 0; r < RUNS; r++) {
    // Alternate which set goes first, so neither always runs right after the other.
    const order = sets.map((_, i) => i);
    if (r % 2 === 1) order.reverse();
    for (const i of order) {
      if (failed[i] !== null) continue;
      useKernels(sets[i]);
      times[i].push(timeOnce(c.run));
    }
  }
  return sets.map((_, i) => failed[i] ?? median(times[i]));
}

function cell(v: number | string | undefined, width: number): string {
  const text = typeof v === 'number' ? v.toFixed(2) : (v ?? '-');
  return text.padStart(width);
}

async function main(): Promise<void> {
  if (!(await tf.setBackend('wasm'))) throw new Error('bench/matmul: the wasm backend failed to initialise');
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');

  const a = normal(1, [128, 784]);
  const b = normal(2, [784, 512]);
  const aT = normal(3, [784, 128]);
  const bT = normal(4, [512, 784]);
  const a3 = normal(5, [4, 128, 784]);
  const dense = 2 * 128 * 784 * 512;

  const x1 = normal(6, [128, 28, 28, 1]) as tf.Tensor4D;
  const dy1 = normal(7, [128, 14, 14, 32]) as tf.Tensor4D;
  const f1 = normal(8, [4, 4, 1, 32]) as tf.Tensor4D;
  const x2 = normal(9, [128, 14, 14, 32]) as tf.Tensor4D;
  const dy2 = normal(10, [128, 7, 7, 64]) as tf.Tensor4D;
  const f2 = normal(11, [4, 4, 32, 64]) as tf.Tensor4D;
  const conv1 = 2 * 128 * 14 * 14 * 32 * 4 * 4 * 1;
  const conv2 = 2 * 128 * 7 * 7 * 64 * 4 * 4 * 32;
  const filterGrad = (x: tf.Tensor4D, dy: tf.Tensor4D, f: tf.Tensor4D) => () =>
    tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, {
      strides: [2, 2], pad: 'same', dataFormat: 'NHWC', filterShape: f.shape,
    } as unknown as tf.NamedAttrMap) as tf.Tensor;

  const cases: Case[] = [
    { name: 'matMul 128x784x512', flops: dense, run: () => tf.matMul(a, b) },
    { name: 'matMul transposeA', flops: dense, run: () => tf.matMul(aT, b, true, false) },
    { name: 'matMul transposeB', flops: dense, run: () => tf.matMul(a, bT, false, true) },
    { name: 'matMul transposeA+B', flops: dense, run: () => tf.matMul(aT, bT, true, true) },
    { name: 'matMul [4,128,784] x [784,512]', flops: 4 * dense, run: () => tf.matMul(a3, b) },
    { name: 'conv2d 28x28x1->14x14x32', flops: conv1, run: () => tf.conv2d(x1, f1, 2, 'same') },
    { name: 'conv2DBackpropFilter 28x28x1->14x14x32', flops: conv1, run: filterGrad(x1, dy1, f1) },
    { name: 'conv2dTranspose 14x14x32->28x28x1', flops: conv1, run: () => tf.conv2dTranspose(dy1, f1, [128, 28, 28, 1], 2, 'same') },
    { name: 'conv2d 14x14x32->7x7x64', flops: conv2, run: () => tf.conv2d(x2, f2, 2, 'same') },
    { name: 'conv2DBackpropFilter 14x14x32->7x7x64', flops: conv2, run: filterGrad(x2, dy2, f2) },
    { name: 'conv2dTranspose 7x7x64->14x14x32', flops: conv2, run: () => tf.conv2dTranspose(dy2, f2, [128, 14, 14, 32], 2, 'same') },
  ];

  // The first calls run un-optimised wasm code (tiered compilation): warm up before timing.
  const warmEnd = performance.now() + 1000;
  while (performance.now() < warmEnd) tf.matMul(a, b).dispose();

  const stock = currentKernels();
  const installed = installWasmKernels();
  const vaelab = currentKernels();

  console.log(`wasm backend, tfjs-backend-wasm 4.22.0, ${simd ? 'SIMD' : 'no SIMD'}, median of ${RUNS} interleaved runs (ms)`);
  console.log(`vaelab kernels: ${installed.join(', ')}`);
  const w = Math.max(...cases.map((c) => c.name.length));
  console.log(`${'op'.padEnd(w)}  ${'stock'.padStart(14)}  ${'vaelab'.padStart(9)}  ${'speed-up'.padStart(8)}  ${'GFLOP/s'.padStart(7)}`);
  for (const c of cases) {
    const [s, v] = compare(c, [stock, vaelab]);
    const speedUp = typeof s === 'number' && typeof v === 'number' ? `${(s / v).toFixed(1)}x` : '-';
    const gflops = typeof v === 'number' ? (c.flops / v / 1e6).toFixed(1) : '-';
    console.log(`${c.name.padEnd(w)}  ${cell(s, 14)}  ${cell(v, 9)}  ${speedUp.padStart(8)}  ${gflops.padStart(7)}`);
  }
  useKernels(vaelab);
  tf.dispose([a, b, aT, bT, a3, x1, dy1, f1, x2, dy2, f2]);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
