/**
 * Convolutional decoder for images: a dense layer to a small feature map, then stride-2
 * transposed convolutions (each doubles H and W) to the likelihood's parameters per pixel.
 * Reads decoder.conv.channels, kernelSize, activation, hiddenSize.
 * Default mirrors the conv encoder: dense to 7x7x64, transposed conv to 14x14x32, then to 28x28.
 */
import { inject, injectable } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import {
  ACTIVATIONS,
  ConfigError,
  ConvTranspose2d,
  Dense,
  Module,
  TOKENS,
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
import { halvedSize } from './conv.encoder';

export const convDecoderSchema = {
  channels: {
    doc: 'channels of the first feature map and of each transposed convolution but the last (which outputs the image)',
    format: 'positive-int-list',
    default: [64, 32],
  },
  kernelSize: { doc: 'square kernel size of every transposed convolution', format: 'positive-int', default: 4 },
  activation: { doc: 'activation after every layer but the last', format: ACTIVATIONS, default: 'relu' },
  hiddenSize: { doc: 'width of a dense layer before the feature map (0 = none)', format: 'nat', default: 0 },
} as const;

/** Convolutional decoder. Shapes: z [N, latent.dim] -> params [N, H*W*C*paramsPerDim]. */
@injectable()
export class ConvDecoder extends Module implements Decoder {
  private readonly dense: Dense[] = [];
  private readonly deconvs: ConvTranspose2d[] = [];
  private readonly start: [number, number, number];
  constructor(
    @inject(pluginConfig('decoder', 'conv')) private readonly cfg: ConfigOf<typeof convDecoderSchema>,
    @inject(TOKENS.DataInfo) data: DataInfo,
    @inject(TOKENS.Latent) latent: Latent,
    @inject(TOKENS.Likelihood) likelihood: Likelihood,
    @inject(TOKENS.Seed) seed: number,
  ) {
    super();
    if (cfg.channels.length === 0) throw new ConfigError('decoder.conv.channels: must list at least one layer; got []');
    const [h, w] = halvedSize(data.shape, cfg.channels.length, 'decoder.conv.channels', data.name);
    const rng = initRng(seed, 'decoder', 'conv');
    this.start = [h, w, cfg.channels[0]];
    let inDim = latent.dim + data.condDim;
    if (cfg.hiddenSize > 0) {
      this.dense.push(this.track('dense0', new Dense(inDim, cfg.hiddenSize, rng)));
      inDim = cfg.hiddenSize;
    }
    this.dense.push(this.track(`dense${this.dense.length}`, new Dense(inDim, h * w * cfg.channels[0], rng)));
    const outs = [...cfg.channels.slice(1), data.shape[2] * likelihood.paramsPerDim];
    cfg.channels.forEach((c, i) => {
      this.deconvs.push(this.track(`deconv${i}`, new ConvTranspose2d(c, outs[i], cfg.kernelSize, 2, rng)));
    });
  }

  /** z: [N, latent.dim], cond: [N, condDim] | null -> [N, H*W*C*paramsPerDim] */
  decode(z: tf.Tensor2D, cond: tf.Tensor2D | null, _opts: PassOptions): tf.Tensor2D {
    return tf.tidy(() => {
      const n = z.shape[0];
      let h = cond ? (tf.concat([z, cond], 1) as tf.Tensor2D) : z;
      for (const d of this.dense) h = d.apply(h, this.cfg.activation);
      let img = tf.reshape(h, [n, ...this.start]) as tf.Tensor4D;
      this.deconvs.forEach((d, i) => {
        img = d.apply(img, i < this.deconvs.length - 1 ? this.cfg.activation : 'linear');
      });
      return tf.reshape(img, [n, -1]) as tf.Tensor2D;
    });
  }
}

export const convDecoder = definePlugin({
  slot: 'decoder',
  name: 'conv',
  description: 'convolutional decoder for images (dense to a feature map, stride-2 transposed convolutions)',
  schema: convDecoderSchema,
  implementation: ConvDecoder,
});
