/**
 * Discretised logistic likelihood and its mixture (Salimans et al. 2017, PixelCNN++,
 * https://arxiv.org/abs/1701.05517), for 8-bit grey levels. As in PixelCNN++, x in [0, 1] is
 * mapped to y = 2x - 1 in [-1, 1], where level k = round(255 x) owns the bin
 * [y - 1/255, y + 1/255], the edge bins reaching to -inf (k = 0) and +inf (k = 255). With L
 * logistic components (weights w, locs mu, scales s, in y units):
 *
 *   P(k) = sum_j w_j (sigmoid((y + 1/255 - mu_j) / s_j) - sigmoid((y - 1/255 - mu_j) / s_j)).
 *
 * The decoder gives per data dimension [loc, logScale] when components = 1, and
 * [weightLogit_1..L, loc_1..L, logScale_1..L] when L > 1; log-scales are clamped below at
 * minLogScale (-7, as in PixelCNN++). Reads likelihood.discretized-logistic.components,
 * minLogScale; injects DataInfo, and refuses vector data when it is built.
 *
 * The log of each CDF difference is exact and stable everywhere, with b = (y + 1/255 - mu)/s and
 * a = (y - 1/255 - mu)/s:
 *   sigmoid(b) - sigmoid(a) = sigmoid(b) sigmoid(-a) (1 - e^(a - b)),
 * so log P = log sigmoid(b) + log sigmoid(-a) + log(-expm1(-2 / (255 s))), each term finite
 * (PixelCNN++ instead switches to the density at the bin centre when the difference is < 1e-5).
 */
import { inject, injectable } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import { Module, TOKENS, definePlugin, pluginConfig, type ConfigOf, type DataInfo, type Likelihood, type Rng } from '../../core';
import { LEVELS, levelIndex, requireGreyLevelImages } from './levels';

export const discretizedLogisticLikelihoodSchema = {
  components: { doc: 'logistic components L of the mixture (1 = a single discretised logistic)', format: 'positive-int', default: 1 },
  minLogScale: { doc: 'lower clamp of the log-scales, in units of y = 2x - 1', format: 'number', default: -7 },
} as const;

/** Half a bin in y = 2x - 1: bins are 2/255 wide. */
const HALF_BIN = 1 / (LEVELS - 1);

/** Stable softplus(t) = max(t, 0) + log(1 + e^-|t|), on every backend. */
function softplus(t: tf.Tensor): tf.Tensor {
  return tf.add(tf.relu(t), tf.log1p(tf.exp(tf.neg(tf.abs(t)))));
}

/** Per-dimension mixture parameters, each [N, D, L]; logWeights is null when L = 1. */
interface Components {
  logWeights: tf.Tensor3D | null;
  loc: tf.Tensor3D;
  logScale: tf.Tensor3D;
}

/** Shapes: x [N, D], params [N, D * paramsPerDim] -> [N]. */
@injectable()
export class DiscretizedLogisticLikelihood extends Module implements Likelihood {
  readonly paramsPerDim: number;
  private readonly components: number;
  constructor(
    @inject(pluginConfig('likelihood', 'discretized-logistic')) private readonly cfg: ConfigOf<typeof discretizedLogisticLikelihoodSchema>,
    @inject(TOKENS.DataInfo) private readonly data: DataInfo,
  ) {
    super();
    requireGreyLevelImages('discretized-logistic', data);
    this.components = cfg.components;
    this.paramsPerDim = cfg.components === 1 ? 2 : 3 * cfg.components;
  }

  private split(params: tf.Tensor2D): Components {
    const n = params.shape[0];
    const L = this.components;
    const p = tf.reshape(params, [n, this.data.dim, this.paramsPerDim]);
    const parts = L === 1 ? [null, ...tf.split(p, 2, 2)] : tf.split(p, 3, 2);
    const [w, loc, logScale] = parts as [tf.Tensor3D | null, tf.Tensor3D, tf.Tensor3D];
    return {
      logWeights: w === null ? null : (tf.logSoftmax(w) as tf.Tensor3D),
      loc,
      logScale: tf.maximum(logScale, this.cfg.minLogScale) as tf.Tensor3D,
    };
  }

  /** log P(level of x) per dimension and component. Shapes: x [N, D] -> [N, D, L]. */
  private componentLogProbs(x: tf.Tensor2D, c: Components): tf.Tensor3D {
    const k = tf.expandDims(levelIndex(x), -1);
    const y = tf.sub(tf.mul(tf.div(tf.cast(k, 'float32'), LEVELS - 1), 2), 1);
    const centred = tf.sub(y, c.loc);
    const invScale = tf.exp(tf.neg(c.logScale));
    const b = tf.mul(tf.add(centred, HALF_BIN), invScale);
    const a = tf.mul(tf.sub(centred, HALF_BIN), invScale);
    const logCdfUpper = tf.neg(softplus(tf.neg(b))); // log sigmoid(b)
    const logSfLower = tf.neg(softplus(a)); // log(1 - sigmoid(a))
    const logWidth = tf.log(tf.neg(tf.expm1(tf.mul(invScale, -2 * HALF_BIN)))); // log(1 - e^(a - b))
    const interior = tf.add(tf.add(logCdfUpper, logSfLower), logWidth);
    // The level comes from the data, not from a parameter: these masks have no gradient path.
    const kb = tf.broadcastTo(k, interior.shape);
    const atBottom = tf.equal(kb, 0);
    const atTop = tf.equal(kb, LEVELS - 1);
    return tf.where(atBottom, logCdfUpper, tf.where(atTop, logSfLower, interior)) as tf.Tensor3D;
  }

  /** log p(x) = sum_d logsumexp_j (log w_j + log P_j(k_d)). [N] */
  logProb(x: tf.Tensor2D, params: tf.Tensor2D): tf.Tensor1D {
    return tf.tidy(() => {
      const c = this.split(params);
      const perComponent = this.componentLogProbs(x, c);
      const perDim = c.logWeights === null ? tf.squeeze(perComponent, [2]) : tf.logSumExp(tf.add(c.logWeights, perComponent), 2);
      return tf.sum(perDim, -1) as tf.Tensor1D;
    });
  }

  /**
   * E[x] = (1/255) E[k] = (1/255) sum_{k=0}^{254} P(K > k) = (1/255) sum_k (1 - F(e_k)), the
   * mixture CDF F at the upper bin edges e_k = (2k + 1)/255 - 1; exact, in blocks of 32 edges
   * so that no [N, D, L, 255] tensor is made. [N, D]
   */
  mean(params: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => {
      const c = this.split(params);
      const weights = c.logWeights === null ? null : tf.expandDims(tf.exp(c.logWeights), -1);
      const loc = tf.expandDims(c.loc, -1);
      const invScale = tf.expandDims(tf.exp(tf.neg(c.logScale)), -1);
      let total: tf.Tensor = tf.zeros([params.shape[0], this.data.dim]);
      for (let start = 0; start < LEVELS - 1; start += 32) {
        const next = tf.tidy(() => {
          const count = Math.min(32, LEVELS - 1 - start);
          const edges = tf.sub(tf.div(tf.add(tf.mul(tf.range(start, start + count, 1, 'float32'), 2), 1), LEVELS - 1), 1);
          const sf = tf.sigmoid(tf.mul(tf.sub(loc, edges), invScale)); // 1 - F_j(e) = sigmoid((mu - e)/s)
          const mixed = weights === null ? sf : tf.mul(weights, sf);
          return tf.add(total, tf.sum(mixed, [2, 3]));
        });
        total.dispose();
        total = next;
      }
      return tf.div(total, LEVELS - 1) as tf.Tensor2D;
    });
  }

  /**
   * A component j by Gumbel-max on the weight logits, y = mu_j + s_j log(u / (1 - u)) from the
   * logistic's inverse CDF, then the level k = clip(round((y + 1) 255/2), 0, 255): the bin that
   * holds y, edge bins open. Returns k/255. [N, D]
   */
  sample(params: tf.Tensor2D, rng: Rng): tf.Tensor2D {
    return tf.tidy(() => {
      const c = this.split(params);
      const [n, d] = [params.shape[0], this.data.dim];
      let loc: tf.Tensor;
      let logScale: tf.Tensor;
      if (c.logWeights === null) {
        loc = tf.reshape(c.loc, [n, d]);
        logScale = tf.reshape(c.logScale, [n, d]);
      } else {
        const g = tf.neg(tf.log(tf.neg(tf.log(rng.openUniformTensor(c.logWeights.shape)))));
        const pick = tf.oneHot(tf.argMax(tf.add(c.logWeights, g), -1), this.components);
        loc = tf.sum(tf.mul(pick, c.loc), -1);
        logScale = tf.sum(tf.mul(pick, c.logScale), -1);
      }
      const u = rng.openUniformTensor([n, d]);
      const y = tf.add(loc, tf.mul(tf.exp(logScale), tf.sub(tf.log(u), tf.log1p(tf.neg(u)))));
      const k = tf.clipByValue(tf.round(tf.mul(tf.add(y, 1), (LEVELS - 1) / 2)), 0, LEVELS - 1);
      return tf.div(k, LEVELS - 1) as tf.Tensor2D;
    });
  }
}

export const discretizedLogisticLikelihood = definePlugin({
  slot: 'likelihood',
  name: 'discretized-logistic',
  description: 'discretised logistic (or a mixture of L) over the 256 grey levels of 8-bit images, PixelCNN++ form',
  schema: discretizedLogisticLikelihoodSchema,
  implementation: DiscretizedLogisticLikelihood,
});
