/**
 * core/math.ts: the reparameterised log q(z) against the Gaussian log-density it replaces, and the
 * summed KL to a standard normal against its per-dimension form (cpu; the fused kernels of the
 * native pack are compared with these in test/backend/native.test.ts).
 */
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
// The gradients of tfjs's ops and vaelab's fused kernels (tfjs-core alone registers none).
import '../core/gradients';
import { diagGaussianLogProb, klStdNormal, klStdNormalPerDim, reparamLogProb } from '../core/math';
import { Data, expectClose } from './kits/backends';

describe('core/math: reparameterised log q(z) and the summed standard-normal KL', () => {
  it('Should give diagGaussianLogProb(loc + exp(logVar / 2) eps) and the same gradients with respect to loc and logVar', () => {
    const loc = new Data(61, [7, 5]);
    const logVar = new Data(62, [7, 5]);
    const eps = new Data(63, [7, 5]);
    const dy = new Data(64, [7]);
    const viaZ = (l: tf.Tensor, v: tf.Tensor) => {
      const z = tf.add(l, tf.mul(tf.exp(tf.mul(v, 0.5)), eps.t())) as tf.Tensor2D;
      return diagGaussianLogProb(z, l, v);
    };
    const viaEps = (l: tf.Tensor, v: tf.Tensor) => tf.add(reparamLogProb(v as tf.Tensor2D, eps.t() as tf.Tensor2D), tf.mul(tf.sum(l, -1), 0));
    const plain = (t: tf.Tensor) => ({ shape: t.shape, values: t.dataSync() as Float32Array });
    tf.tidy(() => {
      expectClose(plain(viaEps(loc.t(), logVar.t())), plain(viaZ(loc.t(), logVar.t())), 'log q', 1e-5);
      const [gl1, gv1] = tf.grads(viaZ)([loc.t(), logVar.t()], dy.t());
      const [gl2, gv2] = tf.grads(viaEps)([loc.t(), logVar.t()], dy.t());
      // d log q / d loc is 0 on both paths (z moves with loc); d / d logVar is -dy / 2 per dimension.
      expectClose(plain(gl2), plain(gl1), 'd/d loc', 1e-5);
      expectClose(plain(gv2), plain(gv1), 'd/d logVar', 1e-5);
      expect(Math.max(...Array.from(gl1.dataSync(), Math.abs))).to.be.below(1e-5);
    });
  });

  it('Should sum the per-dimension KL over the last axis', () => {
    const loc = new Data(65, [4, 6]);
    const logVar = new Data(66, [4, 6]);
    tf.tidy(() => {
      const summed = klStdNormal(loc.t() as tf.Tensor2D, logVar.t() as tf.Tensor2D);
      const perDim = tf.sum(klStdNormalPerDim(loc.t() as tf.Tensor2D, logVar.t() as tf.Tensor2D), -1);
      expect(summed.shape).to.deep.equal([4]);
      expectClose({ shape: summed.shape, values: summed.dataSync() as Float32Array }, { shape: perDim.shape, values: perDim.dataSync() as Float32Array }, 'kl', 1e-6);
    });
  });
});
