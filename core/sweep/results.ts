/**
 * Results of a sweep: the trials sorted by the metric (completed trials by value, then pruned
 * ones by epochs reached and last value, then running ones by epochs reached and their latest
 * value, then the rest), printed as a table and written as results.csv and results.json; points
 * repeated over seeds are also summarised (mean, standard deviation, n); and the best completed
 * trial's config as best-experiment.yaml, a ready experiment file. The files are written during
 * the sweep as well (`writeResultFiles`, `final: false` in results.json), and once more at the
 * end of each session.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as YAML from 'yaml';
import { writeFileAtomic, writeJsonAtomic } from '../tracking/files';
import { formatNumber, type Params } from './space';
import type { SweepSpec } from './spec';
import type { SweepState, TrialRecord } from './state';

export interface ResultRow {
  rank: number;
  trial: number;
  status: string;
  value: number | null;
  epochs: number;
  seconds: number;
  attempts: number;
  params: Params;
  seed: number | null;
  dir: string;
  prunedBy?: string;
  failure?: string;
  /** A trial not completed or pruned that has reported: its newest intermediate value. */
  latest?: { epoch: number; value: number };
}

const ORDER: Record<string, number> = { completed: 0, pruned: 1, interrupted: 2, running: 2, queued: 3, failed: 4 };

/** The trial's newest intermediate value, if it reported one. */
function latestOf(t: TrialRecord): { epoch: number; value: number } | undefined {
  const epochs = Object.keys(t.intermediate).map(Number);
  if (epochs.length === 0) return undefined;
  const epoch = Math.max(...epochs);
  return { epoch, value: t.intermediate[epoch] };
}

/** The trials in result order. */
export function rankTrials(state: SweepState, goal: 'minimize' | 'maximize'): ResultRow[] {
  const sign = goal === 'minimize' ? 1 : -1;
  const epochsOf = (t: TrialRecord) => Math.max(0, ...Object.keys(t.intermediate).map(Number));
  const sorted = [...state.trials].sort((a, b) => {
    const o = ORDER[a.status] - ORDER[b.status];
    if (o !== 0) return o;
    if ((a.status === 'pruned' || ORDER[a.status] === 2) && epochsOf(a) !== epochsOf(b)) return epochsOf(b) - epochsOf(a);
    const [va, vb] = ORDER[a.status] === 2 ? [latestOf(a)?.value ?? null, latestOf(b)?.value ?? null] : [a.value, b.value];
    if (va !== null && vb !== null && va !== vb) return sign * (va - vb);
    return a.number - b.number;
  });
  return sorted.map((t, i) => {
    const pruned = t.decisions.find((d) => d.action === 'prune');
    const latest = t.status === 'completed' || t.status === 'pruned' ? undefined : latestOf(t);
    return {
      rank: i + 1,
      trial: t.number,
      status: t.status,
      value: t.value,
      epochs: epochsOf(t),
      seconds: Math.round(t.seconds * 10) / 10,
      attempts: t.attempts,
      params: t.params,
      seed: t.seed,
      dir: t.dir,
      ...(pruned ? { prunedBy: pruned.reason } : {}),
      ...(t.failures.length > 0 && t.status === 'failed' ? { failure: t.failures[t.failures.length - 1].reason } : {}),
      ...(latest ? { latest } : {}),
    };
  });
}

/** Completed trials grouped by their parameters (over seeds): mean, sample standard deviation, n. */
export function pointSummaries(state: SweepState): Array<{ params: Params; n: number; mean: number; sd: number | null; trials: number[] }> {
  const groups = new Map<string, TrialRecord[]>();
  for (const t of state.trials) {
    if (t.status !== 'completed' || t.value === null) continue;
    const k = JSON.stringify(t.params);
    groups.set(k, [...(groups.get(k) ?? []), t]);
  }
  return [...groups.values()].map((ts) => {
    const vs = ts.map((t) => t.value!);
    const mean = vs.reduce((a, b) => a + b, 0) / vs.length;
    const sd = vs.length > 1 ? Math.sqrt(vs.reduce((a, b) => a + (b - mean) ** 2, 0) / (vs.length - 1)) : null;
    return { params: ts[0].params, n: vs.length, mean, sd, trials: ts.map((t) => t.number) };
  });
}

const csvCell = (v: unknown): string => {
  const s = v === null || v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

export const shown = (v: unknown) => (typeof v === 'number' ? formatNumber(v) : v === null || v === undefined ? '-' : typeof v === 'string' ? v : JSON.stringify(v));

/** A plain text table: columns padded to their widest cell. */
export function table(head: string[], rows: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  return [line(head), ...rows.map(line)];
}

/** The columns of the results table and of results.csv (before dir and note). */
function columns(spec: SweepSpec): { head: string[]; keys: string[]; cells: (r: ResultRow) => unknown[] } {
  const keys = spec.parameters.map((p) => p.path);
  const withSeed = spec.seeds !== null;
  const head = ['rank', 'trial', 'status', spec.metric.name, 'epochs', 'seconds', 'attempts', ...keys, ...(withSeed ? ['seed'] : [])];
  const cells = (r: ResultRow): unknown[] => [r.rank, r.trial, r.status, r.value, r.epochs, r.seconds, r.attempts, ...keys.map((k) => r.params[k]), ...(withSeed ? [r.seed] : [])];
  return { head, keys, cells };
}

/** The note of a row in results.csv: why it was pruned or failed, or its newest value while it runs. */
const noteOf = (spec: SweepSpec, r: ResultRow) => r.prunedBy ?? r.failure ?? (r.latest ? `epoch ${r.latest.epoch}: ${spec.metric.name} ${formatNumber(r.latest.value)}` : '');

/**
 * Writes results.csv, results.json (with `final`: false while the sweep runs, true at the end of
 * a session, and the time) and, when there is a best completed trial and it is not the one
 * `written.best` says was written last, best-experiment.yaml; all atomically. Prints nothing.
 */
export function writeResultFiles(spec: SweepSpec, state: SweepState, opts: { final: boolean; written?: { best?: number } }): { rows: ResultRow[]; points: ReturnType<typeof pointSummaries> } {
  const rows = rankTrials(state, spec.metric.goal);
  const { head, cells } = columns(spec);
  const withSeed = spec.seeds !== null;
  const csv = [[...head, 'dir', 'note'].map(csvCell).join(','), ...rows.map((r) => [...cells(r), r.dir, noteOf(spec, r)].map(csvCell).join(','))].join('\n');
  writeFileAtomic(path.join(spec.dir, 'results.csv'), `${csv}\n`);
  const points = withSeed ? pointSummaries(state).sort((a, b) => (spec.metric.goal === 'minimize' ? a.mean - b.mean : b.mean - a.mean)) : [];
  const best = rows.find((r) => r.status === 'completed');
  writeJsonAtomic(path.join(spec.dir, 'results.json'), {
    sweep: spec.name,
    metric: spec.metric,
    method: spec.method,
    final: opts.final,
    updatedAt: new Date().toISOString(),
    best: best ?? null,
    trials: rows,
    ...(withSeed ? { points } : {}),
  });
  if (best && opts.written?.best !== best.trial) {
    const cfgFile = path.join(spec.dir, best.dir, 'config.json');
    if (fs.existsSync(cfgFile)) {
      const cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
      const rel = path.relative(process.cwd(), path.join(spec.dir, 'best-experiment.yaml'));
      const header = `# The best trial (${best.trial}) of sweep ${spec.name}: ${spec.metric.name} = ${formatNumber(best.value!)} (${spec.metric.goal}).\n# Its full config; train it with: npx vaelab train ${rel}\n`;
      writeFileAtomic(path.join(spec.dir, 'best-experiment.yaml'), header + YAML.stringify(cfg));
      if (opts.written) opts.written.best = best.trial;
    }
  }
  return { rows, points };
}

/** Writes results.csv, results.json and best-experiment.yaml (final), and prints the table (the first 20 rows). */
export function writeResults(spec: SweepSpec, state: SweepState, log: (line: string) => void): ResultRow[] {
  const { rows, points } = writeResultFiles(spec, state, { final: true });
  const { head, keys, cells } = columns(spec);
  const best = rows.find((r) => r.status === 'completed');

  const counts = Object.entries(rows.reduce<Record<string, number>>((m, r) => ({ ...m, [r.status]: (m[r.status] ?? 0) + 1 }), {}))
    .map(([k, n]) => `${n} ${k}`)
    .join(', ');
  log(`results of sweep ${spec.name} (${rows.length} trials: ${counts}), by ${spec.metric.name} (${spec.metric.goal}):`);
  for (const l of table(head, rows.slice(0, 20).map((r) => cells(r).map(shown)))) log(`  ${l}`);
  if (rows.length > 20) log(`  ... ${rows.length - 20} more in results.csv`);
  if (points.length > 0) {
    log(`by point, over seeds (mean, sd, n):`);
    for (const l of table([...keys, 'mean', 'sd', 'n'], points.slice(0, 20).map((p) => [...keys.map((k) => shown(p.params[k])), shown(p.mean), shown(p.sd), String(p.n)]))) log(`  ${l}`);
  }
  const rel = (f: string) => path.relative(process.cwd(), path.join(spec.dir, f));
  if (best && fs.existsSync(path.join(spec.dir, 'best-experiment.yaml'))) log(`best trial ${best.trial}: ${rel('best-experiment.yaml')}`);
  log(`results: ${rel('results.csv')}, ${rel('results.json')}`);
  return rows;
}
