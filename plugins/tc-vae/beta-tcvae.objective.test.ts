import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { inject, injectable } from 'inversify';
import {
  ConfigError,
  Module,
  Rng,
  TOKENS,
  definePlugin,
  tileSamples,
  type Encoder,
  type Latent,
  type LatentSample,
  type PassOptions,
} from '../../core';
import { buildParts, describeConformance, disposeParts, expectThrowExact, experimentOf, greyBatch, TINY_IMAGE_INFO } from '../../testing';
import { betaTcvaeObjective, logImportanceWeights, tcDecomposition } from './beta-tcvae.objective';

const INFO = { ...TINY_IMAGE_INFO, trainSize: 64 };
const plugins = [betaTcvaeObjective];

/** log N(z; m, v) of one dimension, in double precision. */
const logNormal = (z: number, m: number, v: number) => -0.5 * (Math.log(2 * Math.PI) + Math.log(v) + ((z - m) * (z - m)) / v);
const logSumExp = (a: number[]) => {
  const top = Math.max(...a);
  return top + Math.log(a.reduce((s, x) => s + Math.exp(x - top), 0));
};
const rows = (t: tf.Tensor) => t.arraySync() as number[][];

/** A latent whose q(z|x) is a point mass at the encoder features: no Latent.posterior. */
@injectable()
class PointLatent extends Module implements Latent {
  readonly dim: number;
  readonly priorDim: number;
  constructor(@inject(TOKENS.Encoder) encoder: Encoder) {
    super();
    this.dim = encoder.outputDim;
    this.priorDim = encoder.outputDim;
  }
  sample(h: tf.Tensor2D, samples: number, _opts: PassOptions): LatentSample {
    return { z: tileSamples(h, samples), logQ: tf.zeros([samples * h.shape[0]]) as tf.Tensor1D, samples };
  }
  mode(h: tf.Tensor2D): tf.Tensor2D {
    return tf.clone(h);
  }
}
const pointLatent = definePlugin({ slot: 'latent', name: 'point', description: 'point mass (test)', schema: {}, implementation: PointLatent });

describe('beta-tcvae objective', () => {
  describeConformance(
    betaTcvaeObjective,
    [
      { config: {}, info: INFO },
      { config: { estimator: 'mss', alpha: 0.5, beta: 2, gamma: 0 }, info: INFO },
    ],
    {},
  );

  describe('minibatch estimates of log q(z) computed by hand for 2 points', () => {
    // Two examples, two dimensions: q(z|x_1) = N([0, 0], diag(1, 1)), q(z|x_2) = N([1, -1], diag(4, 1)),
    // codes z_1 = [0.5, 0.2] (drawn from x_1) and z_2 = [1, -2] (drawn from x_2).
    const loc = [
      [0, 0],
      [1, -1],
    ];
    const variance = [
      [1, 1],
      [4, 1],
    ];
    const z = [
      [0.5, 0.2],
      [1, -2],
    ];
    // lq[i][j][d] = log q(z_id | x_j)
    const lq = z.map((zi) => loc.map((m, j) => zi.map((zd, d) => logNormal(zd, m[d], variance[j][d]))));
    const joint = (i: number, j: number) => lq[i][j][0] + lq[i][j][1];
    // log q(z_i|x_i) and log p(z_i) under N(0, I)
    const logQ = [joint(0, 0), joint(1, 1)];
    const logP = z.map((zi) => logNormal(zi[0], 0, 1) + logNormal(zi[1], 0, 1));

    function run(N: number, estimator: 'mws' | 'mss') {
      const out = tcDecomposition(
        tf.tensor2d(z),
        tf.tensor2d(loc),
        tf.log(tf.tensor2d(variance)) as tf.Tensor2D,
        tf.tensor1d(logQ),
        tf.tensor1d(logP),
        N,
        estimator,
      );
      const r = Object.fromEntries(Object.entries(out).map(([k, t]) => [k, Array.from((t as tf.Tensor).dataSync())]));
      tf.dispose(Object.values(out));
      return r as Record<'logQz' | 'logQzProduct' | 'mi' | 'tc' | 'dimKl', number[]>;
    }

    // [estimator, N, weight of the code's own example, weight of the other example]
    const cases: Array<['mws' | 'mss', number, number, number]> = [
      ['mws', 2, 1 / 4, 1 / 4], // 1 / (N M) = 1/4 for both
      ['mws', 100, 1 / 200, 1 / 200], // 1 / (N M) = 1/200
      ['mss', 2, 1 / 2, 1 / 2], // M = N: 1/N for both, the exact aggregate 1/2 (q(z|x_1) + q(z|x_2))
      ['mss', 4, 1 / 4, 3 / 4], // own 1/N = 1/4; other (N - 1) / (N (M - 1)) = 3/4
    ];
    for (const [estimator, N, own, other] of cases) {
      it(`Should give log q(z_i) = log(${own} q(z_i|x_i) + ${other} q(z_i|x_other)), per dimension too, with ${estimator} and N = ${N}`, () => {
        const r = run(N, estimator);
        for (let i = 0; i < 2; i++) {
          const o = 1 - i;
          const logQz = logSumExp([Math.log(own) + joint(i, i), Math.log(other) + joint(i, o)]);
          const logQzProduct = [0, 1].reduce((s, d) => s + logSumExp([Math.log(own) + lq[i][i][d], Math.log(other) + lq[i][o][d]]), 0);
          expect(r.logQz[i], `log q(z_${i})`).to.be.closeTo(logQz, 1e-5);
          expect(r.logQzProduct[i], `sum_d log q(z_${i},d)`).to.be.closeTo(logQzProduct, 1e-5);
          expect(r.mi[i]).to.be.closeTo(logQ[i] - logQz, 1e-5);
          expect(r.tc[i]).to.be.closeTo(logQz - logQzProduct, 1e-5);
          expect(r.dimKl[i]).to.be.closeTo(logQzProduct - logP[i], 1e-5);
          // MI + TC + dimension KL = log q(z|x) - log p(z), whatever the weights
          expect(r.mi[i] + r.tc[i] + r.dimKl[i]).to.be.closeTo(logQ[i] - logP[i], 1e-5);
        }
      });
    }

    it('Should give weights that sum to 1 over a batch of M > 1 with mss (an unbiased q(z); 1/N when M = 1) and to 1/N with mws (the paper\'s estimator)', () => {
      // mss: 1/N + (M - 1) (N - 1) / (N (M - 1)) = 1; mws: M / (N M) = 1/N
      for (const [M, N] of [
        [4, 4],
        [4, 100],
        [1, 10],
      ]) {
        const mss = tf.exp(logImportanceWeights(M, N, 'mss'));
        const mws = tf.exp(logImportanceWeights(M, N, 'mws'));
        // with M = 1 there is no other example: the one weight is the code's own, 1/N
        const mssSums = tf.sum(mss, 1).dataSync();
        const mwsSums = tf.sum(mws, 1).dataSync();
        mssSums.forEach((s) => expect(s).to.be.closeTo(M === 1 ? 1 / N : 1, 1e-6));
        mwsSums.forEach((s) => expect(s).to.be.closeTo(1 / N, 1e-7));
        tf.dispose([mss, mws]);
      }
    });
  });

  describe('on a batch that is the whole data set (N = B = 8)', () => {
    const B = 8;
    const info = { ...TINY_IMAGE_INFO, trainSize: B };

    /** terms of the objective and the pass's own sample, drawn again from the same Rng key. */
    function termsAndSample(config: Record<string, unknown>, key: number) {
      const parts = buildParts({ objective: { use: 'beta-tcvae', 'beta-tcvae': config } }, info, { plugins });
      const batch = greyBatch(B, info, 3);
      const t = parts.objective.terms(batch, { training: true, rng: Rng.derive(5, 'tc', key), step: 0 });
      const pass = parts.model.forward(batch, 1, { training: true, rng: Rng.derive(5, 'tc', key) });
      const z = rows(pass.latent.z);
      const loc = rows(pass.latent.posterior!.loc);
      const logVar = rows(pass.latent.posterior!.logVar);
      const terms = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, Array.from(v.dataSync())]));
      tf.dispose([batch.x, ...Object.values(t), pass.params, pass.logPx, pass.latent.z, pass.latent.logQ, pass.latent.posterior!.loc, pass.latent.posterior!.logVar]);
      disposeParts(parts);
      // log q(z_i|x_j) over all dimensions, and log p(z_i) under the standard-normal prior
      const D = z[0].length;
      const lq = (i: number, j: number) => z[i].reduce((s, zd, d) => s + logNormal(zd, loc[j][d], Math.exp(logVar[j][d])), 0);
      const logP = z.map((zi) => zi.reduce((s, zd) => s + logNormal(zd, 0, 1), 0));
      return { terms, z, loc, logVar, lq, logP, D };
    }

    it('Should split the sampled KL log q(z|x) - log p(z) of every example into MI + TC + dimension KL (mws), so their batch means sum to the mean sampled KL', () => {
      const { terms, lq, logP } = termsAndSample({ estimator: 'mws' }, 0);
      let meanParts = 0;
      let meanKl = 0;
      for (let i = 0; i < B; i++) {
        const sampledKl = lq(i, i) - logP[i];
        expect(terms.mi[i] + terms.tc[i] + terms.dimKl[i], `example ${i}`).to.be.closeTo(sampledKl, 1e-4);
        meanParts += (terms.mi[i] + terms.tc[i] + terms.dimKl[i]) / B;
        meanKl += sampledKl / B;
        // the mws aggregate is 1/(N M) sum_j q(z_i|x_j) >= q(z_i|x_i) / (N M): MI <= log(N M) = log 64
        expect(terms.mi[i]).to.be.at.most(Math.log(B * B) + 1e-5);
      }
      expect(meanParts).to.be.closeTo(meanKl, 1e-4);
    });

    it('Should take log q(z) as the exact aggregate log(1/N sum_j q(z_i|x_j)) with mss, so MI <= log N for every example', () => {
      const { terms, lq } = termsAndSample({ estimator: 'mss' }, 1);
      for (let i = 0; i < B; i++) {
        const aggregate = logSumExp(Array.from({ length: B }, (_, j) => lq(i, j))) - Math.log(B);
        // mi = log q(z_i|x_i) - log q(z_i)
        expect(lq(i, i) - terms.mi[i], `log q(z_${i})`).to.be.closeTo(aggregate, 1e-4);
        // the aggregate is at least q(z_i|x_i) / N, so MI_i = log q(z_i|x_i) - log q(z_i) <= log N
        expect(terms.mi[i]).to.be.at.most(Math.log(B) + 1e-5);
      }
    });

    it('Should give loss = reconstruction + alpha MI + beta TC + gamma dimension KL, weighted by the linear warm-up (w = 1/4 at step 0 of 4)', () => {
      const cfg = { alpha: 0.5, beta: 3, gamma: 2, klSchedule: { use: 'linear', warmupSteps: 4 } };
      const { terms } = termsAndSample(cfg, 2);
      for (let i = 0; i < B; i++) {
        const reg = 0.5 * terms.mi[i] + 3 * terms.tc[i] + 2 * terms.dimKl[i];
        expect(terms.loss[i]).to.be.closeTo(terms.reconstruction[i] + 0.25 * reg, 1e-4);
        expect(terms.elbo[i]).to.be.closeTo(-(terms.reconstruction[i] + terms.kl[i]), 1e-4);
      }
    });

    it('Should equal the ELBO\'s loss in expectation with alpha = beta = gamma = 1 (mean of loss + elbo over 300 draws within 4 standard errors of 0)', () => {
      const parts = buildParts({ objective: { use: 'beta-tcvae', 'beta-tcvae': { alpha: 1, beta: 1, gamma: 1 } } }, info, { plugins });
      const batch = greyBatch(B, info, 4);
      const K = 300;
      const diffs: number[][] = Array.from({ length: B }, () => []);
      for (let k = 0; k < K; k++) {
        const t = parts.objective.terms(batch, { training: true, rng: Rng.derive(6, 'expectation', k), step: 0 });
        // loss - (-elbo) = (log q(z|x) - log p(z)) - KL(q(z|x) || p(z)): zero mean over z ~ q(z|x)
        const d = tf.add(t.loss, t.elbo).dataSync();
        d.forEach((v, i) => diffs[i].push(v));
        tf.dispose(Object.values(t));
      }
      tf.dispose(batch.x);
      disposeParts(parts);
      for (let i = 0; i < B; i++) {
        const m = diffs[i].reduce((s, v) => s + v, 0) / K;
        const sd = Math.sqrt(diffs[i].reduce((s, v) => s + (v - m) ** 2, 0) / (K - 1));
        expect(sd).to.be.above(0);
        expect(Math.abs(m), `example ${i}: mean ${m}, sd ${sd}`).to.be.below((4 * sd) / Math.sqrt(K));
      }
    });
  });

  describe('settings it refuses', () => {
    it('Should refuse a data description without the training-set size', () => {
      expectThrowExact(
        () => buildParts({ objective: { use: 'beta-tcvae' } }, TINY_IMAGE_INFO, { plugins }),
        ConfigError,
        'objective.beta-tcvae: minibatch-weighted sampling needs the training-set size N (DataInfo.trainSize, set when a session opens the data); got undefined',
      );
      expectThrowExact(
        () => buildParts({ objective: { use: 'beta-tcvae' } }, { ...TINY_IMAGE_INFO, trainSize: 0 }, { plugins }),
        ConfigError,
        'objective.beta-tcvae: minibatch-weighted sampling needs the training-set size N (DataInfo.trainSize, set when a session opens the data); got 0',
      );
    });

    it('Should refuse a latent without an exact Gaussian posterior, naming latent.use', () => {
      expectThrowExact(
        () => buildParts({ latent: { use: 'point' }, objective: { use: 'beta-tcvae' } }, INFO, { plugins: [...plugins, pointLatent] }),
        ConfigError,
        'latent.use: objective "beta-tcvae" needs a latent whose q(z|x) is exactly a diagonal Gaussian (one with Latent.posterior, e.g. "gaussian"); latent PointLatent has none',
      );
    });

    it('Should refuse a capacity target and a cyclical schedule shorter than its cycles, both at once', () => {
      expectThrowExact(
        () =>
          buildParts(
            { objective: { use: 'beta-tcvae', 'beta-tcvae': { klSchedule: { use: 'cyclical', totalSteps: 2, cycles: 4, capacityMax: 5 } } } },
            INFO,
            { plugins },
          ),
        ConfigError,
        '2 problems\n' +
          '  - objective.beta-tcvae.klSchedule.totalSteps: must be at least objective.beta-tcvae.klSchedule.cycles (4) when objective.beta-tcvae.klSchedule.use = "cyclical"; got 2\n' +
          '  - objective.beta-tcvae.klSchedule.capacityMax: beta-tcvae has no capacity target; must be 0; got 5',
      );
    });

    const bad: Array<[string, unknown, string]> = [
      ['alpha', -1, 'objective.beta-tcvae.alpha: must be a number >= 0; got -1'],
      ['beta', -0.5, 'objective.beta-tcvae.beta: must be a number >= 0; got -0.5'],
      ['gamma', 'one', 'objective.beta-tcvae.gamma: must be a number >= 0; got "one"'],
      ['estimator', 'mwss', 'objective.beta-tcvae.estimator: must be one of "mws", "mss"; got "mwss". Did you mean "mws"?'],
      ['betta', 6, 'objective.beta-tcvae.betta: not declared in the schema of plugin "beta-tcvae" (keys: alpha, beta, gamma, estimator, klSchedule). Did you mean "beta"?'],
    ];
    for (const [key, value, message] of bad) {
      it(`Should refuse ${key} = ${JSON.stringify(value)} with the exact message`, () => {
        expectThrowExact(() => experimentOf({ objective: { use: 'beta-tcvae', 'beta-tcvae': { [key]: value } } }, { plugins }), ConfigError, message);
      });
    }
  });
});
