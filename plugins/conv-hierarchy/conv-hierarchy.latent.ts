/**
 * The latent groups and the top-down path of the convolutional hierarchy, in the spirit of NVAE
 * (Vahdat & Kautz 2020, https://arxiv.org/abs/2007.03898) and VDVAE (Child 2021,
 * https://arxiv.org/abs/2011.10650) at our scale. Groups are spatial Gaussian latents
 * z_l [side, side, zChannels], numbered 1 (bottom: the finest side, drawn last) to G (top: the
 * coarsest side, drawn first), `groups[i]` of them at side `resolutions[i]` (bottom first).
 *
 * The top-down path carries a state s (a residual stream [side, side, channels[i]]):
 *
 *   s = a learned constant at the top side
 *   for each group, top first:
 *     p(z_l | z_>l) = N(head_p(s))                     (the top: p(z_G) = the Prior slot, N(0, I))
 *     q(z_l | x, z_>l) = N(head_q(concat(s, f)))        (merge: concat, VDVAE's; f the encoder's map at that side)
 *                      or precisionWeighted(N(head_q(f)), p(z_l | z_>l))   (merge: precision, the ladder VAE's)
 *     s = cells(s + conv1x1(z_l))                        (the decoder blocks after each group)
 *     between sides: s = transposed-conv upsampling(s)
 *
 * The decoder (decoder.conv-hierarchy) reads the final state, so z (what `sample` returns) is
 * that state: a deterministic function of every group. The log importance weight of a draw is
 * log p(x | s(z_1..z_G)) + log p(z_G) + sum_l<G log p(z_l | z_>l) - sum_l log q(z_l | x, z_>l):
 * `logQ` is the joint over all groups, `priorZ` = z_G (flat [S*B, side^2 * zChannels]),
 * `innerLogPrior` = sum_l<G log p(z_l | z_>l), so the ELBO, objective.iwae and the IW evaluation
 * see every group. q(z_G | x) is exactly a diagonal Gaussian, so `posterior` is set and the
 * prior's closed-form KL applies to the top; `innerKl` = sum_l<G KL(q(z_l | x, z_>l) || p(z_l | z_>l))
 * in closed form given the drawn groups above (mean over the samples). `sampleLayers` gives each
 * group's terms, as latent.ladder does, so objective.ladder reports klLayer1..G and applies free
 * bits per group.
 *
 * Reads latent.conv-hierarchy.resolutions, groups, channels, zChannels, cellsPerGroup, merge,
 * activation, variance and minVariance.
 */
import { inject, injectable } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import {
  ACTIVATIONS,
  ConfigError,
  Conv2d,
  Module,
  ShapeError,
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
  reserveParameters,
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
import { VARIANCES, precisionWeighted, sampleOfDraw, type LadderDraw, type LadderLayerTerms } from '../ladder';
import { ConvGaussianHead, ResidualCell, Upsample, applyCells, log2Exact } from './cells';

export const MERGES = ['concat', 'precision'] as const;
export type Merge = (typeof MERGES)[number];

export const convHierarchyLatentSchema = {
  resolutions: {
    doc: 'sides of the latent grids, finest (bottom) first, each the image side divided by a power of 2 and smaller than the one before (e.g. [14, 7] on 28x28 images)',
    format: 'positive-int-list',
    default: [14, 7],
  },
  groups: { doc: 'number of latent groups at each side of resolutions (bottom first)', format: 'positive-int-list', default: [1, 1] },
  channels: { doc: 'width of the top-down state at each side of resolutions (bottom first)', format: 'positive-int-list', default: [32, 64] },
  zChannels: { doc: 'channels of every latent group: a group at side s is [s, s, zChannels]', format: 'positive-int', default: 4 },
  cellsPerGroup: { doc: 'residual cells (decoder blocks) after each group joins the state', format: 'nat', default: 1 },
  merge: {
    doc: 'how q(z_l | x, z_>l) combines the encoder map with the top-down state: concat (a conv on both, VDVAE) or precision (the ladder VAE precision weighting of a bottom-up Gaussian with p(z_l | z_>l))',
    format: MERGES,
    default: 'concat',
  },
  activation: { doc: 'activation inside the cells and heads', format: ACTIVATIONS, default: 'relu' },
  variance: { doc: 'softplus: variance = softplus(a) + minVariance; exp: variance = exp(a), a log-variance head', format: VARIANCES, default: 'softplus' },
  minVariance: { doc: 'floor of every variance: added to the softplus, or the lower clamp of exp', format: 'positive-number', default: 1e-6 },
} as const;

export type ConvHierarchyLatentConfig = ConfigOf<typeof convHierarchyLatentSchema>;

const KEY = 'latent.conv-hierarchy';

/** One latent group's place in the hierarchy. */
interface GroupSpec {
  /** Index into resolutions (bottom first). */
  level: number;
  side: number;
  /** The state's width at that side. */
  channels: number;
}

/** How the top-down path chooses each group below the top: given p and (with features) q. Returns z flat [N, side^2 * zChannels]. */
type Pick = (t: number, p: DiagGaussianParams, q: DiagGaussianParams | null) => tf.Tensor2D;

/**
 * Convolutional hierarchy latent. Shapes: h = the encoder's maps [f_0 .. f_R-1] ([B, s, s, C]),
 * those at the sides of resolutions used -> z = the final state [S*B, resolutions[0], resolutions[0], channels[0]],
 * priorZ = z_G [S*B, top side^2 * zChannels], logQ, innerLogPrior [S*B], innerKl [B],
 * posterior = q(z_G | x) [B, top side^2 * zChannels].
 *
 * Variables (groups l from 0 = bottom): `state` (the top's constant), `group<l>/q/…` (head of q),
 * `group<l>/p/…` (head of p, every group but the top), `group<l>/zProj/…` (1x1 conv of z_l into
 * the state), `group<l>/cell<j>/…`, and `up<i>/deconv<k>/…` (from side resolutions[i+1] to resolutions[i]).
 */
@injectable()
export class ConvHierarchyLatent extends Module implements Latent {
  readonly dim: number;
  readonly priorDim: number;
  readonly shape: readonly number[];
  /** The config key that sets the number of groups (objective.ladder's messages). */
  readonly layersKey = `${KEY}.groups`;
  /** Every group, top-down order (index 0 is z_G). */
  readonly specs: GroupSpec[] = [];
  private readonly featureIndex: number[] = [];
  private readonly topState: tf.Variable;
  private readonly qHeads: ConvGaussianHead[] = [];
  private readonly pHeads: Array<ConvGaussianHead | null> = [];
  private readonly zProjs: Conv2d[] = [];
  private readonly cells: ResidualCell[][] = [];
  /** ups[i] goes from side resolutions[i+1] to resolutions[i]. */
  private readonly ups: Upsample[] = [];
  private readonly merge: Merge;
  private readonly zChannels: number;

  constructor(
    @inject(pluginConfig('latent', 'conv-hierarchy')) cfg: ConvHierarchyLatentConfig,
    @inject(TOKENS.Encoder) encoder: Encoder,
    @inject(TOKENS.DataInfo) data: DataInfo,
    @inject(TOKENS.Seed) seed: number,
  ) {
    super();
    const { resolutions, groups, channels, zChannels, cellsPerGroup, merge, activation, variance, minVariance } = cfg;
    const R = resolutions.length;
    const problems: Array<string | null> = [];
    const list = (v: readonly number[]) => JSON.stringify(v);
    const entries = (n: number) => `${n} entr${n === 1 ? 'y' : 'ies'}`;
    if (R === 0) problems.push(`${KEY}.resolutions: must list at least one side of the latent grids; got []`);
    for (const [k, v, what] of [
      ['groups', groups, 'the number of latent groups there'],
      ['channels', channels, 'the width of the top-down state there'],
    ] as const) {
      if (R > 0 && v.length !== R) problems.push(`${KEY}.${k}: must have one entry per side of ${KEY}.resolutions (${what}), ${R} for ${list(resolutions)}; got ${list(v)} (${entries(v.length)})`);
    }
    if (data.condDim > 0) problems.push(`${KEY}: takes no conditioning input (set data.condition to none); got condDim ${data.condDim}`);
    const side = data.shape[0];
    const allowed: number[] = [];
    for (let s = side; Number.isInteger(s) && s >= 1; s /= 2) allowed.push(s);
    const bad = resolutions.filter((r) => !allowed.includes(r));
    if (data.shape[0] !== data.shape[1] || side < 2) {
      problems.push(`${KEY}.resolutions: needs square images; data set "${data.name}" has examples of shape [${data.shape.join(', ')}]`);
    } else if (bad.length > 0) {
      problems.push(`${KEY}.resolutions: every side must be the image side ${side} divided by a power of 2 (${allowed.join(', ')}); got ${list(resolutions)}, where ${bad.join(', ')} ${bad.length === 1 ? 'is' : 'are'} not`);
    } else if (resolutions.some((r, i) => i > 0 && r >= resolutions[i - 1])) {
      problems.push(`${KEY}.resolutions: must run from the finest side to the coarsest, each smaller than the one before; got ${list(resolutions)}`);
    }
    const shapes = encoder.outputShapes ?? [[encoder.outputDim]];
    if (bad.length === 0) {
      for (const r of resolutions) {
        const i = shapes.findIndex((s) => s.length === 3 && s[0] === r && s[1] === r);
        if (i < 0) {
          problems.push(
            `${KEY}.resolutions: needs an encoder feature map [${r}, ${r}, C] at side ${r} (e.g. encoder "conv-hierarchy" with channels down to that side); ` +
              `got the encoder's feature shapes ${JSON.stringify(shapes)}`,
          );
        }
        this.featureIndex.push(i);
      }
    }
    const found = problems.filter((p): p is string => p !== null);
    if (found.length > 0) throw new ConfigError(found);
    this.merge = merge;
    const rng = initRng(seed, 'latent', 'conv-hierarchy');
    for (let i = R - 1; i >= 0; i--) for (let g = 0; g < groups[i]; g++) this.specs.push({ level: i, side: resolutions[i], channels: channels[i] });
    const G = this.specs.length;
    const cellScale = 1 / Math.sqrt(Math.max(1, G * cellsPerGroup));
    const top = this.specs[0];
    reserveParameters([top.side, top.side, top.channels]);
    this.topState = this.track('state', tf.tidy(() => tf.variable(tf.zeros([top.side, top.side, top.channels]), true)));
    this.specs.forEach((spec, t) => {
      const l = G - 1 - t;
      const feat = shapes[this.featureIndex[spec.level]][2];
      const level = spec.level;
      if (t > 0 && this.specs[t - 1].level !== level) {
        const doublings = log2Exact(resolutions[level] / resolutions[level + 1])!;
        this.ups[level] = this.track(`up${level}`, new Upsample(channels[level + 1], channels[level], doublings, rng));
      }
      const qIn = merge === 'concat' ? spec.channels + feat : feat;
      this.qHeads.push(this.track(`group${l}/q`, new ConvGaussianHead(qIn, spec.channels, zChannels, activation, variance, minVariance, rng)));
      this.pHeads.push(t === 0 ? null : this.track(`group${l}/p`, new ConvGaussianHead(spec.channels, spec.channels, zChannels, activation, variance, minVariance, rng)));
      const proj = this.track(`group${l}/zProj`, new Conv2d(zChannels, spec.channels, 1, 1, rng));
      for (const v of [proj.kernel, proj.bias]) v.assign(tf.tidy(() => tf.mul(v, cellScale)));
      this.zProjs.push(proj);
      this.cells.push(Array.from({ length: cellsPerGroup }, (_, j) => this.track(`group${l}/cell${j}`, new ResidualCell(spec.channels, activation, cellScale, rng))));
    });
    // Sides below the bottom group's level are not reached: the path ends at the bottom group.
    const bottom = this.specs[G - 1];
    this.shape = [bottom.side, bottom.side, bottom.channels];
    this.dim = bottom.side * bottom.side * bottom.channels;
    this.priorDim = top.side * top.side * zChannels;
    this.zChannels = zChannels;
  }

  /** Number of latent groups G (objective.ladder calls them layers). */
  get layers(): number {
    return this.specs.length;
  }

  /** Per-example shape of group l (bottom first, l from 0): [side, side, zChannels]. */
  groupShape(l: number): [number, number, number] {
    const s = this.specs[this.layers - 1 - l];
    return [s.side, s.side, this.zChannels];
  }

  private features(h: Features): tf.Tensor4D[] {
    const list = (Array.isArray(h) ? h : [h]) as tf.Tensor4D[];
    for (const i of this.featureIndex) {
      if (!list[i] || list[i].rank !== 4) {
        throw new ShapeError(`ConvHierarchyLatent.sample: needs the encoder's feature maps [B, s, s, C] (${this.featureIndex.length} sides of ${KEY}.resolutions); got ${list.length} tensors`);
      }
    }
    return list;
  }

  /** The top state tiled to n rows. [n, s, s, C] */
  private initialState(n: number): tf.Tensor4D {
    return tf.tidy(() => tf.tile(tf.expandDims(this.topState, 0), [n, 1, 1, 1]) as tf.Tensor4D);
  }

  /** q(z_G | x) from the top's state and map (concat) or the map alone (precision). Shapes: f [n, s, s, C] -> [n, D_G]. */
  private topPosterior(f: tf.Tensor4D): DiagGaussianParams {
    return tf.tidy(() => {
      const input = this.merge === 'concat' ? tf.concat([this.initialState(f.shape[0]), f], 3) : f;
      return this.qHeads[0].apply(input as tf.Tensor4D) as unknown as tf.TensorContainer;
    }) as unknown as DiagGaussianParams;
  }

  /**
   * Runs the top-down path from the top group's value zTop [N, D_G]: each group below is chosen by
   * `pick` from its prior p (and its posterior q, when `feats` gives the encoder maps at N rows,
   * indexed as the encoder's list). Returns the final state [N, ...shape].
   */
  private run(zTop: tf.Tensor2D, feats: tf.Tensor4D[] | null, pick: Pick): tf.Tensor4D {
    const n = zTop.shape[0];
    let s = this.initialState(n);
    this.specs.forEach((spec, t) => {
      if (t > 0 && this.specs[t - 1].level !== spec.level) s = this.ups[spec.level].apply(s);
      let z: tf.Tensor2D;
      if (t === 0) z = zTop;
      else {
        const p = this.pHeads[t]!.apply(s);
        let q: DiagGaussianParams | null = null;
        if (feats) {
          const f = feats[this.featureIndex[spec.level]];
          q = this.merge === 'concat' ? this.qHeads[t].apply(tf.concat([s, f], 3) as tf.Tensor4D) : precisionWeighted(this.qHeads[t].apply(f), p);
        }
        z = pick(t, p, q);
      }
      const grid = tf.reshape(z, [n, spec.side, spec.side, this.zChannels]) as tf.Tensor4D;
      s = applyCells(this.cells[t], tf.add(s, this.zProjs[t].apply(grid)) as tf.Tensor4D);
    });
    return s;
  }

  /**
   * Draws S codes per input top-down and returns the sample with each group's terms, bottom
   * first (layers[l - 1] is group l). The top is drawn as latent.gaussian draws
   * (drawDiagGaussian over B rows), then each group below from q given the groups above, noise
   * from opts.rng in that order.
   */
  sampleLayers(h: Features, samples: number, opts: PassOptions): LadderDraw {
    const f = this.features(h);
    const G = this.layers;
    return tf.tidy(() => {
      const top = this.topPosterior(f[this.featureIndex[this.specs[0].level]]);
      const drawTop = drawDiagGaussian(top.loc, top.logVar, samples, opts.rng);
      const layers: LadderLayerTerms[] = new Array(G);
      layers[G - 1] = { logQ: G === 1 ? tf.clone(drawTop.logQ) : drawTop.logQ, logP: null, kl: null };
      const feats = G === 1 ? null : f.map((m, i) => (this.featureIndex.includes(i) ? tileSamples(m, samples) : m));
      const acc: { logQ: tf.Tensor1D; logP: tf.Tensor1D | null; kl: tf.Tensor1D | null } = { logQ: drawTop.logQ, logP: null, kl: null };
      const layerLoc: tf.Tensor2D[] = new Array(G);
      layerLoc[G - 1] = tileSamples(top.loc, samples);
      const z = this.run(drawTop.z, feats, (t, p, q) => {
        const eps = opts.rng.normalTensor(q!.loc.shape) as tf.Tensor2D;
        const zl = reparameterize(q!.loc, q!.logVar, eps);
        const lq = reparamLogProb(q!.logVar, eps);
        const lp = diagGaussianLogProb(zl, p.loc, p.logVar);
        const kl = tf.sum(klDiagGaussiansPerDim(q!.loc, q!.logVar, p.loc, p.logVar), -1) as tf.Tensor1D;
        layers[G - 1 - t] = { logQ: lq, logP: lp, kl };
        layerLoc[G - 1 - t] = q!.loc;
        acc.logQ = tf.add(acc.logQ, lq) as tf.Tensor1D;
        acc.logP = acc.logP ? (tf.add(acc.logP, lp) as tf.Tensor1D) : tf.clone(lp);
        const klB = meanOverSamples(kl, samples);
        acc.kl = acc.kl ? (tf.add(acc.kl, klB) as tf.Tensor1D) : klB;
        return zl;
      });
      const sample: LatentSample = { z, priorZ: drawTop.z, samples, logQ: acc.logQ, posterior: top };
      if (acc.logP) sample.innerLogPrior = acc.logP;
      if (acc.kl) sample.innerKl = acc.kl;
      if (G > 1) sample.layerLoc = layerLoc;
      else tf.dispose(layerLoc);
      return { sample, layers } as unknown as tf.TensorContainer;
    }) as unknown as LadderDraw;
  }

  /** Draws S codes per input top-down (see the class doc). */
  sample(h: Features, samples: number, opts: PassOptions): LatentSample {
    return sampleOfDraw(this.sampleLayers(h, samples, opts));
  }

  /** q(z_G | x), the top group's exact diagonal Gaussian. loc, logVar: [B, priorDim] */
  posterior(h: Features, _opts?: PassOptions): DiagGaussianParams {
    const f = this.features(h);
    return this.topPosterior(f[this.featureIndex[this.specs[0].level]]);
  }

  /** The code for reconstructions: the top-down path with every group at the mean of its q. [B, ...shape] */
  mode(h: Features, _opts: PassOptions): tf.Tensor4D {
    const f = this.features(h);
    return tf.tidy(() => this.run(this.topPosterior(f[this.featureIndex[this.specs[0].level]]).loc, f, (_t, _p, q) => q!.loc));
  }

  /**
   * Generation down the whole top-down path: every group below the top drawn from p(z_l | z_>l),
   * noise from opts.layerRng(l) when set (l = 0 the bottom group), else from opts.rng. zTop:
   * [N, priorDim] -> the final state [N, ...shape].
   */
  generate(zTop: tf.Tensor, opts: PassOptions): tf.Tensor4D {
    // group t (top first) is layer layers - 1 - t (bottom first)
    return tf.tidy(() => this.run(zTop as tf.Tensor2D, null, (t, p) => drawDiagGaussian(p.loc, p.logVar, 1, opts.layerRng?.(this.layers - 1 - t) ?? opts.rng).z));
  }

  /**
   * The top-down path with every group given (top first, flat [N, side^2 * zChannels] each):
   * the final state and each group's p(z_l | z_>l) (null for the top). For tests and diagnostics.
   */
  pathFrom(zs: tf.Tensor2D[], _opts: PassOptions): { state: tf.Tensor4D; priors: Array<DiagGaussianParams | null> } {
    if (zs.length !== this.layers) throw new ShapeError(`ConvHierarchyLatent.pathFrom: needs ${this.layers} groups (${KEY}.groups), top first; got ${zs.length}`);
    return tf.tidy(() => {
      const priors: Array<DiagGaussianParams | null> = [null];
      const state = this.run(zs[0], null, (t, p) => {
        priors.push(p);
        return zs[t];
      });
      return { state, priors } as unknown as tf.TensorContainer;
    }) as unknown as { state: tf.Tensor4D; priors: Array<DiagGaussianParams | null> };
  }
}

export const convHierarchyLatent = definePlugin({
  slot: 'latent',
  name: 'conv-hierarchy',
  description: 'convolutional hierarchy: spatial Gaussian groups at several sides interleaved with residual cells on a top-down path (NVAE/VDVAE-style)',
  schema: convHierarchyLatentSchema,
  implementation: ConvHierarchyLatent,
});
