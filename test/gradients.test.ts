/**
 * core/gradients.ts: the Sum and Mean gradients against the values they must give (dy spread
 * over the reduced axes; divided by the count for Mean, rounded once to float32), on cpu and wasm.
 */
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { installGradients } from '../core/gradients';
import { selectBackend } from '../core/backend/select';
import { Data } from './kits/backends';

/** Row-major strides of a shape. */
function strides(shape: number[]): number[] {
  const out = shape.map(() => 1);
  for (let i = shape.length - 2; i >= 0; i--) out[i] = out[i + 1] * shape[i + 1];
  return out;
}

/** The expected gradient: for each element of x, dy at its position with the reduced axes dropped, / n for a mean. */
function expected(shape: number[], axes: number[], dy: Float32Array, mean: boolean): number[] {
  const keep = shape.map((_, i) => (axes.includes(i) ? 1 : shape[i]));
  const xs = strides(shape);
  const ks = strides(keep);
  const n = axes.reduce((p, a) => p * shape[a], 1);
  const size = shape.reduce((p, s) => p * s, 1);
  const out: number[] = [];
  for (let flat = 0; flat < size; flat++) {
    let k = 0;
    for (let d = 0; d < shape.length; d++) {
      const i = Math.floor(flat / xs[d]) % shape[d];
      if (!axes.includes(d)) k += i * ks[d];
    }
    out.push(mean ? Math.fround(dy[k] / n) : dy[k]);
  }
  return out;
}

describe('core/gradients: Sum and Mean gradients made on the backend', () => {
  after(async () => {
    await tf.setBackend('cpu');
  });

  it('Should be registered for Sum and Mean, and upload no array from JavaScript in the backward pass', async () => {
    expect(installGradients()).to.deep.equal(['Sum', 'Mean', 'Relu', 'VaelabBernoulliLogProb', 'VaelabBiasRelu', 'VaelabKlStdNormal', 'VaelabReparam', 'VaelabReparamLogProb', 'VaelabDense', 'Tile', 'VaelabBatchNorm', 'LeakyRelu']);
    await selectBackend('wasm', { quiet: true });
    const x = tf.tensor2d(new Data(3, [128, 784]).values, [128, 784]);
    const backend = tf.backend() as unknown as { write: (values: ArrayLike<number> | null, ...rest: unknown[]) => unknown };
    const write = backend.write;
    const uploads: number[] = [];
    backend.write = function (this: unknown, values, ...rest) {
      uploads.push(values === null ? 0 : values.length);
      return write.call(this, values, ...rest);
    };
    try {
      // tfjs's own gradients uploaded ones(x.shape) here: a 100 352-float array per call.
      tf.tidy(() => tf.grad((t: tf.Tensor) => tf.mean(tf.sum(t, 1)))(x));
    } finally {
      backend.write = write;
      x.dispose();
    }
    expect(uploads.filter((n) => n > 1)).to.deep.equal([]);
  });

  for (const backend of ['cpu', 'wasm']) {
    const shape = [3, 4, 5];
    const cases: Array<[string, number | number[] | undefined, boolean]> = [
      ['all axes', undefined, false],
      ['axis 0', 0, false],
      ['axes [1, 2] keeping dims', [1, 2], true],
      ['axis -1', -1, false],
    ];
    for (const [label, axis, keepDims] of cases) {
      for (const op of ['sum', 'mean'] as const) {
        it(`Should spread dy over the reduced axes for ${op} over ${label} on ${backend}`, async () => {
          await selectBackend(backend, { quiet: true });
          const axes = axis === undefined ? [0, 1, 2] : (Array.isArray(axis) ? axis : [axis]).map((a) => (a < 0 ? a + 3 : a));
          const outShape = keepDims ? shape.map((s, i) => (axes.includes(i) ? 1 : s)) : shape.filter((_, i) => !axes.includes(i));
          const x = new Data(1, shape);
          const dy = new Data(2, outShape);
          const g = tf.tidy(() => {
            const f = (t: tf.Tensor) => (op === 'sum' ? tf.sum(t, axis, keepDims) : tf.mean(t, axis, keepDims));
            return tf.grad(f)(x.t(), dy.t());
          });
          expect(g.shape).to.deep.equal(shape);
          expect(Array.from(g.dataSync())).to.deep.equal(expected(shape, axes, dy.values, op === 'mean'));
          g.dispose();
        });
      }
    }
  }
});

describe('core/gradients: Tile', () => {
  after(async () => {
    await tf.setBackend('cpu');
  });

  // d/dx sum(tile(x, reps) * r) = the sum of the blocks of r that each copy of x met.
  const cases: Array<[number[], number[]]> = [
    [[3], [4]],
    [[2, 3], [5, 1]],
    [[2, 3], [1, 2]],
    [[2, 2, 3], [2, 3, 2]],
    [[4, 1], [1, 1]],
  ];
  for (const backend of ['cpu', 'wasm']) {
    for (const [shape, reps] of cases) {
      it(`Should give the sum of r's blocks for x ${JSON.stringify(shape)} tiled ${JSON.stringify(reps)} on ${backend}`, async () => {
        await selectBackend(backend, { quiet: true });
        const x = new Data(5, shape);
        const outShape = shape.map((d, i) => d * reps[i]);
        const r = new Data(6, outShape);
        const g = tf.tidy(() => tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.tile(t, reps), r.t())))(x.t()).dataSync());
        // By hand: every output index o maps to the input index (o_i mod d_i) of each axis.
        const expected = new Float64Array(g.length);
        const strides = (s: number[]) => s.map((_, i) => s.slice(i + 1).reduce((p, d) => p * d, 1));
        const so = strides(outShape);
        const si = strides(shape);
        for (let o = 0; o < r.values.length; o++) {
          let rest = o;
          let inIndex = 0;
          for (let i = 0; i < shape.length; i++) {
            const oi = Math.floor(rest / so[i]);
            rest -= oi * so[i];
            inIndex += (oi % shape[i]) * si[i];
          }
          expected[inIndex] += r.values[o];
        }
        Array.from(g).forEach((v, i) => expect(v).to.be.closeTo(expected[i], 1e-5));
      });
    }
  }
});
