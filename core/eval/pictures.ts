/**
 * Two pictures of what a model learned, drawn from the test split at each evaluation:
 *
 * - interpolations: each row decodes `cols` codes evenly spaced on the line between the posterior
 *   modes of two test inputs of the same class (row r: class r mod the number of classes, its
 *   first and second test examples), with the class as conditioning input when the model is
 *   conditioned on labels, so a class-conditional model interpolates within the class. Flat
 *   latents only (hierarchies decode their bottom layer's modes; grids of codes get none).
 * - completions (models conditioned on visible quadrants): row r is the r-th test example's
 *   visible part (hidden pixels grey), its truth, then `cols - 2` samples of the hidden part
 *   drawn from p(z | y), each pasted into the visible part.
 *
 * And two of the prior, for hierarchies: samples per stochastic layer (`layerSamplesGrid`), one
 * layer varied along each row while every other layer's draw is held, and traversals per layer
 * (`layerTraversalGrid`), one unit of one layer's noise swept along each row, the rest held.
 */
import * as tf from '@tensorflow/tfjs-core';
import { visibleMask, type ConditionOptions } from '../data/condition';
import type { DataSplit, DatasetInfo } from '../data/types';
import type { VaeModel } from '../model';
import { Rng } from '../rng';
import { hasFlatLatent } from './split-head';

/** Indices of the first two test examples of each class that has two; in class order. */
function pairsByClass(split: DataSplit, numClasses: number): Array<[number, number, number]> {
  const seen: number[][] = Array.from({ length: numClasses }, () => []);
  for (let i = 0; i < split.n; i++) {
    const c = split.labels[i];
    if (c >= 0 && c < numClasses && seen[c].length < 2) seen[c].push(i);
  }
  return seen.flatMap((ix, c) => (ix.length === 2 ? [[c, ix[0], ix[1]] as [number, number, number]] : []));
}

/**
 * The interpolation grid, [rows * cols] images flattened row by row, or null when the latent is
 * not flat, the data have no labels to pair inputs by, or the conditioning input is not labels
 * or none.
 */
export function interpolationGrid(model: VaeModel, split: DataSplit, info: DatasetInfo, cond: ConditionOptions, rows: number, cols: number, seed: number): Float32Array | null {
  // flat codes, or a hierarchy's bottom layer; not grids of codes
  if (model.latent.shape && model.latent.shape.length > 1) return null;
  if (!hasFlatLatent(model) && !model.latent.generate) return null;
  if (cond.use !== 'none' && cond.use !== 'labels') return null;
  if (info.numClasses < 1 || cols < 2) return null;
  const pairs = pairsByClass(split, info.numClasses);
  if (pairs.length === 0) return null;
  const use = Array.from({ length: rows }, (_, r) => pairs[r % pairs.length] as [number, number, number]);
  const out = tf.tidy(() => {
    const idx = use.flatMap(([, a, b]) => [a, b]);
    const x = tf.tensor2d(
      idx.flatMap((i) => Array.from(split.x.subarray(i * info.dim, (i + 1) * info.dim))),
      [idx.length, info.dim],
    );
    const y = cond.use === 'labels' ? (tf.cast(tf.oneHot(tf.tensor1d(idx.map((i) => split.labels[i]), 'int32'), info.numClasses), 'float32') as tf.Tensor2D) : null;
    const opts = { training: false, rng: Rng.derive(seed, 'interpolation'), cond: y };
    const modes = model.latent.mode(model.encoder.encode(x, y, opts), opts) as tf.Tensor2D;
    const d = modes.shape[1];
    const a = tf.gather(modes, use.map((_, r) => 2 * r));
    const b = tf.gather(modes, use.map((_, r) => 2 * r + 1));
    // codes [rows, cols, d]: a + t (b - a), t = 0 .. 1
    const t = tf.reshape(tf.linspace(0, 1, cols), [1, cols, 1]);
    const z = tf.reshape(tf.add(tf.expandDims(a, 1), tf.mul(t, tf.expandDims(tf.sub(b, a), 1))), [rows * cols, d]) as tf.Tensor2D;
    const yRows = y ? (tf.reshape(tf.tile(tf.expandDims(tf.gather(y, use.map((_, r) => 2 * r)), 1), [1, cols, 1]), [rows * cols, info.numClasses]) as tf.Tensor2D) : null;
    const dOpts = { ...opts, cond: yRows };
    return model.likelihood.mean(model.decoder.decode(z, yRows, dOpts));
  });
  const v = out.dataSync() as Float32Array;
  out.dispose();
  return v;
}

/** The completion grid of a model conditioned on visible quadrants, [rows * cols] images, or null for other models. */
export function completionGrid(model: VaeModel, split: DataSplit, info: DatasetInfo, cond: ConditionOptions, rows: number, cols: number, seed: number): Float32Array | null {
  if (cond.use !== 'visible-quadrants' || cols < 3) return null;
  const n = Math.min(rows, split.n);
  const mask = visibleMask(info.shape ?? [1, 1, info.dim], cond.visibleQuadrants);
  const D = info.dim;
  const S = cols - 2;
  const y = new Float32Array(n * S * D);
  for (let r = 0; r < n; r++) {
    for (let s = 0; s < S; s++) {
      const o = (r * S + s) * D;
      for (let j = 0; j < D; j++) y[o + j] = mask[j] ? split.x[r * D + j] : cond.hiddenValue;
    }
  }
  const samples = tf.tidy(() => model.generate(n * S, tf.tensor2d(y, [n * S, D]), { training: false, rng: Rng.derive(seed, 'completion') }));
  const sv = samples.dataSync() as Float32Array;
  samples.dispose();
  const out = new Float32Array(n * cols * D);
  for (let r = 0; r < n; r++) {
    const truth = split.x.subarray(r * D, (r + 1) * D);
    const row = r * cols * D;
    for (let j = 0; j < D; j++) {
      out[row + j] = mask[j] ? truth[j] : 0.5;
      out[row + D + j] = truth[j];
    }
    for (let s = 0; s < S; s++) {
      const o = row + (2 + s) * D;
      const g = (r * S + s) * D;
      for (let j = 0; j < D; j++) out[o + j] = mask[j] ? truth[j] : sv[g + j];
    }
  }
  return out;
}

/**
 * Samples per layer of a hierarchy (Latent.layers > 1 with `generate`), [layers * cols] images:
 * the first row varies the top layer, the last the bottom one, each holding the others. Column c draws
 * the varied layer's noise from its own stream (the prior's draw for the top), every other layer
 * from a stream shared by all columns (PassOptions.layerRng), so the columns of a row differ only
 * through that layer: the layers above it are the same code in every column, the layers below are
 * the same noise pushed through p(z_l | z_l+1). Null for flat latents and for conditioned models.
 */
export function layerSamplesGrid(model: VaeModel, cond: ConditionOptions, cols: number, seed: number): Float32Array | null {
  const L = model.latent.layers ?? 1;
  if (L < 2 || !model.latent.generate || cond.use !== 'none' || cols < 1) return null;
  const held = (layer: number) => Rng.derive(seed, 'layer-samples/held', layer);
  const varied = (layer: number, c: number) => Rng.derive(seed, 'layer-samples/varied', layer, c);
  const out: Float32Array[] = [];
  for (let vary = L - 1; vary >= 0; vary--) {
    for (let c = 0; c < cols; c++) {
      const pick = (layer: number) => (layer === vary ? varied(layer, c) : held(layer));
      const x = model.generate(1, null, { training: false, rng: pick(L - 1), layerRng: pick });
      out.push(x.dataSync() as Float32Array);
      x.dispose();
    }
  }
  return concatImages(out);
}

/** The images of several grids' parts one after the other, as writeGrid reads them. */
export function concatImages(parts: Float32Array[]): Float32Array {
  const all = new Float32Array(parts.reduce((n, v) => n + v.length, 0));
  let o = 0;
  for (const v of parts) {
    all.set(v, o);
    o += v.length;
  }
  return all;
}

/**
 * Standard normals for one `generate` pass in which every row has the same draw: `normalTensor`
 * of shape [N, ...] gives N copies of one draw of `base` (a fresh stream per pass, so every pass
 * of a picture holds the same values), then applies `pin(row)`: unit `unit` of that row set to
 * `value`. `shapes` records the shapes asked for.
 */
class RepeatedNormals extends Rng {
  readonly shapes: number[][] = [];
  /** Set when anything but `normalTensor` drew from this stream (a mixture's component choice). */
  otherDraws = false;
  constructor(
    private readonly base: Rng,
    private readonly pin: (row: number) => { unit: number; value: number } | null = () => null,
  ) {
    super(0);
  }

  override nextUint32(): number {
    this.otherDraws = true;
    return super.nextUint32();
  }

  override normalTensor(shape: number[]): tf.Tensor {
    this.shapes.push(shape);
    const [n, ...rest] = shape;
    const d = rest.reduce((p, v) => p * v, 1);
    const one = this.base.fillNormal(new Float32Array(d));
    const out = new Float32Array(n * d);
    for (let r = 0; r < n; r++) {
      out.set(one, r * d);
      const p = this.pin(r);
      if (p) out[r * d + p.unit] = p.value;
    }
    return tf.tensor(out, shape, 'float32');
  }
}

/** One row of a layer traversal: the layer (1 = bottom), the unit swept and how far it moves the mean image. */
export interface LayerTraversalRow {
  layer: number;
  unit: number;
  /** Squared distance between the mean images at the two ends of the sweep. */
  score: number;
}

/** Layers of at most this many units are traversed (spatial groups are larger and are left out). */
export const LAYER_TRAVERSAL_MAX_UNITS = 512;

/**
 * Traversals per layer of a hierarchy, [rows * cols] images: every layer's noise is one held draw
 * (the top's is the prior's standard-normal draw) and row r sweeps one unit of one layer (the top
 * first) over `cols` values evenly spaced in [-spread, spread], so the row shows what that unit
 * alone does with everything else fixed. The unit of each layer is the one whose sweep moves the
 * mean image most (squared distance between the two ends, every unit tried in one batched pass).
 * Left out: layers of more than LAYER_TRAVERSAL_MAX_UNITS units, and the top when the prior draws
 * anything but standard normals (a mixture picks a component per row): its draw is then made once
 * and repeated on every row. Null for flat latents, conditioned models, cols < 2 or when no layer
 * qualifies.
 */
export function layerTraversalGrid(model: VaeModel, cond: ConditionOptions, cols: number, seed: number, spread = 2.5): { images: Float32Array; rows: LayerTraversalRow[] } | null {
  const L = model.latent.layers ?? 1;
  if (L < 2 || !model.latent.generate || cond.use !== 'none' || cols < 2) return null;
  const held = (layer: number) => Rng.derive(seed, 'layer-traversal/held', layer);
  let normalTop = true;
  /**
   * One pass of n rows, every layer held but `layer`, whose unit pin(row) is set. A prior that
   * draws more than normals gives its one draw to every row.
   */
  const pass = (n: number, layer: number, pin: (row: number) => { unit: number; value: number }) => {
    const streams = Array.from({ length: L }, (_, l) => new RepeatedNormals(held(l), l === layer ? pin : undefined));
    const x = tf.tidy(() => {
      const o = { training: false, rng: streams[L - 1], layerRng: (l: number) => streams[l], cond: null };
      const top = normalTop ? model.prior.sample(n, streams[L - 1], null, o) : tf.tile(model.prior.sample(1, streams[L - 1], null, o), [n, 1]);
      return model.likelihood.mean(model.decoder.decode(model.latent.generate!(top, o), null, o));
    });
    return { x, streams };
  };
  // the size of every layer's noise, from a probe pass of one row, and whether the prior draws only normals
  const probe = pass(1, -1, () => ({ unit: 0, value: 0 }));
  probe.x.dispose();
  normalTop = !probe.streams[L - 1].otherDraws;
  const sizes = probe.streams.map((s, l) =>
    (l === L - 1 && !normalTop) || s.shapes.length !== 1 || s.shapes[0].length !== 2 || s.shapes[0][0] !== 1 ? 0 : s.shapes[0][1],
  );
  const images: Float32Array[] = [];
  const rows: LayerTraversalRow[] = [];
  for (let layer = L - 1; layer >= 0; layer--) {
    const units = sizes[layer];
    if (units === 0 || units > LAYER_TRAVERSAL_MAX_UNITS) continue;
    // rows 2u and 2u + 1: unit u at -spread and +spread
    const ends = pass(2 * units, layer, (r) => ({ unit: r >> 1, value: r % 2 === 0 ? -spread : spread }));
    const scores = tf.tidy(() => {
      const [lo, hi] = [0, 1].map((k) => tf.gather(ends.x, Array.from({ length: units }, (_, u) => 2 * u + k)));
      return tf.sum(tf.square(tf.sub(hi, lo)), 1).dataSync() as Float32Array;
    });
    ends.x.dispose();
    let unit = 0;
    for (let u = 1; u < units; u++) if (scores[u] > scores[unit]) unit = u;
    const sweep = pass(cols, layer, (c) => ({ unit, value: -spread + (2 * spread * c) / (cols - 1) }));
    images.push(sweep.x.dataSync() as Float32Array);
    sweep.x.dispose();
    rows.push({ layer: layer + 1, unit, score: scores[unit] });
  }
  if (rows.length === 0) return null;
  return { images: concatImages(images), rows };
}
