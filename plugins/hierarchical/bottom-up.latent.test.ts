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
  disposeLatentSample,
  experimentFromObject,
  initRng,
  type DataInfo,
  type Encoder,
} from '../../core';
import {
  buildParts,
  describeConformance,
  disposeBatch,
  disposeParts,
  experimentObject,
  expectThrowExact,
  greyBatch,
  lossGrads,
  registryOf,
  type Parts,
} from '../../testing';
import { bottomUpLatent, type BottomUpLatent } from './bottom-up.latent';

/** Features at two depths, [B, 8] and [B, 4] (test only): what a ladder's encoder gives, not this latent's. */
@injectable()
class TwoDepthEncoder extends Module implements Encoder {
  readonly outputDim = 4;
  readonly outputShapes = [[8], [4]] as const;
  private readonly bottom: Dense;
  private readonly top: Dense;
  constructor(@inject(TOKENS.DataInfo) info: DataInfo, @inject(TOKENS.Seed) seed: number) {
    super();
    const rng = initRng(seed, 'encoder', 'two-depth');
    this.bottom = this.track('bottom', new Dense(info.dim, 8, rng));
    this.top = this.track('top', new Dense(8, 4, rng));
  }
  encode(x: tf.Tensor2D): tf.Tensor[] {
    return tf.tidy(() => {
      const h1 = this.bottom.apply(x, 'relu');
      return [h1, this.top.apply(h1, 'relu')];
    });
  }
}
const twoDepthEncoder = definePlugin({ slot: 'encoder', name: 'two-depth', description: 'two feature depths (test only)', schema: {}, implementation: TwoDepthEncoder });

const set = { plugins: [bottomUpLatent, twoDepthEncoder] };

// -----------------------------------------------------------------------------------------------
// A linear-Gaussian two-layer model, everything known in closed form:
//   z2 ~ N(0, 1),  z1 | z2 ~ N(A z2 + C, T2),  x | z1 ~ N(W z1 + B, S^2 I_2).
// Marginals: z1 ~ N(C, P1) with P1 = A^2 + T2, and x ~ N(B + W C, P1 W W^T + S^2 I).
// Exact posterior: p(z1 | x) = N(m1(x), V1), V1 = 1 / (1 / P1 + |W|^2 / S^2),
//   m1(x) = V1 (C / P1 + W.(x - B) / S^2); and p(z2 | z1, x) = p(z2 | z1) (x depends on z2 only
//   through z1) = N(U z1 + U0, V2), V2 = 1 / (1 + A^2 / T2), U = V2 A / T2, U0 = -U C.
const A = 0.8;
const C = 0.3;
const T2 = 0.5;
const W: [number, number] = [1.5, -0.7];
const B: [number, number] = [0.3, 0.1];
const S = 0.5;
const P1 = A * A + T2;
const WW = W[0] * W[0] + W[1] * W[1];
const V1 = 1 / (1 / P1 + WW / (S * S));
const V2 = 1 / (1 + (A * A) / T2);
const U = (V2 * A) / T2;
const U0 = -U * C;
const LG_INFO: DataInfo = { name: 'points', shape: [1, 1, 2], dim: 2, numClasses: 0, condDim: 0 };

/** log N(x; B + W C, P1 W W^T + S^2 I), by the 2x2 inverse and determinant. */
function exactLogP(x: [number, number]): number {
  const c11 = P1 * W[0] * W[0] + S * S;
  const c22 = P1 * W[1] * W[1] + S * S;
  const c12 = P1 * W[0] * W[1];
  const det = c11 * c22 - c12 * c12;
  const d0 = x[0] - B[0] - W[0] * C;
  const d1 = x[1] - B[1] - W[1] * C;
  const quad = (c22 * d0 * d0 - 2 * c12 * d0 * d1 + c11 * d1 * d1) / det;
  return -Math.log(2 * Math.PI) - 0.5 * Math.log(det) - 0.5 * quad;
}

/** The approximate posterior's settings: q(z1|x) = N(m1(x) + shift1, scale1 V1), q(z2|z1) = N(gain U z1 + U0, scale2 V2). */
interface QShape {
  shift1: number;
  scale1: number;
  gain: number;
  scale2: number;
}
const EXACT_Q: QShape = { shift1: 0, scale1: 1, gain: 1, scale2: 1 };

/**
 * The model above built from the shipped plugins with weights set by hand: an identity linear
 * encoder (h = x), the bottom-up latent with dims [1, 1] and no hidden layers (every Gaussian's
 * heads are affine in the layer below), a linear decoder (W, B), a Gaussian likelihood of fixed
 * scale S and the standard-normal prior over z2.
 */
function linearGaussianParts(q: QShape, objective: Record<string, unknown> = { use: 'elbo' }): Parts {
  const parts = buildParts(
    {
      encoder: { use: 'mlp', mlp: { hiddenSizes: [2], activation: 'linear' } },
      latent: { use: 'bottom-up', 'bottom-up': { dims: [1, 1], hiddenSizes: [1], hiddenLayers: 0 } },
      decoder: { use: 'mlp', mlp: { hiddenSizes: [] } },
      likelihood: { use: 'gaussian', gaussian: { scale: 'fixed', fixedScale: S } },
      objective,
    },
    LG_INFO,
    set,
  );
  const vars = parts.model.variables();
  const assign = (name: string, values: number[], shape: number[]) => {
    const v = vars.get(name);
    if (!v) throw new Error(`no variable ${name} (have ${[...vars.keys()].join(', ')})`);
    const t = tf.tensor(values, shape);
    v.assign(t);
    t.dispose();
  };
  const s2 = S * S;
  assign('encoder/mlp/dense0/kernel', [1, 0, 0, 1], [2, 2]);
  assign('encoder/mlp/dense0/bias', [0, 0], [2]);
  // m1(x) = (V1 W / S^2).x + V1 (C / P1 - W.B / S^2)
  assign('latent/q0/loc/kernel', [(V1 * W[0]) / s2, (V1 * W[1]) / s2], [2, 1]);
  assign('latent/q0/loc/bias', [V1 * (C / P1 - (W[0] * B[0] + W[1] * B[1]) / s2) + q.shift1], [1]);
  assign('latent/q0/logVar/kernel', [0, 0], [2, 1]);
  assign('latent/q0/logVar/bias', [Math.log(q.scale1 * V1)], [1]);
  assign('latent/q1/loc/kernel', [q.gain * U], [1, 1]);
  assign('latent/q1/loc/bias', [U0], [1]);
  assign('latent/q1/logVar/kernel', [0], [1, 1]);
  assign('latent/q1/logVar/bias', [Math.log(q.scale2 * V2)], [1]);
  assign('latent/p0/loc/kernel', [A], [1, 1]);
  assign('latent/p0/loc/bias', [C], [1]);
  assign('latent/p0/logVar/kernel', [0], [1, 1]);
  assign('latent/p0/logVar/bias', [Math.log(T2)], [1]);
  assign('decoder/mlp/dense0/kernel', [W[0], W[1]], [1, 2]);
  assign('decoder/mlp/dense0/bias', [B[0], B[1]], [2]);
  return parts;
}

/** log w = log p(x | z1) + log p(z2) + log p(z1 | z2) - log q(z1, z2 | x) of k draws for one x: what the IW estimate averages. */
function logWeights(parts: Parts, x: [number, number], k: number, seed: number): Float32Array {
  return tf.tidy(() => {
    const batch = { x: tf.tensor2d([x]), cond: null };
    const pass = parts.model.forward(batch, k, { training: false, rng: Rng.derive(seed, 'lg') });
    return tf.sub(tf.add(pass.logPx, parts.model.logPrior(pass.latent, null)), pass.latent.logQ);
  }).dataSync() as Float32Array;
}

/** An inexact q, and its moments at x: q(z1 | x) = N(m, v1), q(z2 | z1) = N(u z1 + U0, v2). */
const INEXACT_Q: QShape = { shift1: 0.3, scale1: 1.5, gain: 0.7, scale2: 2 };
function qMoments(q: QShape, x: [number, number]): { m: number; v1: number; v2: number; u: number } {
  const m = V1 * (C / P1 + (W[0] * (x[0] - B[0]) + W[1] * (x[1] - B[1])) / (S * S)) + q.shift1;
  return { m, v1: q.scale1 * V1, v2: q.scale2 * V2, u: q.gain * U };
}

const POINTS: Array<[number, number]> = [
  [0.5, -0.2],
  [2.0, -1.0],
  [-1.2, 0.9],
];

describe('bottom-up latent (hierarchical)', () => {
  describeConformance(
    bottomUpLatent,
    [
      { config: { dims: [3, 2], hiddenSizes: [4] } },
      { config: { dims: [4, 3, 2], hiddenSizes: [5, 4], hiddenLayers: 1 } },
      { config: { dims: [3], hiddenSizes: [] } },
    ],
    set,
  );

  it('Should give every weight log p(x) exactly, for any k, when q is the exact posterior over both layers', () => {
    // q(z1, z2 | x) = p(z1 | x) p(z2 | z1) = p(z1, z2 | x), so p(x, z1, z2) / q(z1, z2 | x) = p(x)
    // for every draw: the weights must include log p(z1 | z2) and log q(z2 | z1), or they vary.
    const parts = linearGaussianParts(EXACT_Q);
    for (const x of POINTS) {
      const lw = logWeights(parts, x, 50, 1);
      const exact = exactLogP(x);
      lw.forEach((v, i) => expect(v, `x = ${x}, draw ${i}`).to.be.closeTo(exact, 1e-4));
    }
    disposeParts(parts);
  });

  it('Should give an IW estimate (k = 20 000) within 4 standard errors of the exact log p(x) for an inexact q', () => {
    const parts = linearGaussianParts({ shift1: 0.3, scale1: 1.5, gain: 0.7, scale2: 2 });
    const k = 20000;
    POINTS.forEach((x, j) => {
      const lw = logWeights(parts, x, k, 10 + j);
      const max = lw.reduce((m, v) => Math.max(m, v), -Infinity);
      let sum = 0;
      let sumSq = 0;
      for (const v of lw) {
        const w = Math.exp(v - max);
        sum += w;
        sumSq += w * w;
      }
      const mean = sum / k;
      const estimate = max + Math.log(mean);
      // Delta method: sd(log mean w) = sd(w) / (mean(w) sqrt(k)).
      const se = Math.sqrt(Math.max(sumSq / k - mean * mean, 0)) / (mean * Math.sqrt(k));
      const exact = exactLogP(x);
      expect(se, 'the inexact q must leave the weights random').to.be.above(1e-4);
      expect(Math.abs(estimate - exact), `x = ${x}: estimate ${estimate}, exact ${exact}, se ${se}`).to.be.below(4 * se);
      // and the estimate is a lower bound in expectation: the one-sample ELBO is below it
      expect(lw.reduce((s, v) => s + v, 0) / k).to.be.below(exact);
    });
    disposeParts(parts);
  });

  it('Should estimate KL(q(z1, z2 | x) || p(z1, z2)) by Monte Carlo within 5% of the joint Gaussian closed form', () => {
    // q(z1, z2 | x): mean (m, u m + U0), cov [[v1, u v1], [u v1, u^2 v1 + v2]];
    // p(z1, z2): mean (C, 0), cov [[A^2 + T2, A], [A, 1]] (z1 = A z2 + C + noise of variance T2).
    // KL = 0.5 (tr(Sp^-1 Sq) + d^T Sp^-1 d - 2 + ln(det Sp / det Sq)), d = mean_p - mean_q.
    const n = 20000;
    const parts = linearGaussianParts(INEXACT_Q, { use: 'elbo', elbo: { samples: n } });
    const x = POINTS[1];
    const { m, v1, v2, u } = qMoments(INEXACT_Q, x);
    const sq = [v1, u * v1, u * u * v1 + v2]; // [s11, s12, s22]
    const sp = [A * A + T2, A, 1];
    const detP = sp[0] * sp[2] - sp[1] * sp[1]; // = T2
    const inv = [sp[2] / detP, -sp[1] / detP, sp[0] / detP];
    const tr = inv[0] * sq[0] + 2 * inv[1] * sq[1] + inv[2] * sq[2];
    const d = [C - m, 0 - (u * m + U0)];
    const quad = inv[0] * d[0] * d[0] + 2 * inv[1] * d[0] * d[1] + inv[2] * d[1] * d[1];
    const exactKl = 0.5 * (tr + quad - 2 + Math.log(detP / (v1 * v2)));
    const terms = parts.objective.terms({ x: tf.tensor2d([x]), cond: null }, { training: false, rng: Rng.derive(3, 'kl'), step: 0 });
    const kl = terms.kl.dataSync()[0];
    expect(exactKl).to.be.above(0.1); // a KL far enough from 0 for a relative tolerance
    expect(Math.abs(kl - exactKl) / exactKl).to.be.below(0.05);
    tf.dispose(Object.values(terms));
    disposeParts(parts);
  });

  it('Should report the KL of each layer (klLayer1, klLayer2) within 4 standard errors of their closed forms, summing to kl', () => {
    // Under q: z1 ~ N(m, v1), z2 = u z1 + U0 + sqrt(v2) e. Layer 1: E[log q(z1 | x) - log p(z1 | z2)]
    // = -0.5 ln(2 pi e v1) + 0.5 ln(2 pi T2) + E[(z1 - A z2 - C)^2] / (2 T2), where z1 - A z2 - C has
    // mean m (1 - A u) - A U0 - C and variance (1 - A u)^2 v1 + A^2 v2. Layer 2 (the top):
    // E[log q(z2 | z1) - log N(z2; 0, 1)] = -0.5 ln(2 pi e v2) + 0.5 ln(2 pi) + E[z2^2] / 2, with
    // E[z2^2] = (u m + U0)^2 + u^2 v1 + v2.
    const n = 20000;
    const parts = linearGaussianParts(INEXACT_Q, { use: 'elbo', elbo: { samples: n } });
    const x = POINTS[1];
    const { m, v1, v2, u } = qMoments(INEXACT_Q, x);
    const mu = m * (1 - A * u) - A * U0 - C;
    const varD = (1 - A * u) ** 2 * v1 + A * A * v2;
    const kl1 = -0.5 * Math.log(2 * Math.PI * Math.E * v1) + 0.5 * Math.log(2 * Math.PI * T2) + (mu * mu + varD) / (2 * T2);
    const kl2 = -0.5 * Math.log(2 * Math.PI * Math.E * v2) + 0.5 * Math.log(2 * Math.PI) + 0.5 * ((u * m + U0) ** 2 + u * u * v1 + v2);

    // the per-draw values the latent carries, and their standard errors
    const batch = { x: tf.tensor2d([x]), cond: null };
    const pass = parts.model.forward(batch, n, { training: false, rng: Rng.derive(3, 'kl') });
    expect(pass.latent.layerKl).to.have.length(1);
    const draws1 = Array.from(pass.latent.layerKl![0].dataSync());
    const draws = Array.from(tf.tidy(() => tf.sub(pass.latent.logQ, parts.model.logPrior(pass.latent, null))).dataSync());
    const draws2 = draws.map((v, i) => v - draws1[i]);
    const meanSe = (a: number[]) => {
      const mean = a.reduce((s, v) => s + v, 0) / a.length;
      const sd = Math.sqrt(a.reduce((s, v) => s + (v - mean) ** 2, 0) / (a.length - 1));
      return { mean, se: sd / Math.sqrt(a.length) };
    };
    const e1 = meanSe(draws1);
    const e2 = meanSe(draws2);
    expect(Math.abs(e1.mean - kl1), `layer 1: ${e1.mean} vs ${kl1} (se ${e1.se})`).to.be.below(4 * e1.se);
    expect(Math.abs(e2.mean - kl2), `layer 2: ${e2.mean} vs ${kl2} (se ${e2.se})`).to.be.below(4 * e2.se);

    // what the objective logs: the same draws (same stream), the top layer being kl minus layer 1
    const terms = parts.objective.terms(batch, { training: false, rng: Rng.derive(3, 'kl'), step: 0 });
    expect(Object.keys(terms)).to.include.members(['klLayer1', 'klLayer2']);
    const [t1, t2, tk] = [terms.klLayer1, terms.klLayer2, terms.kl].map((t) => t.dataSync()[0]);
    expect(t1).to.be.closeTo(e1.mean, 1e-3 * Math.max(1, Math.abs(e1.mean)));
    expect(t1 + t2).to.be.closeTo(tk, 1e-4 * Math.max(1, Math.abs(tk)));
    expect(Math.abs(t2 - kl2)).to.be.below(4 * e2.se);
    tf.dispose(Object.values(terms));
    tf.dispose([batch.x, pass.logPx, pass.params]);
    disposeLatentSample(pass.latent);
    disposeParts(parts);
  });

  it('Should generate by running every layer of the top-down path (3 layers, moments within 4 standard errors)', () => {
    // dims [1, 1, 1], affine heads: z2 | z3 ~ N(a2 z3 + c2, t2), z1 | z2 ~ N(a1 z2 + c1, t1). From z3 = 1.5:
    // E[z1] = a1 (a2 1.5 + c2) + c1, Var[z1] = a1^2 t2 + t1.
    const parts = buildParts({ latent: { use: 'bottom-up', 'bottom-up': { dims: [1, 1, 1], hiddenSizes: [1, 1], hiddenLayers: 0 } } }, LG_INFO, set);
    const latent = parts.model.latent as BottomUpLatent;
    const vars = latent.variables();
    const [a1, c1, t1, a2, c2, t2] = [0.5, -1, 0.3, 2, 0.4, 0.8];
    const put = (name: string, v: number) => vars.get(name)!.assign(tf.tensor(v, vars.get(name)!.shape));
    put('p0/loc/kernel', a1);
    put('p0/loc/bias', c1);
    put('p0/logVar/kernel', 0);
    put('p0/logVar/bias', Math.log(t1));
    put('p1/loc/kernel', a2);
    put('p1/loc/bias', c2);
    put('p1/logVar/kernel', 0);
    put('p1/logVar/bias', Math.log(t2));
    const n = 20000;
    const z3 = tf.fill([n, 1], 1.5) as tf.Tensor2D;
    const z1 = latent.generate(z3, { training: false, rng: Rng.derive(4, 'gen') });
    expect(z1.shape).to.deep.equal([n, 1]);
    const { mean, variance } = tf.moments(z1);
    const expMean = a1 * (a2 * 1.5 + c2) + c1; // 0.5 * 3.4 - 1 = 0.7
    const expVar = a1 * a1 * t2 + t1; // 0.25 * 0.8 + 0.3 = 0.5
    expect(Math.abs(mean.dataSync()[0] - expMean)).to.be.below(4 * Math.sqrt(expVar / n));
    expect(Math.abs(variance.dataSync()[0] - expVar)).to.be.below(4 * expVar * Math.sqrt(2 / n));
    // the model's generation goes through it: prior draw of z3, top-down path, decoder
    const xs = parts.model.generate(3, null, { training: false, rng: Rng.derive(5, 'gen') });
    expect(xs.shape).to.deep.equal([3, 2]);
    tf.dispose([z3, z1, mean, variance, xs]);
    disposeParts(parts);
  });

  it('Should equal the Gaussian latent with one layer (same heads, same stream: same z, logQ and closed-form posterior)', () => {
    const one = buildParts({ latent: { use: 'bottom-up', 'bottom-up': { dims: [3], hiddenSizes: [] } } }, undefined, set);
    const flat = buildParts({ latent: { use: 'gaussian', gaussian: { dim: 3 } } });
    const from = one.model.latent.variables();
    for (const [k, v] of flat.model.latent.variables()) v.assign(from.get(`q0/${k}`)!);
    const h = tf.randomUniform([2, 16], -1, 1, 'float32', 7) as tf.Tensor2D;
    const a = one.model.latent.sample(h, 3, { training: true, rng: Rng.derive(6, 'one') });
    const b = flat.model.latent.sample(h, 3, { training: true, rng: Rng.derive(6, 'one') });
    expect(Array.from(a.z.dataSync())).to.deep.equal(Array.from(b.z.dataSync()));
    expect(Array.from(a.logQ.dataSync())).to.deep.equal(Array.from(b.logQ.dataSync()));
    expect(Array.from(a.posterior!.logVar.dataSync())).to.deep.equal(Array.from(b.posterior!.logVar.dataSync()));
    expect(a.priorZ ?? a.z).to.equal(a.z);
    expect(a.innerLogPrior).to.equal(undefined);
    tf.dispose([h, a.z, a.logQ, a.posterior!.loc, a.posterior!.logVar, b.z, b.logQ, b.posterior!.loc, b.posterior!.logVar]);
    disposeParts(one);
    disposeParts(flat);
  });

  it('Should match a central finite difference of d sum(z1^2 + z2^2) / d(a q1 log-variance bias) (eps 1e-3, rtol 0.02)', () => {
    // z2 = loc(z1) + exp(logVar(z1) / 2) eps2 is reparameterised through the drawn z1: the tape's
    // gradient must equal the numeric one with the noise held fixed (same seed).
    const parts = buildParts({ latent: { use: 'bottom-up', 'bottom-up': { dims: [3, 2], hiddenSizes: [4] } } }, undefined, set);
    const latent = parts.model.latent;
    const h = tf.randomUniform([4, 16], -1, 1, 'float32', 11) as tf.Tensor2D;
    const bias = latent.variables().get('q1/logVar/bias')!;
    const f = () =>
      tf.tidy(() => {
        const s = latent.sample(h, 2, { training: true, rng: Rng.derive(8, 'fd') });
        return tf.add(tf.sum(tf.square(s.z)), tf.sum(tf.square(s.priorZ!))) as tf.Scalar;
      });
    const { value, grads } = tf.variableGrads(f, [bias]);
    const analytic = grads[bias.name].dataSync()[0];
    const base = bias.dataSync().slice();
    const at = (delta: number) => {
      const b = base.slice();
      b[0] += delta;
      bias.assign(tf.tensor1d(b));
      const v = f();
      const out = v.dataSync()[0];
      v.dispose();
      return out;
    };
    const eps = 1e-3;
    const numeric = (at(eps) - at(-eps)) / (2 * eps);
    bias.assign(tf.tensor1d(base));
    expect(Math.abs(numeric)).to.be.above(1e-3);
    expect(Math.abs(analytic - numeric) / Math.abs(numeric)).to.be.below(0.02);
    tf.dispose([h, value, ...Object.values(grads)]);
    disposeParts(parts);
  });

  it('Should send gradients of the IWAE loss to every variable of every layer', () => {
    const parts = buildParts(
      {
        encoder: { use: 'mlp', mlp: { hiddenSizes: [8], activation: 'tanh' } },
        latent: { use: 'bottom-up', 'bottom-up': { dims: [4, 3, 2], hiddenSizes: [5, 4] } },
        decoder: { use: 'mlp', mlp: { hiddenSizes: [8], activation: 'tanh' } },
        objective: { use: 'iwae', iwae: { samples: 3 } },
      },
      undefined,
      set,
    );
    const batch = greyBatch(4, parts.model.data, 1);
    const grads = lossGrads(parts, batch);
    const keys = [...parts.model.variables().keys()].filter((k) => /^(encoder|latent|decoder)\//.test(k));
    // q0, q1, q2 (each with two hidden layers above q0), p0, p1: 2 heads x 2 + 2 dense x 2 each
    expect(keys.filter((k) => k.startsWith('latent/')).length).to.equal(4 + 4 * 8);
    for (const k of keys) {
      const g = grads.get(k);
      expect(g, `${k} has a gradient`).to.not.equal(undefined);
      expect(g!.every(Number.isFinite), `${k} finite`).to.equal(true);
      expect(g!.some((v) => v !== 0), `${k} non-zero`).to.equal(true);
    }
    disposeBatch(batch);
    disposeParts(parts);
  });

  it('Should refuse zero layers, hidden sizes that do not match the layers and a multi-depth encoder, with the exact messages', () => {
    const build = (cfg: Record<string, unknown>) => () => buildParts({ latent: { use: 'bottom-up', 'bottom-up': cfg } }, undefined, set);
    expectThrowExact(build({ dims: [], hiddenSizes: [] }), ConfigError, 'latent.bottom-up.dims: must list at least one stochastic layer; got []');
    expectThrowExact(
      build({ dims: [100, 50], hiddenSizes: [100, 100] }),
      ConfigError,
      'latent.bottom-up.hiddenSizes: must have one entry per pair of adjacent layers, 1 for latent.bottom-up.dims [100,50]; got [100,100] (2 entries)',
    );
    expectThrowExact(
      () => buildParts({ encoder: { use: 'two-depth' }, latent: { use: 'bottom-up' } }, undefined, set),
      ConfigError,
      'latent.bottom-up: needs one flat feature row [B, D] from the encoder (the layers above the first are computed here from the drawn codes); ' +
        "got the encoder's 2 feature shapes [[8],[4]]",
    );
    expectThrowExact(
      () => experimentFromObject(experimentObject({ latent: { use: 'bottom-up', 'bottom-up': { dims: [0] } } }), registryOf(set)),
      ConfigError,
      'latent.bottom-up.dims: must be a list of at most 1024 integers in [1, 2147483647]; got [0]',
    );
    expectThrowExact(
      () => experimentFromObject(experimentObject({ latent: { use: 'bottom-up', 'bottom-up': { layers: 2 } } }), registryOf(set)),
      ConfigError,
      'latent.bottom-up.layers: not declared in the schema of plugin "bottom-up" (keys: dims, hiddenSizes, hiddenLayers, activation, minLogVar)',
    );
  });
});
