/**
 * `vaelab report RUN_DIR [RUN_DIR ...] [--out FILE]`: the HTML report of a run, or of several
 * side by side (core/report/report.ts).
 */
import { InvalidArgumentError, type Command } from 'commander';
import { selectBackend } from '../backend/select';
import type { PluginRegistry } from '../plugin';
import { writeReport } from './report';

/** Adds the report command to the CLI. */
export function registerReportCommand(prog: Command, registry: PluginRegistry, out: (line: string) => void, err: (line: string) => void): void {
  prog
    .command('report')
    .description('write one self-contained HTML page of a run (metrics, curves, latent statistics, pictures, config); with several runs, side by side')
    .argument('<runDirs...>', 'run directories (several: compared side by side)')
    .option('--out <file>', 'HTML file to write (default: <first run>/report.html)')
    .option('--compare', 'put the runs side by side (what several run directories always give; the flag only states it)')
    .option('--no-map', 'do not open the runs to draw the 2-D map of their test codes (images/latent-map.png)')
    .option('--map-points <n>', 'test examples in the latent map', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 2) throw new InvalidArgumentError(`--map-points: must be an integer >= 2; got ${JSON.stringify(v)}`);
      return n;
    }, 1000)
    .option('--backend <name>', 'auto, node-gpu, node, wasm or cpu (for the latent map)')
    .action(async (dirs: string[], o: { out?: string; compare?: boolean; map: boolean; mapPoints: number; backend?: string }) => {
      if (o.map) await selectBackend(o.backend, { log: err });
      out(await writeReport(dirs, { out: o.out, registry: o.map ? registry : undefined, mapPoints: o.mapPoints, log: err }));
    });
}
