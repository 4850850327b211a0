/**
 * The evidence lower bound (Kingma & Welling 2014, https://arxiv.org/abs/1312.6114):
 * ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || p(z)), estimated with `samples` reparameterised
 * draws per input; the KL is in closed form when prior and latent allow it, else Monte Carlo
 * (objective.elbo.kl: monte-carlo takes log q(z|x) - log p(z) at the same draws always, as
 * Pyro's Trace_ELBO does). Loss = -ELBO plus the latent's own terms (if any). Reads
 * objective.elbo.samples and objective.elbo.kl.
 */
import { inject, injectable } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import {
  addLatentTerms,
  Module,
  TOKENS,
  definePlugin,
  meanOverSamples,
  pluginConfig,
  type ConfigOf,
  type ModelBatch,
  type Objective,
  type ObjectiveContext,
  type ObjectiveTerms,
  type VaeModel,
} from '../../core';

export const elboObjectiveSchema = {
  samples: { doc: 'Monte-Carlo samples of z per input', format: 'positive-int', default: 1 },
  kl: {
    doc: 'KL estimator: closed-form (exact where prior and latent give one, else Monte Carlo) or monte-carlo (log q(z|x) - log p(z) at the same draws as the reconstruction, always)',
    format: ['closed-form', 'monte-carlo'],
    default: 'closed-form',
  },
} as const;

/** Terms, each [B]: loss = reconstruction + kl (+ latent terms); elbo = -(reconstruction + kl). */
@injectable()
export class ElboObjective extends Module implements Objective {
  constructor(
    @inject(pluginConfig('objective', 'elbo')) private readonly cfg: ConfigOf<typeof elboObjectiveSchema>,
    @inject(TOKENS.Model) private readonly model: VaeModel,
  ) {
    super();
  }

  terms(batch: ModelBatch, ctx: ObjectiveContext): ObjectiveTerms {
    return tf.tidy(() => {
      const pass = this.model.forward(batch, this.cfg.samples, ctx);
      const reconstruction = tf.neg(meanOverSamples(pass.logPx, pass.latent.samples));
      const { kl } = this.model.kl(pass.latent, batch.cond, ctx, this.cfg.kl);
      const negElbo = tf.add(reconstruction, kl);
      const loss = negElbo as tf.Tensor1D;
      const out: ObjectiveTerms = { loss, reconstruction, kl, elbo: tf.neg(negElbo) as tf.Tensor1D };
      return addLatentTerms(out, loss, pass.latent);
    });
  }
}

export const elboObjective = definePlugin({
  slot: 'objective',
  name: 'elbo',
  description: 'negative evidence lower bound (reconstruction + KL)',
  schema: elboObjectiveSchema,
  implementation: ElboObjective,
});
