/**
 * Per-kernel profile of one training step of an experiment (the bench's iwae and vamp rows, or any
 * experiment file), adapted from native/bench-step.ts --profile: the session is built as `vaelab
 * train` builds it, a step is what the trainer does (tf.variableGrads of the mean loss, the Adam
 * update of core/train/adam.ts, which uses the native pack's fused step when it is loaded, and
 * reading the loss back), on a fixed grey-level batch. Prints the median step time over `--steps`
 * steps, then per kernel the least time over 5 profiled steps (tf.profile; a busy machine only
 * ever adds time). Prints figures; never fails on speed.
 *
 *   taskset -c 0 npx ts-node --transpile-only bench/profile-step.ts --experiment FILE [--set k=v ...] [--steps 30]
 *   e.g. --experiment experiments/iwae-mnist.yaml --set objective.iwae.samples=50
 *        --experiment bench/vamp-gated-mnist.yaml
 */
import 'reflect-metadata';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../core/backend/select';
import { PluginRegistry } from '../core/plugin';
import { Rng } from '../core/rng';
import { openSession } from '../core/session';
import { Adam, clipByGlobalNorm } from '../core/train/adam';
import { trainableVariables } from '../core/train/trainer';
import { plugins } from '../plugins';
import { benchExperiment } from './experiment';
import { greyBatch } from '../testing';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

async function main(): Promise<void> {
  tf.env().set('PROD', true);
  let backendLine = '';
  await selectBackend(process.argv.includes('--backend') ? arg('--backend', 'wasm') : undefined, { log: (l) => (backendLine = l) });
  const sets: string[] = [];
  process.argv.forEach((a, i) => {
    if (a === '--set' && i + 1 < process.argv.length) sets.push(process.argv[i + 1]);
  });
  const file = arg('--experiment', 'experiments/iwae-mnist.yaml');
  const steps = Number(arg('--steps', '30'));
  const session = openSession(benchExperiment(file, new PluginRegistry(plugins), ['data.trainLimit=1000', 'data.testLimit=100', 'data.validationSize=0', ...sets]));
  const { model, objective } = session.parts;
  const cfg = session.config.train;
  const vars = trainableVariables(model, objective);
  const varList = [...vars.values()];
  const keyOf = new Map([...vars.entries()].map(([k, v]) => [v.name, k]));
  const opt = cfg.optimizer as { learningRate: number; beta1: number; beta2: number; epsilon: number };
  const adam = new Adam(vars, { beta1: opt.beta1, beta2: opt.beta2, epsilon: opt.epsilon, weightDecay: 0 });
  // a training batch as the Batcher makes it: with data.labelledBatchSize, the labelled rows
  // appended (M2); labels whenever the data set has classes (an objective may need them)
  const mb = greyBatch(cfg.batchSize + (session.info.labelledBatch ?? 0), session.info, 1, session.info.numClasses > 0);
  let n = 0;
  const step = (): number => {
    const rng = Rng.derive(0, 'profile-step', n++);
    const { value, grads } = tf.variableGrads(() => tf.mean(objective.terms(mb, { training: true, rng, step: n }).loss) as tf.Scalar, varList);
    const byKey = new Map<string, tf.Tensor>();
    for (const [name, g] of Object.entries(grads)) byKey.set(keyOf.get(name)!, g);
    const clipped = clipByGlobalNorm(byKey, 0);
    adam.apply(clipped.grads, opt.learningRate);
    const loss = value.dataSync()[0];
    tf.dispose([value, clipped.norm, ...byKey.values(), ...clipped.grads.values()]);
    return loss;
  };
  const t0 = performance.now();
  for (let i = 0; i < 10 || performance.now() - t0 < 2000; i++) step();
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    const s = performance.now();
    step();
    times.push(performance.now() - s);
  }
  times.sort((a, b) => a - b);
  const best = new Map<string, { ms: number; calls: number }>();
  for (let r = 0; r < 5; r++) {
    const p = await tf.profile(() => {
      step();
    });
    const byKernel = new Map<string, { ms: number; calls: number }>();
    for (const k of p.kernels) {
      const e = byKernel.get(k.name) ?? { ms: 0, calls: 0 };
      e.ms += Number(k.kernelTimeMs);
      e.calls += 1;
      byKernel.set(k.name, e);
    }
    for (const [name, e] of byKernel) {
      const b = best.get(name);
      if (b === undefined || e.ms < b.ms) best.set(name, e);
    }
  }
  const rows = [...best].map(([name, e]) => ({ name, ...e })).sort((a, b) => b.ms - a.ms);
  const total = rows.reduce((s, r) => s + r.ms, 0);
  console.log(`${session.config.name} ${sets.join(' ')}: batch ${cfg.batchSize}; ${backendLine}`);
  console.log(`step: median ${times[Math.floor(times.length / 2)].toFixed(1)} ms, min ${times[0].toFixed(1)} ms over ${steps} steps; ${total.toFixed(1)} ms in kernels (the rest: tfjs engine, tape, JS)`);
  console.log('| kernel | calls | ms | share of kernel time |');
  console.log('|---|---:|---:|---:|');
  for (const r of rows.filter((x) => x.ms >= 0.05)) console.log(`| ${r.name} | ${r.calls} | ${r.ms.toFixed(2)} | ${((100 * r.ms) / total).toFixed(1)}% |`);
}

main().catch((e) => {
  process.stderr.write(`${e && (e as Error).stack ? (e as Error).stack : String(e)}\n`);
  process.exitCode = 1;
});
