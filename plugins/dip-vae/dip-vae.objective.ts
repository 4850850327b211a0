/**
 * DIP-VAE (Kumar, Sattigeri & Balakrishnan 2018, https://arxiv.org/abs/1711.00848): the ELBO plus
 * a penalty that pushes a covariance of the batch's codes to the identity,
 *   dip = lambdaOffDiagonal * sum_{i != j} Cov_ij^2 + lambdaDiagonal * sum_i (Cov_ii - 1)^2,
 * with Cov = Cov_batch(mu) for variant i, and the aggregate posterior's covariance
 * Cov[z] = Cov_batch(mu) + mean_batch(diag(exp(logVar))) for variant ii (mu, logVar: the
 * parameters of the Gaussian q(z|x)). Reads objective.dip-vae.variant, lambdaOffDiagonal and
 * lambdaDiagonal. Needs a latent whose q(z|x) is exactly a diagonal Gaussian.
 */
import { inject, injectable } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import {
  addLatentTerms,
  ConfigError,
  Module,
  TOKENS,
  definePlugin,
  pluginConfig,
  type ConfigOf,
  type DiagGaussianParams,
  type ModelBatch,
  type Objective,
  type ObjectiveContext,
  type ObjectiveTerms,
  type VaeModel,
} from '../../core';

/** DIP-VAE-I regularises Cov(mu); DIP-VAE-II the aggregate posterior's Cov[z]. */
export const DIP_VARIANTS = ['i', 'ii'] as const;
export type DipVariant = (typeof DIP_VARIANTS)[number];

export const dipVaeObjectiveSchema = {
  variant: { doc: 'i: covariance of the posterior means; ii: covariance of the aggregate posterior', format: DIP_VARIANTS, default: 'i' },
  lambdaOffDiagonal: { doc: 'weight of the squared off-diagonal entries of the covariance', format: 'positive-number', default: 10 },
  lambdaDiagonal: {
    doc: "weight of the squared deviations of the diagonal from 1; -1 = the paper's choice (10 x lambdaOffDiagonal for i, lambdaOffDiagonal for ii)",
    format: 'number',
    default: -1,
  },
} as const;

/**
 * The covariance DIP-VAE regularises, over the batch (the mean over rows, 1/B, as a moment of
 * the batch's empirical distribution). Shapes: loc, logVar [B, D] -> [D, D].
 *   i:  Cov(mu) = mean(mu mu^T) - mean(mu) mean(mu)^T
 *   ii: Cov(mu) + diag(mean(exp(logVar)))
 */
export function dipCovariance(q: DiagGaussianParams, variant: DipVariant): tf.Tensor2D {
  return tf.tidy(() => {
    const B = q.loc.shape[0];
    const centred = tf.sub(q.loc, tf.mean(q.loc, 0, true));
    const covMu = tf.div(tf.matMul(centred, centred, true, false), B) as tf.Tensor2D;
    if (variant === 'i') return covMu;
    // eye * row vector, not tf.diag: tfjs has no gradient for Diag
    const D = q.loc.shape[1];
    return tf.add(covMu, tf.mul(tf.eye(D), tf.mean(tf.exp(q.logVar), 0, true))) as tf.Tensor2D;
  });
}

/**
 * lambdaOffDiagonal * sum_{i != j} Cov_ij^2 + lambdaDiagonal * sum_i (Cov_ii - 1)^2.
 * Shapes: loc, logVar [B, D] -> scalar.
 */
export function dipPenalty(q: DiagGaussianParams, variant: DipVariant, lambdaOffDiagonal: number, lambdaDiagonal: number): tf.Scalar {
  return tf.tidy(() => {
    const cov = dipCovariance(q, variant);
    const D = cov.shape[0];
    const eye = tf.eye(D);
    const offDiagonal = tf.sum(tf.square(tf.mul(cov, tf.sub(1, eye))));
    const diagonal = tf.sum(tf.square(tf.sub(tf.sum(tf.mul(cov, eye), 1), 1)));
    return tf.add(tf.mul(lambdaOffDiagonal, offDiagonal), tf.mul(lambdaDiagonal, diagonal)) as tf.Scalar;
  });
}

/**
 * Terms, each [B]: loss = reconstruction + kl + dip; elbo = -(reconstruction + kl); dip is the
 * batch's penalty, the same in every row.
 */
@injectable()
export class DipVaeObjective extends Module implements Objective {
  /** The diagonal weight, resolved (-1 becomes the paper's choice for the variant). */
  readonly lambdaDiagonal: number;

  constructor(
    @inject(pluginConfig('objective', 'dip-vae')) private readonly cfg: ConfigOf<typeof dipVaeObjectiveSchema>,
    @inject(TOKENS.Model) private readonly model: VaeModel,
  ) {
    super();
    if (cfg.lambdaDiagonal < 0 && cfg.lambdaDiagonal !== -1) {
      throw new ConfigError(
        `objective.dip-vae.lambdaDiagonal: must be a number >= 0, or -1 for the paper's choice (10 x lambdaOffDiagonal for variant i, lambdaOffDiagonal for ii); got ${cfg.lambdaDiagonal}`,
      );
    }
    if (typeof model.latent.posterior !== 'function') {
      throw new ConfigError(
        `objective.dip-vae: needs a latent whose q(z|x) is exactly a diagonal Gaussian (a Latent with posterior(), such as latent.use: gaussian); latent ${JSON.stringify(model.latent.constructor.name)} has none`,
      );
    }
    this.lambdaDiagonal =
      cfg.lambdaDiagonal >= 0 ? cfg.lambdaDiagonal : cfg.variant === 'i' ? 10 * cfg.lambdaOffDiagonal : cfg.lambdaOffDiagonal;
  }

  terms(batch: ModelBatch, ctx: ObjectiveContext): ObjectiveTerms {
    return tf.tidy(() => {
      const pass = this.model.forward(batch, 1, ctx);
      const q = pass.latent.posterior;
      if (!q) {
        throw new ConfigError(
          `objective.dip-vae: needs a latent whose q(z|x) is exactly a diagonal Gaussian (LatentSample.posterior set, such as latent.use: gaussian); latent ${JSON.stringify(this.model.latent.constructor.name)} returned none`,
        );
      }
      const reconstruction = tf.neg(pass.logPx) as tf.Tensor1D;
      const { kl } = this.model.kl(pass.latent, batch.cond, ctx);
      const penalty = dipPenalty(q, this.cfg.variant, this.cfg.lambdaOffDiagonal, this.lambdaDiagonal);
      const dip = tf.mul(tf.ones([batch.x.shape[0]]), penalty) as tf.Tensor1D;
      const negElbo = tf.add(reconstruction, kl);
      let loss = tf.add(negElbo, dip) as tf.Tensor1D;
      const out: ObjectiveTerms = { loss, reconstruction, kl, dip, elbo: tf.neg(negElbo) as tf.Tensor1D };
      return addLatentTerms(out, loss, pass.latent);
    });
  }
}

export const dipVaeObjective = definePlugin({
  slot: 'objective',
  name: 'dip-vae',
  description: 'DIP-VAE I/II: ELBO + a penalty pushing the covariance of the codes to the identity',
  schema: dipVaeObjectiveSchema,
  implementation: DipVaeObjective,
});
