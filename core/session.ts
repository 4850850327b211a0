/**
 * Everything between a validated experiment and a training loop: the data set, what the model
 * knows of it, the resolved parts and a dry run of their shapes.
 */
import type { Experiment, ExperimentConfig } from './config/experiment';
import { checkShapes } from './check';
import { resolveParts, type Parts } from './container';
import type { DataInfo } from './contracts';
import { loadDataset } from './data';
import type { Dataset } from './data/types';
import { ConfigError } from './errors';

/** A ready-to-train experiment. */
export interface Session {
  experiment: Experiment;
  config: ExperimentConfig;
  dataset: Dataset;
  info: DataInfo;
  parts: Parts;
}

/** Data info as the model sees it; condDim comes from data.conditionOnLabels. */
export function dataInfoOf(ds: Dataset, config: ExperimentConfig): DataInfo {
  if (config.data.conditionOnLabels && ds.numClasses === 0) {
    throw new ConfigError(`data.conditionOnLabels: data set "${ds.name}" has no labels to condition on; set it to false`);
  }
  return {
    name: ds.name,
    shape: ds.shape,
    dim: ds.dim,
    numClasses: ds.numClasses,
    condDim: config.data.conditionOnLabels ? ds.numClasses : 0,
  };
}

/** Loads the data, builds the parts and checks their shapes. Errors name the experiment file. */
export function openSession(experiment: Experiment): Session {
  const { config, file } = experiment;
  try {
    const dataset = loadDataset({ ...config.data, synthetic: { ...config.data.synthetic } }, config.seed);
    const info = dataInfoOf(dataset, config);
    const parts = resolveParts(experiment, info);
    checkShapes(parts.model, parts.objective, info, config);
    return { experiment, config, dataset, info, parts };
  } catch (e) {
    if (e instanceof ConfigError && file !== '<inline>' && !e.message.startsWith(file)) {
      throw new ConfigError(e.problems, file);
    }
    throw e;
  }
}
