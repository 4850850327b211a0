/**
 * Minibatches of a split, addressable by (epoch, index).
 *
 * Every batch is a pure function of (split, seed, stream, epoch, index): the order of epoch e is
 * Rng.derive(seed, stream, e).permutation(n) when shuffling (identity otherwise), and batch i is
 * rows [i*B, (i+1)*B) of that order. Resuming a run at (epoch, index) therefore yields exactly
 * the batches an uninterrupted run would have seen, with no generator state to checkpoint.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, DataError } from '../errors';
import { Rng } from '../rng';
import type { Batch, DataSplit, DatasetInfo } from './types';

/** Options of a `Batcher`. */
export interface BatcherOptions {
  /** Examples per batch B (`train.batchSize`). */
  batchSize: number;
  /** Visit the split in a fresh seeded order each epoch; false = split order every epoch. */
  shuffle: boolean;
  /** Experiment seed. */
  seed: number;
  /**
   * Replace x by a Bernoulli(x) draw in each batch: x_bin = (u < x) with u uniform from
   * Rng.derive(seed, binarize stream, epoch, index). Image data only (x in [0, 1]).
   */
  dynamicBinarize: boolean;
  /** Skip the last batch of an epoch when it would be smaller than B. */
  dropLast: boolean;
  /**
   * Name of the order stream, default 'data-order'. Give each batcher of a run its own name
   * (e.g. 'validation-order') so their orders are independent. The binarisation stream is
   * 'binarize' by default and `${stream}-binarize` when a stream is given.
   */
  stream?: string;
  /**
   * Semi-supervised batches (data.labelledBatchSize): this many labelled examples (label >= 0)
   * appended to every batch, whose other rows come from the unlabelled examples only (they alone
   * make the epoch). The labelled rows of step t = epoch * batchesPerEpoch + index are positions
   * [t*L, (t+1)*L) of the endless sequence that visits the labelled examples in the order
   * Rng.derive(seed, `${stream}-labelled`, c).permutation(nLabelled) in cycle c: a pure function
   * of (epoch, index) like the rest. 0 or absent: no appended rows.
   */
  labelled?: number;
}

/** Draws batches of one split; see the module comment for the addressing scheme. */
export class Batcher {
  /** Number of examples in the split. */
  /** Examples an epoch visits: the split's, or its unlabelled ones with `labelled`. */
  readonly n: number;
  private readonly dim: number;
  private readonly numClasses: number;
  private readonly orderStream: string;
  private readonly binarizeStream: string;
  private cachedEpoch = -1;
  private cachedOrder: Int32Array | null = null;
  /** Rows of the split the epoch visits (all, or the unlabelled ones with opts.labelled). */
  private readonly rows: Int32Array | null = null;
  /** The labelled rows appended to every batch, and the order of each cycle through them. */
  private readonly labelledRows: Int32Array | null = null;
  private readonly labelledOrders = new Map<number, Int32Array>();

  constructor(
    private readonly split: DataSplit,
    private readonly info: DatasetInfo,
    private readonly opts: BatcherOptions,
  ) {
    const where = `Batcher(${info.name})`;
    const { batchSize } = opts;
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new ConfigError(`${where}: batchSize must be a positive integer; got ${batchSize}`);
    }
    if (split.x.length !== split.n * info.dim) {
      throw new DataError(
        `${where}: split.x must hold n × dim = ${split.n} × ${info.dim} = ${split.n * info.dim} values; got ${split.x.length}`,
      );
    }
    if (split.labels.length !== split.n) {
      throw new DataError(`${where}: split.labels must hold n = ${split.n} labels; got ${split.labels.length}`);
    }
    if (opts.dynamicBinarize && info.kind !== 'image') {
      throw new ConfigError(
        `${where}: dynamic binarisation needs image data with values in [0, 1]; got ${info.kind} data (set data.binarize to "none")`,
      );
    }
    this.n = split.n;
    if ((opts.labelled ?? 0) > 0) {
      const lab: number[] = [];
      const unl: number[] = [];
      for (let r = 0; r < split.n; r++) (split.labels[r] >= 0 ? lab : unl).push(r);
      if (lab.length === 0) throw new ConfigError(`data.labelledBatchSize: ${opts.labelled} labelled examples per batch, but the training split of ${info.name} has no labelled example (set data.labelledSize)`);
      if (unl.length === 0) throw new ConfigError(`data.labelledBatchSize: every training example of ${info.name} is labelled, so the batches have no unlabelled part; set data.labelledSize below the training size, or data.labelledBatchSize to 0`);
      this.rows = Int32Array.from(unl);
      this.labelledRows = Int32Array.from(lab);
      this.n = unl.length;
    }
    this.dim = info.dim;
    this.numClasses = info.numClasses;
    this.orderStream = opts.stream ?? 'data-order';
    this.binarizeStream = opts.stream === undefined ? 'binarize' : `${opts.stream}-binarize`;
    if (this.batchesPerEpoch() === 0) {
      throw new ConfigError(
        this.n === 0
          ? `${where}: the split is empty`
          : `${where}: no batch to draw: ${this.n} examples, batchSize ${batchSize} and dropLast`,
      );
    }
  }

  /** Batches in one epoch: floor(n / B) with dropLast, ceil(n / B) without. */
  batchesPerEpoch(): number {
    const b = this.opts.batchSize;
    return this.opts.dropLast ? Math.floor(this.n / b) : Math.ceil(this.n / b);
  }

  /** The visiting order of `epoch`: row indices into the split. Shape: [n]. Do not modify. */
  order(epoch: number): Int32Array {
    if (!Number.isInteger(epoch) || epoch < 0) {
      throw new RangeError(`Batcher.order: epoch must be a non-negative integer; got ${epoch}`);
    }
    if (!this.opts.shuffle) {
      if (!this.cachedOrder) this.cachedOrder = Int32Array.from({ length: this.n }, (_, i) => i);
      return this.cachedOrder;
    }
    if (this.cachedEpoch !== epoch || !this.cachedOrder) {
      this.cachedOrder = Rng.derive(this.opts.seed, this.orderStream, epoch).permutation(this.n);
      this.cachedEpoch = epoch;
    }
    return this.cachedOrder;
  }

  /**
   * Batch `index` of `epoch`. Shapes: x [size, dim], y [size, numClasses] (null when
   * numClasses is 0), labels and indices [size]. The caller disposes x and y.
   */
  batch(epoch: number, index: number): Batch {
    const count = this.batchesPerEpoch();
    if (!Number.isInteger(index) || index < 0 || index >= count) {
      throw new RangeError(`Batcher.batch: index must be an integer in [0, ${count}); got ${index}`);
    }
    const order = this.order(epoch);
    const B = this.opts.batchSize;
    const dim = this.dim;
    const start = index * B;
    let indices = order.slice(start, start + Math.min(B, this.n - start));
    if (this.rows) indices = indices.map((i) => this.rows![i]);
    if (this.labelledRows) indices = Int32Array.from([...indices, ...this.labelledFor(epoch * count + index)]);
    const size = indices.length;
    // A fresh array per batch, owned by the tensor from then on: the cpu backend keeps a
    // reference to the values it is given instead of copying them, so a buffer reused across
    // batches would silently rewrite tensors the caller still holds.
    const x = new Float32Array(size * dim);
    const labels = new Int32Array(size);
    const src = this.split.x;
    for (let j = 0; j < size; j++) {
      const row = indices[j];
      x.set(src.subarray(row * dim, (row + 1) * dim), j * dim);
      labels[j] = this.split.labels[row];
    }
    if (this.opts.dynamicBinarize) {
      const rng = Rng.derive(this.opts.seed, this.binarizeStream, epoch, index);
      for (let k = 0; k < x.length; k++) x[k] = rng.uniform() < x[k] ? 1 : 0;
    }
    let y: tf.Tensor2D | null = null;
    if (this.numClasses > 0) {
      const oneHot = new Float32Array(size * this.numClasses);
      for (let j = 0; j < size; j++) {
        const label = labels[j];
        // Unlabelled examples (-1) keep an all-zero row.
        if (label >= 0 && label < this.numClasses) oneHot[j * this.numClasses + label] = 1;
      }
      y = tf.tensor2d(oneHot, [size, this.numClasses], 'float32');
    }
    return { x: tf.tensor2d(x, [size, dim], 'float32'), y, labels, indices, size };
  }

  /** The labelled rows appended at global step t (see BatcherOptions.labelled). */
  private labelledFor(t: number): number[] {
    const L = this.opts.labelled!;
    const lab = this.labelledRows!;
    const out: number[] = [];
    for (let q = t * L; q < (t + 1) * L; q++) {
      const cycle = Math.floor(q / lab.length);
      let ord = this.labelledOrders.get(cycle);
      if (!ord) {
        ord = Rng.derive(this.opts.seed, `${this.orderStream}-labelled`, cycle).permutation(lab.length);
        // keep the cycles of the current neighbourhood only
        if (this.labelledOrders.size > 4) this.labelledOrders.clear();
        this.labelledOrders.set(cycle, ord);
      }
      out.push(lab[ord[q % lab.length]]);
    }
    return out;
  }

  /** The batches of `epoch` from `startIndex` on, created lazily one at a time. */
  *epoch(epoch: number, startIndex = 0): Generator<Batch> {
    const count = this.batchesPerEpoch();
    if (!Number.isInteger(startIndex) || startIndex < 0 || startIndex > count) {
      throw new RangeError(`Batcher.epoch: startIndex must be an integer in [0, ${count}]; got ${startIndex}`);
    }
    for (let i = startIndex; i < count; i++) yield this.batch(epoch, i);
  }
}
