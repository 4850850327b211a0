/**
 * Offline sample quality (core/eval/frechet.ts, classifier.ts, sample-quality.ts): the Fréchet
 * distance against closed forms, the classifier's accuracy and determinism, its cache, and the
 * metrics on image sources whose answers are known (the test images themselves, noise).
 *
 * The classifier tests train on wasm (with the native pack where it is built), the path the CLI
 * takes: the cpu backend's convolution gradients are about 100x slower. A short recipe on 10 000
 * MNIST training images keeps them to seconds.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../core/backend/select';
import { experimentFromObject } from '../core/config/experiment';
import { loadMnist } from '../core/data/mnist';
import type { Dataset, DataSplit } from '../core/data/types';
import { ConfigError } from '../core/errors';
import {
  DEFAULT_CLASSIFIER_RECIPE,
  accuracy,
  backendPath,
  classify,
  loadOrTrainClassifier,
  recipeHash,
  trainClassifier,
  weightsSha256,
  type ClassifierRecipe,
  type ImageClassifier,
} from '../core/eval/classifier';
import { frechetDistance, gaussianMoments, sqrtPsd, symmetricEigen, traceSqrtProduct } from '../core/eval/frechet';
import { checkSampleQualityData, evaluateSampleQuality, modelImageSources, sampleQualityMetrics, type ImageSources } from '../core/eval/sample-quality';
import { Rng } from '../core/rng';
import { openSession } from '../core/session';
import { checkModelSelection } from '../core/train/trainer';
import { expectThrowExact, skipBecause } from './data/helpers';
import { builtins, experimentObject } from './kits/build';

/** A row-major n x n matrix from rows. */
const mat = (rows: number[][]) => Float64Array.from(rows.flat());

/** R diag(d) R^T for the rotation R of the plane (i, j) by angle a in n dimensions. */
function rotatedDiagonal(d: number[], a: number, i = 0, j = 1): Float64Array {
  const n = d.length;
  const R = new Float64Array(n * n);
  for (let k = 0; k < n; k++) R[k * n + k] = 1;
  R[i * n + i] = Math.cos(a);
  R[i * n + j] = -Math.sin(a);
  R[j * n + i] = Math.sin(a);
  R[j * n + j] = Math.cos(a);
  const out = new Float64Array(n * n);
  for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) for (let k = 0; k < n; k++) out[r * n + c] += R[r * n + k] * d[k] * R[c * n + k];
  return out;
}

/** A random symmetric PSD matrix A A^T / m of rank min(n, m), A [n, m] standard normal. */
function randomPsd(n: number, m: number, seed: number): Float64Array {
  const rng = Rng.derive(seed, 'test-psd');
  const A = Float64Array.from({ length: n * m }, () => rng.normal());
  const out = new Float64Array(n * n);
  for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) for (let k = 0; k < m; k++) out[r * n + c] += (A[r * m + k] * A[c * m + k]) / m;
  return out;
}

function matMul(a: Float64Array, b: Float64Array, n: number): Float64Array {
  const c = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let k = 0; k < n; k++) for (let j = 0; j < n; j++) c[i * n + j] += a[i * n + k] * b[k * n + j];
  return c;
}

const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
const gauss = (mean: number[], cov: Float64Array) => ({ mean: Float64Array.from(mean), cov });

describe('Fréchet distance', () => {
  it('Should decompose symmetric matrices: A V = V diag(values), V orthonormal (40x40, rank 40 and rank 10)', () => {
    for (const m of [80, 10]) {
      const n = 40;
      const A = randomPsd(n, m, m);
      const { values, vectors: V } = symmetricEigen(A, n);
      const AV = matMul(A, V, n);
      const VL = Float64Array.from(V, (v, k) => v * values[k % n]);
      expect(maxAbsDiff(AV, VL)).to.be.below(1e-12 * maxAbs(A) * n);
      const VtV = new Float64Array(n * n);
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let k = 0; k < n; k++) VtV[i * n + j] += V[k * n + i] * V[k * n + j];
      for (let i = 0; i < n; i++) VtV[i * n + i] -= 1;
      expect(maxAbs(VtV)).to.be.below(1e-12);
      // rank m < n: n - m eigenvalues are 0 up to rounding
      const zeros = Array.from(values).filter((v) => Math.abs(v) < 1e-12 * maxAbs(A)).length;
      expect(zeros).to.equal(Math.max(0, n - m));
    }
  });

  it('Should give a matrix square root whose square is the matrix (20x20 full rank, 128x128 of rank 100, the size of the features)', () => {
    for (const [n, m] of [
      [20, 60],
      [128, 100],
    ]) {
      const A = randomPsd(n, m, n);
      const R = sqrtPsd(A, n);
      expect(maxAbsDiff(matMul(R, R, n), A), `${n}x${n}`).to.be.below(1e-10 * maxAbs(A));
      expect(maxAbsDiff(R, Float64Array.from({ length: n * n }, (_, k) => R[(k % n) * n + Math.floor(k / n)]))).to.equal(0); // symmetric
    }
  });

  it('Should give the square root of diag(4, 9, 0) as diag(2, 3, 0)', () => {
    const R = sqrtPsd(mat([[4, 0, 0], [0, 9, 0], [0, 0, 0]]), 3);
    expect(maxAbsDiff(R, [2, 0, 0, 0, 3, 0, 0, 0, 0])).to.equal(0);
  });

  it('Should be 0 between identical Gaussians, and between the moments of a set of vectors and themselves', () => {
    const c = randomPsd(16, 40, 3);
    expect(Math.abs(frechetDistance(gauss(Array(16).fill(1), c), gauss(Array(16).fill(1), c)))).to.be.below(1e-12 * 16 * maxAbs(c));
    const rng = Rng.derive(0, 'test-vectors');
    const x = Float64Array.from({ length: 500 * 32 }, () => rng.normal() * 3 + 1);
    const m = gaussianMoments(x, 32);
    expect(Math.abs(frechetDistance(m, m))).to.be.below(1e-9);
  });

  it('Should match ||mu1 - mu2||^2 + sum (sqrt(a_i) - sqrt(b_i))^2 for diagonal covariances', () => {
    // mu: (0, 0, 0) and (1, 2, 0) -> 1 + 4 = 5; variances (1, 4, 9) and (4, 1, 9) -> (1-2)^2 + (2-1)^2 + 0 = 2; FD = 7
    const fd = frechetDistance(gauss([0, 0, 0], mat([[1, 0, 0], [0, 4, 0], [0, 0, 9]])), gauss([1, 2, 0], mat([[4, 0, 0], [0, 1, 0], [0, 0, 9]])));
    expect(fd).to.be.closeTo(7, 1e-12);
    // one dimension: (m1 - m2)^2 + (s1 - s2)^2 = 9 + (2 - 5)^2 = 18
    expect(frechetDistance(gauss([1], mat([[4]])), gauss([4], mat([[25]])))).to.be.closeTo(18, 1e-12);
  });

  it('Should match the closed form of covariances rotated together (they commute: sum (sqrt(a_i) - sqrt(b_i))^2)', () => {
    // R diag(1, 4, 16, 2) R^T vs R diag(9, 1, 16, 8) R^T, R a rotation by 0.7 rad in the plane (0, 2):
    // (1-3)^2 + (2-1)^2 + (4-4)^2 + (sqrt2 - sqrt8)^2 = 4 + 1 + 0 + 2 = 7; means 0 and (0, 0, 0, 3): + 9
    const a = rotatedDiagonal([1, 4, 16, 2], 0.7, 0, 2);
    const b = rotatedDiagonal([9, 1, 16, 8], 0.7, 0, 2);
    expect(frechetDistance(gauss([0, 0, 0, 0], a), gauss([0, 0, 0, 3], b))).to.be.closeTo(16, 1e-11);
  });

  it('Should match the exact 2x2 formula for covariances that do not commute', () => {
    // For 2x2 M with non-negative eigenvalues, tr(M^(1/2)) = sqrt(tr M + 2 sqrt(det M)), so
    // tr((S1 S2)^(1/2)) = sqrt(tr(S1 S2) + 2 sqrt(det S1 det S2)).
    // S1 = [[2, 1], [1, 2]], S2 = [[1, 0], [0, 4]]: tr(S1 S2) = 2 + 8 = 10, det 3 and 4:
    // sqrt(10 + 2 sqrt 12) = 4.114390..., FD = 4 + 5 - 2 * 4.114390 = 0.771219...
    const s1 = mat([[2, 1], [1, 2]]);
    const s2 = mat([[1, 0], [0, 4]]);
    const exact = Math.sqrt(10 + 2 * Math.sqrt(3 * 4));
    expect(traceSqrtProduct(s1, s2, 2)).to.be.closeTo(exact, 1e-13);
    expect(frechetDistance(gauss([0, 0], s1), gauss([0, 0], s2))).to.be.closeTo(9 - 2 * exact, 1e-12);
    // a rotated pair: S1 = R diag(1, 9) R^T (30 degrees), S2 = diag(4, 1), means (1, 1) and (0, 0): + 2
    const r1 = rotatedDiagonal([1, 9], Math.PI / 6);
    const tr12 = r1[0] * 4 + r1[3] * 1;
    const exact2 = Math.sqrt(tr12 + 2 * Math.sqrt(9 * 4));
    expect(frechetDistance(gauss([1, 1], r1), gauss([0, 0], mat([[4, 0], [0, 1]])))).to.be.closeTo(2 + 10 + 5 - 2 * exact2, 1e-12);
  });

  it('Should be symmetric in its arguments (random 64-dimensional covariances: both full rank, then one of rank 30)', () => {
    const a = gauss(Array.from({ length: 64 }, (_, i) => Math.sin(i)), randomPsd(64, 200, 7));
    for (const [m, tol] of [
      [300, 1e-12],
      // A singular S1 has eigenvalues of ~1e-16 |S1| where it should have 0, and its square root
      // ~1e-8 |S1|^(1/2) there (sqrt of rounding), so the two orders differ by ~1e-9 relative.
      [30, 1e-8],
    ]) {
      const b = gauss(Array.from({ length: 64 }, (_, i) => Math.cos(i)), randomPsd(64, m, 8));
      const ab = frechetDistance(a, b);
      const ba = frechetDistance(b, a);
      expect(ab).to.be.above(0);
      expect(Math.abs(ab - ba), `rank ${Math.min(m, 64)}`).to.be.below(tol * ab);
    }
  });

  it('Should compute the mean and the n - 1 covariance of vectors, of all rows or the rows given', () => {
    // rows (1, 2), (3, 6), (5, 4): mean (3, 4); centred (-2, -2), (0, 2), (2, 0);
    // cov = [[4 + 0 + 4, 4 + 0 + 0], [., 4 + 4 + 0]] / 2 = [[4, 2], [2, 4]]
    const x = [1, 2, 3, 6, 5, 4];
    const m = gaussianMoments(x, 2);
    expect(Array.from(m.mean)).to.deep.equal([3, 4]);
    expect(Array.from(m.cov)).to.deep.equal([4, 2, 2, 4]);
    // rows 0 and 2: mean (3, 3), centred (-2, -1), (2, 1): cov = [[8, 4], [4, 2]] / 1
    const r = gaussianMoments(x, 2, [0, 2]);
    expect(Array.from(r.mean)).to.deep.equal([3, 3]);
    expect(Array.from(r.cov)).to.deep.equal([8, 4, 4, 2]);
  });
});

describe('Sample-quality metrics: exact messages', () => {
  it('Should refuse data sets other than MNIST and Fashion-MNIST, and other shapes', () => {
    expectThrowExact(
      () => checkSampleQualityData('eval --sample-quality', 'dsprites'),
      ConfigError,
      'eval --sample-quality: needs a model of data.use: mnist or fashion-mnist (28x28 grey images, the data its classifier is trained on); got data.use: dsprites',
    );
    expectThrowExact(
      () => checkSampleQualityData('eval.sampleQuality', 'mnist', [14, 14, 1]),
      ConfigError,
      "eval.sampleQuality: needs 28x28x1 images (the classifier's input); data set mnist has examples of shape [14, 14, 1]",
    );
    expect(() => checkSampleQualityData('eval.sampleQuality', 'fashion-mnist', [28, 28, 1])).not.to.throw();
  });

  it('Should refuse to train the classifier on the cpu backend, naming the cache file and the way out', async () => {
    const before = tf.getBackend();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vaelab-clf-cpu-'));
    await tf.setBackend('cpu');
    try {
      const recipe = { ...DEFAULT_CLASSIFIER_RECIPE, channels: [...DEFAULT_CLASSIFIER_RECIPE.channels] as [number, number] };
      const file = path.join(dir, `mnist-${recipeHash(recipe)}-cpu.ckpt`);
      expectThrowExact(
        () => loadOrTrainClassifier('mnist', { cacheDir: dir }),
        ConfigError,
        `eval --sample-quality: the mnist classifier for the cpu backend is not cached (${file}), and training it (5 epochs of a conv net over the training images) on the cpu backend's pure-JavaScript kernels is impractically slow; run with --backend wasm (or a tfjs-node backend), which trains and caches its own classifier`,
      );
      expect(fs.readdirSync(dir)).to.deep.equal([]);
    } finally {
      await tf.setBackend(before);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('Should refuse eval.sampleQuality on synthetic data before training (checkModelSelection)', () => {
    const exp = experimentFromObject(experimentObject({ data: { use: 'synthetic' }, eval: { sampleQuality: true } }), builtins());
    expectThrowExact(
      () => checkModelSelection(exp.config),
      ConfigError,
      'eval.sampleQuality: needs a model of data.use: mnist or fashion-mnist (28x28 grey images, the data its classifier is trained on); got data.use: synthetic',
    );
  });
});

/** The short recipe of these tests: 10 000 training images, 2 epochs (400 steps), a narrower network. */
const SHORT: ClassifierRecipe = { ...DEFAULT_CLASSIFIER_RECIPE, trainLimit: 10000, epochs: 2, batchSize: 50, learningRate: 2e-3, channels: [8, 16], features: 32 };

describe('Sample-quality classifier and metrics on MNIST (wasm) @slow', function () {
  this.timeout(120000);
  let mnist: Dataset;
  let test: DataSplit;
  let trained: { classifier: ImageClassifier; testAccuracy: number };
  let tmp: string;

  before(async function () {
    try {
      mnist = loadMnist({ dir: '', trainLimit: 10000, testLimit: 2000 });
    } catch (e) {
      skipBecause(this, `MNIST unavailable: ${(e as Error).message}`);
    }
    test = mnist.test;
    await selectBackend('wasm', { quiet: true });
    trained = trainClassifier(mnist.train, test, SHORT);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vaelab-sample-quality-'));
  });

  after(async () => {
    trained?.classifier.dispose();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    await tf.setBackend('cpu');
  });

  it('Should reach 90% test accuracy with the short recipe (2 epochs on 10 000 images; the first 2 000 test images)', () => {
    // measured 0.9255 on the wasm-native path (the shipped recipe: 98.92%); the bound leaves room for other paths
    expect(trained.testAccuracy).to.be.above(0.9);
    expect(accuracy(classify(trained.classifier, test.x, test.n).predictions, test.labels)).to.equal(trained.testAccuracy);
  });

  it('Should train to bit-identical weights twice with the same recipe on the same backend path', () => {
    const again = trainClassifier(mnist.train, test, SHORT);
    try {
      const a = trained.classifier.variables();
      const b = again.classifier.variables();
      expect([...b.keys()]).to.deep.equal([...a.keys()]);
      for (const [k, v] of a) {
        const x = v.dataSync() as Float32Array;
        const y = b.get(k)!.dataSync() as Float32Array;
        expect(Buffer.from(y.buffer, y.byteOffset, y.byteLength).equals(Buffer.from(x.buffer, x.byteOffset, x.byteLength)), k).to.equal(true);
      }
      expect(weightsSha256(again.classifier)).to.equal(weightsSha256(trained.classifier));
      expect(again.testAccuracy).to.equal(trained.testAccuracy);
    } finally {
      again.classifier.dispose();
    }
  });

  it('Should give FD 0 between the test images and themselves, and a large FD to noise images', () => {
    const F = SHORT.features;
    const own = classify(trained.classifier, test.x, test.n).features;
    const m = gaussianMoments(own, F);
    expect(Math.abs(frechetDistance(m, m))).to.be.below(1e-9);
    const rng = Rng.derive(0, 'test-noise');
    const noise = Float32Array.from({ length: test.n * 784 }, () => rng.uniform());
    const noiseFd = frechetDistance(gaussianMoments(classify(trained.classifier, noise, test.n).features, F), m);
    // the floor between two halves of the test images, for scale
    const halfA = gaussianMoments(own.subarray(0, 1000 * F), F);
    const halfB = gaussianMoments(own.subarray(1000 * F), F);
    const floor = frechetDistance(halfA, halfB);
    expect(noiseFd).to.be.above(50 * floor);
  });

  it('Should give an identity "model" the classifier accuracy as recon-accuracy and conditional-accuracy, sample-fd 0, and noise a large sample-fd', () => {
    const identity: ImageSources = {
      reconstruct: (batch) => Float32Array.from(batch.x.dataSync()),
      // sample i is test image i (the whole test split when samples = n)
      generate: (first, n) => test.x.slice(first * 784, (first + n) * 784),
      classOf: (i) => test.labels[i],
    };
    const opts = { samples: test.n, batchSize: 500, seed: 0 };
    const r = sampleQualityMetrics(trained.classifier, test, mnist, identity, opts);
    expect(r.metrics['recon-accuracy']).to.equal(trained.testAccuracy);
    expect(r.metrics['classifier-accuracy']).to.equal(trained.testAccuracy);
    expect(r.metrics['conditional-accuracy']).to.equal(trained.testAccuracy);
    expect(Math.abs(r.metrics['sample-fd'])).to.be.below(1e-9);
    expect(r.metrics['test-fd']).to.be.above(0);
    expect(r.halves).to.deep.equal([1000, 1000]);
    const rng = Rng.derive(1, 'test-noise');
    const noise: ImageSources = {
      reconstruct: (batch) => Float32Array.from({ length: batch.size * 784 }, () => rng.uniform()),
      generate: (_first, n) => Float32Array.from({ length: n * 784 }, () => rng.uniform()),
    };
    const q = sampleQualityMetrics(trained.classifier, test, mnist, noise, { ...opts, samples: 1000 });
    expect(q.metrics['sample-fd']).to.be.above(50 * q.metrics['test-fd']);
    expect(q.metrics['recon-accuracy']).to.be.below(0.3);
    expect(q.metrics).not.to.have.property('conditional-accuracy');
    expect(q.metrics['test-fd']).to.equal(r.metrics['test-fd']); // the same seeded halves
  });

  it('Should cache the classifier: trained on first use, read back with the same weights, trained again when its JSON does not match', () => {
    const logs: string[] = [];
    const first = loadOrTrainClassifier('mnist', { cacheDir: tmp, recipe: SHORT, log: (l) => logs.push(l) });
    const file = path.join(tmp, `mnist-${recipeHash(SHORT)}-${backendPath()}.ckpt`);
    try {
      expect(first.trained).to.equal(true);
      expect(first.file).to.equal(file);
      expect(fs.existsSync(file.replace(/\.ckpt$/, '.json'))).to.equal(true);
      // the full 10 000 test images: a few points below the 2 000 above is possible, not more
      expect(first.record.testAccuracy).to.be.above(0.9);
      expect(first.record.testExamples).to.equal(10000);
      expect(first.record.trainExamples).to.equal(10000);
      // trained on the first 10 000 images, like `trained`, so the same weights
      expect(first.record.weightsSha256).to.equal(weightsSha256(trained.classifier));
    } finally {
      first.classifier.dispose();
    }
    const second = loadOrTrainClassifier('mnist', { cacheDir: tmp, recipe: SHORT });
    try {
      expect(second.trained).to.equal(false);
      expect(weightsSha256(second.classifier)).to.equal(first.record.weightsSha256);
    } finally {
      second.classifier.dispose();
    }
    const json = file.replace(/\.ckpt$/, '.json');
    fs.writeFileSync(json, JSON.stringify({ ...JSON.parse(fs.readFileSync(json, 'utf8')), checkpointSha256: '0' }));
    const third = loadOrTrainClassifier('mnist', { cacheDir: tmp, recipe: SHORT, log: (l) => logs.push(l) });
    third.classifier.dispose();
    expect(third.trained).to.equal(true);
    expect(logs.some((l) => l.includes('do not match the recipe or each other; training again'))).to.equal(true);
  });

  it('Should evaluate a class-conditional model end to end (untrained CVAE, 1 000 samples): every metric finite, accuracies in [0, 1]', () => {
    const raw = experimentObject({
      seed: 3,
      data: { use: 'mnist', trainLimit: 1000, testLimit: 1000, binarize: 'dynamic', condition: { use: 'labels' } },
      encoder: { use: 'mlp', mlp: { hiddenSizes: [32] } },
      decoder: { use: 'mlp', mlp: { hiddenSizes: [32] } },
      latent: { use: 'gaussian', gaussian: { dim: 4 } },
    });
    const session = openSession(experimentFromObject(raw, builtins()));
    const ctx = { info: session.dataset, seed: 3, condition: session.config.data.condition as never, stream: 'eval/test', batchSize: 250, step: 0 };
    const r = evaluateSampleQuality(session.parts.model, session.dataset.test, session.dataset, ctx, {
      data: session.config.data,
      seed: 3,
      samples: 1000,
      key: 'eval.sampleQuality',
      cacheDir: tmp,
      recipe: SHORT,
    });
    expect(Object.keys(r.metrics).sort()).to.deep.equal(['classifier-accuracy', 'conditional-accuracy', 'recon-accuracy', 'sample-fd', 'test-fd']);
    for (const v of Object.values(r.metrics)) expect(Number.isFinite(v)).to.equal(true);
    for (const k of ['classifier-accuracy', 'conditional-accuracy', 'recon-accuracy']) expect(r.metrics[k]).to.be.within(0, 1);
    // dynamic binarisation: the samples are compared with the grey test images, which the
    // classifier reads better than the fixed binary draw the model is evaluated on
    expect(r.details.reference).to.equal('grey');
    expect(r.details.classifier.trainedNow).to.equal(false);
    expect(r.details.testExamples).to.equal(1000);
    expect(r.metrics['sample-fd']).to.be.above(r.metrics['test-fd']);
  });
});

describe('Sample-quality image sources of a model conditioned on visible quadrants', () => {
  it('Should complete test image i mod n for sample i: its visible pixels pasted in, the hidden ones drawn, and no classOf', function () {
    let session: ReturnType<typeof openSession>;
    try {
      session = openSession(
        experimentFromObject(
          experimentObject({
            seed: 1,
            data: { use: 'mnist', trainLimit: 100, testLimit: 3, condition: { use: 'visible-quadrants', visibleQuadrants: [0, 1] } },
            encoder: { use: 'mlp', mlp: { hiddenSizes: [16] } },
            decoder: { use: 'mlp', mlp: { hiddenSizes: [16] } },
            latent: { use: 'gaussian', gaussian: { dim: 2 } },
          }),
          builtins(),
        ),
      );
    } catch (e) {
      skipBecause(this, `MNIST unavailable: ${(e as Error).message}`);
    }
    const test = session.dataset.test;
    const ctx = { info: session.dataset, seed: 1, condition: session.config.data.condition as never, stream: 'eval/test', batchSize: 4, step: 0 };
    const sources = modelImageSources(session.parts.model, test, session.dataset, ctx);
    expect(sources.classOf).to.equal(undefined);
    const images = sources.generate(2, 4, 0); // samples 2..5: test images 2, 0, 1, 2
    for (const [j, r] of [2, 0, 1, 2].entries()) {
      const img = images.subarray(j * 784, (j + 1) * 784);
      const truth = test.x.subarray(r * 784, (r + 1) * 784);
      // rows 0-13 (quadrants 0 and 1) visible: equal to the test image; rows 14-27 the decoder's means, in (0, 1)
      expect(Array.from(img.subarray(0, 14 * 28))).to.deep.equal(Array.from(truth.subarray(0, 14 * 28)));
      expect(Array.from(img.subarray(14 * 28)).every((v) => v > 0 && v < 1)).to.equal(true);
    }
  });
});

describe('Sample-quality classifier: the shipped recipe', () => {
  it('Should hash the recipe into the cache name, whatever the order of its keys', () => {
    expect(recipeHash(DEFAULT_CLASSIFIER_RECIPE)).to.match(/^[0-9a-f]{12}$/);
    expect(recipeHash({ ...DEFAULT_CLASSIFIER_RECIPE, epochs: 6 })).not.to.equal(recipeHash(DEFAULT_CLASSIFIER_RECIPE));
    // key order does not matter
    const reordered = Object.fromEntries(Object.entries(DEFAULT_CLASSIFIER_RECIPE).reverse()) as unknown as ClassifierRecipe;
    expect(recipeHash(reordered)).to.equal(recipeHash(DEFAULT_CLASSIFIER_RECIPE));
  });
});
