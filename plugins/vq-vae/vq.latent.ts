/**
 * Vector quantisation over a grid of codes (VQ-VAE: van den Oord, Vinyals & Kavukcuoglu 2017,
 * https://arxiv.org/abs/1711.00937). The encoder's features z_e [B, H', W', D] are replaced,
 * position by position, by their nearest codebook vector e_k* (k* = argmin_k ||z_e - e_k||^2,
 * computed as ||e_k||^2 - 2 z_e . e_k in one product, since ||z_e||^2 does not depend on k). The
 * decoder sees z = z_e + sg[z_q - z_e]: the value of z_q, the gradient of z_e (straight-through).
 * Per-example terms (summed over the grid and D, as the paper's norms):
 *   codebook   = ||sg[z_e] - z_q||^2          moves the codes (absent with ema: true)
 *   commitment = beta ||z_e - sg[z_q]||^2     keeps the encoder near its codes
 * With ema: true the codebook is non-trainable state updated after each training pass (the
 * paper's appendix A.1): N_k <- g N_k + (1 - g) n_k, m_k <- g m_k + (1 - g) sum_{i: k*(i) = k} z_e(i),
 * e_k = m_k / N~_k with the Laplace-smoothed N~_k = (N_k + eps) / (sum_j N_j + K eps) * sum_j N_j.
 * Dead-code restarts (deadCodeSteps = N > 0): a code no grid position chose in N consecutive
 * training passes is moved, at the start of the next one, to an encoder output z_e(i) of that
 * pass drawn uniformly (its EMA count set to 1 and sum to that output).
 * q(z|x) is deterministic: logQ = 0, and priorZ holds the code indices k* [S*B, H', W'] (as
 * float32) for a prior over code grids (`uniform-codes`, `pixelcnn`).
 * In an evaluation (PassOptions.metrics) it reports the split's codebook perplexity
 * exp(-sum_k p_k log p_k), p_k = share of grid positions given code k, and usage (codes used / K).
 * Reads latent.vq.codebookSize, codeDim, commitmentWeight, ema, emaDecay, emaEpsilon,
 * deadCodeSteps, initScale.
 */
import { inject, injectable } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import {
  ConfigError,
  Module,
  TOKENS,
  definePlugin,
  initRng,
  pluginConfig,
  reserveParameters,
  stopGradient,
  tileSamples,
  type ConfigOf,
  type Encoder,
  type Features,
  type Latent,
  type LatentSample,
  type PassOptions,
} from '../../core';

export const vqLatentSchema = {
  codebookSize: { doc: 'number of codes K (at least 2)', format: 'positive-int', default: 512 },
  codeDim: { doc: "size D of each code; 0 takes the channels of the encoder's feature grid, which any other value must equal", format: 'nat', default: 0 },
  commitmentWeight: { doc: 'beta of the commitment loss beta ||z_e - sg[e]||^2', format: 'non-negative-number', default: 0.25 },
  ema: { doc: 'update the codebook by exponential moving averages (non-trainable state) instead of the codebook loss', format: 'boolean', default: false },
  emaDecay: { doc: 'decay gamma of the EMA updates', format: 'probability', default: 0.99 },
  emaEpsilon: { doc: 'Laplace smoothing epsilon of the EMA cluster sizes', format: 'non-negative-number', default: 1e-5 },
  deadCodeSteps: { doc: 'move a code unused for this many consecutive training passes to a random encoder output (0 = never)', format: 'nat', default: 0 },
  initScale: { doc: 'codes start uniform in [-s, s] with s = initScale * sqrt(3 / D) (variance scaling)', format: 'positive-number', default: 1 },
} as const;

/** A latent whose prior codes are a grid of indices in [0, numCodes): what priors over code grids read. */
export interface CodeGridLatent extends Latent {
  /** K, the number of codes. */
  readonly numCodes: number;
  /** [H', W'] */
  readonly priorShape: readonly number[];
}

/** Shapes: h [B, H', W', D] (or flat [B, D], a 1x1 grid) -> z [S*B, H', W', D], priorZ [S*B, H', W']. */
@injectable()
export class VqLatent extends Module implements CodeGridLatent {
  readonly dim: number;
  readonly priorDim: number;
  readonly shape: readonly number[];
  readonly priorShape: readonly number[];
  readonly numCodes: number;
  readonly codeDim: number;
  /** [K, D]: trainable, or state with ema */
  readonly codebook: tf.Variable;
  /** EMA cluster sizes N [K] and sums m [K, D] (ema only). */
  readonly emaCount: tf.Variable | null = null;
  readonly emaSum: tf.Variable | null = null;
  /** Consecutive training passes each code went unused [K] (deadCodeSteps > 0 only). */
  readonly unused: tf.Variable | null = null;

  constructor(
    @inject(pluginConfig('latent', 'vq')) private readonly cfg: ConfigOf<typeof vqLatentSchema>,
    @inject(TOKENS.Encoder) encoder: Encoder,
    @inject(TOKENS.Seed) seed: number,
  ) {
    super();
    const K = cfg.codebookSize;
    if (K < 2) throw new ConfigError(`latent.vq.codebookSize: must be at least 2 (one code carries no information); got ${K}`);
    let grid: readonly number[];
    if (encoder.outputShapes) {
      if (encoder.outputShapes.length !== 1 || encoder.outputShapes[0].length !== 3) {
        throw new ConfigError(
          `latent.vq: needs one feature grid [H, W, D] from the encoder; encoder ${encoder.constructor.name} gives ${encoder.outputShapes.map((s) => `[${s.join(', ')}]`).join(', ')}`,
        );
      }
      grid = encoder.outputShapes[0];
    } else {
      grid = [1, 1, encoder.outputDim];
    }
    const [h, w, c] = grid;
    if (cfg.codeDim !== 0 && cfg.codeDim !== c) {
      throw new ConfigError(`latent.vq.codeDim: must equal the channels of the encoder's features (encoder ${encoder.constructor.name} gives [${grid.join(', ')}] per example), or be 0 to take them; got ${cfg.codeDim}`);
    }
    const D = c;
    this.codeDim = D;
    this.numCodes = K;
    this.shape = [h, w, D];
    this.priorShape = [h, w];
    this.dim = h * w * D;
    this.priorDim = h * w;
    reserveParameters([K, D]);
    const bound = cfg.initScale * Math.sqrt(3 / D);
    const init = initRng(seed, 'latent', 'vq').uniformTensor([K, D], -bound, bound);
    if (cfg.ema) {
      this.codebook = this.trackState('codebook', tf.variable(init, false));
      this.emaCount = this.trackState('ema-count', tf.tidy(() => tf.variable(tf.ones([K]), false)));
      this.emaSum = this.trackState('ema-sum', tf.tidy(() => tf.variable(tf.clone(init), false)));
    } else {
      this.codebook = this.track('codebook', tf.variable(init, true));
    }
    init.dispose();
    if (cfg.deadCodeSteps > 0) this.unused = this.trackState('unused-steps', tf.tidy(() => tf.variable(tf.zeros([K]), false)));
  }

  /** The encoder's features as a grid. [B, H', W', D] */
  private grid(h: Features): tf.Tensor4D {
    const t = Array.isArray(h) ? h[0] : h;
    return tf.reshape(t, [t.shape[0], this.shape[0], this.shape[1], this.shape[2]]) as tf.Tensor4D;
  }

  /**
   * Index of the nearest code of each row: argmin_k ||e_k||^2 - 2 z . e_k (ties: the lowest k).
   * Shapes: rows [n, D] -> [n] int32.
   */
  nearest(rows: tf.Tensor2D): tf.Tensor1D {
    return tf.tidy(() => {
      const cross = tf.matMul(rows, this.codebook as tf.Tensor2D, false, true);
      return tf.argMin(tf.sub(tf.sum(tf.square(this.codebook), 1), tf.mul(cross, 2)), 1) as tf.Tensor1D;
    });
  }

  /** Codewords of code indices. Shapes: idx [n] int32 -> [n, D]. */
  private lookup(idx: tf.Tensor1D): tf.Tensor2D {
    // A one-hot product rather than tf.gather: gather's gradient fails on indices that the tape
    // traces back to the encoder (it returns int32 for them), and needs UnsortedSegmentSum, which
    // the wasm backend lacks; the product's gradient is one more product.
    return tf.matMul(oneHotFloat(idx, this.numCodes), this.codebook as tf.Tensor2D);
  }

  /** Dead-code restart, at the start of a training pass: codes unused for deadCodeSteps passes move to random rows of z_e. rows: [n, D] */
  private restartDeadCodes(rows: tf.Tensor2D, opts: PassOptions): void {
    const K = this.numCodes;
    const unused = this.unused!;
    tf.tidy(() => {
      const dead = tf.greaterEqual(unused, this.cfg.deadCodeSteps) as tf.Tensor1D;
      const pick = tf.cast(tf.minimum(tf.floor(tf.mul(opts.rng.uniformTensor([K]), rows.shape[0])), rows.shape[0] - 1), 'int32') as tf.Tensor1D;
      const chosen = tf.gather(rows, pick) as tf.Tensor2D;
      const deadRows = tf.reshape(dead, [K, 1]);
      this.codebook.assign(tf.where(deadRows, chosen, this.codebook as tf.Tensor2D));
      if (this.emaSum && this.emaCount) {
        this.emaSum.assign(tf.where(deadRows, chosen, this.emaSum as tf.Tensor2D));
        this.emaCount.assign(tf.where(dead, tf.onesLike(this.emaCount), this.emaCount));
      }
      unused.assign(tf.where(dead, tf.zerosLike(unused), unused));
    });
  }

  /**
   * The EMA step after a training pass's lookup (appendix A.1, with Laplace smoothing).
   * Shapes: oneHot [n, K], rows [n, D] (no gradient), counts [K].
   */
  private emaUpdate(oneHot: tf.Tensor2D, rows: tf.Tensor2D, counts: tf.Tensor1D): void {
    const g = this.cfg.emaDecay;
    const eps = this.cfg.emaEpsilon;
    const K = this.numCodes;
    tf.tidy(() => {
      const count = tf.add(tf.mul(this.emaCount!, g), tf.mul(counts, 1 - g));
      const sum = tf.add(tf.mul(this.emaSum!, g), tf.mul(tf.matMul(oneHot, rows, true, false), 1 - g));
      const total = tf.sum(count);
      const smoothed = tf.mul(tf.div(tf.add(count, eps), tf.add(total, K * eps)), total);
      this.emaCount!.assign(count);
      this.emaSum!.assign(sum);
      this.codebook.assign(tf.div(sum, tf.reshape(smoothed, [K, 1])));
    });
  }

  sample(h: Features, samples: number, opts: PassOptions): LatentSample {
    return tf.tidy(() => {
      const ze = this.grid(h);
      const b = ze.shape[0];
      const [gh, gw, D] = this.shape;
      // The search and the EMA statistics need no gradient; only the losses and z carry one.
      const rows = stopGradient(tf.reshape(ze, [-1, D]) as tf.Tensor2D);
      if (opts.training && this.unused) this.restartDeadCodes(rows, opts);
      const idx = this.nearest(rows);
      const zq = tf.reshape(this.lookup(idx), [b, gh, gw, D]);
      const perExample = (t: tf.Tensor) => tf.sum(tf.reshape(t, [b, -1]), 1) as tf.Tensor1D;
      const terms: Record<string, tf.Tensor1D> = {};
      if (!this.cfg.ema) terms.codebook = perExample(tf.square(tf.sub(stopGradient(ze), zq)));
      terms.commitment = tf.mul(perExample(tf.square(tf.sub(ze, stopGradient(zq)))), this.cfg.commitmentWeight) as tf.Tensor1D;
      // Straight-through: the value of z_q, the gradient of z_e.
      const z = tf.add(ze, stopGradient(tf.sub(zq, ze)));
      const needCounts = opts.training ? this.cfg.ema || this.unused !== null : opts.metrics !== undefined;
      if (needCounts) {
        const oneHot = oneHotFloat(idx, this.numCodes);
        const counts = tf.sum(oneHot, 0) as tf.Tensor1D;
        if (opts.training) {
          if (this.unused) this.unused.assign(tf.where(tf.greater(counts, 0), tf.zerosLike(this.unused), tf.add(this.unused, 1)));
          if (this.cfg.ema) this.emaUpdate(oneHot, rows, counts);
        } else {
          opts.metrics!.add('codebook-perplexity', counts, codebookPerplexity);
          opts.metrics!.add('codebook-usage', counts, (sum) => sum.filter((n) => n > 0).length / sum.length);
        }
      }
      const priorZ = tf.reshape(tf.cast(idx, 'float32'), [b, gh, gw]);
      return { z: tileSamples(z, samples), priorZ: tileSamples(priorZ, samples), samples, logQ: tf.zeros([samples * b]) as tf.Tensor1D, terms };
    });
  }

  /** The nearest codewords. [B, H', W', D] */
  mode(h: Features, _opts: PassOptions): tf.Tensor {
    return tf.tidy(() => {
      const ze = this.grid(h);
      return tf.reshape(this.lookup(this.nearest(tf.reshape(ze, [-1, this.codeDim]) as tf.Tensor2D)), [ze.shape[0], ...this.shape]);
    });
  }

  /** Codewords of a grid of code indices (float32 integers in [0, K)). Shapes: codes [N, H', W'] -> [N, H', W', D]. */
  generate(codes: tf.Tensor, _opts: PassOptions): tf.Tensor {
    return tf.tidy(() => tf.reshape(this.lookup(tf.cast(tf.reshape(codes, [-1]), 'int32') as tf.Tensor1D), [codes.shape[0], ...this.shape]));
  }
}

/**
 * One-hot rows as float32. Shapes: idx [n] int32 -> [n, depth]. Made as int32 and cast: the wasm
 * backend's OneHot kernel (tfjs-backend-wasm 4.22) asked for float32 writes the int32 bit
 * patterns (1 reads as 1.4e-45).
 */
function oneHotFloat(idx: tf.Tensor, depth: number): tf.Tensor2D {
  return tf.tidy(() => tf.cast(tf.oneHot(tf.reshape(idx, [-1]) as tf.Tensor1D, depth), 'float32') as tf.Tensor2D);
}

/** exp(entropy) of the code shares sum_k / sum: the number of equally used codes with the same entropy. */
export function codebookPerplexity(counts: Float64Array): number {
  let total = 0;
  for (const n of counts) total += n;
  if (total === 0) return 0;
  let h = 0;
  for (const n of counts) if (n > 0) h -= (n / total) * Math.log(n / total);
  return Math.exp(h);
}

export const vqLatent = definePlugin({
  slot: 'latent',
  name: 'vq',
  description: 'vector-quantised grid of codes (VQ-VAE): nearest codeword, straight-through gradient, codebook and commitment losses, optional EMA codebook and dead-code restarts',
  schema: vqLatentSchema,
  implementation: VqLatent,
});
