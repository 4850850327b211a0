import { expect } from 'chai';
import { inject, injectable } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import {
  ConfigError,
  Dense,
  Module,
  Rng,
  TOKENS,
  definePlugin,
  drawDiagGaussian,
  experimentFromObject,
  initRng,
  openSession,
  trainingExamples,
  type DataInfo,
  type Encoder,
  type Latent,
  type LatentSample,
  type PassOptions,
} from '../../core';
import {
  buildParts,
  describeConformance,
  experimentObject,
  expectThrowExact,
  greyBatch,
  pluginGrads,
  registryOf,
  trainableVariables,
  TINY_IMAGE_INFO,
} from '../../testing';
import { vampPrior, type VampPrior } from './vamp.prior';

const LOG_2PI = Math.log(2 * Math.PI);

/** A Gaussian latent that only samples: it offers no posterior(h), so the VampPrior cannot use it. */
@injectable()
class SampleOnlyLatent extends Module implements Latent {
  readonly dim = 2;
  readonly priorDim = 2;
  private readonly head: Dense;
  constructor(@inject(TOKENS.Encoder) encoder: Encoder, @inject(TOKENS.Seed) seed: number) {
    super();
    this.head = this.track('head', new Dense(encoder.outputDim, 4, initRng(seed, 'latent', 'sample-only')));
  }
  sample(h: tf.Tensor2D, samples: number, opts: PassOptions): LatentSample {
    const t = this.head.apply(h);
    const d = drawDiagGaussian(tf.slice(t, [0, 0], [-1, 2]), tf.slice(t, [0, 2], [-1, 2]), samples, opts.rng);
    t.dispose();
    return { ...d, samples };
  }
  mode(h: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => tf.slice(this.head.apply(h), [0, 0], [-1, 2]));
  }
}
const sampleOnlyLatent = definePlugin({ slot: 'latent', name: 'sample-only', description: 'a Gaussian latent without posterior()', schema: {}, implementation: SampleOnlyLatent });

const plugins = [vampPrior, sampleOnlyLatent];

/** Two-dimensional data, so that the model can be set by hand. */
const VECTOR_INFO: DataInfo = { name: 'vector', shape: [1, 1, 2], dim: 2, numClasses: 0, condDim: 0 };

/**
 * A model whose q(z|u) is set by hand: linear encoder h = u (identity kernel, zero bias), then a
 * one-dimensional Gaussian latent with loc = u_0 and logVar = u_1. So pseudo-input u = [a, b]
 * gives the component N(a, e^b).
 */
function handModel(pseudo: number[][], vamp: Record<string, unknown> = {}) {
  const parts = buildParts(
    {
      encoder: { use: 'mlp', mlp: { hiddenSizes: [2], activation: 'linear' } },
      latent: { use: 'gaussian', gaussian: { dim: 1 } },
      prior: { use: 'vamp', vamp: { pseudoInputs: pseudo.length, ...vamp } },
    },
    VECTOR_INFO,
    { plugins },
  );
  const vars = trainableVariables(parts);
  vars.get('encoder/mlp/dense0/kernel')!.assign(tf.tensor2d([[1, 0], [0, 1]]));
  vars.get('encoder/mlp/dense0/bias')!.assign(tf.zeros([2]));
  vars.get('latent/loc/kernel')!.assign(tf.tensor2d([[1], [0]]));
  vars.get('latent/loc/bias')!.assign(tf.zeros([1]));
  vars.get('latent/logVar/kernel')!.assign(tf.tensor2d([[0], [1]]));
  vars.get('latent/logVar/bias')!.assign(tf.zeros([1]));
  const prior = parts.model.prior as VampPrior;
  prior.pseudoInputs.assign(tf.tensor2d(pseudo));
  return { parts, prior };
}

/** log N(z; loc, e^logVar) in one dimension. */
const logNormal = (z: number, loc: number, logVar: number) => -0.5 * (LOG_2PI + logVar + (z - loc) ** 2 * Math.exp(-logVar));

describe('vamp prior', () => {
  describeConformance(vampPrior, [
    { config: { pseudoInputs: 3 } },
    {
      title: 'four pseudo-inputs, unclipped, spread 0.3, latent dim 2',
      config: { pseudoInputs: 4, clip: false, initMean: 0.5, initStd: 0.3 },
      slots: { latent: { use: 'gaussian', gaussian: { dim: 2 } } },
    },
  ]);

  it('Should equal q(z|u) with K = 1, from weights set by hand (u = [0.5, 0.25] gives N(0.5, e^0.25))', () => {
    const { prior } = handModel([[0.5, 0.25]]);
    const v = prior.logProb(tf.tensor2d([[1], [-1]]), null).dataSync();
    // -0.5 (log 2pi + 0.25 + (z - 0.5)^2 e^-0.25): (z - 0.5)^2 = 0.25 at z = 1 and 2.25 at z = -1
    expect(v[0]).to.be.closeTo(-0.5 * (LOG_2PI + 0.25 + 0.25 * Math.exp(-0.25)), 1e-5);
    expect(v[1]).to.be.closeTo(-0.5 * (LOG_2PI + 0.25 + 2.25 * Math.exp(-0.25)), 1e-5);
  });

  it('Should give the equal-weight mixture of two pseudo-inputs by hand (N(0.5, e^0.25) and N(0.9, 1))', () => {
    const { prior } = handModel([[0.5, 0.25], [0.9, 0]]);
    const z = [0, 0.7, 3];
    const v = prior.logProb(tf.tensor2d(z, [3, 1]), null).dataSync();
    z.forEach((zi, i) => {
      const expected = Math.log(0.5 * Math.exp(logNormal(zi, 0.5, 0.25)) + 0.5 * Math.exp(logNormal(zi, 0.9, 0)));
      expect(v[i], `z = ${zi}`).to.be.closeTo(expected, 1e-5);
    });
  });

  it('Should give two equal pseudo-inputs the density of one', () => {
    const u = [0.3, 0.6];
    const one = handModel([u]).prior;
    const two = handModel([u, u]).prior;
    const z = tf.tensor2d([[-2], [0], [0.3], [1.5], [4]]);
    const a = one.logProb(z, null).dataSync();
    const b = two.logProb(z, null).dataSync();
    // log((N + N) / 2) = log N
    for (let i = 0; i < a.length; i++) expect(b[i]).to.be.closeTo(a[i], 1e-5);
  });

  it('Should pass to the pseudo-inputs the gradient derived by hand (d log N / d loc and d log N / d logVar)', () => {
    const { prior } = handModel([[0.5, 0.25]]);
    const z = tf.tensor2d([[1]]);
    const { grads } = tf.variableGrads(() => tf.sum(prior.logProb(z, null)) as tf.Scalar, [prior.pseudoInputs]);
    const g = grads[prior.pseudoInputs.name].dataSync();
    // loc = u_0: d/dloc = (z - loc) e^-logVar = 0.5 e^-0.25; logVar = u_1: d/dlogVar = -0.5 (1 - (z - loc)^2 e^-logVar) = -0.5 (1 - 0.25 e^-0.25)
    expect(g[0]).to.be.closeTo(0.5 * Math.exp(-0.25), 1e-5);
    expect(g[1]).to.be.closeTo(-0.5 * (1 - 0.25 * Math.exp(-0.25)), 1e-5);
  });

  it('Should pass a gradient of the ELBO to every pseudo-input entry of a default-sized model', () => {
    const parts = buildParts({ prior: { use: 'vamp', vamp: { pseudoInputs: 3 } } }, TINY_IMAGE_INFO, { plugins });
    const grads = pluginGrads(parts, 'prior', greyBatch(4, TINY_IMAGE_INFO));
    const g = grads.get('pseudoInputs')!;
    expect(g.length).to.equal(3 * 64);
    expect(g.every(Number.isFinite)).to.equal(true);
    expect(g.some((v) => v !== 0)).to.equal(true);
  });

  it('Should clip pseudo-inputs to [0, 1] (no gradient outside), and use them as they are with clip: false', () => {
    const u = [[1.7, -0.3]];
    const z = tf.tensor2d([[0]]);
    const clipped = handModel(u).prior;
    // clipped to [1, 0]: N(1, 1) at 0 is -0.5 (log 2pi + 1)
    expect(clipped.logProb(z, null).dataSync()[0]).to.be.closeTo(-0.5 * (LOG_2PI + 1), 1e-5);
    const { grads } = tf.variableGrads(() => tf.sum(clipped.logProb(z, null)) as tf.Scalar, [clipped.pseudoInputs]);
    expect(Array.from(grads[clipped.pseudoInputs.name].dataSync())).to.deep.equal([0, 0]);
    // unclipped: N(1.7, e^-0.3) at 0 is -0.5 (log 2pi - 0.3 + 1.7^2 e^0.3)
    const raw = handModel(u, { clip: false }).prior;
    expect(raw.logProb(z, null).dataSync()[0]).to.be.closeTo(-0.5 * (LOG_2PI - 0.3 + 2.89 * Math.exp(0.3)), 1e-4);
  });

  it('Should draw samples with the mean and variance of q(z|u) within 4 standard errors (K = 1, N(0.5, e^0.25))', () => {
    const { prior } = handModel([[0.5, 0.25]]);
    const n = 20000;
    const s = prior.sample(n, Rng.derive(5, 'vamp-moments'), null);
    expect(s.shape).to.deep.equal([n, 1]);
    const { mean, variance } = tf.moments(s);
    const sigma2 = Math.exp(0.25);
    expect(Math.abs(mean.dataSync()[0] - 0.5)).to.be.below(4 * Math.sqrt(sigma2 / n));
    expect(Math.abs(variance.dataSync()[0] - sigma2)).to.be.below(4 * sigma2 * Math.sqrt(2 / n));
  });

  it('Should draw the initial pseudo-inputs from N(initMean, initStd^2) (500 x 64 entries, within 4 standard errors)', () => {
    const parts = buildParts({ prior: { use: 'vamp', vamp: { initMean: 0.05, initStd: 0.01 } } }, TINY_IMAGE_INFO, { plugins });
    const u = (parts.model.prior as VampPrior).pseudoInputs;
    expect(u.shape).to.deep.equal([500, 64]);
    const n = 500 * 64;
    const { mean, variance } = tf.moments(u);
    expect(Math.abs(mean.dataSync()[0] - 0.05)).to.be.below((4 * 0.01) / Math.sqrt(n));
    expect(Math.abs(variance.dataSync()[0] - 1e-4)).to.be.below(4 * 1e-4 * Math.sqrt(2 / n));
  });

  it('Should take K distinct training images plus N(0, initStd^2) noise with init: data, and keep its random values otherwise', () => {
    // 12 training rows, each a constant image of its own level: a pseudo-input's row mean names its example
    const n = 12;
    const x = new Float32Array(n * 64);
    for (let r = 0; r < n; r++) x.fill((r + 1) / (n + 1), r * 64, (r + 1) * 64);
    const data = trainingExamples({ x, labels: new Int32Array(n).fill(-1), n }, { ...TINY_IMAGE_INFO, kind: 'image' }, { use: 'none', visibleQuadrants: [0], hiddenValue: -1 });
    const parts = buildParts({ prior: { use: 'vamp', vamp: { pseudoInputs: 5, init: 'data', initStd: 0.001 } } }, TINY_IMAGE_INFO, { plugins });
    const prior = parts.model.prior as VampPrior;
    prior.initFromData!(data, new Rng(7));
    const u = prior.pseudoInputs.arraySync() as number[][];
    const levels = u.map((row) => Math.round((row.reduce((a, b) => a + b, 0) / 64) * (n + 1)));
    expect(new Set(levels).size).to.equal(5);
    for (const l of levels) expect(l).to.be.within(1, n);
    u.forEach((row, i) => {
      const dev = row.map((v) => v - levels[i] / (n + 1));
      const sd = Math.sqrt(dev.reduce((a, b) => a + b * b, 0) / 64);
      // the noise: 64 draws of N(0, 0.001^2), sample sd within a factor 2 of 0.001
      expect(sd).to.be.within(0.0005, 0.002);
    });
    // init: random ignores the data
    const rand = buildParts({ prior: { use: 'vamp', vamp: { pseudoInputs: 5 } } }, TINY_IMAGE_INFO, { plugins });
    const before = (rand.model.prior as VampPrior).pseudoInputs.dataSync().slice();
    (rand.model.prior as VampPrior).initFromData!(data, new Rng(7));
    expect(Array.from((rand.model.prior as VampPrior).pseudoInputs.dataSync())).to.deep.equal(Array.from(before));
    // more pseudo-inputs than training examples: refused when the model is built
    expectThrowExact(
      () => buildParts({ prior: { use: 'vamp', vamp: { pseudoInputs: 20, init: 'data' } } }, { ...TINY_IMAGE_INFO, trainSize: 12 }, { plugins }),
      ConfigError,
      'prior.vamp.init: "data" draws pseudoInputs = 20 distinct training examples; the training split has 12. Lower prior.vamp.pseudoInputs or use init: random',
    );
  });

  const noPosterior =
    'prior.vamp: needs a latent whose q(z|x) is a diagonal Gaussian it can give without sampling (Latent.posterior), to encode its pseudo-inputs; ' +
    'the latent selected by latent.use (class SampleOnlyLatent) has no posterior method. Choose a Gaussian latent such as latent.use: gaussian, or another prior';

  it('Should refuse a latent without posterior when the session opens (as vaelab validate does), with the exact message', () => {
    const experiment = experimentFromObject(
      experimentObject({
        data: { use: 'synthetic', synthetic: { kind: 'mixture2d', size: 64 } },
        latent: { use: 'sample-only' },
        prior: { use: 'vamp', vamp: { pseudoInputs: 3 } },
      }),
      registryOf({ plugins }),
    );
    expectThrowExact(() => openSession(experiment), ConfigError, noPosterior);
  });

  it('Should refuse a conditioned model with the exact message', () => {
    expectThrowExact(
      () => buildParts({ prior: { use: 'vamp', vamp: { pseudoInputs: 3 } } }, { ...TINY_IMAGE_INFO, condDim: 4 }, { plugins }),
      ConfigError,
      'prior.vamp: is unconditional (its pseudo-inputs have no conditioning input); data.condition gives the model one of size 4. Set data.condition.use: none, or choose another prior',
    );
  });

  it('Should refuse K = 0, an unknown initialisation, a negative spread and an undeclared key with exact messages', () => {
    const validate = (vamp: Record<string, unknown>) => () => experimentFromObject(experimentObject({ prior: { use: 'vamp', vamp } }), registryOf({ plugins }));
    expectThrowExact(validate({ pseudoInputs: 0 }), ConfigError, 'prior.vamp.pseudoInputs: must be an integer in [1, 2147483647]; got 0');
    expectThrowExact(validate({ init: 'examples' }), ConfigError, 'prior.vamp.init: must be one of "random", "data"; got "examples"');
    expectThrowExact(validate({ initStd: -0.1 }), ConfigError, 'prior.vamp.initStd: must be a number >= 0; got -0.1');
    expectThrowExact(
      validate({ components: 10 }),
      ConfigError,
      'prior.vamp.components: not declared in the schema of plugin "vamp" (keys: pseudoInputs, init, initMean, initStd, clip)',
    );
  });
});
