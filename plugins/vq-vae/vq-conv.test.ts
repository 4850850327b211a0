import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, Rng } from '../../core';
import { MNIST_INFO, buildParts, describeConformance, disposeParts, expectThrowExact, greyBatch } from '../../testing';
import { ResidualBlock } from './residual';
import { vqConvDecoder } from './vq-conv.decoder';
import { vqConvEncoder, type VqConvEncoder } from './vq-conv.encoder';

const small = {
  encoder: { use: 'vq-conv', 'vq-conv': { channels: [4, 4], residualBlocks: 1, residualChannels: 4, outputChannels: 3 } },
  latent: { use: 'vq', vq: { codebookSize: 5 } },
  decoder: { use: 'vq-conv', 'vq-conv': { channels: [4, 4], residualBlocks: 1, residualChannels: 4 } },
  prior: { use: 'uniform-codes' },
  objective: { use: 'vq-vae' },
};

describe('vq-conv encoder and decoder', () => {
  describeConformance(vqConvEncoder, [{ title: 'two strided convolutions, 2x2x3 grid', config: small.encoder['vq-conv'], slots: { ...small, encoder: undefined }, training: false }]);
  describeConformance(vqConvDecoder, [
    { title: 'two transposed convolutions from a 2x2 grid', config: small.decoder['vq-conv'], slots: { ...small, decoder: undefined }, training: false },
    {
      title: 'class-conditional (cond as extra channels)',
      config: small.decoder['vq-conv'],
      slots: { ...small, decoder: undefined },
      info: { name: 'tiny', shape: [8, 8, 1], dim: 64, numClasses: 4, condDim: 4 },
      training: false,
    },
  ]);

  it("Should take 28x28 images to the paper's 7x7 grid of D-vectors and back to 784 pixels with the defaults", () => {
    const parts = buildParts({ ...small, encoder: { use: 'vq-conv' }, decoder: { use: 'vq-conv' }, latent: { use: 'vq', vq: { codebookSize: 8 } } }, MNIST_INFO);
    const enc = parts.model.encoder as VqConvEncoder;
    expect(enc.outputShapes).to.deep.equal([[7, 7, 64]]);
    expect(parts.model.latent.shape).to.deep.equal([7, 7, 64]);
    const b = greyBatch(2, MNIST_INFO);
    const o = { training: false, rng: Rng.derive(0, 't') };
    const [h] = enc.encode(b.x, null, o);
    expect(h.shape).to.deep.equal([2, 7, 7, 64]);
    const params = parts.model.decoder.decode(parts.model.latent.mode([h], o), null, o);
    expect(params.shape).to.deep.equal([2, 784]);
    tf.dispose([b.x, h, params]);
    disposeParts(parts);
  });

  it('Should add the residual branch to its input: x + conv1x1(relu(conv3x3(relu(x)))), the identity when the 1x1 weights are 0', () => {
    const block = new ResidualBlock(2, 3, Rng.derive(0, 'res'));
    const x = tf.tensor4d([1, -2, 0.5, 3, -1, 0, 2, 2], [1, 2, 2, 2]);
    const [k1, b1] = [...block.variables().entries()].filter(([k]) => k.startsWith('conv1/')).map(([, v]) => v);
    k1.assign(tf.zerosLike(k1));
    b1.assign(tf.tensor1d([0.25, -1]));
    // the 1x1 branch now outputs its bias (0.25, -1) at every position
    const y = block.apply(x);
    expect(Array.from(y.dataSync())).to.deep.equal([1.25, -3, 0.75, 2, -0.75, -1, 2.25, 1]);
    tf.dispose([x, y]);
    block.dispose();
  });

  it('Should refuse a decoder whose transposed convolutions do not give the image back, and a flat latent', () => {
    expectThrowExact(
      () => buildParts({ ...small, decoder: { use: 'vq-conv', 'vq-conv': { channels: [4, 4, 4] } } }),
      ConfigError,
      'decoder.vq-conv.channels: 3 stride-2 transposed convolutions take the 2x2 code grid to 16x16; data set "tiny" is 8x8',
    );
    expectThrowExact(
      () => buildParts({ decoder: { use: 'vq-conv' } }),
      ConfigError,
      'decoder.vq-conv: needs a latent whose codes form a grid [H, W, D]; latent GaussianLatent gives [3] per example',
    );
    expectThrowExact(() => buildParts({ ...small, encoder: { use: 'vq-conv', 'vq-conv': { channels: [] } } }), ConfigError, 'encoder.vq-conv.channels: must list at least one stride-2 convolution; got []');
  });
});
