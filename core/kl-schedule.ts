/**
 * The KL-weight schedule shared by every objective that weights a KL term (beta-VAE, and any
 * later objective with a KL weight): a schema fragment a plugin nests in its own schema, e.g.
 *
 *   export const mySchema = { beta: { ... }, klSchedule: klScheduleSchema } as const;
 *
 * so that the keys read `objective.<name>.klSchedule.use`, `...klSchedule.warmupSteps`, ..., and
 * pure functions of (config, step) that give the weight w(step) and the capacity target C(step).
 *
 * Weight schedules (`use`):
 * - constant: w = 1.
 * - linear (warm-up, Bowman et al. 2016, https://arxiv.org/abs/1511.06349):
 *   w = min(1, (step + 1) / warmupSteps), and 1 when warmupSteps = 0. The first step already
 *   carries a weight of 1 / warmupSteps, so the KL is never left out entirely.
 * - cyclical (Fu et al. 2019, https://arxiv.org/abs/1903.10145): T = totalSteps split into
 *   M = cycles cycles of ceil(T / M) steps; tau = (step mod ceil(T / M)) / (T / M) in [0, 1);
 *   w = tau / R while tau <= R (R = cycleRatio), then 1 for the rest of the cycle. The paper's
 *   t = 1, 2, ... is step + 1, so w = 0 on the first step of each cycle. After the M cycles
 *   (step >= T), w = 1.
 *
 * Capacity (Burgess et al. 2018, https://arxiv.org/abs/1804.03599): the target KL in nats,
 * C(step) = capacityMax * min(1, step / capacitySteps), and capacityMax when capacitySteps = 0;
 * C rises from 0 at step 0 to capacityMax at step capacitySteps. Whether an objective uses it
 * (and requires capacityMax > 0) is the objective's choice.
 */
import type { ConfigOf, PluginSchema } from './plugin';

/** The weight schedules `klSchedule.use` allows. */
export const KL_SCHEDULES = ['constant', 'linear', 'cyclical'] as const;

/** Schema fragment of the KL-weight schedule and capacity target; nest it under a key of a plugin schema. */
export const klScheduleSchema = {
  use: {
    doc: 'KL weight w(step): constant (1), linear warm-up, or cyclical (Fu et al. 2019)',
    format: KL_SCHEDULES,
    default: 'constant',
  },
  warmupSteps: {
    doc: 'linear: w = min(1, (step + 1) / warmupSteps); 0 = no warm-up (w = 1)',
    format: 'nat',
    default: 0,
  },
  totalSteps: {
    doc: 'cyclical: steps T the cycles span, each cycle ceil(T / cycles) steps; w = 1 after them',
    format: 'nat',
    default: 0,
  },
  cycles: { doc: 'cyclical: number of cycles M', format: 'positive-int', default: 4 },
  cycleRatio: {
    doc: 'cyclical: fraction R of each cycle in which w rises linearly from 0 to 1 (then flat at 1)',
    format: 'probability',
    default: 0.5,
  },
  capacityMax: {
    doc: 'capacity target C_max in nats (Burgess et al. 2018), for objectives that use one',
    format: 'non-negative-number',
    default: 0,
  },
  capacitySteps: {
    doc: 'steps over which the capacity C rises linearly from 0 to capacityMax; 0 = capacityMax from the start',
    format: 'nat',
    default: 0,
  },
} as const satisfies PluginSchema;

/** The validated config of a KL schedule (the sub-tree `klSchedule` of a plugin's config). */
export type KlScheduleConfig = ConfigOf<typeof klScheduleSchema>;

/**
 * Problems of a schedule's settings that no single key's format can see, one line each, naming
 * the keys under `key` (the fragment's dotted path, e.g. "objective.beta-vae.klSchedule"); empty
 * when the settings are usable. A plugin throws them as one ConfigError at construction.
 */
export function klScheduleProblems(cfg: KlScheduleConfig, key: string): string[] {
  const out: string[] = [];
  if (cfg.use === 'cyclical') {
    if (cfg.totalSteps < cfg.cycles) {
      out.push(`${key}.totalSteps: must be at least ${key}.cycles (${cfg.cycles}) when ${key}.use = "cyclical"; got ${cfg.totalSteps}`);
    }
    if (!(cfg.cycleRatio > 0)) {
      out.push(`${key}.cycleRatio: must be in (0, 1] when ${key}.use = "cyclical"; got ${cfg.cycleRatio}`);
    }
  }
  return out;
}

/** The KL weight w(step) in [0, 1] of a schedule at a global optimisation step (0, 1, 2, ...). */
export function weightAt(cfg: KlScheduleConfig, step: number): number {
  switch (cfg.use) {
    case 'constant':
      return 1;
    case 'linear':
      return cfg.warmupSteps === 0 ? 1 : Math.min(1, (step + 1) / cfg.warmupSteps);
    case 'cyclical': {
      const T = cfg.totalSteps;
      const M = cfg.cycles;
      if (step >= T) return 1;
      const tau = (step % Math.ceil(T / M)) / (T / M);
      return tau <= cfg.cycleRatio ? tau / cfg.cycleRatio : 1;
    }
    default:
      throw new Error(`weightAt: unknown schedule ${JSON.stringify((cfg as { use: unknown }).use)}`);
  }
}

/** The capacity target C(step) in nats: capacityMax * min(1, step / capacitySteps). */
export function capacityAt(cfg: KlScheduleConfig, step: number): number {
  if (cfg.capacitySteps === 0) return cfg.capacityMax;
  return cfg.capacityMax * Math.min(1, step / cfg.capacitySteps);
}
