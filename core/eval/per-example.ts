/**
 * Per-example log-likelihood estimates of a test evaluation, kept beside its summary so that two
 * runs evaluated on the same test examples can be compared pairwise: the standard error of the
 * mean of the per-example differences is far smaller than the two means' standard errors
 * combined when the examples' difficulty dominates the spread (it does on MNIST), and it is the
 * right error for "model A is below model B on this test set".
 *
 * Files: `iw-per-example.json` (the training's final evaluation) and `eval-iw-per-example.json`
 * (`vaelab eval`), in the run (or stage) directory.
 */
import * as fs from 'node:fs';
import { standardError } from '../math';
import { writeJsonAtomic } from '../tracking/files';

export const PER_EXAMPLE_FILE = { training: 'iw-per-example.json', eval: 'eval-iw-per-example.json' } as const;

/** One evaluation's per-example estimates: log p(x_i) estimates of the first `examples` test examples. */
export interface PerExampleRecord {
  /** The estimate: "iw" (importance-weighted, q as proposal). */
  estimate: 'iw';
  /** Samples per example. */
  k: number;
  /** The data set (data.use) whose test split was evaluated. */
  data: string;
  /** Number of examples: the first `examples` of the test split, in order. */
  examples: number;
  values: number[];
}

export function writePerExample(file: string, rec: Omit<PerExampleRecord, 'values'>, values: Float64Array): void {
  writeJsonAtomic(file, { ...rec, values: Array.from(values) });
}

/** The record in `file`, or null when it is absent or not such a record. */
export function readPerExample(file: string): PerExampleRecord | null {
  try {
    const r = JSON.parse(fs.readFileSync(file, 'utf8')) as PerExampleRecord;
    if (!Array.isArray(r.values) || r.values.length !== r.examples || typeof r.data !== 'string') return null;
    return r;
  } catch {
    return null;
  }
}

/**
 * Mean of a_i - b_i and its standard error sd(a - b) / sqrt(n) (sample standard deviation, n - 1).
 * a and b must have the same length n >= 2.
 */
export function pairedDifference(a: ArrayLike<number>, b: ArrayLike<number>): { mean: number; se: number; n: number } {
  const n = a.length;
  if (n !== b.length || n < 2) throw new RangeError(`pairedDifference: needs two lists of the same length >= 2; got ${a.length} and ${b.length}`);
  const d = Float64Array.from({ length: n }, (_, i) => a[i] - b[i]);
  return { mean: d.reduce((sum, v) => sum + v, 0) / n, se: standardError(d), n };
}
