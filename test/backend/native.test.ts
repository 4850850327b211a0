/**
 * The native OpenBLAS kernel pack (core/backend/native.ts) against tfjs's cpu backend: every case
 * runs the same op on seeded inputs on 'cpu' (reference) and on 'wasm' with the native kernels
 * installed, and compares. Skipped, with the reason in each title, when the addon is not built
 * (or VAELAB_NATIVE=0).
 * Tolerance: max |native - cpu| <= 1e-4 * max(1, max |cpu|); both are float32 sums over at most
 * a few thousand terms, which agree to ~1e-6 relative, so 1e-4 has a wide margin.
 */
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's CommonJS build registers no gradients; the union package registers tfjs's own.
import '@tensorflow/tfjs';
// vaelab's gradients (fused kernels, Sum/Mean, Relu), as core/model.ts registers them for training.
import '../../core/gradients';
import {
  NATIVE_FUNCTIONS, NATIVE_HINT, installNativeKernels, installedNativeKernels, nativeAddon, nativeAdamStep, nativeAdamStepSquares, nativeStatus, nativeSumSquares, type NativeAdamHyper,
} from '../../core/backend/native';
import { fusedBatchNorm } from '../../core/fused';
import { bernoulliLogProb, klStdNormal, reparamLogProb, reparameterize } from '../../core/math';
import { Dense, addBiasActivate } from '../../core/nn';
import { Rng } from '../../core/rng';
import { selectBackend } from '../../core/backend/select';
import { Adam } from '../../core/train/adam';
import * as path from 'node:path';
import { skipBecause } from '../data/helpers';
import { nativeFacts } from '../kits/native-facts';
import { Data, conv2dGrads, expectClose, expectWasmMatchesCpu, on, type Pad, type Shape4 } from '../kits/backends';

/** Same op on cpu (reference) and on wasm + native kernels, compared output by output. */
const expectNativeMatchesCpu = expectWasmMatchesCpu;

/**
 * Adam by its formula in float32, one rounding per tfjs op in the order core/train/adam.ts
 * applies them (Math.fround after each), on plain arrays: the reference for nativeAdamStep.
 */
function adamReference(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, h: NativeAdamHyper): void {
  const f = Math.fround;
  const [b1, c1, b2, c2] = [f(h.beta1), f(1 - h.beta1), f(h.beta2), f(1 - h.beta2)];
  const [ss, bc, eps, wd] = [f(h.stepSize), f(h.sqrtBc2), f(h.epsilon), f(h.weightDecay)];
  for (let i = 0; i < p.length; i++) {
    const gi = h.weightDecay > 0 ? f(g[i] + f(p[i] * wd)) : g[i];
    m[i] = f(f(m[i] * b1) + f(gi * c1));
    v[i] = f(f(v[i] * b2) + f(f(gi * gi) * c2));
    p[i] = f(p[i] - f(f(m[i] / f(f(Math.sqrt(v[i]) / bc) + eps)) * ss));
  }
}

/** The hyper-parameters of step t (counting from 1), as core/train/adam.ts computes them. */
function hyperAt(t: number, lr: number, weightDecay = 0): NativeAdamHyper {
  const beta1 = 0.9;
  const beta2 = 0.999;
  return { stepSize: lr / (1 - beta1 ** t), beta1, beta2, epsilon: 1e-8, sqrtBc2: Math.sqrt(1 - beta2 ** t), weightDecay };
}

describe('core/backend/native: native OpenBLAS kernels against cpu', () => {
  const status = nativeStatus();
  const names = [
    'Add', 'BatchMatMul', 'Conv2D', 'Conv2DBackpropFilter', 'Conv2DBackpropInput', 'FusedConv2D', 'LeakyRelu', 'Relu', 'Sum', 'VaelabBatchNorm', 'VaelabBatchNormGrad',
    'VaelabBernoulliLogProb', 'VaelabBernoulliLogProbGrad', 'VaelabBiasRelu', 'VaelabBiasReluGrad', 'VaelabDense', 'VaelabDenseGrad', 'VaelabKlStdNormal', 'VaelabKlStdNormalGrad',
    'VaelabLeakyReluGrad', 'VaelabReluGrad', 'VaelabReparam', 'VaelabReparamGrad', 'VaelabReparamLogProb', '_FusedMatMul',
  ];

  const facts = nativeFacts();

  /**
   * Skips the running test when the pack is not available, with the reason in its title; only
   * when it is not built or disabled by VAELAB_NATIVE=0 (test/kits/native-facts.ts): a built pack
   * that fails to load fails the test instead of skipping it.
   */
  function needNative(ctx: Mocha.Context): void {
    if (status.available) return;
    if (facts.expectAvailable) expect.fail(`the native pack is built (${facts.addonFile}) and not disabled, but unavailable: ${status.reason}`);
    skipBecause(ctx, `native pack unavailable: ${status.reason}`);
  }

  before(async () => {
    if (!status.available) return;
    await selectBackend('wasm', { quiet: true });
    installNativeKernels();
  });

  after(async () => {
    await tf.setBackend('cpu');
  });

  it('Should be available exactly when the addon file is built and VAELAB_NATIVE is not 0, and say why not otherwise', () => {
    expect(status.available, status.reason).to.equal(facts.expectAvailable);
    if (facts.disabled) expect(status.reason).to.equal('disabled by VAELAB_NATIVE=0');
    else if (!facts.built) expect(status.reason).to.equal(`not built (no ${path.relative(process.cwd(), facts.addonFile)}); ${NATIVE_HINT}`);
  });

  it('Should install its kernels once and report the OpenBLAS build, core and thread count', function () {
    needNative(this);
    expect(installNativeKernels()).to.deep.equal(names);
    expect(installNativeKernels()).to.deep.equal(names);
    expect(installedNativeKernels()).to.deep.equal(names);
    const blas = /^OpenBLAS \d+\.\d+\.\d+ (\S+)$/.exec(status.blas ?? '');
    expect(blas, status.blas).to.not.equal(null);
    // the core native.ts forces (or OPENBLAS_CORETYPE names), unless OpenBLAS detects it itself
    if (facts.core !== null) expect(blas![1].toLowerCase()).to.equal(facts.core.toLowerCase());
    // VAELAB_THREADS, default 1 (one process per core).
    expect(status.threads).to.equal(facts.threads);
    expect(nativeAddon()!.getThreads()).to.equal(status.threads);
  });

  it('Should reject arrays too short for the sizes, naming the function and the argument', function () {
    needNative(this);
    const addon = nativeAddon()!;
    // C must hold M*N = 4 floats (M = N = K = 2, ldc = 2); 3 are given.
    expect(() => addon.sgemm(false, false, 2, 2, 2, 1, new Float32Array(4), 2, new Float32Array(4), 2, 0, new Float32Array(3), 2)).to.throw(
      RangeError,
      'vaelab_native.sgemm: C must hold at least 4 floats for the given sizes; got 3',
    );
    expect(() => addon.adamUpdate(new Float32Array(2), new Float32Array(3), new Float32Array(2), new Float32Array(2), 1, 0.9, 0.999, 1e-8, 1, 0)).to.throw(
      RangeError,
      'vaelab_native.adamUpdate: g must hold exactly 2 floats for the given shapes; got 3',
    );
    // The element loop assumes four separate arrays (it is vectorised on that promise).
    const heap = new Float32Array(8);
    expect(() => addon.adamUpdate(heap.subarray(0, 4), heap.subarray(2, 6), new Float32Array(4), new Float32Array(4), 1, 0.9, 0.999, 1e-8, 1, 0)).to.throw(
      RangeError,
      'vaelab_native.adamUpdate: p, g, m and v must not share memory',
    );
  });

  describe('matMul', () => {
    // [m, k, n]: odd sizes, a dense layer's shape scaled down (batch x input x hidden), and thin
    // products that take the addon's own loops instead of BLAS (two small dims <= 64, the large
    // one >= 256): widths 32, 16 and 48 (vector loops) and 20 (plain loop).
    for (const [m, k, n] of [[33, 47, 29], [16, 96, 80], [128, 78, 40], [300, 16, 32], [260, 20, 16], [16, 300, 48], [20, 270, 20]]) {
      for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]]) {
        it(`Should match cpu for ${m}x${k}x${n} with transposeA=${ta}, transposeB=${tb}`, async function () {
          needNative(this);
          const a = new Data(1, ta ? [k, m] : [m, k]);
          const b = new Data(2, tb ? [n, k] : [k, n]);
          await expectNativeMatchesCpu(() => tf.matMul(a.t(), b.t(), ta, tb), 'matMul');
        });
      }
    }

    for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]]) {
      it(`Should match cpu for a batch of 3 with transposeA=${ta}, transposeB=${tb}`, async function () {
        needNative(this);
        const a = new Data(3, ta ? [3, 47, 33] : [3, 33, 47]);
        const b = new Data(4, tb ? [3, 29, 47] : [3, 47, 29]);
        await expectNativeMatchesCpu(() => tf.matMul(a.t(), b.t(), ta, tb), 'batched matMul');
      });
    }

    it('Should match cpu when a 2-D right operand is broadcast over a batch of 3, with and without transposeA', async function () {
      needNative(this);
      const a = new Data(5, [3, 33, 47]);
      const aT = new Data(5, [3, 47, 33]);
      const b = new Data(6, [47, 29]);
      await expectNativeMatchesCpu(() => [tf.matMul(a.t(), b.t()), tf.matMul(aT.t(), b.t(), true, false)], 'broadcast B');
    });

    it('Should match cpu when a batch-1 left operand is broadcast against a batch of 3, transposed', async function () {
      needNative(this);
      const a = new Data(7, [1, 47, 33]);
      const b = new Data(8, [3, 29, 47]);
      await expectNativeMatchesCpu(() => tf.matMul(a.t(), b.t(), true, true), 'broadcast A');
    });

    it('Should broadcast 4-D batch dims [2, 1] x [1, 3] item by item', async function () {
      needNative(this);
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

    for (const activation of ['relu', 'leakyrelu', 'elu', 'sigmoid', 'relu6', 'linear'] as const) {
      it(`Should match cpu for fused matMul with transposeB, bias and ${activation}`, async function () {
        needNative(this);
        const a = new Data(11, [33, 47]);
        const b = new Data(12, [29, 47]);
        const bias = new Data(13, [29]);
        await expectNativeMatchesCpu(
          () => tf.fused.matMul({ a: a.t(), b: b.t(), transposeB: true, bias: bias.t(), activation, leakyreluAlpha: 0.1 }),
          `fused matMul ${activation}`,
        );
      });
    }

    it('Should match cpu for batched fused matMul with transposeA and no bias, and fall back for prelu', async function () {
      needNative(this);
      const a = new Data(14, [3, 47, 33]);
      const b = new Data(15, [3, 47, 29]);
      const alpha = new Data(16, [29]);
      await expectNativeMatchesCpu(
        () => [
          tf.fused.matMul({ a: a.t(), b: b.t(), transposeA: true, activation: 'relu' }),
          tf.fused.matMul({ a: a.t(), b: b.t(), transposeA: true, activation: 'prelu', preluActivationWeights: alpha.t() }),
        ],
        'batched fused matMul',
      );
    });
  });

  describe('conv2d', () => {
    // [batch, h, w, cIn, cOut, kh, kw, strides, pad]: the conv VAE's layers (28x28x1 -> 32 and
    // 14x14x32 -> 64, k4 s2 'same'), strides 1 and 2, 'same' and 'valid', a 1x1 filter, and a
    // non-square kernel with unequal strides and asymmetric explicit padding. Output channels
    // that are a multiple of 16 take the direct kernels: the last five cases cover their pixel
    // and filter-row remainders, 16/48/64/80 channels (80: a block of 64 and one of 16), and a
    // 'valid' conv that reads the input in place (no padded copy).
    const cases: Array<[number, number, number, number, number, number, number, number | [number, number], Pad]> = [
      [4, 28, 28, 1, 8, 4, 4, 2, 'same'],
      [2, 28, 28, 1, 32, 4, 4, 2, 'same'],
      [2, 14, 14, 32, 64, 4, 4, 2, 'same'],
      [4, 28, 28, 1, 8, 4, 4, 2, 'valid'],
      [2, 7, 7, 3, 5, 3, 3, 1, 'same'],
      [2, 7, 7, 3, 5, 3, 3, 1, 'valid'],
      [2, 5, 5, 2, 3, 3, 3, 2, 'same'],
      [2, 6, 6, 2, 3, 3, 3, 2, 'valid'],
      [2, 6, 5, 4, 3, 1, 1, 1, 'valid'],
      [2, 9, 7, 2, 3, 3, 2, [2, 1], [[0, 0], [1, 2], [0, 1], [0, 0]]],
      [3, 9, 7, 3, 16, 3, 3, 1, 'same'],
      [2, 10, 10, 5, 48, 3, 3, 2, 'valid'],
      [2, 6, 6, 7, 64, 3, 3, 1, 'same'],
      [2, 8, 8, 2, 80, 3, 2, [2, 1], [[0, 0], [2, 0], [1, 1], [0, 0]]],
      [1, 5, 5, 1, 32, 5, 5, 3, 'same'],
      // Input channels a multiple of 16: the direct input gradient (in dx itself for the 'valid'
      // case, whose last row and column no window reaches).
      [2, 10, 10, 16, 3, 3, 3, 2, 'valid'],
      [2, 6, 6, 80, 5, 3, 3, 1, 'same'],
      [1, 7, 7, 48, 16, 3, 2, [2, 1], [[0, 0], [1, 0], [0, 2], [0, 0]]],
    ];
    for (const [batch, h, w, cIn, cOut, kh, kw, strides, pad] of cases) {
      const title = `${h}x${w}x${cIn} -> ${cOut}, kernel ${kh}x${kw}, strides ${strides}, pad ${JSON.stringify(pad)}`;
      it(`Should match cpu for the output, dx and dw of ${title}`, async function () {
        needNative(this);
        const x = new Data(20, [batch, h, w, cIn]);
        const wt = new Data(21, [kh, kw, cIn, cOut]);
        const yShape = tf.tidy(() => tf.conv2d(x.t4(), wt.t4(), strides, pad).shape);
        const r = new Data(22, yShape);
        await expectNativeMatchesCpu(() => tf.conv2d(x.t4(), wt.t4(), strides, pad), `${title}: forward`);
        await expectNativeMatchesCpu(conv2dGrads(x, wt, r, strides, pad), `${title}: gradients`);
      });
    }

    it('Should match cpu on the im2col path too for shapes the direct kernels take (as with several threads)', async function () {
      needNative(this);
      const addon = nativeAddon()!;
      const x = new Data(36, [2, 14, 14, 32]);
      const wt = new Data(37, [4, 4, 32, 64]);
      const r = new Data(38, [2, 7, 7, 64]);
      const before = addon.setConvDirect(false);
      try {
        expect(before).to.equal(true);
        await expectNativeMatchesCpu(() => tf.conv2d(x.t4(), wt.t4(), 2, 'same'), 'im2col forward');
        await expectNativeMatchesCpu(conv2dGrads(x, wt, r, 2, 'same'), 'im2col gradients');
      } finally {
        addon.setConvDirect(before);
      }
      expect(() => (addon.setConvDirect as (on: unknown) => boolean)(1)).to.throw(TypeError, /vaelab_native.setConvDirect: on must be a boolean/);
    });

    it('Should match cpu for a forward conv with dilation 2', async function () {
      needNative(this);
      const x = new Data(23, [2, 9, 9, 3]);
      const wt = new Data(24, [3, 3, 3, 4]);
      await expectNativeMatchesCpu(() => tf.conv2d(x.t4(), wt.t4(), 1, 'same', 'NHWC', 2), 'dilated conv2d');
      // 32 output channels: the direct kernel, one patch segment per filter tap.
      const wt32 = new Data(24, [3, 3, 3, 32]);
      await expectNativeMatchesCpu(() => tf.conv2d(x.t4(), wt32.t4(), 1, 'same', 'NHWC', [2, 3]), 'dilated conv2d, 32 channels');
    });

    for (const activation of ['relu', 'linear', 'elu', 'leakyrelu'] as const) {
      it(`Should match cpu for fused conv2d with bias and ${activation}, stride 2${activation === 'relu' ? ', and its gradients' : ''}`, async function () {
        needNative(this);
        const x = new Data(25, [3, 8, 8, 2]);
        const wt = new Data(26, [4, 4, 2, 5]);
        const b = new Data(27, [5]);
        const fused = (xt: tf.Tensor, wtt: tf.Tensor, bt: tf.Tensor) =>
          tf.fused.conv2d({ x: xt as tf.Tensor4D, filter: wtt as tf.Tensor4D, strides: 2, pad: 'same', bias: bt, activation, leakyreluAlpha: 0.1 });
        await expectNativeMatchesCpu(() => fused(x.t(), wt.t(), b.t()), `fused conv2d ${activation}`);
        if (activation !== 'relu') return;
        // tfjs differentiates fused conv2d for relu and linear only.
        const r = new Data(28, [3, 4, 4, 5]);
        await expectNativeMatchesCpu(() => tf.grads((xt: tf.Tensor, wtt: tf.Tensor, bt: tf.Tensor) => tf.sum(tf.mul(fused(xt, wtt, bt), r.t())))([x.t(), wt.t(), b.t()]), 'fused conv2d gradients');
      });
    }

    it('Should fall back to the stock kernel for fused conv2d with prelu', async function () {
      needNative(this);
      const x = new Data(29, [2, 6, 6, 3]);
      const wt = new Data(30, [3, 3, 3, 4]);
      const alpha = new Data(31, [4]);
      await expectNativeMatchesCpu(
        () => tf.fused.conv2d({ x: x.t4(), filter: wt.t4(), strides: 1, pad: 'same', activation: 'prelu', preluActivationWeights: alpha.t() }),
        'fused conv2d prelu',
      );
    });
  });

  describe('sum', () => {
    it('Should match cpu for sums over leading axes (bias gradients), with and without keepDims, and fall back for others', async function () {
      needNative(this);
      const x = new Data(35, [6, 5, 4, 3]);
      await expectNativeMatchesCpu(
        () => [
          tf.sum(x.t(), [0, 1, 2]),
          tf.sum(x.t(), [0, 1], true),
          tf.sum(x.t(), 0),
          tf.sum(x.t(), [1, 0]),
          // Not leading: the stock kernel.
          tf.sum(x.t(), [1, 2]),
          tf.sum(x.t(), -1),
          tf.sum(x.t()),
        ],
        'sum',
      );
    });

    it('Should keep float32 accuracy over 100 000 rows', async function () {
      needNative(this);
      // 1e5 rows of 0.1 (0.1f = 0.100000001490116...): a float running sum drifts by ~1e-3
      // relative; blocks of 64 summed in double stay within ~1e-6 of 1e4.
      const [actual] = await on('wasm', () => tf.sum(tf.fill([100000, 2], 0.1), 0));
      for (const v of actual.values) expect(Math.abs(v - 10000)).to.be.below(1e-2);
    });
  });

  describe('bernoulliLogProb (fused)', () => {
    /** Logits from -60 to 60 (exp overflows float32 past 88 only in a naive formula) and grey levels x in [0, 1]. */
    const logits = new Data(41, [6, 37]);
    const scaled = () => tf.mul(logits.t(), 20) as tf.Tensor2D;
    const grey = () => tf.sigmoid(new Data(42, [6, 37]).t()) as tf.Tensor2D;

    it('Should run as one kernel on wasm and match the tfjs formula on cpu, values and both gradients', async function () {
      needNative(this);
      await selectBackend('wasm', { quiet: true });
      const kernels: string[] = [];
      const profile = await tf.profile(() => bernoulliLogProb(grey(), scaled()));
      for (const k of profile.kernels) kernels.push(k.name);
      expect(kernels.filter((k) => k.startsWith('Vaelab'))).to.deep.equal(['VaelabBernoulliLogProb']);
      await expectNativeMatchesCpu(
        () => {
          const dy = new Data(43, [6]).t();
          const [gx, gl] = tf.grads((x: tf.Tensor, l: tf.Tensor) => bernoulliLogProb(x as tf.Tensor2D, l as tf.Tensor2D))([grey(), scaled()], dy);
          return [bernoulliLogProb(grey(), scaled()), gx, gl];
        },
        'bernoulliLogProb',
      );
    });

    it('Should give the known value for logits 0 (log 1/2 per pixel) and stay finite at |logits| = 1e4', async function () {
      needNative(this);
      const [zero, far] = await on('wasm', () => [
        bernoulliLogProb(tf.fill([2, 784], 0.3) as tf.Tensor2D, tf.zeros([2, 784])),
        bernoulliLogProb(tf.tensor2d([[1, 0, 1, 0]]), tf.tensor2d([[1e4, -1e4, -1e4, 1e4]])),
      ]);
      for (const v of zero.values) expect(v).to.be.closeTo(784 * Math.log(0.5), 1e-3);
      // log sigmoid(1e4) = 0, log (1 - sigmoid(-1e4)) = 0, log sigmoid(-1e4) = -1e4, log (1 - sigmoid(1e4)) = -1e4.
      expect(Array.from(far.values)).to.deep.equal([-2e4]);
    });
  });

  describe('bernoulliLogProb accuracy (the addon\'s own exp and log1p)', () => {
    it('Should be within a few float32 ulps of the formula in double for logits from -100 to 100, and its gradient too', function () {
      needNative(this);
      const addon = nativeAddon()!;
      // One pixel per row, so that each output is one term; x cycles through 0, 0.3 and 1.
      const ls: number[] = [];
      for (let v = -100; v <= 100; v += 0.0137) ls.push(v);
      for (const v of [-1e-3, -1e-6, -1e-9, 0, 1e-9, 1e-6, 1e-3, -87.5, -88, -104]) ls.push(v);
      const n = ls.length;
      const logits = Float32Array.from(ls);
      const x = Float32Array.from(ls, (_, i) => [0, 0.3, 1][i % 3]);
      const out = new Float32Array(n);
      const dy = Float32Array.from(ls, (_, i) => 1 + (i % 5));
      const grad = new Float32Array(n);
      addon.bernoulliLogProb(x, logits, out, n, 1);
      addon.bernoulliLogProbGrad(dy, x, logits, grad, n, 1);
      const ulp = 2 ** -23;
      let worst = 0;
      let worstGrad = 0;
      for (let i = 0; i < n; i++) {
        const l = logits[i];
        const softplus = Math.max(l, 0) + Math.log1p(Math.exp(-Math.abs(l)));
        const term = x[i] * l - softplus;
        // Error relative to the size of what is summed (x l and softplus are each rounded once);
        // results below float32's normal range (2^-126) are flushed to zero.
        const tiny = 2 ** -125;
        worst = Math.max(worst, Math.max(0, Math.abs(out[i] - term) - tiny) / ((Math.abs(x[i] * l) + softplus) * ulp));
        const sig = 1 / (1 + Math.exp(-l));
        const g = dy[i] * (x[i] - sig);
        worstGrad = Math.max(worstGrad, Math.max(0, Math.abs(grad[i] - g) - tiny * dy[i]) / ((Math.abs(dy[i] * x[i]) + Math.abs(dy[i] * sig)) * ulp));
      }
      expect(worst, 'value error in ulps').to.be.below(4);
      expect(worstGrad, 'gradient error in ulps').to.be.below(4);
    });
  });

  describe('add', () => {
    it('Should match cpu for bias adds in either order, and fall back for other adds', async function () {
      needNative(this);
      const x = new Data(48, [3, 5, 4, 7]);
      const b = new Data(49, [7]);
      const m = new Data(50, [6, 7]);
      await expectNativeMatchesCpu(
        () => [
          tf.add(x.t(), b.t()),
          tf.add(b.t(), x.t()),
          tf.add(m.t(), b.t()),
          tf.add(m.t(), tf.reshape(b.t(), [1, 7])),
          tf.add(x.t(), tf.reshape(b.t(), [1, 1, 1, 7])),
          // One channel (a decoder's last layer on grey images).
          tf.add(tf.reshape(m.t(), [6, 7, 1]), tf.reshape(b.t(), [7, 1]).slice([2, 0], [1, 1]).reshape([1])),
          // Not a bias: the stock kernel.
          tf.add(m.t(), m.t()),
          tf.add(x.t(), tf.reshape(new Data(51, [4, 7]).t(), [4, 7])),
          tf.add(m.t(), 2),
          tf.add(tf.reshape(m.t(), [6, 7, 1]), tf.reshape(b.t(), [1, 1, 7])),
        ],
        'add',
      );
    });
  });

  describe('KL to a standard normal (fused)', () => {
    it('Should match the tfjs formula on cpu for values and both gradients, as one kernel each way', async function () {
      needNative(this);
      const loc = new Data(57, [9, 20]);
      const logVar = new Data(58, [9, 20]);
      const dy = new Data(59, [9]);
      await expectNativeMatchesCpu(() => {
        const [gl, gv] = tf.grads((l: tf.Tensor, v: tf.Tensor) => klStdNormal(l as tf.Tensor2D, v as tf.Tensor2D))([loc.t(), tf.mul(logVar.t(), 3)], dy.t());
        return [klStdNormal(loc.t() as tf.Tensor2D, tf.mul(logVar.t(), 3) as tf.Tensor2D), gl, gv];
      }, 'klStdNormal');
      const profile = await tf.profile(() => tf.grads((l: tf.Tensor, v: tf.Tensor) => klStdNormal(l as tf.Tensor2D, v as tf.Tensor2D))([loc.t(), logVar.t()], dy.t()));
      expect(profile.kernels.map((k) => k.name).filter((k) => k.startsWith('Vaelab') || /Exp|Square/.test(k))).to.deep.equal(['VaelabKlStdNormal', 'VaelabKlStdNormalGrad']);
    });
  });

  describe('Gaussian reparameterisation (fused)', () => {
    it('Should match the tfjs formulas on cpu for z, log q(z) and their gradients, as one kernel each way', async function () {
      needNative(this);
      const loc = new Data(60, [9, 20]);
      const logVar = new Data(61, [9, 20]);
      const eps = new Data(62, [9, 20]);
      const dz = new Data(63, [9, 20]);
      const dq = new Data(64, [9]);
      // logVar scaled by 3: exp(logVar / 2) from ~e^-4 to ~e^4.
      const lv = () => tf.mul(logVar.t(), 3) as tf.Tensor2D;
      await expectNativeMatchesCpu(() => {
        const z = (l: tf.Tensor, v: tf.Tensor, e: tf.Tensor) => reparameterize(l as tf.Tensor2D, v as tf.Tensor2D, e as tf.Tensor2D);
        const q = (v: tf.Tensor, e: tf.Tensor) => reparamLogProb(v as tf.Tensor2D, e as tf.Tensor2D);
        return [
          z(loc.t(), lv(), eps.t()),
          ...tf.grads(z)([loc.t(), lv(), eps.t()], dz.t()),
          q(lv(), eps.t()),
          ...tf.grads(q)([lv(), eps.t()], dq.t()),
        ];
      }, 'reparameterisation');
      const profile = await tf.profile(() => {
        const [gl, gv] = tf.grads((l: tf.Tensor, v: tf.Tensor) => reparameterize(l as tf.Tensor2D, v as tf.Tensor2D, eps.t() as tf.Tensor2D))([loc.t(), logVar.t()], dz.t());
        return [gl, gv, reparamLogProb(logVar.t() as tf.Tensor2D, eps.t() as tf.Tensor2D)];
      });
      expect(profile.kernels.map((k) => k.name).filter((k) => k.startsWith('Vaelab') || /Exp|Square|Sum/.test(k))).to.deep.equal([
        'VaelabReparam',
        'VaelabReparamGrad',
        'VaelabReparamLogProb',
      ]);
    });

    it('Should refuse inputs of different shapes with an error that names them', function () {
      needNative(this);
      expect(() => tf.engine().runKernel('VaelabReparam', { loc: tf.zeros([2, 3]), logVar: tf.zeros([2, 3]), eps: tf.zeros([3, 2]) }, {})).to.throw(
        /VaelabReparam \(wasm, .*\): inputs "loc", "logVar", "eps" must have one shape; got \[2,3\], \[2,3\], \[3,2\]/,
      );
    });
  });

  describe('bias + relu (fused)', () => {
    // 36 rows, and 150 rows of 48 channels (the bias gradient sums blocks of 64 rows).
    for (const shape of [[4, 3, 3, 6], [75, 2, 48]]) {
      it(`Should match cpu (relu(x + b)) for values and the gradients of x and b, as one kernel each way, for ${JSON.stringify(shape)}`, async function () {
        needNative(this);
        const x = new Data(52, shape);
        const b = new Data(53, [shape[shape.length - 1]]);
        const dy = new Data(54, shape);
        const run = () => {
          const [gx, gb] = tf.grads((xt: tf.Tensor, bt: tf.Tensor) => addBiasActivate(xt, bt, 'relu'))([x.t(), b.t()], dy.t());
          return [addBiasActivate(x.t(), b.t(), 'relu'), gx, gb];
        };
        await expectNativeMatchesCpu(run, 'bias relu');
        const profile = await tf.profile(() => tf.grads((xt: tf.Tensor, bt: tf.Tensor) => addBiasActivate(xt, bt, 'relu'))([x.t(), b.t()], dy.t()));
        const names = profile.kernels.map((k) => k.name);
        expect(names.filter((k) => /Relu|Add|Step|Sum/.test(k))).to.deep.equal(['VaelabBiasRelu', 'VaelabBiasReluGrad']);
      });
    }

    it('Should refuse a bias gradient whose length does not divide the gradient (biasReluGrad)', function () {
      needNative(this);
      const addon = nativeAddon()!;
      expect(() => addon.biasReluGrad(new Float32Array(12), new Float32Array(12), new Float32Array(12), new Float32Array(5))).to.throw(
        RangeError,
        /vaelab_native\.biasReluGrad: dbias must have a length \(the channel count\) that divides dy's 12; got 5/,
      );
      expect(() => addon.biasReluGrad(new Float32Array(12), new Float32Array(11), new Float32Array(12), new Float32Array(4))).to.throw(/biasReluGrad: y/);
    });

    it('Should leave other activations and non-channel biases to tfjs ops', async function () {
      needNative(this);
      const x = new Data(55, [5, 4]);
      const b = new Data(56, [4]);
      await expectNativeMatchesCpu(
        () => [addBiasActivate(x.t(), b.t(), 'elu'), addBiasActivate(x.t(), tf.reshape(b.t(), [1, 4]), 'relu'), addBiasActivate(x.t(), b.t(), 'linear')],
        'other activations',
      );
    });
  });

  describe('dense layer (fused)', () => {
    for (const activation of ['relu', 'tanh', 'softplus', 'linear'] as const) {
      it(`Should match cpu for a ${activation} layer's output and the gradients of x, kernel and bias, as one kernel each way`, async function () {
        needNative(this);
        // 150 rows: the bias gradient sums blocks of 64 rows.
        const x = new Data(60, [150, 37]);
        const dy = new Data(61, [150, 24]);
        const run = () => {
          const layer = new Dense(37, 24, new Rng(7));
          const f = (xt: tf.Tensor, kt: tf.Tensor, bt: tf.Tensor) => {
            const l = Object.assign(Object.create(Dense.prototype) as Dense, { kernel: kt, bias: bt });
            return l.apply(xt as tf.Tensor2D, activation);
          };
          const out = [layer.apply(x.t() as tf.Tensor2D, activation), ...tf.grads(f)([x.t(), layer.kernel, layer.bias], dy.t())];
          layer.dispose();
          return out;
        };
        await expectNativeMatchesCpu(run, `dense ${activation}`);
        const layer = new Dense(37, 24, new Rng(7));
        const kernels = (await tf.profile(() => tf.grads((xt: tf.Tensor) => layer.apply(xt as tf.Tensor2D, activation))([x.t()], dy.t()))).kernels.map((k) => k.name);
        // Forward one kernel; backward one kernel for the weights and one product for x.
        expect(kernels.filter((k) => !/Identity|Cast/.test(k))).to.deep.equal(['VaelabDense', 'VaelabDenseGrad', 'BatchMatMul']);
        // When only the weights need gradients (a first layer on data), there is no product for x.
        const weightsOnly = (await tf.profile(() => {
          const { value, grads } = tf.variableGrads(() => tf.sum(layer.apply(x.t() as tf.Tensor2D, activation)) as tf.Scalar, [layer.kernel, layer.bias]);
          tf.dispose([value, ...Object.values(grads)]);
        })).kernels.map((k) => k.name);
        expect(weightsOnly).to.include('VaelabDenseGrad');
        expect(weightsOnly).to.not.include('BatchMatMul');
        layer.dispose();
      });
    }

    it('Should refuse bad shapes and activations with errors that name them, and leave other activations to tfjs ops', async function () {
      needNative(this);
      const [x, k, b] = [tf.ones([4, 3]), tf.ones([5, 2]), tf.ones([2])];
      expect(() => tf.engine().runKernel('VaelabDense', { x, kernel: k, bias: b }, { activation: 'relu' })).to.throw(
        /VaelabDense \(wasm, core\/backend\/native\): shapes must be x \[N, K\], kernel \[K, C\], bias \[C\]; got x \[4,3\], kernel \[5,2\], bias \[2\]/,
      );
      expect(() => tf.engine().runKernel('VaelabDense', { x, kernel: tf.ones([3, 2]), bias: b }, { activation: 'elu' })).to.throw(
        /attr "activation" must be one of "relu", "tanh", "softplus", "linear"; got "elu"/,
      );
      const layer = new Dense(3, 2, new Rng(1));
      const kernels = (await tf.profile(() => layer.apply(x as tf.Tensor2D, 'elu'))).kernels.map((q) => q.name);
      // elu is tfjs's own op after a plain product and bias add, not a fused kernel
      expect(kernels).to.deep.equal(['BatchMatMul', 'Add', 'Elu']);
      layer.dispose();
      tf.dispose([x, k, b]);
    });
  });

  describe('tanh and softplus (biasActivation, biasActivationGrad)', () => {
    // Both sides of each branch point (|v| = 1/4), tiny and huge values, and the saturation ends.
    const points = [-100, -40, -20, -9, -3, -1, -0.3, -0.25, -0.2499, -0.1, -1e-3, -1e-8, 0, 1e-8, 1e-4, 0.1, 0.2499, 0.25, 0.2501, 0.5, 1, 2, 5, 9, 10, 20, 40, 100];
    const ulp = 2 ** -23;
    const softplus = (v: number) => Math.max(v, 0) + Math.log1p(Math.exp(-Math.abs(v)));
    const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

    it('Should give tanh and softplus within 3 ulp of the double-precision values over a dense sweep (softplus flushed to 0 below v = -87.3), and propagate NaN', function () {
      needNative(this);
      const addon = nativeAddon()!;
      // the spacing of float32 values at |w| (the least subnormal step below the least normal)
      const ulpAt = (w: number) => (Math.abs(w) < 2 ** -126 ? 2 ** -149 : 2 ** (Math.floor(Math.log2(Math.abs(w))) - 23));
      const sweep = [...points];
      for (let i = 0; i <= 4000; i++) sweep.push(Math.fround(-90 + (180 * i) / 4000));
      for (let i = 0; i <= 2000; i++) sweep.push(Math.fround(0.2 + (0.1 * i) / 2000), Math.fround(-0.2 - (0.1 * i) / 2000));
      for (let e = -30; e <= 0; e += 0.05) sweep.push(Math.fround(10 ** e), Math.fround(-(10 ** e)));
      for (const [act, ref] of [['tanh', Math.tanh], ['softplus', softplus]] as const) {
        const y = new Float32Array([...sweep, NaN]);
        addon.biasActivation(y, y.length, null, act, 0);
        let worst = 0;
        sweep.forEach((v, i) => {
          const want = ref(Math.fround(v));
          if (act === 'softplus' && v < -87.3 && y[i] === 0) return;
          const err = Math.abs(y[i] - want) / ulpAt(want);
          if (err > worst) worst = err;
          expect(err, `${act}(${v}) = ${y[i]}, want ${want}`).to.be.at.most(3);
        });
        expect(worst, `${act}: the sweep reaches the error it bounds`).to.be.above(0.5);
        expect(Number.isNaN(y[sweep.length]), `${act}(NaN)`).to.equal(true);
      }
      // the bias is added first: tanh(v + 1) from v
      const y = new Float32Array([0.5, -2]);
      addon.biasActivation(y, 2, new Float32Array([1, 1]), 'tanh', 0);
      expect(y[0]).to.be.closeTo(Math.tanh(1.5), 3 * ulp);
      expect(y[1]).to.be.closeTo(Math.tanh(-1), 3 * ulp);
    });

    it('Should give the derivatives from the outputs, dy (1 - y^2) and dy sigmoid(v), and their column sums', function () {
      needNative(this);
      const addon = nativeAddon()!;
      const cols = 4;
      const rows = points.length / cols;
      const dy = Float32Array.from(points, (_, i) => 0.5 + (i % 5) * 0.25);
      for (const act of ['tanh', 'softplus'] as const) {
        const y = new Float32Array(points);
        addon.biasActivation(y, cols, null, act, 0);
        const dx = new Float32Array(points.length);
        const db = new Float32Array(cols);
        addon.biasActivationGrad(dy, y, dx, db, act);
        points.forEach((v, i) => {
          const f = Math.fround;
          // tanh: exactly core/nn.ts's formula in float32; softplus: sigmoid of the input, to the
          // precision that the rounded output y carries (its relative error times y)
          const want = act === 'tanh' ? f(dy[i] * f(1 - f(y[i] * y[i]))) : dy[i] * sigmoid(f(v));
          const tol = act === 'tanh' ? 0 : 4 * ulp * Math.abs(want) + 2 * ulp * y[i] * dy[i] + 2 ** -126;
          expect(Math.abs(dx[i] - want), `${act}'(${v}): ${dx[i]}, want ${want}`).to.be.at.most(tol);
        });
        for (let c = 0; c < cols; c++) {
          let [sum, abs] = [0, 0];
          for (let r = 0; r < rows; r++) [sum, abs] = [sum + dx[r * cols + c], abs + Math.abs(dx[r * cols + c])];
          // float32 partial sums: at most one rounding per row
          expect(db[c], `column ${c}`).to.be.closeTo(sum, rows * ulp * abs);
        }
      }
    });

    it('Should refuse an unknown activation and a bias gradient that does not divide dy', function () {
      needNative(this);
      const addon = nativeAddon()!;
      const a = () => new Float32Array(12);
      expect(() => addon.biasActivationGrad(a(), a(), a(), new Float32Array(4), 'relu' as 'tanh')).to.throw(
        RangeError,
        /vaelab_native\.biasActivationGrad: activation must be "tanh" or "softplus"; got "relu"/,
      );
      expect(() => addon.biasActivationGrad(a(), a(), a(), new Float32Array(5), 'tanh')).to.throw(
        RangeError,
        /vaelab_native\.biasActivationGrad: dbias must have a length \(the channel count\) that divides dy's 12; got 5/,
      );
      expect(() => addon.biasActivation(a(), 4, null, 'gelu', 0)).to.throw(/activation must be "linear", "relu", "relu6", "leakyrelu", "elu", "sigmoid", "tanh" or "softplus"; got "gelu"/);
    });

    it('Should list every function the addon exports in NATIVE_FUNCTIONS, and no other', function () {
      needNative(this);
      expect([...NATIVE_FUNCTIONS].sort()).to.deep.equal(Object.keys(nativeAddon()!).sort());
    });
  });

  describe('relu', () => {
    it('Should match cpu for relu and its gradient, including 0, -0, NaN and infinities, as one kernel each way', async function () {
      needNative(this);
      const special = [0, -0, NaN, Infinity, -Infinity, 1e-30, -1e-30, 3, -3];
      const x = () => tf.concat([tf.tensor1d(special), new Data(46, [64]).t()]);
      const dy = () => tf.concat([tf.tensor1d(special.map((_, i) => i + 1)), new Data(47, [64]).t()]);
      const run = () => {
        const [g] = tf.grads((t: tf.Tensor) => tf.relu(t))([x()], dy());
        return [tf.relu(x()), g];
      };
      const expected = await on('cpu', run);
      const actual = await on('wasm', run);
      // NaN == NaN here (deep equality of Float32Arrays compares with SameValueZero).
      expect(Array.from(actual[0].values)).to.deep.equal(Array.from(expected[0].values));
      expect(Array.from(actual[1].values)).to.deep.equal(Array.from(expected[1].values));
      const profile = await tf.profile(() => tf.grads((t: tf.Tensor) => tf.relu(t))([x()], dy()));
      expect(profile.kernels.map((k) => k.name).filter((k) => /Relu|Step|Multiply/.test(k))).to.deep.equal(['Relu', 'VaelabReluGrad']);
    });
  });

  describe('leaky relu', () => {
    it('Should match cpu for leakyRelu and its gradient, including 0, -0, NaN and infinities, as one kernel each way', async function () {
      needNative(this);
      const special = [0, -0, NaN, Infinity, -Infinity, 1e-30, -1e-30, 3, -3];
      const x = () => tf.concat([tf.tensor1d(special), new Data(48, [64]).t()]);
      const dy = () => tf.concat([tf.tensor1d(special.map((_, i) => i + 1)), new Data(49, [64]).t()]);
      const f = (t: tf.Tensor) => tf.leakyRelu(t, 0.1);
      const run = () => [f(x()), tf.grads(f)([x()], dy())[0]];
      const expected = await on('cpu', run);
      const actual = await on('wasm', run);
      // By hand in float32 (alpha rounded to float32 first, as the stock wasm kernel has it):
      // y = x < 0 ? alpha x : x, and the gradient alpha dy at 0 and for NaN (tfjs's where(x > 0, dy, alpha dy)).
      const [xs, dys] = [(await on('cpu', x))[0].values, (await on('cpu', dy))[0].values];
      const a = Math.fround(0.1);
      expect(Array.from(actual[0].values)).to.deep.equal(Array.from(xs, (v) => (v < 0 ? Math.fround(a * v) : v)));
      expect(Array.from(actual[1].values)).to.deep.equal(Array.from(xs, (v, i) => (v > 0 ? dys[i] : Math.fround(a * dys[i]))));
      // cpu multiplies by alpha in double before rounding: the gradient alike, the output within an ulp
      expect(Array.from(actual[1].values)).to.deep.equal(Array.from(expected[1].values));
      const finite = (p: { values: Float32Array }) => ({ shape: [p.values.length - 5], values: p.values.slice(5) });
      expectClose(finite(actual[0]), finite(expected[0]), 'leakyRelu', 2 ** -23);
      expect(Array.from(actual[0].values.slice(0, 5))).to.deep.equal(Array.from(expected[0].values.slice(0, 5)));
      await tf.setBackend('wasm');
      const profile = await tf.profile(() => tf.grads(f)([x()], dy()));
      expect(profile.kernels.map((k) => k.name).filter((k) => /Relu|Greater|Select|Multiply/.test(k))).to.deep.equal(['LeakyRelu', 'VaelabLeakyReluGrad']);
      // Denormal inputs count as 0 in the comparisons (the pack's denormals-are-zero mode, native/README.md):
      // x = -1e-40 passes through, and x = +1e-40 takes the slope's gradient.
      const tiny = new Float32Array([-1e-40, 1e-40]);
      const [yt, gt] = [new Float32Array(2), new Float32Array(2)];
      nativeAddon()!.leakyRelu(tiny, yt, 0.1);
      nativeAddon()!.leakyReluGrad(new Float32Array([1, 1]), tiny, gt, 0.1);
      expect(Array.from(yt)).to.deep.equal(Array.from(tiny));
      expect(Array.from(gt)).to.deep.equal([Math.fround(0.1), Math.fround(0.1)]);
    });
  });

  describe('batch normalisation over rows (fused)', () => {
    const eps = 1e-5;
    /** y, the batch's mean and biased variance, as tfjs ops (the ladder's formula). */
    const composite = (x: tf.Tensor2D, scale: tf.Tensor, offset: tf.Tensor) => {
      const mean = tf.mean(x, 0);
      const variance = tf.mean(tf.square(tf.sub(x, mean)), 0);
      const y = tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), scale), offset) as tf.Tensor2D;
      return { y, mean, variance };
    };
    const bn = (x: tf.Tensor2D, scale: tf.Tensor, offset: tf.Tensor) => fusedBatchNorm(x, scale, offset, eps) ?? composite(x, scale, offset);
    const [rows, cols] = [37, 21];
    // x with a column offset of 5 and scales from 0.01 to 3, so that the variance is not near 1
    const xOf = () => tf.add(tf.mul(new Data(50, [rows, cols]).t(), tf.linspace(0.01, 3, cols)), 5) as tf.Tensor2D;
    const scaleOf = () => new Data(51, [cols]).t();
    const offsetOf = () => new Data(52, [cols]).t();

    it('Should give y, the mean and the biased variance of the formula computed in double, and run as one kernel', async function () {
      needNative(this);
      await tf.setBackend('wasm');
      const [x, scale, offset] = [xOf(), scaleOf(), offsetOf()];
      const [xv, sv, ov] = [x.dataSync(), scale.dataSync(), offset.dataSync()];
      const out = fusedBatchNorm(x, scale, offset, eps);
      expect(out, 'the kernel is registered on wasm with the pack').to.not.equal(null);
      const [y, mean, variance] = [out!.y.dataSync(), out!.mean.dataSync(), out!.variance.dataSync()];
      for (let j = 0; j < cols; j++) {
        let m = 0;
        for (let i = 0; i < rows; i++) m += xv[i * cols + j];
        m /= rows;
        let v = 0;
        for (let i = 0; i < rows; i++) v += (xv[i * cols + j] - m) ** 2;
        v /= rows;
        // the statistics in double, rounded once: within an ulp of float32
        expect(Math.abs(mean[j] - m), `mean ${j}`).to.be.at.most(Math.abs(m) * 2 ** -23);
        expect(Math.abs(variance[j] - v), `variance ${j}`).to.be.at.most(v * 2 ** -23);
        for (let i = 0; i < rows; i++) {
          const want = ((xv[i * cols + j] - m) / Math.sqrt(v + eps)) * sv[j] + ov[j];
          // x - mean rounds at |x| ~ 5 (an ulp of 5 relative to the column's spread), then a few products
          const tol = 4 * 2 ** -23 * (Math.abs(want) + (5 / Math.sqrt(v + eps)) * Math.abs(sv[j]) + Math.abs(ov[j]));
          expect(Math.abs(y[i * cols + j] - want), `y [${i}, ${j}]`).to.be.at.most(tol);
        }
      }
      tf.dispose([x, scale, offset, out!.y, out!.mean, out!.variance]);
      const profile = await tf.profile(() => {
        const o = bn(xOf(), scaleOf(), offsetOf());
        return tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(bn(a as tf.Tensor2D, b, c).y))([xOf(), scaleOf(), offsetOf()]).concat([o.y]);
      });
      expect(profile.kernels.map((k) => k.name).filter((k) => k.startsWith('VaelabBatchNorm'))).to.deep.equal(['VaelabBatchNorm', 'VaelabBatchNorm', 'VaelabBatchNormGrad']);
    });

    it('Should match the tfjs formula on cpu for y and the gradients of x, scale and offset, also when the mean and variance reach the loss', async function () {
      needNative(this);
      const r = new Data(53, [rows, cols]);
      const [rm, rv] = [new Data(54, [cols]), new Data(55, [cols])];
      // the usual case: only y reaches the loss (the statistics feed running averages)
      const onlyY = () => {
        const f = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(bn(a as tf.Tensor2D, b, c).y, r.t()));
        const o = bn(xOf(), scaleOf(), offsetOf());
        return [o.y, o.mean, o.variance, ...tf.grads(f)([xOf(), scaleOf(), offsetOf()])];
      };
      // and when they do reach it: their gradients are added to x's
      const all = () => {
        const f = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => {
          const o = bn(a as tf.Tensor2D, b, c);
          return tf.addN([tf.sum(tf.mul(o.y, r.t())), tf.sum(tf.mul(o.mean, rm.t())), tf.sum(tf.mul(o.variance, rv.t()))]);
        };
        return tf.grads(f)([xOf(), scaleOf(), offsetOf()]);
      };
      for (const [what, f] of [['y only', onlyY], ['y, mean and variance', all]] as const) {
        const expected = await on('cpu', f);
        const actual = await on('wasm', f);
        expect(actual.length).to.equal(expected.length);
        actual.forEach((a, i) => expectClose(a, expected[i], `${what} [output ${i}]`, 1e-5));
      }
    });

    it('Should refuse inputs whose shapes do not fit, naming them, and leave other shapes to tfjs ops', async function () {
      needNative(this);
      await tf.setBackend('wasm');
      expect(() => tf.engine().runKernel('VaelabBatchNorm', { x: tf.zeros([4, 3]), scale: tf.ones([2]), offset: tf.zeros([3]) }, { epsilon: eps })).to.throw(
        'VaelabBatchNorm (wasm, core/backend/native): input "scale" must be a float32 vector of 3 values; got float32 [2]',
      );
      expect(() => nativeAddon()!.batchNorm(new Float32Array(12), new Float32Array(3), new Float32Array(3), new Float32Array(11), new Float32Array(3), new Float32Array(3), 4, 3, eps)).to.throw(
        RangeError,
        'vaelab_native.batchNorm: y must hold exactly 12 floats for the given shapes; got 11',
      );
      expect(fusedBatchNorm(tf.zeros([2, 3, 4]) as unknown as tf.Tensor2D, tf.ones([4]), tf.zeros([4]), eps)).to.equal(null);
      expect(fusedBatchNorm(tf.zeros([4, 3]) as tf.Tensor2D, tf.ones([4]), tf.zeros([3]), eps)).to.equal(null);
    });
  });

  describe('nativeSumSquares', () => {
    it('Should give the sum of squares over several tensors, in double', async function () {
      needNative(this);
      await selectBackend('wasm', { quiet: true });
      const a = new Data(44, [33, 17]);
      const b = new Data(45, [5]);
      const expected = [...a.values, ...b.values].reduce((acc, v) => acc + v * v, 0);
      const ts = [a.t(), b.t(), tf.zeros([0])];
      expect(nativeSumSquares(ts)).to.be.closeTo(expected, 1e-9 * expected);
      tf.dispose(ts);
      await tf.setBackend('cpu');
      const onCpu = tf.ones([3]);
      expect(nativeSumSquares([onCpu])).to.equal(null);
      onCpu.dispose();
      await tf.setBackend('wasm');
    });
  });

  describe('conv2dTranspose', () => {
    // The conv VAE decoder's first layer: 7x7x64 -> 14x14x32, kernel 4, stride 2, 'same'.
    const z = new Data(30, [2, 7, 7, 64]);
    const w = new Data(31, [4, 4, 32, 64]);
    const r = new Data(32, [2, 14, 14, 32]);
    const outShape: Shape4 = [2, 14, 14, 32];

    it('Should match cpu for the forward pass 7x7x64 -> 14x14x32 and its gradients', async function () {
      needNative(this);
      await expectNativeMatchesCpu(() => tf.conv2dTranspose(z.t4(), w.t4(), outShape, 2, 'same'), 'conv2dTranspose');
      const f = (zt: tf.Tensor, wt: tf.Tensor) =>
        tf.sum(tf.mul(tf.conv2dTranspose(zt as tf.Tensor4D, wt as tf.Tensor4D, outShape, 2, 'same'), r.t()));
      await expectNativeMatchesCpu(() => tf.grads(f)([z.t(), w.t()]), 'conv2dTranspose gradients');
    });

    it('Should match cpu for a "valid" transpose with stride 1 and an odd kernel', async function () {
      needNative(this);
      const zs = new Data(33, [2, 5, 5, 6]);
      const ws = new Data(34, [3, 3, 4, 6]);
      await expectNativeMatchesCpu(() => tf.conv2dTranspose(zs.t4(), ws.t4(), [2, 7, 7, 4], 1, 'valid'), 'conv2dTranspose valid');
    });
  });

  describe('nativeAdamStep', () => {
    const shapes = [[7, 5], [5], [3, 3, 2, 4]];

    /** Runs 3 native steps on wasm from seeded p and g (a fresh g per step); returns p, m, v. */
    async function threeNativeSteps(weightDecay: number): Promise<Float32Array[][]> {
      await tf.setBackend('wasm');
      const p = shapes.map((s, i) => tf.variable(new Data(50 + i, s).t(), false));
      const m = shapes.map((s) => tf.variable(tf.zeros(s), false));
      const v = shapes.map((s) => tf.variable(tf.zeros(s), false));
      for (let t = 1; t <= 3; t++) {
        const g = shapes.map((s, i) => new Data(60 + 10 * t + i, s).t());
        expect(nativeAdamStep(p, g, m, v, hyperAt(t, 1e-2, weightDecay))).to.equal(true);
        tf.dispose(g);
      }
      const out = [p, m, v].map((list) => list.map((t) => t.dataSync() as Float32Array));
      tf.dispose([...p, ...m, ...v]);
      return out;
    }

    it('Should give, with the squares, the sum nativeSumSquares gives bit for bit and the same update, across blocks and a tail', async function () {
      needNative(this);
      await tf.setBackend('wasm');
      // 9700 floats: two blocks of the pass (8192 each at most) and a tail of 4 after the groups of 8.
      const big = [[100, 97], [5], [3, 3, 2, 4]];
      const run = (withSquares: boolean) => {
        const p = big.map((s, i) => tf.variable(new Data(70 + i, s).t(), false));
        const m = big.map((s) => tf.variable(tf.zeros(s), false));
        const v = big.map((s) => tf.variable(tf.zeros(s), false));
        const g = big.map((s, i) => new Data(80 + i, s).t());
        const expected = nativeSumSquares(g);
        const got = withSquares ? nativeAdamStepSquares(p, g, m, v, hyperAt(1, 1e-2, 0.1)) : nativeAdamStep(p, g, m, v, hyperAt(1, 1e-2, 0.1));
        const out = [p, m, v].map((list) => list.map((t) => Array.from(t.dataSync())));
        tf.dispose([...p, ...m, ...v, ...g]);
        return { expected, got, out };
      };
      const withSquares = run(true);
      expect(withSquares.expected).to.be.a('number').and.to.be.above(0);
      expect(withSquares.got).to.equal(withSquares.expected);
      const plain = run(false);
      expect(plain.got).to.equal(true);
      expect(withSquares.out).to.deep.equal(plain.out);
    });

    for (const weightDecay of [0, 0.1]) {
      it(`Should match the Adam formula over 3 steps (weightDecay ${weightDecay})`, async function () {
        needNative(this);
        const [p, m, v] = await threeNativeSteps(weightDecay);
        shapes.forEach((s, i) => {
          const n = s.reduce((a, b) => a * b, 1);
          const [rp, rm, rv] = [new Data(50 + i, s).values.slice(), new Float32Array(n), new Float32Array(n)];
          for (let t = 1; t <= 3; t++) adamReference(rp, new Data(60 + 10 * t + i, s).values, rm, rv, hyperAt(t, 1e-2, weightDecay));
          expectClose({ shape: s, values: p[i] }, { shape: s, values: rp }, `p[${i}]`, 1e-6);
          expectClose({ shape: s, values: m[i] }, { shape: s, values: rm }, `m[${i}]`, 1e-6);
          expectClose({ shape: s, values: v[i] }, { shape: s, values: rv }, `v[${i}]`, 1e-6);
        });
      });
    }

    it('Should give the same parameters as core/train/adam.ts on wasm, bit for bit', async function () {
      needNative(this);
      await tf.setBackend('wasm');
      const run = (native: boolean): Float32Array[] => {
        const vars = new Map(shapes.map((s, i) => [`w${i}`, tf.variable(new Data(50 + i, s).t(), false)] as const));
        const adam = new Adam(vars, { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.01 });
        for (let t = 1; t <= 3; t++) {
          const grads = new Map(shapes.map((s, i) => [`w${i}`, new Data(60 + 10 * t + i, s).t()] as const));
          if (native) {
            adam.t += 1;
            const keys = [...vars.keys()];
            const ok = nativeAdamStep(
              keys.map((k) => vars.get(k)!), keys.map((k) => grads.get(k)!), keys.map((k) => adam.m.get(k)!), keys.map((k) => adam.v.get(k)!),
              { ...hyperAt(adam.t, 1e-2, 0.01) },
            );
            expect(ok).to.equal(true);
          } else {
            adam.apply(grads, 1e-2);
          }
          tf.dispose([...grads.values()]);
        }
        const out = [...vars.values()].map((t) => t.dataSync() as Float32Array);
        tf.dispose([...vars.values()]);
        adam.dispose();
        return out;
      };
      const js = run(false);
      const native = run(true);
      native.forEach((p, i) => expect(Array.from(p), `w${i}`).to.deep.equal(Array.from(js[i])));
    });

    it('Should update variables in place without touching tensors that share their buffer, and leak nothing', async function () {
      needNative(this);
      await tf.setBackend('wasm');
      const init = new Data(70, [4, 3]).t();
      // The variable shares init's buffer while init lives: the step must copy, not write into init.
      const p = tf.variable(init, false);
      const m = tf.variable(tf.zeros([4, 3]), false);
      const v = tf.variable(tf.zeros([4, 3]), false);
      const g = new Data(71, [4, 3]).t();
      const before = Array.from(init.dataSync());
      const tensors = tf.memory().numTensors;
      expect(nativeAdamStep([p], [g], [m], [v], hyperAt(1, 0.1))).to.equal(true);
      expect(Array.from(init.dataSync())).to.deep.equal(before);
      expect(Array.from(p.dataSync())).to.not.deep.equal(before);
      const dataId = p.dataId;
      expect(nativeAdamStep([p], [g], [m], [v], hyperAt(2, 0.1))).to.equal(true);
      // The second step owns the buffer and writes in place.
      expect(p.dataId).to.equal(dataId);
      expect(tf.memory().numTensors).to.equal(tensors);
      tf.dispose([init, p, m, v, g]);
    });

    it('Should invalidate the packed filter the wasm module caches for a stock kernel (fused conv2d)', async function () {
      needNative(this);
      await tf.setBackend('wasm');
      const x = new Data(72, [1, 6, 6, 2]).t4();
      const w = tf.variable(new Data(73, [3, 3, 2, 4]).t(), false);
      const m = tf.variable(tf.zeros([3, 3, 2, 4]), false);
      const v = tf.variable(tf.zeros([3, 3, 2, 4]), false);
      const g = new Data(74, [3, 3, 2, 4]).t();
      // Steps twice, so that the second one writes in place into a buffer XNNPACK has packed.
      nativeAdamStep([w], [g], [m], [v], hyperAt(1, 0.5));
      tf.tidy(() => tf.fused.conv2d({ x, filter: w as tf.Tensor4D, strides: 1, pad: 'same' }).dataSync());
      nativeAdamStep([w], [g], [m], [v], hyperAt(2, 0.5));
      const actual = tf.tidy(() => tf.fused.conv2d({ x, filter: w as tf.Tensor4D, strides: 1, pad: 'same' }).dataSync() as Float32Array);
      const wNow = w.dataSync() as Float32Array;
      const expected = (await on('cpu', () => tf.conv2d(new Data(72, [1, 6, 6, 2]).t4(), tf.tensor4d(wNow, [3, 3, 2, 4]), 1, 'same')))[0];
      expectClose({ shape: expected.shape, values: actual }, expected, 'fused conv2d after an in-place update');
      await tf.setBackend('wasm');
      tf.dispose([x, w, m, v, g]);
    });

    it('Should return false and change nothing on a backend other than wasm', async function () {
      needNative(this);
      await tf.setBackend('cpu');
      const p = tf.variable(tf.ones([2]), false);
      const m = tf.variable(tf.zeros([2]), false);
      const v = tf.variable(tf.zeros([2]), false);
      expect(nativeAdamStep([p], [tf.ones([2])], [m], [v], hyperAt(1, 0.1))).to.equal(false);
      expect(Array.from(p.dataSync())).to.deep.equal([1, 1]);
      tf.dispose([p, m, v]);
      await tf.setBackend('wasm');
    });

    it('Should throw, naming the index, when a gradient does not fit its variable', async function () {
      needNative(this);
      await tf.setBackend('wasm');
      const p = tf.variable(tf.ones([2, 3]), false, 'native-test-p');
      const g = tf.ones([5]);
      expect(() => nativeAdamStep([p], [g], [p], [p], hyperAt(1, 0.1))).to.throw(
        Error,
        'nativeAdamStep (core/backend/native): grads[0] must have 6 elements like vars[0] "native-test-p" [2,3]; got [5]',
      );
      tf.dispose([p, g]);
    });
  });

  it('Should leave tf.memory() tensor and buffer counts unchanged across repeated calls', async function () {
    needNative(this);
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
        tf.matMul(tf.reshape(a, [99, 47]), tf.reshape(b, [47, 29]));
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
    expect(after.numDataBuffers).to.equal(before.numDataBuffers);
    tf.dispose([a, b, bT, bias, x, w, z, wT]);
  });
});
