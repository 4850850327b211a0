/**
 * Gradients for TensorFlow.js kernels.
 *
 * tfjs-core's CommonJS build registers no gradients; importing the `@tensorflow/tfjs` union
 * package registers tfjs's own (the registry is process-wide, shared by every copy of
 * tfjs-core). On top of those, `installGradients` replaces the gradients of `Sum` and `Mean`:
 * tfjs builds them as dy * ones(x.shape) with `ones` allocated as a JavaScript Float32Array and
 * uploaded to the backend on every call (a [128, 784] reconstruction term: 400 kB of garbage
 * per step, and on wasm the collector's pauses then land inside later kernels). The
 * replacements compute the same values with a `Fill` kernel on the backend: the same
 * operations in the same order (dy * 1, then / n for the mean), so the same bits.
 *
 * It replaces Tile's gradient too (one Sum over a reshaped dy instead of a Slice and an Add per
 * repetition). It also registers the gradients of vaelab's fused kernels (core/fused.ts), and a `Relu`
 * gradient that uses one of them where the backend has it (core/fused.ts reluGrad).
 *
 * Importing this module installs them; `installGradients` is idempotent.
 */
import * as tf from '@tensorflow/tfjs-core';
import { backend_util, util } from '@tensorflow/tfjs-core';
import type { GradConfig, NamedAttrMap } from '@tensorflow/tfjs-core';
import { batchNormGrad, bernoulliLogProbGrad, biasReluGrad, denseGrad, klStdNormalGrad, leakyReluGrad, reluGrad, reparamGrad, reparamLogProbGrad } from './fused';

let installed = false;

/** dy reshaped to x's shape with the reduced axes kept as 1, times ones of x's shape made on the backend. */
function broadcastDy(dy: tf.Tensor, x: tf.Tensor, attrs: NamedAttrMap): { spread: tf.Tensor; reduceSize: number } {
  const axes = util.parseAxisParam(attrs.axis as number | number[], x.shape);
  const expanded = x.shape.slice();
  for (const axis of axes) expanded[axis] = 1;
  const [, reduceShape] = backend_util.computeOutAndReduceShapes(x.shape, axes);
  const spread = tf.mul(tf.reshape(dy, expanded), tf.fill(x.shape, 1, 'float32'));
  return { spread, reduceSize: util.sizeFromShape(reduceShape) };
}

const sumGrad: GradConfig = {
  kernelName: 'Sum',
  inputsToSave: ['x'],
  gradFunc: (dy, saved, attrs) => {
    const [x] = saved;
    const { spread } = broadcastDy(dy as tf.Tensor, x, attrs);
    return { x: () => spread };
  },
};

const meanGrad: GradConfig = {
  kernelName: 'Mean',
  inputsToSave: ['x'],
  gradFunc: (dy, saved, attrs) => {
    const [x] = saved;
    return {
      x: () => {
        const { spread, reduceSize } = broadcastDy(dy as tf.Tensor, x, attrs);
        return tf.div(spread, reduceSize);
      },
    };
  },
};

/**
 * The gradient of Tile: tfjs's sums the dy blocks one slice at a time (a Slice and an Add per
 * repetition: ~200 small kernels per IWAE step with k = 50). Here dy [r0*d0, ..., rn*dn] is viewed
 * as [r0, d0, ..., rn, dn] (a reshape, no copy) and summed over the r axes in one Sum.
 */
const tileGrad: GradConfig = {
  kernelName: 'Tile',
  inputsToSave: ['x'],
  gradFunc: (dy, saved, attrs) => {
    const [x] = saved;
    const reps = attrs.reps as number[];
    return {
      x: () => {
        const inter = x.shape.flatMap((d, i) => [reps[i], d]);
        const axes = x.shape.map((_, i) => 2 * i).filter((a) => inter[a] > 1);
        const blocks = tf.reshape(dy as tf.Tensor, inter);
        return tf.reshape(axes.length > 0 ? tf.sum(blocks, axes) : blocks, x.shape);
      },
    };
  },
};

/**
 * Registers tfjs's gradients (once), the replacements above and the gradients of vaelab's fused
 * kernels (core/fused.ts). Returns the kernel names it registered.
 */
export function installGradients(): string[] {
  const names = [
    sumGrad.kernelName, meanGrad.kernelName, reluGrad.kernelName, bernoulliLogProbGrad.kernelName, biasReluGrad.kernelName, klStdNormalGrad.kernelName,
    reparamGrad.kernelName, reparamLogProbGrad.kernelName, denseGrad.kernelName, tileGrad.kernelName, batchNormGrad.kernelName, leakyReluGrad.kernelName,
  ];
  if (installed) return names;
  // Registers every gradient of tfjs; must come first, or it would overwrite ours.
  require('@tensorflow/tfjs');
  tf.registerGradient(sumGrad);
  tf.registerGradient(meanGrad);
  tf.registerGradient(reluGrad);
  tf.registerGradient(bernoulliLogProbGrad);
  tf.registerGradient(biasReluGrad);
  tf.registerGradient(klStdNormalGrad);
  tf.registerGradient(reparamGrad);
  tf.registerGradient(reparamLogProbGrad);
  tf.registerGradient(denseGrad);
  tf.registerGradient(tileGrad);
  tf.registerGradient(batchNormGrad);
  tf.registerGradient(leakyReluGrad);
  installed = true;
  return names;
}

installGradients();
