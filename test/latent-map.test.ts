/**
 * The 2-D latent map (core/eval/latent-map.ts): the codes themselves for a 2-D latent, a seeded
 * UMAP embedding otherwise that keeps apart what is apart in the codes; and its place in the report.
 */
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { latentMap, latentModes, type LatentMapOptions } from '../core/eval/latent-map';
import { Rng } from '../core/rng';
import { disposeParts } from '../core/container';
import { buildParts } from './kits/build';

const info = { name: 'tiny', shape: [4, 4, 1] as [number, number, number], dim: 16, numClasses: 2, condDim: 0 };
const opts = (n: number): LatentMapOptions => ({ info: { ...info, kind: 'image' }, condition: { use: 'none', visibleQuadrants: [0], hiddenValue: -1 }, seed: 4, n, batchSize: 7 });

/** n examples in two groups: label 0 near 0.1, label 1 near 0.9, on every pixel. */
function twoGroups(n: number) {
  const rng = new Rng(2);
  const x = new Float32Array(n * 16);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % 2;
    for (let j = 0; j < 16; j++) x[i * 16 + j] = (labels[i] ? 0.9 : 0.1) + 0.02 * rng.normal();
  }
  return { x, labels, n };
}

describe('latent map', function () {
  this.timeout(60000);

  it('Should place each example at its posterior mode when the latent is 2-D, with its label', () => {
    const parts = buildParts({ latent: { use: 'gaussian', gaussian: { dim: 2 } } }, info);
    try {
      const split = twoGroups(20);
      const map = latentMap(parts.model, split, opts(15))!;
      expect(map.method).to.equal('latent');
      expect(map.points).to.have.length(15);
      expect(map.labels).to.deep.equal(Array.from(split.labels.subarray(0, 15)));
      const o = { training: false, rng: new Rng(0) };
      const want = tf.tidy(() => parts.model.latent.mode(parts.model.encoder.encode(tf.tensor2d(split.x.subarray(0, 15 * 16), [15, 16]), null, o), o).arraySync() as number[][]);
      map.points.forEach((p, i) => {
        expect(p[0]).to.be.closeTo(want[i][0], 1e-6);
        expect(p[1]).to.be.closeTo(want[i][1], 1e-6);
      });
    } finally {
      disposeParts(parts);
    }
  });

  it('Should embed higher-dimensional codes by UMAP: the same seed gives the same map, and two separate groups of codes stay apart', () => {
    const parts = buildParts({ latent: { use: 'gaussian', gaussian: { dim: 6 } } }, info);
    try {
      const split = twoGroups(60);
      const codes = latentModes(parts.model, split, opts(60))!;
      const a = latentMap(parts.model, split, opts(60))!;
      const b = latentMap(parts.model, split, opts(60))!;
      expect(a.method).to.equal('umap');
      expect(a.dims).to.equal(6);
      expect(a.points).to.deep.equal(b.points);
      // the groups are apart in the 6-D codes ...
      const dist = (p: number[], q: number[]) => Math.sqrt(p.reduce((s, v, i) => s + (v - q[i]) ** 2, 0));
      const meanDist = (pts: number[][], same: boolean) => {
        let s = 0;
        let c = 0;
        for (let i = 0; i < pts.length; i++) for (let j = i + 1; j < pts.length; j++) if ((split.labels[i] === split.labels[j]) === same) {
          s += dist(pts[i], pts[j]);
          c++;
        }
        return s / c;
      };
      expect(meanDist(codes, false)).to.be.above(3 * meanDist(codes, true));
      // ... and in the map
      expect(meanDist(a.points, false)).to.be.above(2 * meanDist(a.points, true));
    } finally {
      disposeParts(parts);
    }
  });
});
