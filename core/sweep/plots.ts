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
  /** The interval of a range parameter (its distribution's min and max), when known. */
  min?: number;
  max?: number;
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
    ...(p.kind === 'choice' ? { choices: p.values } : { min: p.min, max: p.max }),
  };
}

const endedTrials = (trials: readonly SweepPlotTrial[]) => trials.filter((t) => (t.status === 'completed' || t.status === 'pruned') && t.value !== null);

/** The metric against each parameter, one panel per parameter (a choice's values as categories, in order); completed and pruned trials told apart. */
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
        x: p.choices
          ? { field: 'x', type: 'ordinal', sort: p.choices.map(axisValue), title: p.path, axis: { labelAngle: 0 } }
          : { field: 'x', type: p.numeric ? 'quantitative' : 'nominal', title: p.path, ...(p.log ? { scale: { type: 'log' } } : { scale: { zero: false } }) },
        y: { field: 'y', type: 'quantitative', title: metric, scale: { zero: false } },
        color: { field: 'status', type: 'nominal', scale: { domain: ['completed', 'pruned'], range: ['#1f77b4', '#d62728'] } },
      },
    })),
  };
}

/** A step of 1, 2 or 5 times a power of ten that cuts `span` into about `count` parts. */
function niceStep(span: number, count: number): number {
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const r = raw / mag;
  return (r >= 7.5 ? 10 : r >= 3.5 ? 5 : r >= 1.5 ? 2 : 1) * mag;
}

/** The multiples of a nice step in [lo, hi] (about 5 of them), without binary noise. */
export function linearTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const step = niceStep(hi - lo, count);
  const out: number[] = [];
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k++) out.push(Number((k * step).toPrecision(12)));
  return out;
}

/**
 * Ticks of a log axis over [lo, hi] (both > 0): 1, 2 and 5 times each power of ten within up to
 * 3 decades, the powers of ten alone beyond (every k-th one past 8 decades).
 */
export function logTicks(lo: number, hi: number): number[] {
  const first = Math.floor(Math.log10(lo));
  const last = Math.ceil(Math.log10(hi));
  const decades = Math.log10(hi / lo);
  const mults = decades <= 3 ? [1, 2, 5] : [1];
  const every = Math.max(1, Math.ceil((last - first) / 8));
  const out: number[] = [];
  for (let e = first; e <= last; e += every) {
    for (const m of mults) {
      const v = Number((m * 10 ** e).toPrecision(12));
      if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) out.push(v);
    }
  }
  return out;
}

/** Tick labels of one axis in one notation: 1e-4 ... when any tick is below 1e-3 or from 1e5 up, else plain (0.25, 120). */
export function tickLabels(values: readonly number[]): string[] {
  const exp = values.some((v) => v !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e5));
  return values.map((v) => {
    if (!exp || v === 0) return String(Number(v.toPrecision(6)));
    return Number(v.toPrecision(3)).toExponential().replace('e+', 'e');
  });
}

/** An axis of the parallel coordinates: where a value sits on [0, 1], and the labelled ticks. */
interface AxisScale {
  place(v: unknown): number | null;
  ticks: Array<{ at: number; label: string }>;
}

/** At most this many category labels on one axis (every k-th beyond). */
const MAX_CATEGORY_LABELS = 12;

/**
 * The scale of one axis over the values it shows: categories evenly spaced in their order
 * (choices, then any value the trials hold that is not among them); numbers on a log or linear
 * scale over the parameter's interval when known (widened to hold every value), else over the
 * values' own range widened to nice round ends. Number axes label nice ticks, and the ends when
 * no tick is near them.
 */
function axisScale(axis: SweepAxis | null, values: readonly unknown[]): AxisScale {
  if (axis?.choices) {
    const cats = [...axis.choices];
    for (const v of values) if (v !== undefined && v !== null && !cats.some((c) => JSON.stringify(c) === JSON.stringify(v))) cats.push(v);
    const at = (i: number) => (cats.length === 1 ? 0.5 : i / (cats.length - 1));
    const every = Math.ceil(cats.length / MAX_CATEGORY_LABELS);
    const labels = cats.every((c) => typeof c === 'number') ? tickLabels(cats as number[]) : cats.map((c) => String(axisValue(c)));
    return {
      place: (v) => {
        if (v === undefined || v === null) return null;
        const i = cats.findIndex((c) => JSON.stringify(c) === JSON.stringify(v));
        return i < 0 ? null : at(i);
      },
      ticks: cats.flatMap((_, i) => (i % every === 0 ? [{ at: at(i), label: labels[i] }] : [])),
    };
  }
  const nums = values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  const known = axis?.min !== undefined && axis?.max !== undefined;
  let lo = Math.min(...nums, ...(known ? [axis!.min!] : []));
  let hi = Math.max(...nums, ...(known ? [axis!.max!] : []));
  if (!Number.isFinite(lo)) return { place: () => null, ticks: [] };
  const log = Boolean(axis?.log) && lo > 0;
  const f = log ? Math.log : (x: number) => x;
  if (hi === lo) return { place: (v) => (typeof v === 'number' ? 0.5 : null), ticks: tickLabels([lo]).map((label) => ({ at: 0.5, label })) };
  if (!known && !log) {
    const step = niceStep(hi - lo, 5);
    lo = Number((Math.floor(lo / step + 1e-9) * step).toPrecision(12));
    hi = Number((Math.ceil(hi / step - 1e-9) * step).toPrecision(12));
  }
  const place = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) && (!log || v > 0) ? (f(v) - f(lo)) / (f(hi) - f(lo)) : null);
  let ticks = log ? logTicks(lo, hi) : linearTicks(lo, hi);
  for (const end of [lo, hi]) if (!ticks.some((t) => Math.abs(place(t)! - place(end)!) < 0.1)) ticks.push(end);
  ticks = [...new Set(ticks)].sort((a, b) => a - b);
  const labels = tickLabels(ticks);
  return { place, ticks: ticks.map((t, i) => ({ at: place(t)!, label: labels[i] })) };
}

/**
 * Parallel coordinates: one line per ended trial across the parameters and the metric, coloured
 * by the metric. Each axis (parameters, then the metric) has its own scale onto [0, 1] and its
 * own tick labels: the categories of a choice parameter, a log scale for a log distribution, a
 * linear one otherwise (see axisScale).
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
  const rawOf = (t: SweepPlotTrial, i: number): unknown => (i === axes.length ? t.value : t.params[names[i]]);
  const scales = names.map((_, i) => axisScale(axes[i] ?? null, ended.map((t) => rawOf(t, i))));
  const rows = ended.flatMap((t) =>
    names.flatMap((a, i) => {
      const raw = rawOf(t, i);
      const scaled = scales[i].place(raw);
      if (scaled === null) return [];
      return [{ trial: t.number, axis: a, order: i, scaled, shown: axisValue(raw), metric: t.value, status: t.status }];
    }),
  );
  // Vega-Lite's axes cannot follow a scale per axis of a fold: each axis's ticks are marks of their own.
  const tickRows = scales.flatMap((sc, i) => sc.ticks.map((t) => ({ axis: names[i], order: i, scaled: t.at, label: t.label })));
  const tickLayers = (x: Record<string, unknown>, y: Record<string, unknown>) => [
    { data: { values: tickRows }, mark: { type: 'tick', orient: 'horizontal', size: 8, thickness: 1, color: '#666' }, encoding: { x, y } },
    // a white halo under each label keeps it legible where lines cross it
    ...[{ stroke: 'white', strokeWidth: 3, strokeOpacity: 0.85 }, { color: '#333' }].map((paint) => ({
      data: { values: tickRows },
      mark: { type: 'text', align: 'right', baseline: 'middle', dx: -7, fontSize: 10, ...paint },
      encoding: { x, y, text: { field: 'label', type: 'nominal' } },
    })),
  ];
  const color = { field: 'metric', type: 'quantitative', title: metric.name, scale: { scheme: 'viridis', reverse: metric.goal === 'maximize' } };
  const width = Math.max(300, 140 * names.length);
  if (!opts.brush) {
    const yPlain = { field: 'scaled', type: 'quantitative', axis: null, scale: { domain: [0, 1], nice: false, zero: false } };
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
            y: yPlain,
            detail: { field: 'trial', type: 'nominal' },
            order: { field: 'order' },
            color,
          },
        },
        ...tickLayers({ field: 'axis', type: 'nominal', sort: names }, yPlain),
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
      ...tickLayers(x, y),
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
    `${spec.name}: parameters and ${metric} (each axis on its own scale)`,
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
