/**
 * Pictures of a sweep (PNG, from Vega-Lite specs rendered without a browser by
 * core/tracking/plots.ts), written to <sweep dir>/plots/:
 *
 * - metric-vs-parameters.png: the metric against each swept parameter (log axis for log
 *   distributions), completed and pruned trials told apart;
 * - curves.png: every trial's intermediate values over epochs, a cross where a trial was pruned;
 * - parallel-coordinates.png: one line per trial across the parameters and the metric, each axis
 *   scaled to its own range, coloured by the metric;
 * - importance.png: parameter importance as first-order variance fractions (below).
 *
 * Importance: for parameter p, the share of the metric's variance explained by p alone,
 * Var(E[y | p]) / Var(y) (the correlation ratio eta^2, an estimate of the first-order Sobol
 * index, the main-effect term of an fANOVA decomposition), over completed trials, with E[y | p]
 * estimated by the mean of y in each value of p (choices) or in each of 4 quantile bins (ranges).
 * It is not a random-forest fANOVA: interactions are not separated, and with few trials per bin
 * the estimate is biased upwards. Trials where p is not set (a conditional parameter) are left out.
 */
import * as path from 'node:path';
import { writePlot, type VegaLiteSpec } from '../tracking/plots';
import { isLog, type Param } from './space';
import type { SweepSpec } from './spec';
import type { SweepState } from './state';

/** Var(E[y | group]) / Var(y) with population variances; 0 when y does not vary. */
export function varianceFraction(groups: readonly number[][]): number {
  const all = groups.flat();
  const n = all.length;
  if (n < 2) return 0;
  const mean = all.reduce((a, b) => a + b, 0) / n;
  const total = all.reduce((a, b) => a + (b - mean) ** 2, 0) / n;
  if (total === 0) return 0;
  let between = 0;
  for (const g of groups) {
    if (g.length === 0) continue;
    const m = g.reduce((a, b) => a + b, 0) / g.length;
    between += (g.length / n) * (m - mean) ** 2;
  }
  return between / total;
}

/** The trials' values of y grouped by the value of p (choices) or by 4 quantile bins of p (ranges). */
export function groupsOf(p: Param, rows: ReadonlyArray<{ x: unknown; y: number }>, bins = 4): number[][] {
  if (p.kind === 'choice') {
    const m = new Map<string, number[]>();
    for (const r of rows) m.set(JSON.stringify(r.x), [...(m.get(JSON.stringify(r.x)) ?? []), r.y]);
    return [...m.values()];
  }
  const sorted = [...rows].sort((a, b) => (a.x as number) - (b.x as number));
  const out: number[][] = Array.from({ length: Math.min(bins, sorted.length) }, () => []);
  sorted.forEach((r, i) => out[Math.floor((i * out.length) / sorted.length)].push(r.y));
  return out;
}

/** Importance of every parameter: its first-order variance fraction over completed trials. */
export function importance(spec: SweepSpec, state: SweepState): Array<{ parameter: string; importance: number; trials: number }> {
  const done = state.trials.filter((t) => t.status === 'completed' && t.value !== null && Number.isFinite(t.value));
  return spec.parameters.map((p) => {
    const rows = done.filter((t) => p.path in t.params).map((t) => ({ x: t.params[p.path], y: t.value! }));
    return { parameter: p.path, importance: varianceFraction(groupsOf(p, rows)), trials: rows.length };
  });
}

const axisValue = (v: unknown): unknown => (typeof v === 'number' || typeof v === 'string' ? v : JSON.stringify(v));

/** The four Vega-Lite specs of a sweep, by file name. */
export function sweepPlotSpecs(spec: SweepSpec, state: SweepState): Record<string, VegaLiteSpec> {
  const metric = spec.metric.name;
  const ended = state.trials.filter((t) => (t.status === 'completed' || t.status === 'pruned') && t.value !== null);
  const out: Record<string, VegaLiteSpec> = {};

  out['metric-vs-parameters.png'] = {
    title: `${spec.name}: ${metric} (${spec.metric.goal}) against each parameter`,
    hconcat: spec.parameters.map((p) => {
      const numeric = p.kind === 'range' || p.values.every((v) => typeof v === 'number');
      return {
        width: 220,
        height: 180,
        data: { values: ended.filter((t) => p.path in t.params).map((t) => ({ x: axisValue(t.params[p.path]), y: t.value, status: t.status, trial: t.number })) },
        mark: { type: 'point', filled: true, size: 50 },
        encoding: {
          x: { field: 'x', type: numeric ? 'quantitative' : 'nominal', title: p.path, ...(p.kind === 'range' && isLog(p) ? { scale: { type: 'log' } } : { scale: { zero: false } }) },
          y: { field: 'y', type: 'quantitative', title: metric, scale: { zero: false } },
          color: { field: 'status', type: 'nominal', scale: { domain: ['completed', 'pruned'], range: ['#1f77b4', '#d62728'] } },
        },
      };
    }),
  };

  const curveRows = state.trials.flatMap((t) =>
    Object.entries(t.intermediate).map(([e, v]) => ({ trial: t.number, epoch: Number(e), value: v, status: t.status === 'pruned' ? 'pruned' : t.status })),
  );
  const prunedAt = state.trials.flatMap((t) =>
    t.decisions.filter((d) => d.action === 'prune').map((d) => ({ trial: t.number, epoch: d.epoch, value: t.intermediate[d.epoch] ?? d.value })),
  );
  out['curves.png'] = {
    title: `${spec.name}: ${metric} over epochs (x: pruned)`,
    width: 480,
    height: 300,
    layer: [
      {
        data: { values: curveRows },
        mark: { type: 'line', point: true, opacity: 0.8 },
        encoding: {
          x: { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { tickMinStep: 1 } },
          y: { field: 'value', type: 'quantitative', title: metric, scale: { zero: false } },
          detail: { field: 'trial', type: 'nominal' },
          color: { field: 'status', type: 'nominal' },
        },
      },
      {
        data: { values: prunedAt },
        mark: { type: 'point', shape: 'cross', size: 140, filled: true, color: 'black' },
        encoding: { x: { field: 'epoch', type: 'quantitative' }, y: { field: 'value', type: 'quantitative' } },
      },
    ],
  };

  // Parallel coordinates: each axis (parameters, then the metric) scaled to [0, 1] by its own range.
  const axes = [...spec.parameters.map((p) => p.path), metric];
  const numericOf = (p: Param | undefined, v: unknown): number | null => {
    if (v === undefined) return null;
    if (!p) return v as number;
    if (p.kind === 'choice') return p.values.findIndex((x) => JSON.stringify(x) === JSON.stringify(v));
    return isLog(p) ? Math.log(v as number) : (v as number);
  };
  const ranges = axes.map((a) => {
    const p = spec.parameters.find((q) => q.path === a);
    const vs = ended.map((t) => numericOf(p, a === metric ? t.value : t.params[a])).filter((x): x is number => x !== null);
    return { lo: Math.min(...vs), hi: Math.max(...vs) };
  });
  const pcRows = ended.flatMap((t) =>
    axes.flatMap((a, i) => {
      const p = spec.parameters.find((q) => q.path === a);
      const raw = a === metric ? t.value : t.params[a];
      const x = numericOf(p, raw);
      if (x === null) return [];
      const { lo, hi } = ranges[i];
      return [{ trial: t.number, axis: a, order: i, scaled: hi > lo ? (x - lo) / (hi - lo) : 0.5, shown: axisValue(raw), metric: t.value }];
    }),
  );
  out['parallel-coordinates.png'] = {
    title: `${spec.name}: parameters and ${metric} (each axis scaled to its range; log axes for log distributions)`,
    width: Math.max(300, 140 * axes.length),
    height: 300,
    data: { values: pcRows },
    layer: [
      { mark: { type: 'rule', color: '#999' }, encoding: { x: { field: 'axis', type: 'nominal', sort: axes, title: null, axis: { labelAngle: -15, labelLimit: 320 } } } },
      {
        mark: { type: 'line', opacity: 0.7 },
        encoding: {
          x: { field: 'axis', type: 'nominal', sort: axes },
          y: { field: 'scaled', type: 'quantitative', axis: null },
          detail: { field: 'trial', type: 'nominal' },
          order: { field: 'order' },
          color: { field: 'metric', type: 'quantitative', title: metric, scale: { scheme: 'viridis', reverse: spec.metric.goal === 'maximize' } },
        },
      },
    ],
  };

  const imp = importance(spec, state);
  out['importance.png'] = {
    title: 'parameter importance: first-order variance fraction Var(E[y|p]) / Var(y)',
    width: 360,
    height: Math.max(60, 28 * imp.length),
    data: { values: imp },
    mark: 'bar',
    encoding: {
      y: { field: 'parameter', type: 'nominal', sort: '-x', title: null },
      x: { field: 'importance', type: 'quantitative', scale: { domain: [0, 1] }, title: `share of the variance of ${metric} (completed trials)` },
    },
  };
  return out;
}

/** Writes the pictures to <dir>/plots/; returns the files written. */
export async function writeSweepPlots(spec: SweepSpec, state: SweepState): Promise<string[]> {
  const files: string[] = [];
  for (const [name, vl] of Object.entries(sweepPlotSpecs(spec, state))) {
    const file = path.join(spec.dir, 'plots', name);
    await writePlot(file, vl);
    files.push(file);
  }
  return files;
}
