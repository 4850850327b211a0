/**
 * Convolutional encoder for images: stride-2 convolutions (each halves H and W), flattened.
 * The conditioning input, if any, is broadcast over the image as extra channels.
 * Reads encoder.conv.channels, kernelSize, activation, hiddenSize.
 * Default: conv 32 and 64 channels, 4x4, stride 2 (28x28 -> 14x14 -> 7x7), as in our PyTorch peer.
 */
import { inject, injectable } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import {
  ACTIVATIONS,
  ConfigError,
  Conv2d,
  Dense,
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

export const convEncoderSchema = {
  channels: { doc: 'output channels of each stride-2 convolution', format: 'positive-int-list', default: [32, 64] },
  kernelSize: { doc: 'square kernel size of every convolution', format: 'positive-int', default: 4 },
  activation: { doc: 'activation after every layer', format: ACTIVATIONS, default: 'relu' },
  hiddenSize: { doc: 'width of a dense layer after the convolutions (0 = none)', format: 'nat', default: 0 },
} as const;

/**
 * Checks that an image of `shape` can be halved `layers` times; throws a ConfigError naming `key`.
 * Returns the final spatial size [h, w].
 */
export function halvedSize(shape: readonly number[], layers: number, key: string, dataName: string): [number, number] {
  const [h, w] = shape;
  const f = 2 ** layers;
  if (h < 2 || w < 2) {
    throw new ConfigError(`${key}: convolutions need image data; data set "${dataName}" has examples of shape [${shape.join(', ')}]`);
  }
  if (h % f !== 0 || w % f !== 0) {
    throw new ConfigError(
      `${key}: ${layers} stride-2 layers need image sides divisible by ${f}; data set "${dataName}" is ${h}x${w}`,
    );
  }
  return [h / f, w / f];
}

/** Convolutional encoder. Shapes: x [B, H*W*C] -> h [B, outputDim]. */
@injectable()
export class ConvEncoder extends Module implements Encoder {
  readonly outputDim: number;
  private readonly convs: Conv2d[] = [];
  private readonly dense: Dense | null;
  constructor(
    @inject(pluginConfig('encoder', 'conv')) private readonly cfg: ConfigOf<typeof convEncoderSchema>,
    @inject(TOKENS.DataInfo) private readonly data: DataInfo,
    @inject(TOKENS.Seed) seed: number,
  ) {
    super();
    if (cfg.channels.length === 0) throw new ConfigError('encoder.conv.channels: must list at least one layer; got []');
    const [h, w] = halvedSize(data.shape, cfg.channels.length, 'encoder.conv.channels', data.name);
    const rng = initRng(seed, 'encoder', 'conv');
    let inC = data.shape[2] + data.condDim;
    cfg.channels.forEach((c, i) => {
      this.convs.push(this.track(`conv${i}`, new Conv2d(inC, c, cfg.kernelSize, 2, rng)));
      inC = c;
    });
    const flat = h * w * inC;
    this.dense = cfg.hiddenSize > 0 ? this.track('dense', new Dense(flat, cfg.hiddenSize, rng)) : null;
    this.outputDim = cfg.hiddenSize > 0 ? cfg.hiddenSize : flat;
  }

  /** x: [B, H*W*C], cond: [B, condDim] | null -> [B, outputDim] */
  encode(x: tf.Tensor2D, cond: tf.Tensor2D | null, _opts: PassOptions): tf.Tensor2D {
    return tf.tidy(() => {
      const [H, W, C] = this.data.shape;
      const b = x.shape[0];
      let img = tf.reshape(x, [b, H, W, C]) as tf.Tensor4D;
      if (cond) {
        const c = tf.tile(tf.reshape(cond, [b, 1, 1, cond.shape[1]]), [1, H, W, 1]);
        img = tf.concat([img, c], 3) as tf.Tensor4D;
      }
      for (const conv of this.convs) img = conv.apply(img, this.cfg.activation);
      let h = tf.reshape(img, [b, -1]) as tf.Tensor2D;
      if (this.dense) h = this.dense.apply(h, this.cfg.activation);
      return h;
    });
  }
}

export const convEncoder = definePlugin({
  slot: 'encoder',
  name: 'conv',
  description: 'convolutional encoder for images (stride-2 convolutions, optional dense layer)',
  schema: convEncoderSchema,
  implementation: ConvEncoder,
});
