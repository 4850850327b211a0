/**
 * Same seed, same loss curve on every backend path: a small MLP VAE and a small conv VAE (28x28
 * inputs, so that every conv form of the real models runs) are trained for a few Adam steps with
 * gradient clipping from the same initial weights, batches and noise on cpu (pure JS, the
 * reference), on wasm with vaelab's project kernels only, and on wasm with the native pack (when
 * built). Every step's loss and the final weights must agree within float32 tolerance: the paths
 * differ only in summation order and in the native pack's own exp/log1p (a few ulps).
 */
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { installNativeKernels, nativeStatus, uninstallNativeKernels } from '../../core/backend/native';
import { selectBackend } from '../../core/backend/select';
import { Rng } from '../../core/rng';
import { Adam, clipByGlobalNorm } from '../../core/train/adam';
import { trainableVariables } from '../../core/train/trainer';
import { skipBecause } from '../data/helpers';
import { MNIST_INFO, buildParts, greyBatch } from '../kits/build';

const MODELS: Record<string, Record<string, unknown>> = {
  mlp: {
    encoder: { use: 'mlp', mlp: { hiddenSizes: [48], activation: 'relu' } },
    latent: { use: 'gaussian', gaussian: { dim: 6 } },
    decoder: { use: 'mlp', mlp: { hiddenSizes: [48], activation: 'relu' } },
  },
  conv: {
    encoder: { use: 'conv', conv: { channels: [4, 8], kernelSize: 4, activation: 'relu' } },
    latent: { use: 'gaussian', gaussian: { dim: 4 } },
    decoder: { use: 'conv', conv: { channels: [8, 4], kernelSize: 4, activation: 'relu' } },
  },
};

const STEPS = 12;
const BATCH = 16;

/** Losses of STEPS Adam steps (lr 1e-2, clipNorm 5) from seed 0, and the final weights. */
function curve(model: string): { losses: number[]; weights: Float32Array[] } {
  const parts = buildParts({ seed: 0, ...MODELS[model] }, MNIST_INFO);
  const vars = trainableVariables(parts.model, parts.objective);
  const list = [...vars.values()];
  const keyOf = new Map([...vars.entries()].map(([k, v]) => [v.name, k]));
  const adam = new Adam(vars, { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 });
  const losses: number[] = [];
  for (let step = 0; step < STEPS; step++) {
    const batch = greyBatch(BATCH, MNIST_INFO, 100 + step);
    const { value, grads } = tf.variableGrads(
      () => tf.mean(parts.objective.terms(batch, { training: true, rng: Rng.derive(0, 'curve', step), step }).loss) as tf.Scalar,
      list,
    );
    const byKey = new Map<string, tf.Tensor>();
    for (const [name, g] of Object.entries(grads)) byKey.set(keyOf.get(name)!, g);
    const clipped = clipByGlobalNorm(byKey, 5);
    adam.apply(clipped.grads, 1e-2);
    losses.push(value.dataSync()[0]);
    tf.dispose([value, clipped.norm, ...byKey.values(), ...clipped.grads.values(), batch.x]);
  }
  const weights = [...vars.keys()].sort().map((k) => vars.get(k)!.dataSync() as Float32Array);
  adam.dispose();
  for (const v of vars.values()) v.dispose();
  return { losses, weights };
}

function expectSameCurve(actual: ReturnType<typeof curve>, expected: ReturnType<typeof curve>, what: string): void {
  // The paths differ by ~2e-7 relative in the loss and ~6e-5 in a weight (measured); Adam moves a
  // weight by up to lr = 1e-2 per step, so a wrong gradient sign shows in the weights.
  actual.losses.forEach((l, i) => expect(l, `${what}: loss at step ${i + 1}`).to.be.closeTo(expected.losses[i], 2e-5 * Math.abs(expected.losses[i])));
  expect(actual.losses[STEPS - 1], `${what}: the loss must go down`).to.be.below(actual.losses[0]);
  actual.weights.forEach((w, i) => {
    let diff = 0;
    for (let j = 0; j < w.length; j++) diff = Math.max(diff, Math.abs(w[j] - expected.weights[i][j]));
    expect(diff, `${what}: weights ${i}, max abs difference`).to.be.below(5e-4);
  });
}

describe('Same seed, same loss curve on every backend path', function () {
  this.timeout(120000);

  after(async () => {
    await tf.setBackend('cpu');
  });

  for (const model of Object.keys(MODELS)) {
    describe(`${model} VAE`, () => {
      let reference: ReturnType<typeof curve>;
      before(async () => {
        await selectBackend('cpu', { quiet: true });
        reference = curve(model);
      });

      it('Should give the same losses and weights on wasm with the project kernels as on cpu', async () => {
        await selectBackend('wasm', { quiet: true });
        uninstallNativeKernels();
        try {
          expectSameCurve(curve(model), reference, `${model} on wasm (project kernels)`);
        } finally {
          installNativeKernels();
        }
      });

      it('Should give the same losses and weights on wasm with the native pack as on cpu', async function () {
        if (!nativeStatus().available) skipBecause(this, `native pack unavailable: ${nativeStatus().reason}`);
        await selectBackend('wasm', { quiet: true });
        expectSameCurve(curve(model), reference, `${model} on wasm + native pack`);
      });
    });
  }
});
