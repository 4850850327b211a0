/**
 * The training split as plugins see it for data-dependent initialisation
 * (Trainable.initFromData): random distinct examples with their conditioning input.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { TrainingExamples } from '../contracts';
import type { Rng } from '../rng';
import { Batcher } from './batcher';
import { conditionOf, type ConditionOptions } from './condition';
import type { DataSplit, DatasetInfo } from './types';

/** `split` as TrainingExamples: draws are grey levels as stored, cond as training batches make it. */
export function trainingExamples(split: DataSplit, info: DatasetInfo, condition: ConditionOptions): TrainingExamples {
  return {
    n: split.n,
    draw(count: number, rng: Rng) {
      const m = Math.max(0, Math.min(Math.floor(count), split.n));
      const rows = rng.permutation(split.n).subarray(0, m);
      const x = new Float32Array(m * info.dim);
      const labels = new Int32Array(m);
      rows.forEach((r, i) => {
        x.set(split.x.subarray(r * info.dim, (r + 1) * info.dim), i * info.dim);
        labels[i] = split.labels[r];
      });
      const b = new Batcher({ x, labels, n: m }, info, { batchSize: Math.max(1, m), shuffle: false, seed: 0, dynamicBinarize: false, dropLast: false }).batch(0, 0);
      const cond = conditionOf(b, condition, info.shape ?? [1, 1, info.dim]);
      if (b.y && b.y !== cond) b.y.dispose();
      return { x: b.x, cond };
    },
  };
}

/** Calls initFromData of every part that has it, in the given order, each with its own stream. */
export function initFromData(parts: Array<[string, { initFromData?: (d: TrainingExamples, r: Rng) => void }]>, data: TrainingExamples, rngOf: (name: string) => Rng): string[] {
  const done: string[] = [];
  for (const [name, part] of parts) {
    if (typeof part.initFromData === 'function') {
      tf.tidy(() => part.initFromData!(data, rngOf(name)));
      done.push(name);
    }
  }
  return done;
}
