/**
 * Interpolations and completions (core/eval/pictures.ts): each interpolation row starts and ends
 * at the reconstructions of two test inputs of one class (the class as conditioning input of a
 * class-conditional model) and moves along the straight line between their codes; each completion
 * row shows the visible part, the truth, and samples whose visible pixels are the truth's and
 * whose hidden pixels are the model's own draws given the visible part.
 */
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { experimentFromObject } from '../core/config/experiment';
import { visibleMask, type ConditionOptions } from '../core/data/condition';
import { completionGrid, interpolationGrid } from '../core/eval/pictures';
import { Rng } from '../core/rng';
import { openSession, type Session } from '../core/session';
import { builtins, experimentObject } from './kits/build';

function session(over: Record<string, unknown>): Session {
  return openSession(
    experimentFromObject(
      experimentObject({
        name: 'pictures',
        seed: 4,
        data: { use: 'synthetic', synthetic: { kind: 'shapes', size: 96 } },
        encoder: { use: 'mlp', mlp: { hiddenSizes: [16] } },
        decoder: { use: 'mlp', mlp: { hiddenSizes: [16] } },
        latent: { use: 'gaussian', gaussian: { dim: 3 } },
        ...over,
      }),
      builtins(),
    ),
  );
}

const D = 14 * 14;
const row = (g: Float32Array, r: number, c: number, cols: number) => Array.from(g.subarray((r * cols + c) * D, (r * cols + c + 1) * D));

function close(a: number[], b: number[], tol = 1e-5): void {
  expect(a.length).to.equal(b.length);
  const worst = Math.max(...a.map((v, i) => Math.abs(v - b[i])));
  expect(worst).to.be.below(tol);
}

describe('interpolations and completions', () => {
  for (const [what, over] of [
    ['a VAE', {}],
    ['a class-conditional VAE', { data: { use: 'synthetic', synthetic: { kind: 'shapes', size: 96 }, condition: { use: 'labels' } }, prior: { use: 'conditional-gaussian', 'conditional-gaussian': { hiddenSizes: [8] } } }],
  ] as const) {
    it(`Should interpolate between the codes of two test inputs of one class, ${what}`, () => {
      const s = session(over as Record<string, unknown>);
      const cond = s.config.data.condition as ConditionOptions;
      const test = s.dataset.test;
      const cols = 5;
      const rows = 2;
      const grid = interpolationGrid(s.parts.model, test, s.dataset, cond, rows, cols, 0)!;
      expect(grid.length).to.equal(rows * cols * D);
      for (let r = 0; r < rows; r++) {
        // row r pairs the first two test inputs of the r-th class that has two
        const byClass = new Map<number, number[]>();
        for (let i = 0; i < test.n; i++) byClass.set(test.labels[i], [...(byClass.get(test.labels[i]) ?? []), i]);
        const classes = [...byClass.keys()].sort((a, b) => a - b).filter((c) => byClass.get(c)!.length >= 2);
        const [a, b] = byClass.get(classes[r])!;
        const x = tf.tensor2d([...test.x.subarray(a * D, (a + 1) * D), ...test.x.subarray(b * D, (b + 1) * D)], [2, D]);
        const y = cond.use === 'labels' ? (tf.oneHot(tf.tensor1d([classes[r], classes[r]], 'int32'), s.dataset.numClasses).toFloat() as tf.Tensor2D) : null;
        const rec = s.parts.model.reconstruct({ x, cond: y } as never, { training: false, rng: Rng.derive(0, 'r') });
        const v = Array.from(rec.dataSync());
        close(row(grid, r, 0, cols), v.slice(0, D));
        close(row(grid, r, cols - 1, cols), v.slice(D));
        // the middle column decodes the midpoint of the two codes
        const opts = { training: false, rng: Rng.derive(0, 'm'), cond: y };
        const modes = s.parts.model.latent.mode(s.parts.model.encoder.encode(x, y, opts), opts) as tf.Tensor2D;
        const mid = tf.mean(modes, 0, true) as tf.Tensor2D;
        const yMid = y ? (tf.slice(y, [0, 0], [1, -1]) as tf.Tensor2D) : null;
        const dec = s.parts.model.likelihood.mean(s.parts.model.decoder.decode(mid, yMid, { ...opts, cond: yMid }));
        close(row(grid, r, 2, cols), Array.from(dec.dataSync()));
        tf.dispose([x, rec, modes, mid, dec, ...(y ? [y] : [])]);
      }
    });
  }

  it('Should draw completions: visible part, truth, and samples that keep the visible pixels', () => {
    const s = session({
      data: { use: 'synthetic', synthetic: { kind: 'shapes', size: 96 }, condition: { use: 'visible-quadrants', visibleQuadrants: [0, 2] } },
      prior: { use: 'conditional-gaussian', 'conditional-gaussian': { hiddenSizes: [8] } },
      likelihood: { use: 'masked-bernoulli' },
    });
    const cond = s.config.data.condition as ConditionOptions;
    const test = s.dataset.test;
    const cols = 5;
    const grid = completionGrid(s.parts.model, test, s.dataset, cond, 3, cols, 7)!;
    expect(grid.length).to.equal(3 * cols * D);
    const mask = visibleMask([14, 14, 1], [0, 2]);
    for (let r = 0; r < 3; r++) {
      const truth = Array.from(test.x.subarray(r * D, (r + 1) * D));
      expect(row(grid, r, 0, cols)).to.deep.equal(truth.map((v, j) => (mask[j] ? v : 0.5)));
      expect(row(grid, r, 1, cols)).to.deep.equal(truth);
      const samples = [2, 3, 4].map((c) => row(grid, r, c, cols));
      for (const smp of samples) {
        expect(smp.filter((_, j) => mask[j] === 1)).to.deep.equal(truth.filter((_, j) => mask[j] === 1));
        for (const v of smp) expect(v).to.be.within(0, 1);
      }
      // the hidden halves are draws: they differ between samples
      const hidden = samples.map((smp) => smp.filter((_, j) => mask[j] === 0));
      expect(hidden[0]).to.not.deep.equal(hidden[1]);
    }
    // the same seed draws the same picture; no picture for models without quadrants
    expect(Array.from(completionGrid(s.parts.model, test, s.dataset, cond, 3, cols, 7)!)).to.deep.equal(Array.from(grid));
    expect(completionGrid(s.parts.model, test, s.dataset, { ...cond, use: 'labels' }, 3, cols, 7)).to.equal(null);
  });
});
