/**
 * The deterministic baseline of the CVAE's structured-output tasks (the "NN" of Sohn, Lee & Yan
 * 2015, https://papers.nips.cc/paper/5775, Table 1): a regression network y -> x trained by
 * maximum likelihood, with no latent variable. The network is the model's decoder, run at z = 0:
 * params = decoder.decode(0, y), loss = -log p(x | params) under the experiment's likelihood (the
 * same likelihood the CVAE is scored with, e.g. masked-bernoulli on the hidden quadrants).
 * Because it trains the decoder itself, a CVAE with the same decoder and latent sizes can start
 * its generation network from it (init.from the baseline's run, init.include [decoder/]), the
 * initial guess of the paper. The decoder's weights on z get a zero gradient here (z is 0) and
 * keep their initialisation. Only the decoder is reached: train with train.trainable: [decoder/].
 *
 * With network: prior-guess the baseline is instead the guess network g(y) of the conditional
 * prior (prior.conditional-gaussian.guess: network), trained with train.trainable: [prior/guess/]:
 * Pyro's set-up, where the frozen baseline's prediction fills the hidden pixels of the prior
 * network's input. Reads objective.nn-baseline.network.
 */
import { inject, injectable } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import {
  ConfigError,
  Module,
  TOKENS,
  definePlugin,
  pluginConfig,
  type ConfigOf,
  type DataInfo,
  type ModelBatch,
  type Objective,
  type ObjectiveContext,
  type ObjectiveTerms,
  type VaeModel,
} from '../../core';

export const nnBaselineObjectiveSchema = {
  network: {
    doc: 'which network is the baseline y -> x: decoder (the decoder at z = 0; train.trainable [decoder/]) or prior-guess (the guess network of prior conditional-gaussian with guess: network; train.trainable [prior/guess/])',
    format: ['decoder', 'prior-guess'],
    default: 'decoder',
  },
} as const;

/** A prior that offers a guess network of x from the conditioning input (conditional-gaussian with guess: network). */
interface GuessingPrior {
  readonly hasGuess: boolean;
  guessParams(cond: tf.Tensor2D): tf.Tensor2D;
}

/** Terms [B]: loss = reconstruction = -log p(x | decoder(0, cond)), or -log p(x | g(cond)) of the prior's guess network. */
@injectable()
export class NnBaselineObjective extends Module implements Objective {
  private readonly guess: GuessingPrior | null = null;
  constructor(
    @inject(TOKENS.Model) private readonly model: VaeModel,
    @inject(TOKENS.DataInfo) data: DataInfo,
    @inject(pluginConfig('objective', 'nn-baseline')) cfg: ConfigOf<typeof nnBaselineObjectiveSchema>,
  ) {
    super();
    if (cfg.network === 'prior-guess') {
      const prior = model.prior as Partial<GuessingPrior>;
      if (prior.hasGuess !== true || typeof prior.guessParams !== 'function') {
        throw new ConfigError(
          'objective.nn-baseline.network: "prior-guess" trains the guess network of the prior, and this prior has none; set prior.use to "conditional-gaussian" with prior.conditional-gaussian.guess "network", or network to "decoder"',
        );
      }
      this.guess = prior as GuessingPrior;
    } else if ((model.decoder as { conditioned?: boolean }).conditioned === false) {
      throw new ConfigError(
        'objective.nn-baseline.network: "decoder" predicts x from the conditioning input through the decoder, and the decoder leaves it out (decoder.mlp.conditioned is false), so it would predict one image for every input; set decoder.mlp.conditioned to true, or network to "prior-guess" with prior.conditional-gaussian.guess "network"',
      );
    }
    if (data.condDim === 0) {
      throw new ConfigError(
        'objective.use: "nn-baseline" predicts x from the conditioning input, and data.condition.use is "none"; set data.condition.use to "visible-quadrants" or "labels"',
      );
    }
  }

  /** The baseline's likelihood parameters decoder(0, cond) or g(cond). cond [B, condDim] -> [B, dataDim * paramsPerDim] */
  predict(cond: tf.Tensor2D, ctx: ObjectiveContext): tf.Tensor2D {
    if (this.guess) return this.guess.guessParams(cond);
    return tf.tidy(() => {
      const lat = this.model.latent;
      const z = tf.zeros([cond.shape[0], ...(lat.shape ?? [lat.dim])]);
      return this.model.decoder.decode(z, cond, { ...ctx, cond });
    });
  }

  terms(batch: ModelBatch, ctx: ObjectiveContext): ObjectiveTerms {
    const cond = batch.cond;
    if (!cond) throw new ConfigError('NnBaselineObjective.terms: the batch has no conditioning input; set data.condition.use');
    return tf.tidy(() => {
      const reconstruction = tf.neg(this.model.likelihood.logProb(batch.x, this.predict(cond, ctx))) as tf.Tensor1D;
      return { loss: tf.clone(reconstruction) as tf.Tensor1D, reconstruction };
    });
  }
}

export const nnBaselineObjective = definePlugin({
  slot: 'objective',
  name: 'nn-baseline',
  description: 'deterministic baseline y -> x of the CVAE tasks: the decoder at z = 0 (train.trainable: [decoder/]) or the conditional prior\'s guess network (train.trainable: [prior/guess/]), trained on -log p(x | prediction)',
  schema: nnBaselineObjectiveSchema,
  implementation: NnBaselineObjective,
});
