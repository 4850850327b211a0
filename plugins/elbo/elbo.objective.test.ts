import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, Rng, experimentFromObject, openSession } from '../../core';
import {
  buildParts,
  describeConformance,
  disposeParts,
  experimentObject,
  expectThrowExact,
  greyBatch,
  registryOf,
  TINY_IMAGE_INFO,
  trainSteps,
} from '../../testing';
import { elboObjective } from './elbo.objective';
import { exactLogP, exactPosteriorMean, linearGaussianParts, LG_B, LG_POSTERIOR_VARIANCE, LG_S, LG_W } from './linear-gaussian.fixture';

describe('elbo objective', () => {
  describeConformance(elboObjective, [{ config: { samples: 1 } }, { config: { samples: 4 } }, { config: { samples: 2, kl: 'monte-carlo' } }]);

  describe('against a linear-Gaussian model with exact log p(x) (linear-gaussian.fixture.ts)', () => {
    const points: Array<[number, number]> = [
      [0.5, -0.2],
      [2.0, -1.0],
      [-1.0, 0.8],
    ];
    const S = 20000;
    const [w, b, s] = [LG_W, LG_B, LG_S];
    const v = LG_POSTERIOR_VARIANCE;
    const w2 = w[0] ** 2 + w[1] ** 2;

    /**
     * Expected terms for q = N(m(x) + locShift, varianceScale * v), from the model's closed forms:
     *   kl  = KL(q || N(0, 1)) = 0.5 * (m'^2 + v' - log v' - 1)
     *   gap = KL(q || p(z|x)) = 0.5 * (log(v / v') + (v' + locShift^2) / v - 1)
     *   elbo = log p(x) - gap   (log p(x) = ELBO + KL(q || posterior))
     *   E_q[log p(x|z)] = -log(2 pi s^2) - (|r|^2 + |w|^2 v') / (2 s^2),  r = x - w m' - b
     * and the standard error of the S-sample reconstruction: log p(x|z) at z = m' + sqrt(v') eps is
     * const + (w.r) sqrt(v') eps / s^2 - |w|^2 v' eps^2 / (2 s^2), of variance
     * ((w.r)^2 v' + |w|^4 v'^2 / 2) / s^4.
     */
    function expected(x: [number, number], locShift: number, varianceScale: number) {
      const m = exactPosteriorMean(x) + locShift;
      const vq = varianceScale * v;
      const kl = 0.5 * (m * m + vq - Math.log(vq) - 1);
      const gap = 0.5 * (Math.log(v / vq) + (vq + locShift ** 2) / v - 1);
      const r = [x[0] - w[0] * m - b[0], x[1] - w[1] * m - b[1]];
      const wr = w[0] * r[0] + w[1] * r[1];
      const logPxGivenZ = -Math.log(2 * Math.PI * s * s) - (r[0] ** 2 + r[1] ** 2 + w2 * vq) / (2 * s * s);
      const se = Math.sqrt((wr * wr * vq + (w2 * w2 * vq * vq) / 2) / s ** 4 / S);
      return { kl, gap, elbo: exactLogP(x) - gap, reconstruction: -logPxGivenZ, se };
    }

    const cases: Array<[string, number, number]> = [
      // [what, locShift, varianceScale]
      ['q is the exact posterior: ELBO = log p(x)', 0, 1],
      ['q is shifted by 0.5 and 4 times as wide: ELBO = log p(x) - KL(q || p(z|x))', 0.5, 4],
      ['q is shifted by -0.3 and a quarter as wide: ELBO = log p(x) - KL(q || p(z|x))', -0.3, 0.25],
    ];
    cases.forEach(([what, locShift, varianceScale], ci) => {
      it(`Should give the closed-form KL, and reconstruction and ELBO within 4 standard errors (${S} samples), when ${what}`, () => {
        const parts = linearGaussianParts({ locShift, varianceScale }, S);
        const x = tf.tensor2d(points);
        const t = parts.objective.terms({ x, cond: null }, { training: false, rng: Rng.derive(0, 'elbo-linear', ci), step: 0 });
        const [loss, rec, kl, elbo] = [t.loss, t.reconstruction, t.kl, t.elbo].map((y) => Array.from(y.dataSync()));
        tf.dispose([x, ...Object.values(t)]);
        points.forEach((p, i) => {
          const e = expected(p, locShift, varianceScale);
          // the closed forms agree with each other: E_q[log p(x|z)] - KL(q || p(z)) = log p(x) - KL(q || p(z|x))
          expect(-e.reconstruction - e.kl).to.be.closeTo(e.elbo, 1e-9);
          expect(kl[i], `kl of point ${i}`).to.be.closeTo(e.kl, 1e-5);
          // 1e-4 on top of 4 standard errors: float32 sums of 20 000 terms of size ~5
          expect(Math.abs(rec[i] - e.reconstruction), `reconstruction of point ${i}: ${rec[i]} vs ${e.reconstruction} +- ${e.se}`).to.be.below(4 * e.se + 1e-4);
          expect(Math.abs(elbo[i] - e.elbo), `elbo of point ${i}: ${elbo[i]} vs ${e.elbo} +- ${e.se}`).to.be.below(4 * e.se + 1e-4);
          expect(loss[i], `loss of point ${i}`).to.be.closeTo(-elbo[i], 1e-5);
          // below log p(x) by the gap, which is larger than the noise when q is not the posterior
          if (e.gap > 0) expect(elbo[i]).to.be.below(exactLogP(p));
        });
      });
    });

    /**
     * kl: monte-carlo. At z = m' + sqrt(v') eps, log q(z) - log p(z) = -log(v')/2 + m'^2/2
     * + m' sqrt(v') eps + (v' - 1) eps^2 / 2, of variance m'^2 v' + (v' - 1)^2 / 2; the per-draw
     * ELBO is const + a eps + c eps^2 with a = sqrt(v') ((w.r) / s^2 - m') and
     * c = -|w|^2 v' / (2 s^2) - (v' - 1) / 2, of variance a^2 + 2 c^2 (zero when q is the exact
     * posterior: log p(x, z) - log q(z|x) = log p(x) at every z).
     */
    cases.forEach(([what, locShift, varianceScale], ci) => {
      it(`Should, with kl: monte-carlo, estimate the KL and ELBO within 4 standard errors of their closed forms from the same draws, when ${what}`, () => {
        const x = tf.tensor2d(points);
        const run = (kl: 'closed-form' | 'monte-carlo') => {
          const parts = linearGaussianParts({ locShift, varianceScale }, S, kl);
          const t = parts.objective.terms({ x, cond: null }, { training: false, rng: Rng.derive(0, 'elbo-mc', ci), step: 0 });
          const out = { rec: Array.from(t.reconstruction.dataSync()), kl: Array.from(t.kl.dataSync()), elbo: Array.from(t.elbo.dataSync()) };
          tf.dispose(Object.values(t));
          return out;
        };
        const mc = run('monte-carlo');
        const exact = run('closed-form');
        x.dispose();
        points.forEach((p, i) => {
          const e = expected(p, locShift, varianceScale);
          const m = exactPosteriorMean(p) + locShift;
          const vq = varianceScale * v;
          const r = [p[0] - w[0] * m - b[0], p[1] - w[1] * m - b[1]];
          const wr = w[0] * r[0] + w[1] * r[1];
          const klSe = Math.sqrt((m * m * vq + (vq - 1) ** 2 / 2) / S);
          const a = Math.sqrt(vq) * (wr / s ** 2 - m);
          const c = (-w2 * vq) / (2 * s * s) - (vq - 1) / 2;
          const elboSe = Math.sqrt((a * a + 2 * c * c) / S);
          // the same draws: the reconstruction term is the closed-form run's, bit for bit
          expect(mc.rec[i], `reconstruction of point ${i}`).to.equal(exact.rec[i]);
          expect(Math.abs(mc.kl[i] - e.kl), `kl of point ${i}: ${mc.kl[i]} vs ${e.kl} +- ${klSe}`).to.be.below(4 * klSe + 1e-4);
          expect(Math.abs(mc.elbo[i] - e.elbo), `elbo of point ${i}: ${mc.elbo[i]} vs ${e.elbo} +- ${elboSe}`).to.be.below(4 * elboSe + 1e-4);
          // a Monte-Carlo estimate, not the closed form again (except where its variance is zero)
          if (klSe > 1e-3) expect(mc.kl[i]).to.not.equal(exact.kl[i]);
        });
      });
    });
  });

  it('Should agree with the Monte-Carlo KL of the same posterior (2000 samples, rtol 0.05)', () => {
    const parts = buildParts({ latent: { use: 'gaussian', gaussian: { dim: 4 } } });
    const batch = greyBatch(3, TINY_IMAGE_INFO);
    const opts = { training: false, rng: Rng.derive(1, 'kl') };
    // Scaled features move the posterior well away from the prior, so the KL is large enough
    // (several nats) for a relative tolerance to be meaningful.
    const h = tf.mul(parts.model.encoder.encode(batch.x, null, opts) as tf.Tensor2D, 20) as tf.Tensor2D;
    const sample = parts.model.latent.sample(h, 2000, opts);
    const analytic = parts.model.kl(sample, null);
    expect(analytic.kind).to.equal('analytic');
    const mc = tf.mean(tf.reshape(tf.sub(sample.logQ, parts.model.logPrior(sample, null)), [2000, 3]), 0).dataSync();
    const a = analytic.kl.dataSync();
    for (let i = 0; i < 3; i++) {
      expect(a[i]).to.be.above(1);
      expect(Math.abs(mc[i] - a[i]) / a[i]).to.be.below(0.05);
    }
  });

  it('Should reject an unknown KL estimator with the exact message', () => {
    expectThrowExact(
      () => experimentFromObject(experimentObject({ objective: { use: 'elbo', elbo: { kl: 'exact' } } }), registryOf()),
      ConfigError,
      'objective.elbo.kl: must be one of "closed-form", "monte-carlo"; got "exact"',
    );
  });

  it('Should reject zero samples with the exact message', () => {
    expectThrowExact(
      () => experimentFromObject(experimentObject({ objective: { use: 'elbo', elbo: { samples: 0 } } }), registryOf()),
      ConfigError,
      'objective.elbo.samples: must be an integer in [1, 2147483647]; got 0',
    );
  });

  describe('training @slow', () => {
    it('Should lower the loss on a 2-D mixture of 4 Gaussians in 200 Adam steps (last 20 < 0.8 x first 20)', () => {
      // The synthetic mixture2d data set (256 points, seed 0), loaded as a run loads it.
      const experiment = experimentFromObject(
        experimentObject({
          data: { use: 'synthetic', synthetic: { kind: 'mixture2d', size: 256 } },
          encoder: { use: 'mlp', mlp: { hiddenSizes: [32, 32], activation: 'tanh' } },
          decoder: { use: 'mlp', mlp: { hiddenSizes: [32, 32], activation: 'tanh' } },
          latent: { use: 'gaussian', gaussian: { dim: 2 } },
          likelihood: { use: 'gaussian', gaussian: { scale: 'shared' } },
        }),
        registryOf(),
      );
      const { parts, dataset } = openSession(experiment);
      const data = { x: tf.tensor2d(dataset.train.x, [dataset.train.n, dataset.dim]), cond: null };
      try {
        const losses = trainSteps(parts, data, { steps: 200, learningRate: 1e-2, batchSize: 64, seed: 0 });
        const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
        expect(losses).to.have.length(200);
        expect(losses.every(Number.isFinite)).to.equal(true);
        expect(mean(losses.slice(-20))).to.be.below(0.8 * mean(losses.slice(0, 20)));
      } finally {
        data.x.dispose();
        disposeParts(parts);
      }
    });
  });
});
