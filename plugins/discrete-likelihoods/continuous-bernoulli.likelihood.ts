/**
 * Continuous Bernoulli likelihood (Loaiza-Ganem & Cunningham 2019,
 * https://arxiv.org/abs/1907.06845): the normalised density of grey levels x in [0, 1],
 *
 *   p(x | lambda) = C(lambda) * lambda^x * (1 - lambda)^(1 - x),
 *   C(lambda) = 2 artanh(1 - 2 lambda) / (1 - 2 lambda)   (C(1/2) = 2),
 *
 * with the decoder giving one logit l = log(lambda / (1 - lambda)) per dimension. Reads no keys.
 *
 * Everything is written in the logit, where the formulas lose their cancellations: since
 * 1 - 2 lambda = -tanh(l / 2) and artanh(1 - 2 lambda) = -l / 2,
 *
 *   log C = log(l / tanh(l / 2))                        (even in l; log|l| once tanh(|l|/2) = 1)
 *   E[x]  = lambda / (2 lambda - 1) + 1 / (2 artanh(1 - 2 lambda)) = 1/2 + (coth(l/2) - 2/l) / 2
 *   F^-1(u) = log(1 + u (e^l - 1)) / l                  (inverse CDF, for sampling)
 *
 * Near l = 0 (lambda near 1/2) the first two are 0/0 and are replaced by their Taylor series
 * within |l| < CB_TAYLOR_WINDOW, as the paper's code does within a window around lambda = 1/2.
 */
import { injectable } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import { Module, bernoulliLogProb, definePlugin, type Likelihood, type Rng } from '../../core';

export const continuousBernoulliLikelihoodSchema = {} as const;

/**
 * Half-width of the logit window around 0 (lambda in about [0.475, 0.525]) where log C and the
 * mean use their Taylor series. At its edge the first left-out terms are below 1e-12, and the
 * closed forms outside it lose at most ~1e-6 relative to float32 cancellation.
 */
export const CB_TAYLOR_WINDOW = 0.1;

/**
 * |l| < CB_TAYLOR_WINDOW as a bool mask that gradients pass through as zero: tfjs has no
 * gradient for comparisons, and a mask computed on the tape makes backprop fail at them.
 */
const inWindow = (() => {
  const indicator = tf.customGrad((l: tf.Tensor | tf.GradSaveFunc) => ({
    value: tf.cast(tf.less(tf.abs(l as tf.Tensor), CB_TAYLOR_WINDOW), 'float32'),
    gradFunc: (dy: tf.Tensor | tf.Tensor[]) => tf.zerosLike(dy as tf.Tensor),
  }));
  return (l: tf.Tensor): tf.Tensor => tf.cast(indicator(l) as tf.Tensor, 'bool');
})();

/**
 * log C(lambda) per entry from logits: log(l / tanh(l/2)), and within |l| < CB_TAYLOR_WINDOW
 * its series log 2 + y/3 - 7 y^2/90 + 62 y^3/2835 with y = (l/2)^2 (from
 * log(x / tanh x) = x^2/3 - 7x^4/90 + 62x^6/2835 - ...). Shapes: logits [...] -> [...].
 */
export function continuousBernoulliLogNorm(logits: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const a = tf.abs(logits);
    const near = inWindow(logits);
    // The unselected branch still gets a gradient through where: feed it a safe input so that
    // it is finite (0 * NaN would poison the selected one).
    const safe = tf.where(near, tf.fill(a.shape, CB_TAYLOR_WINDOW), a);
    const direct = tf.sub(tf.log(safe), tf.log(tf.tanh(tf.mul(safe, 0.5))));
    const y = tf.mul(tf.square(logits), 0.25);
    const series = tf.add(Math.LN2, tf.mul(y, tf.add(1 / 3, tf.mul(y, tf.add(-7 / 90, tf.mul(y, 62 / 2835))))));
    return tf.where(near, series, direct);
  });
}

/** Shapes: x, logits [N, D] -> [N]. */
@injectable()
export class ContinuousBernoulliLikelihood extends Module implements Likelihood {
  readonly paramsPerDim = 1;

  /** log p(x|l) = sum(x * l - softplus(l) + log C(l)): the Bernoulli term plus the normaliser. */
  logProb(x: tf.Tensor2D, logits: tf.Tensor2D): tf.Tensor1D {
    return tf.tidy(() => tf.add(bernoulliLogProb(x, logits), tf.sum(continuousBernoulliLogNorm(logits), -1)) as tf.Tensor1D);
  }

  /**
   * E[x] = 1/2 + (coth(l/2) - 2/l) / 2; within the window, the Langevin series
   * coth(v) - 1/v = v/3 - v^3/45 + 2 v^5/945 (v = l/2), so E[x] = 1/2 at l = 0.
   */
  mean(logits: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => {
      const near = inWindow(logits);
      const safe = tf.where(near, tf.fill(logits.shape, CB_TAYLOR_WINDOW), logits);
      const direct = tf.sub(tf.div(0.5, tf.tanh(tf.mul(safe, 0.5))), tf.div(1, safe));
      const v = tf.mul(logits, 0.5);
      const v2 = tf.square(v);
      const langevin = tf.mul(v, tf.add(1 / 3, tf.mul(v2, tf.add(-1 / 45, tf.mul(v2, 2 / 945)))));
      return tf.add(0.5, tf.where(near, tf.mul(langevin, 0.5), direct)) as tf.Tensor2D;
    });
  }

  /**
   * Inverse CDF of a uniform u in (0, 1). With a = -|l| <= 0 the formula
   * log1p(v * expm1(a)) / a never overflows; by the symmetry X ~ CB(l) <=> 1 - X ~ CB(-l),
   * a positive logit draws 1 - F^-1_{-l}(1 - u). Within |l| < 1e-4 the first-order series
   * F^-1(u) = u + a u (1 - u) / 2 avoids 0/0.
   */
  sample(logits: tf.Tensor2D, rng: Rng): tf.Tensor2D {
    return tf.tidy(() => {
      const u = rng.openUniformTensor(logits.shape);
      const positive = tf.greater(logits, 0);
      const v = tf.where(positive, tf.sub(1, u), u);
      const a = tf.neg(tf.abs(logits));
      const near = tf.greater(a, -1e-4);
      const safe = tf.where(near, tf.fill(a.shape, -1e-4), a);
      const direct = tf.div(tf.log1p(tf.mul(v, tf.expm1(safe))), safe);
      const series = tf.add(v, tf.mul(tf.mul(a, 0.5), tf.mul(v, tf.sub(1, v))));
      const y = tf.where(near, series, direct);
      return tf.clipByValue(tf.where(positive, tf.sub(1, y), y), 0, 1) as tf.Tensor2D;
    });
  }
}

export const continuousBernoulliLikelihood = definePlugin({
  slot: 'likelihood',
  name: 'continuous-bernoulli',
  description: 'continuous Bernoulli likelihood on logits: the normalised density of grey levels in [0, 1]',
  schema: continuousBernoulliLikelihoodSchema,
  implementation: ContinuousBernoulliLikelihood,
});
