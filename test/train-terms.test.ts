/**
 * Objective terms that exist only in training, only on some steps, or only in evaluation
 * (fixture test/fixtures/phase-terms-objective.ts): the trainer and the evaluation log whatever
 * each call returns, with no list of names fixed beforehand.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { experimentFromObject } from '../core/config/experiment';
import { openSession } from '../core/session';
import { train } from '../core/train/trainer';
import { RunDir } from '../core/tracking/run-dir';
import { builtins, experimentObject } from './kits/build';

describe('terms that vary between training and evaluation @slow', () => {
  it('Should log a training-only term on the steps that return it and an evaluation-only term in every evaluation', async () => {
    const reg = builtins();
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    reg.addAll(require('./fixtures/phase-terms-objective').plugins, 'test');
    const raw = experimentObject({
      name: 'terms',
      seed: 2,
      data: { use: 'synthetic', synthetic: { kind: 'shapes', size: 256 } },
      latent: { use: 'gaussian', gaussian: { dim: 2 } },
      objective: { use: 'phase-terms', 'phase-terms': { warmupSteps: 4 } },
      train: { epochs: 2, batchSize: 32, logEvery: 1, syncEvery: 3, progress: 'none' },
      eval: { iwSamples: 0, batchSize: 64, images: false },
    });
    const session = openSession(experimentFromObject(raw, reg));
    const run = RunDir.create(fs.mkdtempSync(path.join(os.tmpdir(), 'vaelab-terms-')), 'terms', 2);
    const result = await train(session, { run, backend: 'cpu', log: () => undefined, handleSignals: false });
    expect(result.status).to.equal('completed');
    const metrics = run.readMetrics();
    const steps = metrics.filter((r) => r.kind === 'step');
    expect(steps).to.have.length(16);
    // kl-weight = (s + 1) / 4 at steps s = 0..3 (records 1..4), absent afterwards
    expect(steps.map((r) => r['train/kl-weight'])).to.deep.equal([0.25, 0.5, 0.75, 1, ...Array(12).fill(undefined)]);
    expect(steps.some((r) => 'train/bits-per-dim' in r)).to.equal(false);
    const epochs = metrics.filter((r) => r.kind === 'epoch');
    // averaged over the 4 steps of epoch 1 that returned it (32 examples each): (0.25 + 0.5 + 0.75 + 1) / 4
    expect(epochs[0]['train/kl-weight']).to.equal(0.625);
    expect('train/kl-weight' in epochs[1]).to.equal(false);
    for (const e of epochs) {
      expect('test/kl-weight' in e).to.equal(false);
      // 14 x 14 = 196 dimensions: bits per dimension = loss / (196 ln 2)
      expect(e['test/bits-per-dim'] as number).to.be.closeTo((e['test/loss'] as number) / (196 * Math.LN2), 1e-4);
    }
    const summary = JSON.parse(fs.readFileSync(run.file('summary.json'), 'utf8'));
    expect(Object.keys(summary.test)).to.deep.equal(['test/loss', 'test/reconstruction', 'test/kl', 'test/bits-per-dim', 'test/active-units']);
  });
});
