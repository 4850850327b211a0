import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, Rng, experimentFromObject, type DataInfo } from '../../core';
import { buildParts, describeConformance, experimentObject, expectThrowExact, registryOf } from '../../testing';
import { CategoricalLikelihood, categoricalLikelihood } from './categorical.likelihood';

/** Two pixels side by side: small enough to list every level of one of them. */
const PAIR: DataInfo = { name: 'pair', shape: [1, 2, 1], dim: 2, numClasses: 0, condDim: 0 };
const lik = () => new CategoricalLikelihood(PAIR);

/**
 * Params [1, 2 * 256] for logits `first` of pixel 0 and a pixel 1 certain to be at level 0:
 * logit 100 there and 0 elsewhere, so log p(level 0) = -log(1 + 255 e^-100) = 0 in float32.
 */
function withCertainSecond(first: number[]): tf.Tensor2D {
  const second = Array(256).fill(0);
  second[0] = 100;
  return tf.tensor2d([[...first, ...second]]);
}
/** Rows x = [k/255, 0] for k = 0..255 and params repeated: log p of every level of pixel 0. */
function everyLevel(first: number[]): number[] {
  const x = tf.tensor2d(Array.from({ length: 256 }, (_, k) => [k / 255, 0]));
  const params = tf.tile(withCertainSecond(first), [256, 1]) as tf.Tensor2D;
  return Array.from(lik().logProb(x, params).dataSync());
}

describe('categorical likelihood', () => {
  // 256 outputs per dimension: on 2x2 images (1 024 decoder outputs) rather than the kit's 8x8, so
  // that the 200 training steps take seconds on the cpu backend, not a minute.
  const small: DataInfo = { name: 'tiny-2x2', shape: [2, 2, 1], dim: 4, numClasses: 4, condDim: 0 };
  describeConformance(categoricalLikelihood, [{ info: small }]);

  it('Should have probabilities over the 256 levels that sum to 1 for random logits', () => {
    const rng = Rng.derive(0, 'categorical-sum');
    for (let trial = 0; trial < 3; trial++) {
      const logits = Array.from({ length: 256 }, () => 3 * rng.normal());
      const lp = everyLevel(logits);
      expect(lp.reduce((s, v) => s + Math.exp(v), 0)).to.be.closeTo(1, 1e-5);
    }
  });

  it('Should give log p = log(2/257) for the level with logit log 2 and log(1/257) for the others', () => {
    // softmax of 255 logits 0 and one log 2: 2 / (255 + 2) and 1 / 257
    const logits = Array(256).fill(0);
    logits[51] = Math.log(2);
    const lp = everyLevel(logits);
    expect(lp[51]).to.be.closeTo(Math.log(2 / 257), 1e-5);
    expect(lp[0]).to.be.closeTo(Math.log(1 / 257), 1e-5);
    expect(lp[255]).to.be.closeTo(Math.log(1 / 257), 1e-5);
  });

  it('Should read x as the level round(255 x), and sum over dimensions', () => {
    // uniform logits: -log 256 per pixel whatever the level, 0.1 included (round(25.5) = 26)
    const params = tf.zeros([1, 512]) as tf.Tensor2D;
    expect(lik().logProb(tf.tensor2d([[0.1, 1]]), params).dataSync()[0]).to.be.closeTo(-2 * Math.log(256), 1e-4);
    // logit 5 at level 26 of pixel 0: x = 0.1 and x = 26/255 score the same, x = 25/255 does not
    const first = Array(256).fill(0);
    first[26] = 5;
    const p = withCertainSecond(first);
    const at = (v: number) => lik().logProb(tf.tensor2d([[v, 0]]), p).dataSync()[0];
    expect(at(0.1)).to.be.closeTo(5 - Math.log(255 + Math.exp(5)), 1e-5);
    expect(at(26 / 255)).to.equal(at(0.1));
    expect(at(25 / 255)).to.be.closeTo(-Math.log(255 + Math.exp(5)), 1e-5);
  });

  it('Should give the mean sum_k p_k k/255: 1/2 for uniform logits, 32895/65535 with logit log 2 at level 255', () => {
    const uniform = lik().mean(tf.zeros([1, 512]) as tf.Tensor2D).dataSync();
    // sum_k k / (256 * 255) = 32640 / 65280
    expect(uniform[0]).to.be.closeTo(0.5, 1e-6);
    const logits = Array(256).fill(0);
    logits[255] = Math.log(2);
    // (sum_k k + 255) / (257 * 255) = (32640 + 255) / 65535
    expect(lik().mean(withCertainSecond(logits)).dataSync()[0]).to.be.closeTo(32895 / 65535, 1e-6);
    // the certain pixel 1 sits at level 0
    expect(lik().mean(withCertainSecond(logits)).dataSync()[1]).to.be.closeTo(0, 1e-6);
  });

  it('Should draw levels k/255 whose mean matches the distribution within 4 standard errors', () => {
    // p = 1/4 at level 51 (x = 0.2), 3/4 at level 204 (x = 0.8), e^-30 elsewhere (about 2e-11 in all)
    const logits = Array(256).fill(-30);
    logits[51] = 0;
    logits[204] = Math.log(3);
    const n = 20000;
    const params = tf.tile(withCertainSecond(logits), [n, 1]) as tf.Tensor2D;
    const draws = lik().sample(params, Rng.derive(0, 'categorical-sample')).dataSync();
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const v = draws[2 * i];
      expect(Math.abs(v * 255 - Math.round(v * 255))).to.be.below(1e-4);
      sum += v;
      expect(draws[2 * i + 1]).to.equal(0);
    }
    // mean 0.25 * 0.2 + 0.75 * 0.8 = 0.65; sd sqrt(0.25 * 0.75) * 0.6 = 0.2598
    expect(Math.abs(sum / n - 0.65)).to.be.below((4 * Math.sqrt(0.25 * 0.75) * 0.6) / Math.sqrt(n));
  });

  it('Should refuse vector data when it is built, naming likelihood.use and the data set', () => {
    const vectors: DataInfo = { name: 'synthetic/mixture2d', shape: [1, 1, 2], dim: 2, numClasses: 4, condDim: 0 };
    expectThrowExact(
      () => buildParts({ likelihood: { use: 'categorical' } }, vectors, { plugins: [categoricalLikelihood] }),
      ConfigError,
      'likelihood.use: "categorical" scores 8-bit grey levels of images (x = k/255, k = 0..255); data set "synthetic/mixture2d" is vector data of shape [1, 1, 2]. Use "gaussian" for real-valued vectors',
    );
  });

  it('Should refuse a key, since the schema has none', () => {
    expectThrowExact(
      () =>
        experimentFromObject(
          experimentObject({ likelihood: { use: 'categorical', categorical: { levels: 16 } } }),
          registryOf({ plugins: [categoricalLikelihood] }),
        ),
      ConfigError,
      'likelihood.categorical.levels: not declared in the schema of plugin "categorical" (it has no keys)',
    );
  });
});
