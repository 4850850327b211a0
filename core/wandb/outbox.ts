/**
 * What a run has for W&B and what the server has taken, kept in the run directory so that
 * nothing is lost when the server is down, slow or refuses the key:
 *
 *   <run>/wandb/state.json     the W&B run (id, project, entity, group, tags, notes, config),
 *                              the final summary and exit code once the run ended, and how far
 *                              the server acknowledged: the run created, rows, summary, end
 *   <run>/wandb/pending.jsonl  the history rows not yet acknowledged, one JSON object a line;
 *                              a row's `_step` is its line number in the W&B run (its file_stream offset)
 *
 * state.json is written atomically (core/tracking/files.ts). Rows are appended with one write
 * each; acknowledged rows are dropped by rewriting pending.jsonl atomically after state.json
 * records them, and readers skip rows below `sent.rows`, so a crash between the two writes
 * loses nothing and sends nothing twice. One process owns a run directory at a time: the
 * training process while it runs, `vaelab wandb-sync` after it.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readJsonIfExists, writeFileAtomic, writeJsonAtomic } from '../tracking/files';

/** A history row: `_step` (its line in the W&B run) and the values of one metrics.jsonl record. */
export type Row = Record<string, unknown> & { _step: number };

/** <run>/wandb/state.json. */
export interface WandbState {
  version: 1;
  /** The W&B run id (the SDK's 8 base-36 characters); the same across resumes. */
  runId: string;
  project: string;
  /** Empty until the server named the key's default entity. */
  entity: string;
  group: string;
  displayName: string;
  tags: string[];
  notes: string;
  /** The base URL the run was meant for (WANDB_BASE_URL at training time). */
  baseUrl: string;
  /** The experiment's resolved config. */
  config: Record<string, unknown>;
  /** The process that owns the run while it trains. */
  owner: { pid: number; host: string } | null;
  /** Final values, set when the run ended. */
  summary: Record<string, unknown> | null;
  /** 0 for a run that finished (completed, stopped, pruned, ...), 130 interrupted, 1 failed; null while it runs. */
  exitCode: number | null;
  /** Last value of every key of the rows acknowledged so far (W&B's running summary). */
  lastValues: Record<string, unknown>;
  /** What the server acknowledged. */
  sent: { run: boolean; rows: number; summary: boolean; complete: boolean; at: string | null };
}

/** The run's identity and what W&B shows of it. */
export type WandbIdentity = Pick<WandbState, 'project' | 'entity' | 'group' | 'displayName' | 'tags' | 'notes' | 'baseUrl' | 'config'>;

/** A W&B run id as the SDK makes one (dist/sdk/lib/runid.js): 8 characters of [a-z0-9]. */
export function newRunId(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return Array.from(crypto.randomBytes(8), (b) => alphabet[Math.floor((b / 256) * alphabet.length)]).join('');
}

/** The W&B files of one run directory. */
export class Outbox {
  private constructor(
    readonly dir: string,
    readonly state: WandbState,
    /** The `_step` the next row gets. */
    private next: number,
  ) {}

  static stateFile(runDir: string): string {
    return path.join(runDir, 'wandb', 'state.json');
  }

  /** Whether a run directory has W&B data. */
  static exists(runDir: string): boolean {
    return fs.existsSync(Outbox.stateFile(runDir));
  }

  /**
   * Opens the outbox of a run that starts or resumes training in this process: a new W&B run,
   * or, when the directory has one (a resumed run), the same run with its end undone.
   */
  static forTraining(runDir: string, identity: WandbIdentity): Outbox {
    const dir = path.join(runDir, 'wandb');
    fs.mkdirSync(dir, { recursive: true });
    const saved = readJsonIfExists<WandbState>(Outbox.stateFile(runDir));
    const owner = { pid: process.pid, host: os.hostname() };
    const state: WandbState = saved
      ? // A resume: the same W&B run, created again (state running) and ended again later.
        { ...saved, owner, summary: null, exitCode: null, sent: { ...saved.sent, run: false, summary: false, complete: false } }
      : { version: 1, runId: newRunId(), ...identity, owner, summary: null, exitCode: null, lastValues: {}, sent: { run: false, rows: 0, summary: false, complete: false, at: null } };
    const box = new Outbox(dir, state, 0);
    box.dropTornLine();
    const rows = box.pending();
    box.next = rows.length > 0 ? rows[rows.length - 1]._step + 1 : state.sent.rows;
    box.save();
    return box;
  }

  /** Opens the outbox of a run for `wandb-sync`; undefined when the run has none. */
  static open(runDir: string): Outbox | undefined {
    const state = readJsonIfExists<WandbState>(Outbox.stateFile(runDir));
    if (!state) return undefined;
    const box = new Outbox(path.join(runDir, 'wandb'), state, 0);
    const rows = box.pending();
    box.next = rows.length > 0 ? rows[rows.length - 1]._step + 1 : state.sent.rows;
    return box;
  }

  private get pendingFile(): string {
    return path.join(this.dir, 'pending.jsonl');
  }

  /** Writes state.json atomically. */
  save(): void {
    writeJsonAtomic(path.join(this.dir, 'state.json'), this.state);
  }

  /** A crash in the middle of an append leaves a last line without its newline: cut it off. */
  private dropTornLine(): void {
    if (!fs.existsSync(this.pendingFile)) return;
    const text = fs.readFileSync(this.pendingFile, 'utf8');
    if (text === '' || text.endsWith('\n')) return;
    writeFileAtomic(this.pendingFile, text.slice(0, text.lastIndexOf('\n') + 1));
  }

  /** Appends one row (one write call); returns it with its `_step`. */
  append(values: Record<string, unknown>): Row {
    const row: Row = { _step: this.next++, ...values };
    fs.appendFileSync(this.pendingFile, `${JSON.stringify(row)}\n`);
    return row;
  }

  /** Rows not yet acknowledged, in order. */
  pending(): Row[] {
    if (!fs.existsSync(this.pendingFile)) return [];
    const rows: Row[] = [];
    for (const line of fs.readFileSync(this.pendingFile, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      let row: Row;
      try {
        row = JSON.parse(line) as Row;
      } catch {
        continue; // a torn last line, while the run that writes it is still appending
      }
      if (row._step >= this.state.sent.rows) rows.push(row);
    }
    return rows;
  }

  /** Records that the server took every row below `upTo`, then drops them from pending.jsonl. */
  acknowledgeRows(upTo: number, rows: Row[]): void {
    for (const r of rows) {
      for (const [k, v] of Object.entries(r)) if (!k.startsWith('_')) this.state.lastValues[k] = v;
    }
    this.state.sent.rows = upTo;
    this.acknowledged();
    const keep = this.pending().map((r) => `${JSON.stringify(r)}\n`).join('');
    writeFileAtomic(this.pendingFile, keep);
  }

  /** Saves the state after an acknowledgement. */
  acknowledged(): void {
    this.state.sent.at = new Date().toISOString();
    this.save();
  }

  /** The run ended: its final values and exit code. */
  end(summary: Record<string, unknown> | null, exitCode: number): void {
    this.state.summary = summary;
    this.state.exitCode = exitCode;
    this.state.owner = null;
    this.save();
  }

  /** True when the server has everything there is to send now. */
  get settled(): boolean {
    const s = this.state;
    if (!s.sent.run || this.pending().length > 0) return false;
    if (s.exitCode === null) return true;
    return (s.summary === null || s.sent.summary) && s.sent.complete;
  }

  /** What is left to send, in words: "12 rows, the summary, the end". */
  describePending(): string {
    const s = this.state;
    const parts: string[] = [];
    if (!s.sent.run) parts.push('the run (config, tags, notes)');
    const n = this.pending().length;
    if (n > 0) parts.push(`${n} row${n === 1 ? '' : 's'}`);
    if (s.summary && !s.sent.summary) parts.push('the summary');
    if (s.exitCode !== null && !s.sent.complete) parts.push('the end');
    return parts.join(', ');
  }
}
