/**
 * The ladder VAE's last generative step p(x | z_1) (Sønderby et al. 2016,
 * https://arxiv.org/abs/1602.02282): z_1 (with the conditioning input concatenated) through dense
 * layers, each followed by batch normalisation (optional) and the activation, then a linear layer
 * to the likelihood's parameters. The official code and the PyTorch twin use two layers of 512
 * with batch norm and leaky ReLU; `decoder.mlp` is the same without batch norm.
 *
 * Reads decoder.ladder.hiddenSizes, activation, batchNorm and batchNormMomentum.
 */
import { inject, injectable } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import {
  ACTIVATIONS,
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
import { DenseStack, batchNormProblem, refuse } from './blocks';

export const ladderDecoderSchema = {
  hiddenSizes: { doc: 'widths of the hidden layers, latent side first ([] = one linear layer)', format: 'positive-int-list', default: [512, 512] },
  activation: { doc: 'activation after every hidden layer (after its batch norm)', format: ACTIVATIONS, default: 'leaky-relu' },
  batchNorm: { doc: 'batch normalisation between every hidden layer and its activation (running statistics kept as state)', format: 'boolean', default: true },
  batchNormMomentum: { doc: 'weight of the batch in the running statistics (PyTorch convention)', format: 'probability', default: 0.1 },
} as const;

export type LadderDecoderConfig = ConfigOf<typeof ladderDecoderSchema>;

/**
 * MLP decoder with optional batch norm. Shapes: z [N, latent.dim], cond [N, condDim] | null ->
 * params [N, dataDim * paramsPerDim] (no final activation). Variables: `hidden/dense<i>/…`,
 * `hidden/norm<i>/…` (with batch norm; state runningMean, runningVar), `out/kernel`, `out/bias`.
 */
@injectable()
export class LadderDecoder extends Module implements Decoder {
  private readonly hidden: DenseStack;
  private readonly out: Dense;
  constructor(
    @inject(pluginConfig('decoder', 'ladder')) cfg: LadderDecoderConfig,
    @inject(TOKENS.DataInfo) data: DataInfo,
    @inject(TOKENS.Latent) latent: Latent,
    @inject(TOKENS.Likelihood) likelihood: Likelihood,
    @inject(TOKENS.Seed) seed: number,
  ) {
    super();
    refuse([cfg.batchNorm && cfg.hiddenSizes.length > 0 ? batchNormProblem('decoder.ladder.batchNorm', data) : null]);
    const rng = initRng(seed, 'decoder', 'ladder');
    this.hidden = this.track('hidden', new DenseStack(latent.dim + data.condDim, cfg.hiddenSizes, cfg.activation, cfg.batchNorm ? cfg.batchNormMomentum : null, rng));
    this.out = this.track('out', new Dense(this.hidden.outDim, data.dim * likelihood.paramsPerDim, rng));
  }

  /** z: [N, latent.dim], cond: [N, condDim] | null -> [N, dataDim * paramsPerDim] */
  decode(z: tf.Tensor2D, cond: tf.Tensor2D | null, opts: PassOptions): tf.Tensor2D {
    return tf.tidy(() => this.out.apply(this.hidden.apply(cond ? (tf.concat([z, cond], 1) as tf.Tensor2D) : z, opts.training)));
  }
}

export const ladderDecoder = definePlugin({
  slot: 'decoder',
  name: 'ladder',
  description: 'MLP decoder with optional batch norm (the ladder VAE p(x|z_1))',
  schema: ladderDecoderSchema,
  implementation: LadderDecoder,
});
