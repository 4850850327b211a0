import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { RunDir, Rng, experimentFromObject, openSession, train, type TrainOptions } from '../../core';
import { buildParts, disposeBatch, disposeParts, experimentObject, greyBatch, registryOf, trainableVariables } from '../../testing';
import { plugins } from '.';

const set = { plugins };
const values = (t: tf.Tensor) => Array.from(t.dataSync());

/** A three-layer ladder on the kit's tiny images with objective.ladder set to `objective`. */
const ladderParts = (objective: Record<string, unknown>) =>
  buildParts(
    {
      encoder: { use: 'ladder', ladder: { hiddenSizes: [12, 8, 6] } },
      latent: { use: 'ladder', ladder: { dims: [4, 3, 2], hiddenSizes: [6, 5] } },
      objective: { use: 'ladder', ladder: objective },
    },
    undefined,
    set,
  );

describe('ladder objective', () => {
  it('Should weight the KL by the linear warm-up: loss = reconstruction + min(1, (step + 1) / warmupSteps) * kl', () => {
    const parts = ladderParts({ klSchedule: { use: 'linear', warmupSteps: 100 } });
    const batch = greyBatch(6, parts.model.data, 2);
    for (const [step, w] of [
      [0, 0.01],
      [49, 0.5],
      [150, 1],
    ]) {
      const t = parts.objective.terms(batch, { training: false, rng: Rng.derive(1, 'w'), step });
      const rec = values(t.reconstruction);
      const kl = values(t.kl);
      values(t.loss).forEach((v, i) => expect(v).to.be.closeTo(rec[i] + w * kl[i], 1e-4));
      expect(values(t.klWeight)[0]).to.be.closeTo(w, 1e-7);
      // the ELBO is never weighted
      values(t.elbo).forEach((v, i) => expect(v).to.be.closeTo(-(rec[i] + kl[i]), 1e-4));
      tf.dispose(Object.values(t));
    }
    disposeBatch(batch);
    disposeParts(parts);
  });

  it('Should clamp each layer by its own free bits: max(lambda_l, KL_l) per example, and the batch mean rule of Kingma et al.', () => {
    const lambda = [0.5, 3, 0.05];
    const batch = greyBatch(6, { name: 'tiny', shape: [8, 8, 1], dim: 64, numClasses: 4, condDim: 0 }, 2);
    // a fresh stream per call: the three calls draw the same noise
    const ctx = () => ({ training: false, rng: Rng.derive(1, 'fb'), step: 0 });
    const off = ladderParts({});
    const perExample = ladderParts({ freeBits: { natsPerLayer: lambda, over: 'example' } });
    const perBatch = ladderParts({ freeBits: { natsPerLayer: lambda, over: 'batch' } });
    const a = off.objective.terms(batch, ctx());
    const e = perExample.objective.terms(batch, ctx());
    const b = perBatch.objective.terms(batch, ctx());
    const kls = [1, 2, 3].map((l) => values(a[`klLayer${l}`]));
    // the three builds share weights (same seed) and draws (same stream): the same per-layer KLs
    [1, 2, 3].forEach((l) => expect(values(e[`klLayer${l}`])).to.deep.equal(kls[l - 1]));
    const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length;
    // over = example: sum_l max(lambda_l, KL_l) per example
    values(e.klPenalty).forEach((v, i) => expect(v).to.be.closeTo(kls.reduce((s, k, l) => s + Math.max(lambda[l], k[i]), 0), 1e-4));
    // over = batch: a layer whose batch mean reaches lambda_l keeps its KL, one below costs lambda_l
    values(b.klPenalty).forEach((v, i) => expect(v).to.be.closeTo(kls.reduce((s, k, l) => s + (mean(k) >= lambda[l] ? k[i] : lambda[l]), 0), 1e-4));
    // lambda 3 nats is above layer 2's KL here, so the clamp is exercised (and 0.05 below layer 3's)
    expect(mean(kls[1])).to.be.below(3);
    expect(mean(kls[2])).to.be.above(0.05);
    // the reported KL is never clamped
    expect(values(b.kl)).to.deep.equal(values(a.kl));
    tf.dispose([...Object.values(a), ...Object.values(e), ...Object.values(b)]);
    disposeBatch(batch);
    [off, perExample, perBatch].forEach(disposeParts);
  });
});

/** A ladder with batch norm everywhere on synthetic 14x14 shapes: 256 images, batch 32 => 8 steps an epoch. */
function tiny() {
  return experimentObject({
    name: 'ladder-state',
    seed: 3,
    data: { use: 'synthetic', synthetic: { kind: 'shapes', size: 256 } },
    encoder: { use: 'ladder', ladder: { hiddenSizes: [32, 16] } },
    latent: { use: 'ladder', ladder: { dims: [4, 2], hiddenSizes: [16] } },
    decoder: { use: 'ladder', ladder: { hiddenSizes: [32] } },
    objective: { use: 'ladder', ladder: { klSchedule: { use: 'linear', warmupSteps: 16 } } },
    train: { epochs: 3, batchSize: 32, logEvery: 1, progress: 'none', optimizer: { learningRate: 2e-3 } },
    eval: { iwSamples: 0, batchSize: 64, images: false },
  });
}

const read = (m: Map<string, tf.Variable>) => new Map([...m].map(([k, v]) => [k, Array.from(v.dataSync())]));

async function run(opts: Partial<TrainOptions> = {}) {
  const session = openSession(experimentFromObject(tiny(), registryOf(set)));
  const dir = opts.run ?? RunDir.create(fs.mkdtempSync(path.join(os.tmpdir(), 'vaelab-ladder-')), 'ladder-state', 3);
  if (!opts.run) dir.writeConfig(session.config);
  const result = await train(session, { run: dir, backend: 'cpu', log: () => undefined, handleSignals: false, ...opts });
  const out = { result, dir, weights: read(trainableVariables(session.parts)), state: read(session.parts.model.state()) };
  disposeParts(session.parts);
  return out;
}

describe('ladder batch-norm statistics in the trainer @slow', () => {
  it('Should save the running statistics as state, and resume mid-epoch to exactly the uninterrupted statistics and weights; KL per layer in metrics.jsonl and the summary', async () => {
    const full = await run();
    // encoder 2 blocks x 2 layers, latent 1 block x 2 layers, decoder 1 layer: 7 batch norms
    expect([...full.state.keys()].length).to.equal(14);
    for (const [k, v] of full.state) {
      const initial = k.endsWith('runningMean') ? 0 : 1;
      expect(v.some((x) => x !== initial), `${k} moved`).to.equal(true);
    }
    const control = { stop: false };
    const first = await run({ control, onStep: (s) => (control.stop = s === 11) });
    expect(first.result.status).to.equal('interrupted');
    expect(first.state).to.not.deep.equal(full.state);
    const resumed = await run({ run: first.dir, resumeFrom: first.dir.latestCheckpoint()! });
    expect(resumed.state).to.deep.equal(full.state);
    expect(resumed.weights).to.deep.equal(full.weights);

    const lines = fs.readFileSync(full.dir.file('metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const keys = new Set(lines.flatMap((l) => Object.keys(l)));
    for (const k of ['train/klLayer1', 'train/klLayer2', 'test/klLayer1', 'test/klLayer2']) expect(keys.has(k), k).to.equal(true);
    const summary = JSON.parse(fs.readFileSync(full.dir.file('summary.json'), 'utf8')) as { test: Record<string, number> };
    expect(summary.test['test/klLayer1'] + summary.test['test/klLayer2']).to.be.closeTo(summary.test['test/kl'], 1e-3);
  });
});
