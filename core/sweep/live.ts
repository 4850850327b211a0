/**
 * The results table while a sweep runs: the trials sorted by the metric (as results.csv), each
 * with its parameters, its status (running with its newest epoch and value, pruned at an
 * epoch, failed, completed) and its value.
 *
 * - `redraw` (a terminal): the table stays under the sweep's log lines and is drawn again in
 *   place after every change (a trial starts, reports an epoch, ends). It fits the terminal:
 *   lines cut at its width, the best rows and every running trial at most its height.
 * - `plain` (a pipe or a file, as core/tracking/progress.ts prints plain lines there): the
 *   standings as plain lines after each trial ends, the best 10 rows and the running trials.
 * - `none`.
 *
 * The redraw moves the cursor up over the lines it drew and clears to the end of the screen
 * (ANSI CSI n A, CSI J), as log-update does; that package is not a dependency (its maintained
 * versions are ES modules only) and cli-progress draws bars, not tables.
 */
import { rankTrials, shown, table, type ResultRow } from './results';
import { showParams } from './space';
import type { SweepSpec } from './spec';
import type { SweepState } from './state';

export type LiveMode = 'redraw' | 'plain' | 'none';

/** Where a redrawn table goes: a terminal stream (process.stderr) or a stand-in. */
export interface LiveOutput {
  write(text: string): unknown;
  columns?: number;
  rows?: number;
}

/** `auto` picks `redraw` on a terminal and `plain` elsewhere. */
export function liveModeFor(requested: 'auto' | LiveMode, stream: { isTTY?: boolean }): LiveMode {
  if (requested !== 'auto') return requested;
  return stream.isTTY === true ? 'redraw' : 'plain';
}

/** The status cell of a trial: what it is doing or how it ended. */
export function statusText(r: ResultRow): string {
  const latest = r.latest ? `, epoch ${r.latest.epoch}: ${shown(r.latest.value)}` : '';
  if (r.status === 'pruned') return `pruned at epoch ${r.epochs}`;
  if (r.status === 'failed') return `failed (${r.attempts} attempt${r.attempts === 1 ? '' : 's'})`;
  if (r.status === 'running' || r.status === 'interrupted') return `${r.status}${latest}`;
  return r.status;
}

const ENDED = new Set(['completed', 'pruned', 'failed']);

/** The standings: a summary line and the table of the rows to show. */
export function standings(spec: SweepSpec, state: SweepState, maxRows: number): string[] {
  const rows = rankTrials(state, spec.metric.goal);
  const count = (s: string) => rows.filter((r) => r.status === s).length;
  const ended = rows.filter((r) => ENDED.has(r.status)).length;
  const parts = ['completed', 'pruned', 'running', 'failed'].filter((s) => count(s) > 0).map((s) => `${count(s)} ${s}`);
  const head = `sweep ${spec.name}: ${ended} of ${spec.budget.trials} trials ended${parts.length > 0 ? ` (${parts.join(', ')})` : ''}; by ${spec.metric.name} (${spec.metric.goal})`;
  // The best rows, and every running trial even when it ranks below them.
  const running = rows.filter((r) => r.status === 'running').length;
  const room = Math.max(0, maxRows - running);
  let kept = 0;
  const visible = rows.filter((r) => {
    if (r.status === 'queued') return false;
    if (r.status === 'running') return true;
    return kept++ < room;
  });
  if (visible.length === 0) return [head];
  const hidden = rows.filter((r) => r.status !== 'queued').length - visible.length;
  const lines = table(
    ['rank', 'trial', spec.metric.name, 'status', 'parameters'],
    visible.map((r) => [String(r.rank), String(r.trial), shown(r.value), statusText(r), `${showParams(r.params)}${r.seed !== null ? `${Object.keys(r.params).length > 0 ? ', ' : ''}seed=${r.seed}` : ''}`]),
  );
  return [head, ...lines.map((l) => `  ${l}`), ...(hidden > 0 ? [`  ... ${hidden} more in results.csv`] : [])];
}

/** The live table of one sweep session. */
export class LiveTable {
  private drawn = 0;
  private lines: string[] = [];
  private ended = -1;

  constructor(
    private readonly spec: SweepSpec,
    readonly mode: LiveMode,
    private readonly log: (line: string) => void,
    private readonly out: LiveOutput | null,
  ) {}

  /** After every change of the state. */
  update(state: SweepState): void {
    if (this.mode === 'redraw') {
      const height = this.out?.rows ?? 24;
      this.lines = standings(this.spec, state, Math.max(3, Math.floor(height / 2) - 2));
      this.clear();
      this.draw();
    } else if (this.mode === 'plain') {
      const ended = state.trials.filter((t) => ENDED.has(t.status)).length;
      if (ended !== this.ended && ended > 0) for (const l of standings(this.spec, state, 10)) this.log(l);
      this.ended = ended;
    }
  }

  /** Prints a log line: in redraw mode above the table, which is drawn again under it. */
  print(line: string): void {
    if (this.mode !== 'redraw') return this.log(line);
    this.clear();
    this.log(line);
    this.draw();
  }

  /** Takes the table off the screen (the final results are printed after it). */
  close(): void {
    if (this.mode === 'redraw') this.clear();
    this.lines = [];
  }

  private clear(): void {
    if (this.drawn > 0) this.out?.write(`\x1b[${this.drawn}A\x1b[J`);
    this.drawn = 0;
  }

  private draw(): void {
    if (!this.out || this.lines.length === 0) return;
    // A line longer than the terminal wraps and would leave its tail behind on the next redraw.
    const width = Math.max(20, (this.out.columns ?? 80) - 1);
    const cut = this.lines.map((l) => (l.length > width ? `${l.slice(0, width - 1)}…` : l));
    this.out.write(`${cut.join('\n')}\n`);
    this.drawn = cut.length;
  }
}
