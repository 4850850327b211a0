import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, Rng, experimentFromObject } from '../../core';
import { buildParts, describeConformance, experimentObject, expectThrowExact, registryOf, TINY_IMAGE_INFO } from '../../testing';
import { bernoulliLikelihood } from './bernoulli.likelihood';
import { gaussianLikelihood } from './gaussian.likelihood';

const softplus = (l: number) => Math.log1p(Math.exp(l));

describe('bernoulli likelihood', () => {
  describeConformance(bernoulliLikelihood, [{}]);
  const lik = () => buildParts().model.likelihood;

  it('Should give log p = x * l - softplus(l) for known values, stably at extreme logits', () => {
    const x = tf.tensor2d([[1, 0, 0.3, 1, 0]]);
    const l = tf.tensor2d([[0, 0, -1, 100, 100]]);
    // log 0.5 + log 0.5 + (0.3 * -1 - softplus(-1)) + (100 - softplus(100) = ~0) + (-softplus(100) = -100)
    const expected = 2 * Math.log(0.5) + (-0.3 - softplus(-1)) + 0 - 100;
    expect(lik().logProb(x, l).dataSync()[0]).to.be.closeTo(expected, 1e-4);
  });

  it('Should give sigmoid(l) as the mean and samples whose frequency matches it within 4 standard errors', () => {
    const l = tf.fill([20000, 2], 0.4) as tf.Tensor2D;
    const p = 1 / (1 + Math.exp(-0.4));
    expect(lik().mean(tf.tensor2d([[0.4]])).dataSync()[0]).to.be.closeTo(p, 1e-6);
    const freq = tf.mean(lik().sample(l, Rng.derive(0, 'bern'))).dataSync()[0];
    expect(Math.abs(freq - p)).to.be.below(4 * Math.sqrt((p * (1 - p)) / 40000));
  });
});

describe('gaussian likelihood', () => {
  const over = (g: Record<string, unknown>) => ({ likelihood: { use: 'gaussian', gaussian: g } });
  describeConformance(gaussianLikelihood, [
    // With sigma = 1 on data in [0, 1], 0.92 nats per dimension of log(sqrt(2 pi)) dominate the
    // loss and no fit can take a fifth off it, so the fixed scale is checked at sigma = 0.2.
    { config: { scale: 'fixed', fixedScale: 0.2 } },
    { config: { scale: 'shared' } },
    { config: { scale: 'learned', meanActivation: 'sigmoid' } },
  ]);

  it('Should give -0.5 log(2 pi) - log sigma per dimension at x = loc, and the quadratic term off it', () => {
    const lik = buildParts(over({ scale: 'fixed', fixedScale: 2 })).model.likelihood;
    const d = TINY_IMAGE_INFO.dim;
    const loc = tf.fill([1, d], 0.5) as tf.Tensor2D;
    const atLoc = -d * (0.5 * Math.log(2 * Math.PI) + Math.log(2));
    expect(lik.logProb(loc, loc).dataSync()[0]).to.be.closeTo(atLoc, 1e-3);
    // one dimension off by 1 with sigma 2 adds -0.5 * (1/2)^2 = -0.125
    const x = loc.arraySync()[0].slice();
    x[0] += 1;
    expect(lik.logProb(tf.tensor2d([x]), loc).dataSync()[0]).to.be.closeTo(atLoc - 0.125, 1e-3);
  });

  it('Should read decoder output as [loc, logScale] pairs per dimension when the scale is learned', () => {
    const lik = buildParts(over({ scale: 'learned' })).model.likelihood;
    expect(lik.paramsPerDim).to.equal(2);
    const d = TINY_IMAGE_INFO.dim;
    const params = new Float32Array(2 * d);
    for (let i = 0; i < d; i++) {
      params[2 * i] = 0.25; // loc
      params[2 * i + 1] = Math.log(0.5); // log sigma
    }
    const p = tf.tensor2d(params, [1, 2 * d]);
    expect(lik.mean(p).dataSync()[5]).to.be.closeTo(0.25, 1e-6);
    const expected = -d * (0.5 * Math.log(2 * Math.PI) + Math.log(0.5));
    expect(lik.logProb(tf.fill([1, d], 0.25) as tf.Tensor2D, p).dataSync()[0]).to.be.closeTo(expected, 1e-3);
  });

  it('Should reject an unknown scale mode with the allowed values', () => {
    expectThrowExact(
      () => experimentFromObject(experimentObject(over({ scale: 'learnt' })), registryOf()),
      ConfigError,
      'likelihood.gaussian.scale: must be one of "fixed", "shared", "learned"; got "learnt". Did you mean "learned"?',
    );
  });
});
