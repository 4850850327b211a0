/**
 * Sample quality offline, for models of 28x28 grey images (MNIST, Fashion-MNIST): a Fréchet
 * distance on the penultimate features of a small classifier trained on the data set
 * (core/eval/classifier.ts), and that classifier's accuracy on what the model makes. Not the
 * Inception FID (Heusel et al. 2017): the features are another network's, so the numbers are
 * comparable only with numbers from the same classifier (recipe, data set, backend path), never
 * with published FIDs. See docs/evaluation.md.
 *
 * The reference images: samples are means E[x | z], so they are compared with the test images
 * whose kind those means estimate: the binary images when data.binarize is static (the model
 * fits binary data), the grey levels otherwise (data.binarize none, and dynamic, whose
 * Bernoulli(x) draws have the grey image x as their mean; the fixed binary draw of the test split
 * the other metrics of a dynamically binarised run score is not used for the FD).
 *
 * Metrics (keys without the split prefix):
 * - sample-fd: FD between the features of `samples` images generated from the prior (means
 *   E[x | z], z ~ p(z | y)) and those of every reference test image.
 * - test-fd: FD between two halves of the reference test images (a seeded random split, the
 *   same for every run): the floor a model whose samples were test images would get with half as
 *   many images on each side. FD has a positive bias that shrinks as the number of images grows,
 *   so sample-fd with `samples` = the test size against the whole test split has a smaller bias
 *   than this floor; the floor is a scale, not a bound.
 * - recon-accuracy: the classifier's accuracy on the model's reconstructions (posterior mode,
 *   decoded mean) of the test images it is evaluated on (the fixed binary draw for dynamic
 *   binarisation), against their labels.
 * - classifier-accuracy: its accuracy on those test images themselves: recon-accuracy's ceiling
 *   (a model that reconstructs exactly gets it).
 * - conditional-accuracy (models conditioned on labels, data.condition.use: labels): its
 *   accuracy on the samples against the class each was drawn for. Sample i is drawn for the
 *   label of test image i mod n, so the samples have the test split's class frequencies.
 *
 * Conditioning: with labels, samples are drawn given those classes; with visible quadrants,
 * sample i completes test image i mod n (its visible pixels pasted in, the rest drawn), so
 * sample-fd then scores completions. Reconstructions get each test image's own conditioning input.
 */
import * as tf from '@tensorflow/tfjs-core';
import { visibleMask, type ConditionOptions } from '../data/condition';
import { Batcher } from '../data/batcher';
import { loadDataset } from '../data';
import type { Batch, DataOptions, DataSplit, DatasetInfo } from '../data/types';
import { ConfigError } from '../errors';
import type { VaeModel } from '../model';
import { Rng } from '../rng';
import { CLASSIFIER_DATA_SETS, CLASSIFIER_SIDE, accuracy, classify, loadOrTrainClassifier, type ClassifierDataSet, type ClassifierRecipe, type ImageClassifier } from './classifier';
import { disposeBatch, disposeModelBatch, toModelBatch, type EvalContext } from './evaluate';
import { frechetDistance, gaussianMoments } from './frechet';

/** Seed of the split of the test set into the two halves of test-fd (fixed, so every run of a data set gets the same floor). */
export const TEST_HALVES_SEED = 0;

/**
 * Images per classifier batch, whatever eval.batchSize is: on the native pack a row's features
 * depend on the batch it is computed in (the GEMM's blocking changes the order of its sums), so
 * a fixed batch keeps test-fd and the test features equal, bit for bit, across runs.
 */
export const CLASSIFIER_BATCH = 500;

/**
 * Throws a ConfigError unless sample quality can be measured on this data: data.use mnist or
 * fashion-mnist, and, when the example shape is known, 28x28x1. `key` names the setting that
 * asked for it (eval.sampleQuality, eval --sample-quality).
 */
export function checkSampleQualityData(key: string, dataUse: string, shape?: readonly number[]): asserts dataUse is ClassifierDataSet {
  const allowed = CLASSIFIER_DATA_SETS as readonly string[];
  if (!allowed.includes(dataUse)) {
    throw new ConfigError(
      `${key}: needs a model of data.use: mnist or fashion-mnist (28x28 grey images, the data its classifier is trained on); got data.use: ${dataUse}`,
    );
  }
  if (shape && !(shape[0] === CLASSIFIER_SIDE && shape[1] === CLASSIFIER_SIDE && shape[2] === 1)) {
    throw new ConfigError(`${key}: needs 28x28x1 images (the classifier's input); data set ${dataUse} has examples of shape [${shape.join(', ')}]`);
  }
}

/** The images a model makes, as the metrics ask for them. All images are [n * 784] means in [0, 1]. */
export interface ImageSources {
  /** Reconstructions of a batch of test images; `index` is the batch's position (for its random stream). */
  reconstruct(batch: Batch, index: number): Float32Array;
  /** Generated images first .. first + n - 1; `index` is the call's position (for its random stream). */
  generate(first: number, n: number, index: number): Float32Array;
  /** The class generated image i was drawn for, when the model is conditioned on labels; absent otherwise. */
  classOf?(i: number): number;
}

/** Settings of `sampleQualityMetrics`. */
export interface SampleQualityOptions {
  /** Images generated for sample-fd (and conditional-accuracy). */
  samples: number;
  /** Images per batch of the model (the classifier takes CLASSIFIER_BATCH). */
  batchSize: number;
  /** Seed of the batcher (unused by its unshuffled, unbinarised batches; kept for its signature). */
  seed: number;
}

/** The metrics and how they were made. */
export interface SampleQualityResult {
  /** sample-fd, test-fd, recon-accuracy, classifier-accuracy and, with classOf, conditional-accuracy. */
  metrics: Record<string, number>;
  samples: number;
  testExamples: number;
  referenceExamples: number;
  /** Sizes of the two halves of test-fd. */
  halves: [number, number];
}

/**
 * The sample-quality metrics of `sources`, with `classifier`'s features and predictions:
 * reconstructions of `test` ([n, 784], labels 0-9), samples against `reference` (the test
 * images the samples are compared with; `test` itself when omitted).
 */
export function sampleQualityMetrics(
  classifier: ImageClassifier,
  test: DataSplit,
  info: DatasetInfo,
  sources: ImageSources,
  opts: SampleQualityOptions,
  reference: DataSplit = test,
): SampleQualityResult {
  const F = classifier.recipe.features;
  const own = classify(classifier, test.x, test.n, CLASSIFIER_BATCH);
  const ref = reference === test ? own : classify(classifier, reference.x, reference.n, CLASSIFIER_BATCH);
  const refMoments = gaussianMoments(ref.features, F);
  const perm = Rng.derive(TEST_HALVES_SEED, 'sample-quality/test-halves').permutation(reference.n);
  const half = Math.floor(reference.n / 2);
  const a = perm.subarray(0, half);
  const b = perm.subarray(half);
  const testFd = frechetDistance(gaussianMoments(ref.features, F, a), gaussianMoments(ref.features, F, b));

  // Reconstructions, batch by batch (only the predictions are kept).
  const recon = new Int32Array(test.n);
  const batcher = new Batcher(test, info, { batchSize: opts.batchSize, shuffle: false, seed: opts.seed, dynamicBinarize: false, dropLast: false });
  let row = 0;
  let bi = 0;
  for (const batch of batcher.epoch(0)) {
    const images = sources.reconstruct(batch, bi++);
    recon.set(classify(classifier, images, batch.size, CLASSIFIER_BATCH).predictions, row);
    row += batch.size;
    disposeBatch(batch);
  }

  // Samples: features for the FD, predictions for the conditional accuracy.
  const N = opts.samples;
  const feats = new Float32Array(N * F);
  const predictions = new Int32Array(N);
  for (let first = 0, gi = 0; first < N; first += opts.batchSize, gi++) {
    const m = Math.min(opts.batchSize, N - first);
    const out = classify(classifier, sources.generate(first, m, gi), m, CLASSIFIER_BATCH);
    feats.set(out.features, first * F);
    predictions.set(out.predictions, first);
  }
  const metrics: Record<string, number> = {
    'sample-fd': frechetDistance(gaussianMoments(feats, F), refMoments),
    'test-fd': testFd,
    'recon-accuracy': accuracy(recon, test.labels),
    'classifier-accuracy': accuracy(own.predictions, test.labels),
  };
  if (sources.classOf) metrics['conditional-accuracy'] = accuracy(predictions, Int32Array.from({ length: N }, (_, i) => sources.classOf!(i)));
  return { metrics, samples: N, testExamples: test.n, referenceExamples: reference.n, halves: [a.length, b.length] };
}

/**
 * What a trained model makes, for `sampleQualityMetrics`: posterior-mode reconstructions and
 * samples from the prior (means E[x | z]), with the conditioning inputs described in the module
 * comment. Random draws come from Rng.derive(ctx.seed, `${ctx.stream}/sample-quality/...`, index).
 */
export function modelImageSources(model: VaeModel, test: DataSplit, info: DatasetInfo & { shape: readonly number[] }, ctx: EvalContext): ImageSources {
  const cond: ConditionOptions = ctx.condition;
  const D = info.dim;
  const K = info.numClasses;
  // sample i is drawn for test image i mod n: its label, or its visible part
  const classOf = (i: number) => {
    const l = test.labels[i % test.n];
    return l >= 0 ? l : i % K;
  };
  return {
    reconstruct(batch, index) {
      const mb = toModelBatch(batch, cond, info.shape);
      const out = model.reconstruct(mb, { training: false, rng: Rng.derive(ctx.seed, `${ctx.stream}/sample-quality/reconstruct`, index) });
      disposeModelBatch(mb);
      const v = out.dataSync() as Float32Array;
      out.dispose();
      return v;
    },
    generate(first, n, index) {
      let y: tf.Tensor2D | null = null;
      let given: Float32Array | null = null;
      let mask: Float32Array | null = null;
      if (cond.use === 'labels') {
        y = tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(Int32Array.from({ length: n }, (_, j) => classOf(first + j)), 'int32'), K), 'float32') as tf.Tensor2D);
      } else if (cond.use === 'visible-quadrants') {
        mask = visibleMask(info.shape, cond.visibleQuadrants);
        given = new Float32Array(n * D);
        for (let j = 0; j < n; j++) {
          const r = (first + j) % test.n;
          given.set(test.x.subarray(r * D, (r + 1) * D), j * D);
        }
        const hidden = Float32Array.from(given, (v, k) => (mask![k % D] ? v : cond.hiddenValue));
        y = tf.tensor2d(hidden, [n, D]);
      }
      const out = model.generate(n, y, { training: false, rng: Rng.derive(ctx.seed, `${ctx.stream}/sample-quality/generate`, index) });
      y?.dispose();
      const v = Float32Array.from(out.dataSync() as Float32Array);
      out.dispose();
      if (given && mask) for (let k = 0; k < v.length; k++) if (mask[k % D]) v[k] = given[k];
      return v;
    },
    ...(cond.use === 'labels' ? { classOf } : {}),
  };
}

/** Which test images the samples of a model are compared with (see the module comment). */
export type ReferenceKind = 'grey' | 'binary';

/**
 * The reference test images of a model (module comment): `test` (the model's test split) when
 * data.binarize is static or none; with dynamic binarisation, the grey test images its fixed
 * binary draw was made from (loadDataset's cached split, before core/session.ts binarised it).
 */
export function referenceTestSplit(data: DataOptions, seed: number, test: DataSplit): { split: DataSplit; kind: ReferenceKind } {
  if (data.binarize === 'static') return { split: test, kind: 'binary' };
  if (data.binarize === 'none') return { split: test, kind: 'grey' };
  return { split: loadDataset({ ...data, synthetic: { ...data.synthetic } }, seed).test, kind: 'grey' };
}

/** Settings of `evaluateSampleQuality`. */
export interface EvaluateSampleQualityOptions {
  /** The model's data.* settings (data.use, data.dir, data.binarize, ...). */
  data: DataOptions;
  /** The model's seed (its data set's validation split and binarisation depend on it). */
  seed: number;
  /** Images generated for sample-fd. */
  samples: number;
  /** The setting that asked for the metrics, for errors (eval.sampleQuality, eval --sample-quality). */
  key: string;
  log?: (line: string) => void;
  /** Classifier cache folder (default: classifierCacheDir()). */
  cacheDir?: string;
  recipe?: ClassifierRecipe;
}

/** Where the metrics' classifier came from, for eval.json and the summary. */
export interface SampleQualityDetails {
  samples: number;
  testExamples: number;
  /** The test images samples were compared with: grey levels, or binary (data.binarize static). */
  reference: ReferenceKind;
  halves: [number, number];
  classifier: {
    file: string;
    dataset: ClassifierDataSet;
    recipeHash: string;
    backendPath: string;
    /** Its accuracy on the data set's grey-level test images, measured when it was trained. */
    testAccuracy: number;
    weightsSha256: string;
    trainedNow: boolean;
  };
  seconds: number;
}

/**
 * The sample-quality metrics of a trained model on the test split of its data set: gets the
 * data set's classifier (cached, or trained on first use), then `sampleQualityMetrics` with
 * `modelImageSources`. Throws a ConfigError for data that is not MNIST or Fashion-MNIST.
 */
export function evaluateSampleQuality(
  model: VaeModel,
  test: DataSplit,
  info: DatasetInfo & { shape: readonly number[] },
  ctx: EvalContext,
  opts: EvaluateSampleQualityOptions,
): { metrics: Record<string, number>; details: SampleQualityDetails } {
  const dataUse = opts.data.use;
  checkSampleQualityData(opts.key, dataUse, info.shape);
  const t0 = Date.now();
  const reference = referenceTestSplit(opts.data, opts.seed, test);
  const c = loadOrTrainClassifier(dataUse, { dataDir: opts.data.dir, cacheDir: opts.cacheDir, recipe: opts.recipe, log: opts.log });
  try {
    const sources = modelImageSources(model, test, info, ctx);
    const r = sampleQualityMetrics(c.classifier, test, info, sources, { samples: opts.samples, batchSize: ctx.batchSize, seed: ctx.seed }, reference.split);
    return {
      metrics: r.metrics,
      details: {
        samples: r.samples,
        testExamples: r.testExamples,
        reference: reference.kind,
        halves: r.halves,
        classifier: {
          file: c.file,
          dataset: c.record.dataset,
          recipeHash: c.record.recipeHash,
          backendPath: c.record.backendPath,
          testAccuracy: c.record.testAccuracy,
          weightsSha256: c.record.weightsSha256,
          trainedNow: c.trained,
        },
        seconds: (Date.now() - t0) / 1000,
      },
    };
  } finally {
    c.classifier.dispose();
  }
}
