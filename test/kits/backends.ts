/**
 * Helpers of the kernel tests: the same op run on seeded inputs on the cpu backend (reference)
 * and on wasm (with whichever kernels are installed), compared output by output.
 * Tolerance: max |wasm - cpu| <= rtol * max(1, max |cpu|), rtol 1e-4 by default; both are float32
 * sums over at most a few thousand terms, which agree to ~1e-6 relative.
 */
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../../core/rng';

export type Pad = 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];
export type Shape4 = [number, number, number, number];

/** A tensor's shape and values, off any backend. */
export interface Plain {
  shape: number[];
  values: Float32Array;
}

/** Seeded standard normals, kept as plain data so each backend builds its own tensors. */
export class Data {
  readonly values: Float32Array;
  constructor(
    seed: number,
    readonly shape: number[],
  ) {
    this.values = new Rng(seed).fillNormal(new Float32Array(shape.reduce((p, s) => p * s, 1)));
  }
  t(): tf.Tensor {
    return tf.tensor(this.values, this.shape, 'float32');
  }
  t4(): tf.Tensor4D {
    return this.t() as tf.Tensor4D;
  }
}

/** Runs `f` on one backend and returns its outputs as plain arrays. */
export async function on(backend: string, f: () => tf.Tensor | tf.Tensor[]): Promise<Plain[]> {
  await tf.setBackend(backend);
  const result = tf.tidy(f);
  const list = Array.isArray(result) ? result : [result];
  const out = list.map((t) => ({ shape: t.shape, values: t.dataSync() as Float32Array }));
  tf.dispose(list);
  return out;
}

/** max |v| over the values. */
export function maxAbs(values: Float32Array): number {
  let m = 0;
  for (const v of values) m = Math.max(m, Math.abs(v));
  return m;
}

/** Asserts equal shapes and max |a - b| <= rtol * max(1, max |b|). */
export function expectClose(actual: Plain, expected: Plain, what: string, rtol = 1e-4): void {
  expect(actual.shape, `${what}: shape`).to.deep.equal(expected.shape);
  let diff = 0;
  for (let i = 0; i < expected.values.length; i++) diff = Math.max(diff, Math.abs(actual.values[i] - expected.values[i]));
  const bound = rtol * Math.max(1, maxAbs(expected.values));
  expect(diff, `${what}: max abs diff ${diff} over bound ${bound}`).to.be.at.most(bound);
}

/** Same op on cpu (reference) and on wasm, compared output by output. */
export async function expectWasmMatchesCpu(f: () => tf.Tensor | tf.Tensor[], what: string): Promise<void> {
  const expected = await on('cpu', f);
  const actual = await on('wasm', f);
  expect(actual.length).to.equal(expected.length);
  actual.forEach((a, i) => expectClose(a, expected[i], `${what} [output ${i}]`));
}

/** d/dx and d/dw of sum(conv2d(x, w) * r) for a fixed random r, so that dy = r is not constant. */
export function conv2dGrads(x: Data, w: Data, r: Data, strides: number | [number, number], pad: Pad): () => tf.Tensor[] {
  return () =>
    tf.grads((xt: tf.Tensor, wt: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(xt as tf.Tensor4D, wt as tf.Tensor4D, strides, pad), r.t())))([
      x.t(),
      w.t(),
    ]);
}
