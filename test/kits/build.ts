/**
 * Test helpers of vaelab's own tests. The general ones (building parts from an inline
 * experiment, seeded batches, gradients) are the public kit's, re-exported from testing/ so
 * that our tests and a third party's use the same code; `builtins` is for tests that validate
 * experiments themselves.
 */
import { PluginRegistry } from '../../core/plugin';
import { plugins } from '../../plugins';

export { MNIST_INFO, TINY_IMAGE_INFO, buildParts, experimentObject, greyBatch, lossGrads } from '../../testing';

/** The built-in registry. */
export const builtins = () => new PluginRegistry(plugins);
