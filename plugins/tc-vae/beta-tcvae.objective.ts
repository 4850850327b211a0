/**
 * beta-TCVAE (Chen et al. 2018, "Isolating Sources of Disentanglement in VAEs",
 * https://arxiv.org/abs/1802.04942): the KL term of the ELBO, averaged over the data, splits into
 *   E_x KL(q(z|x) || p(z)) = MI(x; z) + TC(z) + sum_d KL(q(z_d) || p(z_d))
 *   index-code MI   = E[log q(z|x) - log q(z)]
 *   total correl.   = E[log q(z) - sum_d log q(z_d)]
 *   dimension KL    = E[sum_d log q(z_d) - log p(z)]
 * where q(z) = 1/N sum_n q(z|x_n) is the aggregate posterior over the N training examples. The
 * objective weights the three parts with alpha, beta and gamma. log q(z) and log q(z_d) are
 * estimated on the minibatch, by minibatch-weighted sampling (MWS, the paper's estimator) or by
 * minibatch-stratified sampling (MSS). Reads objective.beta-tcvae.{alpha, beta, gamma, estimator,
 * klSchedule}.
 */
import { inject, injectable } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import {
  addLatentTerms,
  ConfigError,
  LOG_2PI,
  Module,
  TOKENS,
  definePlugin,
  klScheduleProblems,
  klScheduleSchema,
  pluginConfig,
  weightAt,
  type ConfigOf,
  type DataInfo,
  type Latent,
  type ModelBatch,
  type Objective,
  type ObjectiveContext,
  type ObjectiveTerms,
  type VaeModel,
} from '../../core';

/** The estimators of log q(z) on a minibatch. */
export const TC_ESTIMATORS = ['mws', 'mss'] as const;
export type TcEstimator = (typeof TC_ESTIMATORS)[number];

export const betaTcvaeObjectiveSchema = {
  alpha: { doc: 'weight of the index-code mutual information', format: 'non-negative-number', default: 1 },
  beta: { doc: 'weight of the total correlation (the paper\'s beta)', format: 'non-negative-number', default: 6 },
  gamma: { doc: 'weight of the dimension-wise KL', format: 'non-negative-number', default: 1 },
  estimator: {
    doc: 'estimator of log q(z): mws (minibatch-weighted sampling, the paper\'s) or mss (minibatch-stratified sampling)',
    format: TC_ESTIMATORS,
    default: 'mws',
  },
  klSchedule: klScheduleSchema,
} as const;

/** The three parts of the KL and the aggregate log-densities they come from. Every tensor [B]. */
export interface TcDecomposition {
  /** log q(z_i), the aggregate posterior at each code. [B] */
  logQz: tf.Tensor1D;
  /** sum_d log q(z_i,d), the product of the aggregate marginals. [B] */
  logQzProduct: tf.Tensor1D;
  /** log q(z_i|x_i) - log q(z_i). [B] */
  mi: tf.Tensor1D;
  /** log q(z_i) - sum_d log q(z_i,d). [B] */
  tc: tf.Tensor1D;
  /** sum_d log q(z_i,d) - log p(z_i). [B] */
  dimKl: tf.Tensor1D;
}

/**
 * log of the weight of q(z_i | x_j) in the minibatch estimate of q(z_i), [M, M] for a batch of M
 * out of N training examples:
 * - mws: 1 / (N M) for every pair (Chen et al. 2018, and their code);
 * - mss: 1 / N for j = i (the code's own example) and (N - 1) / (N (M - 1)) for j != i (the
 *   other M - 1 examples stand for the other N - 1). With M = N every weight is 1 / N, so the
 *   estimate is the exact aggregate q(z_i) = 1/N sum_n q(z_i|x_n). With M = 1 there is only
 *   j = i, of weight 1 / N (the other N - 1 examples are missing from the estimate).
 */
export function logImportanceWeights(batchSize: number, trainSize: number, estimator: TcEstimator): tf.Tensor2D {
  const M = batchSize;
  const N = trainSize;
  if (estimator === 'mws') return tf.fill([M, M], -Math.log(N * M)) as tf.Tensor2D;
  const off = M > 1 ? Math.log((N - 1) / (N * (M - 1))) : 0;
  return tf.tidy(() => {
    const eye = tf.eye(M);
    return tf.add(tf.mul(eye, -Math.log(N)), tf.mul(tf.sub(1, eye), off)) as tf.Tensor2D;
  });
}

/**
 * The minibatch decomposition of log q(z|x) - log p(z) into MI + TC + dimension KL for one code
 * per example. With w_ij the weights of `logImportanceWeights` and
 * log q(z_i,d | x_j) = -0.5 (log 2pi + logVar_jd + (z_id - loc_jd)^2 / exp(logVar_jd)):
 *   log q(z_i)    = logsumexp_j (log w_ij + sum_d log q(z_id | x_j))
 *   log q(z_i,d)  = logsumexp_j (log w_ij + log q(z_id | x_j))
 * and the three parts sum to logQ - logP exactly, whatever the weights.
 * Shapes: z, loc, logVar [B, D]; logQ = log q(z_i|x_i), logP = log p(z_i) [B].
 */
export function tcDecomposition(
  z: tf.Tensor2D,
  loc: tf.Tensor2D,
  logVar: tf.Tensor2D,
  logQ: tf.Tensor1D,
  logP: tf.Tensor1D,
  trainSize: number,
  estimator: TcEstimator,
): TcDecomposition {
  return tf.tidy(() => {
    const [B, D] = z.shape;
    // [B, B, D]: entry (i, j, d) = log q(z_id | x_j)
    const diff = tf.sub(tf.reshape(z, [B, 1, D]), tf.reshape(loc, [1, B, D]));
    const lv = tf.reshape(logVar, [1, B, D]);
    const logQPair = tf.mul(tf.add(tf.add(tf.mul(tf.square(diff), tf.exp(tf.neg(lv))), lv), LOG_2PI), -0.5);
    const logW = logImportanceWeights(B, trainSize, estimator);
    const logQz = tf.logSumExp(tf.add(tf.sum(logQPair, 2), logW), 1) as tf.Tensor1D;
    const logQzProduct = tf.sum(tf.logSumExp(tf.add(logQPair, tf.reshape(logW, [B, B, 1])), 1), 1) as tf.Tensor1D;
    return {
      logQz,
      logQzProduct,
      mi: tf.sub(logQ, logQz) as tf.Tensor1D,
      tc: tf.sub(logQz, logQzProduct) as tf.Tensor1D,
      dimKl: tf.sub(logQzProduct, logP) as tf.Tensor1D,
    } as unknown as tf.TensorContainer;
  }) as unknown as TcDecomposition;
}

/**
 * beta-TCVAE objective (Chen et al. 2018, https://arxiv.org/abs/1802.04942). One code per input.
 * Terms, each [B]:
 *   loss = reconstruction + w(step) * (alpha * mi + beta * tc + gamma * dimKl) (+ latent terms)
 *   mi, tc, dimKl: the minibatch decomposition (tcDecomposition), summing to log q(z|x) - log p(z)
 *   kl: the model's KL (closed form when the prior has one); elbo = -(reconstruction + kl)
 * w(step) is the KL-weight schedule (klSchedule; constant 1 by default). Needs the training-set
 * size N (DataInfo.trainSize) and a latent whose q(z|x) is exactly a diagonal Gaussian.
 * Reads objective.beta-tcvae.{alpha, beta, gamma, estimator, klSchedule}.
 */
@injectable()
export class BetaTcvaeObjective extends Module implements Objective {
  private readonly trainSize: number;

  constructor(
    @inject(pluginConfig('objective', 'beta-tcvae')) private readonly cfg: ConfigOf<typeof betaTcvaeObjectiveSchema>,
    @inject(TOKENS.Model) private readonly model: VaeModel,
    @inject(TOKENS.Latent) latent: Latent,
    @inject(TOKENS.DataInfo) data: DataInfo,
  ) {
    super();
    const problems: string[] = [];
    if (!(typeof data.trainSize === 'number' && data.trainSize > 0)) {
      problems.push(
        `objective.beta-tcvae: minibatch-weighted sampling needs the training-set size N (DataInfo.trainSize, set when a session opens the data); got ${data.trainSize}`,
      );
    }
    if (typeof latent.posterior !== 'function') {
      problems.push(
        `latent.use: objective "beta-tcvae" needs a latent whose q(z|x) is exactly a diagonal Gaussian (one with Latent.posterior, e.g. "gaussian"); latent ${latent.constructor.name} has none`,
      );
    }
    problems.push(...klScheduleProblems(cfg.klSchedule, 'objective.beta-tcvae.klSchedule'));
    if (cfg.klSchedule.capacityMax > 0) {
      problems.push(`objective.beta-tcvae.klSchedule.capacityMax: beta-tcvae has no capacity target; must be 0; got ${cfg.klSchedule.capacityMax}`);
    }
    if (problems.length > 0) throw new ConfigError(problems);
    this.trainSize = data.trainSize as number;
  }

  terms(batch: ModelBatch, ctx: ObjectiveContext): ObjectiveTerms {
    return tf.tidy(() => {
      const pass = this.model.forward(batch, 1, ctx);
      const { latent } = pass;
      if (!latent.posterior || latent.innerLogPrior) {
        throw new ConfigError(
          `latent.use: objective "beta-tcvae" needs a sample with an exact diagonal-Gaussian posterior and no inner layers; latent ${this.model.latent.constructor.name} gave ${latent.posterior ? 'inner layers' : 'no posterior'}`,
        );
      }
      const z = tf.reshape(latent.priorZ ?? latent.z, [batch.x.shape[0], -1]) as tf.Tensor2D;
      const logP = this.model.logPrior(latent, batch.cond, ctx);
      const parts = tcDecomposition(z, latent.posterior.loc, latent.posterior.logVar, latent.logQ, logP, this.trainSize, this.cfg.estimator);
      const reconstruction = tf.neg(pass.logPx) as tf.Tensor1D;
      const { kl } = this.model.kl(latent, batch.cond, ctx);
      const w = weightAt(this.cfg.klSchedule, ctx.step);
      const regulariser = tf.addN([tf.mul(parts.mi, this.cfg.alpha), tf.mul(parts.tc, this.cfg.beta), tf.mul(parts.dimKl, this.cfg.gamma)]);
      let loss = tf.add(reconstruction, tf.mul(regulariser, w)) as tf.Tensor1D;
      const out: ObjectiveTerms = {
        loss,
        reconstruction,
        mi: parts.mi,
        tc: parts.tc,
        dimKl: parts.dimKl,
        kl,
        elbo: tf.neg(tf.add(reconstruction, kl)) as tf.Tensor1D,
      };
      return addLatentTerms(out, loss, latent);
    });
  }
}

export const betaTcvaeObjective = definePlugin({
  slot: 'objective',
  name: 'beta-tcvae',
  description: 'beta-TCVAE: reconstruction + alpha MI + beta TC + gamma dimension-wise KL (Chen et al. 2018)',
  schema: betaTcvaeObjectiveSchema,
  implementation: BetaTcvaeObjective,
});
