/**
 * Disentanglement metrics on data with known factors of variation, after disentanglement_lib's
 * protocols: MIG, the FactorVAE score, DCI and SAP (see README.md in this folder for how they are
 * called, their parameters and which classifiers they use).
 */
export type { FactorCodes, GroundTruthData, Representation } from './types';
export { column, encodeAll, sampleFactorCodes } from './sampling';
export { discreteEntropy, discreteMutualInfo, histogramDiscretize } from './information';
export { DEFAULT_MIG_OPTIONS, mig, migFromCodes, type MigOptions, type MigResult } from './mig';
export {
  DEFAULT_FACTOR_VAE_OPTIONS,
  columnVariances,
  factorVaeScore,
  majorityVote,
  type FactorVaeOptions,
  type FactorVaeResult,
} from './factor-vae';
export { DEFAULT_GBT_OPTIONS, GradientBoostingClassifier, type GbtOptions } from './gbt';
export {
  DEFAULT_DCI_OPTIONS,
  dci,
  dciCompleteness,
  dciDisentanglement,
  dciFromCodes,
  type DciOptions,
  type DciResult,
} from './dci';
export { DEFAULT_LINEAR_SVM_OPTIONS, LinearSvm1d, solveSquaredHinge, type LinearSvmOptions } from './linear-svm';
export { DEFAULT_SAP_OPTIONS, meanTopTwoGap, sapFromCodes, sapScore, type SapOptions, type SapResult } from './sap';
export {
  disentanglementSummary,
  evaluateModelDisentanglement,
  evaluateRepresentation,
  posteriorMeanRepresentation,
  type DisentanglementOptions,
  type DisentanglementResult,
} from './model';
