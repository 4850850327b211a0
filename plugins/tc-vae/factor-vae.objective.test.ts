import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, Rng } from '../../core';
import { buildParts, describeConformance, disposeParts, expectThrowExact, experimentOf, greyBatch, TINY_IMAGE_INFO } from '../../testing';
import { factorVaeObjective, permuteDims, type FactorVaeObjective } from './factor-vae.objective';

const plugins = [factorVaeObjective];

describe('factor-vae objective', () => {
  describeConformance(factorVaeObjective, [
    { config: { discriminatorHiddenSizes: [16, 16] } },
    { config: { gamma: 2, discriminatorHiddenSizes: [8], discriminatorLearningRate: 1e-3, klSchedule: { use: 'linear', warmupSteps: 10 } } },
  ]);

  describe('permuteDims', () => {
    // 64 codes whose 3 columns are fully dependent: z_b = [v_b, v_b, -v_b] with distinct v_b.
    const B = 64;
    const v = Array.from({ length: B }, (_, b) => ((b * 37) % B) / 8 - 4);
    const z = tf.tensor2d(v.map((x) => [x, x, -x]));
    const cols = (t: tf.Tensor) => {
      const r = t.arraySync() as number[][];
      return [0, 1, 2].map((d) => r.map((row) => row[d]));
    };
    after(() => z.dispose());

    it('Should keep every column\'s values (the marginals): sorted columns equal', () => {
      const out = permuteDims(z as tf.Tensor2D, Rng.derive(0, 'permute'));
      const before = cols(z);
      const after = cols(out);
      out.dispose();
      for (let d = 0; d < 3; d++) {
        const sort = (a: number[]) => [...a].sort((x, y) => x - y);
        expect(sort(after[d]), `column ${d}`).to.deep.equal(sort(before[d]));
      }
    });

    it('Should break the joint: the rows no longer satisfy z_1 = z_0 and z_2 = -z_0, and columns are permuted independently', () => {
      const out = permuteDims(z as tf.Tensor2D, Rng.derive(0, 'permute'));
      const after = cols(out);
      out.dispose();
      // Under independent uniform permutations each row keeps z_1 = z_0 with probability 1/64:
      // about 1 of 64 rows; with seed 0 far fewer than 16 do.
      const same01 = after[0].filter((x, b) => x === after[1][b]).length;
      const same02 = after[0].filter((x, b) => x === -after[2][b]).length;
      expect(same01).to.be.below(16);
      expect(same02).to.be.below(16);
      // the sample correlation of columns 0 and 1 drops from 1 to near 0 (sd of r ~ 1/sqrt(64) = 0.125)
      const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;
      const [m0, m1] = [mean(after[0]), mean(after[1])];
      const cov = mean(after[0].map((x, b) => (x - m0) * (after[1][b] - m1)));
      const sd = (a: number[], m: number) => Math.sqrt(mean(a.map((x) => (x - m) ** 2)));
      expect(Math.abs(cov / (sd(after[0], m0) * sd(after[1], m1)))).to.be.below(0.5);
    });

    it('Should draw from the Rng it is given: same key, same permutation; another key, another', () => {
      const a = permuteDims(z as tf.Tensor2D, Rng.derive(1, 'permute'));
      const b = permuteDims(z as tf.Tensor2D, Rng.derive(1, 'permute'));
      const c = permuteDims(z as tf.Tensor2D, Rng.derive(2, 'permute'));
      expect(a.arraySync()).to.deep.equal(b.arraySync());
      expect(a.arraySync()).to.not.deep.equal(c.arraySync());
      tf.dispose([a, b, c]);
    });
  });

  describe('with a constant discriminator (every weight 0, output biases [0.7, -0.3])', () => {
    // D(z) has logits [0.7, -0.3] for every code: logit difference d = 1.
    function setup(gamma: number) {
      const parts = buildParts({ objective: { use: 'factor-vae', 'factor-vae': { gamma, discriminatorHiddenSizes: [4] } } }, TINY_IMAGE_INFO, { plugins });
      for (const [name, variable] of parts.objective.variables()) {
        variable.assign(name === 'discriminator/dense1/bias' ? tf.tensor1d([0.7, -0.3]) : tf.zerosLike(variable));
      }
      return parts;
    }

    it('Should give tc = logit_0 - logit_1 = 1, accuracy 1/2 and loss = reconstruction + kl + gamma * 1', () => {
      const parts = setup(3);
      const batch = greyBatch(4, TINY_IMAGE_INFO, 1);
      const t = parts.objective.terms(batch, { training: true, rng: Rng.derive(0, 'fv'), step: 0 });
      const [loss, rec, kl, elbo, tc, acc] = [t.loss, t.reconstruction, t.kl, t.elbo, t.tc, t.discAccuracy].map((x) => Array.from(x.dataSync()));
      tf.dispose([batch.x, ...Object.values(t)]);
      disposeParts(parts);
      for (let i = 0; i < 4; i++) {
        expect(tc[i]).to.be.closeTo(1, 1e-6);
        // real codes called real (d > 0), permuted codes also called real: one of two right
        expect(acc[i]).to.equal(0.5);
        expect(loss[i]).to.be.closeTo(rec[i] + kl[i] + 3 * 1, 1e-4);
        expect(elbo[i]).to.be.closeTo(-(rec[i] + kl[i]), 1e-4);
      }
    });

    it('Should give the discriminator loss 0.5 * (log(1 + e^-1) + log(1 + e^1)) = 0.81326', () => {
      const parts = setup(1);
      const batch = greyBatch(4, TINY_IMAGE_INFO, 1);
      const [group] = (parts.objective as FactorVaeObjective).groups();
      const l = group.loss(batch, { training: true, rng: Rng.derive(0, 'fv'), step: 0 });
      // CE(real, class 0) = softplus(-1) = 0.313262; CE(permuted, class 1) = softplus(1) = 1.313262
      const expected = 0.5 * (Math.log1p(Math.exp(-1)) + Math.log1p(Math.exp(1)));
      expect(l.dataSync()[0]).to.be.closeTo(expected, 1e-5);
      expect(expected).to.be.closeTo(0.81326, 1e-5);
      tf.dispose([batch.x, l]);
      disposeParts(parts);
    });
  });

  it('Should declare the discriminator as one group with Adam beta = (0.5, 0.9) and its own learning rate', () => {
    const parts = buildParts({ objective: { use: 'factor-vae', 'factor-vae': { discriminatorHiddenSizes: [5, 6], discriminatorLearningRate: 2e-4 } } }, TINY_IMAGE_INFO, { plugins });
    const groups = (parts.objective as FactorVaeObjective).groups();
    expect(groups.map((g) => g.name)).to.deep.equal(['discriminator']);
    expect(groups[0].optimizer).to.deep.equal({ learningRate: 2e-4, beta1: 0.5, beta2: 0.9 });
    // priorDim 3 (the default latent) -> 5 -> 6 -> 2 logits
    const shapes = [...groups[0].variables()].map(([k, v]) => `${k} [${v.shape.join(', ')}]`);
    expect(shapes).to.deep.equal(['dense0/kernel [3, 5]', 'dense0/bias [5]', 'dense1/kernel [5, 6]', 'dense1/bias [6]', 'dense2/kernel [6, 2]', 'dense2/bias [2]']);
    disposeParts(parts);
  });

  describe('settings it refuses', () => {
    it('Should refuse a discriminator without hidden layers', () => {
      expectThrowExact(
        () => buildParts({ objective: { use: 'factor-vae', 'factor-vae': { discriminatorHiddenSizes: [] } } }, TINY_IMAGE_INFO, { plugins }),
        ConfigError,
        'objective.factor-vae.discriminatorHiddenSizes: must list at least one hidden layer; got []',
      );
    });

    it('Should refuse a capacity target', () => {
      expectThrowExact(
        () => buildParts({ objective: { use: 'factor-vae', 'factor-vae': { klSchedule: { capacityMax: 2 } } } }, TINY_IMAGE_INFO, { plugins }),
        ConfigError,
        'objective.factor-vae.klSchedule.capacityMax: factor-vae has no capacity target; must be 0; got 2',
      );
    });

    const bad: Array<[string, unknown, string]> = [
      ['gamma', -1, 'objective.factor-vae.gamma: must be a number >= 0; got -1'],
      ['discriminatorLearningRate', 0, 'objective.factor-vae.discriminatorLearningRate: must be a positive number; got 0'],
      ['discriminatorHiddenSizes', [16, 0], 'objective.factor-vae.discriminatorHiddenSizes: must be a list of at most 1024 integers in [1, 2147483647]; got [16,0]'],
      [
        'hiddenSizes',
        [16],
        'objective.factor-vae.hiddenSizes: not declared in the schema of plugin "factor-vae" (keys: gamma, discriminatorHiddenSizes, discriminatorLearningRate, klSchedule)',
      ],
    ];
    for (const [key, value, message] of bad) {
      it(`Should refuse ${key} = ${JSON.stringify(value)} with the exact message`, () => {
        expectThrowExact(() => experimentOf({ objective: { use: 'factor-vae', 'factor-vae': { [key]: value } } }, { plugins }), ConfigError, message);
      });
    }
  });
});
