import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { Adam, clipByGlobalNorm } from '../core/train/adam';
import { learningRateAt, type ScheduleOptions } from '../core/train/schedule';

const base: ScheduleOptions = { use: 'none', warmupSteps: 0, stepSize: 10, gamma: 0.5, minLearningRate: 0 };

describe('learning-rate schedules', () => {
  const cases: Array<[string, Partial<ScheduleOptions>, number, number]> = [
    // [title, schedule, step, expected lr for base 1e-2, 100 steps per epoch, 1000 steps in all]
    ['none', {}, 500, 1e-2],
    ['step: x0.5 every 10 steps, at step 25', { use: 'step' }, 25, 1e-2 * 0.25],
    ['exponential: x0.5 per epoch, in epoch 3', { use: 'exponential' }, 250, 1e-2 * 0.25],
    ['cosine: halfway is the mean of base and min', { use: 'cosine', minLearningRate: 1e-3 }, 500, (1e-2 + 1e-3) / 2],
    ['cosine: the end is min', { use: 'cosine', minLearningRate: 1e-3 }, 1000, 1e-3],
    ['warm-up: step 4 of 10 gives 5/10 of the rate', { warmupSteps: 10 }, 4, 1e-2 * 0.5],
  ];
  for (const [title, s, step, lr] of cases) {
    it(`Should give ${title}`, () => {
      expect(learningRateAt(1e-2, { ...base, ...s }, step, 100, 1000)).to.be.closeTo(lr, 1e-12);
    });
  }
});

describe('Adam', () => {
  it('Should take PyTorch-rule steps: the first moves every coordinate by lr against the gradient sign', () => {
    const p = tf.variable(tf.tensor1d([1, -2, 3]));
    const adam = new Adam(new Map([['p', p]]), { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 });
    // step 1: m = 0.1 g, v = 0.001 g^2; mhat = g, vhat = g^2 => update = lr * g / (|g| + eps)
    adam.apply(new Map([['p', tf.tensor1d([0.5, -4, 0])]]), 0.1);
    const v = p.dataSync();
    expect(v[0]).to.be.closeTo(0.9, 1e-6);
    expect(v[1]).to.be.closeTo(-1.9, 1e-6);
    expect(v[2]).to.be.closeTo(3, 1e-6);
    // step 2 with the same gradient: mhat = g, vhat = g^2 again => another lr step
    adam.apply(new Map([['p', tf.tensor1d([0.5, -4, 0])]]), 0.1);
    expect(p.dataSync()[0]).to.be.closeTo(0.8, 1e-5);
    expect(adam.t).to.equal(2);
  });

  it('Should add weight decay to the gradient', () => {
    const p = tf.variable(tf.tensor1d([2]));
    const adam = new Adam(new Map([['p', p]]), { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.5 });
    // g = 0 + 0.5 * 2 = 1 > 0, so the first step moves p down by lr
    adam.apply(new Map([['p', tf.tensor1d([0])]]), 0.01);
    expect(p.dataSync()[0]).to.be.closeTo(1.99, 1e-6);
  });
});

describe('gradient clipping', () => {
  it('Should scale gradients to the global norm bound and leave smaller ones unchanged', () => {
    // global norm of {a: [3], b: [4]} is 5
    const grads = new Map([
      ['a', tf.tensor1d([3])],
      ['b', tf.tensor1d([4])],
    ]);
    const clipped = clipByGlobalNorm(grads, 1);
    expect(clipped.norm.dataSync()[0]).to.be.closeTo(5, 1e-6);
    expect(clipped.grads.get('a')!.dataSync()[0]).to.be.closeTo(0.6, 1e-6);
    expect(clipped.grads.get('b')!.dataSync()[0]).to.be.closeTo(0.8, 1e-6);
    expect(clipByGlobalNorm(grads, 10).grads.get('b')!.dataSync()[0]).to.be.closeTo(4, 1e-6);
    expect(clipByGlobalNorm(grads, 0).grads.get('a')!.dataSync()[0]).to.be.closeTo(3, 1e-6);
  });
});
