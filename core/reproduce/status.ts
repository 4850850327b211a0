/**
 * Where each reproduction stands: its newest run under <out>/<experiment name>/ (from the run
 * index), the epochs and wall time it has trained, the value of its metric, and the verdict
 * against the reference or, for a claim, against the other rows.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readExperimentFile } from '../config/experiment';
import { PER_EXAMPLE_FILE, pairedDifference, readPerExample } from '../eval/per-example';
import { buildRunIndex, type RunEntry } from '../tracking/run-index';
import type { ClaimRow, Manifest, Row, RunRow } from './manifest';

type Obj = Record<string, unknown>;
const readJson = (f: string): Obj | undefined => {
  try {
    return JSON.parse(fs.readFileSync(f, 'utf8')) as Obj;
  } catch {
    return undefined;
  }
};

export interface RowStatus {
  row: RunRow;
  /** The newest run of the experiment, or null. */
  run: RunEntry | null;
  /** Its stages, for a staged run. */
  stages: RunEntry[];
  epochs: number | null;
  /** Training seconds over all its stages and resumptions. */
  seconds: number | null;
  value: number | null;
  /**
   * The metric per test example (negated like the value), when the metric is the IW
   * log-likelihood and its evaluation kept them (core/eval/per-example.ts); else null.
   */
  perExample: { data: string; values: number[] } | null;
  se: number | null;
  /** Where the value comes from ("eval.json, k = 5000, 10 000 examples", "summary.json"). */
  from: string | null;
  /** The evaluation the row asks for is missing or was made with other settings. */
  needsEval: boolean;
  verdict: string;
}

/** The experiment's name: the directory its runs go to. */
export function experimentName(row: RunRow): string {
  const named = row.set.find((kv) => kv.startsWith('name='));
  if (named) return named.slice('name='.length);
  const raw = readExperimentFile(row.experiment);
  return typeof raw.name === 'string' && raw.name ? raw.name : path.basename(row.experiment).replace(/\.(ya?ml|json)$/, '');
}

function newest(runs: RunEntry[]): RunEntry | null {
  const top = runs.filter((r) => r.kind === 'run' || r.kind === 'staged');
  top.sort((a, b) => (a.startedAt ?? a.id).localeCompare(b.startedAt ?? b.id));
  return top.pop() ?? null;
}

const fmt = (v: number) => (Math.abs(v) < 1 ? v.toFixed(4) : v.toFixed(2));

export function rowStatus(row: RunRow, out: string): RowStatus {
  const base = path.join(path.resolve(out), experimentName(row));
  const index = fs.existsSync(base) ? buildRunIndex(base, { cache: false }) : null;
  const run = index ? newest(index.runs) : null;
  const stages = run && index ? index.runs.filter((r) => r.parent === run.id && r.kind === 'stage') : [];
  const st: RowStatus = { row, run, stages, epochs: null, seconds: null, value: null, perExample: null, se: null, from: null, needsEval: false, verdict: 'not started' };
  if (!run) return st;
  const parts = run.kind === 'staged' ? stages : [run];
  st.epochs = parts.reduce((n, p) => n + (p.metrics.epoch ?? 0), 0);
  // training time over every resumption (wall time counts only the last one)
  st.seconds = parts.reduce((n, p) => n + (p.metrics.trainSeconds ?? p.seconds ?? 0), 0);
  if (run.status === 'running') {
    st.verdict = `training (epoch ${st.epochs})`;
    return st;
  }
  if (run.status !== 'finished') {
    st.verdict = `${run.status}${run.reason ? `: ${run.reason}` : ''} (resume with reproduce ${row.name})`;
    return st;
  }
  // the directory that holds the metric: a named stage, else the last stage, else the run
  let holder: RunEntry = run;
  if (run.kind === 'staged') {
    const named = row.metric.stage ? stages.find((s) => s.id.split('/').pop()!.replace(/^\d+-/, '') === row.metric.stage) : stages[stages.length - 1];
    if (!named) {
      st.verdict = `the run has no stage ${JSON.stringify(row.metric.stage)}`;
      return st;
    }
    holder = named;
  }
  let metrics: Obj | undefined;
  if (row.evaluate && !row.metric.stage) {
    const ev = readJson(path.join(holder.dir, 'eval.json'));
    const iw = ev?.iw as { k?: number; examples?: number; of?: number } | undefined;
    const want = row.evaluate.limit === 0 ? iw?.of : row.evaluate.limit;
    if (!ev || iw?.k !== row.evaluate.k || iw.examples === undefined || iw.examples !== want) {
      st.needsEval = true;
      st.verdict = `trained; needs its evaluation (k = ${row.evaluate.k}${row.evaluate.limit ? `, first ${row.evaluate.limit} test examples` : ', whole test split'})`;
      return st;
    }
    metrics = ev.test as Obj;
    st.from = `eval.json (k = ${iw!.k}, ${iw!.examples} test examples)`;
  } else {
    metrics = readJson(path.join(holder.dir, 'summary.json'))?.test as Obj | undefined;
    st.from = `${path.relative(run.dir, path.join(holder.dir, 'summary.json')) || 'summary.json'}`;
  }
  const v = metrics?.[row.metric.key];
  if (typeof v !== 'number') {
    st.verdict = `no ${row.metric.key} in ${st.from}`;
    return st;
  }
  st.value = row.metric.negate ? -v : v;
  const se = row.metric.se ? metrics?.[row.metric.se] : undefined;
  st.se = typeof se === 'number' ? se : null;
  if (row.metric.key === 'test/iw-log-likelihood') {
    const per = readPerExample(path.join(holder.dir, row.evaluate && !row.metric.stage ? PER_EXAMPLE_FILE.eval : PER_EXAMPLE_FILE.training));
    if (per) st.perExample = { data: per.data, values: row.metric.negate ? per.values.map((x) => -x) : per.values };
  }
  const ref = row.reference;
  if (!('value' in ref)) {
    st.verdict = 'ours only (no reference)';
    return st;
  }
  const gap = st.value - ref.value;
  const within = Math.abs(gap) <= row.tolerance!;
  const short = ref.epochs !== null && st.epochs !== null && st.epochs < ref.epochs;
  st.verdict = within
    ? `matches (${gap >= 0 ? '+' : ''}${fmt(gap)}, tolerance ${fmt(row.tolerance!)})`
    : `${short ? `not comparable yet: ${st.epochs} of ${ref.epochs} epochs; ` : ''}off by ${gap >= 0 ? '+' : ''}${fmt(gap)} (tolerance ${fmt(row.tolerance!)})`;
  return st;
}

export interface ClaimStatus {
  row: ClaimRow;
  verdict: string;
}

/**
 * A claim holds when every `lower` row is below every `than` row by more than two standard errors
 * of the difference: the paired standard error over the test examples when both rows kept their
 * per-example estimates for the same examples, else the two means' standard errors combined.
 */
export function claimStatus(row: ClaimRow, statuses: Map<string, RowStatus>): ClaimStatus {
  const parts: string[] = [];
  let holds = true;
  let open = false;
  for (const a of row.lower) {
    for (const b of row.than) {
      const x = statuses.get(a);
      const y = statuses.get(b);
      if (!x || !y || x.value === null || y.value === null) {
        open = true;
        continue;
      }
      const gap = y.value - x.value;
      // paired over the test examples when both kept them for the same examples; else the two
      // means' standard errors combined
      const px = x.perExample;
      const py = y.perExample;
      const paired = px && py && px.data === py.data && px.values.length === py.values.length && px.values.length >= 2 ? pairedDifference(py.values, px.values) : null;
      const se = paired ? paired.se : x.se !== null && y.se !== null ? Math.sqrt(x.se ** 2 + y.se ** 2) : null;
      const sig = se === null ? gap > 0 : gap > 2 * se;
      const how = paired ? ` (2 SE, paired over ${paired.n} test examples)` : ' (2 SE)';
      const text = `${a} ${fmt(x.value)} vs ${b} ${fmt(y.value)}: gap ${fmt(gap)}${se !== null ? ` +- ${fmt(2 * se)}${how}` : ''}`;
      parts.push(text);
      if (!sig) holds = false;
    }
  }
  if (open) return { row, verdict: `open: ${[...row.lower, ...row.than].filter((n) => statuses.get(n)?.value == null).join(', ')} not evaluated yet${parts.length ? `; ${parts.join('; ')}` : ''}` };
  return { row, verdict: `${holds ? 'holds' : 'not shown'}: ${parts.join('; ')}` };
}

/** Every row's status, claims after the rows they compare. */
export function manifestStatus(m: Manifest, out: string): Array<RowStatus | ClaimStatus> {
  const runs = new Map<string, RowStatus>();
  for (const r of m.rows) if (r.kind === 'run') runs.set(r.name, rowStatus(r, out));
  return m.rows.map((r: Row) => (r.kind === 'run' ? runs.get(r.name)! : claimStatus(r, runs)));
}
