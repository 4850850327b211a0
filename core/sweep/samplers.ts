/**
 * Samplers: which point the next trial runs. Grid walks the grid in order; random draws from the
 * parameters' distributions with a seeded stream per suggestion; TPE (core/sweep/parzen.ts)
 * models good and bad trials separately and proposes where their density ratio is highest.
 * Every sampler is a pure function of the sweep, the suggestion's index and the history, so a
 * resumed sweep suggests what the uninterrupted one would have.
 */
import { getPath } from '../config/experiment';
import { Rng } from '../rng';
import { ParzenEstimator, gamma, type Dim } from './parzen';
import { gridPoints, randomPoint, randomStream } from './points';
import { applies, isLog, quantise, sameValue, type Param, type Params } from './space';
import type { SweepSpec } from './spec';

/** What a sampler knows of a trial. */
export interface Observation {
  number: number;
  params: Params;
  /** complete: ended with a final value; pruned: stopped early (value = its last intermediate); running: no value yet. */
  state: 'complete' | 'pruned' | 'running';
  value: number | null;
  /** Epochs reported (pruned trials that went further rank better). */
  lastEpoch: number;
}

export interface Sampler {
  /** The point of suggestion `index` (0-based), or null when the sampler has no more points (a finished grid). */
  suggest(index: number, history: readonly Observation[]): Params | null;
}

export class GridSampler implements Sampler {
  private readonly points: Params[];
  constructor(spec: SweepSpec) {
    this.points = gridPoints(spec);
  }
  get size(): number {
    return this.points.length;
  }
  suggest(index: number): Params | null {
    return index < this.points.length ? this.points[index] : null;
  }
}

export class RandomSampler implements Sampler {
  constructor(private readonly spec: SweepSpec) {}
  suggest(index: number): Params {
    return randomPoint(this.spec, randomStream(this.spec, index));
  }
}

/**
 * Splits trials into the good ("below") and the others, as Optuna does: completed trials by value
 * first, then pruned trials (those that ran more epochs first, then by their last value); with the
 * constant liar, running trials are always among the others. The good group has gamma(n) trials.
 */
export function splitTrials(history: readonly Observation[], goal: 'minimize' | 'maximize', constantLiar: boolean): { below: Observation[]; above: Observation[] } {
  const sign = goal === 'minimize' ? 1 : -1;
  const trials = history.filter((o) => o.state !== 'running' || constantLiar);
  const complete = trials.filter((o) => o.state === 'complete').sort((a, b) => sign * (a.value! - b.value!) || a.number - b.number);
  const pruned = trials
    .filter((o) => o.state === 'pruned')
    .sort((a, b) => b.lastEpoch - a.lastEpoch || sign * ((a.value ?? Infinity * sign) - (b.value ?? Infinity * sign)) || a.number - b.number);
  const running = trials.filter((o) => o.state === 'running');
  const ranked = [...complete, ...pruned];
  const nBelow = Math.min(gamma(trials.length), ranked.length);
  const byNumber = (a: Observation, b: Observation) => a.number - b.number;
  return { below: ranked.slice(0, nBelow).sort(byNumber), above: [...ranked.slice(nBelow), ...running].sort(byNumber) };
}

/** A parameter in the sampler's space: log taken for log distributions, choices as indices. */
function dimOf(p: Param): Dim {
  if (p.kind === 'choice') return { kind: 'categorical', choices: p.values.length };
  if (isLog(p)) {
    // As Optuna: a stepped log range is continuous on the log scale between the half-steps around its ends.
    const lo = p.step !== undefined ? Math.log(Math.max(p.min - p.step / 2, p.min / 2)) : Math.log(p.min);
    const hi = p.step !== undefined ? Math.log(p.max + p.step / 2) : Math.log(p.max);
    return { kind: 'numeric', low: lo, high: hi, step: null };
  }
  if (p.step !== undefined) return { kind: 'numeric', low: p.min, high: quantise(p, p.max), step: p.step };
  return { kind: 'numeric', low: p.min, high: p.max, step: null };
}

function toSpace(p: Param, v: unknown): number {
  if (p.kind === 'choice') return p.values.findIndex((x) => sameValue(x, v));
  return isLog(p) ? Math.log(v as number) : (v as number);
}

function fromSpace(p: Param, x: number): unknown {
  if (p.kind === 'choice') return p.values[x];
  return quantise(p, isLog(p) ? Math.exp(x) : x);
}

/**
 * TPE with Optuna's defaults (spec.tpe): the first `startupTrials` suggestions are random; then
 * for each parameter (univariate) or for the unconditional parameters jointly (multivariate;
 * conditional ones stay univariate), `candidates` draws from l(x), the estimator of the good
 * trials, and the one with the largest log l(x) - log g(x).
 */
export class TpeSampler implements Sampler {
  constructor(private readonly spec: SweepSpec) {}

  suggest(index: number, history: readonly Observation[]): Params {
    const spec = this.spec;
    const finished = history.filter((o) => o.state !== 'running');
    if (finished.length < spec.tpe.startupTrials) return randomPoint(spec, randomStream(spec, index));
    const { below, above } = splitTrials(history, spec.metric.goal, spec.tpe.constantLiar);
    const rng = Rng.derive(spec.seed, 'sweep/tpe', index);
    const params: Params = {};
    const lookup = (p: string) => (p in params ? params[p] : p in spec.set ? spec.set[p] : getPath(spec.baseRaw, p));
    const opts = { priorWeight: spec.tpe.priorWeight, multivariate: false, magicClip: spec.tpe.magicClip };
    const joint = spec.tpe.multivariate ? spec.parameters.filter((p) => !p.when) : [];
    if (joint.length > 0) {
      const dims = joint.map(dimOf);
      const rows = (group: Observation[]) => group.filter((o) => joint.every((p) => p.path in o.params)).map((o) => joint.map((p) => toSpace(p, o.params[p.path])));
      const l = new ParzenEstimator(rows(below), dims, { ...opts, multivariate: true });
      const g = new ParzenEstimator(rows(above), dims, { ...opts, multivariate: true });
      const best = this.pick(l, g, rng);
      joint.forEach((p, d) => (params[p.path] = fromSpace(p, best[d])));
    }
    for (const p of spec.parameters) {
      if (joint.includes(p) || !applies(p, lookup)) continue;
      const rows = (group: Observation[]) => group.filter((o) => p.path in o.params).map((o) => [toSpace(p, o.params[p.path])]);
      const l = new ParzenEstimator(rows(below), [dimOf(p)], opts);
      const g = new ParzenEstimator(rows(above), [dimOf(p)], opts);
      params[p.path] = fromSpace(p, this.pick(l, g, rng)[0]);
    }
    return params;
  }

  /** The candidate drawn from l with the largest log l - log g (ties: the first drawn). */
  private pick(l: ParzenEstimator, g: ParzenEstimator, rng: Rng): number[] {
    const candidates = l.sample(this.spec.tpe.candidates, rng);
    let best = candidates[0];
    let bestScore = -Infinity;
    for (const c of candidates) {
      const s = l.logPdf(c) - g.logPdf(c);
      if (s > bestScore) {
        bestScore = s;
        best = c;
      }
    }
    return best;
  }
}

export function makeSampler(spec: SweepSpec): Sampler {
  if (spec.method === 'grid') return new GridSampler(spec);
  if (spec.method === 'random') return new RandomSampler(spec);
  return new TpeSampler(spec);
}
