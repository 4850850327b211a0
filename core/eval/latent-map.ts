/**
 * A 2-D map of the test set's latent codes: the posterior mode of each of the first n test
 * examples, as they are when the latent is 2-D, else embedded in 2-D by UMAP (umap-js, McInnes
 * et al. 2018; 15 neighbours, min_dist 0.1, its random draws from our seeded stream), drawn as a
 * scatter coloured by label. Flat latents only; other latents give null.
 */
import * as tf from '@tensorflow/tfjs-core';
import { UMAP } from 'umap-js';
import type { ConditionOptions } from '../data/condition';
import type { DataSplit, DatasetInfo } from '../data/types';
import type { VaeModel } from '../model';
import { Rng } from '../rng';
import type { VegaLiteSpec } from '../tracking/plots';
import { disposeBatch, disposeModelBatch, toModelBatch } from './evaluate';
import { hasFlatLatent, headBatcher } from './split-head';

/** The map's points. */
export interface LatentMap {
  /** 'latent': the 2-D codes themselves; 'umap': a UMAP embedding of the codes. */
  method: 'latent' | 'umap';
  /** Dimension of the codes. */
  dims: number;
  /** x, y per example. [n][2] */
  points: Array<[number, number]>;
  /** Class of each example, -1 when unlabelled. */
  labels: number[];
}

/** Options of `latentMap`. */
export interface LatentMapOptions {
  info: DatasetInfo;
  condition: ConditionOptions;
  seed: number;
  /** The first n examples of the split. */
  n: number;
  batchSize: number;
}

/** Posterior modes of the first n examples: [n][dim], or null for a latent that is not flat. */
export function latentModes(model: VaeModel, split: DataSplit, o: LatentMapOptions): number[][] | null {
  if (!hasFlatLatent(model)) return null;
  const lat = model.latent;
  const batcher = headBatcher(split, o.n, o.info, o.seed, o.batchSize);
  const out: number[][] = [];
  let i = 0;
  for (const b of batcher.epoch(0)) {
    const mb = toModelBatch(b, o.condition, o.info.shape ?? [1, 1, o.info.dim]);
    const m = tf.tidy(() => {
      const opts = { training: false, rng: Rng.derive(o.seed, 'latent-map', i++), cond: mb.cond };
      return tf.reshape(lat.mode(model.encoder.encode(mb.x, mb.cond, opts), opts), [b.size, lat.dim]);
    });
    out.push(...(m.arraySync() as number[][]));
    m.dispose();
    disposeModelBatch(mb);
    disposeBatch(b);
  }
  return out;
}

/** The 2-D map of the first n examples of a split, or null for a latent that is not flat. */
export function latentMap(model: VaeModel, split: DataSplit, o: LatentMapOptions): LatentMap | null {
  const codes = latentModes(model, split, o);
  if (!codes || codes.length === 0) return null;
  const labels = Array.from(split.labels.subarray(0, codes.length));
  const dims = codes[0].length;
  if (dims === 2) return { method: 'latent', dims, points: codes.map((c) => [c[0], c[1]]), labels };
  if (dims === 1) return { method: 'latent', dims, points: codes.map((c, i) => [c[0], i]), labels };
  const rng = Rng.derive(o.seed, 'latent-map/umap');
  const umap = new UMAP({ nComponents: 2, nNeighbors: Math.min(15, codes.length - 1), minDist: 0.1, random: () => rng.uniform() });
  const emb = umap.fit(codes);
  return { method: 'umap', dims, points: emb.map((p) => [p[0], p[1]]), labels };
}

/** The Vega-Lite scatter of a map, coloured by label. */
export function latentMapSpec(map: LatentMap, title: string): VegaLiteSpec {
  const axis = map.method === 'umap' ? ['UMAP 1', 'UMAP 2'] : map.dims === 1 ? ['z', 'example'] : ['z1', 'z2'];
  return {
    width: 420,
    height: 420,
    title,
    data: { values: map.points.map(([x, y], i) => ({ x, y, label: map.labels[i] < 0 ? 'unlabelled' : String(map.labels[i]) })) },
    mark: { type: 'circle', size: 14, opacity: 0.7 },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: axis[0], scale: { zero: false } },
      y: { field: 'y', type: 'quantitative', title: axis[1], scale: { zero: false } },
      color: { field: 'label', type: 'nominal', scale: { scheme: 'category10' } },
    },
  };
}
