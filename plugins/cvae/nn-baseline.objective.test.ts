import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, Rng, experimentFromObject, type DataInfo, type ModelBatch } from '../../core';
import {
  buildParts,
  conformanceChecks,
  disposeBatch,
  disposeParts,
  experimentObject,
  expectThrowExact,
  registryOf,
  trainSteps,
  trainableVariables,
} from '../../testing';
import { conditionalGaussianPrior } from './conditional-gaussian.prior';
import { maskedBernoulliLikelihood } from './masked-bernoulli.likelihood';
import { nnBaselineObjective, type NnBaselineObjective } from './nn-baseline.objective';

const plugins = [conditionalGaussianPrior, maskedBernoulliLikelihood, nnBaselineObjective];
/** 8x8 images, the top half visible (cond), the bottom half the target. */
const QUADRANTS: DataInfo = { name: 'tiny', shape: [8, 8, 1], dim: 64, numClasses: 4, condDim: 64, targetMask: new Float32Array(64).fill(1, 32) };
/** 2x2 images with quadrant 0 visible: pixels 1, 2, 3 are the target. */
const TWO_BY_TWO: DataInfo = { name: 'dots', shape: [2, 2, 1], dim: 4, numClasses: 0, condDim: 4, targetMask: Float32Array.from([0, 1, 1, 1]) };
const BASELINE = {
  likelihood: { use: 'masked-bernoulli' },
  objective: { use: 'nn-baseline' },
};
/** Pyro's layout: the baseline is the conditional prior's guess network. */
const GUESSING = {
  likelihood: { use: 'masked-bernoulli' },
  prior: { use: 'conditional-gaussian', 'conditional-gaussian': { hiddenSizes: [8], guess: 'network', guessHiddenSizes: [16] } },
  objective: { use: 'nn-baseline', 'nn-baseline': { network: 'prior-guess' } },
};

/** The conditioning input of the quadrant task: x where the mask shows it, -1 elsewhere. [n, dim] */
function visiblePart(x: tf.Tensor2D, targetMask: Float32Array): tf.Tensor2D {
  return tf.tidy(() => {
    const hidden = tf.tensor2d(targetMask, [1, targetMask.length]);
    return tf.sub(tf.mul(x, tf.sub(1, hidden)), hidden) as tf.Tensor2D;
  });
}

/** 4 patterns of 0.1 / 0.9 over 8x8 (example i shows pattern i % 4, plus noise), with their visible halves as cond. */
function quadrantData(n: number): ModelBatch {
  const rng = Rng.derive(0, 'nn-baseline-patterns');
  const patterns = Array.from({ length: 4 }, () => Array.from({ length: 64 }, () => (rng.uniform() < 0.5 ? 0.1 : 0.9)));
  const x = tf.tensor2d(Float32Array.from({ length: n * 64 }, (_, k) => patterns[Math.floor(k / 64) % 4][k % 64] + (rng.uniform() - 0.5) * 0.1), [n, 64]);
  return { x, cond: visiblePart(x, QUADRANTS.targetMask!) };
}

const softplus = (l: number) => Math.log1p(Math.exp(l));

describe('nn-baseline objective', () => {
  // The kit's checks but "gradients" and "training": those demand a gradient for every variable of
  // the model, and the baseline trains the decoder alone by design (tested below instead).
  describe('conformance: objective "nn-baseline"', () => {
    for (const check of conformanceChecks(nnBaselineObjective, [{ title: 'top half given, bottom half predicted', info: QUADRANTS, slots: { likelihood: { use: 'masked-bernoulli' } } }], { plugins })) {
      if (check.id === 'gradients' || check.id === 'training') continue;
      it(check.title, () => check.run());
    }
  });

  it('Should score -log p(x_hidden | decoder(0, y)) by hand with an affine decoder set by hand', () => {
    // decoder: params = [z, y] W + b with hiddenSizes []; W = [W_z; W_y], z of 1 dimension.
    const parts = buildParts({ ...BASELINE, latent: { use: 'gaussian', gaussian: { dim: 1 } }, decoder: { use: 'mlp', mlp: { hiddenSizes: [] } } }, TWO_BY_TWO, { plugins });
    const vars = parts.model.decoder.variables();
    // W_z = [5, 5, 5, 5] (must not matter: z = 0); W_y = 2 I; b = 0.5
    const kernel = tf.tensor2d([[5, 5, 5, 5], [2, 0, 0, 0], [0, 2, 0, 0], [0, 0, 2, 0], [0, 0, 0, 2]]);
    vars.get('mlp/dense0/kernel')!.assign(kernel);
    vars.get('mlp/dense0/bias')!.assign(tf.fill([4], 0.5));
    const x = tf.tensor2d([[0.8, 1, 0, 0.5]]);
    const cond = visiblePart(x, TWO_BY_TWO.targetMask!);
    expect(Array.from(cond.dataSync())).to.deep.equal([Math.fround(0.8), -1, -1, -1]);
    const t = parts.objective.terms({ x, cond }, { training: false, rng: Rng.derive(0, 'e'), step: 0 });
    // logits l = 2 y + 0.5 = [2.1, -1.5, -1.5, -1.5]; hidden pixels 1..3 with x = 1, 0, 0.5:
    // -[(1 * -1.5 - softplus(-1.5)) + (0 - softplus(-1.5)) + (0.5 * -1.5 - softplus(-1.5))]
    const expected = -(-1.5 - 0.75 - 3 * softplus(-1.5));
    expect(t.loss.dataSync()[0]).to.be.closeTo(expected, 1e-5);
    expect(t.reconstruction.dataSync()[0]).to.be.closeTo(expected, 1e-5);
    expect(Object.keys(t).sort()).to.deep.equal(['loss', 'reconstruction']);
    tf.dispose([kernel, x, cond, ...Object.values(t)]);
    disposeParts(parts);
  });

  it("Should send gradients to the decoder's weights only, none to its weights on z (z = 0)", () => {
    const parts = buildParts({ ...BASELINE, latent: { use: 'gaussian', gaussian: { dim: 3 } }, decoder: { use: 'mlp', mlp: { hiddenSizes: [8] } } }, QUADRANTS, { plugins });
    const b = quadrantData(6);
    const vars = trainableVariables(parts);
    const { value, grads } = tf.variableGrads(() => tf.mean(parts.objective.terms(b, { training: true, rng: Rng.derive(0, 'g'), step: 0 }).loss) as tf.Scalar, [...vars.values()]);
    const reached = [...vars].filter(([, v]) => grads[v.name]?.dataSync().some((g) => g !== 0)).map(([k]) => k);
    expect(reached.sort()).to.deep.equal(['decoder/mlp/dense0/bias', 'decoder/mlp/dense0/kernel', 'decoder/mlp/dense1/bias', 'decoder/mlp/dense1/kernel']);
    // the first kernel is [z (3 rows); y (64 rows)] x 8: the z rows get exactly zero
    const g0 = grads[vars.get('decoder/mlp/dense0/kernel')!.name].arraySync() as number[][];
    expect(g0.slice(0, 3).flat().every((v) => v === 0)).to.equal(true);
    expect(g0.slice(3).flat().some((v) => v !== 0)).to.equal(true);
    tf.dispose([value, ...Object.values(grads)]);
    disposeBatch(b);
    disposeParts(parts);
  });

  it('Should lower its loss in 150 Adam steps on four patterns given their top halves', function () {
    this.timeout(60000);
    const parts = buildParts({ ...BASELINE, decoder: { use: 'mlp', mlp: { hiddenSizes: [16] } } }, QUADRANTS, { plugins });
    const data = quadrantData(64);
    const losses = trainSteps(parts, data, { steps: 150 });
    expect(losses.every(Number.isFinite)).to.equal(true);
    const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
    expect(mean(losses.slice(-20))).to.be.below(0.8 * mean(losses.slice(0, 20)));
    disposeBatch(data);
    disposeParts(parts);
  });

  it("Should hold the same decoder keys and shapes as the CVAE of the same sizes, so init.from its run with include [decoder/] starts the CVAE's generation network from it", () => {
    const sizes = { latent: { use: 'gaussian', gaussian: { dim: 2 } }, decoder: { use: 'mlp', mlp: { hiddenSizes: [8] } } };
    const baseline = buildParts({ ...BASELINE, ...sizes }, QUADRANTS, { plugins });
    const cvae = buildParts({ ...sizes, likelihood: { use: 'masked-bernoulli' }, prior: { use: 'conditional-gaussian', 'conditional-gaussian': { hiddenSizes: [8] } }, objective: { use: 'elbo' } }, QUADRANTS, { plugins });
    const dec = (p: typeof baseline) => [...trainableVariables(p)].filter(([k]) => k.startsWith('decoder/'));
    expect(dec(cvae).map(([k, v]) => [k, v.shape])).to.deep.equal(dec(baseline).map(([k, v]) => [k, v.shape]));
    // copied over, the CVAE's decoder at z = 0 predicts what the baseline predicts
    const from = new Map(dec(baseline));
    for (const [k, v] of dec(cvae)) v.assign(from.get(k)!);
    const b = quadrantData(3);
    const o = { training: false, rng: Rng.derive(0, 'p'), step: 0 };
    const mine = (baseline.objective as NnBaselineObjective).predict(b.cond!, o);
    const theirs = cvae.model.decoder.decode(tf.zeros([3, 2]), b.cond, { ...o, cond: b.cond });
    expect(Array.from(theirs.dataSync())).to.deep.equal(Array.from(mine.dataSync()));
    tf.dispose([mine, theirs]);
    disposeBatch(b);
    disposeParts(baseline);
    disposeParts(cvae);
  });

  it("Should score -log p(x_hidden | g(y)) with the prior's guess network set by hand (network: prior-guess)", () => {
    const guessing = { ...GUESSING, prior: { use: 'conditional-gaussian', 'conditional-gaussian': { hiddenSizes: [], guess: 'network', guessHiddenSizes: [] } } };
    const parts = buildParts(guessing, TWO_BY_TWO, { plugins });
    const vars = parts.model.prior.variables();
    tf.tidy(() => {
      vars.get('guess/dense0/kernel')!.assign(tf.mul(tf.eye(4), 2));
      vars.get('guess/dense0/bias')!.assign(tf.fill([4], 0.5));
    });
    const x = tf.tensor2d([[0.8, 1, 0, 0.5]]);
    const cond = visiblePart(x, TWO_BY_TWO.targetMask!);
    const t = parts.objective.terms({ x, cond }, { training: false, rng: Rng.derive(0, 'e'), step: 0 });
    // logits 2 y + 0.5 = [2.1, -1.5, -1.5, -1.5], as with the decoder set by hand above
    expect(t.loss.dataSync()[0]).to.be.closeTo(-(-1.5 - 0.75 - 3 * softplus(-1.5)), 1e-5);
    tf.dispose([x, cond, ...Object.values(t)]);
    disposeParts(parts);
  });

  it('Should train the guess network with train.trainable [prior/guess/], lowering its loss, every other variable untouched', function () {
    this.timeout(60000);
    const parts = buildParts(GUESSING, QUADRANTS, { plugins });
    const all = trainableVariables(parts);
    const before = new Map([...all].map(([k, v]) => [k, Array.from(v.dataSync())]));
    const data = quadrantData(64);
    const losses = trainSteps(parts, data, { steps: 150, trainable: ['prior/guess/'] });
    const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
    expect(mean(losses.slice(-20))).to.be.below(0.8 * mean(losses.slice(0, 20)));
    const changed = [...all].filter(([k, v]) => Array.from(v.dataSync()).some((x, i) => x !== before.get(k)![i])).map(([k]) => k);
    expect(changed.sort()).to.deep.equal(['prior/guess/dense0/bias', 'prior/guess/dense0/kernel', 'prior/guess/dense1/bias', 'prior/guess/dense1/kernel']);
    disposeBatch(data);
    disposeParts(parts);
  });

  it('Should refuse an experiment without a conditioning input, and an undeclared key, with exact messages', () => {
    expectThrowExact(
      () => buildParts({ objective: { use: 'nn-baseline' } }, { ...TWO_BY_TWO, condDim: 0, targetMask: undefined }, { plugins }),
      ConfigError,
      'objective.use: "nn-baseline" predicts x from the conditioning input, and data.condition.use is "none"; set data.condition.use to "visible-quadrants" or "labels"',
    );
    expectThrowExact(
      () => experimentFromObject(experimentObject({ objective: { use: 'nn-baseline', 'nn-baseline': { samples: 1 } } }), registryOf({ plugins })),
      ConfigError,
      'objective.nn-baseline.samples: not declared in the schema of plugin "nn-baseline" (keys: network)',
    );
    expectThrowExact(
      () => buildParts({ ...BASELINE, objective: { use: 'nn-baseline', 'nn-baseline': { network: 'prior-guess' } } }, QUADRANTS, { plugins }),
      ConfigError,
      'objective.nn-baseline.network: "prior-guess" trains the guess network of the prior, and this prior has none; set prior.use to "conditional-gaussian" with prior.conditional-gaussian.guess "network", or network to "decoder"',
    );
    expectThrowExact(
      () => buildParts({ ...BASELINE, decoder: { use: 'mlp', mlp: { hiddenSizes: [8], conditioned: false } } }, QUADRANTS, { plugins }),
      ConfigError,
      'objective.nn-baseline.network: "decoder" predicts x from the conditioning input through the decoder, and the decoder leaves it out (decoder.mlp.conditioned is false), so it would predict one image for every input; set decoder.mlp.conditioned to true, or network to "prior-guess" with prior.conditional-gaussian.guess "network"',
    );
  });
});
