/**
 * The beta-VAE objective family: a weighted KL with the shared KL-weight schedule (core's
 * klSchedule), the capacity-controlled form, and free bits.
 *
 * - mode "beta" (Higgins et al. 2017, https://openreview.net/forum?id=Sy2fzU9gl):
 *   loss = reconstruction + beta * w(step) * KL (+ latent terms).
 * - mode "capacity" (Burgess et al. 2018, https://arxiv.org/abs/1804.03599):
 *   loss = reconstruction + gamma * w(step) * |KL - C(step)| (+ latent terms), C rising linearly
 *   from 0 to klSchedule.capacityMax over klSchedule.capacitySteps steps.
 * - free bits (Kingma et al. 2016, https://arxiv.org/abs/1606.04934), mode "beta" only: the KL
 *   enters the loss as sum_j max(lambda, E_batch[KL_j]) over groups j of freeBits.groupSize
 *   latent dimensions (lambda = freeBits.natsPerGroup), or with freeBits.over = "example" as
 *   sum_j max(lambda, KL_j) per example. Needs the prior's closed-form KL per dimension.
 *
 * Reads objective.beta-vae.{beta, mode, gamma, samples, klSchedule.*, freeBits.*}.
 */
import { inject, injectable } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import {
  addLatentTerms,
  ConfigError,
  Module,
  TOKENS,
  capacityAt,
  definePlugin,
  klScheduleProblems,
  klScheduleSchema,
  meanOverSamples,
  pluginConfig,
  weightAt,
  type ConfigOf,
  type LatentSample,
  type ModelBatch,
  type Objective,
  type ObjectiveContext,
  type ObjectiveTerms,
  type VaeModel,
} from '../../core';

const KEY = 'objective.beta-vae';

export const betaVaeObjectiveSchema = {
  mode: {
    doc: 'beta: reconstruction + beta * w * KL; capacity: reconstruction + gamma * w * |KL - C| (Burgess et al. 2018)',
    format: ['beta', 'capacity'],
    default: 'beta',
  },
  beta: { doc: 'KL weight in mode beta; 1 with a constant schedule is the plain ELBO', format: 'positive-number', default: 4 },
  gamma: { doc: 'weight of |KL - C| in mode capacity', format: 'positive-number', default: 1000 },
  samples: { doc: 'Monte-Carlo samples of z per input', format: 'positive-int', default: 1 },
  klSchedule: klScheduleSchema,
  freeBits: {
    natsPerGroup: {
      doc: 'free bits: KL below this many nats per group of dimensions costs nothing (Kingma et al. 2016); 0 = off',
      format: 'non-negative-number',
      default: 0,
    },
    groupSize: { doc: 'free bits: latent dimensions per group (1 = per dimension); must divide the latent priorDim', format: 'positive-int', default: 1 },
    over: {
      doc: 'free bits: clamp the batch mean of each group KL (batch, as Kingma et al.) or each example own (example)',
      format: ['batch', 'example'],
      default: 'batch',
    },
  },
} as const;

/**
 * The beta-VAE objective. Terms, each [B]:
 * loss; reconstruction = -E_q[log p(x|z)]; kl = KL(q(z|x) || p(z)) unweighted;
 * elbo = -(reconstruction + kl); klWeight = beta * w(step) (mode beta) or gamma * w(step)
 * (mode capacity); klPenalty = what the weight multiplies (the KL, the free-bits KL, or
 * |KL - C|); capacity = C(step) (mode capacity only); each latent term under its own name.
 */
@injectable()
export class BetaVaeObjective extends Module implements Objective {
  private readonly groupCount: number;

  constructor(
    @inject(pluginConfig('objective', 'beta-vae')) private readonly cfg: ConfigOf<typeof betaVaeObjectiveSchema>,
    @inject(TOKENS.Model) private readonly model: VaeModel,
  ) {
    super();
    const problems = klScheduleProblems(cfg.klSchedule, `${KEY}.klSchedule`);
    if (cfg.mode === 'capacity' && !(cfg.klSchedule.capacityMax > 0)) {
      problems.push(
        `${KEY}.klSchedule.capacityMax: must be a positive number of nats when ${KEY}.mode = "capacity" (the target C rises to it); got ${cfg.klSchedule.capacityMax}`,
      );
    }
    const fb = cfg.freeBits;
    if (fb.natsPerGroup > 0) {
      const priorDim = model.latent.priorDim;
      if (cfg.mode !== 'beta') {
        problems.push(`${KEY}.freeBits.natsPerGroup: free bits apply in ${KEY}.mode = "beta" only; got ${fb.natsPerGroup} with mode "${cfg.mode}"`);
      }
      if (typeof model.prior.analyticKl !== 'function') {
        problems.push(
          `${KEY}.freeBits.natsPerGroup: free bits need the KL per latent dimension in closed form (Prior.analyticKl with perDim); prior "${model.prior.constructor.name}" has none. Set ${KEY}.freeBits.natsPerGroup = 0, or use a prior with a closed-form KL`,
        );
      }
      if (priorDim % fb.groupSize !== 0) {
        problems.push(`${KEY}.freeBits.groupSize: must divide the latent's priorDim (${priorDim}); got ${fb.groupSize}`);
      }
    }
    if (problems.length > 0) throw new ConfigError(problems);
    this.groupCount = fb.natsPerGroup > 0 ? model.latent.priorDim / fb.groupSize : 0;
  }

  /**
   * The KL as it enters the loss with free bits, per example [B], and the KL itself [B].
   * Per-dimension KL [B, D] from the prior's closed form, summed into groups [B, G].
   */
  private freeBitsKl(latent: LatentSample, batch: ModelBatch, ctx: ObjectiveContext): { kl: tf.Tensor1D; penalty: tf.Tensor1D } {
    const post = latent.posterior;
    if (!post || latent.innerLogPrior || latent.innerKl) {
      throw new ConfigError(
        `${KEY}.freeBits.natsPerGroup: free bits need the KL per latent dimension in closed form; latent "${this.model.latent.constructor.name}" gives ${post ? 'inner layers besides its diagonal-Gaussian posterior' : 'no exact diagonal-Gaussian posterior'}. Set ${KEY}.freeBits.natsPerGroup = 0, or use a Gaussian latent such as "gaussian"`,
      );
    }
    const { natsPerGroup: lambda, groupSize, over } = this.cfg.freeBits;
    const perDim = this.model.prior.analyticKl!(post, batch.cond, true, { ...ctx, cond: batch.cond }) as tf.Tensor2D;
    const b = perDim.shape[0];
    const perGroup = groupSize === 1 ? perDim : (tf.sum(tf.reshape(perDim, [b, this.groupCount, groupSize]), 2) as tf.Tensor2D);
    let clamped: tf.Tensor2D;
    if (over === 'example') {
      // max passes the gradient to the groups above lambda only
      clamped = tf.maximum(perGroup, lambda);
    } else {
      // Kingma et al.: max(lambda, E_batch[KL_j]). Per example, a group whose batch mean is at
      // least lambda keeps its KL (so the batch mean and its gradient are those of E_batch[KL_j]);
      // a group below lambda contributes the constant lambda, with no gradient. The mask is a
      // decision, not a function to differentiate.
      const above = tf.cast(tf.greaterEqual(tf.mean(perGroup, 0, true), lambda), 'float32');
      const keep = tf.mul(perGroup, above);
      clamped = tf.add(keep, tf.mul(tf.sub(1, above), lambda)) as tf.Tensor2D;
    }
    return { kl: tf.sum(perDim, 1) as tf.Tensor1D, penalty: tf.sum(clamped, 1) as tf.Tensor1D };
  }

  terms(batch: ModelBatch, ctx: ObjectiveContext): ObjectiveTerms {
    return tf.tidy(() => {
      const { cfg } = this;
      const pass = this.model.forward(batch, cfg.samples, ctx);
      const reconstruction = tf.neg(meanOverSamples(pass.logPx, pass.latent.samples)) as tf.Tensor1D;
      const b = reconstruction.shape[0];
      const w = weightAt(cfg.klSchedule, ctx.step);
      const out: ObjectiveTerms = { loss: reconstruction, reconstruction };
      let kl: tf.Tensor1D;
      let penalty: tf.Tensor1D;
      let weight: number;
      if (cfg.freeBits.natsPerGroup > 0) {
        ({ kl, penalty } = this.freeBitsKl(pass.latent, batch, ctx));
        weight = cfg.beta * w;
      } else {
        kl = this.model.kl(pass.latent, batch.cond, ctx).kl;
        if (cfg.mode === 'capacity') {
          const c = capacityAt(cfg.klSchedule, ctx.step);
          penalty = tf.abs(tf.sub(kl, c)) as tf.Tensor1D;
          weight = cfg.gamma * w;
          out.capacity = tf.fill([b], c) as tf.Tensor1D;
        } else {
          penalty = kl;
          weight = cfg.beta * w;
        }
      }
      out.kl = kl;
      out.elbo = tf.neg(tf.add(reconstruction, kl)) as tf.Tensor1D;
      out.klWeight = tf.fill([b], weight) as tf.Tensor1D;
      out.klPenalty = penalty;
      let loss = tf.add(reconstruction, tf.mul(penalty, weight)) as tf.Tensor1D;
      return addLatentTerms(out, loss, pass.latent);
    });
  }
}

export const betaVaeObjective = definePlugin({
  slot: 'objective',
  name: 'beta-vae',
  description: 'beta-VAE: reconstruction + beta * w(step) * KL, capacity-controlled |KL - C| or free bits',
  schema: betaVaeObjectiveSchema,
  implementation: BetaVaeObjective,
});
