/**
 * DCI: disentanglement, completeness and informativeness (Eastwood & Williams 2018, "A Framework
 * for the Quantitative Evaluation of Disentangled Representations",
 * https://openreview.net/forum?id=By-7dz-AZ), with disentanglement_lib's protocol (dci.py and
 * unsupervised_study_v1/metric_configs/dci.gin): 10 000 training and 5 000 test points; for each
 * factor a gradient-boosted tree classifier predicts the factor from the whole code, and its
 * feature importances fill one column of the importance matrix R [numCodes, numFactors]
 * (absolute values). The classifier is our own (./gbt.ts), after sklearn's
 * GradientBoostingClassifier with its defaults (100 stages, depth 3, learning rate 0.1).
 *
 * - disentanglement = sum_j rho_j (1 - H_F(P_j.)), P_jk = R_jk / sum_k R_jk (code j's importance
 *   spread over the F factors, entropy in base F), rho_j = sum_k R_jk / sum R;
 * - completeness = sum_k rho_k (1 - H_C(P~_.k)), P~_jk = R_jk / sum_j R_jk (factor k's importance
 *   spread over the C codes, entropy in base C), rho_k = sum_j R_jk / sum R;
 * - informativeness = the classifiers' mean accuracy on the training and on the test points.
 * Both entropies add 1e-11 to every entry before normalising, as disentanglement_lib
 * (scipy.stats.entropy) does, so an all-zero row counts as uniform.
 */
import { ShapeError } from '../../errors';
import { Rng } from '../../rng';
import { DEFAULT_GBT_OPTIONS, GradientBoostingClassifier, type GbtOptions } from './gbt';
import { column, sampleFactorCodes } from './sampling';
import type { FactorCodes, GroundTruthData, Representation } from './types';

/** Settings of DCI; the defaults are disentanglement_lib's. */
export interface DciOptions {
  /** Training points (dci.num_train). Default 10 000. */
  numTrain: number;
  /** Test points (dci.num_test). Default 5 000. */
  numTest: number;
  /** Batch size of the representation. Default 64. */
  batchSize: number;
  /** The boosted trees of each factor; unset keys keep sklearn's defaults. */
  gbt: Partial<GbtOptions>;
}

export const DEFAULT_DCI_OPTIONS: Readonly<DciOptions> = Object.freeze({
  numTrain: 10000,
  numTest: 5000,
  batchSize: 64,
  gbt: DEFAULT_GBT_OPTIONS,
});

/** DCI scores and the importance matrix they come from. */
export interface DciResult {
  disentanglement: number;
  completeness: number;
  /** Mean training accuracy of the per-factor classifiers. */
  informativenessTrain: number;
  /** Mean test accuracy of the per-factor classifiers. */
  informativenessTest: number;
  /** R[j][k]: importance of code j for factor k. [numCodes][numFactors] */
  importance: number[][];
}

/** 1 - H(p) / ln(base) of the entries + 1e-11, normalised (scipy.stats.entropy(p + 1e-11, base)). */
function oneMinusEntropy(p: number[], base: number): number {
  const q = p.map((v) => v + 1e-11);
  const total = q.reduce((a, b) => a + b, 0);
  let h = 0;
  for (const v of q) h -= (v / total) * Math.log(v / total);
  return 1 - h / Math.log(base);
}

/**
 * Disentanglement of an importance matrix R [numCodes][numFactors]: the importance-weighted mean
 * over codes of 1 - H_F(code's importance over factors). An all-zero R weights codes equally.
 */
export function dciDisentanglement(importance: number[][]): number {
  const F = importance[0]?.length ?? 0;
  if (F < 2) throw new ShapeError(`dciDisentanglement: needs an importance matrix of at least 2 factors (entropy in base F); got ${F}`);
  const perCode = importance.map((row) => oneMinusEntropy(row, F));
  const rowSums = importance.map((row) => row.reduce((a, b) => a + b, 0));
  const total = rowSums.reduce((a, b) => a + b, 0);
  const weights = total === 0 ? rowSums.map(() => 1 / rowSums.length) : rowSums.map((s) => s / total);
  return perCode.reduce((acc, v, j) => acc + v * weights[j], 0);
}

/**
 * Completeness of an importance matrix R [numCodes][numFactors]: the importance-weighted mean
 * over factors of 1 - H_C(factor's importance over codes). An all-zero R weights factors equally.
 */
export function dciCompleteness(importance: number[][]): number {
  const C = importance.length;
  if (C < 2) throw new ShapeError(`dciCompleteness: needs an importance matrix of at least 2 codes (entropy in base C); got ${C}`);
  const F = importance[0].length;
  const columns = Array.from({ length: F }, (_, k) => importance.map((row) => row[k]));
  const perFactor = columns.map((col) => oneMinusEntropy(col, C));
  const colSums = columns.map((col) => col.reduce((a, b) => a + b, 0));
  const total = colSums.reduce((a, b) => a + b, 0);
  const weights = total === 0 ? colSums.map(() => 1 / F) : colSums.map((s) => s / total);
  return perFactor.reduce((acc, v, k) => acc + v * weights[k], 0);
}

/**
 * DCI of given training and test codes (disentanglement_lib's `_compute_dci`). Shapes: codes
 * [n, numCodes], factors [n, numFactors], the same numCodes and numFactors in both.
 */
export function dciFromCodes(train: FactorCodes, test: FactorCodes, gbt: Partial<GbtOptions> = {}): DciResult {
  if (train.numCodes !== test.numCodes || train.numFactors !== test.numFactors) {
    throw new ShapeError(
      `dci: training and test samples must have the same widths; got codes ${train.numCodes} and ${test.numCodes}, factors ${train.numFactors} and ${test.numFactors}`,
    );
  }
  const C = train.numCodes;
  const F = train.numFactors;
  const importance = Array.from({ length: C }, () => new Array<number>(F).fill(0));
  let trainAcc = 0;
  let testAcc = 0;
  for (let k = 0; k < F; k++) {
    const yTrain = column(train.factors, train.n, F, k);
    const yTest = column(test.factors, test.n, F, k);
    const model = GradientBoostingClassifier.fit(train.codes, train.n, C, yTrain, gbt);
    for (let j = 0; j < C; j++) importance[j][k] = Math.abs(model.featureImportances[j]);
    const accuracy = (codes: Float64Array, n: number, y: Int32Array) => {
      const pred = model.predict(codes, n);
      let right = 0;
      for (let i = 0; i < n; i++) if (pred[i] === y[i]) right++;
      return n > 0 ? right / n : 0;
    };
    trainAcc += accuracy(train.codes, train.n, yTrain);
    testAcc += accuracy(test.codes, test.n, yTest);
  }
  return {
    disentanglement: dciDisentanglement(importance),
    completeness: dciCompleteness(importance),
    informativenessTrain: trainAcc / F,
    informativenessTest: testAcc / F,
    importance,
  };
}

/**
 * DCI of `represent` on `data`: numTrain then numTest points from
 * Rng.derive(seed, 'disentanglement/dci').
 */
export function dci(data: GroundTruthData, represent: Representation, seed: number, options: Partial<DciOptions> = {}): DciResult {
  const o = { ...DEFAULT_DCI_OPTIONS, ...options, gbt: { ...DEFAULT_GBT_OPTIONS, ...options.gbt } };
  const rng = Rng.derive(seed, 'disentanglement/dci');
  const train = sampleFactorCodes(data, represent, o.numTrain, rng, o.batchSize);
  const test = sampleFactorCodes(data, represent, o.numTest, rng, o.batchSize);
  return dciFromCodes(train, test, o.gbt);
}
