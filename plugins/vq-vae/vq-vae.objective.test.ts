import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, Rng } from '../../core';
import { buildParts, describeConformance, disposeParts, expectThrowExact, greyBatch, TINY_IMAGE_INFO } from '../../testing';
import { uniformCodesPrior } from './uniform-codes.prior';
import { vqVaeObjective } from './vq-vae.objective';

const small = {
  encoder: { use: 'vq-conv', 'vq-conv': { channels: [4, 4], residualBlocks: 1, residualChannels: 4, outputChannels: 3 } },
  latent: { use: 'vq', vq: { codebookSize: 6 } },
  decoder: { use: 'vq-conv', 'vq-conv': { channels: [4, 4], residualBlocks: 1, residualChannels: 4 } },
  prior: { use: 'uniform-codes' },
  objective: { use: 'vq-vae' },
};
const { prior: _p, ...notPrior } = small;
const { objective: _o, ...notObjective } = small;

describe('vq-vae objective and uniform-codes prior', () => {
  describeConformance(uniformCodesPrior, [{ title: 'K = 6 over a 2x2 grid', slots: notPrior, training: false }]);
  describeConformance(vqVaeObjective, [{ title: 'small VQ-VAE on 8x8', slots: notObjective, training: false }], { deterministic: [] });

  it('Should score every grid -H W log K and draw integer codes uniformly (mean and variance within 4 standard errors)', () => {
    const parts = buildParts(small);
    const prior = parts.model.prior;
    // 2x2 grid, K = 6: -4 log 6
    const lp = prior.logProb(tf.tensor3d([0, 5, 2, 2, 1, 1, 1, 1], [2, 2, 2]), null);
    for (const v of lp.dataSync()) expect(v).to.be.closeTo(-4 * Math.log(6), 1e-5);
    expect(lp.shape).to.deep.equal([2]);
    const n = 5000;
    const s = prior.sample(n, Rng.derive(1, 'uniform-codes'), null);
    expect(s.shape).to.deep.equal([n, 2, 2]);
    const v = Array.from(s.dataSync());
    expect(v.every((c) => Number.isInteger(c) && c >= 0 && c < 6)).to.equal(true);
    // uniform on {0..5}: mean 2.5, variance (36 - 1) / 12 = 2.9167; 20 000 draws
    const mean = v.reduce((a, c) => a + c, 0) / v.length;
    const variance = v.reduce((a, c) => a + (c - mean) ** 2, 0) / v.length;
    expect(Math.abs(mean - 2.5)).to.be.lessThan((4 * Math.sqrt(35 / 12)) / Math.sqrt(v.length));
    expect(Math.abs(variance - 35 / 12)).to.be.lessThan(0.1);
    tf.dispose([lp, s]);
    disposeParts(parts);
  });

  it('Should give loss = reconstruction + codebook + commitment, and in evaluation the mse, the uniform-prior bound and bits per dimension', () => {
    const parts = buildParts(small);
    const b = greyBatch(3, TINY_IMAGE_INFO, 4);
    const mb = { x: b.x, cond: null };
    const tr = parts.objective.terms(mb, { training: true, rng: Rng.derive(0, 'a'), step: 0 });
    expect(Object.keys(tr).sort()).to.deep.equal(['codebook', 'commitment', 'loss', 'reconstruction']);
    const t = parts.objective.terms(mb, { training: false, rng: Rng.derive(0, 'a'), step: 0 });
    const get = (k: string) => Array.from(t[k].dataSync());
    const [loss, rec, cb, cm, mse, elbo, bpd] = ['loss', 'reconstruction', 'codebook', 'commitment', 'mse', 'elbo', 'bits-per-dim'].map(get);
    // the reference values from the model's own pieces: x, E[x | z_q] and log p(x | z_q)
    const o = { training: false, rng: Rng.derive(0, 'b') };
    const xHat = parts.model.reconstruct(mb, o);
    const pass = parts.model.forward(mb, 1, o);
    const x = b.x.arraySync();
    const xh = xHat.arraySync();
    const logPx = Array.from(pass.logPx.dataSync());
    for (let i = 0; i < 3; i++) {
      expect(rec[i]).to.be.closeTo(-logPx[i], 1e-4);
      expect(loss[i]).to.be.closeTo(rec[i] + cb[i] + cm[i], 1e-4);
      const byHand = x[i].reduce((a, xv, d) => a + (xh[i][d] - xv) ** 2, 0) / 64;
      expect(mse[i]).to.be.closeTo(byHand, 1e-6);
      // elbo = log p(x|z) + log p(codes) - log q = -reconstruction - 4 log 6 (q deterministic, 2x2 grid, K = 6)
      expect(elbo[i]).to.be.closeTo(-rec[i] - 4 * Math.log(6), 1e-4);
      // bits per dimension: -elbo / (64 ln 2)
      expect(bpd[i]).to.be.closeTo(-elbo[i] / (64 * Math.LN2), 1e-6);
    }
    tf.dispose([b.x, xHat, ...Object.values(tr), ...Object.values(t), pass.params, pass.logPx, pass.latent.z, pass.latent.priorZ!, pass.latent.logQ, ...Object.values(pass.latent.terms!)]);
    disposeParts(parts);
  });

  it('Should refuse a grid prior on a flat latent', () => {
    expectThrowExact(
      () => buildParts({ prior: { use: 'uniform-codes' } }),
      ConfigError,
      'prior.uniform-codes: needs a latent whose prior codes are a grid [H, W] of code indices (numCodes and priorShape, as latent "vq" gives); latent GaussianLatent has priorShape [3] and no numCodes',
    );
  });
});
