/**
 * Bernoulli likelihood p(x|z) = prod_i sigmoid(l_i)^x_i (1 - sigmoid(l_i))^(1 - x_i) with the
 * decoder giving logits l. On grey levels x in [0, 1] this is the continuous relaxation used by
 * the pytorch/examples VAE (minus the summed binary cross-entropy). Reads no keys.
 */
import { injectable } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import { Module, bernoulliLogProb, definePlugin, type Likelihood, type Rng } from '../../core';

export const bernoulliLikelihoodSchema = {} as const;

/** Shapes: x, logits [N, D] -> [N]. */
@injectable()
export class BernoulliLikelihood extends Module implements Likelihood {
  readonly paramsPerDim = 1;

  logProb(x: tf.Tensor2D, logits: tf.Tensor2D): tf.Tensor1D {
    return bernoulliLogProb(x, logits);
  }

  mean(logits: tf.Tensor2D): tf.Tensor2D {
    return tf.sigmoid(logits);
  }

  sample(logits: tf.Tensor2D, rng: Rng): tf.Tensor2D {
    return tf.tidy(() => tf.cast(tf.less(rng.uniformTensor(logits.shape), tf.sigmoid(logits)), 'float32') as tf.Tensor2D);
  }
}

export const bernoulliLikelihood = definePlugin({
  slot: 'likelihood',
  name: 'bernoulli',
  description: 'Bernoulli likelihood on logits (binary data, or grey levels as its continuous relaxation)',
  schema: bernoulliLikelihoodSchema,
  implementation: BernoulliLikelihood,
});
