import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, Rng, experimentFromObject } from '../../core';
import { describeConformance, experimentObject, expectThrowExact, registryOf } from '../../testing';
import { ContinuousBernoulliLikelihood, continuousBernoulliLikelihood } from './continuous-bernoulli.likelihood';

// Hand computations in double precision, in lambda rather than in the logit the plugin uses.
const logit = (lam: number) => Math.log(lam / (1 - lam));
const sigmoid = (l: number) => 1 / (1 + Math.exp(-l));
/** log C(lambda) from the series artanh(t)/t = sum_n t^(2n)/(2n+1), t = 1 - 2 lambda (|t| < 1). */
function logNormSeries(lam: number): number {
  const t = 1 - 2 * lam;
  let sum = 0;
  for (let n = 0; n < 60; n++) sum += t ** (2 * n) / (2 * n + 1);
  return Math.log(2 * sum);
}
/**
 * The density as a truncated exponential: C lambda^x (1 - lambda)^(1 - x) = l e^(l x) / (e^l - 1),
 * since lambda^x (1 - lambda)^(1 - x) = (1 - lambda) e^(l x) and C (1 - lambda) = l / (e^l - 1)
 * (the integral of e^(l x) over [0, 1] is (e^l - 1) / l); 1 at l = 0. Exact in double for any
 * logit, where lambda itself rounds to 0 or 1.
 */
const density = (x: number, l: number) => (l === 0 ? 1 : (l * Math.exp(l * x)) / Math.expm1(l));
/** Composite Simpson's rule of f over [0, 1] with m (even) intervals. */
function simpson(f: (x: number) => number, m = 2000): number {
  const h = 1 / m;
  let s = f(0) + f(1);
  for (let i = 1; i < m; i++) s += (i % 2 === 1 ? 4 : 2) * f(i * h);
  return (s * h) / 3;
}
/** The paper's mean: lambda / (2 lambda - 1) + 1 / (2 artanh(1 - 2 lambda)). */
const paperMean = (lam: number) => lam / (2 * lam - 1) + 1 / (2 * Math.atanh(1 - 2 * lam));

const lik = () => new ContinuousBernoulliLikelihood();
const column = (values: number[]) => tf.tensor2d(values, [values.length, 1]);

describe('continuous-bernoulli likelihood', () => {
  describeConformance(continuousBernoulliLikelihood, [{}]);

  it('Should give log C = log 2 at lambda = 1/2 (logit 0), so log p(x) = log 2 for every x', () => {
    const x = tf.tensor2d([[0, 0.25, 1]]);
    // each dimension: x * 0 - softplus(0) + log 2 = -log 2 + log 2 = 0
    expect(lik().logProb(x, tf.zeros([1, 3]) as tf.Tensor2D).dataSync()[0]).to.be.closeTo(0, 1e-6);
  });

  const near = [0.5 + 1e-4, 0.5 - 1e-3, 0.51, 0.49, 0.5 + 0.024, 0.45, 0.6, 0.7];
  for (const lam of near) {
    it(`Should give log C(${lam}) as the series log(2 sum t^(2n)/(2n+1)), t = 1 - 2 lambda`, () => {
      // logProb at x = 1/2 is log C + 0.5 log(lambda (1 - lambda)); remove the second term by hand
      const l = logit(lam);
      const lp = lik().logProb(tf.tensor2d([[0.5]]), tf.tensor2d([[l]])).dataSync()[0];
      const logC = lp - 0.5 * Math.log(lam * (1 - lam));
      expect(logC).to.be.closeTo(logNormSeries(lam), 2e-6);
    });
  }

  it('Should give log p = x l - softplus(l) + log|l| for logits far from 0 (tanh(|l|/2) = 1)', () => {
    const ls = [30, -30, 100, -100];
    const lp = lik().logProb(tf.fill([4, 1], 0.3) as tf.Tensor2D, column(ls)).dataSync();
    // softplus(30) = 30 + 9.4e-14, softplus(-30) = 9.4e-14; log(l / tanh(l/2)) = log|l| to 1e-12
    const expected = [0.3 * 30 - 30 + Math.log(30), -0.3 * 30 + Math.log(30), 0.3 * 100 - 100 + Math.log(100), -30 + Math.log(100)];
    for (let i = 0; i < 4; i++) expect(lp[i]).to.be.closeTo(expected[i], 1e-4 * Math.abs(expected[i]));
  });

  it('Should have a density that integrates to 1 over [0, 1] (Simpson, 2000 intervals) for logits -8, -1.5, 0, 0.05, 2.5, 12', () => {
    const m = 2000;
    const xs = Array.from({ length: m + 1 }, (_, i) => i / m);
    for (const l of [-8, -1.5, 0, 0.05, 2.5, 12]) {
      const p = tf.tidy(() => tf.exp(lik().logProb(column(xs), tf.fill([m + 1, 1], l) as tf.Tensor2D)).dataSync());
      expect(simpson((x) => p[Math.round(x * m)], m), `logit ${l}`).to.be.closeTo(1, 1e-5);
    }
  });

  it('Should give the mean as the integral of x p(x) and as the paper formula, with limit 1/2 at lambda = 1/2', () => {
    const ls = [0, 0.03, -0.08, -0.3, 1, 4, -40];
    const m = lik().mean(column(ls)).dataSync();
    for (let i = 0; i < ls.length; i++) {
      const lam = sigmoid(ls[i]);
      const integral = simpson((x) => x * density(x, ls[i]));
      expect(m[i], `logit ${ls[i]}`).to.be.closeTo(integral, 2e-6);
      // the paper's closed form is 0/0 at lambda = 1/2, and 1 - 2 lambda rounds to 1 in double at
      // logit -40: check it in between only
      if (Math.abs(ls[i]) > 0.05 && Math.abs(ls[i]) < 10) expect(m[i], `logit ${ls[i]}`).to.be.closeTo(paperMean(lam), 2e-6);
    }
    expect(m[0]).to.equal(0.5);
    // logit -40: lambda / (2 lambda - 1) = 4.2e-18, 1 / (2 artanh(1 - 2 lambda)) = 1 / 40
    expect(m[6]).to.be.closeTo(0.025, 1e-7);
  });

  it('Should draw samples in [0, 1] whose mean and P(x < 1/2) match the density within 4 standard errors', () => {
    const n = 20000;
    const ls = [-3, 0, 5e-5, 1.5, 60];
    const draws = lik().sample(tf.tensor2d(ls.map((l) => Array(n).fill(l)).flat(), [ls.length * n, 1]), Rng.derive(0, 'cb-sample'));
    const all = draws.dataSync();
    ls.forEach((l, j) => {
      const d = all.subarray(j * n, (j + 1) * n);
      const mu = simpson((x) => x * density(x, l));
      const sd = Math.sqrt(simpson((x) => (x - mu) ** 2 * density(x, l)));
      let sum = 0;
      let below = 0;
      for (const v of d) {
        expect(v >= 0 && v <= 1, `sample ${v} for logit ${l}`).to.equal(true);
        sum += v;
        if (v < 0.5) below++;
      }
      expect(Math.abs(sum / n - mu), `mean, logit ${l}`).to.be.below((4 * sd) / Math.sqrt(n));
      // CDF F(1/2) = (e^(l/2) - 1) / (e^l - 1), the integral of the truncated exponential; 1/2 at l = 0
      const F = l === 0 ? 0.5 : Math.expm1(l / 2) / Math.expm1(l);
      expect(Math.abs(below / n - F), `P(x < 1/2), logit ${l}`).to.be.below(4 * Math.sqrt((F * (1 - F)) / n) + 1e-9);
    });
  });

  it('Should give the gradient d log p / dl = x - sigmoid(l) + d log C / dl, 0.3 - 0.5 at logit 0', () => {
    const x = tf.tensor2d([[0.3, 0.3, 0.3]]);
    const g = tf.grad((l: tf.Tensor) => lik().logProb(x, l as tf.Tensor2D))(tf.tensor2d([[0, 2, -50]])).dataSync();
    // d log C / dl = 1/l - 1/sinh(l): 0 at 0; 0.5 - 1/sinh(2) = 0.224250; -0.02 - 1/sinh(-50) = -0.02
    expect(g[0]).to.be.closeTo(-0.2, 1e-6);
    expect(g[1]).to.be.closeTo(0.3 - sigmoid(2) + (0.5 - 1 / Math.sinh(2)), 1e-5);
    expect(g[2]).to.be.closeTo(0.3 - sigmoid(-50) - 0.02, 1e-5);
  });

  it('Should refuse a key, since the schema has none', () => {
    expectThrowExact(
      () =>
        experimentFromObject(
          experimentObject({ likelihood: { use: 'continuous-bernoulli', 'continuous-bernoulli': { window: 0.01 } } }),
          registryOf({ plugins: [continuousBernoulliLikelihood] }),
        ),
      ConfigError,
      'likelihood.continuous-bernoulli.window: not declared in the schema of plugin "continuous-bernoulli" (it has no keys)',
    );
  });
});
