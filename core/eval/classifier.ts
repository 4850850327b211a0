/**
 * The small image classifier behind the offline sample-quality metrics (core/eval/sample-quality.ts):
 * a convolutional network for 28x28 grey images (MNIST, Fashion-MNIST) whose penultimate layer
 * gives the features of the Fréchet distance and whose predictions give the accuracies. Not
 * Inception: numbers made with it are comparable only with numbers made with the same recipe on
 * the same data set (docs/evaluation.md).
 *
 * Architecture (recipe.channels = [c1, c2], recipe.features = F):
 *   x [N, 784] -> [N, 28, 28, 1]
 *   conv 5x5 stride 2 'same', 1 -> c1, ReLU        [N, 14, 14, c1]
 *   conv 5x5 stride 2 'same', c1 -> c2, ReLU       [N, 7, 7, c2]
 *   dense 49 c2 -> F, ReLU                         [N, F]   the features
 *   dense F -> 10                                  [N, 10]  the logits
 *
 * Training is a pure function of (recipe, data, backend path): weights from
 * Rng.derive(recipe.seed, 'classifier/init'), batch order of epoch e from the Batcher's
 * (recipe.seed, 'classifier-order', e) stream, Adam (core/train/adam.ts) on the mean softmax
 * cross-entropy, a fixed number of epochs, no augmentation, no dropout, no early stopping. The
 * same recipe on the same backend path gives the same weights bit for bit; another path (cpu,
 * wasm, wasm with the native pack) sums in another order and gives other weights, so the cache
 * keeps one file per path.
 *
 * It is trained on grey levels (the data set as shipped, never binarised): a model's samples
 * and reconstructions are given to it as means E[x | z] (Bernoulli means are grey levels), and
 * a model trained on dynamically binarised images models Bernoulli(x), whose mean is the grey
 * image.
 *
 * Cache: `<cacheDir>/<dataset>-<recipe hash>-<backend path>.ckpt` (core/train/checkpoint.ts's
 * format, tensors under model/) and a `.json` beside it with the recipe, the test accuracy on the
 * grey-level test split and the checkpoint's SHA-256; both written atomically, the checkpoint
 * first. A pair that does not match (a missing or different JSON, a damaged checkpoint) is
 * trained again. The cache directory is $VAELAB_CACHE/classifiers, else
 * $XDG_CACHE_HOME/vaelab/classifiers, else ~/.cache/vaelab/classifiers.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { installedNativeKernels } from '../backend/native';
import { Batcher } from '../data/batcher';
import { loadFashionMnist } from '../data/fashion-mnist';
import { loadMnist } from '../data/mnist';
import type { DataSplit, Dataset } from '../data/types';
import { ConfigError, TrainingError } from '../errors';
import '../gradients';
import { Conv2d, Dense, Module } from '../nn';
import { Rng } from '../rng';
import { Adam } from '../train/adam';
import { loadCheckpoint, restoreVariables, saveCheckpoint, type CheckpointMeta } from '../train/checkpoint';
import { writeJsonAtomic } from '../tracking/files';

/** The data sets a classifier is made for: 28x28x1 grey images with 10 classes. */
export const CLASSIFIER_DATA_SETS = ['mnist', 'fashion-mnist'] as const;
export type ClassifierDataSet = (typeof CLASSIFIER_DATA_SETS)[number];

/** Image side and classes the classifier takes. */
export const CLASSIFIER_SIDE = 28;
export const CLASSIFIER_CLASSES = 10;

/** Everything that decides a classifier's weights besides the data and the backend path. */
export interface ClassifierRecipe {
  /** Bumped whenever the architecture or the training code changes, so that older cached weights are not taken. */
  version: number;
  seed: number;
  epochs: number;
  batchSize: number;
  learningRate: number;
  /** Train on the first N training images (0 = all 60 000). */
  trainLimit: number;
  /** Output channels of the two convolutions. */
  channels: [number, number];
  /** Width of the penultimate layer: the dimension of the Fréchet distance's features. */
  features: number;
}

/**
 * The recipe of the shipped metrics: 5 epochs of Adam at 1e-3 in batches of 128 over all 60 000
 * training images, convolutions of 32 and 64 channels, 128 features.
 */
export const DEFAULT_CLASSIFIER_RECIPE: Readonly<ClassifierRecipe> = Object.freeze({
  version: 1,
  seed: 0,
  epochs: 5,
  batchSize: 128,
  learningRate: 1e-3,
  trainLimit: 0,
  channels: [32, 64] as [number, number],
  features: 128,
});

/** A conv net for [N, 784] grey images (see the module comment for its layers). */
export class ImageClassifier extends Module {
  readonly conv1: Conv2d;
  readonly conv2: Conv2d;
  readonly hidden: Dense;
  readonly out: Dense;

  constructor(
    readonly recipe: ClassifierRecipe,
    rng: Rng,
  ) {
    super();
    const [c1, c2] = recipe.channels;
    this.conv1 = this.track('conv1', new Conv2d(1, c1, 5, 2, rng));
    this.conv2 = this.track('conv2', new Conv2d(c1, c2, 5, 2, rng));
    this.hidden = this.track('hidden', new Dense(7 * 7 * c2, recipe.features, rng));
    this.out = this.track('out', new Dense(recipe.features, CLASSIFIER_CLASSES, rng));
  }

  /** The penultimate layer's ReLU outputs. Shapes: x [N, 784] -> [N, features]. */
  features(x: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => {
      const n = x.shape[0];
      const h1 = this.conv1.apply(tf.reshape(x, [n, CLASSIFIER_SIDE, CLASSIFIER_SIDE, 1]) as tf.Tensor4D, 'relu');
      const h2 = this.conv2.apply(h1, 'relu');
      return this.hidden.apply(tf.reshape(h2, [n, -1]) as tf.Tensor2D, 'relu');
    });
  }

  /** Class logits. Shapes: x [N, 784] -> [N, 10]. */
  logits(x: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => this.out.apply(this.features(x)));
  }
}

/** The name of the backend path in use: cpu, wasm, wasm-native (wasm with the native OpenBLAS pack) or tensorflow. */
export function backendPath(): string {
  const b = tf.getBackend();
  if (b === 'wasm' && installedNativeKernels().length > 0) return 'wasm-native';
  return b;
}

/** The first 12 hex digits of the SHA-256 of the recipe (keys sorted). */
export function recipeHash(recipe: ClassifierRecipe): string {
  const keys = Object.keys(recipe).sort() as Array<keyof ClassifierRecipe>;
  const text = JSON.stringify(keys.map((k) => [k, recipe[k]]));
  return crypto.createHash('sha256').update(text).digest('hex').slice(0, 12);
}

/** Where classifiers are cached: $VAELAB_CACHE/classifiers, $XDG_CACHE_HOME/vaelab/classifiers or ~/.cache/vaelab/classifiers. */
export function classifierCacheDir(): string {
  if (process.env.VAELAB_CACHE) return path.join(process.env.VAELAB_CACHE, 'classifiers');
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'vaelab', 'classifiers');
}

/** Predicted class and features of images, in batches. */
export interface ClassifierOutputs {
  /** Shape: [n, features]. */
  features: Float32Array;
  /** argmax of the logits. Shape: [n]. */
  predictions: Int32Array;
}

/** Features and predicted classes of n images [n * 784], `batchSize` at a time. */
export function classify(classifier: ImageClassifier, x: Float32Array, n: number, batchSize = 500): ClassifierOutputs {
  const dim = CLASSIFIER_SIDE * CLASSIFIER_SIDE;
  if (x.length !== n * dim) throw new RangeError(`classify: x must hold n x 784 = ${n * dim} values; got ${x.length}`);
  const F = classifier.recipe.features;
  const features = new Float32Array(n * F);
  const predictions = new Int32Array(n);
  for (let i = 0; i < n; i += batchSize) {
    const m = Math.min(batchSize, n - i);
    const [f, p] = tf.tidy(() => {
      const h = classifier.features(tf.tensor2d(x.subarray(i * dim, (i + m) * dim), [m, dim]));
      return [h, tf.argMax(classifier.out.apply(h), 1)];
    });
    features.set(f.dataSync() as Float32Array, i * F);
    predictions.set(p.dataSync() as Int32Array, i);
    tf.dispose([f, p]);
  }
  return { features, predictions };
}

/** The fraction of labelled examples (label >= 0) whose prediction equals the label; NaN without any. */
export function accuracy(predictions: Int32Array, labels: ArrayLike<number>): number {
  let right = 0;
  let total = 0;
  for (let i = 0; i < predictions.length; i++) {
    if (labels[i] < 0) continue;
    total++;
    if (predictions[i] === labels[i]) right++;
  }
  return total > 0 ? right / total : NaN;
}

/** Mean softmax cross-entropy of the logits against one-hot labels. Shapes: logits, y [B, 10] -> scalar. */
function crossEntropy(logits: tf.Tensor2D, y: tf.Tensor2D): tf.Scalar {
  return tf.neg(tf.mean(tf.sum(tf.mul(y, tf.logSoftmax(logits)), 1))) as tf.Scalar;
}

/** A trained classifier and how it did. */
export interface TrainedClassifier {
  classifier: ImageClassifier;
  /** Accuracy on the grey-level test split it was given. */
  testAccuracy: number;
  testExamples: number;
  trainExamples: number;
  steps: number;
  seconds: number;
}

/**
 * Trains a classifier with `recipe` on `train` (its first recipe.trainLimit images) and measures
 * it on `test`; both grey levels [n, 784] with labels 0-9. A pure function of its arguments and
 * the backend path (see the module comment).
 */
export function trainClassifier(train: DataSplit, test: DataSplit, recipe: ClassifierRecipe, log: (line: string) => void = () => {}): TrainedClassifier {
  const t0 = Date.now();
  const dim = CLASSIFIER_SIDE * CLASSIFIER_SIDE;
  const n = recipe.trainLimit > 0 ? Math.min(recipe.trainLimit, train.n) : train.n;
  const split: DataSplit = { x: train.x.subarray(0, n * dim), labels: train.labels.subarray(0, n), n };
  const classifier = new ImageClassifier(recipe, Rng.derive(recipe.seed, 'classifier/init'));
  const vars = classifier.variables();
  const list = [...vars.values()];
  const keyOf = new Map([...vars].map(([k, v]) => [v.name, k]));
  const adam = new Adam(vars, { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 });
  const info = { name: 'classifier', dim, numClasses: CLASSIFIER_CLASSES, kind: 'image' as const };
  const batcher = new Batcher(split, info, { batchSize: recipe.batchSize, shuffle: true, seed: recipe.seed, dynamicBinarize: false, dropLast: false, stream: 'classifier-order' });
  let steps = 0;
  try {
    for (let epoch = 0; epoch < recipe.epochs; epoch++) {
      const te = Date.now();
      let lossSum: tf.Tensor = tf.scalar(0);
      let batches = 0;
      for (const b of batcher.epoch(epoch)) {
        const { value, grads } = tf.variableGrads(() => crossEntropy(classifier.logits(b.x), b.y!), list);
        const byKey = new Map<string, tf.Tensor>();
        for (const [name, g] of Object.entries(grads)) byKey.set(keyOf.get(name)!, g);
        adam.apply(byKey, recipe.learningRate);
        const next = tf.add(lossSum, value);
        tf.dispose([lossSum, value, ...Object.values(grads), b.x, b.y!]);
        lossSum = next;
        batches++;
        steps++;
      }
      const meanLoss = lossSum.dataSync()[0] / Math.max(1, batches);
      lossSum.dispose();
      if (!Number.isFinite(meanLoss)) throw new TrainingError(`trainClassifier: the loss of epoch ${epoch + 1} is ${meanLoss}; recipe ${JSON.stringify(recipe)}`);
      log(`classifier epoch ${epoch + 1}/${recipe.epochs}: mean cross-entropy ${meanLoss.toFixed(4)} (${((Date.now() - te) / 1000).toFixed(1)} s)`);
    }
  } catch (e) {
    classifier.dispose();
    throw e;
  } finally {
    adam.dispose();
  }
  const testAccuracy = accuracy(classify(classifier, test.x, test.n).predictions, test.labels);
  return { classifier, testAccuracy, testExamples: test.n, trainExamples: n, steps, seconds: (Date.now() - t0) / 1000 };
}

/** What the JSON beside a cached classifier holds. */
export interface ClassifierRecord {
  dataset: ClassifierDataSet;
  recipe: ClassifierRecipe;
  recipeHash: string;
  backendPath: string;
  /** Accuracy on the data set's 10 000 grey-level test images. */
  testAccuracy: number;
  testExamples: number;
  trainExamples: number;
  steps: number;
  trainSeconds: number;
  createdAt: string;
  /** SHA-256 of the checkpoint file, so that a JSON is never paired with another checkpoint. */
  checkpointSha256: string;
  /** SHA-256 of the weights alone (weightsSha256): equal for two classifiers with equal weights, whenever and wherever trained. */
  weightsSha256: string;
}

/** A classifier ready for the metrics, with where it came from. */
export interface CachedClassifier {
  classifier: ImageClassifier;
  record: ClassifierRecord;
  /** The checkpoint file. */
  file: string;
  /** True when it was trained by this call (nothing usable was cached). */
  trained: boolean;
}

/** Options of `loadOrTrainClassifier`. */
export interface ClassifierCacheOptions {
  /** Folder of the data set's IDX files ('' = its default location, as data.dir). */
  dataDir?: string;
  /** Cache folder (default classifierCacheDir()). */
  cacheDir?: string;
  recipe?: ClassifierRecipe;
  log?: (line: string) => void;
}

function loadData(dataset: ClassifierDataSet, dir: string): Dataset {
  const opts = { dir, trainLimit: 0, testLimit: 0 };
  return dataset === 'mnist' ? loadMnist(opts) : loadFashionMnist(opts);
}

const sha256 = (buf: Buffer) => crypto.createHash('sha256').update(buf).digest('hex');

/**
 * SHA-256 of a classifier's weights: each variable's key and float32 bytes, keys sorted. Unlike
 * the checkpoint's hash it leaves out the header (creation time, training seconds), so it
 * tells whether two classifiers are the same.
 */
export function weightsSha256(classifier: ImageClassifier): string {
  const h = crypto.createHash('sha256');
  const vars = classifier.variables();
  for (const key of [...vars.keys()].sort()) {
    const data = vars.get(key)!.dataSync() as Float32Array;
    h.update(key).update(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  }
  return h.digest('hex');
}

/** The cached classifier of `file` when it and its JSON match `recipe` and this backend path; null otherwise. */
function readCached(file: string, recipe: ClassifierRecipe, log: (line: string) => void): CachedClassifier | null {
  const json = file.replace(/\.ckpt$/, '.json');
  if (!fs.existsSync(file) || !fs.existsSync(json)) return null;
  let record: ClassifierRecord;
  try {
    record = JSON.parse(fs.readFileSync(json, 'utf8')) as ClassifierRecord;
  } catch {
    log(`classifier cache: ${json} is not JSON; training again`);
    return null;
  }
  if (record.recipeHash !== recipeHash(recipe) || record.checkpointSha256 !== sha256(fs.readFileSync(file))) {
    log(`classifier cache: ${path.basename(file)} and its JSON do not match the recipe or each other; training again`);
    return null;
  }
  const classifier = new ImageClassifier(recipe, Rng.derive(recipe.seed, 'classifier/init'));
  try {
    restoreVariables(loadCheckpoint(file), 'model/', classifier.variables(), file);
  } catch (e) {
    classifier.dispose();
    log(`classifier cache: ${(e as Error).message}; training again`);
    return null;
  }
  return { classifier, record, file, trained: false };
}

/**
 * The classifier of `dataset` for `recipe` on the current backend path: read from the cache,
 * or trained on the data set's 60 000 grey-level training images (data.dir's files when
 * `dataDir` is set) and written to the cache first. The caller disposes `classifier`.
 */
export function loadOrTrainClassifier(dataset: ClassifierDataSet, opts: ClassifierCacheOptions = {}): CachedClassifier {
  const recipe = opts.recipe ?? { ...DEFAULT_CLASSIFIER_RECIPE, channels: [...DEFAULT_CLASSIFIER_RECIPE.channels] as [number, number] };
  const log = opts.log ?? (() => {});
  const dir = opts.cacheDir ?? classifierCacheDir();
  const bpath = backendPath();
  const file = path.join(dir, `${dataset}-${recipeHash(recipe)}-${bpath}.ckpt`);
  const cached = readCached(file, recipe, log);
  if (cached) return cached;
  if (bpath === 'cpu') {
    throw new ConfigError(
      `eval --sample-quality: the ${dataset} classifier for the cpu backend is not cached (${file}), and training it ` +
        `(${recipe.epochs} epochs of a conv net over the training images) on the cpu backend's pure-JavaScript kernels is impractically slow; ` +
        'run with --backend wasm (or a tfjs-node backend), which trains and caches its own classifier',
    );
  }
  log(`training the ${dataset} classifier of the sample-quality metrics (recipe ${recipeHash(recipe)}, ${recipe.epochs} epochs, backend path ${bpath}); cached as ${file}`);
  const data = loadData(dataset, opts.dataDir ?? '');
  const t = trainClassifier(data.train, data.test, recipe, log);
  const meta: CheckpointMeta = {
    version: 1,
    step: t.steps,
    epoch: recipe.epochs,
    batchInEpoch: 0,
    optimizerT: t.steps,
    best: { value: null, epoch: null, evalsWithoutImprovement: 0 },
    epochSums: {},
    epochCount: 0,
    trainSeconds: t.seconds,
    seed: recipe.seed,
    reason: 'final',
    createdAt: new Date().toISOString(),
  };
  const tensors = new Map<string, tf.Tensor>([...t.classifier.variables()].map(([k, v]) => [`model/${k}`, v]));
  saveCheckpoint(file, meta, tensors);
  const record: ClassifierRecord = {
    dataset,
    recipe,
    recipeHash: recipeHash(recipe),
    backendPath: bpath,
    testAccuracy: t.testAccuracy,
    testExamples: t.testExamples,
    trainExamples: t.trainExamples,
    steps: t.steps,
    trainSeconds: t.seconds,
    createdAt: meta.createdAt,
    checkpointSha256: sha256(fs.readFileSync(file)),
    weightsSha256: weightsSha256(t.classifier),
  };
  writeJsonAtomic(file.replace(/\.ckpt$/, '.json'), record);
  log(`classifier trained in ${t.seconds.toFixed(0)} s: test accuracy ${(100 * t.testAccuracy).toFixed(2)}% on ${t.testExamples} grey-level test images`);
  return { classifier: t.classifier, record, file, trained: true };
}
