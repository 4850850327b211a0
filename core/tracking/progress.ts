/**
 * Training progress: a bar on a terminal (cli-progress: epoch, step, samples/s, loss, ETA), plain
 * log lines otherwise, or nothing.
 */
import { SingleBar } from 'cli-progress';

/** What the trainer reports after each step. */
export interface ProgressTick {
  epoch: number;
  epochs: number;
  batch: number;
  batches: number;
  step: number;
  batchSize: number;
  samplesPerSec: number;
  loss: number;
}

/** Receives progress; `log` prints a line without breaking the bar. */
export interface ProgressReporter {
  startEpoch(epoch: number, epochs: number, batches: number, startBatch: number): void;
  tick(t: ProgressTick): void;
  endEpoch(): void;
  log(line: string): void;
  stop(): void;
}

function fmtEta(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/** A cli-progress bar per epoch. */
class BarReporter implements ProgressReporter {
  private bar: SingleBar | null = null;
  constructor(private readonly stream: NodeJS.WriteStream) {}

  startEpoch(epoch: number, epochs: number, batches: number, startBatch: number): void {
    this.bar = new SingleBar({
      stream: this.stream,
      format: 'epoch {epoch}/{epochs} [{bar}] {value}/{total} | step {step} | {sps} samples/s | loss {loss} | ETA {etaText}',
      barsize: 24,
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 50,
    });
    this.bar.start(batches, startBatch, { epoch: epoch + 1, epochs, step: 0, sps: '-', loss: '-', etaText: '?' });
  }

  tick(t: ProgressTick): void {
    const eta = t.samplesPerSec > 0 ? ((t.batches - t.batch) * t.batchSize) / t.samplesPerSec : NaN;
    this.bar?.update(t.batch, { step: t.step, sps: t.samplesPerSec.toFixed(0), loss: t.loss.toFixed(3), etaText: fmtEta(eta) });
  }

  endEpoch(): void {
    this.bar?.stop();
    this.bar = null;
  }

  log(line: string): void {
    if (this.bar) {
      this.stream.write('\n');
    }
    this.stream.write(`${line}\n`);
  }

  stop(): void {
    this.endEpoch();
  }
}

/** Plain lines every `every` steps and at the end of each epoch. */
class PlainReporter implements ProgressReporter {
  private last: ProgressTick | null = null;
  constructor(
    private readonly out: (line: string) => void,
    private readonly every: number,
  ) {}
  startEpoch(): void {}
  tick(t: ProgressTick): void {
    this.last = t;
    if (t.step % this.every === 0) this.print(t);
  }
  private print(t: ProgressTick): void {
    this.out(
      `epoch ${t.epoch + 1}/${t.epochs} batch ${t.batch}/${t.batches} step ${t.step} | ${t.samplesPerSec.toFixed(0)} samples/s | loss ${t.loss.toFixed(4)}`,
    );
  }
  endEpoch(): void {
    if (this.last && this.last.step % this.every !== 0) this.print(this.last);
  }
  log(line: string): void {
    this.out(line);
  }
  stop(): void {}
}

class SilentReporter implements ProgressReporter {
  startEpoch(): void {}
  tick(): void {}
  endEpoch(): void {}
  log(): void {}
  stop(): void {}
}

/** The reporter for a `train.progress` setting; "auto" picks the bar only on a terminal. */
export function makeReporter(mode: 'auto' | 'bar' | 'plain' | 'none', every: number, log: (line: string) => void): ProgressReporter {
  const tty = process.stderr.isTTY === true;
  if (mode === 'none') return new SilentReporter();
  if (mode === 'bar' || (mode === 'auto' && tty)) return new BarReporter(process.stderr);
  return new PlainReporter(log, every);
}
