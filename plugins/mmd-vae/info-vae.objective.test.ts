import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, Rng, experimentFromObject } from '../../core';
import {
  buildParts,
  describeConformance,
  disposeParts,
  experimentObject,
  expectThrowExact,
  greyBatch,
  registryOf,
  slotOf,
  TINY_IMAGE_INFO,
} from '../../testing';
import { InfoVaeObjective, infoVaeObjective, mmdUnbiased } from './info-vae.objective';

const plugins = { plugins: [infoVaeObjective] };

describe('info-vae objective', () => {
  describeConformance(
    infoVaeObjective,
    [
      { config: {} },
      { config: { kernel: 'rbf', alpha: 0.5, lambda: 2 } },
      // WAE-MMD: no KL term
      { config: { alpha: 1, lambda: 10 }, training: false },
    ],
  );

  describe('the unbiased MMD^2 estimate', () => {
    const mmdOf = (x: number[][], y: number[][], kernel: 'rbf' | 'imq', scale: number) =>
      tf.tidy(() => mmdUnbiased(tf.tensor2d(x), tf.tensor2d(y), kernel, scale).dataSync()[0]);
    // x1 = (0, 0), x2 = (1, 0), x3 = (0, 2): squared distances d12 = 1, d13 = 4, d23 = 5.
    const x = [
      [0, 0],
      [1, 0],
      [0, 2],
    ];
    // Same sample twice (n = m, k(x, x) = 1): the within terms are both kbar = mean of k over the
    // n (n - 1) ordered pairs i != j, the cross term (n (n - 1) kbar + n) / n^2, so
    //   MMD^2_u = 2 kbar - 2 ((n - 1) kbar + 1) / n = -(2 / n) (1 - kbar),
    // never exactly 0 for distinct rows: it goes to 0 as 1/n.
    it('Should give -(2/n)(1 - kbar) for the same sample twice: imq, C = 2 gives -8/21', () => {
      // k = 2 / (2 + d^2) = 2/3, 1/3, 2/7; kbar = (9/7) / 3 = 3/7; -(2/3)(4/7) = -8/21
      expect(mmdOf(x, x, 'imq', 2)).to.be.closeTo(-8 / 21, 1e-6);
    });
    it('Should give -(2/n)(1 - kbar) for the same sample twice: rbf, C = 1', () => {
      // k = exp(-d^2 / 2) = e^-0.5, e^-2, e^-2.5
      const kbar = (Math.exp(-0.5) + Math.exp(-2) + Math.exp(-2.5)) / 3;
      expect(mmdOf(x, x, 'rbf', 1)).to.be.closeTo(-(2 / 3) * (1 - kbar), 1e-6);
    });
    it('Should give exactly 0 for the same sample twice when all its rows are equal (kbar = 1)', () => {
      const same = [
        [0.3, -1],
        [0.3, -1],
        [0.3, -1],
        [0.3, -1],
      ];
      expect(mmdOf(same, same, 'rbf', 1)).to.be.closeTo(0, 1e-6);
      expect(mmdOf(same, same, 'imq', 4)).to.be.closeTo(0, 1e-6);
    });
    it('Should be within 2/n of 0 for the same sample of 200 standard-normal rows twice', () => {
      const rng = Rng.derive(0, 'mmd-same');
      const z = rng.normalTensor([200, 4]) as tf.Tensor2D;
      for (const kernel of ['rbf', 'imq'] as const) {
        const v = mmdUnbiased(z, z, kernel, 8);
        const m = v.dataSync()[0];
        v.dispose();
        // -(2 / n)(1 - kbar) lies in [-2/n, 0]
        expect(m).to.be.at.most(1e-6);
        expect(m).to.be.at.least(-2 / 200);
      }
      z.dispose();
    });
    it('Should give the hand-computed value for two different samples (imq, C = 1)', () => {
      // x = {0, 1}, y = {3} in one dimension: within x: k(0, 1) = 1/2 (pairs i != j: 2 of them,
      // mean 1/2); within y: no pair, left out; cross: k(0, 3) = 1/10, k(1, 3) = 1/5, mean 3/20.
      // MMD^2 = 1/2 + 0 - 2 * 3/20 = 1/5
      expect(mmdOf([[0], [1]], [[3]], 'imq', 1)).to.be.closeTo(0.2, 1e-6);
    });

    /**
     * Closed form for P = N(0, I_D), Q = N(mu, s^2 I_D) and the RBF kernel exp(-|x - y|^2 / (2C)):
     * for d = x - y ~ N(m, v I_D) (independent Gaussians subtract to a Gaussian), per dimension
     *   E exp(-d^2 / (2C)) = sqrt(2 pi C) * int N(d; m, v) N(d; 0, C) dd = sqrt(2 pi C) N(m; 0, C + v)
     *                      = sqrt(C / (C + v)) exp(-m^2 / (2 (C + v)))
     * by the product-of-Gaussians integral (Petersen & Pedersen, The Matrix Cookbook, 2012,
     * section 8.1.8; the same kernel mean embedding of Gaussians is in Muandet et al. 2012,
     * https://arxiv.org/abs/1202.6504, Table 1). With x, x' ~ P: m = 0, v = 2; y, y' ~ Q: m = 0,
     * v = 2 s^2; x ~ P, y ~ Q: m = -mu, v = 1 + s^2. MMD^2 = E k(x, x') + E k(y, y') - 2 E k(x, y).
     */
    it('Should average to the closed-form RBF MMD^2 of N(0, I) and N(mu, s^2 I) within 4 standard errors (400 draws of 32 + 32)', () => {
      const D = 2;
      const mu = [1, -0.5];
      const s = 0.5;
      const C = 1;
      const mu2 = mu[0] ** 2 + mu[1] ** 2;
      const e = (v: number, m2: number) => (C / (C + v)) ** (D / 2) * Math.exp(-m2 / (2 * (C + v)));
      const exact = e(2, 0) + e(2 * s * s, 0) - 2 * e(1 + s * s, mu2);
      const R = 400;
      const n = 32;
      const rng = Rng.derive(0, 'mmd-gaussians');
      const values: number[] = [];
      for (let r = 0; r < R; r++) {
        values.push(
          tf.tidy(() => {
            const xs = rng.normalTensor([n, D]) as tf.Tensor2D;
            const ys = tf.add(tf.mul(rng.normalTensor([n, D]), s), tf.tensor1d(mu)) as tf.Tensor2D;
            return mmdUnbiased(xs, ys, 'rbf', C).dataSync()[0];
          }),
        );
      }
      const mean = values.reduce((a, b) => a + b, 0) / R;
      const sd = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / (R - 1));
      const se = sd / Math.sqrt(R);
      expect(exact).to.be.above(0.1); // far enough from 0 that the test means something
      expect(Math.abs(mean - exact), `mean ${mean} vs ${exact} +- ${se}`).to.be.below(4 * se);
    });
  });

  describe('terms', () => {
    const dims = 3;
    const run = (config: Record<string, unknown>) => {
      const parts = buildParts({ objective: { use: 'info-vae', 'info-vae': config } }, TINY_IMAGE_INFO, plugins);
      const batch = greyBatch(6, TINY_IMAGE_INFO);
      try {
        const t = parts.objective.terms(batch, { training: true, rng: Rng.derive(3, 'info-vae-terms'), step: 0 });
        const out = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, Array.from(v.dataSync())]));
        tf.dispose(Object.values(t));
        return { out, objective: slotOf(parts, 'objective') as InfoVaeObjective };
      } finally {
        tf.dispose([batch.x]);
        disposeParts(parts);
      }
    };
    it(`Should default the kernels' C to 2 x latent dim x 1 (WAE's 2 d sigma^2, sigma = 1) = ${2 * dims}`, () => {
      expect(run({}).objective.scale).to.equal(2 * dims);
      expect(run({ scale: 0.7 }).objective.scale).to.equal(0.7);
    });
    it('Should weigh the KL by 1 - alpha and the MMD by alpha + lambda - 1 (alpha 0.25, lambda 3: 0.75 and 2.25)', () => {
      const { out } = run({ alpha: 0.25, lambda: 3, kernel: 'rbf' });
      expect(out.mmd.every((v) => v === out.mmd[0])).to.equal(true);
      out.loss.forEach((l, i) => {
        expect(l).to.be.closeTo(out.reconstruction[i] + 0.75 * out.kl[i] + 2.25 * out.mmd[i], 1e-4);
        expect(out.elbo[i]).to.be.closeTo(-(out.reconstruction[i] + out.kl[i]), 1e-4);
      });
    });
    it('Should leave the KL out of the loss with alpha = 1 (WAE-MMD, penalty weight lambda = 10)', () => {
      const { out } = run({ alpha: 1, lambda: 10 });
      out.loss.forEach((l, i) => expect(l).to.be.closeTo(out.reconstruction[i] + 10 * out.mmd[i], 1e-4));
    });
  });

  describe('bad settings', () => {
    const build = (config: Record<string, unknown>) => () =>
      buildParts({ objective: { use: 'info-vae', 'info-vae': config } }, TINY_IMAGE_INFO, plugins);
    const load = (config: Record<string, unknown>) => () =>
      experimentFromObject(experimentObject({ objective: { use: 'info-vae', 'info-vae': config } }), registryOf(plugins));
    it('Should refuse alpha above 1 with the exact message', () => {
      expectThrowExact(
        build({ alpha: 1.5 }),
        ConfigError,
        'objective.info-vae.alpha: must be at most 1 (the KL weight 1 - alpha must not be negative; alpha = 1 is WAE-MMD); got 1.5',
      );
    });
    it('Should refuse a negative MMD weight alpha + lambda - 1 with the exact message', () => {
      expectThrowExact(
        build({ alpha: -1, lambda: 1.5 }),
        ConfigError,
        'objective.info-vae.lambda: alpha + lambda - 1 (the MMD weight) must not be negative; got alpha = -1, lambda = 1.5 (lambda must be at least 2)',
      );
    });
    it('Should refuse a non-positive lambda, an unknown kernel, a negative scale and an undeclared key with the exact messages', () => {
      expectThrowExact(load({ lambda: 0 }), ConfigError, 'objective.info-vae.lambda: must be a positive number; got 0');
      expectThrowExact(
        load({ kernel: 'rbff' }),
        ConfigError,
        'objective.info-vae.kernel: must be one of "rbf", "imq"; got "rbff". Did you mean "rbf"?',
      );
      expectThrowExact(load({ scale: -1 }), ConfigError, 'objective.info-vae.scale: must be a number >= 0; got -1');
      expectThrowExact(
        load({ bandwidth: 1 }),
        ConfigError,
        'objective.info-vae.bandwidth: not declared in the schema of plugin "info-vae" (keys: alpha, lambda, kernel, scale)',
      );
    });
  });
});
