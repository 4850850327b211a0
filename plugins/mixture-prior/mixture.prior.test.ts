import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, Rng, ShapeError, experimentFromObject, klStdNormal } from '../../core';
import { buildParts, describeConformance, experimentObject, expectThrowExact, pluginGrads, registryOf, greyBatch, TINY_IMAGE_INFO } from '../../testing';
import { mixturePrior, type MixturePrior } from './mixture.prior';

const LOG_2PI = Math.log(2 * Math.PI);
const plugins = [mixturePrior];

/** The parts of the kit's default model with a `dim`-dimensional latent and the mixture prior configured by `cfg`. */
function partsWith(dim: number, cfg: Record<string, unknown>) {
  return buildParts({ latent: { use: 'gaussian', gaussian: { dim } }, prior: { use: 'mixture', mixture: cfg } }, TINY_IMAGE_INFO, { plugins });
}
const priorOf = (dim: number, cfg: Record<string, unknown>) => partsWith(dim, cfg).model.prior as MixturePrior;

/** Sets the mixture by hand: weights pi (softmax of log pi), locs and log-variances [K, D]. */
function setMixture(prior: MixturePrior, weights: number[], loc: number[][], logVar: number[][]): void {
  prior.logits!.assign(tf.tensor1d(weights.map(Math.log)));
  prior.loc.assign(tf.tensor2d(loc));
  prior.logVar.assign(tf.tensor2d(logVar));
}

describe('mixture prior', () => {
  describeConformance(mixturePrior, [
    { title: 'one component, latent dim 2', config: { components: 1 }, slots: { latent: { use: 'gaussian', gaussian: { dim: 2 } } } },
    { title: 'four components spread 2, latent dim 3', config: { components: 4, initScale: 2 } },
  ]);

  it('Should equal the standard-normal prior with K = 1, loc 0 and logVar 0 (log N(0; 0, I) = -1.5 log 2 pi in 3 dims)', () => {
    const mixture = priorOf(3, { components: 1, initScale: 0, initLogVar: 0 });
    expect(Array.from(mixture.loc.dataSync()).every((v) => v === 0)).to.equal(true);
    // one component: its weight is 1, so there are no logits to learn
    expect([...mixture.variables().keys()].sort()).to.deep.equal(['loc', 'logVar']);
    const standard = buildParts({ latent: { use: 'gaussian', gaussian: { dim: 3 } } }).model.prior;
    const z = tf.tensor2d([[0, 0, 0], [1, 2, -0.5], [-3, 0.1, 4]]);
    const m = mixture.logProb(z, null).dataSync();
    const s = standard.logProb(z, null).dataSync();
    // by hand: -0.5 * (|z|^2 + 3 log 2pi): |z|^2 = 0, 5.25, 25.01
    const byHand = [0, 5.25, 25.01].map((r2) => -0.5 * (r2 + 3 * LOG_2PI));
    for (let i = 0; i < 3; i++) {
      expect(m[i]).to.be.closeTo(s[i], 1e-5);
      expect(m[i]).to.be.closeTo(byHand[i], 1e-4);
    }
  });

  it('Should give the log-density of a two-component mixture at a point by hand, and stay finite far from both components', () => {
    const prior = priorOf(1, { components: 2 });
    // pi = [0.25, 0.75]; N(-1, 1) and N(2, 4)
    setMixture(prior, [0.25, 0.75], [[-1], [2]], [[0], [Math.log(4)]]);
    const v = prior.logProb(tf.tensor2d([[0.5], [40]]), null).dataSync();
    // z = 0.5: 0.25 e^{-1.5^2 / 2} / sqrt(2 pi) + 0.75 e^{-1.5^2 / 8} / sqrt(8 pi) = 0.0323794 + 0.1129265 = 0.1453059
    const atHalf = Math.log(0.25 * Math.exp(-1.125) / Math.sqrt(2 * Math.PI) + 0.75 * Math.exp(-0.28125) / Math.sqrt(8 * Math.PI));
    expect(atHalf).to.be.closeTo(Math.log(0.1453059), 1e-6);
    expect(v[0]).to.be.closeTo(atHalf, 1e-5);
    // z = 40: both densities underflow float32 (e^-842.8 and e^-182.4); in log space
    // log 0.25 - 0.5 log 2pi - 41^2 / 2 = -842.805 and log 0.75 - 0.5 log 8pi - 38^2 / 8 = -182.400,
    // so log p = -182.400 + log(1 + e^-660.4) = -182.400
    const far = Math.log(0.75) - 0.5 * Math.log(8 * Math.PI) - (38 * 38) / 8;
    expect(far).to.be.closeTo(-182.39977, 1e-4);
    expect(v[1]).to.be.closeTo(far, 1e-3);
  });

  it('Should give a two-dimensional component the product of its dimensions (K = 2, equal weights)', () => {
    const prior = priorOf(2, { components: 2 });
    // components N([0, 1], diag(1, e)) and N([3, -1], diag(e^-1, 1)), weights 0.5 each
    setMixture(prior, [0.5, 0.5], [[0, 1], [3, -1]], [[0, 1], [-1, 0]]);
    const z = [1, 0];
    // log N_1 = -0.5 (2 log 2pi + 0 + 1 + 1 + 1/e); log N_2 = -0.5 (2 log 2pi - 1 + 0 + 4 e + 1)
    const l1 = -0.5 * (2 * LOG_2PI + 1 + 1 + Math.exp(-1));
    const l2 = -0.5 * (2 * LOG_2PI - 1 + 4 * Math.E + 1);
    const expected = Math.log(0.5 * Math.exp(l1) + 0.5 * Math.exp(l2));
    expect(prior.logProb(tf.tensor2d([z]), null).dataSync()[0]).to.be.closeTo(expected, 1e-5);
  });

  it("Should draw samples with the mixture's mean and variance within 4 standard errors", () => {
    const prior = priorOf(1, { components: 2 });
    setMixture(prior, [0.25, 0.75], [[-1], [2]], [[0], [Math.log(4)]]);
    const n = 20000;
    const s = prior.sample(n, Rng.derive(7, 'mixture-moments'), null);
    expect(s.shape).to.deep.equal([n, 1]);
    const { mean, variance } = tf.moments(s);
    // mean = 0.25 * -1 + 0.75 * 2 = 1.25; E[z^2] = 0.25 * (1 + 1) + 0.75 * (4 + 4) = 6.5, variance = 6.5 - 1.5625 = 4.9375
    const mu = 1.25;
    const sigma2 = 4.9375;
    // fourth central moment: sum_k pi_k (d^4 + 6 d^2 s_k^2 + 3 s_k^4), d = loc_k - mu:
    // 0.25 * (2.25^4 + 6 * 2.25^2 + 3) + 0.75 * (0.75^4 + 6 * 0.75^2 * 4 + 48) = 61.11328
    const mu4 = 0.25 * (2.25 ** 4 + 6 * 2.25 ** 2 + 3) + 0.75 * (0.75 ** 4 + 6 * 0.75 ** 2 * 4 + 48);
    expect(mu4).to.be.closeTo(61.11328, 1e-4);
    expect(Math.abs(mean.dataSync()[0] - mu)).to.be.below(4 * Math.sqrt(sigma2 / n));
    expect(Math.abs(variance.dataSync()[0] - sigma2)).to.be.below(4 * Math.sqrt((mu4 - sigma2 ** 2) / n));
  });

  it('Should draw initial locs from N(0, initScale^2), with logVar = initLogVar and equal weights', () => {
    const k = 2000;
    const prior = priorOf(1, { components: k, initScale: 2, initLogVar: -1 });
    const { mean, variance } = tf.moments(prior.loc);
    // mean 0 within 4 sd / sqrt(k); variance 4 within 4 * 4 * sqrt(2 / k)
    expect(Math.abs(mean.dataSync()[0])).to.be.below((4 * 2) / Math.sqrt(k));
    expect(Math.abs(variance.dataSync()[0] - 4)).to.be.below(4 * 4 * Math.sqrt(2 / k));
    expect(new Set(prior.logVar.dataSync())).to.deep.equal(new Set([-1]));
    expect(new Set(prior.logits!.dataSync())).to.deep.equal(new Set([0]));
  });

  it('Should estimate the KL by Monte Carlo, matching the closed form against N(0, I) when K = 1 (within 5 standard errors)', () => {
    const parts = partsWith(3, { components: 1, initScale: 0 });
    const h = tf.randomUniform([2, 16], -1, 1, 'float32', 3) as tf.Tensor2D;
    const s = 4000;
    const sample = parts.model.latent.sample(h, s, { training: false, rng: Rng.derive(1, 'mixture-kl') });
    const { kl, kind } = parts.model.kl(sample, null);
    expect(kind).to.equal('monte-carlo');
    const exact = klStdNormal(sample.posterior!.loc, sample.posterior!.logVar).dataSync();
    // the standard error of each example's estimate, from the spread of log q - log p over its S draws
    const terms = tf.reshape(tf.sub(sample.logQ, parts.model.logPrior(sample, null)), [s, 2]);
    const sd = tf.moments(terms, 0).variance.sqrt().dataSync();
    const mc = kl.dataSync();
    for (let b = 0; b < 2; b++) expect(Math.abs(mc[b] - exact[b])).to.be.below(5 * (sd[b] / Math.sqrt(s)) + 1e-4);
  });

  it('Should pass a gradient to the logits, locs and log-variances through the ELBO', () => {
    const parts = partsWith(2, { components: 3 });
    const grads = pluginGrads(parts, 'prior', greyBatch(4, TINY_IMAGE_INFO));
    expect([...grads.keys()].sort()).to.deep.equal(['loc', 'logVar', 'logits']);
    for (const [name, g] of grads) {
      expect(g.every(Number.isFinite), name).to.equal(true);
      expect(g.some((v) => v !== 0), name).to.equal(true);
    }
  });

  it('Should name the expected shape when z has the wrong width', () => {
    const prior = priorOf(16, { components: 2 });
    expectThrowExact(
      () => prior.logProb(tf.zeros([32, 8]) as tf.Tensor2D, null),
      ShapeError,
      "MixturePrior.logProb: z must be [N, 16] (the latent's priorDim); got [32, 8]",
    );
  });

  it('Should refuse K = 0, a negative spread and an undeclared key with exact messages', () => {
    const validate = (mixture: Record<string, unknown>) => () =>
      experimentFromObject(experimentObject({ prior: { use: 'mixture', mixture } }), registryOf({ plugins }));
    expectThrowExact(validate({ components: 0 }), ConfigError, 'prior.mixture.components: must be an integer in [1, 2147483647]; got 0');
    expectThrowExact(validate({ initScale: -1 }), ConfigError, 'prior.mixture.initScale: must be a number >= 0; got -1');
    expectThrowExact(
      validate({ component: 4 }),
      ConfigError,
      'prior.mixture.component: not declared in the schema of plugin "mixture" (keys: components, initScale, initLogVar). Did you mean "components"?',
    );
  });
});
