/**
 * Latent traversals: decode a code in which one latent dimension at a time sweeps a range while
 * the others keep the posterior mode of one input. One row per dimension, the dimensions sorted
 * by their mean KL(q(z_d|x) || p(z_d)) over the examples when the prior gives it in closed form
 * (standard normal), else by Var_x(E_q[z_d]) (the active-unit statistic), largest first.
 *
 * The range of dimension d is centre_d ± `spread` standard deviations of the aggregate posterior
 * q(z_d) = E_x[q(z_d|x)]: centre_d = E_x[mu_d], variance Var_x(mu_d) + E_x[sigma_d^2]. For a
 * prior the posterior matches (a used dimension under a standard normal) this is about ±spread;
 * it follows a learnt prior's scale (mixture, VampPrior) without knowing it; an unused dimension
 * (q = p) gets the prior's range and its row shows that the decoder ignores it.
 *
 * Flat latents with Gaussian statistics of q only (latent.posterior or posteriorStats, z = the
 * prior's code); others (hierarchies, grids of codes) get no traversal (null).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { ConditionOptions } from '../data/condition';
import type { DataSplit, DatasetInfo } from '../data/types';
import type { VaeModel } from '../model';
import { Rng } from '../rng';
import { diagnosticGaussian, disposeBatch, disposeModelBatch, toModelBatch } from './evaluate';
import { hasFlatLatent, headBatcher } from './split-head';

/** Per-dimension statistics of q over a set of examples. Each array has one entry per dimension. */
export interface PosteriorSummary {
  /** Mean over examples of the analytic KL(q(z_d|x) || p(z_d)), or null without a closed form. */
  klPerDim: number[] | null;
  /** E_x[mu_d]. */
  locMean: number[];
  /** Var_x(mu_d). */
  locVariance: number[];
  /** E_x[sigma_d^2]. */
  varianceMean: number[];
}

/** One traversal row: the dimension, its ordering score, and the values it takes. */
export interface TraversalRow {
  dim: number;
  score: number;
  values: number[];
}

/** The plan of a traversal picture. */
export interface TraversalPlan {
  /** What the rows are sorted by. */
  order: 'kl' | 'mean-variance';
  rows: TraversalRow[];
}

/**
 * Which dimensions to traverse and through which values: the `rows` dimensions with the largest
 * KL (or Var_x(mu_d) without one), ties to the lower index, each over `cols` evenly spaced values
 * from centre - spread*sd to centre + spread*sd of the aggregate posterior.
 */
export function traversalPlan(s: PosteriorSummary, rows: number, cols: number, spread: number): TraversalPlan {
  const order = s.klPerDim ? 'kl' : 'mean-variance';
  const score = s.klPerDim ?? s.locVariance;
  const dims = score.map((_, d) => d).sort((a, b) => score[b] - score[a] || a - b).slice(0, rows);
  return {
    order,
    rows: dims.map((d) => {
      const sd = Math.sqrt(Math.max(0, s.locVariance[d]) + Math.max(0, s.varianceMean[d]));
      const lo = s.locMean[d] - spread * sd;
      const step = cols > 1 ? (2 * spread * sd) / (cols - 1) : 0;
      return { dim: d, score: score[d], values: Array.from({ length: cols }, (_, j) => (cols > 1 ? lo + j * step : s.locMean[d])) };
    }),
  };
}

/** Options of `latentTraversal`. */
export interface TraversalOptions {
  info: DatasetInfo;
  condition: ConditionOptions;
  seed: number;
  /** Dimensions shown (at most latent.dim). */
  rows: number;
  /** Values per dimension. */
  cols: number;
  /** Half-width of the range in aggregate-posterior standard deviations. */
  spread: number;
  /** Examples the statistics are taken over (the first of the split). */
  examples: number;
  /** Which example's posterior mode the other dimensions keep (index into the split). */
  base: number;
  batchSize: number;
}

/** A traversal picture's content: the plan and its images, row-major ([rows * cols, dataDim]). */
export interface Traversal extends TraversalPlan {
  cols: number;
  images: Float32Array;
}

/**
 * Statistics of q(z|x) over the first `examples` examples of a split, or null when the latent is
 * not flat or gives no Gaussian statistics.
 */
export function summarisePosterior(model: VaeModel, split: DataSplit, o: TraversalOptions): PosteriorSummary | null {
  if (!hasFlatLatent(model)) return null;
  const n = Math.min(o.examples, split.n);
  const batcher = headBatcher(split, n, o.info, o.seed, o.batchSize);
  const dim = model.latent.dim;
  const sum = new Float64Array(dim);
  const sumSq = new Float64Array(dim);
  const sumVar = new Float64Array(dim);
  const klSum = new Float64Array(dim);
  let hasKl = !!model.prior.analyticKl;
  let i = 0;
  for (const b of batcher.epoch(0)) {
    const mb = toModelBatch(b, o.condition, o.info.shape ?? [1, 1, o.info.dim]);
    let missing = false;
    const out = tf.tidy(() => {
      const opts = { training: false, rng: Rng.derive(o.seed, 'traversal/stats', i++), cond: mb.cond };
      const h = model.encoder.encode(mb.x, mb.cond, opts);
      const { q, sample } = diagnosticGaussian(model, h, opts);
      if (!q || sample?.innerLogPrior) {
        missing = true;
        return [];
      }
      const parts = [tf.sum(q.loc, 0), tf.sum(tf.square(q.loc), 0), tf.sum(tf.exp(q.logVar), 0)];
      if (hasKl) parts.push(tf.sum(model.prior.analyticKl!(q, mb.cond, true, opts), 0));
      return parts;
    });
    disposeModelBatch(mb);
    disposeBatch(b);
    if (missing) return null;
    const vals = out.map((t) => t.dataSync());
    tf.dispose(out);
    for (let d = 0; d < dim; d++) {
      sum[d] += vals[0][d];
      sumSq[d] += vals[1][d];
      sumVar[d] += vals[2][d];
      if (hasKl) klSum[d] += vals[3][d];
    }
  }
  if (n === 0) hasKl = false;
  const locMean = Array.from(sum, (s) => s / n);
  return {
    klPerDim: hasKl ? Array.from(klSum, (s) => s / n) : null,
    locMean,
    locVariance: Array.from(sumSq, (s, d) => Math.max(0, s / n - locMean[d] ** 2)),
    varianceMean: Array.from(sumVar, (s) => s / n),
  };
}

/**
 * The traversal of the `rows` most informative dimensions around the posterior mode of example
 * `base`, decoded to E[x|z]; null when the latent is not flat or has no Gaussian statistics.
 */
export function latentTraversal(model: VaeModel, split: DataSplit, o: TraversalOptions): Traversal | null {
  const summary = summarisePosterior(model, split, o);
  if (!summary || split.n === 0) return null;
  const plan = traversalPlan(summary, Math.min(o.rows, model.latent.dim), o.cols, o.spread);
  const base = Math.min(o.base, split.n - 1);
  const one = headBatcher(split, 1, o.info, o.seed, 1, base).batch(0, 0);
  const mb = toModelBatch(one, o.condition, o.info.shape ?? [1, 1, o.info.dim]);
  const images = tf.tidy(() => {
    const opts = { training: false, rng: Rng.derive(o.seed, 'traversal/decode'), cond: mb.cond };
    const mode = tf.reshape(model.latent.mode(model.encoder.encode(mb.x, mb.cond, opts), opts), [1, model.latent.dim]);
    const modeValues = mode.dataSync();
    const n = plan.rows.length * o.cols;
    const z = new Float32Array(n * model.latent.dim);
    plan.rows.forEach((row, r) => {
      row.values.forEach((v, c) => {
        const off = (r * o.cols + c) * model.latent.dim;
        z.set(modeValues, off);
        z[off + row.dim] = v;
      });
    });
    const cond = mb.cond ? tf.tile(mb.cond, [n, 1]) as tf.Tensor2D : null;
    const decOpts = { ...opts, cond };
    return model.likelihood.mean(model.decoder.decode(tf.tensor2d(z, [n, model.latent.dim]), cond, decOpts));
  });
  const data = images.dataSync() as Float32Array;
  images.dispose();
  disposeModelBatch(mb);
  disposeBatch(one);
  return { ...plan, cols: o.cols, images: data };
}
