/**
 * vaelab/testing: the public conformance kit for plugins, and the helpers a plugin's own tests
 * need (building parts from an inline experiment, seeded batches, gradients over a plugin's own
 * variables, a short training run, an assertion of an exact error). No test runner is required:
 * checks throw node:assert's AssertionError. See testing/README.md.
 */
import 'reflect-metadata';

export {
  conformanceChecks,
  type ConformanceCase,
  type ConformanceCheck,
  type ConformanceOptions,
  type SamplingMethod,
} from './conformance';
export { describeConformance, type DescribeConformanceOptions, type TestApi } from './describe';
export { expectThrowExact } from './expect-throw';
export {
  DEFAULT_EXPERIMENT,
  MNIST_INFO,
  TINY_IMAGE_INFO,
  buildParts,
  disposeBatch,
  disposeParts,
  experimentObject,
  experimentOf,
  gradientsOf,
  greyBatch,
  lossGrads,
  meanLoss,
  pluginGrads,
  registryOf,
  sliceBatch,
  slotOf,
  syntheticData,
  trainSteps,
  trainableVariables,
  type Parts,
  type PluginSet,
  type TrainSettings,
} from './build';
