/**
 * The optional native kernel pack: an N-API addon (native/, built by scripts/build-native.js at
 * `npm install`) that runs the hot training kernels of the wasm backend on OpenBLAS.
 *
 * The wasm backend keeps every tensor and every other kernel; the pack replaces `Add` (of a bias), `BatchMatMul`,
 * `_FusedMatMul`, `Conv2D`, `FusedConv2D`, `Conv2DBackpropFilter`, `Conv2DBackpropInput`, `Relu` and
 * `Sum` (over leading axes only: bias gradients, which the stock kernel computes through a full
 * transpose) with calls into the addon on zero-copy Float32Array views of the wasm heap,
 * implements vaelab's fused kernels (core/fused.ts: a dense layer, the Bernoulli log-density,
 * bias + relu, the KL to a standard normal and the Gaussian reparameterisation, each with its
 * gradient, and the relu gradient),
 * and offers a fused in-place Adam step (`nativeAdamStep`) and the sum of squares of the
 * gradients (`nativeSumSquares`). Forms it does not handle (NCHW, PReLU, biases with leading
 * 1s, reductions over other axes, non-float32 Add/Relu/Sum, empty tensors) go to the kernel that
 * was registered before it: vaelab's pure-wasm kernels from wasm-kernels.ts, or the stock ones.
 * Every compute call runs with denormals flushed to zero (vaelab_native.c), so its results are
 * reproducible bit for bit on one machine but are not the pure-wasm path's bits.
 *
 * Inputs are checked before any fallback or addon call, with the checks of wasm-kernels.ts (tfjs's
 * own messages for a matMul whose inner dimensions differ, a conv filter of the wrong depth, ...),
 * so that every kernel refuses the same misuse the same way on either path; the addon checks its
 * array lengths once more (vaelab_native.c).
 *
 * Heap views: allocate every output through the backend first, then take the views (an
 * allocation can grow the heap, which detaches older views); the addon never calls back into
 * JavaScript, so views stay valid for the duration of a call.
 *
 * Environment: VAELAB_NATIVE=0 disables the pack; VAELAB_THREADS sets OpenBLAS's thread count
 * (default 1: we run one process per core); OPENBLAS_CORETYPE is honoured, and when it is unset
 * on x86-64 Linux the core is chosen from the CPU flags (see `chooseCoreType`), because
 * OpenBLAS 0.3.21 falls back to its slow SSE3 "Prescott" kernels on CPUs newer than it knows.
 * Importing this module loads nothing; the addon is loaded on first use.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { backend_util, broadcast_util, util } from '@tensorflow/tfjs-core';
import type {
  BatchMatMulAttrs, Conv2DAttrs, Conv2DBackpropFilterAttrs, Conv2DBackpropInputAttrs, DataType, FusedConv2DAttrs, KernelConfig, KernelFunc,
  SumAttrs, TensorInfo, _FusedMatMulAttrs,
} from '@tensorflow/tfjs-core';
import { ConfigError } from '../errors';
import type { DenseActivation } from '../fused';
import {
  BATCH_NORM, BATCH_NORM_GRAD, BERNOULLI_LOG_PROB, BERNOULLI_LOG_PROB_GRAD, BIAS_RELU, BIAS_RELU_GRAD, DENSE, DENSE_ACTIVATIONS, DENSE_GRAD, isDenseActivation, KL_STD_NORMAL, KL_STD_NORMAL_GRAD,
  LEAKY_RELU_GRAD, RELU_GRAD, REPARAM, REPARAM_GRAD, REPARAM_LOG_PROB,
} from '../fused';
import {
  batchIndexMaps, checkConv2D, checkConv2DBackpropFilter, checkConv2DBackpropInput, checkConvBias, checkFusedMatMulExtras, checkMatMul, installWasmKernels,
} from './wasm-kernels';

/** What `info()` of the addon returns. */
export interface NativeAddonInfo {
  /** `openblas_get_config()`, e.g. `OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY SkylakeX MAX_THREADS=64`. */
  config: string;
  /** `openblas_get_corename()`, e.g. `SkylakeX`. */
  coreName: string;
  /** 0 sequential, 1 pthreads, 2 OpenMP. */
  parallel: number;
  threads: number;
  /** Floats of the im2col chunk buffer (VAELAB_CONV_CHUNK). */
  chunkFloats: number;
}

/**
 * The addon's exports (native/src/vaelab_native.c documents each). All matrices are row-major,
 * images NHWC, filters [kh, kw, Cin, Cout]; every output array is written, never allocated.
 * Arguments are checked before any memory is touched: a TypeError or RangeError names the
 * function and the argument (`vaelab_native.sgemm: C must hold at least 4 floats ...`).
 */
export interface NativeAddon {
  sgemm(
    transA: boolean, transB: boolean, m: number, n: number, k: number, alpha: number,
    a: Float32Array, lda: number, b: Float32Array, ldb: number, beta: number, c: Float32Array, ldc: number,
  ): void;
  sgemmBatched(
    transA: boolean, transB: boolean, m: number, n: number, k: number, alpha: number,
    a: Float32Array, lda: number, strideA: number, b: Float32Array, ldb: number, strideB: number,
    beta: number, c: Float32Array, ldc: number, strideC: number, batch: number,
  ): void;
  biasActivation(y: Float32Array, n: number, bias: Float32Array | null, activation: string, alpha: number): void;
  /** dx = dy act'(x) from the output y (tanh: 1 - y^2; softplus: 1 - exp(-y)) and its column sums. */
  biasActivationGrad(dy: Float32Array, y: Float32Array, dx: Float32Array, dbias: Float32Array, activation: 'tanh' | 'softplus'): void;
  sumRows(x: Float32Array, rows: number, cols: number, out: Float32Array): void;
  conv2d(x: Float32Array, filter: Float32Array, y: Float32Array, info: backend_util.Conv2DInfo): void;
  conv2dBackpropFilter(x: Float32Array, dy: Float32Array, dw: Float32Array, info: backend_util.Conv2DInfo): void;
  conv2dBackpropInput(dy: Float32Array, filter: Float32Array, dx: Float32Array, info: backend_util.Conv2DInfo): void;
  /** With sumSquares true, returns the sum of g^2 as sumSquares(g) gives it (the same bits). */
  adamUpdate(
    p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array,
    stepSize: number, beta1: number, beta2: number, epsilon: number, sqrtBc2: number, weightDecay: number,
    sumSquares?: boolean,
  ): number | undefined;
  bernoulliLogProb(x: Float32Array, logits: Float32Array, out: Float32Array, rows: number, cols: number): void;
  bernoulliLogProbGrad(dy: Float32Array, x: Float32Array, logits: Float32Array, dlogits: Float32Array, rows: number, cols: number): void;
  sumSquares(x: Float32Array): number;
  relu(x: Float32Array, y: Float32Array): void;
  klStdNormal(loc: Float32Array, logVar: Float32Array, out: Float32Array, rows: number, cols: number): void;
  klStdNormalGrad(dy: Float32Array, loc: Float32Array, logVar: Float32Array, dLoc: Float32Array, dLogVar: Float32Array, rows: number, cols: number): void;
  biasAdd(x: Float32Array, bias: Float32Array, y: Float32Array): void;
  biasRelu(x: Float32Array, bias: Float32Array, y: Float32Array): void;
  reluGrad(dy: Float32Array, x: Float32Array, dx: Float32Array): void;
  biasReluGrad(dy: Float32Array, y: Float32Array, dx: Float32Array, dbias: Float32Array): void;
  reparam(loc: Float32Array, logVar: Float32Array, eps: Float32Array, z: Float32Array): void;
  reparamGrad(dz: Float32Array, logVar: Float32Array, eps: Float32Array, dlogVar: Float32Array): void;
  reparamLogProb(logVar: Float32Array, eps: Float32Array, out: Float32Array, rows: number, cols: number): void;
  leakyRelu(x: Float32Array, y: Float32Array, alpha: number): void;
  leakyReluGrad(dy: Float32Array, x: Float32Array, dx: Float32Array, alpha: number): void;
  /** Batch normalisation over the rows of x [rows, cols] with the batch's statistics; writes y, mean and the biased variance. */
  batchNorm(
    x: Float32Array, scale: Float32Array, offset: Float32Array, y: Float32Array, mean: Float32Array, variance: Float32Array,
    rows: number, cols: number, epsilon: number,
  ): void;
  /** Its gradient for x, scale and offset from the gradients of y, the mean and the variance. */
  batchNormGrad(
    dy: Float32Array, x: Float32Array, scale: Float32Array, mean: Float32Array, variance: Float32Array, dmean: Float32Array, dvariance: Float32Array,
    dx: Float32Array, dscale: Float32Array, doffset: Float32Array, rows: number, cols: number, epsilon: number,
  ): void;
  /**
   * Whether convolutions may take the direct kernels (output channels a multiple of 16, or input
   * channels for the input gradient, on one thread; else im2col + sgemm); returns the previous
   * setting. `VAELAB_CONV_DIRECT=0` turns them off at load.
   */
  setConvDirect(on: boolean): boolean;
  setThreads(n: number): void;
  getThreads(): number;
  info(): NativeAddonInfo;
}

/** Every function of NativeAddon: an addon built from older sources lacks some and is not used. */
export const NATIVE_FUNCTIONS: ReadonlyArray<keyof NativeAddon> = [
  'sgemm', 'sgemmBatched', 'biasActivation', 'biasActivationGrad', 'sumRows', 'conv2d', 'conv2dBackpropFilter', 'conv2dBackpropInput',
  'adamUpdate', 'bernoulliLogProb', 'bernoulliLogProbGrad', 'sumSquares', 'relu', 'klStdNormal', 'klStdNormalGrad', 'biasAdd', 'biasRelu',
  'reluGrad', 'biasReluGrad', 'reparam', 'reparamGrad', 'reparamLogProb', 'leakyRelu', 'leakyReluGrad', 'batchNorm', 'batchNormGrad',
  'setConvDirect', 'setThreads', 'getThreads', 'info',
];

/** The status of the native pack, as `nativeStatus` reports it. */
export interface NativeStatus {
  /** Whether the addon is loaded and its kernels can be installed. */
  available: boolean;
  /**
   * Why it is unavailable (one clause, with how to fix it), or, when available, where it was
   * loaded from and how the OpenBLAS core was chosen.
   */
  reason: string;
  /** OpenBLAS threads (when available). */
  threads?: number;
  /** `OpenBLAS <version> <core>`, e.g. `OpenBLAS 0.3.21 SkylakeX` (when available). */
  blas?: string;
}

/** Hyper-parameters of one Adam step (PyTorch's rule, as core/train/adam.ts computes them). */
export interface NativeAdamHyper {
  /** lr / (1 - beta1^t), t = the number of this step, counting from 1. */
  stepSize: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  /** sqrt(1 - beta2^t). */
  sqrtBc2: number;
  /** L2 penalty added to the gradient (g + weightDecay * p), as torch.optim.Adam; 0 for none. */
  weightDecay: number;
}

type DataId = TensorInfo['dataId'];

/** The part of the wasm backend (`BackendWasm`) used here. */
interface WasmBackendView {
  wasm: { HEAPU8: Uint8Array; tfjs: { disposeData(id: number): void; registerTensor(id: number, size: number, offset: number): void } };
  dataIdMap: { get(dataId: DataId): { id: number; memoryOffset: number; dtype: DataType } | undefined };
  makeOutput(shape: number[], dtype: DataType, memoryOffset?: number): TensorInfo;
  disposeData(dataId: DataId, force?: boolean): boolean;
  refCount(dataId: DataId): number;
  incRef(dataId: DataId): void;
}

const BACKEND = 'wasm';
const WHERE = 'core/backend/native';
/** How to get the pack, for messages. */
export const NATIVE_HINT =
  'install OpenBLAS ("sudo apt-get install libopenblas-dev") and run "node scripts/build-native.js"';
const ACTIVATIONS = new Set(['linear', 'relu', 'relu6', 'leakyrelu', 'elu', 'sigmoid']);

type Loaded = { ok: true; addon: NativeAddon; file: string; core: string } | { ok: false; reason: string };

let loaded: Loaded | null = null;
let installed: string[] | null = null;
/** The kernels registered before the native ones: the fallbacks, and what uninstall restores. */
const previous = new Map<string, KernelConfig | undefined>();

/** The directory holding the addon's sources: <root>/native, from core/backend or dist/core/backend. */
function nativeDir(): string {
  const candidates = [path.resolve(__dirname, '..', '..', 'native'), path.resolve(__dirname, '..', '..', '..', 'native')];
  return candidates.find((d) => fs.existsSync(path.join(d, 'binding.gyp'))) ?? candidates[0];
}

/** The compiled addon's path (it may not exist). */
export function nativeAddonPath(): string {
  return path.join(nativeDir(), 'build', 'Release', 'vaelab_native.node');
}

/**
 * The OpenBLAS core to force on this CPU, or null to let OpenBLAS detect it.
 * OpenBLAS 0.3.21 (Debian 12) maps CPUs newer than it knows (e.g. 5th-gen Xeon, model 207) to
 * "Prescott", whose SSE3 sgemm runs at ~1/5 of the AVX-512 kernels. The flags in /proc/cpuinfo
 * are the ones the kernel enabled, so a core chosen from them never uses an unsupported
 * instruction: AVX-512 F/CD/BW/DQ/VL -> SkylakeX (whose sgemm OpenBLAS also uses for the later
 * AVX-512 Intel cores), AVX2 + FMA -> Haswell. The choice is made once, when the addon loads.
 */
function chooseCoreType(): string | null {
  if (process.platform !== 'linux' || process.arch !== 'x64') return null;
  let cpuinfo: string;
  try {
    cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return null;
  }
  const line = /^flags\s*:(.*)$/m.exec(cpuinfo);
  if (line === null) return null;
  const flags = new Set(line[1].trim().split(/\s+/));
  if (['avx512f', 'avx512cd', 'avx512bw', 'avx512dq', 'avx512vl'].every((f) => flags.has(f))) return 'SkylakeX';
  if (flags.has('avx2') && flags.has('fma')) return 'Haswell';
  return null;
}

/** VAELAB_THREADS as a thread count, or an error message. */
function threadsFromEnv(): number | string {
  const raw = process.env.VAELAB_THREADS;
  if (raw === undefined || raw === '') return 1;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) return `VAELAB_THREADS: must be a whole number >= 1; got ${JSON.stringify(raw)}`;
  return n;
}

function firstLine(text: string): string {
  return text.split('\n')[0].trim();
}

function load(): Loaded {
  if (loaded !== null) return loaded;
  if (process.env.VAELAB_NATIVE === '0') return (loaded = { ok: false, reason: 'disabled by VAELAB_NATIVE=0' });
  const file = nativeAddonPath();
  if (!fs.existsSync(file)) {
    return (loaded = { ok: false, reason: `not built (no ${path.relative(process.cwd(), file) || file}); ${NATIVE_HINT}` });
  }
  const threads = threadsFromEnv();
  if (typeof threads === 'string') return (loaded = { ok: false, reason: threads });
  const userCore = process.env.OPENBLAS_CORETYPE;
  const forced = userCore === undefined || userCore === '' ? chooseCoreType() : null;
  let addon: NativeAddon;
  // OpenBLAS reads OPENBLAS_CORETYPE once, while the addon's dependencies are loaded; Node's
  // process.env writes through to the C environment, so it is set only around the require.
  if (forced !== null) process.env.OPENBLAS_CORETYPE = forced;
  try {
    const req: NodeRequire = require;
    addon = req(file) as NativeAddon;
    addon.setThreads(threads);
  } catch (err) {
    return (loaded = { ok: false, reason: `${file} failed to load: ${firstLine((err as Error).message)}; rebuild it with "node scripts/build-native.js"` });
  } finally {
    if (forced !== null) delete process.env.OPENBLAS_CORETYPE;
  }
  const missing = NATIVE_FUNCTIONS.filter((f) => typeof addon[f] !== 'function');
  if (missing.length > 0) {
    return (loaded = { ok: false, reason: `${file} was built from older sources (it lacks ${missing.join(', ')}); rebuild it with "node scripts/build-native.js"` });
  }
  const core =
    forced !== null
      ? `core ${forced} chosen from the CPU flags (set OPENBLAS_CORETYPE to override)`
      : userCore
        ? `core from OPENBLAS_CORETYPE=${userCore}`
        : 'core detected by OpenBLAS';
  return (loaded = { ok: true, addon, file, core });
}

/**
 * Whether the native pack can be used, and why not. Loads the addon on the first call (cheap;
 * never throws). VAELAB_NATIVE, VAELAB_THREADS and OPENBLAS_CORETYPE are read at that first
 * call only; `VAELAB_NATIVE=0` makes the pack unavailable.
 */
export function nativeStatus(): NativeStatus {
  const l = load();
  if (!l.ok) return { available: false, reason: l.reason };
  const info = l.addon.info();
  const version = /OpenBLAS [0-9][0-9.]*/.exec(info.config)?.[0] ?? 'OpenBLAS';
  return {
    available: true,
    reason: `loaded ${path.relative(process.cwd(), l.file) || l.file}; ${l.core}`,
    threads: l.addon.getThreads(),
    blas: `${version} ${info.coreName}`,
  };
}

/** The loaded addon (internal; tests and benchmarks use it to call the entry points directly). */
export function nativeAddon(): NativeAddon | null {
  const l = load();
  return l.ok ? l.addon : null;
}

/* ------------------------------------------------------------------ heap helpers */

function dataOf(backend: WasmBackendView, t: TensorInfo): { id: number; memoryOffset: number } {
  const d = backend.dataIdMap.get(t.dataId);
  if (d === undefined) throw new Error(`${WHERE}: tensor data is not on the wasm backend`);
  return d;
}

/** A zero-copy float32 view of a tensor on the wasm heap. Take it after every allocation of the call. */
function heapView(backend: WasmBackendView, t: TensorInfo): Float32Array {
  return new Float32Array(backend.wasm.HEAPU8.buffer, dataOf(backend, t).memoryOffset, util.sizeFromShape(t.shape));
}

function isFloat(...ts: TensorInfo[]): boolean {
  return ts.every((t) => t.dtype === 'float32' && util.sizeFromShape(t.shape) > 0);
}

/** Throws, in tfjs's form, unless `t` is float32 or int32 (what tfjs-core's numeric ops hand a kernel). */
function assertNumeric(op: string, name: string, t: TensorInfo): void {
  util.assert(t.dtype === 'float32' || t.dtype === 'int32', () => `Error in ${op}: ${name} must be float32 or int32, but got ${t.dtype}.`);
}

/** A required kernel input. */
function need(args: Parameters<KernelFunc>[0], name: string, kernel: string): TensorInfo {
  const t = args.inputs[name];
  if (t === undefined) throw new Error(`${kernel} (wasm, ${WHERE}): input "${name}" is missing`);
  return t;
}

function fallback(name: string, args: Parameters<KernelFunc>[0]): TensorInfo | TensorInfo[] {
  const prev = previous.get(name);
  if (prev === undefined) throw new Error(`${name} (wasm, ${WHERE}): no kernel to fall back to for this case`);
  return prev.kernelFunc(args);
}

/**
 * A float32 output of `shape`, written by `fill` (an addon call on heap views taken inside it,
 * after the allocation); freed again when the addon throws (a bad argument), so nothing leaks.
 */
function intoOutput(backend: WasmBackendView, shape: number[], fill: (out: TensorInfo) => void): TensorInfo {
  const out = backend.makeOutput(shape, 'float32');
  try {
    fill(out);
  } catch (err) {
    backend.disposeData(out.dataId);
    throw err;
  }
  return out;
}

/** The addon for a kernel that has no fallback (core/fused.ts kernels: registered only with the pack). */
function addonFor(kernel: string): NativeAddon {
  const l = load();
  if (!l.ok) throw new Error(`${kernel} (wasm, ${WHERE}): the native pack is not loaded`);
  return l.addon;
}

/* ------------------------------------------------------------------ matMul */

/**
 * op(A)·op(B) for every batch layout into `out` (allocated by the caller).
 * Shapes: a: [...aOuter, m, k] (or [..., k, m] when transposeA), b: [...bOuter, k, n] (or
 * [..., n, k]), out: [...broadcast(aOuter, bOuter), m, n].
 */
function matMulInto(addon: NativeAddon, backend: WasmBackendView, a: TensorInfo, b: TensorInfo, ta: boolean, tb: boolean, out: TensorInfo): void {
  const ra = a.shape.length;
  const rb = b.shape.length;
  const m = ta ? a.shape[ra - 1] : a.shape[ra - 2];
  const k = ta ? a.shape[ra - 2] : a.shape[ra - 1];
  const n = tb ? b.shape[rb - 2] : b.shape[rb - 1];
  const aOuter = a.shape.slice(0, -2);
  const bOuter = b.shape.slice(0, -2);
  const outOuter = out.shape.slice(0, -2);
  const batchA = util.sizeFromShape(aOuter);
  const batchB = util.sizeFromShape(bOuter);
  const total = util.sizeFromShape(outOuter);
  const lda = ta ? m : k;
  const ldb = tb ? k : n;
  const A = heapView(backend, a);
  const B = heapView(backend, b);
  const C = heapView(backend, out);
  if (batchB === 1 && !ta) {
    // B is shared and A's items are contiguous rows: one GEMM of (batchA*m) x k x n.
    addon.sgemm(false, tb, batchA * m, n, k, 1, A, lda, B, ldb, 0, C, n);
  } else if ((batchA === total || batchA === 1) && (batchB === total || batchB === 1)) {
    // Equal batches, or one operand broadcast whole (stride 0).
    addon.sgemmBatched(ta, tb, m, n, k, 1, A, lda, batchA === 1 ? 0 : m * k, B, ldb, batchB === 1 ? 0 : k * n, 0, C, n, m * n, total);
  } else {
    // Broadcast along some batch axes only: item by item through index maps.
    const [aIdx, bIdx] = batchIndexMaps(aOuter, bOuter, outOuter);
    for (let i = 0; i < total; i++) {
      const ai = aIdx[i];
      const bi = bIdx[i];
      addon.sgemm(ta, tb, m, n, k, 1, A.subarray(ai * m * k, (ai + 1) * m * k), lda, B.subarray(bi * k * n, (bi + 1) * k * n), ldb, 0,
        C.subarray(i * m * n, (i + 1) * m * n), n);
    }
  }
}

/** Whether any of the tensors has no elements (left to the fallback: nothing to gain here). */
function anyEmpty(...ts: TensorInfo[]): boolean {
  return ts.some((t) => util.sizeFromShape(t.shape) === 0);
}

function batchMatMul(args: Parameters<KernelFunc>[0]): TensorInfo | TensorInfo[] {
  const l = load();
  const backend = args.backend as unknown as WasmBackendView;
  const a = need(args, 'a', 'BatchMatMul');
  const b = need(args, 'b', 'BatchMatMul');
  const { transposeA, transposeB } = args.attrs as unknown as BatchMatMulAttrs;
  const shape = checkMatMul('matMul', a, b, transposeA, transposeB);
  if (!l.ok || anyEmpty(a, b)) return fallback('BatchMatMul', args);
  return intoOutput(backend, shape, (out) => matMulInto(l.addon, backend, a, b, transposeA, transposeB, out));
}

/** matMul + bias + activation; PReLU and biases with leading 1s go to the fallback. */
function fusedMatMul(args: Parameters<KernelFunc>[0]): TensorInfo | TensorInfo[] {
  const l = load();
  const backend = args.backend as unknown as WasmBackendView;
  const a = need(args, 'a', '_FusedMatMul');
  const b = need(args, 'b', '_FusedMatMul');
  const { bias, preluActivationWeights } = args.inputs;
  const attrs = args.attrs as unknown as _FusedMatMulAttrs;
  const shape = checkMatMul('fused matMul', a, b, attrs.transposeA, attrs.transposeB);
  checkFusedMatMulExtras(args.inputs, attrs.activation, shape);
  const activation = attrs.activation ?? 'linear';
  if (!l.ok || anyEmpty(a, b) || preluActivationWeights !== undefined || !ACTIVATIONS.has(activation)) {
    return fallback('_FusedMatMul', args);
  }
  const n = shape[shape.length - 1];
  return intoOutput(backend, shape, (out) => {
    matMulInto(l.addon, backend, a, b, attrs.transposeA, attrs.transposeB, out);
    if (bias !== undefined || activation !== 'linear') {
      l.addon.biasActivation(heapView(backend, out), n, bias === undefined ? null : heapView(backend, bias), activation, attrs.leakyreluAlpha ?? 0.2);
    }
  });
}

/* ------------------------------------------------------------------ conv */

function isNhwc(dataFormat: string | undefined): boolean {
  return dataFormat === undefined || dataFormat === 'NHWC';
}

/** Conv2D as im2col + sgemm. Shapes: x [B,H,W,Cin], filter [kh,kw,Cin,Cout] -> [B,Ho,Wo,Cout]. */
function conv2d(args: Parameters<KernelFunc>[0]): TensorInfo | TensorInfo[] {
  const info = checkConv2D('conv2d', need(args, 'x', 'Conv2D'), need(args, 'filter', 'Conv2D'), args.attrs as unknown as Conv2DAttrs);
  return convForward('Conv2D', args, info, null);
}

/**
 * FusedConv2D (conv2d + bias + activation, as tf.fused.conv2d emits it): the native conv followed
 * by one native bias + activation pass over the output. PReLU, NCHW and biases that are not one
 * value per output channel go to the kernel registered before (the stock wasm one).
 * Shapes: x [B,H,W,Cin], filter [kh,kw,Cin,Cout], bias [Cout] -> [B,Ho,Wo,Cout].
 */
function fusedConv2d(args: Parameters<KernelFunc>[0]): TensorInfo | TensorInfo[] {
  const { bias, preluActivationWeights } = args.inputs;
  const attrs = args.attrs as unknown as FusedConv2DAttrs;
  const activation = attrs.activation ?? 'linear';
  const info = checkConv2D('fused conv2d', need(args, 'x', 'FusedConv2D'), need(args, 'filter', 'FusedConv2D'), attrs);
  checkConvBias(bias, info.outChannels);
  if (preluActivationWeights !== undefined || !ACTIVATIONS.has(activation)) return fallback('FusedConv2D', args);
  return convForward('FusedConv2D', args, info, { bias, activation, alpha: attrs.leakyreluAlpha ?? 0.2 });
}

/**
 * The forward convolution of Conv2D and FusedConv2D (inputs checked by the caller, `info` from the
 * check), then the bias and activation when `epilogue` is given.
 */
function convForward(
  kernel: string,
  args: Parameters<KernelFunc>[0],
  info: backend_util.Conv2DInfo,
  epilogue: { bias: TensorInfo | undefined; activation: string; alpha: number } | null,
): TensorInfo | TensorInfo[] {
  const l = load();
  const backend = args.backend as unknown as WasmBackendView;
  const x = need(args, 'x', kernel);
  const filter = need(args, 'filter', kernel);
  const attrs = args.attrs as unknown as Conv2DAttrs;
  if (!l.ok || !isNhwc(attrs.dataFormat) || anyEmpty(x, filter) || util.sizeFromShape(info.outShape) === 0) return fallback(kernel, args);
  return intoOutput(backend, info.outShape, (out) => {
    l.addon.conv2d(heapView(backend, x), heapView(backend, filter), heapView(backend, out), info);
    if (epilogue !== null && (epilogue.bias !== undefined || epilogue.activation !== 'linear')) {
      const bias = epilogue.bias === undefined ? null : heapView(backend, epilogue.bias);
      l.addon.biasActivation(heapView(backend, out), filter.shape[3], bias, epilogue.activation, epilogue.alpha);
    }
  });
}

/** The filter gradient as im2col + sgemm. Shapes: x [B,H,W,Cin], dy [B,Ho,Wo,Cout] -> filterShape [kh,kw,Cin,Cout]. */
function conv2dBackpropFilter(args: Parameters<KernelFunc>[0]): TensorInfo | TensorInfo[] {
  const l = load();
  const backend = args.backend as unknown as WasmBackendView;
  const x = need(args, 'x', 'Conv2DBackpropFilter');
  const dy = need(args, 'dy', 'Conv2DBackpropFilter');
  const attrs = args.attrs as unknown as Conv2DBackpropFilterAttrs;
  const info = checkConv2DBackpropFilter(x, dy, attrs);
  if (!l.ok || !isNhwc(attrs.dataFormat) || anyEmpty(x, dy)) return fallback('Conv2DBackpropFilter', args);
  return intoOutput(backend, [...attrs.filterShape], (out) =>
    l.addon.conv2dBackpropFilter(heapView(backend, x), heapView(backend, dy), heapView(backend, out), info),
  );
}

/** The input gradient (and conv2dTranspose) as sgemm + col2im. Shapes: dy [B,Ho,Wo,Cout], filter [kh,kw,Cin,Cout] -> inputShape. */
function conv2dBackpropInput(args: Parameters<KernelFunc>[0]): TensorInfo | TensorInfo[] {
  const l = load();
  const backend = args.backend as unknown as WasmBackendView;
  const dy = need(args, 'dy', 'Conv2DBackpropInput');
  const filter = need(args, 'filter', 'Conv2DBackpropInput');
  const attrs = args.attrs as unknown as Conv2DBackpropInputAttrs;
  const info = checkConv2DBackpropInput(dy, filter, attrs);
  if (!l.ok || !isNhwc(attrs.dataFormat) || anyEmpty(dy, filter)) return fallback('Conv2DBackpropInput', args);
  return intoOutput(backend, [...attrs.inputShape], (out) =>
    l.addon.conv2dBackpropInput(heapView(backend, dy), heapView(backend, filter), heapView(backend, out), info),
  );
}

/* ------------------------------------------------------------------ Sum */

/**
 * Sum over leading axes (a bias gradient: dy [B, H, W, C] summed over B, H, W), which the stock
 * wasm kernel computes by transposing the whole input first; every other reduction falls back.
 * Shapes: x [...lead, ...rest] -> [...rest] (or [1, ..., 1, ...rest] with keepDims).
 */
function sum(args: Parameters<KernelFunc>[0]): TensorInfo | TensorInfo[] {
  const l = load();
  const backend = args.backend as unknown as WasmBackendView;
  const x = need(args, 'x', 'Sum');
  assertNumeric('sum', 'x', x);
  if (!l.ok || !isFloat(x)) return fallback('Sum', args);
  const { axis, keepDims } = args.attrs as unknown as SumAttrs;
  const axes = [...new Set(util.parseAxisParam(axis, x.shape))].sort((p, q) => p - q);
  const lead = axes.length;
  // Trailing or full reductions are already fast (no transpose); leading ones are not.
  if (lead === 0 || lead === x.shape.length || !axes.every((a, i) => a === i)) return fallback('Sum', args);
  const rows = util.sizeFromShape(x.shape.slice(0, lead));
  const rest = x.shape.slice(lead);
  if (rows === 1) return fallback('Sum', args);
  return intoOutput(backend, keepDims ? [...new Array<number>(lead).fill(1), ...rest] : rest, (out) =>
    l.addon.sumRows(heapView(backend, x), rows, util.sizeFromShape(rest), heapView(backend, out)),
  );
}

/* ------------------------------------------------------------------ fused kernels of core/fused.ts */

/** A tensor for a message: `float32 [2,3]`, or `none`. */
function describe(t: TensorInfo | undefined): string {
  return t === undefined ? 'none' : `${t.dtype} [${t.shape}]`;
}

/** A required float32 input of a rank-2 fused kernel. */
function matrixInput(args: Parameters<KernelFunc>[0], name: string, kernel: string): TensorInfo {
  const t = args.inputs[name];
  if (t === undefined || t.dtype !== 'float32' || t.shape.length !== 2) {
    throw new Error(`${kernel} (wasm, ${WHERE}): input "${name}" must be a float32 matrix; got ${describe(t)}`);
  }
  return t;
}

/** A required float32 input of `rows` values (a per-row dy). */
function rowInput(args: Parameters<KernelFunc>[0], name: string, rows: number, kernel: string): TensorInfo {
  const t = args.inputs[name];
  if (t === undefined || t.dtype !== 'float32' || util.sizeFromShape(t.shape) !== rows) {
    throw new Error(`${kernel} (wasm, ${WHERE}): input "${name}" must hold ${rows} float32 values; got ${describe(t)}`);
  }
  return t;
}

/** Float32 matrices of one shape, by input name. */
function sameShapeMatrices(args: Parameters<KernelFunc>[0], names: readonly string[], kernel: string): TensorInfo[] {
  const ts = names.map((n) => matrixInput(args, n, kernel));
  if (!ts.every((t) => t.shape[0] === ts[0].shape[0] && t.shape[1] === ts[0].shape[1])) {
    throw new Error(`${kernel} (wasm, ${WHERE}): inputs ${names.map((n) => `"${n}"`).join(', ')} must have one shape; got ${ts.map((t) => `[${t.shape}]`).join(', ')}`);
  }
  return ts;
}

/**
 * A fused kernel that reduces two matrices of one shape row by row with an addon function:
 * inputs named `names` [N, D] -> [N].
 */
function rowReduction(
  kernel: string,
  names: readonly [string, string],
  run: (addon: NativeAddon, a: Float32Array, b: Float32Array, out: Float32Array, rows: number, cols: number) => void,
): KernelFunc {
  return (args) => {
    const addon = addonFor(kernel);
    const backend = args.backend as unknown as WasmBackendView;
    const [a, b] = sameShapeMatrices(args, names, kernel);
    const [rows, cols] = a.shape;
    return intoOutput(backend, [rows], (out) => run(addon, heapView(backend, a), heapView(backend, b), heapView(backend, out), rows, cols));
  };
}

/** core/fused.ts BERNOULLI_LOG_PROB. Shapes: x, logits [N, D] -> [N]. */
const bernoulliLogProb = rowReduction(BERNOULLI_LOG_PROB, ['x', 'logits'], (addon, ...a) => addon.bernoulliLogProb(...a));

/** core/fused.ts KL_STD_NORMAL. Shapes: loc, logVar [N, D] -> [N]. */
const klStdNormalKernel = rowReduction(KL_STD_NORMAL, ['loc', 'logVar'], (addon, ...a) => addon.klStdNormal(...a));

/** core/fused.ts REPARAM_LOG_PROB. Shapes: logVar, eps [N, D] -> [N]. */
const reparamLogProbKernel = rowReduction(REPARAM_LOG_PROB, ['logVar', 'eps'], (addon, ...a) => addon.reparamLogProb(...a));

/** core/fused.ts BERNOULLI_LOG_PROB_GRAD. Shapes: dy [N], x, logits [N, D] -> [N, D]. */
function bernoulliLogProbGrad(args: Parameters<KernelFunc>[0]): TensorInfo {
  const addon = addonFor(BERNOULLI_LOG_PROB_GRAD);
  const backend = args.backend as unknown as WasmBackendView;
  const [x, logits] = sameShapeMatrices(args, ['x', 'logits'], BERNOULLI_LOG_PROB_GRAD);
  const [rows, cols] = logits.shape;
  const dy = rowInput(args, 'dy', rows, BERNOULLI_LOG_PROB_GRAD);
  return intoOutput(backend, [rows, cols], (out) =>
    addon.bernoulliLogProbGrad(heapView(backend, dy), heapView(backend, x), heapView(backend, logits), heapView(backend, out), rows, cols),
  );
}

/**
 * Add where one operand is a bias: x [..., C] + b [C] (or b with leading 1s), either order, in
 * one native pass (the stock wasm kernel runs its generic broadcast loop: ~4x slower on conv
 * activations). Every other Add falls back.
 */
function add(args: Parameters<KernelFunc>[0]): TensorInfo | TensorInfo[] {
  const l = load();
  const backend = args.backend as unknown as WasmBackendView;
  const a = need(args, 'a', 'Add');
  const b = need(args, 'b', 'Add');
  // tfjs-core's add op makes the dtypes match; the stock kernel reads b as a's dtype.
  util.assert(a.dtype === b.dtype, () => `Error in add: a and b must have the same dtype, but got ${a.dtype} and ${b.dtype}.`);
  if (!l.ok || !isFloat(a, b)) return fallback('Add', args);
  const isBiasOf = (bias: TensorInfo, x: TensorInfo) =>
    x.shape.length >= 2 && bias.shape.length >= 1 && bias.shape.length <= x.shape.length &&
    bias.shape[bias.shape.length - 1] === x.shape[x.shape.length - 1] && bias.shape.slice(0, -1).every((d) => d === 1) &&
    util.sizeFromShape(x.shape) > util.sizeFromShape(bias.shape);
  const [x, bias] = isBiasOf(b, a) ? [a, b] : isBiasOf(a, b) ? [b, a] : [null, null];
  if (x === null || bias === null) return fallback('Add', args);
  return intoOutput(backend, x.shape, (out) => l.addon.biasAdd(heapView(backend, x), heapView(backend, bias), heapView(backend, out)));
}

/** core/fused.ts BIAS_RELU: max(x + bias, 0) in one pass. Shapes: x [..., C], bias [C] -> x's shape. */
function biasReluKernel(args: Parameters<KernelFunc>[0]): TensorInfo {
  const addon = addonFor(BIAS_RELU);
  const backend = args.backend as unknown as WasmBackendView;
  const { x, bias } = args.inputs;
  if (x === undefined || bias === undefined || !isFloat(x, bias) || bias.shape.length !== 1 || x.shape[x.shape.length - 1] !== bias.shape[0]) {
    throw new Error(`${BIAS_RELU} (wasm, ${WHERE}): inputs must be float32 x [..., C] and bias [C]; got x ${describe(x)}, bias ${describe(bias)}`);
  }
  return intoOutput(backend, x.shape, (out) => addon.biasRelu(heapView(backend, x), heapView(backend, bias), heapView(backend, out)));
}

/** Relu in one native pass (the stock wasm kernel is ~3x slower on conv activations); other dtypes fall back. */
function relu(args: Parameters<KernelFunc>[0]): TensorInfo | TensorInfo[] {
  const l = load();
  const backend = args.backend as unknown as WasmBackendView;
  const x = need(args, 'x', 'Relu');
  assertNumeric('relu', 'x', x);
  if (!l.ok || !isFloat(x)) return fallback('Relu', args);
  return intoOutput(backend, x.shape, (out) => l.addon.relu(heapView(backend, x), heapView(backend, out)));
}

/** The inputs of an elementwise gradient kernel: dy and x, float32 tensors of one size. */
function elementwiseGradInputs(args: Parameters<KernelFunc>[0], kernel: string): [TensorInfo, TensorInfo] {
  const { dy, x } = args.inputs;
  if (dy === undefined || x === undefined || !isFloat(dy, x) || util.sizeFromShape(dy.shape) !== util.sizeFromShape(x.shape)) {
    throw new Error(`${kernel} (wasm, ${WHERE}): inputs "dy" and "x" must be float32 tensors of one size; got dy ${describe(dy)}, x ${describe(x)}`);
  }
  return [dy, x];
}

/** core/fused.ts RELU_GRAD: dy * step(x) in one pass. Shapes: dy, x [...] -> [...]. */
function reluGradKernel(args: Parameters<KernelFunc>[0]): TensorInfo {
  const addon = addonFor(RELU_GRAD);
  const backend = args.backend as unknown as WasmBackendView;
  const [dy, x] = elementwiseGradInputs(args, RELU_GRAD);
  return intoOutput(backend, x.shape, (out) => addon.reluGrad(heapView(backend, dy), heapView(backend, x), heapView(backend, out)));
}

/** LeakyRelu in one native pass (the stock wasm kernel took 0.29 ms a call on the ladder's [256, 512] layers); other dtypes fall back. Attr alpha. */
function leakyRelu(args: Parameters<KernelFunc>[0]): TensorInfo | TensorInfo[] {
  const l = load();
  const backend = args.backend as unknown as WasmBackendView;
  const x = need(args, 'x', 'LeakyRelu');
  assertNumeric('leakyRelu', 'x', x);
  if (!l.ok || !isFloat(x)) return fallback('LeakyRelu', args);
  const alpha = (args.attrs as { alpha: number }).alpha;
  return intoOutput(backend, x.shape, (out) => l.addon.leakyRelu(heapView(backend, x), heapView(backend, out), alpha));
}

/** core/fused.ts LEAKY_RELU_GRAD: x > 0 ? dy : alpha dy in one pass. Shapes: dy, x [...] -> [...]. */
function leakyReluGradKernel(args: Parameters<KernelFunc>[0]): TensorInfo {
  const addon = addonFor(LEAKY_RELU_GRAD);
  const backend = args.backend as unknown as WasmBackendView;
  const [dy, x] = elementwiseGradInputs(args, LEAKY_RELU_GRAD);
  const alpha = (args.attrs as { alpha: number }).alpha;
  return intoOutput(backend, x.shape, (out) => addon.leakyReluGrad(heapView(backend, dy), heapView(backend, x), heapView(backend, out), alpha));
}

/** The per-column inputs of the batch-norm kernels: float32 vectors of `cols` values. */
function columnInputs(args: Parameters<KernelFunc>[0], names: readonly string[], cols: number, kernel: string): TensorInfo[] {
  return names.map((n) => {
    const t = args.inputs[n];
    if (t === undefined || t.dtype !== 'float32' || t.shape.length !== 1 || t.shape[0] !== cols) {
      throw new Error(`${kernel} (wasm, ${WHERE}): input "${n}" must be a float32 vector of ${cols} values; got ${describe(t)}`);
    }
    return t;
  });
}

/** Frees `made` when `build` throws. */
function allOrNothing(backend: WasmBackendView, build: (made: TensorInfo[]) => TensorInfo[]): TensorInfo[] {
  const made: TensorInfo[] = [];
  try {
    return build(made);
  } catch (err) {
    for (const t of made) backend.disposeData(t.dataId);
    throw err;
  }
}

/** core/fused.ts BATCH_NORM. Shapes: x [N, C], scale, offset [C] -> [y [N, C], mean [C], variance [C]]. */
function batchNormKernel(args: Parameters<KernelFunc>[0]): TensorInfo[] {
  const addon = addonFor(BATCH_NORM);
  const backend = args.backend as unknown as WasmBackendView;
  const x = matrixInput(args, 'x', BATCH_NORM);
  const [rows, cols] = x.shape;
  const [scale, offset] = columnInputs(args, ['scale', 'offset'], cols, BATCH_NORM);
  const epsilon = (args.attrs as { epsilon: number }).epsilon;
  return allOrNothing(backend, (made) => {
    const mean = backend.makeOutput([cols], 'float32');
    made.push(mean);
    const variance = backend.makeOutput([cols], 'float32');
    made.push(variance);
    const y = intoOutput(backend, [rows, cols], (out) =>
      addon.batchNorm(heapView(backend, x), heapView(backend, scale), heapView(backend, offset), heapView(backend, out), heapView(backend, mean), heapView(backend, variance), rows, cols, epsilon),
    );
    return [y, mean, variance];
  });
}

/** core/fused.ts BATCH_NORM_GRAD. Shapes: dy, x [N, C], scale, mean, variance, dmean, dvariance [C] -> [dx [N, C], dscale [C], doffset [C]]. */
function batchNormGradKernel(args: Parameters<KernelFunc>[0]): TensorInfo[] {
  const addon = addonFor(BATCH_NORM_GRAD);
  const backend = args.backend as unknown as WasmBackendView;
  const [dy, x] = sameShapeMatrices(args, ['dy', 'x'], BATCH_NORM_GRAD);
  const [rows, cols] = x.shape;
  const [scale, mean, variance, dMean, dVariance] = columnInputs(args, ['scale', 'mean', 'variance', 'dmean', 'dvariance'], cols, BATCH_NORM_GRAD);
  const epsilon = (args.attrs as { epsilon: number }).epsilon;
  return allOrNothing(backend, (made) => {
    const dScale = backend.makeOutput([cols], 'float32');
    made.push(dScale);
    const dOffset = backend.makeOutput([cols], 'float32');
    made.push(dOffset);
    const dx = intoOutput(backend, [rows, cols], (out) =>
      addon.batchNormGrad(
        heapView(backend, dy), heapView(backend, x), heapView(backend, scale), heapView(backend, mean), heapView(backend, variance),
        heapView(backend, dMean), heapView(backend, dVariance), heapView(backend, out), heapView(backend, dScale), heapView(backend, dOffset), rows, cols, epsilon,
      ),
    );
    return [dx, dScale, dOffset];
  });
}

/** core/fused.ts BIAS_RELU_GRAD: dx = dy * step(y) and its column sums in one pass. Shapes: dy, y [..., C] -> [dx [..., C], dbias [C]]. */
function biasReluGradKernel(args: Parameters<KernelFunc>[0]): TensorInfo[] {
  const addon = addonFor(BIAS_RELU_GRAD);
  const backend = args.backend as unknown as WasmBackendView;
  const { dy, y } = args.inputs;
  if (dy === undefined || y === undefined || !isFloat(dy, y) || y.shape.length < 1 || util.sizeFromShape(dy.shape) !== util.sizeFromShape(y.shape)) {
    throw new Error(`${BIAS_RELU_GRAD} (wasm, ${WHERE}): inputs "dy" and "y" must be float32 tensors of one size; got dy ${describe(dy)}, y ${describe(y)}`);
  }
  const channels = y.shape[y.shape.length - 1];
  let dx: TensorInfo | null = null;
  const dBias = intoOutput(backend, [channels], (db) => {
    dx = intoOutput(backend, y.shape, (out) => addon.biasReluGrad(heapView(backend, dy), heapView(backend, y), heapView(backend, out), heapView(backend, db)));
  });
  return [dx!, dBias];
}

/** The attr `activation` of DENSE and DENSE_GRAD, checked. */
function denseActivation(args: Parameters<KernelFunc>[0], kernel: string): DenseActivation {
  const { activation } = args.attrs as { activation?: unknown };
  if (!isDenseActivation(activation)) {
    throw new Error(`${kernel} (wasm, ${WHERE}): attr "activation" must be one of ${DENSE_ACTIVATIONS.map((a) => `"${a}"`).join(', ')}; got ${JSON.stringify(activation)}`);
  }
  return activation;
}

/**
 * core/fused.ts DENSE: the product, then the bias and the activation in place while the output
 * is in cache; the same arithmetic as a BatchMatMul followed by a bias Add or BIAS_RELU.
 * Shapes: x [N, K], kernel [K, C], bias [C] -> [N, C].
 */
function denseKernel(args: Parameters<KernelFunc>[0]): TensorInfo {
  const addon = addonFor(DENSE);
  const backend = args.backend as unknown as WasmBackendView;
  const activation = denseActivation(args, DENSE);
  const x = matrixInput(args, 'x', DENSE);
  const kernel = matrixInput(args, 'kernel', DENSE);
  const { bias } = args.inputs;
  const [rows, inner] = x.shape;
  const cols = kernel.shape[1];
  if (kernel.shape[0] !== inner || bias === undefined || !isFloat(bias) || bias.shape.length !== 1 || bias.shape[0] !== cols) {
    throw new Error(`${DENSE} (wasm, ${WHERE}): shapes must be x [N, K], kernel [K, C], bias [C]; got x [${x.shape}], kernel [${kernel.shape}], bias [${bias?.shape ?? 'none'}]`);
  }
  return intoOutput(backend, [rows, cols], (out) => {
    matMulInto(addon, backend, x, kernel, false, false, out);
    addon.biasActivation(heapView(backend, out), cols, heapView(backend, bias), activation, 0);
  });
}

/**
 * core/fused.ts DENSE_GRAD: dz (dy * step(y) with its column sums in one pass for relu; dy (1 - y^2)
 * for tanh and dy (1 - exp(-y)) for softplus, likewise; dy itself, shared, and its column sums for
 * linear), then dkernel = xᵀ dz.
 * Shapes: dy, y [N, C], x [N, K] -> [dz [N, C], dkernel [K, C], dbias [C]].
 */
function denseGradKernel(args: Parameters<KernelFunc>[0]): TensorInfo[] {
  const addon = addonFor(DENSE_GRAD);
  const backend = args.backend as unknown as WasmBackendView;
  const activation = denseActivation(args, DENSE_GRAD);
  const [dy, y] = sameShapeMatrices(args, ['dy', 'y'], DENSE_GRAD);
  const x = matrixInput(args, 'x', DENSE_GRAD);
  const [rows, cols] = y.shape;
  if (x.shape[0] !== rows) throw new Error(`${DENSE_GRAD} (wasm, ${WHERE}): x must have the ${rows} rows of y; got [${x.shape}]`);
  return allOrNothing(backend, (made) => {
    const dBias = backend.makeOutput([cols], 'float32');
    made.push(dBias);
    let dz: TensorInfo;
    if (activation === 'relu') {
      dz = intoOutput(backend, [rows, cols], (out) => addon.biasReluGrad(heapView(backend, dy), heapView(backend, y), heapView(backend, out), heapView(backend, dBias)));
    } else if (activation === 'tanh' || activation === 'softplus') {
      dz = intoOutput(backend, [rows, cols], (out) =>
        addon.biasActivationGrad(heapView(backend, dy), heapView(backend, y), heapView(backend, out), heapView(backend, dBias), activation),
      );
    } else {
      backend.incRef(dy.dataId);
      dz = { dataId: dy.dataId, shape: dy.shape, dtype: dy.dtype };
      addon.sumRows(heapView(backend, dy), rows, cols, heapView(backend, dBias));
    }
    made.push(dz);
    const dKernel = intoOutput(backend, [x.shape[1], cols], (out) => matMulInto(addon, backend, x, dz, true, false, out));
    return [dz, dKernel, dBias];
  });
}

/** core/fused.ts REPARAM. Shapes: loc, logVar, eps [N, D] -> [N, D]. */
function reparamKernel(args: Parameters<KernelFunc>[0]): TensorInfo {
  const addon = addonFor(REPARAM);
  const backend = args.backend as unknown as WasmBackendView;
  const [loc, logVar, eps] = sameShapeMatrices(args, ['loc', 'logVar', 'eps'], REPARAM);
  return intoOutput(backend, loc.shape, (z) => addon.reparam(heapView(backend, loc), heapView(backend, logVar), heapView(backend, eps), heapView(backend, z)));
}

/** core/fused.ts REPARAM_GRAD. Shapes: dz, logVar, eps [N, D] -> [N, D]. */
function reparamGradKernel(args: Parameters<KernelFunc>[0]): TensorInfo {
  const addon = addonFor(REPARAM_GRAD);
  const backend = args.backend as unknown as WasmBackendView;
  const [dz, logVar, eps] = sameShapeMatrices(args, ['dz', 'logVar', 'eps'], REPARAM_GRAD);
  return intoOutput(backend, dz.shape, (d) => addon.reparamGrad(heapView(backend, dz), heapView(backend, logVar), heapView(backend, eps), heapView(backend, d)));
}

/** core/fused.ts KL_STD_NORMAL_GRAD. Shapes: dy [N], loc, logVar [N, D] -> [dloc, dlogVar] [N, D]. */
function klStdNormalGradKernel(args: Parameters<KernelFunc>[0]): TensorInfo[] {
  const addon = addonFor(KL_STD_NORMAL_GRAD);
  const backend = args.backend as unknown as WasmBackendView;
  const [loc, logVar] = sameShapeMatrices(args, ['loc', 'logVar'], KL_STD_NORMAL_GRAD);
  const [rows, cols] = loc.shape;
  const dy = rowInput(args, 'dy', rows, KL_STD_NORMAL_GRAD);
  let dLoc: TensorInfo | null = null;
  const dLogVar = intoOutput(backend, [rows, cols], (dv) => {
    dLoc = intoOutput(backend, [rows, cols], (dl) =>
      addon.klStdNormalGrad(heapView(backend, dy), heapView(backend, loc), heapView(backend, logVar), heapView(backend, dl), heapView(backend, dv), rows, cols),
    );
  });
  return [dLoc!, dLogVar];
}

/**
 * sum over the tensors of sum(t^2), computed natively in double, or null when the pack is not in
 * use for these tensors (not on wasm, not all float32): the squared global norm of the gradients.
 */
export function nativeSumSquares(tensors: readonly tf.Tensor[]): number | null {
  const l = load();
  if (!l.ok || installed === null || tf.getBackend() !== BACKEND) return null;
  const backend = tf.backend() as unknown as WasmBackendView;
  if (!tensors.every((t) => t.dtype === 'float32' && !t.isDisposed && backend.dataIdMap.get(t.dataId) !== undefined)) return null;
  let total = 0;
  for (const t of tensors) if (t.size > 0) total += l.addon.sumSquares(heapView(backend, t));
  return total;
}

/* ------------------------------------------------------------------ install */

const KERNELS: Array<[string, KernelFunc]> = [
  ['Add', add],
  ['BatchMatMul', batchMatMul],
  ['Conv2D', conv2d],
  ['Conv2DBackpropFilter', conv2dBackpropFilter],
  ['Conv2DBackpropInput', conv2dBackpropInput],
  ['FusedConv2D', fusedConv2d],
  ['LeakyRelu', leakyRelu],
  ['Relu', relu],
  ['Sum', sum],
  ['_FusedMatMul', fusedMatMul],
  [BERNOULLI_LOG_PROB, bernoulliLogProb],
  [BERNOULLI_LOG_PROB_GRAD, bernoulliLogProbGrad],
  [RELU_GRAD, reluGradKernel],
  [BIAS_RELU, biasReluKernel],
  [BIAS_RELU_GRAD, biasReluGradKernel],
  [DENSE, denseKernel],
  [DENSE_GRAD, denseGradKernel],
  [REPARAM, reparamKernel],
  [REPARAM_GRAD, reparamGradKernel],
  [REPARAM_LOG_PROB, reparamLogProbKernel],
  [KL_STD_NORMAL, klStdNormalKernel],
  [KL_STD_NORMAL_GRAD, klStdNormalGradKernel],
  [LEAKY_RELU_GRAD, leakyReluGradKernel],
  [BATCH_NORM, batchNormKernel],
  [BATCH_NORM_GRAD, batchNormGradKernel],
];

/**
 * Registers the native kernels for the 'wasm' backend (`Add` of a bias, `BatchMatMul`, `Conv2D`,
 * `Conv2DBackpropFilter`, `Conv2DBackpropInput`, `FusedConv2D`, `Relu`, `Sum` over leading axes, `_FusedMatMul`, and
 * the fused kernels of core/fused.ts, which have no other implementation) over
 * vaelab's wasm kernels
 * (installed first, see wasm-kernels.ts), which stay the fallback for every case the pack does
 * not handle. Returns the names installed, sorted; [] when the pack is unavailable (see
 * `nativeStatus`). Idempotent. Throws a ConfigError for a bad VAELAB_THREADS.
 */
export function installNativeKernels(): string[] {
  if (installed !== null) return [...installed];
  const l = load();
  if (!l.ok) {
    if (l.reason.startsWith('VAELAB_THREADS:')) throw new ConfigError(l.reason);
    return [];
  }
  installWasmKernels();
  for (const [kernelName, kernelFunc] of KERNELS) {
    const prev = tf.getKernel(kernelName, BACKEND);
    previous.set(kernelName, prev);
    if (prev !== undefined) tf.unregisterKernel(kernelName, BACKEND);
    // The stock kernel's setup function (it binds the wasm functions the fallback calls) is
    // kept, so that a re-initialised backend still sets it up.
    tf.registerKernel({ kernelName, backendName: BACKEND, kernelFunc, setupFunc: prev?.setupFunc });
  }
  installed = [...NATIVE_KERNEL_NAMES];
  return [...installed];
}

/** The kernels `installNativeKernels` installs, sorted. */
export const NATIVE_KERNEL_NAMES: readonly string[] = KERNELS.map(([name]) => name).sort();

/** Names installed by `installNativeKernels`, or [] when not installed. */
export function installedNativeKernels(): string[] {
  return installed === null ? [] : [...installed];
}

/**
 * Restores the kernels that `installNativeKernels` replaced (vaelab's wasm kernels), e.g. to
 * compare both paths in one process. A later `installNativeKernels` installs them again.
 */
export function uninstallNativeKernels(): void {
  if (installed === null) return;
  for (const [kernelName] of KERNELS) {
    tf.unregisterKernel(kernelName, BACKEND);
    const prev = previous.get(kernelName);
    if (prev !== undefined) tf.registerKernel(prev);
  }
  previous.clear();
  installed = null;
}

/* ------------------------------------------------------------------ Adam */

/**
 * Makes `t` the only owner of its heap buffer: when another tensor shares its dataId (a
 * variable right after `assign`, a reshape of it, the tensor it was created from), gives it a
 * fresh copy through `assign`, so that writing in place changes nothing else.
 */
function ownBuffer(backend: WasmBackendView, t: tf.Variable): void {
  if (backend.refCount(t.dataId) === 1) return;
  const info = backend.makeOutput([...t.shape], 'float32');
  const src = dataOf(backend, t).memoryOffset / 4;
  const heap = new Float32Array(backend.wasm.HEAPU8.buffer);
  heap.copyWithin(dataOf(backend, info).memoryOffset / 4, src, src + t.size);
  const copy = tf.engine().makeTensorFromTensorInfo(info, backend as unknown as tf.KernelBackend);
  t.assign(copy);
  copy.dispose();
}

/**
 * Drops whatever the wasm module cached for tensor `t` (XNNPACK keeps matMul weights and conv
 * filters packed, keyed by tensor id, until the id is disposed), keeping its memory: after an
 * in-place write, a stock kernel must not reuse packed copies of the old values.
 */
function invalidateCaches(backend: WasmBackendView, t: tf.Tensor): void {
  const d = dataOf(backend, t);
  backend.wasm.tfjs.disposeData(d.id);
  backend.wasm.tfjs.registerTensor(d.id, t.size, d.memoryOffset);
}

/**
 * One fused Adam step for a list of variables, in place on the wasm heap (PyTorch's rule, the
 * float32 operations of core/train/adam.ts in their order; on equal inputs the same bits as its
 * tfjs ops on wasm, except that a denormal operand or result is 0 here, see native/README.md):
 *   g' = g + weightDecay * p                  (only when weightDecay > 0)
 *   m = beta1 m + (1 - beta1) g';   v = beta2 v + (1 - beta2) g'^2
 *   p = p - stepSize * m / (sqrt(v) / sqrtBc2 + epsilon)
 *
 * Contract:
 * - `vars[i]`, `grads[i]`, `m[i]`, `v[i]` belong together; all four lists have the same length,
 *   and for each i the four tensors have the same number of elements (shapes: vars[i]: any,
 *   grads/m/v[i]: the same shape as vars[i]). A mismatch throws an Error naming the index,
 *   before anything is changed.
 * - Returns false, changing nothing, when the fast path cannot be used: the pack is
 *   unavailable (VAELAB_NATIVE=0, not built) or its kernels are not installed, the current backend is not 'wasm', or any of the
 *   tensors is not float32 or does not live on the wasm backend. The caller then runs its own
 *   tfjs update. Returns true after updating every variable.
 * - `vars`, `m` and `v` are updated in place: their dataIds, and so their tensor identities,
 *   normally stay the same. A variable whose buffer is shared with another tensor (right after
 *   `assign(t)` while `t` lives, after `tf.variable(t)` while `t` lives, or a live
 *   `tf.reshape(variable)`) first gets a private copy through `assign`, so other tensors never
 *   see the update; it then has a new dataId. Cached packed weights of the wasm module for the
 *   updated tensors are dropped.
 * - `grads` are only read; the caller still owns and disposes them. No tensor is created that
 *   outlives the call (tf.memory().numTensors is unchanged), so it may run inside or outside
 *   tf.tidy.
 * - Hyper-parameters: see NativeAdamHyper; the caller increments its step count t first, then
 *   passes stepSize = lr / (1 - beta1^t) and sqrtBc2 = sqrt(1 - beta2^t).
 */
export function nativeAdamStep(
  vars: tf.Variable[],
  grads: tf.Tensor[],
  m: tf.Variable[],
  v: tf.Variable[],
  hyper: NativeAdamHyper,
): boolean {
  return adamStep(vars, grads, m, v, hyper, false) !== null;
}

/**
 * nativeAdamStep that also returns the sum of the squares of the gradients, the same number
 * nativeSumSquares(grads) gives (summed in the same order, bit for bit), taken block by block
 * inside the update pass while each block of a gradient is in cache; null (nothing changed) when
 * nativeAdamStep would return false. The squared global norm of a step without clipping, at no
 * pass of its own.
 */
export function nativeAdamStepSquares(
  vars: tf.Variable[],
  grads: tf.Tensor[],
  m: tf.Variable[],
  v: tf.Variable[],
  hyper: NativeAdamHyper,
): number | null {
  return adamStep(vars, grads, m, v, hyper, true);
}

/** The update of nativeAdamStep; the sum of the gradients' squares when asked (else 0), or null when the pack did not run it. */
function adamStep(vars: tf.Variable[], grads: tf.Tensor[], m: tf.Variable[], v: tf.Variable[], hyper: NativeAdamHyper, squares: boolean): number | null {
  if (vars.length !== grads.length || vars.length !== m.length || vars.length !== v.length) {
    throw new Error(
      `nativeAdamStep (${WHERE}): vars, grads, m and v must have the same length; got ${vars.length}, ${grads.length}, ${m.length}, ${v.length}`,
    );
  }
  for (let i = 0; i < vars.length; i++) {
    for (const [what, t] of [['grads', grads[i]], ['m', m[i]], ['v', v[i]]] as const) {
      if (t.size !== vars[i].size) {
        throw new Error(
          `nativeAdamStep (${WHERE}): ${what}[${i}] must have ${vars[i].size} elements like vars[${i}] "${vars[i].name}" [${vars[i].shape}]; got [${t.shape}]`,
        );
      }
    }
  }
  const l = load();
  if (!l.ok || installed === null || tf.getBackend() !== BACKEND) return null;
  const backend = tf.backend() as unknown as WasmBackendView;
  const all = [...vars, ...grads, ...m, ...v];
  if (!all.every((t) => t.dtype === 'float32' && !t.isDisposed && backend.dataIdMap.get(t.dataId) !== undefined)) return null;

  // Copies (which allocate, and may grow the heap) first; views after.
  for (const t of [...vars, ...m, ...v]) ownBuffer(backend, t);
  let total = 0;
  for (let i = 0; i < vars.length; i++) {
    if (vars[i].size === 0) continue;
    const sum = l.addon.adamUpdate(
      heapView(backend, vars[i]), heapView(backend, grads[i]), heapView(backend, m[i]), heapView(backend, v[i]),
      hyper.stepSize, hyper.beta1, hyper.beta2, hyper.epsilon, hyper.sqrtBc2, hyper.weightDecay, squares,
    );
    if (squares) total += sum as number;
  }
  for (const t of [...vars, ...m, ...v]) invalidateCaches(backend, t);
  return total;
}
