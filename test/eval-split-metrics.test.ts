/**
 * Split-level metrics (PassOptions.metrics): statistics a plugin adds per batch, summed over the
 * evaluated split and finished once, for metrics that are not means of per-example terms (a
 * codebook's perplexity from its code counts).
 */
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import type { ModelBatch, Objective, ObjectiveContext, ObjectiveTerms } from '../core/contracts';
import { evaluateTerms } from '../core/eval/evaluate';

const vectorInfo = { name: 'points', dim: 1, numClasses: 0, kind: 'vector' as const };
const NONE = { use: 'none' as const, visibleQuadrants: [0], hiddenValue: -1 };
const ctx = { info: vectorInfo, seed: 0, condition: NONE, stream: 'test', batchSize: 2, step: 0 };

/** An objective whose "codes" are the values x (0, 1 or 2): it counts them in a histogram [3]. */
function countingObjective(seen: Array<boolean>, metricName = 'perplexity'): Objective {
  return {
    variables: () => new Map(),
    terms: (b: ModelBatch, c: ObjectiveContext): ObjectiveTerms => {
      seen.push(c.metrics !== undefined);
      const codes = tf.cast(tf.reshape(b.x, [-1]), 'int32') as tf.Tensor1D;
      c.metrics?.add(metricName, tf.sum(tf.oneHot(codes, 3), 0), (sum) => {
        const total = sum.reduce((a, v) => a + v, 0);
        let h = 0;
        for (const n of sum) if (n > 0) h -= (n / total) * Math.log(n / total);
        return Math.exp(h);
      });
      c.metrics?.add('examples-seen', tf.scalar(b.x.shape[0]), (sum, examples) => sum[0] / examples);
      return { loss: tf.reshape(b.x, [-1]) as tf.Tensor1D };
    },
  } as Objective;
}

describe('evaluation: split-level metrics', () => {
  it('Should sum a statistic over every batch of the split and report its finish beside the terms', () => {
    // codes 0, 0, 1, 2, 2, 2 in batches of 2: counts [2, 1, 3] over the split, so p = [1/3, 1/6, 1/2]
    // and perplexity = exp(-(1/3 ln 1/3 + 1/6 ln 1/6 + 1/2 ln 1/2)) = exp(1.0114) = 2.7495;
    // no batch alone has that histogram ([2, 0, 0], [0, 1, 1], [0, 0, 2])
    const split = { x: Float32Array.from([0, 0, 1, 2, 2, 2]), labels: new Int32Array(6).fill(-1), n: 6 };
    const seen: boolean[] = [];
    const out = evaluateTerms(countingObjective(seen), split, ctx);
    const h = -((1 / 3) * Math.log(1 / 3) + (1 / 6) * Math.log(1 / 6) + 0.5 * Math.log(0.5));
    expect(Object.keys(out)).to.deep.equal(['loss', 'perplexity', 'examples-seen']);
    expect(out.perplexity).to.be.closeTo(Math.exp(h), 1e-12);
    expect(out.perplexity).to.be.closeTo(2.7495, 1e-4);
    // the sum of batch sizes over the number of examples evaluated
    expect(out['examples-seen']).to.equal(1);
    // mean of the codes: 7 / 6
    expect(out.loss).to.be.closeTo(7 / 6, 1e-6);
    expect(seen).to.deep.equal([true, true, true]);
  });

  it('Should refuse a split metric named like one of the objective terms', () => {
    const split = { x: Float32Array.from([0, 1]), labels: new Int32Array(2).fill(-1), n: 2 };
    expect(() => evaluateTerms(countingObjective([], 'loss'), split, ctx)).to.throw(
      TypeError,
      'evaluateTerms: split metric "loss" has the name of one of the objective\'s terms',
    );
  });

  it('Should leave no tensor behind', () => {
    const split = { x: Float32Array.from([0, 1, 2]), labels: new Int32Array(3).fill(-1), n: 3 };
    evaluateTerms(countingObjective([]), split, ctx);
    const before = tf.memory().numTensors;
    evaluateTerms(countingObjective([]), split, ctx);
    expect(tf.memory().numTensors).to.equal(before);
  });
});
