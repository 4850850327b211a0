/**
 * Every kernel vaelab registers refuses misuse before it touches memory, with tfjs's own message.
 *
 * Each case reaches one kernel directly (`tf.engine().runKernel`, as a gradient function or a
 * third-party op can, without tfjs-core's op checks) with inputs that do not fit, and expects an
 * Error. Where a tfjs op refuses the same misuse, the expected message is what that op throws on
 * the cpu backend, computed in the test (an independent reference); where no tfjs op can express
 * the misuse (the op reshapes it away, or does not check it and the cpu kernel computes garbage),
 * the expected text is written out, in tfjs's form. Before these checks, a matMul of [2, 3] by
 * [2, 4] on wasm returned [2, 4] of garbage read past the right operand, and a transposed fused
 * matMul trapped with "memory access out of bounds".
 *
 * Runs on wasm with vaelab's project kernels alone, and again with the native pack (its cases
 * skipped, with the reason in the title, when the pack is not built). Each refusal must leave the
 * backend holding no more buffers than before (no output left allocated).
 */
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's CommonJS build registers no gradients; the union package registers tfjs's own ops' gradients.
import '@tensorflow/tfjs';
import { installNativeKernels, nativeStatus, uninstallNativeKernels } from '../../core/backend/native';
import { selectBackend } from '../../core/backend/select';
import { skipBecause } from '../data/helpers';

/** One misuse of one kernel. */
interface Case {
  kernel: string;
  what: string;
  /** Calls the kernel with the bad inputs (tensors made inside are freed by a tidy). */
  run: () => unknown;
  /** The exact message, or a tfjs op whose message on cpu is the expected one. */
  expected: string | { cpuOp: () => unknown };
}

const ones = (shape: number[], dtype: tf.DataType = 'float32') => tf.ones(shape, dtype);
const run = (kernel: string, inputs: Record<string, tf.Tensor>, attrs: Record<string, unknown> = {}) =>
  tf.engine().runKernel(kernel, inputs as tf.NamedTensorMap, attrs as tf.NamedAttrMap);
const conv = { strides: 1, pad: 'valid', dataFormat: 'NHWC', dilations: 1 };

/** The kernels vaelab registers on wasm without the native pack (core/backend/wasm-kernels.ts). */
const WASM_CASES: Case[] = [
  {
    kernel: 'BatchMatMul', what: 'inner dimensions that differ, [2,3] x [2,4]',
    run: () => tf.matMul(ones([2, 3]), ones([2, 4])),
    expected: { cpuOp: () => tf.matMul(ones([2, 3]), ones([2, 4])) },
  },
  {
    kernel: 'BatchMatMul', what: 'inner dimensions that differ, transposed and batched',
    run: () => tf.matMul(ones([4, 3, 2]), ones([4, 5, 6]), true, false),
    expected: { cpuOp: () => tf.matMul(ones([4, 3, 2]), ones([4, 5, 6]), true, false) },
  },
  {
    kernel: 'BatchMatMul', what: 'batch dimensions that do not broadcast',
    run: () => tf.matMul(ones([2, 3, 4]), ones([3, 4, 5])),
    expected: { cpuOp: () => tf.matMul(ones([2, 3, 4]), ones([3, 4, 5])) },
  },
  {
    kernel: 'BatchMatMul', what: 'an operand of rank 1',
    run: () => run('BatchMatMul', { a: ones([3]), b: ones([3, 4]) }, { transposeA: false, transposeB: false }),
    expected: 'Error in matMul: a and b must be of rank 2 or more, but got ranks 1 and 2.',
  },
  {
    kernel: 'BatchMatMul', what: 'int32 operands',
    run: () => run('BatchMatMul', { a: ones([2, 2], 'int32'), b: ones([2, 2], 'int32') }, { transposeA: false, transposeB: false }),
    expected: 'Error in matMul: a and b must be float32 on the wasm backend, but got int32 and int32.',
  },
  {
    kernel: '_FusedMatMul', what: 'inner dimensions that differ',
    run: () => run('_FusedMatMul', { a: ones([1, 2, 3]), b: ones([1, 2, 4]) }, { transposeA: false, transposeB: false, activation: 'linear' }),
    expected: { cpuOp: () => tf.fused.matMul({ a: ones([1, 2, 3]), b: ones([1, 2, 4]) }) },
  },
  {
    // This one trapped inside the wasm module ("memory access out of bounds") before the checks.
    kernel: '_FusedMatMul', what: 'inner dimensions that differ, transposed',
    run: () => run('_FusedMatMul', { a: ones([1, 3, 2]), b: ones([1, 2, 4]) }, { transposeA: true, transposeB: false, activation: 'linear' }),
    expected: { cpuOp: () => tf.fused.matMul({ a: ones([1, 3, 2]), b: ones([1, 2, 4]), transposeA: true }) },
  },
  {
    kernel: '_FusedMatMul', what: 'a bias that is not one value per output column',
    run: () => run('_FusedMatMul', { a: ones([1, 2, 3]), b: ones([1, 3, 4]), bias: ones([5]) }, { transposeA: false, transposeB: false, activation: 'linear' }),
    expected: 'Error in fused matMul: bias shape (5) does not match the number of output columns (4).',
  },
  {
    kernel: '_FusedMatMul', what: 'activation "prelu" without its weights',
    run: () => run('_FusedMatMul', { a: ones([1, 2, 3]), b: ones([1, 3, 4]) }, { transposeA: false, transposeB: false, activation: 'prelu' }),
    expected: 'Error in fused matMul: activation "prelu" needs preluActivationWeights.',
  },
  {
    kernel: '_FusedMatMul', what: 'operands of rank 2 (tf.fused.matMul hands over rank 3)',
    run: () => run('_FusedMatMul', { a: ones([2, 3]), b: ones([3, 4]) }, { transposeA: false, transposeB: false, activation: 'linear' }),
    expected: 'Error in fused matMul: a and b must be rank 3, but got ranks 2 and 2.',
  },
  {
    // No public op reaches this kernel with bad depths; the text is tfjs-core 4.22's
    // conv2DBackpropFilter op's (src/ops/conv2d_backprop_filter.ts), stray parentheses included.
    kernel: 'Conv2DBackpropFilter', what: 'x deeper than the filter',
    run: () => run('Conv2DBackpropFilter', { x: ones([1, 5, 5, 3]), dy: ones([1, 3, 3, 4]) }, { ...conv, filterShape: [3, 3, 2, 4] }),
    expected: 'Error in conv2dDerFilter: depth of input 3) must match input depth in filter (2.',
  },
  {
    kernel: 'Conv2DBackpropFilter', what: 'dy deeper than the filter\'s output',
    run: () => run('Conv2DBackpropFilter', { x: ones([1, 5, 5, 3]), dy: ones([1, 3, 3, 5]) }, { ...conv, filterShape: [3, 3, 3, 4] }),
    expected: 'Error in conv2dDerFilter: depth of dy (5) must match output depth for filter (4).',
  },
  {
    // 5x5 'valid' with a 3x3 filter gives 3x3 outputs; a 4x4 dy would be read past its frame.
    kernel: 'Conv2DBackpropFilter', what: 'dy of another size than the conv output',
    run: () => run('Conv2DBackpropFilter', { x: ones([1, 5, 5, 3]), dy: ones([1, 4, 4, 4]) }, { ...conv, filterShape: [3, 3, 3, 4] }),
    expected: 'Error in conv2dDerFilter: dy must have the shape of the conv2d output (1,3,3,4), but got shape 1,4,4,4.',
  },
  {
    kernel: 'Conv2DBackpropFilter', what: 'x of rank 3',
    run: () => run('Conv2DBackpropFilter', { x: ones([5, 5, 3]), dy: ones([1, 3, 3, 4]) }, { ...conv, filterShape: [3, 3, 3, 4] }),
    expected: 'Error in conv2dDerFilter: input must be rank 4, but got shape 5,5,3.',
  },
  {
    kernel: 'Conv2DBackpropInput', what: 'dy deeper than the filter\'s output',
    run: () => run('Conv2DBackpropInput', { dy: ones([1, 3, 3, 4]), filter: ones([3, 3, 2, 5]) }, { ...conv, inputShape: [1, 5, 5, 2] }),
    expected: { cpuOp: () => tf.conv2dTranspose(ones([1, 3, 3, 4]) as tf.Tensor4D, ones([3, 3, 2, 5]) as tf.Tensor4D, [1, 5, 5, 2], 1, 'valid') },
  },
  {
    kernel: 'Conv2DBackpropInput', what: 'an input shape deeper than the filter',
    run: () => run('Conv2DBackpropInput', { dy: ones([1, 3, 3, 4]), filter: ones([3, 3, 3, 4]) }, { ...conv, inputShape: [1, 5, 5, 2] }),
    expected: { cpuOp: () => tf.conv2dTranspose(ones([1, 3, 3, 4]) as tf.Tensor4D, ones([3, 3, 3, 4]) as tf.Tensor4D, [1, 5, 5, 2], 1, 'valid') },
  },
  {
    // tfjs's op does not check this, and its cpu kernel reads dy with the strides of a 3x3 frame.
    kernel: 'Conv2DBackpropInput', what: 'dy of another size than the conv output',
    run: () => run('Conv2DBackpropInput', { dy: ones([1, 4, 4, 4]), filter: ones([3, 3, 2, 4]) }, { ...conv, inputShape: [1, 5, 5, 2] }),
    expected: 'Error in conv2dDerInput: dy must have the shape of the conv2d output (1,3,3,4), but got shape 1,4,4,4.',
  },
  {
    kernel: 'Conv2DBackpropInput', what: 'dy with another batch than the input shape',
    run: () => run('Conv2DBackpropInput', { dy: ones([2, 3, 3, 4]), filter: ones([3, 3, 2, 4]) }, { ...conv, inputShape: [1, 5, 5, 2] }),
    expected: 'Error in conv2dDerInput: dy must have the shape of the conv2d output (1,3,3,4), but got shape 2,3,3,4.',
  },
  {
    kernel: 'Cast', what: 'an unknown dtype',
    run: () => run('Cast', { x: ones([2]) }, { dtype: 'float16' }),
    expected: { cpuOp: () => tf.cast(ones([2]), 'float16' as tf.DataType) },
  },
  {
    kernel: 'Cast', what: 'float32 to strings',
    run: () => run('Cast', { x: ones([2]) }, { dtype: 'string' }),
    expected: { cpuOp: () => tf.cast(ones([2]), 'string') },
  },
  {
    kernel: 'Identity', what: 'no input',
    run: () => run('Identity', {}),
    expected: 'Identity (wasm, core/backend/wasm-kernels): input "x" is missing',
  },
];

const f32 = (shape: number[]) => ones(shape);
const NATIVE = 'wasm, core/backend/native';

/** The kernels only the native pack registers (it also takes over BatchMatMul, _FusedMatMul and the conv gradients). */
const NATIVE_CASES: Case[] = [
  {
    kernel: 'Conv2D', what: 'x deeper than the filter',
    run: () => run('Conv2D', { x: f32([1, 5, 5, 3]), filter: f32([3, 3, 2, 4]) }, conv),
    expected: { cpuOp: () => tf.conv2d(f32([1, 5, 5, 3]) as tf.Tensor4D, f32([3, 3, 2, 4]) as tf.Tensor4D, 1, 'valid') },
  },
  {
    kernel: 'Conv2D', what: 'strides of 0',
    run: () => run('Conv2D', { x: f32([1, 5, 5, 3]), filter: f32([3, 3, 3, 4]) }, { ...conv, strides: 0 }),
    expected: { cpuOp: () => tf.conv2d(f32([1, 5, 5, 3]) as tf.Tensor4D, f32([3, 3, 3, 4]) as tf.Tensor4D, 0, 'valid') },
  },
  {
    kernel: 'Conv2D', what: 'strides and dilations both above 1',
    run: () => run('Conv2D', { x: f32([1, 9, 9, 3]), filter: f32([3, 3, 3, 4]) }, { ...conv, strides: 2, dilations: 2 }),
    expected: { cpuOp: () => tf.conv2d(f32([1, 9, 9, 3]) as tf.Tensor4D, f32([3, 3, 3, 4]) as tf.Tensor4D, 2, 'valid', 'NHWC', 2) },
  },
  {
    // The op reshapes a rank-3 x to a batch of one, so only a direct call can send one.
    kernel: 'Conv2D', what: 'x of rank 3',
    run: () => run('Conv2D', { x: f32([5, 5, 3]), filter: f32([3, 3, 3, 4]) }, conv),
    expected: 'Error in conv2d: input must be rank 4, but got rank 3.',
  },
  {
    kernel: 'FusedConv2D', what: 'x deeper than the filter',
    run: () => run('FusedConv2D', { x: f32([1, 5, 5, 3]), filter: f32([3, 3, 2, 4]) }, { ...conv, activation: 'linear' }),
    expected: { cpuOp: () => tf.fused.conv2d({ x: f32([1, 5, 5, 3]) as tf.Tensor4D, filter: f32([3, 3, 2, 4]) as tf.Tensor4D, strides: 1, pad: 'valid' }) },
  },
  {
    kernel: 'FusedConv2D', what: 'a bias that is not one value per output channel',
    run: () => run('FusedConv2D', { x: f32([1, 5, 5, 3]), filter: f32([3, 3, 3, 4]), bias: f32([5]) }, { ...conv, activation: 'linear' }),
    expected: 'Error in fused conv2d: bias shape (5) is not compatible with the number of output channels (4)',
  },
  {
    kernel: 'Add', what: 'shapes that do not broadcast',
    run: () => tf.add(f32([2, 3]), f32([4])),
    expected: { cpuOp: () => tf.add(f32([2, 3]), f32([4])) },
  },
  {
    kernel: 'Add', what: 'operands of two dtypes',
    run: () => run('Add', { a: f32([2, 3]), b: ones([3], 'int32') }),
    expected: 'Error in add: a and b must have the same dtype, but got float32 and int32.',
  },
  {
    kernel: 'Relu', what: 'a bool tensor (the op casts bools to int32 first)',
    run: () => run('Relu', { x: ones([3], 'bool') }),
    expected: 'Error in relu: x must be float32 or int32, but got bool.',
  },
  {
    kernel: 'Sum', what: 'an axis out of range',
    run: () => tf.sum(f32([2, 3]), 5),
    expected: { cpuOp: () => tf.sum(f32([2, 3]), 5) },
  },
  {
    kernel: 'Sum', what: 'strings',
    run: () => run('Sum', { x: tf.tensor(['a', 'b']) }, { axis: 0, keepDims: false }),
    expected: 'Error in sum: x must be float32 or int32, but got string.',
  },
  // vaelab's fused kernels (core/fused.ts) have no tfjs op; their messages name the kernel, what
  // was expected and what was received.
  {
    kernel: 'VaelabBernoulliLogProb', what: 'x and logits of two shapes',
    run: () => run('VaelabBernoulliLogProb', { x: f32([2, 3]), logits: f32([3, 2]) }),
    expected: `VaelabBernoulliLogProb (${NATIVE}): inputs "x", "logits" must have one shape; got [2,3], [3,2]`,
  },
  {
    kernel: 'VaelabBernoulliLogProbGrad', what: 'a dy of 3 values for 2 rows',
    run: () => run('VaelabBernoulliLogProbGrad', { dy: f32([3]), x: f32([2, 3]), logits: f32([2, 3]) }),
    expected: `VaelabBernoulliLogProbGrad (${NATIVE}): input "dy" must hold 2 float32 values; got float32 [3]`,
  },
  {
    kernel: 'VaelabKlStdNormal', what: 'an int32 logVar',
    run: () => run('VaelabKlStdNormal', { loc: f32([2, 3]), logVar: ones([2, 3], 'int32') }),
    expected: `VaelabKlStdNormal (${NATIVE}): input "logVar" must be a float32 matrix; got int32 [2,3]`,
  },
  {
    kernel: 'VaelabKlStdNormalGrad', what: 'a dy of 1 value for 2 rows',
    run: () => run('VaelabKlStdNormalGrad', { dy: f32([1]), loc: f32([2, 3]), logVar: f32([2, 3]) }),
    expected: `VaelabKlStdNormalGrad (${NATIVE}): input "dy" must hold 2 float32 values; got float32 [1]`,
  },
  {
    kernel: 'VaelabReparam', what: 'eps of another shape',
    run: () => run('VaelabReparam', { loc: f32([2, 3]), logVar: f32([2, 3]), eps: f32([3, 2]) }),
    expected: `VaelabReparam (${NATIVE}): inputs "loc", "logVar", "eps" must have one shape; got [2,3], [2,3], [3,2]`,
  },
  {
    kernel: 'VaelabReparamGrad', what: 'a dz of rank 3',
    run: () => run('VaelabReparamGrad', { dz: f32([1, 2, 3]), logVar: f32([2, 3]), eps: f32([2, 3]) }),
    expected: `VaelabReparamGrad (${NATIVE}): input "dz" must be a float32 matrix; got float32 [1,2,3]`,
  },
  {
    kernel: 'VaelabReparamLogProb', what: 'logVar and eps of two shapes',
    run: () => run('VaelabReparamLogProb', { logVar: f32([2, 3]), eps: f32([2, 4]) }),
    expected: `VaelabReparamLogProb (${NATIVE}): inputs "logVar", "eps" must have one shape; got [2,3], [2,4]`,
  },
  {
    kernel: 'VaelabBiasRelu', what: 'a bias of 4 for 3 channels',
    run: () => run('VaelabBiasRelu', { x: f32([2, 3]), bias: f32([4]) }),
    expected: `VaelabBiasRelu (${NATIVE}): inputs must be float32 x [..., C] and bias [C]; got x float32 [2,3], bias float32 [4]`,
  },
  {
    kernel: 'VaelabBiasReluGrad', what: 'dy and y of two sizes',
    run: () => run('VaelabBiasReluGrad', { dy: f32([2, 4]), y: f32([2, 3]) }),
    expected: `VaelabBiasReluGrad (${NATIVE}): inputs "dy" and "y" must be float32 tensors of one size; got dy float32 [2,4], y float32 [2,3]`,
  },
  {
    kernel: 'VaelabReluGrad', what: 'dy and x of two sizes',
    run: () => run('VaelabReluGrad', { dy: f32([5]), x: f32([6]) }),
    expected: `VaelabReluGrad (${NATIVE}): inputs "dy" and "x" must be float32 tensors of one size; got dy float32 [5], x float32 [6]`,
  },
  {
    kernel: 'VaelabDense', what: 'a kernel of 5 rows for x of 3 columns',
    run: () => run('VaelabDense', { x: f32([4, 3]), kernel: f32([5, 2]), bias: f32([2]) }, { activation: 'relu' }),
    expected: `VaelabDense (${NATIVE}): shapes must be x [N, K], kernel [K, C], bias [C]; got x [4,3], kernel [5,2], bias [2]`,
  },
  {
    kernel: 'VaelabDenseGrad', what: 'x with another number of rows than y',
    run: () => run('VaelabDenseGrad', { dy: f32([4, 2]), y: f32([4, 2]), x: f32([3, 3]) }, { activation: 'linear' }),
    expected: `VaelabDenseGrad (${NATIVE}): x must have the 4 rows of y; got [3,3]`,
  },
];

/** The message `fn` throws; fails when it returns. */
function messageOf(fn: () => unknown): string {
  try {
    tf.tidy(() => {
      fn();
    });
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected an error, but the call returned');
}

/** Buffers the current backend holds (outputs a kernel allocated and did not hand back count too). */
const buffers = () => tf.engine().backend.numDataIds();

describe('core/backend kernel input checks: each kernel refuses misuse with tfjs\'s message', () => {
  const status = nativeStatus();
  /** The messages of the cpuOp references, by case. */
  const reference = new Map<Case, string>();

  before(async () => {
    await selectBackend('cpu', { quiet: true });
    for (const c of [...WASM_CASES, ...NATIVE_CASES]) {
      if (typeof c.expected !== 'string') reference.set(c, messageOf(c.expected.cpuOp));
    }
  });

  after(async () => {
    await tf.setBackend('cpu');
  });

  function refuses(c: Case): void {
    const expected = typeof c.expected === 'string' ? c.expected : reference.get(c)!;
    const before = buffers();
    expect(() => tf.tidy(() => {
      c.run();
    })).to.throw(Error, expected);
    // to.throw(Error, text) matches a substring; the message must be exactly tfjs's.
    expect(messageOf(c.run)).to.equal(expected);
    expect(buffers(), 'buffers left on the backend').to.equal(before);
  }

  it('Should take the expected messages of tfjs ops from the cpu backend (the references)', () => {
    // Spot checks that the references are tfjs's words: its inner-shape and conv-depth messages.
    const inner = [...reference.entries()].find(([c]) => c.what === 'inner dimensions that differ, [2,3] x [2,4]')![1];
    expect(inner).to.equal('Error in matMul: inner shapes (3) and (2) of Tensors with shapes 2,3 and 2,4 and transposeA=false and transposeB=false must match.');
    const depth = [...reference.entries()].find(([c]) => c.kernel === 'Conv2D' && c.what === 'x deeper than the filter')![1];
    expect(depth).to.equal('Error in conv2d: depth of input (3) must match input depth for filter 2.');
  });

  describe('on wasm with the project kernels', () => {
    before(async () => {
      await selectBackend('wasm', { quiet: true });
      uninstallNativeKernels();
    });

    after(() => {
      installNativeKernels();
    });

    for (const c of WASM_CASES) {
      it(`${c.kernel}: Should refuse ${c.what}`, () => {
        refuses(c);
      });
    }
  });

  describe('on wasm with the native pack', () => {
    before(async function () {
      if (!status.available) return;
      await selectBackend('wasm', { quiet: true });
      installNativeKernels();
    });

    for (const c of [...WASM_CASES, ...NATIVE_CASES]) {
      it(`${c.kernel}: Should refuse ${c.what}`, function () {
        if (!status.available) skipBecause(this, `native pack unavailable: ${status.reason}`);
        refuses(c);
      });
    }
  });
});
