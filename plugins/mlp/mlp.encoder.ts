/**
 * MLP encoder: x (and the conditioning input, concatenated, unless conditioned is false) through
 * fully connected layers. Reads encoder.mlp.hiddenSizes, .activation and .conditioned. The pytorch/examples VAE
 * (Kingma & Welling 2014, https://arxiv.org/abs/1312.6114) uses hiddenSizes [400], relu.
 */
import { inject, injectable } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import {
  ACTIVATIONS,
  ConfigError,
  Mlp,
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

export const mlpEncoderSchema = {
  hiddenSizes: { doc: 'widths of the hidden layers, input side first', format: 'positive-int-list', default: [400] },
  activation: { doc: 'activation after every hidden layer', format: ACTIVATIONS, default: 'relu' },
  conditioned: {
    doc: 'read the conditioning input (data.condition), concatenated to x; false = x alone (enough when x holds cond, as in the CVAE quadrant task, where Pyro\'s recognition network reads the whole image)',
    format: 'boolean',
    default: true,
  },
} as const;

/** Fully connected encoder. Output: h [B, hiddenSizes[last]] after the activation. */
@injectable()
export class MlpEncoder extends Module implements Encoder {
  readonly outputDim: number;
  private readonly net: Mlp;
  private readonly conditioned: boolean;
  constructor(
    @inject(pluginConfig('encoder', 'mlp')) cfg: ConfigOf<typeof mlpEncoderSchema>,
    @inject(TOKENS.DataInfo) data: DataInfo,
    @inject(TOKENS.Seed) seed: number,
  ) {
    super();
    if (cfg.hiddenSizes.length === 0) {
      throw new ConfigError('encoder.mlp.hiddenSizes: must list at least one hidden layer; got []');
    }
    this.outputDim = cfg.hiddenSizes[cfg.hiddenSizes.length - 1];
    this.conditioned = cfg.conditioned;
    this.net = this.track('mlp', new Mlp([data.dim + (cfg.conditioned ? data.condDim : 0), ...cfg.hiddenSizes], cfg.activation, initRng(seed, 'encoder', 'mlp'), true));
  }

  /** x: [B, dataDim], cond: [B, condDim] | null -> [B, outputDim] */
  encode(x: tf.Tensor2D, cond: tf.Tensor2D | null, _opts: PassOptions): tf.Tensor2D {
    return tf.tidy(() => this.net.apply(cond && this.conditioned ? tf.concat([x, cond], 1) : x));
  }
}

export const mlpEncoder = definePlugin({
  slot: 'encoder',
  name: 'mlp',
  description: 'fully connected encoder (hidden layers with an activation)',
  schema: mlpEncoderSchema,
  implementation: MlpEncoder,
});
