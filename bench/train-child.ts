/**
 * One measured training run, started by bench/run.ts in a child process (pinned to a core with
 * taskset). It goes through the same code path as `vaelab train`: selectBackend, the experiment
 * file with --set style overrides (a staged file: its first stage), openSession, and core/train/trainer.ts `train`, writing its run
 * directory to a temporary folder that is removed afterwards.
 *
 *   node -r ts-node/register/transpile-only bench/train-child.ts --experiment FILE \
 *     --steps N [--warmup W] [--backend auto|wasm|cpu] [--mem-every K] [--train-limit N] [--probe]
 *     [--barrier PREFIX --barrier-id ID] [--sync-every N] [--set key=value ...]
 *
 * Only training steps are timed: the clock starts when the trainer's onStep hook reports step W
 * (the warm-up steps, data loading, model building and backend start-up are outside) and stops
 * when it reports step W + N. The final test evaluation that the trainer runs after the last
 * step is outside the window too (data.testLimit is kept small so it is quick).
 *
 * With --barrier, after the warm-up the child writes PREFIX.ready.ID and waits until PREFIX.go
 * exists before it starts the clock, so that processes run side by side start their timed
 * steps together.
 *
 * --set (repeatable) adds a config override as `vaelab train --set` does, before the bench's own
 * (bench/run.ts sets objective.iwae.samples=50 for its iwae row this way).
 *
 * Prints one line `BENCH-RESULT {json}` on stdout; diagnostics go to stderr.
 */
import 'reflect-metadata';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../core/backend/select';
import { coreSchema } from '../core/config/core-schema';
import { PluginRegistry } from '../core/plugin';
import { openSession } from '../core/session';
import { train } from '../core/train/trainer';
import { RunDir } from '../core/tracking/run-dir';
import { plugins } from '../plugins';
import { benchExperiment } from './experiment';

/** One memory sample taken from inside the training loop. */
export interface MemorySample {
  step: number;
  /** Seconds since training started (the first onStep call's clock is the train() call). */
  seconds: number;
  /** Resident set size of the process, MB (2^20 bytes). */
  rssMb: number;
  heapUsedMb: number;
  /** tf.memory().numTensors and numBytes. */
  numTensors: number;
  tensorMb: number;
}

/** What the child reports. */
export interface ChildResult {
  backendLine: string;
  backend: string;
  experiment: string;
  batchSize: number;
  warmup: number;
  steps: number;
  seconds: number;
  msPerStep: number;
  /** Median of the per-step intervals between onStep calls, ms. */
  medianStepMs: number;
  samplesPerSec: number;
  /** Wall-clock (Unix ms) start and end of the timed window, to check that parallel runs overlapped. */
  windowStartUnixMs: number;
  windowEndUnixMs: number;
  /** CPU time of this process over the timed window / the window's wall time (below ~0.9: it waited for a core). */
  cpuShare: number;
  status: string;
  memory: MemorySample[];
  trainLimit: number;
}

function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function intArg(name: string, fallback: number): number {
  const v = argValue(name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name}: must be a non-negative integer; got ${JSON.stringify(v)}`);
  return n;
}

const MB = 1024 * 1024;

/** Blocks (synchronously: onStep cannot await) until `${prefix}.go` exists. */
function waitAtBarrier(prefix: string, id: string): void {
  fs.writeFileSync(`${prefix}.ready.${id}`, String(process.pid));
  const cell = new Int32Array(new SharedArrayBuffer(4));
  const deadline = Date.now() + 10 * 60 * 1000;
  while (!fs.existsSync(`${prefix}.go`)) {
    if (Date.now() > deadline) throw new Error(`--barrier: ${prefix}.go did not appear within 10 minutes`);
    Atomics.wait(cell, 0, 0, 5);
  }
}

let trainStartMs = 0;

function memorySample(step: number): MemorySample {
  const m = process.memoryUsage();
  const t = tf.memory();
  return { step, seconds: (performance.now() - trainStartMs) / 1000, rssMb: m.rss / MB, heapUsedMb: m.heapUsed / MB, numTensors: t.numTensors, tensorMb: t.numBytes / MB };
}

/**
 * The kernels of the native OpenBLAS pack in use, [] when it is not. Read from the `native` field
 * of the backend info where there is one, else from the backend line.
 */
function nativeKernels(info: object, line: string): string[] {
  const field = (info as { native?: unknown }).native;
  if (Array.isArray(field)) return field.map(String);
  return /\bnative\b/i.test(line) && !/unavailable|disabled/i.test(line) ? ['(see the backend line)'] : [];
}

async function main(): Promise<void> {
  tf.env().set('PROD', true); // as the CLI does
  let backendLine = '';
  // No --backend: as `vaelab train` without the flag ($VAELAB_BACKEND, else auto).
  const backend = await selectBackend(argValue('--backend'), { log: (line) => (backendLine = line) });
  if (process.argv.includes('--probe')) {
    process.stdout.write(`BENCH-RESULT ${JSON.stringify({ backendLine, backend: backend.name, nativeKernels: nativeKernels(backend, backendLine) })}\n`);
    return;
  }

  const file = argValue('--experiment');
  if (!file) throw new Error('--experiment: give an experiment file');
  const steps = intArg('--steps', 100);
  const warmup = intArg('--warmup', 20);
  const memEvery = intArg('--mem-every', 0);
  const barrier = argValue('--barrier');
  const barrierId = argValue('--barrier-id') ?? String(process.pid);
  const total = warmup + steps;
  if (steps < 1) throw new Error('--steps: must be at least 1');
  if (warmup < 1) throw new Error("--warmup: must be at least 1 (the clock starts when the warm-up's last step is reported)");

  const sets: string[] = [];
  process.argv.forEach((a, i) => {
    if (a === '--set' && i + 1 < process.argv.length) sets.push(process.argv[i + 1]);
  });
  const registry = new PluginRegistry(plugins);
  const base = benchExperiment(file, registry, sets);
  const batchSize = base.config.train.batchSize;
  // Enough training examples that the timed steps stay inside one epoch (no epoch-end
  // checkpoint in the window), unless asked otherwise (--train-limit 0 = the whole split).
  const trainLimit = intArg('--train-limit', Math.min(60000, total * batchSize));
  const perEpoch = Math.ceil((trainLimit > 0 ? trainLimit : 60000) / batchSize);
  const epochs = Math.ceil(total / perEpoch) + 1;
  const overrides = [
    ...sets,
    `train.maxSteps=${total}`,
    `train.epochs=${epochs}`,
    'train.progress=none',
    'train.evalEvery=0',
    'train.earlyStopping.patience=0',
    'train.keepCheckpoints=1',
    'eval.iwSamples=0',
    'eval.images=false',
    `data.trainLimit=${trainLimit}`,
    'data.testLimit=500',
    'data.validationSize=0',
  ];
  // --sync-every 1 for the memory run: the trainer then holds no unread step values when the
  // sample is taken, so tf.memory().numTensors does not swing with the step's phase.
  const syncEvery = argValue('--sync-every');
  if (syncEvery !== undefined && 'syncEvery' in coreSchema.train) overrides.push(`train.syncEvery=${syncEvery}`);
  const session = openSession(benchExperiment(file, registry, overrides));

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vaelab-bench-'));
  const log = process.argv.includes('--verbose') ? (line: string) => process.stderr.write(`${line}\n`) : () => undefined;
  let tStart = 0;
  let tEnd = 0;
  let tPrev = 0;
  let cpuStart: NodeJS.CpuUsage = process.cpuUsage();
  let cpuWindow: NodeJS.CpuUsage | null = null;
  const intervals: number[] = [];
  const memory: MemorySample[] = [];
  trainStartMs = performance.now();
  if (memEvery > 0) memory.push(memorySample(0));
  try {
    const run = RunDir.create(tmp, session.config.name, session.config.seed);
    const result = await train(session, {
      run,
      backend: backend.name,
      log,
      handleSignals: false,
      onStep: (step) => {
        if (barrier && step === warmup) waitAtBarrier(barrier, barrierId);
        const now = performance.now();
        if (step > warmup && step <= total) intervals.push(now - tPrev);
        tPrev = now;
        if (step === warmup) {
          tStart = now;
          cpuStart = process.cpuUsage();
        }
        if (step === total) {
          tEnd = now;
          cpuWindow = process.cpuUsage(cpuStart);
        }
        if (memEvery > 0 && step % memEvery === 0) memory.push(memorySample(step));
      },
    });
    if (tEnd === 0 || tStart === 0) throw new Error(`training stopped at step ${result.steps} (${result.status}) before step ${total}`);
    const seconds = (tEnd - tStart) / 1000;
    const cpu = cpuWindow as NodeJS.CpuUsage | null;
    const cpuSeconds = cpu ? (cpu.user + cpu.system) / 1e6 : NaN;
    intervals.sort((a, b) => a - b);
    const out: ChildResult = {
      backendLine,
      backend: backend.name,
      experiment: session.config.name,
      batchSize,
      warmup,
      steps,
      seconds,
      msPerStep: (1000 * seconds) / steps,
      medianStepMs: intervals[Math.floor(intervals.length / 2)],
      samplesPerSec: (steps * batchSize) / seconds,
      windowStartUnixMs: performance.timeOrigin + tStart,
      windowEndUnixMs: performance.timeOrigin + tEnd,
      cpuShare: cpuSeconds / seconds,
      status: result.status,
      memory,
      trainLimit,
    };
    process.stdout.write(`BENCH-RESULT ${JSON.stringify(out)}\n`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`${e && (e as Error).stack ? (e as Error).stack : String(e)}\n`);
  process.exitCode = 1;
});
