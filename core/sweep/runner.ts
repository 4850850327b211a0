/**
 * The sweep coordinator (`vaelab sweep`): validates every trial's config, then keeps N worker
 * processes busy (one per core by default; each trial is one training process on one core),
 * asks the sampler for points, records every report, pruning decision, failure and result in the
 * sweep state (atomically), retries failed trials, and writes the results at the end.
 *
 * Crashes: a worker that dies mid-trial (killed, out of memory) costs only that trial's work
 * since its last checkpoint: the trial is counted as a failed attempt and run again from its
 * newest checkpoint, if retries remain. Ctrl-C (SIGINT) interrupts running trials with a
 * checkpoint and exits 130; `--resume` re-runs nothing that finished, continues interrupted
 * trials, and counts old and new trials against the budget.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { clearDatasetCache } from '../data';
import type { PluginRegistry } from '../plugin';
import { LiveTable, type LiveMode, type LiveOutput } from './live';
import { checkPoints, gridPoints, pointsToCheck, seedsOf, trialRaw } from './points';
import type { TrialReports } from './pruners';
import { writeSweepPlots } from './plots';
import { writeResultFiles, writeResults } from './results';
import { makeSampler, type Observation } from './samplers';
import { showParams } from './space';
import type { SweepSpec } from './spec';
import { LocalPool, type PoolListener, type TrialPool } from './pool';
import { checkNewSweepDir, logEvent, openState, saveState, trialDirName, type SweepState, type TrialRecord } from './state';
import type { TrialTask } from './worker';

export interface SweepOptions {
  /** Worker processes (default: budget.concurrent, else one per core). */
  workers?: number;
  resume?: boolean;
  log?: (line: string) => void;
  /** The command a worker runs: a module forked with these arguments (default: vaelab's bin with `worker`). */
  workerCommand?: { module: string; args: string[] };
  /** Extra environment for the workers. */
  env?: Record<string, string>;
  /** Set `stop` to interrupt the sweep as Ctrl-C does. */
  control?: { stop: boolean };
  /** Handle SIGINT (default true). */
  handleSignals?: boolean;
  /** Only check the sweep file and every trial's config; run nothing. */
  checkOnly?: boolean;
  /** Where trials run (default: a LocalPool of worker processes on this machine). */
  pool?: (listener: PoolListener, state: SweepState) => TrialPool;
  /**
   * The results table while the sweep runs (core/sweep/live.ts): `redraw` in place on
   * `tableOutput` (a terminal; `log` must print to the same terminal), `plain` lines through
   * `log` after each trial ends (the default), or `none`.
   */
  table?: LiveMode;
  /** The terminal of the `redraw` table (default: process.stderr). */
  tableOutput?: LiveOutput;
  /** Draw the pictures at the end of the session (default true). */
  pictures?: boolean;
}

export interface SweepResult {
  status: 'completed' | 'interrupted' | 'wall-time' | 'checked';
  /** The sweep's state (null after checkOnly). */
  state: SweepState | null;
}

/** bin/vaelab.js of this installation (walks up from this file: core/sweep or dist/core/sweep). */
export function vaelabBin(): string {
  let dir = __dirname;
  for (let i = 0; i < 5; i++) {
    const f = path.join(dir, 'bin', 'vaelab.js');
    if (fs.existsSync(f)) return f;
    dir = path.dirname(dir);
  }
  throw new Error(`cannot find bin/vaelab.js above ${__dirname}`);
}

/** The trial's reports as the pruner sees them. */
function reportsOf(t: TrialRecord): TrialReports {
  return { number: t.number, state: t.status === 'completed' ? 'complete' : t.status === 'pruned' ? 'pruned' : 'running', values: { ...t.intermediate } };
}

/** The trial as the sampler sees it; failed and queued-but-never-run trials are left out. */
function observationOf(t: TrialRecord): Observation | null {
  const epochs = Object.keys(t.intermediate).map(Number);
  const lastEpoch = epochs.length > 0 ? Math.max(...epochs) : 0;
  if (t.status === 'completed') return { number: t.number, params: t.params, state: 'complete', value: t.value, lastEpoch };
  if (t.status === 'pruned') return { number: t.number, params: t.params, state: 'pruned', value: t.value, lastEpoch };
  if (t.status === 'running' || t.status === 'queued' || t.status === 'interrupted') return { number: t.number, params: t.params, state: 'running', value: null, lastEpoch };
  return null;
}

const fmt = (v: number | null) => (v === null ? '-' : Math.abs(v) >= 100 ? v.toFixed(2) : Number(v.toPrecision(5)).toString());

/** Runs (or resumes) a sweep to its end, its budget, or an interrupt. */
export async function runSweep(spec: SweepSpec, registry: PluginRegistry, opts: SweepOptions = {}): Promise<SweepResult> {
  const baseLog = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const live = new LiveTable(spec, opts.checkOnly ? 'none' : (opts.table ?? 'plain'), baseLog, opts.tableOutput ?? process.stderr);
  const log = (line: string) => live.print(line);
  const dir = spec.dir;
  const shownDir = path.relative(process.cwd(), dir) || dir;
  // The directory is checked first (another sweep's, or this one's without --resume), then
  // every config a trial can have, before any trial runs.
  const saved = fs.existsSync(path.join(dir, 'state.json')) ? openState(spec, opts.resume ?? false) : null;
  if (!saved) checkNewSweepDir(spec, opts.resume ?? false);

  const nWorkers = Math.max(1, opts.workers ?? spec.budget.concurrent ?? os.cpus().length);
  const concurrent = Math.min(nWorkers, spec.budget.concurrent ?? nWorkers);
  // Local worker processes start while the configs are checked (Node, the modules and the
  // backend take about a second each, the check about as long): they take no trial before the
  // check has passed, and are stopped, with the directory if it was made for them, when it fails.
  let forward: PoolListener | null = null;
  const relay: PoolListener = { message: (m) => forward?.message(m), lost: (n, reason, kind) => forward?.lost(n, reason, kind), wake: () => forward?.wake() };
  let local: LocalPool | null = null;
  const madeDir = !fs.existsSync(dir);
  const points = pointsToCheck(spec);
  if (!opts.checkOnly && !opts.pool) {
    const open = saved ? saved.trials.filter((t) => ['queued', 'running', 'interrupted'].includes(t.status)).length + Math.max(0, spec.budget.trials - saved.trials.length) : spec.budget.trials;
    if (open > 0) {
      // Each worker loads the first point's data set (and builds its model once) meanwhile.
      const warm = { type: 'prepare' as const, raw: trialRaw(spec, points[0] ?? {}, seedsOf(spec)[0]), experimentFile: spec.experiment };
      fs.mkdirSync(dir, { recursive: true });
      local = new LocalPool(opts.workerCommand ?? { module: vaelabBin(), args: ['worker'] }, concurrent, opts.env ?? {}, path.join(dir, 'workers.log'), relay, warm);
      local.grow(open);
    }
  }

  const checkStart = Date.now();
  let checked: number;
  try {
    checked = checkPoints(spec, registry, points);
  } catch (e) {
    if (local) {
      local.kill();
      if (madeDir) fs.rmSync(dir, { recursive: true, force: true });
    }
    throw e;
  }
  const checkSeconds = (Date.now() - checkStart) / 1000;
  // The check's data sets (cached so that points sharing them load them once) are not needed
  // here again: the trials load theirs in the workers.
  clearDatasetCache();
  const perPoint = seedsOf(spec).length;
  if (spec.method === 'grid') {
    const size = gridPoints(spec).length * perPoint;
    if (size > spec.budget.trials) {
      log(`warning: ${spec.shownFile}: the grid has ${size} trials (${size / perPoint} points${perPoint > 1 ? ` x ${perPoint} seeds` : ''}) and budget.trials is ${spec.budget.trials}: only the first ${spec.budget.trials} run`);
    }
  }
  log(`sweep ${spec.name}: ${spec.method}, ${spec.parameters.length} parameters, metric ${spec.metric.name} (${spec.metric.goal}); ${checked} configs validated (${checkSeconds.toFixed(1)} s); directory ${shownDir}`);
  if (opts.checkOnly) return { status: 'checked', state: null };
  const state = saved ?? openState(spec, false);

  const sampler = makeSampler(spec);
  const sessionStart = Date.now();
  const wallBefore = state.wallSeconds;
  let poolRef: TrialPool | null = null;
  // results.csv and .json follow the state while the sweep runs, at most once a second (the
  // last change always written, by a timer), so that the files are current between trial ends.
  const written: { best?: number } = {};
  let filesAt = 0;
  let filesTimer: NodeJS.Timeout | null = null;
  let filesProblem = false;
  const writeFilesNow = () => {
    if (filesTimer) clearTimeout(filesTimer);
    filesTimer = null;
    filesAt = Date.now();
    try {
      writeResultFiles(spec, state, { final: false, written });
    } catch (e) {
      // The state is written above; the results files are rewritten at the end of the session.
      if (!filesProblem) log(`results.csv not updated during the sweep: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
      filesProblem = true;
    }
  };
  const save = () => {
    state.wallSeconds = wallBefore + (Date.now() - sessionStart) / 1000;
    saveState(dir, state);
    poolRef?.persist?.(state);
    live.update(state);
    const wait = filesAt + 1000 - Date.now();
    if (wait <= 0) writeFilesNow();
    else filesTimer ??= setTimeout(writeFilesNow, wait);
  };

  state.sessions.push({ startedAt: new Date().toISOString(), workers: concurrent });
  save();
  logEvent(dir, { event: 'session-start', workers: concurrent, resume: opts.resume ?? false, trials: state.trials.length });

  const control = opts.control ?? { stop: false };
  let stopReason: 'interrupted' | 'wall-time' | null = null;
  let exhausted = false;

  /** The next trial to run: a queued one (resume, retry), else new trials from the sampler. */
  const nextTrial = (): TrialRecord | null => {
    const queued = state.trials.find((t) => t.status === 'queued');
    if (queued) return queued;
    if (exhausted || state.trials.length >= spec.budget.trials) return null;
    const history = state.trials.map(observationOf).filter((o): o is Observation => o !== null);
    const params = sampler.suggest(state.suggestions, history);
    if (params === null) {
      exhausted = true;
      return null;
    }
    state.suggestions += 1;
    for (const seed of seedsOf(spec)) {
      if (state.trials.length >= spec.budget.trials) break;
      const number = state.trials.length;
      state.trials.push({ number, params, seed, dir: trialDirName(number), status: 'queued', attempts: 0, failures: [], intermediate: {}, decisions: [], value: null, seconds: 0 });
    }
    return state.trials.find((t) => t.status === 'queued') ?? null;
  };

  const attemptStart = new Map<number, number>();
  const startedBy = new Map<number, string>();
  let wakeLoop: (() => void) | null = null;
  const wake = () => wakeLoop?.();

  const finishAttempt = (t: TrialRecord) => {
    t.seconds += (Date.now() - (attemptStart.get(t.number) ?? Date.now())) / 1000;
    attemptStart.delete(t.number);
    startedBy.delete(t.number);
  };
  const epochsDone = (t: TrialRecord) => {
    const epochs = Object.keys(t.intermediate).map(Number);
    return epochs.length > 0 ? `after epoch ${Math.max(...epochs)}` : 'before its first epoch ended';
  };

  /** A failed attempt: queued again while retries remain. */
  const fail = (t: TrialRecord, reason: string) => {
    finishAttempt(t);
    t.failures.push({ at: new Date().toISOString(), reason });
    const retry = t.failures.length <= spec.retries;
    t.status = retry ? 'queued' : 'failed';
    t.endedAt = retry ? undefined : new Date().toISOString();
    log(`trial ${t.number} failed: ${reason}; ${retry ? `retry ${t.failures.length} of ${spec.retries}` : `no retries left (retries: ${spec.retries})`}`);
    logEvent(dir, { event: 'failure', trial: t.number, reason, retry });
    pool.broadcast({ type: 'state', number: t.number, state: 'running' });
  };

  const listener: PoolListener = {
    wake,
    lost(number, reason, kind) {
      const t = state.trials[number];
      if (t.status !== 'running') return;
      if (kind === 'returned') {
        finishAttempt(t);
        t.attempts -= 1;
        t.status = 'queued';
        logEvent(dir, { event: 'returned', trial: t.number, reason });
      } else if (kind === 'interrupted' && stopReason) {
        finishAttempt(t);
        t.status = 'interrupted';
      } else fail(t, `${reason}, ${epochsDone(t)}`);
      save();
      wake();
    },
    message(m) {
      if (m.type === 'ready' || m.type === 'leaving') return;
      const t = state.trials[m.number];
      if (!t) return;
      if (m.type === 'started') {
        const before = startedBy.get(t.number);
        if (before !== undefined && before !== m.worker && t.status === 'running') {
          // The queue gave the trial to another worker: the first stopped renewing its lock.
          t.failures.push({ at: new Date().toISOString(), reason: `worker ${before} lost during the trial (its job stalled), ${epochsDone(t)}; taken over by ${m.worker}` });
          logEvent(dir, { event: 'failure', trial: t.number, reason: t.failures[t.failures.length - 1].reason, retry: true });
          log(`trial ${t.number}: worker ${before} lost; taken over by ${m.worker}`);
          t.attempts += 1;
        }
        startedBy.set(t.number, m.worker);
        t.worker = Number(m.worker.split(':').pop());
        if (m.resumedFrom) log(`trial ${m.number}: continues from ${path.join(t.dir, m.resumedFrom)}`);
      } else if (m.type === 'report') {
        if (t.intermediate[m.epoch] === m.value && t.decisions.some((d) => d.epoch === m.epoch)) return;
        t.intermediate[m.epoch] = m.value;
        pool.broadcast({ type: 'report', number: m.number, epoch: m.epoch, value: m.value }, m.number);
        logEvent(dir, { event: 'report', trial: m.number, epoch: m.epoch, value: m.value });
        if (m.decision) {
          t.decisions.push(m.decision);
          logEvent(dir, { event: 'decision', ...m.decision });
          log(`trial ${m.number}: ${m.decision.reason}`);
        } else {
          log(`trial ${m.number} epoch ${m.epoch}: ${spec.metric.name} ${fmt(m.value)}`);
        }
      } else if (m.type === 'done') {
        if (t.status !== 'running') return;
        finishAttempt(t);
        if (m.runStatus === 'interrupted') {
          // Stopped by an interrupt of the sweep, or by its worker's owner (then it runs again).
          t.status = stopReason ? 'interrupted' : 'queued';
          log(`trial ${t.number} interrupted (checkpoint written; ${stopReason ? 'continues on --resume' : 'queued again'})`);
        } else {
          t.status = m.runStatus === 'pruned' ? 'pruned' : 'completed';
          t.runStatus = m.runStatus;
          t.value = m.value;
          t.endedAt = new Date().toISOString();
          pool.broadcast({ type: 'state', number: t.number, state: t.status === 'pruned' ? 'pruned' : 'complete' });
          log(`trial ${t.number} ${t.status}: ${spec.metric.name} ${fmt(t.value)} (${t.seconds.toFixed(1)} s)`);
        }
        logEvent(dir, { event: 'end', trial: t.number, status: t.status, runStatus: m.runStatus, value: t.value, seconds: t.seconds });
      } else if (m.type === 'failed') {
        if (t.status !== 'running') return;
        fail(t, m.reason);
      }
      save();
      wake();
    },
  };

  forward = listener;
  const pool: TrialPool = opts.pool
    ? opts.pool(listener, state)
    : (local ?? new LocalPool(opts.workerCommand ?? { module: vaelabBin(), args: ['worker'] }, concurrent, opts.env ?? {}, path.join(dir, 'workers.log'), listener));
  poolRef = pool;

  // Resume: trials that were running or interrupted continue from their checkpoints, except
  // those a queue's workers are still running.
  const elsewhere = pool.reattach ? await pool.reattach(state.trials.filter((t) => t.status === 'running')) : new Set<number>();
  for (const t of state.trials) {
    if (t.status === 'running' && elsewhere.has(t.number)) attemptStart.set(t.number, Date.now());
    else if (t.status === 'running' || t.status === 'interrupted') t.status = 'queued';
  }
  save();

  const start = async (t: TrialRecord) => {
    const resume = t.attempts > 0 || fs.existsSync(path.join(dir, t.dir, 'config.json'));
    t.status = 'running';
    t.attempts += 1;
    t.startedAt ??= new Date().toISOString();
    attemptStart.set(t.number, Date.now());
    const task: TrialTask = {
      number: t.number,
      dir: path.join(dir, t.dir),
      raw: trialRaw(spec, t.params, t.seed),
      experimentFile: spec.experiment,
      resume,
      metric: spec.metric,
      rule: spec.earlyTermination,
      reports: state.trials.filter((o) => o.status !== 'failed').map(reportsOf),
    };
    save();
    const where = await pool.run(task, t.attempts);
    const seed = t.seed !== null ? `, seed=${t.seed}` : '';
    log(`trial ${t.number} ${t.attempts > 1 ? `restarted (attempt ${t.attempts})` : 'started'}: ${showParams(t.params) || 'no parameters'}${seed} [${where}]`);
    logEvent(dir, { event: 'start', trial: t.number, attempt: t.attempts, where, params: t.params, seed: t.seed });
  };

  const onSigint = () => {
    if (control.stop) return;
    control.stop = true;
    log(pool.detached ? 'interrupt: the coordinator stops; queued and running trials go on in the workers (reattach with --resume)' : 'interrupt: running trials write a checkpoint and stop (continue with --resume)');
    wake();
  };
  const signals = opts.handleSignals !== false;
  if (signals) process.on('SIGINT', onSigint);
  const wallLimit = spec.budget.wallMinutes !== null ? spec.budget.wallMinutes * 60 : null;
  const wallTimer =
    wallLimit !== null
      ? setInterval(() => {
          if (wallBefore + (Date.now() - sessionStart) / 1000 >= wallLimit && !stopReason) {
            stopReason = 'wall-time';
            log(`budget.wallMinutes (${spec.budget.wallMinutes}) reached: running trials write a checkpoint and stop`);
            pool.broadcast({ type: 'stop' });
            wake();
          }
        }, 500)
      : null;

  try {
    for (;;) {
      if (control.stop && !stopReason) {
        stopReason = 'interrupted';
        if (!pool.detached) pool.broadcast({ type: 'stop' });
      }
      const running = state.trials.filter((t) => t.status === 'running').length;
      if (stopReason) {
        if (running === 0 || (stopReason === 'interrupted' && pool.detached)) break;
      } else {
        // Hand trials to free workers, then make room for what still waits.
        while (pool.free() > 0 && state.trials.filter((t) => t.status === 'running').length < concurrent) {
          const t = nextTrial();
          if (!t) break;
          await start(t);
        }
        const busy = state.trials.filter((t) => t.status === 'running').length;
        const pending = state.trials.filter((t) => t.status === 'queued').length + (exhausted ? 0 : Math.max(0, spec.budget.trials - state.trials.length));
        if (busy === 0 && pending === 0) break;
        pool.grow(pending);
      }
      await new Promise<void>((resolve) => {
        wakeLoop = resolve;
      });
      wakeLoop = null;
    }
  } finally {
    if (wallTimer) clearInterval(wallTimer);
    if (signals) process.removeListener('SIGINT', onSigint);
    await pool.close();
    const session = state.sessions[state.sessions.length - 1];
    session.endedAt = new Date().toISOString();
    session.ended = stopReason ?? 'completed';
    save();
    if (filesTimer) clearTimeout(filesTimer);
    live.close();
    logEvent(dir, { event: 'session-end', ended: session.ended });
  }
  writeResults(spec, state, log);
  log(`session: ${((Date.now() - sessionStart) / 1000).toFixed(1)} s from the configs validated to the results written${opts.pictures === false ? '' : ' (the pictures follow)'}`);
  if (opts.pictures !== false && state.trials.some((t) => t.status === 'completed' || t.status === 'pruned')) {
    try {
      const files = await writeSweepPlots(spec, state);
      log(`pictures: ${files.map((f) => path.relative(process.cwd(), f)).join(', ')}`);
    } catch (e) {
      // A picture that cannot be drawn never fails the sweep: its results are written above.
      log(`pictures not written: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
    }
  }
  return { status: stopReason ?? 'completed', state };
}
