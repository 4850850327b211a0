/**
 * Trainer events: what progress output, metrics files, tracking (W&B, a run index) and sweeps
 * (intermediate values, pruning) listen to, without editing the trainer. The shape follows
 * PyTorch Lightning's `Callback` and Keras's `Callback`: every hook is optional, a callback may
 * keep state that resumes with the run, and it can ask the run to stop, like Optuna's
 * `trial.should_prune()`, with a status and a reason that end up in summary.json.
 *
 * Listeners run synchronously, on the training thread, between steps: a hook must return quickly
 * and must not block (hand slow work, such as a network upload, to a queue of its own). A hook
 * that throws, or returns a promise that rejects, is reported once per callback on the run's log
 * and the run goes on; its failures never change the numbers of the run. Events are plain frozen
 * objects, so a listener cannot alter what the next listener or the trainer sees.
 *
 * Step values are read back from the device only every `train.syncEvery` steps (and before every
 * checkpoint and at the end of each epoch), so `onStepEnd` events arrive in bursts, in step order,
 * each with the exact values of its step. A stop asked for in any hook takes effect before the
 * next optimisation step.
 */
import type { ExperimentConfig } from '../config/experiment';
import type { RunDir } from '../tracking/run-dir';
import type { CheckpointMeta } from './checkpoint';

/** How a training run ended. */
export type TrainStatus = 'completed' | 'early-stopped' | 'max-steps' | 'interrupted' | 'pruned' | 'stopped';

/** The statuses a callback may end a run with (see RunControl.stop). */
export type StopStatus = 'pruned' | 'stopped';

/** The run as it starts (or resumes). */
export interface RunStartEvent {
  config: ExperimentConfig;
  run: RunDir;
  /** Steps already done (0 unless resumed). */
  step: number;
  /** The epoch the run continues in (0-based). */
  epoch: number;
  epochs: number;
  stepsPerEpoch: number;
  /** Steps the run will take if nothing stops it. */
  totalSteps: number;
  /** The checkpoint resumed from, or null for a fresh start. */
  resumedFrom: string | null;
}

/** An epoch starts; `startBatch` > 0 when a run resumes in the middle of it. */
export interface EpochStartEvent {
  /** 0-based. */
  epoch: number;
  epochs: number;
  batches: number;
  startBatch: number;
}

/** One optimisation step, with its values read back from the device. */
export interface StepEndEvent {
  /** Steps done, this one included (1-based). */
  step: number;
  /** 0-based epoch and batch within it. */
  epoch: number;
  epochs: number;
  batch: number;
  batches: number;
  batchSize: number;
  /** Examples in this step's batch. */
  size: number;
  /** Learning rate of the main group at this step. */
  lr: number;
  /**
   * The step's values, keyed as in metrics.jsonl: `train/<term>` (batch means of the objective's
   * terms of this step), `train/grad-norm`, and for each parameter group that stepped,
   * `train/<group>-loss` and `train/<group>-grad-norm`.
   */
  values: Readonly<Record<string, number>>;
  /** Training throughput of the epoch so far, measured when the values were read back. */
  samplesPerSec: number;
}

/** An evaluation of the objective's terms on a split. */
export interface EvaluationEvent {
  step: number;
  /** The 1-based epoch after which it ran, or null for the final test evaluation. */
  epoch: number | null;
  /**
   * 'validation' (metrics `val/<term>`, used for model selection) or 'test' (metrics
   * `test/<term>`: monitoring during training when there is no validation split, and the final
   * evaluation).
   */
  split: 'validation' | 'test';
  metrics: Readonly<Record<string, number>>;
  /** True when this evaluation gave a new best value of train.earlyStopping.metric. */
  improved: boolean;
}

/** An epoch ended (after its evaluation, if one ran, and its checkpoint). */
export interface EpochEndEvent {
  /** 1-based: the number of epochs done. */
  epoch: number;
  epochs: number;
  step: number;
  seconds: number;
  samplesPerSec: number;
  /** `train/<term>` means over the epoch, and the epoch's evaluation metrics if one ran. */
  metrics: Readonly<Record<string, number>>;
  /** The split evaluated after this epoch, or null. */
  evaluated: 'validation' | 'test' | null;
  /** True when the evaluation gave a new best. */
  improved: boolean;
}

/** A checkpoint was written. */
export interface CheckpointEvent {
  file: string;
  reason: CheckpointMeta['reason'];
  step: number;
}

/** The run ended, normally or by a stop; summary.json has been written. */
export interface RunEndEvent {
  status: TrainStatus;
  steps: number;
  summary: Readonly<Record<string, unknown>>;
}

/** What a callback may ask of the run. */
export interface RunControl {
  /**
   * Ends the run before its next step: status 'pruned' (a sweep's pruner: no final test
   * evaluation) or 'stopped' (any other reason: the run is tested as after train.maxSteps). The
   * status, the reason and the callback's name are recorded in summary.json (`stop`). The first
   * request wins.
   */
  stop(request: { status: StopStatus; reason: string }): void;
  /** True once a stop has been requested. */
  readonly stopRequested: boolean;
}

/**
 * A trainer callback. Every hook is optional. `name` identifies it in warnings and in the
 * checkpoint; a callback with `state` must have a unique name.
 */
export interface TrainerCallback {
  readonly name?: string;
  onRunStart?(e: RunStartEvent, run: RunControl): void;
  onEpochStart?(e: EpochStartEvent, run: RunControl): void;
  onStepEnd?(e: StepEndEvent, run: RunControl): void;
  onEvaluation?(e: EvaluationEvent, run: RunControl): void;
  onEpochEnd?(e: EpochEndEvent, run: RunControl): void;
  onCheckpoint?(e: CheckpointEvent, run: RunControl): void;
  onRunEnd?(e: RunEndEvent): void;
  /** The run failed (a non-finite loss, an error in a plugin); the error is rethrown afterwards. */
  onFailure?(error: unknown): void;
  /** JSON-serialisable state saved in every checkpoint (meta.callbacks[name]). */
  state?(): unknown;
  /** Restores the state saved by `state` when the run resumes, before onRunStart. */
  loadState?(state: unknown): void;
}

type Hook = Exclude<keyof TrainerCallback, 'name' | 'state' | 'loadState'>;

const isPlain = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype;

/** Freezes a plain value and everything plain inside it. */
function deepFreeze<T>(v: T): T {
  if (Array.isArray(v) || isPlain(v)) {
    for (const x of Object.values(v as object)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

/**
 * A frozen copy of an event and of the plain records in it (values, metrics, summary); the
 * experiment's config (in onRunStart) is a deep-frozen clone, since the trainer reads its own.
 */
function freezeCopy(event: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(event)) {
    out[k] = k === 'config' && isPlain(v) ? deepFreeze(structuredClone(v)) : isPlain(v) ? Object.freeze({ ...v }) : v;
  }
  return Object.freeze(out);
}

/** A recorded stop request. */
export interface StopRequest {
  status: StopStatus;
  reason: string;
  /** The callback that asked. */
  by: string;
  /** Steps done when it asked. */
  step: number;
}

/**
 * Delivers events to callbacks in order, each call isolated: a throw (or a rejected promise) is
 * reported once per callback through `warn`, and never reaches the trainer.
 */
export class EventBus {
  private readonly failed = new Set<TrainerCallback>();
  private request: StopRequest | null = null;

  constructor(
    private readonly callbacks: readonly TrainerCallback[],
    private readonly warn: (line: string) => void,
    private readonly currentStep: () => number,
  ) {
    const names = new Set<string>();
    callbacks.forEach((cb, i) => {
      if ((cb.state || cb.loadState) && !cb.name) {
        throw new TypeError(`TrainOptions.callbacks[${i}]: a callback with state() or loadState() needs a name (its key in the checkpoint)`);
      }
      if (cb.name) {
        if (names.has(cb.name)) throw new TypeError(`TrainOptions.callbacks[${i}]: name ${JSON.stringify(cb.name)} is used by another callback`);
        names.add(cb.name);
      }
    });
  }

  /** The stop requested so far, if any. */
  get stopRequest(): StopRequest | null {
    return this.request;
  }

  private label(cb: TrainerCallback): string {
    return cb.name ? `callback "${cb.name}"` : `callback ${this.callbacks.indexOf(cb)}`;
  }

  private report(cb: TrainerCallback, where: string, e: unknown): void {
    if (this.failed.has(cb)) return;
    this.failed.add(cb);
    const msg = e instanceof Error ? e.message.split('\n')[0] : String(e);
    this.warn(`${this.label(cb)} failed in ${where}: ${msg} (its later failures are not reported; the run goes on)`);
  }

  private control(cb: TrainerCallback): RunControl {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const bus = this;
    return {
      stop: (req) => {
        if (bus.request) return;
        bus.request = { status: req.status, reason: String(req.reason), by: cb.name ?? `callbacks[${bus.callbacks.indexOf(cb)}]`, step: bus.currentStep() };
      },
      get stopRequested() {
        return bus.request !== null;
      },
    };
  }

  /** Calls `hook` of every callback with a frozen copy of the event. */
  emit<H extends Hook>(hook: H, event: Parameters<NonNullable<TrainerCallback[H]>>[0]): void {
    const frozen = isPlain(event) ? freezeCopy(event) : event;
    for (const cb of this.callbacks) {
      const fn = cb[hook] as ((e: unknown, c: RunControl) => unknown) | undefined;
      if (!fn) continue;
      try {
        const r = fn.call(cb, frozen, this.control(cb));
        if (r && typeof (r as Promise<unknown>).then === 'function') {
          (r as Promise<unknown>).then(undefined, (err: unknown) => this.report(cb, hook, err));
        }
      } catch (err) {
        this.report(cb, hook, err);
      }
    }
  }

  /** Every named callback's state, for the checkpoint meta. A failing state() is left out. */
  states(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const cb of this.callbacks) {
      if (!cb.state || !cb.name) continue;
      try {
        out[cb.name] = structuredClone(cb.state());
      } catch (err) {
        this.report(cb, 'state', err);
      }
    }
    return out;
  }

  /** Gives each named callback its saved state (those with none saved get nothing). */
  loadStates(saved: Record<string, unknown> | undefined): void {
    for (const cb of this.callbacks) {
      if (!cb.loadState || !cb.name || !saved || !(cb.name in saved)) continue;
      try {
        cb.loadState(structuredClone(saved[cb.name]));
      } catch (err) {
        this.report(cb, 'loadState', err);
      }
    }
  }
}
