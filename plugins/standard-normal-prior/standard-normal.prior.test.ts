import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { Rng, ShapeError, diagGaussianLogProb } from '../../core';
import { buildParts, describeConformance, MNIST_INFO } from '../../testing';
import { standardNormalPrior } from './standard-normal.prior';

describe('standard-normal prior', () => {
  describeConformance(standardNormalPrior, [
    { title: 'latent dim 2', slots: { latent: { use: 'gaussian', gaussian: { dim: 2 } } } },
    { title: 'latent dim 16', slots: { latent: { use: 'gaussian', gaussian: { dim: 16 } } } },
  ]);

  const prior = (dim: number) => buildParts({ latent: { use: 'gaussian', gaussian: { dim } } }, MNIST_INFO).model.prior;

  it('Should give log N(0; 0, I) = -d/2 log(2 pi) and log N([1, 2]; 0, I) = -(log 2pi + 2.5)', () => {
    const p1 = prior(4);
    expect(p1.logProb(tf.zeros([1, 4]) as tf.Tensor2D, null).dataSync()[0]).to.be.closeTo(-2 * Math.log(2 * Math.PI), 1e-5);
    const p2 = prior(2);
    // -0.5 * (1^2 + 2^2) - 2 * 0.5 * log(2 pi)
    expect(p2.logProb(tf.tensor2d([[1, 2]]), null).dataSync()[0]).to.be.closeTo(-2.5 - Math.log(2 * Math.PI), 1e-5);
  });

  const cases: Array<[number, number, number, number]> = [
    // [loc, logVar, dims, KL] with KL = 0.5 * dims * (loc^2 + e^logVar - logVar - 1)
    [0, 0, 10, 0],
    [1, 0, 10, 5],
    [0, Math.log(2), 1, 0.5 * (2 - Math.log(2) - 1)],
    [-0.5, -1, 3, 1.5 * (0.25 + Math.exp(-1) + 1 - 1)],
  ];
  for (const [loc, lv, d, kl] of cases) {
    it(`Should give KL(N(${loc}, e^${lv.toFixed(3)}) || N(0,1)) over ${d} dims = ${kl.toFixed(4)}`, () => {
      const p = prior(d);
      const q = { loc: tf.fill([2, d], loc) as tf.Tensor2D, logVar: tf.fill([2, d], lv) as tf.Tensor2D };
      const v = p.analyticKl!(q, null).dataSync();
      expect(v[0]).to.be.closeTo(kl, 1e-5);
      expect(v[1]).to.be.closeTo(kl, 1e-5);
      const perDim = p.analyticKl!(q, null, true);
      expect(perDim.shape).to.deep.equal([2, d]);
      // every dimension carries the same share, KL / dims
      for (const v of perDim.dataSync()) expect(v).to.be.closeTo(kl / d, 1e-5);
    });
  }

  it('Should give the KL of each dimension on its own when dimensions differ (perDim)', () => {
    const p = prior(3);
    // per dimension 0.5 * (loc^2 + e^logVar - logVar - 1):
    //   row 0: loc 1, logVar 0 -> 0.5; loc 0, var 2 -> 0.5 * (1 - log 2) = 0.153426; loc -2, logVar -1 -> 2 + e^-1 / 2 = 2.183940
    //   row 1: loc 0, logVar 0 -> 0; loc 0.5, logVar 1 -> 0.5 * (e - 1.75) = 0.484141; loc 3, var 1/4 -> 0.5 * (8.25 + log 4) = 4.818147
    const q = {
      loc: tf.tensor2d([[1, 0, -2], [0, 0.5, 3]]),
      logVar: tf.tensor2d([[0, Math.log(2), -1], [0, 1, Math.log(0.25)]]),
    };
    const expected = [0.5, 0.153426, 2.18394, 0, 0.484141, 4.818147];
    const perDim = p.analyticKl!(q, null, true);
    expect(perDim.shape).to.deep.equal([2, 3]);
    Array.from(perDim.dataSync()).forEach((v, i) => expect(v, `entry ${i}`).to.be.closeTo(expected[i], 1e-5));
    // the per-example KL is the row sum: 2.837366 and 5.302288
    const total = p.analyticKl!(q, null).dataSync();
    expect(total[0]).to.be.closeTo(2.837366, 1e-5);
    expect(total[1]).to.be.closeTo(5.302288, 1e-5);
  });

  it('Should match the closed-form KL with a Monte-Carlo estimate over 20 000 samples (rtol 0.05)', () => {
    const d = 3;
    const p = prior(d);
    const loc = tf.tensor2d([[0.8, -0.3, 1.5]]);
    const logVar = tf.tensor2d([[-0.7, 0.4, -1.2]]);
    const exact = p.analyticKl!({ loc, logVar }, null).dataSync()[0];
    const n = 20000;
    const mc = tf.tidy(() => {
      const eps = Rng.derive(0, 'mc-kl').normalTensor([n, d]);
      const z = tf.add(loc, tf.mul(tf.exp(tf.mul(logVar, 0.5)), eps)) as tf.Tensor2D;
      return tf.mean(tf.sub(diagGaussianLogProb(z, loc, logVar), p.logProb(z, null))).dataSync()[0];
    });
    expect(Math.abs(mc - exact) / exact).to.be.below(0.05);
  });

  it('Should draw samples with mean 0 and variance 1 within 4 standard errors', () => {
    const n = 20000;
    const s = prior(2).sample(n, Rng.derive(3, 's'), null);
    const [m0, m1] = tf.mean(s, 0).dataSync();
    const [v0] = tf.moments(s, 0).variance.dataSync();
    expect(s.shape).to.deep.equal([n, 2]);
    expect(Math.abs(m0)).to.be.below(4 / Math.sqrt(n));
    expect(Math.abs(m1)).to.be.below(4 / Math.sqrt(n));
    expect(Math.abs(v0 - 1)).to.be.below(4 * Math.sqrt(2 / n));
  });

  it('Should name the expected shape when z has the wrong width', () => {
    const p = prior(16);
    expect(() => p.logProb(tf.zeros([32, 8]) as tf.Tensor2D, null)).to.throw(
      ShapeError,
      "StandardNormalPrior.logProb: z must be [N, 16] (the latent's priorDim); got [32, 8]",
    );
  });
});
