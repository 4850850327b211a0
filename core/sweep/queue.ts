/**
 * Distributed sweeps on BullMQ + Redis. `vaelab sweep FILE --queue redis://HOST:PORT` puts trials
 * on the BullMQ queue `vaelab-trials`; `vaelab worker --queue redis://HOST:PORT` processes on any
 * number of machines take them, one trial per process at a time.
 *
 * Redis keys of a sweep (id = <name>-<hash of the sweep>):
 *   bull:vaelab-trials:*                the queue (BullMQ's keys); job id <id>.<trial>.<attempt>
 *   vaelab:sweep:<id>:events            a stream: workers' messages (started, report, done, failed)
 *                                       and the coordinator's stop requests; the coordinator
 *                                       keeps its read position in the state, so a restarted
 *                                       coordinator loses no message
 *   vaelab:sweep:<id>:state             the sweep state (as state.json), written after every change
 *
 * A worker builds the reports pruning needs from the stream (all trials' values so far, then
 * new ones as they come), so its decisions are synchronous. A worker that dies mid-trial stops
 * renewing its job's lock; BullMQ's stalled-job check (every --stall-seconds) puts the job back
 * and another worker takes it: from the trial's newest checkpoint when the run directories are
 * on storage both see, else from the start.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { Queue, Worker as BullWorker, type Job } from 'bullmq';
import Redis from 'ioredis';
import { ConfigError } from '../errors';
import type { PluginRegistry } from '../plugin';
import type { PoolListener, TrialPool } from './pool';
import type { TrialReports } from './pruners';
import type { SweepState } from './state';
import { runTrial, type FromWorker, type ToWorker, type TrialTask } from './worker';

export const QUEUE_NAME = 'vaelab-trials';
export const streamKey = (sweepId: string): string => `vaelab:sweep:${sweepId}:events`;
export const stateKey = (sweepId: string): string => `vaelab:sweep:${sweepId}:state`;

/** Seconds a connection attempt may take before the URL is reported unreachable. */
export const CONNECT_TIMEOUT_SECONDS = 5;

/** host and port of a redis:// URL, or a ConfigError naming the option. */
export function parseRedisUrl(url: string, option = '--queue'): { host: string; port: number } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ConfigError(`${option} ${url}: not a URL; expected redis://HOST:PORT`);
  }
  if (u.protocol !== 'redis:') throw new ConfigError(`${option} ${url}: expected redis://HOST:PORT; got protocol ${JSON.stringify(u.protocol.replace(/:$/, ''))}`);
  return { host: u.hostname || '127.0.0.1', port: u.port ? Number(u.port) : 6379 };
}

/**
 * A connected client, or a ConfigError naming the URL after at most CONNECT_TIMEOUT_SECONDS: no
 * retries while connecting, so an unreachable Redis never hangs the command.
 */
export async function connectRedis(url: string, option = '--queue'): Promise<Redis> {
  const { host, port } = parseRedisUrl(url, option);
  const client = new Redis({ host, port, lazyConnect: true, connectTimeout: CONNECT_TIMEOUT_SECONDS * 1000, maxRetriesPerRequest: 1, retryStrategy: () => null, enableOfflineQueue: false });
  let lastError: Error | null = null;
  client.on('error', (e: Error) => {
    // The cause (ECONNREFUSED, ENOTFOUND, ...); connect() itself only says the connection closed.
    lastError = e;
  });
  try {
    await Promise.race([
      client.connect(),
      new Promise((_, reject) => setTimeout(() => reject(new Error(`no answer within ${CONNECT_TIMEOUT_SECONDS} s`)), CONNECT_TIMEOUT_SECONDS * 1000 + 500)),
    ]);
    await client.ping();
  } catch (e) {
    client.disconnect();
    const cause = (lastError as Error | null) ?? (e as Error);
    throw new ConfigError(`${option} ${url}: cannot reach Redis (${cause.message.split('\n')[0]}); is redis-server running there?`);
  }
  // From here on, reconnect as usual (a restarted Redis is waited for).
  client.options.retryStrategy = (times: number) => Math.min(times * 200, 2000);
  client.options.maxRetriesPerRequest = null;
  client.options.enableOfflineQueue = true;
  return client;
}

const bullConnection = (url: string) => ({ ...parseRedisUrl(url), maxRetriesPerRequest: null });

/** Appends a message to the sweep's stream. */
async function post(client: Redis, sweepId: string, from: 'worker' | 'coordinator', msg: FromWorker | ToWorker): Promise<void> {
  await client.xadd(streamKey(sweepId), '*', 'from', from, 'msg', JSON.stringify(msg));
}

type Entry = [id: string, fields: string[]];
const parse = (e: Entry): { from: string; msg: FromWorker | ToWorker } => {
  const f = e[1];
  const get = (k: string) => f[f.indexOf(k) + 1];
  return { from: get('from'), msg: JSON.parse(get('msg')) };
};

/** Trials on the queue; messages read back from the sweep's stream. */
export class QueuePool implements TrialPool {
  readonly detached = true;
  private readonly queue: Queue;
  private readonly reader: Redis;
  private readonly running = new Set<number>();
  private closed = false;
  private readonly readLoop: Promise<void>;
  private readonly poll: NodeJS.Timeout;

  constructor(
    private readonly client: Redis,
    private readonly url: string,
    private readonly sweepId: string,
    private readonly inflight: number,
    private readonly listener: PoolListener,
    private readonly state: SweepState & { queueCursor?: string },
  ) {
    this.queue = new Queue(QUEUE_NAME, { connection: bullConnection(url) });
    this.reader = client.duplicate({ enableOfflineQueue: true });
    this.reader.on('error', () => {});
    this.readLoop = this.read();
    // A job that failed in the queue itself (stalled more often than allowed) sends no message.
    this.poll = setInterval(() => void this.checkJobs(), 2000);
  }

  private jobId(trial: number, attempt: number): string {
    return `${this.sweepId}.${trial}.${attempt}`;
  }

  private async read(): Promise<void> {
    let cursor = this.state.queueCursor ?? '0';
    while (!this.closed) {
      let res: Array<[string, Entry[]]> | null = null;
      try {
        res = (await this.reader.xread('COUNT', 100, 'BLOCK', 500, 'STREAMS', streamKey(this.sweepId), cursor)) as Array<[string, Entry[]]> | null;
      } catch {
        if (this.closed) return;
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      for (const [, entries] of res ?? []) {
        for (const e of entries) {
          cursor = e[0];
          this.state.queueCursor = cursor;
          const { from, msg } = parse(e);
          if (from !== 'worker') continue;
          const m = msg as FromWorker;
          if (m.type === 'started') this.running.add(m.number);
          if (m.type === 'done' || m.type === 'failed') this.running.delete(m.number);
          this.listener.message(m);
        }
      }
    }
  }

  private async checkJobs(): Promise<void> {
    for (const t of this.state.trials) {
      if (t.status !== 'running' || this.closed) continue;
      const job = await this.queue.getJob(this.jobId(t.number, t.attempts)).catch(() => undefined);
      if (!job) continue;
      const s = await job.getState().catch(() => 'unknown');
      if (s === 'failed') {
        this.running.delete(t.number);
        this.listener.lost(t.number, `its queue job ${job.id} failed: ${job.failedReason ?? 'no reason given'}`, 'failed');
      }
    }
  }

  free(): number {
    const out = this.state.trials.filter((t) => t.status === 'running').length;
    return Math.max(0, this.inflight - out);
  }

  grow(): void {
    /* workers are started by their owners: `vaelab worker --queue` */
  }

  async run(task: TrialTask, attempt: number): Promise<string> {
    const id = this.jobId(task.number, attempt);
    await this.queue.add('trial', { sweepId: this.sweepId, task }, { jobId: id, removeOnComplete: true, removeOnFail: false, attempts: 1 });
    return `queue job ${id}`;
  }

  broadcast(m: ToWorker): void {
    // Workers read other trials' reports from the stream themselves; only stops are sent.
    if (m.type === 'stop') void post(this.client, this.sweepId, 'coordinator', m);
  }

  async reattach(running: ReadonlyArray<{ number: number; attempts: number }>): Promise<Set<number>> {
    const out = new Set<number>();
    for (const t of running) {
      const s = await this.queue.getJobState(this.jobId(t.number, t.attempts)).catch(() => 'unknown');
      if (['active', 'waiting', 'delayed', 'prioritized', 'waiting-children'].includes(s)) out.add(t.number);
    }
    return out;
  }

  /** Saves the state in Redis too. */
  persist(state: SweepState): void {
    void this.client.set(stateKey(this.sweepId), JSON.stringify(state)).catch(() => {});
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.poll);
    await this.readLoop;
    this.reader.disconnect();
    await this.queue.close();
    await this.client.quit().catch(() => {});
  }
}

/**
 * A queue worker: with concurrency > 1, that many child processes of one trial each; else a
 * BullMQ worker of concurrency 1 in this process. Ctrl-C: the trial in progress writes a
 * checkpoint and goes back to the queue; the worker takes no more.
 */
export async function serveQueueWorker(
  registry: PluginRegistry,
  opts: { url: string; concurrency: number; stallSeconds: number; backend: string; log: (line: string) => void; childArgs: string[]; bin: string },
): Promise<void> {
  const client = await connectRedis(opts.url);
  if (opts.concurrency > 1) {
    client.disconnect();
    const children: ChildProcess[] = [];
    let stopping = false;
    process.on('SIGINT', () => (stopping = true));
    const start = (i: number) => {
      const c = fork(opts.bin, [...opts.childArgs, '--concurrency', '1'], { stdio: 'inherit' });
      children[i] = c;
      c.on('exit', (code, signal) => {
        if (stopping) return;
        opts.log(`worker process ${i + 1} (pid ${c.pid}) exited ${signal ? `with signal ${signal}` : `with code ${code}`}; starting another`);
        start(i);
      });
    };
    for (let i = 0; i < opts.concurrency; i++) start(i);
    await new Promise<void>((resolve) => {
      const check = setInterval(() => {
        if (stopping && children.every((c) => c.exitCode !== null || c.signalCode !== null)) {
          clearInterval(check);
          resolve();
        }
      }, 200);
    });
    return;
  }

  const control = { stop: false };
  let current: { sweepId: string; reports: Map<number, TrialReports> } | null = null;
  const processor = async (job: Job): Promise<FromWorker> => {
    const { sweepId } = job.data as { sweepId: string };
    // A job taken over from a lost worker continues the run directory it left, when this worker sees it.
    const task: TrialTask = { ...(job.data as { task: TrialTask }).task, resume: true };
    const reports = new Map<number, TrialReports>();
    const apply = (m: FromWorker | ToWorker, from: string, live: boolean) => {
      if (from === 'coordinator') {
        if (live && m.type === 'stop') control.stop = true;
        return;
      }
      if (!('number' in m)) return;
      const r = reports.get(m.number) ?? { number: m.number, state: 'running' as const, values: new Map<number, number>() };
      reports.set(m.number, r);
      if (m.type === 'report') (r.values as Map<number, number>).set(m.epoch, m.value);
      else if (m.type === 'done') r.state = m.runStatus === 'pruned' ? 'pruned' : m.runStatus === 'interrupted' ? 'running' : 'complete';
      else if (m.type === 'started' || m.type === 'failed') r.state = 'running';
    };
    // Every trial's reports so far, then new ones while this trial trains.
    const past = (await client.xrange(streamKey(sweepId), '-', '+')) as Entry[];
    for (const e of past) {
      const { from, msg } = parse(e);
      apply(msg, from, false);
    }
    reports.delete(task.number);
    reports.set(task.number, { number: task.number, state: 'running', values: new Map() });
    // Our own earlier values (a resumed trial) count as reported.
    for (const e of past) {
      const { from, msg } = parse(e);
      if (from === 'worker' && msg.type === 'report' && msg.number === task.number) (reports.get(task.number)!.values as Map<number, number>).set(msg.epoch, msg.value);
    }
    current = { sweepId, reports };
    const reader = client.duplicate({ enableOfflineQueue: true });
    reader.on('error', () => {});
    let cursor = past.length > 0 ? past[past.length - 1][0] : '0';
    let reading = true;
    const loop = (async () => {
      while (reading) {
        let res: Array<[string, Entry[]]> | null = null;
        try {
          res = (await reader.xread('COUNT', 100, 'BLOCK', 500, 'STREAMS', streamKey(sweepId), cursor)) as Array<[string, Entry[]]> | null;
        } catch {
          // A lost connection: wait (a rejected read must not spin without yielding to the training).
          await new Promise((r) => setTimeout(r, 500));
        }
        for (const [, entries] of res ?? []) {
          for (const e of entries) {
            cursor = e[0];
            const { from, msg } = parse(e);
            if (from === 'worker' && 'number' in msg && msg.number === task.number) continue;
            apply(msg, from, true);
          }
        }
      }
    })();
    const send = (m: FromWorker) => void post(client, sweepId, 'worker', m).catch(() => {});
    try {
      const result = await runTrial(task, registry, { backend: opts.backend, control, send, reports });
      await post(client, sweepId, 'worker', result);
      return result;
    } finally {
      reading = false;
      await loop;
      reader.disconnect();
      current = null;
    }
  };
  const worker = new BullWorker(QUEUE_NAME, processor, {
    connection: bullConnection(opts.url),
    concurrency: 1,
    lockDuration: opts.stallSeconds * 1000,
    stalledInterval: opts.stallSeconds * 1000,
    maxStalledCount: 2,
    autorun: true,
  });
  worker.on('error', (e) => opts.log(`worker: ${e.message}`));
  opts.log(`worker ${process.pid}: taking trials from ${opts.url} (queue ${QUEUE_NAME})`);
  await new Promise<void>((resolve) => {
    process.on('SIGINT', () => {
      control.stop = true;
      opts.log(`worker ${process.pid}: interrupt: the trial in progress writes a checkpoint and goes back to the queue`);
      void worker.close().then(resolve);
    });
  });
  void current;
  await client.quit().catch(() => {});
}
