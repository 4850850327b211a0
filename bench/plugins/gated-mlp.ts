/**
 * Gated dense encoder and decoder for the benchmark's VampPrior row (bench/vamp-gated-mnist.yaml):
 * every hidden layer is h = (x W + b) * sigmoid(x V + c), two separate dense maps as in the
 * official VampPrior code (https://github.com/jmtomczak/vae_vampprior, `GatedDense`) and in the
 * PyTorch twin (../shared/peers/torch_variants.py `GatedDense`). Bench-only: the built-in mlp
 * encoder and decoder have no gated layers, and the bench must run the twin's network. Reads
 * encoder.gated-mlp.hiddenSizes and decoder.gated-mlp.hiddenSizes.
 */
import { inject, injectable } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import {
  ConfigError,
  Dense,
  Module,
  TOKENS,
  definePlugin,
  initRng,
  pluginConfig,
  type ConfigOf,
  type DataInfo,
  type Decoder,
  type Encoder,
  type Latent,
  type Likelihood,
  type PassOptions,
  type Rng,
} from '../../core';

/** One gated dense layer. x: [N, inDim] -> [N, outDim] */
class GatedDense extends Module {
  private readonly h: Dense;
  private readonly g: Dense;
  constructor(inDim: number, outDim: number, rng: Rng) {
    super();
    this.h = this.track('h', new Dense(inDim, outDim, rng));
    this.g = this.track('g', new Dense(inDim, outDim, rng));
  }

  apply(x: tf.Tensor2D): tf.Tensor2D {
    return tf.mul(this.h.apply(x, 'linear'), this.g.apply(x, 'sigmoid')) as tf.Tensor2D;
  }
}

/** A stack of gated dense layers. */
class GatedStack extends Module {
  private readonly layers: GatedDense[] = [];
  constructor(sizes: readonly number[], rng: Rng) {
    super();
    for (let i = 0; i + 1 < sizes.length; i++) this.layers.push(this.track(`gated${i}`, new GatedDense(sizes[i], sizes[i + 1], rng)));
  }

  apply(x: tf.Tensor2D): tf.Tensor2D {
    return this.layers.reduce((h, layer) => layer.apply(h), x);
  }
}

export const gatedMlpSchema = {
  hiddenSizes: { doc: 'widths of the gated hidden layers (input side first in the encoder, latent side first in the decoder)', format: 'positive-int-list', default: [300, 300] },
} as const;

/** Gated dense encoder. x: [B, dataDim] -> h [B, hiddenSizes[last]] */
@injectable()
export class GatedMlpEncoder extends Module implements Encoder {
  readonly outputDim: number;
  private readonly net: GatedStack;
  constructor(
    @inject(pluginConfig('encoder', 'gated-mlp')) cfg: ConfigOf<typeof gatedMlpSchema>,
    @inject(TOKENS.DataInfo) data: DataInfo,
    @inject(TOKENS.Seed) seed: number,
  ) {
    super();
    if (cfg.hiddenSizes.length === 0) throw new ConfigError('encoder.gated-mlp.hiddenSizes: must list at least one hidden layer; got []');
    this.outputDim = cfg.hiddenSizes[cfg.hiddenSizes.length - 1];
    this.net = this.track('net', new GatedStack([data.dim + data.condDim, ...cfg.hiddenSizes], initRng(seed, 'encoder', 'gated-mlp')));
  }

  /** x: [B, dataDim], cond: [B, condDim] | null -> [B, outputDim] */
  encode(x: tf.Tensor2D, cond: tf.Tensor2D | null, _opts: PassOptions): tf.Tensor2D {
    return tf.tidy(() => this.net.apply(cond ? tf.concat([x, cond], 1) : x));
  }
}

/** Gated dense decoder with a linear output layer. z: [N, latent.dim] -> [N, dataDim * paramsPerDim] */
@injectable()
export class GatedMlpDecoder extends Module implements Decoder {
  private readonly net: GatedStack;
  private readonly out: Dense;
  constructor(
    @inject(pluginConfig('decoder', 'gated-mlp')) cfg: ConfigOf<typeof gatedMlpSchema>,
    @inject(TOKENS.DataInfo) data: DataInfo,
    @inject(TOKENS.Latent) latent: Latent,
    @inject(TOKENS.Likelihood) likelihood: Likelihood,
    @inject(TOKENS.Seed) seed: number,
  ) {
    super();
    if (cfg.hiddenSizes.length === 0) throw new ConfigError('decoder.gated-mlp.hiddenSizes: must list at least one hidden layer; got []');
    const rng = initRng(seed, 'decoder', 'gated-mlp');
    this.net = this.track('net', new GatedStack([latent.dim + data.condDim, ...cfg.hiddenSizes], rng));
    this.out = this.track('out', new Dense(cfg.hiddenSizes[cfg.hiddenSizes.length - 1], data.dim * likelihood.paramsPerDim, rng));
  }

  /** z: [N, latent.dim], cond: [N, condDim] | null -> [N, dataDim * paramsPerDim] */
  decode(z: tf.Tensor2D, cond: tf.Tensor2D | null, _opts: PassOptions): tf.Tensor2D {
    return tf.tidy(() => this.out.apply(this.net.apply(cond ? tf.concat([z, cond], 1) : z), 'linear'));
  }
}

export const gatedMlpEncoder = definePlugin({
  slot: 'encoder',
  name: 'gated-mlp',
  description: 'gated dense encoder, h = (x W + b) * sigmoid(x V + c) per layer (bench only)',
  schema: gatedMlpSchema,
  implementation: GatedMlpEncoder,
});

export const gatedMlpDecoder = definePlugin({
  slot: 'decoder',
  name: 'gated-mlp',
  description: 'gated dense decoder with a linear output layer (bench only)',
  schema: gatedMlpSchema,
  implementation: GatedMlpDecoder,
});

export const plugins = [gatedMlpEncoder, gatedMlpDecoder];
