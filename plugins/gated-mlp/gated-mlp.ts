/**
 * Gated dense encoder and decoder: every hidden layer is h = (x W + b) * sigmoid(x V + c), two
 * separate dense maps (Dauphin et al. 2017's gated linear unit on dense layers), as in the
 * official VampPrior code (https://github.com/jmtomczak/vae_vampprior, `GatedDense`), whose
 * experiments use them throughout. Reads encoder.gated-mlp.hiddenSizes and
 * decoder.gated-mlp.hiddenSizes.
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

/** Weight initialisations: PyTorch's Linear default, or He et al.'s normal as the VampPrior code. */
export type GatedInit = 'pytorch' | 'he-normal';

/** A dense layer; with 'he-normal' its kernel is redrawn from N(0, 2 / inDim), its bias kept. */
function dense(inDim: number, outDim: number, rng: Rng, init: GatedInit): Dense {
  const layer = new Dense(inDim, outDim, rng);
  if (init === 'he-normal') {
    const w = rng.fillNormal(new Float32Array(inDim * outDim)).map((v) => v * Math.sqrt(2 / inDim));
    tf.tidy(() => layer.kernel.assign(tf.tensor2d(w, [inDim, outDim])));
  }
  return layer;
}

/** One gated dense layer. x: [N, inDim] -> [N, outDim] */
class GatedDense extends Module {
  private readonly h: Dense;
  private readonly g: Dense;
  constructor(inDim: number, outDim: number, rng: Rng, init: GatedInit) {
    super();
    this.h = this.track('h', dense(inDim, outDim, rng, init));
    this.g = this.track('g', dense(inDim, outDim, rng, init));
  }

  apply(x: tf.Tensor2D): tf.Tensor2D {
    return tf.mul(this.h.apply(x, 'linear'), this.g.apply(x, 'sigmoid')) as tf.Tensor2D;
  }
}

/** A stack of gated dense layers. */
class GatedStack extends Module {
  private readonly layers: GatedDense[] = [];
  constructor(sizes: readonly number[], rng: Rng, init: GatedInit) {
    super();
    for (let i = 0; i + 1 < sizes.length; i++) this.layers.push(this.track(`gated${i}`, new GatedDense(sizes[i], sizes[i + 1], rng, init)));
  }

  apply(x: tf.Tensor2D): tf.Tensor2D {
    return this.layers.reduce((h, layer) => layer.apply(h), x);
  }
}

export const gatedMlpSchema = {
  hiddenSizes: { doc: 'widths of the gated hidden layers (input side first in the encoder, latent side first in the decoder)', format: 'positive-int-list', default: [300, 300] },
  init: {
    doc: "weight initialisation: pytorch (U(-1/sqrt(fanIn), 1/sqrt(fanIn)) for weights and biases) or he-normal (weights N(0, 2/fanIn), biases as pytorch; the VampPrior code's he_init)",
    format: ['pytorch', 'he-normal'],
    default: 'pytorch',
  },
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
    this.net = this.track('net', new GatedStack([data.dim + data.condDim, ...cfg.hiddenSizes], initRng(seed, 'encoder', 'gated-mlp'), cfg.init));
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
    this.net = this.track('net', new GatedStack([latent.dim + data.condDim, ...cfg.hiddenSizes], rng, cfg.init));
    this.out = this.track('out', dense(cfg.hiddenSizes[cfg.hiddenSizes.length - 1], data.dim * likelihood.paramsPerDim, rng, cfg.init));
  }

  /** z: [N, latent.dim], cond: [N, condDim] | null -> [N, dataDim * paramsPerDim] */
  decode(z: tf.Tensor2D, cond: tf.Tensor2D | null, _opts: PassOptions): tf.Tensor2D {
    return tf.tidy(() => this.out.apply(this.net.apply(cond ? tf.concat([z, cond], 1) : z), 'linear'));
  }
}

export const gatedMlpEncoder = definePlugin({
  slot: 'encoder',
  name: 'gated-mlp',
  description: 'gated dense encoder, h = (x W + b) * sigmoid(x V + c) per layer',
  schema: gatedMlpSchema,
  implementation: GatedMlpEncoder,
});

export const gatedMlpDecoder = definePlugin({
  slot: 'decoder',
  name: 'gated-mlp',
  description: 'gated dense decoder with a linear output layer',
  schema: gatedMlpSchema,
  implementation: GatedMlpDecoder,
});

