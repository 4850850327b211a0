import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, Rng, experimentFromObject, type ModelBatch } from '../../core';
import {
  buildParts,
  describeConformance,
  disposeParts,
  experimentObject,
  expectThrowExact,
  gradientsOf,
  greyBatch,
  meanLoss,
  registryOf,
  slotOf,
  TINY_IMAGE_INFO,
  type Parts,
} from '../../testing';
import { betaVaeObjective } from './beta-vae.objective';
import { fixturePlugins } from './beta-vae.fixture';

const plugins = [betaVaeObjective, ...fixturePlugins];

/** Reconstruction with zero logits under the Bernoulli likelihood: 64 data values (8x8) times ln 2. */
const REC = 64 * Math.LN2;

/**
 * KL per dimension of N(loc_j, e^logVar_j) against N(0, 1) for loc = [1, 0, 2, 0],
 * logVar = [0, 0, 0, ln 2]: 0.5 * (loc^2 + e^logVar - logVar - 1) =
 * [0.5, 0, 2, 0.5 * (2 - ln 2 - 1)].
 */
const KL_DIMS = [0.5, 0, 2, 0.5 * (1 - Math.LN2)];
const KL = KL_DIMS.reduce((a, b) => a + b, 0); // 2.6534264

/** The hand-computable model of beta-vae.fixture.ts with the objective's settings `config`. */
function fixedParts(config: Record<string, unknown>, latent: Record<string, unknown> = { loc: [1, 0, 2, 0], logVar: [0, 0, 0, Math.LN2] }, prior = 'standard-normal'): Parts {
  return buildParts(
    {
      encoder: { use: 'identity' },
      latent: { use: 'pixel-scaled', 'pixel-scaled': latent },
      decoder: { use: 'zero-logits' },
      prior: { use: prior },
      likelihood: { use: 'bernoulli' },
      objective: { use: 'beta-vae', 'beta-vae': config },
    },
    TINY_IMAGE_INFO,
    { plugins },
  );
}

/** n rows of 64 values: the first value of row i is firstValues[i], the others 0.3. [n, 64] */
function batchOf(firstValues: number[]): ModelBatch {
  const rows = firstValues.map((v) => [v, ...new Array(63).fill(0.3)]);
  return { x: tf.tensor2d(rows), cond: null };
}

/** The objective's terms on `batch` at `step`, as arrays. */
function termsAt(parts: Parts, batch: ModelBatch, step: number, training = true): Record<string, number[]> {
  const t = parts.objective.terms(batch, { training, rng: Rng.derive(3, 'beta-vae-test'), step });
  const out: Record<string, number[]> = {};
  for (const [k, v] of Object.entries(t)) out[k] = Array.from(v.dataSync());
  tf.dispose(Object.values(t));
  return out;
}

/** The gradient of the mean loss at `step` with respect to the fixture latent's `loc` vector. */
function locGradient(parts: Parts, batch: ModelBatch, step = 0): number[] {
  const g = gradientsOf(() => meanLoss(parts.objective, batch, 2, step), slotOf(parts, 'latent').variables());
  return Array.from(g.get('loc') ?? []);
}

describe('beta-vae objective', () => {
  describeConformance(
    betaVaeObjective,
    [
      { config: {} },
      { config: { beta: 4, samples: 2, klSchedule: { use: 'linear', warmupSteps: 100 } } },
      { config: { beta: 2, klSchedule: { use: 'cyclical', totalSteps: 200, cycles: 2 } } },
      { config: { mode: 'capacity', gamma: 2, klSchedule: { capacityMax: 1, capacitySteps: 0 } } },
      { config: { beta: 1, freeBits: { natsPerGroup: 0.5 } } },
      { config: { beta: 1, freeBits: { natsPerGroup: 1, groupSize: 3, over: 'example' } } },
    ],
    { plugins },
  );

  describe('known values (fixture model: reconstruction 64 ln 2, KL per dimension by hand)', () => {
    const cases: Array<[string, Record<string, unknown>, number, { klWeight: number; klPenalty: number; capacity?: number }]> = [
      // [what, settings, step, expected weight and what it multiplies]
      ['beta 2, constant: weight 2', { beta: 2 }, 0, { klWeight: 2, klPenalty: KL }],
      ['beta 4, linear warm-up over 10 steps, step 4: w = 5 / 10, weight 2', { beta: 4, klSchedule: { use: 'linear', warmupSteps: 10 } }, 4, { klWeight: 2, klPenalty: KL }],
      ['beta 4, linear warm-up over 10 steps, step 0: w = 1 / 10, weight 0.4', { beta: 4, klSchedule: { use: 'linear', warmupSteps: 10 } }, 0, { klWeight: 0.4, klPenalty: KL }],
      ['beta 4, cyclical T=100 M=4 R=0.5, step 30: tau 5 / 25, w 0.4, weight 1.6', { beta: 4, klSchedule: { use: 'cyclical', totalSteps: 100 } }, 30, { klWeight: 1.6, klPenalty: KL }],
      // free bits per dimension, lambda 0.25: max(0.25, [0.5, 0, 2, 0.1534]) = [0.5, 0.25, 2, 0.25], sum 3
      ['free bits 0.25 nats per dimension: clamped KL 0.5 + 0.25 + 2 + 0.25', { beta: 1, freeBits: { natsPerGroup: 0.25 } }, 0, { klWeight: 1, klPenalty: 3 }],
      // groups of 2: [0.5 + 0, 2 + 0.1534] = [0.5, 2.1534]; lambda 1 lifts the first to 1
      ['free bits 1 nat per group of 2: max(1, 0.5) + max(1, 2.1534)', { beta: 1, freeBits: { natsPerGroup: 1, groupSize: 2 } }, 0, { klWeight: 1, klPenalty: 1 + 2 + 0.5 * (1 - Math.LN2) }],
      // one group of 4 dimensions: max(3, 2.6534) = 3; beta 2 doubles it
      ['free bits 3 nats in one group of 4, beta 2: max(3, 2.6534)', { beta: 2, freeBits: { natsPerGroup: 3, groupSize: 4 } }, 0, { klWeight: 2, klPenalty: 3 }],
      ['free bits below every dimension (lambda 0.1, over example): the KL with 0.1 for the two small ones', { beta: 1, freeBits: { natsPerGroup: 0.1, over: 'example' } }, 0, { klWeight: 1, klPenalty: 0.5 + 0.1 + 2 + 0.5 * (1 - Math.LN2) }],
      // capacity: C = 4 * 2 / 8 = 1 at step 2, |2.6534 - 1| = 1.6534, weight gamma = 10
      ['capacity, gamma 10, C_max 4 over 8 steps, step 2: |KL - 1|', { mode: 'capacity', gamma: 10, klSchedule: { capacityMax: 4, capacitySteps: 8 } }, 2, { klWeight: 10, klPenalty: KL - 1, capacity: 1 }],
      // at step 100, C = C_max = 4 > KL: |2.6534 - 4| = 1.3466
      ['capacity, gamma 10, C_max 4 over 8 steps, step 100: |KL - 4|', { mode: 'capacity', gamma: 10, klSchedule: { capacityMax: 4, capacitySteps: 8 } }, 100, { klWeight: 10, klPenalty: 4 - KL, capacity: 4 }],
      // the schedule weights the capacity term too: w = 3 / 6 at step 2
      ['capacity with a linear warm-up over 6 steps, step 2: weight 10 * 0.5', { mode: 'capacity', gamma: 10, klSchedule: { use: 'linear', warmupSteps: 6, capacityMax: 4, capacitySteps: 8 } }, 2, { klWeight: 5, klPenalty: KL - 1, capacity: 1 }],
    ];
    for (const [what, config, step, e] of cases) {
      it(`Should give loss = 64 ln 2 + ${e.klWeight} x ${e.klPenalty.toFixed(4)} for ${what}`, () => {
        const parts = fixedParts(config);
        const batch = batchOf([1, 1, 1]);
        try {
          for (const training of [true, false]) {
            const t = termsAt(parts, batch, step, training);
            for (let i = 0; i < 3; i++) {
              expect(t.reconstruction[i], 'reconstruction').to.be.closeTo(REC, 1e-4);
              expect(t.kl[i], 'kl').to.be.closeTo(KL, 1e-5);
              expect(t.elbo[i], 'elbo').to.be.closeTo(-(REC + KL), 1e-4);
              expect(t.klWeight[i], 'klWeight').to.be.closeTo(e.klWeight, 1e-6);
              expect(t.klPenalty[i], 'klPenalty').to.be.closeTo(e.klPenalty, 1e-5);
              expect(t.loss[i], 'loss').to.be.closeTo(REC + e.klWeight * e.klPenalty, 1e-4);
              if (e.capacity !== undefined) expect(t.capacity[i], 'capacity').to.be.closeTo(e.capacity, 1e-6);
            }
            expect(Object.keys(t).sort()).to.deep.equal(
              ['elbo', 'kl', 'klPenalty', 'klWeight', 'loss', 'reconstruction', ...(e.capacity === undefined ? [] : ['capacity'])].sort(),
            );
          }
        } finally {
          batch.x.dispose();
          disposeParts(parts);
        }
      });
    }

    it('Should give the elbo objective\'s loss, reconstruction, kl and elbo with beta = 1 and a constant schedule (same model seed, batch and draw)', () => {
      const over = { latent: { use: 'gaussian', gaussian: { dim: 3 } } };
      const beta = buildParts({ ...over, objective: { use: 'beta-vae', 'beta-vae': { beta: 1, samples: 2 } } }, TINY_IMAGE_INFO, { plugins });
      const elbo = buildParts({ ...over, objective: { use: 'elbo', elbo: { samples: 2 } } }, TINY_IMAGE_INFO, { plugins });
      const batch = greyBatch(5, TINY_IMAGE_INFO, 7);
      try {
        const b = termsAt(beta, batch, 1234);
        const e = termsAt(elbo, batch, 1234);
        for (const k of ['loss', 'reconstruction', 'kl', 'elbo']) {
          for (let i = 0; i < 5; i++) expect(b[k][i], `${k} of row ${i}`).to.be.closeTo(e[k][i], 1e-5 * Math.max(1, Math.abs(e[k][i])));
        }
        // a real KL, not a trivially equal zero
        expect(Math.min(...b.kl)).to.be.above(0);
        expect(b.klWeight).to.deep.equal([1, 1, 1, 1, 1]);
      } finally {
        tf.dispose([batch.x]);
        disposeParts(beta);
        disposeParts(elbo);
      }
    });
  });

  describe('free bits over the batch and per example (one dimension, loc 2, logVar 0; rows with x_0 = 1 and 0)', () => {
    // KL of the two rows: 0.5 * (2^2 * 1^2) = 2 and 0.5 * 0 = 0; batch mean 1.
    // The mean loss's gradient in loc, where a KL counts: d/dloc mean(0.5 loc^2 x_0^2) = loc * (1 + 0) / 2 = 1.
    const cases: Array<[string, Record<string, unknown>, number[], number]> = [
      // [what, freeBits, klPenalty per row, d mean loss / d loc]
      ['over batch, lambda 1.5 above the batch mean 1: both rows pay 1.5, no gradient', { natsPerGroup: 1.5 }, [1.5, 1.5], 0],
      ['over batch, lambda 0.5 below the batch mean 1: the rows keep their KL [2, 0]', { natsPerGroup: 0.5 }, [2, 0], 1],
      ['per example, lambda 1.5: [max(1.5, 2), max(1.5, 0)], gradient from the first row', { natsPerGroup: 1.5, over: 'example' }, [2, 1.5], 1],
      ['per example, lambda 2.5 above both rows: no gradient', { natsPerGroup: 2.5, over: 'example' }, [2.5, 2.5], 0],
    ];
    for (const [what, freeBits, penalty, grad] of cases) {
      it(`Should give klPenalty [${penalty.join(', ')}] and gradient ${grad} ${what}`, () => {
        const parts = fixedParts({ beta: 1, freeBits }, { loc: [2], logVar: [0] });
        const batch = batchOf([1, 0]);
        try {
          const t = termsAt(parts, batch, 0);
          expect(t.kl[0]).to.be.closeTo(2, 1e-6);
          expect(t.kl[1]).to.be.closeTo(0, 1e-6);
          penalty.forEach((p, i) => expect(t.klPenalty[i], `row ${i}`).to.be.closeTo(p, 1e-6));
          penalty.forEach((p, i) => expect(t.loss[i], `loss of row ${i}`).to.be.closeTo(REC + p, 1e-4));
          const g = locGradient(parts, batch);
          expect(g).to.have.length(1);
          expect(g[0]).to.be.closeTo(grad, 1e-5);
        } finally {
          batch.x.dispose();
          disposeParts(parts);
        }
      });
    }
  });

  describe('capacity gradient (one dimension, loc 2, logVar 0: KL = 0.5 loc^2 = 2; gamma 10)', () => {
    // d/dloc gamma |0.5 loc^2 - C| = gamma * sign(KL - C) * loc = +-20
    const cases: Array<[string, number, number]> = [
      ['pushes the KL up while it is below C = 4', 4, -20],
      ['pushes the KL down once it is above C = 1', 1, 20],
    ];
    for (const [what, cMax, grad] of cases) {
      it(`Should give d loss / d loc = ${grad}: ${what}`, () => {
        const parts = fixedParts({ mode: 'capacity', gamma: 10, klSchedule: { capacityMax: cMax } }, { loc: [2], logVar: [0] });
        const batch = batchOf([1, 1]);
        try {
          expect(locGradient(parts, batch)[0]).to.be.closeTo(grad, 1e-4);
        } finally {
          batch.x.dispose();
          disposeParts(parts);
        }
      });
    }
  });

  describe('config errors', () => {
    const registry = () => registryOf({ plugins });
    const validate = (config: Record<string, unknown>) => () =>
      experimentFromObject(experimentObject({ objective: { use: 'beta-vae', 'beta-vae': config } }), registry());
    const refused: Array<[string, Record<string, unknown>, string]> = [
      ['a negative beta', { beta: -1 }, 'objective.beta-vae.beta: must be a positive number; got -1'],
      ['a zero gamma', { gamma: 0 }, 'objective.beta-vae.gamma: must be a positive number; got 0'],
      ['zero samples', { samples: 0 }, 'objective.beta-vae.samples: must be an integer in [1, 2147483647]; got 0'],
      ['an unknown mode', { mode: 'capacty' }, 'objective.beta-vae.mode: must be one of "beta", "capacity"; got "capacty". Did you mean "capacity"?'],
      ['an unknown schedule', { klSchedule: { use: 'cosine' } }, 'objective.beta-vae.klSchedule.use: must be one of "constant", "linear", "cyclical"; got "cosine"'],
      ['a fractional warm-up', { klSchedule: { warmupSteps: 2.5 } }, 'objective.beta-vae.klSchedule.warmupSteps: must be an integer in [0, 2147483647]; got 2.5'],
      ['a cycle ratio above 1', { klSchedule: { cycleRatio: 1.5 } }, 'objective.beta-vae.klSchedule.cycleRatio: must be a number in [0, 1]; got 1.5'],
      ['zero cycles', { klSchedule: { cycles: 0 } }, 'objective.beta-vae.klSchedule.cycles: must be an integer in [1, 2147483647]; got 0'],
      ['a negative capacity', { klSchedule: { capacityMax: -2 } }, 'objective.beta-vae.klSchedule.capacityMax: must be a number >= 0; got -2'],
      ['negative free bits', { freeBits: { natsPerGroup: -0.5 } }, 'objective.beta-vae.freeBits.natsPerGroup: must be a number >= 0; got -0.5'],
      ['free bits over an unknown axis', { freeBits: { over: 'dataset' } }, 'objective.beta-vae.freeBits.over: must be one of "batch", "example"; got "dataset"'],
    ];
    for (const [what, config, message] of refused) {
      it(`Should refuse ${what} with the exact message`, () => expectThrowExact(validate(config), ConfigError, message));
    }

    it('Should refuse an undeclared key with the strict-mode message', () => {
      expectThrowExact(validate({ temperature: 1 }), ConfigError, UNDECLARED);
    });

    const atConstruction: Array<[string, () => Parts, string]> = [
      [
        'the capacity mode without C_max',
        () => fixedParts({ mode: 'capacity' }),
        'objective.beta-vae.klSchedule.capacityMax: must be a positive number of nats when objective.beta-vae.mode = "capacity" (the target C rises to it); got 0',
      ],
      [
        'free bits with a prior that has no closed-form KL per dimension',
        () => fixedParts({ freeBits: { natsPerGroup: 0.5 } }, undefined, 'no-closed-form'),
        'objective.beta-vae.freeBits.natsPerGroup: free bits need the KL per latent dimension in closed form (Prior.analyticKl with perDim); prior "NoClosedFormPrior" has none. Set objective.beta-vae.freeBits.natsPerGroup = 0, or use a prior with a closed-form KL',
      ],
      [
        'groups of free bits that do not divide the latent',
        () => fixedParts({ freeBits: { natsPerGroup: 0.5, groupSize: 3 } }),
        "objective.beta-vae.freeBits.groupSize: must divide the latent's priorDim (4); got 3",
      ],
      [
        'free bits in the capacity mode',
        () => fixedParts({ mode: 'capacity', freeBits: { natsPerGroup: 0.5 }, klSchedule: { capacityMax: 5 } }),
        'objective.beta-vae.freeBits.natsPerGroup: free bits apply in objective.beta-vae.mode = "beta" only; got 0.5 with mode "capacity"',
      ],
      [
        'a cyclical schedule without its length',
        () => fixedParts({ klSchedule: { use: 'cyclical' } }),
        'objective.beta-vae.klSchedule.totalSteps: must be at least objective.beta-vae.klSchedule.cycles (4) when objective.beta-vae.klSchedule.use = "cyclical"; got 0',
      ],
      [
        'several bad settings at once, listing each',
        () => fixedParts({ mode: 'capacity', klSchedule: { use: 'cyclical', totalSteps: 10, cycleRatio: 0 } }),
        [
          '2 problems',
          '  - objective.beta-vae.klSchedule.cycleRatio: must be in (0, 1] when objective.beta-vae.klSchedule.use = "cyclical"; got 0',
          '  - objective.beta-vae.klSchedule.capacityMax: must be a positive number of nats when objective.beta-vae.mode = "capacity" (the target C rises to it); got 0',
        ].join('\n'),
      ],
    ];
    it('Should refuse free bits on a latent without an exact Gaussian posterior when the objective first runs (the dry run, before training)', () => {
      const parts = fixedParts({ freeBits: { natsPerGroup: 0.5 } }, { loc: [1, 0, 2, 0], logVar: [0, 0, 0, 0], exact: false });
      const batch = batchOf([1, 1]);
      try {
        expectThrowExact(
          () => termsAt(parts, batch, 0),
          ConfigError,
          'objective.beta-vae.freeBits.natsPerGroup: free bits need the KL per latent dimension in closed form; latent "PixelScaledLatent" gives no exact diagonal-Gaussian posterior. Set objective.beta-vae.freeBits.natsPerGroup = 0, or use a Gaussian latent such as "gaussian"',
        );
      } finally {
        batch.x.dispose();
        disposeParts(parts);
      }
    });

    for (const [what, build, message] of atConstruction) {
      it(`Should refuse ${what} when the model is built, with the exact message`, () => expectThrowExact(build, ConfigError, message));
    }
  });
});

/** convict's strict-mode report, as core words it for an undeclared plugin key. */
const UNDECLARED = 'objective.beta-vae.temperature: not declared in the schema of plugin "beta-vae" (keys: mode, beta, gamma, samples, klSchedule, freeBits)';
