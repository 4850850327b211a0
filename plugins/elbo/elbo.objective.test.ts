import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, Rng } from '../../core';
import { experimentFromObject } from '../../core/config/experiment';
import { Adam } from '../../core/train/adam';
import { trainableVariables } from '../../core/train/trainer';
import { loadDataset } from '../../core/data';
import { Batcher } from '../../core/data/batcher';
import { DEFAULT_DATA_OPTIONS } from '../../core/data';
import { buildParts, builtins, experimentObject, greyBatch, TINY_IMAGE_INFO } from '../../test/kits/build';
import { describeConformance } from '../../testing';
import { elboObjective } from './elbo.objective';
import { exactLogP, exactPosteriorMean, linearGaussianParts, LG_B, LG_POSTERIOR_VARIANCE, LG_S, LG_W } from '../../test/fixtures/linear-gaussian';
import { expectThrowExact } from '../../test/data/helpers';

describe('elbo objective', () => {
  describeConformance(elboObjective, [{ config: { samples: 1 } }, { config: { samples: 4 } }]);

  describe('against a linear-Gaussian model with exact log p(x) (test/fixtures/linear-gaussian.ts)', () => {
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

  it('Should reject zero samples with the exact message', () => {
    expectThrowExact(
      () => experimentFromObject(experimentObject({ objective: { use: 'elbo', elbo: { samples: 0 } } }), builtins()),
      ConfigError,
      'objective.elbo.samples: must be an integer in [1, 2147483647]; got 0',
    );
  });

  describe('training @slow', () => {
    it('Should lower the loss on a 2-D mixture of 4 Gaussians in 200 Adam steps (last 20 < 0.8 x first 20)', () => {
      const info = { name: 'synthetic/mixture2d', shape: [1, 1, 2] as [number, number, number], dim: 2, numClasses: 4, condDim: 0 };
      const parts = buildParts(
        {
          encoder: { use: 'mlp', mlp: { hiddenSizes: [32, 32], activation: 'tanh' } },
          decoder: { use: 'mlp', mlp: { hiddenSizes: [32, 32], activation: 'tanh' } },
          latent: { use: 'gaussian', gaussian: { dim: 2 } },
          likelihood: { use: 'gaussian', gaussian: { scale: 'shared' } },
        },
        info,
      );
      const ds = loadDataset({ ...DEFAULT_DATA_OPTIONS, use: 'synthetic', synthetic: { kind: 'mixture2d', size: 256 } }, 0);
      const batcher = new Batcher(ds.train, ds, { batchSize: 64, shuffle: true, seed: 0, dynamicBinarize: false, dropLast: true });
      const vars = trainableVariables(parts.model, parts.objective);
      const adam = new Adam(vars, { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 });
      const keyOf = new Map([...vars].map(([k, v]) => [v.name, k]));
      const losses: number[] = [];
      for (let step = 0; step < 200; step++) {
        const b = batcher.batch(Math.floor(step / 4), step % 4);
        const { value, grads } = tf.variableGrads(
          () => tf.mean(parts.objective.terms({ x: b.x, cond: null }, { training: true, rng: Rng.derive(0, 'step', step), step }).loss) as tf.Scalar,
          [...vars.values()],
        );
        adam.apply(new Map(Object.entries(grads).map(([n, g]) => [keyOf.get(n)!, g])), 1e-2);
        losses.push(value.dataSync()[0]);
        tf.dispose([value, ...Object.values(grads), b.x, b.y ?? []].flat());
      }
      const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
      expect(losses.every(Number.isFinite)).to.equal(true);
      expect(mean(losses.slice(-20))).to.be.below(0.8 * mean(losses.slice(0, 20)));
    });
  });
});
