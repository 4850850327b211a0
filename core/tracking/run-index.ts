/**
 * The run index: every run, staged run, stage, sweep and sweep trial under a runs directory, with
 * its config, status, summary metrics and times, for `vaelab runs` and the dashboard.
 *
 * Run directories stay the source of truth; the index only reads them. It is cached in
 * `<root>/.vaelab-index.json` (written atomically) and rebuilt incrementally: an entry is read
 * again only when one of its files changed (size or modification time). A missing, corrupt or
 * outdated cache is ignored and rebuilt, so a writer that crashed half-way costs nothing.
 *
 * Status (RunState):
 *   running      owner.json names a live process (core/tracking/owner.ts), whatever an older
 *                summary says (a resumed run keeps its previous summary until it ends)
 *   finished     summary status completed, early-stopped, max-steps or stopped
 *   pruned       stopped by a sweep's pruner
 *   interrupted  Ctrl-C or a stop request: resumable
 *   failed       summary status failed (an error; the reason is its first line)
 *   died         no summary and no live owner: the process was killed or the machine went down
 * A run whose files cannot be read is kept with the reason in `problems`, never dropped silently.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeJsonAtomic } from './files';
import { OWNER_FILE, ownerLiveness } from './owner';

export type RunState = 'running' | 'finished' | 'failed' | 'interrupted' | 'pruned' | 'died';
export const RUN_STATES: readonly RunState[] = ['running', 'finished', 'failed', 'interrupted', 'pruned', 'died'];

export type Scalar = string | number | boolean | null;

export interface RunEntry {
  /** The run directory relative to the root, '/'-separated. */
  id: string;
  dir: string;
  experiment: string;
  kind: 'run' | 'staged' | 'stage' | 'trial';
  /** The staged run or sweep it belongs to. */
  parent: string | null;
  status: RunState;
  /** summary.json's status, if any. */
  rawStatus: string | null;
  /** Why the run is failed, died or marked. */
  reason: string | null;
  /** config.json flattened to dotted keys (arrays as JSON text). */
  config: Record<string, Scalar>;
  /** Final (or, while running, latest) metrics, and `step`, `epoch`. */
  metrics: Record<string, number>;
  startedAt: string | null;
  endedAt: string | null;
  seconds: number | null;
  problems: string[];
}

export interface SweepTrialEntry {
  number: number;
  runId: string | null;
  status: string;
  params: Record<string, unknown>;
  value: number | null;
  intermediate: Record<string, number>;
}

export interface SweepEntry {
  id: string;
  dir: string;
  name: string;
  method: string;
  metric: { name: string; goal: 'minimize' | 'maximize' };
  parameters: string[];
  trials: SweepTrialEntry[];
  /** The sweep file as state.json records it (absolute when the sweep runner wrote it), if it does. */
  sweepFile?: string;
}

export interface RunIndex {
  root: string;
  builtAt: string;
  runs: RunEntry[];
  sweeps: SweepEntry[];
  /** What could not be read at all (an unreadable directory, a broken sweep state). */
  problems: string[];
}

const CACHE_FILE = '.vaelab-index.json';
const CACHE_VERSION = 2;
/** Directories inside a run that hold no runs. */
const SKIP = new Set(['checkpoints', 'images', 'node_modules', '.git', 'wandb']);
const FINISHED = new Set(['completed', 'early-stopped', 'max-steps', 'stopped']);
/** Bytes read from the end of metrics.jsonl for the latest values of a run without a summary. */
const TAIL_BYTES = 64 * 1024;

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Dotted keys of a nested object; arrays become JSON text. */
export function flatten(obj: Json, prefix = '', out: Record<string, Scalar> = {}): Record<string, Scalar> {
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (isObj(v)) flatten(v, key, out);
    else if (Array.isArray(v)) out[key] = JSON.stringify(v);
    else if (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[key] = v;
  }
  return out;
}

/** metrics.jsonl records, skipping (and counting) lines that are not JSON objects: a truncated last line, a corrupt one. */
export function readMetricsFile(file: string): { records: Json[]; skipped: number } {
  if (!fs.existsSync(file)) return { records: [], skipped: 0 };
  return parseLines(fs.readFileSync(file, 'utf8'));
}

function parseLines(text: string): { records: Json[]; skipped: number } {
  const records: Json[] = [];
  let skipped = 0;
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const v = JSON.parse(line) as unknown;
      if (isObj(v)) records.push(v);
      else skipped++;
    } catch {
      skipped++;
    }
  }
  return { records, skipped };
}

/** The last records of metrics.jsonl, read from its end only. */
function tailRecords(file: string, size: number): { records: Json[]; skipped: number } {
  const n = Math.min(size, TAIL_BYTES);
  const buf = Buffer.alloc(n);
  const fd = fs.openSync(file, 'r');
  try {
    fs.readSync(fd, buf, 0, n, size - n);
  } finally {
    fs.closeSync(fd);
  }
  let text = buf.toString('utf8');
  // the first line may be cut by the window: drop it unless the window is the whole file
  if (n < size) text = text.slice(text.indexOf('\n') + 1);
  return parseLines(text);
}

function numbersOf(obj: unknown, prefix: string, out: Record<string, number>): void {
  if (!isObj(obj)) return;
  for (const [k, v] of Object.entries(obj)) {
    if (typeof v === 'number' && Number.isFinite(v)) out[prefix ? `${prefix}/${k}` : k] = v;
  }
}

function readJson(file: string, problems: string[]): Json | undefined {
  if (!fs.existsSync(file)) return undefined;
  try {
    const v = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
    if (isObj(v)) return v;
    problems.push(`${path.basename(file)}: not a JSON object`);
  } catch (e) {
    problems.push(`${path.basename(file)}: ${e instanceof SyntaxError ? 'not valid JSON' : (e as Error).message}`);
  }
  return undefined;
}

/** Size and modification time of the files an entry is made of: the cache key. */
function signature(dir: string, files: string[]): string {
  return files
    .map((f) => {
      try {
        const s = fs.statSync(path.join(dir, f));
        return `${s.size}:${s.mtimeMs}`;
      } catch {
        return '-';
      }
    })
    .join('|');
}

const RUN_FILES = ['config.json', 'run.json', 'summary.json', 'metrics.jsonl', OWNER_FILE];

/** Reads one run directory (without the liveness check, which is never cached). */
function readRun(root: string, dir: string, kind: RunEntry['kind'], parent: string | null): RunEntry {
  const problems: string[] = [];
  const cfg = readJson(path.join(dir, 'config.json'), problems) ?? {};
  const src = readJson(path.join(dir, 'run.json'), problems);
  const summary = readJson(path.join(dir, 'summary.json'), problems);
  const metrics: Record<string, number> = {};
  let endedAt: string | null = null;
  let seconds: number | null = null;
  const mfile = path.join(dir, 'metrics.jsonl');
  let size = 0;
  try {
    size = fs.statSync(mfile).size;
  } catch {
    // no metrics yet
  }
  if (size > 0) {
    // The latest step and epoch records (a run's curves are read by whoever plots them).
    const { records, skipped } = tailRecords(mfile, size);
    if (skipped > 0) problems.push(`metrics.jsonl: ${skipped} line${skipped === 1 ? '' : 's'} skipped near its end (not valid JSON)`);
    for (const kind2 of ['step', 'epoch']) {
      const last = [...records].reverse().find((r) => r.kind === kind2);
      if (!last) continue;
      for (const [k, v] of Object.entries(last)) if (typeof v === 'number' && Number.isFinite(v) && k.includes('/')) metrics[k] = v;
      if (typeof last.step === 'number') metrics.step = Math.max(metrics.step ?? 0, last.step);
      if (kind2 === 'epoch' && typeof last.epoch === 'number') metrics.epoch = last.epoch;
    }
  }
  let rawStatus: string | null = null;
  let reason: string | null = null;
  if (summary) {
    rawStatus = typeof summary.status === 'string' ? summary.status : null;
    // the last evaluation during training, then the final test metrics (which win on equal keys)
    numbersOf(summary.lastEvaluation, '', metrics);
    numbersOf(summary.test, '', metrics);
    const best = summary.best;
    if (isObj(best) && typeof best.value === 'number' && Number.isFinite(best.value)) {
      metrics['best/value'] = best.value;
      if (typeof best.epoch === 'number') metrics['best/epoch'] = best.epoch;
    }
    if (typeof summary.steps === 'number') metrics.step = summary.steps;
    if (typeof summary.epochsCompleted === 'number') metrics.epoch = summary.epochsCompleted;
    if (typeof summary.samplesPerSecond === 'number') metrics.samplesPerSecond = summary.samplesPerSecond;
    if (typeof summary.trainSeconds === 'number') metrics.trainSeconds = summary.trainSeconds;
    if (typeof summary.wallSeconds === 'number') seconds = summary.wallSeconds;
    if (typeof summary.endedAt === 'string') endedAt = summary.endedAt;
    else {
      try {
        endedAt = fs.statSync(path.join(dir, 'summary.json')).mtime.toISOString();
      } catch {
        endedAt = null;
      }
    }
    if (typeof summary.error === 'string') reason = summary.error;
    else if (isObj(summary.stop) && typeof summary.stop.reason === 'string') reason = summary.stop.reason;
  }
  const startedAt = typeof src?.startedAt === 'string' ? src.startedAt : null;
  if (seconds === null && startedAt && endedAt) seconds = (Date.parse(endedAt) - Date.parse(startedAt)) / 1000;
  return {
    id: path.relative(root, dir).split(path.sep).join('/'),
    dir,
    experiment: typeof cfg.name === 'string' && cfg.name ? cfg.name : path.basename(path.dirname(dir)),
    kind,
    parent,
    status: 'died',
    rawStatus,
    reason,
    config: flatten(cfg),
    metrics,
    startedAt,
    endedAt,
    seconds,
    problems,
  };
}

/** Status from the summary and the owner; never cached (a process may die at any time). */
function settleStatus(e: RunEntry): void {
  const live = ownerLiveness(path.join(e.dir, OWNER_FILE));
  if (live.alive) {
    e.status = 'running';
    e.endedAt = null;
    if (!e.startedAt) e.startedAt = live.owner.startedAt;
    return;
  }
  const s = e.rawStatus;
  const unreadable = e.problems.find((p) => p.startsWith('summary.json:'));
  if (unreadable) {
    e.status = 'failed';
    e.reason = unreadable;
  } else if (s === null) {
    e.status = 'died';
    e.reason = live.reason;
  } else if (FINISHED.has(s)) e.status = 'finished';
  else if (s === 'pruned' || s === 'interrupted' || s === 'failed') e.status = s;
  else {
    e.status = 'failed';
    e.reason = `summary.json: unknown status ${JSON.stringify(s)}`;
  }
}

/** A staged run's status from its own summary or, before it has one, from its stages. */
function settleStaged(e: RunEntry, stages: RunEntry[]): void {
  if (stages.some((s) => s.status === 'running')) {
    e.status = 'running';
    e.endedAt = null;
    return;
  }
  if (e.rawStatus !== null) {
    settleStatus(e);
    return;
  }
  const last = stages[stages.length - 1];
  e.status = last ? (last.status === 'finished' ? 'died' : last.status) : 'died';
  e.reason = last ? (last.status === 'finished' ? 'a stage finished but the next was not started and the staged run has no summary' : last.reason) : 'no stage started and no summary.json';
  for (const s of stages) Object.assign(e.metrics, s.metrics);
}

interface CacheFile {
  version: number;
  entries: Record<string, { sig: string; entry: RunEntry }>;
}

function readCache(root: string): CacheFile['entries'] {
  try {
    const c = JSON.parse(fs.readFileSync(path.join(root, CACHE_FILE), 'utf8')) as CacheFile;
    return c.version === CACHE_VERSION && isObj(c.entries) ? c.entries : {};
  } catch {
    return {};
  }
}

function readSweep(root: string, dir: string, problems: string[]): SweepEntry | null {
  const local: string[] = [];
  const st = readJson(path.join(dir, 'state.json'), local);
  const rel = path.relative(root, dir).split(path.sep).join('/');
  if (!st || !Array.isArray(st.trials)) {
    problems.push(`${rel}/state.json: ${local[0] ?? 'no trials'}; sweep left out`);
    return null;
  }
  const metric = isObj(st.metric) ? st.metric : {};
  const trials = (st.trials as unknown[]).filter(isObj).map((t) => ({
    number: Number(t.number),
    runId: typeof t.dir === 'string' ? `${rel}/${t.dir.split(path.sep).join('/')}` : null,
    status: String(t.status),
    params: isObj(t.params) ? t.params : {},
    value: typeof t.value === 'number' ? t.value : null,
    intermediate: isObj(t.intermediate) ? (t.intermediate as Record<string, number>) : {},
  }));
  const params = new Set<string>();
  for (const t of trials) for (const k of Object.keys(t.params)) params.add(k);
  return {
    id: rel,
    dir,
    name: typeof st.name === 'string' ? st.name : path.basename(dir),
    method: String(st.method ?? ''),
    metric: { name: String(metric.name ?? ''), goal: metric.goal === 'maximize' ? 'maximize' : 'minimize' },
    parameters: [...params],
    trials,
    ...(typeof st.sweepFile === 'string' && st.sweepFile ? { sweepFile: st.sweepFile } : {}),
  };
}

/**
 * Builds the index of every run under `root`. With `cache` (the default) it reuses and updates
 * `<root>/.vaelab-index.json`; a root that cannot be written is indexed without it.
 */
export function buildRunIndex(root: string, opts: { cache?: boolean } = {}): RunIndex {
  const abs = path.resolve(root);
  const problems: string[] = [];
  const runs: RunEntry[] = [];
  const sweeps: SweepEntry[] = [];
  const useCache = opts.cache !== false;
  const old = useCache ? readCache(abs) : {};
  const fresh: CacheFile['entries'] = {};
  let changed = false;

  const entry = (dir: string, kind: RunEntry['kind'], parent: string | null): RunEntry => {
    const id = path.relative(abs, dir).split(path.sep).join('/');
    const sig = `${kind}|${parent}|${signature(dir, RUN_FILES)}`;
    const hit = old[id];
    let e: RunEntry;
    if (hit && hit.sig === sig) e = { ...hit.entry, dir, problems: [...hit.entry.problems] };
    else {
      e = readRun(abs, dir, kind, parent);
      changed = true;
    }
    fresh[id] = { sig, entry: e };
    const copy = structuredClone(e);
    if (kind !== 'staged') settleStatus(copy);
    return copy;
  };

  const list = (dir: string): fs.Dirent[] | null => {
    try {
      return fs.readdirSync(dir, { withFileTypes: true });
    } catch (e) {
      problems.push(`${path.relative(abs, dir) || '.'}: cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
      return null;
    }
  };

  const subdirs = (dir: string): string[] =>
    (list(dir) ?? [])
      .filter((d) => d.isDirectory() && !SKIP.has(d.name) && !d.name.startsWith('.'))
      .map((d) => path.join(dir, d.name))
      .sort();

  const walk = (dir: string, depth: number, parent: string | null): void => {
    const has = (f: string) => fs.existsSync(path.join(dir, f));
    if (has('state.json') && fs.existsSync(path.join(dir, 'trials'))) {
      const sw = readSweep(abs, dir, problems);
      if (sw) {
        sweeps.push(sw);
        for (const t of subdirs(path.join(dir, 'trials'))) if (fs.existsSync(path.join(t, 'config.json'))) runs.push(entry(t, 'trial', sw.id));
      }
      return;
    }
    if (has('config.json')) {
      const stagesDir = path.join(dir, 'stages');
      if (fs.existsSync(stagesDir)) {
        const top = entry(dir, 'staged', parent);
        const stages = subdirs(stagesDir)
          .filter((s) => /^\d+-/.test(path.basename(s)) && fs.existsSync(path.join(s, 'config.json')))
          .sort((a, b) => parseInt(path.basename(a), 10) - parseInt(path.basename(b), 10))
          .map((s) => entry(s, 'stage', top.id));
        settleStaged(top, stages);
        runs.push(top, ...stages);
      } else {
        runs.push(entry(dir, 'run', parent));
      }
      return;
    }
    if (depth >= 6) return;
    for (const d of subdirs(dir)) walk(d, depth + 1, parent);
  };

  if (!fs.existsSync(abs)) problems.push(`${root}: no such directory`);
  else walk(abs, 0, null);

  if (useCache && (changed || Object.keys(old).length !== Object.keys(fresh).length)) {
    try {
      writeJsonAtomic(path.join(abs, CACHE_FILE), { version: CACHE_VERSION, entries: fresh } satisfies CacheFile);
    } catch {
      // a read-only runs directory: the index is still complete, only not cached
    }
  }
  return { root: abs, builtAt: new Date().toISOString(), runs, sweeps, problems };
}
