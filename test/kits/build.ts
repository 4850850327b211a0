/**
 * Test helpers: build a model from an inline experiment against a synthetic DataInfo, without
 * loading any data set, and compute gradients of a loss over a chosen variable list.
 */
import * as tf from '@tensorflow/tfjs-core';
import { experimentFromObject } from '../../core/config/experiment';
import { resolveParts, type Parts } from '../../core/container';
import type { DataInfo, ModelBatch } from '../../core/contracts';
import { PluginRegistry } from '../../core/plugin';
import { Rng } from '../../core/rng';
import { trainableVariables } from '../../core/train/trainer';
import { plugins } from '../../plugins';

/** The built-in registry. */
export const builtins = () => new PluginRegistry(plugins);

/** MNIST-shaped data info (no data loaded). */
export const MNIST_INFO: DataInfo = { name: 'mnist', shape: [28, 28, 1], dim: 784, numClasses: 10, condDim: 0 };
/** A small image data info, for fast tests. */
export const TINY_IMAGE_INFO: DataInfo = { name: 'tiny', shape: [8, 8, 1], dim: 64, numClasses: 4, condDim: 0 };

/** A full slot selection: defaults to the plain MLP VAE; override any slot. */
export function experimentObject(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    seed: 0,
    encoder: { use: 'mlp', mlp: { hiddenSizes: [16] } },
    latent: { use: 'gaussian', gaussian: { dim: 3 } },
    decoder: { use: 'mlp', mlp: { hiddenSizes: [16] } },
    prior: { use: 'standard-normal' },
    likelihood: { use: 'bernoulli' },
    objective: { use: 'elbo' },
    ...over,
  };
}

/** Resolves the parts of an inline experiment for `info`. */
export function buildParts(over: Record<string, unknown> = {}, info: DataInfo = TINY_IMAGE_INFO): Parts {
  const exp = experimentFromObject(experimentObject(over), builtins());
  return resolveParts(exp, info);
}

/** A seeded batch of grey levels in [0, 1]. Shapes: x [n, info.dim], cond [n, condDim] or null. */
export function greyBatch(n: number, info: DataInfo, seed = 1): ModelBatch {
  const rng = Rng.derive(seed, 'test-batch');
  const x = rng.uniformTensor([n, info.dim]) as tf.Tensor2D;
  const cond =
    info.condDim > 0
      ? (tf.cast(tf.oneHot(tf.tensor1d(Array.from({ length: n }, (_, i) => i % info.condDim), 'int32'), info.condDim), 'float32') as tf.Tensor2D)
      : null;
  return { x, cond };
}

/** Gradients of the objective's mean loss with respect to every trainable variable, keyed by name. */
export function lossGrads(parts: Parts, batch: ModelBatch, seed = 2): Map<string, Float32Array> {
  const vars = trainableVariables(parts.model, parts.objective);
  const list = [...vars.values()];
  const keyOf = new Map(list.map((v) => [v.name, [...vars.entries()].find(([, w]) => w === v)![0]]));
  const { value, grads } = tf.variableGrads(
    () => tf.mean(parts.objective.terms(batch, { training: true, rng: Rng.derive(seed, 'g'), step: 0 }).loss) as tf.Scalar,
    list,
  );
  const out = new Map<string, Float32Array>();
  for (const [name, g] of Object.entries(grads)) {
    out.set(keyOf.get(name)!, g.dataSync() as Float32Array);
    g.dispose();
  }
  value.dispose();
  return out;
}
