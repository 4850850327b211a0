/**
 * Benchmark: one training step of a small conv VAE (the shape of plugins/conv at MNIST size) on
 * the wasm backend with vaelab's kernels, broken down by kernel. Finds kernels that are missing
 * or slow on wasm. Prints figures; never fails on speed.
 *
 *   npx ts-node --transpile-only bench/conv-vae-step.ts [--batch 128] [--steps 5] [--cpu]
 *
 * Model: 28x28x1 -> conv 32 k4 s2 -> conv 64 k4 s2 (relu, 'same') -> dense 16+16 (loc, logVar)
 * -> z -> dense 7*7*64 (relu) -> conv2dTranspose 32 -> conv2dTranspose 1 -> Bernoulli logits.
 * Loss: -ELBO with the closed-form Gaussian KL; Adam. `--cpu` also times the cpu backend.
 */
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's CommonJS build registers no gradients; the union package registers them.
import '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-cpu';
import { selectBackend } from '../core/backend/select';
import { Rng } from '../core/rng';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const BATCH = arg('--batch', 128);
const STEPS = Math.max(3, arg('--steps', 5));
const LATENT = 16;

interface Model {
  vars: tf.Variable[];
  loss: (x: tf.Tensor4D, eps: tf.Tensor2D) => tf.Scalar;
}

function makeModel(rng: Rng): Model {
  const v = (shape: number[], fanIn: number) => tf.variable(tf.mul(rng.uniformTensor(shape, -1, 1), 1 / Math.sqrt(fanIn)));
  const c1 = v([4, 4, 1, 32], 16);
  const c1b = tf.variable(tf.zeros([32]));
  const c2 = v([4, 4, 32, 64], 512);
  const c2b = tf.variable(tf.zeros([64]));
  const head = v([3136, 2 * LATENT], 3136);
  const headB = tf.variable(tf.zeros([2 * LATENT]));
  const dec = v([LATENT, 3136], LATENT);
  const decB = tf.variable(tf.zeros([3136]));
  const d1 = v([4, 4, 32, 64], 1024); // conv2dTranspose filter: [k, k, outC, inC]
  const d1b = tf.variable(tf.zeros([32]));
  const d2 = v([4, 4, 1, 32], 512);
  const d2b = tf.variable(tf.zeros([1]));
  const vars = [c1, c1b, c2, c2b, head, headB, dec, decB, d1, d1b, d2, d2b];

  const loss = (x: tf.Tensor4D, eps: tf.Tensor2D): tf.Scalar => {
    const n = x.shape[0];
    const h1 = tf.relu(tf.add(tf.conv2d(x, c1 as tf.Tensor4D, 2, 'same'), c1b));
    const h2 = tf.relu(tf.add(tf.conv2d(h1 as tf.Tensor4D, c2 as tf.Tensor4D, 2, 'same'), c2b));
    const stats = tf.add(tf.matMul(tf.reshape(h2, [n, 3136]), head), headB);
    const [loc, logVar] = tf.split(stats, 2, 1);
    const z = tf.add(loc, tf.mul(tf.exp(tf.mul(logVar, 0.5)), eps));
    const g0 = tf.reshape(tf.relu(tf.add(tf.matMul(z, dec), decB)), [n, 7, 7, 64]) as tf.Tensor4D;
    const g1 = tf.relu(tf.add(tf.conv2dTranspose(g0, d1 as tf.Tensor4D, [n, 14, 14, 32], 2, 'same'), d1b));
    const logits = tf.add(tf.conv2dTranspose(g1 as tf.Tensor4D, d2 as tf.Tensor4D, [n, 28, 28, 1], 2, 'same'), d2b);
    // -log Bernoulli = softplus(l) - x*l, with softplus(l) = relu(l) + log1p(exp(-|l|)) for stability.
    const softplus = tf.add(tf.relu(logits), tf.log1p(tf.exp(tf.neg(tf.abs(logits)))));
    const recon = tf.sum(tf.sub(softplus, tf.mul(x, logits)), [1, 2, 3]);
    // KL(N(loc, e^logVar) || N(0, 1)) = 0.5 * sum(loc^2 + e^logVar - logVar - 1)
    const kl = tf.mul(0.5, tf.sum(tf.sub(tf.sub(tf.add(tf.square(loc), tf.exp(logVar)), logVar), 1), 1));
    return tf.mean(tf.add(recon, kl)) as tf.Scalar;
  };
  return { vars, loss };
}

async function profileStep(backend: string): Promise<void> {
  if (backend === 'wasm') await selectBackend('wasm');
  else await selectBackend('cpu');
  const rng = Rng.derive(0, 'bench', 1);
  const model = makeModel(rng);
  const opt = tf.train.adam(1e-3);
  const x = tf.tidy(() => tf.cast(tf.greater(rng.uniformTensor([BATCH, 28, 28, 1]), 0.8), 'float32')) as tf.Tensor4D;
  const eps = rng.normalTensor([BATCH, LATENT]) as tf.Tensor2D;
  const step = () => {
    const cost = opt.minimize(() => model.loss(x, eps), true, model.vars);
    cost?.dataSync();
    cost?.dispose();
  };

  step(); // warm-up: first calls run un-optimised wasm code and create Adam's slots
  const times: number[] = [];
  for (let i = 0; i < STEPS; i++) {
    const t0 = performance.now();
    step();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  console.log(`\n${backend}: batch ${BATCH}, median step ${times[Math.floor(times.length / 2)].toFixed(1)} ms over ${STEPS} steps`);

  const profile = await tf.profile(step);
  const byKernel = new Map<string, { ms: number; calls: number; elems: number }>();
  for (const k of profile.kernels) {
    const e = byKernel.get(k.name) ?? { ms: 0, calls: 0, elems: 0 };
    e.ms += Number(k.kernelTimeMs);
    e.calls += 1;
    e.elems += k.outputShapes.reduce((s, shape) => s + (shape ?? []).reduce((p, d) => p * d, 1), 0);
    byKernel.set(k.name, e);
  }
  const total = [...byKernel.values()].reduce((s, e) => s + e.ms, 0);
  console.log(`${'kernel'.padEnd(22)} ${'ms'.padStart(8)} ${'share'.padStart(6)} ${'calls'.padStart(6)} ${'ns/out elem'.padStart(12)}`);
  for (const [name, e] of [...byKernel].sort((a, b) => b[1].ms - a[1].ms)) {
    const share = ((100 * e.ms) / total).toFixed(1) + '%';
    const nsPerElem = e.elems > 0 ? ((1e6 * e.ms) / e.elems).toFixed(2) : '-';
    console.log(`${name.padEnd(22)} ${e.ms.toFixed(2).padStart(8)} ${share.padStart(6)} ${String(e.calls).padStart(6)} ${nsPerElem.padStart(12)}`);
  }
  tf.dispose([x, eps, ...model.vars]);
  opt.dispose();
}

async function main(): Promise<void> {
  await profileStep('wasm');
  if (process.argv.includes('--cpu')) await profileStep('cpu');
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
