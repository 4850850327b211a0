/**
 * Stages, frozen variables and init.from (core/config/stages.ts, core/train/run-stages.ts,
 * core/train/init.ts), with the fixture plugins of test/fixtures/learned-prior.ts: stage 1 trains
 * a VAE whose prior has a learnable loc, stage 2 fits only the prior (`train.trainable: [prior/]`)
 * with its own objective.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { experimentFromObject } from '../core/config/experiment';
import { planStages } from '../core/config/stages';
import { ConfigError } from '../core/errors';
import { openSession } from '../core/session';
import { loadCheckpoint, saveCheckpoint, type LoadedCheckpoint } from '../core/train/checkpoint';
import * as tf from '@tensorflow/tfjs-core';
import { trainStages, type StagedTrainOptions } from '../core/train/run-stages';
import { checkInit, train } from '../core/train/trainer';
import { resolveInitCheckpoint } from '../core/train/init';
import { RunDir } from '../core/tracking/run-dir';
import { builtins, experimentObject } from './kits/build';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'vaelab-stages-'));

function registry() {
  const reg = builtins();
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  reg.addAll(require('./fixtures/learned-prior').plugins, 'test');
  return reg;
}

/** Synthetic shapes: 64 images, batch 16 => 4 steps an epoch; stage 1 one epoch, stage 2 two. */
function twoStages(stages?: unknown[], over: Record<string, unknown> = {}) {
  return experimentObject({
    name: 'two-stage',
    seed: 7,
    data: { use: 'synthetic', synthetic: { kind: 'shapes', size: 64 } },
    latent: { use: 'gaussian', gaussian: { dim: 2 } },
    prior: { use: 'learned-loc' },
    train: { epochs: 1, batchSize: 16, logEvery: 1, progress: 'none', optimizer: { learningRate: 3e-3 } },
    eval: { iwSamples: 0, batchSize: 32, images: false },
    stages: stages ?? [
      { name: 'vae' },
      { name: 'prior', objective: { use: 'prior-fit' }, train: { epochs: 2, trainable: ['prior/'], optimizer: { learningRate: 0.05 } } },
    ],
    ...over,
  });
}

async function runStages(raw: Record<string, unknown>, opts: Partial<StagedTrainOptions> = {}) {
  const reg = registry();
  const plan = planStages(raw, reg);
  const run = opts.run ?? RunDir.create(tmp(), 'two-stage', 7);
  if (!opts.run) run.writeConfig(raw);
  const lines: string[] = [];
  const result = await trainStages(plan, { run, registry: reg, backend: 'cpu', log: (l) => lines.push(l), handleSignals: false, ...opts });
  const stageDir = (i: number) => RunDir.open(path.join(run.dir, result.stages[i].dir));
  return { run, result, lines, stageDir };
}

/** The model/ and state/ tensors of a checkpoint, as plain arrays. */
const weightsOf = (ck: LoadedCheckpoint) =>
  new Map([...ck.tensors].filter(([k]) => k.startsWith('model/') || k.startsWith('state/')).map(([k, t]) => [k, Array.from(t.data)]));

const messageOf = async (f: () => Promise<unknown> | unknown): Promise<string> => {
  try {
    await f();
  } catch (e) {
    expect(e).to.be.instanceOf(ConfigError);
    return (e as Error).message;
  }
  return '(no error)';
};

describe('stages @slow', () => {
  it("Should train two stages in one run directory, stage 2 from stage 1's final weights, training only prior/ with its own objective", async () => {
    const { run, result, stageDir } = await runStages(twoStages());
    expect(result.status).to.equal('completed');
    expect(result.stages.map((s) => [s.dir, s.status, s.steps])).to.deep.equal([
      ['stages/0-vae', 'completed', 4],
      ['stages/1-prior', 'completed', 8],
    ]);
    const s1 = stageDir(0);
    const s2 = stageDir(1);
    expect(s2.readConfig().init).to.deep.equal({ from: s1.dir, checkpoint: 'final', include: [] });
    const end1 = weightsOf(loadCheckpoint(s1.latestCheckpoint()!));
    const end2ck = loadCheckpoint(s2.latestCheckpoint()!);
    const end2 = weightsOf(end2ck);
    expect([...end2.keys()]).to.deep.equal([...end1.keys()]);
    for (const [k, w] of end2) {
      if (k === 'model/prior/loc') expect(w, k).to.not.deep.equal(end1.get(k));
      else expect(w, k).to.deep.equal(end1.get(k));
    }
    // the frozen variables are in no optimizer
    expect([...end2ck.tensors.keys()].filter((k) => k.startsWith('adam/'))).to.deep.equal(['adam/m/prior/loc', 'adam/v/prior/loc']);
    // stage 2 logs its own objective's terms
    expect(s2.readMetrics().find((r) => r.kind === 'step')).to.have.property('train/log-prior');
    const summary = JSON.parse(fs.readFileSync(run.file('summary.json'), 'utf8'));
    expect(summary.status).to.equal('completed');
    expect(summary.test['test/log-prior']).to.be.a('number');
  });

  it('Should warn, naming them, when a stage freezes variables that its loss reads and its init did not load (and not when init loads them)', async () => {
    const warning = (lines: string[]) => lines.filter((l) => l.startsWith('warning: train.trainable freezes'));
    // init loads stage 1's encoder only: latent/ and decoder/ stay frozen at fresh random values;
    // prior-fit's loss, -log p(z) of z ~ q(z|x), reads latent/ but not decoder/
    const partial = await runStages(
      twoStages([
        { name: 'vae' },
        { name: 'prior', objective: { use: 'prior-fit' }, init: { include: ['encoder/'] }, train: { epochs: 1, trainable: ['prior/'] } },
      ]),
    );
    const keys = [...loadCheckpoint(partial.stageDir(0).latestCheckpoint()!).tensors.keys()].filter((k) => k.startsWith('model/')).map((k) => k.slice(6));
    const latent = keys.filter((k) => k.startsWith('latent/'));
    expect(latent.length).to.be.above(0);
    expect(keys.some((k) => k.startsWith('decoder/'))).to.equal(true);
    const lines = warning(partial.lines);
    expect(lines, partial.lines.join('\n')).to.have.length(1);
    expect(lines[0]).to.contain(`freezes ${latent.length} variables that the loss reads and init did not load`);
    for (const k of latent) expect(lines[0]).to.contain(k);
    expect(lines[0]).to.not.contain('decoder/').and.not.contain('encoder/').and.not.contain('prior/');
    // the default init loads every variable of stage 1: nothing is left at random values
    const full = await runStages(twoStages());
    expect(warning(full.lines)).to.deep.equal([]);
  });

  it('Should give, after the frozen-variable check of the first step, the same weights whether the stage ran through or was interrupted and resumed', async () => {
    const stages = [
      { name: 'vae' },
      { name: 'prior', objective: { use: 'prior-fit' }, init: { include: ['encoder/'] }, train: { epochs: 2, trainable: ['prior/'] } },
    ];
    const full = await runStages(twoStages(stages));
    expect(full.lines.some((l) => l.startsWith('warning: train.trainable freezes'))).to.equal(true);
    const control = { stop: false };
    const first = await runStages(twoStages(stages), { control, onStep: (s, stage) => (control.stop = stage === 1 && s === 3) });
    expect(first.result.status).to.equal('interrupted');
    const resumed = await runStages(first.run.readConfig(), { run: first.run, resume: true });
    expect(resumed.result.status).to.equal('completed');
    const want = weightsOf(loadCheckpoint(full.stageDir(1).latestCheckpoint()!));
    expect(weightsOf(loadCheckpoint(resumed.stageDir(1).latestCheckpoint()!))).to.deep.equal(want);
  });

  it('Should continue a staged run interrupted in its second stage at that stage, to exactly the uninterrupted weights', async () => {
    const full = await runStages(twoStages());
    const control = { stop: false };
    const first = await runStages(twoStages(), { control, onStep: (s, stage) => (control.stop = stage === 1 && s === 3) });
    expect(first.result.status).to.equal('interrupted');
    expect(first.result.stages.map((s) => [s.status, s.steps])).to.deep.equal([
      ['completed', 4],
      ['interrupted', 3],
    ]);
    const top = JSON.parse(fs.readFileSync(first.run.file('summary.json'), 'utf8'));
    expect(top.status).to.equal('interrupted');
    const interrupt = first.stageDir(1).latestCheckpoint()!;
    const resumed = await runStages(first.run.readConfig(), { run: first.run, resume: true });
    expect(resumed.result.status).to.equal('completed');
    expect(resumed.lines).to.include('stage 1/2 "vae": already completed');
    // stage 2 continues from its interrupt checkpoint (not from stage 1 again)
    expect(resumed.lines).to.include(`resumed from ${path.relative(process.cwd(), interrupt)} at step 3 (epoch 1, batch 3)`);
    const want = weightsOf(loadCheckpoint(full.stageDir(1).latestCheckpoint()!));
    expect(weightsOf(loadCheckpoint(resumed.stageDir(1).latestCheckpoint()!))).to.deep.equal(want);
  });

  it('Should validate every stage before the first starts, naming each stage', async () => {
    const raw = twoStages([
      { name: 'vae', train: { trainable: ['priors/'] } },
      { name: 'prior', train: { epoch: 2 } },
    ]);
    expect(await messageOf(() => planStages(raw, registry()))).to.equal(
      [
        '2 problems',
        '  - stages[0] "vae": train.trainable[0]: "priors/" must start with a slot name and "/": "encoder/", "latent/", "decoder/", "prior/", "likelihood/", "objective/"',
        '  - stages[1] "prior": train.epoch: not a known key (keys here: epochs, batchSize, maxSteps, dropLast, optimizer, schedule, clipNorm, evalEvery, earlyStopping, logEvery, syncEvery, progress, keepCheckpoints, trainable). Did you mean "epochs"?',
      ].join('\n'),
    );
    expect(await messageOf(() => planStages(twoStages([{ name: 'Vae' }, { name: 'fit' }, { name: 'fit', stages: [] }]), registry()))).to.equal(
      [
        '3 problems',
        '  - stages[0].name: must be a kebab-case name (lower-case words joined by "-"); got "Vae"',
        '  - stages[2].name: "fit" is also the name of stages[1]',
        '  - stages[2].stages: a stage cannot have stages of its own',
      ].join('\n'),
    );
    expect(await messageOf(() => planStages(twoStages([]), registry()))).to.equal(
      'stages: must be a non-empty list of stages, each a mapping with a "name" and the keys it overrides; got []',
    );
  });

  it('Should refuse init.from tensors whose shapes differ, naming both, and prefixes that match nothing', async () => {
    const { stageDir } = await runStages(twoStages([{ name: 'vae' }]));
    const from = stageDir(0).dir;
    const file = stageDir(0).latestCheckpoint()!;
    const session = (init: Record<string, unknown>, over: Record<string, unknown> = {}) => {
      const raw = twoStages(undefined, { latent: { use: 'gaussian', gaussian: { dim: 3 } }, init: { from, ...init }, ...over });
      delete raw.stages;
      return openSession(experimentFromObject(raw, registry()));
    };
    const start = async (init: Record<string, unknown>, over: Record<string, unknown> = {}) => {
      const run = RunDir.create(tmp(), 'init', 7);
      await train(session(init, over), { run, backend: 'cpu', log: () => undefined, handleSignals: false });
    };
    const shapes = [
      '2 problems',
      `  - init.from: model/latent/loc/kernel is [16, 2] in ${file} but [16, 3] in this experiment`,
      `  - init.from: model/latent/loc/bias is [2] in ${file} but [3] in this experiment`,
    ].join('\n');
    expect(await messageOf(() => start({ include: ['latent/loc/'] }))).to.equal(shapes);
    // the same check, without a run: what vaelab train does before it makes the run directory
    expect(await messageOf(() => checkInit(session({ include: ['latent/loc/'] })))).to.equal(shapes);
    expect(await messageOf(() => start({ include: ['priors/'] }))).to.equal('init.include: "priors/" matches no variable or state of this experiment');
    expect(await messageOf(() => start({ checkpoint: 'best' }))).to.equal(
      `init.checkpoint: run ${JSON.stringify(from)} has no best checkpoint (one is chosen only on a validation split, data.validationSize > 0); use "final" or "latest"`,
    );
    // auto: final without a best checkpoint, best when there is one
    expect(resolveInitCheckpoint(from, 'auto')).to.equal(resolveInitCheckpoint(from, 'final'));
    const best = path.join(stageDir(0).checkpoints, 'best.ckpt');
    fs.copyFileSync(file, best);
    expect(resolveInitCheckpoint(from, 'auto')).to.equal(best);
    fs.unlinkSync(best);
    expect(await messageOf(() => start({}, { init: {}, train: { trainable: ['prior/x'] } }))).to.equal(
      'train.trainable: "prior/x" matches no trainable variable of this experiment (their keys start with "encoder/", "latent/", "decoder/", "prior/")',
    );
    // A checkpoint that holds none of this model's tensors (another experiment's) copies nothing: refused.
    const foreign = path.join(tmp(), 'foreign.ckpt');
    const meta = { ...loadCheckpoint(file).meta };
    saveCheckpoint(foreign, meta, new Map([['model/encoder/other/kernel', tf.zeros([2, 2])]]));
    const raw = twoStages(undefined, { init: { from: foreign } });
    delete raw.stages;
    // 11 tensors: encoder dense0 (2), latent loc and logVar heads (4), decoder dense0, dense1 (4), the prior's loc (1).
    expect(await messageOf(() => checkInit(openSession(experimentFromObject(raw, registry()))))).to.equal(
      `init.from: ${foreign} has none of this experiment's 11 tensors (it holds model/encoder/other/kernel, ...); is it a run of another experiment?`,
    );
  });
});

describe('trainer: a loss that reaches none of the variables it trains', () => {
  it('Should refuse, in one line naming train.trainable and the objective, a stage whose objective does not use the variables it trains', async () => {
    // prior-fit's loss is -log p(z), z ~ q(z|x): it depends on encoder, latent and prior, not on the decoder.
    const raw = twoStages(undefined, {});
    delete raw.stages;
    const exp = experimentFromObject({ ...raw, objective: { use: 'prior-fit' }, train: { ...(raw.train as object), trainable: ['decoder/'] } }, registry());
    const session = openSession(exp);
    const run = RunDir.create(tmp(), 'no-connection', 7);
    let thrown: unknown;
    try {
      await train(session, { run, backend: 'cpu', log: () => undefined, handleSignals: false });
    } catch (e) {
      thrown = e;
    }
    expect(thrown).to.be.instanceOf(ConfigError);
    expect((thrown as Error).message).to.equal(
      'train.trainable = ["decoder/"]: the loss of objective "prior-fit" reaches none of the variables it trains (decoder/mlp/dense0/kernel, decoder/mlp/dense0/bias, decoder/mlp/dense1/kernel, decoder/mlp/dense1/bias); train variables the loss depends on',
    );
  });
});
