/**
 * core/nn.ts tanh (2 sigmoid(2x) - 1 with the gradient dy (1 - y^2)) against the definition:
 * values against Math.tanh in float64 over [-20, 20], exact saturation, and the gradient against
 * 1 - tanh(x)^2 and against tfjs's own Tanh gradient; on the cpu backend and on wasm.
 */
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import '../core';
import { tanh } from '../core/nn';

const xs = Array.from({ length: 4001 }, (_, i) => -20 + i * 0.01);

function check(): void {
  const x = tf.tensor1d(xs);
  const y = tanh(x).dataSync();
  let worst = 0;
  xs.forEach((v, i) => (worst = Math.max(worst, Math.abs(y[i] - Math.tanh(v)))));
  // float32 carries ~6e-8 relative precision near 1; the sigmoid form adds its own rounding
  expect(worst).to.be.below(3e-7);
  expect(Array.from(tanh(tf.tensor1d([-60, -30, 30, 60])).dataSync())).to.deep.equal([-1, -1, 1, 1]);
  expect(tanh(tf.tensor1d([0])).dataSync()[0]).to.equal(0);
  const ws = xs.map((_, i) => 1 + i / (xs.length - 1));
  const w = tf.tensor1d(ws);
  const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tanh(t), w)))(x).dataSync();
  const ref = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.tanh(t), w)))(x).dataSync();
  let gWorst = 0;
  xs.forEach((v, i) => {
    gWorst = Math.max(gWorst, Math.abs(g[i] - ws[i] * (1 - Math.tanh(v) ** 2)), Math.abs(g[i] - ref[i]));
  });
  expect(gWorst).to.be.below(1e-6);
  tf.dispose([x, w]);
}

describe('tanh (core/nn.ts)', () => {
  it('Should equal tanh and its gradient to float32 rounding on the cpu backend', () => {
    check();
  });

  it('Should equal tanh and its gradient to float32 rounding on the wasm backend', async () => {
    await tf.setBackend('wasm');
    try {
      check();
    } finally {
      await tf.setBackend('cpu');
    }
  });
});
