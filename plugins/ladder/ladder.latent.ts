/**
 * The stochastic layers of the ladder VAE, Sønderby, Raiko, Maaløe, Sønderby & Winther 2016,
 * "Ladder Variational Autoencoders" (https://arxiv.org/abs/1602.02282), with layers numbered
 * 1 (bottom, what the decoder reads) to L (top, what the prior scores):
 *
 *   bottom-up   (mu^_l, sigma^2_l) = heads(d_l),  d_l the encoder's feature at depth l (encoder.ladder)
 *   generation  p(z_L) = the Prior slot;  p(z_l | z_l+1) = N(mu_p, sigma^2_p) = heads(MLP(z_l+1))
 *   inference   q(z_L | x) = N(mu^_L, sigma^2_L);
 *               q(z_l | z_l+1, x) = N(mu_q, sigma^2_q), the precision-weighted merge of the two:
 *               sigma^2_q = 1 / (sigma^-2^ + sigma^-2_p),  mu_q = (mu^ sigma^-2^ + mu_p sigma^-2_p) sigma^2_q
 *
 * Inference runs top-down through the same p(z_l | z_l+1) that generation uses (the paper's
 * parameter sharing between the generative and the inference top-down path). Variances are
 * softplus(a) + minVariance (the paper's appendix; the twin's 1e-6) or exp(a) (`variance: exp`).
 *
 * The log importance weight of a draw is log p(x | z_1) + log p(z_L) + sum_l<L log p(z_l | z_l+1)
 * - sum_l log q(z_l | .): `logQ` is the joint over all layers, `priorZ` = z_L, `innerLogPrior` =
 * sum_l<L log p(z_l | z_l+1), so the ELBO, IWAE and the IW evaluation see every layer. q(z_L | x)
 * is exactly N(mu^_L, sigma^2_L), so `posterior` is set (the prior's closed-form KL applies to the
 * top) and `innerKl` = sum_l<L KL(q(z_l | z_l+1, x) || p(z_l | z_l+1)) in closed form given the
 * drawn z_l+1 (mean over the samples): the KL the paper and the twin train with.
 * `sampleLayers` also gives each layer's terms, which `objective.ladder` reports and clamps
 * (free bits) per layer.
 *
 * Reads latent.ladder.dims, hiddenSizes, blockLayers, activation, batchNorm,
 * batchNormMomentum, variance and minVariance.
 */
import { inject, injectable } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import {
  ACTIVATIONS,
  ConfigError,
  Module,
  TOKENS,
  definePlugin,
  diagGaussianLogProb,
  drawDiagGaussian,
  initRng,
  klDiagGaussiansPerDim,
  meanOverSamples,
  pluginConfig,
  reparamLogProb,
  reparameterize,
  tileSamples,
  type ConfigOf,
  type DataInfo,
  type DiagGaussianParams,
  type Encoder,
  type Features,
  type Latent,
  type LatentSample,
  type PassOptions,
} from '../../core';
import { DenseStack, GaussianHeads, VARIANCES, batchNormProblem, refuse } from './blocks';

export const ladderLatentSchema = {
  dims: {
    doc: 'sizes of the stochastic layers z_1 .. z_L, bottom (the decoder reads it) to top (the prior scores it)',
    format: 'positive-int-list',
    default: [64, 32, 16, 8, 4],
  },
  hiddenSizes: {
    doc: 'width of the top-down block that reads z_l+1 and gives p(z_l | z_l+1), one entry per pair of adjacent layers (L - 1), bottom first',
    format: 'positive-int-list',
    default: [256, 128, 64, 32],
  },
  blockLayers: { doc: 'dense layers in each top-down block (0: p(z_l | z_l+1) is affine in z_l+1)', format: 'nat', default: 2 },
  activation: { doc: 'activation after every dense layer of the top-down blocks', format: ACTIVATIONS, default: 'leaky-relu' },
  batchNorm: { doc: 'batch normalisation in the top-down blocks (running statistics kept as state)', format: 'boolean', default: true },
  batchNormMomentum: { doc: 'weight of the batch in the running statistics (PyTorch convention)', format: 'probability', default: 0.1 },
  variance: { doc: 'softplus: variance = softplus(a) + minVariance (the paper); exp: variance = exp(a), a log-variance head', format: VARIANCES, default: 'softplus' },
  minVariance: { doc: 'floor of every variance: added to the softplus, or the lower clamp of exp', format: 'positive-number', default: 1e-6 },
} as const;

export type LadderLatentConfig = ConfigOf<typeof ladderLatentSchema>;

const KEY = 'latent.ladder';

/**
 * The precision-weighted merge of two diagonal Gaussians (the paper's eq. 18-19), in log space:
 * sigma^2_q = 1 / (1/sigma^2^ + 1/sigma^2_p), i.e. logVar_q = logVar^ - softplus(logVar^ - logVar_p);
 * mu_q = (mu^/sigma^2^ + mu_p/sigma^2_p) sigma^2_q = mu_p + w (mu^ - mu_p), w = sigmoid(logVar_p - logVar^)
 * the share of the bottom-up precision. Stable for precisions of any size. Shapes: all [N, D].
 */
export function precisionWeighted(up: DiagGaussianParams, down: DiagGaussianParams): DiagGaussianParams {
  return tf.tidy(() => {
    const w = tf.sigmoid(tf.sub(down.logVar, up.logVar));
    const loc = tf.add(down.loc, tf.mul(w, tf.sub(up.loc, down.loc))) as tf.Tensor2D;
    const logVar = tf.sub(up.logVar, tf.softplus(tf.sub(up.logVar, down.logVar))) as tf.Tensor2D;
    return { loc, logVar } as unknown as tf.TensorContainer;
  }) as unknown as DiagGaussianParams;
}

/** One stochastic layer of a draw, as `sampleLayers` gives it (l = 1 bottom .. L top). */
export interface LadderLayerTerms {
  /** log q(z_l | z_l+1, x) of the draw (the top: log q(z_L | x)). [S*B] */
  logQ: tf.Tensor1D;
  /** log p(z_l | z_l+1) of the draw; null for the top layer (the Prior slot scores it). [S*B] */
  logP: tf.Tensor1D | null;
  /** KL(q(z_l | z_l+1, x) || p(z_l | z_l+1)) in closed form given the drawn z_l+1; null for the top. [S*B] */
  kl: tf.Tensor1D | null;
}

/** A draw with its per-layer terms; `layers[l - 1]` is layer l (bottom first). */
export interface LadderDraw {
  sample: LatentSample;
  layers: LadderLayerTerms[];
}

/**
 * The LatentSample of a draw for objectives other than objective.ladder: the layers' log-densities
 * are disposed, and their closed-form KLs below the top are kept as `layerKl` (diagnostics), so
 * any objective that reports `kl` also reports klLayer1 .. klLayerL.
 */
export function sampleOfDraw({ sample, layers }: LadderDraw): LatentSample {
  for (const t of layers) tf.dispose([t.logQ, t.logP].filter((x): x is tf.Tensor1D => x !== null));
  const below = layers.map((t) => t.kl).filter((x): x is tf.Tensor1D => x !== null);
  if (below.length > 0) sample.layerKl = below;
  return sample;
}

/**
 * Ladder latent. Shapes: h = [d_1 [B, h_1], .., d_L [B, h_L]] (one flat row [B, D] is accepted
 * when L = 1) -> z = z_1 [S*B, dims[0]], priorZ = z_L [S*B, dims[L-1]], logQ, innerLogPrior
 * [S*B], innerKl [B], posterior = q(z_L | x) [B, dims[L-1]].
 *
 * Variables: `up<l>/{loc,logVar}/{kernel,bias}` (the bottom-up heads on d_l+1), and for
 * l < L - 1 `down<l>/block/…` (the top-down block reading z_l+2; with batch norm its state
 * runningMean, runningVar) and `down<l>/{loc,logVar}/…` (the heads of p(z_l+1 | z_l+2)); l from 0.
 */
@injectable()
export class LadderLatent extends Module implements Latent {
  readonly dim: number;
  readonly priorDim: number;
  /** The bottom-up heads (mu^_l, sigma^2_l) on d_l, index l - 1. */
  readonly up: GaussianHeads[] = [];
  /** The top-down blocks of p(z_l | z_l+1), index l - 1 (l = 1 .. L-1). */
  readonly downBlocks: DenseStack[] = [];
  /** The heads of p(z_l | z_l+1), index l - 1. */
  readonly down: GaussianHeads[] = [];
  constructor(
    @inject(pluginConfig('latent', 'ladder')) private readonly cfg: LadderLatentConfig,
    @inject(TOKENS.Encoder) encoder: Encoder,
    @inject(TOKENS.DataInfo) data: DataInfo,
    @inject(TOKENS.Seed) seed: number,
  ) {
    super();
    const { dims, hiddenSizes, blockLayers, activation, batchNorm, batchNormMomentum, variance, minVariance } = cfg;
    const L = dims.length;
    const problems: Array<string | null> = [];
    if (L === 0) problems.push(`${KEY}.dims: must list at least one stochastic layer; got []`);
    else if (hiddenSizes.length !== L - 1) {
      problems.push(
        `${KEY}.hiddenSizes: must have one entry per pair of adjacent layers (the width of the top-down block of p(z_l | z_l+1)), ${L - 1} for ${KEY}.dims ` +
          `${JSON.stringify(dims)}; got ${JSON.stringify(hiddenSizes)} (${hiddenSizes.length} entries)`,
      );
    }
    const shapes = encoder.outputShapes ?? [[encoder.outputDim]];
    if (L > 0 && (shapes.length !== L || shapes.some((s) => s.length !== 1))) {
      problems.push(
        `${KEY}: needs one flat feature row [B, D] per stochastic layer from the encoder, ${L} for ${KEY}.dims ${JSON.stringify(dims)} ` +
          `(e.g. encoder "ladder" with ${L} hiddenSizes); got the encoder's ${shapes.length} feature shape${shapes.length === 1 ? '' : 's'} ${JSON.stringify(shapes)}`,
      );
    }
    if (batchNorm && L > 1 && blockLayers > 0) problems.push(batchNormProblem(`${KEY}.batchNorm`, data));
    refuse(problems);
    this.dim = dims[0];
    this.priorDim = dims[L - 1];
    const rng = initRng(seed, 'latent', 'ladder');
    for (let l = 0; l < L; l++) this.up.push(this.track(`up${l}`, new GaussianHeads(shapes[l][0], dims[l], variance, minVariance, rng)));
    for (let l = 0; l + 1 < L; l++) {
      const block = new DenseStack(dims[l + 1], new Array<number>(blockLayers).fill(hiddenSizes[l]), activation, batchNorm ? batchNormMomentum : null, rng);
      this.downBlocks.push(this.track(`down${l}/block`, block));
      this.down.push(this.track(`down${l}`, new GaussianHeads(block.outDim, dims[l], variance, minVariance, rng)));
    }
  }

  /** The config key that sets the number of layers (objective.ladder's messages). */
  readonly layersKey = `${KEY}.dims`;

  /** Number of stochastic layers L. */
  get layers(): number {
    return this.up.length;
  }

  private features(h: Features): tf.Tensor2D[] {
    const list = (Array.isArray(h) ? h : [h]) as tf.Tensor2D[];
    if (list.length !== this.layers) {
      throw new ConfigError(`LadderLatent.sample: needs ${this.layers} feature tensors (one per stochastic layer, ${KEY}.dims); got ${list.length}`);
    }
    return list;
  }

  /** p(z_l | z_l+1) for l = index + 1. Shapes: zAbove [N, dims[index+1]] -> loc, logVar [N, dims[index]]. */
  private prior(index: number, zAbove: tf.Tensor2D, training: boolean): DiagGaussianParams {
    return tf.tidy(() => this.down[index].apply(this.downBlocks[index].apply(zAbove, training)) as unknown as tf.TensorContainer) as unknown as DiagGaussianParams;
  }

  /**
   * Draws S codes per input top-down and returns the sample with each layer's terms. The top is
   * drawn as latent.gaussian draws (drawDiagGaussian), then each layer below from its merged
   * Gaussian given the layer above's draw, noise from opts.rng in that order.
   */
  sampleLayers(h: Features, samples: number, opts: PassOptions): LadderDraw {
    const d = this.features(h);
    const L = this.layers;
    if (L === 1) {
      const top = this.up[0].apply(d[0]);
      const { z, logQ } = drawDiagGaussian(top.loc, top.logVar, samples, opts.rng);
      return { sample: { z, logQ, samples, posterior: top }, layers: [{ logQ: tf.clone(logQ), logP: null, kl: null }] };
    }
    const out = tf.tidy(() => {
      const top = this.up[L - 1].apply(d[L - 1]);
      const drawTop = drawDiagGaussian(top.loc, top.logVar, samples, opts.rng);
      const layers: LadderLayerTerms[] = new Array(L);
      layers[L - 1] = { logQ: drawTop.logQ, logP: null, kl: null };
      let z = drawTop.z;
      let logQ = drawTop.logQ;
      let innerLogPrior: tf.Tensor1D | null = null;
      let innerKl: tf.Tensor1D | null = null;
      const layerLoc: tf.Tensor2D[] = new Array(L);
      layerLoc[L - 1] = tileSamples(top.loc, samples);
      for (let l = L - 2; l >= 0; l--) {
        const p = this.prior(l, z, opts.training);
        const hat = this.up[l].apply(d[l]);
        const q = precisionWeighted({ loc: tileSamples(hat.loc, samples), logVar: tileSamples(hat.logVar, samples) }, p);
        const eps = opts.rng.normalTensor(q.loc.shape) as tf.Tensor2D;
        const zl = reparameterize(q.loc, q.logVar, eps);
        const lq = reparamLogProb(q.logVar, eps);
        const lp = diagGaussianLogProb(zl, p.loc, p.logVar);
        const kl = tf.sum(klDiagGaussiansPerDim(q.loc, q.logVar, p.loc, p.logVar), -1) as tf.Tensor1D;
        layers[l] = { logQ: lq, logP: lp, kl };
        layerLoc[l] = q.loc;
        logQ = tf.add(logQ, lq) as tf.Tensor1D;
        innerLogPrior = innerLogPrior ? (tf.add(innerLogPrior, lp) as tf.Tensor1D) : tf.clone(lp);
        const klB = meanOverSamples(kl, samples);
        innerKl = innerKl ? (tf.add(innerKl, klB) as tf.Tensor1D) : klB;
        z = zl;
      }
      const sample: LatentSample = { z, priorZ: drawTop.z, samples, logQ, posterior: top, innerLogPrior: innerLogPrior!, innerKl: innerKl!, layerLoc };
      return { sample, layers } as unknown as tf.TensorContainer;
    }) as unknown as LadderDraw;
    return out;
  }

  /** Draws S codes per input top-down (see the class doc). */
  sample(h: Features, samples: number, opts: PassOptions): LatentSample {
    return sampleOfDraw(this.sampleLayers(h, samples, opts));
  }

  /** q(z_L | x) = N(mu^_L, sigma^2_L), the top layer's exact Gaussian. loc, logVar: [B, dims[L-1]] */
  posterior(h: Features, _opts?: PassOptions): DiagGaussianParams {
    const d = this.features(h);
    return this.up[this.layers - 1].apply(d[this.layers - 1]);
  }

  /**
   * The code for reconstructions: the top-down pass with every layer at its mean, z_L = mu^_L and
   * z_l = mu_q(z_l+1) below. [B, dims[0]]
   */
  mode(h: Features, opts: PassOptions): tf.Tensor2D {
    return tf.tidy(() => {
      const d = this.features(h);
      const L = this.layers;
      let z = this.up[L - 1].loc(d[L - 1]);
      for (let l = L - 2; l >= 0; l--) z = precisionWeighted(this.up[l].apply(d[l]), this.prior(l, z, opts.training)).loc;
      return z;
    });
  }

  /**
   * Generation down the same top-down path: z_l ~ p(z_l | z_l+1) from the given top layer to z_1,
   * every layer drawn. zTop: [N, dims[L-1]] -> z_1 [N, dims[0]].
   */
  generate(zTop: tf.Tensor, opts: PassOptions): tf.Tensor2D {
    return tf.tidy(() => {
      let z = zTop as tf.Tensor2D;
      for (let l = this.layers - 2; l >= 0; l--) {
        const p = this.prior(l, z, opts.training);
        z = drawDiagGaussian(p.loc, p.logVar, 1, opts.layerRng?.(l) ?? opts.rng).z;
      }
      return tf.clone(z);
    });
  }
}

export const ladderLatent = definePlugin({
  slot: 'latent',
  name: 'ladder',
  description: 'ladder VAE: top-down inference merging bottom-up and generative Gaussians by precision weighting',
  schema: ladderLatentSchema,
  implementation: LadderLatent,
});
