/**
 * A check that the ELBO with k samples (objective.elbo.samples) estimates the same gradient as
 * with one sample, on an experiment's model at its initial weights and one fixed batch: the mean
 * gradient over R1 single-sample draws against the mean over Rk k-sample draws, element by element,
 * as z = (mean_1 - mean_k) / sqrt(se_1^2 + se_k^2). With no bias, z is standard normal: the mean
 * of z^2 over a variable's elements is about 1 and the largest |z| grows like sqrt(2 ln n). Prints
 * a line per variable. A diagnostic, not a test (it takes minutes).
 *
 *   taskset -c 0 npx ts-node --transpile-only bench/elbo-samples-check.ts [--experiment FILE] [--k 50] [--reps1 2000] [--repsk 40]
 */
import 'reflect-metadata';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../core/backend/select';
import { PluginRegistry } from '../core/plugin';
import { Rng } from '../core/rng';
import { openSession } from '../core/session';
import { trainableVariables } from '../core/train/trainer';
import { plugins } from '../plugins';
import { benchExperiment } from './experiment';
import { greyBatch } from '../testing';
const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
};
const FILE = arg('--experiment', 'experiments/baselines/burda-two-layer-vae-k5.yaml');
const K = Number(arg('--k', '50'));
const REPS = { 1: Number(arg('--reps1', '2000')), k: Number(arg('--repsk', '40')) };

(async () => {
  await selectBackend('wasm', { quiet: true });
  const stats: Array<Map<string, { mean: Float64Array; sq: Float64Array; n: number }>> = [];
  for (const k of [1, K]) {
    const s = openSession(benchExperiment(FILE, new PluginRegistry(plugins), ['data.trainLimit=1000', 'data.testLimit=100', `objective.elbo.samples=${k}`]));
    const vars = trainableVariables(s.parts.model, s.parts.objective);
    const list = [...vars.values()];
    const keyOf = new Map([...vars.entries()].map(([kk, v]) => [v.name, kk]));
    const mb = greyBatch(20, s.info, 1, false);
    const acc = new Map<string, { mean: Float64Array; sq: Float64Array; n: number }>();
    const reps = k === 1 ? REPS[1] : REPS.k;
    for (let i = 0; i < reps; i++) {
      const { value, grads } = tf.variableGrads(() => tf.mean(s.parts.objective.terms(mb, { training: true, rng: Rng.derive(9, 'g', i), step: 1 }).loss) as tf.Scalar, list);
      for (const [name, g] of Object.entries(grads)) {
        const key = keyOf.get(name)!;
        const v = g.dataSync();
        const a = acc.get(key) ?? { mean: new Float64Array(v.length), sq: new Float64Array(v.length), n: 0 };
        for (let j = 0; j < v.length; j++) { a.mean[j] += v[j]; a.sq[j] += v[j] * v[j]; }
        a.n++;
        acc.set(key, a);
      }
      tf.dispose([value, ...Object.values(grads)]);
    }
    stats.push(acc);
  }
  // per variable: mean over elements of the z-score of the difference of the two mean gradients
  for (const [key, a] of stats[0]) {
    const b = stats[1].get(key)!;
    let z2 = 0, cnt = 0, maxz = 0;
    for (let j = 0; j < a.mean.length; j++) {
      const ma = a.mean[j] / a.n, mb2 = b.mean[j] / b.n;
      const va = Math.max(a.sq[j] / a.n - ma * ma, 0) / a.n, vb = Math.max(b.sq[j] / b.n - mb2 * mb2, 0) / b.n;
      if (va + vb <= 0) continue;
      const z = (ma - mb2) / Math.sqrt(va + vb);
      z2 += z * z; cnt++; maxz = Math.max(maxz, Math.abs(z));
    }
    console.log(`${key}: ${cnt} elements, mean z^2 ${(z2 / cnt).toFixed(3)}, max |z| ${maxz.toFixed(2)}`);
  }
})();
