/**
 * The deterministic bottom-up pass of the ladder VAE (Sønderby et al. 2016,
 * https://arxiv.org/abs/1602.02282, eq. 14-16): d_0 = x (with the conditioning input
 * concatenated), d_l = MLP_l(d_l-1) for l = 1 .. L, every MLP `blockLayers` dense layers of width
 * hiddenSizes[l-1], each followed by batch normalisation (optional) and the activation. Returns
 * the features of every depth, d_1 .. d_L (bottom first), which `latent.ladder` turns into the
 * bottom-up Gaussians (mu^_l, sigma^2_l). The official code's MNIST settings: hiddenSizes
 * 512-256-128-64-32, two layers per block, leaky ReLU, batch norm.
 *
 * Reads encoder.ladder.hiddenSizes, blockLayers, activation, batchNorm and batchNormMomentum.
 */
import { inject, injectable } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import {
  ACTIVATIONS,
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
import { DenseStack, batchNormProblem, refuse } from './blocks';

export const ladderEncoderSchema = {
  hiddenSizes: {
    doc: 'width of each bottom-up block d_1 .. d_L, bottom first: one feature depth per entry (one per stochastic layer of latent.ladder)',
    format: 'positive-int-list',
    default: [512, 256, 128, 64, 32],
  },
  blockLayers: { doc: 'dense layers in each block', format: 'positive-int', default: 2 },
  activation: { doc: 'activation after every dense layer (after its batch norm)', format: ACTIVATIONS, default: 'leaky-relu' },
  batchNorm: { doc: 'batch normalisation between every dense layer and its activation (running statistics kept as state)', format: 'boolean', default: true },
  batchNormMomentum: { doc: 'weight of the batch in the running statistics (PyTorch convention)', format: 'probability', default: 0.1 },
} as const;

export type LadderEncoderConfig = ConfigOf<typeof ladderEncoderSchema>;

const KEY = 'encoder.ladder';

/**
 * Multi-depth MLP encoder. Shapes: x [B, dataDim], cond [B, condDim] | null -> [d_1 .. d_L],
 * d_l [B, hiddenSizes[l-1]] (outputShapes [[h_1], .., [h_L]]; outputDim = h_L). Variables:
 * `block<l>/dense<i>/…` and, with batch norm, `block<l>/norm<i>/{scale,offset}` with the state
 * `block<l>/norm<i>/{runningMean,runningVar}` (l from 0).
 */
@injectable()
export class LadderEncoder extends Module implements Encoder {
  readonly outputDim: number;
  readonly outputShapes: ReadonlyArray<readonly number[]>;
  private readonly blocks: DenseStack[] = [];
  constructor(
    @inject(pluginConfig('encoder', 'ladder')) cfg: LadderEncoderConfig,
    @inject(TOKENS.DataInfo) data: DataInfo,
    @inject(TOKENS.Seed) seed: number,
  ) {
    super();
    refuse([
      cfg.hiddenSizes.length === 0 ? `${KEY}.hiddenSizes: must list at least one block (one feature depth per stochastic layer); got []` : null,
      cfg.batchNorm ? batchNormProblem(`${KEY}.batchNorm`, data) : null,
    ]);
    const rng = initRng(seed, 'encoder', 'ladder');
    const momentum = cfg.batchNorm ? cfg.batchNormMomentum : null;
    let d = data.dim + data.condDim;
    cfg.hiddenSizes.forEach((w, l) => {
      this.blocks.push(this.track(`block${l}`, new DenseStack(d, new Array<number>(cfg.blockLayers).fill(w), cfg.activation, momentum, rng)));
      d = w;
    });
    this.outputShapes = cfg.hiddenSizes.map((w) => [w]);
    this.outputDim = d;
  }

  /** x: [B, dataDim], cond: [B, condDim] | null -> [d_1 [B, h_1], .., d_L [B, h_L]] */
  encode(x: tf.Tensor2D, cond: tf.Tensor2D | null, opts: PassOptions): tf.Tensor2D[] {
    return tf.tidy(() => {
      let d = cond ? (tf.concat([x, cond], 1) as tf.Tensor2D) : x;
      const out: tf.Tensor2D[] = [];
      for (const block of this.blocks) {
        d = block.apply(d, opts.training);
        out.push(d);
      }
      return out;
    });
  }
}

export const ladderEncoder = definePlugin({
  slot: 'encoder',
  name: 'ladder',
  description: 'ladder VAE bottom-up pass: MLP blocks (batch norm optional) giving features at every depth',
  schema: ladderEncoderSchema,
  implementation: LadderEncoder,
});
