/**
 * core/kl-schedule.ts: the KL weight w(step) of the constant, linear warm-up and cyclical
 * (Fu et al. 2019) schedules and the capacity target C(step) (Burgess et al. 2018) against values
 * worked out by hand from their definitions; the cross-key problems; the fragment as a nested
 * group of a plugin schema.
 */
import { expect } from 'chai';
import {
  capacityAt,
  definePlugin,
  klScheduleProblems,
  klScheduleSchema,
  schemaKeys,
  weightAt,
  type KlScheduleConfig,
} from '../core';

/** The fragment's defaults with some keys replaced. */
function cfg(over: Partial<KlScheduleConfig>): KlScheduleConfig {
  return {
    use: 'constant',
    warmupSteps: 0,
    totalSteps: 0,
    cycles: 4,
    cycleRatio: 0.5,
    capacityMax: 0,
    capacitySteps: 0,
    ...over,
  };
}

describe('core/kl-schedule', () => {
  describe('weightAt', () => {
    const cases: Array<[string, Partial<KlScheduleConfig>, number, number]> = [
      // [what, settings, step, expected w]
      ['constant at step 0', { use: 'constant' }, 0, 1],
      ['constant at step 10^6', { use: 'constant', warmupSteps: 100 }, 1e6, 1],
      ['linear, 10 steps, first step: (0 + 1) / 10', { use: 'linear', warmupSteps: 10 }, 0, 0.1],
      ['linear, 10 steps, step 4: (4 + 1) / 10', { use: 'linear', warmupSteps: 10 }, 4, 0.5],
      ['linear, 10 steps, step 9: (9 + 1) / 10 reaches 1', { use: 'linear', warmupSteps: 10 }, 9, 1],
      ['linear, 10 steps, step 50: flat at 1', { use: 'linear', warmupSteps: 10 }, 50, 1],
      ['linear, 10000 steps, step 2499: 2500 / 10000', { use: 'linear', warmupSteps: 10000 }, 2499, 0.25],
      ['linear with warmupSteps 0: no warm-up', { use: 'linear', warmupSteps: 0 }, 0, 1],
      // cyclical, T = 100, M = 4, R = 0.5: cycles of 25 steps, tau = (step mod 25) / 25
      ['cyclical T=100 M=4 R=0.5, step 0: tau 0', { use: 'cyclical', totalSteps: 100 }, 0, 0],
      ['cyclical T=100 M=4 R=0.5, step 5: tau 0.2, w = 0.2 / 0.5', { use: 'cyclical', totalSteps: 100 }, 5, 0.4],
      ['cyclical T=100 M=4 R=0.5, step 12: tau 0.48, w = 0.96', { use: 'cyclical', totalSteps: 100 }, 12, 0.96],
      ['cyclical T=100 M=4 R=0.5, step 13: tau 0.52 > R, flat', { use: 'cyclical', totalSteps: 100 }, 13, 1],
      ['cyclical T=100 M=4 R=0.5, step 24: last step of cycle 1', { use: 'cyclical', totalSteps: 100 }, 24, 1],
      ['cyclical T=100 M=4 R=0.5, step 25: cycle 2 starts at 0', { use: 'cyclical', totalSteps: 100 }, 25, 0],
      ['cyclical T=100 M=4 R=0.5, step 80: tau 5 / 25 in cycle 4', { use: 'cyclical', totalSteps: 100 }, 80, 0.4],
      ['cyclical T=100 M=4 R=0.5, step 100: after the cycles', { use: 'cyclical', totalSteps: 100 }, 100, 1],
      ['cyclical T=100 M=4 R=0.5, step 10^5: after the cycles', { use: 'cyclical', totalSteps: 100 }, 1e5, 1],
      // T = 10, M = 3: cycles of ceil(10 / 3) = 4 steps, tau = (step mod 4) / (10 / 3)
      ['cyclical T=10 M=3 R=1, step 3: tau 0.9, w = 0.9', { use: 'cyclical', totalSteps: 10, cycles: 3, cycleRatio: 1 }, 3, 0.9],
      ['cyclical T=10 M=3 R=1, step 4: a new cycle', { use: 'cyclical', totalSteps: 10, cycles: 3, cycleRatio: 1 }, 4, 0],
      ['cyclical T=10 M=3 R=1, step 9: tau 0.3 in the short last cycle', { use: 'cyclical', totalSteps: 10, cycles: 3, cycleRatio: 1 }, 9, 0.3],
      // R = 0.25 with cycles of 8 steps: tau = step / 8 rises by 0.125, w by 0.5 per step
      ['cyclical T=16 M=2 R=0.25, step 1: w = 0.125 / 0.25', { use: 'cyclical', totalSteps: 16, cycles: 2, cycleRatio: 0.25 }, 1, 0.5],
      ['cyclical T=16 M=2 R=0.25, step 2: tau = R exactly', { use: 'cyclical', totalSteps: 16, cycles: 2, cycleRatio: 0.25 }, 2, 1],
      ['cyclical T=16 M=2 R=0.25, step 9: second cycle, w = 0.5', { use: 'cyclical', totalSteps: 16, cycles: 2, cycleRatio: 0.25 }, 9, 0.5],
    ];
    for (const [what, over, step, w] of cases) {
      it(`Should give w = ${w} for ${what}`, () => {
        expect(weightAt(cfg(over), step)).to.be.closeTo(w, 1e-12);
      });
    }

    it('Should average R / 2 + (1 - R) over one cyclical cycle of many steps (the area under the ramp and the flat part)', () => {
      // T = 10000, M = 1: tau = step / 10000; the mean of w over the cycle is the integral of
      // min(tau / R, 1) over [0, 1] = R / 2 + 1 - R, up to a discretisation error of 1 / 10000.
      const c = cfg({ use: 'cyclical', totalSteps: 10000, cycles: 1, cycleRatio: 0.3 });
      let sum = 0;
      for (let s = 0; s < 10000; s++) sum += weightAt(c, s);
      expect(sum / 10000).to.be.closeTo(0.3 / 2 + 0.7, 1e-3);
    });
  });

  describe('capacityAt', () => {
    const cases: Array<[string, Partial<KlScheduleConfig>, number, number]> = [
      // [what, settings, step, expected C in nats]
      ['25 nats over 100000 steps (Burgess et al.), step 0', { capacityMax: 25, capacitySteps: 100000 }, 0, 0],
      ['25 nats over 100000 steps, step 20000: 25 * 0.2', { capacityMax: 25, capacitySteps: 100000 }, 20000, 5],
      ['25 nats over 100000 steps, step 100000', { capacityMax: 25, capacitySteps: 100000 }, 100000, 25],
      ['25 nats over 100000 steps, step 250000: held at C_max', { capacityMax: 25, capacitySteps: 100000 }, 250000, 25],
      ['4 nats over 8 steps, step 2: 4 * 2 / 8', { capacityMax: 4, capacitySteps: 8 }, 2, 1],
      ['capacitySteps 0: C_max from the start', { capacityMax: 3, capacitySteps: 0 }, 0, 3],
      ['no capacity', { capacityMax: 0, capacitySteps: 10 }, 5, 0],
    ];
    for (const [what, over, step, c] of cases) {
      it(`Should give C = ${c} for ${what}`, () => {
        expect(capacityAt(cfg(over), step)).to.be.closeTo(c, 1e-12);
      });
    }
  });

  describe('klScheduleProblems', () => {
    const key = 'objective.x.klSchedule';
    it('Should accept the defaults and every usable setting', () => {
      expect(klScheduleProblems(cfg({}), key)).to.deep.equal([]);
      expect(klScheduleProblems(cfg({ use: 'linear', warmupSteps: 0 }), key)).to.deep.equal([]);
      expect(klScheduleProblems(cfg({ use: 'cyclical', totalSteps: 4, cycles: 4, cycleRatio: 1 }), key)).to.deep.equal([]);
    });
    it('Should name totalSteps when a cyclical schedule has fewer steps than cycles', () => {
      expect(klScheduleProblems(cfg({ use: 'cyclical', totalSteps: 0 }), key)).to.deep.equal([
        'objective.x.klSchedule.totalSteps: must be at least objective.x.klSchedule.cycles (4) when objective.x.klSchedule.use = "cyclical"; got 0',
      ]);
    });
    it('Should name cycleRatio when a cyclical schedule has no ramp', () => {
      expect(klScheduleProblems(cfg({ use: 'cyclical', totalSteps: 100, cycleRatio: 0 }), key)).to.deep.equal([
        'objective.x.klSchedule.cycleRatio: must be in (0, 1] when objective.x.klSchedule.use = "cyclical"; got 0',
      ]);
    });
    it('Should not look at the cyclical keys of another schedule', () => {
      expect(klScheduleProblems(cfg({ use: 'linear', warmupSteps: 5, totalSteps: 0, cycleRatio: 0 }), key)).to.deep.equal([]);
    });
  });

  it('Should nest in a plugin schema as a group of keys that definePlugin accepts', () => {
    const def = definePlugin({
      slot: 'objective',
      name: 'nests-schedule',
      description: 'a schema with the fragment under klSchedule',
      schema: { beta: { doc: 'weight', format: 'positive-number', default: 1 }, klSchedule: klScheduleSchema },
      implementation: class {},
    });
    expect(schemaKeys(def.schema).map(([k]) => k)).to.deep.equal([
      'beta',
      'klSchedule.use',
      'klSchedule.warmupSteps',
      'klSchedule.totalSteps',
      'klSchedule.cycles',
      'klSchedule.cycleRatio',
      'klSchedule.capacityMax',
      'klSchedule.capacitySteps',
    ]);
  });
});
