/**
 * The importance-weighted autoencoder bound (Burda, Grosse & Salakhutdinov 2016,
 * https://arxiv.org/abs/1509.00519): with k draws z_1..z_k ~ q(z|x) and log-weights
 * log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x),
 *   L_k(x) = log (1/k) sum_i w_i  <=  log p(x),
 * with L_1 = ELBO and L_k rising to log p(x) as k grows. Loss = -L_k (+ the latent's terms).
 * Optionally with the doubly reparameterised gradient estimator DReG (Tucker, Lawson, Gu &
 * Maddison 2019, https://arxiv.org/abs/1810.04152) for the encoder. Reads objective.iwae.samples
 * and objective.iwae.estimator.
 */
import { inject, injectable } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import {
  addLatentTerms,
  ConfigError,
  Module,
  TOKENS,
  definePlugin,
  diagGaussianLogProb,
  logMeanExp,
  meanOverSamples,
  pluginConfig,
  stopGradient,
  tileSamples,
  type ConfigOf,
  type LatentSample,
  type ModelBatch,
  type Objective,
  type ObjectiveContext,
  type ObjectiveTerms,
  type VaeModel,
} from '../../core';

export const iwaeObjectiveSchema = {
  samples: { doc: 'importance samples k per input (k = 1 is the ELBO)', format: 'positive-int', default: 5 },
  estimator: {
    doc: 'gradient estimator: standard (the gradient of the bound) or dreg (doubly reparameterised encoder gradient; needs an exact diagonal-Gaussian posterior)',
    format: ['standard', 'dreg'],
    default: 'standard',
  },
} as const;

/**
 * Terms, each [B]: loss = -bound (+ latent terms); bound = log mean_i w_i (the k-sample IWAE
 * bound); elbo = mean_i log w_i (the plain ELBO estimated from the same k draws).
 *
 * Class of Burda et al. 2016 (https://arxiv.org/abs/1509.00519), with the DReG estimator of
 * Tucker et al. 2019 (https://arxiv.org/abs/1810.04152). Reads objective.iwae.samples (k) and
 * objective.iwae.estimator.
 */
@injectable()
export class IwaeObjective extends Module implements Objective {
  constructor(
    @inject(pluginConfig('objective', 'iwae')) private readonly cfg: ConfigOf<typeof iwaeObjectiveSchema>,
    @inject(TOKENS.Model) private readonly model: VaeModel,
  ) {
    super();
    // Refused when built (before any training step): a latent without the optional method
    // Latent.posterior does not claim that q is a diagonal Gaussian.
    if (cfg.estimator === 'dreg' && typeof model.latent.posterior !== 'function') {
      throw new ConfigError(
        `objective.iwae.estimator: "dreg" needs a latent whose q(z|x) is exactly a diagonal Gaussian (one that implements Latent.posterior); latent "${model.latent.constructor.name}" does not. Use estimator "standard" with this latent`,
      );
    }
  }

  terms(batch: ModelBatch, ctx: ObjectiveContext): ObjectiveTerms {
    return tf.tidy(() => {
      const k = this.cfg.samples;
      const pass = this.model.forward(batch, k, ctx);
      const latent = pass.latent;
      const logPz = this.model.logPrior(latent, batch.cond, ctx);
      // log w = log p(x|z) + log p(z) - log q(z|x). [k*B], sample-major
      const logW = tf.sub(tf.add(pass.logPx, logPz), latent.logQ) as tf.Tensor1D;
      const bound = logMeanExp(logW, k);
      const elbo = meanOverSamples(logW, k);
      let loss: tf.Tensor1D;
      if (this.cfg.estimator === 'dreg' && ctx.training) {
        // The value stays -bound; only the gradient is DReG's.
        const surrogate = this.dregSurrogate(batch, ctx, latent, pass.logPx, logPz, logW);
        loss = tf.sub(tf.neg(stopGradient(bound)), tf.sub(surrogate, stopGradient(surrogate))) as tf.Tensor1D;
      } else {
        loss = tf.neg(bound) as tf.Tensor1D;
      }
      const out: ObjectiveTerms = { loss, bound, elbo };
      return addLatentTerms(out, loss, latent);
    });
  }

  /**
   * A per-example scalar J [B] whose gradient is the DReG estimate of the gradient of the bound:
   *   J = sum_i sg(wn_i - wn_i^2) log w_i(sg z_i) + sum_i sg(wn_i^2) log w'_i(z_i)
   * where wn_i = w_i / sum_j w_j are the normalised weights and
   * log w'_i(z) = log p(x|z) + log p(z) - log N(z; sg loc, sg logVar), log q with its
   * parameters held fixed. A parameter reached through z (the encoder's, by the
   * reparameterisation z = loc + exp(logVar / 2) eps) gets sum_i wn_i^2 d log w'_i / dz_i dz_i/dphi
   * (Tucker et al. 2019, eq. 7; the score term of log q is dropped). A parameter that enters
   * log p directly (decoder, likelihood, a learned prior) gets (wn - wn^2) + wn^2 = wn: the
   * gradient of the bound itself, as in the standard estimator. The price is a second decoder
   * and likelihood pass on the stopped codes.
   */
  private dregSurrogate(
    batch: ModelBatch,
    ctx: ObjectiveContext,
    latent: LatentSample,
    logPx: tf.Tensor1D,
    logPz: tf.Tensor1D,
    logW: tf.Tensor1D,
  ): tf.Tensor1D {
    const k = this.cfg.samples;
    const post = latent.posterior;
    if (!post || latent.innerLogPrior || latent.priorZ) {
      const what = !post ? 'without posterior' : latent.innerLogPrior ? 'with inner layers (innerLogPrior)' : 'whose prior scores priorZ rather than z';
      throw new ConfigError(
        `objective.iwae.estimator: "dreg" needs each latent sample to carry an exact diagonal-Gaussian posterior over z, with no inner layers; latent "${this.model.latent.constructor.name}" returned one ${what}. Use estimator "standard" with this latent`,
      );
    }
    const z = latent.z as tf.Tensor2D;
    // log q(z|x) with stopped parameters: only the path through z carries a gradient.
    const logQFixed = diagGaussianLogProb(z, stopGradient(tileSamples(post.loc, k)), stopGradient(tileSamples(post.logVar, k)));
    const logWPath = tf.sub(tf.add(logPx, logPz), logQFixed) as tf.Tensor1D;
    // Normalised weights over the k samples of each input, held fixed. [k, B]
    const logWm = tf.reshape(stopGradient(logW), [k, -1]);
    const wn = tf.exp(tf.sub(logWm, tf.logSumExp(logWm, 0, true)));
    const wn2 = tf.square(wn);
    // The same codes with no gradient into the encoder, for the direct dependence of log p.
    const zFixed = stopGradient(z);
    const condS = tileSamples(batch.cond, k);
    const xS = tileSamples(batch.x, k);
    const params = this.model.decoder.decode(zFixed, condS, { ...ctx, cond: condS });
    const logPxFixed = this.model.likelihood.logProb(xS, params);
    const logPzFixed = this.model.logPrior({ ...latent, z: zFixed }, batch.cond, ctx);
    const direct = tf.reshape(tf.add(logPxFixed, logPzFixed), [k, -1]);
    const path = tf.reshape(logWPath, [k, -1]);
    return tf.add(tf.sum(tf.mul(tf.sub(wn, wn2), direct), 0), tf.sum(tf.mul(wn2, path), 0)) as tf.Tensor1D;
  }
}

export const iwaeObjective = definePlugin({
  slot: 'objective',
  name: 'iwae',
  description: 'negative k-sample importance-weighted bound (IWAE), optionally with the DReG encoder gradient',
  schema: iwaeObjectiveSchema,
  implementation: IwaeObjective,
});
