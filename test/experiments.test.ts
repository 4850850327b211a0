/**
 * Every experiment file (experiments/ and experiments/baselines/) builds its container and
 * trains 2 steps on a slice of its data set, every stage of a staged file, so that no file can
 * rot unnoticed.
 */
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../core/backend/select';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { applyOverrides, experimentFromObject, readExperimentFile } from '../core/config/experiment';
import { hasStages, planStages } from '../core/config/stages';
import { trainStages } from '../core/train/run-stages';
import { openSession } from '../core/session';
import { train } from '../core/train/trainer';
import { RunDir } from '../core/tracking/run-dir';
import { builtins } from './kits/build';

const dir = path.join(__dirname, '..', 'experiments');
// baselines/reproductions.yaml is the reproduction manifest (test/reproduce.test.ts), not an experiment
const inDir = (d: string) => fs.readdirSync(path.join(dir, d)).filter((f) => /\.(ya?ml|json)$/.test(f) && f !== 'reproductions.yaml').sort().map((f) => path.join(d, f));
const files = [...inDir('.'), ...inDir('baselines')];

const overrides = [
  'train.maxSteps=2',
  'train.batchSize=16',
  'train.progress=none',
  'train.earlyStopping.patience=0',
  'data.trainLimit=64',
  'data.testLimit=32',
  'data.validationSize=0',
  'eval.iwSamples=2',
  'eval.images=false',
];

describe('experiment files', () => {
  // The backend our machines train on (the cpu backend's conv filter gradient takes seconds per step).
  before(async () => {
    await selectBackend('wasm', { quiet: true });
  });
  after(async () => {
    await tf.setBackend('cpu');
  });

  it('Should find the shipped experiments', () => {
    expect(files).to.include.members(['vae-mnist.yaml', 'conv-vae-mnist.yaml', path.join('baselines', 'burda-iwae-k5.yaml')]);
  });

  for (const f of files) {
    it(`Should build ${f} and train 2 steps on a data slice${/^stages:/m.test(fs.readFileSync(path.join(dir, f), 'utf8')) ? ', each stage' : ''}`, async () => {
      const file = path.join(dir, f);
      const read = readExperimentFile(file);
      // A semi-supervised file keeps its labelled subset, which needs enough examples of each class.
      const labelled = Number((read.data as { labelledSize?: unknown } | undefined)?.labelledSize ?? 0);
      const raw = applyOverrides(read, labelled > 0 ? [...overrides, `data.trainLimit=${Math.max(64, 20 * labelled)}`] : overrides);
      const root = fs.mkdtempSync(path.join(os.tmpdir(), 'vaelab-exp-'));
      if (hasStages(raw)) {
        const plan = planStages(raw, builtins(), file);
        const run = RunDir.create(root, plan.stages[0].experiment.config.name, 0);
        const result = await trainStages(plan, { run, registry: builtins(), backend: 'wasm', log: () => undefined, handleSignals: false });
        expect(result.stages.map((st) => [st.name, st.status, st.steps])).to.deep.equal(plan.stages.map((st) => [st.name, 'max-steps', 2]));
        expect(Number.isFinite((result.summary.test as Record<string, number>)['test/loss'])).to.equal(true);
        return;
      }
      const session = openSession(experimentFromObject(raw, builtins(), file));
      const run = RunDir.create(root, session.config.name, session.config.seed);
      const result = await train(session, { run, backend: 'wasm', log: () => undefined, handleSignals: false });
      expect(result.status).to.equal('max-steps');
      expect(result.steps).to.equal(2);
      const summary = JSON.parse(fs.readFileSync(run.file('summary.json'), 'utf8'));
      expect(Number.isFinite(summary.test['test/loss'])).to.equal(true);
      // a run cut mid-epoch keeps the weights its test metrics describe
      expect(run.latestCheckpoint()).to.match(/final\.ckpt$/);
    });
  }
});
