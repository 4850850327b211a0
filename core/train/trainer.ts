/**
 * The training loop: Adam on the objective's mean loss, with learning-rate schedules, gradient
 * clipping, evaluation every N epochs, early stopping, atomic checkpoints every epoch (and on
 * Ctrl-C), exact resumption, a stop with a clear error on a non-finite loss, progress output,
 * metrics lines and image grids.
 *
 * Reproducibility: every random draw of step s comes from Rng.derive(seed, 'step', s), data order
 * of epoch e from the batcher's (seed, e) stream, evaluations from (seed, 'eval', ...). So a run
 * resumed from any checkpoint continues with exactly the numbers an uninterrupted run would have.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { objectiveTermNames } from '../check';
import type { Objective } from '../contracts';
import { Batcher } from '../data/batcher';
import type { DataSplit } from '../data/types';
import { TrainingError } from '../errors';
import { disposeBatch, evaluateTerms, iwLogLikelihood, latentStats, toModelBatch, type EvalContext } from '../eval/evaluate';
import { Rng } from '../rng';
import type { Session } from '../session';
import { writeGrid } from '../tracking/images';
import { makeReporter, type ProgressReporter } from '../tracking/progress';
import type { RunDir } from '../tracking/run-dir';
import { Adam, clipByGlobalNorm } from './adam';
import { loadCheckpoint, restoreVariables, saveCheckpoint, type CheckpointMeta, type LoadedCheckpoint } from './checkpoint';
import { learningRateAt } from './schedule';

/** How a training run ended. */
export type TrainStatus = 'completed' | 'early-stopped' | 'max-steps' | 'interrupted';

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
  /** Set `stop` to true to end the run after the current step with a checkpoint (Ctrl-C does this). */
  control?: { stop: boolean };
  /** Handle SIGINT (default true). */
  handleSignals?: boolean;
  /** Called after every optimisation step with the number of steps done (for tests and tools). */
  onStep?: (step: number) => void;
}

/** Every trainable variable of the session: the model's and the objective's own. */
export function trainableVariables(model: { variables(): Map<string, tf.Variable> }, objective: Objective): Map<string, tf.Variable> {
  const vars = new Map(model.variables());
  const seen = new Set(vars.values());
  for (const [k, v] of objective.variables()) if (!seen.has(v)) vars.set(`objective/${k}`, v);
  return vars;
}

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

const fmt = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(2) : v.toFixed(4));

/** Trains a session into a run directory. */
export async function train(session: Session, opts: TrainOptions): Promise<TrainResult> {
  const { config, dataset, info, parts } = session;
  const { model, objective } = parts;
  const T = config.train;
  const seed = config.seed;
  const run = opts.run;
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const control = opts.control ?? { stop: false };
  const reporter: ProgressReporter = makeReporter(T.progress, T.logEvery, log);
  const cond = config.data.conditionOnLabels;

  const vars = trainableVariables(model, objective);
  const adam = new Adam(vars, T.optimizer);
  const varList = [...vars.values()];
  const keyOfVar = new Map<string, string>();
  for (const [k, v] of vars) keyOfVar.set(v.name, k);

  const batcher = new Batcher(dataset.train, dataset, {
    batchSize: T.batchSize,
    shuffle: true,
    seed,
    dynamicBinarize: config.data.binarize === 'dynamic',
    dropLast: T.dropLast,
  });
  const perEpoch = batcher.batchesPerEpoch();
  const totalSteps = T.maxSteps > 0 ? Math.min(T.epochs * perEpoch, T.maxSteps) : T.epochs * perEpoch;
  const valSplit: DataSplit = dataset.validation ?? dataset.test;
  const valSplitName = dataset.validation ? 'validation' : 'test';
  const termNames = objectiveTermNames(objective, info, seed);
  const metric = T.earlyStopping.metric;

  const state: CheckpointMeta = {
    version: 1,
    step: 0,
    epoch: 0,
    batchInEpoch: 0,
    optimizerT: 0,
    best: { value: null, epoch: null, evalsWithoutImprovement: 0 },
    epochSums: {},
    epochCount: 0,
    trainSeconds: 0,
    seed,
    reason: 'epoch',
    createdAt: '',
  };
  let lastCheckpoint: string | undefined;
  if (opts.resumeFrom) {
    const ck: LoadedCheckpoint = loadCheckpoint(opts.resumeFrom);
    if (ck.meta.seed !== seed) {
      throw new TrainingError(`checkpoint ${opts.resumeFrom}: written with seed ${ck.meta.seed}, but the run's seed is ${seed}`);
    }
    restoreVariables(ck, 'model/', vars, opts.resumeFrom);
    restoreVariables(ck, 'adam/m/', adam.m, opts.resumeFrom);
    restoreVariables(ck, 'adam/v/', adam.v, opts.resumeFrom);
    Object.assign(state, structuredClone(ck.meta));
    adam.t = ck.meta.optimizerT;
    lastCheckpoint = opts.resumeFrom;
    log(`resumed from ${path.relative(process.cwd(), opts.resumeFrom)} at step ${state.step} (epoch ${state.epoch + 1}, batch ${state.batchInEpoch})`);
  }

  const writeCheckpoint = (reason: CheckpointMeta['reason'], file: string): string => {
    state.reason = reason;
    state.optimizerT = adam.t;
    state.createdAt = new Date().toISOString();
    const tensors = new Map<string, tf.Tensor>();
    for (const [k, v] of vars) tensors.set(`model/${k}`, v);
    for (const [k, v] of adam.m) tensors.set(`adam/m/${k}`, v);
    for (const [k, v] of adam.v) tensors.set(`adam/v/${k}`, v);
    const full = path.join(run.checkpoints, file);
    saveCheckpoint(full, state, tensors);
    if (reason !== 'best') {
      run.setLatest(full);
      lastCheckpoint = full;
    }
    return full;
  };

  const pruneCheckpoints = () => {
    const epochs = fs
      .readdirSync(run.checkpoints)
      .filter((f) => /^epoch-\d+\.ckpt$/.test(f))
      .sort();
    for (const f of epochs.slice(0, Math.max(0, epochs.length - T.keepCheckpoints))) fs.rmSync(path.join(run.checkpoints, f));
  };

  const evalCtx = (stream: string): EvalContext => ({
    info: dataset,
    seed,
    conditionOnLabels: cond,
    stream,
    batchSize: config.eval.batchSize,
    step: state.step,
  });

  const writeImages = (tag: string) => {
    if (!config.eval.images || dataset.kind !== 'image') return;
    const g = config.eval.gridSize;
    const pairs = Math.max(1, Math.floor(g / 2));
    const nRec = pairs * g;
    const evalB = new Batcher(dataset.test, dataset, { batchSize: Math.min(g, dataset.test.n), shuffle: false, seed, dynamicBinarize: false, dropLast: false });
    const rows: Float32Array[] = [];
    for (let r = 0; r < pairs && r < evalB.batchesPerEpoch(); r++) {
      const b = evalB.batch(0, r);
      const rec = model.reconstruct(toModelBatch(b, cond), { training: false, rng: Rng.derive(seed, 'images', r) });
      rows.push(b.x.dataSync() as Float32Array, rec.dataSync() as Float32Array);
      rec.dispose();
      disposeBatch(b);
    }
    const recImgs = new Float32Array(rows.reduce((s, r) => s + r.length, 0));
    let o = 0;
    for (const r of rows) {
      recImgs.set(r, o);
      o += r.length;
    }
    writeGrid(path.join(run.images, `reconstructions${tag}.png`), recImgs, Math.min(nRec * 2, recImgs.length / info.dim), info.shape, g);
    const nS = g * g;
    const samples = tf.tidy(() => {
      const c = info.condDim > 0 ? (tf.cast(tf.oneHot(tf.tensor1d(Array.from({ length: nS }, (_, i) => i % info.condDim), 'int32'), info.condDim), 'float32') as tf.Tensor2D) : null;
      return model.generate(nS, c, { training: false, rng: Rng.derive(seed, 'sample-grid') });
    });
    writeGrid(path.join(run.images, `samples${tag}.png`), samples.dataSync() as Float32Array, nS, info.shape, g);
    samples.dispose();
  };

  /**
   * One optimisation step. Returns, on the device and unread, the batch means of the terms
   * (termNames order) followed by the gradient norm: [termNames.length + 1].
   */
  const step = (mb: ReturnType<typeof toModelBatch>, lr: number, rng: Rng): tf.Tensor1D => {
    let stacked: tf.Tensor | null = null;
    const { value, grads } = tf.variableGrads(() => {
      const t = objective.terms(mb, { training: true, rng, step: state.step });
      stacked = tf.keep(tf.stack(termNames.map((k) => tf.mean(t[k]))));
      return tf.mean(t.loss) as tf.Scalar;
    }, varList);
    const byKey = new Map<string, tf.Tensor>();
    for (const [name, g] of Object.entries(grads)) byKey.set(keyOfVar.get(name)!, g);
    let norm: tf.Scalar;
    let applied = byKey;
    if (T.clipNorm > 0) {
      const clipped = clipByGlobalNorm(byKey, T.clipNorm);
      norm = clipped.norm;
      applied = clipped.grads;
      adam.apply(applied, lr);
    } else {
      // Without clipping the norm is only reported: the native Adam pass sums the squares as it
      // goes (the same number clipByGlobalNorm gives); elsewhere clipByGlobalNorm computes it.
      const squares = adam.apply(byKey, lr, { sumSquares: true });
      norm = squares !== null ? tf.scalar(Math.sqrt(squares)) : clipByGlobalNorm(byKey, 0).norm;
    }
    tf.dispose([...byKey.values()]);
    const out = tf.tidy(() => tf.concat([stacked!, tf.reshape(norm, [1])]) as tf.Tensor1D);
    tf.dispose([value, stacked!, norm, ...applied.values()]);
    return out;
  };

  /**
   * Steps whose values are still on the device. They are read back together every
   * train.syncEvery steps (one host sync instead of one per step), before every checkpoint and
   * at the end of each epoch; a non-finite loss is still reported with its exact step.
   */
  const pending: Array<{ step: number; epoch: number; batch: number; lr: number; size: number; values: tf.Tensor1D }> = [];
  let lastLoss = NaN;
  const flush = () => {
    if (pending.length === 0) return;
    const width = termNames.length + 1;
    const all = pending.length === 1 ? pending[0].values : tf.concat(pending.map((p) => p.values));
    const v = all.dataSync() as Float32Array;
    if (all !== pending[0].values) all.dispose();
    const done = pending.splice(0, pending.length);
    tf.dispose(done.map((p) => p.values));
    done.forEach((p, i) => {
      const values = v.subarray(i * width, (i + 1) * width);
      if (!Number.isFinite(values[0])) {
        reporter.endEpoch();
        const where = lastCheckpoint ? path.relative(process.cwd(), lastCheckpoint) : 'none (no checkpoint written yet)';
        throw new TrainingError(
          `step ${p.step} (epoch ${p.epoch + 1}, batch ${p.batch + 1}): loss is ${values[0]}; last good checkpoint: ${where}. Try a lower train.optimizer.learningRate or set train.clipNorm`,
        );
      }
      termNames.forEach((k, j) => (state.epochSums[k] = (state.epochSums[k] ?? 0) + values[j] * p.size));
      state.epochCount += p.size;
      lastLoss = values[0];
      if (p.step % T.logEvery === 0) {
        const rec: Record<string, unknown> = { kind: 'step', step: p.step, epoch: p.epoch + 1, lr: p.lr };
        termNames.forEach((k, j) => (rec[`train/${k}`] = values[j]));
        rec['train/grad-norm'] = values[termNames.length];
        run.appendMetrics(rec);
      }
    });
  };

  let status: TrainStatus = 'completed';
  let stopping = false;
  const onSigint = () => {
    if (stopping) {
      log('second interrupt: exiting without a checkpoint');
      process.exit(130);
    }
    stopping = true;
    control.stop = true;
    log('interrupt: finishing the current step, then writing a checkpoint (Ctrl-C again to exit at once)');
  };
  if (opts.handleSignals !== false) process.on('SIGINT', onSigint);

  const startedWall = Date.now();
  let lastEval: Record<string, number> = {};
  try {
    outer: for (let epoch = state.epoch; epoch < T.epochs; epoch++) {
      state.epoch = epoch;
      reporter.startEpoch(epoch, T.epochs, perEpoch, state.batchInEpoch);
      const epochStart = Date.now();
      let epochSamples = 0;
      let next = state.batchInEpoch < perEpoch ? batcher.batch(epoch, state.batchInEpoch) : null;
      for (let bi = state.batchInEpoch; bi < perEpoch; bi++) {
        // Let signal handlers (Ctrl-C) and timers run: the step itself never yields.
        await yieldToEventLoop();
        if (control.stop || (T.maxSteps > 0 && state.step >= T.maxSteps)) {
          if (next) disposeBatch(next);
          flush();
          state.trainSeconds += (Date.now() - epochStart) / 1000;
          if (control.stop) {
            reporter.endEpoch();
            const f = writeCheckpoint('interrupt', 'interrupt.ckpt');
            status = 'interrupted';
            log(`checkpoint written: ${path.relative(process.cwd(), f)}`);
          } else {
            status = 'max-steps';
          }
          break outer;
        }
        const b = next!;
        const lr = learningRateAt(T.optimizer.learningRate, T.schedule, state.step, perEpoch, totalSteps);
        const values = step(toModelBatch(b, cond), lr, Rng.derive(seed, 'step', state.step));
        // The next batch is gathered while this step's values are still unread.
        next = bi + 1 < perEpoch ? batcher.batch(epoch, bi + 1) : null;
        disposeBatch(b);
        state.step += 1;
        state.batchInEpoch = bi + 1;
        epochSamples += b.size;
        pending.push({ step: state.step, epoch, batch: bi, lr, size: b.size, values });
        opts.onStep?.(state.step);
        if (pending.length >= T.syncEvery || bi + 1 === perEpoch) {
          flush();
          const secs = (Date.now() - epochStart) / 1000;
          reporter.tick({
            epoch,
            epochs: T.epochs,
            batch: bi + 1,
            batches: perEpoch,
            step: state.step,
            batchSize: T.batchSize,
            samplesPerSec: secs > 0 ? epochSamples / secs : 0,
            loss: lastLoss,
          });
        }
      }
      reporter.endEpoch();
      const seconds = (Date.now() - epochStart) / 1000;
      state.trainSeconds += seconds;
      const trainMeans: Record<string, number> = {};
      for (const k of termNames) trainMeans[`train/${k}`] = state.epochSums[k] / Math.max(1, state.epochCount);
      state.epoch = epoch + 1;
      state.batchInEpoch = 0;
      state.epochSums = {};
      state.epochCount = 0;
      const last = epoch + 1 === T.epochs;
      let line = `epoch ${epoch + 1}/${T.epochs}: train loss ${fmt(trainMeans['train/loss'])}`;
      const rec: Record<string, unknown> = { kind: 'epoch', epoch: epoch + 1, step: state.step, seconds, samplesPerSec: epochSamples / seconds, ...trainMeans };
      let stopEarly = false;
      if ((T.evalEvery > 0 && (epoch + 1) % T.evalEvery === 0) || last) {
        const ev = evaluateTerms(objective, valSplit, evalCtx(`eval/val/${epoch}`));
        lastEval = {};
        for (const [k, v] of Object.entries(ev)) lastEval[`val/${k}`] = v;
        Object.assign(rec, lastEval, { valSplit: valSplitName });
        line += ` | val loss ${fmt(lastEval['val/loss'])}`;
        const value = lastEval[metric];
        if (value !== undefined) {
          const better =
            state.best.value === null ||
            (T.earlyStopping.mode === 'min' ? value < state.best.value - T.earlyStopping.minDelta : value > state.best.value + T.earlyStopping.minDelta);
          if (better) {
            state.best = { value, epoch: epoch + 1, evalsWithoutImprovement: 0 };
            line += ' (best)';
            writeCheckpoint('best', 'best.ckpt');
          } else {
            state.best.evalsWithoutImprovement += 1;
            if (T.earlyStopping.patience > 0 && state.best.evalsWithoutImprovement >= T.earlyStopping.patience) stopEarly = true;
          }
        }
        writeImages(`-epoch-${String(epoch + 1).padStart(3, '0')}`);
      }
      line += ` | ${seconds.toFixed(1)} s`;
      run.appendMetrics(rec);
      writeCheckpoint('epoch', `epoch-${String(epoch + 1).padStart(4, '0')}.ckpt`);
      pruneCheckpoints();
      reporter.log(line);
      if (stopEarly) {
        status = 'early-stopped';
        reporter.log(`early stopping: ${metric} has not improved for ${T.earlyStopping.patience} evaluations (best ${fmt(state.best.value!)} at epoch ${state.best.epoch})`);
        break;
      }
    }
  } finally {
    reporter.stop();
    if (opts.handleSignals !== false) process.removeListener('SIGINT', onSigint);
  }

  const summary: Record<string, unknown> = {
    experiment: config.name,
    runId: run.id,
    status,
    backend: opts.backend,
    seed,
    steps: state.step,
    epochsCompleted: state.epoch,
    trainSeconds: state.trainSeconds,
    wallSeconds: (Date.now() - startedWall) / 1000,
    secondsPerEpoch: state.epoch > 0 ? state.trainSeconds / Math.max(1, state.step / perEpoch) : null,
    samplesPerSecond: state.trainSeconds > 0 ? (state.step * T.batchSize) / state.trainSeconds : null,
    best: state.best,
    lastValidation: lastEval,
    validationSplit: valSplitName,
  };
  if (status === 'interrupted') {
    summary.resume = `npx vaelab train --resume ${path.relative(process.cwd(), run.dir)}`;
    run.writeSummary(summary);
    adam.dispose();
    return { status, steps: state.step, epochs: state.epoch, summary };
  }
  if (status === 'max-steps' && state.batchInEpoch > 0) {
    // Mid-epoch end: keep the weights that the test metrics below describe.
    writeCheckpoint('final', 'final.ckpt');
  }
  if (T.earlyStopping.patience > 0 && state.best.epoch !== null && fs.existsSync(path.join(run.checkpoints, 'best.ckpt'))) {
    restoreVariables(loadCheckpoint(path.join(run.checkpoints, 'best.ckpt')), 'model/', vars, 'best.ckpt');
    summary.testedCheckpoint = 'best.ckpt';
  }
  reporter.log('final evaluation on the test split');
  Object.assign(summary, finalEvaluation(session, evalCtx('eval/test'), log));
  writeImages('');
  run.appendMetrics({ kind: 'test', step: state.step, ...(summary.test as Record<string, unknown>) });
  run.writeSummary(summary);
  adam.dispose();
  return { status, steps: state.step, epochs: state.epoch, summary };
}

/** Test-split metrics: objective terms, importance-weighted log-likelihood, latent diagnostics. */
export function finalEvaluation(session: Session, ctx: EvalContext, log: (line: string) => void, k?: number): Record<string, unknown> {
  const { config, dataset, parts } = session;
  const test: Record<string, number> = {};
  for (const [key, v] of Object.entries(evaluateTerms(parts.objective, dataset.test, ctx))) test[`test/${key}`] = v;
  const out: Record<string, unknown> = { test };
  const iwK = k ?? config.eval.iwSamples;
  if (iwK > 0) {
    const limit = config.eval.iwLimit > 0 ? Math.min(config.eval.iwLimit, dataset.test.n) : dataset.test.n;
    const split: DataSplit = {
      x: dataset.test.x.subarray(0, limit * dataset.dim),
      labels: dataset.test.labels.subarray(0, limit),
      n: limit,
    };
    const t0 = Date.now();
    const iw = iwLogLikelihood(parts.model, split, ctx, iwK, config.eval.iwChunk);
    test['test/iw-log-likelihood'] = iw.mean;
    out.iw = { k: iwK, examples: limit, seconds: (Date.now() - t0) / 1000 };
  }
  const stats = latentStats(parts.model, dataset.test, ctx, config.eval.activeUnitThreshold);
  if (stats) {
    test['test/active-units'] = stats.activeUnits;
    out.latent = stats;
  }
  const parts2 = Object.entries(test).map(([kk, v]) => `${kk} ${fmt(v)}`);
  log(parts2.join(' | '));
  return out;
}
