/**
 * The Laplace prior's tests: vaelab's public conformance kit (shapes, finiteness, determinism,
 * no leaked tensors, gradients, a short training run), then values derived by hand.
 */
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { Rng, type Prior } from 'vaelab';
import { TINY_IMAGE_INFO, buildParts, describeConformance, disposeParts, slotOf } from 'vaelab/testing';
import { plugins } from '../src/laplace.prior';

const [laplacePrior] = plugins;

describeConformance(laplacePrior, [
  { config: { scale: 1 } },
  { config: { scale: 0.5 }, slots: { latent: { use: 'gaussian', gaussian: { dim: 5 } } } },
]);

describe('LaplacePrior', () => {
  /**
   * f applied to the prior over a latent of `dim` dimensions with scale b, built by vaelab as an
   * experiment would; the model's weights are freed afterwards.
   */
  function withPrior<T>(scale: number, dim: number, f: (prior: Prior) => T): T {
    const parts = buildParts(
      { latent: { use: 'gaussian', gaussian: { dim } }, prior: { use: 'laplace', laplace: { scale } } },
      TINY_IMAGE_INFO,
      { plugins },
    );
    try {
      return f(slotOf(parts, 'prior') as Prior);
    } finally {
      disposeParts(parts);
    }
  }

  // [b, z, log p(z)]: sum_d -log(2b) - |z_d| / b
  const cases: Array<[number, number[], number]> = [
    [0.5, [0, 0], 0], // -2 log(1) - 0
    [1, [1, -1], -2 * Math.log(2) - 2], // -2 log 2 - (1 + 1)
    [2, [4, 0, -2], -3 * Math.log(4) - 3], // -3 log 4 - (2 + 0 + 1)
  ];
  for (const [b, z, expected] of cases) {
    it(`log p(${JSON.stringify(z)}) with b = ${b} is ${expected.toFixed(4)}`, () => {
      const logP = withPrior(b, z.length, (prior) => tf.tidy(() => prior.logProb(tf.tensor2d([z]), null).dataSync()[0]));
      assert.ok(Math.abs(logP - expected) < 1e-5, `got ${logP}`);
    });
  }

  it('Should draw samples with mean 0 and variance 2 b^2 (within 4 standard errors)', () => {
    const b = 0.5;
    const n = 20000;
    const draws = withPrior(b, 1, (prior) => {
      const sample = prior.sample(n, Rng.derive(0, 'laplace-test'), null);
      const values = Array.from(sample.dataSync());
      sample.dispose();
      return values;
    });
    // Inversion on the open interval (-1/2, 1/2): no draw is infinite.
    assert.ok(draws.every(Number.isFinite));
    const mean = draws.reduce((s, v) => s + v, 0) / n;
    const variance = draws.reduce((s, v) => s + (v - mean) ** 2, 0) / n;
    // sd of the mean: sqrt(2 b^2 / n); of the variance: sqrt((E z^4 - (2b^2)^2) / n) = sqrt(20 b^4 / n) (E z^4 = 24 b^4)
    assert.ok(Math.abs(mean) < 4 * Math.sqrt((2 * b * b) / n), `mean ${mean}`);
    assert.ok(Math.abs(variance - 2 * b * b) < 4 * Math.sqrt((20 * b ** 4) / n), `variance ${variance}`);
  });
});
