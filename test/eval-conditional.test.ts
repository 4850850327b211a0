/**
 * The importance-weighted estimate of core/eval/evaluate.ts on a conditional model: with a
 * conditional prior p(z | y), q(z | x, y) as proposal and p(x | z, y), it estimates
 * log p(x | y). Checked against the exact conditional marginal of a linear-Gaussian model given
 * a one-hot y (two classes):
 *   z | y ~ N(a_y, s_y^2),  x = w z + c_y + b + e,  e ~ N(0, s^2 I_2)
 *   p(x | y) = N(x; w a_y + c_y + b, s_y^2 w w^T + s^2 I)
 *   p(z | x, y) = N(m, v): 1 / v = 1 / s_y^2 + |w|^2 / s^2, m = v (a_y / s_y^2 + w.(x - c_y - b) / s^2)
 * built from the shipped plugins with weights set by hand (prior conditional-gaussian with an
 * affine network, decoder one linear layer on [z, y], likelihood Gaussian with fixed scale s).
 */
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { iwLogLikelihood } from '../core/eval/evaluate';
import type { DataInfo } from '../core/contracts';
import { buildParts } from './kits/build';

const W = [1.5, -0.7];
const B = [0.3, 0.1];
const S = 0.5;
/** Per class y: prior loc a_y, prior log-variance, decoder shift c_y. */
const CLASSES = [
  { a: 0.5, logVar: Math.log(2), c: [0.2, 0] },
  { a: -1, logVar: Math.log(0.5), c: [-0.3, 0.4] },
];
const INFO: DataInfo = { name: 'points', shape: [1, 1, 2], dim: 2, numClasses: 2, condDim: 2 };

/** log N(x; mean, C), C = s_y^2 w w^T + s^2 I, by the 2x2 inverse and determinant. */
function exactLogP(x: readonly number[], y: number, logVar = CLASSES[y].logVar): number {
  const { a, c } = CLASSES[y];
  const v = Math.exp(logVar);
  const mean = [W[0] * a + c[0] + B[0], W[1] * a + c[1] + B[1]];
  const c11 = v * W[0] * W[0] + S * S;
  const c22 = v * W[1] * W[1] + S * S;
  const c12 = v * W[0] * W[1];
  const det = c11 * c22 - c12 * c12;
  const d0 = x[0] - mean[0];
  const d1 = x[1] - mean[1];
  const quad = (c22 * d0 * d0 - 2 * c12 * d0 * d1 + c11 * d1 * d1) / det;
  return -Math.log(2 * Math.PI) - 0.5 * Math.log(det) - 0.5 * quad;
}

/**
 * The model; `exactPosterior` sets q(z | x, y) to p(z | x, y), which needs s_y equal for both
 * classes (the posterior mean is then affine in [x, y]), so it overrides the prior variances with
 * `sharedLogVar`.
 */
function conditionalLinearGaussian(opts: { exactPosterior: boolean; sharedLogVar?: number }) {
  const classes = CLASSES.map((k) => ({ ...k, logVar: opts.sharedLogVar ?? k.logVar }));
  const parts = buildParts(
    {
      encoder: { use: 'mlp', mlp: opts.exactPosterior ? { hiddenSizes: [4], activation: 'linear' } : { hiddenSizes: [8], activation: 'tanh' } },
      latent: { use: 'gaussian', gaussian: { dim: 1 } },
      decoder: { use: 'mlp', mlp: { hiddenSizes: [] } },
      prior: { use: 'conditional-gaussian', 'conditional-gaussian': { hiddenSizes: [] } },
      likelihood: { use: 'gaussian', gaussian: { scale: 'fixed', fixedScale: S } },
    },
    INFO,
  );
  const vars = parts.model.variables();
  const set = (name: string, values: number[], shape: number[]) => {
    const t = tf.tensor(values, shape);
    vars.get(name)!.assign(t);
    t.dispose();
  };
  // prior network on one-hot y: [loc, logVar] = y K + bias, K row y = [a_y, logVar_y]
  set('prior/net/dense0/kernel', classes.flatMap((k) => [k.a, k.logVar]), [2, 2]);
  set('prior/net/dense0/bias', [0, 0], [2]);
  // decoder on [z, y]: x = w z + c_y + b
  set('decoder/mlp/dense0/kernel', [W[0], W[1], ...classes[0].c, ...classes[1].c], [3, 2]);
  set('decoder/mlp/dense0/bias', B, [2]);
  if (opts.exactPosterior) {
    const sy2 = Math.exp(classes[0].logVar);
    const v = 1 / (1 / sy2 + (W[0] ** 2 + W[1] ** 2) / (S * S));
    // encoder: h = [x, y] (identity); loc = v (a_y / s_y^2 + w.(x - c_y - b) / s^2), affine in [x, y]
    set('encoder/mlp/dense0/kernel', [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1], [4, 4]);
    set('encoder/mlp/dense0/bias', [0, 0, 0, 0], [4]);
    const wb = W[0] * B[0] + W[1] * B[1];
    const perClass = classes.map((k) => v * (k.a / sy2 - (W[0] * k.c[0] + W[1] * k.c[1]) / (S * S)));
    set('latent/loc/kernel', [(v * W[0]) / (S * S), (v * W[1]) / (S * S), ...perClass], [4, 1]);
    set('latent/loc/bias', [(-v * wb) / (S * S)], [1]);
    set('latent/logVar/kernel', [0, 0, 0, 0], [4, 1]);
    set('latent/logVar/bias', [Math.log(v)], [1]);
  }
  return parts;
}

describe('evaluation: the importance-weighted estimate of log p(x | y) for a conditional model', () => {
  const points: Array<[number, number]> = [[0.5, -0.2], [2.0, -1.0], [-1.0, 0.8], [0.1, 0.1]];
  const labels = Int32Array.from([0, 1, 1, 0]);
  const split = { x: Float32Array.from(points.flat()), labels, n: 4 };
  const ctx = {
    info: { ...INFO, kind: 'vector' as const },
    seed: 0,
    condition: { use: 'labels' as const, visibleQuadrants: [0], hiddenValue: -1 },
    stream: 'test',
    batchSize: 4,
    step: 0,
  };

  it('Should give log p(x | y) for every k, to float32 rounding, when q(z | x, y) is the exact posterior', () => {
    // every weight p(x, z | y) / p(z | x, y) equals p(x | y): no variance, whatever the draws
    const parts = conditionalLinearGaussian({ exactPosterior: true, sharedLogVar: Math.log(2) });
    const shared = (x: readonly number[], y: number) => exactLogP(x, y, Math.log(2));
    for (const [k, chunk] of [[1, 1], [9, 4]]) {
      const iw = iwLogLikelihood(parts.model, split, ctx, k, chunk);
      points.forEach((x, i) => expect(iw.perExample[i], `k = ${k}, point ${i}`).to.be.closeTo(shared(x, labels[i]), 1e-4));
    }
  });

  it('Should approach the exact log p(x | y) with class-dependent prior variances and a random q, k = 20 000 (within 0.02 nats)', () => {
    const parts = conditionalLinearGaussian({ exactPosterior: false });
    const iw = iwLogLikelihood(parts.model, split, ctx, 20000, 2000);
    points.forEach((x, i) => expect(iw.perExample[i], `point ${i}, class ${labels[i]}`).to.be.closeTo(exactLogP(x, labels[i]), 0.02));
    // and the answer depends on y: the same x under the other class has another exact value
    expect(Math.abs(exactLogP(points[0], 1) - exactLogP(points[0], 0))).to.be.above(0.5);
  });
});
