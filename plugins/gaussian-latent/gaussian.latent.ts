/**
 * Diagonal Gaussian posterior q(z|x) = N(loc(h), diag(exp(logVar(h)))) with the
 * reparameterisation z = loc + exp(logVar / 2) * eps, eps ~ N(0, I)
 * (Kingma & Welling 2014, https://arxiv.org/abs/1312.6114). Two linear heads on the encoder
 * features give loc and logVar. Reads latent.gaussian.dim and latent.gaussian.minLogVar.
 */
import { inject, injectable } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import {
  Dense,
  Module,
  TOKENS,
  definePlugin,
  drawDiagGaussian,
  initRng,
  pluginConfig,
  type ConfigOf,
  type DiagGaussianParams,
  type Encoder,
  type Latent,
  type LatentSample,
  type PassOptions,
} from '../../core';

export const gaussianLatentSchema = {
  dim: { doc: 'number of latent dimensions', format: 'positive-int', default: 20 },
  minLogVar: {
    doc: 'lower clamp of the posterior log-variance, for numerical safety (a very negative value disables it)',
    format: 'number',
    default: -30,
  },
} as const;

/** Gaussian bottleneck. Shapes: h [B, encoder.outputDim] -> z [S*B, dim]. */
@injectable()
export class GaussianLatent extends Module implements Latent {
  readonly dim: number;
  readonly priorDim: number;
  private readonly locHead: Dense;
  private readonly logVarHead: Dense;
  constructor(
    @inject(pluginConfig('latent', 'gaussian')) private readonly cfg: ConfigOf<typeof gaussianLatentSchema>,
    @inject(TOKENS.Encoder) encoder: Encoder,
    @inject(TOKENS.Seed) seed: number,
  ) {
    super();
    this.dim = cfg.dim;
    this.priorDim = cfg.dim;
    const rng = initRng(seed, 'latent', 'gaussian');
    this.locHead = this.track('loc', new Dense(encoder.outputDim, cfg.dim, rng));
    this.logVarHead = this.track('logVar', new Dense(encoder.outputDim, cfg.dim, rng));
  }

  /** The posterior parameters. loc, logVar: [B, dim] */
  posterior(h: tf.Tensor2D, _opts?: PassOptions): DiagGaussianParams {
    return tf.tidy(() => {
      const loc = this.locHead.apply(h);
      const logVar = tf.maximum(this.logVarHead.apply(h), this.cfg.minLogVar) as tf.Tensor2D;
      return { loc, logVar };
    });
  }

  sample(h: tf.Tensor2D, samples: number, opts: PassOptions): LatentSample {
    const { loc, logVar } = this.posterior(h);
    const { z, logQ } = drawDiagGaussian(loc, logVar, samples, opts.rng);
    return { z, logQ, samples, posterior: { loc, logVar } };
  }

  mode(h: tf.Tensor2D, _opts: PassOptions): tf.Tensor2D {
    return tf.tidy(() => this.locHead.apply(h));
  }
}

export const gaussianLatent = definePlugin({
  slot: 'latent',
  name: 'gaussian',
  description: 'diagonal Gaussian posterior with the reparameterisation trick',
  schema: gaussianLatentSchema,
  implementation: GaussianLatent,
});
