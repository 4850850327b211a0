/**
 * Fashion-MNIST (Xiao, Rasul & Vollgraf 2017, https://arxiv.org/abs/1708.07747): Zalando article
 * images in MNIST's format, 60 000 training and 10 000 test images of 28×28×1 grey levels scaled
 * to [0, 1], labels 0-9 (T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker,
 * Bag, Ankle boot).
 *
 * Read from Debian's package `dataset-fashion-mnist`, which installs the four gzipped IDX files
 * in /usr/share/datasets/fashion-mnist, or from `data.dir` (gzipped or not).
 */
import { loadIdxImages, type IdxImageFiles } from './idx-images';
import type { DataOptions, Dataset } from './types';

/** Where Debian's `dataset-fashion-mnist` puts the files. */
export const FASHION_MNIST_DEFAULT_DIR = '/usr/share/datasets/fashion-mnist';

/** The Debian package that provides the files. */
export const FASHION_MNIST_DEBIAN_PACKAGE = 'dataset-fashion-mnist';

/** The Fashion-MNIST file names as Debian ships them (the uncompressed versions are accepted too). */
export const FASHION_MNIST_FILES: IdxImageFiles = {
  trainImages: 'train-images-idx3-ubyte.gz',
  trainLabels: 'train-labels-idx1-ubyte.gz',
  testImages: 't10k-images-idx3-ubyte.gz',
  testLabels: 't10k-labels-idx1-ubyte.gz',
};

/** Class names, by label. */
export const FASHION_MNIST_CLASSES = [
  'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
] as const;

/**
 * Loads Fashion-MNIST without a validation split.
 * Reads `dir`, `trainLimit` and `testLimit`. Shapes: train.x [60000, 784], test.x [10000, 784]
 * (fewer with limits).
 */
export function loadFashionMnist(opts: Pick<DataOptions, 'dir' | 'trainLimit' | 'testLimit'>): Dataset {
  return loadIdxImages({
    name: 'fashion-mnist',
    dir: opts.dir || FASHION_MNIST_DEFAULT_DIR,
    key: opts.dir ? 'data.dir' : 'data.use',
    files: FASHION_MNIST_FILES,
    numClasses: 10,
    missingHint: opts.dir
      ? `Put the files there, or leave data.dir empty and install Debian's package with: sudo apt-get install ${FASHION_MNIST_DEBIAN_PACKAGE}`
      : `Install Debian's package with: sudo apt-get install ${FASHION_MNIST_DEBIAN_PACKAGE}, or set data.dir`,
    trainLimit: opts.trainLimit,
    testLimit: opts.testLimit,
  });
}
