import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, Rng, experimentFromObject, type DataInfo } from '../../core';
import { buildParts, describeConformance, disposeParts, experimentObject, expectThrowExact, registryOf } from '../../testing';
import { maskedBernoulliLikelihood } from './masked-bernoulli.likelihood';

const plugins = [maskedBernoulliLikelihood];
/** 8x8 images, the top half visible (cond), the bottom half the target. */
const QUADRANTS: DataInfo = { name: 'tiny', shape: [8, 8, 1], dim: 64, numClasses: 4, condDim: 64, targetMask: new Float32Array(64).fill(1, 32) };
/** 2x2 images with quadrant 0 visible: pixels 1, 2, 3 are the target. */
const TWO_BY_TWO: DataInfo = { name: 'dots', shape: [2, 2, 1], dim: 4, numClasses: 0, condDim: 4, targetMask: Float32Array.from([0, 1, 1, 1]) };

const likelihoodOf = (info: DataInfo) => {
  const parts = buildParts({ likelihood: { use: 'masked-bernoulli' } }, info, { plugins });
  return { parts, likelihood: parts.model.likelihood };
};
const softplus = (l: number) => Math.log1p(Math.exp(l));

describe('masked-bernoulli likelihood', () => {
  describeConformance(maskedBernoulliLikelihood, [{ title: 'top half visible, bottom half scored', info: QUADRANTS }], { plugins });

  it('Should sum x l - softplus(l) over the hidden pixels only, by hand', () => {
    const { parts, likelihood } = likelihoodOf(TWO_BY_TWO);
    const x = tf.tensor2d([[1, 0, 0.5, 1], [0, 1, 1, 0]]);
    const logits = tf.tensor2d([[2, -1, 0, 3], [-5, 4, 1, 0.5]]);
    const v = likelihood.logProb(x, logits).dataSync();
    // row 0, pixels 1..3: (0 - softplus(-1)) + (0 - log 2) + (3 - softplus(3)); pixel 0 (visible) is not counted
    expect(v[0]).to.be.closeTo(-softplus(-1) - Math.log(2) + 3 - softplus(3), 1e-5);
    // row 1: (4 - softplus(4)) + (1 - softplus(1)) + (0 - softplus(0.5))
    expect(v[1]).to.be.closeTo(4 - softplus(4) + 1 - softplus(1) - softplus(0.5), 1e-5);
    // changing a visible pixel or its logit changes nothing
    const x2 = tf.tensor2d([[0, 0, 0.5, 1], [1, 1, 1, 0]]);
    const l2 = tf.tensor2d([[-9, -1, 0, 3], [7, 4, 1, 0.5]]);
    expect(Array.from(likelihood.logProb(x2, l2).dataSync())).to.deep.equal(Array.from(v));
    tf.dispose([x, logits, x2, l2]);
    disposeParts(parts);
  });

  it('Should give sigmoid(logits) as the mean and Bernoulli draws with that frequency on every pixel (within 4 standard errors)', () => {
    const { parts, likelihood } = likelihoodOf(TWO_BY_TWO);
    const logits = tf.tensor2d([[0, 2, -1, 1]]);
    const p = [0.5, 1 / (1 + Math.exp(-2)), 1 / (1 + Math.exp(1)), 1 / (1 + Math.exp(-1))];
    Array.from(likelihood.mean(logits).dataSync()).forEach((m, d) => expect(m).to.be.closeTo(p[d], 1e-6));
    const n = 20000;
    const tiled = tf.tile(logits, [n, 1]) as tf.Tensor2D;
    const freq = tf.mean(likelihood.sample(tiled, Rng.derive(2, 'mb-draws')), 0).dataSync();
    p.forEach((pd, d) => expect(Math.abs(freq[d] - pd), `pixel ${d}`).to.be.below(4 * Math.sqrt((pd * (1 - pd)) / n)));
    tf.dispose([logits, tiled]);
    disposeParts(parts);
  });

  it('Should refuse data whose conditioning input hides nothing, and an undeclared key, with exact messages', () => {
    expectThrowExact(
      () => likelihoodOf({ ...TWO_BY_TWO, targetMask: undefined }),
      ConfigError,
      'likelihood.use: "masked-bernoulli" scores the part of x that the conditioning input hides, and data.condition hides nothing; set data.condition.use to "visible-quadrants", or use likelihood "bernoulli"',
    );
    expectThrowExact(
      () => experimentFromObject(experimentObject({ likelihood: { use: 'masked-bernoulli', 'masked-bernoulli': { mask: [0] } } }), registryOf({ plugins })),
      ConfigError,
      'likelihood.masked-bernoulli.mask: not declared in the schema of plugin "masked-bernoulli" (it has no keys)',
    );
  });
});
