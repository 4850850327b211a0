/**
 * A sweep worker: a process (`vaelab worker`, forked by `vaelab sweep`) that runs trials one
 * after another as the coordinator sends them over the IPC channel. Each trial is an ordinary run
 * directory trained by `train`; an interrupted trial (a killed worker, Ctrl-C, the wall-time
 * budget) continues from its newest checkpoint, as `vaelab train --resume` does. The decoded data
 * set stays cached in the process between trials (core/data/idx.ts).
 *
 * Pruning is decided here, synchronously at the end of each evaluated epoch, from the reports of
 * every trial that the coordinator forwards; the decision (rule, rung, value, threshold) goes
 * back to the coordinator, which records and prints it.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { experimentFromObject } from '../config/experiment';
import type { PluginRegistry } from '../plugin';
import { closeSession, openSession } from '../session';
import type { EpochEndEvent, RunControl, TrainerCallback } from '../train/events';
import { train } from '../train/trainer';
import { writeJsonAtomic } from '../tracking/files';
import { RunDir } from '../tracking/run-dir';
import { settleWandb, sweepGroupOf, wandbCallbacks } from '../wandb';
import { decide, type PruneDecision, type TrialReports } from './pruners';
import type { EarlyTermination, SweepSpec } from './spec';

/** A trial as the coordinator hands it to a worker. */
export interface TrialTask {
  number: number;
  /** The run directory, absolute. */
  dir: string;
  /** The trial's experiment as a plain object (base <- set <- parameters <- seed). */
  raw: Record<string, unknown>;
  /** The base experiment file (relative plugin paths and messages). */
  experimentFile: string;
  /** Continue from the newest checkpoint if the run directory has one. */
  resume: boolean;
  metric: SweepSpec['metric'];
  rule: EarlyTermination;
  /** Every trial's intermediate values so far. */
  reports: TrialReports[];
}

export type ToWorker =
  | { type: 'run'; task: TrialTask }
  /** Before any trial: load the data set (kept in the process's cache) and build the model once, while the coordinator checks the configs. */
  | { type: 'prepare'; raw: Record<string, unknown>; experimentFile: string }
  | { type: 'report'; number: number; epoch: number; value: number }
  | { type: 'state'; number: number; state: TrialReports['state'] }
  | { type: 'stop' }
  | { type: 'exit' };

export type FromWorker =
  | { type: 'ready'; pid: number }
  | { type: 'leaving'; pid: number }
  | { type: 'started'; number: number; resumedFrom: string | null; worker: string }
  | { type: 'report'; number: number; epoch: number; value: number; decision: PruneDecision | null }
  | { type: 'done'; number: number; runStatus: string; value: number | null; reason?: string }
  | { type: 'failed'; number: number; reason: string };

/** The value of the sweep's metric among an epoch's metrics: the same term on the split that epoch evaluated. */
export function intermediateValue(metric: string, e: Pick<EpochEndEvent, 'metrics' | 'evaluated'>): number | undefined {
  const [split, term] = [metric.slice(0, metric.indexOf('/')), metric.slice(metric.indexOf('/') + 1)];
  if (split === 'train') return e.metrics[metric];
  if (!e.evaluated) return undefined;
  return e.metrics[`${e.evaluated === 'validation' ? 'val' : 'test'}/${term}`];
}

/** The final value of the metric from a run's summary: its test metrics, else its last evaluation. */
export function finalValue(metric: string, summary: Record<string, unknown>): number | undefined {
  const test = summary.test as Record<string, number> | undefined;
  const last = summary.lastEvaluation as Record<string, number> | undefined;
  return test?.[metric] ?? last?.[metric];
}

/** Reports every evaluated epoch's value and stops the run when the pruner says so. */
class SweepCallback implements TrainerCallback {
  readonly name = 'sweep';
  constructor(
    private readonly task: TrialTask,
    private readonly reports: Map<number, TrialReports>,
    private readonly send: (m: FromWorker) => void,
  ) {}

  onEpochEnd(e: EpochEndEvent, run: RunControl): void {
    const value = intermediateValue(this.task.metric.name, e);
    if (value === undefined) return;
    const me = this.reports.get(this.task.number)!;
    (me.values as Map<number, number>).set(e.epoch, value);
    const decision = decide(this.task.rule, this.task.metric.goal, me, e.epoch, [...this.reports.values()], this.task.metric.name);
    this.send({ type: 'report', number: this.task.number, epoch: e.epoch, value, decision });
    if (decision?.action === 'prune') run.stop({ status: 'pruned', reason: decision.reason });
  }
}

/** This process as messages name it: host:pid. */
export const workerLabel = (): string => `${os.hostname()}:${process.pid}`;

const ENDED = ['completed', 'early-stopped', 'max-steps', 'pruned', 'stopped'];

/** Writes the trial's run directory from scratch: config.json (plugin paths absolute) and run.json. */
function createRun(task: TrialTask, config: Record<string, unknown>, backend: string): RunDir {
  fs.rmSync(task.dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(task.dir, 'checkpoints'), { recursive: true });
  fs.mkdirSync(path.join(task.dir, 'images'), { recursive: true });
  const base = path.dirname(task.experimentFile);
  const cfg = structuredClone(config);
  cfg.plugins = ((cfg.plugins as string[] | undefined) ?? []).map((p) => (p.startsWith('.') ? path.resolve(base, p) : p));
  writeJsonAtomic(path.join(task.dir, 'config.json'), cfg);
  const run = RunDir.open(task.dir);
  run.writeSource({ experimentFile: task.experimentFile, overrides: [], argv: process.argv.slice(2), backend, startedAt: new Date().toISOString() });
  return run;
}

/** Runs one trial; resolves with the message for the coordinator. */
export async function runTrial(
  task: TrialTask,
  registry: PluginRegistry,
  opts: { backend: string; control: { stop: boolean }; send: (m: FromWorker) => void; reports: Map<number, TrialReports> },
): Promise<FromWorker> {
  const logFile = path.join(task.dir, 'train.log');
  const log = (line: string) => fs.appendFileSync(logFile, `${line}\n`);
  let session;
  try {
    let run: RunDir | null = null;
    let resumeFrom: string | undefined;
    if (task.resume && fs.existsSync(path.join(task.dir, 'config.json'))) {
      const r = RunDir.open(task.dir);
      const latest = r.latestCheckpoint();
      const summary = fs.existsSync(r.file('summary.json')) ? (JSON.parse(fs.readFileSync(r.file('summary.json'), 'utf8')) as { status?: string }) : {};
      if (summary.status && ENDED.includes(summary.status)) {
        // The run ended before its worker could say so: nothing to train again.
        const s = JSON.parse(fs.readFileSync(r.file('summary.json'), 'utf8')) as Record<string, unknown>;
        return { type: 'done', number: task.number, runStatus: summary.status, value: finalValue(task.metric.name, s) ?? null };
      }
      if (latest && fs.existsSync(latest)) {
        run = r;
        resumeFrom = latest;
      }
    }
    if (run) {
      session = openSession(experimentFromObject(run.readConfig(), registry, run.file('config.json')));
      const src = run.readSource();
      if (src) run.writeSource({ ...src, resumedAt: [...(src.resumedAt ?? []), new Date().toISOString()] });
    } else {
      session = openSession(experimentFromObject(structuredClone(task.raw), registry, task.experimentFile));
      run = createRun(task, session.config as unknown as Record<string, unknown>, opts.backend);
    }
    fs.appendFileSync(logFile, '');
    opts.send({ type: 'started', number: task.number, resumedFrom: resumeFrom ? path.relative(task.dir, resumeFrom) : null, worker: workerLabel() });
    const result = await train(session, {
      run,
      backend: opts.backend,
      resumeFrom,
      log,
      control: opts.control,
      handleSignals: false,
      callbacks: [new SweepCallback(task, opts.reports, opts.send), ...wandbCallbacks(session.config, run, { log, group: sweepGroupOf(task.dir) })],
    });
    await settleWandb();
    if (result.status === 'interrupted') return { type: 'done', number: task.number, runStatus: 'interrupted', value: null };
    const me = opts.reports.get(task.number)!;
    const last = [...(me.values as Map<number, number>).entries()].sort((a, b) => a[0] - b[0]).pop()?.[1];
    const value = result.status === 'pruned' ? last : (finalValue(task.metric.name, result.summary) ?? (task.metric.name.startsWith('train/') ? last : undefined));
    if (value === undefined) {
      const test = Object.keys((result.summary.test as object) ?? {});
      const lastEval = Object.keys((result.summary.lastEvaluation as object) ?? {});
      return { type: 'failed', number: task.number, reason: `metric ${task.metric.name} is not among the run's results (${[...new Set([...test, ...lastEval])].join(', ') || 'none'})` };
    }
    if (!Number.isFinite(value)) return { type: 'failed', number: task.number, reason: `metric ${task.metric.name} is ${value}` };
    return { type: 'done', number: task.number, runStatus: result.status, value };
  } catch (e) {
    const reason = e instanceof Error ? e.message.split('\n')[0] : String(e);
    log(`failed: ${reason}`);
    return { type: 'failed', number: task.number, reason };
  } finally {
    if (session) closeSession(session);
  }
}

/**
 * Opens and closes a session of `m`'s config: its data set stays in the process's cache
 * (core/data), so the worker's first trial does not load it, and the model's code paths have
 * run once. A config that cannot be opened is left to the coordinator's check, which reports it.
 */
export function warmUp(m: Extract<ToWorker, { type: 'prepare' }>, registry: PluginRegistry): void {
  try {
    closeSession(openSession(experimentFromObject(structuredClone(m.raw), registry, m.experimentFile)));
  } catch {
    /* reported by the check */
  }
}

/**
 * Serves a coordinator over the IPC channel until told to exit (or the channel closes). Ctrl-C
 * (SIGINT, which a terminal sends to the whole process group) interrupts the trial in progress
 * with a checkpoint, as in `vaelab train`.
 */
export async function serveWorker(registry: PluginRegistry, backend: string): Promise<void> {
  const send = (m: FromWorker) => {
    if (process.connected) process.send!(m);
  };
  const control = { stop: false };
  const reports = new Map<number, TrialReports>();
  let queue: TrialTask[] = [];
  let wake: (() => void) | null = null;
  let exiting = false;
  // After Ctrl-C this worker ends its trial with a checkpoint and leaves.
  let interrupted = false;
  const onSigint = () => {
    interrupted = true;
    control.stop = true;
    wake?.();
  };
  process.on('SIGINT', onSigint);
  let prepare: Extract<ToWorker, { type: 'prepare' }> | null = null;
  process.on('message', (m: ToWorker) => {
    if (m.type === 'run') {
      // A trial is here: preparing another config first would only delay it.
      queue.push(m.task);
      prepare = null;
    } else if (m.type === 'prepare') prepare = m;
    else if (m.type === 'report') {
      const r = reports.get(m.number) ?? { number: m.number, state: 'running' as const, values: new Map<number, number>() };
      (r.values as Map<number, number>).set(m.epoch, m.value);
      reports.set(m.number, r);
    } else if (m.type === 'state') {
      const r = reports.get(m.number);
      if (r) r.state = m.state;
    } else if (m.type === 'stop') control.stop = true;
    else if (m.type === 'exit') exiting = true;
    wake?.();
  });
  process.on('disconnect', () => {
    exiting = true;
    control.stop = true;
    wake?.();
  });
  send({ type: 'ready', pid: process.pid });
  while (!exiting) {
    if (interrupted && queue.length === 0) {
      send({ type: 'leaving', pid: process.pid });
      break;
    }
    if (queue.length === 0 && prepare) {
      warmUp(prepare, registry);
      prepare = null;
      continue;
    }
    if (queue.length === 0) {
      await new Promise<void>((resolve) => (wake = resolve));
      wake = null;
      continue;
    }
    const task = queue.shift()!;
    reports.clear();
    for (const r of task.reports) reports.set(r.number, { number: r.number, state: r.state, values: new Map(Object.entries(r.values).map(([k, v]) => [Number(k), v as number])) });
    if (!reports.has(task.number)) reports.set(task.number, { number: task.number, state: 'running', values: new Map() });
    control.stop = interrupted;
    const result = await runTrial(task, registry, { backend, control, send, reports });
    // Said before the result, so that the coordinator hands this worker nothing more.
    if (interrupted) send({ type: 'leaving', pid: process.pid });
    send(result);
    queue = queue.filter((t) => t.number !== task.number);
    if (interrupted) {
      // Trials handed over meanwhile go back untouched; this worker leaves.
      for (const t of queue) send({ type: 'done', number: t.number, runStatus: 'interrupted', value: null });
      break;
    }
  }
  process.removeListener('SIGINT', onSigint);
  if (process.connected) process.disconnect();
}
