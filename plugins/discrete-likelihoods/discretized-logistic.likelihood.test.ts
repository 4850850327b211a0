import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, Rng, type DataInfo } from '../../core';
import { buildParts, describeConformance, experimentOf, expectThrowExact } from '../../testing';
import { DiscretizedLogisticLikelihood, discretizedLogisticLikelihood } from './discretized-logistic.likelihood';

/** Two pixels side by side. */
const PAIR: DataInfo = { name: 'pair', shape: [1, 2, 1], dim: 2, numClasses: 0, condDim: 0 };
const lik = (components = 1, minLogScale = -7) => new DiscretizedLogisticLikelihood({ components, minLogScale }, PAIR);

// Hand computations in double precision, from the definition of the bins.
const sig = (t: number) => 1 / (1 + Math.exp(-t));
/** One component's probability of level k: CDF differences over [y - 1/255, y + 1/255], y = 2k/255 - 1, edges open. */
function levelProb(k: number, loc: number, scale: number): number {
  const y = (2 * k) / 255 - 1;
  const upper = k === 255 ? 1 : sig((y + 1 / 255 - loc) / scale);
  const lower = k === 0 ? 0 : sig((y - 1 / 255 - loc) / scale);
  return upper - lower;
}
type Mix = { w: number[]; loc: number[]; logScale: number[] };
const mixProb = (k: number, m: Mix) => m.w.reduce((s, w, j) => s + w * levelProb(k, m.loc[j], Math.exp(m.logScale[j])), 0);
const softmax = (v: number[]) => {
  const e = v.map((t) => Math.exp(t - Math.max(...v)));
  return e.map((t) => t / e.reduce((a, b) => a + b, 0));
};

/**
 * Params of one pixel in the plugin's layout ([loc, logScale] for L = 1; [w logits, locs,
 * logScales] for L > 1), followed by a second pixel certain to be at level 0: every component at
 * loc -5, logScale -7, so log P(k = 0) = log sigmoid((-1 + 1/255 + 5) e^7) = log sigmoid(4390) = 0
 * in float32.
 */
function pixelPair(first: { wLogits?: number[]; loc: number[]; logScale: number[] }): number[] {
  const L = first.loc.length;
  const own = L === 1 ? [first.loc[0], first.logScale[0]] : [...(first.wLogits ?? []), ...first.loc, ...first.logScale];
  const certain = L === 1 ? [-5, -7] : [...Array(L).fill(0), ...Array(L).fill(-5), ...Array(L).fill(-7)];
  return [...own, ...certain];
}
/** log p of every level k of pixel 0 (pixel 1 at level 0). [256] */
function everyLevel(L: number, first: { wLogits?: number[]; loc: number[]; logScale: number[] }): number[] {
  const x = tf.tensor2d(Array.from({ length: 256 }, (_, k) => [k / 255, 0]));
  const params = tf.tile(tf.tensor2d([pixelPair(first)]), [256, 1]) as tf.Tensor2D;
  return Array.from(lik(L).logProb(x, params).dataSync());
}

describe('discretized-logistic likelihood', () => {
  describeConformance(discretizedLogisticLikelihood, [{ config: { components: 1 } }, { config: { components: 3 } }]);

  it('Should have probabilities over the 256 levels that sum to 1 for random params, 1 and 3 components', () => {
    const rng = Rng.derive(0, 'logistic-sum');
    for (const L of [1, 3]) {
      for (let trial = 0; trial < 3; trial++) {
        const first = {
          wLogits: Array.from({ length: L }, () => rng.normal()),
          loc: Array.from({ length: L }, () => 3 * rng.uniform() - 1.5),
          logScale: Array.from({ length: L }, () => 5 * rng.uniform() - 4),
        };
        const total = everyLevel(L, first).reduce((s, v) => s + Math.exp(v), 0);
        expect(total, `L = ${L}, ${JSON.stringify(first)}`).to.be.closeTo(1, 2e-5);
      }
    }
  });

  it('Should give hand-computed log-probs: interior bin, both edge bins, far tails, the scale clamp', () => {
    const at = (x: number, loc: number, logScale: number, L = 1) =>
      lik(L).logProb(tf.tensor2d([[x, 0]]), tf.tensor2d([pixelPair({ loc: [loc], logScale: [logScale] })])).dataSync()[0];
    const s = Math.log(1 / 255);
    // level 128: y = 1/255; loc 1/255, s = 1/255: sigmoid(1) - sigmoid(-1) = tanh(1/2) = 0.4621172
    expect(at(128 / 255, 1 / 255, s)).to.be.closeTo(Math.log(Math.tanh(0.5)), 1e-5);
    // level 0 (bin open below): loc -1, s = 1/255: sigmoid((1/255) * 255) = sigmoid(1) = 0.7310586
    expect(at(0, -1, s)).to.be.closeTo(Math.log(sig(1)), 1e-5);
    // level 255 (bin open above): loc 1: 1 - sigmoid(-1) = sigmoid(1)
    expect(at(1, 1, s)).to.be.closeTo(Math.log(sig(1)), 1e-5);
    // level 255 far above loc -1, log s = -7: log(1 - sigmoid(a)) = -a - log1p(e^-a) = -a,
    // a = (1 - 1/255 + 1) e^7 = 2188.97 (a naive log(1 - sigmoid) is -inf)
    const aTop = (2 - 1 / 255) * Math.exp(7);
    expect(at(1, -1, -7)).to.be.closeTo(-aTop, 2e-3);
    // level 200 far above loc -1, log s = -7: sigmoid(b) - sigmoid(a) = e^-a (1 - e^-(b - a)) to
    // 1e-745, a = (400/255 - 1/255) e^7, b - a = 2 e^7 / 255 = 8.601
    const aMid = (399 / 255) * Math.exp(7);
    expect(at(200 / 255, -1, -7)).to.be.closeTo(-aMid + Math.log1p(-Math.exp((-2 * Math.exp(7)) / 255)), 2e-3);
    // log-scales below minLogScale = -7 count as -7
    expect(at(200 / 255, -1, -20)).to.equal(at(200 / 255, -1, -7));
  });

  it('Should mix components by softmax weights: 1/4 tanh(1/2) when the 3/4 component is 255 bins away', () => {
    // weights softmax([0, log 3]) = (1/4, 3/4); component 2 at loc -1, s = 1/255 gives level 128
    // sigmoid(257) - sigmoid(255) < e^-255, nothing in float32
    const params = tf.tensor2d([pixelPair({ wLogits: [0, Math.log(3)], loc: [1 / 255, -1], logScale: [Math.log(1 / 255), Math.log(1 / 255)] })]);
    const lp = lik(2).logProb(tf.tensor2d([[128 / 255, 0]]), params).dataSync()[0];
    expect(lp).to.be.closeTo(Math.log(Math.tanh(0.5) / 4), 1e-5);
  });

  const means: Array<[string, number, { wLogits?: number[]; loc: number[]; logScale: number[] }]> = [
    ['loc 0, log s 0 (1/2 by symmetry)', 1, { loc: [0], logScale: [0] }],
    ['loc 0.3, log s -2', 1, { loc: [0.3], logScale: [-2] }],
    ['loc -0.9, log s -1 (mass in the bottom bin)', 1, { loc: [-0.9], logScale: [-1] }],
    ['three components', 3, { wLogits: [0.5, -1, 0], loc: [-0.5, 0.2, 0.95], logScale: [-3, -1.5, -4] }],
  ];
  for (const [title, L, first] of means) {
    it(`Should give the mean sum_k P(k) k/255 for ${title}`, () => {
      const m: Mix = { w: L === 1 ? [1] : softmax(first.wLogits ?? []), loc: first.loc, logScale: first.logScale };
      let expected = 0;
      for (let k = 0; k < 256; k++) expected += (mixProb(k, m) * k) / 255;
      expect(lik(L).mean(tf.tensor2d([pixelPair(first)])).dataSync()[0]).to.be.closeTo(expected, 2e-6);
      if (title.startsWith('loc 0,')) expect(expected).to.be.closeTo(0.5, 1e-12);
    });
  }

  it('Should draw levels k/255 of a two-component mixture whose mean matches it within 4 standard errors', () => {
    const first = { wLogits: [0, Math.log(3)], loc: [-0.6, 0.4], logScale: [-3, -2] };
    const m: Mix = { w: [0.25, 0.75], loc: first.loc, logScale: first.logScale };
    let mu = 0;
    let second = 0;
    for (let k = 0; k < 256; k++) {
      mu += (mixProb(k, m) * k) / 255;
      second += (mixProb(k, m) * (k / 255) ** 2) / 1;
    }
    const sd = Math.sqrt(second - mu * mu);
    const n = 20000;
    const draws = lik(2).sample(tf.tile(tf.tensor2d([pixelPair(first)]), [n, 1]) as tf.Tensor2D, Rng.derive(0, 'logistic-sample')).dataSync();
    let sum = 0;
    for (let i = 0; i < n; i++) {
      expect(Math.abs(draws[2 * i] * 255 - Math.round(draws[2 * i] * 255))).to.be.below(1e-4);
      expect(draws[2 * i + 1]).to.equal(0);
      sum += draws[2 * i];
    }
    expect(Math.abs(sum / n - mu)).to.be.below((4 * sd) / Math.sqrt(n));
  });

  it('Should take [loc, logScale] per dimension for one component and 3L values for L > 1', () => {
    expect(lik(1).paramsPerDim).to.equal(2);
    expect(lik(5).paramsPerDim).to.equal(15);
  });

  const over = (cfg: Record<string, unknown>) => ({ likelihood: { use: 'discretized-logistic', 'discretized-logistic': cfg } });
  const bad: Array<[string, Record<string, unknown>, string]> = [
    ['zero components', { components: 0 }, 'likelihood.discretized-logistic.components: must be an integer in [1, 2147483647]; got 0'],
    ['fractional components', { components: 2.5 }, 'likelihood.discretized-logistic.components: must be an integer in [1, 2147483647]; got 2.5'],
    ['a text minLogScale', { minLogScale: 'low' }, 'likelihood.discretized-logistic.minLogScale: must be a finite number; got "low"'],
    ['an undeclared key', { bins: 256 }, 'likelihood.discretized-logistic.bins: not declared in the schema of plugin "discretized-logistic" (keys: components, minLogScale)'],
  ];
  for (const [what, cfg, message] of bad) {
    it(`Should refuse ${what} with the key and what is allowed`, () => {
      expectThrowExact(() => experimentOf(over(cfg), { plugins: [discretizedLogisticLikelihood] }), ConfigError, message);
    });
  }

  it('Should refuse vector data when it is built, naming likelihood.use and the data set', () => {
    const vectors: DataInfo = { name: 'synthetic/mixture2d', shape: [1, 1, 2], dim: 2, numClasses: 4, condDim: 0 };
    expectThrowExact(
      () => buildParts(over({}), vectors, { plugins: [discretizedLogisticLikelihood] }),
      ConfigError,
      'likelihood.use: "discretized-logistic" scores 8-bit grey levels of images (x = k/255, k = 0..255); data set "synthetic/mixture2d" is vector data of shape [1, 1, 2]. Use "gaussian" for real-valued vectors',
    );
  });
});
