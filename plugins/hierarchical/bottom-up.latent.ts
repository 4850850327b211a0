/**
 * A bottom-up hierarchy of Gaussian stochastic layers, Burda, Grosse & Salakhutdinov 2016
 * (https://arxiv.org/abs/1509.00519, section 5, two stochastic layers):
 *
 *   inference  q(z_1 | x)       = N(heads(h)),                 h = the encoder's features of x
 *              q(z_l+1 | z_l)   = N(heads(stack(z_l))),        l = 1 .. L-1
 *   generation p(z_L)           = the Prior slot (N(0, I) in the paper)
 *              p(z_l | z_l+1)   = N(heads(stack(z_l+1))),      l = L-1 .. 1
 *              p(x | z_1)       = the decoder and likelihood slots
 *
 * Every stack is `hiddenLayers` dense layers of width hiddenSizes[l] with `activation`; every
 * Gaussian has its own linear loc and log-variance heads. q(z_l+1 | z_l) depends on the drawn
 * z_l, so the layers above the first live here rather than in the encoder.
 *
 * The log importance weight of a draw is log p(x | z_1) + log p(z_L) + sum_l log p(z_l | z_l+1)
 * - sum_l log q(z_l | .): the sample's logQ is the joint over all layers, priorZ = z_L and
 * innerLogPrior = sum_l<L log p(z_l | z_l+1), so the ELBO, the IWAE objective and the IW
 * evaluation see every layer. With L > 1, q(z_L | x) is a mixture, not a Gaussian: the sample
 * sets no `posterior` and the KL is the Monte-Carlo mean of log q - log p over all layers (as
 * the PyTorch twin's bottom-up hierarchy does). With L = 1 this is the Gaussian latent. For the
 * logs, `layerKl` carries log q(z_l | .) - log p(z_l | z_l+1) of each layer below the top, so
 * objectives that report `kl` also report klLayer1 .. klLayerL.
 *
 * Reads latent.bottom-up.dims, hiddenSizes, hiddenLayers, activation and minLogVar.
 */
import { inject, injectable } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import {
  ACTIVATIONS,
  ConfigError,
  Dense,
  Mlp,
  Module,
  TOKENS,
  definePlugin,
  diagGaussianLogProb,
  drawDiagGaussian,
  initRng,
  pluginConfig,
  tileSamples,
  type Activation,
  type ConfigOf,
  type DiagGaussianParams,
  type Encoder,
  type Features,
  type Latent,
  type LatentSample,
  type PassOptions,
  type Rng,
} from '../../core';

export const bottomUpLatentSchema = {
  dims: {
    doc: 'sizes of the stochastic layers, bottom (the decoder reads it) to top (the prior scores it)',
    format: 'positive-int-list',
    default: [100, 50],
  },
  hiddenSizes: {
    doc: 'width of the deterministic stack between layers l and l+1, one entry per pair of adjacent layers (used by q(z_l+1|z_l) and by p(z_l|z_l+1))',
    format: 'positive-int-list',
    default: [100],
  },
  hiddenLayers: { doc: 'dense layers in each deterministic stack (0: the Gaussian heads read the layer below directly)', format: 'nat', default: 2 },
  activation: { doc: 'activation of the deterministic stacks', format: ACTIVATIONS, default: 'tanh' },
  minLogVar: {
    doc: 'lower clamp of every log-variance, for numerical safety (a very negative value disables it)',
    format: 'number',
    default: -30,
  },
} as const;

export type BottomUpLatentConfig = ConfigOf<typeof bottomUpLatentSchema>;

const KEY = 'latent.bottom-up';

/**
 * The config problems the schema cannot state, each one line with its key (empty when valid):
 * no layers, or hiddenSizes not one entry per pair of adjacent layers.
 */
export function bottomUpProblems(cfg: Pick<BottomUpLatentConfig, 'dims' | 'hiddenSizes'>): string[] {
  const problems: string[] = [];
  if (cfg.dims.length === 0) problems.push(`${KEY}.dims: must list at least one stochastic layer; got []`);
  else if (cfg.hiddenSizes.length !== cfg.dims.length - 1) {
    problems.push(
      `${KEY}.hiddenSizes: must have one entry per pair of adjacent layers, ${cfg.dims.length - 1} for ${KEY}.dims ` +
        `${JSON.stringify(cfg.dims)}; got ${JSON.stringify(cfg.hiddenSizes)} (${cfg.hiddenSizes.length} entries)`,
    );
  }
  return problems;
}

/** A deterministic stack followed by a diagonal Gaussian's loc and log-variance heads. */
export class GaussianBlock extends Module {
  private readonly stack: Mlp | null;
  private readonly locHead: Dense;
  private readonly logVarHead: Dense;
  constructor(inDim: number, hidden: readonly number[], activation: Activation, outDim: number, private readonly minLogVar: number, rng: Rng) {
    super();
    this.stack = hidden.length > 0 ? this.track('mlp', new Mlp([inDim, ...hidden], activation, rng, true)) : null;
    const width = hidden.length > 0 ? hidden[hidden.length - 1] : inDim;
    this.locHead = this.track('loc', new Dense(width, outDim, rng));
    this.logVarHead = this.track('logVar', new Dense(width, outDim, rng));
  }

  /** The Gaussian's parameters. Shapes: x [N, inDim] -> loc, logVar [N, outDim]. */
  apply(x: tf.Tensor2D): DiagGaussianParams {
    return tf.tidy(() => {
      const h = this.stack ? this.stack.apply(x) : x;
      const loc = this.locHead.apply(h);
      const logVar = tf.maximum(this.logVarHead.apply(h), this.minLogVar) as tf.Tensor2D;
      return { loc, logVar } as unknown as tf.TensorContainer;
    }) as unknown as DiagGaussianParams;
  }
}

/**
 * Bottom-up hierarchical latent. Shapes: h [B, encoder.outputDim] -> z = z_1 [S*B, dims[0]],
 * priorZ = z_L [S*B, dims[L-1]], logQ and innerLogPrior [S*B].
 */
@injectable()
export class BottomUpLatent extends Module implements Latent {
  readonly dim: number;
  readonly priorDim: number;
  /** q(z_1 | h), then q(z_l+1 | z_l) for l = 1 .. L-1. */
  readonly q: GaussianBlock[] = [];
  /** p(z_l | z_l+1) for l = 1 .. L-1 (index l-1). */
  readonly p: GaussianBlock[] = [];
  constructor(
    @inject(pluginConfig('latent', 'bottom-up')) private readonly cfg: BottomUpLatentConfig,
    @inject(TOKENS.Encoder) encoder: Encoder,
    @inject(TOKENS.Seed) seed: number,
  ) {
    super();
    const problems = bottomUpProblems(cfg);
    if (problems.length > 0) throw new ConfigError(problems.join('\n'));
    const shapes = encoder.outputShapes;
    if (shapes && (shapes.length !== 1 || shapes[0].length !== 1)) {
      throw new ConfigError(
        `${KEY}: needs one flat feature row [B, D] from the encoder (the layers above the first are computed here from the drawn codes); ` +
          `got the encoder's ${shapes.length} feature shapes ${JSON.stringify(shapes)}`,
      );
    }
    const { dims, hiddenSizes, hiddenLayers, activation, minLogVar } = cfg;
    this.dim = dims[0];
    this.priorDim = dims[dims.length - 1];
    const rng = initRng(seed, 'latent', 'bottom-up');
    const stack = (width: number) => new Array<number>(hiddenLayers).fill(width);
    this.q.push(this.track('q0', new GaussianBlock(encoder.outputDim, [], activation, dims[0], minLogVar, rng)));
    for (let l = 1; l < dims.length; l++) {
      this.q.push(this.track(`q${l}`, new GaussianBlock(dims[l - 1], stack(hiddenSizes[l - 1]), activation, dims[l], minLogVar, rng)));
    }
    for (let l = 0; l + 1 < dims.length; l++) {
      this.p.push(this.track(`p${l}`, new GaussianBlock(dims[l + 1], stack(hiddenSizes[l]), activation, dims[l], minLogVar, rng)));
    }
  }

  private features(h: Features): tf.Tensor2D {
    return (Array.isArray(h) ? h[0] : h) as tf.Tensor2D;
  }

  /** Number of stochastic layers L. */
  get layers(): number {
    return this.q.length;
  }

  /**
   * Draws z_1 .. z_L bottom-up, S draws of z_1 per input and one draw of each layer above per
   * draw below, then scores z_l under p(z_l | z_l+1).
   */
  sample(h: Features, samples: number, opts: PassOptions): LatentSample {
    const x = this.features(h);
    if (this.layers === 1) {
      const first = this.q[0].apply(x);
      const { z, logQ } = drawDiagGaussian(first.loc, first.logVar, samples, opts.rng);
      return { z, logQ, samples, posterior: first };
    }
    return tf.tidy(() => {
      const first = this.q[0].apply(x);
      const d1 = drawDiagGaussian(first.loc, first.logVar, samples, opts.rng);
      const zs: tf.Tensor2D[] = [d1.z];
      const layerLogQ: tf.Tensor1D[] = [d1.logQ];
      const layerLoc: tf.Tensor2D[] = [tileSamples(first.loc, samples)];
      for (let l = 1; l < this.layers; l++) {
        const q = this.q[l].apply(zs[l - 1]);
        const d = drawDiagGaussian(q.loc, q.logVar, 1, opts.rng);
        zs.push(d.z);
        layerLoc.push(q.loc);
        layerLogQ.push(d.logQ);
      }
      const logQ = layerLogQ.reduce((a, b) => tf.add(a, b));
      const layerKl: tf.Tensor1D[] = [];
      let innerLogPrior = tf.zeros([zs[0].shape[0]]) as tf.Tensor1D;
      for (let l = 0; l + 1 < this.layers; l++) {
        const p = this.p[l].apply(zs[l + 1]);
        const logP = diagGaussianLogProb(zs[l], p.loc, p.logVar);
        innerLogPrior = tf.add(innerLogPrior, logP);
        layerKl.push(tf.sub(layerLogQ[l], logP));
      }
      return { z: zs[0], priorZ: zs[this.layers - 1], samples, logQ, innerLogPrior, layerKl, layerLoc } as unknown as tf.TensorContainer;
    }) as unknown as LatentSample;
  }

  /** The posterior mean of z_1, what the decoder reads for reconstructions. [B, dims[0]] */
  mode(h: Features, _opts: PassOptions): tf.Tensor2D {
    return tf.tidy(() => this.q[0].apply(this.features(h)).loc);
  }

  /**
   * Runs the generative path top-down: z_l ~ p(z_l | z_l+1) from the given top layer to z_1.
   * zTop: [N, dims[L-1]] -> z_1 [N, dims[0]].
   */
  generate(zTop: tf.Tensor, opts: PassOptions): tf.Tensor2D {
    return tf.tidy(() => {
      let z = zTop as tf.Tensor2D;
      for (let l = this.layers - 2; l >= 0; l--) {
        const p = this.p[l].apply(z);
        z = drawDiagGaussian(p.loc, p.logVar, 1, opts.layerRng?.(l) ?? opts.rng).z;
      }
      return tf.clone(z);
    });
  }
}

export const bottomUpLatent = definePlugin({
  slot: 'latent',
  name: 'bottom-up',
  description: 'bottom-up hierarchy of Gaussian layers (Burda et al. two stochastic layers)',
  schema: bottomUpLatentSchema,
  implementation: BottomUpLatent,
});
