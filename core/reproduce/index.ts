/**
 * `vaelab reproduce NAME` trains (or resumes) a published setting, evaluates it as the paper did,
 * and prints ours next to the reference with the tolerance and the verdict; `vaelab reproduce
 * --list` shows every row of the manifest with its status. Training and evaluation run as child
 * processes of the ordinary `vaelab train` and `vaelab eval` (their output, checkpoints and
 * Ctrl-C behaviour unchanged), so a reproduction is exactly what those commands give.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { closest } from 'fastest-levenshtein';
import { ConfigError, TrainingError } from '../errors';
import { formatTable } from '../tracking/runs-cli';
import { defaultManifest, readManifest, type Manifest, type Row, type RunRow } from './manifest';
import { claimStatus, manifestStatus, rowStatus, type ClaimStatus, type RowStatus } from './status';

export { readManifest, type Manifest, type Row } from './manifest';
export { manifestStatus, rowStatus, claimStatus, type RowStatus, type ClaimStatus } from './status';

/** bin/vaelab.js of this installation. */
function binPath(): string {
  for (const up of ['../../bin/vaelab.js', '../../../bin/vaelab.js']) {
    const f = path.resolve(__dirname, up);
    if (fs.existsSync(f)) return f;
  }
  throw new Error('bin/vaelab.js not found next to the compiled core');
}

/** Runs `vaelab ARGS` with this terminal; resolves with its exit code. Ctrl-C reaches the child from the terminal. */
function vaelab(args: string[], log: (line: string) => void): Promise<number> {
  log(`$ npx vaelab ${args.join(' ')}`);
  return new Promise((resolve, reject) => {
    // the child's stdout goes to stderr: this command's stdout is the comparison alone
    const child = spawn(process.execPath, [binPath(), ...args], { stdio: ['inherit', 2, 'inherit'] });
    // the child writes its checkpoint on Ctrl-C; this process waits for it instead of dying first
    const ignore = () => undefined;
    process.on('SIGINT', ignore);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      process.removeListener('SIGINT', ignore);
      resolve(code ?? (signal === 'SIGINT' ? 130 : 1));
    });
  });
}

const fmt = (v: number | null | undefined) => (v === null || v === undefined ? '-' : Math.abs(v) < 1 ? v.toFixed(4) : v.toFixed(2));

function refText(row: RunRow): string {
  return 'value' in row.reference ? fmt(row.reference.value) : 'none';
}

function duration(s: number | null): string {
  if (s === null || s === 0) return '-';
  return s >= 3600 ? `${(s / 3600).toFixed(1)} h` : s >= 60 ? `${(s / 60).toFixed(1)} min` : `${s.toFixed(0)} s`;
}

/** The --list table. */
export function listTable(statuses: Array<RowStatus | ClaimStatus>): string {
  const rows = statuses.map((s) => {
    if ('run' in s) {
      const ref = s.row.reference;
      const epochs = s.epochs === null ? '-' : `${s.epochs}${'value' in ref && ref.epochs ? ` of ${ref.epochs}` : ''}`;
      return [s.row.name, s.row.metric.label, refText(s.row), fmt(s.value), epochs, duration(s.seconds), s.verdict];
    }
    return [s.row.name, 'claim', '-', '-', '-', '-', s.verdict];
  });
  return formatTable(['name', 'metric', 'reference', 'ours', 'epochs', 'train time', 'status'], rows);
}

/** What `reproduce NAME` prints at the end. */
export function rowReport(s: RowStatus): string {
  const r = s.row;
  const lines = [`${r.name}: ${r.title}`, `  ${r.metric.label}: ours ${fmt(s.value)}${s.se !== null ? ` (standard error over examples ${fmt(s.se)})` : ''}${s.from ? `, from ${s.from}` : ''}`];
  if ('value' in r.reference) {
    lines.push(`  reference ${fmt(r.reference.value)}: ${r.reference.source}${r.reference.setting ? `; ${r.reference.setting}` : ''}${r.reference.epochs ? `; ${r.reference.epochs} epochs` : ''}`);
  } else lines.push(`  reference: none (${r.reference.none})`);
  lines.push(`  trained: ${s.epochs ?? 0} epochs, ${duration(s.seconds)}${s.run ? ` (${s.run.dir})` : ''}`);
  lines.push(`  verdict: ${s.verdict}`);
  return lines.join('\n');
}

export interface ReproduceOptions {
  out: string;
  set: string[];
  manifest?: string;
  list?: boolean;
  train: boolean;
  fresh?: boolean;
}

function findRow(m: Manifest, name: string): Row {
  const row = m.rows.find((r) => r.name === name);
  if (row) return row;
  const near = closest(name, m.rows.map((r) => r.name));
  throw new ConfigError(`reproduce: no reproduction named ${JSON.stringify(name)} in ${m.file}; did you mean ${JSON.stringify(near)}? (npx vaelab reproduce --list shows them all)`);
}

/** Trains (or resumes) and evaluates one row; returns an exit code (130 after Ctrl-C). */
async function reproduceRow(row: RunRow, o: ReproduceOptions, log: (line: string) => void): Promise<number> {
  let st = rowStatus(row, o.out);
  if (st.run?.status === 'running') throw new ConfigError(`reproduce ${row.name}: its run ${st.run.dir} is training in another process; wait for it or stop it first`);
  if (o.train) {
    const rel = (d: string) => path.relative(process.cwd(), d) || d;
    let code = 0;
    if (!st.run || o.fresh) code = await vaelab(['train', rel(row.experiment), '--out', o.out, ...[...row.set, ...o.set].flatMap((s) => ['--set', s])], log);
    else if (st.run.status !== 'finished') {
      if (o.set.length) log(`note: --set is for a fresh run; ${rel(st.run.dir)} continues with its saved config (--fresh starts a new run)`);
      code = await vaelab(['train', '--resume', rel(st.run.dir)], log);
    } else log(`${row.name}: trained already (${rel(st.run.dir)})`);
    if (code !== 0) return code;
    st = rowStatus(row, o.out);
  }
  if (st.needsEval && row.evaluate && st.run) {
    const args = ['eval', path.relative(process.cwd(), st.run.dir) || st.run.dir, '--k', String(row.evaluate.k)];
    if (row.evaluate.limit > 0) args.push('--limit', String(row.evaluate.limit));
    const code = await vaelab(args, log);
    if (code !== 0) return code;
    st = rowStatus(row, o.out);
  }
  return 0;
}

export async function reproduce(name: string | undefined, o: ReproduceOptions, out: (line: string) => void, err: (line: string) => void): Promise<number> {
  const m = readManifest(o.manifest ?? defaultManifest());
  if (o.list || !name) {
    if (!o.list) throw new ConfigError('reproduce: give a reproduction NAME, or --list to see them');
    out(listTable(manifestStatus(m, o.out)));
    return 0;
  }
  const row = findRow(m, name);
  const targets = row.kind === 'claim' ? [...row.lower, ...row.than].map((n) => findRow(m, n) as RunRow) : [row];
  for (const t of targets) {
    const code = await reproduceRow(t, o, err);
    if (code === 130) {
      err(`interrupted; continue with: npx vaelab reproduce ${name}`);
      return 130;
    }
    if (code !== 0) throw new TrainingError(`reproduce ${t.name}: vaelab exited with code ${code}`);
  }
  const statuses = new Map(targets.map((t) => [t.name, rowStatus(t, o.out)]));
  for (const s of statuses.values()) out(rowReport(s));
  if (row.kind === 'claim') out(`${row.name}: ${row.title}\n  verdict: ${claimStatus(row, statuses).verdict}`);
  return 0;
}

const collect = (v: string, prev: string[]) => [...prev, v];

export function registerReproduceCommand(prog: Command, state: { code: number }, out: (line: string) => void, err: (line: string) => void): void {
  prog
    .command('reproduce')
    .description('train (or resume) and evaluate a published baseline, and compare it with the reference; --list shows them all')
    .argument('[name]', 'a reproduction of experiments/baselines/reproductions.yaml')
    .option('--list', 'every reproduction with its reference, our value, epochs, wall time and status')
    .option('--out <dir>', 'root of the run directories', 'runs')
    .option('--set <key=value>', 'override a config key of a fresh run (e.g. train.epochs=10 for a shorter one); repeatable', collect, [])
    .option('--fresh', 'start a new run even when one exists')
    .option('--no-train', 'only evaluate and compare the runs that exist')
    .option('--manifest <file>', 'the reproductions file (default experiments/baselines/reproductions.yaml)')
    .action(async (name: string | undefined, o: ReproduceOptions) => {
      state.code = await reproduce(name, o, out, err);
    });
}
