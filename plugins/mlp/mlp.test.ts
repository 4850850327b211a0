import { expect } from 'chai';
import { ConfigError, experimentFromObject } from '../../core';
import { buildParts, describeConformance, experimentObject, expectThrowExact, registryOf, TINY_IMAGE_INFO } from '../../testing';
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
