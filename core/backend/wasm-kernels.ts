/**
 * Replacement and missing training kernels for the wasm backend of TensorFlow.js 4.22.
 *
 * Stock `@tensorflow/tfjs-backend-wasm` 4.22 has four gaps that make training or evaluation slow or
 * impossible:
 *
 * - `BatchMatMul` / `_FusedMatMul` reach XNNPACK only when neither operand is transposed and
 *   both have batch 1. Every other form (all backward products of a dense layer, batched and
 *   broadcast products) runs a scalar loop about 10x slower. The replacements materialise the
 *   transposes with the wasm `Transpose` kernel (or compute (op(B)ᵀ·op(A)ᵀ)ᵀ when that copies
 *   less), fold a broadcast right operand into the rows of the left one, and otherwise loop
 *   over batch slices, so that every product takes the fast path.
 * - `Conv2DBackpropFilter` is not registered at all, so a conv net cannot be trained. It is
 *   computed as one wasm `Conv2D` over transposed tensors (see `conv2dBackpropFilter`).
 * - `Conv2DBackpropInput` (the gradient of conv2d and the forward pass of conv2dTranspose) is a
 *   naive loop. It is computed as one fast GEMM followed by a col2im scatter-add.
 * - `Tile` computes every output element's source index one at a time (0.27 s to tile a
 *   [100, 784] batch 100-fold for an importance-weighted evaluation); the replacement is a few
 *   block copies in the heap.
 *
 * A fifth costs time in every training step: `Identity` copies its input, and the engine calls
 * it (through `tf.clone`) for every tensor it saves for the backward pass, then a same-dtype
 * `Cast` (another copy) in the backward pass: 72 copies per MLP VAE step. Both now share the
 * input's buffer, as on the cpu backend.
 *
 * Every kernel here checks its inputs (dtypes, ranks, shapes, the attributes that fix the output
 * shape) before it touches memory, with the checks below (`checkMatMul`, `checkConv2D`, ...), which
 * the native pack's kernels (native.ts) run too. The stock wasm kernels leave those checks to
 * tfjs-core's ops, but a kernel can be reached without them (`tf.engine().runKernel`, a gradient
 * function, another backend's op), and these replacements reinterpret shapes (a broadcast operand
 * folded into rows, zero-copy batch views, a filter viewed as a matrix): unchecked, a matMul of
 * [2, 3] by [2, 4] read past the end of its right operand and returned [2, 4] of garbage. Errors
 * are plain Errors in tfjs's own words where tfjs-core's op has a message for the same misuse
 * (word for word, its stray parentheses included, so that one misuse reads the same on every
 * backend), and in its form ("Error in <op>: ...") otherwise. The checks are O(1) in the tensor sizes.
 *
 * Everything is composed at the kernel level: other wasm kernels are called through their
 * `kernelFunc` with the wasm backend, and intermediates are released with
 * `backend.disposeData`, so the engine never sees them (no tensors leak, no tidy needed).
 * Batch slices are zero-copy views into the wasm heap: a view is registered under a fresh
 * tensor id and released without freeing its memory. A fresh id per view matters: XNNPACK's
 * packed-weights cache in the wasm backend is keyed by the right operand's id.
 */
import * as tf from '@tensorflow/tfjs-core';
import { backend_util, broadcast_util, util } from '@tensorflow/tfjs-core';
import type {
  BatchMatMulAttrs, Conv2DAttrs, Conv2DBackpropFilterAttrs, Conv2DBackpropInputAttrs, DataType, KernelConfig, KernelFunc,
  NamedAttrMap, NamedTensorInfoMap, TensorInfo, _FusedMatMulAttrs,
} from '@tensorflow/tfjs-core';
import { ConfigError } from '../errors';

type DataId = TensorInfo['dataId'];

/** The part of the wasm backend (`BackendWasm`) these kernels use. */
interface WasmBackendView {
  wasm: { HEAPU8: Uint8Array; tfjs: { disposeData(id: number): void } };
  dataIdMap: {
    get(dataId: DataId): { id: number; memoryOffset: number } | undefined;
    delete(dataId: DataId): unknown;
  };
  makeOutput(shape: number[], dtype: DataType, memoryOffset?: number): TensorInfo;
  disposeData(dataId: DataId, force?: boolean): boolean;
  incRef(dataId: DataId): void;
}

/** The stock kernels the replacements delegate to, captured before replacement. */
interface StockKernels {
  batchMatMul: KernelFunc;
  fusedMatMul: KernelFunc;
  transpose: KernelFunc;
  conv2d: KernelFunc;
  slice: KernelFunc;
  cast: KernelFunc;
  identity: KernelFunc;
  tile: KernelFunc;
}

const BACKEND = 'wasm';
const WHERE = 'core/backend/wasm-kernels';
/** Upper bound on the col2im scratch matrix of Conv2DBackpropInput, in floats (64 MB). */
const MAX_COLS_FLOATS = 16 * 1024 * 1024;

let installed: string[] | null = null;
let stock: StockKernels | null = null;

function stockKernels(): StockKernels {
  if (stock === null) throw new Error(`${WHERE}: kernels used before installWasmKernels()`);
  return stock;
}

function kernelOf(name: string): KernelConfig {
  const config = tf.getKernel(name, BACKEND);
  if (config === undefined) {
    throw new Error(`${WHERE}: the wasm backend has no "${name}" kernel to build on; is @tensorflow/tfjs-backend-wasm 4.22 loaded?`);
  }
  return config;
}

/** Calls a kernel function that returns one tensor. */
function call(fn: KernelFunc, backend: WasmBackendView, inputs: NamedTensorInfoMap, attrs: object): TensorInfo {
  const out = fn({ inputs, backend, attrs: attrs as NamedAttrMap });
  if (Array.isArray(out)) throw new Error(`${WHERE}: expected one output from a wasm kernel, got ${out.length}`);
  return out;
}

/** A required kernel input. */
function need(inputs: NamedTensorInfoMap, name: string, kernel: string): TensorInfo {
  const t = inputs[name];
  if (t === undefined) throw new Error(`${kernel} (wasm, ${WHERE}): input "${name}" is missing`);
  return t;
}

function offsetOf(backend: WasmBackendView, t: TensorInfo): number {
  const data = backend.dataIdMap.get(t.dataId);
  if (data === undefined) throw new Error(`${WHERE}: tensor data is not on the wasm backend`);
  return data.memoryOffset;
}

/* ------------------------------------------------------------------ input checks */

/** Whether `shape` is [n] or [1, ..., 1, n]: one value per column (or channel) of the output. */
function isColumnVector(shape: readonly number[], n: number): boolean {
  return shape.length >= 1 && shape[shape.length - 1] === n && shape.every((d, i) => i === shape.length - 1 || d === 1);
}

/**
 * Checks the operands of a matMul kernel and returns the output shape. `op` is tfjs-core's name of
 * the op in its messages: "matMul" for BatchMatMul (operands of rank 2 or more), "fused matMul"
 * for _FusedMatMul (rank 3, as tf.fused.matMul hands them over). Throws, as tfjs does, when the
 * inner dimensions differ (tfjs-core's message, word for word) or the batch dimensions do not
 * broadcast (tfjs's broadcast_util message); also for a rank or a dtype these kernels do not take.
 * Shapes: a [...aOuter, m, k] (or [..., k, m] when transposeA), b [...bOuter, k, n] (or
 * [..., n, k]) -> [...broadcast(aOuter, bOuter), m, n].
 */
export function checkMatMul(op: 'matMul' | 'fused matMul', a: TensorInfo, b: TensorInfo, transposeA: boolean, transposeB: boolean): number[] {
  util.assert(a.dtype === 'float32' && b.dtype === 'float32', () => `Error in ${op}: a and b must be float32 on the wasm backend, but got ${a.dtype} and ${b.dtype}.`);
  const ra = a.shape.length;
  const rb = b.shape.length;
  if (op === 'fused matMul') {
    util.assert(ra === 3 && rb === 3, () => `Error in fused matMul: a and b must be rank 3, but got ranks ${ra} and ${rb}.`);
  } else {
    util.assert(ra >= 2 && rb >= 2, () => `Error in matMul: a and b must be of rank 2 or more, but got ranks ${ra} and ${rb}.`);
  }
  const innerA = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
  const innerB = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
  util.assert(
    innerA === innerB,
    () => `Error in ${op}: inner shapes (${innerA}) and (${innerB}) of Tensors with shapes ${a.shape} and ${b.shape} and transposeA=${transposeA} and transposeB=${transposeB} must match.`,
  );
  const outer = broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  return [...outer, transposeA ? a.shape[ra - 1] : a.shape[ra - 2], transposeB ? b.shape[rb - 2] : b.shape[rb - 1]];
}

/**
 * Checks a _FusedMatMul's bias and PReLU inputs against its output shape `outShape` (from
 * checkMatMul): the bias is float32 with one value per output column ([n], or with leading 1s);
 * activation "prelu" comes with float32 weights whose shape, leading 1s aside, is the trailing part
 * of the output's (what the kernels apply them to).
 */
export function checkFusedMatMulExtras(inputs: NamedTensorInfoMap, activation: string | undefined, outShape: readonly number[]): void {
  const { bias, preluActivationWeights: weights } = inputs;
  const n = outShape[outShape.length - 1];
  if (bias !== undefined) {
    util.assert(bias.dtype === 'float32', () => `Error in fused matMul: bias must be float32, but got ${bias.dtype}.`);
    util.assert(isColumnVector(bias.shape, n), () => `Error in fused matMul: bias shape (${bias.shape}) does not match the number of output columns (${n}).`);
  }
  if (activation === 'prelu') {
    util.assert(weights !== undefined, () => 'Error in fused matMul: activation "prelu" needs preluActivationWeights.');
    const w = weights as TensorInfo;
    const core = w.shape.slice(w.shape.findIndex((d) => d !== 1));
    const trailing = w.shape.every((d) => d === 1) || (core.length <= outShape.length && core.every((d, i) => d === outShape[outShape.length - core.length + i]));
    util.assert(w.dtype === 'float32' && trailing, () => `Error in fused matMul: PReLU activation weights (${w.dtype}, shape ${w.shape}) must be float32 and match the trailing dimensions of the output (${outShape}).`);
  }
}

/** The conv attributes the checks read. */
interface ConvAttrsView {
  strides: number | [number, number];
  pad: Conv2DAttrs['pad'];
  dataFormat?: string;
  dilations?: number | [number, number];
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

function channelsOf(dataFormat: string | undefined): 'channelsLast' | 'channelsFirst' {
  return dataFormat === 'NCHW' ? 'channelsFirst' : 'channelsLast';
}

/**
 * Checks a forward convolution's inputs (Conv2D; FusedConv2D with op "fused conv2d") with
 * tfjs-core's messages, and returns its Conv2DInfo. Shapes: x [B, H, W, Cin] (NHWC) or
 * [B, Cin, H, W] (NCHW), filter [kh, kw, Cin, Cout].
 */
export function checkConv2D(op: 'conv2d' | 'fused conv2d', x: TensorInfo, filter: TensorInfo, attrs: ConvAttrsView): backend_util.Conv2DInfo {
  util.assert(x.dtype === 'float32' && filter.dtype === 'float32', () => `Error in ${op}: x and filter must be float32 on the wasm backend, but got ${x.dtype} and ${filter.dtype}.`);
  util.assert(x.shape.length === 4, () => `Error in ${op}: input must be rank 4, but got rank ${x.shape.length}.`);
  util.assert(filter.shape.length === 4, () => `Error in ${op}: filter must be rank 4, but got rank ${filter.shape.length}.`);
  const inDepth = attrs.dataFormat === 'NCHW' ? x.shape[1] : x.shape[3];
  util.assert(inDepth === filter.shape[2], () => `Error in conv2d: depth of input (${inDepth}) must match input depth for filter ${filter.shape[2]}.`);
  const dilations = attrs.dilations ?? 1;
  util.assert(
    backend_util.eitherStridesOrDilationsAreOne(attrs.strides, dilations),
    () => `Error in conv2D: Either strides or dilations must be 1. Got strides ${attrs.strides} and dilations '${dilations}'`,
  );
  util.assert(backend_util.stridesOrDilationsArePositive(dilations), () => 'Error in conv2D: Dilated rates should be larger than 0.');
  util.assert(backend_util.stridesOrDilationsArePositive(attrs.strides), () => 'Error in conv2D: Strides should be larger than 0.');
  backend_util.checkPadOnDimRoundingMode(op, attrs.pad, attrs.dimRoundingMode);
  return backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number], filter.shape as [number, number, number, number], attrs.strides, dilations, attrs.pad,
    attrs.dimRoundingMode, false, channelsOf(attrs.dataFormat),
  );
}

/** Checks FusedConv2D's bias: float32, one value per output channel ([Cout], or with leading 1s). */
export function checkConvBias(bias: TensorInfo | undefined, outChannels: number): void {
  if (bias === undefined) return;
  util.assert(bias.dtype === 'float32', () => `Error in fused conv2d: bias must be float32, but got ${bias.dtype}.`);
  util.assert(
    isColumnVector(bias.shape, outChannels),
    () => `Error in fused conv2d: bias shape (${bias.shape}) is not compatible with the number of output channels (${outChannels})`,
  );
}

/**
 * Checks Conv2DBackpropFilter's inputs with tfjs-core's messages (conv2dDerFilter), and that dy
 * has the shape of the forward output, which the op does not check and the kernels rely on.
 * Returns the Conv2DInfo of the forward convolution. Shapes: x [B, H, W, Cin], dy [B, Ho, Wo, Cout],
 * attr filterShape [kh, kw, Cin, Cout].
 */
export function checkConv2DBackpropFilter(x: TensorInfo, dy: TensorInfo, attrs: ConvAttrsView & { filterShape: number[] }): backend_util.Conv2DInfo {
  const { filterShape } = attrs;
  util.assert(x.dtype === 'float32' && dy.dtype === 'float32', () => `Error in conv2dDerFilter: x and dy must be float32 on the wasm backend, but got ${x.dtype} and ${dy.dtype}.`);
  util.assert(x.shape.length === 4, () => `Error in conv2dDerFilter: input must be rank 4, but got shape ${x.shape}.`);
  util.assert(dy.shape.length === 4, () => `Error in conv2dDerFilter: dy must be rank 4, but got shape ${dy.shape}.`);
  util.assert(Array.isArray(filterShape) && filterShape.length === 4, () => `Error in conv2dDerFilter: filterShape must be length 4, but got ${filterShape}.`);
  const nchw = attrs.dataFormat === 'NCHW';
  const inDepth = nchw ? x.shape[1] : x.shape[3];
  const outDepth = nchw ? dy.shape[1] : dy.shape[3];
  util.assert(inDepth === filterShape[2], () => `Error in conv2dDerFilter: depth of input ${inDepth}) must match input depth in filter (${filterShape[2]}.`);
  util.assert(outDepth === filterShape[3], () => `Error in conv2dDerFilter: depth of dy (${outDepth}) must match output depth for filter (${filterShape[3]}).`);
  util.assert(backend_util.stridesOrDilationsArePositive(attrs.strides), () => 'Error in conv2dDerFilter: Strides should be larger than 0.');
  backend_util.checkPadOnDimRoundingMode('conv2dDerFilter', attrs.pad, attrs.dimRoundingMode);
  const info = backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number], filterShape as [number, number, number, number], attrs.strides, 1, attrs.pad,
    attrs.dimRoundingMode, false, channelsOf(attrs.dataFormat),
  );
  util.assert(
    util.arraysEqual(dy.shape, info.outShape),
    () => `Error in conv2dDerFilter: dy must have the shape of the conv2d output (${info.outShape}), but got shape ${dy.shape}.`,
  );
  return info;
}

/**
 * Checks Conv2DBackpropInput's inputs with tfjs-core's messages (conv2dDerInput), and that dy has
 * the shape of the forward output for attr inputShape, which the op does not check and the kernels
 * rely on. Returns the Conv2DInfo of the forward convolution. Shapes: dy [B, Ho, Wo, Cout],
 * filter [kh, kw, Cin, Cout], attr inputShape [B, H, W, Cin].
 */
export function checkConv2DBackpropInput(dy: TensorInfo, filter: TensorInfo, attrs: ConvAttrsView & { inputShape: number[] }): backend_util.Conv2DInfo {
  const { inputShape } = attrs;
  util.assert(dy.dtype === 'float32' && filter.dtype === 'float32', () => `Error in conv2dDerInput: dy and filter must be float32 on the wasm backend, but got ${dy.dtype} and ${filter.dtype}.`);
  util.assert(Array.isArray(inputShape) && inputShape.length === 4, () => `Error in conv2dDerInput: inShape must be length 4, but got length ${inputShape?.length}.`);
  util.assert(inputShape.every((d) => Number.isInteger(d) && d >= 0), () => `Error in conv2dDerInput: inShape must hold whole numbers >= 0, but got ${inputShape}.`);
  util.assert(dy.shape.length === 4, () => `Error in conv2dDerInput: dy must be rank 4, but got rank ${dy.shape.length}`);
  util.assert(filter.shape.length === 4, () => `Error in conv2dDerInput: filter must be rank 4, but got rank ${filter.shape.length}`);
  const nchw = attrs.dataFormat === 'NCHW';
  const inDepth = nchw ? inputShape[1] : inputShape[3];
  const outDepth = nchw ? dy.shape[1] : dy.shape[3];
  util.assert(inDepth === filter.shape[2], () => `Error in conv2dDerInput: depth of input (${inDepth}) must match input depth for filter ${filter.shape[2]}.`);
  util.assert(outDepth === filter.shape[3], () => `Error in conv2dDerInput: depth of output (${outDepth}) must match output depth for filter ${filter.shape[3]}.`);
  util.assert(backend_util.stridesOrDilationsArePositive(attrs.strides), () => 'Error in conv2dDerInput: Strides should be larger than 0.');
  backend_util.checkPadOnDimRoundingMode('conv2dDerInput', attrs.pad, attrs.dimRoundingMode);
  const info = backend_util.computeConv2DInfo(
    inputShape as [number, number, number, number], filter.shape as [number, number, number, number], attrs.strides, 1, attrs.pad,
    attrs.dimRoundingMode, false, channelsOf(attrs.dataFormat),
  );
  util.assert(
    util.arraysEqual(dy.shape, info.outShape),
    () => `Error in conv2dDerInput: dy must have the shape of the conv2d output (${info.outShape}), but got shape ${dy.shape}.`,
  );
  return info;
}


/**
 * `Identity` sharing the input's buffer (one more reference) instead of copying it, as the cpu
 * backend does. The engine calls it for every tensor it saves for the backward pass
 * (`tf.clone`), so the stock copy cost one full read and write per saved activation and weight.
 * Sharing is safe because no wasm kernel writes into its inputs; the one in-place writer,
 * `nativeAdamStep`, first gives a variable a private buffer when its reference count is above 1.
 */
function sharedIdentity(args: Parameters<KernelFunc>[0]): TensorInfo {
  const x = need(args.inputs, 'x', 'Identity');
  const backend = args.backend as unknown as WasmBackendView;
  if (x.dtype === 'string') return call(stockKernels().identity, backend, { x }, {});
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

/**
 * `Tile` as block copies inside the wasm heap: the stock kernel computes the source index of every
 * output element one at a time (≈ 30 M floats/s, 0.27 s to tile a [100, 784] batch 100 times for
 * an importance-weighted evaluation), while a tile is a few contiguous copies. Axis by axis from
 * the first: the output block of one index of an axis is written once (recursively), then copied
 * rep - 1 more times with copyWithin, doubling what is already written. Strings go to the stock
 * kernel. Shapes: x [d0, ..., dn] with attr reps [r0, ..., rn] -> [d0 r0, ..., dn rn].
 */
function tile(args: Parameters<KernelFunc>[0]): TensorInfo {
  const x = need(args.inputs, 'x', 'Tile');
  const backend = args.backend as unknown as WasmBackendView;
  const reps = (args.attrs as { reps?: number[] }).reps;
  if (!Array.isArray(reps) || reps.length !== x.shape.length || reps.some((r) => !Number.isInteger(r) || r < 0)) {
    throw new Error(`Error in tile: reps must be ${x.shape.length} non-negative integers, one per axis of x [${x.shape}]; got ${JSON.stringify(reps)}`);
  }
  if (x.dtype === 'string') return call(stockKernels().tile, backend, { x }, { reps });
  const rank = x.shape.length;
  const outShape = x.shape.map((d, i) => d * reps[i]);
  const out = backend.makeOutput(outShape, x.dtype);
  if (util.sizeFromShape(outShape) === 0) return out;
  const bytes = x.dtype === 'bool' ? 1 : 4;
  // Sizes in bytes of one index's block at each axis, in x and in the output.
  const inBlock = new Array<number>(rank + 1);
  const outBlock = new Array<number>(rank + 1);
  inBlock[rank] = bytes;
  outBlock[rank] = bytes;
  for (let a = rank - 1; a >= 0; a--) {
    inBlock[a] = inBlock[a + 1] * x.shape[a];
    outBlock[a] = outBlock[a + 1] * outShape[a];
  }
  // The innermost axes that are not repeated form one contiguous run in both.
  let plain = rank;
  while (plain > 0 && reps[plain - 1] === 1) plain--;
  // Offsets taken after makeOutput: the heap may have grown, so the view is taken once, here.
  const heap = backend.wasm.HEAPU8;
  const src = offsetOf(backend, x);
  const dst = offsetOf(backend, out);
  const write = (axis: number, inAt: number, outAt: number): void => {
    if (axis >= plain) {
      heap.copyWithin(outAt, inAt, inAt + inBlock[axis]);
      return;
    }
    const d = x.shape[axis];
    if (axis + 1 >= plain) heap.copyWithin(outAt, inAt, inAt + inBlock[axis]);
    else for (let i = 0; i < d; i++) write(axis + 1, inAt + i * inBlock[axis + 1], outAt + i * outBlock[axis + 1]);
    const once = d * outBlock[axis + 1];
    let done = 1;
    while (done < reps[axis]) {
      const n = Math.min(done, reps[axis] - done);
      heap.copyWithin(outAt + done * once, outAt, outAt + n * once);
      done += n;
    }
  };
  write(0, src, dst);
  return out;
}

/**
 * `Cast` to the tensor's own dtype shares the buffer (the gradient of every `tf.clone` is such a
 * cast). A cast of float32 or int32 to bool is computed here as x != 0: the stock kernel
 * truncates into a byte (-2.2 became 254). Other casts go to the stock kernel.
 */
function castSharingSameDtype(args: Parameters<KernelFunc>[0]): TensorInfo {
  const x = need(args.inputs, 'x', 'Cast');
  const { dtype } = args.attrs as unknown as { dtype: DataType };
  const backend = args.backend as unknown as WasmBackendView;
  // tfjs-core's cast op checks these two; a kernel reached without it gets the same messages.
  util.assert(util.isValidDtype(dtype), () => `Failed to cast to unknown dtype ${dtype}`);
  util.assert((dtype === 'string') === (x.dtype === 'string'), () => 'Only strings can be casted to strings');
  if (dtype === x.dtype && dtype !== 'string') return sharedIdentity(args);
  if (dtype === 'bool' && (x.dtype === 'float32' || x.dtype === 'int32')) {
    const out = backend.makeOutput(x.shape, 'bool');
    const n = util.sizeFromShape(x.shape);
    const heap = backend.wasm.HEAPU8.buffer;
    const src = x.dtype === 'float32' ? new Float32Array(heap, offsetOf(backend, x), n) : new Int32Array(heap, offsetOf(backend, x), n);
    const dst = new Uint8Array(heap, offsetOf(backend, out), n);
    for (let i = 0; i < n; i++) dst[i] = src[i] !== 0 ? 1 : 0;
    return out;
  }
  return call(stockKernels().cast, backend, { x }, { dtype });
}

/**
 * Intermediates of one kernel call: owned tensors are disposed, views are unregistered
 * (their memory belongs to another tensor).
 */
class Scratch {
  private readonly owned: TensorInfo[] = [];
  private readonly views: TensorInfo[] = [];
  constructor(private readonly backend: WasmBackendView) {}

  own(t: TensorInfo): TensorInfo {
    this.owned.push(t);
    return t;
  }

  /** A float32 view of `count(shape)` elements of `base`, starting `offset` elements in. */
  view(base: TensorInfo, offset: number, shape: number[]): TensorInfo {
    const v = this.backend.makeOutput(shape, 'float32', offsetOf(this.backend, base) + 4 * offset);
    this.views.push(v);
    return v;
  }

  /** Releases one view early (the batch loops make two per batch item). */
  dropView(v: TensorInfo): void {
    const i = this.views.lastIndexOf(v);
    if (i >= 0) this.views.splice(i, 1);
    releaseView(this.backend, v);
  }

  /** Disposes one owned tensor early. */
  drop(t: TensorInfo): void {
    const i = this.owned.lastIndexOf(t);
    if (i >= 0) this.owned.splice(i, 1);
    this.backend.disposeData(t.dataId);
  }

  dispose(): void {
    for (const v of this.views) releaseView(this.backend, v);
    for (const t of this.owned) this.backend.disposeData(t.dataId);
    this.views.length = 0;
    this.owned.length = 0;
  }
}

function releaseView(backend: WasmBackendView, v: TensorInfo): void {
  const data = backend.dataIdMap.get(v.dataId);
  if (data === undefined) return;
  // Not backend.disposeData: that would free memory owned by the viewed tensor.
  backend.wasm.tfjs.disposeData(data.id);
  backend.dataIdMap.delete(v.dataId);
}

/** Copies `count` floats between two places of the wasm heap (offsets in elements). */
function heapCopy(backend: WasmBackendView, dst: TensorInfo, dstOffset: number, src: TensorInfo, count: number): void {
  // A fresh view each time: a kernel call may have grown the heap and detached older views.
  const heap = new Float32Array(backend.wasm.HEAPU8.buffer);
  const s = offsetOf(backend, src) / 4;
  const d = offsetOf(backend, dst) / 4 + dstOffset;
  heap.copyWithin(d, s, s + count);
}

function floatHeap(backend: WasmBackendView, t: TensorInfo, count: number): Float32Array {
  return new Float32Array(backend.wasm.HEAPU8.buffer, offsetOf(backend, t), count);
}

function withShape(t: TensorInfo, shape: number[]): TensorInfo {
  return { dataId: t.dataId, shape, dtype: t.dtype };
}

/** Swaps the last two axes with the wasm Transpose kernel. Shape: [..., r, c] -> [..., c, r]. */
function transposeLast2(backend: WasmBackendView, t: TensorInfo): TensorInfo {
  const rank = t.shape.length;
  const perm = [...Array(rank - 2).keys(), rank - 1, rank - 2];
  return call(stockKernels().transpose, backend, { x: t }, { perm });
}

/**
 * Offsets (in batch items) into A and B for each item of the broadcast batch.
 * Shapes: aOuter, bOuter and outOuter are the batch dims (everything but the last two axes).
 */
export function batchIndexMaps(aOuter: number[], bOuter: number[], outOuter: number[]): [Int32Array, Int32Array] {
  const rank = outOuter.length;
  const pad = (s: number[]) => [...new Array<number>(rank - s.length).fill(1), ...s];
  const aDims = pad(aOuter);
  const bDims = pad(bOuter);
  const total = util.sizeFromShape(outOuter);
  const aIdx = new Int32Array(total);
  const bIdx = new Int32Array(total);
  for (let i = 0; i < total; i++) {
    let rest = i;
    let ai = 0;
    let bi = 0;
    let aStride = 1;
    let bStride = 1;
    for (let d = rank - 1; d >= 0; d--) {
      const k = rest % outOuter[d];
      rest = Math.floor(rest / outOuter[d]);
      // A broadcast (size-1) axis always reads item 0 along that axis.
      if (aDims[d] !== 1) ai += k * aStride;
      if (bDims[d] !== 1) bi += k * bStride;
      aStride *= aDims[d];
      bStride *= bDims[d];
    }
    aIdx[i] = ai;
    bIdx[i] = bi;
  }
  return [aIdx, bIdx];
}

/**
 * A batched product with no transposes, each product on the XNNPACK path.
 * Shapes: a: [...aOuter, m, k], b: [...bOuter, k, n] -> [...broadcast(aOuter, bOuter), m, n].
 * `extra` carries the fused kernel's bias/activation inputs and attrs when `fn` is _FusedMatMul.
 */
function plainMatMul(
  backend: WasmBackendView,
  fn: KernelFunc,
  a: TensorInfo,
  b: TensorInfo,
  extraInputs: NamedTensorInfoMap = {},
  extraAttrs: object = {},
): TensorInfo {
  const m = a.shape[a.shape.length - 2];
  const k = a.shape[a.shape.length - 1];
  const n = b.shape[b.shape.length - 1];
  const aOuter = a.shape.slice(0, -2);
  const bOuter = b.shape.slice(0, -2);
  const outOuter = broadcast_util.assertAndGetBroadcastShape(aOuter, bOuter);
  const batchA = util.sizeFromShape(aOuter);
  const batchB = util.sizeFromShape(bOuter);
  const attrs = { ...extraAttrs, transposeA: false, transposeB: false };
  const outShape = [...outOuter, m, n];

  if (batchB === 1) {
    // B is shared by every item: stack A's items as rows, one GEMM of (batchA*m) x k x n.
    const out = call(fn, backend, { ...extraInputs, a: withShape(a, [1, batchA * m, k]), b: withShape(b, [1, k, n]) }, attrs);
    out.shape = outShape;
    return out;
  }

  const total = util.sizeFromShape(outOuter);
  const [aIdx, bIdx] = batchIndexMaps(aOuter, bOuter, outOuter);
  // Allocate the output first: later allocations can grow the heap (see heapCopy).
  const out = backend.makeOutput([total, m, n], 'float32');
  const scratch = new Scratch(backend);
  try {
    for (let i = 0; i < total; i++) {
      const av = scratch.view(a, aIdx[i] * m * k, [1, m, k]);
      const bv = scratch.view(b, bIdx[i] * k * n, [1, k, n]);
      const r = scratch.own(call(fn, backend, { ...extraInputs, a: av, b: bv }, attrs));
      heapCopy(backend, out, i * m * n, r, m * n);
      scratch.drop(r);
      scratch.dropView(av);
      scratch.dropView(bv);
    }
  } catch (err) {
    backend.disposeData(out.dataId);
    throw err;
  } finally {
    scratch.dispose();
  }
  out.shape = outShape;
  return out;
}

function isPlainFloat(...ts: TensorInfo[]): boolean {
  return ts.every((t) => t.dtype === 'float32' && util.sizeFromShape(t.shape) > 0 && t.shape.length >= 2);
}

/**
 * Whether op(A)·op(B) is cheaper as (op(B)ᵀ·op(A)ᵀ)ᵀ. Both ways copy every transposed operand
 * once and XNNPACK packs the right operand on each call (it is fresh, so its cache misses):
 * direct = [A copy if transposeA] + [B copy if transposeB] + pack k·n;
 * swapped = [B copy unless transposeB] + [A copy unless transposeA] + result copy m·n + pack m·k.
 * With a dense layer's dX = dY·Wᵀ (m = batch small, k·n the weights) the swap copies far less.
 * Only for equal batch sizes, where both orders run the same number of products.
 */
function swapOperands(a: TensorInfo, b: TensorInfo, transposeA: boolean, transposeB: boolean): boolean {
  if (!transposeA && !transposeB) return false;
  if (util.sizeFromShape(a.shape.slice(0, -2)) !== util.sizeFromShape(b.shape.slice(0, -2))) return false;
  const m = transposeA ? a.shape[a.shape.length - 1] : a.shape[a.shape.length - 2];
  const k = transposeA ? a.shape[a.shape.length - 2] : a.shape[a.shape.length - 1];
  const n = transposeB ? b.shape[b.shape.length - 2] : b.shape[b.shape.length - 1];
  const direct = (transposeA ? m * k : 0) + (transposeB ? k * n : 0) + k * n;
  const swapped = (transposeB ? 0 : k * n) + (transposeA ? 0 : m * k) + m * n + m * k;
  return swapped < direct;
}

/** `BatchMatMul` on the XNNPACK path for every transpose and batch layout. */
function batchMatMul(args: Parameters<KernelFunc>[0]): TensorInfo | TensorInfo[] {
  const k = stockKernels();
  const backend = args.backend as WasmBackendView;
  const a = need(args.inputs, 'a', 'BatchMatMul');
  const b = need(args.inputs, 'b', 'BatchMatMul');
  const { transposeA, transposeB } = args.attrs as unknown as BatchMatMulAttrs;
  checkMatMul('matMul', a, b, transposeA, transposeB);
  // Empty operands: the stock kernel (nothing to gain here).
  if (!isPlainFloat(a, b)) return k.batchMatMul(args);

  const scratch = new Scratch(backend);
  try {
    if (swapOperands(a, b, transposeA, transposeB)) {
      // op(A)·op(B) = (op(B)ᵀ·op(A)ᵀ)ᵀ, and op(B)ᵀ is B itself when transposeB (same for A).
      const bSwapped = transposeB ? b : scratch.own(transposeLast2(backend, b));
      const aSwapped = transposeA ? a : scratch.own(transposeLast2(backend, a));
      const product = scratch.own(plainMatMul(backend, k.batchMatMul, bSwapped, aSwapped));
      return transposeLast2(backend, product);
    }
    const aPlain = transposeA ? scratch.own(transposeLast2(backend, a)) : a;
    const bPlain = transposeB ? scratch.own(transposeLast2(backend, b)) : b;
    return plainMatMul(backend, k.batchMatMul, aPlain, bPlain);
  } finally {
    scratch.dispose();
  }
}

/** `_FusedMatMul` (matMul + bias + activation) on the XNNPACK path for transposed and batched operands. */
function fusedMatMul(args: Parameters<KernelFunc>[0]): TensorInfo | TensorInfo[] {
  const k = stockKernels();
  const backend = args.backend as WasmBackendView;
  const a = need(args.inputs, 'a', '_FusedMatMul');
  const b = need(args.inputs, 'b', '_FusedMatMul');
  const { bias, preluActivationWeights } = args.inputs;
  const attrs = args.attrs as unknown as _FusedMatMulAttrs;
  const outShape = checkMatMul('fused matMul', a, b, attrs.transposeA, attrs.transposeB);
  checkFusedMatMulExtras(args.inputs, attrs.activation, outShape);
  const batched = util.sizeFromShape(a.shape.slice(0, -2)) > 1 || util.sizeFromShape(b.shape.slice(0, -2)) > 1;
  if (!isPlainFloat(a, b)) return k.fusedMatMul(args);
  if (!attrs.transposeA && !attrs.transposeB && !batched) return k.fusedMatMul(args);

  const scratch = new Scratch(backend);
  try {
    const aPlain = attrs.transposeA ? scratch.own(transposeLast2(backend, a)) : a;
    const bPlain = attrs.transposeB ? scratch.own(transposeLast2(backend, b)) : b;
    const extraInputs: NamedTensorInfoMap = {};
    if (bias !== undefined) extraInputs.bias = bias;
    if (preluActivationWeights !== undefined) {
      // PReLU weights may broadcast over the whole output; slicing them per batch item is
      // not worth it for a kernel nobody here uses, so only the transposes are removed.
      return call(k.fusedMatMul, backend, { ...args.inputs, a: aPlain, b: bPlain }, { ...attrs, transposeA: false, transposeB: false });
    }
    return plainMatMul(backend, k.fusedMatMul, aPlain, bPlain, extraInputs, {
      activation: attrs.activation,
      leakyreluAlpha: attrs.leakyreluAlpha,
    });
  } finally {
    scratch.dispose();
  }
}

/** Throws for conv attributes these kernels do not implement, naming the kernel and attribute. */
function assertNhwc(kernel: string, dataFormat: string | undefined): void {
  if (dataFormat !== undefined && dataFormat !== 'NHWC') {
    throw new ConfigError(
      `${kernel} (wasm, ${WHERE}): dataFormat must be "NHWC"; got ${JSON.stringify(dataFormat)} (use --backend cpu for other layouts)`,
    );
  }
}

/**
 * The filter gradient as one forward convolution.
 *
 * dW[i, j, c, o] = sum over (b, p, q) of x[b, p*s - padTop + i, q*s - padLeft + j, c] * dy[b, p, q, o].
 * Reading x as a batch of Cin images [Cin, H, W, B] (channels = B) and dy as a filter
 * [Ho, Wo, B, Cout], this is Conv2D with stride 1 and dilation s: output [Cin, kh, kw, Cout].
 * The leading padding is the forward pass's; the trailing padding is whatever makes the output
 * exactly kh x kw, and when that is negative the rows/columns the forward pass never read are
 * sliced off instead.
 * Shapes: x: [B, H, W, Cin], dy: [B, Ho, Wo, Cout] -> [kh, kw, Cin, Cout].
 */
function conv2dBackpropFilter(args: Parameters<KernelFunc>[0]): TensorInfo | TensorInfo[] {
  const k = stockKernels();
  const backend = args.backend as WasmBackendView;
  const x = need(args.inputs, 'x', 'Conv2DBackpropFilter');
  const dy = need(args.inputs, 'dy', 'Conv2DBackpropFilter');
  const attrs = args.attrs as unknown as Conv2DBackpropFilterAttrs;
  assertNhwc('Conv2DBackpropFilter', attrs.dataFormat);
  const info = checkConv2DBackpropFilter(x, dy, attrs);
  const [, h, w, cIn] = x.shape;
  const [kh, kw, , cOut] = attrs.filterShape;
  const [, ho, wo] = dy.shape;
  const sh = info.strideHeight;
  const sw = info.strideWidth;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  // Output height of the dilated conv is H + top + bottom - (Ho - 1) * sh; it must equal kh.
  const bottom = kh + (ho - 1) * sh - h - top;
  const right = kw + (wo - 1) * sw - w - left;

  const scratch = new Scratch(backend);
  try {
    let xT = scratch.own(call(k.transpose, backend, { x }, { perm: [3, 1, 2, 0] }));
    if (bottom < 0 || right < 0) {
      const size = [cIn, h + Math.min(bottom, 0), w + Math.min(right, 0), x.shape[0]];
      xT = scratch.own(call(k.slice, backend, { x: xT }, { begin: [0, 0, 0, 0], size }));
    }
    const dyT = scratch.own(call(k.transpose, backend, { x: dy }, { perm: [1, 2, 0, 3] }));
    const grad = scratch.own(
      call(k.conv2d, backend, { x: xT, filter: dyT }, {
        strides: [1, 1],
        pad: [[0, 0], [top, Math.max(bottom, 0)], [left, Math.max(right, 0)], [0, 0]],
        dataFormat: 'NHWC',
        dilations: [sh, sw],
      }),
    );
    const expected = [cIn, kh, kw, cOut];
    if (grad.shape.some((d, i) => d !== expected[i])) {
      throw new Error(`Conv2DBackpropFilter (wasm, ${WHERE}): internal conv gave [${grad.shape}], expected [${expected}]`);
    }
    return call(k.transpose, backend, { x: grad }, { perm: [1, 2, 0, 3] });
  } finally {
    scratch.dispose();
  }
}

/**
 * The input gradient as GEMM + col2im.
 *
 * cols = dy[B*Ho*Wo, Cout] · W[kh*kw*Cin, Cout]ᵀ holds, for every output pixel, its contribution
 * to each of the kh x kw input pixels under its window; col2im adds those into dx.
 * dx[b, p*s - padTop + i, q*s - padLeft + j, :] += cols[b, p, q, i, j, :].
 * Works for any stride. The batch is processed in chunks so that cols stays under 64 MB.
 * Shapes: dy: [B, Ho, Wo, Cout], filter: [kh, kw, Cin, Cout] -> inputShape [B, H, W, Cin].
 */
function conv2dBackpropInput(args: Parameters<KernelFunc>[0]): TensorInfo | TensorInfo[] {
  const k = stockKernels();
  const backend = args.backend as WasmBackendView;
  const dy = need(args.inputs, 'dy', 'Conv2DBackpropInput');
  const filter = need(args.inputs, 'filter', 'Conv2DBackpropInput');
  const attrs = args.attrs as unknown as Conv2DBackpropInputAttrs;
  assertNhwc('Conv2DBackpropInput', attrs.dataFormat);
  const info = checkConv2DBackpropInput(dy, filter, attrs);
  const [batch, h, w, cIn] = attrs.inputShape;
  const [kh, kw, , cOut] = filter.shape;
  const [, ho, wo] = dy.shape;
  const sh = info.strideHeight;
  const sw = info.strideWidth;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const patch = kh * kw * cIn;
  const dxSize = batch * h * w * cIn;

  const out = backend.makeOutput([batch, h, w, cIn], 'float32');
  const scratch = new Scratch(backend);
  try {
    floatHeap(backend, out, dxSize).fill(0);
    if (dxSize === 0 || util.sizeFromShape(dy.shape) === 0) return out;
    const wT = scratch.own(call(k.transpose, backend, { x: withShape(filter, [patch, cOut]) }, { perm: [1, 0] }));
    const chunk = Math.max(1, Math.min(batch, Math.floor(MAX_COLS_FLOATS / (ho * wo * patch))));
    for (let b0 = 0; b0 < batch; b0 += chunk) {
      const nb = Math.min(chunk, batch - b0);
      const dyRows = scratch.view(dy, b0 * ho * wo * cOut, [1, nb * ho * wo, cOut]);
      const cols = scratch.own(plainMatMul(backend, k.batchMatMul, dyRows, withShape(wT, [1, cOut, patch])));
      // Views taken after the GEMM, which may have grown the heap.
      const src = floatHeap(backend, cols, nb * ho * wo * patch);
      const dx = floatHeap(backend, out, dxSize);
      col2im(src, dx, b0, nb, ho, wo, h, w, cIn, kh, kw, sh, sw, top, left);
      scratch.drop(cols);
      scratch.dropView(dyRows);
    }
    return out;
  } catch (err) {
    backend.disposeData(out.dataId);
    throw err;
  } finally {
    scratch.dispose();
  }
}

/** Scatter-adds patch columns into an NHWC image batch (see conv2dBackpropInput). */
function col2im(
  cols: Float32Array, dx: Float32Array, b0: number, nb: number, ho: number, wo: number,
  h: number, w: number, cIn: number, kh: number, kw: number, sh: number, sw: number, top: number, left: number,
): void {
  let src = 0;
  for (let b = 0; b < nb; b++) {
    const imageBase = (b0 + b) * h * w * cIn;
    for (let p = 0; p < ho; p++) {
      for (let q = 0; q < wo; q++) {
        for (let i = 0; i < kh; i++) {
          const r = p * sh - top + i;
          if (r < 0 || r >= h) {
            src += kw * cIn;
            continue;
          }
          for (let j = 0; j < kw; j++, src += cIn) {
            const c = q * sw - left + j;
            if (c < 0 || c >= w) continue;
            const dst = imageBase + (r * w + c) * cIn;
            for (let ch = 0; ch < cIn; ch++) dx[dst + ch] += cols[src + ch];
          }
        }
      }
    }
  }
}

/**
 * Installs the replacement kernels for the 'wasm' backend: `BatchMatMul`, `_FusedMatMul`,
 * `Conv2DBackpropFilter` (missing in 4.22), `Conv2DBackpropInput`, and the buffer-sharing
 * `Identity` and same-dtype `Cast`.
 *
 * Idempotent: the first call installs, later calls change nothing and return the same list.
 * Works before or after the wasm backend is initialised (the stock kernels' setup functions
 * are kept on the replacements, so a re-initialised backend still sets them up).
 * Returns the names of the kernels it installed, sorted.
 */
export function installWasmKernels(): string[] {
  if (installed !== null) return [...installed];
  // Registers the stock wasm kernels; loaded here so that importing this module has no side effect.
  require('@tensorflow/tfjs-backend-wasm');
  const batchMatMulStock = kernelOf('BatchMatMul');
  const fusedStock = kernelOf('_FusedMatMul');
  const inputStock = kernelOf('Conv2DBackpropInput');
  stock = {
    batchMatMul: batchMatMulStock.kernelFunc,
    fusedMatMul: fusedStock.kernelFunc,
    transpose: kernelOf('Transpose').kernelFunc,
    conv2d: kernelOf('Conv2D').kernelFunc,
    slice: kernelOf('Slice').kernelFunc,
    cast: kernelOf('Cast').kernelFunc,
    identity: kernelOf('Identity').kernelFunc,
    tile: kernelOf('Tile').kernelFunc,
  };
  const replacements: Array<[string, KernelFunc, KernelConfig | undefined]> = [
    ['BatchMatMul', batchMatMul, batchMatMulStock],
    ['Cast', castSharingSameDtype, kernelOf('Cast')],
    ['Identity', sharedIdentity, kernelOf('Identity')],
    ['Conv2DBackpropFilter', conv2dBackpropFilter, tf.getKernel('Conv2DBackpropFilter', BACKEND)],
    ['Conv2DBackpropInput', conv2dBackpropInput, inputStock],
    ['Tile', tile, kernelOf('Tile')],
    ['_FusedMatMul', fusedMatMul, fusedStock],
  ];
  for (const [kernelName, kernelFunc, previous] of replacements) {
    if (previous !== undefined) tf.unregisterKernel(kernelName, BACKEND);
    tf.registerKernel({ kernelName, backendName: BACKEND, kernelFunc, setupFunc: previous?.setupFunc });
  }
  installed = replacements.map(([name]) => name).sort();
  return [...installed];
}

/** Names installed by `installWasmKernels`, or [] before it ran. */
export function installedWasmKernels(): string[] {
  return installed === null ? [] : [...installed];
}
