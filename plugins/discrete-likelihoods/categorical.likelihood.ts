/**
 * Categorical likelihood over the 256 grey levels of 8-bit images: the decoder gives 256 logits
 * per data dimension (paramsPerDim = 256), and x in [0, 1] is read as the level
 * k = round(255 x), so
 *
 *   log p(x | logits) = sum_d (logits[d, k_d] - logsumexp_j logits[d, j]).
 *
 * The softmax output of PixelRNN/PixelCNN (van den Oord et al. 2016,
 * https://arxiv.org/abs/1601.06759), here with every dimension independent given z. Reads no
 * keys; injects DataInfo, and refuses vector data when it is built.
 */
import { inject, injectable } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import { Module, TOKENS, definePlugin, type DataInfo, type Likelihood, type Rng } from '../../core';
import { LEVELS, levelIndex, requireGreyLevelImages } from './levels';

export const categoricalLikelihoodSchema = {} as const;

/** Shapes: x [N, D], params [N, D * 256] -> [N]. */
@injectable()
export class CategoricalLikelihood extends Module implements Likelihood {
  readonly paramsPerDim = LEVELS;
  constructor(@inject(TOKENS.DataInfo) private readonly data: DataInfo) {
    super();
    requireGreyLevelImages('categorical', data);
  }

  /** params [N, D * 256] -> log-probabilities [N, D, 256], normalised over the last axis. */
  private logProbs(params: tf.Tensor2D): tf.Tensor3D {
    return tf.logSoftmax(tf.reshape(params, [params.shape[0], this.data.dim, LEVELS])) as tf.Tensor3D;
  }

  /** log p(x) = sum_d log softmax(logits_d)[round(255 x_d)], picked by a one-hot of the level. */
  logProb(x: tf.Tensor2D, params: tf.Tensor2D): tf.Tensor1D {
    return tf.tidy(() => {
      const picked = tf.oneHot(levelIndex(x) as tf.Tensor2D, LEVELS);
      return tf.sum(tf.mul(picked, this.logProbs(params)), [1, 2]) as tf.Tensor1D;
    });
  }

  /** E[x] = sum_k softmax(logits)_k * k / 255. [N, D] */
  mean(params: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => {
      const p = tf.exp(this.logProbs(params));
      const levels = tf.div(tf.range(0, LEVELS, 1, 'float32'), LEVELS - 1);
      return tf.sum(tf.mul(p, levels), -1) as tf.Tensor2D;
    });
  }

  /** k = argmax_j (logits_j + g_j) with Gumbel noise g = -log(-log u) (Gumbel-max); x = k / 255. */
  sample(params: tf.Tensor2D, rng: Rng): tf.Tensor2D {
    return tf.tidy(() => {
      const logits = tf.reshape(params, [params.shape[0], this.data.dim, LEVELS]);
      const u = rng.openUniformTensor(logits.shape);
      const gumbel = tf.neg(tf.log(tf.neg(tf.log(u))));
      return tf.div(tf.cast(tf.argMax(tf.add(logits, gumbel), -1), 'float32'), LEVELS - 1) as tf.Tensor2D;
    });
  }
}

export const categoricalLikelihood = definePlugin({
  slot: 'likelihood',
  name: 'categorical',
  description: 'categorical likelihood over the 256 grey levels of 8-bit images (256 logits per dimension)',
  schema: categoricalLikelihoodSchema,
  implementation: CategoricalLikelihood,
});
