/**
 * The VQ-VAE encoder of van den Oord, Vinyals & Kavukcuoglu 2017 (https://arxiv.org/abs/1711.00937,
 * section 4.1) scaled to 28x28: stride-2 4x4 convolutions (28 -> 14 -> 7 with two), residual 3x3
 * blocks, ReLU and a 1x1 convolution to the code size D. Its output is a grid of features
 * [B, H', W', D] (outputShapes), which the `vq` latent quantises position by position. The
 * conditioning input, if any, is broadcast over the image as extra channels.
 * Reads encoder.vq-conv.channels, kernelSize, residualBlocks, residualChannels, outputChannels.
 */
import { inject, injectable } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import {
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
import { ResidualBlock, gridSize, withCondChannels } from './residual';

export const vqConvEncoderSchema = {
  channels: { doc: 'output channels of each stride-2 convolution (each halves H and W)', format: 'positive-int-list', default: [64, 128] },
  kernelSize: { doc: 'square kernel size of the stride-2 convolutions', format: 'positive-int', default: 4 },
  residualBlocks: { doc: 'residual 3x3 blocks after the strided convolutions', format: 'nat', default: 2 },
  residualChannels: { doc: 'channels inside each residual block', format: 'positive-int', default: 32 },
  outputChannels: { doc: 'channels D of the feature grid (the code size of the vq latent)', format: 'positive-int', default: 64 },
} as const;

/** Shapes: x [B, H*W*C], cond [B, condDim] | null -> [[B, H', W', outputChannels]]. */
@injectable()
export class VqConvEncoder extends Module implements Encoder {
  readonly outputDim: number;
  readonly outputShapes: readonly (readonly number[])[];
  private readonly convs: Conv2d[] = [];
  private readonly blocks: ResidualBlock[] = [];
  private readonly out: Conv2d;

  constructor(
    @inject(pluginConfig('encoder', 'vq-conv')) cfg: ConfigOf<typeof vqConvEncoderSchema>,
    @inject(TOKENS.DataInfo) private readonly data: DataInfo,
    @inject(TOKENS.Seed) seed: number,
  ) {
    super();
    if (cfg.channels.length === 0) throw new ConfigError('encoder.vq-conv.channels: must list at least one stride-2 convolution; got []');
    const [h, w] = gridSize(data.shape, cfg.channels.length, 'encoder.vq-conv.channels', data.name);
    const rng = initRng(seed, 'encoder', 'vq-conv');
    let inC = data.shape[2] + data.condDim;
    cfg.channels.forEach((c, i) => {
      this.convs.push(this.track(`conv${i}`, new Conv2d(inC, c, cfg.kernelSize, 2, rng)));
      inC = c;
    });
    for (let i = 0; i < cfg.residualBlocks; i++) this.blocks.push(this.track(`res${i}`, new ResidualBlock(inC, cfg.residualChannels, rng)));
    this.out = this.track('out', new Conv2d(inC, cfg.outputChannels, 1, 1, rng));
    this.outputShapes = [[h, w, cfg.outputChannels]];
    this.outputDim = h * w * cfg.outputChannels;
  }

  /** x: [B, H*W*C], cond: [B, condDim] | null -> [[B, H', W', D]] */
  encode(x: tf.Tensor2D, cond: tf.Tensor2D | null, _opts: PassOptions): tf.Tensor[] {
    return [
      tf.tidy(() => {
        const [H, W, C] = this.data.shape;
        let img = withCondChannels(tf.reshape(x, [x.shape[0], H, W, C]) as tf.Tensor4D, cond);
        // ReLU after every strided convolution but the last: the residual blocks begin with one.
        this.convs.forEach((conv, i) => {
          img = conv.apply(img, i < this.convs.length - 1 ? 'relu' : 'linear');
        });
        for (const b of this.blocks) img = b.apply(img);
        return this.out.apply(tf.relu(img));
      }),
    ];
  }
}

export const vqConvEncoder = definePlugin({
  slot: 'encoder',
  name: 'vq-conv',
  description: 'VQ-VAE convolutional encoder to a grid of features (stride-2 4x4 convolutions, residual 3x3 blocks)',
  schema: vqConvEncoderSchema,
  implementation: VqConvEncoder,
});
