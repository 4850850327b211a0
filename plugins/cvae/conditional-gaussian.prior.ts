/**
 * The conditional prior network of the CVAE (Sohn, Lee & Yan 2015, "Learning Structured Output
 * Representation using Deep Conditional Generative Models", https://papers.nips.cc/paper/5775):
 * p(z | y) = N(z; loc(y), diag(exp(logVar(y)))), with loc and logVar the two halves of the output
 * of an MLP of the conditioning input y (one-hot labels, the visible part of an image, ...).
 * KL(q(z|x,y) || p(z|y)) has a closed form for a diagonal-Gaussian q, so the model keeps its KL
 * analytic.
 *
 * With `guess: network` the prior network reads y with its hidden dimensions (DataInfo.targetMask,
 * the quadrants to predict) filled by a guess of them, the likelihood's mean of a second network
 * g(y): the set-up of Pyro's reproduction (pyro-ppl/pyro examples/cvae), whose g is the NN baseline
 * trained first and then frozen. Train g with objective nn-baseline (network: prior-guess) and
 * leave prior/guess/ out of train.trainable in the CVAE's stage; if it is left in, the KL trains g
 * too (a learned feature of the prior, not Pyro's model).
 * Reads prior.conditional-gaussian.hiddenSizes, .activation, .minLogVar, .guess,
 * .guessHiddenSizes and .guessActivation.
 */
import { inject, injectable } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import {
  ACTIVATIONS,
  ConfigError,
  Mlp,
  Module,
  ShapeError,
  TOKENS,
  definePlugin,
  diagGaussianLogProb,
  initRng,
  klDiagGaussiansPerDim,
  pluginConfig,
  type ConfigOf,
  type DataInfo,
  type DiagGaussianParams,
  type Latent,
  type Likelihood,
  type Prior,
  type Rng,
} from '../../core';

export const conditionalGaussianPriorSchema = {
  hiddenSizes: { doc: 'widths of the hidden layers of the prior network on the conditioning input ([] = loc and logVar affine in it)', format: 'positive-int-list', default: [500, 500] },
  activation: { doc: 'activation after every hidden layer of the prior network', format: ACTIVATIONS, default: 'relu' },
  minLogVar: { doc: 'lower clamp of the prior log-variance (keeps exp(-logVar) finite in the KL)', format: 'number', default: -10 },
  guess: {
    doc: 'input of the prior network: none = the conditioning input y; network = y with its hidden dimensions (data.condition: visible-quadrants) filled by the likelihood mean of a guess network g(y), Pyro\'s CVAE set-up (train g first with objective nn-baseline, network prior-guess; then leave prior/guess/ out of train.trainable)',
    format: ['none', 'network'],
    default: 'none',
  },
  guessHiddenSizes: { doc: 'guess: network: widths of the hidden layers of g (y -> likelihood parameters of x)', format: 'positive-int-list', default: [500, 500] },
  guessActivation: { doc: 'guess: network: activation after every hidden layer of g', format: ACTIVATIONS, default: 'relu' },
} as const;

/**
 * p(z | cond) = N(loc(cond), diag(exp(logVar(cond)))). Variables: the prior network
 * `net/dense<i>/{kernel,bias}`, condDim -> hiddenSizes -> 2 * priorDim (loc first, then logVar),
 * and with guess: network the guess network `guess/dense<i>/{kernel,bias}`, condDim ->
 * guessHiddenSizes -> dataDim * likelihood.paramsPerDim.
 * Shapes: z [N, priorDim], cond [N, condDim] -> [N].
 */
@injectable()
export class ConditionalGaussianPrior extends Module implements Prior {
  readonly dim: number;
  readonly condDim: number;
  private readonly net: Mlp;
  private readonly guessNet: Mlp | null = null;
  /** 1 on the dimensions of cond the guess fills (DataInfo.targetMask); null without a guess. */
  private readonly fillMask: Float32Array | null = null;
  constructor(
    @inject(pluginConfig('prior', 'conditional-gaussian')) private readonly cfg: ConfigOf<typeof conditionalGaussianPriorSchema>,
    @inject(TOKENS.Latent) latent: Latent,
    @inject(TOKENS.DataInfo) data: DataInfo,
    @inject(TOKENS.Likelihood) private readonly likelihood: Likelihood,
    @inject(TOKENS.Seed) seed: number,
  ) {
    super();
    if (data.condDim === 0) {
      throw new ConfigError(
        'prior.use: "conditional-gaussian" needs a conditioning input, and data.condition.use is "none"; set data.condition.use to "labels" or "visible-quadrants", or use prior "standard-normal"',
      );
    }
    this.dim = latent.priorDim;
    this.condDim = data.condDim;
    this.net = this.track('net', new Mlp([data.condDim, ...cfg.hiddenSizes, 2 * this.dim], cfg.activation, initRng(seed, 'prior', 'conditional-gaussian')));
    if (cfg.guess === 'network') {
      if (!data.targetMask || data.condDim !== data.dim) {
        throw new ConfigError(
          `prior.conditional-gaussian.guess: "network" fills the dimensions of the conditioning input that it hides, and data.condition.use hides none of x (condDim ${data.condDim}, data dim ${data.dim}); set data.condition.use to "visible-quadrants", or guess to "none"`,
        );
      }
      this.fillMask = data.targetMask;
      const sizes = [data.condDim, ...cfg.guessHiddenSizes, data.dim * likelihood.paramsPerDim];
      this.guessNet = this.track('guess', new Mlp(sizes, cfg.guessActivation, initRng(seed, 'prior', 'conditional-gaussian/guess')));
    }
  }

  /** True with guess: network. */
  get hasGuess(): boolean {
    return this.guessNet !== null;
  }

  /** The guess network's likelihood parameters of x, g(cond). cond [N, condDim] -> [N, dataDim * paramsPerDim] */
  guessParams(cond: tf.Tensor2D): tf.Tensor2D {
    const net = this.guessNet;
    if (!net) throw new ConfigError('ConditionalGaussianPrior.guessParams: prior.conditional-gaussian.guess is "none"; set it to "network"');
    return tf.tidy(() => net.apply(cond));
  }

  /** The prior network's input: cond, or cond with its hidden dimensions set to the guess's likelihood mean. [N, condDim] */
  private netInput(cond: tf.Tensor2D): tf.Tensor2D {
    if (!this.fillMask) return cond;
    return tf.tidy(() => {
      const m = tf.tensor2d(this.fillMask!, [1, this.fillMask!.length]);
      const guess = this.likelihood.mean(this.guessParams(cond));
      return tf.add(tf.mul(cond, tf.sub(1, m)), tf.mul(guess, m)) as tf.Tensor2D;
    });
  }

  private check(method: string, n: number, cond: tf.Tensor2D | null, z?: tf.Tensor): asserts cond is tf.Tensor2D {
    if (z && (z.rank !== 2 || z.shape[1] !== this.dim)) {
      throw new ShapeError(`ConditionalGaussianPrior.${method}: z must be [N, ${this.dim}] (the latent's priorDim); got [${z.shape.join(', ')}]`);
    }
    if (!cond || cond.rank !== 2 || cond.shape[0] !== n || cond.shape[1] !== this.condDim) {
      const got = cond ? `[${cond.shape.join(', ')}]` : 'null';
      throw new ShapeError(`ConditionalGaussianPrior.${method}: cond must be [${n}, ${this.condDim}] (the conditioning input of data.condition, one row per ${z ? 'row of z' : 'draw'}); got ${got}`);
    }
  }

  /** loc and logVar of p(z | cond). Shapes: cond [N, condDim] -> loc, logVar [N, priorDim]. */
  params(cond: tf.Tensor2D): DiagGaussianParams {
    return tf.tidy(() => {
      const out = this.net.apply(this.netInput(cond));
      const loc = tf.slice(out, [0, 0], [-1, this.dim]) as tf.Tensor2D;
      const logVar = tf.maximum(tf.slice(out, [0, this.dim], [-1, this.dim]), this.cfg.minLogVar) as tf.Tensor2D;
      return { loc, logVar } as unknown as tf.TensorContainer;
    }) as unknown as DiagGaussianParams;
  }

  /** log N(z; loc(cond), exp(logVar(cond))) summed over dimensions. z [N, D], cond [N, condDim] -> [N] */
  logProb(z: tf.Tensor2D, cond: tf.Tensor2D | null): tf.Tensor1D {
    this.check('logProb', z.shape[0], cond, z);
    return tf.tidy(() => {
      const p = this.params(cond);
      return diagGaussianLogProb(z, p.loc, p.logVar);
    });
  }

  /** One draw per row of cond: loc(cond) + exp(logVar(cond) / 2) * eps, eps ~ N(0, I) from rng. cond [n, condDim] -> [n, D] */
  sample(n: number, rng: Rng, cond: tf.Tensor2D | null): tf.Tensor2D {
    this.check('sample', n, cond);
    return tf.tidy(() => {
      const p = this.params(cond);
      return tf.add(p.loc, tf.mul(tf.exp(tf.mul(p.logVar, 0.5)), rng.normalTensor([n, this.dim]))) as tf.Tensor2D;
    });
  }

  /**
   * KL(N(q.loc, e^q.logVar) || N(loc(cond), e^logVar(cond))) per dimension
   * 0.5 * (logVarP - logVarQ + (e^logVarQ + (locQ - locP)^2) / e^logVarP - 1), summed unless perDim.
   * Shapes: q.loc, q.logVar [B, D], cond [B, condDim] -> [B] or [B, D].
   */
  analyticKl(q: DiagGaussianParams, cond: tf.Tensor2D | null, perDim = false): tf.Tensor {
    this.check('analyticKl', q.loc.shape[0], cond, q.loc);
    return tf.tidy(() => {
      const p = this.params(cond);
      const kl = klDiagGaussiansPerDim(q.loc, q.logVar, p.loc, p.logVar);
      return perDim ? kl : tf.sum(kl, -1);
    });
  }
}

export const conditionalGaussianPrior = definePlugin({
  slot: 'prior',
  name: 'conditional-gaussian',
  description: 'CVAE prior network p(z|y): a diagonal Gaussian whose loc and log-variance are an MLP of the conditioning input (closed-form KL)',
  schema: conditionalGaussianPriorSchema,
  implementation: ConditionalGaussianPrior,
});
