/**
 * Stages: an experiment file may train in stages, listed under a top-level `stages:` key. Each
 * entry is `{ name, ...overrides }`: a partial experiment applied on top of the rest of the file
 * (the base), e.g.
 *
 *   stages:
 *     - name: vae
 *     - name: prior
 *       objective: { use: prior-fit }
 *       train: { epochs: 20, trainable: [prior/] }
 *
 * Overrides merge into the base key by key (mappings recursively; lists and values replace).
 * Every stage's full experiment is validated before the first stage starts, so a typo in the
 * last stage is reported before hours of the first. The stages are trained in order in one run
 * directory (core/train/run-stages.ts), each from the previous stage's final weights unless it
 * sets `init.from` itself.
 *
 * The `stages` key is read out of the raw object here, before the rest is validated as an
 * ordinary experiment, so the experiment schema needs no entry for it.
 */
import * as path from 'node:path';
import { SLOTS } from '../contracts';
import { ConfigError } from '../errors';
import type { PluginRegistry } from '../plugin';
import { checkModelSelection } from '../train/trainer';
import { experimentFromObject, type Experiment } from './experiment';

type Raw = Record<string, unknown>;

const isObject = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v);

const KEBAB = /^[a-z0-9]+(-[a-z0-9]+)*$/;

/** One stage, validated. */
export interface Stage {
  /** 0-based position in `stages:`. */
  index: number;
  name: string;
  /** The keys the stage entry sets (its `name` left out). */
  overrides: Raw;
  /** The stage's whole experiment object: base with the overrides applied. */
  raw: Raw;
  /** The stage's validated experiment. */
  experiment: Experiment;
}

/** A staged experiment: the base object and its stages, in order. */
export interface StagePlan {
  base: Raw;
  stages: Stage[];
  /** The experiment file ("<inline>" when built from an object). */
  file: string;
}

/** True when a raw experiment object lists stages. */
export function hasStages(raw: Raw): boolean {
  return raw.stages !== undefined;
}

/** `over` applied on top of `base`: mappings merge key by key, anything else replaces. */
export function mergeExperiment(base: Raw, over: Raw): Raw {
  const out: Raw = structuredClone(base);
  for (const [k, v] of Object.entries(over)) {
    out[k] = isObject(v) && isObject(out[k]) ? mergeExperiment(out[k] as Raw, v) : structuredClone(v);
  }
  return out;
}

/**
 * A raw experiment (stages included) with relative plugin module paths made absolute against
 * the experiment file's folder, so that the copy saved in a run directory works from anywhere.
 */
export function portableRaw(raw: Raw, file: string): Raw {
  const base = file === '<inline>' ? process.cwd() : path.dirname(path.resolve(file));
  const fix = (o: Raw) => {
    if (Array.isArray(o.plugins)) o.plugins = o.plugins.map((p) => (typeof p === 'string' && p.startsWith('.') ? path.resolve(base, p) : p));
  };
  const out = structuredClone(raw);
  fix(out);
  if (Array.isArray(out.stages)) for (const s of out.stages) if (isObject(s)) fix(s);
  return out;
}

/** Problems of one stage's config that the schema cannot see: trainable prefixes, selection on test. */
function stageProblems(exp: Experiment): string[] {
  const out: string[] = [];
  const slots = SLOTS.map((s) => `${s}/`);
  exp.config.train.trainable.forEach((p, i) => {
    if (!slots.some((s) => p.startsWith(s))) {
      out.push(`train.trainable[${i}]: ${JSON.stringify(p)} must start with a slot name and "/": ${slots.map((s) => JSON.stringify(s)).join(', ')}`);
    }
  });
  try {
    checkModelSelection(exp.config);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    out.push(...e.problems);
  }
  return out;
}

/**
 * Reads `stages:` out of a raw experiment and validates every stage (base + overrides) with
 * experimentFromObject; relative plugin module paths are made absolute against `file`'s folder. Throws one ConfigError listing every problem of every stage, each
 * prefixed with `stages[i] "name": `, and naming `file`.
 */
export function planStages(given: Raw, registry: PluginRegistry, file = '<inline>'): StagePlan {
  const where = file === '<inline>' ? undefined : file;
  // Absolute plugin paths, so that each stage's config.json works from its own folder.
  const raw = portableRaw(given, file);
  const list = raw.stages;
  if (!Array.isArray(list) || list.length === 0) {
    throw new ConfigError(`stages: must be a non-empty list of stages, each a mapping with a "name" and the keys it overrides; got ${JSON.stringify(list)}`, where);
  }
  const base: Raw = structuredClone(raw);
  delete base.stages;
  const problems: string[] = [];
  const seen = new Map<string, number>();
  const entries: Array<{ index: number; name: string; overrides: Raw }> = [];
  list.forEach((entry: unknown, i) => {
    if (!isObject(entry)) {
      problems.push(`stages[${i}]: must be a mapping with a "name" and the keys it overrides; got ${JSON.stringify(entry)}`);
      return;
    }
    const { name, ...overrides } = entry;
    if (typeof name !== 'string' || !KEBAB.test(name)) {
      problems.push(`stages[${i}].name: must be a kebab-case name (lower-case words joined by "-"); got ${JSON.stringify(name)}`);
      return;
    }
    if (seen.has(name)) problems.push(`stages[${i}].name: "${name}" is also the name of stages[${seen.get(name)}]`);
    seen.set(name, i);
    if ('stages' in overrides) problems.push(`stages[${i}].stages: a stage cannot have stages of its own`);
    entries.push({ index: i, name, overrides });
  });
  if (problems.length > 0) throw new ConfigError(problems, where);

  const stages: Stage[] = [];
  for (const { index, name, overrides } of entries) {
    const prefix = `stages[${index}] "${name}": `;
    const stageRaw = mergeExperiment(base, overrides);
    try {
      const experiment = experimentFromObject(stageRaw, registry, file);
      problems.push(...stageProblems(experiment).map((p) => prefix + p));
      stages.push({ index, name, overrides, raw: stageRaw, experiment });
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      problems.push(...e.problems.map((p) => prefix + p));
    }
  }
  if (problems.length > 0) throw new ConfigError(problems, where);
  return { base, stages, file };
}
