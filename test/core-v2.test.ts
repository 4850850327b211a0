/**
 * The contract capabilities of core v2, each proven by a fixture plugin of
 * test/fixtures/core-v2.ts: several feature depths, shaped latents, pass options reaching the
 * prior, exact versus diagnostic posteriors, the conditioning input reaching the latent, labels
 * with a mask, the training-set size, and the stop-gradient helper.
 */
import { expect } from 'chai';
import { inject, injectable } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import * as path from 'node:path';
import { checkShapes } from '../core/check';
import { experimentFromObject } from '../core/config/experiment';
import { resolveParts, type Parts } from '../core/container';
import { TOKENS, type DataInfo, type Features, type ModelBatch } from '../core/contracts';
import { ShapeError } from '../core/errors';
import { klStdNormal, stopGradient } from '../core/math';
import { definePlugin } from '../core/plugin';
import { Rng } from '../core/rng';
import { openSession } from '../core/session';
import { Adam } from '../core/train/adam';
import { trainableVariables } from '../core/train/trainer';
import {
  AffineFlowLatent,
  CondShiftLatent,
  GridLatent,
  MaskedClassifierObjective,
  PseudoInputPrior,
  TwoDepthEncoder,
  plugins as fixtures,
} from './fixtures/core-v2';
import { expectThrowExact } from './data/helpers';
import { builtins, experimentObject, greyBatch, lossGrads, TINY_IMAGE_INFO } from './kits/build';

/** An encoder that declares two feature depths but returns only the top one. */
@injectable()
class OneFeatureEncoder extends TwoDepthEncoder {
  constructor(@inject(TOKENS.DataInfo) info: DataInfo, @inject(TOKENS.Seed) seed: number) {
    super(info, seed);
  }
  override encode(x: tf.Tensor2D): tf.Tensor[] {
    return tf.tidy(() => this.top.apply(this.bottom.apply(x, 'relu'), 'relu')) as unknown as tf.Tensor[];
  }
}

/** A grid latent whose mode forgets the grid shape. */
@injectable()
class FlatModeLatent extends GridLatent {
  override mode(h: Features): tf.Tensor {
    return tf.tidy(() => tf.reshape(super.mode(h), [-1, 12]));
  }
}

const broken = [
  definePlugin({ slot: 'encoder', name: 'one-feature', description: 'test', schema: {}, implementation: OneFeatureEncoder }),
  definePlugin({ slot: 'latent', name: 'flat-mode', description: 'test', schema: {}, implementation: FlatModeLatent }),
];

function registry() {
  const r = builtins();
  r.addAll(fixtures, 'test/fixtures/core-v2.ts');
  r.addAll(broken, 'test/core-v2.test.ts');
  return r;
}

function build(over: Record<string, unknown>, info: DataInfo = TINY_IMAGE_INFO): Parts & { check: () => void } {
  const exp = experimentFromObject(experimentObject(over), registry());
  const parts = resolveParts(exp, info);
  return { ...parts, check: () => checkShapes(parts.model, parts.objective, info, exp.config) };
}

/** 200 Adam steps at 1e-2 on 64 seeded grey images; returns the loss of every step. */
function trainLosses(parts: Parts, steps = 200, info: DataInfo = TINY_IMAGE_INFO): number[] {
  const vars = trainableVariables(parts.model, parts.objective);
  const adam = new Adam(vars, { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 });
  const keyOf = new Map([...vars].map(([k, v]) => [v.name, k]));
  const data = prototypeBatch(64, info);
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    const { value, grads } = tf.variableGrads(
      () => tf.mean(parts.objective.terms(data, { training: true, rng: Rng.derive(0, 'v2-train', s), step: s }).loss) as tf.Scalar,
      [...vars.values()],
    );
    const byKey = new Map(Object.entries(grads).map(([n, g]) => [keyOf.get(n)!, g]));
    adam.apply(byKey, 1e-2);
    tf.dispose(Object.values(grads));
    losses.push(value.dataSync()[0]);
    value.dispose();
  }
  adam.dispose();
  tf.dispose([data.x]);
  return losses;
}

/**
 * n binary images, each one of 4 seeded random prototypes: data a model can learn (uniform
 * grey noise cannot be compressed, so a loss on it hardly falls). Shapes: x [n, info.dim].
 */
function prototypeBatch(n: number, info: DataInfo): ModelBatch {
  const rng = Rng.derive(0, 'v2-prototypes');
  const protos = Array.from({ length: 4 }, () => Array.from({ length: info.dim }, () => (rng.uniform() < 0.5 ? 1 : 0)));
  const rows = Array.from({ length: n }, (_, i) => protos[i % 4]);
  return { x: tf.tensor2d(rows), cond: null };
}

const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;

/** STYLE 2.7(e): the last 20 steps' mean loss is below 0.8 x the first 20's, and no step is NaN. */
function expectLearns(losses: number[]): void {
  expect(losses.every(Number.isFinite)).to.equal(true);
  expect(mean(losses.slice(-20))).to.be.below(0.8 * mean(losses.slice(0, 20)));
}

/** Mean and standard error of a sample. */
function meanSe(v: ArrayLike<number>): { mean: number; se: number } {
  const n = v.length;
  let s = 0;
  for (let i = 0; i < n; i++) s += v[i];
  const m = s / n;
  let q = 0;
  for (let i = 0; i < n; i++) q += (v[i] - m) ** 2;
  return { mean: m, se: Math.sqrt(q / (n - 1) / n) };
}

describe('core v2: bottom-up features at several depths (two-depth encoder, two-layer latent)', () => {
  const over = { encoder: { use: 'two-depth' }, latent: { use: 'two-layer' } };

  it('Should pass the dry run and send gradients to every variable of both layers', () => {
    const parts = build(over);
    parts.check();
    const grads = lossGrads(parts, greyBatch(4, TINY_IMAGE_INFO));
    const keys = [...trainableVariables(parts.model, parts.objective).keys()].sort();
    expect([...grads.keys()].sort()).to.deep.equal(keys);
    expect(keys).to.include.members(['encoder/bottom/kernel', 'encoder/top/kernel', 'latent/q1/kernel', 'latent/q2/kernel', 'latent/p1/kernel']);
    for (const [k, g] of grads) expect(g.some((v) => v !== 0), k).to.equal(true);
  });

  it('Should take the closed-form KL (top layer + inner layer) that Monte Carlo over 4000 samples confirms within 4 standard errors', () => {
    const parts = build(over);
    const batch = greyBatch(1, TINY_IMAGE_INFO, 5);
    const opts = { training: false, rng: Rng.derive(0, 'v2-kl'), cond: null };
    const h = parts.model.encoder.encode(batch.x, null, opts);
    const s = parts.model.latent.sample(h, 4000, opts);
    const { kl, kind } = parts.model.kl(s, null);
    expect(kind).to.equal('analytic');
    // The single-sample estimate log q(z1, z2) - log p(z1, z2) per draw; its mean is the KL.
    const perDraw = tf.sub(s.logQ, parts.model.logPrior(s, null)).dataSync();
    const mc = meanSe(perDraw);
    // innerKl is itself averaged over the same 4000 draws of z2, so both estimate one number.
    expect(Math.abs(kl.dataSync()[0] - mc.mean)).to.be.below(4 * mc.se);
    tf.dispose([kl, ...(h as tf.Tensor[])]);
  });

  it('Should lower the loss of a short training (@slow)', function () {
    this.timeout(60000);
    expectLearns(trainLosses(build(over)));
  });

  it('Should name the encoder, its outputShapes and what it returned when a feature is missing', () => {
    const parts = build({ encoder: { use: 'one-feature' }, latent: { use: 'two-layer' } });
    expectThrowExact(parts.check, ShapeError, 'encoder "one-feature".encode: must return a list of 2 feature tensors (its outputShapes [8], [4]); got one tensor [2, 4]');
  });
});

describe('core v2: shaped latents [B, H, W, C] (grid encoder, latent, decoder and prior)', () => {
  const over = { encoder: { use: 'grid' }, latent: { use: 'grid' }, decoder: { use: 'grid' }, prior: { use: 'grid-normal' } };

  it('Should carry [S*B, 2, 2, 3] codes from the latent to decoder and prior, and generate from [n, 2, 2, 3] prior draws', () => {
    const parts = build(over);
    parts.check();
    const batch = greyBatch(3, TINY_IMAGE_INFO);
    const pass = parts.model.forward(batch, 2, { training: false, rng: Rng.derive(0, 'grid') });
    expect(pass.latent.z.shape).to.deep.equal([6, 2, 2, 3]);
    expect(pass.logPx.shape).to.deep.equal([6]);
    const lp = parts.model.logPrior(pass.latent, null);
    // log N(z; 0, I) over 12 values: -0.5 * (sum z^2 + 12 log 2 pi), summed by hand per row.
    const z = pass.latent.z.reshape([6, 12]).arraySync() as number[][];
    Array.from(lp.dataSync()).forEach((v, i) => expect(v).to.be.closeTo(-0.5 * (z[i].reduce((s, x) => s + x * x, 0) + 12 * Math.log(2 * Math.PI)), 1e-4));
    const g = parts.model.generate(5, null, { training: false, rng: Rng.derive(0, 'grid-gen') });
    expect(g.shape).to.deep.equal([5, TINY_IMAGE_INFO.dim]);
    tf.dispose([g, lp, pass.params, pass.logPx, pass.latent.z, pass.latent.logQ, batch.x]);
  });

  it('Should lower the loss of a short training (@slow)', function () {
    this.timeout(60000);
    expectLearns(trainLosses(build(over)));
  });

  it('Should name the latent, its shape and what mode returned when mode forgets the grid', () => {
    const parts = build({ ...over, latent: { use: 'flat-mode' } });
    expectThrowExact(parts.check, ShapeError, 'latent "flat-mode".mode: must return [N, 2, 2, 3] (its shape); got [2, 12]');
  });
});

describe('core v2: a prior receives the pass options (pseudo-input prior)', () => {
  it('Should equal the one component q(z | u) when K = 1, and the same value when K = 2 with equal pseudo-inputs', () => {
    const one = build({ prior: { use: 'pseudo-input', 'pseudo-input': { count: 1 } } });
    const prior = one.model.prior as PseudoInputPrior;
    const opts = { training: false, rng: Rng.derive(0, 'p') };
    const z = tf.tensor2d([[0.3, -1, 2], [0, 0, 0]]);
    const q = prior.components(opts);
    // log N(z; loc, e^logVar) of the single component, summed by hand over the 3 dimensions.
    const loc = q.loc.arraySync()[0];
    const lv = q.logVar.arraySync()[0];
    const zs = z.arraySync();
    const expected = zs.map((row) => row.reduce((s, zi, d) => s - 0.5 * (Math.log(2 * Math.PI) + lv[d] + (zi - loc[d]) ** 2 / Math.exp(lv[d])), 0));
    const got = prior.logProb(z, null, opts).dataSync();
    expected.forEach((e, i) => expect(got[i]).to.be.closeTo(e, 1e-4));
    // Two equal components: log((p + p) / 2) = log p.
    const two = build({ prior: { use: 'pseudo-input', 'pseudo-input': { count: 2 } } });
    const p2 = two.model.prior as PseudoInputPrior;
    p2.pseudo.assign(tf.concat([prior.pseudo, prior.pseudo]));
    const got2 = p2.logProb(z, null, opts).dataSync();
    expected.forEach((e, i) => expect(got2[i]).to.be.closeTo(e, 1e-4));
  });

  it('Should get the pass options from the model (training flag) and send gradients to its pseudo-inputs through encoder and latent', () => {
    const parts = build({ prior: { use: 'pseudo-input' } });
    const prior = parts.model.prior as PseudoInputPrior;
    const grads = lossGrads(parts, greyBatch(4, TINY_IMAGE_INFO));
    expect(prior.seenTraining).to.include(true);
    expect(prior.seenTraining).to.not.include(undefined);
    const g = grads.get('prior/pseudo')!;
    expect(g.some((v) => v !== 0)).to.equal(true);
    expect(g.every(Number.isFinite)).to.equal(true);
  });
});

describe('core v2: exact versus diagnostic posterior (affine-flow latent)', () => {
  it('Should estimate the KL by Monte Carlo, matching the closed form of the true q, not the base Gaussian it exposes', () => {
    const parts = build({ latent: { use: 'affine-flow' } });
    const lat = parts.model.latent as AffineFlowLatent;
    const batch = greyBatch(1, TINY_IMAGE_INFO, 9);
    const opts = { training: false, rng: Rng.derive(0, 'flow') };
    const h = parts.model.encoder.encode(batch.x, null, opts);
    const s = lat.sample(h, 4000, opts);
    expect(s.posterior).to.equal(undefined);
    const { kl, kind } = parts.model.kl(s, null);
    expect(kind).to.equal('monte-carlo');
    // True q = N(a loc + b, a^2 e^logVar) with a = [3, 0.5], b = [1, -2]: its closed-form KL to N(0, I).
    const base = lat.posteriorStats(h);
    const trueLoc = tf.add(tf.mul(base.loc, tf.tensor1d([3, 0.5])), tf.tensor1d([1, -2])) as tf.Tensor2D;
    const trueLogVar = tf.add(base.logVar, tf.tensor1d([2 * Math.log(3), 2 * Math.log(0.5)])) as tf.Tensor2D;
    const klTrue = klStdNormal(trueLoc, trueLogVar).dataSync()[0];
    const klBase = klStdNormal(base.loc, base.logVar).dataSync()[0];
    const mc = meanSe(tf.sub(s.logQ, parts.model.logPrior(s, null)).dataSync());
    expect(kl.dataSync()[0]).to.be.closeTo(mc.mean, 1e-3);
    expect(Math.abs(mc.mean - klTrue)).to.be.below(4 * mc.se);
    // The base Gaussian's closed form is far off: taking it would be a wrong KL.
    expect(Math.abs(klBase - klTrue)).to.be.above(20 * mc.se);
  });
});

describe('core v2: the conditioning input reaches the latent (cond-shift latent)', () => {
  const info: DataInfo = { ...TINY_IMAGE_INFO, condDim: 4 };
  const onehot = (c: number, n: number) => tf.oneHot(tf.fill([n], c, 'int32') as tf.Tensor1D, 4).toFloat() as tf.Tensor2D;

  it('Should hand the batch\'s conditioning input to the latent in forward, and shift generation by the class in generate', () => {
    const parts = build({ latent: { use: 'cond-shift' } }, info);
    parts.check();
    const lat = parts.model.latent as CondShiftLatent;
    const x = greyBatch(3, info, 4).x;
    lat.seenCondRows.length = 0;
    parts.model.forward({ x, cond: onehot(1, 3) }, 2, { training: false, rng: Rng.derive(1, 'c') });
    expect(lat.seenCondRows).to.deep.equal([3]);
    const w = lat.shift.kernel.arraySync() as number[][];
    // From the same prior draw, z(class 2) - z(class 0) = W[2] - W[0] (the bias cancels).
    const gen = (c: number) => lat.generate(tf.zeros([2, 2]) as tf.Tensor2D, { training: false, rng: Rng.derive(1, 'g'), cond: onehot(c, 2) }).arraySync() as number[][];
    const [g0, g2] = [gen(0), gen(2)];
    for (let d = 0; d < 2; d++) expect(g2[0][d] - g0[0][d]).to.be.closeTo(w[2][d] - w[0][d], 1e-5);
    // model.generate hands the rows' conditioning input to the latent: different classes, different images.
    const img = (c: number) => parts.model.generate(2, onehot(c, 2), { training: false, rng: Rng.derive(1, 'img') }).dataSync();
    expect(Array.from(img(0))).to.not.deep.equal(Array.from(img(2)));
  });
});

describe('core v2: labels separate from the conditioning input, with a mask (masked-classifier objective)', () => {
  const info: DataInfo = { ...TINY_IMAGE_INFO, numClasses: 3 };
  const labels = (cls: number[]) => tf.oneHot(tf.tensor1d(cls, 'int32'), 3).toFloat() as tf.Tensor2D;

  function classifierGrad(parts: Parts, batch: ModelBatch): Float32Array {
    const obj = parts.objective as MaskedClassifierObjective;
    const { value, grads } = tf.variableGrads(
      () => tf.mean(obj.terms(batch, { training: true, rng: Rng.derive(0, 'mc'), step: 0 }).loss) as tf.Scalar,
      [obj.classifier.kernel],
    );
    const g = Object.values(grads)[0].dataSync() as Float32Array;
    tf.dispose([value, ...Object.values(grads)]);
    return g;
  }

  it('Should ignore the labels of masked examples and use those of labelled ones', () => {
    const parts = build({ objective: { use: 'masked-classifier' } }, info);
    const x = greyBatch(3, info, 6).x;
    const mask = tf.tensor1d([1, 0, 1]);
    const base = classifierGrad(parts, { x, cond: null, labels: labels([0, 1, 2]), labelMask: mask });
    const hiddenChanged = classifierGrad(parts, { x, cond: null, labels: labels([0, 2, 2]), labelMask: mask });
    const shownChanged = classifierGrad(parts, { x, cond: null, labels: labels([1, 1, 2]), labelMask: mask });
    expect(Array.from(hiddenChanged)).to.deep.equal(Array.from(base));
    expect(Array.from(shownChanged)).to.not.deep.equal(Array.from(base));
    const t = (parts.objective as MaskedClassifierObjective).terms({ x, cond: null, labels: labels([0, 1, 2]), labelMask: mask }, { training: false, rng: Rng.derive(0, 'mc'), step: 0 });
    expect(t.classification.dataSync()[1]).to.equal(0);
    expect(t.classification.dataSync()[0]).to.be.above(0);
  });
});

describe('core v2: the training-set size reaches plugins', () => {
  it('Should give DataInfo.trainSize = examples left after the validation split', () => {
    const exp = experimentFromObject(
      experimentObject({ data: { use: 'synthetic', validationSize: 20, synthetic: { kind: 'shapes', size: 100 } } }),
      registry(),
    );
    const session = openSession(exp);
    // 100 synthetic training examples, 20 of them carved out for validation.
    expect(session.info.trainSize).to.equal(80);
    expect(session.parts.container.get<DataInfo>(TOKENS.DataInfo).trainSize).to.equal(80);
  });
});

describe('core v2: stopGradient', () => {
  it('Should pass values through unchanged and stop their gradient', () => {
    const x = tf.tensor1d([1.5, -2]);
    expect(Array.from(stopGradient(x).dataSync())).to.deep.equal([1.5, -2]);
    // d/dx sum(x * sg(x)) = sg(x) = x (only the first factor carries a gradient).
    const g = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(a, stopGradient(a))))(x);
    expect(Array.from(g.dataSync())).to.deep.equal([1.5, -2]);
  });

  it('Should give the straight-through estimator: d/dx sum(x + sg(round(x) - x)) = 1', () => {
    const x = tf.tensor1d([0.2, 0.7, -1.4]);
    const st = (a: tf.Tensor) => tf.add(a, stopGradient(tf.sub(tf.round(a), a)));
    expect(Array.from(st(x).dataSync())).to.deep.equal([0, 1, -1]);
    expect(Array.from(tf.grad((a: tf.Tensor) => tf.sum(st(a)))(x).dataSync())).to.deep.equal([1, 1, 1]);
  });
});

describe('core v2: running an experiment from the public entry point', () => {
  it('Should train an inline experiment through vaelab\'s exports with a listener that sees every step and can stop the run', async () => {
    const api = await import('../core');
    const exp = api.experimentFromObject(
      experimentObject({ data: { use: 'synthetic', synthetic: { kind: 'shapes', size: 64 } }, train: { epochs: 3, batchSize: 16, progress: 'none' }, eval: { iwSamples: 2, images: false } }),
      registry(),
    );
    const session = api.openSession(exp);
    const root = (await import('node:fs')).mkdtempSync(path.join((await import('node:os')).tmpdir(), 'vaelab-api-'));
    const run = api.RunDir.create(root, session.config.name, session.config.seed);
    const seen: number[] = [];
    const listener: import('../core').TrainerCallback = {
      name: 'test-listener',
      onStepEnd: (e, ctl) => {
        seen.push(e.step);
        expect(Number.isFinite(e.values['train/loss'])).to.equal(true);
        if (e.step === 6) ctl.stop({ status: 'pruned', reason: 'test: six steps are enough' });
      },
    };
    const result = await api.train(session, { run, backend: 'cpu', log: () => undefined, handleSignals: false, callbacks: [listener] });
    // 64 examples in batches of 16: 4 steps per epoch; the stop asked at step 6 ends the run before step 7.
    expect(result.status).to.equal('pruned');
    expect(seen.slice(0, 6)).to.deep.equal([1, 2, 3, 4, 5, 6]);
    expect(result.steps).to.be.within(6, 6 + session.config.train.syncEvery);
  });
});

describe('core v2: a conditioning input other than labels (data.condition: visible-quadrants)', () => {
  it('Should condition on the visible quadrant: condDim is the image size, and a run trains, evaluates and draws its grids from test images', async () => {
    const api = await import('../core');
    const fs = await import('node:fs');
    const os = await import('node:os');
    const exp = api.experimentFromObject(
      experimentObject({
        data: { use: 'synthetic', synthetic: { kind: 'shapes', size: 64 }, condition: { use: 'visible-quadrants', visibleQuadrants: [0, 3] } },
        train: { epochs: 2, batchSize: 16, progress: 'none' },
        eval: { iwSamples: 2, gridSize: 2 },
      }),
      registry(),
    );
    const session = api.openSession(exp);
    // 14x14 shapes: the conditioning input is the whole image with two quadrants hidden.
    expect(session.info.condDim).to.equal(196);
    const run = api.RunDir.create(fs.mkdtempSync(path.join(os.tmpdir(), 'vaelab-cond-')), session.config.name, session.config.seed);
    const before = tf.memory().numTensors;
    const result = await api.train(session, { run, backend: 'cpu', log: () => undefined, handleSignals: false });
    expect(result.status).to.equal('completed');
    expect(Number.isFinite((result.summary.test as Record<string, number>)['test/loss'])).to.equal(true);
    expect(fs.readdirSync(run.images)).to.include('samples.png');
    // Every conditioning input made from a batch was disposed with it.
    expect(tf.memory().numTensors).to.equal(before);
  });
});
