/**
 * Parzen estimators of the tree-structured Parzen estimator (Bergstra et al. 2011,
 * https://papers.nips.cc/paper/4443-algorithms-for-hyper-parameter-optimization), built as
 * Optuna's TPESampler documents them (the reference behaviour):
 *
 * - a mixture of one kernel per observation plus a prior kernel (mean at the middle of the
 *   range, scale the whole range) with weight `priorWeight`;
 * - observation weights: 1 each for fewer than 25 observations, else a linear ramp from 1/n to 1
 *   over the oldest n - 25 and 1 for the newest 25 (older trials count less);
 * - numerical kernels are normal distributions truncated to the range (on the log scale for
 *   log distributions); with a step, the mass of the bin [x - step/2, x + step/2]. Univariate
 *   bandwidth: each kernel's scale is the larger distance to its neighbours among the sorted
 *   means (prior's included, the range's ends as outer neighbours; the first and last kernels
 *   take their inner distance), clipped to [range / min(100, n + 2), range] (the "magic clip").
 *   Multivariate bandwidth: 0.2 * n^(-1/(d + 4)) * range for every kernel (Scott's rule);
 * - categorical kernels: each observation's kernel puts priorWeight / (n + 1) on every choice
 *   and 1 more on the observed one, normalised; the prior's is uniform.
 */
import type { Rng } from '../rng';

/** Optuna's default_weights: ones for n < 25, else a ramp 1/n..1 over the oldest n - 25, then 25 ones. */
export function observationWeights(n: number): number[] {
  if (n < 25) return new Array(n).fill(1);
  const ramp = n - 25;
  const out: number[] = [];
  for (let i = 0; i < ramp; i++) out.push(ramp === 1 ? 1 / n : 1 / n + ((1 - 1 / n) * i) / (ramp - 1));
  for (let i = 0; i < 25; i++) out.push(1);
  return out;
}

/** The size of the "below" (good) group of n trials: min(ceil(0.1 n), 25). */
export const gamma = (n: number): number => Math.min(Math.ceil(0.1 * n), 25);

// ----- the standard normal -------------------------------------------------------------------

const LOG_SQRT_2PI = 0.5 * Math.log(2 * Math.PI);

/**
 * log erfc(z) for z >= 0 by the Chebyshev fit erfc(z) = t exp(-z^2 + P(t)), t = 1 / (1 + z/2)
 * (relative error below 1.2e-7 everywhere); in log form it stays finite far into the tail.
 */
function logErfcPos(z: number): number {
  const t = 1 / (1 + 0.5 * z);
  const p =
    -1.26551223 +
    t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  return Math.log(t) - z * z + p;
}

/** log Phi(x), finite for any finite x. */
export function logNormalCdf(x: number): number {
  if (x <= 0) return Math.log(0.5) + logErfcPos(-x / Math.SQRT2);
  return Math.log1p(-0.5 * Math.exp(logErfcPos(x / Math.SQRT2)));
}

/** log (Phi(b) - Phi(a)) for a < b, without cancellation in either tail. */
export function logNormalMass(a: number, b: number): number {
  if (b <= 0) {
    const lb = logNormalCdf(b);
    return lb + Math.log1p(-Math.exp(logNormalCdf(a) - lb));
  }
  if (a >= 0) return logNormalMass(-b, -a);
  return Math.log1p(-(Math.exp(logNormalCdf(a)) + Math.exp(logNormalCdf(-b))));
}

function logSumExp(xs: number[]): number {
  let m = -Infinity;
  for (const x of xs) if (x > m) m = x;
  if (m === -Infinity) return -Infinity;
  let s = 0;
  for (const x of xs) s += Math.exp(x - m);
  return m + Math.log(s);
}

// ----- one dimension -------------------------------------------------------------------------

/** A numerical dimension in the sampler's space (log already taken for log distributions). */
export interface NumericDim {
  kind: 'numeric';
  low: number;
  high: number;
  /** Bin width of a discrete dimension (int, or a stepped uniform), or null. */
  step: number | null;
}

export interface CategoricalDim {
  kind: 'categorical';
  choices: number;
}

export type Dim = NumericDim | CategoricalDim;

/** The kernels of one dimension: per kernel, a (mu, sigma) or a probability row. */
type DimKernels = { kind: 'numeric'; dim: NumericDim; mus: number[]; sigmas: number[] } | { kind: 'categorical'; dim: CategoricalDim; rows: number[][] };

function numericKernels(obs: number[], dim: NumericDim, priorWeightOn: boolean, multivariate: boolean, nDims: number, magicClip: boolean): DimKernels {
  const step = dim.step ?? 0;
  const width = dim.high - dim.low + step;
  const prior = 0.5 * (dim.low + dim.high);
  let sigmas: number[];
  if (multivariate) {
    const s = 0.2 * Math.max(obs.length, 1) ** (-1 / (nDims + 4)) * width;
    sigmas = obs.map(() => s);
  } else {
    const withPrior = priorWeightOn ? [...obs, prior] : [...obs];
    const order = withPrior.map((_, i) => i).sort((i, j) => withPrior[i] - withPrior[j]);
    const sorted = [dim.low - step / 2, ...order.map((i) => withPrior[i]), dim.high + step / 2];
    const sortedSigmas = order.map((_, k) => Math.max(sorted[k + 1] - sorted[k], sorted[k + 2] - sorted[k + 1]));
    if (sorted.length >= 4) {
      // The ends of the range are not neighbours: the outermost kernels take their inner distance.
      sortedSigmas[0] = sorted[2] - sorted[1];
      sortedSigmas[sortedSigmas.length - 1] = sorted[sorted.length - 2] - sorted[sorted.length - 3];
    }
    const byIndex = new Array<number>(withPrior.length);
    order.forEach((i, k) => (byIndex[i] = sortedSigmas[k]));
    sigmas = byIndex.slice(0, obs.length);
  }
  const maxSigma = width;
  const minSigma = magicClip ? width / Math.min(100, 1 + obs.length + (priorWeightOn ? 1 : 0)) : 1e-12;
  sigmas = sigmas.map((s) => Math.min(Math.max(s, minSigma), maxSigma));
  const mus = [...obs];
  if (priorWeightOn) {
    mus.push(prior);
    sigmas.push(width);
  }
  return { kind: 'numeric', dim, mus, sigmas };
}

function categoricalKernels(obs: number[], dim: CategoricalDim, priorWeight: number): DimKernels {
  const nk = obs.length + 1;
  const rows: number[][] = [];
  for (let i = 0; i < nk; i++) {
    const row = new Array(dim.choices).fill(priorWeight / nk);
    if (i < obs.length) row[obs[i]] += 1;
    const s = row.reduce((a, b) => a + b, 0);
    rows.push(row.map((x) => x / s));
  }
  return { kind: 'categorical', dim, rows };
}

/** A draw of kernel k of a dimension. */
function sampleKernel(dk: DimKernels, k: number, rng: Rng): number {
  if (dk.kind === 'categorical') {
    const row = dk.rows[k];
    let u = rng.uniform();
    for (let c = 0; c < row.length; c++) {
      u -= row[c];
      if (u < 0) return c;
    }
    return row.length - 1;
  }
  const { low, high, step } = dk.dim;
  const half = (step ?? 0) / 2;
  const mu = dk.mus[k];
  const sigma = dk.sigmas[k];
  // Every kernel's mean lies in the range and its scale is at most the range's width, so a
  // normal draw lands in the range at least a third of the time: plain rejection is enough.
  let x = mu;
  for (let tries = 0; tries < 1000; tries++) {
    const y = mu + sigma * rng.normal();
    if (y >= low - half && y <= high + half) {
      x = y;
      break;
    }
  }
  if (step !== null) x = Math.min(Math.max(low + Math.round((x - low) / step) * step, low), high);
  return x;
}

/** log density (or mass) of x under kernel k. */
function logKernel(dk: DimKernels, k: number, x: number): number {
  if (dk.kind === 'categorical') return Math.log(dk.rows[k][x]);
  const { low, high, step } = dk.dim;
  const mu = dk.mus[k];
  const sigma = dk.sigmas[k];
  if (step === null) {
    const z = (x - mu) / sigma;
    return -0.5 * z * z - LOG_SQRT_2PI - Math.log(sigma) - logNormalMass((low - mu) / sigma, (high - mu) / sigma);
  }
  const h = step / 2;
  return logNormalMass((x - h - mu) / sigma, (x + h - mu) / sigma) - logNormalMass((low - h - mu) / sigma, (high + h - mu) / sigma);
}

/**
 * A Parzen estimator over one or more dimensions: a mixture whose kernel i is the product of its
 * kernels in every dimension (one dimension: Optuna's univariate TPE; several: multivariate).
 */
export class ParzenEstimator {
  private readonly weights: number[];
  private readonly logWeights: number[];
  private readonly dims: DimKernels[];

  /**
   * obs[i][d]: observation i in dimension d (numeric values in the sampler's space, categorical
   * values as choice indices), oldest first.
   */
  constructor(obs: number[][], dims: Dim[], opts: { priorWeight: number; multivariate: boolean; magicClip: boolean }) {
    const n = obs.length;
    const w = observationWeights(n);
    const weights = n === 0 ? [1] : [...w, opts.priorWeight];
    const total = weights.reduce((a, b) => a + b, 0);
    this.weights = weights.map((x) => x / total);
    this.logWeights = this.weights.map(Math.log);
    this.dims = dims.map((dim, d) => {
      const col = obs.map((o) => o[d]);
      return dim.kind === 'categorical' ? categoricalKernels(col, dim, opts.priorWeight) : numericKernels(col, dim, true, opts.multivariate, dims.length, opts.magicClip);
    });
  }

  /** Mixture weights, normalised (the prior's last). */
  get mixtureWeights(): readonly number[] {
    return this.weights;
  }

  /** The kernels' scales in a numeric dimension (the prior's last), for tests and inspection. */
  sigmas(d: number): number[] {
    const dk = this.dims[d];
    return dk.kind === 'numeric' ? [...dk.sigmas] : [];
  }

  /** n draws: a kernel by weight, then its draw in each dimension. */
  sample(n: number, rng: Rng): number[][] {
    const out: number[][] = [];
    for (let s = 0; s < n; s++) {
      let u = rng.uniform();
      let k = this.weights.length - 1;
      for (let i = 0; i < this.weights.length; i++) {
        u -= this.weights[i];
        if (u < 0) {
          k = i;
          break;
        }
      }
      out.push(this.dims.map((dk) => sampleKernel(dk, k, rng)));
    }
    return out;
  }

  /** log density of a point (one value per dimension). */
  logPdf(x: number[]): number {
    return logSumExp(this.logWeights.map((lw, k) => this.dims.reduce((s, dk, d) => s + logKernel(dk, k, x[d]), lw)));
  }
}
