/**
 * The trainer's own listeners: progress output (a bar or plain lines, train.progress) and the
 * metrics file of the run directory (metrics.jsonl). They use the same events as any other
 * callback (core/train/events.ts).
 */
import { makeReporter, type ProgressReporter } from '../tracking/progress';
import type { RunDir } from '../tracking/run-dir';
import type { EpochEndEvent, EpochStartEvent, EvaluationEvent, StepEndEvent, TrainerCallback } from './events';

const fmt = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(2) : v.toFixed(4));

/** Progress bar or plain lines, and one line per epoch: train loss, evaluation loss, seconds. */
export class ProgressListener implements TrainerCallback {
  readonly name = 'progress';
  private readonly reporter: ProgressReporter;

  constructor(mode: 'auto' | 'bar' | 'plain' | 'none', every: number, log: (line: string) => void) {
    this.reporter = makeReporter(mode, every, log);
  }

  onEpochStart(e: EpochStartEvent): void {
    this.reporter.startEpoch(e.epoch, e.epochs, e.batches, e.startBatch);
  }

  onStepEnd(e: StepEndEvent): void {
    this.reporter.tick({
      epoch: e.epoch,
      epochs: e.epochs,
      batch: e.batch + 1,
      batches: e.batches,
      step: e.step,
      batchSize: e.batchSize,
      samplesPerSec: e.samplesPerSec,
      loss: e.values['train/loss'],
    });
  }

  onEpochEnd(e: EpochEndEvent): void {
    this.reporter.endEpoch();
    let line = `epoch ${e.epoch}/${e.epochs}: train loss ${fmt(e.metrics['train/loss'])}`;
    if (e.evaluated) {
      const prefix = e.evaluated === 'validation' ? 'val' : 'test';
      line += ` | ${prefix} loss ${fmt(e.metrics[`${prefix}/loss`])}${e.improved ? ' (best)' : ''}`;
    }
    this.reporter.log(`${line} | ${e.seconds.toFixed(1)} s`);
  }

  /** Ends the bar before the trainer's own lines (an interruption, a failure, the end). */
  close(): void {
    this.reporter.stop();
  }

  onRunEnd(): void {
    this.reporter.stop();
  }

  onFailure(): void {
    this.reporter.stop();
  }
}

/**
 * metrics.jsonl: a "step" record every train.logEvery steps, an "epoch" record per epoch, and a
 * "test" record with the final test metrics.
 */
export class MetricsListener implements TrainerCallback {
  readonly name = 'metrics';

  constructor(
    private readonly run: RunDir,
    private readonly logEvery: number,
  ) {}

  onStepEnd(e: StepEndEvent): void {
    if (e.step % this.logEvery !== 0) return;
    this.run.appendMetrics({ kind: 'step', step: e.step, epoch: e.epoch + 1, lr: e.lr, ...e.values });
  }

  onEpochEnd(e: EpochEndEvent): void {
    this.run.appendMetrics({
      kind: 'epoch',
      epoch: e.epoch,
      step: e.step,
      seconds: e.seconds,
      samplesPerSec: e.samplesPerSec,
      ...e.metrics,
      ...(e.evaluated ? { evalSplit: e.evaluated } : {}),
    });
  }

  onEvaluation(e: EvaluationEvent): void {
    if (e.epoch === null) this.run.appendMetrics({ kind: 'test', step: e.step, ...e.metrics });
  }
}
