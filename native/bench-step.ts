/**
 * Benchmark: ms per training step of the MLP VAE (784-400-20, experiments/vae-mnist.yaml) and the
 * conv VAE (conv 32/64 4x4 stride 2, experiments/conv-vae-mnist.yaml) at batch 128 on the wasm
 * backend, with and without the native OpenBLAS kernel pack. Prints figures; never fails on speed.
 *
 *   npx ts-node --transpile-only native/bench-step.ts [--steps 20] [--repeats 3] [--batch 128]
 *     [--models mlp,conv] [--modes project,native,native-adam] [--profile]
 *
 * Modes (each run in its own child process, interleaved, so that a busy machine hits all alike):
 *   project      wasm with vaelab's pure-wasm kernels (VAELAB_NATIVE=0)
 *   native       wasm + native kernels (matMul, conv), Adam from core/train/adam.ts (which itself
 *                uses the fused native step when the pack is loaded, so this equals native-adam)
 *   native-adam  as native, with the fused nativeAdamStep instead of the tfjs Adam ops
 * A step is what core/train/trainer.ts does: tf.variableGrads of the mean ELBO loss,
 * clipByGlobalNorm (clipNorm 0: copies only), the Adam update, and reading the loss back.
 * Each child warms up (>= 1 s and >= 5 steps: the first calls run un-optimised wasm code), then
 * times `--steps` steps and reports the median; the table shows the best median wall time over
 * `--repeats` children, the fastest step, the best median CPU time of a step (user + system;
 * on a busy machine the better estimate of the uncontended step time, and the base of the
 * speed-up column), and the CPU share of the timed window (below ~0.9: it waited for a core).
 * `--profile` adds a per-kernel breakdown per model and mode (tf.profile; per kernel the least
 * time over 5 steps).
 */
import 'reflect-metadata';
import { spawnSync } from 'child_process';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs';
import { nativeAdamStep } from '../core/backend/native';
import { selectBackend } from '../core/backend/select';
import { Rng } from '../core/rng';
import { Adam, clipByGlobalNorm } from '../core/train/adam';
import { trainableVariables } from '../core/train/trainer';
import { MNIST_INFO, buildParts, greyBatch } from '../test/kits/build';

type ModelName = 'mlp' | 'conv';
type Mode = 'project' | 'native' | 'native-adam';

/** The slots of experiments/vae-mnist.yaml and experiments/conv-vae-mnist.yaml. */
const MODELS: Record<ModelName, Record<string, unknown>> = {
  mlp: {
    encoder: { use: 'mlp', mlp: { hiddenSizes: [400], activation: 'relu' } },
    latent: { use: 'gaussian', gaussian: { dim: 20 } },
    decoder: { use: 'mlp', mlp: { hiddenSizes: [400], activation: 'relu' } },
  },
  conv: {
    encoder: { use: 'conv', conv: { channels: [32, 64], kernelSize: 4, activation: 'relu' } },
    latent: { use: 'gaussian', gaussian: { dim: 16 } },
    decoder: { use: 'conv', conv: { channels: [64, 32], kernelSize: 4, activation: 'relu' } },
  },
};

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

interface ChildResult {
  model: ModelName;
  mode: Mode;
  backendLine: string;
  medianMs: number;
  minMs: number;
  /** Median CPU time (user + system) of one step, ms: close to the uncontended wall time on a busy machine. */
  medianCpuMs: number;
  cpuShare: number;
  profile?: Array<{ name: string; ms: number; calls: number }>;
}

/** One child: builds the model, warms up, times the steps, prints `BENCH-STEP {json}`. */
async function child(model: ModelName, mode: Mode, batch: number, steps: number, profile: boolean): Promise<void> {
  let backendLine = '';
  await selectBackend('wasm', { log: (l) => (backendLine = l) });
  const parts = buildParts({ seed: 0, ...MODELS[model] }, MNIST_INFO);
  const vars = trainableVariables(parts.model, parts.objective);
  const varList = [...vars.values()];
  const keyOf = new Map([...vars.entries()].map(([k, v]) => [v.name, k]));
  const adam = new Adam(vars, { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 });
  const mb = greyBatch(batch, MNIST_INFO, 1);
  const lr = 1e-3;
  let n = 0;

  const step = (): number => {
    const rng = Rng.derive(0, 'bench-step', n++);
    const { value, grads } = tf.variableGrads(
      () => tf.mean(parts.objective.terms(mb, { training: true, rng, step: n }).loss) as tf.Scalar,
      varList,
    );
    const byKey = new Map<string, tf.Tensor>();
    for (const [name, g] of Object.entries(grads)) byKey.set(keyOf.get(name)!, g);
    // without clipping, clipByGlobalNorm hands back the same gradients: dispose them after the update
    const clipped = clipByGlobalNorm(byKey, 0);
    let done = false;
    if (mode === 'native-adam') {
      const keys = [...clipped.grads.keys()];
      adam.t += 1;
      done = nativeAdamStep(
        keys.map((k) => vars.get(k)!), keys.map((k) => clipped.grads.get(k)!), keys.map((k) => adam.m.get(k)!), keys.map((k) => adam.v.get(k)!),
        { stepSize: lr / (1 - 0.9 ** adam.t), beta1: 0.9, beta2: 0.999, epsilon: 1e-8, sqrtBc2: Math.sqrt(1 - 0.999 ** adam.t), weightDecay: 0 },
      );
      if (!done) adam.t -= 1;
    }
    if (!done) adam.apply(clipped.grads, lr);
    const loss = value.dataSync()[0];
    tf.dispose([value, clipped.norm, ...byKey.values(), ...clipped.grads.values()]);
    return loss;
  };

  const t0 = performance.now();
  for (let i = 0; i < 5 || performance.now() - t0 < 1000; i++) step();
  const tensorsBefore = tf.memory().numTensors;
  const times: number[] = [];
  const cpuTimes: number[] = [];
  const cpu0 = process.cpuUsage();
  const w0 = performance.now();
  for (let i = 0; i < steps; i++) {
    const s = performance.now();
    const c = process.cpuUsage();
    const loss = step();
    times.push(performance.now() - s);
    const dc = process.cpuUsage(c);
    cpuTimes.push((dc.user + dc.system) / 1000);
    if (!Number.isFinite(loss)) throw new Error(`bench-step: ${model}/${mode}: loss is ${loss} at step ${n}`);
  }
  const wall = performance.now() - w0;
  const cpu = process.cpuUsage(cpu0);
  if (tf.memory().numTensors !== tensorsBefore) {
    throw new Error(`bench-step: ${model}/${mode}: live tensors went from ${tensorsBefore} to ${tf.memory().numTensors}`);
  }
  times.sort((a, b) => a - b);
  cpuTimes.sort((a, b) => a - b);
  const result: ChildResult = {
    model, mode, backendLine,
    medianMs: times[Math.floor(times.length / 2)],
    minMs: times[0],
    medianCpuMs: cpuTimes[Math.floor(cpuTimes.length / 2)],
    cpuShare: (cpu.user + cpu.system) / 1000 / wall,
  };
  if (profile) {
    // Per kernel, the least time over 5 profiled steps: a busy machine only ever adds time.
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
    result.profile = [...best].map(([name, e]) => ({ name, ...e })).sort((a, b) => b.ms - a.ms);
  }
  console.log(`BENCH-STEP ${JSON.stringify(result)}`);
}

function runChild(model: ModelName, mode: Mode, batch: number, steps: number, profile: boolean): ChildResult {
  const env = { ...process.env, VAELAB_NATIVE: mode === 'project' ? '0' : process.env.VAELAB_NATIVE === '0' ? '1' : (process.env.VAELAB_NATIVE ?? '1') };
  const args = ['-r', 'ts-node/register/transpile-only', __filename, '--child', model, mode, '--batch', String(batch), '--steps', String(steps)];
  if (profile) args.push('--profile');
  const r = spawnSync(process.execPath, args, { env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const line = (r.stdout ?? '').split('\n').find((l) => l.startsWith('BENCH-STEP '));
  if (r.status !== 0 || line === undefined) {
    throw new Error(`bench-step: child ${model}/${mode} failed (exit ${r.status}): ${(r.stderr ?? '').trim().split('\n').slice(-5).join(' | ')}`);
  }
  return JSON.parse(line.slice('BENCH-STEP '.length)) as ChildResult;
}

function main(): void {
  const batch = Number(arg('--batch', '128'));
  const steps = Number(arg('--steps', '20'));
  if (process.argv.includes('--child')) {
    const i = process.argv.indexOf('--child');
    child(process.argv[i + 1] as ModelName, process.argv[i + 2] as Mode, batch, steps, process.argv.includes('--profile')).catch((err) => {
      console.error(err);
      process.exitCode = 1;
    });
    return;
  }
  const repeats = Number(arg('--repeats', '3'));
  const models = arg('--models', 'mlp,conv').split(',') as ModelName[];
  const modes = arg('--modes', 'project,native,native-adam').split(',') as Mode[];
  const profile = process.argv.includes('--profile');
  const results = new Map<string, ChildResult[]>();
  for (let r = 0; r < repeats; r++) {
    for (const model of models) {
      for (const mode of modes) {
        const res = runChild(model, mode, batch, steps, profile && r === 0);
        const key = `${model}/${mode}`;
        results.set(key, [...(results.get(key) ?? []), res]);
        console.error(`  ${key} run ${r + 1}: median ${res.medianMs.toFixed(1)} ms (cpu ${res.medianCpuMs.toFixed(1)} ms), cpu share ${res.cpuShare.toFixed(2)}`);
      }
    }
  }
  const lines = new Set<string>();
  for (const list of results.values()) lines.add(list[0].backendLine);
  console.log(`\nbatch ${batch}, ${steps} timed steps per child after warm-up, best of ${repeats} children`);
  for (const l of lines) console.log(`  ${l}`);
  console.log(
    `\n${'model'.padEnd(6)} ${'mode'.padEnd(12)} ${'ms/step'.padStart(8)} ${'min'.padStart(7)} ${'all medians'.padStart(20)} ${'cpu ms'.padStart(7)} ${'share'.padStart(5)} ${'speed-up'.padStart(8)}`,
  );
  for (const model of models) {
    const base = Math.min(...(results.get(`${model}/project`) ?? [{ medianCpuMs: NaN }]).map((r) => r.medianCpuMs));
    for (const mode of modes) {
      const list = results.get(`${model}/${mode}`)!;
      const best = list.reduce((a, b) => (b.medianMs < a.medianMs ? b : a));
      const bestCpu = Math.min(...list.map((r) => r.medianCpuMs));
      const all = list.map((r) => r.medianMs.toFixed(1)).join(' ');
      // Speed-up from CPU time: on a shared machine wall times also count waiting for a core.
      const speedup = Number.isFinite(base) ? `x${(base / bestCpu).toFixed(2)}` : '';
      console.log(
        `${model.padEnd(6)} ${mode.padEnd(12)} ${best.medianMs.toFixed(1).padStart(8)} ${best.minMs.toFixed(1).padStart(7)} ${all.padStart(20)} ${bestCpu.toFixed(1).padStart(7)} ${best.cpuShare.toFixed(2).padStart(5)} ${speedup.padStart(8)}`,
      );
    }
  }
  if (profile) {
    for (const [key, list] of results) {
      const p = list.find((r) => r.profile !== undefined)?.profile;
      if (p === undefined) continue;
      const total = p.reduce((s, k) => s + k.ms, 0);
      console.log(`\n${key}: kernels of one step (tf.profile, least of 5 per kernel; ${total.toFixed(1)} ms in kernels)`);
      for (const k of p.slice(0, 14)) console.log(`  ${k.name.padEnd(22)} ${k.ms.toFixed(2).padStart(8)} ms ${String(k.calls).padStart(5)} calls`);
    }
  }
}

main();
