import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, Rng, type PassOptions, type SplitMetrics } from '../../core';
import { MNIST_INFO, buildParts, describeConformance, disposeParts, experimentOf, expectThrowExact } from '../../testing';
import { codebookPerplexity, vqLatent, type VqLatent } from './vq.latent';

/** A small VQ-VAE on 8x8 images: two stride-2 convolutions give a 2x2 grid of `codeDim`-vectors. */
function smallModel(latent: Record<string, unknown>, codeDim = 2): Record<string, unknown> {
  return {
    encoder: { use: 'vq-conv', 'vq-conv': { channels: [4, 4], residualBlocks: 1, residualChannels: 4, outputChannels: codeDim } },
    latent: { use: 'vq', vq: latent },
    decoder: { use: 'vq-conv', 'vq-conv': { channels: [4, 4], residualBlocks: 1, residualChannels: 4 } },
    prior: { use: 'uniform-codes' },
    objective: { use: 'vq-vae' },
  };
}

/** The model's vq latent with a hand-set codebook [K, 2] (EMA sums set to the codebook too). */
function latentWith(cfg: Record<string, unknown>, codebook: number[][]) {
  const parts = buildParts(smallModel({ codebookSize: codebook.length, ...cfg }));
  const latent = parts.model.latent as VqLatent;
  latent.codebook.assign(tf.tensor2d(codebook));
  latent.emaSum?.assign(tf.tensor2d(codebook));
  return { parts, latent };
}

/**
 * One example's 2x2 grid of 2-vectors, in raster order. Against the codebook E below, the squared
 * distances are (e0, e1, e2):
 *   (0.4, 0.1):  0.17, 0.37, 3.77  -> e0
 *   (0.6, 0):    0.36, 0.16, 4.36  -> e1
 *   (0.2, 1.2):  1.48, 2.08, 0.68  -> e2
 *   (-1, -1):    2,    5,    10    -> e0
 */
const ROWS = [[0.4, 0.1], [0.6, 0], [0.2, 1.2], [-1, -1]];
const E = [[0, 0], [1, 0], [0, 2]];
const NEAREST = [0, 1, 2, 0];
const features = () => [tf.tensor4d(ROWS.flat(), [1, 2, 2, 2])];
const opts = (training: boolean, extra: Partial<PassOptions> = {}): PassOptions => ({ training, rng: Rng.derive(3, 'vq-test'), ...extra });

describe('vq latent', () => {
  const grid = smallModel({});
  const slots = { encoder: grid.encoder, decoder: grid.decoder, prior: grid.prior, objective: grid.objective };
  describeConformance(
    vqLatent,
    [
      { title: 'K = 6, codebook loss', config: { codebookSize: 6 }, slots },
      { title: 'K = 6, EMA codebook and dead-code restarts', config: { codebookSize: 6, ema: true, deadCodeSteps: 2 }, slots, training: false },
    ],
    { deterministic: ['Latent.sample'] },
  );

  it('Should pick the nearest code at every grid position (hand-built codebook) and hand the prior its index', () => {
    const { parts, latent } = latentWith({}, E);
    const h = features();
    const s = latent.sample(h, 2, opts(false));
    // z is the chosen codeword at each position, for both samples (q is deterministic)
    const want = NEAREST.map((k) => E[k]).flat();
    expect(Array.from(s.z.dataSync())).to.deep.equal([...want, ...want]);
    expect(s.z.shape).to.deep.equal([2, 2, 2, 2]);
    expect(Array.from(s.priorZ!.dataSync())).to.deep.equal([...NEAREST, ...NEAREST]);
    expect(s.priorZ!.shape).to.deep.equal([2, 2, 2]);
    expect(Array.from(s.logQ.dataSync())).to.deep.equal([0, 0]);
    const mode = latent.mode(h, opts(false));
    expect(Array.from(mode.dataSync())).to.deep.equal(want);
    // generate looks the codes up: [[2, 1], [0, 0]] -> e2, e1, e0, e0
    const gen = latent.generate(tf.tensor3d([2, 1, 0, 0], [1, 2, 2]), opts(false));
    expect(Array.from(gen.dataSync())).to.deep.equal([0, 2, 1, 0, 0, 0, 0, 0]);
    tf.dispose([...h, s.z, s.priorZ!, s.logQ, mode, gen, ...Object.values(s.terms!)]);
    disposeParts(parts);
  });

  it('Should treat flat features [B, D] as a 1x1 grid of one code each', () => {
    // the default MLP encoder gives [B, 16]; three transposed convolutions take 1x1 to 8x8
    const parts = buildParts({
      latent: { use: 'vq', vq: { codebookSize: 3 } },
      decoder: { use: 'vq-conv', 'vq-conv': { channels: [4, 4, 4], residualBlocks: 0 } },
      prior: { use: 'uniform-codes' },
      objective: { use: 'vq-vae' },
    });
    const latent = parts.model.latent as VqLatent;
    expect([latent.shape, latent.priorShape, latent.dim, latent.priorDim]).to.deep.equal([[1, 1, 16], [1, 1], 16, 1]);
    const h = tf.randomUniform([2, 16], -1, 1, 'float32', 5);
    const s = latent.sample(h, 1, opts(false));
    expect(s.z.shape).to.deep.equal([2, 1, 1, 16]);
    expect(s.priorZ!.shape).to.deep.equal([2, 1, 1]);
    tf.dispose([h, s.z, s.priorZ!, s.logQ, ...Object.values(s.terms!)]);
    disposeParts(parts);
  });

  it('Should give the codebook and commitment losses by hand: sum over the grid of ||z_e - e||^2 = 3.01', () => {
    const { parts, latent } = latentWith({ commitmentWeight: 0.25 }, E);
    const h = features();
    const s = latent.sample(h, 1, opts(true));
    // 0.17 + 0.16 + 0.68 + 2 = 3.01 (the distances to the chosen codes above)
    expect(s.terms!.codebook.dataSync()[0]).to.be.closeTo(3.01, 1e-5);
    expect(s.terms!.commitment.dataSync()[0]).to.be.closeTo(0.25 * 3.01, 1e-5);
    tf.dispose([...h, s.z, s.priorZ!, s.logQ, ...Object.values(s.terms!)]);
    disposeParts(parts);
  });

  it("Should pass the decoder's gradient to the encoder's features unchanged (straight-through)", () => {
    const { parts, latent } = latentWith({}, E);
    const h = features()[0];
    const c = tf.tensor4d([1, -2, 3, 0.5, -1, 4, 2, 7], [1, 2, 2, 2]);
    // d/dh sum(c * z): z's value is the codeword, its gradient that of z_e = h, so the result is c
    const g = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(c, latent.sample([x], 1, opts(true)).z)))(h);
    expect(Array.from(g.dataSync())).to.deep.equal(Array.from(c.dataSync()));
    tf.dispose([h, c, g]);
    disposeParts(parts);
  });

  it('Should send the codebook loss only to the codes and the commitment loss only to the encoder (stop-gradients)', () => {
    const { parts, latent } = latentWith({ commitmentWeight: 0.25 }, E);
    const h = features()[0];
    const term = (name: string) => (x: tf.Tensor) => tf.sum(latent.sample([x], 1, opts(true)).terms![name]);
    // codebook = ||sg[z_e] - e||^2: nothing reaches z_e
    const gCodebookH = tf.grad(term('codebook'))(h);
    expect(Array.from(gCodebookH.dataSync()).every((v) => v === 0)).to.equal(true);
    // commitment = beta ||z_e - sg[e]||^2: d/dz_e = 2 beta (z_e - e) = 0.5 (z_e - e) at each position
    const gCommitH = tf.grad(term('commitment'))(h);
    const byHand = ROWS.map((r, i) => r.map((v, d) => 0.5 * (v - E[NEAREST[i]][d]))).flat();
    Array.from(gCommitH.dataSync()).forEach((v, i) => expect(v).to.be.closeTo(byHand[i], 1e-6));
    // d codebook / d e_k = sum over the positions given k of 2 (e_k - z_e):
    // e0: 2 ((0 - 0.4) + (0 + 1), (0 - 0.1) + (0 + 1)) = (1.2, 1.8); e1: 2 (1 - 0.6, 0) = (0.8, 0);
    // e2: 2 (0 - 0.2, 2 - 1.2) = (-0.4, 1.6)
    const gE = tf.variableGrads(() => tf.sum(latent.sample([h], 1, opts(true)).terms!.codebook) as tf.Scalar, [latent.codebook]);
    const want = [1.2, 1.8, 0.8, 0, -0.4, 1.6];
    Array.from(gE.grads[latent.codebook.name].dataSync()).forEach((v, i) => expect(v).to.be.closeTo(want[i], 1e-5));
    // and the commitment loss gives the codes nothing: tfjs leaves the codebook out of the result
    const gEc = tf.variableGrads(() => tf.sum(latent.sample([h], 1, opts(true)).terms!.commitment) as tf.Scalar, [latent.codebook]);
    const ec = gEc.grads[latent.codebook.name];
    expect(ec === undefined || Array.from(ec.dataSync()).every((v) => v === 0)).to.equal(true);
    tf.dispose([h, gCodebookH, gCommitH, gE.value, gEc.value, ...Object.values(gE.grads), ...Object.values(gEc.grads)]);
    disposeParts(parts);
  });

  it('Should move the codebook by the EMA formula on a hand-computed step, only in training', () => {
    const { parts, latent } = latentWith({ ema: true, emaDecay: 0.5, emaEpsilon: 0.1 }, E);
    expect(latent.variables().has('codebook')).to.equal(false);
    expect([...latent.state().keys()].sort()).to.deep.equal(['codebook', 'ema-count', 'ema-sum']);
    const h = features();
    // evaluation: nothing moves
    const ev = latent.sample(h, 1, opts(false));
    expect(Array.from(latent.codebook.dataSync())).to.deep.equal(E.flat());
    const s = latent.sample(h, 1, opts(true));
    // n = [2, 1, 1]; sums of the rows given each code: (-0.6, -0.9), (0.6, 0), (0.2, 1.2)
    // N = 0.5 [1, 1, 1] + 0.5 [2, 1, 1] = [1.5, 1, 1]
    // m = 0.5 E + 0.5 sums = (-0.3, -0.45), (0.8, 0), (0.1, 1.6)
    // smoothed N~ = (N + 0.1) / (3.5 + 3 * 0.1) * 3.5 = [1.473684, 1.013158, 1.013158]
    // e = m / N~ = (-0.203571, -0.305357), (0.789610, 0), (0.098701, 1.579221)
    expect(Array.from(latent.emaCount!.dataSync())).to.deep.equal([1.5, 1, 1]);
    const m = Array.from(latent.emaSum!.dataSync());
    [-0.3, -0.45, 0.8, 0, 0.1, 1.6].forEach((v, i) => expect(m[i]).to.be.closeTo(v, 1e-6));
    const e = Array.from(latent.codebook.dataSync());
    [-0.203571, -0.305357, 0.78961, 0, 0.098701, 1.579221].forEach((v, i) => expect(e[i]).to.be.closeTo(v, 1e-5));
    // EMA mode has no codebook loss
    expect(Object.keys(s.terms!)).to.deep.equal(['commitment']);
    tf.dispose([...h, ev.z, ev.priorZ!, ev.logQ, s.z, s.priorZ!, s.logQ, ...Object.values(ev.terms!), ...Object.values(s.terms!)]);
    disposeParts(parts);
  });

  it('Should move exactly the codes unused for deadCodeSteps training passes to encoder outputs', () => {
    // e2 far away: no position ever picks it
    const { parts, latent } = latentWith({ deadCodeSteps: 2 }, [[0, 0], [1, 0], [50, 50]]);
    const h = features();
    const pass = (training: boolean) => {
      const s = latent.sample(h, 1, opts(training));
      const codes = Array.from(s.priorZ!.dataSync());
      tf.dispose([s.z, s.priorZ!, s.logQ, ...Object.values(s.terms!)]);
      return codes;
    };
    pass(true);
    pass(false); // evaluation passes do not count
    expect(Array.from(latent.unused!.dataSync())).to.deep.equal([0, 0, 1]);
    pass(true);
    expect(Array.from(latent.unused!.dataSync())).to.deep.equal([0, 0, 2]);
    expect(Array.from(latent.codebook.dataSync())).to.deep.equal([0, 0, 1, 0, 50, 50]);
    // the third pass starts by restarting e2 at one of its four z_e rows; e0 and e1 stay
    const codes = pass(true);
    const e = Array.from(latent.codebook.dataSync());
    expect(e.slice(0, 4)).to.deep.equal([0, 0, 1, 0]);
    const moved = ROWS.findIndex((r) => Math.abs(r[0] - e[4]) < 1e-6 && Math.abs(r[1] - e[5]) < 1e-6);
    expect(moved).to.be.greaterThan(-1);
    // that row is now at distance 0 from e2, so it takes e2, and every code was used
    expect(codes[moved]).to.equal(2);
    expect(Array.from(latent.unused!.dataSync())).to.deep.equal([0, 0, 0]);
    tf.dispose(h);
    disposeParts(parts);
  });

  it('Should report the codebook perplexity and usage of an evaluation through the split metrics', () => {
    // K = 4, e3 never used; counts [2, 1, 1, 0]: shares 1/2, 1/4, 1/4
    const { parts, latent } = latentWith({}, [...E, [9, 9]]);
    const added: Record<string, number> = {};
    const sink: SplitMetrics = { add: (name, value, finish) => void (added[name] = finish(Float64Array.from(value.dataSync()), 1)) };
    const h = features();
    const s = latent.sample(h, 1, opts(false, { metrics: sink }));
    // perplexity = exp(-(1/2 ln 1/2 + 2 * 1/4 ln 1/4)) = exp(1.5 ln 2) = 2^1.5 = 2.828427
    expect(added['codebook-perplexity']).to.be.closeTo(2 ** 1.5, 1e-9);
    // usage = 3 codes used / 4
    expect(added['codebook-usage']).to.equal(0.75);
    // K equal shares give perplexity K
    expect(codebookPerplexity(Float64Array.from([5, 5, 5, 5, 5]))).to.be.closeTo(5, 1e-12);
    tf.dispose([...h, s.z, s.priorZ!, s.logQ, ...Object.values(s.terms!)]);
    disposeParts(parts);
  });

  it('Should refuse bad settings before training, naming the key', () => {
    expectThrowExact(() => experimentOf(smallModel({ codebookSize: 0 })), ConfigError, 'latent.vq.codebookSize: must be an integer in [1, 2147483647]; got 0');
    expectThrowExact(() => buildParts(smallModel({ codebookSize: 1 })), ConfigError, 'latent.vq.codebookSize: must be at least 2 (one code carries no information); got 1');
    expectThrowExact(() => experimentOf(smallModel({ commitmentWeight: -0.5 })), ConfigError, 'latent.vq.commitmentWeight: must be a number >= 0; got -0.5');
    expectThrowExact(() => experimentOf(smallModel({ emaDecay: 1.5 })), ConfigError, 'latent.vq.emaDecay: must be a number in [0, 1]; got 1.5');
    expectThrowExact(
      () => buildParts(smallModel({ codeDim: 3 }, 2)),
      ConfigError,
      "latent.vq.codeDim: must equal the channels of the encoder's features (encoder VqConvEncoder gives [2, 2, 2] per example), or be 0 to take them; got 3",
    );
    expectThrowExact(
      () => buildParts({ ...smallModel({}), encoder: { use: 'vq-conv', 'vq-conv': { channels: [8, 8, 8] } } }, MNIST_INFO),
      ConfigError,
      'encoder.vq-conv.channels: 3 stride-2 convolutions need image sides divisible by 8 (a grid of codes that divides the image); data set "mnist" is 28x28',
    );
    expectThrowExact(
      () => experimentOf(smallModel({ codebooksize: 8 })),
      ConfigError,
      'latent.vq.codebooksize: not declared in the schema of plugin "vq" (keys: codebookSize, codeDim, commitmentWeight, ema, emaDecay, emaEpsilon, deadCodeSteps, initScale). Did you mean "codebookSize"?',
    );
  });
});

