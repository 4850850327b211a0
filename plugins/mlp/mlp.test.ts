import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, Rng, experimentFromObject } from '../../core';
import { buildParts, describeConformance, disposeParts, experimentObject, expectThrowExact, registryOf, TINY_IMAGE_INFO } from '../../testing';
import { mlpDecoder } from './mlp.decoder';
import { mlpEncoder } from './mlp.encoder';

describe('mlp encoder and decoder', () => {
  const conditioned = { ...TINY_IMAGE_INFO, condDim: 4 };
  describeConformance(mlpEncoder, [
    { config: { hiddenSizes: [16] } },
    { title: 'two hidden layers, tanh, conditioned on labels', config: { hiddenSizes: [12, 8], activation: 'tanh' }, info: conditioned },
  ]);
  describeConformance(mlpDecoder, [
    { config: { hiddenSizes: [16] } },
    { title: 'two hidden layers, elu, conditioned on labels', config: { hiddenSizes: [8, 12], activation: 'elu' }, info: conditioned },
  ]);

  it('Should size its layers from the data, the latent and the likelihood', () => {
    const parts = buildParts({ likelihood: { use: 'gaussian', gaussian: { scale: 'learned' } } }, { ...TINY_IMAGE_INFO, condDim: 4 });
    const shapes = Object.fromEntries([...parts.model.variables()].map(([k, v]) => [k, v.shape]));
    expect(shapes['encoder/mlp/dense0/kernel']).to.deep.equal([64 + 4, 16]);
    expect(shapes['latent/loc/kernel']).to.deep.equal([16, 3]);
    expect(shapes['decoder/mlp/dense0/kernel']).to.deep.equal([3 + 4, 16]);
    expect(shapes['decoder/mlp/dense1/kernel']).to.deep.equal([16, 64 * 2]);
  });

  it('Should leave the conditioning input out with conditioned: false, so the output does not move with it', () => {
    const info = { ...TINY_IMAGE_INFO, condDim: 4 };
    const parts = buildParts({ encoder: { use: 'mlp', mlp: { hiddenSizes: [16], conditioned: false } }, decoder: { use: 'mlp', mlp: { hiddenSizes: [16], conditioned: false } } }, info);
    const shapes = Object.fromEntries([...parts.model.variables()].map(([k, v]) => [k, v.shape]));
    expect(shapes['encoder/mlp/dense0/kernel']).to.deep.equal([64, 16]);
    expect(shapes['decoder/mlp/dense0/kernel']).to.deep.equal([3, 16]);
    const o = { training: false, rng: Rng.derive(0, 'c') };
    const x = tf.fill([2, 64], 0.5) as tf.Tensor2D;
    const z = tf.fill([2, 3], 0.3) as tf.Tensor2D;
    const [c1, c2] = [tf.zeros([2, 4]) as tf.Tensor2D, tf.ones([2, 4]) as tf.Tensor2D];
    for (const [what, f] of [['encoder', (c: tf.Tensor2D) => parts.model.encoder.encode(x, c, o) as tf.Tensor2D], ['decoder', (c: tf.Tensor2D) => parts.model.decoder.decode(z, c, o)]] as const) {
      const [a, b] = [f(c1), f(c2)];
      expect(Array.from(a.dataSync()), what).to.deep.equal(Array.from(b.dataSync()));
      tf.dispose([a, b]);
    }
    // conditioned (the default), the same inputs give outputs that move with cond
    const with_ = buildParts({}, info);
    const [d1, d2] = [with_.model.decoder.decode(z, c1, o), with_.model.decoder.decode(z, c2, o)];
    expect(Array.from(d1.dataSync())).not.to.deep.equal(Array.from(d2.dataSync()));
    tf.dispose([x, z, c1, c2, d1, d2]);
    disposeParts(parts);
    disposeParts(with_);
  });

  it('Should reject a bad activation and an empty hidden list with exact messages', () => {
    expectThrowExact(
      () => experimentFromObject(experimentObject({ encoder: { use: 'mlp', mlp: { activation: 'rellu' } } }), registryOf()),
      ConfigError,
      'encoder.mlp.activation: must be one of "relu", "elu", "leaky-relu", "tanh", "sigmoid", "softplus", "selu", "swish", "linear"; got "rellu". Did you mean "relu"?',
    );
    expectThrowExact(
      () => buildParts({ encoder: { use: 'mlp', mlp: { hiddenSizes: [] } } }),
      ConfigError,
      'encoder.mlp.hiddenSizes: must list at least one hidden layer; got []',
    );
  });
});
