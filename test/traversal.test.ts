/**
 * Latent traversals (core/eval/traversal.ts): the plan against hand-worked orderings and ranges,
 * the posterior summary against statistics computed by hand from the encoder's own outputs, and
 * every image of the picture against the decoder run on the code it should show.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { PNG } from 'pngjs';
import { experimentFromObject } from '../core/config/experiment';
import { latentTraversal, summarisePosterior, traversalPlan, type TraversalOptions } from '../core/eval/traversal';
import { Rng } from '../core/rng';
import { openSession } from '../core/session';
import { RunDir } from '../core/tracking/run-dir';
import { train } from '../core/train/trainer';
import { builtins, buildParts, experimentObject } from './kits/build';
import { disposeParts } from '../core/container';

const info = { name: 'tiny', shape: [4, 4, 1] as [number, number, number], dim: 16, numClasses: 0, condDim: 0 };

function split(n: number, seed = 5) {
  return { x: new Rng(seed).fillUniform(new Float32Array(n * 16)), labels: new Int32Array(n).fill(-1), n };
}

const opts = (over: Partial<TraversalOptions> = {}): TraversalOptions => ({
  info: { ...info, kind: 'image' },
  condition: { use: 'none', visibleQuadrants: [0], hiddenValue: -1 },
  seed: 3,
  rows: 10,
  cols: 5,
  spread: 2,
  examples: 1000,
  base: 0,
  batchSize: 4,
  ...over,
});

describe('latent traversals', () => {
  it('Should order dimensions by KL (ties to the lower index) and sweep centre +- spread aggregate standard deviations', () => {
    const plan = traversalPlan(
      { klPerDim: [0.1, 2, 0, 2], locMean: [0, 0.5, 0, -1], locVariance: [0.01, 0.75, 0, 3], varianceMean: [0.99, 0.25, 1, 1] },
      3,
      5,
      2,
    );
    expect(plan.order).to.equal('kl');
    expect(plan.rows.map((r) => r.dim)).to.deep.equal([1, 3, 0]);
    // dim 1: sd = sqrt(0.75 + 0.25) = 1, from 0.5 - 2 to 0.5 + 2
    expect(plan.rows[0].values).to.deep.equal([-1.5, -0.5, 0.5, 1.5, 2.5]);
    // dim 3: sd = 2, from -5 to 3
    expect(plan.rows[1].values).to.deep.equal([-5, -3, -1, 1, 3]);
    const noKl = traversalPlan({ klPerDim: null, locMean: [0, 0, 0], locVariance: [0.2, 0.1, 0.9], varianceMean: [1, 1, 1] }, 2, 1, 2);
    expect(noKl.order).to.equal('mean-variance');
    expect(noKl.rows.map((r) => [r.dim, r.values])).to.deep.equal([
      [2, [0]],
      [0, [0]],
    ]);
  });

  it('Should summarise q(z|x) as the hand-computed means, variances and KL per dimension of the encoder outputs', () => {
    const parts = buildParts({ latent: { use: 'gaussian', gaussian: { dim: 3 } } }, info);
    try {
      const data = split(7);
      const s = summarisePosterior(parts.model, data, opts())!;
      const q = tf.tidy(() => {
        const o = { training: false, rng: new Rng(0) };
        const p = parts.model.latent.posterior!(parts.model.encoder.encode(tf.tensor2d(data.x, [7, 16]), null, o), o);
        return [p.loc.arraySync() as number[][], p.logVar.arraySync() as number[][]];
      });
      const [loc, logVar] = q;
      for (let d = 0; d < 3; d++) {
        const mu = loc.map((r) => r[d]);
        const m = mu.reduce((a, b) => a + b, 0) / 7;
        const v = mu.reduce((a, b) => a + (b - m) ** 2, 0) / 7;
        const sig2 = logVar.map((r) => Math.exp(r[d]));
        const kl = mu.reduce((a, b, i) => a + 0.5 * (b * b + sig2[i] - 1 - logVar[i][d]), 0) / 7;
        expect(s.locMean[d]).to.be.closeTo(m, 1e-6);
        expect(s.locVariance[d]).to.be.closeTo(v, 1e-6);
        expect(s.varianceMean[d]).to.be.closeTo(sig2.reduce((a, b) => a + b, 0) / 7, 1e-6);
        expect(s.klPerDim![d]).to.be.closeTo(kl, 1e-5);
      }
      // a prior without a closed-form KL: no KL, the same moments
      const mix = buildParts({ latent: { use: 'gaussian', gaussian: { dim: 3 } }, prior: { use: 'mixture', mixture: { components: 2 } } }, info);
      try {
        const sm = summarisePosterior(mix.model, data, opts())!;
        expect(sm.klPerDim).to.equal(null);
        expect(sm.locMean).to.have.length(3);
      } finally {
        disposeParts(mix);
      }
    } finally {
      disposeParts(parts);
    }
  });

  it('Should decode, in row r and column c, the base mode with dimension dims[r] set to values[r][c]', () => {
    const parts = buildParts({ latent: { use: 'gaussian', gaussian: { dim: 4 } } }, info);
    try {
      const data = split(9);
      const before = tf.memory().numTensors;
      const t = latentTraversal(parts.model, data, opts({ rows: 3, cols: 4, base: 2 }))!;
      expect(tf.memory().numTensors).to.equal(before);
      expect(t.rows).to.have.length(3);
      expect(t.images.length).to.equal(3 * 4 * 16);
      const o = { training: false, rng: new Rng(0) };
      const mode = tf.tidy(() => Array.from(parts.model.latent.mode(parts.model.encoder.encode(tf.tensor2d(data.x.subarray(32, 48), [1, 16]), null, o), o).dataSync()));
      t.rows.forEach((row, r) => {
        row.values.forEach((v, c) => {
          const z = [...mode];
          z[row.dim] = v;
          const want = tf.tidy(() => Array.from(parts.model.likelihood.mean(parts.model.decoder.decode(tf.tensor2d([z]), null, o)).dataSync()));
          const got = Array.from(t.images.subarray((r * 4 + c) * 16, (r * 4 + c + 1) * 16));
          got.forEach((g, i) => expect(g).to.be.closeTo(want[i], 1e-5));
        });
      });
      // at most latent.dim rows
      expect(latentTraversal(parts.model, data, opts({ rows: 10 }))!.rows).to.have.length(4);
    } finally {
      disposeParts(parts);
    }
  });

  it('Should write traversals.png (one row per dimension) and traversals.json at each evaluation of a training', async () => {
    const raw = experimentObject({
      data: { use: 'synthetic', synthetic: { kind: 'shapes', size: 32 } },
      latent: { use: 'gaussian', gaussian: { dim: 3 } },
      train: { epochs: 1, batchSize: 16, progress: 'none' },
      eval: { iwSamples: 0, gridSize: 4, traversalRows: 2 },
    });
    const session = openSession(experimentFromObject(raw, builtins()));
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'vaelab-trav-'));
    const run = RunDir.create(root, 'trav', 0);
    await train(session, { run, backend: tf.getBackend(), log: () => undefined, handleSignals: false });
    const files = fs.readdirSync(run.images).filter((f) => f.startsWith('traversals')).sort();
    expect(files.some((f) => f.endsWith('.png'))).to.equal(true);
    const png = PNG.sync.read(fs.readFileSync(path.join(run.images, files.find((f) => f.endsWith('.png'))!)));
    const [h, w] = session.dataset.shape;
    expect([png.height, png.width]).to.deep.equal([2 * (h + 1) + 1, 4 * (w + 1) + 1]);
    const json = JSON.parse(fs.readFileSync(path.join(run.images, files.find((f) => f.endsWith('.json'))!), 'utf8'));
    expect(json.order).to.equal('kl');
    expect(json.rows).to.have.length(2);
    expect(json.rows[0].score).to.be.at.least(json.rows[1].score);
  });
});
