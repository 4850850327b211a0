/**
 * core/math.ts: the reparameterised log q(z) against the Gaussian log-density it replaces; the
 * per-dimension Gaussian KLs (to N(0, I) and between two diagonal Gaussians) against hand-derived
 * values and against Monte-Carlo estimates computed here from the densities' definitions; and
 * logMeanExp against known values, at extreme magnitudes, with -Infinity entries, in its
 * sample-major layout, and its gradient against the softmax weights (cpu; the fused kernels of
 * the native pack are compared with these in test/backend/native.test.ts).
 */
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
// The gradients of tfjs's ops and vaelab's fused kernels (tfjs-core alone registers none).
import '../core/gradients';
import { diagGaussianLogProb, klDiagGaussiansPerDim, klStdNormal, klStdNormalPerDim, logMeanExp, reparamLogProb } from '../core/math';
import { Rng } from '../core/rng';
import { Data, expectClose } from './kits/backends';

describe('core/math: reparameterised log q(z)', () => {
  it('Should give diagGaussianLogProb(loc + exp(logVar / 2) eps) and the same gradients with respect to loc and logVar', () => {
    const loc = new Data(61, [7, 5]);
    const logVar = new Data(62, [7, 5]);
    const eps = new Data(63, [7, 5]);
    const dy = new Data(64, [7]);
    const viaZ = (l: tf.Tensor, v: tf.Tensor) => {
      const z = tf.add(l, tf.mul(tf.exp(tf.mul(v, 0.5)), eps.t())) as tf.Tensor2D;
      return diagGaussianLogProb(z, l, v);
    };
    const viaEps = (l: tf.Tensor, v: tf.Tensor) => tf.add(reparamLogProb(v as tf.Tensor2D, eps.t() as tf.Tensor2D), tf.mul(tf.sum(l, -1), 0));
    const plain = (t: tf.Tensor) => ({ shape: t.shape, values: t.dataSync() as Float32Array });
    tf.tidy(() => {
      expectClose(plain(viaEps(loc.t(), logVar.t())), plain(viaZ(loc.t(), logVar.t())), 'log q', 1e-5);
      const [gl1, gv1] = tf.grads(viaZ)([loc.t(), logVar.t()], dy.t());
      const [gl2, gv2] = tf.grads(viaEps)([loc.t(), logVar.t()], dy.t());
      // d log q / d loc is 0 on both paths (z moves with loc); d / d logVar is -dy / 2 per dimension.
      expectClose(plain(gl2), plain(gl1), 'd/d loc', 1e-5);
      expectClose(plain(gv2), plain(gv1), 'd/d logVar', 1e-5);
      expect(Math.max(...Array.from(gl1.dataSync(), Math.abs))).to.be.below(1e-5);
    });
  });
});

const LOG_2PI = Math.log(2 * Math.PI);

/** Asserts every entry of `actual` within `tol` of `expected`, naming the entry that is not. */
function expectAllClose(actual: ArrayLike<number>, expected: readonly number[], tol: number, what: string): void {
  expect(actual.length, `${what}: length`).to.equal(expected.length);
  for (let i = 0; i < expected.length; i++) expect(actual[i], `${what}[${i}]`).to.be.closeTo(expected[i], tol);
}

/**
 * Monte-Carlo estimate of KL(N(locQ, e^logVarQ) || N(locP, e^logVarP)) for one dimension, from the
 * two log-densities written out here (not from core/math.ts): the mean of log q(z) - log p(z) over
 * n draws z = locQ + e^(logVarQ/2) eps, in float64. Also returns its standard error from the
 * closed-form variance of one term: with d = locQ - locP, vQ = e^logVarQ, vP = e^logVarP,
 *   log q(z) - log p(z) = const + (d sqrt(vQ) / vP) eps + 0.5 (vQ / vP - 1) eps^2,
 * so Var = (d sqrt(vQ) / vP)^2 + 0.5 (vQ / vP - 1)^2 (Var(eps) = 1, Var(eps^2) = 2, Cov(eps, eps^2) = 0).
 */
function mcKl(locQ: number, logVarQ: number, locP: number, logVarP: number, eps: Float32Array): { mean: number; se: number } {
  const [vQ, vP] = [Math.exp(logVarQ), Math.exp(logVarP)];
  let sum = 0;
  for (const e of eps) {
    const z = locQ + Math.sqrt(vQ) * e;
    const logQ = -0.5 * (LOG_2PI + logVarQ + (z - locQ) ** 2 / vQ);
    const logP = -0.5 * (LOG_2PI + logVarP + (z - locP) ** 2 / vP);
    sum += logQ - logP;
  }
  const d = locQ - locP;
  const variance = (d * Math.sqrt(vQ) / vP) ** 2 + 0.5 * (vQ / vP - 1) ** 2;
  return { mean: sum / eps.length, se: Math.sqrt(variance / eps.length) };
}

describe('core/math: per-dimension Gaussian KL', () => {
  // [loc, logVar] per dimension of a [2, 3] batch, and KL = 0.5 * (loc^2 + e^logVar - logVar - 1):
  const stdCases: Array<[number, number, number, string]> = [
    [1, 0, 0.5, 'loc 1, logVar 0: 0.5 * 1'],
    [0, Math.log(2), 0.5 * (1 - Math.log(2)), 'loc 0, var 2: 0.5 * (2 - log 2 - 1) = 0.153426'],
    [-2, -1, 2 + 0.5 * Math.exp(-1), 'loc -2, logVar -1: 0.5 * (4 + e^-1 + 1 - 1) = 2.183940'],
    [0, 0, 0, 'q = p: 0'],
    [0.5, 1, 0.5 * (Math.E - 1.75), 'loc 0.5, logVar 1: 0.5 * (0.25 + e - 1 - 1) = 0.484141'],
    [3, Math.log(0.25), 0.5 * (8.25 + Math.log(4)), 'loc 3, var 1/4: 0.5 * (9 + 0.25 + log 4 - 1) = 4.818147'],
  ];
  const stdLoc = () => tf.tensor2d(stdCases.map((c) => c[0]), [2, 3]);
  const stdLogVar = () => tf.tensor2d(stdCases.map((c) => c[1]), [2, 3]);

  it('Should give KL(q || N(0, 1)) per dimension = 0.5 * (loc^2 + e^logVar - logVar - 1) for hand-derived cases', () => {
    tf.tidy(() => {
      const kl = klStdNormalPerDim(stdLoc(), stdLogVar());
      expect(kl.shape).to.deep.equal([2, 3]);
      const v = kl.dataSync();
      stdCases.forEach(([, , expected, why], i) => expect(v[i], why).to.be.closeTo(expected, 1e-5));
    });
  });

  it('Should sum the per-dimension KL to N(0, I) over each row: 2.837366 and 5.302288', () => {
    tf.tidy(() => {
      // row 0: 0.5 + 0.153426 + 2.183940; row 1: 0 + 0.484141 + 4.818147
      expectAllClose(klStdNormal(stdLoc(), stdLogVar()).dataSync(), [2.837366, 5.302288], 1e-5, 'klStdNormal');
    });
  });

  it('Should agree per dimension with a Monte-Carlo KL to N(0, 1) over 20 000 draws (within 4 standard errors)', () => {
    const n = 20000;
    const v = tf.tidy(() => klStdNormalPerDim(stdLoc(), stdLogVar()).dataSync());
    stdCases.forEach(([loc, logVar, , why], d) => {
      const eps = Rng.derive(0, 'mc-kl-std', d).fillNormal(new Float32Array(n));
      const mc = mcKl(loc, logVar, 0, 0, eps);
      // q = p gives identical densities, hence se = 0; 1e-6 covers float32 rounding of the closed form.
      expect(Math.abs(v[d] - mc.mean), `${why}: MC ${mc.mean} +- ${mc.se}`).to.be.below(4 * mc.se + 1e-6);
    });
  });

  // [locQ, logVarQ, locP, logVarP] per dimension of a [2, 3] batch, and
  // KL = 0.5 * (logVarP - logVarQ + (e^logVarQ + (locQ - locP)^2) / e^logVarP - 1):
  const pairCases: Array<[number, number, number, number, number, string]> = [
    [1, 0.5, 1, 0.5, 0, 'q = p: 0'],
    [1, 0, 0, 0, 0.5, 'p = N(0, 1): 0.5 * (0 + (1 + 1) - 1) = 0.5'],
    [0, 0, 0, Math.log(2), 0.5 * (Math.log(2) - 0.5), 'var 1 vs 2: 0.5 * (log 2 + 1/2 - 1) = 0.096574'],
    [2, Math.log(2), -1, Math.log(4), 0.5 * (Math.log(2) + 1.75), 'd 3, var 2 vs 4: 0.5 * (log 2 + (2 + 9) / 4 - 1) = 1.221574'],
    [0, Math.log(4), 0, 0, 0.5 * (3 - Math.log(4)), 'var 4 vs 1: 0.5 * (-log 4 + 4 - 1) = 0.806853'],
    [-0.5, -1, 0.5, 1, 0.5 * (1 + Math.exp(-2) + Math.exp(-1)), 'd -1, logVar -1 vs 1: 0.5 * (2 + (e^-1 + 1) / e - 1) = 0.751607'],
  ];
  const col = (j: 0 | 1 | 2 | 3) => tf.tensor2d(pairCases.map((c) => c[j]), [2, 3]);

  it('Should give KL(q || p) per dimension between two diagonal Gaussians for hand-derived cases', () => {
    tf.tidy(() => {
      const kl = klDiagGaussiansPerDim(col(0), col(1), col(2), col(3));
      expect(kl.shape).to.deep.equal([2, 3]);
      const v = kl.dataSync();
      pairCases.forEach(([, , , , expected, why], i) => expect(v[i], why).to.be.closeTo(expected, 1e-5));
    });
  });

  it('Should broadcast a [1, D] p over the batch and reduce to klStdNormalPerDim when p = N(0, I)', () => {
    tf.tidy(() => {
      // p = N([0, 0, 0], I) as one row: the standard-normal cases' values, 0.5, 0.153426, ...
      const kl = klDiagGaussiansPerDim(stdLoc(), stdLogVar(), tf.zeros([1, 3]), tf.zeros([1, 3]));
      expect(kl.shape).to.deep.equal([2, 3]);
      expectAllClose(kl.dataSync(), stdCases.map((c) => c[2]), 1e-5, 'KL to a broadcast N(0, I)');
      // p = N([1, 0, -1], diag(e^[0, 0, 1])) for q = N(1, 1), N(0, 1): 0 (q = p), 0, and
      // 0.5 * (1 - 0 + (1 + 4) / e - 1) = 2.5 / e = 0.919699 for q = N(1, 1) against N(-1, e)
      const q = { loc: tf.tensor2d([[1, 0, 1]]), logVar: tf.zeros([1, 3]) as tf.Tensor2D };
      const broadcast = klDiagGaussiansPerDim(tf.tile(q.loc, [2, 1]) as tf.Tensor2D, tf.tile(q.logVar, [2, 1]) as tf.Tensor2D, tf.tensor2d([[1, 0, -1]]), tf.tensor2d([[0, 0, 1]]));
      expectAllClose(broadcast.dataSync(), [0, 0, 2.5 / Math.E, 0, 0, 2.5 / Math.E], 1e-5, 'KL to a broadcast p');
    });
  });

  it('Should agree per dimension with a Monte-Carlo KL(q || p) over 20 000 draws (within 4 standard errors)', () => {
    const n = 20000;
    const v = tf.tidy(() => klDiagGaussiansPerDim(col(0), col(1), col(2), col(3)).dataSync());
    pairCases.forEach(([locQ, logVarQ, locP, logVarP, , why], d) => {
      const eps = Rng.derive(0, 'mc-kl-pair', d).fillNormal(new Float32Array(n));
      const mc = mcKl(locQ, logVarQ, locP, logVarP, eps);
      // q = p gives identical densities, hence se = 0; 1e-6 covers float32 rounding of the closed form.
      expect(Math.abs(v[d] - mc.mean), `${why}: MC ${mc.mean} +- ${mc.se}`).to.be.below(4 * mc.se + 1e-6);
    });
  });
});

describe('core/math: logMeanExp', () => {
  const lme = (a: number[], samples: number) => tf.tidy(() => Array.from(logMeanExp(tf.tensor1d(a), samples).dataSync()));
  /** d sum(logMeanExp(a)) / da: within each example, the softmax weights e^a_s / sum_s' e^a_s'. */
  const lmeGrad = (a: number[], samples: number) =>
    tf.tidy(() => Array.from(tf.grad((t: tf.Tensor) => tf.sum(logMeanExp(t as tf.Tensor1D, samples)))(tf.tensor1d(a)).dataSync()));

  it('Should give log((1 + 3) / 2) = log 2 for [log 1, log 3], and a for one sample', () => {
    expectAllClose(lme([0, Math.log(3)], 2), [Math.log(2)], 1e-6, 'logMeanExp([log 1, log 3])');
    // S = 1: log(e^a) = a, example by example
    expectAllClose(lme([-1.5, 0, 2.25], 1), [-1.5, 0, 2.25], 1e-6, 'one sample');
    // mean of e^0, e^0, e^0, e^(log 5) = (3 + 5) / 4 = 2
    expectAllClose(lme([0, 0, 0, Math.log(5)], 4), [Math.log(2)], 1e-6, 'four samples');
  });

  it('Should read [S*B] sample-major (row s*B + b is sample s of example b) and return [B]', () => {
    // S = 2, B = 3: example 0 has samples log 1, log 3 -> log 2; example 1: log 1, log 1 -> 0;
    // example 2: log 2, log 6 -> log 4. Read example-major, the pairs would be (log 1, log 1),
    // (log 2, log 3), (log 1, log 6) instead.
    const a = [0, 0, Math.log(2), Math.log(3), 0, Math.log(6)];
    const out = tf.tidy(() => logMeanExp(tf.tensor1d(a), 2));
    expect(out.shape).to.deep.equal([3]);
    expectAllClose(out.dataSync(), [Math.log(2), 0, Math.log(4)], 1e-6, 'sample-major');
    out.dispose();
  });

  it('Should neither overflow nor underflow: [1000, 1000] -> 1000, [-1000, -1000 + log 3] -> -1000 + log 2', () => {
    // e^1000 is Infinity and e^-1000 is 0 even in float64; the result must not depend on them.
    // Tolerance 1e-3: float32 spacing near 1000 is 6.1e-5.
    expectAllClose(lme([1000, 1000], 2), [1000], 1e-3, 'large');
    expectAllClose(lme([-1000, -1000 + Math.log(3)], 2), [-1000 + Math.log(2)], 1e-3, 'small');
    // one term dominates: log((e^1000 + e^0) / 2) = 1000 - log 2 (+ e^-1000 / 2, far below float32)
    expectAllClose(lme([1000, 0], 2), [1000 - Math.log(2)], 1e-3, 'mixed');
  });

  it('Should treat -Infinity entries as zero weights: [-Infinity, log 2] -> log(2 / 2) = 0', () => {
    expectAllClose(lme([-Infinity, Math.log(2)], 2), [0], 1e-6, 'one -Infinity');
    // S = 4, B = 2, sample-major: example 0 has -Infinity, -Infinity, log 1, log 3 -> log((0 + 0 + 1 + 3) / 4) = 0;
    // example 1 has log 1, -Infinity, -Infinity, log 2 -> log((1 + 0 + 0 + 2) / 4) = log(3/4)
    expectAllClose(lme([-Infinity, 0, -Infinity, -Infinity, 0, -Infinity, Math.log(3), Math.log(2)], 4), [0, Math.log(3 / 4)], 1e-6, 'two examples');
  });

  // log mean of e^-Infinity is log 0 = -Infinity; core/math.ts gives NaN (max - max = -Inf + Inf),
  // which an importance-weighted bound with an impossible example would report as NaN.
  it('Should give -Infinity when every sample of an example is -Infinity', () => {
    expect(lme([-Infinity, 0, -Infinity, 0], 2)).to.deep.equal([-Infinity, 0]);
  });

  it('Should have the softmax weights as gradient: [1/4, 3/4] for [log 1, log 3], per example in sample-major order', () => {
    // e^a / sum e^a = [1, 3] / 4
    expectAllClose(lmeGrad([0, Math.log(3)], 2), [0.25, 0.75], 1e-6, 'two samples');
    // examples (log 1, log 3), (log 1, log 1), (log 2, log 6): weights [1/4, 3/4], [1/2, 1/2], [2/8, 6/8],
    // laid out sample-major
    expectAllClose(lmeGrad([0, 0, Math.log(2), Math.log(3), 0, Math.log(6)], 2), [0.25, 0.5, 0.25, 0.75, 0.5, 0.75], 1e-6, 'sample-major');
    // the weights do not depend on the magnitude: [1000, 1000] -> [1/2, 1/2]; -1000 + [0, log 3] -> [1/4, 3/4]
    // (1e-4: float32 spacing near 1000 makes log 3 exact to 6e-5 only, and e^6e-5 - 1 = 6e-5)
    expectAllClose(lmeGrad([1000, 1000], 2), [0.5, 0.5], 1e-6, 'large');
    expectAllClose(lmeGrad([-1000, -1000 + Math.log(3)], 2), [0.25, 0.75], 1e-4, 'small');
    // a -Infinity entry has weight 0, not NaN
    expectAllClose(lmeGrad([-Infinity, Math.log(2)], 2), [0, 1], 1e-6, '-Infinity');
  });
});
