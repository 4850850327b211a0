/**
 * A dry run of the model on two examples before training, so that slots whose sizes do not fit
 * together are reported with the slot, the plugin, the expected and the received shape, not as
 * an error from inside tfjs halfway through an epoch, or as garbage sample grids at the end.
 *
 * Every method of every contract is called once: encode, Latent.sample / mode / posterior /
 * posteriorStats / generate, decode, Likelihood.logProb / mean / sample, Prior.logProb / sample /
 * analyticKl, and the objective's terms in training and in evaluation mode, and the loss of each
 * of its parameter groups.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { ExperimentConfig } from './config/experiment';
import type { DataInfo, DiagGaussianParams, ExampleShape, Features, Objective, PassOptions } from './contracts';
import { ShapeError, VaelabError } from './errors';
import { disposeLatentSample, type VaeModel } from './model';
import type { Slot } from './contracts';
import type { PluginRegistry } from './plugin';
import { Rng } from './rng';

const shapeOf = (t: tf.Tensor) => `[${t.shape.join(', ')}]`;
const show = (s: readonly (number | string)[]) => `[${s.join(', ')}]`;
const sameShape = (t: tf.Tensor, want: readonly number[]) => t.rank === want.length && t.shape.every((d, i) => d === want[i]);

/** Per-example shape of z (latent.shape, or [dim]). */
export function latentShape(latent: VaeModel['latent']): ExampleShape {
  return latent.shape ?? [latent.dim];
}

/** Per-example shape of the code the prior scores (latent.priorShape, or [priorDim]). */
export function priorShape(latent: VaeModel['latent']): ExampleShape {
  return latent.priorShape ?? [latent.priorDim];
}

/** A tensor whose values are all finite. */
function allFinite(t: tf.Tensor): boolean {
  const v = t.dataSync();
  for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i])) return false;
  return true;
}

/** Throws a ShapeError naming the first slot method whose output has the wrong shape. */
export function checkShapes(model: VaeModel, objective: Objective, info: DataInfo, config: ExperimentConfig, registry?: PluginRegistry): void {
  const n = 2;
  // `slot "name"`, and with the registry the module the plugin came from: `slot "name" (module)`.
  const use = (slot: string) => {
    const name = (config as unknown as Record<string, { use: string }>)[slot].use;
    const source = registry?.get(slot as Slot, name)?.source;
    return `${slot} "${name}"${source ? ` (${source})` : ''}`;
  };
  let stage = use('encoder');
  const expect = (ok: boolean, message: () => string) => {
    if (!ok) throw new ShapeError(message());
  };
  // The dry run calls the objective in training mode, which may update state (EMA codebooks,
  // running statistics): it is put back afterwards, so the run starts from the built values.
  const state = [...model.state(), ...(objective.state?.() ?? new Map())].map(([, v]) => [v, tf.clone(v)] as const);
  try {
    tf.tidy(() => {
      const x = tf.fill([n, info.dim], 0.5) as tf.Tensor2D;
      const cond = info.condDim > 0 ? (tf.cast(tf.oneHot(tf.tensor1d([0, 1 % info.condDim], 'int32'), info.condDim), 'float32') as tf.Tensor2D) : null;
      // With labels, one labelled example and one whose label is hidden (a semi-supervised batch).
      const labels = info.numClasses > 0 ? (tf.cast(tf.oneHot(tf.tensor1d([0, 1 % info.numClasses], 'int32'), info.numClasses), 'float32') as tf.Tensor2D) : null;
      const labelMask = labels ? tf.tensor1d([1, 0]) : null;
      const opts: PassOptions = { training: false, rng: Rng.derive(config.seed, 'shape-check'), cond };
      const enc = model.encoder;
      const h: Features = enc.encode(x, cond, opts);
      if (enc.outputShapes) {
        const want = enc.outputShapes;
        expect(Array.isArray(h) && h.length === want.length, () => `${stage}.encode: must return a list of ${want.length} feature tensors (its outputShapes ${want.map(show).join(', ')}); got ${Array.isArray(h) ? `${h.length}` : `one tensor ${shapeOf(h)}`}`);
        (h as tf.Tensor[]).forEach((t, i) =>
          expect(sameShape(t, [n, ...want[i]]), () => `${stage}.encode: feature ${i} must be [N, ${want[i].join(', ')}] (its outputShapes[${i}]); got ${shapeOf(t)}`),
        );
      } else {
        expect(!Array.isArray(h) && sameShape(h, [n, enc.outputDim]), () =>
          `${stage}.encode: must return [N, ${enc.outputDim}] (its outputDim; declare outputShapes to return several or shaped features); got ${Array.isArray(h) ? `a list of ${h.length} tensors` : shapeOf(h)}`,
        );
      }

      stage = use('latent');
      const lat = model.latent;
      const zShape = latentShape(lat);
      const pShape = priorShape(lat);
      const prod = (s: ExampleShape) => s.reduce((p, d) => p * d, 1);
      expect(prod(zShape) === lat.dim, () => `${stage}: shape ${show(zShape)} holds ${prod(zShape)} values but dim is ${lat.dim}`);
      expect(prod(pShape) === lat.priorDim, () => `${stage}: priorShape ${show(pShape)} holds ${prod(pShape)} values but priorDim is ${lat.priorDim}`);
      // Two samples per input first (the sample-major layout), then one for the rest of the run.
      const s2 = lat.sample(h, 2, opts);
      expect(sameShape(s2.z, [2 * n, ...zShape]), () => `${stage}.sample: z must be [S*N, ${zShape.join(', ')}] (its shape) for S = 2 samples of N = ${n}; got ${shapeOf(s2.z)}`);
      expect(s2.samples === 2, () => `${stage}.sample: samples must be 2 (as asked); got ${s2.samples}`);
      expect(sameShape(s2.logQ, [2 * n]), () => `${stage}.sample: logQ must be [S*N] = [${2 * n}] for S = 2 samples of N = ${n}; got ${shapeOf(s2.logQ)}`);
      disposeLatentSample(s2);
      const s = lat.sample(h, 1, opts);
      const rows = n;
      expect(sameShape(s.z, [rows, ...zShape]), () => `${stage}.sample: z must be [N, ${zShape.join(', ')}] (its shape); got ${shapeOf(s.z)}`);
      const pz = s.priorZ ?? s.z;
      expect(sameShape(pz, [rows, ...pShape]), () => `${stage}.sample: priorZ must be [N, ${pShape.join(', ')}] (its priorShape); got ${shapeOf(pz)}`);
      expect(sameShape(s.logQ, [rows]), () => `${stage}.sample: logQ must be [N] = [${rows}]; got ${shapeOf(s.logQ)}`);
      const checkGauss = (q: DiagGaussianParams | undefined, what: string) => {
        if (!q) return;
        for (const [k, t] of [['loc', q.loc], ['logVar', q.logVar]] as const) {
          expect(sameShape(t, [n, lat.priorDim]), () => `${stage}.${what}: ${k} must be [N, ${lat.priorDim}] (its priorDim); got ${shapeOf(t)}`);
        }
      };
      checkGauss(s.posterior, 'sample: posterior');
      checkGauss(s.posteriorStats, 'sample: posteriorStats');
      if (s.innerLogPrior) expect(sameShape(s.innerLogPrior, [rows]), () => `${stage}.sample: innerLogPrior must be [S*N] = [${rows}]; got ${shapeOf(s.innerLogPrior!)}`);
      if (s.innerKl) expect(sameShape(s.innerKl, [n]), () => `${stage}.sample: innerKl must be [N] = [${n}]; got ${shapeOf(s.innerKl!)}`);
      (s.layerKl ?? []).forEach((t, i) => expect(sameShape(t, [rows]) || sameShape(t, [n]), () => `${stage}.sample: layerKl[${i}] must be [S*N] = [${rows}] or [N] = [${n}]; got ${shapeOf(t)}`));
      if (s.layerLoc) {
        const layers = lat.layers ?? 1;
        expect(s.layerLoc.length === layers, () => `${stage}.sample: layerLoc must hold one tensor per stochastic layer (latent.layers = ${layers}); got ${s.layerLoc!.length}`);
        s.layerLoc.forEach((t, i) => expect(t.rank === 2 && t.shape[0] === rows, () => `${stage}.sample: layerLoc[${i}] must be [S*N, D] with S*N = ${rows}; got ${shapeOf(t)}`));
      }
      for (const [k, t] of Object.entries(s.terms ?? {})) expect(sameShape(t, [n]), () => `${stage}.sample: term "${k}" must be [N] = [${n}]; got ${shapeOf(t)}`);
      if (lat.posterior) checkGauss(lat.posterior(h, opts), 'posterior');
      if (lat.posteriorStats) checkGauss(lat.posteriorStats(h, opts), 'posteriorStats');
      const mode = lat.mode(h, opts);
      expect(sameShape(mode, [n, ...zShape]), () => `${stage}.mode: must return [N, ${zShape.join(', ')}] (its shape); got ${shapeOf(mode)}`);

      stage = use('decoder');
      const condS = cond;
      const params = model.decoder.decode(s.z, condS, { ...opts, cond: condS });
      const want = info.dim * model.likelihood.paramsPerDim;
      expect(sameShape(params, [rows, want]), () =>
        `${stage}.decode: must return [N, ${want}] (data dim ${info.dim} x ${use('likelihood')} paramsPerDim ${model.likelihood.paramsPerDim}); got ${shapeOf(params)}`,
      );

      stage = use('likelihood');
      const lik = model.likelihood;
      const lp = lik.logProb(x, params);
      expect(sameShape(lp, [rows]), () => `${stage}.logProb: must return [N]; got ${shapeOf(lp)}`);
      const mean = lik.mean(params);
      expect(sameShape(mean, [rows, info.dim]), () => `${stage}.mean: must return [N, ${info.dim}] (the data dim); got ${shapeOf(mean)}`);
      const xs = lik.sample(params, Rng.derive(config.seed, 'shape-check', 1));
      expect(sameShape(xs, [rows, info.dim]), () => `${stage}.sample: must return [N, ${info.dim}] (the data dim); got ${shapeOf(xs)}`);

      stage = use('prior');
      const prior = model.prior;
      const lpz = prior.logProb(pz, condS, { ...opts, cond: condS });
      expect(sameShape(lpz, [rows]), () => `${stage}.logProb: must return [N]; got ${shapeOf(lpz)}`);
      const zp = prior.sample(n, Rng.derive(config.seed, 'shape-check', 2), cond, opts);
      expect(sameShape(zp, [n, ...pShape]), () => `${stage}.sample: must return [n, ${pShape.join(', ')}] (${use('latent')} priorShape) for n = ${n}; got ${shapeOf(zp)}`);
      expect(allFinite(zp), () => `${stage}.sample: returned non-finite values`);
      if (prior.analyticKl && s.posterior) {
        const kl = prior.analyticKl(s.posterior, cond, false, opts);
        expect(sameShape(kl, [n]), () => `${stage}.analyticKl: must return [B] = [${n}]; got ${shapeOf(kl)}`);
        const klPerDim = prior.analyticKl(s.posterior, cond, true, opts);
        expect(sameShape(klPerDim, [n, lat.priorDim]), () => `${stage}.analyticKl: with perDim it must return [B, ${lat.priorDim}] (${use('latent')} priorDim); got ${shapeOf(klPerDim)}`);
      }

      stage = use('latent');
      if (lat.generate) {
        const g = lat.generate(zp, opts);
        expect(sameShape(g, [n, ...zShape]), () => `${stage}.generate: must return [n, ${zShape.join(', ')}] (its shape) from prior draws [n, ${pShape.join(', ')}]; got ${shapeOf(g)}`);
      } else {
        expect(prod(pShape) === prod(zShape) && pShape.length === zShape.length && pShape.every((d, i) => d === zShape[i]), () =>
          `${stage}: has no generate method, so prior draws [n, ${pShape.join(', ')}] go to the decoder as z, which must be [n, ${zShape.join(', ')}]; give the latent a generate method`,
        );
      }
      disposeLatentSample(s);

      stage = use('objective');
      for (const training of [true, false]) {
        const terms = objective.terms({ x, cond, labels, labelMask }, { ...opts, training, step: 0 });
        expect(terms.loss !== undefined, () => `${stage}.terms: must return a "loss" term`);
        for (const [k, t] of Object.entries(terms)) {
          expect(sameShape(t, [n]), () => `${stage}.terms: term "${k}" must be [B]; got ${shapeOf(t)}`);
        }
      }
      for (const g of objective.groups?.() ?? []) {
        const l = g.loss({ x, cond, labels, labelMask }, { ...opts, training: true, step: 0 });
        expect(l.rank === 0, () => `${stage}.groups: the loss of group "${g.name}" must be a scalar; got ${shapeOf(l)}`);
      }
    });
  } catch (e) {
    if (e instanceof VaelabError) throw e;
    throw new ShapeError(`${stage}: dry run on 2 examples of shape [${info.shape.join(', ')}] failed: ${(e as Error).message.split('\n')[0]}`);
  } finally {
    for (const [v, saved] of state) {
      v.assign(saved);
      saved.dispose();
    }
  }
}

/** The names of the objective's terms (loss first), from one evaluation-mode call. */
export function objectiveTermNames(objective: Objective, info: DataInfo, seed: number): string[] {
  return tf.tidy(() => {
    const x = tf.fill([1, info.dim], 0.5) as tf.Tensor2D;
    const cond = info.condDim > 0 ? (tf.zeros([1, info.condDim]) as tf.Tensor2D) : null;
    const t = objective.terms({ x, cond }, { training: false, rng: Rng.derive(seed, 'term-names'), step: 0, cond });
    return ['loss', ...Object.keys(t).filter((k) => k !== 'loss')];
  });
}
