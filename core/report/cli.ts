/**
 * `vaelab report RUN_DIR [RUN_DIR ...] [--out FILE]`: the HTML report of a run, or of several
 * side by side (core/report/report.ts).
 */
import type { Command } from 'commander';
import { writeReport } from './report';

/** Adds the report command to the CLI. */
export function registerReportCommand(prog: Command, out: (line: string) => void): void {
  prog
    .command('report')
    .description('write one self-contained HTML page of a run (metrics, curves, latent statistics, pictures, config); with several runs, side by side')
    .argument('<runDirs...>', 'run directories (several: compared side by side)')
    .option('--out <file>', 'HTML file to write (default: <first run>/report.html)')
    .option('--compare', 'put the runs side by side (what several run directories always give; the flag only states it)')
    .action(async (dirs: string[], o: { out?: string; compare?: boolean }) => {
      out(await writeReport(dirs, o.out));
    });
}
