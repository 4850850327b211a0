/**
 * InfoVAE (Zhao et al. 2019, https://arxiv.org/abs/1706.02262) with the MMD divergence, which
 * with alpha = 1 is the WAE-MMD of Tolstikhin et al. 2018 (https://arxiv.org/abs/1711.01558):
 *   loss(x) = -E_q[log p(x|z)] + (1 - alpha) KL(q(z|x) || p(z)) + (alpha + lambda - 1) MMD^2(q(z), p(z))
 * where MMD^2 is the unbiased U-statistic between the batch's posterior samples (draws of the
 * aggregate posterior q(z) = E_x q(z|x)) and as many prior draws. Reads objective.info-vae.alpha,
 * lambda, kernel and scale.
 */
import { inject, injectable } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import {
  addLatentTerms,
  ConfigError,
  Module,
  TOKENS,
  definePlugin,
  meanOverSamples,
  pluginConfig,
  tileSamples,
  type ConfigOf,
  type ModelBatch,
  type Objective,
  type ObjectiveContext,
  type ObjectiveTerms,
  type VaeModel,
} from '../../core';

/** The kernels of the MMD: Gaussian (RBF) and inverse multiquadratic. */
export const MMD_KERNELS = ['rbf', 'imq'] as const;
export type MmdKernel = (typeof MMD_KERNELS)[number];

export const infoVaeObjectiveSchema = {
  alpha: {
    doc: 'InfoVAE alpha: the KL weight is 1 - alpha (1 = WAE-MMD, no KL); at most 1',
    format: 'number',
    default: 0,
  },
  lambda: {
    doc: 'InfoVAE lambda: the MMD weight is alpha + lambda - 1 (with alpha = 1, the WAE penalty weight)',
    format: 'positive-number',
    default: 10,
  },
  kernel: {
    doc: 'MMD kernel: rbf = exp(-|x - y|^2 / (2 C)), imq = C / (C + |x - y|^2)',
    format: MMD_KERNELS,
    default: 'imq',
  },
  scale: {
    doc: "the kernels' C; 0 = 2 * latent.priorDim * sigma^2 with sigma = 1, the standard-normal prior's scale (WAE's choice)",
    format: 'non-negative-number',
    default: 0,
  },
} as const;

/**
 * k(x_i, y_j) for every pair. Shapes: x [n, D], y [m, D] -> [n, m].
 * rbf: exp(-|x - y|^2 / (2 C)); imq: C / (C + |x - y|^2).
 */
export function mmdKernelMatrix(x: tf.Tensor2D, y: tf.Tensor2D, kernel: MmdKernel, scale: number): tf.Tensor2D {
  return tf.tidy(() => {
    // |x|^2 + |y|^2 - 2 x.y, clipped at 0: the expansion can go slightly negative in float32
    const xx = tf.sum(tf.square(x), 1, true);
    const yy = tf.reshape(tf.sum(tf.square(y), 1), [1, -1]);
    const d2 = tf.relu(tf.sub(tf.add(xx, yy), tf.mul(2, tf.matMul(x, y, false, true))));
    return (kernel === 'rbf' ? tf.exp(tf.div(d2, -2 * scale)) : tf.div(scale, tf.add(d2, scale))) as tf.Tensor2D;
  });
}

/**
 * The unbiased estimate of MMD^2(P, Q) from x ~ P (n rows) and y ~ Q (m rows) (Gretton et al.
 * 2012, https://jmlr.org/papers/v13/gretton12a.html, Lemma 6):
 *   MMD^2_u = sum_{i != j} k(x_i, x_j) / (n (n - 1)) + sum_{i != j} k(y_i, y_j) / (m (m - 1))
 *             - 2 sum_{i, j} k(x_i, y_j) / (n m).
 * A sample of one row has no pair: its within-sample term is left out (0), which biases that
 * one estimate. Shapes: x [n, D], y [m, D] -> scalar.
 */
export function mmdUnbiased(x: tf.Tensor2D, y: tf.Tensor2D, kernel: MmdKernel, scale: number): tf.Scalar {
  return tf.tidy(() => {
    const within = (a: tf.Tensor2D): tf.Scalar => {
      const n = a.shape[0];
      if (n < 2) return tf.scalar(0);
      // k(a, a) = 1 on the diagonal for both kernels: subtract n rather than read the diagonal
      return tf.div(tf.sub(tf.sum(mmdKernelMatrix(a, a, kernel, scale)), n), n * (n - 1));
    };
    const cross = tf.div(tf.sum(mmdKernelMatrix(x, y, kernel, scale)), (x.shape[0] * y.shape[0]) / 2);
    return tf.sub(tf.add(within(x), within(y)), cross) as tf.Scalar;
  });
}

/**
 * Terms, each [B]: loss = reconstruction + (1 - alpha) kl + (alpha + lambda - 1) mmd;
 * elbo = -(reconstruction + kl); mmd is the batch's MMD^2 estimate, the same in every row.
 */
@injectable()
export class InfoVaeObjective extends Module implements Objective {
  private readonly klWeight: number;
  private readonly mmdWeight: number;
  /** The kernels' C, resolved. */
  readonly scale: number;

  constructor(
    @inject(pluginConfig('objective', 'info-vae')) private readonly cfg: ConfigOf<typeof infoVaeObjectiveSchema>,
    @inject(TOKENS.Model) private readonly model: VaeModel,
  ) {
    super();
    // A negative weight would reward a KL or an MMD that grows without bound.
    if (cfg.alpha > 1) {
      throw new ConfigError(
        `objective.info-vae.alpha: must be at most 1 (the KL weight 1 - alpha must not be negative; alpha = 1 is WAE-MMD); got ${cfg.alpha}`,
      );
    }
    if (cfg.alpha + cfg.lambda - 1 < 0) {
      throw new ConfigError(
        `objective.info-vae.lambda: alpha + lambda - 1 (the MMD weight) must not be negative; got alpha = ${cfg.alpha}, lambda = ${cfg.lambda} (lambda must be at least ${1 - cfg.alpha})`,
      );
    }
    this.klWeight = 1 - cfg.alpha;
    this.mmdWeight = cfg.alpha + cfg.lambda - 1;
    this.scale = cfg.scale > 0 ? cfg.scale : 2 * model.latent.priorDim;
  }

  terms(batch: ModelBatch, ctx: ObjectiveContext): ObjectiveTerms {
    return tf.tidy(() => {
      const pass = this.model.forward(batch, 1, ctx);
      const reconstruction = tf.neg(meanOverSamples(pass.logPx, pass.latent.samples));
      const { kl } = this.model.kl(pass.latent, batch.cond, ctx);
      const code = pass.latent.priorZ ?? pass.latent.z;
      const n = code.shape[0];
      const posteriorDraws = tf.reshape(code, [n, -1]) as tf.Tensor2D;
      const cond = tileSamples(batch.cond, pass.latent.samples);
      const priorDraws = tf.reshape(this.model.prior.sample(n, ctx.rng, cond, { ...ctx, cond }), [n, -1]) as tf.Tensor2D;
      const mmd = mmdUnbiased(posteriorDraws, priorDraws, this.cfg.kernel, this.scale);
      const B = batch.x.shape[0];
      const mmdRows = tf.add(tf.fill([B], 0), mmd) as tf.Tensor1D;
      let loss = tf.add(tf.add(reconstruction, tf.mul(this.klWeight, kl)), tf.mul(this.mmdWeight, mmdRows)) as tf.Tensor1D;
      const out: ObjectiveTerms = {
        loss,
        reconstruction,
        kl,
        mmd: mmdRows,
        elbo: tf.neg(tf.add(reconstruction, kl)) as tf.Tensor1D,
      };
      return addLatentTerms(out, loss, pass.latent);
    });
  }
}

export const infoVaeObjective = definePlugin({
  slot: 'objective',
  name: 'info-vae',
  description: 'InfoVAE / WAE-MMD: reconstruction + (1 - alpha) KL + (alpha + lambda - 1) MMD(q(z), p(z))',
  schema: infoVaeObjectiveSchema,
  implementation: InfoVaeObjective,
});
