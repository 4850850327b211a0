/**
 * Interpolations and completions (core/eval/pictures.ts): each interpolation row starts and ends
 * at the reconstructions of two test inputs of one class (the class as conditioning input of a
 * class-conditional model) and moves along the straight line between their codes; each completion
 * row shows the visible part, the truth, and samples whose visible pixels are the truth's and
 * whose hidden pixels are the model's own draws given the visible part. The samples per layer of a
 * hierarchy vary one layer along each row and hold every other.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import * as tf from '@tensorflow/tfjs-core';
import { experimentFromObject } from '../core/config/experiment';
import { visibleMask, type ConditionOptions } from '../core/data/condition';
import { completionGrid, interpolationGrid, layerSamplesGrid, layerTraversalGrid } from '../core/eval/pictures';
import { Rng } from '../core/rng';
import { RunDir } from '../core/tracking/run-dir';
import { train } from '../core/train/trainer';
import { closeSession, openSession, type Session } from '../core/session';
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

  describe('samples per layer of a hierarchy', () => {
    // Three Gaussian layers of 2 units with affine heads; layer l's variance set by its p-head's
    // log-variance bias (the top's is the prior's, 1).
    const hierarchy = (logVarBias: { p0: number; p1: number }) => {
      const s = session({ latent: { use: 'bottom-up', 'bottom-up': { dims: [2, 2, 2], hiddenSizes: [2, 2], hiddenLayers: 0 } } });
      const vars = s.parts.model.latent.variables();
      for (const [head, b] of Object.entries(logVarBias)) {
        for (const part of ['kernel', 'bias']) {
          const v = vars.get(`${head}/logVar/${part}`)!;
          v.assign(tf.tidy(() => tf.fill(v.shape, part === 'bias' ? b : 0)));
        }
      }
      return s;
    };
    const none: ConditionOptions = { use: 'none', visibleQuadrants: [0], hiddenValue: 0 };
    const spread = (g: Float32Array, r: number, cols: number) => {
      let worst = 0;
      for (let c = 1; c < cols; c++) worst = Math.max(worst, ...row(g, r, c, cols).map((v, i) => Math.abs(v - row(g, r, 0, cols)[i])));
      return worst;
    };

    it('Should vary one layer per row (top first) and hold the others: a row whose layer has no noise has equal columns', () => {
      const cols = 4;
      // the bottom layer with (almost) no noise of its own: its row shows no change, the other rows do
      const a = hierarchy({ p0: Math.log(1e-12), p1: 0 });
      const g = layerSamplesGrid(a.parts.model, none, cols, 3)!;
      expect(g.length).to.equal(3 * cols * D);
      expect(spread(g, 2, cols), 'row of the bottom layer').to.be.below(1e-5);
      expect(spread(g, 1, cols), 'row of the middle layer').to.be.above(1e-3);
      expect(spread(g, 0, cols), 'row of the top layer').to.be.above(1e-3);
      // the middle layer without noise: its row has equal columns (the layers above and below held)
      const b = hierarchy({ p0: 0, p1: Math.log(1e-12) });
      const h = layerSamplesGrid(b.parts.model, none, cols, 3)!;
      expect(spread(h, 1, cols), 'row of the middle layer').to.be.below(1e-5);
      expect(spread(h, 2, cols), 'row of the bottom layer').to.be.above(1e-3);
      // the same seed draws the same grid
      expect(Array.from(layerSamplesGrid(b.parts.model, none, cols, 3)!)).to.deep.equal(Array.from(h));
      for (const s of [a, b]) closeSession(s);
    });

    it('Should write layer-samples.png and layer-traversals.png (a row per layer) at the evaluations of a hierarchy\'s training', async () => {
      const s = session({ latent: { use: 'bottom-up', 'bottom-up': { dims: [3, 2], hiddenSizes: [4], hiddenLayers: 1 } }, train: { epochs: 1, batchSize: 32, progress: 'none' }, eval: { iwSamples: 0, gridSize: 4 } });
      const run = RunDir.create(fs.mkdtempSync(path.join(os.tmpdir(), 'vaelab-layer-samples-')), 'layers', 0);
      await train(s, { run, backend: tf.getBackend(), log: () => undefined, handleSignals: false });
      const file = fs.readdirSync(run.images).find((f) => f.startsWith('layer-samples') && f.endsWith('.png'));
      expect(file, fs.readdirSync(run.images).join(', ')).to.be.a('string');
      const png = PNG.sync.read(fs.readFileSync(path.join(run.images, file!)));
      const [h, w] = s.dataset.shape;
      expect([png.height, png.width]).to.deep.equal([2 * (h + 1) + 1, 4 * (w + 1) + 1]);
      // and the traversals per layer, a row per layer, with the units named
      const trav = fs.readdirSync(run.images).find((f) => f.startsWith('layer-traversals') && f.endsWith('.png'))!;
      const tp = PNG.sync.read(fs.readFileSync(path.join(run.images, trav)));
      expect([tp.height, tp.width]).to.deep.equal([2 * (h + 1) + 1, 4 * (w + 1) + 1]);
      const json = JSON.parse(fs.readFileSync(path.join(run.images, trav.replace('.png', '.json')), 'utf8'));
      expect(json.rows.map((r: { layer: number }) => r.layer)).to.deep.equal([2, 1]);
      closeSession(s);
    });

    // Affine all the way: heads of no hidden layer, a linear decoder and a Gaussian mean, so every
    // image is an affine function of the noise of every layer.
    const affine = (over: Record<string, unknown> = {}) =>
      session({
        latent: { use: 'bottom-up', 'bottom-up': { dims: [2, 2, 2], hiddenSizes: [2, 2], hiddenLayers: 0 } },
        decoder: { use: 'mlp', mlp: { hiddenSizes: [] } },
        likelihood: { use: 'gaussian', gaussian: { scale: 'fixed' } },
        ...over,
      });
    /** Every row of a traversal is affine in the swept value (equal steps), and moves. */
    const expectAffineRows = (t: { images: Float32Array; rows: unknown[] }, cols: number) => {
      for (let r = 0; r < t.rows.length; r++) {
        const step = row(t.images, r, 1, cols).map((v, i) => v - row(t.images, r, 0, cols)[i]);
        expect(Math.max(...step.map(Math.abs)), `row ${r} moves`).to.be.above(1e-4);
        for (let c = 2; c < cols; c++) close(row(t.images, r, c, cols).map((v, i) => v - row(t.images, r, c - 1, cols)[i]), step, 1e-4);
      }
    };
    const setTopWeights = (s: Session, fromUnit0: number, fromUnit1: number) => {
      // p(z2 | z3): loc = z3 K + b; row u of K is what top unit u does
      const vars = s.parts.model.latent.variables();
      vars.get('p1/loc/kernel')!.assign(tf.tidy(() => tf.tensor2d([[fromUnit0, fromUnit0], [fromUnit1, fromUnit1]])));
      // variances that do not depend on the layer above, so each layer is affine in the ones above
      for (const head of ['p0', 'p1']) vars.get(`${head}/logVar/kernel`)!.assign(tf.tidy(() => tf.zeros([2, 2])));
    };

    it('Should sweep, in each layer, the unit that moves the image most, from -spread to spread, every other draw held', () => {
      const cols = 5;
      const s = affine();
      for (const [w0, w1, unit] of [[0, 1.5, 1], [2, 0.1, 0]] as const) {
        setTopWeights(s, w0, w1);
        const t = layerTraversalGrid(s.parts.model, none, cols, 2, 2)!;
        expect(t.rows.map((r) => r.layer)).to.deep.equal([3, 2, 1]);
        // the top's unit with no (or the smaller) weight moves nothing (or less)
        expect(t.rows[0].unit, `weights ${w0}, ${w1}`).to.equal(unit);
        // each row is affine in the swept value: equal steps between neighbouring columns
        expectAffineRows(t, cols);
      }
      closeSession(s);
    });

    it('Should hold a mixture prior\'s draw (one component for every row) and leave its top layer out', () => {
      const s = affine({ prior: { use: 'mixture', mixture: { components: 4 } } });
      setTopWeights(s, 1, 1);
      const t = layerTraversalGrid(s.parts.model, none, 5, 2, 2)!;
      expect(t.rows.map((r) => r.layer)).to.deep.equal([2, 1]);
      // a component drawn per row would break the equal steps
      expectAffineRows(t, 5);
      closeSession(s);
    });

    it('Should draw no per-layer samples for a flat latent or a conditioned model', () => {
      const flat = session({});
      const deep = hierarchy({ p0: 0, p1: 0 });
      expect(layerSamplesGrid(flat.parts.model, none, 4, 3)).to.equal(null);
      expect(layerSamplesGrid(deep.parts.model, { ...none, use: 'labels' }, 4, 3)).to.equal(null);
      expect(layerTraversalGrid(flat.parts.model, none, 4, 3)).to.equal(null);
      expect(layerTraversalGrid(deep.parts.model, { ...none, use: 'labels' }, 4, 3)).to.equal(null);
      for (const s of [flat, deep]) closeSession(s);
    });
  });
});
