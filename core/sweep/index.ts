/**
 * Hyperparameter sweeps: sweep files, samplers (grid, random, TPE), pruners (median stopping,
 * ASHA), local execution in worker processes, results. See core/sweep/README.md.
 */
export { loadSweepSpec, TPE_DEFAULTS, type AshaRule, type EarlyTermination, type MedianRule, type SweepSpec, type TpeOptions } from './spec';
export { GridSampler, RandomSampler, TpeSampler, makeSampler, splitTrials, type Observation, type Sampler } from './samplers';
export { ParzenEstimator, gamma, observationWeights } from './parzen';
export { decide, median, rungEpochs, type PruneDecision, type TrialReports } from './pruners';
export { runSweep, type SweepOptions, type SweepResult } from './runner';
export { rankTrials, writeResults, type ResultRow } from './results';
export { readState, type SweepState, type TrialRecord, type TrialStatus } from './state';
export { registerSweepCommands } from './cli';
