/**
 * The second stage of a two-stage model such as VQ-VAE (van den Oord et al. 2017,
 * https://arxiv.org/abs/1711.00937, section 3.3): fit the prior to the codes of the frozen
 * first-stage model. The encoder and latent run as in evaluation (training: false, so nothing
 * they hold moves: no EMA codebook update, no dead-code restart), the prior as in training:
 *   loss = -log p(codes(x))  (nats per example), codes(x) = the latent's priorZ.
 * Only the prior's variables get a gradient; list them alone in `train.trainable: [prior/]`.
 * Terms, each [B]: loss, bits-per-code = loss / (priorDim ln 2); in evaluation also
 * reconstruction (-log p(x | z)), mse (mean over data dimensions of (E[x | z] - x)^2), elbo
 * (log p(x | z) + log p(codes) - log q, a lower bound on log p(x)) and bits-per-dim
 * (-elbo / (dataDim ln 2): the whole model's bound, as the VQ-VAE paper reports it).
 * No config keys.
 */
import { inject, injectable } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import {
  Module,
  TOKENS,
  definePlugin,
  type ModelBatch,
  type Objective,
  type ObjectiveContext,
  type ObjectiveTerms,
  type PassOptions,
  type VaeModel,
} from '../../core';

/** Terms [B]: loss = -log p(codes), bits-per-code; in evaluation reconstruction, mse, elbo, bits-per-dim. */
@injectable()
export class PriorNllObjective extends Module implements Objective {
  constructor(@inject(TOKENS.Model) private readonly model: VaeModel) {
    super();
  }

  terms(batch: ModelBatch, ctx: ObjectiveContext): ObjectiveTerms {
    return tf.tidy(() => {
      const m = this.model;
      // The frozen stage: evaluation mode, so its state stays as stage 1 left it.
      const frozen: PassOptions = { ...ctx, training: false, cond: batch.cond };
      const h = m.encoder.encode(batch.x, batch.cond, frozen);
      const latent = m.latent.sample(h, 1, frozen);
      const logPrior = m.logPrior(latent, batch.cond, ctx);
      const loss = tf.neg(logPrior) as tf.Tensor1D;
      const out: ObjectiveTerms = { loss, 'bits-per-code': tf.div(loss, m.latent.priorDim * Math.LN2) as tf.Tensor1D };
      if (!ctx.training) {
        const params = m.decoder.decode(latent.z, batch.cond, frozen);
        const logPx = m.likelihood.logProb(batch.x, params);
        const elbo = tf.sub(tf.add(logPx, logPrior), latent.logQ) as tf.Tensor1D;
        out.reconstruction = tf.neg(logPx) as tf.Tensor1D;
        out.mse = tf.mean(tf.square(tf.sub(m.likelihood.mean(params), batch.x)), 1) as tf.Tensor1D;
        out.elbo = elbo;
        out['bits-per-dim'] = tf.div(tf.neg(elbo), batch.x.shape[1] * Math.LN2) as tf.Tensor1D;
      }
      return out;
    });
  }
}

export const priorNllObjective = definePlugin({
  slot: 'objective',
  name: 'prior-nll',
  description: "fit the prior alone to the frozen model's codes (-log p(codes)); evaluation adds bits per code, reconstruction, mse, elbo, bits per dimension",
  schema: {},
  implementation: PriorNllObjective,
  needsTrainedModel: 'fits the prior to the codes of a trained model (the first stage), whose encoder and latent it keeps frozen',
});
