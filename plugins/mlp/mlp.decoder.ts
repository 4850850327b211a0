/**
 * MLP decoder: z (and the conditioning input, concatenated, unless conditioned is false) through
 * fully connected layers to the likelihood's parameters. Reads decoder.mlp.hiddenSizes,
 * .activation and .conditioned.
 */
import { inject, injectable } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import {
  ACTIVATIONS,
  Mlp,
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

export const mlpDecoderSchema = {
  hiddenSizes: { doc: 'widths of the hidden layers, latent side first', format: 'positive-int-list', default: [400] },
  activation: { doc: 'activation after every hidden layer', format: ACTIVATIONS, default: 'relu' },
  conditioned: {
    doc: 'read the conditioning input (data.condition), concatenated to z; false = z alone (the generation network of Pyro\'s CVAE)',
    format: 'boolean',
    default: true,
  },
} as const;

/** Fully connected decoder. Output: params [N, dataDim * likelihood.paramsPerDim], no final activation. */
@injectable()
export class MlpDecoder extends Module implements Decoder {
  private readonly net: Mlp;
  /** False when the decoder leaves the conditioning input out (decoder.mlp.conditioned). */
  readonly conditioned: boolean;
  constructor(
    @inject(pluginConfig('decoder', 'mlp')) cfg: ConfigOf<typeof mlpDecoderSchema>,
    @inject(TOKENS.DataInfo) data: DataInfo,
    @inject(TOKENS.Latent) latent: Latent,
    @inject(TOKENS.Likelihood) likelihood: Likelihood,
    @inject(TOKENS.Seed) seed: number,
  ) {
    super();
    this.conditioned = cfg.conditioned;
    const sizes = [latent.dim + (cfg.conditioned ? data.condDim : 0), ...cfg.hiddenSizes, data.dim * likelihood.paramsPerDim];
    this.net = this.track('mlp', new Mlp(sizes, cfg.activation, initRng(seed, 'decoder', 'mlp')));
  }

  /** z: [N, latent.dim], cond: [N, condDim] | null -> [N, dataDim * paramsPerDim] */
  decode(z: tf.Tensor2D, cond: tf.Tensor2D | null, _opts: PassOptions): tf.Tensor2D {
    return tf.tidy(() => this.net.apply(cond && this.conditioned ? tf.concat([z, cond], 1) : z));
  }
}

export const mlpDecoder = definePlugin({
  slot: 'decoder',
  name: 'mlp',
  description: 'fully connected decoder (hidden layers with an activation, linear output)',
  schema: mlpDecoderSchema,
  implementation: MlpDecoder,
});
