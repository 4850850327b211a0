/**
 * Standard normal prior p(z) = N(0, I) over latent.priorDim dimensions, with the closed-form
 * KL(N(loc, e^logVar) || N(0, I)) = 0.5 * sum(loc^2 + e^logVar - logVar - 1). Reads no keys.
 */
import { inject, injectable } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import {
  Module,
  ShapeError,
  TOKENS,
  definePlugin,
  klStdNormal,
  klStdNormalPerDim,
  standardNormalLogProb,
  type DiagGaussianParams,
  type Latent,
  type Prior,
  type Rng,
} from '../../core';

export const standardNormalPriorSchema = {} as const;

/** N(0, I). Shapes: z [N, dim] -> [N]. */
@injectable()
export class StandardNormalPrior extends Module implements Prior {
  readonly dim: number;
  constructor(@inject(TOKENS.Latent) latent: Latent) {
    super();
    this.dim = latent.priorDim;
  }

  private check(z: tf.Tensor, method: string): void {
    if (z.rank !== 2 || z.shape[1] !== this.dim) {
      throw new ShapeError(
        `StandardNormalPrior.${method}: z must be [N, ${this.dim}] (the latent's priorDim); got [${z.shape.join(', ')}]`,
      );
    }
  }

  logProb(z: tf.Tensor2D, _cond: tf.Tensor2D | null): tf.Tensor1D {
    this.check(z, 'logProb');
    return standardNormalLogProb(z);
  }

  sample(n: number, rng: Rng, _cond: tf.Tensor2D | null): tf.Tensor2D {
    return rng.normalTensor([n, this.dim]) as tf.Tensor2D;
  }

  analyticKl(q: DiagGaussianParams, _cond: tf.Tensor2D | null, perDim = false): tf.Tensor {
    this.check(q.loc, 'analyticKl');
    return perDim ? klStdNormalPerDim(q.loc, q.logVar) : klStdNormal(q.loc, q.logVar);
  }
}

export const standardNormalPrior = definePlugin({
  slot: 'prior',
  name: 'standard-normal',
  description: 'standard normal prior N(0, I), with a closed-form KL for Gaussian posteriors',
  schema: standardNormalPriorSchema,
  implementation: StandardNormalPrior,
});
