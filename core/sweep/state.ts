/**
 * The sweep directory and its state:
 *
 *   <dir>/state.json            the sweep file and a hash of what it sweeps, every trial (parameters,
 *                               seed, status, attempts and failures, intermediate values, pruning
 *                               decisions, final value), the sampler's suggestion count, wall time;
 *                               rewritten atomically after every change
 *   <dir>/events.jsonl          one line per event (start, report, pruning decision, end, failure)
 *   <dir>/trials/<NNNN>/        one ordinary run directory per trial (config.json, checkpoints,
 *                               metrics.jsonl, summary.json, train.log)
 *   <dir>/results.csv, .json    the trials sorted by the metric
 *   <dir>/best-experiment.yaml  the best trial's config, a ready experiment file
 *   <dir>/workers.log           what the worker processes printed
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError } from '../errors';
import { appendJsonLine, readJsonIfExists, writeJsonAtomic } from '../tracking/files';
import type { PruneDecision } from './pruners';
import type { Params } from './space';
import type { SweepSpec } from './spec';

export type TrialStatus = 'queued' | 'running' | 'completed' | 'pruned' | 'failed' | 'interrupted';

export interface TrialRecord {
  number: number;
  params: Params;
  /** The seed set for this trial, or null (the experiment's own). */
  seed: number | null;
  /** Run directory, relative to the sweep directory. */
  dir: string;
  status: TrialStatus;
  /** Times the trial was started (a resume after a kill or Ctrl-C counts). */
  attempts: number;
  /** Failures so far, oldest first: error, non-finite value, killed worker. */
  failures: Array<{ at: string; reason: string }>;
  /** Intermediate values by epoch. */
  intermediate: Record<number, number>;
  decisions: PruneDecision[];
  /** The metric's final value (completed), its last intermediate value (pruned), else null. */
  value: number | null;
  /** The trial run's own status (completed, max-steps, pruned, ...). */
  runStatus?: string;
  startedAt?: string;
  endedAt?: string;
  /** Seconds spent running, over all attempts. */
  seconds: number;
  /** Process id of the worker running it. */
  worker?: number;
}

export interface SweepState {
  version: 1;
  sweepFile: string;
  /** Hash of what the sweep varies and how (everything but the budget and the directory). */
  specHash: string;
  name: string;
  method: SweepSpec['method'];
  metric: SweepSpec['metric'];
  createdAt: string;
  /** Suggestions asked of the sampler so far (each gives one trial per seed). */
  suggestions: number;
  /** Wall seconds of earlier sessions (the budget's wall time counts them). */
  wallSeconds: number;
  sessions: Array<{ startedAt: string; endedAt?: string; workers: number; ended?: string }>;
  trials: TrialRecord[];
  /** Queue sweeps: the position read up to in the sweep's Redis stream. */
  queueCursor?: string;
}

/** The parts of a sweep that fix its trials: a resumed sweep must have the same. */
function fingerprint(spec: SweepSpec): Record<string, unknown> {
  return {
    experiment: spec.experiment,
    baseRaw: spec.baseRaw,
    set: spec.set,
    method: spec.method,
    seed: spec.seed,
    metric: spec.metric,
    parameters: spec.parameters,
    seeds: spec.seeds,
    earlyTermination: spec.earlyTermination,
    tpe: spec.tpe,
  };
}

export function specHash(spec: SweepSpec): string {
  return createHash('sha256').update(JSON.stringify(fingerprint(spec))).digest('hex').slice(0, 16);
}

const stateFile = (dir: string) => path.join(dir, 'state.json');

/**
 * Opens the sweep directory: a new state, or (with resume) the saved one. Refuses a directory
 * written by another sweep file, one that already holds this sweep without resume, and a resume
 * after the swept parameters, method or base experiment changed.
 */
export function openState(spec: SweepSpec, resume: boolean): SweepState {
  const saved = readJsonIfExists<SweepState>(stateFile(spec.dir));
  const shownDir = path.relative(process.cwd(), spec.dir) || spec.dir;
  if (saved) {
    if (saved.sweepFile !== spec.file) {
      throw new ConfigError(`sweep directory ${shownDir} holds the sweep of ${saved.sweepFile}, not of this file; set dir: in the sweep file or pass --out to use another directory`, spec.shownFile);
    }
    if (!resume) {
      throw new ConfigError(`sweep directory ${shownDir} already holds this sweep (${saved.trials.length} trials); continue it with --resume, or remove the directory to start again`, spec.shownFile);
    }
    if (saved.specHash !== specHash(spec)) {
      throw new ConfigError(
        `sweep directory ${shownDir}: the sweep file changed since the sweep started (its experiment, set, method, seed, metric, parameters, seeds, earlyTermination or tpe); only budget and retries may change on --resume. Start the changed sweep in another directory (dir: or --out)`,
        spec.shownFile,
      );
    }
    return saved;
  }
  checkNewSweepDir(spec, resume);
  fs.mkdirSync(path.join(spec.dir, 'trials'), { recursive: true });
  return {
    version: 1,
    sweepFile: spec.file,
    specHash: specHash(spec),
    name: spec.name,
    method: spec.method,
    metric: spec.metric,
    createdAt: new Date().toISOString(),
    suggestions: 0,
    wallSeconds: 0,
    sessions: [],
    trials: [],
  };
}

/**
 * The checks of a directory that holds no sweep state yet: not asked to resume, and empty but
 * for workers.log (the worker processes are started while the configs are checked).
 */
export function checkNewSweepDir(spec: SweepSpec, resume: boolean): void {
  const shownDir = path.relative(process.cwd(), spec.dir) || spec.dir;
  if (resume) throw new ConfigError(`--resume: no sweep in ${shownDir} (no state.json); start it without --resume`, spec.shownFile);
  if (fs.existsSync(spec.dir) && fs.readdirSync(spec.dir).some((f) => f !== 'workers.log')) {
    throw new ConfigError(`sweep directory ${shownDir} is not empty and holds no sweep state; choose another directory (dir: or --out)`, spec.shownFile);
  }
}

export function saveState(dir: string, state: SweepState): void {
  writeJsonAtomic(stateFile(dir), state);
}

export function readState(dir: string): SweepState | undefined {
  return readJsonIfExists<SweepState>(stateFile(dir));
}

export function logEvent(dir: string, event: Record<string, unknown>): void {
  appendJsonLine(path.join(dir, 'events.jsonl'), { time: new Date().toISOString(), ...event });
}

export const trialDirName = (n: number): string => path.join('trials', String(n).padStart(4, '0'));
