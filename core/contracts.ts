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
  /** Size of the conditioning input given to encoder, latent, decoder and prior (0 when unconditional). */
  condDim: number;
  /**
   * Number of training examples N (after the validation split is carved out), for plugins whose
   * estimators need it, e.g. beta-TCVAE's minibatch-weighted sampling. Core always sets it when
   * it opens a session; absent only where a DataInfo is built by hand (tests).
   */
  trainSize?: number;
  /**
   * Number of training examples whose label is known: trainSize when every label is kept, fewer
   * with `data.labelledSize` (semi-supervised weighting, e.g. M2's alpha * N / N_labelled). Core
   * sets it when it opens a session; absent where a DataInfo is built by hand.
   */
  labelledTrainSize?: number;
  /**
   * Rows of a training step: `size` = train.batchSize, `last` = the rows of an epoch's last
   * batch (trainSize mod batchSize, or size when it divides trainSize or with train.dropLast;
   * trainSize when that is smaller than batchSize), so that a plugin whose batch statistics need
   * several rows (batch normalisation) can refuse a batch of one before training. Core sets it
   * when it opens a session; absent where a DataInfo is built by hand.
   */
  trainBatch?: { readonly size: number; readonly last: number };
  /**
   * Labelled rows appended to every training batch (data.labelledBatchSize): the last
   * `labelledBatch` rows of a training batch are labelled examples, the others unlabelled ones;
   * 0 or absent: labelled examples come inside the batches at their natural rate. An objective
   * weighting the two parts (M2) reads it with labelledTrainSize and trainSize.
   */
  labelledBatch?: number;
  /**
   * Which dimensions of x are the target to predict given the conditioning input: 1 where the
   * conditioning input hides the dimension, 0 where it shows it. [dim] float32, set by
   * `data.condition: visible-quadrants` (x = the whole image, cond = its visible part, the target
   * the hidden part, as in the CVAE quadrant task); absent when cond hides nothing of x. A
   * likelihood or objective that scores only the hidden part reads it.
   */
  targetMask?: Float32Array;
}

/** Anything that owns trainable variables. Names are stable keys for checkpoints. */
export interface Trainable {
  /** Trainable variables keyed by a stable, slot-local name (e.g. "dense0/kernel"). */
  variables(): Map<string, tf.Variable>;
  /**
   * Non-trainable state: buffers a plugin updates itself during training, without gradients
   * (EMA codebooks, batch-norm running statistics), keyed by stable slot-local names. Saved in
   * every checkpoint and restored exactly; never given to an optimizer, and the conformance kit
   * demands no gradient for them. Update them with `variable.assign` inside the pass, only when
   * `opts.training` is true.
   */
  state?(): Map<string, tf.Variable>;
  /**
   * Data-dependent initialisation (VampPrior pseudo-inputs from training images, a codebook from
   * encoder outputs, ...): called once at the start of a fresh training run, before init.from is
   * applied and before the first step, never on resume. Assign to your own variables with
   * `variable.assign`; draw from `data` what you need (it disposes nothing you keep: copy into
   * your variables and dispose the draw). The parts are built and their weights initialised.
   */
  initFromData?(data: TrainingExamples, rng: Rng): void;
}

/** The training split as `Trainable.initFromData` sees it. */
export interface TrainingExamples {
  /** Number of training examples. */
  readonly n: number;
  /**
   * `count` distinct training examples (min(count, n)), chosen at random from the stream the
   * caller passes, as stored (grey levels, before any binarisation), with their conditioning
   * input as training batches make it. x [count, dataDim], cond [count, condDim] or null; the
   * caller disposes both.
   */
  draw(count: number, rng: Rng): { x: tf.Tensor2D; cond: tf.Tensor2D | null };
}

/**
 * Per-example shape of a tensor, without the batch axis: [D] for a row, [H, W, C] for a grid.
 * A tensor of N examples with shape s is [N, ...s].
 */
export type ExampleShape = readonly number[];

/** Options of a forward pass; every slot method that computes on a batch receives them. */
export interface PassOptions {
  /** True while training (dropout, straight-through estimators, batch statistics, state updates). */
  training: boolean;
  /** Randomness for this pass (reparameterisation noise, ...). */
  rng: Rng;
  /**
   * The conditioning input of the rows the method works on, [N, condDim], or null/absent when
   * unconditional: the batch's rows in `encode`, `Latent.sample`, `posterior` and `mode`; the
   * rows being generated in `generate` and `Prior.sample`. So a latent (a conditional hierarchy)
   * or a prior can condition on it without a change of signature.
   */
  cond?: tf.Tensor2D | null;
  /**
   * Set only in an evaluation of a split (`evaluateTerms`): where a plugin reports a metric of the
   * whole split that is not a mean of per-example terms (a codebook's perplexity and usage from
   * its code counts). Absent in training, in the importance-weighted estimate and in dry runs.
   */
  metrics?: SplitMetrics;
  /**
   * Set only by pictures that hold some layers of a hierarchy fixed while one varies: the stream
   * `Latent.generate` draws layer l's noise from (l = 0 the bottom layer, ..., layers - 2 the one
   * below the top, whose draw is the prior's). Absent: every layer draws from `rng`, in order.
   */
  layerRng?: (layer: number) => Rng;
}

/**
 * Metrics of a whole evaluated split built from sums over its batches. A plugin that sees the
 * batch's rows in a pass (a latent in `sample`, an objective in `terms`) adds a statistic of those
 * rows; the evaluation sums it over the split and reports `finish(sum, examples)` as
 * `<split>/<name>` beside the objective's terms (val/codebook-perplexity).
 */
export interface SplitMetrics {
  /**
   * Adds `value` (any shape, the same on every call; read at once, so it may be a tidy's
   * intermediate) elementwise to the split's running sum for `name`. At the end of the split the
   * metric is `finish(sum, examples)`, with `examples` the number of examples evaluated; the
   * `finish` of the first call is the one used. `name` must not be one of the objective's terms.
   */
  add(name: string, value: tf.Tensor, finish: (sum: Float64Array, examples: number) => number): void;
}

/**
 * What an encoder hands the latent: one feature tensor, or (an encoder that declares
 * `outputShapes`) a list of them, bottom-up: features[0] is the deepest-resolution / first
 * layer's, the last is the top's. Each is [B, ...outputShapes[i]].
 */
export type Features = tf.Tensor | tf.Tensor[];

/**
 * Maps inputs to features. Shapes: x [batch, dataDim], cond [batch, condDim] or null;
 * returns h [batch, outputDim], or with `outputShapes` a list of [batch, ...outputShapes[i]].
 */
export interface Encoder extends Trainable {
  /** Size of the one flat feature row h; with `outputShapes`, the flat size of the last (top) feature. */
  readonly outputDim: number;
  /**
   * Bottom-up features at several depths (ladder and other hierarchical latents) or shaped
   * features ([H, W, C] grids for convolutional latents): the per-example shape of each tensor
   * `encode` returns, in order. When set, `encode` returns an array of exactly these shapes;
   * when absent, one [B, outputDim] tensor.
   */
  readonly outputShapes?: readonly ExampleShape[];
  encode(x: tf.Tensor2D, cond: tf.Tensor2D | null, opts: PassOptions): Features;
}

/** Diagonal Gaussian parameters. Shapes: loc, logVar [batch, dim]. */
export interface DiagGaussianParams {
  loc: tf.Tensor2D;
  logVar: tf.Tensor2D;
}

/**
 * A draw from the latent bottleneck.
 * Shapes with S = samples, B = batch: z [S*B, ...latent.shape]; logQ, innerLogPrior [S*B]; terms [B].
 */
export interface LatentSample {
  /** The code the decoder consumes, sample-major. [S*B, ...latent.shape] ([S*B, latent.dim] for flat latents) */
  z: tf.Tensor;
  /**
   * The part of z the Prior scores (the top layer of a hierarchy, a grid of code indices);
   * defaults to z. [S*B, ...latent.priorShape]
   */
  priorZ?: tf.Tensor;
  /** Number of samples per input, S. */
  samples: number;
  /** log q(z|x) of the drawn sample (joint over all stochastic layers). [S*B] */
  logQ: tf.Tensor1D;
  /**
   * Set only when q(priorZ | x) IS exactly this diagonal Gaussian (flat priorZ): the model then
   * takes the closed-form KL against priors that offer `analyticKl`. A latent whose q is
   * something else (a flow on top of a Gaussian, a mixture) must not set it: it sets
   * `posteriorStats` instead, or its KL would silently be the wrong closed form.
   */
  posterior?: DiagGaussianParams;
  /**
   * Gaussian statistics of q for diagnostics only (per-dimension KL, active units): e.g. the base
   * Gaussian of a flow posterior. Never used for a KL of the objective. Defaults to `posterior`.
   */
  posteriorStats?: DiagGaussianParams;
  /** log p of inner stochastic layers given the layer above (hierarchical latents). [S*B] */
  innerLogPrior?: tf.Tensor1D;
  /**
   * Closed-form KL of inner layers, if the latent can give it. [B]
   * When present, the model's KL is prior.analyticKl(posterior) + innerKl; when absent but
   * innerLogPrior is present, the KL falls back to Monte Carlo over all layers.
   */
  innerKl?: tf.Tensor1D;
  /**
   * Diagnostics only, never part of a loss: the KL contribution of each stochastic layer below
   * the one the prior scores, z_1 first, as log q(z_l | .) - log p(z_l | z_l+1) per sample
   * [S*B] or as a closed form per example [B]. An objective that reports a `kl` term then also
   * reports klLayer1 .. klLayerL (addLatentTerms), the top layer's being kl minus the layers below.
   */
  layerKl?: tf.Tensor1D[];
  /**
   * Diagnostics only (active units per layer): the mean of q of every stochastic layer, z_1 first
   * and the top last, each given the drawn layers it is conditioned on (a bottom-up layer: the
   * draw below; a top-down layer: the draws above), flattened per example. [S*B, D_l]
   */
  layerLoc?: tf.Tensor2D[];
  /** The latent's own per-example losses (VQ codebook/commitment), added to the objective. [B] */
  terms?: Record<string, tf.Tensor1D>;
}

/**
 * The bottleneck: turns encoder features into latent codes (Gaussian reparameterisation,
 * vector quantisation, a ladder of stochastic layers, ...).
 */
export interface Latent extends Trainable {
  /** Flat size of z as the decoder sees it (the product of `shape`). */
  readonly dim: number;
  /** Flat size of the code the prior is defined over (dim for flat latents; the product of `priorShape`). */
  readonly priorDim: number;
  /** Per-example shape of z, e.g. [H, W, D] for a grid of codes; absent = [dim]. */
  readonly shape?: ExampleShape;
  /** Per-example shape of priorZ; absent = [priorDim]. */
  readonly priorShape?: ExampleShape;
  /** Stochastic layers of a hierarchy (absent = 1); with more than one, samples carry `layerLoc`. */
  readonly layers?: number;
  /** Draws `samples` codes per input. h: the encoder's features (one tensor or its list). */
  sample(h: Features, samples: number, opts: PassOptions): LatentSample;
  /**
   * Posterior parameters without drawing a sample, only when q IS a diagonal Gaussian over
   * priorDim (VampPrior encodes its pseudo-inputs with it). loc, logVar: [B, priorDim]
   */
  posterior?(h: Features, opts: PassOptions): DiagGaussianParams;
  /** Gaussian statistics of q for diagnostics only (see LatentSample.posteriorStats). [B, priorDim] */
  posteriorStats?(h: Features, opts: PassOptions): DiagGaussianParams;
  /** The code used for reconstructions (posterior mean, nearest codeword). [B, ...shape] */
  mode(h: Features, opts: PassOptions): tf.Tensor;
  /**
   * Turns prior draws into decoder input (runs the top-down layers of a hierarchy; looks up
   * codewords). zPrior: [N, ...priorShape]; returns [N, ...shape]. opts.cond holds the N rows'
   * conditioning input. Without it, prior draws go to the decoder as they are (priorShape = shape).
   */
  generate?(zPrior: tf.Tensor, opts: PassOptions): tf.Tensor;
}

/**
 * Maps latent codes to likelihood parameters. z: [N, ...latent.shape], cond [N, condDim] or null;
 * returns params [N, dataDim * likelihood.paramsPerDim], laid out per dimension: reshaping to
 * [N, dataDim, paramsPerDim] gives each data dimension's parameters.
 */
export interface Decoder extends Trainable {
  decode(z: tf.Tensor, cond: tf.Tensor2D | null, opts: PassOptions): tf.Tensor2D;
}

/**
 * p(z), optionally conditional on cond. Shapes: z [N, ...latent.priorShape], cond [N, condDim] or null.
 * Every method also receives the pass options (`opts`, last and optional for callers outside a
 * pass): a prior that runs other slots on its own inputs (VampPrior pushes its pseudo-inputs
 * through encoder and latent) passes them on.
 */
export interface Prior extends Trainable {
  /** log p(z). [N] */
  logProb(z: tf.Tensor, cond: tf.Tensor2D | null, opts?: PassOptions): tf.Tensor1D;
  /** n draws. [n, ...latent.priorShape] */
  sample(n: number, rng: Rng, cond: tf.Tensor2D | null, opts?: PassOptions): tf.Tensor;
  /**
   * Optional closed form of KL(q || p) for a diagonal Gaussian q, per example [B], and per
   * dimension [B, priorDim] when `perDim` is set. Objectives fall back to Monte Carlo without it.
   */
  analyticKl?(q: DiagGaussianParams, cond: tf.Tensor2D | null, perDim?: boolean, opts?: PassOptions): tf.Tensor;
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
  /** Conditioning input [B, condDim], or null (see `data.condition`): one-hot labels, a visible region, ... */
  cond: tf.Tensor2D | null;
  /**
   * Class labels, separate from the conditioning input: one-hot [B, numClasses] float32, an
   * all-zero row where the label is unknown; null when the data set has no labels.
   */
  labels?: tf.Tensor2D | null;
  /**
   * 1 where the example's label may be used, 0 where it is hidden (semi-supervised training with
   * `data.labelledSize`; unlabelled examples). [B] float32; null when every label is known.
   */
  labelMask?: tf.Tensor1D | null;
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

/** Adam settings a parameter group overrides; the rest come from `train.optimizer`. */
export interface GroupOptimizer {
  learningRate?: number;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  weightDecay?: number;
}

/**
 * A group of variables trained with a loss and an optimizer of its own, declared by an objective
 * (FactorVAE's discriminator, any adversarial critic). The group's variables are taken out of the
 * main group, which minimises mean(terms().loss) over every other trainable variable. Each
 * training step first updates the main group, then every group in declaration order whose
 * `every` divides the step (a later group sees the main group's new weights). Every group's
 * optimizer state is in the checkpoints, so resume stays exact.
 */
export interface ParamGroup {
  /** kebab-case name, unique among the objective's groups ("main" is taken); checkpoint keys use it. */
  readonly name: string;
  /** The group's variables, keyed by stable names; each must also be in the objective's `variables()`. */
  variables(): Map<string, tf.Variable>;
  /** Adam settings of this group (overrides of train.optimizer). */
  readonly optimizer?: GroupOptimizer;
  /** Update this group on steps where step % every === phase (default every 1, phase 0: every step). */
  readonly every?: number;
  /** See `every`: an integer in [0, every). Groups and the main group with the same `every` and other phases alternate. */
  readonly phase?: number;
  /**
   * The scalar this group minimises on the step's batch; its gradient reaches only the group's
   * variables. It is a pass of its own with ctx.training true: state that plugins update in
   * training (EMA codebooks, running statistics) moves again on it, unless the group's loss
   * reuses codes it holds from the main pass or runs the model with training false.
   */
  loss(batch: ModelBatch, ctx: ObjectiveContext): tf.Scalar;
}

/** What the trainer minimises. */
export interface Objective extends Trainable {
  /**
   * Per-example terms. `loss` is always present; other terms may exist only in training or only
   * in evaluation (ctx.training): the trainer and evaluator log whatever a call returns.
   */
  terms(batch: ModelBatch, ctx: ObjectiveContext): ObjectiveTerms;
  /** Extra parameter groups with their own loss and optimizer (see ParamGroup). */
  groups?(): ParamGroup[];
  /**
   * When the main group (every trainable variable outside the groups) is updated: on steps
   * where step % every === phase (default: every step). On other steps the terms are still
   * computed and logged, without a gradient. With a group of the same `every` and another phase,
   * the two alternate (a GAN-style schedule).
   */
  readonly mainUpdate?: { readonly every?: number; readonly phase?: number };
}
