/**
 * Small pieces the pictures share (traversals, latent maps): the first n examples of a split in
 * evaluation batches, and whether a model's latent is a flat vector the prior scores as it is.
 */
import { Batcher } from '../data/batcher';
import type { DataSplit, DatasetInfo } from '../data/types';
import type { VaeModel } from '../model';

/** Examples from, from + 1, ... (at most n, within the split) of `split`, in order, unbinarised. */
export function headBatcher(split: DataSplit, n: number, info: DatasetInfo, seed: number, batchSize: number, from = 0): Batcher {
  const end = Math.min(from + n, split.n);
  const start = Math.min(from, end);
  const m = end - start;
  return new Batcher({ x: split.x.subarray(start * info.dim, end * info.dim), labels: split.labels.subarray(start, end), n: m }, info, {
    batchSize: Math.max(1, batchSize),
    shuffle: false,
    seed,
    dynamicBinarize: false,
    dropLast: false,
  });
}

/** True when z is a flat vector that is also the prior's code (no hierarchy, no grid, no generate step). */
export function hasFlatLatent(model: VaeModel): boolean {
  const lat = model.latent;
  return lat.dim === lat.priorDim && (!lat.shape || lat.shape.length === 1) && !lat.generate;
}
