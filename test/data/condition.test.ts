import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { conditionDim, conditionOf, generationCondition, visibleMask, type ConditionOptions } from '../../core/data/condition';
import { ConfigError } from '../../core/errors';
import type { Batch } from '../../core/data/types';
import { expectThrowExact } from './helpers';

const quadrants = (visibleQuadrants: number[], hiddenValue = -1): ConditionOptions => ({ use: 'visible-quadrants', visibleQuadrants, hiddenValue });
const image = { name: 'tiny', dim: 16, numClasses: 3, kind: 'image' as const, shape: [4, 4, 1] };

describe('data.condition', () => {
  it('Should mark the quadrants of a 4x4 image: 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right', () => {
    // Row-major 4x4: top-left quadrant = rows 0-1, columns 0-1 = indices 0, 1, 4, 5.
    expect(Array.from(visibleMask([4, 4, 1], [0]))).to.deep.equal([1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(Array.from(visibleMask([4, 4, 1], [1, 2]))).to.deep.equal([0, 0, 1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 1, 1, 0, 0]);
  });

  it('Should give the middle row and column of an odd side to the bottom and right quadrants, every channel alike', () => {
    // 3x3x2: the top-left quadrant is pixel (0, 0) only, both of its channels.
    expect(Array.from(visibleMask([3, 3, 2], [0]))).to.deep.equal([1, 1, ...new Array(16).fill(0)]);
    // Quadrant 3 holds rows 1-2, columns 1-2: pixels 4, 5, 7, 8.
    const m = visibleMask([3, 3, 1], [3]);
    expect(Array.from(m)).to.deep.equal([0, 0, 0, 0, 1, 1, 0, 1, 1]);
  });

  it('Should give x on visible pixels and the hidden value elsewhere, and the one-hot labels for labels', () => {
    const x = tf.tensor2d([Array.from({ length: 16 }, (_, i) => i / 16)]);
    const y = tf.tensor2d([[0, 1, 0]]);
    const b: Batch = { x: x as tf.Tensor2D, y: y as tf.Tensor2D, labels: Int32Array.of(1), indices: Int32Array.of(0), size: 1 };
    const c = conditionOf(b, quadrants([0]), [4, 4, 1])!.dataSync();
    const expected = Array.from({ length: 16 }, (_, i) => ([0, 1, 4, 5].includes(i) ? i / 16 : -1));
    Array.from(c).forEach((v, i) => expect(v).to.be.closeTo(expected[i], 1e-7));
    expect(conditionOf(b, { ...quadrants([0]), use: 'labels' }, [4, 4, 1])).to.equal(y);
    expect(conditionOf(b, { ...quadrants([0]), use: 'none' }, [4, 4, 1])).to.equal(null);
  });

  it('Should size the conditioning input from the data set and refuse what it cannot give', () => {
    expect(conditionDim(quadrants([0, 3]), image)).to.equal(16);
    expect(conditionDim({ ...quadrants([0]), use: 'labels' }, image)).to.equal(3);
    expect(conditionDim({ ...quadrants([0]), use: 'none' }, image)).to.equal(0);
    expectThrowExact(() => conditionDim({ ...quadrants([0]), use: 'labels' }, { ...image, numClasses: 0 }), ConfigError, 'data.condition.use: data set "tiny" has no labels to condition on; got "labels"');
    expectThrowExact(
      () => conditionDim(quadrants([0]), { ...image, name: 'points', kind: 'vector', shape: [1, 1, 2], dim: 2 }),
      ConfigError,
      'data.condition.use: "visible-quadrants" needs images of at least 2x2; data set "points" has examples of shape [1, 1, 2]',
    );
    expectThrowExact(() => conditionDim(quadrants([0, 4]), image), ConfigError, 'data.condition.visibleQuadrants: quadrants are 0 (top-left), 1 (top-right), 2 (bottom-left), 3 (bottom-right); got [0,4]');
    expectThrowExact(() => conditionDim(quadrants([0, 1, 2, 3]), image), ConfigError, 'data.condition.visibleQuadrants: must list 1 to 3 distinct quadrants (something visible, something to predict); got [0,1,2,3]');
    expectThrowExact(() => conditionDim(quadrants([]), image), ConfigError, 'data.condition.visibleQuadrants: must list 1 to 3 distinct quadrants (something visible, something to predict); got []');
  });

  it('Should give each row of a generated grid one class (labels) or one given example (visible-quadrants)', () => {
    // 3 classes, a grid of 2 columns and 8 images: rows 0..3 get classes 0, 1, 2, 0
    const labels = generationCondition(8, { ...quadrants([0]), use: 'labels' }, image, { x: new Float32Array(0), n: 0 }, 2)!;
    expect(tf.argMax(labels, 1).arraySync() as number[]).to.deep.equal([0, 0, 1, 1, 2, 2, 0, 0]);
    // without a grid width, image i gets class i mod 3 (the former layout)
    const flat = generationCondition(4, { ...quadrants([0]), use: 'labels' }, image, { x: new Float32Array(0), n: 0 })!;
    expect(tf.argMax(flat, 1).arraySync() as number[]).to.deep.equal([0, 1, 2, 0]);
    // two 4x4 examples with every pixel equal to 1 and 2; quadrant 0 shown, the rest -1;
    // 3 columns, 6 images: row 0 shows example 0 three times, row 1 example 1
    const split = { x: Float32Array.from([...new Array(16).fill(1), ...new Array(16).fill(2)]), n: 2 };
    const vis = generationCondition(6, quadrants([0]), image, split, 3)!.arraySync() as number[][];
    const shown = (v: number) => Array.from({ length: 16 }, (_, i) => ([0, 1, 4, 5].includes(i) ? v : -1));
    expect(vis).to.deep.equal([shown(1), shown(1), shown(1), shown(2), shown(2), shown(2)]);
    tf.dispose([labels, flat]);
  });
});
