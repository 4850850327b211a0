/**
 * The deterministic layers of the ladder VAE (Sønderby et al. 2016, https://arxiv.org/abs/1602.02282):
 * dense layers with an optional batch normalisation between the product and the activation,
 * as in the official code (casperkaae/LVAE, `batchnormlayer`) and the PyTorch twin
 * (`/work/shared/peers/torch_variants.py`, `mlp_block`), and the Gaussian heads with a softplus
 * or exponential variance. Shared by the ladder's encoder, latent and decoder.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  ConfigError,
  Dense,
  Module,
  ShapeError,
  activate,
  fusedBatchNorm,
  reserveParameters,
  type Activation,
  type DataInfo,
  type DiagGaussianParams,
  type Rng,
} from '../../core';

/** Added to the batch variance before its square root (PyTorch's BatchNorm1d default). */
export const BATCH_NORM_EPSILON = 1e-5;

/**
 * Batch normalisation over the rows of a [N, C] tensor (Ioffe & Szegedy 2015,
 * https://arxiv.org/abs/1502.03167): y = (x - mean) / sqrt(var + 1e-5) * scale + offset.
 * In training, mean and var are the batch's (var biased), and the running statistics move by
 * `momentum`: running = (1 - momentum) running + momentum * batch, with the unbiased batch
 * variance for runningVar (PyTorch's convention, so momentum 0.1 is BatchNorm1d's default). In
 * evaluation the running statistics replace the batch's. Variables: scale, offset; state:
 * runningMean, runningVar (saved in checkpoints, never optimised).
 */
export class BatchNorm extends Module {
  readonly scale: tf.Variable;
  readonly offset: tf.Variable;
  readonly runningMean: tf.Variable;
  readonly runningVar: tf.Variable;
  constructor(
    readonly width: number,
    private readonly momentum: number,
  ) {
    super();
    reserveParameters([width]);
    this.scale = this.track('scale', tf.tidy(() => tf.variable(tf.ones([width]), true)));
    reserveParameters([width]);
    this.offset = this.track('offset', tf.tidy(() => tf.variable(tf.zeros([width]), true)));
    this.runningMean = this.trackState('runningMean', tf.tidy(() => tf.variable(tf.zeros([width]), false)));
    this.runningVar = this.trackState('runningVar', tf.tidy(() => tf.variable(tf.ones([width]), false)));
  }

  /** Normalises x with the batch's statistics (training) or the running ones. Shapes: x [N, C] -> [N, C]. */
  apply(x: tf.Tensor2D, training: boolean): tf.Tensor2D {
    const n = x.shape[0];
    if (training && n < 2) {
      throw new ShapeError(`BatchNorm.apply: batch statistics in training need at least 2 rows; got [${x.shape.join(', ')}]`);
    }
    return tf.tidy(() => {
      if (!training) {
        const gain = tf.mul(tf.rsqrt(tf.add(this.runningVar, BATCH_NORM_EPSILON)), this.scale);
        return tf.add(tf.mul(tf.sub(x, this.runningMean), gain), this.offset) as tf.Tensor2D;
      }
      // One fused kernel where the backend has it (core/fused.ts BATCH_NORM: the native pack),
      // else tfjs ops: mean and biased variance over the rows as products with a row of 1/N
      // (a reduction over axis 0 costs the wasm backend a transpose of x first).
      const fused = fusedBatchNorm(x, this.scale, this.offset, BATCH_NORM_EPSILON);
      let y: tf.Tensor2D, mean: tf.Tensor, variance: tf.Tensor;
      if (fused) ({ y, mean, variance } = fused);
      else {
        const avg = tf.fill([1, n], 1 / n) as tf.Tensor2D;
        mean = tf.reshape(tf.matMul(avg, x), [-1]);
        variance = tf.reshape(tf.matMul(avg, tf.square(tf.sub(x, mean))), [-1]);
        y = tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, BATCH_NORM_EPSILON))), this.scale), this.offset) as tf.Tensor2D;
      }
      const m = this.momentum;
      // The running statistics are state: assigned, never differentiated through.
      this.runningMean.assign(tf.add(tf.mul(this.runningMean, 1 - m), tf.mul(mean, m)));
      this.runningVar.assign(tf.add(tf.mul(this.runningVar, 1 - m), tf.mul(variance, (m * n) / (n - 1))));
      return y;
    });
  }
}

/** A dense layer without bias: y = x W (the bias before a batch norm would be removed by it). */
export class Linear extends Module {
  readonly kernel: tf.Variable;
  constructor(inDim: number, outDim: number, rng: Rng) {
    super();
    // PyTorch's nn.Linear bound, as core's Dense (and the same draws as its kernel)
    const bound = 1 / Math.sqrt(inDim);
    reserveParameters([inDim, outDim]);
    this.kernel = this.track('kernel', tf.tidy(() => tf.variable(rng.uniformTensor([inDim, outDim], -bound, bound), true)));
  }

  /** Shapes: x [N, inDim] -> [N, outDim]. */
  apply(x: tf.Tensor2D): tf.Tensor2D {
    return tf.matMul(x, this.kernel as tf.Tensor2D);
  }
}

/**
 * Dense layers of the given widths, each followed by batch normalisation (when `momentum` is
 * not null; the layer then has no bias) and the activation, the last layer included. Variables
 * per layer i: `dense<i>/kernel` and `dense<i>/bias` without batch norm; `dense<i>/kernel`,
 * `norm<i>/scale`, `norm<i>/offset` and state `norm<i>/runningMean`, `norm<i>/runningVar` with it.
 */
export class DenseStack extends Module {
  private readonly layers: Array<{ dense: Dense | Linear; norm: BatchNorm | null }> = [];
  readonly outDim: number;
  constructor(
    inDim: number,
    widths: readonly number[],
    private readonly activation: Activation,
    momentum: number | null,
    rng: Rng,
  ) {
    super();
    let d = inDim;
    widths.forEach((w, i) => {
      if (momentum === null) {
        this.layers.push({ dense: this.track(`dense${i}`, new Dense(d, w, rng)), norm: null });
      } else {
        this.layers.push({ dense: this.track(`dense${i}`, new Linear(d, w, rng)), norm: this.track(`norm${i}`, new BatchNorm(w, momentum)) });
      }
      d = w;
    });
    this.outDim = d;
  }

  /** Shapes: x [N, inDim] -> [N, outDim] (x itself with no layers). */
  apply(x: tf.Tensor2D, training: boolean): tf.Tensor2D {
    return tf.tidy(() => {
      let h = x;
      for (const { dense, norm } of this.layers) {
        h = norm ? activate(norm.apply((dense as Linear).apply(h), training), this.activation) : (dense as Dense).apply(h, this.activation);
      }
      return h === x ? tf.clone(x) : h;
    });
  }
}

/** How a Gaussian head turns its second linear output a into a variance. */
export const VARIANCES = ['softplus', 'exp'] as const;
export type Variance = (typeof VARIANCES)[number];

/**
 * The two linear heads of a diagonal Gaussian: loc = a1, and the variance from a2 either as
 * softplus(a2) + minVariance (the paper's and the twin's) or as exp(max(a2, log minVariance))
 * (a log-variance head, as latent.gaussian). Returned as loc and logVar. Variables: loc/kernel,
 * loc/bias, logVar/kernel, logVar/bias (the second head is named for what the Gaussian is
 * stored as, whatever the parameterisation).
 */
export class GaussianHeads extends Module {
  private readonly locHead: Dense;
  private readonly varHead: Dense;
  constructor(
    inDim: number,
    outDim: number,
    private readonly variance: Variance,
    private readonly minVariance: number,
    rng: Rng,
  ) {
    super();
    this.locHead = this.track('loc', new Dense(inDim, outDim, rng));
    this.varHead = this.track('logVar', new Dense(inDim, outDim, rng));
  }

  /** Shapes: h [N, inDim] -> loc, logVar [N, outDim]. */
  apply(h: tf.Tensor2D): DiagGaussianParams {
    return tf.tidy(() => {
      const loc = this.locHead.apply(h);
      const a = this.varHead.apply(h);
      const logVar = (this.variance === 'exp' ? tf.maximum(a, Math.log(this.minVariance)) : tf.log(tf.add(tf.softplus(a), this.minVariance))) as tf.Tensor2D;
      return { loc, logVar } as unknown as tf.TensorContainer;
    }) as unknown as DiagGaussianParams;
  }

  /** The mean alone. Shapes: h [N, inDim] -> [N, outDim]. */
  loc(h: tf.Tensor2D): tf.Tensor2D {
    return this.locHead.apply(h);
  }
}

/**
 * The problem of turning batch normalisation on for this data and batch size, as one line naming
 * `key` (the plugin's batchNorm key), or null: batch statistics need at least 2 rows in every
 * training batch (info.trainBatch, set by core when a session opens; absent: nothing to check).
 */
export function batchNormProblem(key: string, info: DataInfo): string | null {
  const tb = info.trainBatch;
  if (!tb) return null;
  const head = `${key}: batch statistics need at least 2 examples in every training batch`;
  if (tb.size < 2) return `${head}; got train.batchSize = ${tb.size}. Set train.batchSize >= 2, or ${key} = false`;
  if (tb.last < 2) {
    return (
      `${head}; the last batch of each epoch has ${tb.last} (${info.trainSize ?? '?'} training examples, train.batchSize = ${tb.size}). ` +
      `Set train.dropLast = true, change train.batchSize, or set ${key} = false`
    );
  }
  return null;
}

/** Throws the problems as one ConfigError when there are any. */
export function refuse(problems: Array<string | null>): void {
  const list = problems.filter((p): p is string => p !== null);
  if (list.length > 0) throw new ConfigError(list);
}
