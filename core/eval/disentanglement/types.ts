/**
 * Types shared by the disentanglement metrics: the data set with known factors they sample from,
 * the representation they score, and samples of (code, factors) pairs.
 */
import type { Rng } from '../../rng';

/**
 * A data set whose examples are made by known, independent, discrete factors of variation
 * (disentanglement_lib's GroundTruthData). `DspritesData` of core/data/dsprites.ts is one.
 */
export interface GroundTruthData {
  /** Number of factors F. */
  readonly numFactors: number;
  /** Number of values of each factor; factor f takes the integer labels 0..factorSizes[f]-1. [F] */
  readonly factorSizes: readonly number[];
  /** Names of the factors, for reports; absent = "factor 0", "factor 1", .... [F] */
  readonly factorNames?: readonly string[];
  /** n draws of the factors, each factor uniform and independent. Returns [n, F] row-major. */
  sampleFactors(n: number, rng: Rng): Int32Array;
  /** The observations made by n rows of factors [n, F]. Returns [n, dim] row-major. */
  observations(factors: Int32Array, n: number): Float32Array;
}

/**
 * What a metric scores: observations x [n, dim] (row-major) to codes [n, codeDim] (row-major),
 * e.g. a trained encoder's posterior means (`posteriorMeanRepresentation`).
 */
export type Representation = (x: Float32Array, n: number) => ArrayLike<number>;

/** Codes and the factors that made them, one row per example. */
export interface FactorCodes {
  /** Codes, row-major. [n, numCodes] */
  codes: Float64Array;
  /** Factor labels, row-major. [n, numFactors] */
  factors: Int32Array;
  n: number;
  numCodes: number;
  numFactors: number;
}
