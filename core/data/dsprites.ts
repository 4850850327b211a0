/**
 * A dSprites-like data set generated in code: one white sprite on a black 64x64 canvas, made by
 * five independent factors of variation, after dSprites (Matthey et al. 2017,
 * https://github.com/deepmind/dsprites-dataset), as used by beta-VAE and FactorVAE:
 *
 * | factor      | values | meaning                                                        |
 * |-------------|--------|----------------------------------------------------------------|
 * | shape       | 3      | 0 square, 1 ellipse, 2 heart                                   |
 * | scale       | 6      | 0.5, 0.6, ..., 1.0 times the full size                         |
 * | orientation | 40     | 2*pi*k/40 radians, k = 0..39 (counter-clockwise on the screen) |
 * | posX        | 32     | centre column 14 + 36*i/31 pixels (left to right)              |
 * | posY        | 32     | centre row 14 + 36*j/31 pixels (top to bottom)                 |
 *
 * Every one of the 3*6*40*32*32 = 737 280 combinations has an index, the mixed-radix number of
 * its factor values with posY varying fastest and shape slowest (dSprites' own order, without its
 * single-valued colour factor). An image is rendered on demand from its factors, so nothing holds
 * the whole product (it would take 12 GB as float32).
 *
 * Differences from the original files: orientations are 2*pi*k/40 (dSprites' linspace(0, 2pi, 40)
 * repeats 0 = 2pi and so has 39 distinct angles); the sprites are drawn from our own formulas
 * (below), so images differ pixel by pixel from the published ones. As in dSprites, the square's
 * orientation is defined only up to a quarter turn and the ellipse's up to a half turn.
 *
 * Rendering: pixel (row r, column c) is 1 when its centre (c + 0.5, r + 0.5) falls inside the
 * sprite, else 0. With (dx, dy) the offset of that centre from the sprite's centre and theta the
 * orientation, the point in sprite coordinates is u = (cos(theta)*dx - sin(theta)*dy) / R,
 * v = (sin(theta)*dx + cos(theta)*dy) / R (a rotation by -theta on the screen, y pointing down),
 * with R = 12 pixels * scale, and the sprite is
 *   square:  |u| <= 0.75 and |v| <= 0.75              (side 18 px at scale 1)
 *   ellipse: u^2 + (v / 0.5)^2 <= 1                    (12 x 6 px semi-axes at scale 1)
 *   heart:   (a^2 + b^2 - 1)^3 - a^2 * b^3 <= 0, a = 1.3u, b = 0.118 - 1.3v (tip pointing down)
 * Every point of a sprite lies within 0.75*sqrt(2)*12 < 12.8 px of its centre, and centres keep
 * 14 px from the border, so no sprite is cut by the canvas.
 */
import { ConfigError } from '../errors';
import { Rng } from '../rng';
import type { DataSplit, Dataset } from './types';

/** Names of the factors, in index order (slowest first). */
export const DSPRITES_FACTORS = ['shape', 'scale', 'orientation', 'posX', 'posY'] as const;

/** Number of values of each factor, in the order of DSPRITES_FACTORS. */
export const DSPRITES_FACTOR_SIZES: readonly number[] = Object.freeze([3, 6, 40, 32, 32]);

/** Names of the shapes, by the value of the shape factor (also the data set's label). */
export const DSPRITES_SHAPES = ['square', 'ellipse', 'heart'] as const;

/** Side of the square canvas, in pixels. */
export const DSPRITES_SIZE = 64;

/** Number of combinations of the factors: 737 280. */
export const DSPRITES_COUNT = DSPRITES_FACTOR_SIZES.reduce((a, b) => a * b, 1);

/** Most examples of one split held in memory (100 000 images take 1.6 GB as float32). */
export const MAX_DSPRITES_SPLIT = 100_000;

/** Radius unit of a sprite at scale 1, in pixels. */
const SPRITE_RADIUS = 12;
/** Centre of posX / posY value 0, and the span from the first value to the last, in pixels. */
const POSITION_START = 14;
const POSITION_SPAN = 36;

/** The scale of scale value `k`: 0.5 + 0.1 k. */
export function dspritesScale(k: number): number {
  return 0.5 + 0.1 * k;
}

/** The angle of orientation value `k`, in radians: 2 pi k / 40. */
export function dspritesAngle(k: number): number {
  return (2 * Math.PI * k) / DSPRITES_FACTOR_SIZES[2];
}

/** The pixel coordinate of the centre for position value `i` (posX: column, posY: row): 14 + 36 i / 31. */
export function dspritesPosition(i: number): number {
  return POSITION_START + (POSITION_SPAN * i) / (DSPRITES_FACTOR_SIZES[3] - 1);
}

/** Settings of the dSprites-like data set (`data.dsprites.*`). */
export interface DspritesOptions {
  /** Training images, drawn without replacement from the 737 280 combinations. */
  trainSize: number;
  /** Test images, drawn without replacement from the combinations not in the training split. */
  testSize: number;
}

/** Defaults of `data.dsprites.*`, as in core/config/core-schema.ts. */
export const DEFAULT_DSPRITES_OPTIONS: Readonly<DspritesOptions> = Object.freeze({ trainSize: 10000, testSize: 2000 });

/**
 * The factor values of combination `index`. Shape: [5] (shape, scale, orientation, posX, posY).
 * Writes into `out` when given.
 */
export function dspritesFactorsOf(index: number, out: Int32Array = new Int32Array(5)): Int32Array {
  if (!Number.isInteger(index) || index < 0 || index >= DSPRITES_COUNT) {
    throw new RangeError(`dspritesFactorsOf: index must be an integer in [0, ${DSPRITES_COUNT}); got ${index}`);
  }
  let rest = index;
  for (let f = DSPRITES_FACTOR_SIZES.length - 1; f >= 0; f--) {
    out[f] = rest % DSPRITES_FACTOR_SIZES[f];
    rest = Math.floor(rest / DSPRITES_FACTOR_SIZES[f]);
  }
  return out;
}

/** The index of a combination of factor values (shape, scale, orientation, posX, posY). */
export function dspritesIndexOf(factors: ArrayLike<number>): number {
  checkFactors(factors, 0, 'dspritesIndexOf');
  let index = 0;
  for (let f = 0; f < DSPRITES_FACTOR_SIZES.length; f++) index = index * DSPRITES_FACTOR_SIZES[f] + factors[f];
  return index;
}

function checkFactors(factors: ArrayLike<number>, offset: number, where: string): void {
  for (let f = 0; f < DSPRITES_FACTOR_SIZES.length; f++) {
    const v = factors[offset + f];
    if (!Number.isInteger(v) || v < 0 || v >= DSPRITES_FACTOR_SIZES[f]) {
      throw new RangeError(
        `${where}: factor ${DSPRITES_FACTORS[f]} must be an integer in [0, ${DSPRITES_FACTOR_SIZES[f]}); got ${v}`,
      );
    }
  }
}

/** Whether the point (u, v) in sprite coordinates (units of R) is inside shape `shape`. */
function inside(shape: number, u: number, v: number): boolean {
  if (shape === 0) return Math.abs(u) <= 0.75 && Math.abs(v) <= 0.75;
  if (shape === 1) return u * u + 4 * v * v <= 1;
  const a = 1.3 * u;
  const b = 0.118 - 1.3 * v;
  const r = a * a + b * b - 1;
  return r * r * r - a * a * b * b * b <= 0;
}

/**
 * Renders the sprite of one combination into `out` at `offset` (64*64 values, row-major, 0 or 1).
 * factors: [5] from `factorOffset` (shape, scale, orientation, posX, posY). Shape: out [4096].
 */
export function renderDsprite(
  factors: ArrayLike<number>,
  out: Float32Array = new Float32Array(DSPRITES_SIZE * DSPRITES_SIZE),
  offset = 0,
  factorOffset = 0,
): Float32Array {
  checkFactors(factors, factorOffset, 'renderDsprite');
  const shape = factors[factorOffset];
  const radius = SPRITE_RADIUS * dspritesScale(factors[factorOffset + 1]);
  const theta = dspritesAngle(factors[factorOffset + 2]);
  const cx = dspritesPosition(factors[factorOffset + 3]);
  const cy = dspritesPosition(factors[factorOffset + 4]);
  const cos = Math.cos(theta) / radius;
  const sin = Math.sin(theta) / radius;
  // Only the pixels within the sprite's reach (12.8 px at scale 1, see the header) are tested.
  const reach = Math.ceil(1.07 * radius) + 1;
  const r0 = Math.max(0, Math.floor(cy - reach));
  const r1 = Math.min(DSPRITES_SIZE - 1, Math.ceil(cy + reach));
  const c0 = Math.max(0, Math.floor(cx - reach));
  const c1 = Math.min(DSPRITES_SIZE - 1, Math.ceil(cx + reach));
  out.fill(0, offset, offset + DSPRITES_SIZE * DSPRITES_SIZE);
  for (let r = r0; r <= r1; r++) {
    const dy = r + 0.5 - cy;
    for (let c = c0; c <= c1; c++) {
      const dx = c + 0.5 - cx;
      if (inside(shape, cos * dx - sin * dy, sin * dx + cos * dy)) out[offset + r * DSPRITES_SIZE + c] = 1;
    }
  }
  return out;
}

/**
 * The dSprites-like generator as ground-truth data for the disentanglement metrics: factors are
 * integer labels (value indices), sampled uniformly and independently, and an observation is the
 * rendered image. Shapes: factors [n, 5] row-major; observations [n, 4096] (64x64x1, HWC).
 */
export class DspritesData {
  readonly factorNames: readonly string[] = DSPRITES_FACTORS;
  readonly factorSizes: readonly number[] = DSPRITES_FACTOR_SIZES;
  readonly numFactors = DSPRITES_FACTOR_SIZES.length;
  readonly shape: [number, number, number] = [DSPRITES_SIZE, DSPRITES_SIZE, 1];
  readonly dim = DSPRITES_SIZE * DSPRITES_SIZE;

  /** n combinations drawn uniformly (each factor uniform and independent). Shape: [n, 5]. */
  sampleFactors(n: number, rng: Rng): Int32Array {
    const out = new Int32Array(n * this.numFactors);
    for (let i = 0; i < n; i++) {
      for (let f = 0; f < this.numFactors; f++) out[i * this.numFactors + f] = rng.int(this.factorSizes[f]);
    }
    return out;
  }

  /** The images of n combinations. factors: [n, 5]; returns [n, 4096]. */
  observations(factors: Int32Array, n: number): Float32Array {
    const x = new Float32Array(n * this.dim);
    for (let i = 0; i < n; i++) renderDsprite(factors, x, i * this.dim, i * this.numFactors);
    return x;
  }
}

/** Images and factors of the combinations `indices`: x [n, 4096], factors [n, 5]. */
export function dspritesImages(indices: ArrayLike<number>): { x: Float32Array; factors: Int32Array } {
  const n = indices.length;
  const dim = DSPRITES_SIZE * DSPRITES_SIZE;
  const x = new Float32Array(n * dim);
  const factors = new Int32Array(n * 5);
  const one = new Int32Array(5);
  for (let i = 0; i < n; i++) {
    dspritesFactorsOf(indices[i], one);
    factors.set(one, i * 5);
    renderDsprite(one, x, i * dim);
  }
  return { x, factors };
}

function split(indices: Int32Array): DataSplit {
  const { x, factors } = dspritesImages(indices);
  const labels = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) labels[i] = factors[i * 5];
  return { x, labels, n: indices.length };
}

/**
 * The combinations of each split: one seeded permutation of all 737 280 indices
 * (Rng.derive(seed, 'dsprites')), the training split its first trainSize entries and the test
 * split the next testSize, so the two never share an image and the first k training images do
 * not depend on the sizes.
 */
export function dspritesSplitIndices(opts: DspritesOptions, seed: number): { train: Int32Array; test: Int32Array } {
  const problems: string[] = [];
  for (const key of ['trainSize', 'testSize'] as const) {
    const v = opts[key];
    if (!Number.isInteger(v) || v < 1 || v > MAX_DSPRITES_SPLIT) {
      problems.push(`data.dsprites.${key}: must be an integer in [1, ${MAX_DSPRITES_SPLIT}] (images held in memory); got ${v}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  const perm = Rng.derive(seed, 'dsprites').permutation(DSPRITES_COUNT);
  return { train: perm.slice(0, opts.trainSize), test: perm.slice(opts.trainSize, opts.trainSize + opts.testSize) };
}

/**
 * The dSprites-like data set for training: image kind, shape [64, 64, 1], binary pixels, label =
 * the shape factor (3 classes). Reads `data.dsprites.trainSize` and `data.dsprites.testSize`.
 * Shapes: train.x [trainSize, 4096], test.x [testSize, 4096]. The factors of an example are
 * `dspritesFactorsOf(index)` of its entry in `dspritesSplitIndices(opts, seed)`; the metrics draw
 * their own samples from `DspritesData` instead.
 */
export function makeDsprites(opts: DspritesOptions, seed: number): Dataset {
  const { train, test } = dspritesSplitIndices(opts, seed);
  return {
    name: 'dsprites',
    shape: [DSPRITES_SIZE, DSPRITES_SIZE, 1],
    dim: DSPRITES_SIZE * DSPRITES_SIZE,
    numClasses: DSPRITES_SHAPES.length,
    train: split(train),
    validation: null,
    test: split(test),
    kind: 'image',
  };
}
