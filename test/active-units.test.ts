/**
 * Active units per stochastic layer (latentStats' `layers`, from LatentSample.layerLoc): the
 * activity statistic Var_x(E_q[z_l | x]) of every layer of a hierarchy, checked against closed
 * forms on a two-layer bottom-up latent whose Gaussians are affine in the layer below.
 */
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { checkShapes } from '../core/check';
import { ShapeError } from '../core/errors';
import { latentStats, type EvalContext } from '../core/eval/evaluate';
import { buildParts, disposeParts, experimentOf, expectThrowExact, type Parts } from '../testing';

const info = { name: 'points', shape: [1, 1, 2] as [number, number, number], dim: 2, numClasses: 0, condDim: 0 };
const ctx = (batchSize: number): EvalContext => ({
  info: { ...info, kind: 'vector' as const } as unknown as EvalContext['info'],
  seed: 4,
  condition: { use: 'none', visibleQuadrants: [0], hiddenValue: -1 },
  stream: 'test',
  batchSize,
  step: 0,
});

// q(z1 | x) = N(a x_0 + c1, v1), q(z2 | z1) = N(g z1 + c2, v2), with h = x (identity encoder).
const c1 = 0.2;
const c2 = -0.3;
const v2 = 0.5;

function twoLayer(a: number, v1: number, g: number): Parts {
  const parts = buildParts(
    {
      encoder: { use: 'mlp', mlp: { hiddenSizes: [2], activation: 'linear' } },
      latent: { use: 'bottom-up', 'bottom-up': { dims: [1, 1], hiddenSizes: [1], hiddenLayers: 0 } },
      decoder: { use: 'mlp', mlp: { hiddenSizes: [] } },
      likelihood: { use: 'gaussian', gaussian: { scale: 'fixed', fixedScale: 0.5 } },
    },
    info,
  );
  const vars = parts.model.variables();
  const assign = (name: string, values: number[], shape: number[]) => {
    const t = tf.tensor(values, shape);
    vars.get(name)!.assign(t);
    t.dispose();
  };
  assign('encoder/mlp/dense0/kernel', [1, 0, 0, 1], [2, 2]);
  assign('encoder/mlp/dense0/bias', [0, 0], [2]);
  assign('latent/q0/loc/kernel', [a, 0], [2, 1]);
  assign('latent/q0/loc/bias', [c1], [1]);
  assign('latent/q0/logVar/kernel', [0, 0], [2, 1]);
  assign('latent/q0/logVar/bias', [Math.log(v1)], [1]);
  assign('latent/q1/loc/kernel', [g], [1, 1]);
  assign('latent/q1/loc/bias', [c2], [1]);
  assign('latent/q1/logVar/kernel', [0], [1, 1]);
  assign('latent/q1/logVar/bias', [Math.log(v2)], [1]);
  return parts;
}

// N points whose first coordinate spreads over [-2, 2]; the second is ignored by q.
const N = 400;
const xs = Array.from({ length: N }, (_, i) => [-2 + (4 * i) / (N - 1), Math.sin(i)]);
const split = { x: Float32Array.from(xs.flat()), labels: new Int32Array(N).fill(-1), n: N };
const popVar = (v: number[]) => {
  const m = v.reduce((s, x) => s + x, 0) / v.length;
  return v.reduce((s, x) => s + (x - m) ** 2, 0) / v.length;
};

/**
 * Layer 2's estimate is the variance over the N points of g (m(x) + e) + c2, e the mean of S draws
 * of z1 - m(x) ~ N(0, v1 / S), less the draws' part (N - 1) / N * g^2 * mean_x s^2 / S (s^2 the
 * unbiased variance of the S draws). Its standard deviation, with s2 = v1 / S:
 * g^2 sqrt((4 Var(m) s2 + 2 s2^2 + 2 s2^2 / (S - 1)) / N).
 */
const layer2Sd = (g: number, varM: number, v1: number, S: number) => {
  const s2 = v1 / S;
  return g * g * Math.sqrt((4 * varM * s2 + 2 * s2 * s2 + (2 * s2 * s2) / (S - 1)) / N);
};

describe('active units per layer (latentStats layers)', () => {
  it('Should give layer 1 exactly Var_x(E_q[z1 | x]) and layer 2 g^2 Var_x(m) within 4 standard deviations, the draws\' noise taken out', () => {
    const [a, v1, g, S] = [0.9, 8, 0.8, 10];
    const parts = twoLayer(a, v1, g);
    const stats = latentStats(parts.model, split, ctx(64), 0.01, S)!;
    expect(stats.layers).to.have.length(2);
    expect(stats.samples).to.equal(S);
    const varM = popVar(xs.map(([x0]) => a * x0 + c1)); // Var_x(E_q[z1 | x]), exact
    expect(stats.layers![0].meanVariance[0]).to.be.closeTo(varM, 1e-4 * varM);
    const sd = layer2Sd(g, varM, v1, S);
    const got = stats.layers![1].meanVariance[0];
    expect(Math.abs(got - g * g * varM), `layer 2: ${got} vs ${g * g * varM} (sd ${sd})`).to.be.below(4 * sd);
    // without the correction the expectation is g^2 (Var(m) + (N - 1) / N * v1 / S), 7 sd higher
    expect(g * g * ((N - 1) / N) * (v1 / S)).to.be.above(7 * sd);
    // no Gaussian q of the top as a whole: the top-level figures are the top layer's
    expect(stats.klPerDim).to.equal(null);
    expect(stats.meanVariance).to.deep.equal(stats.layers![1].meanVariance);
    expect(stats.activeUnits).to.equal(1);
    expect(stats.layers!.map((l) => l.activeUnits)).to.deep.equal([1, 1]);
    disposeParts(parts);
  });

  it('Should count layers that do not move with x as inactive: q(z2 | z1) ignoring z1 (exactly 0), and z2 following an inactive z1', () => {
    const ignoring = twoLayer(0.9, 8, 0);
    const before = tf.memory().numTensors;
    const stats = latentStats(ignoring.model, split, ctx(64), 0.01, 10)!;
    expect(tf.memory().numTensors, 'no tensor left behind').to.equal(before);
    expect(stats.layers![1].meanVariance[0]).to.be.closeTo(0, 1e-6); // float32 rounding of a constant
    expect(stats.layers!.map((l) => l.activeUnits)).to.deep.equal([1, 0]);
    expect(stats.activeUnits).to.equal(0);
    disposeParts(ignoring);

    // q(z1 | x) = N(c1, 1) for every x, z2's mean 0.8 z1: E_q[z2 | x] is the same for every x.
    // The mean of S = 50 draws alone would vary by g^2 / S = 0.0128 over x, above the 0.01
    // threshold; the estimate without that part is within 4 sd (0.0036) of 0.
    const [g, S] = [0.8, 50];
    const following = twoLayer(0, 1, g);
    const f = latentStats(following.model, split, ctx(64), 0.01, S)!;
    expect(f.layers![0].meanVariance[0]).to.be.closeTo(0, 1e-6);
    expect(Math.abs(f.layers![1].meanVariance[0]), `layer 2: ${f.layers![1].meanVariance[0]}`).to.be.below(4 * layer2Sd(g, 0, 1, S));
    expect(f.layers!.map((l) => l.activeUnits)).to.deep.equal([0, 0]);
    disposeParts(following);
  });

  it('Should give no per-layer figures for a flat latent, and the ladder top layer the same variances as its exact posterior', () => {
    const flat = buildParts({ latent: { use: 'gaussian', gaussian: { dim: 3 } } }, info);
    const flatStats = latentStats(flat.model, split, ctx(64), 0.01)!;
    expect(flatStats.layers).to.equal(undefined);
    expect(flatStats.meanVariance).to.have.length(3);
    disposeParts(flat);

    const ladder = buildParts(
      {
        encoder: { use: 'ladder', ladder: { hiddenSizes: [8, 6], blockLayers: 1 } },
        latent: { use: 'ladder', ladder: { dims: [3, 2], hiddenSizes: [5], blockLayers: 1 } },
        decoder: { use: 'ladder', ladder: { hiddenSizes: [8] } },
      },
      info,
    );
    const stats = latentStats(ladder.model, split, ctx(64), 0.01, 4)!;
    expect(stats.layers!.map((l) => l.meanVariance.length)).to.deep.equal([3, 2]);
    // the top's mean does not depend on any draw: the mean over draws is the posterior's mean
    stats.layers![1].meanVariance.forEach((v, d) => expect(v).to.be.closeTo(stats.meanVariance[d], 1e-5 * Math.max(1, stats.meanVariance[d])));
    expect(stats.layers![0].meanVariance.every((v) => v > 0)).to.equal(true);
    disposeParts(ladder);
  });

  it('Should refuse, in the shape check, a hierarchy whose samples carry a layerLoc per layer other than latent.layers', () => {
    const over = { latent: { use: 'ladder', ladder: { dims: [3, 2], hiddenSizes: [5], blockLayers: 1 } }, encoder: { use: 'ladder', ladder: { hiddenSizes: [8, 6], blockLayers: 1 } }, decoder: { use: 'ladder', ladder: { hiddenSizes: [8] } } };
    const parts = buildParts(over, info);
    const config = experimentOf(over).config;
    checkShapes(parts.model, parts.objective, info, config); // as built: passes
    // a latent that loses its top layer's mean
    const latent = parts.model.latent;
    const sample = latent.sample.bind(latent);
    latent.sample = (h, S, o) => {
      const s = sample(h, S, o);
      s.layerLoc!.pop()!.dispose();
      return s;
    };
    expectThrowExact(() => checkShapes(parts.model, parts.objective, info, config), ShapeError, 'latent "ladder".sample: layerLoc must hold one tensor per stochastic layer (latent.layers = 2); got 1');
    disposeParts(parts);
  });
});
