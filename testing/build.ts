/**
 * Helpers for a plugin's own tests: build the parts of an inline experiment against a synthetic
 * DataInfo (no data set is loaded), seeded batches and a tiny synthetic data set, gradients of
 * the loss over chosen variables, and a short Adam run. The conformance kit is built on them.
 */
import * as tf from '@tensorflow/tfjs-core';
import { experimentFromObject, type Experiment } from '../core/config/experiment';
import { resolveParts, type Parts } from '../core/container';
import type { DataInfo, ModelBatch, Objective, Slot, Trainable } from '../core/contracts';
import type { PluginDefinition } from '../core/plugin';
import { PluginRegistry } from '../core/plugin';
import { Rng } from '../core/rng';
import { buildGroups, isDue } from '../core/train/groups';
import { trainableVariables as coreTrainableVariables } from '../core/train/trainer';
import { plugins as builtinPlugins } from '../plugins';

export type { Parts } from '../core/container';

/** MNIST-shaped data info (no data loaded). */
export const MNIST_INFO: DataInfo = { name: 'mnist', shape: [28, 28, 1], dim: 784, numClasses: 10, condDim: 0 };
/** A small image data info, for fast tests: 8x8 grey images, 4 classes, unconditional. */
export const TINY_IMAGE_INFO: DataInfo = { name: 'tiny', shape: [8, 8, 1], dim: 64, numClasses: 4, condDim: 0 };

/** Which plugins an experiment built by these helpers can select. */
export interface PluginSet {
  /** The plugins every slot can choose from; default: vaelab's built-in plugins. */
  builtins?: readonly PluginDefinition[];
  /**
   * More plugins (the ones under test, a plugin package's others). A plugin here replaces a
   * builtin of the same slot and name.
   */
  plugins?: readonly PluginDefinition[];
}

/** A registry of `set.builtins` (default vaelab's) plus `set.plugins`, which win over builtins of the same slot and name. */
export function registryOf(set: PluginSet = {}): PluginRegistry {
  const extra = set.plugins ?? [];
  const replaced = (d: PluginDefinition) => extra.some((e) => e.slot === d.slot && e.name === d.name);
  const registry = new PluginRegistry((set.builtins ?? builtinPlugins).filter((d) => !replaced(d)));
  // One at a time, so that a name given twice in `plugins` is reported as such.
  for (const d of extra) registry.addAll([d], d.source ?? 'plugins given to the test');
  return registry;
}

/**
 * The slot selection the helpers start from: a small MLP VAE (one hidden layer of 16, a
 * 3-dimensional Gaussian latent, standard-normal prior, Bernoulli likelihood, ELBO), seed 0.
 */
export const DEFAULT_EXPERIMENT: Readonly<Record<string, unknown>> = Object.freeze({
  seed: 0,
  encoder: { use: 'mlp', mlp: { hiddenSizes: [16] } },
  latent: { use: 'gaussian', gaussian: { dim: 3 } },
  decoder: { use: 'mlp', mlp: { hiddenSizes: [16] } },
  prior: { use: 'standard-normal' },
  likelihood: { use: 'bernoulli' },
  objective: { use: 'elbo' },
});

/** DEFAULT_EXPERIMENT with whole top-level entries replaced by `over` (a slot's entry is replaced, not merged). */
export function experimentObject(over: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...structuredClone(DEFAULT_EXPERIMENT), ...over };
}

/** Validates an inline experiment (DEFAULT_EXPERIMENT with `over`) against the plugins of `set`. */
export function experimentOf(over: Record<string, unknown> = {}, set: PluginSet = {}): Experiment {
  return experimentFromObject(experimentObject(over), registryOf(set));
}

/**
 * Resolves the parts (model, objective, container) of an inline experiment for `info`.
 * `over` replaces top-level entries of DEFAULT_EXPERIMENT, e.g.
 * `{ prior: { use: 'laplace', laplace: { scale: 0.5 } } }` with `{ plugins: [laplacePrior] }`.
 */
export function buildParts(over: Record<string, unknown> = {}, info: DataInfo = TINY_IMAGE_INFO, set: PluginSet = {}): Parts {
  return resolveParts(experimentOf(over, set), info);
}

/** The instance that fills `slot` in built parts. */
export function slotOf(parts: Parts, slot: Slot): Trainable {
  return slot === 'objective' ? parts.objective : parts.model[slot];
}

/** One-hot float32 rows of `classes` for the given class indices. [indices.length, classes] */
function oneHot(indices: number[], classes: number): tf.Tensor2D {
  return tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(indices, 'int32'), classes), 'float32') as tf.Tensor2D);
}

/**
 * A seeded batch of grey levels in [0, 1]. Shapes: x [n, info.dim]; cond [n, condDim] (one-hot of
 * i % condDim) or null; with `labels`, labels [n, numClasses] (one-hot of i % numClasses) when
 * the data has classes.
 */
export function greyBatch(n: number, info: DataInfo, seed = 1, labels = false): ModelBatch {
  const rng = Rng.derive(seed, 'test-batch');
  const x = rng.uniformTensor([n, info.dim]) as tf.Tensor2D;
  const index = (k: number) => Array.from({ length: n }, (_, i) => i % k);
  const cond = info.condDim > 0 ? oneHot(index(info.condDim), info.condDim) : null;
  const batch: ModelBatch = { x, cond };
  if (labels && info.numClasses > 0) {
    batch.labels = oneHot(index(info.numClasses), info.numClasses);
    // Semi-supervised batches mix both kinds: the label of every odd row is hidden.
    batch.labelMask = tf.tensor1d(index(2).map((r) => 1 - r));
  }
  return batch;
}

/** Disposes a batch's tensors. */
export function disposeBatch(b: ModelBatch): void {
  const all: Array<tf.Tensor | null | undefined> = [b.x, b.cond, b.labels, b.labelMask];
  tf.dispose(all.filter((t): t is tf.Tensor => t != null));
}

/**
 * A tiny synthetic data set that a model can learn quickly: `n` examples of `info`'s shape, each
 * one of 4 fixed random patterns of levels 0.1 and 0.9 (example i shows pattern i % 4) plus
 * uniform noise in [-0.05, 0.05]. cond (when info.condDim > 0) and labels (when info.numClasses > 0)
 * are one-hot of the pattern index modulo their size. Shapes: x [n, info.dim].
 */
export function syntheticData(info: DataInfo, n = 64, seed = 0): ModelBatch {
  const rng = Rng.derive(seed, 'synthetic-patterns');
  const patterns = Array.from({ length: 4 }, () => Array.from({ length: info.dim }, () => (rng.uniform() < 0.5 ? 0.1 : 0.9)));
  const x = new Float32Array(n * info.dim);
  for (let i = 0; i < n; i++) {
    const p = patterns[i % 4];
    for (let d = 0; d < info.dim; d++) x[i * info.dim + d] = p[d] + (rng.uniform() - 0.5) * 0.1;
  }
  const index = (k: number) => Array.from({ length: n }, (_, i) => (i % 4) % k);
  const batch: ModelBatch = {
    x: tf.tensor2d(x, [n, info.dim]),
    cond: info.condDim > 0 ? oneHot(index(info.condDim), info.condDim) : null,
  };
  if (info.numClasses > 0) batch.labels = oneHot(index(info.numClasses), info.numClasses);
  return batch;
}

/** Rows [start, start + size) of a batch. */
export function sliceBatch(b: ModelBatch, start: number, size: number): ModelBatch {
  const rows = <T extends tf.Tensor>(t: T) => tf.slice(t, [start], [size]) as T;
  return {
    x: rows(b.x),
    cond: b.cond ? rows(b.cond) : null,
    ...(b.labels ? { labels: rows(b.labels) } : {}),
    ...(b.labelMask ? { labelMask: rows(b.labelMask) } : {}),
  };
}

/**
 * Every trainable variable of the parts, keyed as in checkpoints: the model's "<slot>/<name>",
 * then the objective's own as "objective/<name>" (each variable once).
 */
export function trainableVariables(parts: Parts): Map<string, tf.Variable> {
  return coreTrainableVariables(parts.model, parts.objective);
}

/**
 * Gradients of `loss` with respect to `vars`, keyed as in `vars`, read off the backend. A
 * variable the loss does not reach has no entry (tf.variableGrads leaves it out).
 */
export function gradientsOf(loss: () => tf.Scalar, vars: Map<string, tf.Variable>): Map<string, Float32Array> {
  const keyOf = new Map([...vars].map(([k, v]) => [v.name, k]));
  const { value, grads } = tf.variableGrads(loss, [...vars.values()]);
  const out = new Map<string, Float32Array>();
  for (const [name, g] of Object.entries(grads)) {
    out.set(keyOf.get(name)!, g.dataSync() as Float32Array);
    g.dispose();
  }
  value.dispose();
  return out;
}

/** mean(objective.terms(batch).loss) in a training pass with the random stream (seed, 'g'). */
export function meanLoss(objective: Objective, batch: ModelBatch, seed = 2, step = 0): tf.Scalar {
  return tf.mean(objective.terms(batch, { training: true, rng: Rng.derive(seed, 'g'), step }).loss) as tf.Scalar;
}

/** Gradients of the objective's mean loss with respect to every trainable variable, keyed as in `trainableVariables`. */
export function lossGrads(parts: Parts, batch: ModelBatch, seed = 2): Map<string, Float32Array> {
  return gradientsOf(() => meanLoss(parts.objective, batch, seed), trainableVariables(parts));
}

/**
 * Gradients of the objective's mean loss with respect to one slot's own variables (the
 * plugin's `variables()`, keyed by its own names), not the global variable registry, where
 * other tests' variables live.
 */
export function pluginGrads(parts: Parts, slot: Slot, batch: ModelBatch, seed = 2): Map<string, Float32Array> {
  return gradientsOf(() => meanLoss(parts.objective, batch, seed), slotOf(parts, slot).variables());
}

/** Settings of `trainSteps`. */
export interface TrainSettings {
  /** Adam steps (default 200). */
  steps?: number;
  /** Adam's learning rate for every group (default 1e-2). */
  learningRate?: number;
  /** Rows per step, taken in order and cycling through the data (default 16). */
  batchSize?: number;
  /** Seed of the steps' random streams (default 0). */
  seed?: number;
  /** Key prefixes of the variables trained, the others frozen, as train.trainable (default []: all). */
  trainable?: readonly string[];
}

/**
 * Trains the parts with Adam as the trainer does (the main group on mean(terms().loss), then each
 * parameter group the objective declares on its own loss, on the steps its `every` and `phase`
 * select; the main group on those of objective.mainUpdate) and returns the
 * main loss of every step, computed before that step's update. Stops early, returning the
 * losses so far, at the first non-finite loss.
 */
export function trainSteps(parts: Parts, data: ModelBatch, settings: TrainSettings = {}): number[] {
  const { steps = 200, learningRate = 1e-2, batchSize = 16, seed = 0, trainable = [] } = settings;
  const rows = data.x.shape[0];
  if (rows < batchSize) throw new RangeError(`trainSteps: the data has ${rows} rows, fewer than batchSize = ${batchSize}`);
  const perEpoch = Math.floor(rows / batchSize);
  const batches = Array.from({ length: perEpoch }, (_, i) => sliceBatch(data, i * batchSize, batchSize));
  const groups = buildGroups(
    trainableVariables(parts),
    parts.objective,
    parts.objective.constructor.name,
    { learningRate, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 },
    trainable,
  );
  const losses: number[] = [];
  try {
    for (let step = 0; step < steps; step++) {
      const batch = batches[step % perEpoch];
      for (const g of groups) {
        const ctx = { training: true, rng: Rng.derive(seed, `train/${g.name}`, step), step };
        if (!isDue(g, step)) {
          // The main group off its schedule (objective.mainUpdate): its loss is still recorded.
          if (!g.def) losses.push(tf.tidy(() => tf.mean(parts.objective.terms(batch, ctx).loss).dataSync()[0]));
          continue;
        }
        const { value, grads } = tf.variableGrads(
          () => (g.def ? g.def.loss(batch, ctx) : (tf.mean(parts.objective.terms(batch, ctx).loss) as tf.Scalar)),
          g.list,
        );
        g.adam.apply(new Map(Object.entries(grads).map(([n, t]) => [g.keyOf.get(n)!, t])), g.learningRate);
        const v = value.dataSync()[0];
        tf.dispose([value, ...Object.values(grads)]);
        if (!g.def) {
          losses.push(v);
          if (!Number.isFinite(v)) return losses;
        }
      }
    }
  } finally {
    for (const g of groups) g.adam.dispose();
    for (const b of batches) disposeBatch(b);
  }
  return losses;
}

/** Disposes every variable and state buffer of the parts (each once): core's own. */
export { disposeParts } from '../core/container';
