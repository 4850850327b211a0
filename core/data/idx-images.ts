/**
 * Shared loader of MNIST-style folders: four IDX files (train/test × images/labels) of unsigned
 * bytes, each gzipped or not. Used by `mnist.ts` and `fashion-mnist.ts`.
 */
import * as fs from 'fs';
import * as path from 'path';
import { DataError } from '../errors';
import { type IdxArray, readIdx } from './idx';
import type { DataSplit, Dataset } from './types';

/** The four files of an MNIST-style folder, by their usual names (with or without `.gz`). */
export interface IdxImageFiles {
  trainImages: string;
  trainLabels: string;
  testImages: string;
  testLabels: string;
}

/** Where and what to load. */
export interface IdxImageSource {
  /** Data set name, used in messages and as `Dataset.name`. */
  name: string;
  /** Folder holding the files. */
  dir: string;
  /** Config key to blame when the folder lacks files: 'data.dir' when the user set it, else 'data.use'. */
  key: string;
  /** File names as listed in messages; the same name with `.gz` added or removed is accepted too. */
  files: IdxImageFiles;
  /** Number of classes; every label must be in [0, numClasses). */
  numClasses: number;
  /** What to tell the user when files are missing (one sentence, no final period). */
  missingHint: string;
  /** Keep only the first N training / test examples; 0 = all. */
  trainLimit: number;
  testLimit: number;
}

function alternative(name: string): string {
  return name.endsWith('.gz') ? name.slice(0, -3) : `${name}.gz`;
}

/** The path of each file in `dir` (trying `name` then its `.gz` twin), or the names not found. */
function locate(dir: string, files: IdxImageFiles): { found: IdxImageFiles | null; missing: string[] } {
  const found: Partial<IdxImageFiles> = {};
  const missing: string[] = [];
  for (const role of ['trainImages', 'trainLabels', 'testImages', 'testLabels'] as const) {
    const name = files[role];
    const hit = [name, alternative(name)].map((n) => path.join(dir, n)).find((p) => fs.existsSync(p));
    if (hit) found[role] = hit;
    else missing.push(name);
  }
  return { found: missing.length === 0 ? (found as IdxImageFiles) : null, missing };
}

/** Converts the first `limit` images (0 = all) and their labels into a split with x in [0, 1]. */
function toSplit(
  images: IdxArray,
  labels: IdxArray,
  imagesFile: string,
  labelsFile: string,
  numClasses: number,
  limit: number,
): DataSplit {
  const total = images.dims[0];
  if (labels.dims.length !== 1) {
    throw new DataError(`${labelsFile}: labels must be a 1-D IDX array; got ${labels.dims.join('×')}`);
  }
  if (labels.dims[0] !== total) {
    throw new DataError(`${labelsFile}: has ${labels.dims[0]} labels but ${imagesFile} has ${total} images`);
  }
  const n = limit > 0 ? Math.min(limit, total) : total;
  const dim = images.dims.slice(1).reduce((p, d) => p * d, 1);
  const x = new Float32Array(n * dim);
  const src = images.data;
  for (let i = 0; i < x.length; i++) x[i] = src[i] / 255;
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const label = labels.data[i];
    if (label >= numClasses) {
      throw new DataError(`${labelsFile}: label ${label} at index ${i} is outside [0, ${numClasses})`);
    }
    y[i] = label;
  }
  return { x, labels: y, n };
}

/** Image shape [H, W, C] of an IDX image array [n, H, W] or [n, H, W, C]. */
function imageShape(images: IdxArray, file: string): [number, number, number] {
  const d = images.dims;
  if (d.length === 3) return [d[1], d[2], 1];
  if (d.length === 4) return [d[1], d[2], d[3]];
  throw new DataError(`${file}: images must be [n, H, W] or [n, H, W, C]; got ${d.join('×')}`);
}

/** Loads an MNIST-style folder as an image data set without a validation split. */
export function loadIdxImages(src: IdxImageSource): Dataset {
  const { found, missing } = locate(src.dir, src.files);
  if (!found) {
    const all = Object.values(src.files);
    const what =
      missing.length === all.length
        ? `no data at ${src.dir} (expected ${all.join(', ')})`
        : `incomplete data at ${src.dir} (missing ${missing.join(', ')})`;
    throw new DataError(`${src.key}: ${src.name}: ${what}. ${src.missingHint}`);
  }
  const trainImages = readIdx(found.trainImages);
  const testImages = readIdx(found.testImages);
  const shape = imageShape(trainImages, found.trainImages);
  const testShape = imageShape(testImages, found.testImages);
  if (testShape.join() !== shape.join()) {
    throw new DataError(
      `${found.testImages}: images are ${testShape.join('×')} but the training images ` +
        `(${found.trainImages}) are ${shape.join('×')}`,
    );
  }
  const train = toSplit(
    trainImages,
    readIdx(found.trainLabels),
    found.trainImages,
    found.trainLabels,
    src.numClasses,
    src.trainLimit,
  );
  const test = toSplit(
    testImages,
    readIdx(found.testLabels),
    found.testImages,
    found.testLabels,
    src.numClasses,
    src.testLimit,
  );
  return {
    name: src.name,
    shape,
    dim: shape[0] * shape[1] * shape[2],
    numClasses: src.numClasses,
    train,
    validation: null,
    test,
    kind: 'image',
  };
}
