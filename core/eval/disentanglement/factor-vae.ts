/**
 * FactorVAE disentanglement score (Kim & Mnih 2018, "Disentangling by Factorising",
 * https://arxiv.org/abs/1802.05983), with disentanglement_lib's protocol (factor_vae.py and
 * unsupervised_study_v1/metric_configs/factor_vae_metric.gin):
 *
 * 1. The variance of each code over 10 000 random observations (ddof = 1) normalises the codes;
 *    codes whose standard deviation is below 0.05 (collapsed to the prior) are left out.
 * 2. A vote: pick a factor k uniformly, draw a batch of 64 factor rows with factor k fixed to the
 *    first row's value, encode them, and take the code d of least variance (ddof = 1) relative
 *    to its global variance. The vote is (k, d).
 * 3. 10 000 training votes give a majority-vote classifier: code d -> the factor with the most
 *    votes for d (ties to the lower factor). Its accuracy on those votes is `trainAccuracy`, and
 *    on 5 000 fresh votes `evalAccuracy`, the score.
 */
import { ShapeError } from '../../errors';
import { Rng } from '../../rng';
import { encodeAll, sampleFactorCodes } from './sampling';
import type { GroundTruthData, Representation } from './types';

/** Settings of the FactorVAE score; the defaults are disentanglement_lib's. */
export interface FactorVaeOptions {
  /** Observations of each vote's batch (factor_vae_score.batch_size). Default 64. */
  batchSize: number;
  /** Training votes (num_train). Default 10 000. */
  numTrain: number;
  /** Evaluation votes (num_eval). Default 5 000. */
  numEval: number;
  /** Observations for the global variances (num_variance_estimate). Default 10 000. */
  numVarianceEstimate: number;
  /** Codes with a global standard deviation below this are left out (prune_dims.threshold). Default 0.05. */
  pruneThreshold: number;
}

export const DEFAULT_FACTOR_VAE_OPTIONS: Readonly<FactorVaeOptions> = Object.freeze({
  batchSize: 64,
  numTrain: 10000,
  numEval: 5000,
  numVarianceEstimate: 10000,
  pruneThreshold: 0.05,
});

/** The FactorVAE score and its parts. */
export interface FactorVaeResult {
  /** Accuracy of the majority-vote classifier on the evaluation votes: the score. In [0, 1]. */
  evalAccuracy: number;
  /** Its accuracy on the votes it was built from. */
  trainAccuracy: number;
  /** Codes kept (global standard deviation >= pruneThreshold). */
  numActiveCodes: number;
  /** Factor each code is assigned to by the classifier; -1 for a pruned code. [numCodes] */
  classifier: number[];
  /** Training votes: votes[k][d] counts batches with factor k fixed whose least-varying code was d. [numFactors][numCodes] */
  trainVotes: number[][];
}

/** Variance with ddof = 1 of each column of a row-major [n, width] array. [width] */
export function columnVariances(values: Float64Array, n: number, width: number): Float64Array {
  const mean = new Float64Array(width);
  for (let i = 0; i < n; i++) for (let j = 0; j < width; j++) mean[j] += values[i * width + j];
  for (let j = 0; j < width; j++) mean[j] /= n;
  const v = new Float64Array(width);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < width; j++) {
      const d = values[i * width + j] - mean[j];
      v[j] += d * d;
    }
  }
  for (let j = 0; j < width; j++) v[j] /= n - 1;
  return v;
}

/**
 * The majority-vote classifier of `votes` [numFactors][numCodes] (code d -> argmax_k votes[k][d],
 * ties to the lower k) and its accuracy on `votes` and on `evalVotes`: the fraction of votes
 * (k, d) with classifier[d] = k. Codes in `pruned` are assigned -1 (they receive no votes).
 */
export function majorityVote(votes: number[][], evalVotes: number[][], pruned: boolean[] = []): { classifier: number[]; trainAccuracy: number; evalAccuracy: number } {
  const numFactors = votes.length;
  const numCodes = numFactors > 0 ? votes[0].length : 0;
  const classifier = Array.from({ length: numCodes }, (_, d) => {
    if (pruned[d]) return -1;
    let best = 0;
    for (let k = 1; k < numFactors; k++) if (votes[k][d] > votes[best][d]) best = k;
    return best;
  });
  const accuracy = (v: number[][]) => {
    let right = 0;
    let all = 0;
    for (let k = 0; k < numFactors; k++) {
      for (let d = 0; d < numCodes; d++) {
        all += v[k][d];
        if (classifier[d] === k) right += v[k][d];
      }
    }
    return all > 0 ? right / all : 0;
  };
  return { classifier, trainAccuracy: accuracy(votes), evalAccuracy: accuracy(evalVotes) };
}

/**
 * `count` votes [numFactors][numCodes] (step 2 of the protocol) drawn with `rng`.
 * globalVariance: [numCodes]; active: [numCodes].
 */
function castVotes(
  data: GroundTruthData,
  represent: Representation,
  count: number,
  batchSize: number,
  rng: Rng,
  globalVariance: Float64Array,
  active: boolean[],
): number[][] {
  const F = data.numFactors;
  const numCodes = globalVariance.length;
  const votes = Array.from({ length: F }, () => new Array<number>(numCodes).fill(0));
  for (let t = 0; t < count; t++) {
    const k = rng.int(F);
    const factors = data.sampleFactors(batchSize, rng);
    for (let i = 1; i < batchSize; i++) factors[i * F + k] = factors[k];
    const { codes, numCodes: width } = encodeAll(represent, data.observations(factors, batchSize), batchSize, batchSize);
    if (width !== numCodes) throw new ShapeError(`factorVaeScore: codeDim must stay ${numCodes} for every batch; got ${width}`);
    const local = columnVariances(codes, batchSize, numCodes);
    let best = -1;
    for (let d = 0; d < numCodes; d++) {
      if (!active[d]) continue;
      if (best < 0 || local[d] / globalVariance[d] < local[best] / globalVariance[best]) best = d;
    }
    votes[k][best]++;
  }
  return votes;
}

/**
 * The FactorVAE score of `represent` on `data` (needs batchSize >= 2). Randomness:
 * Rng.derive(seed, 'disentanglement/factor-vae'), one stream for the variances, then the
 * training votes, then the evaluation votes. With no active code, every accuracy is 0.
 */
export function factorVaeScore(
  data: GroundTruthData,
  represent: Representation,
  seed: number,
  options: Partial<FactorVaeOptions> = {},
): FactorVaeResult {
  const o = { ...DEFAULT_FACTOR_VAE_OPTIONS, ...options };
  if (!Number.isInteger(o.batchSize) || o.batchSize < 2) {
    throw new RangeError(`factorVaeScore: batchSize must be an integer of at least 2 (a variance per batch); got ${o.batchSize}`);
  }
  const rng = Rng.derive(seed, 'disentanglement/factor-vae');
  // Rendered and encoded 64 at a time, as disentanglement_lib's eval_batch_size, so that 10 000
  // images never sit in memory at once.
  const { codes, numCodes } = sampleFactorCodes(data, represent, o.numVarianceEstimate, rng, 64);
  const globalVariance = columnVariances(codes, o.numVarianceEstimate, numCodes);
  const active = Array.from(globalVariance, (v) => Math.sqrt(v) >= o.pruneThreshold);
  const numActiveCodes = active.filter(Boolean).length;
  if (numActiveCodes === 0) {
    return {
      evalAccuracy: 0,
      trainAccuracy: 0,
      numActiveCodes: 0,
      classifier: new Array<number>(numCodes).fill(-1),
      trainVotes: Array.from({ length: data.numFactors }, () => new Array<number>(numCodes).fill(0)),
    };
  }
  const trainVotes = castVotes(data, represent, o.numTrain, o.batchSize, rng, globalVariance, active);
  const evalVotes = castVotes(data, represent, o.numEval, o.batchSize, rng, globalVariance, active);
  const vote = majorityVote(trainVotes, evalVotes, active.map((a) => !a));
  return { ...vote, numActiveCodes, trainVotes };
}
