/**
 * FactorVAE (Kim & Mnih 2018, "Disentangling by Factorising", https://arxiv.org/abs/1802.05983):
 * the negative ELBO plus gamma times an estimate of the total correlation
 * TC(z) = KL(q(z) || prod_d q(z_d)) by the density-ratio trick. A discriminator D (an MLP with
 * two logits) learns to tell codes z ~ q(z) (class 0, "real") from codes whose dimensions were
 * each permuted across the batch (class 1), which are draws from prod_d q(z_d); then
 *   TC(z) ~ E_q(z)[log D(z)_0 / D(z)_1] = E[logit_0(z) - logit_1(z)].
 * The discriminator is a parameter group of its own (Adam with beta = (0.5, 0.9) as the paper,
 * its own learning rate), trained on
 *   discriminator loss = 0.5 * (mean CE(D(z), 0) + mean CE(D(permuted z), 1)).
 * Reads objective.factor-vae.{gamma, discriminatorHiddenSizes, discriminatorLearningRate, klSchedule}.
 */
import { inject, injectable } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import {
  addLatentTerms,
  ConfigError,
  Mlp,
  Module,
  TOKENS,
  definePlugin,
  initRng,
  klScheduleProblems,
  klScheduleSchema,
  pluginConfig,
  stopGradient,
  weightAt,
  type ConfigOf,
  type Latent,
  type ModelBatch,
  type Objective,
  type ObjectiveContext,
  type ObjectiveTerms,
  type ParamGroup,
  type Rng,
  type VaeModel,
} from '../../core';

export const factorVaeObjectiveSchema = {
  gamma: { doc: 'weight of the total-correlation estimate in the main loss', format: 'non-negative-number', default: 10 },
  discriminatorHiddenSizes: {
    doc: 'hidden layer widths of the discriminator MLP (leaky ReLU); the paper uses 6 layers of 1000',
    format: 'positive-int-list',
    default: [256, 256],
  },
  discriminatorLearningRate: { doc: 'Adam learning rate of the discriminator (beta = (0.5, 0.9))', format: 'positive-number', default: 1e-4 },
  klSchedule: klScheduleSchema,
} as const;

/**
 * Permutes each column of z across the batch with its own permutation drawn from `rng`
 * (Kim & Mnih 2018, Algorithm 1): every column keeps its values (the marginals q(z_d)) while the
 * rows are recombined, which breaks the dependence between dimensions.
 * Shapes: z [B, D] -> [B, D].
 */
export function permuteDims(z: tf.Tensor2D, rng: Rng): tf.Tensor2D {
  const [B, D] = z.shape;
  const index = new Int32Array(B * D);
  for (let d = 0; d < D; d++) {
    const perm = rng.permutation(B);
    for (let b = 0; b < B; b++) index[d * B + b] = d * B + perm[b];
  }
  return tf.tidy(() => {
    const columns = tf.reshape(tf.transpose(z), [-1]);
    return tf.transpose(tf.reshape(tf.gather(columns, tf.tensor1d(index, 'int32')), [D, B])) as tf.Tensor2D;
  });
}

const softplus = (x: tf.Tensor) => tf.add(tf.relu(x), tf.log1p(tf.exp(tf.neg(tf.abs(x)))));

/**
 * FactorVAE objective (Kim & Mnih 2018, https://arxiv.org/abs/1802.05983). One code per input.
 * Terms, each [B]:
 *   loss = reconstruction + w(step) * kl + gamma * tc (+ latent terms)
 *   tc = logit_0(z) - logit_1(z), the discriminator's estimate of the total correlation
 *   discAccuracy = 0.5 * ([D calls z real] + [D calls the permuted row i permuted])
 *   elbo = -(reconstruction + kl)
 * w(step) is the KL-weight schedule (constant 1 by default). Group "discriminator": the MLP's
 * variables, trained with Adam (discriminatorLearningRate, beta1 0.5, beta2 0.9) every step.
 * Reads objective.factor-vae.{gamma, discriminatorHiddenSizes, discriminatorLearningRate, klSchedule}.
 */
@injectable()
export class FactorVaeObjective extends Module implements Objective {
  private readonly discriminator: Mlp;

  constructor(
    @inject(pluginConfig('objective', 'factor-vae')) private readonly cfg: ConfigOf<typeof factorVaeObjectiveSchema>,
    @inject(TOKENS.Model) private readonly model: VaeModel,
    @inject(TOKENS.Latent) latent: Latent,
    @inject(TOKENS.Seed) seed: number,
  ) {
    super();
    const problems: string[] = [];
    if (cfg.discriminatorHiddenSizes.length === 0) {
      problems.push('objective.factor-vae.discriminatorHiddenSizes: must list at least one hidden layer; got []');
    }
    problems.push(...klScheduleProblems(cfg.klSchedule, 'objective.factor-vae.klSchedule'));
    if (cfg.klSchedule.capacityMax > 0) {
      problems.push(`objective.factor-vae.klSchedule.capacityMax: factor-vae has no capacity target; must be 0; got ${cfg.klSchedule.capacityMax}`);
    }
    if (problems.length > 0) throw new ConfigError(problems);
    const sizes = [latent.priorDim, ...cfg.discriminatorHiddenSizes, 2];
    this.discriminator = this.track('discriminator', new Mlp(sizes, 'leaky-relu', initRng(seed, 'objective', 'factor-vae')));
  }

  /** logit_0(z) - logit_1(z): log D(z) / (1 - D(z)) for the "real" class. z [N, priorDim] -> [N] */
  private logitDiff(z: tf.Tensor2D): tf.Tensor1D {
    return tf.tidy(() => {
      const logits = this.discriminator.apply(z);
      const [l0, l1] = tf.split(logits, 2, 1);
      return tf.reshape(tf.sub(l0, l1), [-1]) as tf.Tensor1D;
    });
  }

  private codes(batch: ModelBatch, ctx: ObjectiveContext) {
    const pass = this.model.forward(batch, 1, ctx);
    const z = tf.reshape(pass.latent.priorZ ?? pass.latent.z, [batch.x.shape[0], -1]) as tf.Tensor2D;
    return { pass, z };
  }

  terms(batch: ModelBatch, ctx: ObjectiveContext): ObjectiveTerms {
    return tf.tidy(() => {
      const { pass, z } = this.codes(batch, ctx);
      const reconstruction = tf.neg(pass.logPx) as tf.Tensor1D;
      const { kl } = this.model.kl(pass.latent, batch.cond, ctx);
      const tc = this.logitDiff(z);
      // The accuracy is a diagnostic: no gradient through the permuted codes.
      const permuted = this.logitDiff(permuteDims(stopGradient(z), ctx.rng));
      const discAccuracy = tf.mul(tf.add(tf.cast(tf.greater(tc, 0), 'float32'), tf.cast(tf.less(permuted, 0), 'float32')), 0.5) as tf.Tensor1D;
      const w = weightAt(this.cfg.klSchedule, ctx.step);
      let loss = tf.addN([reconstruction, tf.mul(kl, w), tf.mul(tc, this.cfg.gamma)]) as tf.Tensor1D;
      const out: ObjectiveTerms = { loss, reconstruction, kl, elbo: tf.neg(tf.add(reconstruction, kl)) as tf.Tensor1D, tc, discAccuracy };
      return addLatentTerms(out, loss, pass.latent);
    });
  }

  /** The discriminator's loss on one batch: 0.5 * mean(softplus(-d(z)) + softplus(d(permuted z))). */
  discriminatorLoss(batch: ModelBatch, ctx: ObjectiveContext): tf.Scalar {
    return tf.tidy(() => {
      // Codes are inputs here: the group's gradient reaches only the discriminator.
      const z = stopGradient(this.codes(batch, ctx).z);
      const real = this.logitDiff(z);
      const permuted = this.logitDiff(permuteDims(z, ctx.rng));
      // CE(D(z), 0) = -log softmax_0 = softplus(-(l0 - l1)); CE(D(z~), 1) = softplus(l0 - l1)
      return tf.mul(tf.add(tf.mean(softplus(tf.neg(real))), tf.mean(softplus(permuted))), 0.5) as tf.Scalar;
    });
  }

  groups(): ParamGroup[] {
    return [
      {
        name: 'discriminator',
        variables: () => this.discriminator.variables(),
        optimizer: { learningRate: this.cfg.discriminatorLearningRate, beta1: 0.5, beta2: 0.9 },
        loss: (batch, ctx) => this.discriminatorLoss(batch, ctx),
      },
    ];
  }
}

export const factorVaeObjective = definePlugin({
  slot: 'objective',
  name: 'factor-vae',
  description: 'FactorVAE: -ELBO + gamma * TC estimated by a discriminator on permuted codes (Kim & Mnih 2018)',
  schema: factorVaeObjectiveSchema,
  implementation: FactorVaeObjective,
});
