/**
 * The bottom-up pass of the convolutional hierarchy: a 3x3 stem convolution to channels[0] at the
 * image's side, `cellsPerResolution` residual cells, then for every further entry of `channels`
 * a stride-2 3x3 convolution (halving H and W) and cells again. It returns the feature map of
 * every side, finest first, e.g. 28x28, 14x14 and 7x7 for channels [16, 32, 64] on 28x28 images;
 * `latent.conv-hierarchy` reads the maps of the sides where it has latent groups. As the bottom-up
 * path of NVAE (https://arxiv.org/abs/2007.03898) and VDVAE (https://arxiv.org/abs/2011.10650),
 * at our scale and without their normalisations.
 *
 * Reads encoder.conv-hierarchy.channels, cellsPerResolution and activation.
 */
import { inject, injectable } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import {
  ACTIVATIONS,
  ConfigError,
  Conv2d,
  Module,
  TOKENS,
  definePlugin,
  initRng,
  pluginConfig,
  type ConfigOf,
  type DataInfo,
  type Encoder,
  type PassOptions,
} from '../../core';
import { ResidualCell, applyCells } from './cells';

export const convHierarchyEncoderSchema = {
  channels: {
    doc: 'width of the feature map at each side, the image side first, each next entry at half the side before (e.g. [16, 32, 64]: 28x28, 14x14, 7x7)',
    format: 'positive-int-list',
    default: [16, 32, 64],
  },
  cellsPerResolution: { doc: 'residual cells at each side', format: 'nat', default: 1 },
  activation: { doc: 'activation inside the residual cells', format: ACTIVATIONS, default: 'relu' },
} as const;

export type ConvHierarchyEncoderConfig = ConfigOf<typeof convHierarchyEncoderSchema>;

const KEY = 'encoder.conv-hierarchy';

/**
 * Checks that an image of `info.shape` can be halved `halvings` times exactly (`key` names the
 * list that asks for it) and returns the sides, image side first.
 */
export function halvedSides(info: DataInfo, halvings: number, key: string): number[] {
  const [h, w] = info.shape;
  if (h < 2 || w < 2) throw new ConfigError(`${key}: convolutions need image data; data set "${info.name}" has examples of shape [${info.shape.join(', ')}]`);
  if (h !== w) throw new ConfigError(`${key}: needs square images; data set "${info.name}" is ${h}x${w}`);
  const f = 2 ** halvings;
  if (h % f !== 0) {
    const ok: number[] = [];
    for (let s = h; Number.isInteger(s); s /= 2) ok.push(s);
    throw new ConfigError(
      `${key}: ${halvings + 1} sides need the image side divisible by ${f} (${halvings} halvings); data set "${info.name}" is ${h}x${w}, whose sides are ${ok.join(', ')} ` +
        `(at most ${ok.length} entries)`,
    );
  }
  return Array.from({ length: halvings + 1 }, (_, i) => h / 2 ** i);
}

/**
 * Multi-resolution convolutional encoder. Shapes: x [B, H*W*C] -> [f_0 .. f_R-1], f_i
 * [B, H/2^i, W/2^i, channels[i]] (outputShapes; outputDim is the flat size of the last).
 * Variables: stem/{kernel,bias}, down<i>/{kernel,bias} (i >= 1), level<i>/cell<j>/conv{0,1}/{kernel,bias}.
 */
@injectable()
export class ConvHierarchyEncoder extends Module implements Encoder {
  readonly outputDim: number;
  readonly outputShapes: ReadonlyArray<readonly number[]>;
  private readonly stem: Conv2d;
  private readonly downs: Conv2d[] = [];
  private readonly cells: ResidualCell[][] = [];
  constructor(
    @inject(pluginConfig('encoder', 'conv-hierarchy')) cfg: ConvHierarchyEncoderConfig,
    @inject(TOKENS.DataInfo) private readonly data: DataInfo,
    @inject(TOKENS.Seed) seed: number,
  ) {
    super();
    const { channels, cellsPerResolution, activation } = cfg;
    if (channels.length === 0) throw new ConfigError(`${KEY}.channels: must list at least one side (the image side first); got []`);
    if (data.condDim > 0) {
      throw new ConfigError(`${KEY}: takes no conditioning input (set data.condition to none); got condDim ${data.condDim}`);
    }
    const sides = halvedSides(data, channels.length - 1, `${KEY}.channels`);
    const rng = initRng(seed, 'encoder', 'conv-hierarchy');
    const outScale = 1 / Math.sqrt(Math.max(1, channels.length * cellsPerResolution));
    this.stem = this.track('stem', new Conv2d(data.shape[2], channels[0], 3, 1, rng));
    channels.forEach((c, i) => {
      if (i > 0) this.downs.push(this.track(`down${i}`, new Conv2d(channels[i - 1], c, 3, 2, rng)));
      this.cells.push(Array.from({ length: cellsPerResolution }, (_, j) => this.track(`level${i}/cell${j}`, new ResidualCell(c, activation, outScale, rng))));
    });
    this.outputShapes = channels.map((c, i) => [sides[i], sides[i], c]);
    this.outputDim = sides[sides.length - 1] ** 2 * channels[channels.length - 1];
  }

  /** x: [B, H*W*C] -> the feature map of every side, finest first (see the class doc). */
  encode(x: tf.Tensor2D, _cond: tf.Tensor2D | null, _opts: PassOptions): tf.Tensor4D[] {
    return tf.tidy(() => {
      const [H, W, C] = this.data.shape;
      let h = this.stem.apply(tf.reshape(x, [x.shape[0], H, W, C]) as tf.Tensor4D);
      const out: tf.Tensor4D[] = [];
      this.cells.forEach((cells, i) => {
        if (i > 0) h = this.downs[i - 1].apply(h);
        h = applyCells(cells, h);
        out.push(h);
      });
      return out;
    });
  }
}

export const convHierarchyEncoder = definePlugin({
  slot: 'encoder',
  name: 'conv-hierarchy',
  description: 'convolutional hierarchy bottom-up pass: residual cells, feature maps at every side (28x28, 14x14, 7x7, ...)',
  schema: convHierarchyEncoderSchema,
  implementation: ConvHierarchyEncoder,
});
