/**
 * Mixture-of-Gaussians prior p(z) = sum_k pi_k N(z; loc_k, diag(exp(logVar_k))) with K learnable
 * components: weights pi = softmax(logits), locs and log-variances, all trained with the model
 * (as in the "MoG" baseline of Tomczak & Welling 2018, https://arxiv.org/abs/1705.07120, and
 * Dilokthanakul et al. 2016, https://arxiv.org/abs/1611.02648). There is no closed-form KL between
 * a Gaussian and a mixture, so the model estimates KL(q || p) by Monte Carlo. Reads
 * prior.mixture.components, prior.mixture.initScale and prior.mixture.initLogVar.
 */
import { inject, injectable } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import {
  LOG_2PI,
  Module,
  ShapeError,
  TOKENS,
  definePlugin,
  initRng,
  pluginConfig,
  reserveParameters,
  type ConfigOf,
  type Latent,
  type Prior,
  type Rng,
} from '../../core';

export const mixturePriorSchema = {
  components: { doc: 'number of mixture components K', format: 'positive-int', default: 10 },
  initScale: {
    doc: 'spread of the initial component locs: each entry drawn from N(0, initScale^2); 0 puts every loc at the origin',
    format: 'non-negative-number',
    default: 1,
  },
  initLogVar: { doc: 'initial log-variance of every component and dimension', format: 'number', default: 0 },
} as const;

/**
 * K learnable diagonal Gaussians weighted by softmax(logits).
 * Variables: logits [K] (only when K > 1), loc [K, priorDim], logVar [K, priorDim].
 * Shapes: z [N, priorDim] -> [N].
 */
@injectable()
export class MixturePrior extends Module implements Prior {
  readonly dim: number;
  readonly components: number;
  /** Component logits [K]; null when K = 1 (the one weight is 1, nothing to learn). */
  readonly logits: tf.Variable | null;
  readonly loc: tf.Variable;
  readonly logVar: tf.Variable;
  constructor(
    @inject(pluginConfig('prior', 'mixture')) cfg: ConfigOf<typeof mixturePriorSchema>,
    @inject(TOKENS.Latent) latent: Latent,
    @inject(TOKENS.Seed) seed: number,
  ) {
    super();
    this.dim = latent.priorDim;
    this.components = cfg.components;
    const k = cfg.components;
    const rng = initRng(seed, 'prior', 'mixture');
    if (k > 1) reserveParameters([k]);
    this.logits = k > 1 ? this.track('logits', tf.variable(tf.zeros([k]), true)) : null;
    reserveParameters([k, this.dim]);
    this.loc = this.track('loc', tf.tidy(() => tf.variable(tf.mul(rng.normalTensor([k, this.dim]), cfg.initScale), true)));
    reserveParameters([k, this.dim]);
    this.logVar = this.track('logVar', tf.variable(tf.fill([k, this.dim], cfg.initLogVar), true));
  }

  private check(z: tf.Tensor, method: string): void {
    if (z.rank !== 2 || z.shape[1] !== this.dim) {
      throw new ShapeError(`MixturePrior.${method}: z must be [N, ${this.dim}] (the latent's priorDim); got [${z.shape.join(', ')}]`);
    }
  }

  /**
   * log p(z) = logsumexp_k(log pi_k + log N(z; loc_k, exp(logVar_k))), with z broadcast against
   * the components to [N, K, D]; log-sum-exp keeps the sum finite where every component's
   * density underflows in float32 (z far from all locs). Shapes: z [N, D] -> [N].
   */
  logProb(z: tf.Tensor2D, _cond: tf.Tensor2D | null): tf.Tensor1D {
    this.check(z, 'logProb');
    return tf.tidy(() => {
      const diff = tf.sub(tf.expandDims(z, 1), tf.expandDims(this.loc, 0));
      const logVar = tf.expandDims(this.logVar, 0);
      const quad = tf.mul(tf.square(diff), tf.exp(tf.neg(logVar)));
      const logN = tf.mul(tf.sum(tf.add(tf.add(quad, logVar), LOG_2PI), 2), -0.5);
      if (this.logits === null) return tf.squeeze(logN, [1]) as tf.Tensor1D;
      const logWeights = tf.expandDims(tf.logSoftmax(this.logits as tf.Tensor1D), 0);
      return tf.logSumExp(tf.add(logN, logWeights), 1) as tf.Tensor1D;
    });
  }

  /**
   * n draws: for each row a component k ~ Categorical(softmax(logits)) from `rng` (inverse CDF of
   * one uniform per row), then loc_k + exp(logVar_k / 2) * eps with eps ~ N(0, I) from `rng`.
   * Shapes: -> [n, D].
   */
  sample(n: number, rng: Rng, _cond: tf.Tensor2D | null): tf.Tensor2D {
    const logits = this.logits;
    const weights = logits === null ? new Float32Array([1]) : tf.tidy(() => tf.softmax(logits as tf.Tensor1D).dataSync());
    const idx = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const u = rng.uniform();
      let k = 0;
      let cum = weights[0];
      // float32 weights may sum to slightly below 1: a u above the total takes the last component.
      while (u >= cum && k < weights.length - 1) cum += weights[++k];
      idx[i] = k;
    }
    return tf.tidy(() => {
      const at = tf.tensor1d(idx, 'int32');
      const loc = tf.gather(this.loc, at);
      const scale = tf.exp(tf.mul(tf.gather(this.logVar, at), 0.5));
      return tf.add(loc, tf.mul(scale, rng.normalTensor([n, this.dim]))) as tf.Tensor2D;
    });
  }
}

export const mixturePrior = definePlugin({
  slot: 'prior',
  name: 'mixture',
  description: 'mixture of K learnable diagonal Gaussians (Monte-Carlo KL)',
  schema: mixturePriorSchema,
  implementation: MixturePrior,
});
