/**
 * Sampling of (code, factors) pairs from ground-truth data, as disentanglement_lib's
 * `generate_batch_factor_code`: factors drawn uniformly, their observations rendered and encoded
 * in batches.
 */
import { ShapeError } from '../../errors';
import type { Rng } from '../../rng';
import type { FactorCodes, GroundTruthData, Representation } from './types';

/**
 * The codes of `x` [n, dim] under `represent`, in batches of `batchSize`. Returns [n, codeDim]
 * as float64, and codeDim. Throws ShapeError when a batch's code is not a whole number of rows
 * or its width changes between batches.
 */
export function encodeAll(
  represent: Representation,
  x: Float32Array,
  n: number,
  batchSize: number,
): { codes: Float64Array; numCodes: number } {
  const dim = x.length / n;
  let codes: Float64Array | null = null;
  let numCodes = 0;
  for (let start = 0; start < n; start += batchSize) {
    const m = Math.min(batchSize, n - start);
    const out = represent(x.subarray(start * dim, (start + m) * dim), m);
    if (out.length % m !== 0 || out.length === 0) {
      throw new ShapeError(`disentanglement representation: must return [n, codeDim] row-major for n = ${m} inputs; got ${out.length} values`);
    }
    const width = out.length / m;
    if (!codes) {
      numCodes = width;
      codes = new Float64Array(n * width);
    } else if (width !== numCodes) {
      throw new ShapeError(`disentanglement representation: codeDim must stay ${numCodes} for every batch; got ${width}`);
    }
    for (let i = 0; i < out.length; i++) codes[start * numCodes + i] = out[i];
  }
  return { codes: codes ?? new Float64Array(0), numCodes };
}

/**
 * n (code, factors) pairs: factors from data.sampleFactors(n, rng), their observations encoded by
 * `represent` in batches of `batchSize`. Shapes: codes [n, numCodes], factors [n, numFactors].
 */
export function sampleFactorCodes(
  data: GroundTruthData,
  represent: Representation,
  n: number,
  rng: Rng,
  batchSize = 64,
): FactorCodes {
  const factors = data.sampleFactors(n, rng);
  const F = data.numFactors;
  const codes: Float64Array[] = [];
  let numCodes = 0;
  for (let start = 0; start < n; start += batchSize) {
    const m = Math.min(batchSize, n - start);
    const f = factors.subarray(start * F, (start + m) * F);
    const enc = encodeAll(represent, data.observations(f, m), m, m);
    if (start > 0 && enc.numCodes !== numCodes) {
      throw new ShapeError(`disentanglement representation: codeDim must stay ${numCodes} for every batch; got ${enc.numCodes}`);
    }
    numCodes = enc.numCodes;
    codes.push(enc.codes);
  }
  const all = new Float64Array(n * numCodes);
  let at = 0;
  for (const c of codes) {
    all.set(c, at);
    at += c.length;
  }
  return { codes: all, factors, n, numCodes, numFactors: F };
}

/** Column j of a row-major [n, width] array. [n] */
export function column<T extends Float64Array | Int32Array>(values: T, n: number, width: number, j: number): T {
  const out = new (values.constructor as { new (len: number): T })(n);
  for (let i = 0; i < n; i++) out[i] = values[i * width + j];
  return out;
}
