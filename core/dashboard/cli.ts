/**
 * `vaelab dashboard [--port P] [--host H] [RUNS_DIR]`: serves the local dashboard of a runs
 * directory (core/dashboard/server.ts) until Ctrl-C.
 */
import * as fs from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import { startDashboard } from './server';

function portNumber(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`--port: must be an integer from 0 to 65535; got ${JSON.stringify(v)}`);
  return n;
}

/** Adds the dashboard command to the CLI. */
export function registerDashboardCommand(prog: Command, out: (line: string) => void = console.log, err: (line: string) => void = console.error): void {
  prog
    .command('dashboard')
    .description('serve a local page comparing the runs and sweeps of a runs directory: table, curves, sweep views, images, configs; live while runs train')
    .argument('[runsDir]', 'the runs directory', 'runs')
    .option('--port <n>', 'port to listen on (0 picks a free one)', portNumber, 6060)
    .option('--host <address>', 'address to listen on; anything but a loopback address exposes your runs to the network', '127.0.0.1')
    .action(async (runsDir: string, o: { port: number; host: string }) => {
      if (!fs.existsSync(runsDir)) err(`note: ${runsDir}: no such directory yet; the dashboard shows runs as they appear`);
      const d = await startDashboard({ root: runsDir, port: o.port, host: o.host, log: err });
      out(`vaelab dashboard of ${runsDir}: ${d.url} (Ctrl-C to stop)`);
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          void d.close().then(resolve);
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
    });
}
