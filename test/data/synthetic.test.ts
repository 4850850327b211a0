import { expect } from 'chai';
import { ConfigError } from '../../core/errors';
import {
  DEFAULT_DATA_OPTIONS,
  type DataOptions,
  MIXTURE2D_MEANS,
  MIXTURE2D_SCALE,
  SHAPES_CLASSES,
  loadDataset,
  makeSynthetic,
} from '../../core/data';
import { expectThrowExact } from './helpers';

const synthetic = (kind: 'mixture2d' | 'shapes', size: number): DataOptions => ({
  ...DEFAULT_DATA_OPTIONS,
  use: 'synthetic',
  synthetic: { kind, size },
});

describe('Synthetic data', () => {
  for (const kind of ['mixture2d', 'shapes'] as const) {
    it(`Should generate the same ${kind} data for the same seed and other data for another seed`, () => {
      const a = loadDataset(synthetic(kind, 200), 3);
      const b = loadDataset(synthetic(kind, 200), 3);
      const c = loadDataset(synthetic(kind, 200), 4);
      expect(Array.from(b.train.x)).to.deep.equal(Array.from(a.train.x));
      expect(Array.from(b.test.labels)).to.deep.equal(Array.from(a.test.labels));
      expect(Array.from(c.train.x)).to.not.deep.equal(Array.from(a.train.x));
    });

    it(`Should give ${kind} a test split of size / 5 and keep the first training examples when size grows`, () => {
      const small = makeSynthetic({ kind, size: 100 }, 0);
      const big = makeSynthetic({ kind, size: 300 }, 0);
      expect([small.train.n, small.test.n, big.train.n, big.test.n]).to.deep.equal([100, 20, 300, 60]);
      expect(Array.from(big.train.x.subarray(0, small.train.x.length))).to.deep.equal(Array.from(small.train.x));
      expect(Array.from(big.test.labels.subarray(0, 20))).to.deep.equal(Array.from(small.test.labels));
    });
  }

  it('Should draw mixture2d points around the 4 component means with sd 0.5', () => {
    const ds = loadDataset(synthetic('mixture2d', 4000), 0);
    expect([ds.kind, ds.shape, ds.dim, ds.numClasses]).to.deep.equal(['vector', [1, 1, 2], 2, 4]);
    const sums = MIXTURE2D_MEANS.map(() => [0, 0, 0]); // [count, sum x, sum y]
    for (let i = 0; i < ds.train.n; i++) {
      const s = sums[ds.train.labels[i]];
      s[0]++;
      s[1] += ds.train.x[2 * i];
      s[2] += ds.train.x[2 * i + 1];
    }
    sums.forEach(([count, sx, sy], k) => {
      // Equal weights: about 1000 per component; each mean is within 4 standard errors, sd/sqrt(count).
      expect(count).to.be.within(850, 1150);
      const tol = (4 * MIXTURE2D_SCALE) / Math.sqrt(count);
      expect(Math.abs(sx / count - MIXTURE2D_MEANS[k][0])).to.be.below(tol);
      expect(Math.abs(sy / count - MIXTURE2D_MEANS[k][1])).to.be.below(tol);
    });
  });

  it('Should draw 14×14 shapes of every class with grey levels 0 or in [0.75, 1)', () => {
    const ds = loadDataset(synthetic('shapes', 400), 0);
    expect([ds.kind, ds.shape, ds.dim, ds.numClasses]).to.deep.equal(['image', [14, 14, 1], 196, SHAPES_CLASSES.length]);
    const counts = new Array(SHAPES_CLASSES.length).fill(0);
    for (let i = 0; i < ds.train.n; i++) {
      counts[ds.train.labels[i]]++;
      const img = ds.train.x.subarray(i * 196, (i + 1) * 196);
      const lit = img.filter((v) => v > 0);
      // Smallest shapes: a 2×6 bar (12 pixels), a 5-sided outline (16), a plus with arms of 2 (9).
      expect(lit.length).to.be.at.least(9);
      expect(lit.every((v) => v >= 0.75 && v < 1 && v === lit[0])).to.equal(true);
    }
    expect(counts.every((c) => c > 50)).to.equal(true);
  });

  it('Should draw a bar, a square outline and a cross with their exact pixel counts', () => {
    const ds = makeSynthetic({ kind: 'shapes', size: 200 }, 1);
    for (let i = 0; i < ds.train.n; i++) {
      const lit = ds.train.x.subarray(i * 196, (i + 1) * 196).filter((v) => v > 0).length;
      const k = ds.train.labels[i];
      // bars: 2 × (6..11); square outline of side s: 4s - 4 with s in 5..9; plus: 4a + 1 with a in 2..4
      const allowed = k <= 1 ? [12, 14, 16, 18, 20, 22] : k === 2 ? [16, 20, 24, 28, 32] : [9, 13, 17];
      expect(allowed, `example ${i}, class ${k}`).to.include(lit);
    }
  });

  it('Should reject an unknown kind, and a size that is not positive or too large to allocate', () => {
    expectThrowExact(
      () => makeSynthetic({ kind: 'shape' as 'shapes', size: 10 }, 0),
      ConfigError,
      'data.synthetic.kind: unknown synthetic data set "shape". Allowed values: "mixture2d", "shapes". Did you mean "shapes"?',
    );
    expectThrowExact(
      () => makeSynthetic({ kind: 'shapes', size: 0 }, 0),
      ConfigError,
      'data.synthetic.size: must be an integer in [1, 1000000]; got 0',
    );
    // 2^31 - 1 passes the positive-int format; its 14x14 shapes would be 420906794812 values.
    expectThrowExact(
      () => makeSynthetic({ kind: 'shapes', size: 2 ** 31 - 1 }, 0),
      ConfigError,
      'data.synthetic.size: must be an integer in [1, 1000000]; got 2147483647',
    );
  });
});
