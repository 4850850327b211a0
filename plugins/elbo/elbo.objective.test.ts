import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, Rng } from '../../core';
import { experimentFromObject } from '../../core/config/experiment';
import { Adam } from '../../core/train/adam';
import { trainableVariables } from '../../core/train/trainer';
import { loadDataset } from '../../core/data';
import { Batcher } from '../../core/data/batcher';
import { DEFAULT_DATA_OPTIONS } from '../../core/data';
import { buildParts, builtins, experimentObject, greyBatch, TINY_IMAGE_INFO } from '../../test/kits/build';
import { describeConformance } from '../../test/kits/conformance';
import { expectThrowExact } from '../../test/data/helpers';

describe('elbo objective', () => {
  describeConformance([
    { title: 'elbo, 1 sample', over: {}, info: TINY_IMAGE_INFO },
    { title: 'elbo, 4 samples', over: { objective: { use: 'elbo', elbo: { samples: 4 } } }, info: TINY_IMAGE_INFO },
  ]);

  it('Should report elbo = -(reconstruction + kl) and loss = -elbo', () => {
    const parts = buildParts();
    const t = parts.objective.terms(greyBatch(4, TINY_IMAGE_INFO), { training: true, rng: Rng.derive(0, 'e'), step: 0 });
    const [loss, rec, kl, elbo] = [t.loss, t.reconstruction, t.kl, t.elbo].map((x) => Array.from(x.dataSync()));
    for (let i = 0; i < 4; i++) {
      expect(elbo[i]).to.be.closeTo(-(rec[i] + kl[i]), 1e-3);
      expect(loss[i]).to.be.closeTo(-elbo[i], 1e-6);
      expect(kl[i]).to.be.at.least(0);
    }
  });

  it('Should agree with the Monte-Carlo KL of the same posterior (2000 samples, rtol 0.05)', () => {
    const parts = buildParts({ latent: { use: 'gaussian', gaussian: { dim: 4 } } });
    const batch = greyBatch(3, TINY_IMAGE_INFO);
    const opts = { training: false, rng: Rng.derive(1, 'kl') };
    // Scaled features move the posterior well away from the prior, so the KL is large enough
    // (several nats) for a relative tolerance to be meaningful.
    const h = tf.mul(parts.model.encoder.encode(batch.x, null, opts) as tf.Tensor2D, 20) as tf.Tensor2D;
    const sample = parts.model.latent.sample(h, 2000, opts);
    const analytic = parts.model.kl(sample, null);
    expect(analytic.kind).to.equal('analytic');
    const mc = tf.mean(tf.reshape(tf.sub(sample.logQ, parts.model.logPrior(sample, null)), [2000, 3]), 0).dataSync();
    const a = analytic.kl.dataSync();
    for (let i = 0; i < 3; i++) {
      expect(a[i]).to.be.above(1);
      expect(Math.abs(mc[i] - a[i]) / a[i]).to.be.below(0.05);
    }
  });

  it('Should reject zero samples with the exact message', () => {
    expectThrowExact(
      () => experimentFromObject(experimentObject({ objective: { use: 'elbo', elbo: { samples: 0 } } }), builtins()),
      ConfigError,
      'objective.elbo.samples: must be an integer >= 1; got 0',
    );
  });

  describe('training @slow', () => {
    it('Should lower the loss on a 2-D mixture of 4 Gaussians in 200 Adam steps (last 20 < 0.8 x first 20)', () => {
      const info = { name: 'synthetic/mixture2d', shape: [1, 1, 2] as [number, number, number], dim: 2, numClasses: 4, condDim: 0 };
      const parts = buildParts(
        {
          encoder: { use: 'mlp', mlp: { hiddenSizes: [32, 32], activation: 'tanh' } },
          decoder: { use: 'mlp', mlp: { hiddenSizes: [32, 32], activation: 'tanh' } },
          latent: { use: 'gaussian', gaussian: { dim: 2 } },
          likelihood: { use: 'gaussian', gaussian: { scale: 'shared' } },
        },
        info,
      );
      const ds = loadDataset({ ...DEFAULT_DATA_OPTIONS, use: 'synthetic', synthetic: { kind: 'mixture2d', size: 256 } }, 0);
      const batcher = new Batcher(ds.train, ds, { batchSize: 64, shuffle: true, seed: 0, dynamicBinarize: false, dropLast: true });
      const vars = trainableVariables(parts.model, parts.objective);
      const adam = new Adam(vars, { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 });
      const keyOf = new Map([...vars].map(([k, v]) => [v.name, k]));
      const losses: number[] = [];
      for (let step = 0; step < 200; step++) {
        const b = batcher.batch(Math.floor(step / 4), step % 4);
        const { value, grads } = tf.variableGrads(
          () => tf.mean(parts.objective.terms({ x: b.x, cond: null }, { training: true, rng: Rng.derive(0, 'step', step), step }).loss) as tf.Scalar,
          [...vars.values()],
        );
        adam.apply(new Map(Object.entries(grads).map(([n, g]) => [keyOf.get(n)!, g])), 1e-2);
        losses.push(value.dataSync()[0]);
        tf.dispose([value, ...Object.values(grads), b.x, b.y ?? []].flat());
      }
      const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
      expect(losses.every(Number.isFinite)).to.equal(true);
      expect(mean(losses.slice(-20))).to.be.below(0.8 * mean(losses.slice(0, 20)));
    });
  });
});
