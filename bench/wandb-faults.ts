/**
 * What W&B logging costs a training run when the W&B server is healthy, fails (HTTP 500), hangs
 * (never answers) or refuses connections, against the same run with W&B off:
 *
 *   npx ts-node --transpile-only bench/wandb-faults.ts [--reps 3] [--epochs 6] [--timeout 10]
 *
 * The server is test/fixtures/wandb-server.ts on 127.0.0.1. The run: synthetic 14x14 shapes
 * (512 images, batch 32: 16 steps an epoch), MLP VAE, a metrics row every step (the most W&B
 * traffic a run makes), cpu backend, in this process. Cases run interleaved, `--reps` times each
 * after one warm-up run; the table gives medians. Columns: `train` is the train() call, `end` the
 * wait for the last sends (settleWandb, bounded by tracking.wandb.timeoutSeconds = `--timeout`),
 * `total` both; `warnings` the logger's lines; `kept` the rows left in <run>/wandb/pending.jsonl.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { experimentFromObject } from '../core/config/experiment';
import { PluginRegistry } from '../core/plugin';
import { closeSession, openSession } from '../core/session';
import { train } from '../core/train/trainer';
import { RunDir } from '../core/tracking/run-dir';
import { settleWandb, wandbCallbacks } from '../core/wandb';
import { Outbox } from '../core/wandb/outbox';
import { plugins } from '../plugins';
import { experimentObject } from '../testing';
import { closedPort, Recorder } from '../test/fixtures/wandb-server';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const REPS = arg('reps', 3);
const EPOCHS = arg('epochs', 6);
const TIMEOUT = arg('timeout', 10);
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'vaelab-bench-wandb-'));

type Case = 'off' | 'healthy' | 'fail' | 'hang' | 'refuse';
interface Row {
  steps: number;
  train: number;
  end: number;
  warnings: number;
  kept: number;
}

async function once(c: Case): Promise<Row> {
  const raw = experimentObject({
    name: 'wandb-bench',
    seed: 1,
    data: { use: 'synthetic', synthetic: { kind: 'shapes', size: 512 } },
    encoder: { use: 'mlp', mlp: { hiddenSizes: [64] } },
    decoder: { use: 'mlp', mlp: { hiddenSizes: [64] } },
    latent: { use: 'gaussian', gaussian: { dim: 4 } },
    train: { epochs: EPOCHS, batchSize: 32, logEvery: 1, progress: 'none' },
    eval: { iwSamples: 5, iwChunk: 5, batchSize: 64, images: false },
    tracking: { dir: root, wandb: { enabled: c !== 'off', project: 'bench', timeoutSeconds: TIMEOUT } },
  });
  const session = openSession(experimentFromObject(raw, new PluginRegistry(plugins)));
  const run = RunDir.create(root, session.config.name, session.config.seed);
  run.writeConfig(session.config);
  const server = c === 'healthy' ? await Recorder.start('ok') : c === 'fail' ? await Recorder.start('fail') : c === 'hang' ? await Recorder.start('hang') : null;
  const url = server ? server.url : await closedPort();
  const lines: string[] = [];
  const log = (l: string) => lines.push(l);
  try {
    const t0 = performance.now();
    const result = await train(session, { run, backend: 'cpu', log, handleSignals: false, callbacks: wandbCallbacks(session.config, run, { log, env: c === 'off' ? {} : { WANDB_API_KEY: 'k'.repeat(40), WANDB_BASE_URL: url } }) });
    const t1 = performance.now();
    await settleWandb();
    const t2 = performance.now();
    return {
      steps: result.steps,
      train: (t1 - t0) / 1000,
      end: (t2 - t1) / 1000,
      warnings: lines.filter((l) => l.startsWith('wandb:')).length,
      kept: Outbox.open(run.dir)?.pending().length ?? 0,
    };
  } finally {
    closeSession(session);
    await server?.close();
  }
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

async function main(): Promise<void> {
  await tf.setBackend('cpu');
  const cases: Case[] = ['off', 'healthy', 'fail', 'hang', 'refuse'];
  await once('off'); // warm-up
  const rows = new Map<Case, Row[]>(cases.map((c) => [c, []]));
  for (let r = 0; r < REPS; r++) for (const c of cases) rows.get(c)!.push(await once(c));
  const off = median(rows.get('off')!.map((x) => x.train + x.end));
  console.log(`W&B faults: ${EPOCHS} epochs x 16 steps, a row every step, tracking.wandb.timeoutSeconds ${TIMEOUT}, ${REPS} reps (medians; min-max of total)`);
  console.log('| case | steps | train s | end s | total s | total vs off | warnings | rows kept |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const c of cases) {
    const xs = rows.get(c)!;
    const totals = xs.map((x) => x.train + x.end);
    const t = median(totals);
    console.log(
      `| ${c} | ${median(xs.map((x) => x.steps))} | ${median(xs.map((x) => x.train)).toFixed(2)} | ${median(xs.map((x) => x.end)).toFixed(2)} | ${t.toFixed(2)} (${Math.min(...totals).toFixed(2)}-${Math.max(...totals).toFixed(2)}) | ${(t / off).toFixed(2)} | ${median(xs.map((x) => x.warnings))} | ${median(xs.map((x) => x.kept))} |`,
    );
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
