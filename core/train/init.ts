/**
 * Starting a run from another run's weights (`init.*`): the checkpoint `init.from` names (a run
 * directory, or a checkpoint file), and which of its tensors are copied (`init.include`, key
 * prefixes such as "encoder/" or "prior/"). Trainable variables and non-trainable state are
 * copied; optimizer moments are not (the new run's optimizers start fresh).
 *
 * Which checkpoint of a run directory (`init.checkpoint`): `final`, the last weights of a run that
 * has ended (the default); `latest`, the newest checkpoint whatever the run's state; `best`, the
 * checkpoint chosen on the validation split; `auto`, `best` when the run has one, else `final`
 * (a staged file that starts from its first stage's best weights still runs with
 * data.validationSize 0). A staged run directory stands for its last stage.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError } from '../errors';
import { readJsonIfExists } from '../tracking/files';
import { RunDir } from '../tracking/run-dir';
import { loadCheckpoint, matchesPrefix, type LoadedCheckpoint } from './checkpoint';

/** The `init.*` keys. */
export interface InitOptions {
  from: string;
  checkpoint: 'latest' | 'best' | 'final' | 'auto';
  include: readonly string[];
}

/** Sub-directory of stage i of a staged run. */
export function stageDirName(index: number, name: string): string {
  return `${index}-${name}`;
}

/** The stage run directories of a staged run, in stage order (those created so far). */
export function stageRunDirs(dir: string): string[] {
  const root = path.join(dir, 'stages');
  if (!fs.existsSync(root)) return [];
  return fs
    .readdirSync(root)
    .filter((f) => /^\d+-/.test(f) && fs.existsSync(path.join(root, f, 'config.json')))
    .sort((a, b) => parseInt(a, 10) - parseInt(b, 10))
    .map((f) => path.join(root, f));
}

/** True when the run directory's config lists stages. */
export function isStagedRun(dir: string): boolean {
  const cfg = readJsonIfExists<Record<string, unknown>>(path.join(dir, 'config.json'));
  return Array.isArray(cfg?.stages);
}

/**
 * Statuses of an ended run (summary.json); an interrupted or failed run (both resumable from
 * their last checkpoint) or one without summary has not ended.
 */
export function hasEnded(run: RunDir): { ended: boolean; status: string | null } {
  const s = readJsonIfExists<{ status?: string }>(run.file('summary.json'));
  const status = s?.status ?? null;
  return { ended: status !== null && status !== 'interrupted' && status !== 'failed', status };
}

/** The checkpoint file that `init.from` and `init.checkpoint` name. */
export function resolveInitCheckpoint(from: string, which: InitOptions['checkpoint']): string {
  const abs = path.resolve(from);
  if (!fs.existsSync(abs)) throw new ConfigError(`init.from: ${JSON.stringify(from)}: no such run directory or checkpoint file`);
  if (fs.statSync(abs).isFile()) return abs;
  if (!fs.existsSync(path.join(abs, 'config.json'))) {
    throw new ConfigError(`init.from: ${JSON.stringify(from)}: not a vaelab run directory (no config.json) or checkpoint file`);
  }
  let dir = abs;
  if (isStagedRun(abs)) {
    const stages = stageRunDirs(abs);
    if (stages.length === 0) throw new ConfigError(`init.from: ${JSON.stringify(from)}: a staged run with no stage started yet`);
    dir = stages[stages.length - 1];
  }
  const run = RunDir.open(dir, 'init.from');
  // auto: the checkpoint chosen on the validation split when the run has one, else the final weights
  if (which === 'auto') which = fs.existsSync(path.join(run.checkpoints, 'best.ckpt')) ? 'best' : 'final';
  if (which === 'best') {
    const best = path.join(run.checkpoints, 'best.ckpt');
    if (!fs.existsSync(best)) {
      throw new ConfigError(
        `init.checkpoint: run ${JSON.stringify(from)} has no best checkpoint (one is chosen only on a validation split, data.validationSize > 0); use "final" or "latest"`,
      );
    }
    return best;
  }
  if (which === 'final') {
    const { ended, status } = hasEnded(run);
    if (!ended) {
      throw new ConfigError(
        `init.checkpoint: run ${JSON.stringify(from)} has not ended (status ${status === null ? 'none: no summary.json' : JSON.stringify(status)}); use "latest" to start from its newest checkpoint`,
      );
    }
  }
  const latest = run.latestCheckpoint();
  if (!latest || !fs.existsSync(latest)) throw new ConfigError(`init.from: run ${JSON.stringify(from)} has no checkpoint yet`);
  return latest;
}

/** What `applyInit` copied. */
export interface InitReport {
  file: string;
  /** Keys copied (model/... and state/...). */
  copied: string[];
  /** Keys of this model the checkpoint does not hold, left as initialised (only without init.include). */
  kept: string[];
}

/**
 * Copies the selected tensors of the checkpoint `file` into `vars` (checkpoint namespace
 * `model/`) and `state` (`state/`). With `include` empty, every tensor the checkpoint holds is
 * copied and the others are left as initialised; with `include`, every selected variable must be
 * in the checkpoint. Shapes must agree. Errors are ConfigErrors naming the key, both shapes and
 * the file. With `check`, nothing is assigned (the check made before a run directory is).
 */
export function applyInit(
  file: string,
  include: readonly string[],
  vars: Map<string, tf.Variable>,
  state: Map<string, tf.Variable>,
  opts: { check?: boolean } = {},
): InitReport {
  const ck: LoadedCheckpoint = loadCheckpoint(file);
  const targets: Array<[string, tf.Variable]> = [
    ...[...vars].map(([k, v]) => [`model/${k}`, v] as [string, tf.Variable]),
    ...[...state].map(([k, v]) => [`state/${k}`, v] as [string, tf.Variable]),
  ];
  const bare = (full: string) => full.slice(full.indexOf('/') + 1);
  const unmatched = include.filter((p) => !targets.some(([k]) => bare(k).startsWith(p)));
  if (unmatched.length > 0) {
    throw new ConfigError(unmatched.map((p) => `init.include: ${JSON.stringify(p)} matches no variable or state of this experiment`));
  }
  const problems: string[] = [];
  const copies: Array<[tf.Variable, { shape: number[]; data: Float32Array }]> = [];
  const report: InitReport = { file, copied: [], kept: [] };
  for (const [key, v] of targets) {
    if (!matchesPrefix(bare(key), include)) continue;
    const entry = ck.tensors.get(key);
    if (!entry) {
      if (include.length > 0) problems.push(`init.from: ${file} has no tensor ${key} (init.include selects it)`);
      else report.kept.push(key);
      continue;
    }
    if (entry.shape.join(',') !== v.shape.join(',')) {
      problems.push(`init.from: ${key} is [${entry.shape.join(', ')}] in ${file} but [${v.shape.join(', ')}] in this experiment`);
      continue;
    }
    copies.push([v, entry]);
    report.copied.push(key);
  }
  if (problems.length === 0 && copies.length === 0) {
    // Without init.include nothing is demanded, but a checkpoint with no tensor of this model (another
    // experiment, other plugin names) must not pass for an initialisation.
    const sample = [...ck.tensors.keys()].filter((k) => k.startsWith('model/')).slice(0, 3);
    problems.push(
      `init.from: ${file} has none of this experiment's ${targets.length} tensors (it holds ${sample.length ? `${sample.join(', ')}, ...` : 'no model tensors'}); is it a run of another experiment?`,
    );
  }
  if (problems.length > 0) throw new ConfigError(problems);
  if (opts.check) return report;
  for (const [v, entry] of copies) tf.tidy(() => v.assign(tf.tensor(entry.data, entry.shape, 'float32')));
  return report;
}
