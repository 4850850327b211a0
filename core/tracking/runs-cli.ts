/**
 * `vaelab runs [RUNS_DIR] [--filter KEY=VALUE]... [--sort [-]KEY] [--columns A,B] [--sweeps] [--json]`:
 * the run index (core/tracking/run-index.ts) as a table.
 *
 * Keys are the index's fields (id, experiment, kind, parent, status, reason, startedAt, endedAt,
 * seconds), dotted config keys (objective.beta, train.optimizer.learningRate) and metrics
 * (test/iw-log-likelihood, best/value, step, epoch). A filter is KEY=VALUE, KEY!=VALUE,
 * KEY>VALUE, KEY>=VALUE, KEY<VALUE, KEY<=VALUE or KEY~TEXT (contains); VALUE may list
 * alternatives separated by commas for = and !=.
 */
import type { Command } from 'commander';
import { closest } from 'fastest-levenshtein';
import { ConfigError } from '../errors';
import { buildRunIndex, type RunEntry, type RunIndex, type Scalar, type SweepEntry } from './run-index';

const FIELDS = ['id', 'experiment', 'kind', 'parent', 'status', 'reason', 'startedAt', 'endedAt', 'seconds'] as const;

/** The value of a key for one run: a field, a metric, or a config key. */
export function valueOf(run: RunEntry, key: string): Scalar | undefined {
  if ((FIELDS as readonly string[]).includes(key)) return run[key as (typeof FIELDS)[number]];
  if (key in run.metrics) return run.metrics[key];
  if (key in run.config) return run.config[key];
  return undefined;
}

type Op = '=' | '!=' | '>=' | '<=' | '>' | '<' | '~';
export interface RunFilter {
  key: string;
  op: Op;
  values: string[];
  text: string;
}

/** Parses `KEY<op>VALUE`; the message names the filter and what is allowed. */
export function parseFilter(text: string): RunFilter {
  const m = /^([^=!<>~]+?)(!=|>=|<=|=|>|<|~)(.*)$/.exec(text);
  if (!m || !m[1].trim()) {
    throw new ConfigError(`--filter ${JSON.stringify(text)}: expected KEY=VALUE (or !=, >, >=, <, <=, ~), e.g. status=running or objective.beta>=2`);
  }
  const op = m[2] as Op;
  const raw = m[3].trim();
  if ((op === '>' || op === '<' || op === '>=' || op === '<=') && !Number.isFinite(Number(raw))) {
    throw new ConfigError(`--filter ${JSON.stringify(text)}: ${op} compares numbers; got ${JSON.stringify(raw)}`);
  }
  return { key: m[1].trim(), op, values: op === '=' || op === '!=' ? raw.split(',').map((v) => v.trim()) : [raw], text };
}

const same = (v: Scalar | undefined, want: string): boolean => {
  if (v === undefined) return false;
  if (typeof v === 'number' && want.trim() !== '' && Number.isFinite(Number(want))) return v === Number(want);
  return String(v) === want;
};

export function matches(run: RunEntry, f: RunFilter): boolean {
  const v = valueOf(run, f.key);
  switch (f.op) {
    case '=':
      return f.values.some((w) => same(v, w));
    case '!=':
      return !f.values.some((w) => same(v, w));
    case '~':
      return v !== undefined && v !== null && String(v).includes(f.values[0]);
    default: {
      if (typeof v !== 'number') return false;
      const w = Number(f.values[0]);
      return f.op === '>' ? v > w : f.op === '<' ? v < w : f.op === '>=' ? v >= w : v <= w;
    }
  }
}

/** Every key some run has: fields, metrics, config keys. */
export function knownKeys(runs: RunEntry[]): string[] {
  const keys = new Set<string>(FIELDS);
  for (const r of runs) {
    for (const k of Object.keys(r.metrics)) keys.add(k);
    for (const k of Object.keys(r.config)) keys.add(k);
  }
  return [...keys];
}

function checkKey(key: string, known: string[], option: string): void {
  if (known.includes(key)) return;
  const near = known.length > 0 ? closest(key, known) : undefined;
  throw new ConfigError(`${option}: no run has the key ${JSON.stringify(key)}${near ? `; did you mean ${JSON.stringify(near)}?` : ''} (keys: the fields ${FIELDS.join(', ')}, dotted config keys, metric names)`);
}

/** Sorts by a key ('-key' for descending); runs without it go last. */
export function sortRuns(runs: RunEntry[], spec: string): RunEntry[] {
  const desc = spec.startsWith('-');
  const key = desc ? spec.slice(1) : spec;
  return [...runs].sort((a, b) => {
    const x = valueOf(a, key);
    const y = valueOf(b, key);
    const xm = x === undefined || x === null;
    const ym = y === undefined || y === null;
    if (xm || ym) return xm === ym ? 0 : xm ? 1 : -1;
    const c = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
    return desc ? -c : c;
  });
}

/** The metric columns shown by default: the importance-weighted likelihood, else the loss. */
function defaultColumns(runs: RunEntry[]): string[] {
  const have = (k: string) => runs.some((r) => k in r.metrics);
  const cols = ['id', 'status', 'experiment', 'epoch', 'step'];
  for (const k of ['test/iw-log-likelihood', 'test/loss', 'best/value', 'val/loss', 'train/loss']) {
    if (have(k)) cols.push(k);
    if (cols.length >= 7) break;
  }
  return [...cols, 'seconds', 'startedAt'];
}

const cell = (v: Scalar | undefined): string => {
  if (v === undefined || v === null) return '-';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : Math.abs(v) >= 100 ? v.toFixed(2) : v.toPrecision(4);
  return String(v);
};

/** Left-aligned text columns, right-aligned numbers, two spaces apart. */
export function formatTable(header: string[], rows: Array<Array<Scalar | undefined>>): string {
  const text = rows.map((r) => r.map(cell));
  const numeric = header.map((_, j) => rows.every((r) => typeof r[j] === 'number' || r[j] === undefined || r[j] === null));
  const width = header.map((h, j) => Math.max(h.length, ...text.map((r) => r[j].length)));
  const line = (r: string[]) => r.map((c, j) => (numeric[j] ? c.padStart(width[j]) : c.padEnd(width[j]))).join('  ').trimEnd();
  return [line(header), line(width.map((w) => '-'.repeat(w))), ...text.map(line)].join('\n');
}

function sweepRows(sweeps: SweepEntry[]): string {
  const rows = sweeps.map((s) => {
    const done = s.trials.filter((t) => t.value !== null && t.status === 'completed').map((t) => t.value!);
    const best = done.length ? (s.metric.goal === 'maximize' ? Math.max(...done) : Math.min(...done)) : null;
    const count = (st: string) => s.trials.filter((t) => t.status === st).length;
    return [s.id, s.method, `${s.metric.goal === 'maximize' ? 'max' : 'min'} ${s.metric.name}`, s.trials.length, count('completed'), count('pruned'), count('failed'), count('running') + count('queued'), best] as Scalar[];
  });
  return formatTable(['sweep', 'method', 'metric', 'trials', 'completed', 'pruned', 'failed', 'open', 'best'], rows);
}

export interface RunsOptions {
  filter: string[];
  sort?: string;
  columns?: string;
  json?: boolean;
  sweeps?: boolean;
  cache?: boolean;
}

/** Filters and sorts an index's runs as the options say; bad keys are ConfigErrors. */
export function selectRuns(index: RunIndex, o: Pick<RunsOptions, 'filter' | 'sort'>): RunEntry[] {
  const known = knownKeys(index.runs);
  const filters = o.filter.map(parseFilter);
  if (index.runs.length > 0) for (const f of filters) checkKey(f.key, known, `--filter ${f.text}`);
  let runs = index.runs.filter((r) => filters.every((f) => matches(r, f)));
  if (o.sort) {
    if (index.runs.length > 0) checkKey(o.sort.replace(/^-/, ''), known, `--sort ${o.sort}`);
    runs = sortRuns(runs, o.sort);
  }
  return runs;
}

/** The command's output (stdout) and notes (stderr). */
export function runsReport(root: string, o: RunsOptions): { out: string; notes: string[] } {
  const index = buildRunIndex(root, { cache: o.cache });
  const notes = [...index.problems];
  if (o.sweeps) {
    return { out: o.json ? JSON.stringify(index.sweeps, null, 2) : index.sweeps.length ? sweepRows(index.sweeps) : `no sweeps under ${root}`, notes };
  }
  const runs = selectRuns(index, o);
  for (const r of runs) for (const p of r.problems) notes.push(`${r.id}: ${p}`);
  if (o.json) return { out: JSON.stringify(runs, null, 2), notes };
  if (index.runs.length === 0) return { out: `no runs under ${root}`, notes };
  const cols = o.columns ? o.columns.split(',').map((c) => c.trim()).filter(Boolean) : defaultColumns(runs.length ? runs : index.runs);
  const known = knownKeys(index.runs);
  for (const c of cols) checkKey(c, known, `--columns ${o.columns}`);
  const table = formatTable(cols, runs.map((r) => cols.map((c) => valueOf(r, c))));
  const counts = new Map<string, number>();
  for (const r of runs) counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
  const tally = [...counts].map(([s, n]) => `${n} ${s}`).join(', ');
  return { out: `${table}\n${runs.length} of ${index.runs.length} runs${tally ? ` (${tally})` : ''}`, notes };
}

const collect = (v: string, prev: string[]) => [...prev, v];

export function registerRunsCommand(prog: Command, out: (line: string) => void, err: (line: string) => void): void {
  prog
    .command('runs')
    .description('list the runs (and sweeps) under a runs directory: status, config, final metrics')
    .argument('[runsDir]', 'root of run directories', 'runs')
    .option('--filter <key=value>', 'keep runs whose field, config key or metric matches (=, !=, >, >=, <, <=, ~ contains); repeatable', collect, [])
    .option('--sort <key>', 'sort by a field, config key or metric; -key for descending')
    .option('--columns <a,b,...>', 'the columns to show (fields, config keys, metrics)')
    .option('--sweeps', 'list the sweeps instead of the runs')
    .option('--json', 'print the selected entries as JSON')
    .option('--no-cache', 'do not read or write the index cache (<runsDir>/.vaelab-index.json)')
    .action((dir: string, o: RunsOptions) => {
      const r = runsReport(dir, o);
      for (const n of r.notes) err(`note: ${n}`);
      out(r.out);
    });
}
