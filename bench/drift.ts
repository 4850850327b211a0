/**
 * How far two runs of one experiment drift apart: per-epoch train and validation losses, the
 * logged step losses, the final test metrics, and every tensor of the last checkpoint (weights and
 * Adam moments), compared element by element.
 *
 * Made for the native pack against the pure-wasm path (the same seed and data; the paths differ in
 * summation order, in the pack's own exp/log1p, and in the pack's flush-to-zero of denormals, see
 * native/README.md), but it compares any two run directories:
 *
 *   npx ts-node --transpile-only bench/drift.ts <runDirA> <runDirB> [--labels native,wasm]
 *
 * Differences: abs = |a - b|; rel = |a - b| / max(|a|, |b|) over the elements where that is > 0;
 * relL2 = ||a - b|| / ||a||. "denormal" counts elements of magnitude in (0, 2^-126): the pure-wasm
 * path keeps them, the native pack flushes them to 0.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadCheckpoint } from '../core/train/checkpoint';

type Record_ = { kind: string; step?: number; epoch?: number; [k: string]: unknown };

const MIN_NORMAL = 2 ** -126;

function readMetrics(runDir: string): Record_[] {
  return fs
    .readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record_);
}

function lastCheckpoint(runDir: string): string {
  const dir = path.join(runDir, 'checkpoints');
  const latest = JSON.parse(fs.readFileSync(path.join(dir, 'latest.json'), 'utf8')) as { file: string };
  return path.join(dir, latest.file);
}

function rel(a: number, b: number): number {
  const m = Math.max(Math.abs(a), Math.abs(b));
  return m === 0 ? 0 : Math.abs(a - b) / m;
}

const num = (x: unknown): number => (typeof x === 'number' ? x : NaN);
const e = (x: number): string => (Number.isNaN(x) ? '-' : x === 0 ? '0' : x.toExponential(2));
const f = (x: number, d = 4): string => (Number.isNaN(x) ? '-' : x.toFixed(d));

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

function main(): void {
  const args = process.argv.slice(2);
  const labelAt = args.indexOf('--labels');
  const [la, lb] = labelAt >= 0 ? args[labelAt + 1].split(',') : ['A', 'B'];
  const dirs = args.filter((a, i) => a !== '--labels' && i !== labelAt + 1);
  if (dirs.length !== 2) {
    console.error('usage: bench/drift.ts <runDirA> <runDirB> [--labels a,b]');
    process.exit(2);
  }
  const [ra, rb] = dirs.map(readMetrics);
  console.log(`A (${la}): ${dirs[0]}\nB (${lb}): ${dirs[1]}\n`);

  // Per epoch: the epoch's mean train loss and the validation loss.
  const epochs = (r: Record_[]) => new Map(r.filter((x) => x.kind === 'epoch').map((x) => [x.epoch as number, x]));
  const [ea, eb] = [epochs(ra), epochs(rb)];
  const epochRows = [...ea.keys()].filter((k) => eb.has(k)).map((k) => {
    const [a, b] = [ea.get(k)!, eb.get(k)!];
    const [ta, tb, va, vb] = [num(a['train/loss']), num(b['train/loss']), num(a['val/loss']), num(b['val/loss'])];
    return [String(k), f(ta), f(tb), e(rel(ta, tb)), f(va), f(vb), e(rel(va, vb))];
  });
  console.log(table(['epoch', `train ${la}`, `train ${lb}`, 'rel', `val ${la}`, `val ${lb}`, 'rel'], epochRows));

  // Logged step losses: the first step that differs, and the largest difference in each epoch.
  const steps = (r: Record_[]) => new Map(r.filter((x) => x.kind === 'step').map((x) => [x.step as number, num(x['train/loss'])]));
  const [sa, sb] = [steps(ra), steps(rb)];
  const common = [...sa.keys()].filter((s) => sb.has(s)).sort((p, q) => p - q);
  const firstDiff = common.find((s) => sa.get(s) !== sb.get(s));
  console.log(`\nlogged step losses: ${common.length} common steps; first that differs: ${firstDiff ?? 'none'}`);
  const stepRows: string[][] = [];
  for (const [k, rec] of ea) {
    const lo = k === 1 ? 0 : num(ea.get(k - 1)?.step);
    const inEpoch = common.filter((s) => s > lo && s <= num(rec.step));
    if (inEpoch.length === 0) continue;
    const worst = Math.max(...inEpoch.map((s) => rel(sa.get(s)!, sb.get(s)!)));
    stepRows.push([String(k), `${inEpoch[0]}-${inEpoch[inEpoch.length - 1]}`, e(worst)]);
  }
  console.log(table(['epoch', 'steps', 'max rel of step loss'], stepRows));

  const test = (r: Record_[]) => r.find((x) => x.kind === 'test');
  const [qa, qb] = [test(ra), test(rb)];
  if (qa && qb) {
    const keys = Object.keys(qa).filter((k) => k.startsWith('test/') && k in qb);
    console.log('\nfinal test metrics');
    console.log(table(['metric', la, lb, 'rel'], keys.map((k) => [k, f(num(qa[k])), f(num(qb[k])), e(rel(num(qa[k]), num(qb[k])))])));
  }

  // The last checkpoints, tensor by tensor.
  const [fa, fb] = dirs.map(lastCheckpoint);
  const [ca, cb] = [loadCheckpoint(fa), loadCheckpoint(fb)];
  console.log(`\nlast checkpoints: ${path.basename(fa)} (step ${ca.meta.step}) and ${path.basename(fb)} (step ${cb.meta.step})`);
  const rows: string[][] = [];
  for (const [name, ta] of ca.tensors) {
    const tb = cb.tensors.get(name);
    if (tb === undefined || tb.data.length !== ta.data.length) {
      rows.push([name, `[${ta.shape}]`, 'missing or other shape in B', '', '', '', '', '', '']);
      continue;
    }
    let maxAbs = 0;
    let maxRel = 0;
    let d2 = 0;
    let a2 = 0;
    let equal = 0;
    let denA = 0;
    let denB = 0;
    for (let i = 0; i < ta.data.length; i++) {
      const [x, y] = [ta.data[i], tb.data[i]];
      const d = Math.abs(x - y);
      maxAbs = Math.max(maxAbs, d);
      maxRel = Math.max(maxRel, rel(x, y));
      d2 += d * d;
      a2 += x * x;
      if (x === y) equal++;
      if (x !== 0 && Math.abs(x) < MIN_NORMAL) denA++;
      if (y !== 0 && Math.abs(y) < MIN_NORMAL) denB++;
    }
    const n = ta.data.length;
    rows.push([name, `[${ta.shape}]`, e(maxAbs), e(maxRel), e(a2 === 0 ? 0 : Math.sqrt(d2 / a2)), `${((100 * equal) / n).toFixed(1)}%`, String(denA), String(denB)]);
  }
  console.log(table(['tensor', 'shape', 'max abs', 'max rel', 'relL2', 'equal', `denormal ${la}`, `denormal ${lb}`], rows));
}

main();
