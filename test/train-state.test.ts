/**
 * Non-trainable state (Trainable.state) in the trainer, proven with the fixture latent
 * test/fixtures/running-mean-latent.ts, whose codes are centred by a running mean updated with
 * assign in every training step.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { experimentFromObject } from '../core/config/experiment';
import { openSession } from '../core/session';
import { loadCheckpoint } from '../core/train/checkpoint';
import { openRun } from '../core/train/open-run';
import { stateVariables, train, trainableVariables, type TrainOptions } from '../core/train/trainer';
import { RunDir } from '../core/tracking/run-dir';
import { builtins, experimentObject } from './kits/build';

const root = () => fs.mkdtempSync(path.join(os.tmpdir(), 'vaelab-state-'));

function registry() {
  const reg = builtins();
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  reg.addAll(require('./fixtures/running-mean-latent').plugins, 'test');
  return reg;
}

/** Synthetic 14x14 shapes: 256 images, batch 32 => 8 steps an epoch. */
function tiny() {
  return experimentObject({
    name: 'state',
    seed: 6,
    data: { use: 'synthetic', synthetic: { kind: 'shapes', size: 256 } },
    encoder: { use: 'mlp', mlp: { hiddenSizes: [32] } },
    decoder: { use: 'mlp', mlp: { hiddenSizes: [32] } },
    latent: { use: 'running-mean', 'running-mean': { dim: 3, momentum: 0.5 } },
    train: { epochs: 3, batchSize: 32, logEvery: 1, progress: 'none', optimizer: { learningRate: 3e-3 } },
    eval: { iwSamples: 0, batchSize: 64, images: false },
  });
}

/** Trains `experiment` (default: tiny()) to its end or to an interrupt; its weights and state as plain arrays. */
async function run(opts: Partial<TrainOptions> = {}, experiment: Record<string, unknown> = tiny()) {
  const session = openSession(experimentFromObject(experiment, registry()));
  const dir = opts.run ?? RunDir.create(root(), String(experiment.name), Number(experiment.seed));
  if (!opts.run) dir.writeConfig(session.config);
  const result = await train(session, { run: dir, backend: 'cpu', log: () => undefined, handleSignals: false, ...opts });
  const read = (m: Map<string, { dataSync(): ArrayLike<number> }>) => new Map([...m].map(([k, v]) => [k, Array.from(v.dataSync())]));
  return {
    result,
    dir,
    session,
    weights: read(trainableVariables(session.parts.model, session.parts.objective)),
    state: read(stateVariables(session.parts.model, session.parts.objective)),
  };
}

describe('non-trainable state in the trainer @slow', () => {
  it('Should save the running mean as state/latent/running-mean, in no optimizer, and resume mid-epoch to exactly the uninterrupted buffer and weights', async () => {
    const full = await run();
    const buffer = full.state.get('latent/running-mean')!;
    expect(buffer).to.have.length(3);
    expect(buffer.some((v) => v !== 0)).to.equal(true);
    const last = loadCheckpoint(full.dir.latestCheckpoint()!);
    expect(Array.from(last.tensors.get('state/latent/running-mean')!.data)).to.deep.equal(buffer);
    expect([...last.tensors.keys()].filter((k) => k.includes('running-mean'))).to.deep.equal(['state/latent/running-mean']);

    const control = { stop: false };
    const first = await run({ control, onStep: (s) => (control.stop = s === 11) });
    expect(first.result.status).to.equal('interrupted');
    const ck = first.dir.latestCheckpoint()!;
    // the buffer at step 11 is in the interrupt checkpoint, and differs from the final one
    expect(Array.from(loadCheckpoint(ck).tensors.get('state/latent/running-mean')!.data)).to.not.deep.equal(buffer);
    const resumed = await run({ run: first.dir, resumeFrom: ck });
    expect(resumed.state).to.deep.equal(full.state);
    expect(resumed.weights).to.deep.equal(full.weights);
  });

  it('Should restore the state with the weights when a run is opened for vaelab eval and sample', async () => {
    const { dir, state, weights } = await run();
    const opened = openRun(dir.dir, registry());
    const read = (m: Map<string, { dataSync(): ArrayLike<number> }>) => new Map([...m].map(([k, v]) => [k, Array.from(v.dataSync())]));
    expect(read(stateVariables(opened.session.parts.model, opened.session.parts.objective))).to.deep.equal(state);
    expect(read(trainableVariables(opened.session.parts.model, opened.session.parts.objective))).to.deep.equal(weights);
    // no validation split: the default is the newest checkpoint, the final weights
    expect(path.basename(opened.checkpoint)).to.equal('epoch-0003.ckpt');
  });
});

describe('the VQ latent\'s EMA codebook and dead-code counters in the trainer @slow', () => {
  /** A small VQ-VAE (a 7x7 grid of 6 codes) with the EMA codebook and dead-code restarts on 14x14 synthetic images: 8 steps an epoch. */
  const vq = () =>
    experimentObject({
      name: 'vq-state',
      seed: 3,
      data: { use: 'synthetic', synthetic: { kind: 'shapes', size: 256 } },
      encoder: { use: 'vq-conv', 'vq-conv': { channels: [4], residualBlocks: 1, residualChannels: 4, outputChannels: 2 } },
      latent: { use: 'vq', vq: { codebookSize: 6, ema: true, emaDecay: 0.9, deadCodeSteps: 3 } },
      decoder: { use: 'vq-conv', 'vq-conv': { channels: [4], residualBlocks: 1, residualChannels: 4 } },
      prior: { use: 'uniform-codes' },
      objective: { use: 'vq-vae' },
      train: { epochs: 3, batchSize: 32, logEvery: 1, progress: 'none', optimizer: { learningRate: 3e-3 } },
      eval: { iwSamples: 0, batchSize: 64, images: false },
    });
  const vqRun = (opts: Partial<TrainOptions> = {}) => run(opts, vq());

  it('Should keep the codebook, EMA sums and counts and unused-step counters as state and resume mid-epoch to exactly the uninterrupted values', async () => {
    const full = await vqRun();
    expect([...full.state.keys()].sort()).to.deep.equal(['latent/codebook', 'latent/ema-count', 'latent/ema-sum', 'latent/unused-steps']);
    const control = { stop: false };
    const first = await vqRun({ control, onStep: (s) => (control.stop = s === 13) });
    expect(first.result.status).to.equal('interrupted');
    const ck = first.dir.latestCheckpoint()!;
    // the EMA state at step 13 is in the interrupt checkpoint and still moves after it
    expect(Array.from(loadCheckpoint(ck).tensors.get('state/latent/ema-sum')!.data)).to.not.deep.equal(full.state.get('latent/ema-sum'));
    const resumed = await vqRun({ run: first.dir, resumeFrom: ck });
    expect(resumed.state).to.deep.equal(full.state);
    expect(resumed.weights).to.deep.equal(full.weights);
  });
});
