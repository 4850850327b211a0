import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError } from '../../core/errors';
import { Batcher, type BatcherOptions, DEFAULT_DATA_OPTIONS, type DataSplit, type Dataset, type DatasetInfo, loadDataset } from '../../core/data';
import { expectThrowExact } from './helpers';

// A toy split whose rows name themselves: row i is [10i, 10i + 1, 10i + 2]; label i % 4, row 5 unlabelled.
const N = 103;
const DIM = 3;
const toy: DataSplit = {
  x: Float32Array.from({ length: N * DIM }, (_, k) => 10 * Math.floor(k / DIM) + (k % DIM)),
  labels: Int32Array.from({ length: N }, (_, i) => (i === 5 ? -1 : i % 4)),
  n: N,
};
const toyInfo: DatasetInfo = { name: 'toy', dim: DIM, numClasses: 4, kind: 'vector' };
const opts = (o: Partial<BatcherOptions> = {}): BatcherOptions => ({
  batchSize: 10,
  shuffle: true,
  seed: 0,
  dynamicBinarize: false,
  dropLast: false,
  ...o,
});

/** Host copies of a batch, with its tensors disposed. */
function take(b: ReturnType<Batcher['batch']>) {
  const out = {
    x: Array.from(b.x.dataSync()),
    y: b.y ? Array.from(b.y.dataSync()) : null,
    labels: Array.from(b.labels),
    indices: Array.from(b.indices),
    size: b.size,
  };
  b.x.dispose();
  b.y?.dispose();
  return out;
}

const epochIndices = (batcher: Batcher, e: number) => [...batcher.epoch(e)].flatMap((b) => take(b).indices);

describe('Batcher', () => {
  it('Should visit every example exactly once per epoch, in batches of B and a smaller last one', () => {
    const batcher = new Batcher(toy, toyInfo, opts());
    expect(batcher.batchesPerEpoch()).to.equal(11); // ceil(103 / 10)
    const sizes: number[] = [];
    const seen: number[] = [];
    for (const b of batcher.epoch(2)) {
      const t = take(b);
      sizes.push(t.size);
      seen.push(...t.indices);
    }
    expect(sizes).to.deep.equal([10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 3]);
    expect([...seen].sort((a, b) => a - b)).to.deep.equal(Array.from({ length: N }, (_, i) => i));
  });

  it('Should fill x, labels and one-hot y from the rows named by indices', () => {
    const t = take(new Batcher(toy, toyInfo, opts()).batch(0, 0));
    expect(t.x).to.deep.equal(t.indices.flatMap((i) => [10 * i, 10 * i + 1, 10 * i + 2]));
    expect(t.labels).to.deep.equal(t.indices.map((i) => toy.labels[i]));
    const expectedY = t.labels.flatMap((l) => [0, 1, 2, 3].map((c) => (c === l ? 1 : 0))); // -1 gives a zero row
    expect(t.y).to.deep.equal(expectedY);
  });

  it('Should give the unlabelled example an all-zero one-hot row', () => {
    const batcher = new Batcher(toy, toyInfo, opts({ shuffle: false }));
    const t = take(batcher.batch(0, 0)); // rows 0..9 in order; row 5 is unlabelled
    expect(t.labels[5]).to.equal(-1);
    expect(t.y!.slice(5 * 4, 6 * 4)).to.deep.equal([0, 0, 0, 0]);
  });

  it('Should return batch(e, i) equal to the i-th batch of epoch(e), also from a new Batcher (resume)', () => {
    const a = new Batcher(toy, toyInfo, opts({ seed: 7 }));
    const fromEpoch = [...a.epoch(3)].map(take);
    const resumed = new Batcher(toy, toyInfo, opts({ seed: 7 }));
    resumed.batch(0, 1); // another epoch cached in between must not matter
    for (const i of [6, 0, 10, 4]) expect(take(resumed.batch(3, i))).to.deep.equal(fromEpoch[i]);
    expect([...resumed.epoch(3, 8)].map(take)).to.deep.equal(fromEpoch.slice(8));
  });

  it('Should shuffle each epoch differently, per seed and per stream, and not at all without shuffle', () => {
    const a = new Batcher(toy, toyInfo, opts());
    const e0 = epochIndices(a, 0);
    expect(epochIndices(a, 1)).to.not.deep.equal(e0);
    expect(epochIndices(new Batcher(toy, toyInfo, opts()), 0)).to.deep.equal(e0);
    expect(epochIndices(new Batcher(toy, toyInfo, opts({ seed: 1 })), 0)).to.not.deep.equal(e0);
    expect(epochIndices(new Batcher(toy, toyInfo, opts({ stream: 'validation-order' })), 0)).to.not.deep.equal(e0);
    const plain = new Batcher(toy, toyInfo, opts({ shuffle: false }));
    expect(epochIndices(plain, 4)).to.deep.equal(Array.from({ length: N }, (_, i) => i));
  });

  it('Should drop the short last batch with dropLast, leaving out different examples each epoch', () => {
    const batcher = new Batcher(toy, toyInfo, opts({ dropLast: true }));
    expect(batcher.batchesPerEpoch()).to.equal(10); // floor(103 / 10)
    const e0 = [...batcher.epoch(0)].map(take);
    expect(e0.map((t) => t.size)).to.deep.equal(new Array(10).fill(10));
    const e1 = epochIndices(batcher, 1);
    const left = (seen: number[]) => Array.from({ length: N }, (_, i) => i).filter((i) => !seen.includes(i));
    expect(left(e0.flatMap((t) => t.indices))).to.have.length(3);
    expect(left(e1)).to.not.deep.equal(left(e0.flatMap((t) => t.indices)));
  });

  it('Should give y = null when the data set has no classes', () => {
    const batcher = new Batcher(toy, { ...toyInfo, numClasses: 0 }, opts());
    expect(take(batcher.batch(0, 0)).y).to.equal(null);
  });

  it('Should not leak tensors once the caller disposes each batch', () => {
    const batcher = new Batcher(toy, toyInfo, opts());
    take(batcher.batch(0, 0)); // warm-up
    const before = tf.memory().numTensors;
    for (const b of batcher.epoch(1)) {
      b.x.dispose();
      b.y?.dispose();
    }
    expect(tf.memory().numTensors).to.equal(before);
  });

  it('Should leave earlier batch tensors intact while later batches are drawn', () => {
    // Guards against reusing one host buffer: the cpu backend keeps the array it was given.
    const batcher = new Batcher(toy, toyInfo, opts());
    const first = batcher.batch(0, 0);
    const expected = Array.from(first.indices).flatMap((i) => [10 * i, 10 * i + 1, 10 * i + 2]);
    for (let i = 1; i < 10; i++) take(batcher.batch(0, i));
    expect(Array.from(first.x.dataSync())).to.deep.equal(expected);
    first.x.dispose();
    first.y?.dispose();
  });

  describe('errors', () => {
    it('Should reject a batchSize that is not a positive integer', () => {
      expectThrowExact(() => new Batcher(toy, toyInfo, opts({ batchSize: 0 })), ConfigError, 'Batcher(toy): batchSize must be a positive integer; got 0');
    });

    it('Should reject dropLast when the split is smaller than one batch', () => {
      expectThrowExact(
        () => new Batcher(toy, toyInfo, opts({ batchSize: 128, dropLast: true })),
        ConfigError,
        'Batcher(toy): no batch to draw: 103 examples, batchSize 128 and dropLast',
      );
    });

    it('Should reject dynamic binarisation of vector data', () => {
      expectThrowExact(
        () => new Batcher(toy, toyInfo, opts({ dynamicBinarize: true })),
        ConfigError,
        'Batcher(toy): dynamic binarisation needs image data with values in [0, 1]; got vector data (set data.binarize to "none")',
      );
    });

    it('Should reject a batch index outside the epoch', () => {
      const batcher = new Batcher(toy, toyInfo, opts());
      expectThrowExact(() => batcher.batch(0, 11), RangeError, 'Batcher.batch: index must be an integer in [0, 11); got 11');
      expectThrowExact(() => batcher.batch(-1, 0), RangeError, 'Batcher.order: epoch must be a non-negative integer; got -1');
    });
  });

  describe('dynamic binarisation', () => {
    // 1000 MNIST test digits (cached after the first load), in split order so that epochs
    // differ only in their binarisation noise.
    let mnist: Dataset;
    let info: DatasetInfo;
    const binOpts = opts({ batchSize: 500, shuffle: false, dynamicBinarize: true });
    before(() => {
      mnist = loadDataset({ ...DEFAULT_DATA_OPTIONS, use: 'mnist', trainLimit: 1, testLimit: 1000 }, 0);
      info = mnist;
    });

    it('Should draw the same bits for the same (seed, epoch, index) and new bits for another epoch', () => {
      const a = take(new Batcher(mnist.test, info, binOpts).batch(2, 1));
      const b = take(new Batcher(mnist.test, info, binOpts).batch(2, 1));
      const c = take(new Batcher(mnist.test, info, binOpts).batch(3, 1));
      const d = take(new Batcher(mnist.test, info, { ...binOpts, seed: 1 }).batch(2, 1));
      expect(b.x).to.deep.equal(a.x);
      expect(c.indices).to.deep.equal(a.indices);
      expect(c.x).to.not.deep.equal(a.x);
      expect(d.x).to.not.deep.equal(a.x);
    });

    it('Should give bits in {0, 1} whose mean matches the mean grey level within 4 standard errors', () => {
      const batcher = new Batcher(mnist.test, info, binOpts);
      const t = take(batcher.batch(0, 0));
      const grey = mnist.test.x.subarray(0, 500 * 784);
      let ones = 0;
      let other = 0;
      let flipped = 0;
      let sumGrey = 0;
      let variance = 0;
      for (let k = 0; k < t.x.length; k++) {
        const g = grey[k];
        if (t.x[k] === 1) ones++;
        else if (t.x[k] !== 0) other++;
        if ((g === 0 && t.x[k] !== 0) || (g === 1 && t.x[k] !== 1)) flipped++; // 0 and 1 are certain
        sumGrey += g;
        variance += g * (1 - g); // Var of one Bernoulli(g) draw
      }
      expect([other, flipped]).to.deep.equal([0, 0]);
      // Sum of independent Bernoulli(g_k): mean sum(g), sd sqrt(sum g(1-g)); compare on the mean scale.
      const n = t.x.length;
      expect(Math.abs(ones / n - sumGrey / n)).to.be.below((4 * Math.sqrt(variance)) / n);
    });
  });

  describe('labelled rows appended to every batch (data.labelledBatchSize)', () => {
    // 30 rows: the 6 of rows % 5 == 0 labelled, the 24 others unlabelled
    const M = 30;
    const semi: DataSplit = {
      x: Float32Array.from({ length: M * DIM }, (_, k) => 10 * Math.floor(k / DIM) + (k % DIM)),
      labels: Int32Array.from({ length: M }, (_, i) => (i % 5 === 0 ? (i / 5) % 4 : -1)),
      n: M,
    };
    const labelled = [0, 5, 10, 15, 20, 25];

    it('Should make the epoch of the unlabelled rows, each batch followed by L labelled rows that cycle through the labelled subset', () => {
      const b = new Batcher(semi, toyInfo, opts({ batchSize: 8, labelled: 4 }));
      expect(b.n).to.equal(24);
      expect(b.batchesPerEpoch()).to.equal(3);
      const batches = [0, 1].flatMap((e) => [...b.epoch(e)].map(take));
      for (const t of batches) {
        expect(t.size).to.equal(12);
        expect(t.indices.slice(0, 8).every((i) => semi.labels[i] < 0)).to.equal(true);
        expect(t.indices.slice(8).every((i) => semi.labels[i] >= 0)).to.equal(true);
        expect(t.x).to.deep.equal(t.indices.flatMap((i) => [10 * i, 10 * i + 1, 10 * i + 2]));
      }
      // each epoch visits every unlabelled row once
      for (const e of [0, 1]) {
        const seen = batches.slice(3 * e, 3 * e + 3).flatMap((t) => t.indices.slice(0, 8));
        expect([...seen].sort((x, y) => x - y)).to.deep.equal(Array.from({ length: M }, (_, i) => i).filter((i) => i % 5 !== 0));
      }
      // the labelled rows of 6 steps (24 = 4 cycles of 6): every cycle is a permutation of the subset
      const lab = batches.flatMap((t) => t.indices.slice(8));
      for (let c = 0; c < 4; c++) expect([...lab.slice(6 * c, 6 * c + 6)].sort((x, y) => x - y)).to.deep.equal(labelled);
      // and the cycles are drawn afresh, not one order repeated
      expect(new Set([0, 1, 2, 3].map((c) => lab.slice(6 * c, 6 * c + 6).join(','))).size).to.be.above(1);
    });

    it('Should give the same batch for the same (epoch, index) from a fresh batcher, as a resumed run needs', () => {
      const a = new Batcher(semi, toyInfo, opts({ batchSize: 8, labelled: 4 }));
      const first = [...a.epoch(1)].map(take);
      const b = new Batcher(semi, toyInfo, opts({ batchSize: 8, labelled: 4 }));
      expect(take(b.batch(1, 2))).to.deep.equal(first[2]);
    });

    it('Should refuse appended labelled rows when the split has none, or has no unlabelled rows', () => {
      const none: DataSplit = { ...semi, labels: new Int32Array(M).fill(-1) };
      expectThrowExact(() => new Batcher(none, toyInfo, opts({ labelled: 4 })), ConfigError, 'data.labelledBatchSize: 4 labelled examples per batch, but the training split of toy has no labelled example (set data.labelledSize)');
      const all: DataSplit = { ...semi, labels: new Int32Array(M).fill(1) };
      expectThrowExact(() => new Batcher(all, toyInfo, opts({ labelled: 4 })), ConfigError, 'data.labelledBatchSize: every training example of toy is labelled, so the batches have no unlabelled part; set data.labelledSize below the training size, or data.labelledBatchSize to 0');
    });
  });
});
