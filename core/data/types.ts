/**
 * Data types shared by the loaders and the batcher.
 *
 * Examples are stored flattened, row-major: example i of a split occupies
 * `x[i*dim .. (i+1)*dim)`. For images the row is the [H, W, C] array in HWC order, so reshaping a
 * batch [B, dim] to [B, H, W, C] recovers the pictures.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { DspritesOptions } from './dsprites';

/** One split of a data set (train, validation or test), held on the host. */
export interface DataSplit {
  /** Examples, flattened row-major. Shape: [n, dim]. Images have values in [0, 1]. */
  x: Float32Array;
  /** Class of each example, in [0, numClasses), or -1 when unlabelled. Shape: [n]. */
  labels: Int32Array;
  /** Number of examples. */
  n: number;
}

/** A loaded data set: its splits and what a model needs to know of their shape. */
export interface Dataset {
  /** Data set name: `data.use`, with the kind for synthetic data (e.g. "mnist", "synthetic/shapes"). */
  name: string;
  /**
   * Example shape [H, W, C]. Vector data (kind 'vector') is [1, 1, D]: a 1×1 image with D
   * channels, so that H*W*C = dim holds for every data set, as in `DataInfo` of core/contracts.
   */
  shape: [number, number, number];
  /** Flattened example size H*W*C. */
  dim: number;
  /** Number of label classes; 0 when the data set has no labels. */
  numClasses: number;
  /** Training examples (what is left after the validation split is carved out). */
  train: DataSplit;
  /** Validation examples carved from train (`data.validationSize`), or null when that is 0. */
  validation: DataSplit | null;
  /** Test examples. */
  test: DataSplit;
  /** 'image': values in [0, 1] with spatial layout `shape`; 'vector': unbounded real vectors. */
  kind: 'image' | 'vector';
}

/** What a `Batcher` needs to know of the data set a split comes from. */
export type DatasetInfo = Pick<Dataset, 'name' | 'dim' | 'numClasses' | 'kind'> & Partial<Pick<Dataset, 'shape'>>;

/** One minibatch. The caller owns `x` and `y` and must dispose them. */
export interface Batch {
  /** Examples. Shape: [size, dim]. */
  x: tf.Tensor2D;
  /** One-hot labels, all-zero rows for unlabelled examples. Shape: [size, numClasses]; null when numClasses is 0. */
  y: tf.Tensor2D | null;
  /** Class of each example, -1 when unlabelled. Shape: [size]. */
  labels: Int32Array;
  /** Row of each example in its split. Shape: [size]. */
  indices: Int32Array;
  /** Number of examples B (the last batch of an epoch may be smaller unless dropLast). */
  size: number;
}

/** Settings of a synthetic data set (`data.synthetic.*`). */
export interface SyntheticOptions {
  /** 'mixture2d': 2-D points from 4 Gaussians (vector); 'shapes': 14×14×1 images of simple shapes. */
  kind: 'mixture2d' | 'shapes';
  /** Number of training examples; the test split gets round(size / 5) more (at least 1). */
  size: number;
}

/** The `data.*` config keys. */
export interface DataOptions {
  /** Which data set: 'mnist', 'fashion-mnist', 'synthetic' or 'dsprites'. */
  use: string;
  /** Folder holding the IDX files (gzipped or not); '' = the data set's default location. */
  dir: string;
  /**
   * 'none': grey levels as they are; 'static': x > threshold ? 1 : 0 once at load;
   * 'dynamic': a fresh Bernoulli(x) draw for each batch (done by the `Batcher`). Images only.
   */
  binarize: 'none' | 'static' | 'dynamic';
  /** Threshold of static binarisation, in [0, 1]. */
  threshold: number;
  /** Number of training examples moved to a validation split; 0 = no validation split. */
  validationSize: number;
  /** Keep only the first N training examples (before the validation split); 0 = all. */
  trainLimit: number;
  /** Keep only the first N test examples; 0 = all. */
  testLimit: number;
  /**
   * Semi-supervised training: keep the labels of only this many training examples (after the
   * validation split), labelledSize / numClasses per class, chosen with the seed; every other
   * training label becomes -1 (unlabelled). 0 = keep every label. Absent = 0.
   */
  labelledSize?: number;
  /**
   * Labelled examples appended to every training batch (data.labelledBatchSize; needs
   * labelledSize > 0). 0 or absent: none.
   */
  labelledBatchSize?: number;
  /** Settings used when `use` is 'synthetic'. */
  synthetic: SyntheticOptions;
  /** Settings used when `use` is 'dsprites' (core/data/dsprites.ts); absent = the defaults. */
  dsprites?: DspritesOptions;
}
