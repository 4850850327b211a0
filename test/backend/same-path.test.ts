/**
 * What is bit-exact: the same path, on the same machine, with the same seed, gives the same numbers
 * bit for bit. Two different paths (cpu, wasm with vaelab's project kernels, wasm with the native
 * pack) do not: they sum in different orders, the pack uses its own exp/log1p and flushes
 * denormals to zero while WebAssembly keeps them, so they agree only within float32 tolerance
 * (test/backend/curves.test.ts) and drift apart over a long run (bench/README.md, "Native pack
 * against pure wasm over 10 epochs"). test/train.test.ts checks the trainer's reproduction on cpu;
 * this file checks it on each wasm path, with Adam's fused native step and gradient norm where the
 * pack runs them.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { experimentFromObject } from '../../core/config/experiment';
import { installNativeKernels, nativeStatus, uninstallNativeKernels } from '../../core/backend/native';
import { selectBackend } from '../../core/backend/select';
import { Rng } from '../../core/rng';
import { openSession } from '../../core/session';
import { Adam, clipByGlobalNorm } from '../../core/train/adam';
import { train, trainableVariables } from '../../core/train/trainer';
import { RunDir } from '../../core/tracking/run-dir';
import { skipBecause } from '../data/helpers';
import { MNIST_INFO, buildParts, builtins, experimentObject, greyBatch } from '../kits/build';

const STEPS = 40;

/** Every loss (as float32 bits) of STEPS Adam steps of a small MLP VAE from seed 0, then every weight and Adam moment. */
function losses(): { losses: number[]; tensors: Float32Array[] } {
  const parts = buildParts(
    {
      seed: 0,
      encoder: { use: 'mlp', mlp: { hiddenSizes: [64], activation: 'relu' } },
      latent: { use: 'gaussian', gaussian: { dim: 8 } },
      decoder: { use: 'mlp', mlp: { hiddenSizes: [64], activation: 'relu' } },
    },
    MNIST_INFO,
  );
  const vars = trainableVariables(parts.model, parts.objective);
  const list = [...vars.values()];
  const keyOf = new Map([...vars.entries()].map(([k, v]) => [v.name, k]));
  const adam = new Adam(vars, { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 });
  const out: number[] = [];
  for (let step = 0; step < STEPS; step++) {
    const batch = greyBatch(32, MNIST_INFO, 100 + step);
    const { value, grads } = tf.variableGrads(
      () => tf.mean(parts.objective.terms(batch, { training: true, rng: Rng.derive(0, 'same-path', step), step }).loss) as tf.Scalar,
      list,
    );
    const byKey = new Map<string, tf.Tensor>();
    for (const [name, g] of Object.entries(grads)) byKey.set(keyOf.get(name)!, g);
    // Clipping on odd steps, so that both the norm pass and the fused squares of Adam run.
    const clipped = clipByGlobalNorm(byKey, step % 2 === 1 ? 5 : 0);
    adam.apply(clipped.grads, 3e-3, { sumSquares: step % 2 === 0 });
    out.push(value.dataSync()[0]);
    tf.dispose([value, clipped.norm, ...byKey.values(), ...clipped.grads.values(), batch.x]);
  }
  const keys = [...vars.keys()].sort();
  const tensors = [...keys.map((k) => vars.get(k)!), ...keys.map((k) => adam.m.get(k)!), ...keys.map((k) => adam.v.get(k)!)].map(
    (t) => t.dataSync() as Float32Array,
  );
  adam.dispose();
  for (const v of vars.values()) v.dispose();
  return { losses: out, tensors };
}

/** Asserts two results equal bit for bit (losses and every element of every tensor). */
function expectIdentical(a: ReturnType<typeof losses>, b: ReturnType<typeof losses>, what: string): void {
  expect(b.losses, `${what}: losses`).to.deep.equal(a.losses);
  expect(b.tensors.length).to.equal(a.tensors.length);
  a.tensors.forEach((t, i) => {
    const same = Buffer.from(t.buffer, t.byteOffset, t.byteLength).equals(Buffer.from(b.tensors[i].buffer, b.tensors[i].byteOffset, b.tensors[i].byteLength));
    expect(same, `${what}: tensor ${i} (weights, then Adam's m, then v) bit for bit`).to.equal(true);
  });
}

describe('Same path, same seed: the same numbers bit for bit @slow', function () {
  this.timeout(120000);

  after(async () => {
    await tf.setBackend('cpu');
  });

  it('Should repeat every loss, weight and Adam moment on wasm with the project kernels', async () => {
    await selectBackend('wasm', { quiet: true });
    uninstallNativeKernels();
    try {
      expectIdentical(losses(), losses(), 'wasm (project kernels)');
    } finally {
      installNativeKernels();
    }
  });

  it('Should repeat every loss, weight and Adam moment on wasm with the native pack', async function () {
    if (!nativeStatus().available) skipBecause(this, `native pack unavailable: ${nativeStatus().reason}`);
    await selectBackend('wasm', { quiet: true });
    const first = losses();
    expectIdentical(first, losses(), 'wasm + native pack');
  });

  it('Should train to the same step records and weights twice with the trainer on wasm (the native pack where it is built)', async () => {
    const raw = experimentObject({
      name: 'same-path',
      seed: 4,
      data: { use: 'synthetic', synthetic: { kind: 'shapes', size: 256 } },
      encoder: { use: 'mlp', mlp: { hiddenSizes: [32] } },
      decoder: { use: 'mlp', mlp: { hiddenSizes: [32] } },
      latent: { use: 'gaussian', gaussian: { dim: 4 } },
      train: { epochs: 3, batchSize: 32, logEvery: 1, progress: 'none', optimizer: { learningRate: 3e-3 } },
      eval: { iwSamples: 10, iwChunk: 5, batchSize: 64, gridSize: 4 },
    });
    // On the path the title names, whatever backend an earlier test left selected.
    await selectBackend('wasm', { quiet: true });
    expect(tf.getBackend()).to.equal('wasm');
    const once = async () => {
      const session = openSession(experimentFromObject(raw, builtins()));
      const run = RunDir.create(fs.mkdtempSync(path.join(os.tmpdir(), 'vaelab-same-path-')), session.config.name, session.config.seed);
      run.writeConfig(session.config);
      await train(session, { run, backend: 'wasm', log: () => {}, handleSignals: false });
      const weights = [...trainableVariables(session.parts.model, session.parts.objective)].map(([k, v]) => [k, Array.from(v.dataSync())]);
      const steps = run.readMetrics().filter((r) => r.kind === 'step').map(({ time: _t, ...r }) => r);
      return { weights, steps };
    };
    const [a, b] = [await once(), await once()];
    expect(a.steps.length).to.equal(24); // 3 epochs of 256 / 32 = 8 steps, logged every step
    expect(b.steps).to.deep.equal(a.steps);
    expect(b.weights).to.deep.equal(a.weights);
  });
});
