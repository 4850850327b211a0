/**
 * VampPrior (Tomczak & Welling 2018, https://arxiv.org/abs/1705.07120): the prior is the mixture
 * of the variational posteriors of K learned pseudo-inputs u_k,
 * p(z) = (1/K) sum_k q(z | u_k), each q(z | u_k) = N(loc_k, diag(exp(logVar_k))) computed by the
 * experiment's own encoder and latent (`latent.posterior(encoder.encode(u))`), with the pass
 * options the prior receives. Only the pseudo-inputs are the prior's variables; encoder and latent
 * weights are shared with the model, so the prior term trains them too. There is no closed-form
 * KL against a mixture, so the model estimates KL(q || p) by Monte Carlo. Reads
 * prior.vamp.pseudoInputs, prior.vamp.init, prior.vamp.initMean, prior.vamp.initStd and
 * prior.vamp.clip.
 */
import { inject, injectable } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import {
  ConfigError,
  LOG_2PI,
  Module,
  Rng,
  ShapeError,
  TOKENS,
  definePlugin,
  initRng,
  pluginConfig,
  reserveParameters,
  type ConfigOf,
  type DataInfo,
  type DiagGaussianParams,
  type Encoder,
  type Latent,
  type PassOptions,
  type Prior,
  type TrainingExamples,
} from '../../core';

export const vampPriorSchema = {
  pseudoInputs: { doc: 'number of pseudo-inputs K (mixture components)', format: 'positive-int', default: 500 },
  init: {
    doc: 'initialisation of the pseudo-inputs: random (each entry drawn from N(initMean, initStd^2)) or data (K distinct training images drawn at random, plus N(0, initStd^2) noise; the official code\'s use_training_data_init)',
    format: ['random', 'data'],
    default: 'random',
  },
  initMean: { doc: 'mean of the random initial pseudo-input entries (the official code uses 0.05 on MNIST)', format: 'number', default: 0.05 },
  initStd: { doc: 'standard deviation of the random initial pseudo-input entries', format: 'non-negative-number', default: 0.01 },
  clip: {
    doc: "clip the pseudo-inputs to the data range [0, 1] before encoding them (the official code's hardtanh); no gradient reaches an entry outside it",
    format: 'boolean',
    default: true,
  },
} as const;

/**
 * Mixture of the posteriors of K pseudo-inputs. Variable: pseudoInputs [K, dataDim].
 * Shapes: z [N, latent.priorDim] -> [N].
 */
@injectable()
export class VampPrior extends Module implements Prior {
  readonly dim: number;
  readonly pseudoInputs: tf.Variable;
  private readonly passRng: Rng;
  constructor(
    @inject(pluginConfig('prior', 'vamp')) private readonly cfg: ConfigOf<typeof vampPriorSchema>,
    @inject(TOKENS.DataInfo) info: DataInfo,
    @inject(TOKENS.Encoder) private readonly encoder: Encoder,
    @inject(TOKENS.Latent) private readonly latent: Latent,
    @inject(TOKENS.Seed) seed: number,
  ) {
    super();
    if (typeof latent.posterior !== 'function') {
      throw new ConfigError(
        `prior.vamp: needs a latent whose q(z|x) is a diagonal Gaussian it can give without sampling (Latent.posterior), to encode its pseudo-inputs; ` +
          `the latent selected by latent.use (class ${latent.constructor.name}) has no posterior method. Choose a Gaussian latent such as latent.use: gaussian, or another prior`,
      );
    }
    if (info.condDim > 0) {
      throw new ConfigError(
        `prior.vamp: is unconditional (its pseudo-inputs have no conditioning input); data.condition gives the model one of size ${info.condDim}. Set data.condition.use: none, or choose another prior`,
      );
    }
    if (cfg.init === 'data' && info.trainSize !== undefined && info.trainSize < cfg.pseudoInputs) {
      throw new ConfigError(
        `prior.vamp.init: "data" draws pseudoInputs = ${cfg.pseudoInputs} distinct training examples; the training split has ${info.trainSize}. Lower prior.vamp.pseudoInputs or use init: random`,
      );
    }
    this.dim = latent.priorDim;
    reserveParameters([cfg.pseudoInputs, info.dim]);
    const rng = initRng(seed, 'prior', 'vamp');
    this.pseudoInputs = this.track(
      'pseudoInputs',
      tf.tidy(() => tf.variable(tf.add(tf.mul(rng.normalTensor([cfg.pseudoInputs, info.dim]), cfg.initStd), cfg.initMean), true)),
    );
    this.passRng = Rng.derive(seed, 'prior/vamp/pass');
  }

  /**
   * With init: data, the pseudo-inputs become K distinct training images drawn at random plus
   * N(0, initStd^2) noise (the official code takes the first K images plus the same noise).
   */
  initFromData(data: TrainingExamples, rng: Rng): void {
    if (this.cfg.init !== 'data') return;
    const k = this.cfg.pseudoInputs;
    const { x, cond } = data.draw(k, rng);
    cond?.dispose();
    if (x.shape[0] < k) {
      x.dispose();
      throw new ConfigError(`prior.vamp.init: "data" draws pseudoInputs = ${k} distinct training examples; the training split has ${data.n}. Lower prior.vamp.pseudoInputs or use init: random`);
    }
    this.pseudoInputs.assign(tf.add(x, tf.mul(rng.normalTensor(x.shape), this.cfg.initStd)));
    x.dispose();
  }

  private check(z: tf.Tensor, method: string): void {
    if (z.rank !== 2 || z.shape[1] !== this.dim) {
      throw new ShapeError(`VampPrior.${method}: z must be [N, ${this.dim}] (the latent's priorDim); got [${z.shape.join(', ')}]`);
    }
  }

  /**
   * The K components q(z | u_k): the (clipped) pseudo-inputs through encoder and latent with the
   * pass's `training` flag and Rng (an encoder with dropout sees the pass's mode here too); a
   * call outside a pass (opts absent) runs in evaluation mode. loc, logVar: [K, priorDim]
   */
  components(opts?: PassOptions): DiagGaussianParams {
    const o: PassOptions = { training: opts?.training ?? false, rng: opts?.rng ?? this.passRng, cond: null };
    return tf.tidy(() => {
      const u = (this.cfg.clip ? tf.clipByValue(this.pseudoInputs, 0, 1) : this.pseudoInputs) as tf.Tensor2D;
      return this.latent.posterior!(this.encoder.encode(u, null, o), o) as unknown as tf.TensorContainer;
    }) as unknown as DiagGaussianParams;
  }

  /**
   * log p(z) = logsumexp_k log N(z; loc_k, exp(logVar_k)) - log K, with z broadcast against the
   * components to [N, K, D]. Shapes: z [N, D] -> [N].
   */
  logProb(z: tf.Tensor2D, _cond: tf.Tensor2D | null, opts?: PassOptions): tf.Tensor1D {
    this.check(z, 'logProb');
    return tf.tidy(() => {
      const q = this.components(opts);
      const diff = tf.sub(tf.expandDims(z, 1), tf.expandDims(q.loc, 0));
      const logVar = tf.expandDims(q.logVar, 0);
      const quad = tf.mul(tf.square(diff), tf.exp(tf.neg(logVar)));
      const logN = tf.mul(tf.sum(tf.add(tf.add(quad, logVar), LOG_2PI), 2), -0.5);
      return tf.sub(tf.logSumExp(logN, 1), Math.log(this.cfg.pseudoInputs)) as tf.Tensor1D;
    });
  }

  /**
   * n draws: for each row a pseudo-input k uniformly from `rng`, then loc_k + exp(logVar_k / 2) * eps
   * with eps ~ N(0, I) from `rng`. Shapes: -> [n, D].
   */
  sample(n: number, rng: Rng, _cond: tf.Tensor2D | null, opts?: PassOptions): tf.Tensor2D {
    const idx = new Int32Array(n);
    for (let i = 0; i < n; i++) idx[i] = rng.int(this.cfg.pseudoInputs);
    return tf.tidy(() => {
      const q = this.components(opts);
      const at = tf.tensor1d(idx, 'int32');
      const scale = tf.exp(tf.mul(tf.gather(q.logVar, at), 0.5));
      return tf.add(tf.gather(q.loc, at), tf.mul(scale, rng.normalTensor([n, this.dim]))) as tf.Tensor2D;
    });
  }
}

export const vampPrior = definePlugin({
  slot: 'prior',
  name: 'vamp',
  description: 'VampPrior: mixture of the posteriors of K learned pseudo-inputs (Monte-Carlo KL)',
  schema: vampPriorSchema,
  implementation: VampPrior,
});
