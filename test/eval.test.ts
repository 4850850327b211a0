/**
 * The importance-weighted log-likelihood against the exact log-likelihood of a linear Gaussian
 * model: with a linear decoder x = W z + b + e, z ~ N(0, 1), e ~ N(0, s^2 I), the marginal is
 * p(x) = N(x; b, W W^T + s^2 I), known in closed form (plugins/elbo/linear-gaussian.fixture.ts,
 * the same w, b and s).
 */
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { evaluateTerms, iwChunking, iwLogLikelihood, latentStats } from '../core/eval/evaluate';
import { buildParts } from './kits/build';
import { exactLogP, linearGaussianParts } from '../plugins/elbo/linear-gaussian.fixture';

const info = { name: 'points', shape: [1, 1, 2] as [number, number, number], dim: 2, numClasses: 0, condDim: 0 };

function linearGaussian() {
  const parts = buildParts(
    {
      encoder: { use: 'mlp', mlp: { hiddenSizes: [8], activation: 'tanh' } },
      latent: { use: 'gaussian', gaussian: { dim: 1 } },
      decoder: { use: 'mlp', mlp: { hiddenSizes: [] } },
      likelihood: { use: 'gaussian', gaussian: { scale: 'fixed', fixedScale: 0.5 } },
    },
    info,
  );
  const vars = parts.model.decoder.variables();
  vars.get('mlp/dense0/kernel')!.assign(tf.tensor2d([[1.5, -0.7]])); // W^T: [1, 2]
  vars.get('mlp/dense0/bias')!.assign(tf.tensor1d([0.3, 0.1]));
  return parts;
}

describe('evaluation', () => {
  const points: Array<[number, number]> = [
    [0.5, -0.2],
    [2.0, -1.0],
    [-1.0, 0.8],
  ];
  const split = { x: Float32Array.from(points.flat()), labels: new Int32Array(3).fill(-1), n: 3 };
  const ctx = { info: { ...info, kind: 'vector' as const }, seed: 0, condition: { use: 'none' as const, visibleQuadrants: [0], hiddenValue: -1 }, stream: 'test', batchSize: 3, step: 0 };

  it('Should approach the exact log-likelihood of a linear Gaussian model with k = 20 000 (within 0.02 nats)', () => {
    const parts = linearGaussian();
    const iw = iwLogLikelihood(parts.model, split, ctx, 20000, 2000);
    points.forEach((x, i) => {
      expect(iw.perExample[i]).to.be.closeTo(exactLogP(x), 0.02);
    });
  });

  it('Should give log p(x) for every k, to float32 rounding, when q is the exact posterior', () => {
    // With q(z|x) = p(z|x), every importance weight p(x, z) / q(z|x) equals p(x): the estimate has
    // no variance, whatever the draws.
    const parts = linearGaussianParts({ locShift: 0, varianceScale: 1 });
    for (const [k, chunk] of [[1, 1], [7, 3]]) {
      const iw = iwLogLikelihood(parts.model, split, ctx, k, chunk);
      points.forEach((x, i) => expect(iw.perExample[i], `k = ${k}, point ${i}`).to.be.closeTo(exactLogP(x), 1e-4));
    }
  });

  it('Should bound the exact log-likelihood from below with the ELBO, and tighten with k', () => {
    const parts = linearGaussian();
    const exact = points.map((x) => exactLogP(x));
    const meanExact = exact.reduce((s, v) => s + v, 0) / 3;
    const elbo = evaluateTerms(parts.objective, split, ctx).elbo;
    const k1 = iwLogLikelihood(parts.model, split, ctx, 1, 1).mean;
    const k100 = iwLogLikelihood(parts.model, split, ctx, 100, 50).mean;
    expect(elbo).to.be.below(meanExact);
    expect(k100).to.be.above(k1);
    expect(k100).to.be.below(meanExact + 0.05);
  });

  it('Should count active units and give KL per dimension for posterior means set by hand (4 points in 2 batches)', () => {
    // h = x (one linear layer set to the identity), loc = h W + b, logVar = constant per dimension:
    //   loc_0 = x_0, loc_1 = 0.05 x_1, loc_2 = 0.5; logVar = [0, log 2, -1].
    const parts = buildParts(
      {
        encoder: { use: 'mlp', mlp: { hiddenSizes: [2], activation: 'linear' } },
        latent: { use: 'gaussian', gaussian: { dim: 3 } },
        decoder: { use: 'mlp', mlp: { hiddenSizes: [] } },
        likelihood: { use: 'gaussian', gaussian: { scale: 'fixed', fixedScale: 0.5 } },
      },
      info,
    );
    const vars = parts.model.variables();
    const set = (name: string, t: tf.Tensor) => {
      vars.get(name)!.assign(t);
      t.dispose();
    };
    set('encoder/mlp/dense0/kernel', tf.tensor2d([[1, 0], [0, 1]]));
    set('encoder/mlp/dense0/bias', tf.zeros([2]));
    set('latent/loc/kernel', tf.tensor2d([[1, 0, 0], [0, 0.05, 0]]));
    set('latent/loc/bias', tf.tensor1d([0, 0, 0.5]));
    set('latent/logVar/kernel', tf.zeros([2, 3]));
    set('latent/logVar/bias', tf.tensor1d([0, Math.log(2), -1]));
    const xs: Array<[number, number]> = [[1, 2], [-1, 0], [3, 2], [1, 0]];
    const four = { x: Float32Array.from(xs.flat()), labels: new Int32Array(4).fill(-1), n: 4 };
    // batch size 3: the statistics must pool a batch of 3 and a batch of 1
    const stats = latentStats(parts.model, four, { ...ctx, batchSize: 3 }, 0.01)!;
    // Var_x(loc_d) over the 4 points (population variance, divided by 4):
    //   loc_0 = 1, -1, 3, 1: mean 1, squared deviations 0, 4, 4, 0 -> 2
    //   loc_1 = 0.1, 0, 0.1, 0: mean 0.05, squared deviations 0.0025 each -> 0.0025
    //   loc_2 = 0.5 for every x -> 0
    expect(stats.meanVariance).to.have.length(3);
    [2, 0.0025, 0].forEach((v, d) => expect(stats.meanVariance[d], `variance of dim ${d}`).to.be.closeTo(v, 1e-6));
    // mean over x of 0.5 * (loc^2 + e^logVar - logVar - 1):
    //   dim 0: mean loc^2 = (1 + 1 + 9 + 1) / 4 = 3, logVar 0 -> 0.5 * (3 + 1 - 0 - 1) = 1.5
    //   dim 1: mean loc^2 = (0.01 + 0 + 0.01 + 0) / 4 = 0.005, var 2 -> 0.5 * (0.005 + 2 - log 2 - 1) = 0.155926
    //   dim 2: loc^2 = 0.25, logVar -1 -> 0.5 * (0.25 + e^-1 + 1 - 1) = 0.308940
    [1.5, 0.5 * (1.005 - Math.log(2)), 0.5 * (0.25 + Math.exp(-1))].forEach((kl, d) =>
      expect(stats.klPerDim![d], `KL of dim ${d}`).to.be.closeTo(kl, 1e-5),
    );
    // variances 2, 0.0025, 0: one above 0.01 (Burda et al.'s threshold), two above 0.001, none above 2.5
    expect(stats.activeUnits).to.equal(1);
    expect(latentStats(parts.model, four, ctx, 0.001)!.activeUnits).to.equal(2);
    expect(latentStats(parts.model, four, ctx, 2.5)!.activeUnits).to.equal(0);
  });

  it('Should cut importance sampling so that a chunk holds at most 10 000 x 784 decoder outputs, by hand', () => {
    // one parameter per MNIST pixel: as before, 100 samples of 100 images
    expect(iwChunking(5000, 100, 784, 1)).to.deep.equal({ samples: 100, batchSize: 100 });
    // 15 parameters per pixel (a mixture of 5 logistics): floor(7 840 000 / 11 760) = 666 rows
    expect(iwChunking(100, 100, 784, 15)).to.deep.equal({ samples: 100, batchSize: 6 });
    // 256 levels: 39 rows, so 39 samples of one image at a time
    expect(iwChunking(100, 100, 784, 256)).to.deep.equal({ samples: 39, batchSize: 1 });
    // small data: never more than 10 000 rows, never fewer samples than k when k is small
    expect(iwChunking(3, 100, 2, 1)).to.deep.equal({ samples: 3, batchSize: 3333 });
    // a huge output: one sample of one image
    expect(iwChunking(10, 10, 784 * 64, 256)).to.deep.equal({ samples: 1, batchSize: 1 });
  });
});
