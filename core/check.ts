/**
 * A dry run of the model on two examples before training, so that slots whose sizes do not fit
 * together are reported with the slot, the plugin, the expected and the received shape, not as
 * an error from inside tfjs halfway through an epoch.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { ExperimentConfig } from './config/experiment';
import type { DataInfo, Objective } from './contracts';
import { ShapeError, VaelabError } from './errors';
import { disposeLatentSample, type VaeModel } from './model';
import type { Slot } from './contracts';
import type { PluginRegistry } from './plugin';
import { Rng } from './rng';

const shapeOf = (t: tf.Tensor) => `[${t.shape.join(', ')}]`;

/** Throws a ShapeError naming the first slot whose output has the wrong shape. */
export function checkShapes(model: VaeModel, objective: Objective, info: DataInfo, config: ExperimentConfig, registry?: PluginRegistry): void {
  const n = 2;
  const use = (slot: keyof ExperimentConfig & string) => `${slot} "${(config as unknown as Record<string, { use: string }>)[slot].use}"`;
  let stage = use('encoder');
  try {
    tf.tidy(() => {
      const x = tf.fill([n, info.dim], 0.5) as tf.Tensor2D;
      const cond = info.condDim > 0 ? (tf.cast(tf.oneHot(tf.tensor1d([0, 1 % info.condDim], 'int32'), info.condDim), 'float32') as tf.Tensor2D) : null;
      const opts = { training: false, rng: Rng.derive(config.seed, 'shape-check') };
      const h = model.encoder.encode(x, cond, opts);
      if (h.rank !== 2 || h.shape[0] !== n || h.shape[1] !== model.encoder.outputDim) {
        throw new ShapeError(`${stage}.encode: must return [N, ${model.encoder.outputDim}] (its outputDim); got ${shapeOf(h)}`);
      }
      stage = use('latent');
      const s = model.latent.sample(h, 1, opts);
      if (s.z.rank !== 2 || s.z.shape[0] !== n || s.z.shape[1] !== model.latent.dim) {
        throw new ShapeError(`${stage}.sample: z must be [N, ${model.latent.dim}] (its dim); got ${shapeOf(s.z)}`);
      }
      const pz = s.priorZ ?? s.z;
      if (pz.shape[1] !== model.latent.priorDim) {
        throw new ShapeError(`${stage}.sample: priorZ must be [N, ${model.latent.priorDim}] (its priorDim); got ${shapeOf(pz)}`);
      }
      stage = use('decoder');
      const params = model.decoder.decode(s.z, cond, opts);
      const want = info.dim * model.likelihood.paramsPerDim;
      if (params.rank !== 2 || params.shape[0] !== n || params.shape[1] !== want) {
        throw new ShapeError(
          `${stage}.decode: must return [N, ${want}] (data dim ${info.dim} x ${use('likelihood')} paramsPerDim ${model.likelihood.paramsPerDim}); got ${shapeOf(params)}`,
        );
      }
      stage = use('likelihood');
      const lp = model.likelihood.logProb(x, params);
      if (lp.rank !== 1 || lp.shape[0] !== n) throw new ShapeError(`${stage}.logProb: must return [N]; got ${shapeOf(lp)}`);
      stage = use('prior');
      const lpz = model.prior.logProb(pz, cond);
      if (lpz.rank !== 1 || lpz.shape[0] !== n) throw new ShapeError(`${stage}.logProb: must return [N]; got ${shapeOf(lpz)}`);
      disposeLatentSample(s);
      stage = use('objective');
      const terms = objective.terms({ x, cond }, { ...opts, step: 0 });
      if (!terms.loss) throw new ShapeError(`${stage}.terms: must return a "loss" term`);
      for (const [k, t] of Object.entries(terms)) {
        if (t.rank !== 1 || t.shape[0] !== n) throw new ShapeError(`${stage}.terms: term "${k}" must be [B]; got ${shapeOf(t)}`);
      }
    });
  } catch (e) {
    if (e instanceof VaelabError) throw e;
    // Name the module the failing plugin came from (stage is `slot "name"`), when the registry is given.
    const slot = stage.slice(0, stage.indexOf(' ')) as Slot;
    const source = registry?.get(slot, config[slot].use)?.source;
    throw new ShapeError(`${stage}${source ? ` (${source})` : ''}: dry run on 2 examples of shape [${info.shape.join(', ')}] failed: ${(e as Error).message.split('\n')[0]}`);
  }
}

/** The names of the objective's terms (loss first), from a dry run. */
export function objectiveTermNames(objective: Objective, info: DataInfo, seed: number): string[] {
  return tf.tidy(() => {
    const x = tf.fill([1, info.dim], 0.5) as tf.Tensor2D;
    const cond = info.condDim > 0 ? (tf.zeros([1, info.condDim]) as tf.Tensor2D) : null;
    const t = objective.terms({ x, cond }, { training: false, rng: Rng.derive(seed, 'term-names'), step: 0 });
    return ['loss', ...Object.keys(t).filter((k) => k !== 'loss')];
  });
}
