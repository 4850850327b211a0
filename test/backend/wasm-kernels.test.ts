/**
 * The wasm replacement kernels against tfjs's cpu backend: every case runs the same op on
 * seeded inputs on 'cpu' (reference) and on 'wasm' (with core/backend/wasm-kernels installed)
 * and compares. Tolerance: max |wasm - cpu| <= 1e-4 * max(1, max |cpu|); both are float32 sums
 * over at most a few thousand terms, which agree to ~1e-6 relative, so 1e-4 has a wide margin.
 */
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's CommonJS build registers no gradients; the union package registers tfjs's own.
import '@tensorflow/tfjs';
import { selectBackend } from '../../core/backend/select';
import { installWasmKernels } from '../../core/backend/wasm-kernels';
import { ConfigError } from '../../core/errors';
import { Data, conv2dGrads, expectClose, expectWasmMatchesCpu, on, type Pad, type Shape4 } from '../kits/backends';

describe('core/backend/wasm-kernels: wasm matMul and conv-gradient kernels', () => {
  before(async () => {
    await selectBackend('wasm', { quiet: true });
  });

  after(async () => {
    await tf.setBackend('cpu');
  });

  it('Should install its seven kernels once and return the same names on every call', () => {
    const names = ['BatchMatMul', 'Cast', 'Conv2DBackpropFilter', 'Conv2DBackpropInput', 'Identity', 'Tile', '_FusedMatMul'];
    expect(installWasmKernels()).to.deep.equal(names);
    expect(installWasmKernels()).to.deep.equal(names);
    for (const name of names) expect(tf.getKernel(name, 'wasm'), name).to.not.equal(undefined);
  });

  describe('Identity and Cast', () => {
    it('Should share the buffer on clone, keep the values after the original is disposed, and free it with the last reference', () => {
      const before = tf.memory();
      const x = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]);
      const y = tf.clone(x);
      const z = tf.cast(y, 'float32');
      expect(y.dataId).to.equal(x.dataId);
      expect(z.dataId).to.equal(x.dataId);
      x.dispose();
      y.dispose();
      expect(Array.from(z.dataSync())).to.deep.equal([1, 2, 3, 4, 5, 6]);
      expect(tf.memory().numDataBuffers).to.equal(before.numDataBuffers + 1);
      z.dispose();
      expect(tf.memory().numTensors).to.equal(before.numTensors);
      expect(tf.memory().numDataBuffers).to.equal(before.numDataBuffers);
    });

    it('Should still convert when Cast changes the dtype, into a buffer of its own', () => {
      const x = tf.tensor1d([1.7, -2.2, 0, 0.25, NaN], 'float32');
      const i = tf.cast(x, 'int32');
      const b = tf.cast(x, 'bool');
      const ib = tf.cast(tf.tensor1d([3, -256, 0], 'int32'), 'bool');
      const f = tf.cast(tf.tensor1d([1, 0, 1], 'bool'), 'float32');
      expect(i.dataId).to.not.equal(x.dataId);
      expect([i.dtype, Array.from(i.dataSync())]).to.deep.equal(['int32', [1, -2, 0, 0, 0]]);
      // Any non-zero value is true (the stock wasm kernel truncated -2.2 to the byte 254).
      expect([b.dtype, Array.from(b.dataSync())]).to.deep.equal(['bool', [1, 1, 0, 1, 1]]);
      expect([ib.dtype, Array.from(ib.dataSync())]).to.deep.equal(['bool', [1, 1, 0]]);
      expect([f.dtype, Array.from(f.dataSync())]).to.deep.equal(['float32', [1, 0, 1]]);
      tf.dispose([x, i, b, ib, f]);
    });

    it('Should give the same gradients as cpu through ops that save their inputs (clone + cast in the tape)', async () => {
      const x = new Data(11, [5, 7]);
      await expectWasmMatchesCpu(() => tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.exp(t), tf.sigmoid(t))))(x.t()), 'grad through saved tensors');
    });
  });

  describe('Tile', () => {
    // A tile copies values: wasm must equal cpu exactly, element for element.
    const cases: Array<[string, number[], number[], 'float32' | 'int32' | 'bool']> = [
      ['sample-major [3, 4] x [5, 1] (tileSamples)', [3, 4], [5, 1], 'float32'],
      ['last axis [2, 3] x [1, 4]', [2, 3], [1, 4], 'float32'],
      ['every axis [2, 3, 2] x [3, 2, 2]', [2, 3, 2], [3, 2, 2], 'int32'],
      ['middle axis [2, 1, 3] x [1, 4, 1]', [2, 1, 3], [1, 4, 1], 'float32'],
      ['rank 1 [5] x [7], bool', [5], [7], 'bool'],
      ['a zero rep [2, 3] x [0, 2]', [2, 3], [0, 2], 'float32'],
      ['reps of 1 only [4, 2] x [1, 1]', [4, 2], [1, 1], 'float32'],
    ];
    for (const [title, shape, reps, dtype] of cases) {
      it(`Should equal cpu exactly for ${title}`, async () => {
        const n = shape.reduce((p, d) => p * d, 1);
        const values = Array.from({ length: n }, (_, i) => (dtype === 'bool' ? i % 3 === 0 : dtype === 'int32' ? i - 7 : i * 0.5 - 1.25));
        const run = () => tf.tile(tf.tensor(values as number[], shape, dtype), reps);
        const plain = (r: Array<{ shape: number[]; values: ArrayLike<number> }>) => r.map((t) => ({ shape: t.shape, values: Array.from(t.values) }));
        const cpu = plain(await on('cpu', run));
        expect(plain(await on('wasm', run))).to.deep.equal(cpu);
        expect(cpu[0].shape).to.deep.equal(shape.map((d, i) => d * reps[i]));
      });
    }

    it('Should refuse reps that do not match the rank of x, naming the kernel', () => {
      const x = tf.tensor2d([1, 2, 3, 4], [2, 2]);
      expect(() => tf.engine().runKernel('Tile', { x }, { reps: [2] })).to.throw('Error in tile: reps must be 2 non-negative integers, one per axis of x [2,2]; got [2]');
      x.dispose();
    });
  });

  describe('matMul', () => {
    // [m, k, n]: odd sizes; 16x96x80 makes transposeB cheaper as (B·Aᵀ)ᵀ, so both orders run.
    for (const [m, k, n] of [[33, 47, 29], [16, 96, 80]]) {
      for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]]) {
        it(`Should match cpu for ${m}x${k}x${n} with transposeA=${ta}, transposeB=${tb}`, async () => {
          const a = new Data(1, ta ? [k, m] : [m, k]);
          const b = new Data(2, tb ? [n, k] : [k, n]);
          await expectWasmMatchesCpu(() => tf.matMul(a.t(), b.t(), ta, tb), 'matMul');
        });
      }
    }

    for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]]) {
      it(`Should match cpu for a batch of 3 with transposeA=${ta}, transposeB=${tb}`, async () => {
        const a = new Data(3, ta ? [3, 47, 33] : [3, 33, 47]);
        const b = new Data(4, tb ? [3, 29, 47] : [3, 47, 29]);
        await expectWasmMatchesCpu(() => tf.matMul(a.t(), b.t(), ta, tb), 'batched matMul');
      });
    }

    it('Should match cpu when a 2-D right operand is broadcast over a batch of 3', async () => {
      const a = new Data(5, [3, 33, 47]);
      const b = new Data(6, [47, 29]);
      await expectWasmMatchesCpu(() => tf.matMul(a.t(), b.t()), 'broadcast B');
    });

    it('Should match cpu when a batch-1 left operand is broadcast against a batch of 3, transposed', async () => {
      const a = new Data(7, [1, 47, 33]);
      const b = new Data(8, [3, 29, 47]);
      await expectWasmMatchesCpu(() => tf.matMul(a.t(), b.t(), true, true), 'broadcast A');
    });

    it('Should broadcast 4-D batch dims [2, 1] x [1, 3] item by item', async () => {
      // Reference computed by hand: out[i, j] = a[i, 0] · b[0, j]. (tfjs's cpu kernel flattens
      // the batch dims and does not broadcast them this way, so it cannot be the reference.)
      const a = new Data(9, [2, 1, 5, 7]);
      const b = new Data(10, [1, 3, 7, 4]);
      const expected = new Float32Array(2 * 3 * 5 * 4);
      for (let i = 0; i < 2; i++) {
        for (let j = 0; j < 3; j++) {
          for (let r = 0; r < 5; r++) {
            for (let c = 0; c < 4; c++) {
              let s = 0;
              for (let q = 0; q < 7; q++) s += a.values[(i * 5 + r) * 7 + q] * b.values[(j * 7 + q) * 4 + c];
              expected[((i * 3 + j) * 5 + r) * 4 + c] = s;
            }
          }
        }
      }
      const [actual] = await on('wasm', () => tf.matMul(a.t(), b.t()));
      expectClose(actual, { shape: [2, 3, 5, 4], values: expected }, '4-D broadcast');
    });

    it('Should match cpu for fused matMul with transposeB, bias and relu', async () => {
      const a = new Data(11, [33, 47]);
      const b = new Data(12, [29, 47]);
      const bias = new Data(13, [29]);
      await expectWasmMatchesCpu(
        () => tf.fused.matMul({ a: a.t(), b: b.t(), transposeB: true, bias: bias.t(), activation: 'relu' }),
        'fused matMul',
      );
    });

    it('Should match cpu for batched fused matMul with transposeA, bias and sigmoid', async () => {
      const a = new Data(14, [3, 47, 33]);
      const b = new Data(15, [3, 47, 29]);
      const bias = new Data(16, [29]);
      await expectWasmMatchesCpu(
        () => tf.fused.matMul({ a: a.t(), b: b.t(), transposeA: true, bias: bias.t(), activation: 'sigmoid' }),
        'batched fused matMul',
      );
    });
  });

  describe('conv2d gradients', () => {
    // [batch, h, w, cIn, cOut, kh, kw, strides, pad]: even and odd sizes, strides 1 and 2.
    // 6x6 k3 s2 'valid' leaves the last row and column unread (negative trailing padding);
    // the explicit case has a non-square kernel, unequal strides and asymmetric padding.
    const cases: Array<[number, number, number, number, number, number, number, number | [number, number], Pad]> = [
      [4, 28, 28, 1, 8, 4, 4, 2, 'same'],
      [4, 28, 28, 1, 8, 4, 4, 2, 'valid'],
      [3, 14, 14, 4, 8, 4, 4, 2, 'same'],
      [2, 7, 7, 3, 5, 3, 3, 1, 'same'],
      [2, 7, 7, 3, 5, 3, 3, 1, 'valid'],
      [2, 5, 5, 2, 3, 3, 3, 2, 'valid'],
      [2, 5, 5, 2, 3, 3, 3, 2, 'same'],
      [2, 6, 6, 2, 3, 3, 3, 2, 'valid'],
      [2, 9, 7, 2, 3, 3, 2, [2, 1], [[0, 0], [1, 2], [0, 1], [0, 0]]],
    ];
    for (const [batch, h, w, cIn, cOut, kh, kw, strides, pad] of cases) {
      const title = `${h}x${w}x${cIn} -> ${cOut}, kernel ${kh}x${kw}, strides ${strides}, pad ${JSON.stringify(pad)}`;
      it(`Should match cpu for dx and dw of ${title}`, async () => {
        const x = new Data(20, [batch, h, w, cIn]);
        const wt = new Data(21, [kh, kw, cIn, cOut]);
        const yShape = tf.tidy(() => tf.conv2d(x.t4(), wt.t4(), strides, pad).shape);
        const r = new Data(22, yShape);
        await expectWasmMatchesCpu(conv2dGrads(x, wt, r, strides, pad), title);
      });
    }

    it('Should reject dataFormat NCHW naming the kernel, the attribute and the value', () => {
      const x = tf.zeros([1, 1, 4, 4]);
      const dy = tf.zeros([1, 1, 2, 2]);
      const run = () =>
        tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, {
          strides: 2, pad: 'valid', dataFormat: 'NCHW', filterShape: [2, 2, 1, 1],
        } as unknown as tf.NamedAttrMap);
      expect(run).to.throw(
        ConfigError,
        'Conv2DBackpropFilter (wasm, core/backend/wasm-kernels): dataFormat must be "NHWC"; got "NCHW" (use --backend cpu for other layouts)',
      );
      tf.dispose([x, dy]);
    });
  });

  describe('conv2dTranspose', () => {
    // The conv VAE decoder's first layer: 7x7x64 -> 14x14x32, kernel 4, stride 2, 'same'.
    const z = new Data(30, [2, 7, 7, 64]);
    const w = new Data(31, [4, 4, 32, 64]);
    const r = new Data(32, [2, 14, 14, 32]);
    const outShape: Shape4 = [2, 14, 14, 32];

    it('Should match cpu for the forward pass 7x7x64 -> 14x14x32', async () => {
      await expectWasmMatchesCpu(() => tf.conv2dTranspose(z.t4(), w.t4(), outShape, 2, 'same'), 'conv2dTranspose');
    });

    it('Should match cpu for its gradients with respect to input and filter', async () => {
      const f = (zt: tf.Tensor, wt: tf.Tensor) =>
        tf.sum(tf.mul(tf.conv2dTranspose(zt as tf.Tensor4D, wt as tf.Tensor4D, outShape, 2, 'same'), r.t()));
      await expectWasmMatchesCpu(() => tf.grads(f)([z.t(), w.t()]), 'conv2dTranspose gradients');
    });

    it('Should match cpu for a "valid" transpose with stride 1 and an odd kernel', async () => {
      const zs = new Data(33, [2, 5, 5, 6]);
      const ws = new Data(34, [3, 3, 4, 6]);
      await expectWasmMatchesCpu(() => tf.conv2dTranspose(zs.t4(), ws.t4(), [2, 7, 7, 4], 1, 'valid'), 'conv2dTranspose valid');
    });
  });

  it('Should leave tf.memory() tensor and buffer counts unchanged across repeated calls', async () => {
    await tf.setBackend('wasm');
    const a = new Data(40, [3, 33, 47]).t();
    const b = new Data(41, [47, 29]).t();
    const bT = new Data(42, [3, 29, 47]).t();
    const bias = new Data(43, [29]).t();
    const x = new Data(44, [2, 6, 6, 2]).t4();
    const w = new Data(45, [3, 3, 2, 3]).t4();
    const z = new Data(46, [2, 7, 7, 8]).t4();
    const wT = new Data(47, [4, 4, 4, 8]).t4();
    const step = () => {
      tf.tidy(() => {
        tf.matMul(a, b);
        tf.matMul(a, bT, false, true);
        tf.matMul(tf.reshape(a, [99, 47]), tf.reshape(b, [47, 29]), false, false);
        tf.fused.matMul({ a, b: bT, transposeB: true, bias, activation: 'relu' });
        tf.grads((xt: tf.Tensor, wt: tf.Tensor) => tf.sum(tf.conv2d(xt as tf.Tensor4D, wt as tf.Tensor4D, 2, 'valid')))([x, w]);
        tf.conv2dTranspose(z, wT, [2, 14, 14, 4], 2, 'same');
      });
    };
    step();
    const before = tf.memory() as tf.MemoryInfo & { numDataBuffers: number };
    for (let i = 0; i < 3; i++) step();
    const after = tf.memory() as tf.MemoryInfo & { numDataBuffers: number };
    expect(after.numTensors).to.equal(before.numTensors);
    // Data buffers would also count kernel-internal intermediates and heap views left behind.
    expect(after.numDataBuffers).to.equal(before.numDataBuffers);
    tf.dispose([a, b, bT, bias, x, w, z, wT]);
  });
});
