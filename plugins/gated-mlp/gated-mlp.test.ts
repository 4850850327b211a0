import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, Rng, experimentFromObject } from '../../core';
import { buildParts, describeConformance, disposeParts, experimentObject, expectThrowExact, registryOf, TINY_IMAGE_INFO } from '../../testing';
import { gatedMlpDecoder, gatedMlpEncoder } from './gated-mlp';

const gated = (init = 'pytorch', hiddenSizes = [16, 12]) => ({
  encoder: { use: 'gated-mlp', 'gated-mlp': { hiddenSizes, init } },
  decoder: { use: 'gated-mlp', 'gated-mlp': { hiddenSizes: [...hiddenSizes].reverse(), init } },
});

describe('gated-mlp encoder and decoder', () => {
  const conditioned = { ...TINY_IMAGE_INFO, condDim: 4 };
  describeConformance(gatedMlpEncoder, [
    { config: { hiddenSizes: [16] } },
    { title: 'two gated layers, he-normal, conditioned on labels', config: { hiddenSizes: [12, 8], init: 'he-normal' }, info: conditioned },
  ]);
  describeConformance(gatedMlpDecoder, [
    { config: { hiddenSizes: [16] } },
    { title: 'two gated layers, he-normal, conditioned on labels', config: { hiddenSizes: [8, 12], init: 'he-normal' }, info: conditioned },
  ]);

  it('Should compute (x W + b) * sigmoid(x V + c) per layer, as a hand-written product of its variables', () => {
    const parts = buildParts(gated('pytorch', [5, 3]));
    try {
      const v = parts.model.variables();
      const get = (k: string) => {
        const t = v.get(k);
        if (!t) throw new Error(`no variable ${k}; have ${[...v.keys()].join(', ')}`);
        return t;
      };
      const x = new Rng(3).uniformTensor([4, 64]) as tf.Tensor2D;
      const got = parts.model.encoder.encode(x, null, { training: false, rng: new Rng(1) }) as tf.Tensor2D;
      // by hand: array arithmetic on the weights, no tf ops
      const mat = (a: number[][], w: number[][], b: number[]) => a.map((row) => b.map((bj, j) => row.reduce((s, ai, i) => s + ai * w[i][j], bj)));
      let h = x.arraySync() as number[][];
      for (let i = 0; i < 2; i++) {
        const p = `encoder/net/gated${i}`;
        const lin = mat(h, get(`${p}/h/kernel`).arraySync() as number[][], get(`${p}/h/bias`).arraySync() as number[]);
        const gate = mat(h, get(`${p}/g/kernel`).arraySync() as number[][], get(`${p}/g/bias`).arraySync() as number[]);
        h = lin.map((row, r) => row.map((a, j) => a / (1 + Math.exp(-gate[r][j]))));
      }
      const g = got.arraySync() as number[][];
      expect(g.length).to.equal(4);
      for (let r = 0; r < 4; r++) for (let j = 0; j < 3; j++) expect(g[r][j]).to.be.closeTo(h[r][j], 1e-5);
      tf.dispose([x, got]);
    } finally {
      disposeParts(parts);
    }
  });

  it('Should draw he-normal kernels with variance 2 / fanIn (within 4 standard errors) and keep PyTorch bounds otherwise', () => {
    const he = buildParts(gated('he-normal', [300]), { ...TINY_IMAGE_INFO, shape: [28, 28, 1], dim: 784 });
    const pt = buildParts(gated('pytorch', [300]), { ...TINY_IMAGE_INFO, shape: [28, 28, 1], dim: 784 });
    try {
      const w = Array.from(he.model.variables().get('encoder/net/gated0/h/kernel')!.dataSync());
      const n = w.length;
      const mean = w.reduce((s, a) => s + a, 0) / n;
      const variance = w.reduce((s, a) => s + (a - mean) ** 2, 0) / (n - 1);
      const target = 2 / 784;
      // the sample variance of n normals has standard error target * sqrt(2 / (n - 1))
      expect(Math.abs(variance - target)).to.be.below(4 * target * Math.sqrt(2 / (n - 1)));
      expect(Math.abs(mean)).to.be.below(4 * Math.sqrt(target / n));
      const u = Array.from(pt.model.variables().get('encoder/net/gated0/h/kernel')!.dataSync());
      const bound = 1 / Math.sqrt(784);
      expect(u.reduce((m, a) => Math.max(m, Math.abs(a)), 0)).to.be.at.most(bound);
      // uniform on [-a, a] has variance a^2 / 3
      const uv = u.reduce((s, a) => s + a * a, 0) / u.length;
      expect(uv).to.be.closeTo(bound ** 2 / 3, 4 * (bound ** 2 / 3) * Math.sqrt(0.8 / u.length));
    } finally {
      disposeParts(he);
      disposeParts(pt);
    }
  });

  it('Should reject an empty hidden list and an unknown initialisation with exact messages', () => {
    expectThrowExact(
      () => buildParts({ encoder: { use: 'gated-mlp', 'gated-mlp': { hiddenSizes: [] } } }),
      ConfigError,
      'encoder.gated-mlp.hiddenSizes: must list at least one hidden layer; got []',
    );
    expectThrowExact(
      () => experimentFromObject(experimentObject({ decoder: { use: 'gated-mlp', 'gated-mlp': { init: 'he' } } }), registryOf()),
      ConfigError,
      'decoder.gated-mlp.init: must be one of "pytorch", "he-normal"; got "he"',
    );
  });
});
