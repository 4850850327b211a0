/**
 * The command line of W&B logging: `--wandb` on `vaelab train`, and `vaelab wandb-sync RUN_DIR`.
 */
import type { Command } from 'commander';
import { applyOverrides, getPath, readExperimentFile } from '../config/experiment';
import { ConfigError } from '../errors';
import { setWandbFlag, settleWandb, wandbConfigProblems, type WandbConfig } from './logger';
import { wandbSync } from './sync';

/**
 * Adds `--wandb` to the `train` command already on `prog` (W&B on for its runs; tracking.wandb
 * values checked before a run directory is made; the last sends awaited after training, each
 * bounded) and registers `wandb-sync`.
 */
export function registerWandbCommands(prog: Command, out: (line: string) => void, err: (line: string) => void): void {
  const train = prog.commands.find((c) => c.name() === 'train');
  if (train) {
    train
      .option('--wandb', 'log the run to Weights & Biases (also on with tracking.wandb.enabled or WANDB_API_KEY set; see docs/tracking.md)')
      .hook('preAction', (cmd) => {
        const o = cmd.opts() as { wandb?: boolean; set?: string[] };
        setWandbFlag(o.wandb === true);
        const file = cmd.args[0];
        if (!file) return;
        const w = getPath(applyOverrides(readExperimentFile(file), o.set ?? []), 'tracking.wandb') as Partial<WandbConfig> | undefined;
        const problems = wandbConfigProblems(w);
        if (problems.length > 0) throw new ConfigError(problems, file);
      })
      .hook('postAction', () => settleWandb());
  }

  prog
    .command('wandb-sync')
    .description('send to Weights & Biases what a run kept because the server was down, slow or had no key (as `wandb sync` does)')
    .argument('<runDir>', 'run directory (a staged run: every stage)')
    .action(async (dir: string) => {
      const results = await wandbSync(dir, { log: err });
      for (const r of results) out(r.url);
    });
}
