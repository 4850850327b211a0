/**
 * The output end of the convolutional hierarchy's top-down path: it takes the state the latent
 * leaves at its finest side ([s, s, C], latent.conv-hierarchy's `shape`), doubles the side with
 * a stride-2 transposed convolution for every entry of `channels` (each followed by
 * `cellsPerResolution` residual cells) until the image side, and gives the likelihood's
 * parameters per pixel with act + a 3x3 convolution. With the latent at the image side,
 * `channels` is [] and only that convolution remains.
 *
 * Reads decoder.conv-hierarchy.channels, cellsPerResolution and activation.
 */
import { inject, injectable } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import {
  ACTIVATIONS,
  ConfigError,
  Conv2d,
  Module,
  TOKENS,
  activate,
  definePlugin,
  initRng,
  pluginConfig,
  type ConfigOf,
  type DataInfo,
  type Decoder,
  type Latent,
  type Likelihood,
  type PassOptions,
} from '../../core';
import { ResidualCell, Upsample, applyCells, log2Exact } from './cells';

export const convHierarchyDecoderSchema = {
  channels: {
    doc: 'width after each doubling of the side, from the latent state to the image side: one entry per doubling ([] when the latent is at the image side)',
    format: 'nat-list',
    default: [16],
  },
  cellsPerResolution: { doc: 'residual cells after each doubling', format: 'nat', default: 1 },
  activation: { doc: 'activation inside the cells and before the output convolution', format: ACTIVATIONS, default: 'relu' },
} as const;

export type ConvHierarchyDecoderConfig = ConfigOf<typeof convHierarchyDecoderSchema>;

const KEY = 'decoder.conv-hierarchy';

/**
 * Shapes: z = the latent's final state [N, s, s, C] -> params [N, H*W*C_img*paramsPerDim].
 * Variables: up<i>/deconv0/{kernel,bias}, level<i>/cell<j>/…, out/{kernel,bias}.
 */
@injectable()
export class ConvHierarchyDecoder extends Module implements Decoder {
  private readonly ups: Upsample[] = [];
  private readonly cells: ResidualCell[][] = [];
  private readonly out: Conv2d;
  private readonly inShape: readonly number[];
  constructor(
    @inject(pluginConfig('decoder', 'conv-hierarchy')) private readonly cfg: ConvHierarchyDecoderConfig,
    @inject(TOKENS.DataInfo) data: DataInfo,
    @inject(TOKENS.Latent) latent: Latent,
    @inject(TOKENS.Likelihood) likelihood: Likelihood,
    @inject(TOKENS.Seed) seed: number,
  ) {
    super();
    const shape = latent.shape ?? [latent.dim];
    if (shape.length !== 3 || shape[0] !== shape[1]) {
      throw new ConfigError(
        `${KEY}: needs a latent whose code is a square grid [s, s, C] (latent "conv-hierarchy"); got latent "${latent.constructor.name}" with shape [${shape.join(', ')}]`,
      );
    }
    const ratio = data.shape[0] / shape[0];
    const doublings = log2Exact(ratio);
    if (doublings === null || data.shape[0] !== data.shape[1]) {
      throw new ConfigError(`${KEY}: the latent state's side ${shape[0]} must be the image side divided by a power of 2; data set "${data.name}" is ${data.shape[0]}x${data.shape[1]}`);
    }
    const { channels, cellsPerResolution, activation } = cfg;
    if (channels.length !== doublings) {
      throw new ConfigError(
        `${KEY}.channels: must have one entry per doubling from the latent state's side ${shape[0]} to the image side ${data.shape[0]}, ${doublings}; ` +
          `got ${JSON.stringify(channels)} (${channels.length} entr${channels.length === 1 ? 'y' : 'ies'})`,
      );
    }
    if (channels.some((c) => c === 0)) throw new ConfigError(`${KEY}.channels: every width must be at least 1; got ${JSON.stringify(channels)}`);
    const rng = initRng(seed, 'decoder', 'conv-hierarchy');
    const outScale = 1 / Math.sqrt(Math.max(1, doublings * cellsPerResolution));
    let c = shape[2];
    channels.forEach((w, i) => {
      this.ups.push(this.track(`up${i}`, new Upsample(c, w, 1, rng)));
      this.cells.push(Array.from({ length: cellsPerResolution }, (_, j) => this.track(`level${i}/cell${j}`, new ResidualCell(w, activation, outScale, rng))));
      c = w;
    });
    this.out = this.track('out', new Conv2d(c, data.shape[2] * likelihood.paramsPerDim, 3, 1, rng));
    this.inShape = shape;
  }

  /** z: [N, s, s, C] (flat [N, s*s*C] accepted) -> [N, H*W*C_img*paramsPerDim] */
  decode(z: tf.Tensor, _cond: tf.Tensor2D | null, _opts: PassOptions): tf.Tensor2D {
    return tf.tidy(() => {
      const n = z.shape[0];
      let h = (z.rank === 4 ? z : tf.reshape(z, [n, this.inShape[0], this.inShape[1], this.inShape[2]])) as tf.Tensor4D;
      this.ups.forEach((up, i) => {
        h = applyCells(this.cells[i], up.apply(h));
      });
      return tf.reshape(this.out.apply(activate(h, this.cfg.activation)), [n, -1]) as tf.Tensor2D;
    });
  }
}

export const convHierarchyDecoder = definePlugin({
  slot: 'decoder',
  name: 'conv-hierarchy',
  description: 'convolutional hierarchy output path: transposed-conv doublings with residual cells from the latent state to per-pixel likelihood parameters',
  schema: convHierarchyDecoderSchema,
  implementation: ConvHierarchyDecoder,
});
