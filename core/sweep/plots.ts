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

/**
 * One swept parameter as the pictures place it: on a numeric axis (log for log distributions),
 * or, for choices, at the index of its value among `choices`.
 */
export interface SweepAxis {
  path: string;
  numeric: boolean;
  log: boolean;
  /** The values of a choice parameter, in the order of its axis. */
  choices?: readonly unknown[];
}

/** What the pictures need of a trial (a TrialRecord, or the run index's sweep trial). */
export interface SweepPlotTrial {
  number: number;
  status: string;
  params: Record<string, unknown>;
  value: number | null;
}

/** The axis of a parameter of the sweep file. */
export function axisOf(p: Param): SweepAxis {
  return {
    path: p.path,
    numeric: p.kind === 'range' || p.values.every((v) => typeof v === 'number'),
    log: p.kind === 'range' && isLog(p),
    ...(p.kind === 'choice' ? { choices: p.values } : {}),
  };
}

const endedTrials = (trials: readonly SweepPlotTrial[]) => trials.filter((t) => (t.status === 'completed' || t.status === 'pruned') && t.value !== null);

/** The metric against each parameter, one panel per parameter; completed and pruned trials told apart. */
export function metricVsParametersSpec(title: string, metric: string, axes: readonly SweepAxis[], trials: readonly SweepPlotTrial[]): VegaLiteSpec {
  const ended = endedTrials(trials);
  return {
    title,
    hconcat: axes.map((p) => ({
      width: 220,
      height: 180,
      data: { values: ended.filter((t) => p.path in t.params).map((t) => ({ x: axisValue(t.params[p.path]), y: t.value, status: t.status, trial: t.number })) },
      mark: { type: 'point', filled: true, size: 50 },
      encoding: {
        x: { field: 'x', type: p.numeric ? 'quantitative' : 'nominal', title: p.path, ...(p.log ? { scale: { type: 'log' } } : { scale: { zero: false } }) },
        y: { field: 'y', type: 'quantitative', title: metric, scale: { zero: false } },
        color: { field: 'status', type: 'nominal', scale: { domain: ['completed', 'pruned'], range: ['#1f77b4', '#d62728'] } },
      },
    })),
  };
}

/**
 * Parallel coordinates: one line per ended trial across the parameters and the metric, each axis
 * (parameters, then the metric) scaled to [0, 1] by its own range, coloured by the metric.
 *
 * With `brush` (the dashboard): the axes sit at x = 0, 1, ... on a continuous scale so that an
 * interval can be dragged over them; a trial with any point inside the interval stays opaque,
 * the others fade, and pruned trials are dashed. Without it, the picture of writeSweepPlots.
 */
export function parallelCoordinatesSpec(
  title: string,
  metric: { name: string; goal: 'minimize' | 'maximize' },
  axes: readonly SweepAxis[],
  trials: readonly SweepPlotTrial[],
  opts: { brush?: boolean } = {},
): VegaLiteSpec {
  const ended = endedTrials(trials);
  const names = [...axes.map((p) => p.path), metric.name];
  const numericOf = (p: SweepAxis | undefined, v: unknown): number | null => {
    if (v === undefined || v === null) return null;
    if (!p) return v as number;
    if (p.choices) return p.choices.findIndex((x) => JSON.stringify(x) === JSON.stringify(v));
    if (typeof v !== 'number') return null;
    return p.log ? Math.log(v) : v;
  };
  const ranges = names.map((a, i) => {
    const vs = ended.map((t) => numericOf(axes[i], i === axes.length ? t.value : t.params[a])).filter((x): x is number => x !== null);
    return { lo: Math.min(...vs), hi: Math.max(...vs) };
  });
  const rows = ended.flatMap((t) =>
    names.flatMap((a, i) => {
      const raw = i === axes.length ? t.value : t.params[a];
      const x = numericOf(axes[i], raw);
      if (x === null) return [];
      const { lo, hi } = ranges[i];
      return [{ trial: t.number, axis: a, order: i, scaled: hi > lo ? (x - lo) / (hi - lo) : 0.5, shown: axisValue(raw), metric: t.value, status: t.status }];
    }),
  );
  const color = { field: 'metric', type: 'quantitative', title: metric.name, scale: { scheme: 'viridis', reverse: metric.goal === 'maximize' } };
  const width = Math.max(300, 140 * names.length);
  if (!opts.brush) {
    return {
      title,
      width,
      height: 300,
      data: { values: rows },
      layer: [
        { mark: { type: 'rule', color: '#999' }, encoding: { x: { field: 'axis', type: 'nominal', sort: names, title: null, axis: { labelAngle: -15, labelLimit: 320 } } } },
        {
          mark: { type: 'line', opacity: 0.7 },
          encoding: {
            x: { field: 'axis', type: 'nominal', sort: names },
            y: { field: 'scaled', type: 'quantitative', axis: null },
            detail: { field: 'trial', type: 'nominal' },
            order: { field: 'order' },
            color,
          },
        },
      ],
    };
  }
  // Fixed domains: the scales must not depend on data that depends on the brush.
  const x = {
    field: 'order',
    type: 'quantitative',
    title: null,
    scale: { domain: [-0.3, names.length - 0.7], nice: false, zero: false },
    axis: { values: names.map((_, i) => i), labelExpr: `${JSON.stringify(names)}[datum.value]`, labelAngle: -15, labelLimit: 320, grid: true, gridColor: '#999', gridOpacity: 1 },
  };
  const y = { field: 'scaled', type: 'quantitative', axis: null, scale: { domain: [0, 1], nice: false, zero: false } };
  return {
    title,
    width,
    height: 300,
    data: { values: rows },
    layer: [
      {
        params: [{ name: 'brush', select: { type: 'interval', encodings: ['x', 'y'] } }],
        mark: { type: 'point', size: 30, color: '#666', opacity: 0.5 },
        encoding: { x, y, tooltip: [{ field: 'trial' }, { field: 'axis' }, { field: 'shown', title: 'value' }] },
      },
      {
        transform: [
          { calculate: "!length(data('brush_store')) || vlSelectionTest('brush_store', datum) ? 1 : 0", as: 'hit' },
          { joinaggregate: [{ op: 'max', field: 'hit', as: 'picked' }], groupby: ['trial'] },
        ],
        mark: { type: 'line', strokeWidth: 2 },
        encoding: {
          x,
          y,
          detail: { field: 'trial', type: 'nominal' },
          order: { field: 'order' },
          color,
          opacity: { condition: { test: 'datum.picked > 0', value: 0.85 }, value: 0.08 },
          strokeDash: { field: 'status', type: 'nominal', scale: { domain: ['completed', 'pruned'], range: [[1, 0], [5, 3]] }, title: 'trial' },
        },
      },
    ],
  };
}

/** The four Vega-Lite specs of a sweep, by file name. */
export function sweepPlotSpecs(spec: SweepSpec, state: SweepState): Record<string, VegaLiteSpec> {
  const metric = spec.metric.name;
  const axes = spec.parameters.map(axisOf);
  const out: Record<string, VegaLiteSpec> = {};

  out['metric-vs-parameters.png'] = metricVsParametersSpec(`${spec.name}: ${metric} (${spec.metric.goal}) against each parameter`, metric, axes, state.trials);

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

  out['parallel-coordinates.png'] = parallelCoordinatesSpec(
    `${spec.name}: parameters and ${metric} (each axis scaled to its range; log axes for log distributions)`,
    spec.metric,
    axes,
    state.trials,
  );

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
