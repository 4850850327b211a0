/**
 * Opening a finished (or interrupted) run for `vaelab eval` and `vaelab sample`: its saved config,
 * a session built from it, and the weights and non-trainable state of one of its checkpoints.
 *
 * Which checkpoint (`--checkpoint`): by default `best.ckpt` only when the run has a validation
 * split (data.validationSize > 0) and chose one on it; otherwise the newest checkpoint, which for
 * a run that has ended holds its final weights. A run without a validation split has no best
 * checkpoint: nothing is ever selected on the test split. A staged run directory stands for its
 * last stage.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { experimentFromObject } from '../config/experiment';
import { ConfigError } from '../errors';
import type { PluginRegistry } from '../plugin';
import { openSession, type Session } from '../session';
import { RunDir } from '../tracking/run-dir';
import { hasEnded, isStagedRun, stageRunDirs } from './init';
import { restoreModel } from './trainer';

/** An opened run. */
export interface OpenedRun {
  run: RunDir;
  session: Session;
  checkpoint: string;
  step: number;
}

/**
 * The checkpoint file `which` names in a run: 'best', 'latest', 'final', a file path, or
 * undefined for the default (best with a validation split, else latest).
 */
export function chooseCheckpoint(run: RunDir, which: string | undefined, shown: string): string {
  const cfg = run.readConfig() as { data?: { validationSize?: number } };
  const hasValidation = (cfg.data?.validationSize ?? 0) > 0;
  const best = path.join(run.checkpoints, 'best.ckpt');
  const latest = () => {
    const f = run.latestCheckpoint();
    if (!f || !fs.existsSync(f)) throw new ConfigError(`--checkpoint ${which ?? 'latest'}: run ${shown} has no checkpoint yet`);
    return f;
  };
  switch (which) {
    case undefined:
      return hasValidation && fs.existsSync(best) ? best : latest();
    case 'best':
      if (!hasValidation) {
        throw new ConfigError(
          `--checkpoint best: run ${shown} has no validation split (data.validationSize = 0), so no best checkpoint was chosen; use --checkpoint latest`,
        );
      }
      if (!fs.existsSync(best)) throw new ConfigError(`--checkpoint best: run ${shown} has no best.ckpt yet`);
      return best;
    case 'latest':
      return latest();
    case 'final': {
      const { ended, status } = hasEnded(run);
      if (!ended) {
        throw new ConfigError(
          `--checkpoint final: run ${shown} has not ended (status ${status === null ? 'none: no summary.json' : JSON.stringify(status)}); use --checkpoint latest`,
        );
      }
      return latest();
    }
    default: {
      const file = path.resolve(which);
      if (!fs.existsSync(file)) throw new ConfigError(`--checkpoint: no such checkpoint file ${JSON.stringify(which)}`);
      return file;
    }
  }
}

/** Opens a run directory's session with the weights and state of a checkpoint restored. */
export function openRun(dir: string, registry: PluginRegistry, which?: string, log: (line: string) => void = () => undefined): OpenedRun {
  let run = RunDir.open(dir);
  if (isStagedRun(run.dir)) {
    const stages = stageRunDirs(run.dir);
    if (stages.length === 0) throw new ConfigError(`run ${JSON.stringify(dir)}: a staged run with no stage started yet`);
    run = RunDir.open(stages[stages.length - 1]);
    log(`staged run: using its last stage, ${path.relative(process.cwd(), run.dir) || run.dir}`);
  }
  const checkpoint = chooseCheckpoint(run, which, JSON.stringify(dir));
  const session = openSession(experimentFromObject(run.readConfig(), registry, run.file('config.json')));
  const meta = restoreModel(session, checkpoint);
  return { run, session, checkpoint, step: meta.step };
}
