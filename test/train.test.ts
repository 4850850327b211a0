import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { experimentFromObject } from '../core/config/experiment';
import { ConfigError, TrainingError } from '../core/errors';
import { openSession } from '../core/session';
import { loadCheckpoint } from '../core/train/checkpoint';
import { chooseCheckpoint } from '../core/train/open-run';
import { standardError } from '../core/math';
import { keptSummary, train, trainableVariables, type TrainOptions } from '../core/train/trainer';
import { RunDir } from '../core/tracking/run-dir';
import { builtins, experimentObject } from './kits/build';

const root = () => fs.mkdtempSync(path.join(os.tmpdir(), 'vaelab-train-'));

/** A tiny experiment on synthetic 14x14 shapes: 256 images, batch 32 => 8 steps an epoch. */
function tiny(over: Record<string, unknown> = {}, trainOver: Record<string, unknown> = {}) {
  return experimentObject({
    name: 'tiny',
    seed: 4,
    data: { use: 'synthetic', synthetic: { kind: 'shapes', size: 256 } },
    encoder: { use: 'mlp', mlp: { hiddenSizes: [32] } },
    decoder: { use: 'mlp', mlp: { hiddenSizes: [32] } },
    latent: { use: 'gaussian', gaussian: { dim: 4 } },
    train: { epochs: 3, batchSize: 32, logEvery: 1, progress: 'none', optimizer: { learningRate: 3e-3 }, ...trainOver },
    eval: { iwSamples: 10, iwChunk: 5, batchSize: 64, gridSize: 4 },
    ...over,
  });
}

async function runTiny(raw: Record<string, unknown>, dir: string, opts: Partial<TrainOptions> = {}, reg = builtins()) {
  const session = openSession(experimentFromObject(raw, reg));
  const run = opts.run ?? RunDir.create(dir, session.config.name, session.config.seed);
  if (!opts.run) run.writeConfig(session.config);
  const lines: string[] = [];
  const result = await train(session, { run, backend: 'cpu', log: (l) => lines.push(l), handleSignals: false, ...opts });
  const weights = new Map([...trainableVariables(session.parts.model, session.parts.objective)].map(([k, v]) => [k, Array.from(v.dataSync())]));
  return { session, run, result, lines, weights };
}

const stepRecords = (run: RunDir) => run.readMetrics().filter((r) => r.kind === 'step').map(({ time: _t, ...r }) => r);

describe('trainer @slow', () => {
  it('Should lower the loss and fill the run directory: config, metrics, summary, checkpoints, images', async () => {
    const { run, result } = await runTiny(tiny(), root());
    expect(result.status).to.equal('completed');
    expect(result.steps).to.equal(24);
    const epochs = run.readMetrics().filter((r) => r.kind === 'epoch');
    expect(epochs.map((r) => r.epoch)).to.deep.equal([1, 2, 3]);
    // no validation split: each epoch is evaluated on test, for monitoring, and named so
    expect(epochs.map((r) => [r.evalSplit, typeof r['test/loss'], 'val/loss' in r])).to.deep.equal(Array(3).fill(['test', 'number', false]));
    expect(epochs[2]['train/loss'] as number).to.be.below(0.8 * (epochs[0]['train/loss'] as number));
    const summary = JSON.parse(fs.readFileSync(run.file('summary.json'), 'utf8'));
    expect(summary.status).to.equal('completed');
    expect([summary.evaluationSplit, summary.best]).to.deep.equal(['test', null]);
    expect(summary.backend).to.equal('cpu');
    expect(summary.seed).to.equal(4);
    for (const k of ['test/loss', 'test/elbo', 'test/reconstruction', 'test/kl', 'test/iw-log-likelihood', 'test/active-units']) {
      expect(summary.test[k], k).to.be.a('number');
    }
    // the IW bound with k = 10 is at least as tight as the ELBO on average
    expect(summary.test['test/iw-log-likelihood']).to.be.at.least(summary.test['test/elbo'] - 0.5);
    // its standard error over the test examples: positive, and far below the spread of one example
    expect(summary.test['test/iw-log-likelihood-se']).to.be.above(0).and.below(Math.abs(summary.test['test/iw-log-likelihood']));
    expect(summary.latent.klPerDim).to.have.length(4);
    // no validation split (data.validationSize 0): no best.ckpt is chosen on the test split
    expect(fs.readdirSync(run.checkpoints).sort()).to.deep.equal(['epoch-0002.ckpt', 'epoch-0003.ckpt', 'latest.json']);
    const png = PNG.sync.read(fs.readFileSync(path.join(run.images, 'samples.png')));
    expect([png.width, png.height]).to.deep.equal([4 * 15 + 1, 4 * 15 + 1]);
    expect(fs.existsSync(path.join(run.images, 'reconstructions-epoch-003.png'))).to.equal(true);
  });

  it('Should keep the number of live tensors flat from epoch to epoch', async () => {
    const tf = await import('@tensorflow/tfjs-core');
    const counts: number[] = [];
    await runTiny(tiny({}, { epochs: 3, clipNorm: 5, syncEvery: 4 }), root(), { onStep: () => counts.push(tf.memory().numTensors) });
    // 8 steps an epoch: the count at each position of an epoch is the same in every epoch, across
    // epoch boundaries with their evaluation, checkpoints and image grids
    expect(counts).to.have.length(24);
    expect(counts.slice(8, 16)).to.deep.equal(counts.slice(0, 8));
    expect(counts.slice(16, 24)).to.deep.equal(counts.slice(0, 8));
  });

  it('Should reproduce the same numbers bit for bit with the same seed', async () => {
    const a = await runTiny(tiny({}, { epochs: 1 }), root());
    const b = await runTiny(tiny({}, { epochs: 1 }), root());
    expect(stepRecords(b.run)).to.deep.equal(stepRecords(a.run));
    expect(b.weights).to.deep.equal(a.weights);
  });

  it('Should stop on request with a checkpoint and resume mid-epoch to exactly the uninterrupted numbers', async () => {
    const dir = root();
    const full = await runTiny(tiny(), dir);
    const control = { stop: false };
    const first = await runTiny(tiny(), dir, { control, onStep: (s) => (control.stop = s === 11) });
    expect(first.result.status).to.equal('interrupted');
    expect(first.result.steps).to.equal(11);
    const ck = first.run.latestCheckpoint()!;
    expect(path.basename(ck)).to.equal('interrupt.ckpt');
    const meta = loadCheckpoint(ck).meta;
    expect([meta.step, meta.epoch, meta.batchInEpoch, meta.optimizerT]).to.deep.equal([11, 1, 3, 11]);
    const resumed = await runTiny(tiny(), dir, { run: first.run, resumeFrom: ck });
    expect(resumed.result.status).to.equal('completed');
    expect(resumed.weights).to.deep.equal(full.weights);
    expect(stepRecords(first.run)).to.deep.equal(stepRecords(full.run));
    const sa = JSON.parse(fs.readFileSync(full.run.file('summary.json'), 'utf8'));
    const sb = JSON.parse(fs.readFileSync(first.run.file('summary.json'), 'utf8'));
    expect(sb.test).to.deep.equal(sa.test);
  });

  it('Should resume from an epoch checkpoint to the same weights', async () => {
    const dir = root();
    const full = await runTiny(tiny(), dir);
    const control = { stop: false };
    const first = await runTiny(tiny(), dir, { control, onStep: (s) => (control.stop = s === 8) });
    // stopped at the start of epoch 2: take the epoch-1 checkpoint, as after a crash
    const ck = path.join(first.run.checkpoints, 'epoch-0001.ckpt');
    expect(loadCheckpoint(ck).meta.batchInEpoch).to.equal(0);
    const resumed = await runTiny(tiny(), dir, { run: first.run, resumeFrom: ck });
    expect(resumed.weights).to.deep.equal(full.weights);
  });

  it('Should stop at a non-finite loss with an error naming the step and the last good checkpoint', async () => {
    const reg = builtins();
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    reg.addAll(require('./fixtures/nan-objective').plugins, 'test');
    let caught: unknown;
    try {
      await runTiny(tiny({ objective: { use: 'nan-at', 'nan-at': { nanFromStep: 10 } } }), root(), {}, reg);
    } catch (e) {
      caught = e;
    }
    expect(caught).to.be.instanceOf(TrainingError);
    expect((caught as Error).message).to.match(
      /^step 11 \(epoch 2, batch 3\): loss is NaN; last good checkpoint: .*epoch-0001\.ckpt\. Try a lower train\.optimizer\.learningRate or set train\.clipNorm$/,
    );
  });

  it('Should stop early when the watched metric stops improving, then test the best checkpoint', async () => {
    const { result, run } = await runTiny(
      tiny({ data: { use: 'synthetic', validationSize: 64, synthetic: { kind: 'shapes', size: 256 } } }, { epochs: 6, earlyStopping: { metric: 'val/loss', mode: 'min', patience: 2, minDelta: 1e9 } }),
      root(),
    );
    expect(result.status).to.equal('early-stopped');
    expect(result.epochs).to.equal(3);
    const summary = JSON.parse(fs.readFileSync(run.file('summary.json'), 'utf8'));
    expect(summary.best.epoch).to.equal(1);
    expect(summary.testedCheckpoint).to.equal('best.ckpt');
  });

  it('Should choose best.ckpt on a validation split, with val/... metrics, and open it by default for eval and sample', async () => {
    const { run } = await runTiny(tiny({ data: { use: 'synthetic', validationSize: 64, synthetic: { kind: 'shapes', size: 256 } } }, { epochs: 2 }), root());
    const epochs = run.readMetrics().filter((r) => r.kind === 'epoch');
    expect(epochs.map((r) => [r.evalSplit, typeof r['val/loss'], 'test/loss' in r])).to.deep.equal(Array(2).fill(['validation', 'number', false]));
    const summary = JSON.parse(fs.readFileSync(run.file('summary.json'), 'utf8'));
    expect(summary.best.epoch).to.be.oneOf([1, 2]);
    expect(loadCheckpoint(path.join(run.checkpoints, 'best.ckpt')).meta.best.epoch).to.equal(summary.best.epoch);
    expect(chooseCheckpoint(run, undefined, 'r')).to.equal(path.join(run.checkpoints, 'best.ckpt'));
    expect(chooseCheckpoint(run, 'final', 'r')).to.equal(path.join(run.checkpoints, 'epoch-0002.ckpt'));
  });

  it('Should select nothing on the test split: no best checkpoint for eval and sample, and early stopping refused', async () => {
    const { run } = await runTiny(tiny({}, { epochs: 1 }), root());
    expect(chooseCheckpoint(run, undefined, 'r')).to.equal(path.join(run.checkpoints, 'epoch-0001.ckpt'));
    let best: unknown;
    try {
      chooseCheckpoint(run, 'best', '"runs/tiny/x"');
    } catch (e) {
      best = e;
    }
    expect(best).to.be.instanceOf(ConfigError);
    expect((best as Error).message).to.equal(
      '--checkpoint best: run "runs/tiny/x" has no validation split (data.validationSize = 0), so no best checkpoint was chosen; use --checkpoint latest',
    );
    let msg = '';
    try {
      await runTiny(tiny({}, { earlyStopping: { metric: 'val/loss', patience: 2 } }), root());
    } catch (e) {
      expect(e).to.be.instanceOf(ConfigError);
      msg = (e as Error).message;
    }
    expect(msg).to.equal(
      'train.earlyStopping.patience: early stopping selects a checkpoint on a validation split, and data.validationSize is 0 (the test split is never used for selection); set data.validationSize above 0 or train.earlyStopping.patience to 0',
    );
  });

  it('Should refuse an early-stopping metric the objective does not report', async () => {
    let msg = '';
    try {
      await runTiny(tiny({}, { earlyStopping: { metric: 'val/elb', patience: 1 } }), root());
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).to.equal(
      'train.earlyStopping.metric: unknown metric "val/elb". Allowed values: "val/loss", "val/reconstruction", "val/kl", "val/elbo". Did you mean "val/elbo"?',
    );
  });
});

describe('standard error', () => {
  it('Should be the sample standard deviation over sqrt(n), by hand, and 0 below two values', () => {
    // [1, 2, 3, 4]: mean 2.5, sample variance 5/3, se = sqrt(5/3 / 4)
    expect(standardError([1, 2, 3, 4])).to.be.closeTo(Math.sqrt(5 / 12), 1e-12);
    expect(standardError(Float64Array.from([7, 7, 7]))).to.equal(0);
    expect(standardError([3])).to.equal(0);
  });
});

describe('init log: the variables left as initialised', () => {
  it('Should name up to six variables, and count larger sets per part and slot', () => {
    expect(keptSummary(['model/prior/a', 'model/prior/b'])).to.equal('model/prior/a, model/prior/b');
    const many = [...Array.from({ length: 68 }, (_, i) => `model/prior/layer${i}/kernel`), 'model/decoder/extra', 'objective/disc/w'];
    expect(keptSummary(many)).to.equal('68 tensors under model/prior/, 1 tensor under model/decoder/, 1 tensor under objective/disc/');
  });
});
