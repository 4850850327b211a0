/**
 * Early termination from intermediate values (one per evaluated epoch), as pure functions of the
 * trials' reports so that every decision can be recorded and checked by hand:
 *
 * - median stopping (Golovin et al. 2017, Google Vizier; Optuna's MedianPruner): once
 *   `startupTrials` trials have completed, and past `warmupEpochs`, a trial stops when its best
 *   value so far is worse than the median of the completed trials' values at the same epoch;
 * - asynchronous successive halving (ASHA, Li et al. 2018, https://arxiv.org/abs/1810.05934, as
 *   Optuna's SuccessiveHalvingPruner): rung k is at minEpochs * eta^k epochs; a trial reaching a
 *   rung records its value there and goes on only if it is among the best floor(n / eta) of the n
 *   values recorded at that rung so far (itself included; while n < eta, only if it is the best).
 */
import type { EarlyTermination } from './spec';

/** What the pruner sees of one trial. */
export interface TrialReports {
  number: number;
  /** complete: ended normally; pruned; running (or interrupted). */
  state: 'complete' | 'pruned' | 'running';
  /** Intermediate values by epoch (1-based). */
  values: ReadonlyMap<number, number> | Record<number, number>;
}

/** One decision, recorded and printed with what it compared. */
export interface PruneDecision {
  trial: number;
  epoch: number;
  rule: 'median' | 'asha';
  action: 'continue' | 'prune';
  /** The trial's value compared (its best so far for median stopping, its value at the rung for ASHA). */
  value: number;
  /** The value it had to beat (or equal). */
  threshold: number;
  /** ASHA: rung index and how many values competed there; median: trials in the median. */
  rung: number | null;
  among: number;
  /** One line for the user. */
  reason: string;
}

const valueAt = (t: TrialReports, epoch: number): number | undefined =>
  t.values instanceof Map ? t.values.get(epoch) : (t.values as Record<number, number>)[epoch];

const entries = (t: TrialReports): Array<[number, number]> =>
  t.values instanceof Map ? [...t.values.entries()] : Object.entries(t.values).map(([k, v]) => [Number(k), v as number]);

/** The median of a list (mean of the two middle values for an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : 0.5 * (s[m - 1] + s[m]);
}

const show = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(2) : Number(v.toPrecision(5)).toString());

/** The epochs of ASHA's rungs below `epochs`: minEpochs * eta^k. */
export function rungEpochs(rule: { minEpochs: number; reductionFactor: number }, epochs: number): number[] {
  const out: number[] = [];
  for (let r = rule.minEpochs; r < epochs; r *= rule.reductionFactor) out.push(r);
  return out;
}

/**
 * The decision for `trial`, which has just reported its value at `epoch`, given every trial's
 * reports (this one's included, with the new value). Returns null when the rule does not judge
 * at this epoch (no early termination, too few completed trials, warm-up, not a rung).
 * `metric` names the value in the reason.
 */
export function decide(
  rule: EarlyTermination,
  goal: 'minimize' | 'maximize',
  trial: TrialReports,
  epoch: number,
  all: readonly TrialReports[],
  metric = 'value',
): PruneDecision | null {
  const better = (a: number, b: number) => (goal === 'minimize' ? a < b : a > b);
  const value = valueAt(trial, epoch);
  if (value === undefined || rule.use === 'none') return null;
  if (rule.use === 'median') {
    const completed = all.filter((t) => t.state === 'complete' && t.number !== trial.number);
    if (completed.length < rule.startupTrials) return null;
    if (epoch <= rule.warmupEpochs) return null;
    const others = completed.map((t) => valueAt(t, epoch)).filter((v): v is number => v !== undefined && Number.isFinite(v));
    if (others.length === 0) return null;
    const threshold = median(others);
    let best = value;
    for (const [e, v] of entries(trial)) if (e <= epoch && Number.isFinite(v) && better(v, best)) best = v;
    const prune = !Number.isFinite(best) || better(threshold, best);
    return {
      trial: trial.number,
      epoch,
      rule: 'median',
      action: prune ? 'prune' : 'continue',
      value: best,
      threshold,
      rung: null,
      among: others.length,
      reason: `median stopping at epoch ${epoch}: best ${metric} so far ${show(best)} ${prune ? 'worse than' : 'not worse than'} the median ${show(threshold)} of ${others.length} completed trials`,
    };
  }
  const eta = rule.reductionFactor;
  let rung = -1;
  for (let r = rule.minEpochs, k = 0; r <= epoch; r *= eta, k++) if (r === epoch) rung = k;
  if (rung < 0) return null;
  const others = all.filter((t) => t.number !== trial.number).map((t) => valueAt(t, epoch));
  const competing = [value, ...others].filter((v): v is number => v !== undefined && !Number.isNaN(v));
  const n = competing.length;
  const k = Math.max(Math.floor(n / eta), 1);
  const sorted = [...competing].sort((a, b) => (goal === 'minimize' ? a - b : b - a));
  const threshold = sorted[k - 1];
  const promote = Number.isFinite(value) && !better(threshold, value);
  return {
    trial: trial.number,
    epoch,
    rule: 'asha',
    action: promote ? 'continue' : 'prune',
    value,
    threshold,
    rung,
    among: n,
    reason: `ASHA rung ${rung} (epoch ${epoch}): ${metric} ${show(value)} ${promote ? 'within' : 'outside'} the top ${k} of ${n} (threshold ${show(threshold)}); ${promote ? 'promoted' : 'pruned'}`,
  };
}
