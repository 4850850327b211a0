/**
 * The training loop: Adam on the objective's mean loss (and on each parameter group's own loss),
 * with learning-rate schedules, gradient clipping, evaluation every N epochs, model selection and
 * early stopping on a validation split, atomic checkpoints every epoch (and on Ctrl-C), exact
 * resumption, a stop with a clear error on a non-finite loss, and events (core/train/events.ts)
 * that progress output, the metrics file and any other listener attach to.
 *
 * The loop reads as its phases, the methods of `Trainer`: `start` (resume or init.from, run
 * start), per epoch `runEpoch` of `step`s whose values `flush` reads back, `endEpoch` (`evaluate`,
 * `checkpoint`), and `finish` (final checkpoint, test evaluation, summary).
 *
 * Reproducibility: every random draw of step s comes from Rng.derive(seed, 'step', s) (a
 * parameter group's from Rng.derive(seed, 'group/<name>', s)), data order of epoch e from the
 * batcher's (seed, e) stream, evaluations from (seed, 'eval', ...). So a run resumed from any
 * checkpoint continues with exactly the numbers an uninterrupted run would have. Listeners cannot
 * change them: they see frozen copies, their errors are caught, and a stop they ask for only
 * takes effect between steps.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { ExperimentConfig } from '../config/experiment';
import { SLOTS, type ModelBatch, type Objective } from '../contracts';
import { Batcher } from '../data/batcher';
import { generationCondition, type ConditionOptions } from '../data/condition';
import { initFromData, trainingExamples } from '../data/examples';
import type { DataSplit } from '../data/types';
import { ConfigError, TrainingError, VaelabError } from '../errors';
import { disposeBatch, disposeModelBatch, evaluateTerms, iwLogLikelihood, latentStats, priorLogLikelihood, toModelBatch, type EvalContext } from '../eval/evaluate';
import { latentTraversal } from '../eval/traversal';
import { standardError } from '../math';
import { Rng } from '../rng';
import type { Session } from '../session';
import { writeJsonAtomic } from '../tracking/files';
import { PER_EXAMPLE_FILE, writePerExample } from '../eval/per-example';
import { writeGrid } from '../tracking/images';
import type { RunDir } from '../tracking/run-dir';
import { clipByGlobalNorm } from './adam';
import { loadCheckpoint, restoreVariables, saveCheckpoint, type CheckpointMeta } from './checkpoint';
import { EventBus, type TrainStatus, type TrainerCallback } from './events';
import { buildGroups, isDue, type OptimizerGroup } from './groups';
import { applyInit, resolveInitCheckpoint } from './init';
import { MetricsListener, ProgressListener } from './listeners';
import { learningRateAt } from './schedule';
import { OWNER_FILE, RunOwner } from '../tracking/owner';
import { completionGrid, concatImages, interpolationGrid, layerSamplesGrid, layerTraversalGrid } from '../eval/pictures';
import { checkSampleQualityData, evaluateSampleQuality } from '../eval/sample-quality';

export type { TrainStatus } from './events';

/** The result of `train`. */
export interface TrainResult {
  status: TrainStatus;
  steps: number;
  epochs: number;
  summary: Record<string, unknown>;
}

/** Options of a training run. */
export interface TrainOptions {
  run: RunDir;
  backend: string;
  /** A checkpoint file to continue from. */
  resumeFrom?: string;
  /** Where log lines go (default: stderr). */
  log?: (line: string) => void;
  /** Listeners (core/train/events.ts), called after the built-in progress and metrics listeners. */
  callbacks?: TrainerCallback[];
  /**
   * Set `stop` to true to interrupt the run before its next step with a checkpoint, as Ctrl-C
   * does (status 'interrupted', resumable).
   */
  control?: { stop: boolean };
  /** Handle SIGINT (default true). */
  handleSignals?: boolean;
  /**
   * Called right after every optimisation step with the number of steps done, before the step's
   * values are read back from the device (timing tools, tests). Listeners that want the values
   * use `callbacks` (onStepEnd).
   */
  onStep?: (step: number) => void;
}

/** Every trainable variable of the session: the model's and the objective's own. */
export function trainableVariables(model: { variables(): Map<string, tf.Variable> }, objective: Objective): Map<string, tf.Variable> {
  const vars = new Map(model.variables());
  const seen = new Set(vars.values());
  for (const [k, v] of objective.variables()) if (!seen.has(v)) vars.set(`objective/${k}`, v);
  return vars;
}

/**
 * Every non-trainable state variable of the session (Trainable.state): the model's, keyed
 * "<slot>/<name>", and the objective's, keyed "objective/<name>". Saved as `state/<key>`.
 */
export function stateVariables(model: { state(): Map<string, tf.Variable> }, objective: Objective): Map<string, tf.Variable> {
  const vars = new Map(model.state());
  const seen = new Set(vars.values());
  for (const [k, v] of objective.state?.() ?? []) if (!seen.has(v)) vars.set(`objective/${k}`, v);
  return vars;
}

/**
 * Refuses model selection on the test split: with no validation split (data.validationSize 0),
 * early stopping would pick a checkpoint on test.
 */
export function checkModelSelection(config: ExperimentConfig): void {
  if (config.data.validationSize === 0 && config.train.earlyStopping.patience > 0) {
    throw new ConfigError(
      `train.earlyStopping.patience: early stopping selects a checkpoint on a validation split, and data.validationSize is 0 (the test split is never used for selection); set data.validationSize above 0 or train.earlyStopping.patience to 0`,
    );
  }
  // before training, not after it: the metrics exist for MNIST and Fashion-MNIST only
  if (config.eval.sampleQuality) checkSampleQualityData('eval.sampleQuality', config.data.use);
}

/**
 * Checks `init.*` before anything is written: the checkpoint exists, and every tensor it would
 * copy fits this session's variables (the same ConfigErrors the run would give at its start).
 */
export function checkInit(session: Session): void {
  const init = session.config.init;
  if (!init.from) {
    checkUntrainedStart(session);
    return;
  }
  const file = resolveInitCheckpoint(init.from, init.checkpoint);
  const { model, objective } = session.parts;
  applyInit(file, init.include, trainableVariables(model, objective), stateVariables(model, objective), { check: true });
}

/**
 * Refuses a run with no `init.from` that selects a plugin declaring `needsTrainedModel`: its frozen
 * parts would stay at their random initialisation.
 */
function checkUntrainedStart(session: Session): void {
  const { config, registry, file } = session.experiment;
  const problems: string[] = [];
  for (const slot of SLOTS) {
    const name = config[slot].use;
    const needs = registry.get(slot, name)?.needsTrainedModel;
    if (needs) {
      problems.push(
        `${slot}.use: "${name}" ${needs}, but init.from is not set, so the run would start from untrained weights; set init.from to a finished run of the first stage (its directory or a checkpoint), or make this a later entry of stages: (which starts from the entry before it)`,
      );
    }
  }
  if (problems.length > 0) throw new ConfigError(problems, file === '<inline>' ? undefined : file);
}

/**
 * The variables an init left as initialised, for the log: every name when there are few, else a
 * count per "<part>/<slot>/" prefix (a whole new prior is one entry, not 68 names).
 */
export function keptSummary(kept: string[]): string {
  if (kept.length <= 6) return kept.join(', ');
  const groups = new Map<string, number>();
  for (const k of kept) {
    const prefix = k.split('/').slice(0, 2).join('/');
    groups.set(prefix, (groups.get(prefix) ?? 0) + 1);
  }
  return [...groups].map(([prefix, n]) => `${n} tensor${n === 1 ? '' : 's'} under ${prefix}/`).join(', ');
}

/** Restores the weights and state saved in a checkpoint (evaluation, sampling, the best checkpoint). */
export function restoreModel(session: Session, file: string): CheckpointMeta {
  const ck = loadCheckpoint(file);
  restoreVariables(ck, 'model/', trainableVariables(session.parts.model, session.parts.objective), file);
  restoreVariables(ck, 'state/', stateVariables(session.parts.model, session.parts.objective), file);
  return ck.meta;
}

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

const fmt = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(2) : v.toFixed(4));

/** A step whose values are still on the device. */
interface PendingStep {
  step: number;
  epoch: number;
  batch: number;
  lr: number;
  size: number;
  /** Names of `values`, in order: the objective's terms, grad-norm, then per group that stepped <group>-loss, <group>-grad-norm. */
  names: string[];
  /** Positions in `values` of the losses that must be finite: the main loss (0) and each group's. */
  losses: number[];
  values: tf.Tensor1D;
}

/** Values reported per step but not averaged over the epoch: the gradient norms. */
const isNorm = (name: string) => name === 'grad-norm' || name.endsWith('-grad-norm');

/** One training run: the phases of the loop as methods. */
class Trainer {
  private readonly config: ExperimentConfig;
  private readonly T: ExperimentConfig['train'];
  private readonly seed: number;
  private readonly log: (line: string) => void;
  private readonly control: { stop: boolean };
  private readonly progress: ProgressListener;
  private readonly bus: EventBus;
  /** Every trainable variable (frozen ones included), keyed as in checkpoints. */
  private readonly vars: Map<string, tf.Variable>;
  /** Keys of the variables this stage freezes that init did not load (fresh runs only; checked at the first step). */
  private frozenRandom: string[] = [];
  private readonly stateVars: Map<string, tf.Variable>;
  /** The main group first, then the objective's parameter groups. */
  private readonly groups: OptimizerGroup[];
  private readonly batcher: Batcher;
  private readonly perEpoch: number;
  private readonly totalSteps: number;
  /** The split evaluated every evalEvery epochs: validation (selection) or test (monitoring only). */
  private readonly evalSplit: { split: DataSplit; name: 'validation' | 'test'; prefix: 'val' | 'test' };
  private readonly meta: CheckpointMeta;
  private pending: PendingStep[] = [];
  private lastCheckpoint: string | undefined;
  private lastEval: Record<string, number> = {};
  private epochStartedAt = 0;
  private epochSamples = 0;
  private readonly startedWall = Date.now();
  /** Refreshes the run directory's owner heartbeat (set while run() runs). */
  private beat: () => void = () => undefined;
  private resumedFrom: string | null = null;

  constructor(
    private readonly session: Session,
    private readonly opts: TrainOptions,
  ) {
    const { config, dataset, parts } = session;
    this.config = config;
    this.T = config.train;
    this.seed = config.seed;
    this.log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
    this.control = opts.control ?? { stop: false };
    checkModelSelection(config);

    this.progress = new ProgressListener(this.T.progress, this.T.logEvery, this.log);
    this.bus = new EventBus([this.progress, new MetricsListener(opts.run, this.T.logEvery), ...(opts.callbacks ?? [])], this.log, () => this.meta.step);

    this.vars = trainableVariables(parts.model, parts.objective);
    this.stateVars = stateVariables(parts.model, parts.objective);
    this.groups = buildGroups(this.vars, parts.objective, config.objective.use, this.T.optimizer, this.T.trainable);

    this.batcher = new Batcher(dataset.train, dataset, {
      batchSize: this.T.batchSize,
      shuffle: true,
      seed: this.seed,
      dynamicBinarize: config.data.binarize === 'dynamic',
      dropLast: this.T.dropLast,
      labelled: config.data.labelledBatchSize,
    });
    this.perEpoch = this.batcher.batchesPerEpoch();
    const all = this.T.epochs * this.perEpoch;
    this.totalSteps = this.T.maxSteps > 0 ? Math.min(all, this.T.maxSteps) : all;
    this.evalSplit = dataset.validation
      ? { split: dataset.validation, name: 'validation', prefix: 'val' }
      : { split: dataset.test, name: 'test', prefix: 'test' };
    this.meta = {
      version: 1,
      step: 0,
      epoch: 0,
      batchInEpoch: 0,
      optimizerT: 0,
      best: { value: null, epoch: null, evalsWithoutImprovement: 0 },
      epochSums: {},
      epochCount: 0,
      epochCounts: {},
      trainSeconds: 0,
      seed: this.seed,
      reason: 'epoch',
      createdAt: '',
    };
  }

  // ----- setup -------------------------------------------------------------------------------

  /** Resumes from a checkpoint, or applies init.from to a fresh run; then the run-start event. */
  private start(): void {
    // Variables given values other than their random initialisation: loaded by init, or made from data.
    let fresh: ((key: string) => boolean) | null = null;
    if (this.opts.resumeFrom) {
      this.resume(this.opts.resumeFrom);
    } else {
      const { parts, dataset } = this.session;
      const done = initFromData(
        [...parts.model.slots(), ['objective', parts.objective]],
        trainingExamples(dataset.train, dataset, this.config.data.condition as ConditionOptions),
        (name) => Rng.derive(this.seed, `init-data/${name}`),
      );
      if (done.length > 0) this.log(`init: ${done.join(', ')} initialised from the training split`);
      const loaded = new Set<string>();
      if (this.config.init.from) {
        const file = resolveInitCheckpoint(this.config.init.from, this.config.init.checkpoint);
        const r = applyInit(file, this.config.init.include, this.vars, this.stateVars);
        const kept = r.kept.length > 0 ? `; not in it, left as initialised: ${keptSummary(r.kept)}` : '';
        this.log(`init: ${r.copied.length} tensors from ${path.relative(process.cwd(), file)}${kept}`);
        for (const k of r.copied) if (k.startsWith('model/')) loaded.add(k.slice('model/'.length));
      }
      fresh = (key) => !loaded.has(key) && !done.includes(key.split('/')[0]);
    }
    if (this.T.trainable.length > 0) {
      const trained = new Set(this.groups.flatMap((g) => [...g.vars.keys()]));
      this.log(`train.trainable: ${trained.size} of ${this.vars.size} variables trained, the others frozen`);
      // Frozen and never given values; the first step warns about those its loss reads.
      this.frozenRandom = fresh === null ? [] : [...this.vars.keys()].filter((k) => !trained.has(k) && fresh!(k));
    }
    this.bus.emit('onRunStart', {
      config: this.config,
      run: this.opts.run,
      step: this.meta.step,
      epoch: this.meta.epoch,
      epochs: this.T.epochs,
      stepsPerEpoch: this.perEpoch,
      totalSteps: this.totalSteps,
      resumedFrom: this.resumedFrom,
    });
  }

  private resume(file: string): void {
    const ck = loadCheckpoint(file);
    if (ck.meta.seed !== this.seed) {
      throw new TrainingError(`checkpoint ${file}: written with seed ${ck.meta.seed}, but the run's seed is ${this.seed}`);
    }
    restoreVariables(ck, 'model/', this.vars, file);
    restoreVariables(ck, 'state/', this.stateVars, file);
    for (const g of this.groups) {
      restoreVariables(ck, `${g.prefix}m/`, g.adam.m, file);
      restoreVariables(ck, `${g.prefix}v/`, g.adam.v, file);
      g.adam.t = g.def ? (ck.meta.groups?.[g.name]?.optimizerT ?? 0) : ck.meta.optimizerT;
    }
    Object.assign(this.meta, structuredClone(ck.meta));
    this.meta.epochCounts ??= {};
    this.bus.loadStates(ck.meta.callbacks);
    this.lastCheckpoint = file;
    this.resumedFrom = file;
    this.log(`resumed from ${path.relative(process.cwd(), file)} at step ${this.meta.step} (epoch ${this.meta.epoch + 1}, batch ${this.meta.batchInEpoch})`);
  }

  /**
   * Warns, once, about the variables that this stage freezes, that init did not load, and that
   * the objective's loss reads (a gradient reaches them on the first batch, in evaluation mode so
   * that no running statistic moves): they keep their random initial values, which is almost
   * always a stage that forgot init.include or train.trainable. Frozen variables the loss does not
   * read (the unused parts of a baseline stage) are not named.
   */
  private warnFrozenRandom(mb: ModelBatch): void {
    const keys = this.frozenRandom;
    this.frozenRandom = [];
    const { objective } = this.session.parts;
    const keyOf = new Map(keys.map((k) => [this.vars.get(k)!.name, k]));
    let read: string[] = [];
    tf.tidy(() => {
      try {
        const { grads } = tf.variableGrads(
          () => tf.mean(objective.terms(mb, { training: false, rng: Rng.derive(this.seed, 'frozen-check'), step: 0 }).loss) as tf.Scalar,
          keys.map((k) => this.vars.get(k)!),
        );
        read = Object.keys(grads).map((name) => keyOf.get(name)!);
      } catch (e) {
        // No path from these variables to the loss; any other failure the step itself reports.
        if (!/Cannot find a connection between any variable and the result of the loss function/.test(String((e as Error)?.message))) return;
      }
    });
    if (read.length === 0) return;
    this.log(
      `warning: train.trainable freezes ${read.length} variable${read.length === 1 ? '' : 's'} that the loss reads and init did not load, ` +
        `which keep their random initial values (${keptSummary(read)}); add them to train.trainable, or load them with init.from and init.include`,
    );
  }

  // ----- one step ----------------------------------------------------------------------------

  /**
   * tf.variableGrads of one group's loss, with its failures said in one line: a loss that reaches
   * none of the group's variables (say, train.trainable keeps only variables the objective does
   * not use) is bad input; anything else thrown by a plugin or tfjs is a failed step, named.
   */
  private gradsOf(g: OptimizerGroup, s: number, f: () => tf.Scalar): { value: tf.Scalar; grads: tf.NamedTensorMap } {
    try {
      return tf.variableGrads(f, g.list);
    } catch (e) {
      if (e instanceof VaelabError) throw e;
      const first = String((e as Error)?.message ?? e).split('\n')[0];
      const objective = `objective "${this.config.objective.use}"`;
      const what = g.def ? `the loss of parameter group "${g.name}" of ${objective}` : `the loss of ${objective}`;
      if (/Cannot find a connection between any variable and the result of the loss function/.test(first)) {
        const keys = [...g.keyOf.values()];
        const shown = keys.slice(0, 4).join(', ') + (keys.length > 4 ? `, ... (${keys.length} in all)` : '');
        const trainable = this.T.trainable.length > 0 ? `train.trainable = ${JSON.stringify(this.T.trainable)}` : 'train.trainable = [] (all)';
        throw new ConfigError(`${trainable}: ${what} reaches none of the variables it trains (${shown}); train variables the loss depends on`);
      }
      throw new TrainingError(`step ${s + 1}: ${what} failed: ${first}`, { cause: e });
    }
  }

  /** Gradients of one group's loss applied with its Adam (clipped per group). Returns the gradient norm [scalar]. */
  private update(g: OptimizerGroup, grads: tf.NamedTensorMap, lr: number): tf.Scalar {
    const byKey = new Map<string, tf.Tensor>();
    for (const [name, grad] of Object.entries(grads)) byKey.set(g.keyOf.get(name)!, grad);
    let norm: tf.Scalar;
    if (byKey.size === 0) {
      // The loss reached none of the group's variables: nothing moves, the step still counts.
      g.adam.t += 1;
      norm = tf.scalar(0);
    } else if (this.T.clipNorm > 0) {
      const clipped = clipByGlobalNorm(byKey, this.T.clipNorm);
      g.adam.apply(clipped.grads, lr);
      norm = clipped.norm;
      tf.dispose([...clipped.grads.values()]);
    } else {
      // Without clipping the norm is only reported: the native Adam pass sums the squares as it
      // goes (the same number clipByGlobalNorm gives); elsewhere clipByGlobalNorm computes it.
      const squares = g.adam.apply(byKey, lr, { sumSquares: true });
      norm = squares !== null ? tf.scalar(Math.sqrt(squares)) : clipByGlobalNorm(byKey, 0).norm;
    }
    tf.dispose([...byKey.values()]);
    return norm;
  }

  /**
   * One optimisation step s: the main group on mean(terms.loss), then every parameter group due
   * at s on its own loss. Each tf.variableGrads is given only its group's variables, so a
   * group's loss sends no gradient to other variables and frozen variables get none at all.
   * Returns the step's values, on the device and unread, with their names.
   */
  private step(mb: ModelBatch, s: number): { names: string[]; losses: number[]; values: tf.Tensor1D; lr: number } {
    const { objective } = this.session.parts;
    const lrOf = (g: OptimizerGroup) => learningRateAt(g.learningRate, this.T.schedule, s, this.perEpoch, this.totalSteps);
    const [main, ...others] = this.groups;
    const names: string[] = [];
    let stacked: tf.Tensor | null = null;
    const mainTerms = () => {
      const t = objective.terms(mb, { training: true, rng: Rng.derive(this.seed, 'step', s), step: s });
      // The terms are whatever this call returns: some exist only in training.
      const keys = ['loss', ...Object.keys(t).filter((k) => k !== 'loss')];
      names.push(...keys);
      stacked = tf.keep(tf.stack(keys.map((k) => tf.mean(t[k]))));
      return tf.mean(t.loss) as tf.Scalar;
    };
    const lr = lrOf(main);
    const parts: tf.Tensor[] = [];
    if (isDue(main, s)) {
      const { value, grads } = this.gradsOf(main, s, mainTerms);
      parts.push(stacked!, this.update(main, grads, lr));
      names.push('grad-norm');
      value.dispose();
    } else {
      // Not the main group's step (objective.mainUpdate): its terms are logged, nothing moves.
      tf.tidy(mainTerms).dispose();
      parts.push(stacked!);
    }
    const losses = [0];
    for (const g of others) {
      if (!isDue(g, s)) continue;
      const r = this.gradsOf(g, s, () => g.def!.loss(mb, { training: true, rng: Rng.derive(this.seed, `group/${g.name}`, s), step: s }));
      parts.push(r.value, this.update(g, r.grads, lrOf(g)));
      losses.push(names.length);
      names.push(`${g.name}-loss`, `${g.name}-grad-norm`);
    }
    const values = tf.tidy(() => tf.concat(parts.map((p) => tf.reshape(p, [-1]))) as tf.Tensor1D);
    tf.dispose(parts);
    return { names, losses, values, lr };
  }

  /**
   * Reads back the values of the steps still on the device: one host sync every train.syncEvery
   * steps (instead of one per step), before every checkpoint and at the end of each epoch. A
   * non-finite loss is still reported with its exact step. Emits onStepEnd for each step.
   */
  private flush(): void {
    if (this.pending.length === 0) return;
    const done = this.pending;
    this.pending = [];
    const all = done.length === 1 ? done[0].values : tf.concat(done.map((p) => p.values));
    const v = all.dataSync() as Float32Array;
    if (all !== done[0].values) all.dispose();
    tf.dispose(done.map((p) => p.values));
    const secs = (Date.now() - this.epochStartedAt) / 1000;
    const samplesPerSec = secs > 0 ? this.epochSamples / secs : 0;
    let offset = 0;
    for (const p of done) {
      const values = v.subarray(offset, offset + p.names.length);
      offset += p.names.length;
      for (const j of p.losses) if (!Number.isFinite(values[j])) this.nonFinite(p, j === 0 ? null : p.names[j].slice(0, -'-loss'.length), values[j]);
      const record: Record<string, number> = {};
      p.names.forEach((name, j) => {
        record[`train/${name}`] = values[j];
        if (isNorm(name)) return;
        this.meta.epochSums[name] = (this.meta.epochSums[name] ?? 0) + values[j] * p.size;
        this.meta.epochCounts![name] = (this.meta.epochCounts![name] ?? 0) + p.size;
      });
      this.meta.epochCount += p.size;
      this.bus.emit('onStepEnd', {
        step: p.step,
        epoch: p.epoch,
        epochs: this.T.epochs,
        batch: p.batch,
        batches: this.perEpoch,
        batchSize: this.T.batchSize,
        size: p.size,
        lr: p.lr,
        values: Object.freeze(record),
        samplesPerSec,
      });
    }
  }

  /** Stops the run at a non-finite loss of the main group (group null) or of a parameter group. */
  private nonFinite(p: PendingStep, group: string | null, value: number): never {
    this.progress.close();
    const where = this.lastCheckpoint ? path.relative(process.cwd(), this.lastCheckpoint) : 'none (no checkpoint written yet)';
    const what = group === null ? 'loss' : `the loss of parameter group "${group}"`;
    throw new TrainingError(
      `step ${p.step} (epoch ${p.epoch + 1}, batch ${p.batch + 1}): ${what} is ${value}; last good checkpoint: ${where}. Try a lower train.optimizer.learningRate or set train.clipNorm`,
    );
  }

  // ----- epochs ------------------------------------------------------------------------------

  /** Why the run ends before its next step, or null to go on. */
  private endBeforeStep(): TrainStatus | null {
    if (this.control.stop) return 'interrupted';
    const req = this.bus.stopRequest;
    if (req) return req.status;
    if (this.T.maxSteps > 0 && this.meta.step >= this.T.maxSteps) return 'max-steps';
    return null;
  }

  /** The steps of one epoch from meta.batchInEpoch on; returns a status when the run ends inside it. */
  private async runEpoch(epoch: number): Promise<TrainStatus | null> {
    const shape = this.session.dataset.shape;
    this.meta.epoch = epoch;
    this.bus.emit('onEpochStart', { epoch, epochs: this.T.epochs, batches: this.perEpoch, startBatch: this.meta.batchInEpoch });
    this.epochStartedAt = Date.now();
    this.epochSamples = 0;
    let next = this.meta.batchInEpoch < this.perEpoch ? this.batcher.batch(epoch, this.meta.batchInEpoch) : null;
    for (let bi = this.meta.batchInEpoch; bi < this.perEpoch; bi++) {
      // Let signal handlers (Ctrl-C) and timers run: the step itself never yields.
      await yieldToEventLoop();
      const end = this.endBeforeStep();
      if (end) {
        if (next) disposeBatch(next);
        this.flush();
        this.meta.trainSeconds += (Date.now() - this.epochStartedAt) / 1000;
        return end;
      }
      const b = next!;
      const mb = toModelBatch(b, this.config.data.condition as ConditionOptions, shape);
      const s = this.meta.step;
      if (this.frozenRandom.length > 0) this.warnFrozenRandom(mb);
      const { names, losses, values, lr } = this.step(mb, s);
      // The next batch is gathered while this step's values are still unread.
      next = bi + 1 < this.perEpoch ? this.batcher.batch(epoch, bi + 1) : null;
      disposeModelBatch(mb);
      disposeBatch(b);
      this.meta.step = s + 1;
      this.meta.batchInEpoch = bi + 1;
      this.epochSamples += b.size;
      this.pending.push({ step: s + 1, epoch, batch: bi, lr, size: b.size, names, losses, values });
      this.opts.onStep?.(this.meta.step);
      if (this.pending.length >= this.T.syncEvery || bi + 1 === this.perEpoch) this.flush();
    }
    return null;
  }

  /**
   * The end of an epoch: training means, evaluation when due (best checkpoint, early stopping),
   * the epoch's checkpoint, the epoch-end event. Returns 'early-stopped' when patience runs out.
   */
  private endEpoch(epoch: number): TrainStatus | null {
    this.beat();
    const seconds = (Date.now() - this.epochStartedAt) / 1000;
    this.meta.trainSeconds += seconds;
    const metrics: Record<string, number> = {};
    for (const [k, sum] of Object.entries(this.meta.epochSums)) metrics[`train/${k}`] = sum / Math.max(1, this.meta.epochCounts?.[k] ?? this.meta.epochCount);
    this.meta.epoch = epoch + 1;
    this.meta.batchInEpoch = 0;
    this.meta.epochSums = {};
    this.meta.epochCount = 0;
    this.meta.epochCounts = {};
    const last = epoch + 1 === this.T.epochs;
    let evaluated: 'validation' | 'test' | null = null;
    let improved = false;
    let stopEarly = false;
    if ((this.T.evalEvery > 0 && (epoch + 1) % this.T.evalEvery === 0) || last) {
      const r = this.evaluate(epoch);
      Object.assign(metrics, r.metrics);
      evaluated = this.evalSplit.name;
      improved = r.improved;
      stopEarly = r.stopEarly;
    }
    this.checkpoint('epoch', `epoch-${String(epoch + 1).padStart(4, '0')}.ckpt`);
    this.pruneCheckpoints();
    this.bus.emit('onEpochEnd', {
      epoch: epoch + 1,
      epochs: this.T.epochs,
      step: this.meta.step,
      seconds,
      samplesPerSec: seconds > 0 ? this.epochSamples / seconds : 0,
      metrics,
      evaluated,
      improved,
    });
    if (!stopEarly) return null;
    const es = this.T.earlyStopping;
    this.log(`early stopping: ${es.metric} has not improved for ${es.patience} evaluations (best ${fmt(this.meta.best.value!)} at epoch ${this.meta.best.epoch})`);
    return 'early-stopped';
  }

  private evalCtx(stream: string): EvalContext {
    return {
      info: this.session.dataset,
      seed: this.seed,
      condition: this.config.data.condition as ConditionOptions,
      stream,
      batchSize: this.config.eval.batchSize,
      step: this.meta.step,
    };
  }

  /**
   * The objective's terms on the evaluation split. On a validation split, the watched metric
   * chooses best.ckpt and drives early stopping; on the test split (no validation split) the
   * metrics are named test/... and select nothing.
   */
  private evaluate(epoch: number): { metrics: Record<string, number>; improved: boolean; stopEarly: boolean } {
    const { objective } = this.session.parts;
    const { split, name, prefix } = this.evalSplit;
    const ev = evaluateTerms(objective, split, this.evalCtx(`eval/val/${epoch}`));
    const metrics: Record<string, number> = {};
    for (const [k, v] of Object.entries(ev)) metrics[`${prefix}/${k}`] = v;
    this.lastEval = metrics;
    let improved = false;
    let stopEarly = false;
    const es = this.T.earlyStopping;
    const value = metrics[es.metric];
    if (name === 'validation' && value !== undefined) {
      const best = this.meta.best;
      improved = best.value === null || (es.mode === 'min' ? value < best.value - es.minDelta : value > best.value + es.minDelta);
      if (improved) {
        this.meta.best = { value, epoch: epoch + 1, evalsWithoutImprovement: 0 };
        this.checkpoint('best', 'best.ckpt');
      } else {
        best.evalsWithoutImprovement += 1;
        stopEarly = es.patience > 0 && best.evalsWithoutImprovement >= es.patience;
      }
    }
    this.bus.emit('onEvaluation', { step: this.meta.step, epoch: epoch + 1, split: name, metrics, improved });
    this.writeImages(`-epoch-${String(epoch + 1).padStart(3, '0')}`);
    return { metrics, improved, stopEarly };
  }

  // ----- checkpoints -------------------------------------------------------------------------

  /** Writes a checkpoint of everything a resume needs; emits onCheckpoint. */
  private checkpoint(reason: CheckpointMeta['reason'], file: string): string {
    const [main, ...others] = this.groups;
    this.meta.reason = reason;
    this.meta.optimizerT = main.adam.t;
    if (others.length > 0) this.meta.groups = Object.fromEntries(others.map((g) => [g.name, { optimizerT: g.adam.t }]));
    const callbacks = this.bus.states();
    if (Object.keys(callbacks).length > 0) this.meta.callbacks = callbacks;
    this.meta.createdAt = new Date().toISOString();
    const tensors = new Map<string, tf.Tensor>();
    for (const [k, v] of this.vars) tensors.set(`model/${k}`, v);
    for (const [k, v] of this.stateVars) tensors.set(`state/${k}`, v);
    for (const g of this.groups) {
      for (const [k, v] of g.adam.m) tensors.set(`${g.prefix}m/${k}`, v);
      for (const [k, v] of g.adam.v) tensors.set(`${g.prefix}v/${k}`, v);
    }
    const run = this.opts.run;
    const full = path.join(run.checkpoints, file);
    saveCheckpoint(full, this.meta, tensors);
    if (reason !== 'best') {
      run.setLatest(full);
      this.lastCheckpoint = full;
    }
    this.bus.emit('onCheckpoint', { file: full, reason, step: this.meta.step });
    return full;
  }

  private pruneCheckpoints(): void {
    const dir = this.opts.run.checkpoints;
    const epochs = fs
      .readdirSync(dir)
      .filter((f) => /^epoch-\d+\.ckpt$/.test(f))
      .sort();
    for (const f of epochs.slice(0, Math.max(0, epochs.length - this.T.keepCheckpoints))) fs.rmSync(path.join(dir, f));
  }

  private writeImages(tag: string): void {
    const { config, dataset, info, parts } = this.session;
    if (!config.eval.images || dataset.kind !== 'image') return;
    const seed = this.seed;
    const g = config.eval.gridSize;
    const pairs = Math.max(1, Math.floor(g / 2));
    const nRec = pairs * g;
    const evalB = new Batcher(dataset.test, dataset, { batchSize: Math.min(g, dataset.test.n), shuffle: false, seed, dynamicBinarize: false, dropLast: false });
    const rows: Float32Array[] = [];
    for (let r = 0; r < pairs && r < evalB.batchesPerEpoch(); r++) {
      const b = evalB.batch(0, r);
      const mb = toModelBatch(b, config.data.condition as ConditionOptions, dataset.shape);
      const rec = parts.model.reconstruct(mb, { training: false, rng: Rng.derive(seed, 'images', r) });
      rows.push(b.x.dataSync() as Float32Array, rec.dataSync() as Float32Array);
      rec.dispose();
      disposeModelBatch(mb);
      disposeBatch(b);
    }
    const recImgs = concatImages(rows);
    const images = this.opts.run.images;
    writeGrid(path.join(images, `reconstructions${tag}.png`), recImgs, Math.min(nRec * 2, recImgs.length / info.dim), info.shape, g);
    const nS = g * g;
    const samples = tf.tidy(() => {
      // one grid row per class (labels) or per given example (visible-quadrants)
      const c = generationCondition(nS, config.data.condition as ConditionOptions, dataset, dataset.test, g);
      return parts.model.generate(nS, c, { training: false, rng: Rng.derive(seed, 'sample-grid') });
    });
    writeGrid(path.join(images, `samples${tag}.png`), samples.dataSync() as Float32Array, nS, info.shape, g);
    samples.dispose();
    const cond = config.data.condition as ConditionOptions;
    const inter = interpolationGrid(parts.model, dataset.test, dataset, cond, g, g, seed);
    if (inter) writeGrid(path.join(images, `interpolations${tag}.png`), inter, g * g, info.shape, g);
    const done = completionGrid(parts.model, dataset.test, dataset, cond, g, g, seed);
    if (done) writeGrid(path.join(images, `completions${tag}.png`), done, done.length / info.dim, info.shape, g);
    const perLayer = layerSamplesGrid(parts.model, cond, g, seed);
    if (perLayer) writeGrid(path.join(images, `layer-samples${tag}.png`), perLayer, perLayer.length / info.dim, info.shape, g);
    if (config.eval.traversalRows > 0) {
      const layerTrav = layerTraversalGrid(parts.model, cond, g, seed, config.eval.traversalSpread);
      if (layerTrav) {
        writeGrid(path.join(images, `layer-traversals${tag}.png`), layerTrav.images, layerTrav.rows.length * g, info.shape, g);
        writeJsonAtomic(path.join(images, `layer-traversals${tag}.json`), { spread: config.eval.traversalSpread, rows: layerTrav.rows });
      }
      const t = latentTraversal(parts.model, dataset.test, {
        info: dataset,
        condition: config.data.condition as ConditionOptions,
        seed,
        rows: config.eval.traversalRows,
        cols: g,
        spread: config.eval.traversalSpread,
        examples: 1000,
        base: 0,
        batchSize: config.eval.batchSize,
      });
      if (t) {
        writeGrid(path.join(images, `traversals${tag}.png`), t.images, t.rows.length * t.cols, info.shape, t.cols);
        writeJsonAtomic(path.join(images, `traversals${tag}.json`), { order: t.order, rows: t.rows });
      }
    }
  }

  // ----- the end -----------------------------------------------------------------------------

  /** The summary's fields every ending shares. */
  private baseSummary(status: TrainStatus | 'failed'): Record<string, unknown> {
    const m = this.meta;
    return {
      experiment: this.config.name,
      runId: this.opts.run.id,
      status,
      backend: this.opts.backend,
      seed: this.seed,
      steps: m.step,
      epochsCompleted: m.epoch,
      trainSeconds: m.trainSeconds,
      wallSeconds: (Date.now() - this.startedWall) / 1000,
      secondsPerEpoch: m.epoch > 0 ? m.trainSeconds / Math.max(1, m.step / this.perEpoch) : null,
      samplesPerSecond: m.trainSeconds > 0 ? (m.step * this.T.batchSize) / m.trainSeconds : null,
      evaluationSplit: this.evalSplit.name,
      best: this.evalSplit.name === 'validation' ? m.best : null,
      lastEvaluation: this.lastEval,
    };
  }

  /**
   * A failed run still gets a summary (status 'failed', the error's first line, the checkpoint
   * to go on from), so the run index and sweeps see how it ended; `train --resume` continues it.
   */
  private writeFailure(e: unknown): void {
    try {
      const summary = this.baseSummary('failed');
      summary.error = e instanceof Error ? e.message.split('\n')[0] : String(e);
      summary.endedAt = new Date().toISOString();
      if (this.lastCheckpoint) summary.resume = `npx vaelab train --resume ${path.relative(process.cwd(), this.opts.run.dir)}`;
      this.opts.run.writeSummary(summary);
    } catch {
      // the run directory itself is gone or read-only: the error is rethrown anyway
    }
  }

  /** Final checkpoint, test evaluation (not for interrupted or pruned runs), summary, run-end event. */
  private finish(status: TrainStatus): TrainResult {
    this.progress.close();
    const run = this.opts.run;
    const m = this.meta;
    const summary = this.baseSummary(status);
    if (this.groups.length > 1) summary.parameterGroups = this.groups.slice(1).map((g) => g.name);
    const req = this.bus.stopRequest;
    if (req && (status === 'pruned' || status === 'stopped')) summary.stop = { ...req };
    const end = (): TrainResult => {
      summary.endedAt = new Date().toISOString();
      run.writeSummary(summary);
      this.bus.emit('onRunEnd', { status, steps: m.step, summary });
      for (const g of this.groups) g.adam.dispose();
      return { status, steps: m.step, epochs: m.epoch, summary };
    };
    if (status === 'interrupted') {
      const f = this.checkpoint('interrupt', 'interrupt.ckpt');
      this.log(`checkpoint written: ${path.relative(process.cwd(), f)}`);
      summary.resume = `npx vaelab train --resume ${path.relative(process.cwd(), run.dir)}`;
      return end();
    }
    if (m.batchInEpoch > 0) {
      // Mid-epoch end (train.maxSteps, a callback's stop): keep the weights the metrics describe.
      this.checkpoint('final', 'final.ckpt');
    }
    if (status === 'pruned') {
      this.log(`pruned at step ${m.step} by ${req!.by}: ${req!.reason}`);
      return end();
    }
    if (req && status === 'stopped') this.log(`stopped at step ${m.step} by ${req.by}: ${req.reason}`);
    const best = path.join(run.checkpoints, 'best.ckpt');
    if (this.T.earlyStopping.patience > 0 && m.best.epoch !== null && fs.existsSync(best)) {
      restoreModel(this.session, best);
      summary.testedCheckpoint = 'best.ckpt';
    }
    this.log('final evaluation on the test split');
    Object.assign(summary, finalEvaluation(this.session, this.evalCtx('eval/test'), this.log, undefined, undefined, run.file(PER_EXAMPLE_FILE.training)));
    this.bus.emit('onEvaluation', { step: m.step, epoch: null, split: 'test', metrics: summary.test as Record<string, number>, improved: false });
    this.writeImages('');
    return end();
  }

  // ----- the loop ----------------------------------------------------------------------------

  async run(): Promise<TrainResult> {
    let stopping = false;
    const onSigint = () => {
      if (stopping) {
        this.log('second interrupt: exiting without a checkpoint');
        process.exit(130);
      }
      stopping = true;
      this.control.stop = true;
      this.log('interrupt: finishing the current step, then writing a checkpoint (Ctrl-C again to exit at once)');
    };
    const signals = this.opts.handleSignals !== false;
    if (signals) process.on('SIGINT', onSigint);
    const owner = new RunOwner(this.opts.run.file(OWNER_FILE));
    this.beat = () => owner.beat();
    try {
      this.start();
      let status: TrainStatus = 'completed';
      for (let epoch = this.meta.epoch; epoch < this.T.epochs; epoch++) {
        const inside = await this.runEpoch(epoch);
        if (inside) {
          status = inside;
          break;
        }
        const after = this.endEpoch(epoch) ?? (epoch + 1 < this.T.epochs ? this.endBeforeStep() : null);
        if (after) {
          status = after;
          break;
        }
      }
      return this.finish(status);
    } catch (e) {
      this.progress.close();
      tf.dispose(this.pending.map((p) => p.values));
      this.pending = [];
      this.writeFailure(e);
      this.bus.emit('onFailure', e);
      for (const g of this.groups) g.adam.dispose();
      throw e;
    } finally {
      owner.release();
      if (signals) process.removeListener('SIGINT', onSigint);
    }
  }
}

/** Trains a session into a run directory. */
export async function train(session: Session, opts: TrainOptions): Promise<TrainResult> {
  return new Trainer(session, opts).run();
}

/** Which sample-quality metrics to compute and the setting that asked for them (for its errors). */
export interface SampleQualityRequest {
  key: string;
  samples: number;
}

/**
 * Test-split metrics: objective terms, importance-weighted log-likelihood, latent diagnostics, and
 * the sample-quality metrics (core/eval/sample-quality.ts) when `sampleQuality` asks for them
 * (undefined: when eval.sampleQuality does, with eval.sampleQualitySamples images).
 */
export function finalEvaluation(
  session: Session,
  ctx: EvalContext,
  log: (line: string) => void,
  k?: number,
  sampleQuality?: SampleQualityRequest | null,
  perExampleFile?: string,
): Record<string, unknown> {
  const { config, dataset, parts } = session;
  const test: Record<string, number> = {};
  for (const [key, v] of Object.entries(evaluateTerms(parts.objective, dataset.test, ctx))) test[`test/${key}`] = v;
  const out: Record<string, unknown> = { test };
  // both log-likelihood estimates run on the first eval.iwLimit test examples (0: all)
  const limit = config.eval.iwLimit > 0 ? Math.min(config.eval.iwLimit, dataset.test.n) : dataset.test.n;
  const head: DataSplit = { x: dataset.test.x.subarray(0, limit * dataset.dim), labels: dataset.test.labels.subarray(0, limit), n: limit };
  const estimate = (key: string, samples: number, fn: typeof iwLogLikelihood) => {
    const t0 = Date.now();
    const est = fn(parts.model, head, ctx, samples, config.eval.iwChunk);
    test[`test/${key}-log-likelihood`] = est.mean;
    // the standard error of the mean over examples (the spread of the data, not of the sampling)
    test[`test/${key}-log-likelihood-se`] = standardError(est.perExample);
    out[key] = { k: samples, examples: limit, of: dataset.test.n, seconds: (Date.now() - t0) / 1000 };
    if (key === 'iw' && perExampleFile) writePerExample(perExampleFile, { estimate: 'iw', k: samples, data: config.data.use, examples: limit }, est.perExample);
  };
  const iwK = k ?? config.eval.iwSamples;
  if (iwK > 0) estimate('iw', iwK, iwLogLikelihood);
  if (config.eval.priorSamples > 0) estimate('prior', config.eval.priorSamples, priorLogLikelihood);
  const stats = latentStats(parts.model, dataset.test, ctx, config.eval.activeUnitThreshold, config.eval.activeUnitSamples);
  if (stats) {
    test['test/active-units'] = stats.activeUnits;
    stats.layers?.forEach((layer, l) => (test[`test/active-units-layer${l + 1}`] = layer.activeUnits));
    out.latent = stats;
  }
  const sq = sampleQuality !== undefined ? sampleQuality : config.eval.sampleQuality ? { key: 'eval.sampleQuality', samples: config.eval.sampleQualitySamples } : null;
  if (sq) {
    const r = evaluateSampleQuality(parts.model, dataset.test, dataset, ctx, { data: config.data, seed: config.seed, samples: sq.samples, key: sq.key, log });
    for (const [kk, v] of Object.entries(r.metrics)) test[`test/${kk}`] = v;
    out.sampleQuality = r.details;
  }
  const parts2 = Object.entries(test).map(([kk, v]) => `${kk} ${fmt(v)}`);
  log(parts2.join(' | '));
  return out;
}
