import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, Rng } from '../../core';
import { buildParts, describeConformance, disposeParts, experimentOf, expectThrowExact } from '../../testing';
import { pixelCnnPrior, type GatedPixelCnnPrior } from './pixelcnn.prior';

/** A small VQ-VAE on 8x8 images with one stride-2 convolution: a 4x4 grid of K = 5 codes. */
const VQ = {
  encoder: { use: 'vq-conv', 'vq-conv': { channels: [4], residualBlocks: 1, residualChannels: 4, outputChannels: 3 } },
  latent: { use: 'vq', vq: { codebookSize: 5 } },
  decoder: { use: 'vq-conv', 'vq-conv': { channels: [4], residualBlocks: 1, residualChannels: 4 } },
};
const SMALL = { layers: 3, channels: 8, kernelSize: 3, firstKernelSize: 3 };
const withPrior = (cfg: Record<string, unknown> = SMALL, over: Record<string, unknown> = {}) =>
  buildParts({ ...VQ, prior: { use: 'pixelcnn', pixelcnn: cfg }, objective: { use: 'prior-nll' }, ...over });
const K = 5;
const [H, W] = [4, 4];

describe('pixelcnn prior', () => {
  // With objective elbo, whose Monte-Carlo KL carries -log p(codes), every variable gets a gradient.
  describeConformance(pixelCnnPrior, [{ title: '3 gated layers over a 4x4 grid of 5 codes', config: SMALL, slots: { ...VQ, objective: { use: 'elbo' } }, training: false }]);

  it('Should be autoregressive: the logits at every position up to p (raster order) ignore the code at p, and later ones see it', () => {
    const parts = withPrior();
    const prior = parts.model.prior as GatedPixelCnnPrior;
    const rng = Rng.derive(4, 'codes');
    const base = Float32Array.from({ length: 2 * H * W }, () => rng.int(K));
    const logitsOf = (codes: Float32Array) => tf.tidy(() => Array.from(prior.logits(tf.tensor3d(codes, [2, H, W]), null).dataSync()));
    const ref = logitsOf(base);
    for (let p = 0; p < H * W; p++) {
      const changed = Float32Array.from(base);
      for (let r = 0; r < 2; r++) changed[r * H * W + p] = (changed[r * H * W + p] + 1 + r) % K;
      const out = logitsOf(changed);
      let later = 0;
      for (let r = 0; r < 2; r++) {
        for (let q = 0; q < H * W; q++) {
          for (let k = 0; k < K; k++) {
            const at = (r * H * W + q) * K + k;
            if (q <= p) expect(out[at], `row ${r}, position ${q} after changing ${p}`).to.equal(ref[at]);
            else later += Math.abs(out[at] - ref[at]);
          }
        }
      }
      // every later position can see p (the receptive field covers a whole row), so some logit moves
      if (p < H * W - 1) expect(later, `positions after ${p}`).to.be.greaterThan(0);
    }
    disposeParts(parts);
  });

  it('Should score codes by the sum of log softmax of the logits at each position', () => {
    const parts = withPrior();
    const prior = parts.model.prior as GatedPixelCnnPrior;
    const codes = tf.tensor3d(Array.from({ length: H * W }, (_, i) => (i * 3) % K), [1, H, W]);
    const logits = prior.logits(codes, null).dataSync();
    const c = codes.dataSync();
    // log p = sum_q (l_q[c_q] - log sum_k exp l_q[k])
    let byHand = 0;
    for (let q = 0; q < H * W; q++) {
      const l = Array.from(logits.slice(q * K, q * K + K));
      byHand += l[c[q]] - Math.log(l.reduce((a, v) => a + Math.exp(v), 0));
    }
    const lp = prior.logProb(codes, null);
    expect(lp.dataSync()[0]).to.be.closeTo(byHand, 1e-4);
    tf.dispose([codes, lp]);
    disposeParts(parts);
  });

  it('Should draw valid codes position by position, the same for the same seed and others for another', () => {
    const parts = withPrior();
    const prior = parts.model.prior as GatedPixelCnnPrior;
    const draw = (seed: number) => {
      const s = prior.sample(8, Rng.derive(seed, 'draw'), null);
      expect(s.shape).to.deep.equal([8, H, W]);
      const v = Array.from(s.dataSync());
      s.dispose();
      return v;
    };
    const a = draw(9);
    expect(a.every((c) => Number.isInteger(c) && c >= 0 && c < K)).to.equal(true);
    expect(draw(9)).to.deep.equal(a);
    expect(draw(10)).to.not.deep.equal(a);
    disposeParts(parts);
  });

  it('Should draw what the whole-grid logits give (the sampler runs only the rows down to the position, and the head at it)', () => {
    const parts = withPrior();
    const prior = parts.model.prior as GatedPixelCnnPrior;
    const n = 6;
    const s = prior.sample(n, Rng.derive(3, 'draw'), null);
    const drawn = Array.from(s.dataSync());
    s.dispose();
    // the same inverse-CDF draws from softmax of the logits of the whole grid, in raster order
    const rng = Rng.derive(3, 'draw');
    const codes = new Float32Array(n * H * W);
    for (let q = 0; q < H * W; q++) {
      const p = tf.tidy(() => tf.softmax(prior.logits(tf.tensor3d(codes, [n, H, W]), null)).dataSync());
      for (let r = 0; r < n; r++) {
        const u = rng.uniform();
        let k = 0;
        let cum = p[(r * H * W + q) * K];
        while (cum <= u && k < K - 1) cum += p[(r * H * W + q) * K + ++k];
        codes[r * H * W + q] = k;
      }
    }
    expect(drawn).to.deep.equal(Array.from(codes));
    disposeParts(parts);
  });

  it('Should draw a code with its softmax probability (one position: a 1x1 grid; frequencies within 4 standard errors)', () => {
    // the default MLP encoder gives flat features, a 1x1 grid; three transposed convolutions take it to 8x8
    const parts = buildParts({
      latent: { use: 'vq', vq: { codebookSize: K } },
      decoder: { use: 'vq-conv', 'vq-conv': { channels: [4, 4, 4], residualBlocks: 0 } },
      prior: { use: 'pixelcnn', pixelcnn: { ...SMALL, layers: 1 } },
      objective: { use: 'prior-nll' },
    });
    const prior = parts.model.prior as GatedPixelCnnPrior;
    const n = 4000;
    const s = prior.sample(n, Rng.derive(9, 'draw'), null);
    const v = s.dataSync();
    // the one position sees no code: its distribution is softmax(logits) whatever the input
    const p = tf.tidy(() => Array.from(tf.softmax(tf.reshape(prior.logits(tf.zeros([1, 1, 1]), null), [K])).dataSync()));
    for (let k = 0; k < K; k++) {
      let count = 0;
      for (let r = 0; r < n; r++) if (v[r] === k) count++;
      expect(Math.abs(count / n - p[k]), `code ${k}: ${count} of ${n}, p = ${p[k]}`).to.be.lessThan(4 * Math.sqrt((p[k] * (1 - p[k])) / n));
    }
    s.dispose();
    disposeParts(parts);
  });

  it('Should condition on the labels when the data gives them (a bias per class in every gated layer)', () => {
    const info = { name: 'tiny', shape: [8, 8, 1] as [number, number, number], dim: 64, numClasses: 2, condDim: 2 };
    const parts = buildParts({ ...VQ, prior: { use: 'pixelcnn', pixelcnn: SMALL }, objective: { use: 'prior-nll' } }, info);
    const prior = parts.model.prior as GatedPixelCnnPrior;
    expect([...prior.variables().keys()].filter((k) => k.includes('cond')).length).to.equal(2 * SMALL.layers * 2);
    const codes = tf.zeros([2, H, W]);
    const lp = prior.logProb(codes, tf.tensor2d([[1, 0], [0, 1]]), undefined).dataSync();
    expect(lp[0]).to.not.equal(lp[1]);
    codes.dispose();
    disposeParts(parts);
  });

  it('Should refuse bad settings before training, naming the key', () => {
    expectThrowExact(() => withPrior({ ...SMALL, kernelSize: 4 }), ConfigError, 'prior.pixelcnn.kernelSize: must be an odd integer >= 3; got 4');
    expectThrowExact(() => withPrior({ ...SMALL, firstKernelSize: 1 }), ConfigError, 'prior.pixelcnn.firstKernelSize: must be an odd integer >= 3; got 1');
    expectThrowExact(
      () => withPrior({ ...SMALL, layers: 1 }),
      ConfigError,
      'prior.pixelcnn.layers: 1 gated layers (firstKernelSize 3, kernelSize 3) see 1 codes to the left of a position, less than one row: the code grid is 4 wide, so it must see 3; use at least 3 layers or larger kernels',
    );
    expectThrowExact(() => experimentOf({ ...VQ, prior: { use: 'pixelcnn', pixelcnn: { layers: 0 } } }), ConfigError, 'prior.pixelcnn.layers: must be an integer in [1, 2147483647]; got 0');
    expectThrowExact(
      () => buildParts({ prior: { use: 'pixelcnn' } }),
      ConfigError,
      'prior.pixelcnn: needs a latent whose prior codes are a grid [H, W] of code indices (numCodes and priorShape, as latent "vq" gives); latent GaussianLatent has priorShape [3] and no numCodes',
    );
  });
});
