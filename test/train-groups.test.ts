/**
 * Parameter groups with their own optimizers (core/train/groups.ts), proven with the fixture
 * objective test/fixtures/critic-objective.ts: a FactorVAE-like critic trained by its own Adam
 * with beta = (0.5, 0.9).
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { experimentFromObject } from '../core/config/experiment';
import { RegistrationError } from '../core/errors';
import { openSession } from '../core/session';
import { loadCheckpoint, type LoadedCheckpoint } from '../core/train/checkpoint';
import { train, trainableVariables, type TrainOptions } from '../core/train/trainer';
import { RunDir } from '../core/tracking/run-dir';
import { builtins, experimentObject } from './kits/build';

const root = () => fs.mkdtempSync(path.join(os.tmpdir(), 'vaelab-groups-'));

function registry() {
  const reg = builtins();
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  reg.addAll(require('./fixtures/critic-objective').plugins, 'test');
  return reg;
}

/** Synthetic 14x14 shapes: 256 images, batch 32 => 8 steps an epoch. */
function tiny(critic: Record<string, unknown> = {}, trainOver: Record<string, unknown> = {}) {
  return experimentObject({
    name: 'groups',
    seed: 5,
    data: { use: 'synthetic', synthetic: { kind: 'shapes', size: 256 } },
    encoder: { use: 'mlp', mlp: { hiddenSizes: [32] } },
    decoder: { use: 'mlp', mlp: { hiddenSizes: [32] } },
    latent: { use: 'gaussian', gaussian: { dim: 4 } },
    objective: { use: 'critic', critic },
    train: { epochs: 3, batchSize: 32, logEvery: 1, progress: 'none', optimizer: { learningRate: 3e-3 }, ...trainOver },
    eval: { iwSamples: 0, batchSize: 64, images: false },
  });
}

async function run(raw: Record<string, unknown>, opts: Partial<TrainOptions> = {}) {
  const session = openSession(experimentFromObject(raw, registry()));
  const dir = opts.run ?? RunDir.create(root(), 'groups', 5);
  if (!opts.run) dir.writeConfig(session.config);
  const vars = trainableVariables(session.parts.model, session.parts.objective);
  const initial = new Map([...vars].map(([k, v]) => [k, Array.from(v.dataSync())]));
  const result = await train(session, { run: dir, backend: 'cpu', log: () => undefined, handleSignals: false, ...opts });
  const weights = new Map([...vars].map(([k, v]) => [k, Array.from(v.dataSync())]));
  const steps = dir.readMetrics().filter((r) => r.kind === 'step').map(({ time: _t, ...r }) => r);
  return { result, dir, initial, weights, steps };
}

const CRITIC = ['objective/critic/kernel', 'objective/critic/bias'];

/** Values of a checkpoint tensor. */
const tensor = (ck: LoadedCheckpoint, key: string) => {
  const t = ck.tensors.get(key);
  if (!t) throw new Error(`no ${key} in the checkpoint (has ${[...ck.tensors.keys()].join(', ')})`);
  return t.data;
};

describe('parameter groups @slow', () => {
  it('Should step the critic group every 2 steps with its own Adam, log train/critic-loss, and checkpoint its state', async () => {
    const { steps, dir, result } = await run(tiny({ every: 2 }, { epochs: 1 }));
    expect(result.steps).to.equal(8);
    // steps s = 0, 2, 4, 6 (records 1, 3, 5, 7) update the critic; the others do not
    expect(steps.map((r) => 'train/critic-loss' in r)).to.deep.equal([true, false, true, false, true, false, true, false]);
    expect(Object.keys(steps[0])).to.deep.equal([
      'kind', 'step', 'epoch', 'lr', 'train/loss', 'train/reconstruction', 'train/kl', 'train/critic', 'train/grad-norm', 'train/critic-loss', 'train/critic-grad-norm',
    ]);
    const epoch = dir.readMetrics().find((r) => r.kind === 'epoch')!;
    expect(epoch['train/critic-loss']).to.be.closeTo(
      // averaged over the 4 steps where the critic stepped (every batch holds 32 examples)
      steps.filter((r) => 'train/critic-loss' in r).reduce((s, r) => s + (r['train/critic-loss'] as number), 0) / 4,
      1e-5,
    );
    const ck = loadCheckpoint(dir.latestCheckpoint()!);
    expect(ck.meta.optimizerT).to.equal(8);
    expect(ck.meta.groups).to.deep.equal({ critic: { optimizerT: 4 } });
    for (const k of CRITIC) {
      expect(ck.tensors.has(`adam/critic/m/${k}`), k).to.equal(true);
      expect(ck.tensors.has(`adam/critic/v/${k}`), k).to.equal(true);
      // the critic's variables are in no other optimizer
      expect(ck.tensors.has(`adam/m/${k}`), k).to.equal(false);
    }
  });

  it("Should use the group's Adam settings: after one update m^2 / v is 2.5 for beta (0.5, 0.9), 10 for the main group's (0.9, 0.999)", async () => {
    const { dir } = await run(tiny({}, { maxSteps: 1 }));
    const ck = loadCheckpoint(path.join(dir.checkpoints, 'final.ckpt'));
    // after one step from zero moments: m = (1 - b1) g and v = (1 - b2) g^2, so
    // m^2 / v = (1 - b1)^2 / (1 - b2): 0.25 / 0.1 = 2.5 for the critic, 0.01 / 0.001 = 10 for the main group
    const ratios = (prefix: string, key: string) => {
      const m = tensor(ck, `${prefix}m/${key}`);
      const v = tensor(ck, `${prefix}v/${key}`);
      return Array.from(m).flatMap((mi, i) => (v[i] > 1e-20 ? [(mi * mi) / v[i]] : []));
    };
    const critic = ratios('adam/critic/', 'objective/critic/kernel');
    expect(critic).to.have.length(4);
    for (const r of critic) expect(r).to.be.closeTo(2.5, 2.5e-4);
    const main = ratios('adam/', 'latent/loc/kernel');
    expect(main.length).to.be.above(10);
    for (const r of main) expect(r).to.be.closeTo(10, 1e-3);
  });

  it('Should resume a run with a parameter group, interrupted mid-epoch, to exactly the uninterrupted numbers', async () => {
    const full = await run(tiny({ every: 2 }));
    const control = { stop: false };
    const first = await run(tiny({ every: 2 }), { control, onStep: (s) => (control.stop = s === 11) });
    expect(first.result.status).to.equal('interrupted');
    const ck = first.dir.latestCheckpoint()!;
    const meta = loadCheckpoint(ck).meta;
    // 11 steps: s = 0..10, the critic at s = 0, 2, ..., 10
    expect([meta.step, meta.batchInEpoch, meta.optimizerT, meta.groups!.critic.optimizerT]).to.deep.equal([11, 3, 11, 6]);
    const resumed = await run(tiny({ every: 2 }), { run: first.dir, resumeFrom: ck });
    expect(resumed.result.status).to.equal('completed');
    expect(resumed.weights).to.deep.equal(full.weights);
    expect(first.dir.readMetrics().filter((r) => r.kind === 'step').map(({ time: _t, ...r }) => r)).to.deep.equal(full.steps);
  });

  it("Should keep each gradient to its group: the main loss moves no critic weight, and the critic's loss no model weight", async () => {
    // critic loss zeroed: its Adam gets zero gradients and moves nothing, while the main loss
    // (criticWeight 0.5 x D(z)) depends on the critic's weights
    const a = await run(tiny({ groupScale: 0 }, { epochs: 1 }));
    for (const k of CRITIC) expect(a.weights.get(k), k).to.deep.equal(a.initial.get(k));
    expect(a.weights.get('encoder/mlp/dense0/kernel')).to.not.deep.equal(a.initial.get('encoder/mlp/dense0/kernel'));
    // main loss zeroed: the critic's loss depends on the encoder's and the latent's weights
    // through z, yet none of the model's weights moves
    const b = await run(tiny({ mainScale: 0 }, { epochs: 1 }));
    for (const [k, w] of b.weights) {
      if (CRITIC.includes(k)) expect(w, k).to.not.deep.equal(b.initial.get(k));
      else expect(w, k).to.deep.equal(b.initial.get(k));
    }
  });

  it("Should clip each group's gradients to train.clipNorm on its own", async () => {
    const { dir, steps } = await run(tiny({}, { maxSteps: 1, clipNorm: 1e-3 }));
    const ck = loadCheckpoint(path.join(dir.checkpoints, 'final.ckpt'));
    // both norms are far above the bound, so each group's clipped gradient has norm 1e-3:
    // ||m|| = (1 - b1) * 1e-3 after one step, summed over that group's variables only
    expect(steps[0]['train/grad-norm'] as number).to.be.above(0.1);
    expect(steps[0]['train/critic-grad-norm'] as number).to.be.above(0.01);
    const norm = (keys: string[]) => Math.sqrt(keys.reduce((s, k) => s + Array.from(tensor(ck, k)).reduce((t, x) => t + x * x, 0), 0));
    const mainKeys = [...ck.tensors.keys()].filter((k) => k.startsWith('adam/m/'));
    expect(norm(mainKeys) / (1 - 0.9)).to.be.closeTo(1e-3, 1e-7);
    expect(norm(CRITIC.map((k) => `adam/critic/m/${k}`)) / (1 - 0.5)).to.be.closeTo(1e-3, 1e-7);
  });

  it('Should alternate the main group (steps 1, 3, ...) and the critic (steps 0, 2, ...) when the objective declares mainUpdate and the group a phase', async () => {
    // Snapshots after each step (syncEvery 1: the listener runs right after its step): which weights moved?
    const snaps: Array<{ step: number; main: number[]; critic: number[]; values: Record<string, number> }> = [];
    const raw = tiny({ every: 2, phase: 0, mainEvery: 2, mainPhase: 1 }, { epochs: 1, syncEvery: 1 });
    const session = openSession(experimentFromObject(raw, registry()));
    const vars = trainableVariables(session.parts.model, session.parts.objective);
    const read = (k: string) => Array.from(vars.get(k)!.dataSync());
    const before = { main: read('encoder/mlp/dense0/bias'), critic: read(CRITIC[0]) };
    const watcher = { name: 'watcher', onStepEnd: (e: { step: number; values: Readonly<Record<string, number>> }) => snaps.push({ step: e.step, main: read('encoder/mlp/dense0/bias'), critic: read(CRITIC[0]), values: { ...e.values } }) };
    const dir = RunDir.create(root(), 'groups', 5);
    await train(session, { run: dir, backend: 'cpu', log: () => undefined, handleSignals: false, callbacks: [watcher] });
    expect(snaps.map((x) => x.step)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8]);
    let prev = before;
    snaps.forEach((x, i) => {
      // Event step i + 1 is optimisation step s = i: the critic moves when s is even, the main group when s is odd.
      const s = i;
      if (s % 2 === 1) {
        expect(x.main, `main moves at step ${s}`).to.not.deep.equal(prev.main);
        expect(x.critic, `critic frozen at step ${s}`).to.deep.equal(prev.critic);
      } else {
        expect(x.main, `main frozen at step ${s}`).to.deep.equal(prev.main);
        expect(x.critic, `critic moves at step ${s}`).to.not.deep.equal(prev.critic);
      }
      // Every step logs the main terms; the gradient norm only where the main group stepped.
      expect(Number.isFinite(x.values['train/loss'])).to.equal(true);
      expect('train/grad-norm' in x.values).to.equal(s % 2 === 1);
      expect('train/critic-loss' in x.values).to.equal(s % 2 === 0);
      prev = x;
    });
  });

  it('Should refuse a phase outside [0, every)', async () => {
    let caught: unknown;
    try {
      await run(tiny({ every: 2, phase: 2 }));
    } catch (e) {
      caught = e;
    }
    expect(caught).to.be.instanceOf(RegistrationError);
    expect((caught as Error).message).to.equal('objective "critic".groups: group "critic" phase must be an integer in [0, 1] (every = 2); got 2');
  });

  it('Should refuse a group whose variable the objective does not own', async () => {
    let caught: unknown;
    try {
      await run(tiny({ badGroup: 'foreign-variable' }));
    } catch (e) {
      caught = e;
    }
    expect(caught).to.be.instanceOf(RegistrationError);
    expect((caught as Error).message).to.equal(
      'objective "critic".groups: variable "foreign" of group "critic" is not among the objective\'s variables(); return it from variables() too',
    );
  });
});
