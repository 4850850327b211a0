/**
 * The sweep commands of the command line: `vaelab sweep FILE [--workers N] [--resume] [--out DIR]
 * [--backend NAME]` runs a sweep; `vaelab worker` is the process it starts for its trials.
 */
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import * as path from 'node:path';
import { selectBackend } from '../backend/select';
import { ConfigError } from '../errors';
import type { PluginRegistry } from '../plugin';
import { runSweep } from './runner';
import { loadSweepSpec } from './spec';
import { serveWorker } from './worker';

const positiveInt = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be an integer >= 1; got ${JSON.stringify(v)}`);
  return n;
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
    .action(async (file: string, o: { workers?: number; resume?: boolean; out?: string; backend?: string; check?: boolean }) => {
      // The configs are checked here as `vaelab validate` checks them; trials train in the workers.
      await selectBackend('cpu', { quiet: true });
      const spec = loadSweepSpec(file, registry, o.out);
      const result = await runSweep(spec, registry, { workers: o.workers, resume: o.resume, log: err, env: o.backend ? { VAELAB_BACKEND: o.backend } : {}, checkOnly: o.check });
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
    .description('run trials for a sweep (started by `vaelab sweep`)')
    .option('--backend <name>', 'auto, node-gpu, node, wasm or cpu')
    .action(async (o: { backend?: string }) => {
      if (!process.send) throw new ConfigError('worker: runs the trials of `vaelab sweep`, which starts it with a channel to talk over; run `vaelab sweep FILE` instead');
      const backend = await selectBackend(o.backend, { quiet: true });
      await serveWorker(registry, backend.name);
    });
}
