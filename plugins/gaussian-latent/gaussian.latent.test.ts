import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, Rng, diagGaussianLogProb, experimentFromObject } from '../../core';
import { buildParts, describeConformance, experimentObject, expectThrowExact, registryOf } from '../../testing';
import { gaussianLatent, type GaussianLatent } from './gaussian.latent';

describe('gaussian latent', () => {
  describeConformance(gaussianLatent, [{ config: { dim: 1 } }, { config: { dim: 8 } }]);

  const latentOf = (dim: number) => buildParts({ latent: { use: 'gaussian', gaussian: { dim } } }).model.latent as GaussianLatent;
  const opts = (seed: number) => ({ training: true, rng: Rng.derive(seed, 'latent-test') });

  it('Should stack S samples sample-major with logQ = log N(z; loc, e^logVar)', () => {
    const latent = latentOf(4);
    const h = tf.randomUniform([3, 16], -1, 1, 'float32', 5) as tf.Tensor2D;
    const s = latent.sample(h, 2, opts(1));
    expect(s.z.shape).to.deep.equal([6, 4]);
    expect(s.logQ.shape).to.deep.equal([6]);
    const locS = tf.tile(s.posterior!.loc, [2, 1]);
    const lvS = tf.tile(s.posterior!.logVar, [2, 1]);
    const expected = diagGaussianLogProb(s.z as tf.Tensor2D, locS, lvS).dataSync();
    Array.from(s.logQ.dataSync()).forEach((v, i) => expect(v).to.be.closeTo(expected[i], 1e-4));
  });

  it('Should draw z whose sample mean and variance match loc and e^logVar within 4 standard errors', () => {
    const latent = latentOf(2);
    const h = tf.randomUniform([1, 16], -1, 1, 'float32', 9) as tf.Tensor2D;
    const n = 20000;
    const s = latent.sample(h, n, opts(2));
    const loc = s.posterior!.loc.dataSync();
    const variance = Array.from(tf.exp(s.posterior!.logVar).dataSync());
    const { mean, variance: v } = tf.moments(s.z, 0);
    const m = mean.dataSync();
    const vv = v.dataSync();
    for (let d = 0; d < 2; d++) {
      expect(Math.abs(m[d] - loc[d])).to.be.below(4 * Math.sqrt(variance[d] / n));
      expect(Math.abs(vv[d] - variance[d])).to.be.below(4 * variance[d] * Math.sqrt(2 / n));
    }
  });

  it('Should give the mode as the posterior mean h W_loc + b_loc, with weights set by hand', () => {
    const latent = latentOf(2);
    const vars = latent.variables();
    // h [1, 16] = e_0 + 2 e_1 (0 elsewhere); W_loc column 0 = [1, 3, 0...], column 1 = [-1, 0.5, 0...]; b_loc = [0.25, -1].
    const w = new Float32Array(16 * 2);
    w.set([1, -1], 0); // row 0
    w.set([3, 0.5], 2); // row 1
    vars.get('loc/kernel')!.assign(tf.tensor2d(w, [16, 2]));
    vars.get('loc/bias')!.assign(tf.tensor1d([0.25, -1]));
    const h = tf.tensor2d([[1, 2, ...new Array(14).fill(0)]]);
    // loc_0 = 1*1 + 2*3 + 0.25 = 7.25; loc_1 = 1*(-1) + 2*0.5 - 1 = -1
    const mode = Array.from(latent.mode(h, opts(3)).dataSync());
    expect(mode[0]).to.be.closeTo(7.25, 1e-6);
    expect(mode[1]).to.be.closeTo(-1, 1e-6);
    // and it does not depend on the noise: another seed, the same code
    expect(Array.from(latent.mode(h, opts(4)).dataSync())).to.deep.equal(mode);
  });

  it('Should match a central finite difference of d sum(z^2) / d(logVar bias) (eps 1e-3, rtol 0.02)', () => {
    const latent = latentOf(2);
    const h = tf.randomUniform([4, 16], -1, 1, 'float32', 11) as tf.Tensor2D;
    const bias = latent.variables().get('logVar/bias')!;
    const f = () => tf.sum(tf.square(latent.sample(h, 1, opts(5)).z)) as tf.Scalar;
    const { grads } = tf.variableGrads(f, [bias]);
    const analytic = grads[bias.name].dataSync()[0];
    const base = bias.dataSync().slice();
    const at = (delta: number) => {
      const b = base.slice();
      b[0] += delta;
      bias.assign(tf.tensor1d(b));
      return f().dataSync()[0];
    };
    const eps = 1e-3;
    const numeric = (at(eps) - at(-eps)) / (2 * eps);
    bias.assign(tf.tensor1d(base));
    expect(Math.abs(analytic - numeric) / Math.abs(numeric)).to.be.below(0.02);
  });

  it('Should reject a zero latent dimension with the exact message', () => {
    expectThrowExact(
      () => experimentFromObject(experimentObject({ latent: { use: 'gaussian', gaussian: { dim: 0 } } }), registryOf()),
      ConfigError,
      'latent.gaussian.dim: must be an integer in [1, 2147483647]; got 0',
    );
    expectThrowExact(
      () => experimentFromObject(experimentObject({ latent: { use: 'gaussian', gaussian: { dims: 4 } } }), registryOf()),
      ConfigError,
      'latent.gaussian.dims: not declared in the schema of plugin "gaussian" (keys: dim, minLogVar). Did you mean "dim"?',
    );
  });
});
