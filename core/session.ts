/**
 * Everything between a validated experiment and a training loop: the data set, what the model
 * knows of it, the resolved parts and a dry run of their shapes.
 */
import type { Experiment, ExperimentConfig } from './config/experiment';
import { checkShapes, objectiveTermNames } from './check';
import { disposeParts, resolveParts, type Parts } from './container';
import type { DataInfo } from './contracts';
import { loadDataset } from './data';
import { conditionDim, visibleMask, type ConditionOptions } from './data/condition';
import type { Dataset } from './data/types';
import { ConfigError, DataError, unknownValueMessage } from './errors';
import { Rng } from './rng';

/** A ready-to-train experiment. */
export interface Session {
  experiment: Experiment;
  config: ExperimentConfig;
  dataset: Dataset;
  info: DataInfo;
  parts: Parts;
}

/**
 * Rows of the training batches the trainer's Batcher makes from n examples: every batch has
 * min(batchSize, n) rows except the last of an epoch, which has n mod batchSize unless that is 0
 * or dropLast drops it; plus `labelled` appended labelled rows each (data.labelledBatchSize).
 */
export function trainBatchOf(n: number, batchSize: number, dropLast: boolean, labelled = 0): { size: number; last: number } {
  const size = Math.min(batchSize, n);
  const rest = n % batchSize;
  return { size: size + labelled, last: (n < batchSize || dropLast || rest === 0 ? size : rest) + labelled };
}

/** Data info as the model sees it; condDim comes from data.condition. */
export function dataInfoOf(ds: Dataset, config: ExperimentConfig): DataInfo {
  const condition = config.data.condition as ConditionOptions;
  let labelled = 0;
  for (const l of ds.train.labels) if (l >= 0) labelled++;
  const L = config.data.labelledBatchSize;
  const info: DataInfo = {
    name: ds.name,
    shape: ds.shape,
    dim: ds.dim,
    numClasses: ds.numClasses,
    condDim: conditionDim(condition, ds),
    trainSize: ds.train.n,
    labelledTrainSize: ds.numClasses > 0 ? labelled : 0,
    trainBatch: trainBatchOf(ds.train.n - (L > 0 ? labelled : 0), config.train.batchSize, config.train.dropLast, L),
    labelledBatch: L,
  };
  if (condition.use === 'visible-quadrants') info.targetMask = visibleMask(ds.shape, condition.visibleQuadrants).map((v) => 1 - v);
  return info;
}

/**
 * With dynamic binarisation, training batches get a fresh Bernoulli draw each epoch, while the
 * validation and test splits are binarised once, with a fixed stream, so every evaluation (and
 * every run with the same seed) scores the same binary images.
 */
export function binarizeEvaluationSplits(ds: Dataset, seed: number): void {
  const splits: Array<[string, Dataset['test'] | null]> = [
    ['validation', ds.validation],
    ['test', ds.test],
  ];
  for (const [name, split] of splits) {
    if (!split) continue;
    const rng = Rng.derive(seed, 'binarize-eval', name === 'test' ? 1 : 0);
    const x = new Float32Array(split.x.length);
    for (let i = 0; i < x.length; i++) x[i] = rng.uniform() < split.x[i] ? 1 : 0;
    split.x = x;
  }
}

/** Loads the data, builds the parts and checks their shapes. Errors name the experiment file. */
export function openSession(experiment: Experiment): Session {
  const { config, file } = experiment;
  try {
    const dataset = loadDataset({ ...config.data, synthetic: { ...config.data.synthetic } }, config.seed);
    if (config.data.binarize === 'dynamic') binarizeEvaluationSplits(dataset, config.seed);
    const info = dataInfoOf(dataset, config);
    const parts = resolveParts(experiment, info);
    checkShapes(parts.model, parts.objective, info, config, experiment.registry);
    const es = config.train.earlyStopping;
    if (es.patience > 0) {
      const allowed = objectiveTermNames(parts.objective, info, config.seed).map((k) => `val/${k}`);
      if (!allowed.includes(es.metric)) throw new ConfigError(unknownValueMessage('train.earlyStopping.metric', 'metric', es.metric, allowed));
    }
    return { experiment, config, dataset, info, parts };
  } catch (e) {
    // Data and config problems found here are bad input too: name the experiment file.
    const where = file !== '<inline>' ? file : undefined;
    if (e instanceof DataError) throw new ConfigError(e.message, where);
    if (e instanceof ConfigError && where && !e.message.startsWith(where)) throw new ConfigError(e.problems, where);
    throw e;
  }
}

/** Frees the weights and state of a session's model and objective (after a check, a finished stage). */
export function closeSession(session: Session): void {
  disposeParts(session.parts);
}
