/**
 * What the evaluation hands the model and how it averages: labels and the label mask in the
 * model batch, terms that only some batches return, and latent diagnostics from a latent that
 * gives only diagnostic Gaussian statistics (posteriorStats), not an exact posterior.
 */
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import type { DiagGaussianParams, ModelBatch, Objective, ObjectiveTerms } from '../core/contracts';
import type { Batch } from '../core/data/types';
import { disposeModelBatch, evaluateTerms, latentStats, toModelBatch } from '../core/eval/evaluate';
import { klStdNormalPerDim } from '../core/math';
import type { VaeModel } from '../core/model';

/** A batch of 3 examples of 2 values with classes `labels` (-1 = unlabelled) out of 3. */
function batch(labels: number[]): Batch {
  const y = tf.tensor2d(labels.map((l) => [0, 1, 2].map((c) => (c === l ? 1 : 0))), [labels.length, 3]);
  return { x: tf.zeros([labels.length, 2]) as tf.Tensor2D, y: y as tf.Tensor2D, labels: Int32Array.from(labels), indices: new Int32Array(labels.length), size: labels.length };
}

const vectorInfo = { name: 'points', dim: 1, numClasses: 0, kind: 'vector' as const };
const NONE = { use: 'none' as const, visibleQuadrants: [0], hiddenValue: -1 };
const LABELS = { ...NONE, use: 'labels' as const };
const ctx = { info: vectorInfo, seed: 0, condition: NONE, stream: 'test', batchSize: 2, step: 0 };

describe('evaluation inputs and averages', () => {
  it('Should give the model one-hot labels and a mask that is 1 where the label is known', () => {
    const b = batch([0, -1, 2]);
    const mb = toModelBatch(b, NONE, [1, 1, 1]);
    expect(mb.cond).to.equal(null);
    expect(mb.labels!.arraySync()).to.deep.equal([[1, 0, 0], [0, 0, 0], [0, 0, 1]]);
    expect(Array.from(mb.labelMask!.dataSync())).to.deep.equal([1, 0, 1]);
    disposeModelBatch(mb);
    // every label known: no mask; conditioning on labels gives them as cond as well
    const all = toModelBatch(batch([1, 1, 0]), LABELS, [1, 1, 1]);
    expect(all.labelMask).to.equal(null);
    expect(all.cond!.arraySync()).to.deep.equal([[0, 1, 0], [0, 1, 0], [1, 0, 0]]);
    expect(all.labels).to.equal(all.cond);
  });

  it('Should average a term over the examples of the batches that return it', () => {
    // x = 1..5 in batches of 2: [1, 2], [3, 4], [5]; "tail" only in the last batch
    const split = { x: Float32Array.from([1, 2, 3, 4, 5]), labels: new Int32Array(5).fill(-1), n: 5 };
    const objective = {
      variables: () => new Map(),
      terms: (b: ModelBatch): ObjectiveTerms => {
        const v = tf.reshape(b.x, [-1]) as tf.Tensor1D;
        return b.x.shape[0] === 1 ? { tail: tf.mul(v, 10) as tf.Tensor1D, loss: v } : { loss: v };
      },
    } as Objective;
    // loss: mean of 1..5 = 3; tail: 10 * 5 over the 1 example that has it (not over all 5)
    expect(evaluateTerms(objective, split, ctx)).to.deep.equal({ loss: 3, tail: 50 });
  });

  it('Should take active units and KL per dimension from posteriorStats when the latent gives no exact posterior', () => {
    // encoder: h = x; posteriorStats: loc = h, logVar = 0; the latent's sample must not be used
    const model = {
      encoder: { encode: (x: tf.Tensor2D) => tf.clone(x) },
      latent: {
        dim: 2,
        priorDim: 2,
        posteriorStats: (h: tf.Tensor2D): DiagGaussianParams => ({ loc: tf.clone(h), logVar: tf.zerosLike(h) }),
        sample: () => {
          throw new Error('sample called');
        },
      },
      prior: { analyticKl: (q: DiagGaussianParams, _c: unknown, perDim: boolean) => (perDim ? klStdNormalPerDim(q.loc, q.logVar) : tf.sum(klStdNormalPerDim(q.loc, q.logVar), 1)) },
    } as unknown as VaeModel;
    const split = { x: Float32Array.from([0, 1, 2, 1]), labels: new Int32Array(2).fill(-1), n: 2 };
    const stats = latentStats(model, split, { ...ctx, info: { ...vectorInfo, dim: 2 } }, 0.01)!;
    // loc of dim 0: 0, 2 -> variance 1; dim 1: 1, 1 -> variance 0
    expect(stats.meanVariance).to.deep.equal([1, 0]);
    expect(stats.activeUnits).to.equal(1);
    // 0.5 * loc^2 per dimension (logVar 0): dim 0 mean(0, 2) = 1, dim 1 mean(0.5, 0.5) = 0.5
    expect(stats.klPerDim).to.deep.equal([1, 0.5]);
  });
});
