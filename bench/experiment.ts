/**
 * The experiment a bench run trains, shared by bench/train-child.ts and bench/profile-step.ts.
 */
import { applyOverrides, experimentFromObject, readExperimentFile, type Experiment } from '../core/config/experiment';
import { hasStages, planStages } from '../core/config/stages';
import type { PluginRegistry } from '../core/plugin';

/**
 * The file with the overrides applied; for a staged file, its first stage (the base with that
 * stage's keys), which is where `vaelab train` starts. The overrides are applied after the
 * stage's keys, so that the bench's own (steps, epochs) win over the stage's.
 */
export function benchExperiment(file: string, registry: PluginRegistry, sets: readonly string[]): Experiment {
  let raw = readExperimentFile(file);
  if (hasStages(raw)) raw = planStages(raw, registry, file).stages[0].raw;
  return experimentFromObject(applyOverrides(raw, sets), registry, file);
}
