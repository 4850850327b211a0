import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { ConfigError } from '../../core/errors';
import { DEFAULT_DATA_OPTIONS, type DataOptions, loadDataset, splitOf } from '../../core/data';
import { expectThrowExact, idxBytes, makeTempDir, removeDir } from './helpers';

const mnist = (o: Partial<DataOptions>): DataOptions => ({ ...DEFAULT_DATA_OPTIONS, use: 'mnist', ...o });
const mixture = (o: Partial<DataOptions>): DataOptions => ({
  ...DEFAULT_DATA_OPTIONS,
  use: 'synthetic',
  synthetic: { kind: 'mixture2d', size: 500 },
  ...o,
});

const rowKey = (x: Float32Array, dim: number, i: number) => Array.from(x.subarray(i * dim, (i + 1) * dim)).join(',');

describe('loadDataset', () => {
  describe('validation split', () => {
    it('Should carve validationSize examples from train, disjoint from the rest, covering all of it', () => {
      const whole = loadDataset(mixture({}), 0);
      const ds = loadDataset(mixture({ validationSize: 100 }), 0);
      const val = splitOf(ds, 'validation');
      expect([ds.train.n, val.n, ds.test.n]).to.deep.equal([400, 100, whole.test.n]);
      // mixture2d points are distinct floats, so a row's values identify it.
      const rest = new Set(Array.from({ length: ds.train.n }, (_, i) => rowKey(ds.train.x, 2, i)));
      const valRows = Array.from({ length: val.n }, (_, i) => rowKey(val.x, 2, i));
      expect(valRows.filter((k) => rest.has(k))).to.deep.equal([]);
      const all = Array.from({ length: whole.train.n }, (_, i) => rowKey(whole.train.x, 2, i)).sort();
      expect([...rest, ...valRows].sort()).to.deep.equal(all);
    });

    it('Should keep labels with their examples', () => {
      const whole = loadDataset(mixture({}), 0);
      const ds = loadDataset(mixture({ validationSize: 100 }), 0);
      const labelOf = new Map(Array.from({ length: whole.train.n }, (_, i) => [rowKey(whole.train.x, 2, i), whole.train.labels[i]]));
      const val = splitOf(ds, 'validation');
      for (let i = 0; i < val.n; i++) expect(val.labels[i]).to.equal(labelOf.get(rowKey(val.x, 2, i)));
    });

    it('Should choose the same validation examples for the same seed and others for another seed', () => {
      const a = loadDataset(mnist({ trainLimit: 1000, testLimit: 1, validationSize: 200 }), 0);
      const b = loadDataset(mnist({ trainLimit: 1000, testLimit: 1, validationSize: 200 }), 0);
      const c = loadDataset(mnist({ trainLimit: 1000, testLimit: 1, validationSize: 200 }), 1);
      expect([a.train.n, a.validation?.n]).to.deep.equal([800, 200]);
      expect(Array.from(b.validation!.x)).to.deep.equal(Array.from(a.validation!.x));
      expect(Array.from(b.train.labels)).to.deep.equal(Array.from(a.train.labels));
      expect(Array.from(c.validation!.x)).to.not.deep.equal(Array.from(a.validation!.x));
    });

    it('Should reject a validationSize that leaves no training example', () => {
      expectThrowExact(
        () => loadDataset(mnist({ trainLimit: 1000, validationSize: 1000 }), 0),
        ConfigError,
        'data.validationSize: must be less than the number of training examples of mnist (1000 with data.trainLimit = 1000); got 1000',
      );
      expectThrowExact(
        () => loadDataset(mixture({ validationSize: 600 }), 0),
        ConfigError,
        'data.validationSize: must be less than the number of training examples of synthetic/mixture2d (500); got 600',
      );
    });

    it('Should say that there is no validation split when validationSize is 0', () => {
      const ds = loadDataset(mixture({}), 0);
      expect(splitOf(ds, 'train')).to.equal(ds.train);
      expect(splitOf(ds, 'test')).to.equal(ds.test);
      expectThrowExact(
        () => splitOf(ds, 'validation'),
        ConfigError,
        'data.validationSize: synthetic/mixture2d has no validation split (data.validationSize = 0); set it above 0',
      );
    });
  });

  describe('static binarisation', () => {
    it('Should turn every split into x > threshold ? 1 : 0', () => {
      const grey = loadDataset(mnist({ trainLimit: 500, testLimit: 100, validationSize: 100 }), 0);
      const bin = loadDataset(mnist({ trainLimit: 500, testLimit: 100, validationSize: 100, binarize: 'static', threshold: 0.3 }), 0);
      for (const name of ['train', 'validation', 'test'] as const) {
        const g = splitOf(grey, name).x;
        const b = splitOf(bin, name).x;
        expect(b.length).to.equal(g.length);
        let wrong = 0;
        for (let i = 0; i < b.length; i++) if (b[i] !== (g[i] > 0.3 ? 1 : 0)) wrong++;
        expect(wrong, name).to.equal(0);
      }
    });

    it('Should leave the cached raw data untouched (grey levels again on the next load)', () => {
      loadDataset(mnist({ trainLimit: 50, testLimit: 1, binarize: 'static' }), 0);
      const grey = loadDataset(mnist({ trainLimit: 50, testLimit: 1 }), 0);
      expect(Array.from(grey.train.x).some((v) => v > 0 && v < 1)).to.equal(true);
    });

    it('Should refuse to binarise vector data', () => {
      expectThrowExact(
        () => loadDataset(mixture({ binarize: 'static' }), 0),
        ConfigError,
        'data.binarize: "static" needs image data with values in [0, 1]; synthetic/mixture2d is vector data. Allowed values for it: "none"',
      );
    });
  });

  describe('config errors', () => {
    it('Should reject an unknown data.use with the allowed values and a suggestion', () => {
      expectThrowExact(
        () => loadDataset(mnist({ use: 'mnsit' }), 0),
        ConfigError,
        'data.use: unknown data set "mnsit". Allowed values: "dsprites", "fashion-mnist", "mnist", "synthetic". Did you mean "mnist"?',
      );
    });

    it('Should list every invalid data.* value at once', () => {
      const bad = mnist({ binarize: 'statik' as DataOptions['binarize'], threshold: 2, trainLimit: -1, validationSize: 1.5 });
      expectThrowExact(
        () => loadDataset(bad, 0),
        ConfigError,
        [
          '4 problems',
          '  - data.binarize: unknown binarisation mode "statik". Allowed values: "none", "static", "dynamic". Did you mean "static"?',
          '  - data.threshold: must be a number in [0, 1]; got 2',
          '  - data.validationSize: must be a non-negative integer (0 = no validation split); got 1.5',
          '  - data.trainLimit: must be a non-negative integer (0 = all); got -1',
        ].join('\n'),
      );
    });
  });
});

describe('loadDataset: data.labelledSize (semi-supervised label subsets)', () => {
  const shapes = (o: Partial<DataOptions>): DataOptions => ({ ...DEFAULT_DATA_OPTIONS, use: 'synthetic', synthetic: { kind: 'shapes', size: 200 }, ...o });
  const counts = (labels: Int32Array) => {
    const c: Record<number, number> = {};
    for (const l of labels) c[l] = (c[l] ?? 0) + 1;
    return c;
  };

  it('Should keep labelledSize / numClasses labels per class and mark every other training example unlabelled (-1)', () => {
    const whole = loadDataset(shapes({ validationSize: 40 }), 3);
    const ds = loadDataset(shapes({ validationSize: 40, labelledSize: 8 }), 3);
    // 8 labels over the 4 shape classes: 2 each; the other 160 - 8 = 152 training labels hidden.
    expect(counts(ds.train.labels)).to.deep.equal({ '-1': 152, 0: 2, 1: 2, 2: 2, 3: 2 });
    // Kept labels are the true ones, examples are untouched, and validation and test keep all labels.
    ds.train.labels.forEach((l, i) => {
      if (l >= 0) expect(l).to.equal(whole.train.labels[i]);
    });
    expect(Array.from(ds.train.x)).to.deep.equal(Array.from(whole.train.x));
    expect(Array.from(ds.validation!.labels)).to.deep.equal(Array.from(whole.validation!.labels));
    expect(Array.from(ds.test.labels)).to.deep.equal(Array.from(whole.test.labels));
  });

  it('Should choose the labelled subset from the seed: the same seed, the same subset; another seed, another', () => {
    const a = loadDataset(shapes({ labelledSize: 8 }), 1).train.labels;
    const b = loadDataset(shapes({ labelledSize: 8 }), 1).train.labels;
    const c = loadDataset(shapes({ labelledSize: 8 }), 2).train.labels;
    expect(Array.from(a)).to.deep.equal(Array.from(b));
    expect(Array.from(a)).to.not.deep.equal(Array.from(c));
  });

  it('Should refuse a size that is not a multiple of the classes, a class too small, and a negative size', () => {
    expectThrowExact(() => loadDataset(shapes({ labelledSize: 6 }), 0), ConfigError, 'data.labelledSize: must be a multiple of the 4 classes of synthetic/shapes (the same number per class); got 6');
    expectThrowExact(
      () => loadDataset(shapes({ labelledBatchSize: 10 }), 0),
      ConfigError,
      'data.labelledBatchSize: 10 labelled examples per batch need a labelled subset; set data.labelledSize (e.g. 100) or data.labelledBatchSize to 0',
    );
    expectThrowExact(
      () => loadDataset(shapes({ labelledSize: 4000 }), 0),
      ConfigError,
      `data.labelledSize: 4000 needs 1000 labelled examples per class, but class 0 of synthetic/shapes has ${counts(loadDataset(shapes({}), 0).train.labels)[0]} training examples; got 4000`,
    );
    expectThrowExact(() => loadDataset(shapes({ labelledSize: -4 }), 0), ConfigError, 'data.labelledSize: must be a non-negative integer (0 = every label kept); got -4');
  });
});

describe('loadDataset cache', () => {
  it('Should give the same arrays for the same options and seed, in split objects of its own, and build again for another seed', () => {
    const opts = mnist({ trainLimit: 1000, testLimit: 10, validationSize: 100 });
    const a = loadDataset(opts, 0);
    const b = loadDataset({ ...opts }, 0);
    expect(b.train.x).to.equal(a.train.x); // the same array: built once
    expect(b.validation!.x).to.equal(a.validation!.x);
    expect(b.train).to.not.equal(a.train);
    // What openSession does for dynamic binarisation: a new x for an evaluation split. The cache keeps the grey levels.
    b.validation!.x = new Float32Array(b.validation!.x.length);
    expect(loadDataset(opts, 0).validation!.x).to.equal(a.validation!.x);
    expect(loadDataset(opts, 1).validation!.x).to.not.equal(a.validation!.x);
  });

  it('Should build again when an IDX file it was read from changed', () => {
    const dir = makeTempDir('dataset-cache');
    try {
      // Two 2x2 training images and one test image, classes 0 and 1.
      const write = (first: number) => {
        fs.writeFileSync(path.join(dir, 'train-images-idx3-ubyte'), idxBytes([2, 2, 2], [first, 0, 0, 0, 255, 255, 255, 255]));
        fs.writeFileSync(path.join(dir, 'train-labels-idx1-ubyte'), idxBytes([2], [0, 1]));
        fs.writeFileSync(path.join(dir, 't10k-images-idx3-ubyte'), idxBytes([1, 2, 2], [0, 0, 0, 0]));
        fs.writeFileSync(path.join(dir, 't10k-labels-idx1-ubyte'), idxBytes([1], [0]));
      };
      write(0);
      const opts = mnist({ dir });
      expect(loadDataset(opts, 0).train.x[0]).to.equal(0);
      write(255);
      // Same size: the modification time tells them apart (set apart explicitly, as a fast disk may not).
      const later = new Date(Date.now() + 5000);
      fs.utimesSync(path.join(dir, 'train-images-idx3-ubyte'), later, later);
      expect(loadDataset(opts, 0).train.x[0]).to.equal(1); // 255 / 255
    } finally {
      removeDir(dir);
    }
  });
});
