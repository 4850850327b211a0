/**
 * Active units per stochastic layer (latentStats' `layers`, from LatentSample.layerLoc): the
 * activity statistic Var_x(E_q[z_l | x]) of every layer of a hierarchy, checked against closed
 * forms on a two-layer bottom-up latent whose Gaussians are affine in the layer below.
 */
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { latentStats, type EvalContext } from '../core/eval/evaluate';
import { buildParts, disposeParts, type Parts } from '../testing';

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
const a = 0.9;
const c1 = 0.2;
const v1 = 4;
const c2 = -0.3;
const v2 = 0.5;

function twoLayer(g: number): Parts {
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
const varM = popVar(xs.map(([x0]) => a * x0 + c1)); // Var_x(E_q[z1 | x]), exact

describe('active units per layer (latentStats layers)', () => {
  it('Should give layer 1 exactly Var_x(E_q[z1 | x]) and layer 2 the mean of q(z2 | z1) over the draws of z1, within 4 standard deviations', () => {
    const g = 0.8;
    const parts = twoLayer(g);
    const S = 10;
    const stats = latentStats(parts.model, split, ctx(64), 0.01, S)!;
    expect(stats.layers).to.have.length(2);
    expect(stats.samples).to.equal(S);
    expect(stats.layers![0].meanVariance[0]).to.be.closeTo(varM, 1e-4 * varM);
    // E_q[z2 | x] = g m(x) + c2, estimated per x by g (m(x) + e) + c2 with e the mean of S draws of
    // z1 - m(x), e ~ N(0, v1 / S). The population variance over N points of m + e has expectation
    // Var(m) + s2 (N - 1) / N and standard deviation sqrt((4 Var(m) s2 + 2 s2^2) / N), s2 = v1 / S.
    const s2 = v1 / S;
    const expected = g * g * (varM + (s2 * (N - 1)) / N);
    const sd = g * g * Math.sqrt((4 * varM * s2 + 2 * s2 * s2) / N);
    const got = stats.layers![1].meanVariance[0];
    expect(Math.abs(got - expected), `layer 2: ${got} vs ${expected} (sd ${sd})`).to.be.below(4 * sd);
    // one draw per example instead of the mean over S would give g^2 (Var(m) + v1): far outside
    expect(Math.abs(got - g * g * (varM + v1))).to.be.above(10 * sd);
    // no Gaussian q of the top as a whole: the top-level figures are the top layer's
    expect(stats.klPerDim).to.equal(null);
    expect(stats.meanVariance).to.deep.equal(stats.layers![1].meanVariance);
    expect(stats.activeUnits).to.equal(1);
    expect(stats.layers!.map((l) => l.activeUnits)).to.deep.equal([1, 1]);
    disposeParts(parts);
  });

  it('Should count a layer whose q ignores the layer below as inactive (variance exactly 0), the layer below still active', () => {
    const parts = twoLayer(0);
    const before = tf.memory().numTensors;
    const stats = latentStats(parts.model, split, ctx(64), 0.01, 10)!;
    expect(tf.memory().numTensors, 'no tensor left behind').to.equal(before);
    expect(stats.layers![1].meanVariance[0]).to.be.closeTo(0, 1e-6); // float32 rounding of a constant
    expect(stats.layers!.map((l) => l.activeUnits)).to.deep.equal([1, 0]);
    expect(stats.activeUnits).to.equal(0);
    disposeParts(parts);
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
});
