/**
 * The uniform prior over grids of codes that VQ-VAE trains with (van den Oord et al. 2017,
 * section 3.1): every position takes each of the K codes with probability 1/K, so
 * log p(codes) = -H' W' log K for every grid, and KL(q || p) = H' W' log K, a constant, since q is
 * deterministic. The default prior of a vq latent's first stage, and the baseline a learned prior
 * (`pixelcnn`) is compared with. Needs a latent whose prior codes are a grid of code indices
 * (latent `vq`). No config keys.
 */
import { inject, injectable } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, Module, TOKENS, definePlugin, type Latent, type Prior, type Rng } from '../../core';
import type { CodeGridLatent } from './vq.latent';

/**
 * The latent as a grid of codes, or a ConfigError naming `key` when its prior codes are not a
 * grid of code indices (a flat Gaussian latent, say).
 */
export function codeGridOf(latent: Latent, key: string): CodeGridLatent {
  const k = (latent as Partial<CodeGridLatent>).numCodes;
  const shape = latent.priorShape ?? [latent.priorDim];
  if (typeof k !== 'number' || !Number.isInteger(k) || k < 2 || shape.length !== 2) {
    throw new ConfigError(
      `${key}: needs a latent whose prior codes are a grid [H, W] of code indices (numCodes and priorShape, as latent "vq" gives); latent ${latent.constructor.name} has priorShape [${shape.join(', ')}]${typeof k === 'number' ? ` and ${k} codes` : ' and no numCodes'}`,
    );
  }
  return latent as CodeGridLatent;
}

/** p(codes) = K^-(H' W'). Shapes: codes [N, H', W'] -> [N]. */
@injectable()
export class UniformCodesPrior extends Module implements Prior {
  private readonly latent: CodeGridLatent;
  constructor(@inject(TOKENS.Latent) latent: Latent) {
    super();
    this.latent = codeGridOf(latent, 'prior.uniform-codes');
  }

  /** -H' W' log K per grid. Shapes: codes [N, H', W'] -> [N]. */
  logProb(codes: tf.Tensor, _cond: tf.Tensor2D | null): tf.Tensor1D {
    return tf.fill([codes.shape[0]], -this.latent.priorDim * Math.log(this.latent.numCodes)) as tf.Tensor1D;
  }

  /** n grids of independent uniform codes (float32 integers in [0, K)). [n, H', W'] */
  sample(n: number, rng: Rng, _cond: tf.Tensor2D | null): tf.Tensor {
    const K = this.latent.numCodes;
    // min(.., K - 1): u * K can round up to K in float32 when K is not a power of two.
    return tf.tidy(() => tf.minimum(tf.floor(tf.mul(rng.uniformTensor([n, ...this.latent.priorShape]), K)), K - 1));
  }
}

export const uniformCodesPrior = definePlugin({
  slot: 'prior',
  name: 'uniform-codes',
  description: 'uniform prior over grids of codes (VQ-VAE, first stage)',
  schema: {},
  implementation: UniformCodesPrior,
});
