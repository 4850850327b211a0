import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { injectable } from 'inversify';
import {
  ConfigError,
  Module,
  Rng,
  definePlugin,
  experimentFromObject,
  tileSamples,
  type Latent,
  type LatentSample,
  type PassOptions,
} from '../../core';
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
import { DipVaeObjective, dipPenalty, dipVaeObjective } from './dip-vae.objective';

/** A latent with no exact posterior: z = the first two features plus N(0, 1) noise. */
@injectable()
class CodeOnlyLatent extends Module implements Latent {
  readonly dim = 2;
  readonly priorDim = 2;
  sample(h: tf.Tensor, samples: number, opts: PassOptions): LatentSample {
    return tf.tidy(() => {
      const code = tileSamples(tf.slice(h as tf.Tensor2D, [0, 0], [-1, 2]), samples);
      const z = tf.add(code, opts.rng.normalTensor(code.shape));
      return { z, logQ: tf.zeros([code.shape[0]]) as tf.Tensor1D, samples };
    });
  }
  mode(h: tf.Tensor): tf.Tensor {
    return tf.slice(h as tf.Tensor2D, [0, 0], [-1, 2]);
  }
}
const codeOnlyLatent = definePlugin({ slot: 'latent', name: 'code-only', description: 'test latent without a posterior', schema: {}, implementation: CodeOnlyLatent });

const plugins = { plugins: [dipVaeObjective, codeOnlyLatent] };

describe('dip-vae objective', () => {
  describeConformance(dipVaeObjective, [
    { config: {} },
    { config: { variant: 'ii', lambdaOffDiagonal: 5 } },
    { config: { variant: 'i', lambdaOffDiagonal: 1, lambdaDiagonal: 0 } },
  ]);

  describe('the penalty', () => {
    const penalty = (loc: number[][], variance: number[][], variant: 'i' | 'ii', od: number, d: number) =>
      tf.tidy(() =>
        dipPenalty({ loc: tf.tensor2d(loc), logVar: tf.log(tf.tensor2d(variance)) as tf.Tensor2D }, variant, od, d).dataSync()[0],
      );
    // Two points: mu1 = (1, 0), mu2 = (-1, 3); mean (0, 1.5); centred (1, -1.5) and (-1, 1.5);
    // Cov(mu) = mean of the outer products = [[1, -1.5], [-1.5, 2.25]].
    // Variances (0.5, 1) and (1.5, 0.25): mean (1, 0.625).
    const loc = [
      [1, 0],
      [-1, 3],
    ];
    const variance = [
      [0.5, 1],
      [1.5, 0.25],
    ];
    it('Should give 20.125 for variant i with lambdaOffDiagonal 1, lambdaDiagonal 10 on the 2-point batch', () => {
      // off-diagonal: 2 * (-1.5)^2 = 4.5; diagonal: (1 - 1)^2 + (2.25 - 1)^2 = 1.5625; 4.5 + 10 * 1.5625
      expect(penalty(loc, variance, 'i', 1, 10)).to.be.closeTo(20.125, 1e-5);
    });
    it('Should give 9.015625 for variant ii with both weights 1 on the 2-point batch', () => {
      // Cov[z] = Cov(mu) + diag(1, 0.625) = [[2, -1.5], [-1.5, 2.875]]
      // off-diagonal: 4.5; diagonal: (2 - 1)^2 + (2.875 - 1)^2 = 1 + 3.515625
      expect(penalty(loc, variance, 'ii', 1, 1)).to.be.closeTo(9.015625, 1e-5);
    });
    it('Should weigh the two parts separately (variant ii, lambdaOffDiagonal 2, lambdaDiagonal 0.5: 2 * 4.5 + 0.5 * 4.515625)', () => {
      expect(penalty(loc, variance, 'ii', 2, 0.5)).to.be.closeTo(9 + 2.2578125, 1e-5);
    });
    // Four points (+-sqrt 2, 0), (0, +-sqrt 2): mean 0, Cov(mu) = (1/4) * diag(2 + 2, 2 + 2) = I.
    const r2 = Math.SQRT2;
    const square = [
      [r2, 0],
      [-r2, 0],
      [0, r2],
      [0, -r2],
    ];
    it('Should be 0 for variant i when Cov(mu) is the identity (whatever the variances)', () => {
      expect(penalty(square, square.map(() => [3, 0.1]), 'i', 10, 100)).to.be.closeTo(0, 1e-5);
    });
    it('Should be 0 for variant ii when Cov(mu) + mean variance is the identity (Cov(mu) = I/2, variances 1/2)', () => {
      // (+-1, 0), (0, +-1): Cov(mu) = diag(0.5, 0.5); plus diag(0.5, 0.5) = I
      const half = square.map((row) => row.map((v) => v / r2));
      expect(penalty(half, half.map(() => [0.5, 0.5]), 'ii', 10, 10)).to.be.closeTo(0, 1e-5);
      // but variant i sees Cov(mu) = I/2: diagonal (0.5 - 1)^2 * 2 = 0.5, times 10
      expect(penalty(half, half.map(() => [0.5, 0.5]), 'i', 10, 10)).to.be.closeTo(5, 1e-5);
    });
  });

  describe('terms', () => {
    const run = (config: Record<string, unknown>) => {
      const parts = buildParts({ objective: { use: 'dip-vae', 'dip-vae': config } }, TINY_IMAGE_INFO, plugins);
      const batch = greyBatch(5, TINY_IMAGE_INFO);
      try {
        const t = parts.objective.terms(batch, { training: true, rng: Rng.derive(4, 'dip-terms'), step: 0 });
        const out = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, Array.from(v.dataSync())]));
        tf.dispose(Object.values(t));
        return { out, objective: slotOf(parts, 'objective') as DipVaeObjective };
      } finally {
        batch.x.dispose();
        disposeParts(parts);
      }
    };
    it("Should take the paper's diagonal weights by default: 10 x lambdaOffDiagonal for i, lambdaOffDiagonal for ii", () => {
      expect(run({ variant: 'i', lambdaOffDiagonal: 3 }).objective.lambdaDiagonal).to.equal(30);
      expect(run({ variant: 'ii', lambdaOffDiagonal: 3 }).objective.lambdaDiagonal).to.equal(3);
      expect(run({ variant: 'ii', lambdaOffDiagonal: 3, lambdaDiagonal: 0.5 }).objective.lambdaDiagonal).to.equal(0.5);
    });
    it('Should add the penalty to the negative ELBO in every row', () => {
      const { out } = run({});
      expect(out.dip[0]).to.be.above(0);
      out.loss.forEach((l, i) => {
        expect(out.dip[i]).to.equal(out.dip[0]);
        expect(l).to.be.closeTo(out.reconstruction[i] + out.kl[i] + out.dip[i], 1e-3);
        expect(out.elbo[i]).to.be.closeTo(-(out.reconstruction[i] + out.kl[i]), 1e-3);
      });
    });
  });

  describe('bad settings', () => {
    const load = (config: Record<string, unknown>) => () =>
      experimentFromObject(experimentObject({ objective: { use: 'dip-vae', 'dip-vae': config } }), registryOf(plugins));
    it('Should refuse a latent without an exact Gaussian posterior, naming latent.use', () => {
      expectThrowExact(
        () => buildParts({ latent: { use: 'code-only' }, objective: { use: 'dip-vae' } }, TINY_IMAGE_INFO, plugins),
        ConfigError,
        'objective.dip-vae: needs a latent whose q(z|x) is exactly a diagonal Gaussian (a Latent with posterior(), such as latent.use: gaussian); latent "CodeOnlyLatent" has none',
      );
    });
    it('Should refuse a negative lambdaDiagonal other than -1 with the exact message', () => {
      expectThrowExact(
        () => buildParts({ objective: { use: 'dip-vae', 'dip-vae': { lambdaDiagonal: -2 } } }, TINY_IMAGE_INFO, plugins),
        ConfigError,
        "objective.dip-vae.lambdaDiagonal: must be a number >= 0, or -1 for the paper's choice (10 x lambdaOffDiagonal for variant i, lambdaOffDiagonal for ii); got -2",
      );
    });
    it('Should refuse an unknown variant, a non-positive lambdaOffDiagonal and an undeclared key with the exact messages', () => {
      expectThrowExact(load({ variant: 'iii' }), ConfigError, 'objective.dip-vae.variant: must be one of "i", "ii"; got "iii". Did you mean "ii"?');
      expectThrowExact(load({ lambdaOffDiagonal: 0 }), ConfigError, 'objective.dip-vae.lambdaOffDiagonal: must be a positive number; got 0');
      expectThrowExact(
        load({ lambdaOd: 1 }),
        ConfigError,
        'objective.dip-vae.lambdaOd: not declared in the schema of plugin "dip-vae" (keys: variant, lambdaOffDiagonal, lambdaDiagonal)',
      );
    });
  });
});
