/**
 * Trainer events (core/train/events.ts): the order listeners see, the values they get, their
 * isolation (a listener that throws or is slow never changes the run's numbers), a stop asked
 * for by a listener (pruning), and a listener's state resuming with the run.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { experimentFromObject } from '../core/config/experiment';
import { openSession } from '../core/session';
import { loadCheckpoint } from '../core/train/checkpoint';
import type { RunControl, StepEndEvent, TrainerCallback } from '../core/train/events';
import { train, trainableVariables, type TrainOptions } from '../core/train/trainer';
import { RunDir } from '../core/tracking/run-dir';
import { builtins, experimentObject } from './kits/build';

const root = () => fs.mkdtempSync(path.join(os.tmpdir(), 'vaelab-events-'));

/** Synthetic 14x14 shapes: 64 images, batch 16 => 4 steps an epoch; 2 epochs. */
function small(trainOver: Record<string, unknown> = {}) {
  return experimentObject({
    name: 'events',
    seed: 3,
    data: { use: 'synthetic', synthetic: { kind: 'shapes', size: 64 } },
    encoder: { use: 'mlp', mlp: { hiddenSizes: [16] } },
    decoder: { use: 'mlp', mlp: { hiddenSizes: [16] } },
    latent: { use: 'gaussian', gaussian: { dim: 2 } },
    train: { epochs: 2, batchSize: 16, logEvery: 1, syncEvery: 3, progress: 'none', optimizer: { learningRate: 3e-3 }, ...trainOver },
    eval: { iwSamples: 2, iwChunk: 2, batchSize: 32, gridSize: 2, images: false },
  });
}

async function run(raw: Record<string, unknown>, opts: Partial<TrainOptions> = {}) {
  const session = openSession(experimentFromObject(raw, builtins()));
  const dir = opts.run ?? RunDir.create(root(), 'events', 3);
  if (!opts.run) dir.writeConfig(session.config);
  const lines: string[] = [];
  const result = await train(session, { run: dir, backend: 'cpu', log: (l) => lines.push(l), handleSignals: false, ...opts });
  const weights = [...trainableVariables(session.parts.model, session.parts.objective)].map(([k, v]) => [k, Array.from(v.dataSync())]);
  const steps = dir.readMetrics().filter((r) => r.kind === 'step').map(({ time: _t, ...r }) => r);
  return { result, lines, weights, steps, dir };
}

describe('trainer events @slow', () => {
  it('Should call every hook in the order of the run, with each step\'s values as metrics.jsonl records them', async () => {
    const seen: string[] = [];
    const stepEvents: StepEndEvent[] = [];
    const recorder: TrainerCallback = {
      onRunStart: (e) => seen.push(`start ${e.step}/${e.totalSteps}`),
      onEpochStart: (e) => seen.push(`epoch-start ${e.epoch}`),
      onStepEnd: (e) => {
        seen.push(`step ${e.step}`);
        stepEvents.push(e);
      },
      onEvaluation: (e) => seen.push(`eval ${e.split} ${e.epoch}`),
      onCheckpoint: (e) => seen.push(`checkpoint ${path.basename(e.file)}`),
      onEpochEnd: (e) => seen.push(`epoch-end ${e.epoch} ${e.evaluated}`),
      onRunEnd: (e) => seen.push(`end ${e.status}`),
    };
    const { steps } = await run(small(), { callbacks: [recorder] });
    // 4 steps an epoch, values read back every 3 steps and at the end of each epoch; no
    // validation split, so each epoch's evaluation is on test and writes no best.ckpt
    expect(seen).to.deep.equal([
      'start 0/8',
      'epoch-start 0', 'step 1', 'step 2', 'step 3', 'step 4', 'eval test 1', 'checkpoint epoch-0001.ckpt', 'epoch-end 1 test',
      'epoch-start 1', 'step 5', 'step 6', 'step 7', 'step 8', 'eval test 2', 'checkpoint epoch-0002.ckpt', 'epoch-end 2 test',
      'eval test null', 'end completed',
    ]);
    expect(stepEvents.map((e) => ({ kind: 'step', step: e.step, epoch: e.epoch + 1, lr: e.lr, ...e.values }))).to.deep.equal(steps);
    expect(Object.keys(stepEvents[0].values)).to.deep.equal(['train/loss', 'train/reconstruction', 'train/kl', 'train/elbo', 'train/grad-norm']);
    expect(Object.isFrozen(stepEvents[0].values)).to.equal(true);
  });

  it('Should keep the numbers of the run when listeners throw, reject or are slow, and warn once per listener', async () => {
    const plain = await run(small());
    const busy = (ms: number) => {
      const until = Date.now() + ms;
      while (Date.now() < until);
    };
    const thrower: TrainerCallback = {
      name: 'thrower',
      onRunStart: () => {
        throw new Error('no tracking server');
      },
      onStepEnd: () => {
        throw new Error('again');
      },
      onEpochEnd: () => {
        throw new Error('and again');
      },
    };
    const rejecter = { name: 'rejecter', onEpochEnd: () => Promise.reject(new Error('upload failed')) } as unknown as TrainerCallback;
    const slow: TrainerCallback = { name: 'slow', onStepEnd: () => busy(15) };
    const mutator: TrainerCallback = {
      name: 'mutator',
      onStepEnd: (e) => {
        (e.values as Record<string, number>)['train/loss'] = 0;
      },
    };
    const configMutator: TrainerCallback = {
      name: 'config-mutator',
      onRunStart: (e) => {
        (e.config.train as { maxSteps: number }).maxSteps = 3;
      },
    };
    const noisy = await run(small(), { callbacks: [thrower, rejecter, slow, mutator, configMutator] });
    await new Promise((r) => setImmediate(r));
    expect(noisy.steps).to.deep.equal(plain.steps);
    expect(noisy.weights).to.deep.equal(plain.weights);
    expect(noisy.lines.filter((l) => l.startsWith('callback'))).to.deep.equal([
      'callback "thrower" failed in onRunStart: no tracking server (its later failures are not reported; the run goes on)',
      // the run's config reaches listeners as a deep-frozen copy: a write is refused, the run keeps its own
      'callback "config-mutator" failed in onRunStart: Cannot assign to read only property \'maxSteps\' of object \'#<Object>\' (its later failures are not reported; the run goes on)',
      // the frozen values refuse the write (strict mode): reported, and nobody sees the change
      'callback "mutator" failed in onStepEnd: Cannot assign to read only property \'train/loss\' of object \'#<Object>\' (its later failures are not reported; the run goes on)',
      'callback "rejecter" failed in onEpochEnd: upload failed (its later failures are not reported; the run goes on)',
    ]);
  });

  it('Should stop a run that a listener prunes, with status "pruned" and the reason in summary.json, and no test evaluation', async () => {
    const pruner: TrainerCallback = {
      name: 'median-pruner',
      onEvaluation: (e, run: RunControl) => {
        if (e.epoch === 1) run.stop({ status: 'pruned', reason: `test/loss ${e.metrics['test/loss'] > 0 ? 'above' : 'below'} the median of earlier trials at epoch 1` });
      },
    };
    const { result, lines, dir } = await run(small(), { callbacks: [pruner] });
    expect(result.status).to.equal('pruned');
    expect(result.steps).to.equal(4);
    const summary = JSON.parse(fs.readFileSync(dir.file('summary.json'), 'utf8'));
    expect(summary.status).to.equal('pruned');
    expect(summary.stop).to.deep.equal({ status: 'pruned', reason: 'test/loss above the median of earlier trials at epoch 1', by: 'median-pruner', step: 4 });
    expect(summary.test).to.equal(undefined);
    expect(lines).to.include('pruned at step 4 by median-pruner: test/loss above the median of earlier trials at epoch 1');
    // stopped at an epoch boundary: its epoch checkpoint is the final state, no final.ckpt
    expect(fs.readdirSync(dir.checkpoints).sort()).to.deep.equal(['epoch-0001.ckpt', 'latest.json']);
  });

  it('Should stop in the middle of an epoch when a listener asks, keep final.ckpt and test it', async () => {
    const budget: TrainerCallback = {
      name: 'step-budget',
      onStepEnd: (e, run) => {
        if (e.step === 3) run.stop({ status: 'stopped', reason: 'budget of 3 steps spent' });
      },
    };
    const { result, dir } = await run(small({ syncEvery: 1 }), { callbacks: [budget] });
    expect(result.status).to.equal('stopped');
    expect(result.steps).to.equal(3);
    const summary = JSON.parse(fs.readFileSync(dir.file('summary.json'), 'utf8'));
    expect(summary.stop).to.deep.equal({ status: 'stopped', reason: 'budget of 3 steps spent', by: 'step-budget', step: 3 });
    expect(summary.test['test/loss']).to.be.a('number');
    expect(loadCheckpoint(path.join(dir.checkpoints, 'final.ckpt')).meta.step).to.equal(3);
  });

  it('Should save a listener\'s state in every checkpoint and give it back when the run resumes', async () => {
    /** Counts the steps it has seen, and the examples. */
    const counter = () => {
      let steps = 0;
      let examples = 0;
      return {
        name: 'counter',
        onStepEnd: (e: StepEndEvent) => {
          steps += 1;
          examples += e.size;
        },
        state: () => ({ steps, examples }),
        loadState: (s: unknown) => ({ steps, examples } = s as { steps: number; examples: number }),
        get seen() {
          return [steps, examples];
        },
      };
    };
    const whole = counter();
    await run(small(), { callbacks: [whole] });
    expect(whole.seen).to.deep.equal([8, 128]);

    const control = { stop: false };
    const first = counter();
    const a = await run(small(), { callbacks: [first], control, onStep: (s) => (control.stop = s === 6) });
    expect(a.result.status).to.equal('interrupted');
    const ck = a.dir.latestCheckpoint()!;
    expect(loadCheckpoint(ck).meta.callbacks).to.deep.equal({ counter: { steps: 6, examples: 96 } });
    const second = counter();
    await run(small(), { callbacks: [second], run: a.dir, resumeFrom: ck });
    expect(second.seen).to.deep.equal([8, 128]);
  });
});
