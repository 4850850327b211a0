/**
 * Small data sets generated in code, for tests and quick experiments. Everything is a pure
 * function of (seed, kind, size): the stream is Rng.derive(seed, 'synthetic'), forked once for
 * the training split and once for the test split, so the first k training examples do not
 * depend on `size`.
 *
 * - 'mixture2d' (kind 'vector', shape [1, 1, 2]): points from an equal-weight mixture of 4
 *   isotropic Gaussians with means (±2, ±2) and standard deviation 0.5; label = component.
 * - 'shapes' (kind 'image', shape [14, 14, 1]): one shape per image at a random position and
 *   size, drawn with a random grey level in [0.75, 1) on a black background; label = shape
 *   (0 horizontal bar, 1 vertical bar, 2 hollow square, 3 plus-shaped cross).
 */
import { ConfigError, unknownValueMessage } from '../errors';
import { Rng } from '../rng';
import type { DataSplit, Dataset, SyntheticOptions } from './types';

/** Allowed values of `data.synthetic.kind`. */
export const SYNTHETIC_KINDS = ['mixture2d', 'shapes'] as const;

/** Means of the mixture2d components, by label. */
export const MIXTURE2D_MEANS: readonly (readonly [number, number])[] = [
  [2, 2],
  [-2, 2],
  [-2, -2],
  [2, -2],
];

/** Standard deviation of each mixture2d component, per coordinate. */
export const MIXTURE2D_SCALE = 0.5;

/** Names of the shapes classes, by label. */
export const SHAPES_CLASSES = ['horizontal bar', 'vertical bar', 'square', 'cross'] as const;

/** Side of a shapes image. */
export const SHAPES_SIZE = 14;

/** Most training examples of a synthetic data set. */
export const MAX_SYNTHETIC_SIZE = 1_000_000;

/** Test examples generated for `size` training examples: round(size / 5), at least 1. */
export function syntheticTestSize(size: number): number {
  return Math.max(1, Math.round(size / 5));
}

function mixture2d(rng: Rng, n: number): DataSplit {
  const x = new Float32Array(n * 2);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const k = rng.int(MIXTURE2D_MEANS.length);
    labels[i] = k;
    x[2 * i] = MIXTURE2D_MEANS[k][0] + MIXTURE2D_SCALE * rng.normal();
    x[2 * i + 1] = MIXTURE2D_MEANS[k][1] + MIXTURE2D_SCALE * rng.normal();
  }
  return { x, labels, n };
}

/** Draws one shape of class `k` into `img` ([S, S], row-major) with grey level `v`. */
function drawShape(rng: Rng, img: Float32Array, k: number, v: number): void {
  const S = SHAPES_SIZE;
  const fill = (r0: number, c0: number, h: number, w: number) => {
    for (let r = r0; r < r0 + h; r++) for (let c = c0; c < c0 + w; c++) img[r * S + c] = v;
  };
  if (k === 0 || k === 1) {
    // A bar 6-11 pixels long and 2 thick, fully inside the image.
    const len = 6 + rng.int(6);
    const r = rng.int(S - 2 + 1);
    const c = rng.int(S - len + 1);
    if (k === 0) fill(r, c, 2, len);
    else fill(c, r, len, 2);
  } else if (k === 2) {
    // A 1-pixel outline of a square of side 5-9.
    const side = 5 + rng.int(5);
    const r = rng.int(S - side + 1);
    const c = rng.int(S - side + 1);
    fill(r, c, 1, side);
    fill(r + side - 1, c, 1, side);
    fill(r, c, side, 1);
    fill(r, c + side - 1, side, 1);
  } else {
    // A plus with arms of 2-4 pixels around its centre, 1 pixel thick.
    const arm = 2 + rng.int(3);
    const r = arm + rng.int(S - 2 * arm);
    const c = arm + rng.int(S - 2 * arm);
    fill(r, c - arm, 1, 2 * arm + 1);
    fill(r - arm, c, 2 * arm + 1, 1);
  }
}

function shapes(rng: Rng, n: number): DataSplit {
  const dim = SHAPES_SIZE * SHAPES_SIZE;
  const x = new Float32Array(n * dim);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const k = rng.int(SHAPES_CLASSES.length);
    labels[i] = k;
    const grey = 0.75 + 0.25 * rng.uniform();
    drawShape(rng, x.subarray(i * dim, (i + 1) * dim), k, grey);
  }
  return { x, labels, n };
}

/**
 * Generates a synthetic data set without a validation split.
 * Reads `data.synthetic.kind` and `data.synthetic.size`. Shapes: train.x [size, dim],
 * test.x [round(size / 5), dim], with dim 2 (mixture2d) or 196 (shapes).
 */
export function makeSynthetic(opts: SyntheticOptions, seed: number): Dataset {
  if (!(SYNTHETIC_KINDS as readonly string[]).includes(opts.kind)) {
    throw new ConfigError(unknownValueMessage('data.synthetic.kind', 'synthetic data set', opts.kind, SYNTHETIC_KINDS));
  }
  // A million 14x14 shapes take 784 MB as float32; far more cannot be allocated at all (a
  // size of 2^31 - 1, which the format allows, failed with "Invalid typed array length").
  if (!Number.isInteger(opts.size) || opts.size < 1 || opts.size > MAX_SYNTHETIC_SIZE) {
    throw new ConfigError(`data.synthetic.size: must be an integer in [1, ${MAX_SYNTHETIC_SIZE}]; got ${opts.size}`);
  }
  const root = Rng.derive(seed, 'synthetic');
  const trainRng = root.fork('train');
  const testRng = root.fork('test');
  const testSize = syntheticTestSize(opts.size);
  if (opts.kind === 'mixture2d') {
    return {
      name: 'synthetic/mixture2d',
      shape: [1, 1, 2],
      dim: 2,
      numClasses: MIXTURE2D_MEANS.length,
      train: mixture2d(trainRng, opts.size),
      validation: null,
      test: mixture2d(testRng, testSize),
      kind: 'vector',
    };
  }
  return {
    name: 'synthetic/shapes',
    shape: [SHAPES_SIZE, SHAPES_SIZE, 1],
    dim: SHAPES_SIZE * SHAPES_SIZE,
    numClasses: SHAPES_CLASSES.length,
    train: shapes(trainRng, opts.size),
    validation: null,
    test: shapes(testRng, testSize),
    kind: 'image',
  };
}
