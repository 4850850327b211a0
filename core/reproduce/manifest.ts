/**
 * The reproduction manifest (experiments/baselines/reproductions.yaml): one row per published
 * setting, with the experiment that trains it, the metric compared, the reference with its
 * source, and the tolerance; or a claim row comparing other rows. Read strictly: every problem
 * names the file, the row and the key.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { ConfigError } from '../errors';

export interface MetricSpec {
  key: string;
  negate: boolean;
  label: string;
  /** A staged run's stage to read it from (default: the last). */
  stage: string | null;
  /** The metric's standard-error key, for claims. */
  se: string | null;
}

export interface Reference {
  value: number;
  source: string;
  setting: string;
  epochs: number | null;
}

export interface RunRow {
  kind: 'run';
  name: string;
  title: string;
  /** Absolute path of the experiment file. */
  experiment: string;
  /** Overrides of a fresh run (`--set` syntax); `name=...` among them names its run directory. */
  set: string[];
  metric: MetricSpec;
  evaluate: { k: number; limit: number } | null;
  reference: Reference | { none: string };
  tolerance: number | null;
}

export interface ClaimRow {
  kind: 'claim';
  name: string;
  title: string;
  lower: string[];
  than: string[];
}

export type Row = RunRow | ClaimRow;

export interface Manifest {
  file: string;
  rows: Row[];
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const show = (v: unknown) => (v === undefined ? 'nothing' : JSON.stringify(v));

/** The manifest a checkout ships, found from the working directory or from the package. */
export function defaultManifest(): string {
  const here = path.resolve('experiments', 'baselines', 'reproductions.yaml');
  if (fs.existsSync(here)) return here;
  // core/reproduce or dist/core/reproduce -> the package root
  for (const up of ['../..', '../../..']) {
    const f = path.resolve(__dirname, up, 'experiments', 'baselines', 'reproductions.yaml');
    if (fs.existsSync(f)) return f;
  }
  return here;
}

export function readManifest(file: string): Manifest {
  const abs = path.resolve(file);
  if (!fs.existsSync(abs)) {
    throw new ConfigError(`--manifest ${JSON.stringify(file)}: no such file (the reproductions live in experiments/baselines/reproductions.yaml of a vaelab checkout)`);
  }
  let doc: unknown;
  try {
    doc = parse(fs.readFileSync(abs, 'utf8'));
  } catch (e) {
    throw new ConfigError(`${file}: not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  if (!isObj(doc) || !Array.isArray(doc.rows)) throw new ConfigError(`${file}: rows: a list of reproductions; got ${show(isObj(doc) ? doc.rows : doc)}`);
  const problems: string[] = [];
  const rows: Row[] = [];
  const names = new Set<string>();
  (doc.rows as unknown[]).forEach((raw, i) => {
    const at = (key: string) => `${file}: rows[${i}]${isObj(raw) && typeof raw.name === 'string' ? ` (${raw.name})` : ''}.${key}`;
    if (!isObj(raw)) {
      problems.push(`${file}: rows[${i}]: a mapping; got ${show(raw)}`);
      return;
    }
    const str = (key: string, v: unknown): string => {
      if (typeof v === 'string' && v.trim()) return v;
      problems.push(`${at(key)}: a non-empty string; got ${show(v)}`);
      return '';
    };
    const name = str('name', raw.name);
    if (name && !/^[a-z0-9][a-z0-9-]*$/.test(name)) problems.push(`${at('name')}: lower-case letters, digits and hyphens; got ${show(name)}`);
    if (names.has(name)) problems.push(`${at('name')}: ${show(name)} is used by an earlier row`);
    names.add(name);
    const title = str('title', raw.title);
    if (raw.claim !== undefined) {
      const c = raw.claim;
      const list = (key: 'lower' | 'than'): string[] => {
        const v = isObj(c) ? c[key] : undefined;
        if (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string')) return v as string[];
        problems.push(`${at(`claim.${key}`)}: a non-empty list of row names; got ${show(v)}`);
        return [];
      };
      rows.push({ kind: 'claim', name, title, lower: list('lower'), than: list('than') });
      return;
    }
    const exp = path.resolve(path.dirname(abs), str('experiment', raw.experiment) || '.');
    if (typeof raw.experiment === 'string' && !fs.existsSync(exp)) problems.push(`${at('experiment')}: no such file ${show(raw.experiment)} (relative to ${file})`);
    let set: string[] = [];
    if (raw.set !== undefined) {
      if (Array.isArray(raw.set) && raw.set.every((x) => typeof x === 'string' && /^[^=]+=/.test(x))) set = raw.set as string[];
      else problems.push(`${at('set')}: a list of KEY=VALUE overrides (as --set takes them); got ${show(raw.set)}`);
    }
    const m = raw.metric;
    let metric: MetricSpec = { key: '', negate: false, label: '', stage: null, se: null };
    if (!isObj(m) || typeof m.key !== 'string') problems.push(`${at('metric')}: { key, negate?, label?, stage?, se? } with key a test metric such as test/iw-log-likelihood; got ${show(m)}`);
    else {
      if (m.negate !== undefined && typeof m.negate !== 'boolean') problems.push(`${at('metric.negate')}: true or false; got ${show(m.negate)}`);
      metric = {
        key: m.key,
        negate: m.negate === true,
        label: typeof m.label === 'string' ? m.label : m.key,
        stage: typeof m.stage === 'string' ? m.stage : null,
        se: typeof m.se === 'string' ? m.se : null,
      };
    }
    let evaluate: RunRow['evaluate'] = null;
    if (raw.evaluate !== undefined) {
      const ev = raw.evaluate;
      if (!isObj(ev) || !Number.isInteger(ev.k) || (ev.k as number) < 1 || !Number.isInteger(ev.limit ?? 0) || ((ev.limit ?? 0) as number) < 0) {
        problems.push(`${at('evaluate')}: { k: an integer >= 1, limit: an integer >= 0 (0: the whole test split) }; got ${show(ev)}`);
      } else evaluate = { k: ev.k as number, limit: (ev.limit ?? 0) as number };
    }
    const r = raw.reference;
    let reference: RunRow['reference'] = { none: '' };
    if (isObj(r) && typeof r.none === 'string') reference = { none: r.none };
    else if (isObj(r) && typeof r.value === 'number' && Number.isFinite(r.value)) {
      reference = {
        value: r.value,
        source: str('reference.source', r.source),
        setting: typeof r.setting === 'string' ? r.setting : '',
        epochs: typeof r.epochs === 'number' ? r.epochs : null,
      };
    } else problems.push(`${at('reference')}: { value, source, setting?, epochs? } or { none: why }; got ${show(r)}`);
    let tolerance: number | null = null;
    if ('value' in reference) {
      if (typeof raw.tolerance === 'number' && raw.tolerance > 0) tolerance = raw.tolerance;
      else problems.push(`${at('tolerance')}: a number > 0 (the distance from the reference that still matches); got ${show(raw.tolerance)}`);
    }
    rows.push({ kind: 'run', name, title, experiment: exp, set, metric, evaluate, reference, tolerance });
  });
  for (const row of rows) {
    if (row.kind !== 'claim') continue;
    for (const n of [...row.lower, ...row.than]) {
      const target = rows.find((x) => x.name === n);
      if (!target) problems.push(`${file}: row ${row.name}: claim names ${show(n)}, which is no row`);
      else if (target.kind === 'claim') problems.push(`${file}: row ${row.name}: claim names ${show(n)}, which is itself a claim`);
    }
  }
  if (problems.length) throw new ConfigError(problems.join('\n'));
  return { file: abs, rows };
}
