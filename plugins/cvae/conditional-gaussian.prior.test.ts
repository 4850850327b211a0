import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, Rng, ShapeError, experimentFromObject, type DataInfo } from '../../core';
import { buildParts, describeConformance, disposeParts, experimentObject, expectThrowExact, greyBatch, pluginGrads, registryOf, trainSteps } from '../../testing';
import { conditionalGaussianPrior, type ConditionalGaussianPrior } from './conditional-gaussian.prior';

const LOG_2PI = Math.log(2 * Math.PI);
const plugins = [conditionalGaussianPrior];
/** 8x8 images conditioned on one-hot labels of 4 classes. */
const LABELLED: DataInfo = { name: 'tiny', shape: [8, 8, 1], dim: 64, numClasses: 4, condDim: 4 };
/** 8x8 images conditioned on their visible part (condDim = dim), the quadrant task's layout. */
const QUADRANTS: DataInfo = { name: 'tiny', shape: [8, 8, 1], dim: 64, numClasses: 4, condDim: 64, targetMask: new Float32Array(64).fill(1, 32) };

function partsWith(dim: number, cfg: Record<string, unknown>, info: DataInfo = LABELLED) {
  return buildParts({ latent: { use: 'gaussian', gaussian: { dim } }, prior: { use: 'conditional-gaussian', 'conditional-gaussian': cfg } }, info, { plugins });
}

/**
 * An affine prior network (hiddenSizes []) set by hand: loc = cond A + a, logVar = cond B + b,
 * with the kernel [condDim, 2D] = [A | B] and the bias [a | b].
 */
function affinePrior(a: number[][], aBias: number[], b: number[][], bBias: number[]) {
  const parts = partsWith(aBias.length, { hiddenSizes: [] });
  const prior = parts.model.prior as ConditionalGaussianPrior;
  const vars = prior.variables();
  expect([...vars.keys()].sort()).to.deep.equal(['net/dense0/bias', 'net/dense0/kernel']);
  const kernel = tf.concat([tf.tensor2d(a), tf.tensor2d(b)], 1);
  vars.get('net/dense0/kernel')!.assign(kernel);
  vars.get('net/dense0/bias')!.assign(tf.tensor1d([...aBias, ...bBias]));
  kernel.dispose();
  return { parts, prior };
}

const oneHot = (classes: number[], k = 4) => tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(classes, 'int32'), k), 'float32') as tf.Tensor2D);

/**
 * Two classes of a 2-D prior: class 0 -> loc [1, -2], logVar [0, log 4]; class 1 -> loc [0.5, 0],
 * logVar [-1, 0]; classes 2 and 3 -> loc 0, logVar 0 (only the bias).
 */
const TWO_CLASS = () =>
  affinePrior(
    [[1, -2], [0.5, 0], [0, 0], [0, 0]],
    [0, 0],
    [[0, Math.log(4)], [-1, 0], [0, 0], [0, 0]],
    [0, 0],
  );

describe('conditional-gaussian prior', () => {
  describeConformance(
    conditionalGaussianPrior,
    [
      { title: 'one-hot labels, latent dim 2, one hidden layer', config: { hiddenSizes: [8] }, info: LABELLED, slots: { latent: { use: 'gaussian', gaussian: { dim: 2 } } } },
      { title: 'visible quadrants, affine network', config: { hiddenSizes: [] }, info: QUADRANTS },
      { title: 'visible quadrants, hidden part filled by a guess network', config: { hiddenSizes: [8], guess: 'network', guessHiddenSizes: [8] }, info: QUADRANTS },
    ],
    { plugins },
  );

  it('Should give log N(z; loc(y), e^logVar(y)) by hand for two classes', () => {
    const { parts, prior } = TWO_CLASS();
    const z = tf.tensor2d([[0, 0], [1, 1]]);
    const v = prior.logProb(z, oneHot([0, 1])).dataSync();
    // class 0, z = [0, 0]: -0.5 (2 log 2pi + 0 + log 4 + (0 - 1)^2 / 1 + (0 + 2)^2 / 4) = -0.5 (2 log 2pi + log 4 + 2)
    expect(v[0]).to.be.closeTo(-0.5 * (2 * LOG_2PI + Math.log(4) + 2), 1e-5);
    // class 1, z = [1, 1]: -0.5 (2 log 2pi - 1 + 0 + (1 - 0.5)^2 e + 1^2) = -0.5 (2 log 2pi + 0.25 e)
    expect(v[1]).to.be.closeTo(-0.5 * (2 * LOG_2PI + 0.25 * Math.E), 1e-5);
    disposeParts(parts);
  });

  const klCases: Array<[string, number, number[], number[], number[]]> = [
    // [title, class, q.loc, q.logVar, expected KL per dimension], each 0.5 (lvP - lvQ + (e^lvQ + (mQ - mP)^2) / e^lvP - 1)
    ['q equal to p(z | class 0)', 0, [1, -2], [0, Math.log(4)], [0, 0]],
    ['q = N(0, I) against class 0', 0, [0, 0], [0, 0], [0.5 * (0 - 0 + (1 + 1) / 1 - 1), 0.5 * (Math.log(4) + (1 + 4) / 4 - 1)]],
    ['q = N([2, 3], e^[1, -1]) against class 1', 1, [2, 3], [1, -1], [0.5 * (-1 - 1 + (Math.E + 2.25) * Math.E - 1), 0.5 * (0 + 1 + Math.exp(-1) + 9 - 1)]],
  ];
  for (const [title, cls, loc, logVar, perDim] of klCases) {
    it(`Should give the closed-form KL per dimension and summed: ${title}`, () => {
      const { parts, prior } = TWO_CLASS();
      const q = { loc: tf.tensor2d([loc]), logVar: tf.tensor2d([logVar]) };
      const per = prior.analyticKl(q, oneHot([cls]), true);
      expect(per.shape).to.deep.equal([1, 2]);
      Array.from(per.dataSync()).forEach((v, d) => expect(v, `dim ${d}`).to.be.closeTo(perDim[d], 1e-5));
      expect(prior.analyticKl(q, oneHot([cls])).dataSync()[0]).to.be.closeTo(perDim[0] + perDim[1], 1e-5);
      disposeParts(parts);
    });
  }

  it('Should draw samples with the mean and variance of p(z | y) of each class within 4 standard errors', () => {
    const { parts, prior } = TWO_CLASS();
    const n = 20000;
    for (const [cls, mu, variance] of [[0, [1, -2], [1, 4]], [1, [0.5, 0], [Math.exp(-1), 1]]] as const) {
      const cond = oneHot(new Array(n).fill(cls));
      const s = prior.sample(n, Rng.derive(3, 'cg-moments', cls), cond);
      expect(s.shape).to.deep.equal([n, 2]);
      const m = tf.moments(s, 0);
      const mean = m.mean.dataSync();
      const vr = m.variance.dataSync();
      for (let d = 0; d < 2; d++) {
        expect(Math.abs(mean[d] - mu[d]), `class ${cls} mean ${d}`).to.be.below(4 * Math.sqrt(variance[d] / n));
        // Var of the sample variance of a Gaussian: 2 sigma^4 / n
        expect(Math.abs(vr[d] - variance[d]), `class ${cls} variance ${d}`).to.be.below(4 * variance[d] * Math.sqrt(2 / n));
      }
      tf.dispose([cond, s, m.mean, m.variance]);
    }
    disposeParts(parts);
  });

  it('Should match the Monte-Carlo KL mean(log q(z) - log p(z | y)) within 4 standard errors (20 000 draws per example, random network)', () => {
    const parts = partsWith(3, { hiddenSizes: [8] });
    const prior = parts.model.prior;
    const cond = oneHot([0, 1, 2]);
    const q = { loc: tf.tensor2d([[0.3, -1, 2], [0, 0, 0], [-0.5, 0.2, 1]]), logVar: tf.tensor2d([[0, -1, 0.5], [0, 0, 0], [1, -2, 0]]) };
    const exact = prior.analyticKl!(q, cond).dataSync();
    const s = 20000;
    const rng = Rng.derive(5, 'cg-mc-kl');
    for (let b = 0; b < 3; b++) {
      const mc = tf.tidy(() => {
        const loc = tf.slice(q.loc, [b, 0], [1, 3]);
        const logVar = tf.slice(q.logVar, [b, 0], [1, 3]);
        const z = tf.add(loc, tf.mul(tf.exp(tf.mul(logVar, 0.5)), rng.normalTensor([s, 3]))) as tf.Tensor2D;
        const logQ = tf.mul(tf.sum(tf.add(tf.add(tf.mul(tf.square(tf.sub(z, loc)), tf.exp(tf.neg(logVar))), logVar), LOG_2PI), 1), -0.5);
        const condS = tf.tile(tf.slice(cond, [b, 0], [1, 4]), [s, 1]) as tf.Tensor2D;
        const diff = tf.sub(logQ, prior.logProb(z, condS));
        const { mean, variance } = tf.moments(diff);
        return [mean.dataSync()[0], Math.sqrt(variance.dataSync()[0] / s)];
      });
      expect(Math.abs(mc[0] - exact[b]), `example ${b}: MC ${mc[0]}, closed form ${exact[b]}`).to.be.below(4 * mc[1] + 1e-4);
    }
    disposeParts(parts);
  });

  it('Should send the KL of the ELBO into every weight of the prior network', () => {
    const parts = partsWith(2, { hiddenSizes: [8] });
    const b = greyBatch(6, LABELLED);
    const grads = pluginGrads(parts, 'prior', b);
    expect([...grads.keys()].sort()).to.deep.equal(['net/dense0/bias', 'net/dense0/kernel', 'net/dense1/bias', 'net/dense1/kernel']);
    for (const [k, g] of grads) {
      expect(g.every(Number.isFinite), k).to.equal(true);
      expect(g.some((v) => v !== 0), k).to.equal(true);
    }
    tf.dispose([b.x, b.cond!]);
    disposeParts(parts);
  });

  it('Should make the model take the closed-form KL with a Gaussian latent', () => {
    const parts = partsWith(2, { hiddenSizes: [] });
    const b = greyBatch(3, LABELLED);
    const pass = parts.model.forward(b, 1, { training: false, rng: Rng.derive(0, 'k') });
    const { kl, kind } = parts.model.kl(pass.latent, b.cond);
    expect(kind).to.equal('analytic');
    const byHand = parts.model.prior.analyticKl!(pass.latent.posterior!, b.cond).dataSync();
    expect(Array.from(kl.dataSync())).to.deep.equal(Array.from(byHand));
    disposeParts(parts);
  });

  it('Should feed the prior network y with its hidden pixels replaced by sigmoid(g(y)), by hand on 2x2 images', () => {
    // pixel 0 visible, pixels 1..3 hidden (-1 in y); affine g: logits = y G + c; affine prior net, 1-D z.
    const info: DataInfo = { name: 'dots', shape: [2, 2, 1], dim: 4, numClasses: 0, condDim: 4, targetMask: Float32Array.from([0, 1, 1, 1]) };
    const parts = buildParts(
      { latent: { use: 'gaussian', gaussian: { dim: 1 } }, likelihood: { use: 'bernoulli' }, prior: { use: 'conditional-gaussian', 'conditional-gaussian': { hiddenSizes: [], guess: 'network', guessHiddenSizes: [] } } },
      info,
      { plugins },
    );
    const prior = parts.model.prior as ConditionalGaussianPrior;
    const vars = prior.variables();
    expect([...vars.keys()].sort()).to.deep.equal(['guess/dense0/bias', 'guess/dense0/kernel', 'net/dense0/bias', 'net/dense0/kernel']);
    const G = [[1, 0, 2, -1], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]];
    const c = [5, 0.5, -1, 0];
    // prior net: loc = u . a + 0.1, logVar = u . b - 0.2 on its input u
    const a = [1, 2, 3, 4];
    const b = [0.5, -1, 0, 1];
    tf.tidy(() => {
      vars.get('guess/dense0/kernel')!.assign(tf.tensor2d(G));
      vars.get('guess/dense0/bias')!.assign(tf.tensor1d(c));
      vars.get('net/dense0/kernel')!.assign(tf.tensor2d(a.map((v, i) => [v, b[i]])));
      vars.get('net/dense0/bias')!.assign(tf.tensor1d([0.1, -0.2]));
    });
    const sig = (v: number) => 1 / (1 + Math.exp(-v));
    const ys = [[0.3, -1, -1, -1], [0.9, -1, -1, -1]];
    const yT = tf.tensor2d(ys);
    const p = prior.params(yT);
    const loc = p.loc.dataSync();
    const logVar = p.logVar.dataSync();
    ys.forEach((y, r) => {
      const logits = c.map((cj, j) => cj + y.reduce((acc, yi, i) => acc + yi * G[i][j], 0));
      // pixel 0 is visible and keeps y's value; the hidden pixels take the guess's mean
      const u = [y[0], sig(logits[1]), sig(logits[2]), sig(logits[3])];
      expect(loc[r], `loc ${r}`).to.be.closeTo(u.reduce((acc, ui, i) => acc + ui * a[i], 0.1), 1e-5);
      expect(logVar[r], `logVar ${r}`).to.be.closeTo(u.reduce((acc, ui, i) => acc + ui * b[i], -0.2), 1e-5);
    });
    const g = prior.guessParams(yT);
    expect(g.arraySync()[1][2]).to.be.closeTo(-1 + 0.9 * 2, 1e-5);
    tf.dispose([yT, p.loc, p.logVar, g]);
    disposeParts(parts);
  });

  it('Should train the prior network and leave g as loaded when train.trainable leaves prior/guess/ out, and train g through the KL when it is in', function () {
    this.timeout(60000);
    const exp = { latent: { use: 'gaussian', gaussian: { dim: 2 } }, prior: { use: 'conditional-gaussian', 'conditional-gaussian': { hiddenSizes: [8], guess: 'network', guessHiddenSizes: [8] } } };
    const moved = (trainable: string[]) => {
      const parts = buildParts(exp, QUADRANTS, { plugins });
      const vars = parts.model.prior.variables();
      const before = new Map([...vars].map(([k, v]) => [k, Array.from(v.dataSync())]));
      const data = greyBatch(32, QUADRANTS);
      trainSteps(parts, data, { steps: 5, trainable });
      const out = [...vars].filter(([k, v]) => Array.from(v.dataSync()).some((x, i) => x !== before.get(k)![i])).map(([k]) => k.split('/')[0]);
      tf.dispose([data.x, data.cond!]);
      disposeParts(parts);
      return [...new Set(out)].sort();
    };
    expect(moved(['encoder/', 'latent/', 'decoder/', 'prior/net/'])).to.deep.equal(['net']);
    expect(moved([])).to.deep.equal(['guess', 'net']);
  });

  it('Should refuse a guess network when the conditioning input hides no part of x', () => {
    expectThrowExact(
      () => partsWith(2, { guess: 'network' }),
      ConfigError,
      'prior.conditional-gaussian.guess: "network" fills the dimensions of the conditioning input that it hides, and data.condition.use hides none of x (condDim 4, data dim 64); set data.condition.use to "visible-quadrants", or guess to "none"',
    );
    const parts = partsWith(2, { hiddenSizes: [] });
    expectThrowExact(
      () => (parts.model.prior as ConditionalGaussianPrior).guessParams(oneHot([0])),
      ConfigError,
      'ConditionalGaussianPrior.guessParams: prior.conditional-gaussian.guess is "none"; set it to "network"',
    );
    disposeParts(parts);
  });

  it('Should name cond and z shapes that do not fit', () => {
    const { parts, prior } = TWO_CLASS();
    expectThrowExact(
      () => prior.logProb(tf.zeros([3, 2]) as tf.Tensor2D, null),
      ShapeError,
      'ConditionalGaussianPrior.logProb: cond must be [3, 4] (the conditioning input of data.condition, one row per row of z); got null',
    );
    expectThrowExact(
      () => prior.sample(5, Rng.derive(0, 's'), oneHot([0, 1])),
      ShapeError,
      'ConditionalGaussianPrior.sample: cond must be [5, 4] (the conditioning input of data.condition, one row per draw); got [2, 4]',
    );
    expectThrowExact(
      () => prior.logProb(tf.zeros([2, 3]) as tf.Tensor2D, oneHot([0, 1])),
      ShapeError,
      "ConditionalGaussianPrior.logProb: z must be [N, 2] (the latent's priorDim); got [2, 3]",
    );
    disposeParts(parts);
  });

  it('Should refuse an unconditional experiment, bad keys and an undeclared key with exact messages', () => {
    expectThrowExact(
      () => partsWith(2, {}, { ...LABELLED, condDim: 0 }),
      ConfigError,
      'prior.use: "conditional-gaussian" needs a conditioning input, and data.condition.use is "none"; set data.condition.use to "labels" or "visible-quadrants", or use prior "standard-normal"',
    );
    const validate = (cfg: Record<string, unknown>) => () =>
      experimentFromObject(experimentObject({ prior: { use: 'conditional-gaussian', 'conditional-gaussian': cfg } }), registryOf({ plugins }));
    expectThrowExact(validate({ hiddenSizes: [0] }), ConfigError, 'prior.conditional-gaussian.hiddenSizes: must be a list of at most 1024 integers in [1, 2147483647]; got [0]');
    expectThrowExact(validate({ minLogVar: 'low' }), ConfigError, 'prior.conditional-gaussian.minLogVar: must be a finite number; got "low"');
    expectThrowExact(
      validate({ hiddenSize: [4] }),
      ConfigError,
      'prior.conditional-gaussian.hiddenSize: not declared in the schema of plugin "conditional-gaussian" (keys: hiddenSizes, activation, minLogVar, guess, guessHiddenSizes, guessActivation). Did you mean "hiddenSizes"?',
    );
  });
});
