/**
 * Bernoulli likelihood of the hidden part of x only: log p(x_hidden | logits) =
 * sum_d m_d * (x_d * l_d - softplus(l_d)), with m = DataInfo.targetMask (1 where the
 * conditioning input hides pixel d). This is the x of the CVAE quadrant-completion task (Sohn,
 * Lee & Yan 2015, https://papers.nips.cc/paper/5775): x is the hidden part, y the visible part,
 * and every model of the task (CVAE, its deterministic NN baseline) is scored on the hidden
 * pixels alone, as Pyro's MaskedBCELoss does. On grey levels it is the continuous relaxation
 * (minus the binary cross-entropy summed over hidden pixels). Reads no keys.
 */
import { inject, injectable } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, Module, ShapeError, TOKENS, definePlugin, type DataInfo, type Likelihood, type Rng } from '../../core';

export const maskedBernoulliLikelihoodSchema = {} as const;

/** Shapes: x, logits [N, dataDim] -> [N] (a sum over the hidden dimensions). mean and sample cover every dimension. */
@injectable()
export class MaskedBernoulliLikelihood extends Module implements Likelihood {
  readonly paramsPerDim = 1;
  /** 1 on the hidden (scored) dimensions, 0 on the visible ones. [dataDim] */
  private readonly mask: Float32Array;
  /** Number of scored dimensions. */
  readonly hiddenDims: number;
  constructor(@inject(TOKENS.DataInfo) data: DataInfo) {
    super();
    const m = data.targetMask;
    if (!m) {
      throw new ConfigError(
        'likelihood.use: "masked-bernoulli" scores the part of x that the conditioning input hides, and data.condition hides nothing; set data.condition.use to "visible-quadrants", or use likelihood "bernoulli"',
      );
    }
    if (m.length !== data.dim) throw new ShapeError(`MaskedBernoulliLikelihood: DataInfo.targetMask must have ${data.dim} entries (the data dim); got ${m.length}`);
    this.mask = m;
    this.hiddenDims = m.reduce((a, v) => a + v, 0);
  }

  /** sum_d m_d (x_d l_d - softplus(l_d)), softplus(l) = max(l, 0) + log(1 + exp(-|l|)). [N] */
  logProb(x: tf.Tensor2D, logits: tf.Tensor2D): tf.Tensor1D {
    return tf.tidy(() => {
      const softplus = tf.add(tf.relu(logits), tf.log1p(tf.exp(tf.neg(tf.abs(logits)))));
      // uploaded per call rather than held: a tensor outside the variables would outlive disposeParts
      const mask = tf.tensor2d(this.mask, [1, this.mask.length]);
      return tf.sum(tf.mul(tf.sub(tf.mul(x, logits), softplus), mask), -1) as tf.Tensor1D;
    });
  }

  /** sigmoid(logits) over every dimension (the visible ones too, for pictures). [N, dataDim] */
  mean(logits: tf.Tensor2D): tf.Tensor2D {
    return tf.sigmoid(logits);
  }

  /** A Bernoulli draw of every dimension. [N, dataDim] */
  sample(logits: tf.Tensor2D, rng: Rng): tf.Tensor2D {
    return tf.tidy(() => tf.cast(tf.less(rng.uniformTensor(logits.shape), tf.sigmoid(logits)), 'float32') as tf.Tensor2D);
  }
}

export const maskedBernoulliLikelihood = definePlugin({
  slot: 'likelihood',
  name: 'masked-bernoulli',
  description: 'Bernoulli likelihood of the hidden part of x only (data.condition: visible-quadrants), the score of the CVAE quadrant task',
  schema: maskedBernoulliLikelihoodSchema,
  implementation: MaskedBernoulliLikelihood,
});
