/**
 * Learning-rate schedules (train.schedule.*). A schedule is a pure function of the step, so a
 * resumed run needs no extra state to continue it.
 */

/** Schedule settings as validated by the core schema. */
export interface ScheduleOptions {
  use: 'none' | 'step' | 'exponential' | 'cosine';
  warmupSteps: number;
  stepSize: number;
  gamma: number;
  minLearningRate: number;
}

/**
 * The learning rate at `step` (0-based) of a run of `totalSteps`, with `stepsPerEpoch` steps an epoch.
 * Warm-up multiplies by (step + 1) / warmupSteps during the first warmupSteps steps.
 */
export function learningRateAt(
  base: number,
  s: ScheduleOptions,
  step: number,
  stepsPerEpoch: number,
  totalSteps: number,
): number {
  let lr = base;
  switch (s.use) {
    case 'none':
      break;
    case 'step':
      lr = base * s.gamma ** Math.floor(step / s.stepSize);
      break;
    case 'exponential':
      lr = base * s.gamma ** Math.floor(step / Math.max(1, stepsPerEpoch));
      break;
    case 'cosine': {
      const t = Math.min(1, step / Math.max(1, totalSteps));
      lr = s.minLearningRate + 0.5 * (base - s.minLearningRate) * (1 + Math.cos(Math.PI * t));
      break;
    }
  }
  if (s.warmupSteps > 0 && step < s.warmupSteps) lr *= (step + 1) / s.warmupSteps;
  return lr;
}
