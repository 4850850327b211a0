/**
 * Every experiment file builds its container and trains 2 steps on a slice of its data set, so
 * that no file in experiments/ can rot unnoticed.
 */
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../core/backend/select';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadExperiment } from '../core/config/experiment';
import { openSession } from '../core/session';
import { train } from '../core/train/trainer';
import { RunDir } from '../core/tracking/run-dir';
import { builtins } from './kits/build';

const dir = path.join(__dirname, '..', 'experiments');
const files = fs.readdirSync(dir).filter((f) => /\.(ya?ml|json)$/.test(f)).sort();

describe('experiment files', () => {
  // The backend our machines train on (the cpu backend's conv filter gradient takes seconds per step).
  before(async () => {
    await selectBackend('wasm', { quiet: true });
  });
  after(async () => {
    await tf.setBackend('cpu');
  });

  it('Should find the shipped experiments', () => {
    expect(files).to.include.members(['vae-mnist.yaml', 'conv-vae-mnist.yaml']);
  });

  for (const f of files) {
    it(`Should build ${f} and train 2 steps on a data slice`, async () => {
      const overrides = [
        'train.maxSteps=2',
        'train.batchSize=16',
        'train.progress=none',
        'data.trainLimit=64',
        'data.testLimit=32',
        'data.validationSize=0',
        'eval.iwSamples=2',
        'eval.images=false',
      ];
      const session = openSession(loadExperiment(path.join(dir, f), builtins(), overrides));
      const root = fs.mkdtempSync(path.join(os.tmpdir(), 'vaelab-exp-'));
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
