/**
 * Mutual Information Gap (Chen et al. 2018, "Isolating Sources of Disentanglement in VAEs",
 * https://arxiv.org/abs/1802.04942), with disentanglement_lib's protocol (mig.py and
 * unsupervised_study_v1/metric_configs/mig.gin): 10 000 points, each code discretised by a
 * 20-bin histogram, plug-in mutual information with each factor, and
 *   MIG = mean over factors k of (I(z_(1); v_k) - I(z_(2); v_k)) / H(v_k),
 * with z_(1), z_(2) the codes of largest and second-largest mutual information with v_k.
 */
import { ShapeError } from '../../errors';
import { Rng } from '../../rng';
import { discreteEntropy, discreteMutualInfo, histogramDiscretize } from './information';
import { column, sampleFactorCodes } from './sampling';
import type { FactorCodes, GroundTruthData, Representation } from './types';

/** Settings of MIG; the defaults are disentanglement_lib's. */
export interface MigOptions {
  /** Points sampled (mig.num_train). Default 10 000. */
  numTrain: number;
  /** Bins of the histogram discretiser (discretizer.num_bins). Default 20. */
  numBins: number;
  /** Batch size of the representation. Default 64. */
  batchSize: number;
}

export const DEFAULT_MIG_OPTIONS: Readonly<MigOptions> = Object.freeze({ numTrain: 10000, numBins: 20, batchSize: 64 });

/** MIG and what it is made of. */
export interface MigResult {
  /** Mean of the normalised gaps over the factors with positive entropy. In [0, 1]. */
  mig: number;
  /** Normalised gap of each factor; NaN for a factor that is constant in the sample. [numFactors] */
  gapPerFactor: number[];
  /** I(z_j; v_k) in nats, row j for code j. [numCodes][numFactors] */
  mutualInfo: number[][];
  /** H(v_k) in nats. [numFactors] */
  factorEntropy: number[];
}

/**
 * MIG of given codes and factors (disentanglement_lib's `_compute_mig`). Needs at least 2 codes.
 * Shapes: s.codes [n, numCodes], s.factors [n, numFactors].
 */
export function migFromCodes(s: FactorCodes, numBins: number = DEFAULT_MIG_OPTIONS.numBins): MigResult {
  if (s.numCodes < 2) throw new ShapeError(`mig: needs at least 2 codes to take a gap; got codes [${s.n}, ${s.numCodes}]`);
  const binned = Array.from({ length: s.numCodes }, (_, j) => histogramDiscretize(column(s.codes, s.n, s.numCodes, j), numBins));
  const factors = Array.from({ length: s.numFactors }, (_, k) => column(s.factors, s.n, s.numFactors, k));
  const mutualInfo = binned.map((z) => factors.map((v) => discreteMutualInfo(z, v)));
  const factorEntropy = factors.map((v) => discreteEntropy(v));
  const gapPerFactor = factors.map((_, k) => {
    if (!(factorEntropy[k] > 0)) return NaN;
    const sorted = mutualInfo.map((row) => row[k]).sort((a, b) => b - a);
    return (sorted[0] - sorted[1]) / factorEntropy[k];
  });
  const defined = gapPerFactor.filter((g) => !Number.isNaN(g));
  const mig = defined.length > 0 ? defined.reduce((a, b) => a + b, 0) / defined.length : 0;
  return { mig, gapPerFactor, mutualInfo, factorEntropy };
}

/** MIG of `represent` on `numTrain` points of `data`, from Rng.derive(seed, 'disentanglement/mig'). */
export function mig(data: GroundTruthData, represent: Representation, seed: number, options: Partial<MigOptions> = {}): MigResult {
  const o = { ...DEFAULT_MIG_OPTIONS, ...options };
  const s = sampleFactorCodes(data, represent, o.numTrain, Rng.derive(seed, 'disentanglement/mig'), o.batchSize);
  return migFromCodes(s, o.numBins);
}
