/**
 * The sweep commands of the command line: `vaelab sweep FILE [--workers N] [--resume] [--out DIR]
 * [--backend NAME]` runs a sweep; `vaelab worker` is the process it starts for its trials.
 */
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { selectBackend } from '../backend/select';
import { ConfigError } from '../errors';
import type { PluginRegistry } from '../plugin';
import { writeJsonAtomic } from '../tracking/files';
import { liveModeFor, type LiveMode } from './live';
import { QueuePool, connectRedis, serveQueueWorker, stateKey } from './queue';
import { runSweep, vaelabBin, type SweepOptions } from './runner';
import { loadSweepSpec } from './spec';
import { specHash } from './state';
import { serveWorker } from './worker';

const positiveInt = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be an integer >= 1; got ${JSON.stringify(v)}`);
  return n;
};

const TABLE_MODES = ['auto', 'redraw', 'plain', 'none'];
const tableMode = (v: string): 'auto' | LiveMode => {
  if (!TABLE_MODES.includes(v)) throw new InvalidArgumentError(`--table must be one of ${TABLE_MODES.join(', ')}; got ${JSON.stringify(v)}`);
  return v as 'auto' | LiveMode;
};

/** Adds `sweep` and `worker` to the program; `state.code` is set to 130 when a sweep is interrupted. */
export function registerSweepCommands(prog: Command, registry: PluginRegistry, state: { code: number }, err: (line: string) => void): void {
  prog
    .command('sweep')
    .description('run a hyperparameter sweep (sweeps/*.yaml) in worker processes, or continue one with --resume')
    .argument('<sweepFile>', 'sweep file (YAML or JSON)')
    .option('--workers <n>', 'worker processes, one trial each at a time (default: budget.concurrent, else one per core)', positiveInt('--workers'))
    .option('--resume', 'continue the sweep in its directory: nothing finished runs again, interrupted trials continue from their checkpoints')
    .option('--out <dir>', 'the sweep directory (default: dir of the sweep file, else <tracking.dir>/sweeps/<name>)')
    .option('--backend <name>', 'backend of the trials: auto, node-gpu, node, wasm or cpu (default: $VAELAB_BACKEND or auto)')
    .option('--check', 'only validate the sweep file and every trial config it can give; run nothing')
    .option('--queue <url>', 'put the trials on a BullMQ queue in Redis (redis://HOST:PORT) for `vaelab worker --queue` processes on any machine')
    .option('--table <mode>', 'the results table while the sweep runs: auto (redrawn in place on a terminal, plain lines after each trial otherwise), redraw, plain or none', tableMode, 'auto')
    .action(async (file: string, o: { workers?: number; resume?: boolean; out?: string; backend?: string; check?: boolean; queue?: string; table: 'auto' | LiveMode }) => {
      // The configs are checked here as `vaelab validate` checks them; trials train in the workers.
      await selectBackend('cpu', { quiet: true });
      const spec = loadSweepSpec(file, registry, o.out);
      let pool: SweepOptions['pool'];
      if (o.queue && !o.check) {
        if (o.backend) throw new ConfigError('--backend: with --queue, each worker chooses its backend (vaelab worker --backend)');
        const client = await connectRedis(o.queue);
        const sweepId = `${spec.name}-${specHash(spec)}`;
        if (o.resume && !fs.existsSync(path.join(spec.dir, 'state.json'))) {
          // A coordinator restarted elsewhere: the state kept in Redis.
          const saved = await client.get(stateKey(sweepId));
          if (saved) writeJsonAtomic(path.join(spec.dir, 'state.json'), JSON.parse(saved));
        }
        const url = o.queue;
        pool = (listener, state) => new QueuePool(client, url, sweepId, Number.MAX_SAFE_INTEGER, listener, state);
      }
      const table = liveModeFor(o.table, process.stderr);
      const result = await runSweep(spec, registry, { workers: o.workers, resume: o.resume, log: err, env: o.backend ? { VAELAB_BACKEND: o.backend } : {}, checkOnly: o.check, pool, table });
      if (result.status === 'checked') {
        err(`${file}: valid`);
      } else if (result.status === 'interrupted') {
        err(`sweep interrupted; continue with: npx vaelab sweep ${file} --resume${o.out ? ` --out ${o.out}` : ''}`);
        state.code = 130;
      } else if (result.status === 'wall-time') {
        err(`sweep stopped at its wall-time budget; raise budget.wallMinutes and continue with --resume`);
      } else {
        err(`sweep done: ${path.relative(process.cwd(), spec.dir) || spec.dir}`);
      }
    });

  prog
    .command('worker')
    .description('run the trials of sweeps: for `vaelab sweep` on this machine (it starts this), or from a queue with --queue')
    .option('--queue <url>', 'take trials from the BullMQ queue in Redis at redis://HOST:PORT')
    .option('--concurrency <n>', 'with --queue: trials at once, one process each (default 1)', positiveInt('--concurrency'), 1)
    .option('--stall-seconds <n>', 'with --queue: a trial whose worker has not renewed its lock for this long goes to another worker', positiveInt('--stall-seconds'), 30)
    .option('--backend <name>', 'auto, node-gpu, node, wasm or cpu')
    .action(async (o: { backend?: string; queue?: string; concurrency: number; stallSeconds: number }) => {
      if (o.queue) {
        const backend = await selectBackend(o.backend, { quiet: o.concurrency > 1, log: err });
        const childArgs = ['worker', '--queue', o.queue, '--stall-seconds', String(o.stallSeconds), ...(o.backend ? ['--backend', o.backend] : [])];
        await serveQueueWorker(registry, { url: o.queue, concurrency: o.concurrency, stallSeconds: o.stallSeconds, backend: backend.name, log: err, childArgs, bin: vaelabBin() });
        return;
      }
      if (!process.send) throw new ConfigError('worker: give --queue redis://HOST:PORT to take trials from a queue; without it, a worker runs the trials of `vaelab sweep`, which starts it');
      const backend = await selectBackend(o.backend, { quiet: true });
      await serveWorker(registry, backend.name);
    });
}
