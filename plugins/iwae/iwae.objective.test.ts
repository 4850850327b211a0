import { expect } from 'chai';
import { inject, injectable } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import {
  ConfigError,
  Dense,
  Module,
  Rng,
  TOKENS,
  definePlugin,
  drawDiagGaussian,
  experimentFromObject,
  initRng,
  standardNormalLogProb,
  type Encoder,
  type Latent,
  type LatentSample,
  type PassOptions,
  type Prior,
} from '../../core';
import {
  buildParts,
  describeConformance,
  disposeBatch,
  disposeParts,
  experimentObject,
  expectThrowExact,
  gradientsOf,
  greyBatch,
  registryOf,
  TINY_IMAGE_INFO,
} from '../../testing';
import { exactLogP, linearGaussianParts, LG_POSTERIOR_VARIANCE } from '../elbo/linear-gaussian.fixture';
import { IwaeObjective, iwaeObjective } from './iwae.objective';

/**
 * The standard normal prior without its closed-form KL, so that the elbo objective takes the
 * Monte-Carlo KL mean_s(log q - log p) over the same draws as its reconstruction term.
 */
@injectable()
class NoClosedFormNormalPrior extends Module implements Prior {
  constructor(@inject(TOKENS.Latent) private readonly latent: Latent) {
    super();
  }
  logProb(z: tf.Tensor): tf.Tensor1D {
    return standardNormalLogProb(z as tf.Tensor2D);
  }
  sample(n: number, rng: Rng): tf.Tensor {
    return rng.normalTensor([n, this.latent.priorDim]);
  }
}
const noClosedFormNormalPrior = definePlugin({
  slot: 'prior',
  name: 'no-closed-form-normal',
  description: 'N(0, I) without analyticKl (test only)',
  schema: {},
  implementation: NoClosedFormNormalPrior,
});

/**
 * z = tanh(u), u ~ N(loc, exp(logVar)): q is not a Gaussian, so the latent implements no
 * `posterior` and sets only `posteriorStats` (test only).
 * log q(z) = log N(u) - sum log(1 - tanh(u)^2).
 */
@injectable()
class TanhGaussianLatent extends Module implements Latent {
  readonly dim = 2;
  readonly priorDim = 2;
  private readonly locHead: Dense;
  private readonly logVarHead: Dense;
  constructor(@inject(TOKENS.Encoder) encoder: Encoder, @inject(TOKENS.Seed) seed: number) {
    super();
    const rng = initRng(seed, 'latent', 'tanh-gaussian');
    this.locHead = this.track('loc', new Dense(encoder.outputDim, 2, rng));
    this.logVarHead = this.track('logVar', new Dense(encoder.outputDim, 2, rng));
  }
  sample(h: tf.Tensor2D, samples: number, opts: PassOptions): LatentSample {
    return tf.tidy(() => {
      const loc = this.locHead.apply(h);
      const logVar = this.logVarHead.apply(h);
      const { z: u, logQ: logQu } = drawDiagGaussian(loc, logVar, samples, opts.rng);
      const z = tf.tanh(u);
      const logQ = tf.sub(logQu, tf.sum(tf.log1p(tf.neg(tf.square(z))), -1));
      return { z, logQ, samples, posteriorStats: { loc, logVar } } as unknown as tf.TensorContainer;
    }) as unknown as LatentSample;
  }
  mode(h: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => tf.tanh(this.locHead.apply(h)));
  }
}
const tanhGaussianLatent = definePlugin({
  slot: 'latent',
  name: 'tanh-gaussian',
  description: 'tanh of a diagonal Gaussian (test only)',
  schema: {},
  implementation: TanhGaussianLatent,
});

const set = { plugins: [iwaeObjective, noClosedFormNormalPrior, tanhGaussianLatent] };

const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
const variance = (a: number[]) => {
  const m = mean(a);
  return a.reduce((s, v) => s + (v - m) ** 2, 0) / (a.length - 1);
};

describe('iwae objective', () => {
  describeConformance(iwaeObjective, [
    { config: { samples: 1 } },
    { config: { samples: 5 } },
    { config: { samples: 4, estimator: 'dreg' } },
  ]);

  describe('k = 1 is the ELBO', () => {
    it('Should equal the elbo objective\'s loss on the same batch and seed when both use the same draws (Monte-Carlo KL)', () => {
      // Both objectives call model.forward, whose latent draws its noise from ctx.rng: the same
      // Rng key gives the same z. With a prior that has no closed-form KL, elbo's loss is
      // -log p(x|z) + (log q(z|x) - log p(z)) = -log w, which is -L_1 for the same z.
      const parts = buildParts({ prior: { use: 'no-closed-form-normal' } }, TINY_IMAGE_INFO, set);
      const iwae = new IwaeObjective({ samples: 1, estimator: 'standard' }, parts.model);
      const batch = greyBatch(6, TINY_IMAGE_INFO);
      const ctx = () => ({ training: true, rng: Rng.derive(7, 'k1'), step: 0 });
      const e = parts.objective.terms(batch, ctx());
      const w = iwae.terms(batch, ctx());
      const [eLoss, wLoss, wBound, wElbo] = [e.loss, w.loss, w.bound, w.elbo].map((t) => Array.from(t.dataSync()));
      tf.dispose([...Object.values(e), ...Object.values(w)]);
      disposeBatch(batch);
      disposeParts(parts);
      for (let i = 0; i < 6; i++) {
        // log-likelihoods of 64 Bernoulli pixels are ~-50: float32 agreement to 1e-4 relative
        expect(wLoss[i], `loss of example ${i}`).to.be.closeTo(eLoss[i], 1e-4 * Math.abs(eLoss[i]));
        // log (1/1) exp(a) = a
        expect(wBound[i]).to.be.closeTo(wElbo[i], 1e-5 * Math.abs(wElbo[i]));
        expect(wLoss[i]).to.be.closeTo(-wBound[i], 1e-6 * Math.abs(wBound[i]));
      }
    });
  });

  describe('against a linear-Gaussian model with exact log p(x) (elbo/linear-gaussian.fixture.ts)', () => {
    const points: Array<[number, number]> = [
      [0.5, -0.2],
      [2.0, -1.0],
      [-1.0, 0.8],
    ];

    /** Bound and elbo of every row of `rows` (repeated points), read off. */
    function boundOf(q: { locShift: number; varianceScale: number }, k: number, rows: Array<[number, number]>, seed: number) {
      const parts = linearGaussianParts(q);
      const iwae = new IwaeObjective({ samples: k, estimator: 'standard' }, parts.model);
      const x = tf.tensor2d(rows);
      const t = iwae.terms({ x, cond: null }, { training: false, rng: Rng.derive(seed, 'iwae-linear', k), step: 0 });
      const bound = Array.from(t.bound.dataSync());
      const elbo = Array.from(t.elbo.dataSync());
      tf.dispose([x, ...Object.values(t)]);
      disposeParts(parts);
      return { bound, elbo };
    }

    for (const k of [1, 5, 50]) {
      it(`Should equal log p(x) for every draw at the exact posterior (k = ${k})`, () => {
        // q = p(z|x) makes every weight p(x, z) / p(z|x) = p(x): log w = log p(x) for every z.
        const { bound, elbo } = boundOf({ locShift: 0, varianceScale: 1 }, k, points, 3);
        points.forEach((p, i) => {
          expect(bound[i], `bound of point ${i}`).to.be.closeTo(exactLogP(p), 1e-4);
          expect(elbo[i], `elbo of point ${i}`).to.be.closeTo(exactLogP(p), 1e-4);
        });
      });
    }

    it('Should rise from the ELBO to log p(x) as k grows (q shifted by 0.2 and 1.5 times as wide; 600 draws of the bound per k)', () => {
      // q = N(m(x) + d, c v) against p(z|x) = N(m(x), v), the same shift and scale for every x, so
      // the gap log p(x) - L_k has the same law at each point and the 3 x 200 rows pool.
      //   k = 1:    E[gap] = KL(q || p(z|x)) = 0.5 (c + d^2 / v - log c - 1)
      //   large k:  E[gap] = Var_q(w / p(x)) / (2k) + O(1/k^2)  (delta method, Burda et al. 2016 / Maddison et al. 2017)
      //   with E_q[(p(z|x) / q(z))^2] = c / sqrt(2c - 1) exp(d^2 / (v (2c - 1))), a Gaussian integral
      const [d, c, v] = [0.2, 1.5, LG_POSTERIOR_VARIANCE];
      const kl = 0.5 * (c + (d * d) / v - Math.log(c) - 1); // = 0.286
      const weightVar = (c / Math.sqrt(2 * c - 1)) * Math.exp((d * d) / (v * (2 * c - 1))) - 1; // = 0.347
      const rows = points.flatMap((p) => Array.from({ length: 200 }, () => p));
      const logP = rows.map((p) => exactLogP(p));
      const gaps: Record<number, { mean: number; se: number }> = {};
      for (const k of [1, 10, 100, 1000]) {
        const { bound } = boundOf({ locShift: d, varianceScale: c }, k, rows, 11);
        const gap = bound.map((b, i) => logP[i] - b);
        gaps[k] = { mean: mean(gap), se: Math.sqrt(variance(gap) / gap.length) };
      }
      // float32 sums of terms of size ~5: 1e-4 on top of 4 standard errors
      expect(Math.abs(gaps[1].mean - kl), `k = 1: ${JSON.stringify(gaps[1])} vs KL ${kl}`).to.be.below(4 * gaps[1].se + 1e-4);
      for (const k of [100, 1000]) {
        const expected = weightVar / (2 * k);
        expect(Math.abs(gaps[k].mean - expected), `k = ${k}: ${JSON.stringify(gaps[k])} vs ${expected}`).to.be.below(4 * gaps[k].se + 1e-4);
      }
      // the bound never exceeds log p(x) on average, and the gap shrinks with k
      for (const k of [1, 10, 100, 1000]) expect(gaps[k].mean).to.be.above(-4 * gaps[k].se - 1e-4);
      expect(gaps[1].mean - gaps[10].mean).to.be.above(4 * Math.hypot(gaps[1].se, gaps[10].se));
    });
  });

  describe('DReG estimator', () => {
    const x = [
      [0.5, -0.2],
      [2.0, -1.0],
      [-1.0, 0.8],
    ];
    const isEncoderSide = (name: string) => name.startsWith('encoder/') || name.startsWith('latent/');

    /** Per-variable gradients (flattened, keyed as in checkpoints) of both estimators for each seed. */
    function gradientsBySeed(q: { locShift: number; varianceScale: number }, k: number, seeds: number) {
      const parts = linearGaussianParts(q);
      const vars = parts.model.variables();
      const objectives = {
        standard: new IwaeObjective({ samples: k, estimator: 'standard' }, parts.model),
        dreg: new IwaeObjective({ samples: k, estimator: 'dreg' }, parts.model),
      };
      const batch = { x: tf.tensor2d(x), cond: null };
      const out = { standard: [] as Array<Map<string, Float32Array>>, dreg: [] as Array<Map<string, Float32Array>> };
      for (let s = 0; s < seeds; s++) {
        for (const est of ['standard', 'dreg'] as const) {
          const ctx = { training: true, rng: Rng.derive(s, 'dreg-test'), step: 0 };
          out[est].push(gradientsOf(() => tf.mean(objectives[est].terms(batch, ctx).loss) as tf.Scalar, vars));
        }
      }
      batch.x.dispose();
      disposeParts(parts);
      return { out, names: [...vars.keys()] };
    }

    it('Should give a zero encoder gradient for every draw at the exact posterior, where the standard estimator\'s is not zero', () => {
      // q = p(z|x): log w(z) = log p(x) for every z, so d log w / dz = 0 and DReG's encoder term
      // sum_i wn_i^2 d log w_i / dz_i dz_i / dphi vanishes draw by draw. The standard estimator
      // keeps the score term -d log q / dphi, zero only in mean (Roeder et al. 2017).
      const { out, names } = gradientsBySeed({ locShift: 0, varianceScale: 1 }, 5, 5);
      let standardMax = 0;
      for (let s = 0; s < 5; s++) {
        for (const name of names.filter(isEncoderSide)) {
          for (const g of out.dreg[s].get(name) ?? []) expect(Math.abs(g), `dreg ${name} seed ${s}`).to.be.below(1e-4);
          for (const g of out.standard[s].get(name) ?? []) standardMax = Math.max(standardMax, Math.abs(g));
        }
      }
      expect(standardMax).to.be.above(1e-2);
    });

    it('Should match the standard IWAE gradient in mean over 400 seeds (paired, 4 standard errors), with the same decoder gradient draw by draw and a lower encoder variance (k = 5)', () => {
      // Decoder: both estimators give sum_i wn_i d log p(x|z_i) / dtheta for the same draws.
      // Encoder: E[DReG] = E[standard] (Tucker et al. 2019, eq. 7), the variances differ; tested
      // on the paired difference of the two estimates for the same draws. q is shifted by 0.2
      // and 1.5 times as wide as p(z|x): the weights have a finite variance (E_q[(p/q)^2] =
      // 1.35, see the bound test), so the means over seeds are trustworthy. (With q half as wide
      // the weights' variance is infinite and neither estimator's mean settles.)
      const seeds = 400;
      const { out, names } = gradientsBySeed({ locShift: 0.2, varianceScale: 1.5 }, 5, seeds);
      const report: string[] = [];
      let lowerVariance = 0;
      let entries = 0;
      for (const name of names) {
        const size = out.standard[0].get(name)!.length;
        for (let j = 0; j < size; j++) {
          const gs = out.standard.map((m) => m.get(name)![j]);
          const gd = out.dreg.map((m) => m.get(name)![j]);
          if (!isEncoderSide(name)) {
            gs.forEach((g, s) => expect(gd[s], `${name}[${j}] seed ${s}`).to.be.closeTo(g, 1e-4 * Math.max(1, Math.abs(g))));
            continue;
          }
          const diff = gd.map((g, s) => g - gs[s]);
          const se = Math.sqrt(variance(diff) / seeds);
          expect(Math.abs(mean(diff)), `${name}[${j}]: mean difference ${mean(diff)} +- ${se}`).to.be.below(4 * se + 1e-6);
          const [vs, vd] = [variance(gs), variance(gd)];
          report.push(`${name}[${j}] mean ${mean(gs).toFixed(4)} / ${mean(gd).toFixed(4)} var ${vs.toExponential(2)} / ${vd.toExponential(2)}`);
          entries += 1;
          if (vd < vs) lowerVariance += 1;
        }
      }
      // The comparison has power: the mean encoder gradient (the loc bias is pulled back against
      // the shift) is further from 0 than 4 standard errors of the paired difference.
      const pick = (m: Map<string, Float32Array>) => m.get('latent/loc/bias')![0];
      const locBiasDiff = out.dreg.map((m, s) => pick(m) - pick(out.standard[s]));
      expect(mean(out.dreg.map(pick))).to.be.above(4 * Math.sqrt(variance(locBiasDiff) / seeds));
      // eslint-disable-next-line no-console
      if (process.env.VAELAB_REPORT) console.log(`standard / dreg:\n  ${report.join('\n  ')}`);
      expect(lowerVariance, report.join('; ')).to.equal(entries);
    });
  });

  describe('bad settings', () => {
    it('Should refuse k = 0 with the exact message', () => {
      expectThrowExact(
        () => experimentFromObject(experimentObject({ objective: { use: 'iwae', iwae: { samples: 0 } } }), registryOf(set)),
        ConfigError,
        'objective.iwae.samples: must be an integer in [1, 2147483647]; got 0',
      );
    });

    it('Should refuse an unknown estimator with the exact message', () => {
      expectThrowExact(
        () => experimentFromObject(experimentObject({ objective: { use: 'iwae', iwae: { estimator: 'dreg2' } } }), registryOf(set)),
        ConfigError,
        'objective.iwae.estimator: must be one of "standard", "dreg"; got "dreg2". Did you mean "dreg"?',
      );
    });

    it('Should refuse an undeclared key with the exact message', () => {
      expectThrowExact(
        () => experimentFromObject(experimentObject({ objective: { use: 'iwae', iwae: { k: 5 } } }), registryOf(set)),
        ConfigError,
        'objective.iwae.k: not declared in the schema of plugin "iwae" (keys: samples, estimator)',
      );
    });

    it('Should refuse dreg with a latent that has no exact diagonal-Gaussian posterior when the model is built, and accept the standard estimator with it', () => {
      const latent = { use: 'tanh-gaussian' };
      expectThrowExact(
        () => buildParts({ latent, objective: { use: 'iwae', iwae: { estimator: 'dreg' } } }, TINY_IMAGE_INFO, set),
        ConfigError,
        'objective.iwae.estimator: "dreg" needs a latent whose q(z|x) is exactly a diagonal Gaussian (one that implements Latent.posterior); latent "TanhGaussianLatent" does not. Use estimator "standard" with this latent',
      );
      const parts = buildParts({ latent, objective: { use: 'iwae', iwae: { estimator: 'standard' } } }, TINY_IMAGE_INFO, set);
      const batch = greyBatch(2, TINY_IMAGE_INFO);
      const t = parts.objective.terms(batch, { training: true, rng: Rng.derive(0, 'tanh'), step: 0 });
      expect(Array.from(t.loss.dataSync()).every(Number.isFinite)).to.equal(true);
      tf.dispose(Object.values(t));
      disposeBatch(batch);
      disposeParts(parts);
    });
  });
});
