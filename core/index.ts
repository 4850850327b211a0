/**
 * The public API of vaelab's core, for plugins and tools. Plugins import from here only.
 */
import 'reflect-metadata';

export * from './contracts';
export * from './errors';
export * from './plugin';
export * from './rng';
export * from './nn';
export * from './math';
// Fused kernels a plugin can use (null where the backend has none: compose the tfjs ops then).
export { fusedBatchNorm } from './fused';
export { VaeModel, addLatentTerms, disposeLatentSample, type ForwardPass, type KlEstimator, type KlKind } from './model';

// Running experiments from code, and listening to a run (progress, tracking, sweeps).
export { experimentFromObject, loadExperiment, type Experiment, type ExperimentConfig } from './config/experiment';
export { openSession, type Session } from './session';
export { train, type TrainOptions, type TrainResult } from './train/trainer';
export type {
  CheckpointEvent,
  EpochEndEvent,
  EpochStartEvent,
  EvaluationEvent,
  RunControl,
  RunEndEvent,
  RunStartEvent,
  StepEndEvent,
  StopRequest,
  StopStatus,
  TrainStatus,
  TrainerCallback,
} from './train/events';
export { RunDir } from './tracking/run-dir';

// Data-dependent initialisation (Trainable.initFromData): the training split as a plugin sees it.
export { trainingExamples } from './data/examples';

// The KL-weight schedule and capacity target shared by objectives that weight a KL.
export { KL_SCHEDULES, capacityAt, klScheduleProblems, klScheduleSchema, weightAt, type KlScheduleConfig } from './kl-schedule';
