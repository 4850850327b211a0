import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, Rng, experimentFromObject, type DataInfo } from '../../core';
import {
  buildParts,
  describeConformance,
  disposeBatch,
  disposeParts,
  experimentObject,
  expectThrowExact,
  registryOf,
  syntheticData,
  trainSteps,
} from '../../testing';
import { m2Objective, type M2Objective } from './m2.objective';

const plugins = [m2Objective];
/** 8x8 images of 4 classes, conditioned on the one-hot label (data.condition: labels). */
const LABELLED: DataInfo = { name: 'tiny', shape: [8, 8, 1], dim: 64, numClasses: 4, condDim: 4, trainSize: 64, labelledTrainSize: 32 };
/** 2-D points of 2 classes. */
const POINTS: DataInfo = { name: 'points', shape: [1, 1, 2], dim: 2, numClasses: 2, condDim: 2, trainSize: 10, labelledTrainSize: 4 };
const LOG_2PI = Math.log(2 * Math.PI);

/**
 * A model set by hand on 2-D points with 2 classes, where every term has a closed form:
 * q(z|x,y) = N(m, e^-30) with m = 0.5 x0 - 0.2 x1 + 0.3 y0 - 0.4 y1 + 0.1 (z = m to 1e-6),
 * p(z) = N(0, 1), x | z, y ~ N(w z + c_y + b, 0.5^2 I) with w = [1.5, -0.7], c_0 = [0.2, 0],
 * c_1 = [-0.3, 0.4], b = [0.3, 0.1]; classifier logits = x Wc + bc, Wc = [[1, -1], [0.5, 0.2]], bc = [0, 0.3].
 */
function handModel(alpha = 0.1, info: DataInfo = POINTS) {
  const parts = buildParts(
    {
      encoder: { use: 'mlp', mlp: { hiddenSizes: [4], activation: 'linear' } },
      latent: { use: 'gaussian', gaussian: { dim: 1, minLogVar: -40 } },
      decoder: { use: 'mlp', mlp: { hiddenSizes: [] } },
      likelihood: { use: 'gaussian', gaussian: { scale: 'fixed', fixedScale: 0.5 } },
      objective: { use: 'm2', m2: { alpha, classifierHiddenSizes: [] } },
    },
    info,
    { plugins },
  );
  const vars = new Map([...parts.model.variables(), ...[...parts.objective.variables()].map(([k, v]) => [`objective/${k}`, v] as const)]);
  const set = (name: string, values: number[], shape: number[]) => {
    const t = tf.tensor(values, shape);
    vars.get(name)!.assign(t);
    t.dispose();
  };
  set('encoder/mlp/dense0/kernel', [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1], [4, 4]);
  set('encoder/mlp/dense0/bias', [0, 0, 0, 0], [4]);
  set('latent/loc/kernel', [0.5, -0.2, 0.3, -0.4], [4, 1]);
  set('latent/loc/bias', [0.1], [1]);
  set('latent/logVar/kernel', [0, 0, 0, 0], [4, 1]);
  set('latent/logVar/bias', [-30], [1]);
  set('decoder/mlp/dense0/kernel', [1.5, -0.7, 0.2, 0, -0.3, 0.4], [3, 2]);
  set('decoder/mlp/dense0/bias', [0.3, 0.1], [2]);
  set('objective/classifier/dense0/kernel', [1, -1, 0.5, 0.2], [2, 2]);
  set('objective/classifier/dense0/bias', [0, 0.3], [2]);
  return parts;
}

/** -ELBO(x, y) of handModel by hand: -log N(x; w m + c_y + b, 0.25 I) + KL(N(m, e^-30) || N(0, 1)) + log 2. */
function negElboByHand(x: [number, number], y: number): number {
  const m = 0.5 * x[0] - 0.2 * x[1] + (y === 0 ? 0.3 : -0.4) + 0.1;
  const c = y === 0 ? [0.2, 0] : [-0.3, 0.4];
  const mean = [1.5 * m + c[0] + 0.3, -0.7 * m + c[1] + 0.1];
  const logPx = [0, 1].reduce((s, d) => s - 0.5 * (LOG_2PI + Math.log(0.25) + (x[d] - mean[d]) ** 2 / 0.25), 0);
  const kl = 0.5 * (m * m + Math.exp(-30) + 30 - 1);
  return -logPx + kl + Math.log(2);
}

/** log q(y|x) of handModel by hand. */
function logQyByHand(x: [number, number]): [number, number] {
  const l = [x[0] * 1 + x[1] * 0.5, x[0] * -1 + x[1] * 0.2 + 0.3];
  const lse = Math.log(Math.exp(l[0]) + Math.exp(l[1]));
  return [l[0] - lse, l[1] - lse];
}

describe('m2 objective', () => {
  describeConformance(m2Objective, [{ title: '4 classes, half the labels hidden', info: LABELLED, config: { classifierHiddenSizes: [8] } }], { plugins });

  it('Should give the labelled loss -ELBO(x,y) + alpha N / N_l (-log q(y|x)) and the unlabelled bound sum_y q(y|x) (-ELBO(x,y) + log q(y|x)) by hand', () => {
    const parts = handModel(0.1);
    const xs: Array<[number, number]> = [[0.5, -0.2], [2, -1], [-1, 0.8]];
    // row 0 labelled class 1, row 1 unlabelled, row 2 labelled class 0
    const batch = {
      x: tf.tensor2d(xs),
      cond: null,
      labels: tf.tensor2d([[0, 1], [0, 0], [1, 0]]),
      labelMask: tf.tensor1d([1, 0, 1]),
    };
    const t = parts.objective.terms(batch, { training: false, rng: Rng.derive(0, 'm2'), step: 0 });
    const loss = t.loss.dataSync();
    // alpha N / N_l = 0.1 * 10 / 4 = 0.25
    expect((parts.objective as M2Objective).classWeight).to.be.closeTo(0.25, 1e-12);
    const unlabelled = (x: [number, number]) => {
      const lq = logQyByHand(x);
      return [0, 1].reduce((s, y) => s + Math.exp(lq[y]) * (negElboByHand(x, y) + lq[y]), 0);
    };
    expect(loss[0]).to.be.closeTo(negElboByHand(xs[0], 1) - 0.25 * logQyByHand(xs[0])[1], 1e-3);
    expect(loss[1]).to.be.closeTo(unlabelled(xs[1]), 1e-3);
    expect(loss[2]).to.be.closeTo(negElboByHand(xs[2], 0) - 0.25 * logQyByHand(xs[2])[0], 1e-3);
    // elbo = -U(x) on every row; classification = -log q(y|x) of known labels; error = argmax q(y|x) != y
    const elbo = t.elbo.dataSync();
    xs.forEach((x, i) => expect(elbo[i], `row ${i}`).to.be.closeTo(-unlabelled(x), 1e-3));
    expect(Array.from(t.classification.dataSync())[1]).to.equal(0);
    expect(t.classification.dataSync()[2]).to.be.closeTo(-logQyByHand(xs[2])[0], 1e-5);
    const predicted = xs.map((x) => (logQyByHand(x)[0] > logQyByHand(x)[1] ? 0 : 1));
    expect(Array.from(t.error.dataSync())).to.deep.equal([predicted[0] !== 1 ? 1 : 0, 0, predicted[2] !== 0 ? 1 : 0]);
    // training without data.labelledBatchSize (rows mixed at random): every row enumerated, the same losses
    const tr = parts.objective.terms(batch, { training: true, rng: Rng.derive(0, 'm2'), step: 0 });
    const trLoss = tr.loss.dataSync();
    [0, 1, 2].forEach((i) => expect(trLoss[i], `row ${i}`).to.be.closeTo(loss[i], 1e-3));
    tf.dispose([batch.x, batch.labels, batch.labelMask, ...Object.values(t), ...Object.values(tr)]);
    disposeParts(parts);
  });

  it('Should give, in training, the gradients of the weighted enumeration of every row (labelled rows passed once)', () => {
    // data.labelledBatchSize 2: two unlabelled rows, then the two labelled rows the Batcher appends
    const parts = handModel(0.1, { ...POINTS, labelledBatch: 2, trainBatch: { size: 4, last: 4 } });
    const m2 = parts.objective as M2Objective;
    const batch = {
      x: tf.tensor2d([[2, -1], [0.3, 0.3], [0.5, -0.2], [-1, 0.8]]),
      cond: null,
      labels: tf.tensor2d([[0, 0], [0, 0], [0, 1], [1, 0]]),
      labelMask: tf.tensor1d([0, 0, 1, 1]),
    };
    const weights = tf.tensor1d([m2.batchWeights!.unlabelled, m2.batchWeights!.unlabelled, m2.batchWeights!.labelled, m2.batchWeights!.labelled]);
    const vars = new Map([...parts.model.variables(), ...[...parts.objective.variables()].map(([k, v]) => [`objective/${k}`, v] as const)]);
    const list = [...vars.values()];
    const gradsOf = (loss: () => tf.Scalar) => {
      const { value, grads } = tf.variableGrads(loss, list);
      const out = new Map(Object.entries(grads).map(([k, g]) => [k, Array.from(g.dataSync())]));
      tf.dispose([value, ...Object.values(grads)]);
      return out;
    };
    const ctx = (training: boolean) => ({ training, rng: Rng.derive(0, 'm2'), step: 0 });
    const split = gradsOf(() => tf.mean(parts.objective.terms(batch, ctx(true)).loss) as tf.Scalar);
    // evaluation enumerates every row, unweighted: weight it by hand
    const all = gradsOf(() => tf.mean(tf.mul(parts.objective.terms(batch, ctx(false)).loss, weights)) as tf.Scalar);
    expect(split.size).to.equal(list.length);
    for (const [name, g] of all) {
      const h = split.get(name)!;
      g.forEach((v, i) => expect(h[i], `${name}[${i}]`).to.be.closeTo(v, 1e-3 * Math.max(1, Math.abs(v))));
      expect(h.some((v) => v !== 0), `${name}: some gradient`).to.equal(true);
    }
    tf.dispose([batch.x, batch.labels, batch.labelMask, weights]);
    disposeParts(parts);
  });

  it('Should weight a batch of B unlabelled and L labelled rows (data.labelledBatchSize) so its mean is (N_u/N) mean U + (N_l/N) mean labelled, in training only', () => {
    // N = 10, N_l = 4; batches of 2 unlabelled + 1 labelled row
    const parts = handModel(0.1, { ...POINTS, labelledBatch: 1, trainBatch: { size: 3, last: 3 } });
    const m2 = parts.objective as M2Objective;
    // (B + L) / L * N_l / N = 3 * 0.4; (B + L) / B * N_u / N = 1.5 * 0.6
    expect(m2.batchWeights!.labelled).to.be.closeTo(1.2, 1e-12);
    expect(m2.batchWeights!.unlabelled).to.be.closeTo(0.9, 1e-12);
    const xs: Array<[number, number]> = [[0.5, -0.2], [2, -1], [-1, 0.8]];
    const batch = { x: tf.tensor2d(xs), cond: null, labels: tf.tensor2d([[0, 0], [0, 0], [1, 0]]), labelMask: tf.tensor1d([0, 0, 1]) };
    const unl = (x: [number, number]) => {
      const lq = logQyByHand(x);
      return [0, 1].reduce((s, y) => s + Math.exp(lq[y]) * (negElboByHand(x, y) + lq[y]), 0);
    };
    const lab = negElboByHand(xs[2], 0) - 0.25 * logQyByHand(xs[2])[0];
    const train = parts.objective.terms(batch, { training: true, rng: Rng.derive(0, 'm2'), step: 0 });
    const loss = Array.from(train.loss.dataSync());
    expect(loss[0]).to.be.closeTo(0.9 * unl(xs[0]), 1e-3);
    expect(loss[1]).to.be.closeTo(0.9 * unl(xs[1]), 1e-3);
    expect(loss[2]).to.be.closeTo(1.2 * lab, 1e-3);
    // the batch mean is the twin's (N_l/N) mean_l + (N_u/N) mean_u
    expect(loss.reduce((a, b) => a + b, 0) / 3).to.be.closeTo(0.4 * lab + 0.6 * ((unl(xs[0]) + unl(xs[1])) / 2), 1e-3);
    // in training the labelled row is passed once with its label: elbo = -L(x, y) there, -U(x) elsewhere
    const elbo = Array.from(train.elbo.dataSync());
    expect(elbo[0]).to.be.closeTo(-unl(xs[0]), 1e-3);
    expect(elbo[1]).to.be.closeTo(-unl(xs[1]), 1e-3);
    expect(elbo[2]).to.be.closeTo(-negElboByHand(xs[2], 0), 1e-3);
    const cls = Array.from(train.classification.dataSync());
    expect(cls.slice(0, 2)).to.deep.equal([0, 0]);
    expect(cls[2]).to.be.closeTo(-logQyByHand(xs[2])[0], 1e-5);
    const evalLoss = Array.from(parts.objective.terms(batch, { training: false, rng: Rng.derive(0, 'm2'), step: 0 }).loss.dataSync());
    expect(evalLoss[2]).to.be.closeTo(lab, 1e-3);
    expect(evalLoss[0]).to.be.closeTo(unl(xs[0]), 1e-3);
    tf.dispose([batch.x, batch.labels, batch.labelMask, ...Object.values(train)]);
    disposeParts(parts);
  });

  it('Should keep the unlabelled loss above min_y -ELBO(x,y) - log K (the entropy of q(y|x) is at most log K)', () => {
    // U = sum_y q (L + log q) >= min_y L - H(q) >= min_y L - log K, by hand on handModel
    const parts = handModel();
    const xs: Array<[number, number]> = [[0.5, -0.2], [2, -1]];
    const batch = { x: tf.tensor2d(xs), cond: null, labels: tf.zeros([2, 2]) as tf.Tensor2D, labelMask: tf.zeros([2]) as tf.Tensor1D };
    const u = parts.objective.terms(batch, { training: false, rng: Rng.derive(1, 'm2'), step: 0 }).loss.dataSync();
    xs.forEach((x, i) => expect(u[i]).to.be.at.least(Math.min(negElboByHand(x, 0), negElboByHand(x, 1)) - Math.log(2) - 1e-4));
    tf.dispose([batch.x, batch.labels, batch.labelMask]);
    disposeParts(parts);
  });

  it('Should lower its loss and learn the classes in 200 Adam steps with half the labels hidden', function () {
    this.timeout(60000);
    const parts = buildParts({ objective: { use: 'm2', m2: { classifierHiddenSizes: [8] } } }, LABELLED, { plugins });
    const data = syntheticData(LABELLED, 64);
    // example i shows pattern (class) i % 4: hide the labels of rows with i % 8 >= 4, half of each class
    data.labelMask = tf.tensor1d(Array.from({ length: 64 }, (_, i) => (i % 8 < 4 ? 1 : 0)));
    const losses = trainSteps(parts, data, { steps: 200 });
    expect(losses.every(Number.isFinite)).to.equal(true);
    const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
    expect(mean(losses.slice(-20))).to.be.below(0.8 * mean(losses.slice(0, 20)));
    // the classifier now names the pattern of every example, the unlabelled ones too
    const err = tf.tidy(() => parts.objective.terms({ ...data, labelMask: null }, { training: false, rng: Rng.derive(0, 'e'), step: 200 }).error.dataSync());
    expect(Array.from(err).reduce((s, v) => s + v, 0)).to.equal(0);
    disposeBatch(data);
    disposeParts(parts);
  });

  it('Should refuse data without labels, a model not conditioned on them, a negative alpha and an undeclared key with exact messages', () => {
    expectThrowExact(
      () => buildParts({ objective: { use: 'm2' } }, { ...LABELLED, numClasses: 0, condDim: 0 }, { plugins }),
      ConfigError,
      'objective.use: "m2" needs class labels, and data set "tiny" has none; use a labelled data set (mnist, fashion-mnist, synthetic shapes)',
    );
    expectThrowExact(
      () => buildParts({ objective: { use: 'm2' } }, { ...LABELLED, condDim: 0 }, { plugins }),
      ConfigError,
      'objective.use: "m2" needs data.condition.use "labels" (q(z|x,y) and p(x|y,z) take the one-hot label of 4 classes); the conditioning input has 0 values per example',
    );
    const validate = (m2: Record<string, unknown>) => () => experimentFromObject(experimentObject({ objective: { use: 'm2', m2 } }), registryOf({ plugins }));
    expectThrowExact(validate({ alpha: -1 }), ConfigError, 'objective.m2.alpha: must be a number >= 0; got -1');
    expectThrowExact(
      validate({ alfa: 1 }),
      ConfigError,
      'objective.m2.alfa: not declared in the schema of plugin "m2" (keys: alpha, classifierHiddenSizes, classifierActivation). Did you mean "alpha"?',
    );
  });
});
