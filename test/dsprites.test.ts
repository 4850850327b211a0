/**
 * The dSprites-like generator (core/data/dsprites.ts): the index of a combination, the images the
 * factors imply (position of the centre of mass, area against scale, direction of rotation, no
 * sprite cut by the border), seeded training/test subsets, and `data.use: dsprites` end to end
 * from an experiment file's keys to the loaded data set.
 */
import { expect } from 'chai';
import {
  DEFAULT_DATA_OPTIONS,
  DSPRITES_COUNT,
  DSPRITES_SIZE,
  DspritesData,
  dspritesFactorsOf,
  dspritesIndexOf,
  dspritesSplitIndices,
  loadDataset,
  renderDsprite,
} from '../core/data';
import { dspritesPosition } from '../core/data/dsprites';
import { ConfigError } from '../core/errors';
import { experimentFromObject } from '../core/config/experiment';
import { Rng } from '../core/rng';
import { builtins, experimentObject } from './kits/build';

const S = DSPRITES_SIZE;

/** Pixel count and centre of mass (column, row) of the lit pixels, at pixel centres (c + 0.5, r + 0.5). */
function moments(img: Float32Array): { area: number; col: number; row: number } {
  let area = 0;
  let col = 0;
  let row = 0;
  for (let r = 0; r < S; r++) {
    for (let c = 0; c < S; c++) {
      const v = img[r * S + c];
      area += v;
      col += v * (c + 0.5);
      row += v * (r + 0.5);
    }
  }
  return { area, col: col / area, row: row / area };
}

const SQUARE = 0;
const ELLIPSE = 1;
const HEART = 2;
const image = (shape: number, scale: number, orientation: number, x: number, y: number) =>
  renderDsprite([shape, scale, orientation, x, y]);

describe('dSprites-like data', () => {
  describe('index of a combination', () => {
    it('Should count 3*6*40*32*32 = 737280 combinations', () => {
      expect(DSPRITES_COUNT).to.equal(737280);
    });

    it('Should vary posY fastest and shape slowest (mixed radix 3, 6, 40, 32, 32)', () => {
      expect(Array.from(dspritesFactorsOf(0))).to.deep.equal([0, 0, 0, 0, 0]);
      expect(Array.from(dspritesFactorsOf(1))).to.deep.equal([0, 0, 0, 0, 1]);
      expect(Array.from(dspritesFactorsOf(32))).to.deep.equal([0, 0, 0, 1, 0]); // 32 = one step of posX
      expect(Array.from(dspritesFactorsOf(1024))).to.deep.equal([0, 0, 1, 0, 0]); // 32*32
      expect(Array.from(dspritesFactorsOf(40960))).to.deep.equal([0, 1, 0, 0, 0]); // 40*32*32
      expect(Array.from(dspritesFactorsOf(245760))).to.deep.equal([1, 0, 0, 0, 0]); // 6*40*32*32
      expect(Array.from(dspritesFactorsOf(737279))).to.deep.equal([2, 5, 39, 31, 31]);
      // 1*245760 + 2*40960 + 3*1024 + 4*32 + 5 = 330885
      expect(dspritesIndexOf([1, 2, 3, 4, 5])).to.equal(330885);
    });

    it('Should map indices to factors and back', () => {
      const rng = Rng.derive(0, 'test-dsprites-index');
      for (let k = 0; k < 200; k++) {
        const i = rng.int(DSPRITES_COUNT);
        expect(dspritesIndexOf(dspritesFactorsOf(i))).to.equal(i);
      }
    });

    it('Should reject a factor value out of range, naming the factor', () => {
      expect(() => dspritesIndexOf([0, 6, 0, 0, 0])).to.throw(RangeError, 'dspritesIndexOf: factor scale must be an integer in [0, 6); got 6');
      expect(() => dspritesFactorsOf(737280)).to.throw(RangeError, 'dspritesFactorsOf: index must be an integer in [0, 737280); got 737280');
    });
  });

  describe('images', () => {
    it('Should draw binary sprites that never touch the border, at the extreme positions and every orientation', () => {
      for (let shape = 0; shape < 3; shape++) {
        for (let o = 0; o < 40; o++) {
          for (const [x, y] of [[0, 0], [31, 0], [0, 31], [31, 31]]) {
            const img = image(shape, 5, o, x, y);
            let lit = 0;
            let other = 0;
            for (let i = 0; i < img.length; i++) {
              if (img[i] !== 0 && img[i] !== 1) other++;
              lit += img[i];
            }
            let border = 0;
            for (let k = 0; k < S; k++) border += img[k] + img[(S - 1) * S + k] + img[k * S] + img[k * S + S - 1];
            const where = `shape ${shape} orientation ${o} at (${x}, ${y})`;
            expect([other, border], where).to.deep.equal([0, 0]);
            expect(lit, where).to.be.greaterThan(0);
          }
        }
      }
    });

    it('Should put the centre of mass of a square and an ellipse on the centre 14 + 36 i / 31 that posX and posY give', () => {
      for (const shape of [SQUARE, ELLIPSE]) {
        let lastCol = -Infinity;
        for (let x = 0; x < 32; x++) {
          // Both shapes are symmetric about their centre, so the lit pixel centres average to it up to
          // the pixel grid: within half a pixel.
          const m = moments(image(shape, 3, 0, x, 10));
          expect(m.col).to.be.closeTo(dspritesPosition(x), 0.5);
          expect(m.row).to.be.closeTo(dspritesPosition(10), 0.5);
          expect(m.col).to.be.greaterThan(lastCol);
          lastCol = m.col;
        }
        let lastRow = -Infinity;
        for (let y = 0; y < 32; y++) {
          const m = moments(image(shape, 3, 0, 20, y));
          expect(m.row).to.be.closeTo(dspritesPosition(y), 0.5);
          expect(m.col).to.be.closeTo(dspritesPosition(20), 0.5);
          expect(m.row).to.be.greaterThan(lastRow);
          lastRow = m.row;
        }
      }
      expect(dspritesPosition(0)).to.equal(14);
      expect(dspritesPosition(31)).to.equal(50);
    });

    it('Should grow the area with scale, as the areas of the defining formulas', () => {
      for (let shape = 0; shape < 3; shape++) {
        let last = 0;
        for (let k = 0; k < 6; k++) {
          const { area } = moments(image(shape, k, 0, 16, 16));
          expect(area, `shape ${shape} scale ${k}`).to.be.greaterThan(last);
          last = area;
          const s = 0.5 + 0.1 * k;
          // Square: side 2 * 0.75 * 12 s pixels; ellipse: pi * (12 s) * (6 s). Rasterising at pixel
          // centres miscounts at most the pixels the outline crosses, a few times the perimeter / 2.
          if (shape === SQUARE) expect(area).to.be.closeTo((18 * s) ** 2, 2 * 18 * s);
          if (shape === ELLIPSE) expect(area).to.be.closeTo(Math.PI * 72 * s * s, 2 * 9 * Math.PI * s);
        }
      }
    });

    it('Should turn a sprite counter-clockwise on the screen: the heart tip below the centre at 0 goes right of it at a quarter turn', () => {
      const x = 15;
      const y = 15;
      const c = dspritesPosition(15);
      const up = moments(image(HEART, 5, 0, x, y));
      // Orientation 0: the heart is mirror-symmetric about its vertical axis, so the centre of mass
      // lies on the centre's column and off it vertically by some d.
      expect(up.col).to.be.closeTo(c, 0.3);
      const d = up.row - c;
      expect(Math.abs(d)).to.be.greaterThan(0.5);
      // Orientation 10 = pi/2: (dx, dy) = (0, d) turns to (d, 0) (down -> right is counter-clockwise
      // on a screen whose y axis points down).
      const quarter = moments(image(HEART, 5, 10, x, y));
      expect(quarter.col - c).to.be.closeTo(d, 0.3);
      expect(quarter.row).to.be.closeTo(c, 0.3);
      // Orientation 20 = pi: the offset is reversed, (0, -d).
      const half = moments(image(HEART, 5, 20, x, y));
      expect(half.row - c).to.be.closeTo(-d, 0.3);
      expect(half.area).to.be.closeTo(up.area, 0.05 * up.area);
    });

    it('Should draw the three shapes differently at the same scale, orientation and place', () => {
      const imgs = [SQUARE, ELLIPSE, HEART].map((s) => Array.from(image(s, 5, 0, 16, 16)));
      expect(imgs[0]).to.not.deep.equal(imgs[1]);
      expect(imgs[1]).to.not.deep.equal(imgs[2]);
      expect(imgs[0]).to.not.deep.equal(imgs[2]);
    });

    it('Should render sampled factors to the images of those factors (DspritesData)', () => {
      const data = new DspritesData();
      const f = data.sampleFactors(5, Rng.derive(1, 'test-dsprites-sample'));
      const x = data.observations(f, 5);
      for (let i = 0; i < 5; i++) {
        const one = renderDsprite(f.subarray(i * 5, i * 5 + 5));
        expect(Array.from(x.subarray(i * 4096, (i + 1) * 4096))).to.deep.equal(Array.from(one));
      }
    });

    it('Should sample every value of each factor about equally often', () => {
      const data = new DspritesData();
      const n = 6000;
      const f = data.sampleFactors(n, Rng.derive(2, 'test-dsprites-uniform'));
      for (let k = 0; k < 5; k++) {
        const size = data.factorSizes[k];
        const counts = new Array(size).fill(0);
        for (let i = 0; i < n; i++) counts[f[i * 5 + k]]++;
        // Binomial(n, 1/size): within 5 standard deviations of n / size.
        const sd = Math.sqrt((n / size) * (1 - 1 / size));
        for (const c of counts) expect(Math.abs(c - n / size)).to.be.lessThan(5 * sd);
      }
    });
  });

  describe('data set', () => {
    const opts = (trainSize: number, testSize: number) => ({ ...DEFAULT_DATA_OPTIONS, use: 'dsprites', dsprites: { trainSize, testSize } });

    it('Should draw disjoint seeded subsets whose first training images do not depend on the sizes', () => {
      const a = dspritesSplitIndices({ trainSize: 30, testSize: 10 }, 5);
      const b = dspritesSplitIndices({ trainSize: 60, testSize: 20 }, 5);
      const c = dspritesSplitIndices({ trainSize: 30, testSize: 10 }, 6);
      expect(Array.from(b.train.subarray(0, 30))).to.deep.equal(Array.from(a.train));
      expect(Array.from(c.train)).to.not.deep.equal(Array.from(a.train));
      const train = new Set(b.train);
      for (const i of b.test) expect(train.has(i)).to.equal(false);
      expect(new Set(b.train).size).to.equal(60);
    });

    it('Should load images of the drawn combinations, labelled by shape', () => {
      const ds = loadDataset(opts(20, 8), 5);
      const { train, test } = dspritesSplitIndices({ trainSize: 20, testSize: 8 }, 5);
      expect([ds.name, ds.kind, ds.dim, ds.numClasses, ds.train.n, ds.test.n]).to.deep.equal(['dsprites', 'image', 4096, 3, 20, 8]);
      expect(ds.shape).to.deep.equal([64, 64, 1]);
      for (const [split, idx] of [[ds.train, train], [ds.test, test]] as const) {
        for (let i = 0; i < split.n; i++) {
          const f = dspritesFactorsOf(idx[i]);
          expect(split.labels[i]).to.equal(f[0]);
          expect(Array.from(split.x.subarray(i * 4096, (i + 1) * 4096))).to.deep.equal(Array.from(renderDsprite(f)));
        }
      }
    });

    it('Should reject sizes beyond what it holds in memory, naming the key', () => {
      expect(() => loadDataset(opts(100001, 1), 0)).to.throw(
        ConfigError,
        'data.dsprites.trainSize: must be an integer in [1, 100000] (images held in memory); got 100001',
      );
    });

    it('Should be selected by data.use: dsprites in an experiment, with its sizes under data.dsprites', () => {
      const raw = experimentObject({ data: { use: 'dsprites', dsprites: { trainSize: 12, testSize: 4 } } });
      const { config } = experimentFromObject(raw, builtins());
      expect(config.data.use).to.equal('dsprites');
      const ds = loadDataset({ ...config.data, synthetic: { ...config.data.synthetic } }, config.seed);
      expect([ds.train.n, ds.test.n]).to.deep.equal([12, 4]);
      const defaults = experimentFromObject(experimentObject({ data: { use: 'dsprites' } }), builtins()).config.data.dsprites;
      expect(defaults).to.deep.equal({ trainSize: 10000, testSize: 2000 });
    });
  });
});
