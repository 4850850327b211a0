/**
 * Training a staged experiment (core/config/stages.ts) in one run directory:
 *
 *   <run>/config.json              the experiment as written, stages included (plugin paths absolute)
 *   <run>/summary.json             the staged run's status, each stage's, and the last stage's test metrics
 *   <run>/stages/<i>-<name>/       one ordinary run directory per stage (config.json, checkpoints, metrics, ...)
 *
 * Stage i > 0 starts from stage i-1's final weights (`init.from` set to its directory,
 * `init.checkpoint: final`, every tensor it holds) unless the stage entry sets `init.from`
 * itself; stage 0 uses the base's `init.*`. The init a stage started from is in its config.json.
 * With `resume`, finished stages are skipped and the first unfinished one continues from its
 * newest checkpoint (or starts, if it has none); a stage that ended pruned or stopped ends the
 * staged run.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { experimentFromObject, getPath } from '../config/experiment';
import type { StagePlan } from '../config/stages';
import type { PluginRegistry } from '../plugin';
import { openSession } from '../session';
import { writeJsonAtomic } from '../tracking/files';
import { wandbCallbacks } from '../wandb';
import { RunDir } from '../tracking/run-dir';
import type { TrainStatus, TrainerCallback } from './events';
import { hasEnded, stageDirName } from './init';
import { train } from './trainer';

/** Options of a staged run. */
export interface StagedTrainOptions {
  run: RunDir;
  registry: PluginRegistry;
  backend: string;
  log?: (line: string) => void;
  /** Continue the run: skip finished stages, resume the first unfinished one. */
  resume?: boolean;
  /** Listeners for each stage's training (a fresh list per stage). */
  callbacks?: (stage: { index: number; name: string }) => TrainerCallback[];
  /** As TrainOptions.control: interrupts the stage in progress. */
  control?: { stop: boolean };
  handleSignals?: boolean;
  /** As TrainOptions.onStep, with the stage's index. */
  onStep?: (step: number, stage: number) => void;
}

/** One stage's outcome in the staged run's summary. */
export interface StageOutcome {
  index: number;
  name: string;
  dir: string;
  status: TrainStatus | 'not-run';
  steps: number | null;
}

/** The result of `trainStages`. */
export interface StagedResult {
  status: TrainStatus;
  stages: StageOutcome[];
  summary: Record<string, unknown>;
}

const FINISHED: readonly string[] = ['completed', 'early-stopped', 'max-steps'];

const readSummary = (run: RunDir) => JSON.parse(fs.readFileSync(run.file('summary.json'), 'utf8')) as Record<string, unknown>;

/** Opens the stage's run directory, creating it (with config.json) when it does not exist. */
function stageRun(dir: string, config: unknown): RunDir {
  if (!fs.existsSync(path.join(dir, 'config.json'))) {
    fs.mkdirSync(path.join(dir, 'checkpoints'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'images'), { recursive: true });
    writeJsonAtomic(path.join(dir, 'config.json'), config);
  }
  return RunDir.open(dir);
}

/** Trains the stages of `plan` in order in `opts.run`. */
export async function trainStages(plan: StagePlan, opts: StagedTrainOptions): Promise<StagedResult> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const top = opts.run;
  const outcomes: StageOutcome[] = plan.stages.map((s) => ({
    index: s.index,
    name: s.name,
    dir: path.join('stages', stageDirName(s.index, s.name)),
    status: 'not-run',
    steps: null,
  }));
  let status: TrainStatus = 'completed';
  let lastSummary: Record<string, unknown> | null = null;
  for (const stage of plan.stages) {
    const out = outcomes[stage.index];
    const dir = path.join(top.dir, out.dir);
    const label = `stage ${stage.index + 1}/${plan.stages.length} "${stage.name}"`;
    let resumeFrom: string | undefined;
    let run: RunDir | null = fs.existsSync(path.join(dir, 'config.json')) ? RunDir.open(dir) : null;
    if (run && opts.resume) {
      const ended = hasEnded(run);
      if (ended.ended) {
        out.status = ended.status as TrainStatus;
        out.steps = (readSummary(run).steps as number) ?? null;
        lastSummary = readSummary(run);
        if (!FINISHED.includes(ended.status!)) {
          status = out.status as TrainStatus;
          break;
        }
        log(`${label}: already ${ended.status}`);
        continue;
      }
      const latest = run.latestCheckpoint();
      if (latest && fs.existsSync(latest)) resumeFrom = latest;
    }
    let session;
    if (run && resumeFrom) {
      session = openSession(experimentFromObject(run.readConfig(), opts.registry, run.file('config.json')));
    } else {
      const raw = structuredClone(stage.raw);
      if (stage.index > 0 && getPath(stage.overrides, 'init.from') === undefined) {
        const prev = path.join(top.dir, outcomes[stage.index - 1].dir);
        raw.init = {
          from: prev,
          checkpoint: getPath(stage.overrides, 'init.checkpoint') ?? 'final',
          include: getPath(stage.overrides, 'init.include') ?? [],
        };
      }
      const experiment = experimentFromObject(raw, opts.registry, plan.file);
      session = openSession(experiment);
      if (run) fs.rmSync(dir, { recursive: true, force: true });
      run = stageRun(dir, session.config);
    }
    log(`${label}: ${path.relative(process.cwd(), run.dir) || run.dir}`);
    const result = await train(session, {
      run,
      backend: opts.backend,
      log,
      resumeFrom,
      // W&B (when on): each stage its own W&B run, grouped by the staged run's id.
      callbacks: [...(opts.callbacks?.({ index: stage.index, name: stage.name }) ?? []), ...wandbCallbacks(session.config, run, { log, group: top.id })],
      control: opts.control,
      handleSignals: opts.handleSignals,
      onStep: opts.onStep && ((s) => opts.onStep!(s, stage.index)),
    });
    out.status = result.status;
    out.steps = result.steps;
    lastSummary = result.summary;
    if (!FINISHED.includes(result.status)) {
      status = result.status;
      break;
    }
    status = result.status;
  }
  const summary: Record<string, unknown> = {
    experiment: plan.stages[0].experiment.config.name,
    runId: top.id,
    status,
    backend: opts.backend,
    stages: outcomes,
  };
  if (status === 'interrupted') {
    summary.resume = `npx vaelab train --resume ${path.relative(process.cwd(), top.dir)}`;
  } else if (lastSummary && status !== 'pruned') {
    for (const k of ['test', 'iw', 'latent']) if (lastSummary[k] !== undefined) summary[k] = lastSummary[k];
  }
  top.writeSummary(summary);
  return { status, stages: outcomes, summary };
}
