/**
 * What the dashboard reads of a runs directory, in one place: the run index (config, status,
 * summary metrics of every run and sweep; cached and incremental, core/tracking/run-index.ts)
 * and, per selected run only, its metrics.jsonl, downsampled for plotting. Serving the table never
 * opens a metrics file.
 */
import * as fs from 'node:fs';
import { buildRunIndex, readMetricsFile, type RunIndex } from '../tracking/run-index';

export type { RunEntry, RunIndex, SweepEntry } from '../tracking/run-index';

/** The index of `root`, cached in <root>/.vaelab-index.json when the directory is writable. */
export function loadIndex(root: string): RunIndex {
  return buildRunIndex(root, { cache: true });
}

/** One metric of one run: (step, value) pairs in step order. */
export interface Series {
  metric: string;
  x: number[];
  y: number[];
}

/** Every numeric metric of a metrics.jsonl (from step records, else epoch records; at their step), and the lines skipped. */
export interface RunCurves {
  series: Map<string, Series>;
  lines: number;
  skipped: number;
}

const cache = new Map<string, { key: string; curves: RunCurves }>();
const CACHE_RUNS = 16;

/**
 * The curves of a metrics file; the last few files read are kept until they change (size or
 * modification time), so moving the smoothing slider or switching metric reads nothing again.
 */
export function readCurves(file: string): RunCurves {
  let key = '-';
  try {
    const s = fs.statSync(file);
    key = `${s.size}:${s.mtimeMs}`;
  } catch {
    return { series: new Map(), lines: 0, skipped: 0 };
  }
  const hit = cache.get(file);
  if (hit && hit.key === key) return hit.curves;
  const { records, skipped } = readMetricsFile(file);
  // A metric logged per step (train/loss) is also in the epoch records as an epoch mean: its
  // curve is the per-step one. Metrics only in epoch records (val/*, test/*) come from those.
  const bySource = { step: new Map<string, Series>(), epoch: new Map<string, Series>() };
  for (const r of records) {
    if ((r.kind !== 'step' && r.kind !== 'epoch') || typeof r.step !== 'number') continue;
    const into = bySource[r.kind];
    for (const [k, v] of Object.entries(r)) {
      if (typeof v !== 'number' || !Number.isFinite(v) || !k.includes('/')) continue;
      let s = into.get(k);
      if (!s) into.set(k, (s = { metric: k, x: [], y: [] }));
      s.x.push(r.step);
      s.y.push(v);
    }
  }
  const series = new Map(bySource.step);
  for (const [k, s] of bySource.epoch) if (!series.has(k)) series.set(k, s);
  const curves = { series, lines: records.length + skipped, skipped };
  cache.delete(file);
  cache.set(file, { key, curves });
  if (cache.size > CACHE_RUNS) cache.delete(cache.keys().next().value as string);
  return curves;
}

/**
 * At most `max` points of a series: unchanged when it is short enough, else the mean step and
 * mean value of `max` consecutive buckets of equal length (a running average, so a spike of one
 * step is flattened; the smoothing a reader applies next is of the same kind).
 */
export function downsample(s: Series, max: number): Array<{ x: number; value: number }> {
  const n = s.x.length;
  if (n <= max) return s.x.map((x, i) => ({ x, value: s.y[i] }));
  const out: Array<{ x: number; value: number }> = [];
  for (let b = 0; b < max; b++) {
    const lo = Math.floor((b * n) / max);
    const hi = Math.floor(((b + 1) * n) / max);
    let sx = 0;
    let sy = 0;
    for (let i = lo; i < hi; i++) {
      sx += s.x[i];
      sy += s.y[i];
    }
    out.push({ x: sx / (hi - lo), value: sy / (hi - lo) });
  }
  return out;
}
