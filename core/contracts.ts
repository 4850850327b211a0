/**
 * The slot contracts of vaelab: what an encoder, latent, decoder, prior, likelihood and
 * objective must offer, and the injection tokens core resolves them by.
 *
 * Data flow of one forward pass (see core/README.md for how each variant maps onto it):
 *
 *   x, cond ──encoder──▶ h ──latent──▶ z (S samples per input) ──decoder──▶ params ──likelihood──▶ log p(x|z)
 *                                       │
 *                               prior ──┴──▶ log p(z), or a closed-form KL when both sides allow it
 *
 * Tensors are float32. Batches are flattened: x is [batch, dataDim]; image plugins reshape to
 * [batch, H, W, C] with the shape from `DataInfo`. When S samples are drawn per input, they are
 * stacked sample-major: row s*batch + b is sample s of input b.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { Rng } from './rng';

/** Injection tokens. Plugin config tokens come from `pluginConfig(slot, name)`. */
export const TOKENS = {
  Encoder: Symbol.for('vae.Encoder'),
  Latent: Symbol.for('vae.Latent'),
  Decoder: Symbol.for('vae.Decoder'),
  Prior: Symbol.for('vae.Prior'),
  Likelihood: Symbol.for('vae.Likelihood'),
  Objective: Symbol.for('vae.Objective'),
  Model: Symbol.for('vae.Model'),
  DataInfo: Symbol.for('vae.DataInfo'),
  Seed: Symbol.for('vae.Seed'),
} as const;

/** The slots a plugin can fill. A variant fills slots; it never adds one. */
export const SLOTS = ['encoder', 'latent', 'decoder', 'prior', 'likelihood', 'objective'] as const;
export type Slot = (typeof SLOTS)[number];

/** What the model knows of the data before any plugin is built. */
export interface DataInfo {
  /** Data set name, e.g. "mnist". */
  name: string;
  /** Example shape [H, W, C]; vector data is [1, 1, D]. */
  shape: [number, number, number];
  /** Flattened size H*W*C. */
  dim: number;
  /** Number of classes of the labels (0 when unlabelled). */
  numClasses: number;
  /** Size of the conditioning input given to encoder, decoder and prior (0 when unconditional). */
  condDim: number;
}

/** Anything that owns trainable variables. Names are stable keys for checkpoints. */
export interface Trainable {
  /** Trainable variables keyed by a stable, slot-local name (e.g. "dense0/kernel"). */
  variables(): Map<string, tf.Variable>;
}

/** Options of a forward pass. */
export interface PassOptions {
  /** True while training (dropout, straight-through estimators, batch statistics). */
  training: boolean;
  /** Randomness for this pass (reparameterisation noise, ...). */
  rng: Rng;
}

/**
 * Maps inputs to features. Shapes: x [batch, dataDim], cond [batch, condDim] or null;
 * returns h [batch, outputDim].
 */
export interface Encoder extends Trainable {
  readonly outputDim: number;
  encode(x: tf.Tensor2D, cond: tf.Tensor2D | null, opts: PassOptions): tf.Tensor2D;
}

/** Diagonal Gaussian parameters. Shapes: loc, logVar [batch, dim]. */
export interface DiagGaussianParams {
  loc: tf.Tensor2D;
  logVar: tf.Tensor2D;
}

/**
 * A draw from the latent bottleneck.
 * Shapes with S = samples, B = batch: z [S*B, dim]; logQ, innerLogPrior [S*B]; terms [B].
 */
export interface LatentSample {
  /** The code the decoder consumes, sample-major. [S*B, latent.dim] */
  z: tf.Tensor2D;
  /** The part of z the Prior scores (the top layer of a hierarchy); defaults to z. [S*B, latent.priorDim] */
  priorZ?: tf.Tensor2D;
  /** Number of samples per input, S. */
  samples: number;
  /** log q(z|x) of the drawn sample (joint over all stochastic layers). [S*B] */
  logQ: tf.Tensor1D;
  /**
   * Posterior parameters when q is a diagonal Gaussian over priorZ; enables closed-form KL
   * against priors that offer `analyticKl`, and per-dimension KL / active-unit diagnostics.
   */
  posterior?: DiagGaussianParams;
  /** log p of inner stochastic layers given the layer above (hierarchical latents). [S*B] */
  innerLogPrior?: tf.Tensor1D;
  /**
   * Closed-form KL of inner layers, if the latent can give it. [B]
   * When present, the model's KL is prior.analyticKl(posterior) + innerKl; when absent but
   * innerLogPrior is present, the KL falls back to Monte Carlo over all layers.
   */
  innerKl?: tf.Tensor1D;
  /** The latent's own per-example losses (VQ codebook/commitment), added to the objective. [B] */
  terms?: Record<string, tf.Tensor1D>;
}

/**
 * The bottleneck: turns encoder features into latent codes (Gaussian reparameterisation,
 * vector quantisation, a ladder of stochastic layers, ...).
 */
export interface Latent extends Trainable {
  /** Size of z as the decoder sees it. */
  readonly dim: number;
  /** Size of the code the prior is defined over (dim for flat latents). */
  readonly priorDim: number;
  /** Draws `samples` codes per input. h: [B, encoder.outputDim]. */
  sample(h: tf.Tensor2D, samples: number, opts: PassOptions): LatentSample;
  /**
   * Posterior parameters without drawing a sample, when q is a diagonal Gaussian over priorDim
   * (VampPrior encodes its pseudo-inputs with it; diagnostics use it). h: [B, encoder.outputDim]
   */
  posterior?(h: tf.Tensor2D, opts: PassOptions): DiagGaussianParams;
  /** The code used for reconstructions (posterior mean, nearest codeword). [B, dim] */
  mode(h: tf.Tensor2D, opts: PassOptions): tf.Tensor2D;
  /** Turns prior draws (over priorDim) into decoder input (runs top-down layers for hierarchies). [N, dim] */
  generate?(zPrior: tf.Tensor2D, opts: PassOptions): tf.Tensor2D;
}

/**
 * Maps latent codes to likelihood parameters. z: [N, latent.dim], cond [N, condDim] or null;
 * returns params [N, dataDim * likelihood.paramsPerDim], laid out per dimension: reshaping to
 * [N, dataDim, paramsPerDim] gives each data dimension's parameters.
 */
export interface Decoder extends Trainable {
  decode(z: tf.Tensor2D, cond: tf.Tensor2D | null, opts: PassOptions): tf.Tensor2D;
}

/**
 * p(z), optionally conditional on cond. Shapes: z [N, latent.priorDim], cond [N, condDim] or null.
 */
export interface Prior extends Trainable {
  /** log p(z). [N] */
  logProb(z: tf.Tensor2D, cond: tf.Tensor2D | null): tf.Tensor1D;
  /** n draws. [n, latent.priorDim] */
  sample(n: number, rng: Rng, cond: tf.Tensor2D | null): tf.Tensor2D;
  /**
   * Optional closed form of KL(q || p) for a diagonal Gaussian q, per example [B], and per
   * dimension [B, priorDim] when `perDim` is set. Objectives fall back to Monte Carlo without it.
   */
  analyticKl?(q: DiagGaussianParams, cond: tf.Tensor2D | null, perDim?: boolean): tf.Tensor;
}

/** p(x | params). x: [N, dataDim], params: [N, dataDim * paramsPerDim]. */
export interface Likelihood extends Trainable {
  /** Decoder outputs per data dimension (1 for Bernoulli logits, 2 for a Gaussian with learned scale). */
  readonly paramsPerDim: number;
  /** log p(x | params), summed over data dimensions. [N] */
  logProb(x: tf.Tensor2D, params: tf.Tensor2D): tf.Tensor1D;
  /** E[x | params], for reconstructions and sample grids. [N, dataDim] */
  mean(params: tf.Tensor2D): tf.Tensor2D;
  /** A draw x ~ p(x | params). [N, dataDim] */
  sample(params: tf.Tensor2D, rng: Rng): tf.Tensor2D;
}

/** A training/evaluation batch as the model sees it. */
export interface ModelBatch {
  /** [B, dataDim] */
  x: tf.Tensor2D;
  /** Conditioning input [B, condDim], or null. */
  cond: tf.Tensor2D | null;
}

/** Per-example terms of an objective. Every tensor is [B]; the trainer minimises mean(loss). */
export interface ObjectiveTerms {
  /** The per-example loss to minimise. [B] */
  loss: tf.Tensor1D;
  /** Named per-example diagnostics (reconstruction, kl, elbo, ...), logged as batch means. [B] */
  [name: string]: tf.Tensor1D;
}

/** Context of one objective evaluation. */
export interface ObjectiveContext extends PassOptions {
  /** Global optimisation step (for schedules such as KL warm-up). */
  step: number;
}

/** What the trainer minimises. */
export interface Objective extends Trainable {
  terms(batch: ModelBatch, ctx: ObjectiveContext): ObjectiveTerms;
}
