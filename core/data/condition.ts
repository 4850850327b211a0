/**
 * Conditioning inputs made from a batch, declared in the experiment under `data.condition`:
 *
 * - `none`: unconditional (cond is null).
 * - `labels`: the one-hot label [B, numClasses] (a class-conditional VAE); an unlabelled
 *   example gets an all-zero row.
 * - `visible-quadrants`: the visible part of an image, as in the quadrant-completion task of
 *   Sohn, Lee & Yan 2015 (https://papers.nips.cc/paper/5775): the image [B, H*W*C] with the
 *   pixels of every quadrant not listed in `data.condition.visibleQuadrants` set to
 *   `data.condition.hiddenValue` (-1 by default, a value no pixel in [0, 1] takes, so the network
 *   can tell "hidden" from "black"). Quadrants are numbered 0 top-left, 1 top-right,
 *   2 bottom-left, 3 bottom-right; with an odd side the middle row and column go to the
 *   bottom and right quadrants.
 *
 * The conditioning input is separate from the labels (ModelBatch.labels), so a model can
 * condition on a visible region and still be told the class, or neither.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError } from '../errors';
import type { Batch, DatasetInfo } from './types';

/** Allowed values of `data.condition.use`. */
export const CONDITIONS = ['none', 'labels', 'visible-quadrants'] as const;
export type ConditionKind = (typeof CONDITIONS)[number];

/** The `data.condition.*` keys. */
export interface ConditionOptions {
  use: ConditionKind;
  /** Quadrants shown to the model (visible-quadrants): a non-empty subset of 0..3, not all four. */
  visibleQuadrants: readonly number[];
  /** Value of hidden pixels in the conditioning input (visible-quadrants). */
  hiddenValue: number;
}

/** What the data set must offer, checked before any model is built. */
type ConditionInfo = Pick<DatasetInfo, 'name' | 'dim' | 'numClasses' | 'kind'> & { shape: readonly number[] };

/** Size of the conditioning input, or a ConfigError naming the key when the data set cannot give it. */
export function conditionDim(opts: ConditionOptions, info: ConditionInfo): number {
  switch (opts.use) {
    case 'none':
      return 0;
    case 'labels':
      if (info.numClasses === 0) throw new ConfigError(`data.condition.use: data set "${info.name}" has no labels to condition on; got "labels"`);
      return info.numClasses;
    case 'visible-quadrants': {
      if (info.kind !== 'image' || info.shape[0] < 2 || info.shape[1] < 2) {
        throw new ConfigError(`data.condition.use: "visible-quadrants" needs images of at least 2x2; data set "${info.name}" has examples of shape [${info.shape.join(', ')}]`);
      }
      const q = opts.visibleQuadrants;
      const bad = q.find((v) => !Number.isInteger(v) || v < 0 || v > 3);
      if (bad !== undefined) throw new ConfigError(`data.condition.visibleQuadrants: quadrants are 0 (top-left), 1 (top-right), 2 (bottom-left), 3 (bottom-right); got ${JSON.stringify(q)}`);
      const distinct = new Set(q).size;
      if (distinct !== q.length || distinct === 0 || distinct === 4) {
        throw new ConfigError(`data.condition.visibleQuadrants: must list 1 to 3 distinct quadrants (something visible, something to predict); got ${JSON.stringify(q)}`);
      }
      return info.dim;
    }
  }
}

/**
 * 1 for every pixel of a visible quadrant, 0 elsewhere, over one example [H*W*C] in HWC order.
 * Rows [0, floor(H/2)) are the top half, columns [0, floor(W/2)) the left half.
 */
export function visibleMask(shape: readonly number[], visibleQuadrants: readonly number[]): Float32Array {
  // Made once per (shape, quadrants), since conditionOf asks for it on every training batch; the
  // array is shared: callers read it only.
  const key = `${shape.join('x')}/${visibleQuadrants.join(',')}`;
  const cached = masks.get(key);
  if (cached) return cached;
  const mask = buildMask(shape, visibleQuadrants);
  masks.set(key, mask);
  return mask;
}

const masks = new Map<string, Float32Array>();

function buildMask(shape: readonly number[], visibleQuadrants: readonly number[]): Float32Array {
  const [h, w, c] = shape;
  const mask = new Float32Array(h * w * c);
  const visible = new Set(visibleQuadrants);
  for (let r = 0; r < h; r++) {
    for (let col = 0; col < w; col++) {
      const quadrant = (r < Math.floor(h / 2) ? 0 : 2) + (col < Math.floor(w / 2) ? 0 : 1);
      if (!visible.has(quadrant)) continue;
      mask.fill(1, (r * w + col) * c, (r * w + col + 1) * c);
    }
  }
  return mask;
}

/**
 * The conditioning input of n generated images laid out in a grid of `cols` columns (row-major),
 * or null. Grid row r = floor(i / cols) of image i decides its condition: labels -> the one-hot
 * class r mod numClasses (one row per class); visible-quadrants -> the visible part of example
 * r mod split.n of `split` (one row of samples per given example). With cols = 1 (the default)
 * image i gets class i mod numClasses and example i mod split.n. Shapes: [n, condDim]. The
 * caller disposes it.
 */
export function generationCondition(
  n: number,
  opts: ConditionOptions,
  info: { numClasses: number; dim: number; shape: readonly number[] },
  split: { x: Float32Array; n: number },
  cols = 1,
): tf.Tensor2D | null {
  const row = (i: number) => Math.floor(i / cols);
  switch (opts.use) {
    case 'none':
      return null;
    case 'labels':
      return tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(Array.from({ length: n }, (_, i) => row(i) % info.numClasses), 'int32'), info.numClasses), 'float32') as tf.Tensor2D);
    case 'visible-quadrants': {
      const x = new Float32Array(n * info.dim);
      for (let i = 0; i < n; i++) {
        const r = row(i) % split.n;
        x.set(split.x.subarray(r * info.dim, (r + 1) * info.dim), i * info.dim);
      }
      const mask = visibleMask(info.shape, opts.visibleQuadrants);
      for (let i = 0; i < x.length; i++) if (mask[i % info.dim] === 0) x[i] = opts.hiddenValue;
      return tf.tensor2d(x, [n, info.dim]);
    }
  }
}

/**
 * The conditioning input of a batch, or null. Shapes: labels -> [B, numClasses];
 * visible-quadrants -> [B, dim] (x where visible, hiddenValue elsewhere). The caller owns the
 * result (for `labels` it is the batch's own one-hot tensor, disposed with the batch).
 */
export function conditionOf(b: Batch, opts: ConditionOptions, shape: readonly number[]): tf.Tensor2D | null {
  switch (opts.use) {
    case 'none':
      return null;
    case 'labels':
      return b.y;
    case 'visible-quadrants': {
      const mask = visibleMask(shape, opts.visibleQuadrants);
      return tf.tidy(() => {
        const m = tf.tensor2d(mask, [1, mask.length]);
        // x * m + hiddenValue * (1 - m)
        return tf.add(tf.mul(b.x, m), tf.mul(tf.sub(1, m), opts.hiddenValue)) as tf.Tensor2D;
      });
    }
  }
}
