/**
 * Sweep files (`sweeps/*.yaml`): reading and checking them. A sweep names a base experiment,
 * the config paths it varies (the same dotted paths as `--set`), how points are chosen, the
 * metric, the budget, early termination and retries. Every problem of the file is reported at
 * once, as experiment files are: file, key, bad value and what is allowed.
 *
 * ```yaml
 * experiment: ../experiments/beta-vae-mnist.yaml   # relative to this file
 * set: { train.epochs: 3, data.trainLimit: 2000 }  # fixed overrides of every trial
 * method: grid                                     # grid | random | tpe
 * metric: { name: test/loss, goal: minimize }
 * parameters:
 *   objective.beta-vae.beta: { values: [1, 4] }
 *   train.optimizer.learningRate: { distribution: log-uniform, min: 1.0e-4, max: 1.0e-2 }
 *   prior.mixture.components: { distribution: int, min: 2, max: 20, when: { prior.use: mixture } }
 * seeds: [0, 1, 2]                                 # each point once per seed
 * budget: { trials: 24, concurrent: 2, wallMinutes: 60 }
 * earlyTermination: { use: asha, minEpochs: 1, reductionFactor: 3 }
 * retries: 1
 * ```
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { composeSchema, getPath, readExperimentFile, loadPluginModules } from '../config/experiment';
import { ConfigError, didYouMean, showValue } from '../errors';
import { schemaKeys, type PluginRegistry, type SchemaEntry } from '../plugin';
import { type Param, type RangeParam } from './space';

/** Median stopping (Optuna's MedianPruner): prune when the trial's best value is worse than the median of completed trials at this epoch. */
export interface MedianRule {
  use: 'median';
  /** Completed trials needed before anything is pruned. */
  startupTrials: number;
  /** Epochs of every trial that are never pruned. */
  warmupEpochs: number;
}

/** Asynchronous successive halving (Li et al. 2018, https://arxiv.org/abs/1810.05934). */
export interface AshaRule {
  use: 'asha';
  /** Epochs of the first rung. Rung k is at minEpochs * reductionFactor^k epochs. */
  minEpochs: number;
  /** eta: the top 1/eta of a rung's values are promoted. */
  reductionFactor: number;
}

export type EarlyTermination = { use: 'none' } | MedianRule | AshaRule;

/** TPE settings; defaults are Optuna's TPESampler's. */
export interface TpeOptions {
  startupTrials: number;
  candidates: number;
  priorWeight: number;
  multivariate: boolean;
  constantLiar: boolean;
  magicClip: boolean;
}

export const TPE_DEFAULTS: TpeOptions = { startupTrials: 10, candidates: 24, priorWeight: 1, multivariate: false, constantLiar: true, magicClip: true };

/** A checked sweep file. */
export interface SweepSpec {
  /** The sweep file, absolute. */
  file: string;
  /** The file as the user named it, for messages. */
  shownFile: string;
  name: string;
  /** The base experiment file, absolute. */
  experiment: string;
  /** The base experiment as read (no overrides). */
  baseRaw: Record<string, unknown>;
  set: Record<string, unknown>;
  method: 'grid' | 'random' | 'tpe';
  seed: number;
  metric: { name: string; goal: 'minimize' | 'maximize' };
  parameters: Param[];
  /** Seeds each point runs with, or null (the experiment's seed, or a swept `seed`). */
  seeds: number[] | null;
  budget: { trials: number; concurrent: number | null; wallMinutes: number | null };
  earlyTermination: EarlyTermination;
  tpe: TpeOptions;
  retries: number;
  /** The sweep directory (absolute). */
  dir: string;
}

const TOP_KEYS = ['name', 'description', 'experiment', 'set', 'method', 'seed', 'metric', 'parameters', 'seeds', 'budget', 'earlyTermination', 'tpe', 'retries', 'dir'];
const METHODS = ['grid', 'random', 'tpe'] as const;
const DISTRIBUTIONS = ['uniform', 'log-uniform', 'int', 'log-int'] as const;

type Raw = Record<string, unknown>;
const isObject = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isNat = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;
const quoted = (xs: readonly string[]) => xs.map((x) => JSON.stringify(x)).join(', ');

/** Collects problems of one mapping: unknown keys with a suggestion. */
function unknownKeys(where: string, obj: Raw, allowed: readonly string[], problems: string[]): void {
  for (const k of Object.keys(obj)) {
    if (allowed.includes(k)) continue;
    const hint = didYouMean(k, allowed);
    problems.push(`${where}${k}: not a sweep key (keys here: ${allowed.join(', ')})${hint ? `. Did you mean ${JSON.stringify(hint)}?` : ''}`);
  }
}

/**
 * Every leaf key of the experiment's composed schema (core keys, `<slot>.use`, every plugin's
 * keys), with the plugin modules the base names loaded into a copy of `registry`.
 */
function experimentKeys(baseRaw: Raw, registry: PluginRegistry, file: string): Map<string, SchemaEntry> {
  const reg = registry.clone();
  loadPluginModules(baseRaw, reg, file);
  return new Map(schemaKeys(composeSchema(reg)));
}

/** `parameters.<path>: not a key of <experiment> ...` with the keys of the nearest group and a suggestion. */
function unknownPathMessage(where: string, key: string, keys: Map<string, SchemaEntry>, experiment: string): string {
  const all = [...keys.keys()];
  const parts = key.split('.');
  let depth = parts.length - 1;
  let siblings: string[] = [];
  while (depth >= 0) {
    const prefix = parts.slice(0, depth).join('.');
    siblings = [...new Set(all.filter((k) => depth === 0 || k.startsWith(`${prefix}.`)).map((k) => k.split('.')[depth]))];
    if (siblings.length > 0) break;
    depth--;
  }
  const group = parts.slice(0, depth).join('.');
  const hint = didYouMean(key, all);
  const shownKeys = siblings.length > 12 ? `${siblings.slice(0, 12).join(', ')}, ... (${siblings.length} in all)` : siblings.join(', ');
  return `${where}: not a key of ${experiment} (keys${group ? ` of ${group}` : ''}: ${shownKeys})${hint ? `. Did you mean ${JSON.stringify(hint)}?` : ''}`;
}

/** One parameter of the sweep file; with `keys` null (readSweepParameters) its paths are not checked against the experiment. */
function parseParam(key: string, node: unknown, keys: Map<string, SchemaEntry> | null, experiment: string, problems: string[]): Param | null {
  const where = `parameters.${key}`;
  if (keys && !keys.has(key)) {
    problems.push(unknownPathMessage(where, key, keys, experiment));
    return null;
  }
  if (!isObject(node)) {
    problems.push(`${where}: must be a mapping with values: [...] or distribution, min, max; got ${showValue(node)}`);
    return null;
  }
  let when: Record<string, unknown> | undefined;
  if (node.when !== undefined) {
    if (!isObject(node.when) || Object.keys(node.when).length === 0) {
      problems.push(`${where}.when: must be a mapping of config paths to the values that switch this parameter on; got ${showValue(node.when)}`);
    } else {
      for (const k of Object.keys(node.when)) if (keys && !keys.has(k)) problems.push(unknownPathMessage(`${where}.when.${k}`, k, keys, experiment));
      when = node.when;
    }
  }
  if (node.values !== undefined) {
    unknownKeys(`${where}.`, node, ['values', 'when'], problems);
    if (!Array.isArray(node.values) || node.values.length === 0) {
      problems.push(`${where}.values: must be a non-empty list; got ${showValue(node.values)}`);
      return null;
    }
    return { kind: 'choice', path: key, values: node.values, ...(when ? { when } : {}) };
  }
  unknownKeys(`${where}.`, node, ['distribution', 'min', 'max', 'step', 'when'], problems);
  const dist = node.distribution;
  if (dist === undefined) {
    problems.push(`${where}: give values: [...] or a distribution (${quoted(DISTRIBUTIONS)}) with min and max`);
    return null;
  }
  if (typeof dist !== 'string' || !(DISTRIBUTIONS as readonly string[]).includes(dist)) {
    const hint = typeof dist === 'string' ? didYouMean(dist, DISTRIBUTIONS) : undefined;
    problems.push(`${where}.distribution: must be one of ${quoted(DISTRIBUTIONS)}; got ${showValue(dist)}${hint ? `. Did you mean ${JSON.stringify(hint)}?` : ''}`);
    return null;
  }
  const d = dist as RangeParam['distribution'];
  const integer = d === 'int' || d === 'log-int';
  let ok = true;
  for (const b of ['min', 'max'] as const) {
    const v = node[b];
    if (!isNum(v) || (integer && !Number.isInteger(v))) {
      problems.push(`${where}.${b}: must be ${integer ? 'an integer' : 'a finite number'} (distribution ${d}); got ${showValue(v)}`);
      ok = false;
    }
  }
  const step = node.step;
  if (step !== undefined && (!isNum(step) || step <= 0 || (integer && !Number.isInteger(step)))) {
    problems.push(`${where}.step: must be a positive ${integer ? 'integer' : 'number'}; got ${showValue(step)}`);
    ok = false;
  }
  if (!ok) return null;
  const min = node.min as number;
  const max = node.max as number;
  if (min >= max) {
    problems.push(`${where}: min must be below max; got min ${showValue(min)}, max ${showValue(max)}`);
    return null;
  }
  if ((d === 'log-uniform' || d === 'log-int') && min <= 0) {
    problems.push(`${where}: distribution ${d} needs min > 0 (its log is taken); got min ${showValue(min)}`);
    return null;
  }
  return { kind: 'range', path: key, distribution: d, min, max, ...(step !== undefined ? { step: step as number } : integer ? { step: 1 } : {}), ...(when ? { when } : {}) };
}

function parseEarly(node: unknown, problems: string[]): EarlyTermination {
  if (node === undefined || node === null) return { use: 'none' };
  if (!isObject(node)) {
    problems.push(`earlyTermination: must be a mapping with use: none | median | asha; got ${showValue(node)}`);
    return { use: 'none' };
  }
  const use = node.use;
  if (use === 'none') {
    unknownKeys('earlyTermination.', node, ['use'], problems);
    return { use: 'none' };
  }
  if (use === 'median') {
    unknownKeys('earlyTermination.', node, ['use', 'startupTrials', 'warmupEpochs'], problems);
    const r: MedianRule = { use: 'median', startupTrials: 5, warmupEpochs: 0 };
    for (const k of ['startupTrials', 'warmupEpochs'] as const) {
      if (node[k] === undefined) continue;
      if (!isNat(node[k])) problems.push(`earlyTermination.${k}: must be an integer >= 0; got ${showValue(node[k])}`);
      else r[k] = node[k] as number;
    }
    return r;
  }
  if (use === 'asha') {
    unknownKeys('earlyTermination.', node, ['use', 'minEpochs', 'reductionFactor'], problems);
    const r: AshaRule = { use: 'asha', minEpochs: 1, reductionFactor: 3 };
    if (node.minEpochs !== undefined) {
      if (!isNat(node.minEpochs) || node.minEpochs < 1) problems.push(`earlyTermination.minEpochs: must be an integer >= 1; got ${showValue(node.minEpochs)}`);
      else r.minEpochs = node.minEpochs;
    }
    if (node.reductionFactor !== undefined) {
      if (!isNat(node.reductionFactor) || node.reductionFactor < 2) problems.push(`earlyTermination.reductionFactor: must be an integer >= 2; got ${showValue(node.reductionFactor)}`);
      else r.reductionFactor = node.reductionFactor;
    }
    return r;
  }
  const hint = typeof use === 'string' ? didYouMean(use, ['none', 'median', 'asha']) : undefined;
  problems.push(`earlyTermination.use: must be one of "none", "median", "asha"; got ${showValue(use)}${hint ? `. Did you mean ${JSON.stringify(hint)}?` : ''}`);
  return { use: 'none' };
}

function parseTpe(node: unknown, problems: string[]): TpeOptions {
  const t = { ...TPE_DEFAULTS };
  if (node === undefined || node === null) return t;
  if (!isObject(node)) {
    problems.push(`tpe: must be a mapping (keys: ${Object.keys(TPE_DEFAULTS).join(', ')}); got ${showValue(node)}`);
    return t;
  }
  unknownKeys('tpe.', node, Object.keys(TPE_DEFAULTS), problems);
  for (const k of ['startupTrials', 'candidates'] as const) {
    if (node[k] === undefined) continue;
    if (!isNat(node[k]) || (k === 'candidates' && (node[k] as number) < 1)) problems.push(`tpe.${k}: must be an integer >= ${k === 'candidates' ? 1 : 0}; got ${showValue(node[k])}`);
    else t[k] = node[k] as number;
  }
  if (node.priorWeight !== undefined) {
    if (!isNum(node.priorWeight) || node.priorWeight <= 0) problems.push(`tpe.priorWeight: must be a positive number; got ${showValue(node.priorWeight)}`);
    else t.priorWeight = node.priorWeight;
  }
  for (const k of ['multivariate', 'constantLiar', 'magicClip'] as const) {
    if (node[k] === undefined) continue;
    if (typeof node[k] !== 'boolean') problems.push(`tpe.${k}: must be true or false; got ${showValue(node[k])}`);
    else t[k] = node[k] as boolean;
  }
  return t;
}

/**
 * Reads and checks a sweep file against the experiment it names (every parameter path must be a
 * key of that experiment, with its plugin modules loaded). `outDir` overrides the file's `dir`.
 * Throws one ConfigError naming the sweep file and listing every problem.
 */
export function loadSweepSpec(file: string, registry: PluginRegistry, outDir?: string): SweepSpec {
  const raw = readExperimentFile(file);
  const problems: string[] = [];
  unknownKeys('', raw, TOP_KEYS, problems);
  const abs = path.resolve(file);
  const name = raw.name === undefined ? path.basename(file).replace(/\.(ya?ml|json)$/i, '') : raw.name;
  if (typeof name !== 'string' || !/^[A-Za-z0-9._-]+$/.test(name)) problems.push(`name: must be a name of letters, digits, ".", "_" or "-"; got ${showValue(name)}`);

  if (typeof raw.experiment !== 'string' || raw.experiment === '') {
    problems.push(`experiment: the base experiment file, relative to the sweep file; got ${showValue(raw.experiment)}`);
    throw new ConfigError(problems, file);
  }
  const experiment = path.resolve(path.dirname(abs), raw.experiment);
  if (!fs.existsSync(experiment)) {
    problems.push(`experiment: no such file ${JSON.stringify(raw.experiment)} (looked for ${experiment})`);
    throw new ConfigError(problems, file);
  }
  const baseRaw = readExperimentFile(experiment);
  if (baseRaw.stages !== undefined) problems.push(`experiment: ${raw.experiment} has stages; sweeps of staged experiments are not supported`);
  const keys = experimentKeys(baseRaw, registry, experiment);
  const shownExperiment = raw.experiment;

  const set: Raw = {};
  if (raw.set !== undefined) {
    if (!isObject(raw.set)) problems.push(`set: must be a mapping of dotted config paths to values; got ${showValue(raw.set)}`);
    else
      for (const [k, v] of Object.entries(raw.set)) {
        // Whole groups (train: {epochs: 2}) are allowed here as in an experiment file: the leaves are checked.
        const leaves = isObject(v) && !keys.has(k) ? flatten(v, k) : [[k, v] as [string, unknown]];
        for (const [lk, lv] of leaves) {
          if (!keys.has(lk)) problems.push(unknownPathMessage(`set.${lk}`, lk, keys, shownExperiment));
          else set[lk] = lv;
        }
      }
  }

  const method = raw.method ?? 'grid';
  if (typeof method !== 'string' || !(METHODS as readonly string[]).includes(method)) {
    const hint = typeof method === 'string' ? didYouMean(method, METHODS) : undefined;
    problems.push(`method: must be one of ${quoted(METHODS)}; got ${showValue(method)}${hint ? `. Did you mean ${JSON.stringify(hint)}?` : ''}`);
  }
  const seed = raw.seed ?? 0;
  if (!isNat(seed)) problems.push(`seed: the sampler's seed, an integer >= 0; got ${showValue(seed)}`);

  const metric = { name: 'test/loss', goal: 'minimize' as 'minimize' | 'maximize' };
  if (raw.metric !== undefined) {
    if (!isObject(raw.metric)) problems.push(`metric: must be a mapping { name, goal }; got ${showValue(raw.metric)}`);
    else {
      unknownKeys('metric.', raw.metric, ['name', 'goal'], problems);
      const m = raw.metric;
      if (typeof m.name !== 'string' || !/^(train|val|test)\/[A-Za-z0-9_.-]+$/.test(m.name)) {
        problems.push(`metric.name: a metric of the trials' runs, e.g. "val/loss", "test/loss", "test/iw-log-likelihood"; got ${showValue(m.name)}`);
      } else metric.name = m.name;
      if (m.goal !== undefined) {
        if (m.goal !== 'minimize' && m.goal !== 'maximize') problems.push(`metric.goal: must be one of "minimize", "maximize"; got ${showValue(m.goal)}`);
        else metric.goal = m.goal;
      }
    }
  }

  const parameters: Param[] = [];
  if (!isObject(raw.parameters) || Object.keys(raw.parameters).length === 0) {
    problems.push(`parameters: must be a mapping of dotted config paths to { values: [...] } or { distribution, min, max }; got ${showValue(raw.parameters)}`);
  } else {
    for (const [k, node] of Object.entries(raw.parameters)) {
      if (k in set) problems.push(`parameters.${k}: also fixed under set; give it in one place`);
      const p = parseParam(k, node, keys, shownExperiment, problems);
      if (p) parameters.push(p);
    }
  }
  if ((method === 'grid') && parameters.some((p) => p.kind === 'range')) {
    const ranges = parameters.filter((p) => p.kind === 'range').map((p) => p.path);
    problems.push(`method: grid needs values: [...] for every parameter; ${ranges.join(', ')} ${ranges.length === 1 ? 'is a range' : 'are ranges'} (use method random or tpe)`);
  }
  const names = new Set(parameters.map((p) => p.path));
  for (const p of parameters) {
    for (const k of Object.keys(p.when ?? {})) {
      if (k === p.path) problems.push(`parameters.${p.path}.when: a parameter cannot depend on itself`);
      else if (names.has(k) && parameters.findIndex((q) => q.path === k) > parameters.indexOf(p)) {
        problems.push(`parameters.${p.path}.when.${k}: ${k} is swept after ${p.path}; list the parameters a condition reads first`);
      }
    }
  }

  let seeds: number[] | null = null;
  if (raw.seeds !== undefined) {
    if (!Array.isArray(raw.seeds) || raw.seeds.length === 0 || !raw.seeds.every(isNat) || new Set(raw.seeds).size !== raw.seeds.length) {
      problems.push(`seeds: must be a non-empty list of distinct integers >= 0 (each point runs once per seed); got ${showValue(raw.seeds)}`);
    } else seeds = raw.seeds as number[];
    if (names.has('seed')) problems.push('seeds: seed is also a swept parameter; give the seeds in one place');
  }

  const budget = { trials: 0, concurrent: null as number | null, wallMinutes: null as number | null };
  if (!isObject(raw.budget)) problems.push(`budget: must be a mapping { trials, concurrent, wallMinutes } with trials; got ${showValue(raw.budget)}`);
  else {
    unknownKeys('budget.', raw.budget, ['trials', 'concurrent', 'wallMinutes'], problems);
    const b = raw.budget;
    if (!isNat(b.trials) || b.trials < 1) problems.push(`budget.trials: the number of trials to run, an integer >= 1; got ${showValue(b.trials)}`);
    else budget.trials = b.trials;
    if (b.concurrent !== undefined) {
      if (!isNat(b.concurrent) || b.concurrent < 1) problems.push(`budget.concurrent: trials running at once, an integer >= 1; got ${showValue(b.concurrent)}`);
      else budget.concurrent = b.concurrent;
    }
    if (b.wallMinutes !== undefined) {
      if (!isNum(b.wallMinutes) || b.wallMinutes <= 0) problems.push(`budget.wallMinutes: a positive number of minutes; got ${showValue(b.wallMinutes)}`);
      else budget.wallMinutes = b.wallMinutes;
    }
  }
  const earlyTermination = parseEarly(raw.earlyTermination, problems);
  const tpe = parseTpe(raw.tpe, problems);
  if (raw.tpe !== undefined && method !== 'tpe') problems.push(`tpe: settings of method tpe, and method is ${showValue(method)}`);
  const retries = raw.retries ?? 1;
  if (!isNat(retries)) problems.push(`retries: times a failed trial is run again, an integer >= 0; got ${showValue(retries)}`);

  let dir: string;
  if (outDir) dir = path.resolve(outDir);
  else if (raw.dir !== undefined) {
    if (typeof raw.dir !== 'string' || raw.dir === '') problems.push(`dir: the sweep directory (relative to the working directory); got ${showValue(raw.dir)}`);
    dir = path.resolve(String(raw.dir));
  } else {
    const tracking = getPath(baseRaw, 'tracking.dir') ?? set['tracking.dir'];
    dir = path.resolve(typeof tracking === 'string' && tracking ? tracking : 'runs', 'sweeps', String(name));
  }
  if (problems.length > 0) throw new ConfigError(problems, file);
  return {
    file: abs,
    shownFile: file,
    name: name as string,
    experiment,
    baseRaw,
    set,
    method: method as SweepSpec['method'],
    seed: seed as number,
    metric,
    parameters,
    seeds,
    budget,
    earlyTermination,
    tpe,
    retries: retries as number,
    dir,
  };
}

/**
 * The swept parameters and the metric of a sweep file, read as data only, for readers of a sweep
 * directory (the dashboard): the file is parsed (YAML or JSON) and its `parameters` checked as
 * loadSweepSpec checks them, but neither the base experiment nor its plugin modules are loaded,
 * so nothing named by the sweep runs (and parameter paths are not checked against the
 * experiment). Throws a ConfigError naming the file when it cannot be read or its parameters
 * are wrong.
 */
export function readSweepParameters(file: string): { parameters: Param[]; metric: SweepSpec['metric'] | null } {
  const raw = readExperimentFile(file);
  const problems: string[] = [];
  const parameters: Param[] = [];
  if (!isObject(raw.parameters) || Object.keys(raw.parameters).length === 0) {
    problems.push(`parameters: must be a mapping of dotted config paths to { values: [...] } or { distribution, min, max }; got ${showValue(raw.parameters)}`);
  } else {
    for (const [k, node] of Object.entries(raw.parameters)) {
      const p = parseParam(k, node, null, '', problems);
      if (p) parameters.push(p);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems, file);
  const m = raw.metric;
  const metric = isObject(m) && typeof m.name === 'string' ? { name: m.name, goal: m.goal === 'maximize' ? ('maximize' as const) : ('minimize' as const) } : null;
  return { parameters, metric };
}

function flatten(obj: Raw, prefix: string): Array<[string, unknown]> {
  const out: Array<[string, unknown]> = [];
  for (const [k, v] of Object.entries(obj)) {
    const key = `${prefix}.${k}`;
    if (isObject(v)) out.push(...flatten(v, key));
    else out.push([key, v]);
  }
  return out;
}
