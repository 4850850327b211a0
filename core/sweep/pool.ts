/**
 * Where trials run: a pool the coordinator hands trials to and hears back from. The local pool
 * forks worker processes on this machine; the queue pool (core/sweep/queue.ts) puts trials on a
 * BullMQ queue in Redis for `vaelab worker --queue` processes on any machine.
 */
import { fork, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { VaelabError } from '../errors';
import type { FromWorker, ToWorker, TrialTask } from './worker';

/** What a pool tells the coordinator. */
export interface PoolListener {
  message(m: FromWorker): void;
  /**
   * A trial's worker is gone. `failed`: lost mid-trial (a failed attempt); `interrupted`: stopped
   * by an interrupt; `returned`: never started (the trial waits for another worker).
   */
  lost(trial: number, reason: string, kind: 'failed' | 'interrupted' | 'returned'): void;
  /** Capacity changed (a worker became ready, or left). */
  wake(): void;
}

export interface TrialPool {
  /** Trials that can be handed out now. */
  free(): number;
  /** Prepares capacity for `pending` trials waiting (starts worker processes). */
  grow(pending: number): void;
  /** Hands a trial out; returns where it went ("worker 2", "queue job ..."). */
  run(task: TrialTask, attempt: number): Promise<string> | string;
  /** A message to the workers of every running trial but `exceptTrial`'s. */
  broadcast(m: ToWorker, exceptTrial?: number): void;
  /** Trials run on without the coordinator (a queue): an interrupt leaves them running. */
  readonly detached: boolean;
  /** Called after every change of the state (a queue keeps a copy in Redis). */
  persist?(state: import('./state').SweepState): void;
  /** On resume: which of the trials the saved state calls running are still running in the pool. */
  reattach?(running: ReadonlyArray<{ number: number; attempts: number }>): Promise<Set<number>>;
  close(): Promise<void>;
}

interface Worker {
  id: number;
  proc: ChildProcess;
  ready: boolean;
  trial: number | null;
}

/** Worker processes forked on this machine, one trial each at a time. */
export class LocalPool implements TrialPool {
  readonly detached = false;
  private readonly workers: Worker[] = [];
  private nextId = 1;
  private startupFailures = 0;
  private readonly logFd: number;

  constructor(
    private readonly command: { module: string; args: string[] },
    private readonly size: number,
    private readonly env: Record<string, string>,
    private readonly logFile: string,
    private readonly listener: PoolListener,
    /**
     * Sent to each worker started before the first trial is handed out (they start while the
     * configs are checked): what to load meanwhile. Workers started later (after a crash, for
     * more trials) get no such message: they would prepare a point they are unlikely to run.
     */
    private warm?: Extract<ToWorker, { type: 'prepare' }>,
  ) {
    this.logFd = fs.openSync(logFile, 'a');
  }

  free(): number {
    return this.workers.filter((w) => w.ready && w.trial === null).length;
  }

  grow(pending: number): void {
    if (this.startupFailures >= 3) {
      throw new VaelabError(
        `sweep: ${this.startupFailures} worker processes exited before they could take a trial (${this.command.module} ${this.command.args.join(' ')}); their output is in ${path.relative(process.cwd(), this.logFile)}`,
      );
    }
    const idle = this.workers.filter((w) => w.trial === null).length;
    for (let need = Math.min(this.size - this.workers.length, pending - idle); need > 0; need--) this.spawn();
  }

  run(task: TrialTask): string {
    this.warm = undefined;
    const w = this.workers.find((x) => x.ready && x.trial === null)!;
    w.trial = task.number;
    const giveBack = (e: Error) => {
      // The worker left between its last message and this one: the trial waits for another.
      w.ready = false;
      if (w.trial !== task.number) return;
      w.trial = null;
      this.listener.lost(task.number, `worker ${w.id} (pid ${w.proc.pid}) could not be given the trial (${e.message})`, 'returned');
    };
    try {
      w.proc.send({ type: 'run', task } satisfies ToWorker, (e) => e && giveBack(e));
    } catch (e) {
      setImmediate(() => giveBack(e as Error));
    }
    return `worker ${w.id}, pid ${w.proc.pid}`;
  }

  broadcast(m: ToWorker, exceptTrial?: number): void {
    for (const w of this.workers) {
      if (w.trial === exceptTrial || !w.proc.connected) continue;
      // A worker on its way out (Ctrl-C reaches every process of the group) has nothing to be told.
      try {
        w.proc.send(m, () => {});
      } catch {
        /* its channel closed meanwhile */
      }
    }
  }

  private spawn(): void {
    const proc = fork(this.command.module, this.command.args, { stdio: ['ignore', this.logFd, this.logFd, 'ipc'], env: { ...process.env, ...this.env } });
    const w: Worker = { id: this.nextId++, proc, ready: false, trial: null };
    // Failed sends are handled where they are made; the exit event reports the worker's end.
    proc.on('error', () => {});
    proc.on('message', (m: FromWorker) => {
      if (m.type === 'ready') w.ready = true;
      if (m.type === 'leaving') w.ready = false;
      if ((m.type === 'done' || m.type === 'failed') && m.number === w.trial) w.trial = null;
      if (m.type !== 'ready' && m.type !== 'leaving') this.listener.message(m);
      this.listener.wake();
    });
    proc.on('exit', (code, signal) => {
      this.workers.splice(this.workers.indexOf(w), 1);
      if (!w.ready) this.startupFailures += 1;
      if (w.trial !== null) {
        const how = signal ? `with signal ${signal}` : `with code ${code}`;
        this.listener.lost(w.trial, `worker ${w.id} (pid ${proc.pid}) exited ${how} during the trial`, signal === 'SIGINT' ? 'interrupted' : 'failed');
      }
      this.listener.wake();
    });
    this.workers.push(w);
    if (this.warm) {
      try {
        proc.send(this.warm, () => {});
      } catch {
        /* the worker left already; its exit is reported */
      }
    }
  }

  /** Stops every worker at once (SIGKILL): for workers that have taken no trial (a sweep whose configs failed their check). */
  kill(): void {
    for (const w of this.workers) w.proc.kill('SIGKILL');
    fs.closeSync(this.logFd);
  }

  async close(): Promise<void> {
    const exits = this.workers.map((w) => new Promise<void>((resolve) => w.proc.once('exit', () => resolve())));
    this.broadcast({ type: 'exit' });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(exits), new Promise((r) => (timer = setTimeout(r, 10000)))]);
    clearTimeout(timer);
    for (const w of [...this.workers]) w.proc.kill('SIGKILL');
    fs.closeSync(this.logFd);
  }
}
