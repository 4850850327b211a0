/**
 * The speed check of issue 14: sweeps/eight-short-trials.yaml (8 trials of 3 epochs of 30 000
 * MNIST images) run with 1 worker, then with 2, in one run; prints both wall times and the ratio
 * (target: 2 workers take at most 1/1.8 = 0.56 of the time of 1).
 *
 *   npx ts-node --transpile-only bench/sweep-ratio.ts [--sweep sweeps/eight-short-trials.yaml] [--workers 1,2] [--keep]
 *
 * Run it on an otherwise idle machine: the figure compares one core with two, so anything else
 * running makes it meaningless. Each sweep is `node bin/vaelab.js sweep FILE --workers N --out
 * DIR --table none` in a fresh temporary directory, timed from the spawn to the exit (the
 * command as a user runs it: Node's start, the check of every config, the worker processes,
 * the trials, the results and the pictures). Besides the wall time the table splits it, from
 * the sweep's events.jsonl and log, all from the spawn: when the check of every config ended,
 * when the first trial started (the worker processes ready), the span from the first trial's
 * start to the last trial's end, when the results were written, and the rest (the pictures and
 * the exit); and the seconds of each trial (events.jsonl). bin/vaelab.js runs dist/ when it is
 * current (`npm run build`), else the sources through ts-node, which costs every process
 * seconds of start-up: build first for figures a user of the package would see.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..');
const argOf = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const SWEEP = path.resolve(argOf('sweep', path.join(ROOT, 'sweeps', 'eight-short-trials.yaml')));
const WORKERS = argOf('workers', '1,2').split(',').map(Number);
const KEEP = process.argv.includes('--keep');

interface Timing {
  workers: number;
  wall: number;
  check: number;
  firstStart: number;
  trials: number;
  results: number;
  perTrial: number[];
  dir: string;
}

async function once(workers: number): Promise<Timing> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `vaelab-ratio-${workers}-`));
  const out = path.join(dir, 'sweep');
  const t0 = Date.now();
  const marks: Record<string, number> = {};
  const code = await new Promise<number | null>((resolve) => {
    const p = spawn(process.execPath, [path.join(ROOT, 'bin', 'vaelab.js'), 'sweep', SWEEP, '--workers', String(workers), '--out', out, '--table', 'none'], { stdio: ['ignore', 'inherit', 'pipe'] });
    let buf = '';
    p.stderr.on('data', (c: Buffer) => {
      buf += c.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (/\d+ configs validated \(/.test(line)) marks.check = Date.now() - t0;
        if (/^results: /.test(line)) marks.results = Date.now() - t0;
        fs.appendFileSync(path.join(dir, 'sweep.log'), `${((Date.now() - t0) / 1000).toFixed(1)} ${line}\n`);
      }
    });
    p.on('exit', (c) => resolve(c));
  });
  const wall = (Date.now() - t0) / 1000;
  if (code !== 0) throw new Error(`the sweep with ${workers} workers exited with ${code}; see ${path.join(dir, 'sweep.log')}`);
  const events = fs
    .readFileSync(path.join(out, 'events.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { time: string; event: string; seconds?: number });
  const starts = events.filter((e) => e.event === 'start').map((e) => Date.parse(e.time));
  const ends = events.filter((e) => e.event === 'end');
  return {
    workers,
    wall,
    check: (marks.check ?? NaN) / 1000,
    firstStart: (Math.min(...starts) - t0) / 1000,
    trials: (Math.max(...ends.map((e) => Date.parse(e.time))) - Math.min(...starts)) / 1000,
    results: (marks.results ?? NaN) / 1000,
    perTrial: ends.map((e) => e.seconds ?? NaN),
    dir,
  };
}

async function main(): Promise<void> {
  const load = os.loadavg()[0];
  process.stderr.write(`${path.relative(process.cwd(), SWEEP)} with ${WORKERS.join(', then ')} workers; ${os.cpus().length} cores, load average ${load.toFixed(1)} at the start\n`);
  if (load > 0.5) process.stderr.write(`warning: the machine is not idle (load ${load.toFixed(1)}); the ratio will not mean much\n`);
  const rows: Timing[] = [];
  for (const w of WORKERS) {
    rows.push(await once(w));
    process.stderr.write(`  ${w} worker${w > 1 ? 's' : ''}: ${rows[rows.length - 1].wall.toFixed(1)} s\n`);
  }
  const f = (x: number) => x.toFixed(1);
  console.log(`| workers | wall time | check done at | first trial started at | first trial start to last end | results written at | pictures and exit | seconds per trial |`);
  console.log(`|---|---|---|---|---|---|---|---|`);
  for (const r of rows) {
    console.log(`| ${r.workers} | ${f(r.wall)} s | ${f(r.check)} s | ${f(r.firstStart)} s | ${f(r.trials)} s | ${f(r.results)} s | ${f(r.wall - r.results)} s | ${f(Math.min(...r.perTrial))}-${f(Math.max(...r.perTrial))} |`);
  }
  if (rows.length >= 2) {
    const [a, b] = [rows[0], rows[rows.length - 1]];
    console.log(`ratio ${b.workers} workers / ${a.workers}: ${(b.wall / a.wall).toFixed(3)} (wall time; target <= ${(1 / 1.8).toFixed(3)}); results written: ${(b.results / a.results).toFixed(3)}; trials span: ${(b.trials / a.trials).toFixed(3)}`);
  }
  console.log(`load average at the end: ${os.loadavg()[0].toFixed(1)}`);
  for (const r of rows) {
    if (KEEP) console.log(`sweep directory (${r.workers} workers): ${r.dir}`);
    else fs.rmSync(r.dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
