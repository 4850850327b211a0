/**
 * Data sets of vaelab: loading (`loadDataset`), splits (`splitOf`) and minibatches (`Batcher`).
 *
 * Config keys read: data.use, data.dir, data.binarize, data.threshold, data.validationSize,
 * data.trainLimit, data.testLimit, data.labelledSize, data.synthetic.kind, data.synthetic.size,
 * data.dsprites.trainSize, data.dsprites.testSize (see `DataOptions`).
 */
import { ConfigError, unknownValueMessage } from '../errors';
import { Rng } from '../rng';
import { DEFAULT_DSPRITES_OPTIONS, makeDsprites } from './dsprites';
import { idxFilesUnchanged, recordIdxReads, type IdxFileStamp } from './idx';
import { loadFashionMnist } from './fashion-mnist';
import { loadMnist } from './mnist';
import { makeSynthetic } from './synthetic';
export {
  DEFAULT_DSPRITES_OPTIONS,
  DSPRITES_COUNT,
  DSPRITES_FACTORS,
  DSPRITES_FACTOR_SIZES,
  DSPRITES_SHAPES,
  DSPRITES_SIZE,
  DspritesData,
  dspritesFactorsOf,
  dspritesImages,
  dspritesIndexOf,
  dspritesSplitIndices,
  makeDsprites,
  renderDsprite,
  type DspritesOptions,
} from './dsprites';
import type { DataOptions, DataSplit, Dataset } from './types';

export type { Batch, DataOptions, DataSplit, Dataset, DatasetInfo, SyntheticOptions } from './types';
export { Batcher, type BatcherOptions } from './batcher';
export { clearIdxCache, idxFilesUnchanged, isGzip, parseIdx, readIdx, recordIdxReads, type IdxArray, type IdxFileStamp } from './idx';
export { MNIST_FILES, loadMnist, mnistPackageDir } from './mnist';
export {
  FASHION_MNIST_CLASSES,
  FASHION_MNIST_DEBIAN_PACKAGE,
  FASHION_MNIST_DEFAULT_DIR,
  FASHION_MNIST_FILES,
  loadFashionMnist,
} from './fashion-mnist';
export {
  MIXTURE2D_MEANS,
  MIXTURE2D_SCALE,
  SHAPES_CLASSES,
  SHAPES_SIZE,
  SYNTHETIC_KINDS,
  makeSynthetic,
  syntheticTestSize,
} from './synthetic';

/** Allowed values of `data.use`. */
export const DATA_SETS = ['dsprites', 'fashion-mnist', 'mnist', 'synthetic'] as const;

/** Allowed values of `data.binarize`. */
export const BINARIZE_MODES = ['none', 'static', 'dynamic'] as const;

/** Defaults of the `data.*` keys: all of MNIST, grey levels, no validation split. */
export const DEFAULT_DATA_OPTIONS: Readonly<DataOptions> = Object.freeze({
  use: 'mnist',
  dir: '',
  binarize: 'none',
  threshold: 0.5,
  validationSize: 0,
  trainLimit: 0,
  testLimit: 0,
  labelledSize: 0,
  synthetic: Object.freeze({ kind: 'mixture2d', size: 256 }),
});

const LOADERS: Record<(typeof DATA_SETS)[number], (opts: DataOptions, seed: number) => Dataset> = {
  dsprites: (opts, seed) => makeDsprites(opts.dsprites ?? DEFAULT_DSPRITES_OPTIONS, seed),
  'fashion-mnist': (opts) => loadFashionMnist(opts),
  mnist: (opts) => loadMnist(opts),
  synthetic: (opts, seed) => makeSynthetic(opts.synthetic, seed),
};

function checkOptions(opts: DataOptions): void {
  const problems: string[] = [];
  if (!(BINARIZE_MODES as readonly string[]).includes(opts.binarize)) {
    problems.push(unknownValueMessage('data.binarize', 'binarisation mode', opts.binarize, BINARIZE_MODES));
  }
  if (typeof opts.threshold !== 'number' || !(opts.threshold >= 0 && opts.threshold <= 1)) {
    problems.push(`data.threshold: must be a number in [0, 1]; got ${opts.threshold}`);
  }
  for (const key of ['validationSize', 'trainLimit', 'testLimit', 'labelledSize', 'labelledBatchSize'] as const) {
    const v = opts[key] ?? 0;
    if (!Number.isInteger(v) || v < 0) {
      const zero = key === 'validationSize' ? 'no validation split' : key === 'labelledSize' ? 'every label kept' : key === 'labelledBatchSize' ? 'no separate labelled batch' : 'all';
      problems.push(`data.${key}: must be a non-negative integer (0 = ${zero}); got ${v}`);
    }
  }
  if ((opts.labelledBatchSize ?? 0) > 0 && !((opts.labelledSize ?? 0) > 0)) {
    problems.push(`data.labelledBatchSize: ${opts.labelledBatchSize} labelled examples per batch need a labelled subset; set data.labelledSize (e.g. 100) or data.labelledBatchSize to 0`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
}

/** Rows `rows` of `split`, in the given order, copied into a new split. */
function gather(split: DataSplit, dim: number, rows: ArrayLike<number>): DataSplit {
  const n = rows.length;
  const x = new Float32Array(n * dim);
  const labels = new Int32Array(n);
  for (let j = 0; j < n; j++) {
    const r = rows[j];
    x.set(split.x.subarray(r * dim, (r + 1) * dim), j * dim);
    labels[j] = split.labels[r];
  }
  return { x, labels, n };
}

/** The first `limit` examples (0 = all), copied so that the rest can be freed. */
function takeFirst(split: DataSplit, dim: number, limit: number): DataSplit {
  if (limit === 0 || limit >= split.n) return split;
  return { x: split.x.slice(0, limit * dim), labels: split.labels.slice(0, limit), n: limit };
}

/**
 * Splits `train` into (rest, validation): validation takes `size` examples chosen by
 * Rng.derive(seed, 'validation-split').permutation(n); both keep the original relative order.
 */
function carveValidation(train: DataSplit, dim: number, size: number, seed: number): [DataSplit, DataSplit] {
  const perm = Rng.derive(seed, 'validation-split').permutation(train.n);
  const inValidation = new Uint8Array(train.n);
  for (let i = 0; i < size; i++) inValidation[perm[i]] = 1;
  const valRows: number[] = [];
  const restRows: number[] = [];
  for (let r = 0; r < train.n; r++) (inValidation[r] ? valRows : restRows).push(r);
  return [gather(train, dim, restRows), gather(train, dim, valRows)];
}

/**
 * Keeps the labels of `size` training examples, size / numClasses per class, and sets every
 * other label to -1 (unlabelled). The kept examples of class c are the first size / numClasses
 * of that class in the order Rng.derive(seed, 'labelled-subset').permutation(n).
 */
function hideLabels(train: DataSplit, numClasses: number, size: number, seed: number, name: string): DataSplit {
  if (numClasses === 0) throw new ConfigError(`data.labelledSize: data set "${name}" has no labels; set it to 0`);
  if (size % numClasses !== 0) {
    throw new ConfigError(`data.labelledSize: must be a multiple of the ${numClasses} classes of ${name} (the same number per class); got ${size}`);
  }
  const per = size / numClasses;
  const counts = new Int32Array(numClasses);
  for (let r = 0; r < train.n; r++) if (train.labels[r] >= 0) counts[train.labels[r]]++;
  const short = Array.from(counts).findIndex((c) => c < per);
  if (short >= 0) {
    throw new ConfigError(`data.labelledSize: ${size} needs ${per} labelled examples per class, but class ${short} of ${name} has ${counts[short]} training examples; got ${size}`);
  }
  const labels = new Int32Array(train.n).fill(-1);
  const kept = new Int32Array(numClasses);
  for (const r of Rng.derive(seed, 'labelled-subset').permutation(train.n)) {
    const c = train.labels[r];
    if (c >= 0 && kept[c] < per) {
      labels[r] = c;
      kept[c]++;
    }
  }
  return { ...train, labels };
}

function binarizeInPlace(split: DataSplit, threshold: number): void {
  const x = split.x;
  for (let i = 0; i < x.length; i++) x[i] = x[i] > threshold ? 1 : 0;
}

/** JSON with object keys sorted, so that equal options give equal keys whatever their key order. */
function stableKey(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableKey).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .filter((k) => o[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${stableKey(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

interface DatasetCacheEntry {
  key: string;
  /** The IDX files the data set was built from (none for generated data). */
  files: IdxFileStamp[];
  value: Dataset;
  bytes: number;
}

/** Data sets built in this process, least recently used first. */
const datasets: DatasetCacheEntry[] = [];

/**
 * Bytes of splits kept by the data set cache: the newest data set is always kept, older ones
 * while the total stays below this (three 20 000-image MNIST slices, or one full MNIST).
 */
export const DATASET_CACHE_BYTES = 256 * 2 ** 20;

const splitBytes = (s: DataSplit | null) => (s ? s.x.byteLength + s.labels.byteLength : 0);

/** A data set whose split objects are new (their arrays shared), so that replacing a split's x leaves the cache alone. */
const withOwnSplits = (ds: Dataset): Dataset => ({ ...ds, train: { ...ds.train }, validation: ds.validation ? { ...ds.validation } : null, test: { ...ds.test } });

/** Whether `loadDataset(opts, seed)` would be answered from the cache (IDX files unchanged). */
export function datasetCached(opts: DataOptions, seed: number): boolean {
  const key = stableKey([opts, seed]);
  const hit = datasets.find((e) => e.key === key);
  return hit !== undefined && idxFilesUnchanged(hit.files);
}

/** Forgets the data sets cached by `loadDataset`. */
export function clearDatasetCache(): void {
  datasets.length = 0;
}

/**
 * Loads the data set named by `opts.use`, then, in this order: keeps the first
 * `trainLimit`/`testLimit` examples, moves `validationSize` seeded-random training examples to a
 * validation split, and applies static binarisation (x > threshold ? 1 : 0) to every split.
 * Dynamic binarisation is left to the `Batcher` (pass `dynamicBinarize: opts.binarize === 'dynamic'`).
 *
 * Cached per process: loading with the same options and seed again returns the same arrays
 * (in new split objects) as long as the IDX files it was read from are unchanged, so a sweep's
 * worker builds its data set once for all its trials, and the sweep's check of every trial
 * config once for all points that share it (converting 30 000 MNIST images to floats and
 * carving the validation split take seconds). Callers must not write into the splits' arrays.
 * The raw IDX files are cached as well (core/data/idx.ts).
 * Shapes: every split's x is [n, dim] with dim = H*W*C of `shape`.
 */
export function loadDataset(opts: DataOptions, seed: number): Dataset {
  const key = stableKey([opts, seed]);
  const at = datasets.findIndex((e) => e.key === key);
  if (at >= 0) {
    const [hit] = datasets.splice(at, 1);
    if (idxFilesUnchanged(hit.files)) {
      datasets.push(hit);
      return withOwnSplits(hit.value);
    }
  }
  const { value, files } = recordIdxReads(() => buildDataset(opts, seed));
  datasets.push({ key, files, value, bytes: splitBytes(value.train) + splitBytes(value.validation) + splitBytes(value.test) });
  let total = datasets.reduce((a, e) => a + e.bytes, 0);
  while (datasets.length > 1 && total > DATASET_CACHE_BYTES) total -= datasets.shift()!.bytes;
  return withOwnSplits(value);
}

/** loadDataset without the cache. */
function buildDataset(opts: DataOptions, seed: number): Dataset {
  if (!(DATA_SETS as readonly string[]).includes(opts.use)) {
    throw new ConfigError(unknownValueMessage('data.use', 'data set', opts.use, DATA_SETS));
  }
  checkOptions(opts);
  const raw = LOADERS[opts.use as (typeof DATA_SETS)[number]](opts, seed);
  if (opts.binarize !== 'none' && raw.kind !== 'image') {
    throw new ConfigError(
      `data.binarize: "${opts.binarize}" needs image data with values in [0, 1]; ${raw.name} is ${raw.kind} data. Allowed values for it: "none"`,
    );
  }
  const dim = raw.dim;
  let train = takeFirst(raw.train, dim, opts.trainLimit);
  const test = takeFirst(raw.test, dim, opts.testLimit);
  let validation: DataSplit | null = null;
  if (opts.validationSize > 0) {
    if (opts.validationSize >= train.n) {
      const limited = opts.trainLimit > 0 && opts.trainLimit <= raw.train.n ? ` with data.trainLimit = ${opts.trainLimit}` : '';
      throw new ConfigError(
        `data.validationSize: must be less than the number of training examples of ${raw.name} (${train.n}${limited}); got ${opts.validationSize}`,
      );
    }
    [train, validation] = carveValidation(train, dim, opts.validationSize, seed);
  }
  if ((opts.labelledSize ?? 0) > 0) train = hideLabels(train, raw.numClasses, opts.labelledSize!, seed, raw.name);
  if (opts.binarize === 'static') {
    // Splits are fresh arrays here (loaders convert from the cached bytes), so in place is safe.
    for (const split of [train, validation, test]) if (split) binarizeInPlace(split, opts.threshold);
  }
  return { ...raw, train, validation, test };
}

/**
 * The split `name` of `ds`. Throws ConfigError for 'validation' when the data set has none
 * (data.validationSize = 0).
 */
export function splitOf(ds: Dataset, name: 'train' | 'validation' | 'test'): DataSplit {
  if (name === 'validation') {
    if (!ds.validation) {
      throw new ConfigError(`data.validationSize: ${ds.name} has no validation split (data.validationSize = 0); set it above 0`);
    }
    return ds.validation;
  }
  return name === 'train' ? ds.train : ds.test;
}
