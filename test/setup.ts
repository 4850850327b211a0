/**
 * Mocha setup: tests run on the pure-JS cpu backend unless a test selects another one itself
 * (the wasm kernel tests do, and restore cpu afterwards).
 *
 * W&B is off for the whole suite (WANDB_MODE=disabled), so that a developer's WANDB_API_KEY
 * never makes a test log to the real W&B; the W&B tests turn it on against their local
 * stand-in by setting WANDB_MODE themselves (to online, in the environment they give it).
 */
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';

process.env.WANDB_MODE = 'disabled';

export const mochaHooks = {
  async beforeAll(): Promise<void> {
    await tf.setBackend('cpu');
    await tf.ready();
  },
};
