/**
 * A factorised Laplace(0, b) prior for vaelab, as a plugin package of its own: it imports only
 * vaelab's public entry point, and vaelab, tfjs-core and inversify are its peer dependencies.
 */
import { inject, injectable } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import { Module, TOKENS, definePlugin, pluginConfig, type ConfigOf, type Latent, type PluginSchema, type Prior, type Rng } from 'vaelab';

export const laplacePriorSchema = {
  scale: { doc: 'scale b of every Laplace factor', format: 'positive-number', default: 1 },
} as const satisfies PluginSchema;

/**
 * p(z) = prod_d Laplace(z_d; 0, b), so log p(z) = sum_d -log(2b) - |z_d| / b. Reads
 * `prior.laplace.scale` (b). Offers no closed-form KL: objectives estimate it by Monte Carlo.
 */
@injectable()
export class LaplacePrior extends Module implements Prior {
  private readonly dim: number;

  constructor(
    @inject(pluginConfig('prior', 'laplace')) private readonly cfg: ConfigOf<typeof laplacePriorSchema>,
    @inject(TOKENS.Latent) latent: Latent, // any other slot is injected the same way
  ) {
    super();
    this.dim = latent.priorDim;
  }

  /** log p(z). z: [N, D] -> [N] */
  logProb(z: tf.Tensor): tf.Tensor1D {
    return tf.tidy(() => tf.sum(tf.sub(-Math.log(2 * this.cfg.scale), tf.div(tf.abs(z), this.cfg.scale)), -1) as tf.Tensor1D);
  }

  /** n draws by the inverse CDF: z = -b sign(u) log(1 - 2|u|), u ~ U(-1/2, 1/2). Returns [n, D] */
  sample(n: number, rng: Rng): tf.Tensor2D {
    return tf.tidy(() => {
      const u = rng.openUniformTensor([n, this.dim], -0.5, 0.5);
      return tf.mul(tf.mul(tf.sign(u), -this.cfg.scale), tf.log1p(tf.mul(tf.abs(u), -2))) as tf.Tensor2D;
    });
  }
}

export const plugins = [
  definePlugin({ slot: 'prior', name: 'laplace', description: 'factorised Laplace prior', schema: laplacePriorSchema, implementation: LaplacePrior }),
];
