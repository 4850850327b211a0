import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../../core';
import {
  TINY_IMAGE_INFO,
  buildParts,
  conformanceChecks,
  disposeParts,
  greyBatch,
  syntheticData,
  trainSteps,
  trainableVariables,
} from '../../testing';
import { priorNllObjective } from './prior-nll.objective';

/** A small VQ-VAE (EMA codebook, restarts) on 8x8 images, 4x4 grid of K = 5 codes, with the PixelCNN prior. */
const MODEL = {
  encoder: { use: 'vq-conv', 'vq-conv': { channels: [4], residualBlocks: 1, residualChannels: 4, outputChannels: 3 } },
  latent: { use: 'vq', vq: { codebookSize: 5, ema: true, deadCodeSteps: 1 } },
  decoder: { use: 'vq-conv', 'vq-conv': { channels: [4], residualBlocks: 1, residualChannels: 4 } },
  prior: { use: 'pixelcnn', pixelcnn: { layers: 3, channels: 8, kernelSize: 3, firstKernelSize: 3 } },
};
const K = 5;
const POSITIONS = 16;

describe('prior-nll objective', () => {
  // The kit's checks but "gradients" and "training": those demand a gradient for every variable of
  // the model, and this objective trains the prior alone by design (tested below instead).
  describe('conformance: objective "prior-nll"', () => {
    for (const check of conformanceChecks(priorNllObjective, [{ title: 'small VQ-VAE with a PixelCNN prior', slots: MODEL }])) {
      if (check.id === 'gradients' || check.id === 'training') continue;
      it(check.title, () => check.run());
    }
  });

  it("Should leave the frozen model's state alone in training, and send gradients to the prior's variables only", () => {
    const parts = buildParts({ ...MODEL, objective: { use: 'prior-nll' } });
    const state = [...parts.model.state().entries()].map(([k, v]) => [k, Array.from(v.dataSync())] as const);
    expect(state.map(([k]) => k).sort()).to.deep.equal(['latent/codebook', 'latent/ema-count', 'latent/ema-sum', 'latent/unused-steps']);
    const b = greyBatch(4, TINY_IMAGE_INFO, 1);
    const vars = trainableVariables(parts);
    const { value, grads } = tf.variableGrads(() => tf.mean(parts.objective.terms({ x: b.x, cond: null }, { training: true, rng: Rng.derive(0, 's'), step: 0 }).loss) as tf.Scalar, [...vars.values()]);
    for (const [k, v] of state) expect(Array.from(parts.model.state().get(k)!.dataSync()), k).to.deep.equal(v);
    const reached = [...vars].filter(([, v]) => grads[v.name] && grads[v.name].dataSync().some((g) => g !== 0)).map(([k]) => k);
    expect(reached.length).to.be.greaterThan(0);
    expect(reached.every((k) => k.startsWith('prior/')), reached.join(', ')).to.equal(true);
    expect([...vars.keys()].filter((k) => k.startsWith('prior/')).every((k) => reached.includes(k))).to.equal(true);
    tf.dispose([b.x, value, ...Object.values(grads)]);
    disposeParts(parts);
  });

  it('Should give -log p(codes), bits per code and, in evaluation, the whole bound in bits per dimension', () => {
    const parts = buildParts({ ...MODEL, objective: { use: 'prior-nll' } });
    const b = greyBatch(3, TINY_IMAGE_INFO, 2);
    const mb = { x: b.x, cond: null };
    const o = { training: false, rng: Rng.derive(0, 'e'), step: 0 };
    const t = parts.objective.terms(mb, o);
    expect(Object.keys(t).sort()).to.deep.equal(['bits-per-code', 'bits-per-dim', 'elbo', 'loss', 'mse', 'reconstruction']);
    // the model's own pieces: the codes of the nearest-code pass, their log p, log p(x | z_q)
    const pass = parts.model.forward(mb, 1, o);
    const logPrior = parts.model.prior.logProb(pass.latent.priorZ!, null).dataSync();
    const logPx = pass.logPx.dataSync();
    const get = (k: string) => t[k].dataSync();
    for (let i = 0; i < 3; i++) {
      expect(get('loss')[i]).to.be.closeTo(-logPrior[i], 1e-4);
      // nats per grid / (16 positions * ln 2)
      expect(get('bits-per-code')[i]).to.be.closeTo(-logPrior[i] / (POSITIONS * Math.LN2), 1e-5);
      expect(get('reconstruction')[i]).to.be.closeTo(-logPx[i], 1e-4);
      // log q = 0: elbo = log p(x | z) + log p(codes); bits per dimension over the 64 pixels
      expect(get('elbo')[i]).to.be.closeTo(logPx[i] + logPrior[i], 1e-3);
      expect(get('bits-per-dim')[i]).to.be.closeTo(-(logPx[i] + logPrior[i]) / (64 * Math.LN2), 1e-4);
    }
    tf.dispose([b.x, ...Object.values(t), pass.params, pass.logPx, pass.latent.z, pass.latent.priorZ!, pass.latent.logQ, ...Object.values(pass.latent.terms!)]);
    disposeParts(parts);
  });

  describe('training @slow', () => {
  it('Should, trained briefly on the codes of 64 synthetic images, bring the code NLL below log K per code', () => {
    const parts = buildParts({ ...MODEL, objective: { use: 'prior-nll' } });
    const data = syntheticData(TINY_IMAGE_INFO, 64);
    const losses = trainSteps(parts, data, { steps: 40, learningRate: 2e-2, batchSize: 16 });
    expect(losses.every(Number.isFinite)).to.equal(true);
    const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
    const first = mean(losses.slice(0, 5));
    const last = mean(losses.slice(-5));
    // the uniform prior: 16 positions x log 5 = 25.75 nats per grid
    const uniform = POSITIONS * Math.log(K);
    expect(last).to.be.lessThan(0.8 * first);
    expect(last).to.be.lessThan(0.8 * uniform);
    tf.dispose([data.x]);
    disposeParts(parts);
  }).timeout(120000);
  });
});
