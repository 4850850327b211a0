/**
 * The VQ-VAE decoder of van den Oord, Vinyals & Kavukcuoglu 2017 (https://arxiv.org/abs/1711.00937,
 * section 4.1), the mirror of the vq-conv encoder: a 3x3 convolution from the code grid, residual
 * 3x3 blocks, ReLU, then stride-2 4x4 transposed convolutions back to the image (7 -> 14 -> 28
 * with two) and the likelihood's parameters per pixel. The conditioning input, if any, is
 * broadcast over the code grid as extra channels.
 * Reads decoder.vq-conv.channels, kernelSize, residualBlocks, residualChannels.
 */
import { inject, injectable } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import {
  ConfigError,
  Conv2d,
  ConvTranspose2d,
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
import { ResidualBlock, withCondChannels } from './residual';

export const vqConvDecoderSchema = {
  channels: {
    doc: 'channels after the first 3x3 convolution, then of each stride-2 transposed convolution but the last (which outputs the image)',
    format: 'positive-int-list',
    default: [128, 64],
  },
  kernelSize: { doc: 'square kernel size of the transposed convolutions', format: 'positive-int', default: 4 },
  residualBlocks: { doc: 'residual 3x3 blocks before the transposed convolutions', format: 'nat', default: 2 },
  residualChannels: { doc: 'channels inside each residual block', format: 'positive-int', default: 32 },
} as const;

/** Shapes: z [N, H', W', D] (latent.shape), cond [N, condDim] | null -> params [N, H*W*C*paramsPerDim]. */
@injectable()
export class VqConvDecoder extends Module implements Decoder {
  private readonly first: Conv2d;
  private readonly blocks: ResidualBlock[] = [];
  private readonly deconvs: ConvTranspose2d[] = [];

  constructor(
    @inject(pluginConfig('decoder', 'vq-conv')) cfg: ConfigOf<typeof vqConvDecoderSchema>,
    @inject(TOKENS.DataInfo) data: DataInfo,
    @inject(TOKENS.Latent) latent: Latent,
    @inject(TOKENS.Likelihood) likelihood: Likelihood,
    @inject(TOKENS.Seed) seed: number,
  ) {
    super();
    if (cfg.channels.length === 0) throw new ConfigError('decoder.vq-conv.channels: must list at least one layer; got []');
    const shape = latent.shape ?? [latent.dim];
    if (shape.length !== 3) {
      throw new ConfigError(`decoder.vq-conv: needs a latent whose codes form a grid [H, W, D]; latent ${latent.constructor.name} gives [${shape.join(', ')}] per example`);
    }
    const [h, w, d] = shape;
    const f = 2 ** cfg.channels.length;
    if (h * f !== data.shape[0] || w * f !== data.shape[1]) {
      throw new ConfigError(
        `decoder.vq-conv.channels: ${cfg.channels.length} stride-2 transposed convolutions take the ${h}x${w} code grid to ${h * f}x${w * f}; data set "${data.name}" is ${data.shape[0]}x${data.shape[1]}`,
      );
    }
    const rng = initRng(seed, 'decoder', 'vq-conv');
    const top = cfg.channels[0];
    this.first = this.track('conv', new Conv2d(d + data.condDim, top, 3, 1, rng));
    for (let i = 0; i < cfg.residualBlocks; i++) this.blocks.push(this.track(`res${i}`, new ResidualBlock(top, cfg.residualChannels, rng)));
    const outs = [...cfg.channels.slice(1), data.shape[2] * likelihood.paramsPerDim];
    cfg.channels.forEach((c, i) => {
      this.deconvs.push(this.track(`deconv${i}`, new ConvTranspose2d(c, outs[i], cfg.kernelSize, 2, rng)));
    });
  }

  /** z: [N, H', W', D], cond: [N, condDim] | null -> [N, H*W*C*paramsPerDim] */
  decode(z: tf.Tensor, cond: tf.Tensor2D | null, _opts: PassOptions): tf.Tensor2D {
    return tf.tidy(() => {
      const n = z.shape[0];
      let img = this.first.apply(withCondChannels(z as tf.Tensor4D, cond));
      for (const b of this.blocks) img = b.apply(img);
      img = tf.relu(img);
      this.deconvs.forEach((d, i) => {
        img = d.apply(img, i < this.deconvs.length - 1 ? 'relu' : 'linear');
      });
      return tf.reshape(img, [n, -1]) as tf.Tensor2D;
    });
  }
}

export const vqConvDecoder = definePlugin({
  slot: 'decoder',
  name: 'vq-conv',
  description: 'VQ-VAE convolutional decoder from a grid of codes (residual 3x3 blocks, stride-2 4x4 transposed convolutions)',
  schema: vqConvDecoderSchema,
  implementation: VqConvDecoder,
});
