/**
 * Data-dependent initialisation (Trainable.initFromData): the trainer hands each part the
 * training split once at the start of a fresh run, from the stream init-data/<slot>, before
 * init.from (whose copied tensors win), and never on resume. Shown with the VampPrior's
 * init: data, its pseudo-inputs frozen (train.trainable) so the checkpoints hold what the hook set.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { experimentFromObject } from '../core/config/experiment';
import { trainingExamples } from '../core/data/examples';
import type { ConditionOptions } from '../core/data/condition';
import { Rng } from '../core/rng';
import { openSession } from '../core/session';
import { loadCheckpoint } from '../core/train/checkpoint';
import { train } from '../core/train/trainer';
import { RunDir } from '../core/tracking/run-dir';
import type { VampPrior } from '../plugins/vamp-prior';
import { builtins, experimentObject } from './kits/build';
import { disposeParts } from '../core/container';

const K = 4;
const experiment = (seed: number, over: Record<string, unknown> = {}) =>
  experimentObject({
    seed,
    data: { use: 'synthetic', synthetic: { kind: 'shapes', size: 40 } },
    latent: { use: 'gaussian', gaussian: { dim: 2 } },
    prior: { use: 'vamp', vamp: { pseudoInputs: K, init: 'data', initStd: 0.01 } },
    train: { epochs: 1, batchSize: 20, progress: 'none', trainable: ['encoder/', 'latent/', 'decoder/'] },
    eval: { iwSamples: 0, images: false },
    ...over,
  });

async function runOf(raw: Record<string, unknown>, root: string, extra: { resumeFrom?: string; run?: RunDir } = {}) {
  const session = openSession(experimentFromObject(raw, builtins()));
  const run = extra.run ?? RunDir.create(root, 'init-data', session.config.seed);
  const lines: string[] = [];
  try {
    await train(session, { run, backend: 'cpu', log: (l) => lines.push(l), handleSignals: false, resumeFrom: extra.resumeFrom });
  } finally {
    disposeParts(session.parts);
  }
  return { run, lines, session };
}

const pseudoInputs = (file: string) => Array.from(loadCheckpoint(file).tensors.get('model/prior/pseudoInputs')!.data);

describe('data-dependent initialisation', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'vaelab-initdata-'));

  it('Should set the pseudo-inputs of a fresh run from the training split, bit for bit as the hook draws them from init-data/prior', async () => {
    const { run, lines, session } = await runOf(experiment(3), root);
    expect(lines.some((l) => l === 'init: prior initialised from the training split')).to.equal(true);
    // the same draw by hand on a new build: the hook with the trainer's stream
    const again = openSession(experimentFromObject(experiment(3), builtins()));
    try {
      const prior = again.parts.model.prior as VampPrior;
      prior.initFromData!(trainingExamples(again.dataset.train, again.dataset, again.config.data.condition as ConditionOptions), Rng.derive(3, 'init-data/prior'));
      expect(pseudoInputs(run.latestCheckpoint()!)).to.deep.equal(Array.from(prior.pseudoInputs.dataSync()));
      // every pseudo-input is a training example within the noise (0.01 per entry)
      const train = session.dataset.train;
      const dim = session.dataset.dim;
      const u = prior.pseudoInputs.arraySync() as number[][];
      for (const row of u) {
        let best = Infinity;
        for (let r = 0; r < train.n; r++) {
          let d = 0;
          for (let j = 0; j < dim; j++) d += (row[j] - train.x[r * dim + j]) ** 2;
          best = Math.min(best, d / dim);
        }
        expect(Math.sqrt(best)).to.be.below(0.02);
      }
    } finally {
      disposeParts(again.parts);
    }
  });

  it('Should not run on resume, and init.from should overwrite what it set', async () => {
    const a = await runOf(experiment(3, { train: { epochs: 2, batchSize: 20, progress: 'none', trainable: ['encoder/', 'latent/', 'decoder/'] } }), root);
    const ck = a.run.file('checkpoints/epoch-0001.ckpt');
    const resumed = await runOf(experiment(3, { train: { epochs: 2, batchSize: 20, progress: 'none', trainable: ['encoder/', 'latent/', 'decoder/'] } }), root, { resumeFrom: ck, run: a.run });
    expect(resumed.lines.some((l) => l.includes('initialised from the training split'))).to.equal(false);
    // a run of another seed would draw other examples; from init.from it holds a's pseudo-inputs
    const fromA = await runOf(experiment(9, { init: { from: a.run.latestCheckpoint()! } }), root);
    const own = await runOf(experiment(9), root);
    const want = pseudoInputs(a.run.latestCheckpoint()!);
    expect(pseudoInputs(fromA.run.latestCheckpoint()!)).to.deep.equal(want);
    expect(pseudoInputs(own.run.latestCheckpoint()!)).to.not.deep.equal(want);
  });
});
