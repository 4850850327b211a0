import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, Rng, experimentFromObject, openSession, type DataInfo } from '../../core';
import {
  buildParts,
  disposeBatch,
  disposeParts,
  expectThrowExact,
  experimentObject,
  greyBatch,
  lossGrads,
  registryOf,
  type Parts,
} from '../../testing';
import { BatchNorm, LadderLatent, plugins, precisionWeighted } from '.';

const set = { plugins };
const LG_INFO: DataInfo = { name: 'points', shape: [1, 1, 2], dim: 2, numClasses: 0, condDim: 0 };
const train = (seed: number, name: string) => ({ training: true, rng: Rng.derive(seed, name) });
const evaluation = (seed: number, name: string) => ({ training: false, rng: Rng.derive(seed, name) });
const values = (t: tf.Tensor) => Array.from(t.dataSync());

/** Assigns values to a variable of the model by its checkpoint key. */
function put(parts: Parts, key: string, v: number[]): void {
  const variable = parts.model.variables().get(key);
  if (!variable) throw new Error(`no variable ${key} (have ${[...parts.model.variables().keys()].join(', ')})`);
  const t = tf.tensor(v, variable.shape);
  variable.assign(t);
  t.dispose();
}

describe('ladder latent', () => {
  describe('precision weighting', () => {
    // [mu^, var^, mu_p, var_p, mu_q, var_q]: var_q = 1 / (1/var^ + 1/var_p), mu_q = (mu^/var^ + mu_p/var_p) var_q
    const cases: Array<[number, number, number, number, number, number]> = [
      [1, 1, 3, 1, 2, 0.5], // equal precisions: the midpoint, half the variance
      [0, 4, 1, 1, 0.8, 0.8], // var_q = 1 / (0.25 + 1) = 0.8; mu_q = (0 + 1) * 0.8
      [-2, 0.5, 6, 2, -0.4, 0.4], // var_q = 1 / (2 + 0.5) = 0.4; mu_q = (-4 + 3) * 0.4
      [5, 1e-4, -5, 1e4, 5 - 1e-7, 1 / (1e4 + 1e-4)], // a sharp bottom-up Gaussian wins: mu_q = (5e4 - 5e-4) / (1e4 + 1e-4)
      [5, 1e6, -3, 0.01, (5e-6 - 300) / (1e-6 + 100), 1 / (1e-6 + 100)], // a flat one hardly moves the prior
    ];
    for (const [mh, vh, mp, vp, mq, vq] of cases) {
      it(`Should merge N(${mh}, ${vh}) and N(${mp}, ${vp}) into N(${+mq.toPrecision(6)}, ${+vq.toPrecision(6)})`, () => {
        const t = (v: number) => tf.tensor2d([[v]]);
        const up = { loc: t(mh), logVar: t(Math.log(vh)) };
        const down = { loc: t(mp), logVar: t(Math.log(vp)) };
        const q = precisionWeighted(up, down);
        expect(q.loc.dataSync()[0]).to.be.closeTo(mq, 1e-5 * Math.max(1, Math.abs(mq)));
        expect(Math.exp(q.logVar.dataSync()[0]) / vq).to.be.closeTo(1, 1e-5);
        tf.dispose([up.loc, up.logVar, down.loc, down.logVar, q.loc, q.logVar]);
      });
    }
  });

  describe('batch normalisation', () => {
    it('Should normalise with the batch statistics in training, move the running ones by the momentum, and use those in evaluation', () => {
      const bn = new BatchNorm(3, 0.1);
      const x = tf.tensor2d([
        [1, 2, 3],
        [3, 4, 7],
      ]);
      // batch mean [2, 3, 5], biased variance [1, 1, 4]: every entry is -+1 sd from its mean
      const y = bn.apply(x, true);
      const s = 1 / Math.sqrt(1 + 1e-5);
      values(y).forEach((v, i) => expect(v).to.be.closeTo((i < 3 ? -1 : 1) * (i % 3 === 2 ? 2 / Math.sqrt(4 + 1e-5) : s), 1e-6));
      // running = 0.9 * initial + 0.1 * batch; the variance enters unbiased, [2, 2, 8]
      values(bn.runningMean).forEach((v, i) => expect(v).to.be.closeTo([0.2, 0.3, 0.5][i], 1e-7));
      values(bn.runningVar).forEach((v, i) => expect(v).to.be.closeTo([1.1, 1.1, 1.7][i], 1e-6));
      const e = bn.apply(x, false);
      // (x - running mean) / sqrt(running var + 1e-5), e.g. (1 - 0.2) / sqrt(1.1 + 1e-5)
      expect(e.dataSync()[0]).to.be.closeTo(0.8 / Math.sqrt(1.1 + 1e-5), 1e-6);
      expect(e.dataSync()[5]).to.be.closeTo(6.5 / Math.sqrt(1.7 + 1e-5), 1e-6);
      // evaluation moved nothing
      values(bn.runningMean).forEach((v, i) => expect(v).to.be.closeTo([0.2, 0.3, 0.5][i], 1e-7));
      expect(() => bn.apply(tf.tensor2d([[1, 2, 3]]), true)).to.throw('BatchNorm.apply: batch statistics in training need at least 2 rows; got [1, 3]');
      tf.dispose([x, y, e]);
      bn.dispose();
    });
  });

  describe('one layer is the plain VAE', () => {
    it('Should give the numbers of mlp + latent.gaussian + standard-normal prior + elbo with the same weights and the same seed', () => {
      // Same architecture without batch norm: one relu layer of 16 each side, a 3-dimensional
      // latent with a log-variance head. The init streams differ by plugin name, so the plain
      // model's weights are copied in order (the two lists pair up one to one).
      const ladder = buildParts(
        {
          encoder: { use: 'ladder', ladder: { hiddenSizes: [16], blockLayers: 1, activation: 'relu', batchNorm: false } },
          latent: { use: 'ladder', ladder: { dims: [3], hiddenSizes: [], variance: 'exp' } },
          decoder: { use: 'ladder', ladder: { hiddenSizes: [16], activation: 'relu', batchNorm: false } },
          objective: { use: 'ladder', ladder: { samples: 2 } },
        },
        undefined,
        set,
      );
      const plain = buildParts({ objective: { use: 'elbo', elbo: { samples: 2 } } });
      const from = [...plain.model.variables()];
      const to = [...ladder.model.variables()];
      expect(to.map(([, v]) => v.shape)).to.deep.equal(from.map(([, v]) => v.shape));
      to.forEach(([, v], i) => v.assign(from[i][1]));
      const batch = greyBatch(5, ladder.model.data, 3);
      for (const opts of [train(7, 'one'), evaluation(7, 'one')]) {
        const a = ladder.objective.terms(batch, { ...opts, rng: Rng.derive(7, 'one'), step: 0 });
        const b = plain.objective.terms(batch, { ...opts, rng: Rng.derive(7, 'one'), step: 0 });
        for (const k of ['loss', 'reconstruction', 'kl', 'elbo']) expect(values(a[k]), `${k}, training ${opts.training}`).to.deep.equal(values(b[k]));
        expect(values(a.klLayer1)).to.deep.equal(values(b.kl));
        tf.dispose([...Object.values(a), ...Object.values(b)]);
      }
      // and the same gradients
      const ga = lossGrads(ladder, batch);
      const gb = lossGrads(plain, batch);
      const fromKeys = from.map(([k]) => k);
      to.forEach(([k], i) => expect(Array.from(ga.get(k)!), k).to.deep.equal(Array.from(gb.get(fromKeys[i])!)));
      disposeBatch(batch);
      disposeParts(ladder);
      disposeParts(plain);
    });
  });

  // ---------------------------------------------------------------------------------------------
  // A linear-Gaussian two-layer model, everything known in closed form:
  //   z2 ~ N(0, 1),  z1 | z2 ~ N(A z2 + C, T2),  x | z1 ~ N(W z1 + B, S^2 I_2).
  // Marginal: z1 ~ N(C, A^2 + T2), x ~ N(B + W C, (A^2 + T2) W W^T + S^2 I).
  // The ladder's q is exact here. As a function of z1, N(x; W z1 + B, S^2 I) is proportional to
  // N(z1; W.(x - B) / |W|^2, S^2 / |W|^2): a bottom-up Gaussian of layer 1 linear in x, and its
  // precision-weighted merge with p(z1 | z2) is p(z1 | z2, x). At the top, x | z2 ~ N(W A z2 + W C + B,
  // Sigma), Sigma = T2 W W^T + S^2 I, Sigma^-1 W = W / D with D = S^2 + T2 |W|^2, so
  // p(z2 | x) = N(V (A / D) W.(x - W C - B), V), V = 1 / (1 + A^2 |W|^2 / D).
  const A = 0.8;
  const C = 0.3;
  const T2 = 0.5;
  const W: [number, number] = [1.5, -0.7];
  const B: [number, number] = [0.3, 0.1];
  const S = 0.5;
  const WW = W[0] * W[0] + W[1] * W[1];
  const D = S * S + T2 * WW;
  const V = 1 / (1 + (A * A * WW) / D);
  const dot = (a: readonly number[], b: readonly number[]) => a[0] * b[0] + a[1] * b[1];

  /** log N(x; B + W C, (A^2 + T2) W W^T + S^2 I), by the 2x2 inverse and determinant. */
  function exactLogP(x: [number, number]): number {
    const P1 = A * A + T2;
    const c11 = P1 * W[0] * W[0] + S * S;
    const c22 = P1 * W[1] * W[1] + S * S;
    const c12 = P1 * W[0] * W[1];
    const det = c11 * c22 - c12 * c12;
    const d0 = x[0] - B[0] - W[0] * C;
    const d1 = x[1] - B[1] - W[1] * C;
    return -Math.log(2 * Math.PI) - 0.5 * Math.log(det) - 0.5 * ((c22 * d0 * d0 - 2 * c12 * d0 * d1 + c11 * d1 * d1) / det);
  }

  /** How far q is from the exact posterior: shifts of the bottom-up means, factors on their variances. */
  interface QShape {
    shift1: number;
    scale1: number;
    shift2: number;
    scale2: number;
  }
  const EXACT_Q: QShape = { shift1: 0, scale1: 1, shift2: 0, scale2: 1 };

  /**
   * The model built from the shipped plugins with weights set by hand: encoder.ladder with two
   * linear blocks of width 2 set to the identity (d_1 = d_2 = x), latent.ladder with dims [1, 1]
   * and affine heads (blockLayers 0, log-variance heads), decoder.mlp without hidden layers
   * (W, B), a Gaussian likelihood of fixed scale S and the standard-normal prior over z2.
   */
  function linearGaussianParts(q: QShape): Parts {
    const parts = buildParts(
      {
        encoder: { use: 'ladder', ladder: { hiddenSizes: [2, 2], blockLayers: 1, activation: 'linear', batchNorm: false } },
        latent: { use: 'ladder', ladder: { dims: [1, 1], hiddenSizes: [1], blockLayers: 0, batchNorm: false, variance: 'exp', minVariance: 1e-12 } },
        decoder: { use: 'mlp', mlp: { hiddenSizes: [] } },
        likelihood: { use: 'gaussian', gaussian: { scale: 'fixed', fixedScale: S } },
        objective: { use: 'elbo' },
      },
      LG_INFO,
      set,
    );
    for (const b of ['block0', 'block1']) {
      put(parts, `encoder/${b}/dense0/kernel`, [1, 0, 0, 1]);
      put(parts, `encoder/${b}/dense0/bias`, [0, 0]);
    }
    // layer 1, bottom-up: N(W.(x - B) / |W|^2, S^2 / |W|^2)
    put(parts, 'latent/up0/loc/kernel', [W[0] / WW, W[1] / WW]);
    put(parts, 'latent/up0/loc/bias', [-dot(W, B) / WW + q.shift1]);
    put(parts, 'latent/up0/logVar/kernel', [0, 0]);
    put(parts, 'latent/up0/logVar/bias', [Math.log((q.scale1 * S * S) / WW)]);
    // layer 2, bottom-up = q(z2 | x): N(V (A / D) W.(x - W C - B), V)
    put(parts, 'latent/up1/loc/kernel', [(V * A * W[0]) / D, (V * A * W[1]) / D]);
    put(parts, 'latent/up1/loc/bias', [(-V * A * (C * WW + dot(W, B))) / D + q.shift2]);
    put(parts, 'latent/up1/logVar/kernel', [0, 0]);
    put(parts, 'latent/up1/logVar/bias', [Math.log(q.scale2 * V)]);
    // p(z1 | z2) = N(A z2 + C, T2)
    put(parts, 'latent/down0/loc/kernel', [A]);
    put(parts, 'latent/down0/loc/bias', [C]);
    put(parts, 'latent/down0/logVar/kernel', [0]);
    put(parts, 'latent/down0/logVar/bias', [Math.log(T2)]);
    put(parts, 'decoder/mlp/dense0/kernel', [W[0], W[1]]);
    put(parts, 'decoder/mlp/dense0/bias', [B[0], B[1]]);
    return parts;
  }

  /** log w = log p(x | z1) + log p(z2) + log p(z1 | z2) - log q(z1, z2 | x) of k draws for one x (what the IW estimate averages). */
  function logWeights(parts: Parts, x: [number, number], k: number, seed: number): Float32Array {
    return tf.tidy(() => {
      const pass = parts.model.forward({ x: tf.tensor2d([x]), cond: null }, k, evaluation(seed, 'lg'));
      return tf.sub(tf.add(pass.logPx, parts.model.logPrior(pass.latent, null)), pass.latent.logQ);
    }).dataSync() as Float32Array;
  }

  const POINTS: Array<[number, number]> = [
    [0.5, -0.2],
    [2.0, -1.0],
    [-1.2, 0.9],
  ];

  describe('a linear-Gaussian two-layer model', () => {
    it('Should give every importance weight log p(x) exactly when the bottom-up Gaussians make q the exact posterior', () => {
      // q(z2 | x) q(z1 | z2, x) = p(z2 | x) p(z1 | z2, x), so p(x, z1, z2) / q = p(x) for every draw
      const parts = linearGaussianParts(EXACT_Q);
      for (const x of POINTS) {
        const exact = exactLogP(x);
        logWeights(parts, x, 50, 1).forEach((v, i) => expect(v, `x = ${x}, draw ${i}`).to.be.closeTo(exact, 1e-4));
      }
      disposeParts(parts);
    });

    it('Should give an IW estimate (k = 20 000) within 4 standard errors of the exact log p(x) for an inexact q, above the ELBO', () => {
      const parts = linearGaussianParts({ shift1: 0.3, scale1: 2, shift2: -0.4, scale2: 1.5 });
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
        // delta method: sd(log mean w) = sd(w) / (mean(w) sqrt(k))
        const se = Math.sqrt(Math.max(sumSq / k - mean * mean, 0)) / (mean * Math.sqrt(k));
        const exact = exactLogP(x);
        expect(se, 'the inexact q must leave the weights random').to.be.above(1e-4);
        expect(Math.abs(estimate - exact), `x = ${x}: estimate ${estimate}, exact ${exact}, se ${se}`).to.be.below(4 * se);
        expect(lw.reduce((s, v) => s + v, 0) / k).to.be.below(exact);
      });
      disposeParts(parts);
    });
  });

  describe('KL per layer', () => {
    it('Should match, layer by layer, the Monte-Carlo mean of log q - log p over 20 000 draws within 4 standard errors', () => {
      // Three layers with their initial weights (softplus variances, one hidden layer per block,
      // batch norm in evaluation). For l < L the closed form is KL(q(z_l | z_l+1, x) || p(z_l | z_l+1))
      // at each drawn z_l+1, and the difference d = (log q - log p) - KL at the draw has mean 0 exactly:
      // the test is |mean(d)| < 4 sd(d) / sqrt(n). At the top, KL(q(z_L | x) || N(0, I)) per example.
      const parts = buildParts(
        {
          encoder: { use: 'ladder', ladder: { hiddenSizes: [12, 8, 6], blockLayers: 1 } },
          latent: { use: 'ladder', ladder: { dims: [4, 3, 2], hiddenSizes: [6, 5], blockLayers: 1 } },
        },
        undefined,
        set,
      );
      const latent = parts.model.latent as LadderLatent;
      // move the bottom-up means away from the prior's, so that every KL is well above 0
      for (const l of [0, 1, 2]) {
        const bias = latent.variables().get(`up${l}/loc/bias`)!;
        bias.assign(tf.tidy(() => tf.add(bias, tf.linspace(-1.5, 1.5, bias.shape[0]))));
      }
      const n = 20000;
      const x = greyBatch(2, parts.model.data, 5);
      const h = parts.model.encoder.encode(x.x, null, evaluation(1, 'kl'));
      const draw = latent.sampleLayers(h, n, evaluation(2, 'kl'));
      const priorLogP = parts.model.prior.logProb(draw.sample.priorZ!, null);
      const topKl = parts.model.prior.analyticKl!(draw.sample.posterior!, null) as tf.Tensor1D;
      for (let l = 0; l < 3; l++) {
        const t = draw.layers[l];
        const logQ = values(t.logQ);
        const logP = values(t.logP ?? priorLogP);
        const kl = t.kl ? values(t.kl) : null;
        const klTop = values(topKl);
        const d = logQ.map((q, i) => q - logP[i] - (kl ? kl[i] : klTop[i % 2]));
        const mean = d.reduce((s, v) => s + v, 0) / d.length;
        const sd = Math.sqrt(d.reduce((s, v) => s + (v - mean) ** 2, 0) / (d.length - 1));
        const klMean = kl ? kl.reduce((s, v) => s + v, 0) / kl.length : (klTop[0] + klTop[1]) / 2;
        expect(klMean, `layer ${l + 1}: a KL away from 0`).to.be.above(0.1);
        expect(sd, `layer ${l + 1}: Monte-Carlo noise`).to.be.above(0.01);
        expect(Math.abs(mean), `layer ${l + 1}: closed form ${klMean}, Monte Carlo ${klMean + mean}, se ${sd / Math.sqrt(d.length)}`).to.be.below((4 * sd) / Math.sqrt(d.length));
      }
      tf.dispose([...(h as tf.Tensor[]), priorLogP, topKl, draw.sample.z, draw.sample.priorZ!, draw.sample.logQ, draw.sample.innerLogPrior!, draw.sample.innerKl!]);
      tf.dispose([draw.sample.posterior!.loc, draw.sample.posterior!.logVar]);
      for (const t of draw.layers) tf.dispose([t.logQ, t.logP, t.kl].filter((v): v is tf.Tensor1D => v !== null));
      disposeBatch(x);
      disposeParts(parts);
    });

    it('Should report klLayer1..L summing to kl, equal to the model closed form (prior.analyticKl + innerKl) with the same draws', () => {
      const parts = buildParts(
        {
          encoder: { use: 'ladder', ladder: { hiddenSizes: [12, 8, 6] } },
          latent: { use: 'ladder', ladder: { dims: [4, 3, 2], hiddenSizes: [6, 5] } },
          objective: { use: 'ladder', ladder: { samples: 3 } },
        },
        undefined,
        set,
      );
      const batch = greyBatch(6, parts.model.data, 4);
      const terms = parts.objective.terms(batch, { ...evaluation(9, 'terms'), step: 0 });
      const perLayer = [1, 2, 3].map((l) => values(terms[`klLayer${l}`]));
      const kl = values(terms.kl);
      kl.forEach((v, i) => expect(perLayer[0][i] + perLayer[1][i] + perLayer[2][i]).to.be.closeTo(v, 1e-4));
      const model = tf.tidy(() => {
        const pass = parts.model.forward(batch, 3, evaluation(9, 'terms'));
        return parts.model.kl(pass.latent, null).kl;
      });
      values(model).forEach((v, i) => expect(kl[i]).to.be.closeTo(v, 1e-4));
      perLayer.forEach((layer) => layer.forEach((v) => expect(v).to.be.above(0)));
      tf.dispose([model, ...Object.values(terms)]);
      disposeBatch(batch);
      disposeParts(parts);
    });

    it('Should give objective.elbo and objective.beta-vae the same klLayer1..L as objective.ladder (same draws), through LatentSample.layerKl', () => {
      const build = (objective: Record<string, unknown>) =>
        buildParts(
          {
            encoder: { use: 'ladder', ladder: { hiddenSizes: [12, 8, 6] } },
            latent: { use: 'ladder', ladder: { dims: [4, 3, 2], hiddenSizes: [6, 5] } },
            objective,
          },
          undefined,
          set,
        );
      const ladder = build({ use: 'ladder', ladder: { samples: 3 } });
      const batch = greyBatch(6, ladder.model.data, 4);
      const reference = ladder.objective.terms(batch, { ...evaluation(9, 'terms'), step: 0 });
      for (const objective of [{ use: 'elbo', elbo: { samples: 3 } }, { use: 'beta-vae', 'beta-vae': { samples: 3, beta: 4 } }]) {
        const other = build(objective);
        const terms = other.objective.terms(batch, { ...evaluation(9, 'terms'), step: 0 });
        for (const l of [1, 2, 3]) {
          const [a, b] = [values(terms[`klLayer${l}`] ?? tf.tensor1d([])), values(reference[`klLayer${l}`])];
          expect(a, `${objective.use}: klLayer${l}`).to.have.length(6);
          a.forEach((v, i) => expect(v, `${objective.use}: klLayer${l}[${i}]`).to.be.closeTo(b[i], 1e-4));
        }
        expect(terms).to.not.have.property('klLayer4');
        tf.dispose(Object.values(terms));
        disposeParts(other);
      }
      tf.dispose(Object.values(reference));
      disposeBatch(batch);
      disposeParts(ladder);
    });
  });

  describe('generation', () => {
    it('Should generate from the top layer alone by running every layer of the top-down path (3 affine layers, moments within 4 standard errors)', () => {
      // dims [1, 1, 1], affine heads: z2 | z3 ~ N(a2 z3 + c2, t2), z1 | z2 ~ N(a1 z2 + c1, t1). From z3 = 1.5:
      // E[z1] = a1 (a2 1.5 + c2) + c1 = 0.5 * 3.4 - 1 = 0.7, Var[z1] = a1^2 t2 + t1 = 0.25 * 0.8 + 0.3 = 0.5
      const parts = buildParts(
        {
          encoder: { use: 'ladder', ladder: { hiddenSizes: [4, 4, 4], batchNorm: false } },
          latent: { use: 'ladder', ladder: { dims: [1, 1, 1], hiddenSizes: [1, 1], blockLayers: 0, variance: 'exp' } },
        },
        LG_INFO,
        set,
      );
      const [a1, c1, t1, a2, c2, t2] = [0.5, -1, 0.3, 2, 0.4, 0.8];
      const heads = (l: number, a: number, c: number, t: number) => {
        put(parts, `latent/down${l}/loc/kernel`, [a]);
        put(parts, `latent/down${l}/loc/bias`, [c]);
        put(parts, `latent/down${l}/logVar/kernel`, [0]);
        put(parts, `latent/down${l}/logVar/bias`, [Math.log(t)]);
      };
      heads(0, a1, c1, t1);
      heads(1, a2, c2, t2);
      const n = 20000;
      const z3 = tf.fill([n, 1], 1.5) as tf.Tensor2D;
      const z1 = parts.model.latent.generate!(z3, evaluation(4, 'gen'));
      expect(z1.shape).to.deep.equal([n, 1]);
      const { mean, variance } = tf.moments(z1);
      const expMean = a1 * (a2 * 1.5 + c2) + c1;
      const expVar = a1 * a1 * t2 + t1;
      expect(Math.abs(mean.dataSync()[0] - expMean)).to.be.below(4 * Math.sqrt(expVar / n));
      expect(Math.abs(variance.dataSync()[0] - expVar)).to.be.below(4 * expVar * Math.sqrt(2 / n));
      // the model's generation goes through it: a prior draw of z3, the top-down path, the decoder
      const xs = parts.model.generate(3, null, evaluation(5, 'gen'));
      expect(xs.shape).to.deep.equal([3, 2]);
      tf.dispose([z3, z1, mean, variance, xs]);
      disposeParts(parts);
    });
  });

  describe('gradients', () => {
    it('Should send the loss gradient to every trainable variable of encoder, latent and decoder (batch norm on, 3 layers, free bits off)', () => {
      const parts = buildParts(
        {
          encoder: { use: 'ladder', ladder: { hiddenSizes: [12, 8, 6] } },
          latent: { use: 'ladder', ladder: { dims: [4, 3, 2], hiddenSizes: [6, 5] } },
          decoder: { use: 'ladder', ladder: { hiddenSizes: [10, 10] } },
          objective: { use: 'ladder', ladder: { klSchedule: { use: 'linear', warmupSteps: 10 } } },
        },
        undefined,
        set,
      );
      const batch = greyBatch(8, parts.model.data, 6);
      const grads = lossGrads(parts, batch);
      const keys = [...parts.model.variables().keys()];
      // encoder: 3 blocks x 2 layers x (kernel, scale, offset); latent: 3 x 4 bottom-up heads, 2 x (2 x 3 block + 4 heads);
      // decoder: 2 x (kernel, scale, offset) + out kernel and bias
      expect(keys.filter((k) => k.startsWith('encoder/')).length).to.equal(18);
      expect(keys.filter((k) => k.startsWith('latent/')).length).to.equal(12 + 2 * 10);
      expect(keys.filter((k) => k.startsWith('decoder/')).length).to.equal(8);
      for (const k of keys) {
        const g = grads.get(k);
        expect(g, `${k} has a gradient`).to.not.equal(undefined);
        expect(g!.every(Number.isFinite), `${k} finite`).to.equal(true);
        expect(g!.some((v) => v !== 0), `${k} non-zero`).to.equal(true);
      }
      // the running statistics are state, never trained
      const state = [...parts.model.state().keys()];
      expect(state.length).to.equal(2 * (6 + 4 + 2));
      expect(state.every((k) => /\/norm\d+\/running(Mean|Var)$/.test(k))).to.equal(true);
      disposeBatch(batch);
      disposeParts(parts);
    });

    it('Should match a central finite difference of d sum(z_1^2) / d(a bottom-up log-variance bias of layer 1), through the merge (eps 1e-3, rtol 0.02)', () => {
      const parts = buildParts(
        {
          encoder: { use: 'ladder', ladder: { hiddenSizes: [8, 6], batchNorm: false } },
          latent: { use: 'ladder', ladder: { dims: [3, 2], hiddenSizes: [4], batchNorm: false } },
        },
        undefined,
        set,
      );
      const latent = parts.model.latent;
      const x = greyBatch(4, parts.model.data, 8);
      const h = parts.model.encoder.encode(x.x, null, evaluation(0, 'fd')) as tf.Tensor[];
      const bias = latent.variables().get('up0/logVar/bias')!;
      const f = () =>
        tf.tidy(() => {
          const s = latent.sample(h, 2, train(8, 'fd'));
          return tf.sum(tf.square(s.z)) as tf.Scalar;
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
      tf.dispose([...h, value, ...Object.values(grads)]);
      disposeBatch(x);
      disposeParts(parts);
    });
  });

  describe('bad input', () => {
    const build = (latent: Record<string, unknown>, encoder: Record<string, unknown> = { hiddenSizes: [8, 6] }) => () =>
      buildParts({ encoder: { use: 'ladder', ladder: encoder }, latent: { use: 'ladder', ladder: latent } }, undefined, set);

    it('Should refuse zero layers and hidden sizes that do not match the layers, with the exact messages', () => {
      expectThrowExact(build({ dims: [], hiddenSizes: [] }), ConfigError, 'latent.ladder.dims: must list at least one stochastic layer; got []');
      expectThrowExact(
        build({ dims: [64, 32], hiddenSizes: [256, 128] }),
        ConfigError,
        'latent.ladder.hiddenSizes: must have one entry per pair of adjacent layers (the width of the top-down block of p(z_l | z_l+1)), 1 for latent.ladder.dims [64,32]; got [256,128] (2 entries)',
      );
      expectThrowExact(build({}, { hiddenSizes: [] }), ConfigError, 'encoder.ladder.hiddenSizes: must list at least one block (one feature depth per stochastic layer); got []');
    });

    it('Should refuse an encoder with fewer (or more) feature depths than the ladder has layers, or one flat row for several layers', () => {
      expectThrowExact(
        build({ dims: [4, 3, 2], hiddenSizes: [5, 4] }),
        ConfigError,
        'latent.ladder: needs one flat feature row [B, D] per stochastic layer from the encoder, 3 for latent.ladder.dims [4,3,2] (e.g. encoder "ladder" with 3 hiddenSizes); ' +
          'got the encoder\'s 2 feature shapes [[8],[6]]',
      );
      expectThrowExact(
        () => buildParts({ latent: { use: 'ladder', ladder: { dims: [3, 2], hiddenSizes: [4] } } }, undefined, set),
        ConfigError,
        'latent.ladder: needs one flat feature row [B, D] per stochastic layer from the encoder, 2 for latent.ladder.dims [3,2] (e.g. encoder "ladder" with 2 hiddenSizes); ' +
          'got the encoder\'s 1 feature shape [[16]]',
      );
    });

    it('Should refuse objective.ladder without latent.ladder, and free bits of the wrong length', () => {
      expectThrowExact(
        () => buildParts({ objective: { use: 'ladder' } }, undefined, set),
        ConfigError,
        'objective.ladder: needs a latent that draws layer by layer, e.g. "ladder" or "conv-hierarchy" (the KL of each layer comes from its top-down pass); got latent "GaussianLatent"',
      );
      expectThrowExact(
        () =>
          buildParts(
            {
              encoder: { use: 'ladder', ladder: { hiddenSizes: [8, 6, 4] } },
              latent: { use: 'ladder', ladder: { dims: [3, 2, 2], hiddenSizes: [4, 4] } },
              objective: { use: 'ladder', ladder: { freeBits: { natsPerLayer: [1, -1] } } },
            },
            undefined,
            set,
          ),
        ConfigError,
        '2 problems\n' +
          '  - objective.ladder.freeBits.natsPerLayer: must have no entry (off), one (every layer) or one per stochastic layer, 3 for latent.ladder.dims; got [1,-1] (2 entries)\n' +
          '  - objective.ladder.freeBits.natsPerLayer: every entry must be a non-negative number of nats; got [1,-1]',
      );
    });

    it('Should refuse an undeclared key and a bad list with the strict-mode messages', () => {
      expectThrowExact(
        () => experimentFromObject(experimentObject({ latent: { use: 'ladder', ladder: { layers: 2 } } }), registryOf(set)),
        ConfigError,
        'latent.ladder.layers: not declared in the schema of plugin "ladder" (keys: dims, hiddenSizes, blockLayers, activation, batchNorm, batchNormMomentum, variance, minVariance)',
      );
      expectThrowExact(
        () => experimentFromObject(experimentObject({ latent: { use: 'ladder', ladder: { dims: [0] } } }), registryOf(set)),
        ConfigError,
        'latent.ladder.dims: must be a list of at most 1024 integers in [1, 2147483647]; got [0]',
      );
    });

    /** A whole ladder on synthetic shapes (14x14, `size` training images), opened as a run would be. */
    const session = (size: number, trainOver: Record<string, unknown>, bn = true) =>
      openSession(
        experimentFromObject(
          experimentObject({
            data: { use: 'synthetic', synthetic: { kind: 'shapes', size } },
            encoder: { use: 'ladder', ladder: { hiddenSizes: [8, 6], batchNorm: bn } },
            latent: { use: 'ladder', ladder: { dims: [3, 2], hiddenSizes: [4], batchNorm: bn } },
            decoder: { use: 'ladder', ladder: { hiddenSizes: [8], batchNorm: bn } },
            objective: { use: 'ladder' },
            train: { batchSize: 32, ...trainOver },
          }),
          registryOf(set),
        ),
      );

    it('Should refuse batch norm with a training batch of one before training, naming the key, and accept it without batch norm or with dropLast', () => {
      expectThrowExact(
        () => session(64, { batchSize: 1 }),
        ConfigError,
        'encoder.ladder.batchNorm: batch statistics need at least 2 examples in every training batch; got train.batchSize = 1. Set train.batchSize >= 2, or encoder.ladder.batchNorm = false',
      );
      // 65 examples in batches of 32: the last batch of each epoch has 1
      expectThrowExact(
        () => session(65, {}),
        ConfigError,
        'encoder.ladder.batchNorm: batch statistics need at least 2 examples in every training batch; the last batch of each epoch has 1 (65 training examples, train.batchSize = 32). ' +
          'Set train.dropLast = true, change train.batchSize, or set encoder.ladder.batchNorm = false',
      );
      for (const ok of [session(65, { dropLast: true }), session(64, { batchSize: 1 }, false), session(66, {})]) {
        expect(ok.info.trainBatch!.last).to.be.at.least(ok.config.train.batchSize === 1 ? 1 : 2);
        disposeParts(ok.parts);
      }
    });

    it('Should refuse batch norm in the latent and the decoder too, each naming its own key', () => {
      const info = { ...LG_INFO, trainSize: 64, trainBatch: { size: 1, last: 1 } };
      expectThrowExact(
        () =>
          buildParts(
            { encoder: { use: 'ladder', ladder: { hiddenSizes: [8, 6], batchNorm: false } }, latent: { use: 'ladder', ladder: { dims: [3, 2], hiddenSizes: [4] } } },
            info,
            set,
          ),
        ConfigError,
        'latent.ladder.batchNorm: batch statistics need at least 2 examples in every training batch; got train.batchSize = 1. Set train.batchSize >= 2, or latent.ladder.batchNorm = false',
      );
      expectThrowExact(
        () => buildParts({ decoder: { use: 'ladder', ladder: { hiddenSizes: [8] } } }, info, set),
        ConfigError,
        'decoder.ladder.batchNorm: batch statistics need at least 2 examples in every training batch; got train.batchSize = 1. Set train.batchSize >= 2, or decoder.ladder.batchNorm = false',
      );
    });
  });
});
