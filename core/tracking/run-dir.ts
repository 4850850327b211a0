/**
 * A run directory, runs/<experiment-name>/<run-id>/:
 *   config.json     the resolved experiment (every key explicit; itself a valid experiment file)
 *   run.json        where it came from: experiment file, overrides, backend, command line
 *   metrics.jsonl   one JSON object per logged step, epoch and evaluation
 *   summary.json    final metrics, wall time, backend, seed, status
 *   checkpoints/    epoch-NNNN.ckpt, best.ckpt, interrupt.ckpt, latest.json (pointer)
 *   images/         reconstruction, sample, interpolation (and, with visible quadrants, completion) and latent traversal grids (PNG; traversals*.json: the dimensions shown, their KL and values)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError } from '../errors';
import { appendJsonLine, readJsonIfExists, writeJsonAtomic } from './files';
import { migrateSavedConfig } from '../config/migrate';

/** Where a run came from. */
export interface RunSource {
  experimentFile: string;
  overrides: string[];
  argv: string[];
  backend: string;
  startedAt: string;
  resumedAt?: string[];
}

function stamp(d = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

/** Paths and writers of one run directory. */
export class RunDir {
  private constructor(readonly dir: string) {}

  /** Creates a fresh run directory under root/name. */
  static create(root: string, name: string, seed: number): RunDir {
    const base = path.resolve(root, name);
    fs.mkdirSync(base, { recursive: true });
    const id = `${stamp()}-s${seed}`;
    let dir = path.join(base, id);
    for (let i = 2; fs.existsSync(dir); i++) dir = path.join(base, `${id}-${i}`);
    fs.mkdirSync(dir);
    const run = new RunDir(dir);
    fs.mkdirSync(run.checkpoints, { recursive: true });
    fs.mkdirSync(run.images, { recursive: true });
    return run;
  }

  /** Opens an existing run directory; names what is missing if it is not one. */
  static open(dir: string, key = 'run directory'): RunDir {
    const abs = path.resolve(dir);
    if (!fs.existsSync(path.join(abs, 'config.json'))) {
      throw new ConfigError(`${key} ${JSON.stringify(dir)}: not a vaelab run directory (no config.json)`);
    }
    return new RunDir(abs);
  }

  get id(): string {
    return path.basename(this.dir);
  }
  get checkpoints(): string {
    return path.join(this.dir, 'checkpoints');
  }
  get images(): string {
    return path.join(this.dir, 'images');
  }
  file(name: string): string {
    return path.join(this.dir, name);
  }

  writeConfig(config: unknown): void {
    writeJsonAtomic(this.file('config.json'), config);
  }
  /** The saved config, with keys of earlier vaelab versions read as today's (config/migrate.ts). */
  readConfig(): Record<string, unknown> {
    const raw = readJsonIfExists<Record<string, unknown>>(this.file('config.json'));
    return raw ? migrateSavedConfig(raw) : raw!;
  }
  writeSource(src: RunSource): void {
    writeJsonAtomic(this.file('run.json'), src);
  }
  readSource(): RunSource | undefined {
    return readJsonIfExists<RunSource>(this.file('run.json'));
  }
  appendMetrics(record: Record<string, unknown>): void {
    appendJsonLine(this.file('metrics.jsonl'), { time: new Date().toISOString(), ...record });
  }
  /** Every metrics record written so far. */
  readMetrics(): Array<Record<string, unknown>> {
    const f = this.file('metrics.jsonl');
    if (!fs.existsSync(f)) return [];
    return fs
      .readFileSync(f, 'utf8')
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }
  writeSummary(summary: Record<string, unknown>): void {
    writeJsonAtomic(this.file('summary.json'), summary);
  }

  /** The checkpoint a resume continues from: the pointer's target. */
  latestCheckpoint(): string | undefined {
    const p = readJsonIfExists<{ file: string }>(path.join(this.checkpoints, 'latest.json'));
    return p ? path.join(this.checkpoints, p.file) : undefined;
  }
  setLatest(file: string): void {
    writeJsonAtomic(path.join(this.checkpoints, 'latest.json'), { file: path.basename(file) });
  }
}
