/**
 * Points of a sweep: the grid, a trial's experiment (base <- set <- parameters <- seed), and the
 * check that every trial's config is valid before the first trial starts, with the messages of
 * `vaelab validate`.
 */
import { experimentFromObject, getPath, setPath } from '../config/experiment';
import { ConfigError, RegistrationError, ShapeError } from '../errors';
import type { PluginRegistry } from '../plugin';
import { closeSession, openSession } from '../session';
import { checkInit, checkModelSelection } from '../train/trainer';
import { Rng } from '../rng';
import { applies, corners, sampleParam, sameValue, showParams, type Param, type Params } from './space';
import type { SweepSpec } from './spec';

/** The config of a trial as a plain experiment object. */
export function trialRaw(spec: SweepSpec, params: Params, seed: number | null): Record<string, unknown> {
  const raw = structuredClone(spec.baseRaw);
  for (const [k, v] of Object.entries(spec.set)) setPath(raw, k, structuredClone(v));
  for (const [k, v] of Object.entries(params)) setPath(raw, k, structuredClone(v));
  if (seed !== null) raw.seed = seed;
  return raw;
}

/** Looks a path up in the trial's config as far as it is known: parameters chosen so far, then set, then the base. */
function lookupIn(spec: SweepSpec, params: Params): (p: string) => unknown {
  return (p) => (p in params ? params[p] : p in spec.set ? spec.set[p] : getPath(spec.baseRaw, p));
}

/**
 * Every point of a grid, in file order with the last parameter varying fastest. A conditional
 * parameter is left out of the points where its condition fails; points that become equal are
 * kept once.
 */
export function gridPoints(spec: SweepSpec): Params[] {
  let points: Params[] = [{}];
  for (const p of spec.parameters) {
    const next: Params[] = [];
    for (const pt of points) {
      if (!applies(p, lookupIn(spec, pt))) next.push(pt);
      else for (const v of corners(p)) next.push({ ...pt, [p.path]: v });
    }
    points = next;
  }
  const seen = new Set<string>();
  return points.filter((pt) => {
    const key = JSON.stringify(pt);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** A point drawn from the priors of the parameters (random search, TPE's startup trials). */
export function randomPoint(spec: SweepSpec, rng: Rng, fill?: (p: Param, params: Params) => unknown): Params {
  const params: Params = {};
  for (const p of spec.parameters) {
    if (!applies(p, lookupIn(spec, params))) continue;
    params[p.path] = fill ? fill(p, params) : sampleParam(p, rng);
  }
  return params;
}

/** The stream of the random point of suggestion `index` (so a resumed sweep draws the same points). */
export const randomStream = (spec: SweepSpec, index: number): Rng => Rng.derive(spec.seed, 'sweep/random', index);

/** The trials' seeds for one point. */
export function seedsOf(spec: SweepSpec): Array<number | null> {
  return spec.seeds ?? [null];
}

/**
 * The points checked before a sweep starts. Grid: every point. Random: every point the budget
 * will draw (the draws are seeded). TPE: its random startup points, then the corners of the
 * space (each value of a choice, both ends of a range): all their combinations when there are
 * at most 64, else each parameter's corners with the others at their first.
 */
export function pointsToCheck(spec: SweepSpec): Params[] {
  const perPoint = seedsOf(spec).length;
  const suggestions = Math.ceil(spec.budget.trials / perPoint);
  if (spec.method === 'grid') return gridPoints(spec);
  if (spec.method === 'random') return Array.from({ length: suggestions }, (_, i) => randomPoint(spec, randomStream(spec, i)));
  const startup = Array.from({ length: Math.min(suggestions, spec.tpe.startupTrials) }, (_, i) => randomPoint(spec, randomStream(spec, i)));
  const cornerList = spec.parameters.map((p) => corners(p));
  const product = cornerList.reduce((n, c) => n * c.length, 1);
  let extra: Params[];
  if (product <= 64) {
    extra = gridPoints({ ...spec, parameters: spec.parameters.map((p) => ({ kind: 'choice', path: p.path, values: corners(p), ...(p.when ? { when: p.when } : {}) })) });
  } else {
    extra = [];
    spec.parameters.forEach((p, i) => {
      for (const v of cornerList[i]) extra.push(randomPoint(spec, new Rng(0), (q) => (q === p ? v : corners(q)[0])));
    });
  }
  return [...startup, ...extra];
}

/** One problem of a point, as validate words it, prefixed with the point. */
function pointProblems(i: number, n: number, params: Params, e: unknown): string[] {
  const head = `point ${i + 1} of ${n} (${showParams(params) || 'no parameters'})`;
  if (e instanceof ConfigError) {
    // The problems as `vaelab validate` lists them; the file in front of them is the base experiment.
    return e.problems.map((p) => `${head}: ${p}`);
  }
  if (e instanceof RegistrationError || e instanceof ShapeError) return [`${head}: ${e.message}`];
  throw e;
}

/**
 * Validates every point as `vaelab validate` would (keys, plugins, data, shapes, model
 * selection, init): throws one ConfigError naming the sweep file and every bad point. Points
 * that differ only in their seed are built once. Returns the number of configs checked.
 */
export function checkPoints(spec: SweepSpec, registry: PluginRegistry, points: Params[]): number {
  const problems: string[] = [];
  const seeds = seedsOf(spec);
  const seen: Params[] = [];
  points.forEach((params, i) => {
    if (seen.some((s) => sameValue(s, params))) return;
    seen.push(params);
    try {
      const exp = experimentFromObject(trialRaw(spec, params, seeds[0]), registry, spec.experiment);
      const session = openSession(exp);
      try {
        checkModelSelection(session.config);
        checkInit(session);
      } finally {
        closeSession(session);
      }
    } catch (e) {
      problems.push(...pointProblems(i, points.length, params, e));
    }
  });
  if (problems.length > 0) throw new ConfigError(problems.length > 40 ? [...problems.slice(0, 40), `... and ${problems.length - 40} more`] : problems, spec.shownFile);
  return seen.length;
}
