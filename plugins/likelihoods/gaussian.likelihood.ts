/**
 * Diagonal Gaussian likelihood p(x|z) = N(x; mu(z), diag(sigma^2)). The scale is fixed
 * (likelihood.gaussian.scale = "fixed", sigma = fixedScale), one learned log-scale per data
 * dimension shared by all examples ("shared"), or predicted by the decoder per example and
 * dimension ("learned": the decoder outputs [loc, logScale] per dimension).
 * Reads likelihood.gaussian.scale, fixedScale, minLogScale, meanActivation.
 */
import { inject, injectable } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import {
  LOG_2PI,
  Module,
  TOKENS,
  definePlugin,
  pluginConfig,
  type ConfigOf,
  type DataInfo,
  type Likelihood,
  type Rng,
} from '../../core';

export const gaussianLikelihoodSchema = {
  scale: { doc: 'fixed, shared (learned per dimension) or learned (decoder output)', format: ['fixed', 'shared', 'learned'], default: 'fixed' },
  fixedScale: { doc: 'standard deviation when scale is fixed', format: 'positive-number', default: 1 },
  minLogScale: { doc: 'lower clamp of learned log standard deviations', format: 'number', default: -7 },
  meanActivation: { doc: 'applied to the decoder output to get the mean', format: ['none', 'sigmoid'], default: 'none' },
} as const;

/** Shapes: x [N, D], params [N, D * paramsPerDim] -> [N]. */
@injectable()
export class GaussianLikelihood extends Module implements Likelihood {
  readonly paramsPerDim: number;
  private readonly sharedLogScale: tf.Variable | null;
  constructor(
    @inject(pluginConfig('likelihood', 'gaussian')) private readonly cfg: ConfigOf<typeof gaussianLikelihoodSchema>,
    @inject(TOKENS.DataInfo) private readonly data: DataInfo,
  ) {
    super();
    this.paramsPerDim = cfg.scale === 'learned' ? 2 : 1;
    this.sharedLogScale =
      cfg.scale === 'shared' ? this.track('logScale', tf.tidy(() => tf.variable(tf.zeros([data.dim]), true))) : null;
  }

  /** Splits params into loc [N, D] and logScale [N, D] (or broadcastable). */
  private split(params: tf.Tensor2D): { loc: tf.Tensor2D; logScale: tf.Tensor } {
    const n = params.shape[0];
    let raw: tf.Tensor2D;
    let logScale: tf.Tensor;
    if (this.cfg.scale === 'learned') {
      const p = tf.reshape(params, [n, this.data.dim, 2]);
      const [a, b] = tf.split(p, 2, 2);
      raw = tf.reshape(a, [n, this.data.dim]) as tf.Tensor2D;
      logScale = tf.maximum(tf.reshape(b, [n, this.data.dim]), this.cfg.minLogScale);
    } else if (this.sharedLogScale) {
      raw = params;
      logScale = tf.maximum(this.sharedLogScale, this.cfg.minLogScale);
    } else {
      raw = params;
      logScale = tf.scalar(Math.log(this.cfg.fixedScale));
    }
    const loc = this.cfg.meanActivation === 'sigmoid' ? tf.sigmoid(raw) : raw;
    return { loc, logScale };
  }

  /** log N(x; loc, e^(2 logScale)) = -0.5 * sum(log 2pi + 2 logScale + ((x - loc) / e^logScale)^2) */
  logProb(x: tf.Tensor2D, params: tf.Tensor2D): tf.Tensor1D {
    return tf.tidy(() => {
      const { loc, logScale } = this.split(params);
      const z = tf.mul(tf.sub(x, loc), tf.exp(tf.neg(logScale)));
      const perDim = tf.add(tf.add(tf.square(z), tf.mul(logScale, 2)), LOG_2PI);
      return tf.mul(tf.sum(perDim, -1), -0.5) as tf.Tensor1D;
    });
  }

  mean(params: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => this.split(params).loc);
  }

  sample(params: tf.Tensor2D, rng: Rng): tf.Tensor2D {
    return tf.tidy(() => {
      const { loc, logScale } = this.split(params);
      return tf.add(loc, tf.mul(tf.exp(logScale), rng.normalTensor(loc.shape))) as tf.Tensor2D;
    });
  }
}

export const gaussianLikelihood = definePlugin({
  slot: 'likelihood',
  name: 'gaussian',
  description: 'diagonal Gaussian likelihood with a fixed, shared or decoder-predicted scale',
  schema: gaussianLikelihoodSchema,
  implementation: GaussianLikelihood,
});
