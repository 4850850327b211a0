/**
 * The search space of a sweep: one distribution per swept config path, conditional parameters,
 * and the transforms the samplers share (log scale, quantisation, the unit interval).
 *
 * A parameter is either a choice among listed `values` (grid points, or a categorical draw), or
 * a range: `uniform` and `log-uniform` floats (optionally quantised with `step`), `int` and
 * `log-int` integers (with `step`, default 1). Values of a range with a step are
 * min + k * step for integer k, never above max.
 */
import { Rng } from '../rng';

/** A categorical parameter: one of the listed values. */
export interface ChoiceParam {
  kind: 'choice';
  path: string;
  values: unknown[];
  when?: Record<string, unknown>;
}

/** A numerical parameter with a distribution over [min, max]. */
export interface RangeParam {
  kind: 'range';
  path: string;
  distribution: 'uniform' | 'log-uniform' | 'int' | 'log-int';
  min: number;
  max: number;
  /** Quantisation: values are min + k * step. Always set for int and log-int (default 1). */
  step?: number;
  when?: Record<string, unknown>;
}

export type Param = ChoiceParam | RangeParam;

/** Parameter values of one point of the space, keyed by config path. */
export type Params = Record<string, unknown>;

export const isLog = (p: RangeParam): boolean => p.distribution === 'log-uniform' || p.distribution === 'log-int';
export const isInt = (p: RangeParam): boolean => p.distribution === 'int' || p.distribution === 'log-int';

/** Rounds a value onto the grid of a range with a step (min + k step, within [min, max]); integers stay integers. */
export function quantise(p: RangeParam, x: number): number {
  let v = x;
  if (p.step !== undefined) {
    const k = Math.round((x - p.min) / p.step);
    const kMax = Math.floor((p.max - p.min) / p.step + 1e-9);
    v = p.min + Math.min(Math.max(k, 0), kMax) * p.step;
    // Decimal steps (0.1) leave binary noise: keep the digits the step has.
    if (!isInt(p)) v = Number(v.toPrecision(12));
  }
  if (isInt(p)) v = Math.round(v);
  return Math.min(Math.max(v, p.min), p.max);
}

/** A draw from the parameter's prior: uniform on the (log) interval, then quantised. */
export function sampleParam(p: Param, rng: Rng): unknown {
  if (p.kind === 'choice') return p.values[Math.min(p.values.length - 1, Math.floor(rng.uniform() * p.values.length))];
  // Integers and steps: the interval is widened by half a step on each side, so that the end
  // values are as likely as the inner ones after rounding.
  const half = p.step !== undefined ? p.step / 2 : 0;
  if (isLog(p)) {
    const lo = Math.log(Math.max(p.min - half, p.min / 2));
    const hi = Math.log(p.max + half);
    return quantise(p, Math.exp(lo + rng.uniform() * (hi - lo)));
  }
  return quantise(p, p.min - half + rng.uniform() * (p.max - p.min + 2 * half));
}

/** Whether a parameter applies to a config (its `when` conditions all hold). */
export function applies(p: Param, lookup: (path: string) => unknown): boolean {
  if (!p.when) return true;
  return Object.entries(p.when).every(([k, v]) => {
    const got = lookup(k);
    return Array.isArray(v) ? v.some((x) => sameValue(x, got)) : sameValue(v, got);
  });
}

export function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The endpoints a range can take (min and the largest grid value), or every listed value. */
export function corners(p: Param): unknown[] {
  if (p.kind === 'choice') return p.values;
  const lo = quantise(p, p.min);
  const hi = quantise(p, p.max);
  return lo === hi ? [lo] : [lo, hi];
}

/** Parameters as text: `a=1, b=0.01`. */
export function showParams(params: Params): string {
  return Object.entries(params)
    .map(([k, v]) => `${k}=${typeof v === 'number' ? formatNumber(v) : JSON.stringify(v)}`)
    .join(', ');
}

/** A number in at most 6 significant digits, without trailing zeros. */
export function formatNumber(v: number): string {
  if (Number.isInteger(v)) return String(v);
  return String(Number(v.toPrecision(6)));
}
