/**
 * Mocha setup: tests run on the pure-JS cpu backend unless a test selects another one itself
 * (the wasm kernel tests do, and restore cpu afterwards).
 */
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';

export const mochaHooks = {
  async beforeAll(): Promise<void> {
    await tf.setBackend('cpu');
    await tf.ready();
  },
};
