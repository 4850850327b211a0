import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, Rng } from '../../core';
import { buildParts, describeConformance, expectThrowExact, MNIST_INFO, TINY_IMAGE_INFO } from '../../testing';
import { convDecoder } from './conv.decoder';
import { convEncoder } from './conv.encoder';

const small = { encoder: { use: 'conv', conv: { channels: [4, 8] } }, decoder: { use: 'conv', conv: { channels: [8, 4] } } };

describe('conv encoder and decoder', () => {
  // Convolutions on the cpu backend cost ~10 ms a step even this small: the training check runs
  // on the two-layer cases only; the conditioned cases with a dense layer get every other check.
  const conditioned = { ...TINY_IMAGE_INFO, condDim: 4 };
  describeConformance(convEncoder, [
    { title: 'two stride-2 layers on 8x8 images', config: { channels: [4, 8] } },
    { title: 'one layer and a dense layer, conditioned', config: { channels: [4], hiddenSize: 10 }, info: conditioned, training: false },
  ]);
  describeConformance(convDecoder, [
    { title: 'two stride-2 layers on 8x8 images', config: { channels: [8, 4] } },
    { title: 'one layer and a dense layer, conditioned', config: { channels: [4], hiddenSize: 10 }, info: conditioned, training: false },
  ]);

  it('Should map 28x28 images through 14x14x32 and 7x7x64 to 3136 features, and decode back to 784 logits', () => {
    const parts = buildParts({ encoder: { use: 'conv' }, decoder: { use: 'conv' } }, MNIST_INFO);
    expect(parts.model.encoder.outputDim).to.equal(7 * 7 * 64);
    const opts = { training: false, rng: Rng.derive(0, 'c') };
    const x = tf.zeros([2, 784]) as tf.Tensor2D;
    expect((parts.model.encoder.encode(x, null, opts) as tf.Tensor).shape).to.deep.equal([2, 3136]);
    expect(parts.model.decoder.decode(tf.zeros([2, 3]) as tf.Tensor2D, null, opts).shape).to.deep.equal([2, 784]);
  });

  it('Should reject layer counts that do not divide the image size, and vector data', () => {
    expectThrowExact(
      () => buildParts({ encoder: { use: 'conv', conv: { channels: [4, 8, 16] } } }, MNIST_INFO),
      ConfigError,
      'encoder.conv.channels: 3 stride-2 layers need image sides divisible by 8; data set "mnist" is 28x28',
    );
    expectThrowExact(
      () => buildParts(small, { name: 'synthetic/mixture2d', shape: [1, 1, 2], dim: 2, numClasses: 4, condDim: 0 }),
      ConfigError,
      'encoder.conv.channels: convolutions need image data; data set "synthetic/mixture2d" has examples of shape [1, 1, 2]',
    );
  });
});
