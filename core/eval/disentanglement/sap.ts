/**
 * SAP score, the Separated Attribute Predictability (Kumar et al. 2018, "Variational Inference of
 * Disentangled Latent Concepts from Unlabeled Observations", https://arxiv.org/abs/1711.00848,
 * Section 3), with disentanglement_lib's protocol (sap_score.py and
 * unsupervised_study_v1/metric_configs/sap_score.gin): 10 000 training and 5 000 test points,
 * factors treated as discrete (continuous_factors = False). Score matrix S [numCodes, numFactors]:
 * S_jk = test accuracy of a linear SVM (C = 0.01, balanced class weights; our own, ./linear-svm.ts)
 * predicting factor k from code j alone. SAP = mean over factors of the gap between the largest
 * and second-largest S_jk over codes.
 *
 * With `continuousFactors` (the other branch of the protocol), S_jk = Cov(z_j, v_k)^2 /
 * (Var(z_j) Var(v_k)) on the training points (0 when Var(z_j) <= 1e-12), the squared correlation.
 */
import { ShapeError } from '../../errors';
import { Rng } from '../../rng';
import { LinearSvm1d } from './linear-svm';
import { column, sampleFactorCodes } from './sampling';
import type { FactorCodes, GroundTruthData, Representation } from './types';

/** Settings of SAP; the defaults are disentanglement_lib's. */
export interface SapOptions {
  /** Training points (sap_score.num_train). Default 10 000. */
  numTrain: number;
  /** Test points (num_test). Default 5 000. */
  numTest: number;
  /** Batch size of the representation. Default 64. */
  batchSize: number;
  /** Squared correlations instead of SVM accuracies (continuous_factors). Default false. */
  continuousFactors: boolean;
}

export const DEFAULT_SAP_OPTIONS: Readonly<SapOptions> = Object.freeze({
  numTrain: 10000,
  numTest: 5000,
  batchSize: 64,
  continuousFactors: false,
});

/** The SAP score and its score matrix. */
export interface SapResult {
  sap: number;
  /** S[j][k]. [numCodes][numFactors] */
  scoreMatrix: number[][];
}

/** Mean over columns of (largest - second largest) of a [rows][cols] matrix with at least 2 rows. */
export function meanTopTwoGap(matrix: number[][]): number {
  const F = matrix[0]?.length ?? 0;
  if (matrix.length < 2 || F === 0) throw new ShapeError(`sap: needs at least 2 codes and 1 factor; got a [${matrix.length}, ${F}] score matrix`);
  let total = 0;
  for (let k = 0; k < F; k++) {
    const col = matrix.map((row) => row[k]).sort((a, b) => b - a);
    total += col[0] - col[1];
  }
  return total / F;
}

function squaredCorrelation(z: Float64Array, v: Int32Array): number {
  const n = z.length;
  let mz = 0;
  let mv = 0;
  for (let i = 0; i < n; i++) {
    mz += z[i];
    mv += v[i];
  }
  mz /= n;
  mv /= n;
  let czv = 0;
  let czz = 0;
  let cvv = 0;
  for (let i = 0; i < n; i++) {
    czv += (z[i] - mz) * (v[i] - mv);
    czz += (z[i] - mz) ** 2;
    cvv += (v[i] - mv) ** 2;
  }
  // ddof = 1 throughout, as np.cov; the n - 1 cancels in the ratio but not in the 1e-12 test.
  czv /= n - 1;
  czz /= n - 1;
  cvv /= n - 1;
  return czz > 1e-12 ? (czv * czv) / (czz * cvv) : 0;
}

/** SAP of given training and test codes. Shapes: codes [n, numCodes], factors [n, numFactors]. */
export function sapFromCodes(train: FactorCodes, test: FactorCodes, continuousFactors = false): SapResult {
  const C = train.numCodes;
  const F = train.numFactors;
  const scoreMatrix = Array.from({ length: C }, (_, j) => {
    const z = column(train.codes, train.n, C, j);
    const zTest = column(test.codes, test.n, C, j);
    return Array.from({ length: F }, (_, k) => {
      const v = column(train.factors, train.n, F, k);
      if (continuousFactors) return squaredCorrelation(z, v);
      const vTest = column(test.factors, test.n, F, k);
      const pred = LinearSvm1d.fit(z, v).predict(zTest);
      let right = 0;
      for (let i = 0; i < test.n; i++) if (pred[i] === vTest[i]) right++;
      return right / test.n;
    });
  });
  return { sap: meanTopTwoGap(scoreMatrix), scoreMatrix };
}

/** SAP of `represent` on `data`: numTrain then numTest points from Rng.derive(seed, 'disentanglement/sap'). */
export function sapScore(data: GroundTruthData, represent: Representation, seed: number, options: Partial<SapOptions> = {}): SapResult {
  const o = { ...DEFAULT_SAP_OPTIONS, ...options };
  const rng = Rng.derive(seed, 'disentanglement/sap');
  const train = sampleFactorCodes(data, represent, o.numTrain, rng, o.batchSize);
  const test = sampleFactorCodes(data, represent, o.numTest, rng, o.batchSize);
  return sapFromCodes(train, test, o.continuousFactors);
}
