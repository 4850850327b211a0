/**
 * Weights & Biases logging of a training run, as a trainer callback (core/train/events.ts).
 *
 * It sends what metrics.jsonl gets (a row per "step" record every train.logEvery steps, per
 * "epoch" record and for the final "test" record, with the same keys and values; W&B's `_step`
 * is the row's number, the trainer's step is the `step` key), the run's config, and its final
 * values as the W&B summary. Group, tags and notes come from tracking.wandb.
 *
 * A W&B outage, a refused key or a slow server never stops or slows training: the hooks only
 * append the row to <run>/wandb/pending.jsonl (core/wandb/outbox.ts) and return; a sender,
 * woken every SEND_EVERY_MS on the event loop between steps, posts what is pending with one
 * deadline per request (tracking.wandb.timeoutSeconds). After MAX_ATTEMPTS failures in a row
 * (or one that retrying cannot mend, such as a refused key) it stops for the run and prints one
 * line; what was not sent stays in the run directory for `vaelab wandb-sync`. When the run ends
 * the last sends get at most timeoutSeconds (2 s after Ctrl-C), with no retry after a failure;
 * then they are abandoned. So a server that never answers costs a run at most one request
 * deadline after its end.
 * Nothing here installs a signal handler or keeps the process alive (every timer and socket is
 * unref'd), so Ctrl-C and sweep workers stop as they do without W&B.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ExperimentConfig } from '../config/experiment';
import { ConfigError, showValue } from '../errors';
import type { EpochEndEvent, EvaluationEvent, RunEndEvent, RunStartEvent, StepEndEvent, TrainStatus, TrainerCallback } from '../train/events';
import type { RunDir } from '../tracking/run-dir';
import { Outbox } from './outbox';
import { sendPending } from './send';
import { WireClient, WireError } from './wire';

/** The W&B server vaelab sends to when WANDB_BASE_URL is not set. */
export const DEFAULT_BASE_URL = 'https://api.wandb.ai';
/** Pause of the sender between passes while the run trains. */
export const SEND_EVERY_MS = 2000;
/** Failures in a row after which the sender gives up for the run. */
export const MAX_ATTEMPTS = 3;
/** First pause after a failure; doubled after each further one. */
export const BACKOFF_MS = 1000;
/** Bound of the last sends after an interrupt (Ctrl-C), when the user waits for the prompt. */
export const INTERRUPT_FLUSH_MS = 2000;

/** tracking.wandb of an experiment. */
export type WandbConfig = ExperimentConfig['tracking']['wandb'];

/** Characters W&B refuses in project and entity names. */
const BAD_NAME = /[/\\#?%:]/;
/** W&B's longest tag. */
const MAX_TAG_CHARS = 64;

/** The problems of tracking.wandb values that its formats do not catch, one line each. */
export function wandbConfigProblems(w: Partial<WandbConfig> | undefined): string[] {
  const problems: string[] = [];
  if (!w) return problems;
  for (const key of ['project', 'entity'] as const) {
    const v = w[key];
    if (typeof v === 'string' && BAD_NAME.test(v)) problems.push(`tracking.wandb.${key}: must not contain any of / \\ # ? % :; got ${showValue(v)}`);
  }
  if (Array.isArray(w.tags)) {
    const long = w.tags.find((t) => typeof t === 'string' && t.length > MAX_TAG_CHARS);
    if (long !== undefined) problems.push(`tracking.wandb.tags: each tag must have at most ${MAX_TAG_CHARS} characters (W&B's limit); got ${showValue(long)} (${long.length} characters)`);
  }
  return problems;
}

let commandLineFlag = false;

/** `vaelab train --wandb` was given: W&B is on for the runs of this process. */
export function setWandbFlag(on: boolean): void {
  commandLineFlag = on;
}

/** Whether W&B logging is on: tracking.wandb.enabled, --wandb, or WANDB_API_KEY set; never with WANDB_MODE=disabled. */
export function wandbEnabled(w: WandbConfig, flag: boolean, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.WANDB_MODE === 'disabled') return false;
  return w.enabled || flag || Boolean(env.WANDB_API_KEY);
}

/** Options of `wandbCallbacks`. */
export interface WandbCallbackOptions {
  /** Where the one warning goes (the run's log). */
  log?: (line: string) => void;
  /** The W&B group when tracking.wandb.group is empty: the staged run id, the sweep name. */
  group?: string;
  /** --wandb (default: what setWandbFlag was given). */
  flag?: boolean;
  env?: NodeJS.ProcessEnv;
}

/**
 * The W&B callback of a run, in a list ([] when W&B is off), to spread into
 * TrainOptions.callbacks. Await `settleWandb()` after `train` so the last sends get their bounded time.
 */
export function wandbCallbacks(config: ExperimentConfig, run: RunDir, opts: WandbCallbackOptions = {}): TrainerCallback[] {
  const env = opts.env ?? process.env;
  const w = config.tracking.wandb;
  if (!wandbEnabled(w, opts.flag ?? commandLineFlag, env)) return [];
  const problems = wandbConfigProblems(w);
  if (problems.length > 0) throw new ConfigError(problems);
  return [new WandbLogger(config, run, opts.log ?? ((l) => process.stderr.write(`${l}\n`)), opts.group ?? '', env)];
}

/** The W&B group of a sweep trial (<sweep dir>/trials/NNNN): the sweep's name, else its directory's. */
export function sweepGroupOf(trialDir: string): string {
  const sweepDir = path.dirname(path.dirname(trialDir));
  try {
    const name = (JSON.parse(fs.readFileSync(path.join(sweepDir, 'state.json'), 'utf8')) as { name?: unknown }).name;
    if (typeof name === 'string' && name) return name;
  } catch {
    // no sweep state next to it: the directory's name
  }
  return path.basename(sweepDir);
}

const settling = new Set<Promise<void>>();

/** Waits for the last sends of every run that ended in this process (each bounded by its timeout). */
export async function settleWandb(): Promise<void> {
  while (settling.size > 0) {
    const all = [...settling];
    settling.clear();
    await Promise.all(all);
  }
}

/** The run's final values for the W&B summary (summary.json's numbers; the test metrics flat). */
export function finalValues(summary: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of ['status', 'steps', 'epochsCompleted', 'trainSeconds', 'wallSeconds', 'samplesPerSecond']) {
    if (summary[k] !== undefined && summary[k] !== null) out[k] = summary[k];
  }
  const best = summary.best as { value?: number | null; epoch?: number | null } | null | undefined;
  if (best && best.value !== null && best.value !== undefined) Object.assign(out, { 'best/value': best.value, 'best/epoch': best.epoch });
  Object.assign(out, (summary.test as Record<string, number> | undefined) ?? {});
  return out;
}

/** W&B's exit code of a run that ended with `status`. */
export const exitCodeOf = (status: TrainStatus): number => (status === 'interrupted' ? 130 : 0);

/** Sends one run to W&B from the trainer's events; see the file's comment. */
export class WandbLogger implements TrainerCallback {
  readonly name = 'wandb';
  private box: Outbox | null = null;
  private client: WireClient | null = null;
  private logEvery = 1;
  private pump: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private ending = false;
  private abandoned = false;
  private warned = false;
  private readonly shown: string;
  private readonly startedAt = Date.now();
  private readonly w: WandbConfig;

  constructor(
    private readonly config: ExperimentConfig,
    private readonly run: RunDir,
    private readonly log: (line: string) => void,
    private readonly group: string,
    private readonly env: NodeJS.ProcessEnv,
  ) {
    this.w = config.tracking.wandb;
    this.shown = path.relative(process.cwd(), run.dir) || run.dir;
  }

  private warn(what: string): void {
    if (this.warned) return;
    this.warned = true;
    this.log(`wandb: ${what}; training goes on without W&B, and what is not sent is kept in ${path.join(this.shown, 'wandb')}: send it with npx vaelab wandb-sync ${this.shown}`);
  }

  onRunStart(e: RunStartEvent): void {
    this.logEvery = e.config.train.logEvery;
    const cfgFile = this.run.file('config.json');
    const config = fs.existsSync(cfgFile) ? (JSON.parse(fs.readFileSync(cfgFile, 'utf8')) as Record<string, unknown>) : (e.config as unknown as Record<string, unknown>);
    const group = this.w.group || this.group;
    const baseUrl = this.env.WANDB_BASE_URL || DEFAULT_BASE_URL;
    this.box = Outbox.forTraining(this.run.dir, {
      project: this.w.project || this.config.name || 'uncategorized',
      entity: this.w.entity,
      group,
      displayName: `${group || this.config.name}/${path.basename(this.run.dir)}`,
      tags: [...this.w.tags],
      notes: this.w.notes,
      baseUrl,
      config,
    });
    const apiKey = this.env.WANDB_API_KEY ?? '';
    if (this.w.mode === 'offline' || this.env.WANDB_MODE === 'offline') {
      this.log(`wandb: offline: nothing is sent; the run's W&B data is kept in ${path.join(this.shown, 'wandb')}: send it with npx vaelab wandb-sync ${this.shown}`);
      this.warned = true;
      return;
    }
    if (!apiKey) {
      this.warn('no API key (WANDB_API_KEY is not set)');
      return;
    }
    this.client = new WireClient({ baseUrl, apiKey, timeoutMs: this.w.timeoutSeconds * 1000 });
    this.pump = this.send();
  }

  private push(values: Record<string, unknown>): void {
    // _runtime and _timestamp as the SDK adds them to each row (seconds)
    this.box?.append({ _runtime: (Date.now() - this.startedAt) / 1000, _timestamp: Date.now() / 1000, ...values });
  }

  onStepEnd(e: StepEndEvent): void {
    if (e.step % this.logEvery !== 0) return;
    this.push({ kind: 'step', step: e.step, epoch: e.epoch + 1, lr: e.lr, ...e.values });
  }

  onEpochEnd(e: EpochEndEvent): void {
    this.push({ kind: 'epoch', epoch: e.epoch, step: e.step, seconds: e.seconds, samplesPerSec: e.samplesPerSec, ...e.metrics, ...(e.evaluated ? { evalSplit: e.evaluated } : {}) });
  }

  onEvaluation(e: EvaluationEvent): void {
    if (e.epoch === null) this.push({ kind: 'test', step: e.step, ...e.metrics });
  }

  onRunEnd(e: RunEndEvent): void {
    this.box?.end(finalValues(e.summary), exitCodeOf(e.status));
    this.finish(e.status === 'interrupted' ? Math.min(INTERRUPT_FLUSH_MS, this.w.timeoutSeconds * 1000) : this.w.timeoutSeconds * 1000);
  }

  onFailure(): void {
    this.box?.end(null, 1);
    this.finish(this.w.timeoutSeconds * 1000);
  }

  /** Wakes the sender for its last pass and gives it at most `boundMs`; then abandons it. */
  private finish(boundMs: number): void {
    this.ending = true;
    this.wake?.();
    const pump = this.pump;
    if (!pump) return;
    const settled = (async () => {
      let timer: NodeJS.Timeout | undefined;
      // This timer is not unref'd: it holds the process for the bounded wait, so that a CLI
      // awaiting settleWandb() does not see an empty event loop and exit before the last sends.
      const late = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), boundMs);
      });
      const timedOut = await Promise.race([pump.then(() => false), late]);
      clearTimeout(timer);
      if (timedOut) {
        this.abandoned = true;
        this.client?.close();
        this.warn(`the server took no answer to the run's last sends within ${boundMs / 1000} s (${this.client?.where})`);
      }
    })();
    settling.add(settled);
  }

  /** Pauses the sender for `ms` (unref'd); `wakeable`: the run's end cuts the pause short. */
  private nap(ms: number, wakeable: boolean): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref();
      function done() {
        clearTimeout(timer);
        resolve();
      }
      if (wakeable) this.wake = done;
    }).finally(() => {
      this.wake = null;
    });
  }

  /** The sender: passes over the outbox until the run ended and everything is sent, or it gives up. */
  private async send(): Promise<void> {
    const box = this.box!;
    const client = this.client!;
    let failures = 0;
    for (;;) {
      if (this.abandoned) return;
      const ending = this.ending;
      try {
        await sendPending(box, client, ending);
        failures = 0;
        if (ending) return;
      } catch (e) {
        if (this.abandoned) return;
        const err = e instanceof WireError ? e : new WireError(e instanceof Error ? e.message : String(e), false);
        failures += 1;
        // Once the run has ended nobody should wait for a retry: the first failure ends the sends.
        if (!err.retryable || failures >= MAX_ATTEMPTS || this.ending) {
          const tries = failures > 1 ? ` (${failures} attempts)` : '';
          this.warn(`${client.where}: ${err.message}${tries}`);
          return;
        }
        await this.nap(BACKOFF_MS * 2 ** (failures - 1), false);
        continue;
      }
      // The run may have ended during the pass: its last pass starts at once.
      if (!this.ending) await this.nap(SEND_EVERY_MS, true);
    }
  }
}
