/**
 * The M2 semi-supervised VAE (Kingma, Rezende, Mohamed & Welling 2014, "Semi-Supervised Learning
 * with Deep Generative Models", https://arxiv.org/abs/1406.5298, section 3.1.2): a classifier
 * q(y|x) owned by this objective, q(z|x,y) = the model's encoder and latent given the one-hot y as
 * conditioning input, p(x|y,z) = its decoder given y, p(y) uniform over the K classes and p(z)
 * the model's prior. Per example, with L(x,y) = -ELBO(x,y) = -E_q[log p(x|y,z)] + KL(q(z|x,y) || p(z)) + log K:
 *   labelled (label mask 1):   L(x,y) + alpha * N / N_l * (-log q(y|x))
 *   unlabelled (mask 0):       U(x) = sum_y q(y|x) (L(x,y) + log q(y|x))   (exact sum over the K labels)
 * whose mean over the training split is the paper's J^alpha / N (eq. 9) with alpha_paper = alpha * N
 * (N training examples, N_l of them labelled: DataInfo.trainSize, labelledTrainSize). Every y
 * of an unlabelled example is enumerated: one forward pass of K * B rows; in training with
 * data.labelledBatchSize, the labelled rows go through once, with their label (trainingTerms). With
 * data.labelledBatchSize, every training batch is B unlabelled rows and L labelled ones, and the
 * training loss weights them so that its mean is the same J^alpha / N (see batchWeights); the
 * reported terms and every evaluation are unweighted. Reads objective.m2.alpha,
 * .classifierHiddenSizes and .classifierActivation.
 */
import { inject, injectable } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import {
  ACTIVATIONS,
  ConfigError,
  Mlp,
  Module,
  TOKENS,
  definePlugin,
  initRng,
  pluginConfig,
  type ConfigOf,
  type DataInfo,
  type ModelBatch,
  type Objective,
  type ObjectiveContext,
  type ObjectiveTerms,
  type VaeModel,
} from '../../core';

export const m2ObjectiveSchema = {
  alpha: {
    doc: "weight of the classification loss -log q(y|x) as a fraction of N: the paper's alpha = alpha * N (0.1 in the paper); each labelled example's weight is alpha * N / N_labelled",
    format: 'non-negative-number',
    default: 0.1,
  },
  classifierHiddenSizes: { doc: 'widths of the hidden layers of the classifier q(y|x)', format: 'positive-int-list', default: [500] },
  classifierActivation: { doc: 'activation after every hidden layer of the classifier', format: ACTIVATIONS, default: 'softplus' },
} as const;

/**
 * Terms, each [B]: loss (above); elbo = -U(x), the bound on log p(x) with y summed out (every row);
 * classification = -log q(y|x) of the known label (0 where it is unknown); in evaluation error =
 * 1 where argmax q(y|x) is not the known label (0 where it is unknown).
 * Variables: the classifier `classifier/dense<i>/{kernel,bias}`, dataDim -> hidden -> K.
 */
@injectable()
export class M2Objective extends Module implements Objective {
  private readonly classes: number;
  private readonly classifier: Mlp;
  /** Weight of -log q(y|x) per labelled example: alpha * N / N_labelled. */
  readonly classWeight: number;
  /** Per-row weights of training batches with appended labelled rows (data.labelledBatchSize), else null. */
  readonly batchWeights: { labelled: number; unlabelled: number } | null = null;
  /** data.labelledBatchSize: the labelled rows appended to every training batch (0: none). */
  private readonly labelledBatch: number;
  constructor(
    @inject(pluginConfig('objective', 'm2')) cfg: ConfigOf<typeof m2ObjectiveSchema>,
    @inject(TOKENS.Model) private readonly model: VaeModel,
    @inject(TOKENS.DataInfo) data: DataInfo,
    @inject(TOKENS.Seed) seed: number,
  ) {
    super();
    if (data.numClasses === 0) {
      throw new ConfigError(`objective.use: "m2" needs class labels, and data set "${data.name}" has none; use a labelled data set (mnist, fashion-mnist, synthetic shapes)`);
    }
    if (data.condDim !== data.numClasses) {
      throw new ConfigError(
        `objective.use: "m2" needs data.condition.use "labels" (q(z|x,y) and p(x|y,z) take the one-hot label of ${data.numClasses} classes); the conditioning input has ${data.condDim} values per example`,
      );
    }
    this.classes = data.numClasses;
    const n = data.trainSize ?? 1;
    const labelled = data.labelledTrainSize ?? n;
    if (labelled === 0) throw new ConfigError(`objective.use: "m2" needs some labelled training examples; data set "${data.name}" has none in its training split`);
    this.classWeight = (cfg.alpha * n) / labelled;
    const L = data.labelledBatch ?? 0;
    this.labelledBatch = L;
    if (L > 0) {
      // B unlabelled rows and L labelled ones per training batch, averaged together by the
      // trainer: weights that make that mean (N_u/N) mean_u U + (N_l/N) mean_l [L + w CE], the
      // paper's J^alpha / N, as with labelled examples at their natural rate
      const rows = data.trainBatch?.size ?? 0;
      const B = rows - L;
      if (B < 1) throw new ConfigError(`data.labelledBatchSize: ${L} labelled rows leave no unlabelled rows in a training batch of ${rows}`);
      this.batchWeights = { labelled: ((B + L) / L) * (labelled / n), unlabelled: ((B + L) / B) * ((n - labelled) / n) };
    }
    this.classifier = this.track('classifier', new Mlp([data.dim, ...cfg.classifierHiddenSizes, data.numClasses], cfg.classifierActivation, initRng(seed, 'objective', 'm2')));
  }

  /** log q(y|x). x [B, dataDim] -> [B, K] */
  logQy(x: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => tf.logSoftmax(this.classifier.apply(x)) as tf.Tensor2D);
  }

  /**
   * L(x, y) = -ELBO(x, y) for every label y, one sample of z each (closed-form KL when the prior
   * and latent allow). x [B, dataDim] -> [B, K]
   */
  negElboPerClass(x: tf.Tensor2D, ctx: ObjectiveContext): tf.Tensor2D {
    return tf.tidy(() => {
      const b = x.shape[0];
      const k = this.classes;
      // class-major: row c * B + i is example i with label c
      const xK = tf.tile(x, [k, 1]) as tf.Tensor2D;
      const yK = tf.cast(tf.oneHot(tf.tensor1d(Array.from({ length: k * b }, (_, r) => Math.floor(r / b)), 'int32'), k), 'float32') as tf.Tensor2D;
      const pass = this.model.forward({ x: xK, cond: yK }, 1, { ...ctx, cond: yK });
      const { kl } = this.model.kl(pass.latent, yK, { ...ctx, cond: yK });
      // -log p(y) = log K under the uniform prior over labels
      const neg = tf.add(tf.sub(kl, pass.logPx), Math.log(k));
      return tf.transpose(tf.reshape(neg, [k, b])) as tf.Tensor2D;
    });
  }

  terms(batch: ModelBatch, ctx: ObjectiveContext): ObjectiveTerms {
    const labels = batch.labels;
    if (!labels) throw new ConfigError('M2Objective.terms: the batch has no labels (ModelBatch.labels); M2 needs a labelled data set');
    if (ctx.training && this.labelledBatch > 0 && batch.x.shape[0] > this.labelledBatch) {
      return this.trainingTerms(batch.x, labels, ctx);
    }
    return tf.tidy(() => {
      const logQy = this.logQy(batch.x);
      const qy = tf.exp(logQy);
      const negElbo = this.negElboPerClass(batch.x, ctx);
      // U(x) = sum_y q(y|x) (L(x,y) + log q(y|x)): the expected -ELBO minus the entropy of q(y|x)
      const unlabelled = tf.sum(tf.mul(qy, tf.add(negElbo, logQy)), 1) as tf.Tensor1D;
      const known = tf.sum(labels, 1);
      const mask = batch.labelMask ? tf.mul(batch.labelMask, known) : known;
      const labelledNegElbo = tf.sum(tf.mul(labels, negElbo), 1);
      const classification = tf.neg(tf.sum(tf.mul(labels, logQy), 1)) as tf.Tensor1D;
      const labelled = tf.add(labelledNegElbo, tf.mul(classification, this.classWeight));
      const w = ctx.training && this.batchWeights ? this.batchWeights : { labelled: 1, unlabelled: 1 };
      const loss = tf.add(tf.mul(tf.mul(mask, w.labelled), labelled), tf.mul(tf.mul(tf.sub(1, mask), w.unlabelled), unlabelled)) as tf.Tensor1D;
      const out: ObjectiveTerms = { loss, elbo: tf.neg(unlabelled) as tf.Tensor1D, classification: tf.mul(classification, mask) as tf.Tensor1D };
      if (!ctx.training) {
        const wrong = tf.cast(tf.notEqual(tf.argMax(logQy, 1), tf.argMax(labels, 1)), 'float32');
        out.error = tf.mul(wrong, mask) as tf.Tensor1D;
      }
      return out;
    });
  }

  /**
   * The training terms of a data.labelledBatchSize batch (the Batcher appends its L labelled rows
   * after the unlabelled ones), each kind computed only as its loss needs: K labels enumerated
   * for the unlabelled rows, one pass with the known label for the labelled ones
   * (L(x, y) + w (-log q(y|x))). The same loss as enumerating every row, at (B_u K + B_l) rows of
   * encoder and decoder instead of B K, and no read of the mask from the device. Logged `elbo` is
   * -U(x) on unlabelled rows and -L(x, y) on labelled ones.
   */
  private trainingTerms(x: tf.Tensor2D, labels: tf.Tensor2D, ctx: ObjectiveContext): ObjectiveTerms {
    return tf.tidy(() => {
      const rows = x.shape[0];
      const u = rows - this.labelledBatch;
      const w = this.batchWeights!;
      // unlabelled: U(x) = sum_y q(y|x) (L(x,y) + log q(y|x))
      const xu = tf.slice(x, [0, 0], [u, -1]);
      const logQyU = this.logQy(xu);
      const unlabelled = tf.sum(tf.mul(tf.exp(logQyU), tf.add(this.negElboPerClass(xu, ctx), logQyU)), 1) as tf.Tensor1D;
      // labelled: L(x, y) with the known label, one sample of z
      const xl = tf.slice(x, [u, 0], [-1, -1]);
      const yl = tf.slice(labels, [u, 0], [-1, -1]);
      const pass = this.model.forward({ x: xl, cond: yl }, 1, { ...ctx, cond: yl });
      const { kl } = this.model.kl(pass.latent, yl, { ...ctx, cond: yl });
      const labelledNegElbo = tf.add(tf.sub(kl, pass.logPx), Math.log(this.classes)) as tf.Tensor1D;
      const classification = tf.neg(tf.sum(tf.mul(yl, this.logQy(xl)), 1)) as tf.Tensor1D;
      const labelled = tf.add(labelledNegElbo, tf.mul(classification, this.classWeight));
      return {
        loss: tf.concat([tf.mul(unlabelled, w.unlabelled), tf.mul(labelled, w.labelled)]) as tf.Tensor1D,
        elbo: tf.concat([tf.neg(unlabelled), tf.neg(labelledNegElbo)]) as tf.Tensor1D,
        classification: tf.concat([tf.zerosLike(unlabelled), classification]) as tf.Tensor1D,
      };
    });
  }
}

export const m2Objective = definePlugin({
  slot: 'objective',
  name: 'm2',
  description: 'M2 semi-supervised VAE (Kingma et al. 2014): classifier q(y|x), labelled -ELBO(x,y) + classification loss, unlabelled bound summed over every label',
  schema: m2ObjectiveSchema,
  implementation: M2Objective,
});
