/**
 * The two log-likelihood estimators against the exact value: with a one-dimensional latent,
 * log p(x | y) = log ∫ p(x | z, y) p(z | y) dz is computed by quadrature on a fine grid of z, for
 * an unconditional VAE and for a CVAE whose prior network gives p(z | y). Both the importance-
 * sampled estimate (proposal q(z|x,y)) and the plain Monte-Carlo one (proposal p(z|y)) must land
 * on it within four standard errors of their sampling spread, measured over independent seeds.
 */
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { experimentFromObject } from '../core/config/experiment';
import type { ConditionOptions } from '../core/data/condition';
import type { DataSplit } from '../core/data/types';
import { disposeModelBatch, iwLogLikelihood, priorLogLikelihood, toModelBatch, type EvalContext } from '../core/eval/evaluate';
import { Batcher } from '../core/data/batcher';
import { openSession, type Session } from '../core/session';
import { builtins, experimentObject } from './kits/build';

function session(over: Record<string, unknown>): Session {
  return openSession(
    experimentFromObject(
      experimentObject({
        name: 'exact',
        seed: 11,
        data: { use: 'synthetic', synthetic: { kind: 'shapes', size: 64 }, binarize: 'dynamic' },
        encoder: { use: 'mlp', mlp: { hiddenSizes: [16] } },
        decoder: { use: 'mlp', mlp: { hiddenSizes: [16] } },
        latent: { use: 'gaussian', gaussian: { dim: 1 } },
        ...over,
      }),
      builtins(),
    ),
  );
}

/** The first n test examples, binarised once (as the evaluators see them). */
function head(s: Session, n: number): DataSplit {
  const t = s.dataset.test;
  const x = t.x.slice(0, n * s.dataset.dim).map((v) => (v > 0.5 ? 1 : 0));
  return { x, labels: t.labels.slice(0, n), n };
}

/** log p(x|y) per example by the trapezoid-free Riemann sum over z in [-12, 12] (the integrand is smooth and vanishes at both ends). */
function exactLogLikelihood(s: Session, split: DataSplit, cond: ConditionOptions): number[] {
  const G = 4801;
  const lo = -12;
  const dz = 24 / (G - 1);
  const b = new Batcher(split, s.dataset, { batchSize: split.n, shuffle: false, seed: 0, dynamicBinarize: false, dropLast: false }).batch(0, 0);
  const mb = toModelBatch(b, cond, s.dataset.shape);
  const m = s.parts.model;
  const out = tf.tidy(() => {
    const z = tf.reshape(tf.linspace(lo, lo + dz * (G - 1), G), [G, 1]) as tf.Tensor2D;
    const rows: tf.Tensor[] = [];
    for (let i = 0; i < split.n; i++) {
      const xi = tf.tile(tf.slice(mb.x, [i, 0], [1, -1]), [G, 1]) as tf.Tensor2D;
      const ci = mb.cond ? (tf.tile(tf.slice(mb.cond, [i, 0], [1, -1]), [G, 1]) as tf.Tensor2D) : null;
      const opts = { training: false, rng: undefined as never, cond: ci };
      const logPx = m.likelihood.logProb(xi, m.decoder.decode(z, ci, opts));
      const logPz = m.prior.logProb(z, ci, opts);
      rows.push(tf.add(tf.logSumExp(tf.add(logPx, logPz)), Math.log(dz)));
    }
    return tf.stack(rows);
  });
  const v = Array.from(out.dataSync());
  out.dispose();
  disposeModelBatch(mb);
  return v;
}

function check(s: Session, cond: ConditionOptions): void {
  const split = head(s, 6);
  const exact = exactLogLikelihood(s, split, cond);
  const ctx = (seed: number): EvalContext => ({ info: s.dataset, seed, condition: cond, stream: 'exact', batchSize: 6, step: 0 });
  for (const [name, fn, k] of [
    ['iw', iwLogLikelihood, 500],
    ['prior', priorLogLikelihood, 4000],
  ] as const) {
    const runs = [1, 2, 3, 4, 5, 6, 7, 8].map((seed) => fn(s.parts.model, split, ctx(seed), k, 250).perExample);
    for (let i = 0; i < split.n; i++) {
      const vals = runs.map((r) => r[i]);
      const mean = vals.reduce((a, b) => a + b, 0) / vals.length;
      const sd = Math.sqrt(vals.reduce((a, b) => a + (b - mean) ** 2, 0) / (vals.length - 1));
      const se = sd / Math.sqrt(vals.length);
      // the log of an unbiased estimate is biased low by about var/2, well inside this bound
      expect(Math.abs(mean - exact[i]), `${name} example ${i}: exact ${exact[i]}, estimates ${vals.join(', ')}`).to.be.below(4 * se + 0.02);
    }
  }
}

describe('log-likelihood estimators against quadrature @slow', () => {
  it('Should give log p(x) of a VAE with a 1-d latent by importance sampling and by sampling the prior', () => {
    check(session({}), { use: 'none' } as ConditionOptions);
  });

  it('Should give log p(x | y) of a CVAE with a prior network p(z | y), by both estimators', () => {
    const s = session({ data: { use: 'synthetic', synthetic: { kind: 'shapes', size: 64 }, binarize: 'dynamic', condition: { use: 'labels' } }, prior: { use: 'conditional-gaussian', 'conditional-gaussian': { hiddenSizes: [8] } } });
    // an untrained prior network starts near N(0, I): move its output so p(z|y) differs from it and by class
    for (const [k, v] of s.parts.model.variables()) if (k.startsWith('prior/')) v.assign(tf.mul(v, 3));
    check(s, s.config.data.condition as ConditionOptions);
  });
});
