/**
 * Test fixtures of the beta-vae objective's tests, written with the public entry points only
 * (`*.fixture.ts` files are not compiled into dist/):
 *
 * - latent "pixel-scaled": q(z_j | x) = N(loc_j * x_0, exp(logVar_j)), x_0 the first data value,
 *   loc and logVar learnable vectors set from the config. With x_0 = 1 every row has the
 *   posterior N(loc, exp(logVar)); with x_0 = 0, N(0, exp(logVar)). With exact: false it
 *   reports that Gaussian as posteriorStats only, as a latent with no exact posterior does. So the KL per dimension
 *   against N(0, 1) is known by hand: 0.5 * ((loc_j x_0)^2 + exp(logVar_j) - logVar_j - 1).
 * - decoder "zero-logits": every parameter 0 whatever z is. With the Bernoulli likelihood,
 *   log p(x|z) = sum_d x_d log sigmoid(0) + (1 - x_d) log sigmoid(0) = -dataDim * ln 2 for any
 *   x in [0, 1], so the reconstruction term is dataDim * ln 2 exactly.
 * - prior "no-closed-form": N(0, I) by its log-density only, without analyticKl.
 */
import { inject, injectable } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import {
  Module,
  TOKENS,
  definePlugin,
  drawDiagGaussian,
  pluginConfig,
  standardNormalLogProb,
  type ConfigOf,
  type DataInfo,
  type Latent,
  type LatentSample,
  type Likelihood,
  type PassOptions,
  type Prior,
  type Rng,
} from '../../core';

const pixelScaledSchema = {
  loc: { doc: 'posterior mean of each dimension when the first data value is 1', format: 'number-list', default: [0] },
  logVar: { doc: 'posterior log-variance of each dimension', format: 'number-list', default: [0] },
  exact: { doc: 'set LatentSample.posterior (else only posteriorStats, as a flow posterior would)', format: 'boolean', default: true },
} as const;

/** q(z | x) = N(loc * x[:, 0], exp(logVar)). Shapes: x [B, dataDim] as features -> z [S*B, dim]. */
@injectable()
class PixelScaledLatent extends Module implements Latent {
  readonly dim: number;
  readonly priorDim: number;
  private readonly loc: tf.Variable;
  private readonly logVar: tf.Variable;
  constructor(@inject(pluginConfig('latent', 'pixel-scaled')) private readonly cfg: ConfigOf<typeof pixelScaledSchema>) {
    super();
    this.dim = cfg.loc.length;
    this.priorDim = cfg.loc.length;
    this.loc = this.track('loc', tf.variable(tf.tensor1d(cfg.loc)));
    this.logVar = this.track('logVar', tf.variable(tf.tensor1d(cfg.logVar)));
  }

  posterior(h: tf.Tensor2D): { loc: tf.Tensor2D; logVar: tf.Tensor2D } {
    return tf.tidy(() => {
      const x0 = tf.slice(h, [0, 0], [h.shape[0], 1]);
      const loc = tf.mul(x0, tf.reshape(this.loc, [1, this.dim])) as tf.Tensor2D;
      const logVar = tf.tile(tf.reshape(this.logVar, [1, this.dim]), [h.shape[0], 1]) as tf.Tensor2D;
      return { loc, logVar };
    });
  }

  sample(h: tf.Tensor2D, samples: number, opts: PassOptions): LatentSample {
    const posterior = this.posterior(h);
    const { z, logQ } = drawDiagGaussian(posterior.loc, posterior.logVar, samples, opts.rng);
    return this.cfg.exact ? { z, logQ, samples, posterior } : { z, logQ, samples, posteriorStats: posterior };
  }

  mode(h: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => this.posterior(h).loc);
  }
}

/** An encoder that hands x on as it is (h = x), so the latent sees the data. */
@injectable()
class IdentityEncoder extends Module {
  readonly outputDim: number;
  constructor(@inject(TOKENS.DataInfo) info: DataInfo) {
    super();
    this.outputDim = info.dim;
  }
  encode(x: tf.Tensor2D): tf.Tensor2D {
    return tf.clone(x);
  }
}

/** Parameters 0 for every data dimension. Shapes: z [N, dim] -> [N, dataDim * paramsPerDim]. */
@injectable()
class ZeroLogitsDecoder extends Module {
  private readonly width: number;
  constructor(@inject(TOKENS.DataInfo) info: DataInfo, @inject(TOKENS.Likelihood) likelihood: Likelihood) {
    super();
    this.width = info.dim * likelihood.paramsPerDim;
  }
  decode(z: tf.Tensor): tf.Tensor2D {
    return tf.zeros([z.shape[0], this.width]);
  }
}

/** N(0, I) without a closed-form KL. Shapes: z [N, priorDim] -> [N]. */
@injectable()
class NoClosedFormPrior extends Module implements Prior {
  private readonly dim: number;
  constructor(@inject(TOKENS.Latent) latent: Latent) {
    super();
    this.dim = latent.priorDim;
  }
  logProb(z: tf.Tensor): tf.Tensor1D {
    return standardNormalLogProb(z as tf.Tensor2D);
  }
  sample(n: number, rng: Rng): tf.Tensor {
    return rng.normalTensor([n, this.dim]);
  }
}

/** The fixture plugins, for `buildParts(..., { plugins: fixturePlugins })`. */
export const fixturePlugins = [
  definePlugin({ slot: 'encoder', name: 'identity', description: 'h = x', schema: {}, implementation: IdentityEncoder }),
  definePlugin({
    slot: 'latent',
    name: 'pixel-scaled',
    description: 'q(z|x) = N(loc * x_0, exp(logVar))',
    schema: pixelScaledSchema,
    implementation: PixelScaledLatent,
  }),
  definePlugin({ slot: 'decoder', name: 'zero-logits', description: 'parameters 0', schema: {}, implementation: ZeroLogitsDecoder }),
  definePlugin({ slot: 'prior', name: 'no-closed-form', description: 'N(0, I) without analyticKl', schema: {}, implementation: NoClosedFormPrior }),
];
