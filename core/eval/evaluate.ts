/**
 * Evaluation of a trained model on a split: the objective's terms (test ELBO and its parts),
 * the importance-weighted log-likelihood estimate (Burda et al. 2016,
 * https://arxiv.org/abs/1509.00519)
 *   log p(x) ~= log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x),  z_i ~ q(z|x),
 * computed in chunks of samples so that k = 1000 fits in memory, and latent diagnostics: KL per
 * latent dimension and the number of active units (Var_x(E_q[z_d]) > threshold).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { DiagGaussianParams, Features, LatentSample, ModelBatch, Objective, PassOptions, SplitMetrics } from '../contracts';
import { Batcher } from '../data/batcher';
import { conditionOf, type ConditionOptions } from '../data/condition';
import type { Batch, DataSplit, DatasetInfo } from '../data/types';
import { tileSamples } from '../math';
import { disposeLatentSample, type VaeModel } from '../model';
import { Rng } from '../rng';

/** Rows (samples x examples) one importance-sampling chunk may hold at once, for one decoder output per data dimension. */
export const IW_ROW_BUDGET = 10000;

/**
 * How an importance-sampling evaluation is cut: `samples` draws per example at once for `batchSize`
 * examples, so that a chunk's decoder output (rows x dataDim x paramsPerDim floats) stays within
 * what IW_ROW_BUDGET rows of MNIST with one parameter per pixel hold (10 000 x 784 floats). A
 * likelihood with many parameters per dimension (256 levels, a mixture of logistics) gets fewer
 * rows, down to one sample of one example; with one parameter per pixel of MNIST nothing changes.
 */
export function iwChunking(k: number, chunk: number, dataDim: number, paramsPerDim: number): { samples: number; batchSize: number } {
  const rows = Math.max(1, Math.floor((IW_ROW_BUDGET * 784) / (Math.max(1, dataDim) * Math.max(1, paramsPerDim))));
  const cap = Math.min(IW_ROW_BUDGET, rows);
  const samples = Math.max(1, Math.min(chunk, k, cap));
  return { samples, batchSize: Math.max(1, Math.floor(cap / samples)) };
}

/**
 * Turns a data batch into what the model sees: x; cond = one-hot labels when conditioning on
 * them; labels = the one-hot labels whenever the data set has some (all-zero rows where a label
 * is unknown), separate from cond; labelMask = 1 where the example's label is known (Batch.labels
 * >= 0) and 0 where it is hidden, or null when every label of the batch is known. Shapes: labels
 * [B, numClasses], labelMask [B]. The mask is a new tensor: dispose it with disposeModelBatch.
 */
export function toModelBatch(b: Batch, condition: ConditionOptions, shape: readonly number[]): ModelBatch {
  let labelMask: tf.Tensor1D | null = null;
  if (b.y && b.labels.some((l) => l < 0)) {
    labelMask = tf.tensor1d(Float32Array.from(b.labels, (l) => (l >= 0 ? 1 : 0)), 'float32');
  }
  return { x: b.x, cond: conditionOf(b, condition, shape), labels: b.y, labelMask };
}

/**
 * Disposes what toModelBatch made (the label mask, a conditioning input made from the batch);
 * x and labels (and cond when it is the labels) belong to the data batch.
 */
export function disposeModelBatch(mb: ModelBatch): void {
  mb.labelMask?.dispose();
  if (mb.cond && mb.cond !== mb.labels && mb.cond !== mb.x) mb.cond.dispose();
}

/** Disposes a data batch's tensors. */
export function disposeBatch(b: Batch): void {
  b.x.dispose();
  b.y?.dispose();
}

/** What an evaluation needs to know besides the model. */
export interface EvalContext {
  info: DatasetInfo;
  seed: number;
  /** How each batch's conditioning input is made (data.condition). */
  condition: ConditionOptions;
  /** Name of the evaluation's random stream (e.g. "eval/val/3"), so evaluations are reproducible. */
  stream: string;
  batchSize: number;
  /** Global step, for objectives with schedules. */
  step: number;
}

function evalBatcher(split: DataSplit, ctx: EvalContext, batchSize = ctx.batchSize): Batcher {
  return new Batcher(split, ctx.info, { batchSize, shuffle: false, seed: ctx.seed, dynamicBinarize: false, dropLast: false });
}

/** The split-level metrics of one evaluation: running float64 sums on the host (see SplitMetrics). */
export class SplitMetricSums implements SplitMetrics {
  private readonly sums = new Map<string, { sum: Float64Array; shape: string; finish: (sum: Float64Array, examples: number) => number }>();

  add(name: string, value: tf.Tensor, finish: (sum: Float64Array, examples: number) => number): void {
    const v = value.dataSync();
    const shape = `[${value.shape.join(', ')}]`;
    let entry = this.sums.get(name);
    if (!entry) {
      entry = { sum: new Float64Array(v.length), shape, finish };
      this.sums.set(name, entry);
    }
    if (entry.shape !== shape) throw new TypeError(`SplitMetrics.add: metric "${name}" was ${entry.shape} and is now ${shape}; it must keep one shape over the split`);
    for (let j = 0; j < v.length; j++) entry.sum[j] += v[j];
  }

  /** Every metric's finish(sum, examples). */
  finish(examples: number): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, e] of this.sums) out[name] = e.finish(e.sum, examples);
    return out;
  }
}

/**
 * Mean of every objective term over a split, in evaluation mode (training: false). The terms are
 * whatever each call returns: a term that only some batches give is averaged over the examples
 * of those batches. Keys come out with `loss` first, then in the order they first appeared, then
 * the split-level metrics plugins added through `PassOptions.metrics` (SplitMetrics).
 */
export function evaluateTerms(objective: Objective, split: DataSplit, ctx: EvalContext): Record<string, number> {
  const batcher = evalBatcher(split, ctx);
  const sums: Record<string, number> = { loss: 0 };
  const counts: Record<string, number> = { loss: 0 };
  const metrics = new SplitMetricSums();
  let examples = 0;
  let i = 0;
  for (const b of batcher.epoch(0)) {
    const rng = Rng.derive(ctx.seed, ctx.stream, i++);
    const mb = toModelBatch(b, ctx.condition, ctx.info.shape ?? [1, 1, ctx.info.dim]);
    examples += b.size;
    const { names, values } = tf.tidy(() => {
      const t = objective.terms(mb, { training: false, rng, step: ctx.step, cond: mb.cond, metrics });
      const keys = Object.keys(t);
      return { names: keys, values: tf.stack(keys.map((k) => tf.sum(t[k]))) };
    });
    const v = values.dataSync();
    values.dispose();
    names.forEach((k, j) => {
      sums[k] = (sums[k] ?? 0) + v[j];
      counts[k] = (counts[k] ?? 0) + b.size;
    });
    disposeModelBatch(mb);
    disposeBatch(b);
  }
  const out: Record<string, number> = {};
  for (const [k, s] of Object.entries(sums)) if (counts[k] > 0) out[k] = s / counts[k];
  for (const [k, v] of Object.entries(metrics.finish(examples))) {
    if (k in out) throw new TypeError(`evaluateTerms: split metric "${k}" has the name of one of the objective's terms`);
    out[k] = v;
  }
  return out;
}

/**
 * Streams log mean_k exp(log w_k) per example over a split, k weights drawn `chunk` at a time
 * (a running log-sum-exp in float64 on the host, so memory stays flat in k). `logWeights(mb, n,
 * rng)` gives n weights per example of the batch, sample-major: [n * B].
 */
function streamLogMeanExp(
  split: DataSplit,
  ctx: EvalContext,
  k: number,
  c: number,
  batchSize: number,
  name: string,
  logWeights: (mb: ModelBatch, n: number, rng: Rng) => tf.Tensor1D,
): { mean: number; perExample: Float64Array } {
  const batcher = evalBatcher(split, ctx, batchSize);
  const per = new Float64Array(split.n);
  let row = 0;
  let bi = 0;
  for (const b of batcher.epoch(0)) {
    const mb = toModelBatch(b, ctx.condition, ctx.info.shape ?? [1, 1, ctx.info.dim]);
    const m = new Float64Array(b.size).fill(-Infinity);
    const s = new Float64Array(b.size);
    for (let done = 0, ci = 0; done < k; ci++) {
      const n = Math.min(c, k - done);
      const rng = Rng.derive(ctx.seed, `${ctx.stream}/${name}`, bi, ci);
      const lse = tf.tidy(() => tf.logSumExp(tf.reshape(logWeights(mb, n, rng), [n, b.size]), 0));
      const v = lse.dataSync();
      lse.dispose();
      for (let j = 0; j < b.size; j++) {
        const x = v[j];
        if (x === -Infinity) continue;
        if (x > m[j]) {
          s[j] = s[j] * Math.exp(m[j] - x) + 1;
          m[j] = x;
        } else {
          s[j] += Math.exp(x - m[j]);
        }
      }
      done += n;
    }
    for (let j = 0; j < b.size; j++) per[row + j] = m[j] + Math.log(s[j]) - Math.log(k);
    row += b.size;
    bi++;
    disposeModelBatch(mb);
    disposeBatch(b);
  }
  let total = 0;
  for (const v of per) total += v;
  return { mean: total / split.n, perExample: per };
}

/**
 * Mean importance-weighted log-likelihood estimate over a split, with k samples per example
 * drawn `chunk` at a time from q(z|x) (the encoder's posterior); also returns the per-example
 * estimates.
 */
export function iwLogLikelihood(
  model: VaeModel,
  split: DataSplit,
  ctx: EvalContext,
  k: number,
  chunk: number,
): { mean: number; perExample: Float64Array } {
  const { samples: c, batchSize } = iwChunking(k, chunk, ctx.info.dim, model.likelihood.paramsPerDim);
  return streamLogMeanExp(split, ctx, k, c, batchSize, 'iw', (mb, n, rng) => {
    const pass = model.forward(mb, n, { training: false, rng });
    const logW = tf.sub(tf.add(pass.logPx, model.logPrior(pass.latent, mb.cond)), pass.latent.logQ) as tf.Tensor1D;
    disposeLatentSample(pass.latent);
    return logW;
  });
}

/**
 * The plain Monte-Carlo estimate log mean_k p(x | z_k), z_k ~ p(z | y) drawn from the prior (for
 * a conditional prior, from its network given the example's conditioning input): the estimator
 * without a recognition network, as the CVAE paper compares. Unbiased for p(x), so a lower bound
 * of log p(x) in expectation like the IW estimate, but with far more variance: it needs many more
 * samples for the same value. Per-example estimates too.
 */
export function priorLogLikelihood(
  model: VaeModel,
  split: DataSplit,
  ctx: EvalContext,
  k: number,
  chunk: number,
): { mean: number; perExample: Float64Array } {
  const { samples: c, batchSize } = iwChunking(k, chunk, ctx.info.dim, model.likelihood.paramsPerDim);
  return streamLogMeanExp(split, ctx, k, c, batchSize, 'prior', (mb, n, rng) => {
    const B = mb.x.shape[0];
    const condS = tileSamples(mb.cond, n);
    const o = { training: false, rng, cond: condS };
    const zPrior = model.prior.sample(n * B, rng, condS, o);
    const z = model.latent.generate ? model.latent.generate(zPrior, o) : zPrior;
    const xS = n === 1 ? mb.x : tileSamples(mb.x, n)!;
    return model.likelihood.logProb(xS, model.decoder.decode(z, condS, o));
  });
}

/** Latent diagnostics over a split. */
export interface LatentStats {
  /**
   * Mean over examples of KL(q(z_d|x) || p(z_d)) per dimension, or null without a closed form.
   * For a latent that gives only diagnostic statistics (posteriorStats, e.g. a flow's base
   * Gaussian), it is the KL of those Gaussians, a diagnostic rather than the KL of q.
   */
  klPerDim: number[] | null;
  /** Var_x(E_q[z_d]) per dimension. */
  meanVariance: number[];
  /** Dimensions with meanVariance above the threshold. */
  activeUnits: number;
  /**
   * For a latent that reports each layer's q (LatentSample.layerLoc): Var_x(E_q[z_l,d]) and the
   * active units of every stochastic layer, z_1 first and the top last. E_q[z_l | x] is the mean
   * of q(z_l | .)'s mean over `samples` draws of the layers it is conditioned on.
   */
  layers?: Array<{ meanVariance: number[]; activeUnits: number }>;
  /** Draws per example behind `layers`. */
  samples?: number;
}

/**
 * Running per-dimension sums over examples for the activity statistic Var_x(E_q[z_d | x]): of the
 * per-example mean m(x) and its square and, when m(x) is a mean over draws, of the per-example
 * variance over the draws.
 */
class MeanSums {
  sum: Float64Array | null = null;
  sumSq: Float64Array | null = null;
  within: Float64Array | null = null;
  count = 0;

  add(s: ArrayLike<number>, s2: ArrayLike<number>, n: number, w?: ArrayLike<number>): void {
    if (!this.sum) {
      this.sum = new Float64Array(s.length);
      this.sumSq = new Float64Array(s.length);
      this.within = new Float64Array(s.length);
    }
    for (let d = 0; d < s.length; d++) {
      this.sum[d] += s[d];
      this.sumSq![d] += s2[d];
      if (w) this.within![d] += w[d];
    }
    this.count += n;
  }

  /**
   * Var_x(E_q[z_d | x]) per dimension, without the draws' noise: the variance over examples of
   * m(x), the mean of S draws, exceeds it by (N - 1) / N * mean_x Var_draws / S on average, which
   * is subtracted with the unbiased per-example variance over the draws (nothing for draws = 1
   * and exact means, whose `within` stays 0).
   */
  variance(draws = 1): number[] {
    const { sum, sumSq, within, count: n } = this;
    return Array.from(sum!, (v, d) => sumSq![d] / n - (v / n) ** 2 - ((n - 1) / n) * (within![d] / n / draws));
  }
}

/**
 * For each layer of a hierarchical latent, over the batch: sums of m(x), m(x)^2 and of the
 * unbiased variance over draws, m(x) being the mean of layerLoc over `draws` draws (drawn one at
 * a time, so memory stays that of one pass). null when the latent gives no layerLoc.
 */
function layerDrawSums(model: VaeModel, h: Features, opts: PassOptions, draws: number): Array<{ s: tf.Tensor; s2: tf.Tensor; w: tf.Tensor }> | null {
  let sum: tf.Tensor[] | null = null;
  let sumSq: tf.Tensor[] | null = null;
  for (let t = 0; t < draws; t++) {
    const sample = model.latent.sample(h, 1, opts);
    const locs = sample.layerLoc;
    if (!locs) {
      disposeLatentSample(sample);
      tf.dispose([...(sum ?? []), ...(sumSq ?? [])]);
      return null;
    }
    const next = tf.tidy(() => locs.map((loc, l) => [sum ? tf.add(sum[l], loc) : tf.clone(loc), sumSq ? tf.add(sumSq[l], tf.square(loc)) : tf.square(loc)]));
    disposeLatentSample(sample);
    tf.dispose([...(sum ?? []), ...(sumSq ?? [])]);
    sum = next.map((p) => p[0]);
    sumSq = next.map((p) => p[1]);
  }
  const out = tf.tidy(() =>
    sum!.map((total, l) => {
      const m = tf.div(total, draws); // m(x) [B, D_l]
      // unbiased variance over the draws per example: (sum loc^2 - S m^2) / (S - 1)
      const w = draws > 1 ? tf.div(tf.sub(sumSq![l], tf.mul(tf.square(m), draws)), draws - 1) : tf.zerosLike(m);
      return { s: tf.sum(m, 0), s2: tf.sum(tf.square(m), 0), w: tf.sum(w, 0) };
    }),
  );
  tf.dispose([...sum!, ...sumSq!]);
  return out;
}

/**
 * The Gaussian statistics of q the diagnostics use, in this order of preference: the latent's
 * `posteriorStats(h)`, its exact `posterior(h)`, then a sample's `posteriorStats` or `posterior`.
 * loc, logVar: [B, priorDim]; null when the latent gives none.
 */
export function diagnosticGaussian(model: VaeModel, h: Features, opts: PassOptions): { q: DiagGaussianParams | null; sample: LatentSample | null } {
  const lat = model.latent;
  if (lat.posteriorStats) return { q: lat.posteriorStats(h, opts), sample: null };
  if (lat.posterior) return { q: lat.posterior(h, opts), sample: null };
  const sample = lat.sample(h, 1, opts);
  return { q: sample.posteriorStats ?? sample.posterior ?? null, sample };
}

/**
 * KL per dimension and active units. Needs a latent that exposes Gaussian statistics of q
 * (exact `posterior` or diagnostic `posteriorStats`), or a hierarchy whose samples carry
 * `layerLoc` (then `layers`, and the top-level figures are the top layer's when q has no
 * Gaussian statistics of its own); null otherwise.
 */
export function latentStats(model: VaeModel, split: DataSplit, ctx: EvalContext, threshold: number, layerDraws = 10): LatentStats | null {
  const batcher = evalBatcher(split, ctx);
  let layerSums: MeanSums[] | null = null;
  // hierarchies only: their per-layer statistics need draws of the layers (LatentSample.layerLoc)
  let hasLayers = (model.latent.layers ?? 1) > 1;
  const top = new MeanSums();
  let klSum: Float64Array | null = null;
  let hasKl = true;
  let i = 0;
  for (const b of batcher.epoch(0)) {
    const mb = toModelBatch(b, ctx.condition, ctx.info.shape ?? [1, 1, ctx.info.dim]);
    const rng = Rng.derive(ctx.seed, `${ctx.stream}/latent`, i++);
    let noPosterior = false;
    let perLayer: Array<{ s: tf.Tensor; s2: tf.Tensor; w: tf.Tensor }> | null = null;
    const out = tf.tidy(() => {
      const opts: PassOptions = { training: false, rng, cond: mb.cond };
      const h = model.encoder.encode(mb.x, mb.cond, opts);
      if (hasLayers) {
        perLayer = layerDrawSums(model, h, { ...opts, rng: Rng.derive(ctx.seed, `${ctx.stream}/latent-layers`, i) }, layerDraws);
        if (perLayer) for (const t of perLayer) tf.keep(t.s), tf.keep(t.s2), tf.keep(t.w);
      }
      const { q, sample } = diagnosticGaussian(model, h, opts);
      if (!q) {
        noPosterior = true;
        return {};
      }
      const res: Record<string, tf.Tensor> = { s: tf.sum(q.loc, 0), s2: tf.sum(tf.square(q.loc), 0) };
      // Per-dimension KL is defined for flat latents only (no inner layers).
      if (model.prior.analyticKl && model.latent.dim === model.latent.priorDim && !sample?.innerLogPrior) {
        res.kl = tf.sum(model.prior.analyticKl(q, mb.cond, true, opts), 0);
      }
      return res;
    }) as Record<string, tf.Tensor | undefined>;
    disposeModelBatch(mb);
    disposeBatch(b);
    const layerValues = perLayer as Array<{ s: tf.Tensor; s2: tf.Tensor; w: tf.Tensor }> | null;
    if (layerValues) {
      layerSums ??= layerValues.map(() => new MeanSums());
      layerValues.forEach((t, l) => layerSums![l].add(t.s.dataSync(), t.s2.dataSync(), b.size, t.w.dataSync()));
      tf.dispose(layerValues.flatMap((t) => [t.s, t.s2, t.w]));
    } else {
      hasLayers = false;
    }
    if (noPosterior || !out.s || !out.s2) {
      tf.dispose(Object.values(out) as tf.Tensor[]);
      if (hasLayers) continue;
      return null;
    }
    top.add(out.s.dataSync(), out.s2.dataSync(), b.size);
    klSum ??= new Float64Array(out.s.size);
    if (out.kl) {
      const kv = out.kl.dataSync();
      for (let d = 0; d < kv.length; d++) klSum![d] += kv[d];
    } else {
      hasKl = false;
    }
    tf.dispose(Object.values(out) as tf.Tensor[]);
  }
  const active = (variance: number[]) => variance.filter((v) => v > threshold).length;
  const layers = hasLayers && layerSums ? (layerSums as MeanSums[]).map((t) => t.variance(layerDraws)).map((v) => ({ meanVariance: v, activeUnits: active(v) })) : undefined;
  const withLayers = (stats: LatentStats): LatentStats => (layers ? { ...stats, layers, samples: layerDraws } : stats);
  if (!klSum) {
    // no Gaussian q of the top as a whole (a bottom-up hierarchy): the top layer's statistics
    if (!layers) return null;
    const last = layers[layers.length - 1];
    return withLayers({ klPerDim: null, meanVariance: last.meanVariance, activeUnits: last.activeUnits });
  }
  const meanVariance = top.variance();
  return withLayers({
    klPerDim: hasKl ? Array.from(klSum, (v) => v / top.count) : null,
    meanVariance,
    activeUnits: active(meanVariance),
  });
}
