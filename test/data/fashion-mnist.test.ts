import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import { DataError } from '../../core/errors';
import {
  DEFAULT_DATA_OPTIONS,
  FASHION_MNIST_DEFAULT_DIR,
  FASHION_MNIST_FILES,
  loadDataset,
} from '../../core/data';
import { expectThrowExact, idxBytes, makeTempDir, removeDir, skipBecause } from './helpers';

const installed = Object.values(FASHION_MNIST_FILES).every((f) => fs.existsSync(path.join(FASHION_MNIST_DEFAULT_DIR, f)));

describe('Fashion-MNIST', () => {
  it('Should load 60 000 + 10 000 images of 28×28×1 from the Debian package', function () {
    if (!installed) skipBecause(this, `Debian's dataset-fashion-mnist is not installed (no ${FASHION_MNIST_DEFAULT_DIR})`);
    const ds = loadDataset({ ...DEFAULT_DATA_OPTIONS, use: 'fashion-mnist', validationSize: 5000 }, 0);
    expect([ds.name, ds.kind, ds.shape, ds.numClasses]).to.deep.equal(['fashion-mnist', 'image', [28, 28, 1], 10]);
    expect([ds.train.n, ds.validation?.n, ds.test.n]).to.deep.equal([55000, 5000, 10000]);
    // The first test image of Fashion-MNIST is an ankle boot (class 9).
    expect(ds.test.labels[0]).to.equal(9);
    let min = Infinity;
    let max = -Infinity;
    for (const v of ds.test.x) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
    expect([min, max]).to.deep.equal([0, 1]);
  });

  it('Should name the Debian package when the default folder is missing', function () {
    if (installed) skipBecause(this, `Debian's dataset-fashion-mnist is installed, so ${FASHION_MNIST_DEFAULT_DIR} exists`);
    expectThrowExact(
      () => loadDataset({ ...DEFAULT_DATA_OPTIONS, use: 'fashion-mnist' }, 0),
      DataError,
      `data.use: fashion-mnist: no data at ${FASHION_MNIST_DEFAULT_DIR} (expected train-images-idx3-ubyte.gz, ` +
        'train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz). ' +
        "Install Debian's package with: sudo apt-get install dataset-fashion-mnist, or set data.dir",
    );
  });

  describe('from data.dir', () => {
    let dir = '';
    beforeEach(() => {
      dir = makeTempDir('fashion');
    });
    afterEach(() => removeDir(dir));

    it('Should name the files and the Debian package when data.dir is empty', () => {
      expectThrowExact(
        () => loadDataset({ ...DEFAULT_DATA_OPTIONS, use: 'fashion-mnist', dir }, 0),
        DataError,
        `data.dir: fashion-mnist: no data at ${dir} (expected train-images-idx3-ubyte.gz, ` +
          'train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz). ' +
          "Put the files there, or leave data.dir empty and install Debian's package with: sudo apt-get install dataset-fashion-mnist",
      );
    });

    it('Should load gzipped and plain files alike, and list only the missing ones', () => {
      // 2 training images of 2×3 and 1 test image; grey levels 0, 51, ..., 255 = 0, 0.2, ..., 1.
      fs.writeFileSync(path.join(dir, 'train-images-idx3-ubyte.gz'), zlib.gzipSync(idxBytes([2, 2, 3], [0, 51, 102, 153, 204, 255, 255, 0, 0, 0, 0, 0])));
      fs.writeFileSync(path.join(dir, 'train-labels-idx1-ubyte'), idxBytes([2], [3, 9]));
      fs.writeFileSync(path.join(dir, 't10k-images-idx3-ubyte'), idxBytes([1, 2, 3], [1, 2, 3, 4, 5, 6]));
      const opts = { ...DEFAULT_DATA_OPTIONS, use: 'fashion-mnist', dir };
      expectThrowExact(
        () => loadDataset(opts, 0),
        DataError,
        `data.dir: fashion-mnist: incomplete data at ${dir} (missing t10k-labels-idx1-ubyte.gz). ` +
          "Put the files there, or leave data.dir empty and install Debian's package with: sudo apt-get install dataset-fashion-mnist",
      );
      fs.writeFileSync(path.join(dir, 't10k-labels-idx1-ubyte.gz'), zlib.gzipSync(idxBytes([1], [4])));
      const ds = loadDataset(opts, 0);
      expect([ds.shape, ds.dim, ds.train.n, ds.test.n]).to.deep.equal([[2, 3, 1], 6, 2, 1]);
      expect(Array.from(ds.train.x.subarray(0, 6))).to.deep.equal([0, 0.2, 0.4, 0.6, 0.8, 1].map(Math.fround));
      expect(Array.from(ds.train.labels)).to.deep.equal([3, 9]);
    });

    it('Should reject labels outside 0..9 and label counts that differ from image counts', () => {
      fs.writeFileSync(path.join(dir, 'train-images-idx3-ubyte'), idxBytes([2, 1, 1], [0, 0]));
      fs.writeFileSync(path.join(dir, 'train-labels-idx1-ubyte'), idxBytes([2], [1, 10]));
      fs.writeFileSync(path.join(dir, 't10k-images-idx3-ubyte'), idxBytes([1, 1, 1], [0]));
      fs.writeFileSync(path.join(dir, 't10k-labels-idx1-ubyte'), idxBytes([2], [0, 0]));
      const opts = { ...DEFAULT_DATA_OPTIONS, use: 'fashion-mnist', dir };
      const labels = path.join(dir, 'train-labels-idx1-ubyte');
      expectThrowExact(() => loadDataset(opts, 0), DataError, `${labels}: label 10 at index 1 is outside [0, 10)`);
      fs.writeFileSync(labels, idxBytes([2], [1, 2]));
      expectThrowExact(
        () => loadDataset(opts, 0),
        DataError,
        `${path.join(dir, 't10k-labels-idx1-ubyte')}: has 2 labels but ${path.join(dir, 't10k-images-idx3-ubyte')} has 1 images`,
      );
    });
  });
});
