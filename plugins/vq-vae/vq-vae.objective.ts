/**
 * The VQ-VAE training objective (van den Oord, Vinyals & Kavukcuoglu 2017,
 * https://arxiv.org/abs/1711.00937, equation 3):
 *   loss = -log p(x | z_q(x)) + ||sg[z_e(x)] - e||^2 + beta ||z_e(x) - sg[e]||^2,
 * the reconstruction term here and the latent's own terms (codebook, commitment) from the vq
 * latent. The KL to the prior is left out of the loss, as in the paper: with a deterministic q it
 * is -log p(codes), a constant under the uniform prior, and a learned prior is fitted afterwards
 * (objective `prior-nll`). Every term is per example [B]:
 * - loss, reconstruction (-log p(x | z), the likelihood's NLL in nats), codebook, commitment;
 * - in evaluation only: mse (mean over data dimensions of (E[x | z] - x)^2), elbo
 *   (log p(x | z) + log p(codes) - log q, a lower bound on log p(x)) and bits-per-dim
 *   (-elbo / (dataDim ln 2), the bound in bits per data dimension, as the paper reports it).
 * No config keys: q is deterministic, so one pass per input.
 */
import { inject, injectable } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import {
  addLatentTerms,
  Module,
  TOKENS,
  definePlugin,
  type ModelBatch,
  type Objective,
  type ObjectiveContext,
  type ObjectiveTerms,
  type VaeModel,
} from '../../core';

/**
 * The evaluation terms every code-model objective reports, from one pass. Shapes: x [B, dataDim],
 * params [B, dataDim * paramsPerDim], logPx, logPrior, logQ [B] -> each [B].
 */
export function reconstructionTerms(model: VaeModel, x: tf.Tensor2D, params: tf.Tensor2D, logPx: tf.Tensor1D, logPrior: tf.Tensor1D, logQ: tf.Tensor1D): Record<string, tf.Tensor1D> {
  return tf.tidy(() => {
    const elbo = tf.sub(tf.add(logPx, logPrior), logQ) as tf.Tensor1D;
    return {
      mse: tf.mean(tf.square(tf.sub(model.likelihood.mean(params), x)), 1) as tf.Tensor1D,
      elbo,
      'bits-per-dim': tf.div(tf.neg(elbo), x.shape[1] * Math.LN2) as tf.Tensor1D,
    } as unknown as tf.TensorContainer;
  }) as unknown as Record<string, tf.Tensor1D>;
}

/** Terms [B]: loss = reconstruction + the latent's terms; in evaluation also mse, elbo, bits-per-dim. */
@injectable()
export class VqVaeObjective extends Module implements Objective {
  constructor(@inject(TOKENS.Model) private readonly model: VaeModel) {
    super();
  }

  terms(batch: ModelBatch, ctx: ObjectiveContext): ObjectiveTerms {
    return tf.tidy(() => {
      const pass = this.model.forward(batch, 1, ctx);
      const reconstruction = tf.neg(pass.logPx) as tf.Tensor1D;
      const out: ObjectiveTerms = { loss: reconstruction, reconstruction };
      if (!ctx.training) {
        const logPrior = this.model.logPrior(pass.latent, batch.cond, ctx);
        Object.assign(out, reconstructionTerms(this.model, batch.x, pass.params, pass.logPx, logPrior, pass.latent.logQ));
      }
      return addLatentTerms(out, reconstruction, pass.latent);
    });
  }
}

export const vqVaeObjective = definePlugin({
  slot: 'objective',
  name: 'vq-vae',
  description: 'VQ-VAE loss: reconstruction + codebook + commitment (the KL to the prior left out); evaluation adds mse, elbo and bits per dimension',
  schema: {},
  implementation: VqVaeObjective,
});
