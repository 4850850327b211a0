/**
 * Optimizer groups: which variables each Adam updates. The main group minimises the mean of the
 * objective's `loss` term over every trainable variable that `train.trainable` selects and no
 * parameter group claims; each parameter group an objective declares (`Objective.groups`,
 * FactorVAE's discriminator, an adversarial critic) minimises its own loss over its own
 * variables, with its own Adam (train.optimizer overridden by the group's `optimizer`), on steps
 * where step % every === 0, after the main group's update.
 *
 * Frozen variables (not selected by train.trainable) are in no group: no optimizer holds them and
 * no gradient is computed for them.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { GroupOptimizer, Objective, ParamGroup } from '../contracts';
import { ConfigError, RegistrationError } from '../errors';
import { Adam, type AdamOptions } from './adam';
import { matchesPrefix } from './checkpoint';

/** One set of variables with its own optimizer. */
export interface OptimizerGroup {
  /** "main", or the parameter group's name. */
  readonly name: string;
  /** The group's variables, keyed as in the checkpoint's `model/` namespace. */
  readonly vars: Map<string, tf.Variable>;
  /** The same variables as a list, for tf.variableGrads. */
  readonly list: tf.Variable[];
  /** tfjs variable name -> key. */
  readonly keyOf: Map<string, string>;
  readonly adam: Adam;
  /** Base learning rate (the schedule scales it). */
  readonly learningRate: number;
  /** Steps where step % every === phase update the group. */
  readonly every: number;
  readonly phase: number;
  /** The objective's declaration (null for the main group). */
  readonly def: ParamGroup | null;
  /** Checkpoint prefix of the Adam moments: "adam/" for the main group, "adam/<name>/" for the others. */
  readonly prefix: string;
}

/** train.optimizer as the core schema validates it. */
export interface OptimizerSettings extends AdamOptions {
  learningRate: number;
}

const KEBAB = /^[a-z0-9]+(-[a-z0-9]+)*$/;

function makeGroup(name: string, vars: Map<string, tf.Variable>, settings: OptimizerSettings, every: number, phase: number, def: ParamGroup | null): OptimizerGroup {
  const { learningRate, beta1, beta2, epsilon, weightDecay } = settings;
  const keyOf = new Map<string, string>();
  for (const [k, v] of vars) keyOf.set(v.name, k);
  return {
    name,
    vars,
    list: [...vars.values()],
    keyOf,
    adam: new Adam(vars, { beta1, beta2, epsilon, weightDecay }),
    learningRate,
    every,
    phase,
    def,
    prefix: def ? `adam/${name}/` : 'adam/',
  };
}

/** Checks a group's optimizer overrides; returns problems. */
function optimizerProblems(where: string, o: GroupOptimizer): string[] {
  const out: string[] = [];
  const check = (key: keyof GroupOptimizer, ok: (v: number) => boolean, rule: string) => {
    const v = o[key];
    if (v !== undefined && !(typeof v === 'number' && ok(v))) out.push(`${where} optimizer.${key} must be ${rule}; got ${JSON.stringify(v)}`);
  };
  check('learningRate', (v) => v > 0 && Number.isFinite(v), 'a positive number');
  check('beta1', (v) => v >= 0 && v < 1, 'in [0, 1)');
  check('beta2', (v) => v >= 0 && v < 1, 'in [0, 1)');
  check('epsilon', (v) => v > 0 && Number.isFinite(v), 'a positive number');
  check('weightDecay', (v) => v >= 0 && Number.isFinite(v), 'a non-negative number');
  return out;
}

/** Checks an update schedule (every >= 1, 0 <= phase < every); returns problems. */
function scheduleProblems(where: string, every: number | undefined, phase: number | undefined): string[] {
  const e = every ?? 1;
  if (!Number.isInteger(e) || e < 1) return [`${where} every must be an integer >= 1; got ${JSON.stringify(every)}`];
  const p = phase ?? 0;
  if (!Number.isInteger(p) || p < 0 || p >= e) return [`${where} phase must be an integer in [0, ${e - 1}] (every = ${e}); got ${JSON.stringify(phase)}`];
  return [];
}

/** True when `group` updates at step s. */
export function isDue(group: Pick<OptimizerGroup, 'every' | 'phase'>, s: number): boolean {
  return s % group.every === group.phase;
}

/**
 * The main group and every parameter group of `objective`, restricted to `trainable` (key
 * prefixes; empty = all). `all` holds every trainable variable keyed as in checkpoints
 * (trainableVariables). `objectiveName` is objective.use, for messages.
 */
export function buildGroups(
  all: Map<string, tf.Variable>,
  objective: Objective,
  objectiveName: string,
  settings: OptimizerSettings,
  trainable: readonly string[],
): OptimizerGroup[] {
  const keys = [...all.keys()];
  const unmatched = trainable.filter((p) => !keys.some((k) => k.startsWith(p)));
  if (unmatched.length > 0) {
    const starts = [...new Set(keys.map((k) => `${k.split('/')[0]}/`))];
    throw new ConfigError(
      unmatched.map(
        (p) => `train.trainable: ${JSON.stringify(p)} matches no trainable variable of this experiment (their keys start with ${starts.map((s) => JSON.stringify(s)).join(', ')})`,
      ),
    );
  }
  const keyOfVar = new Map<tf.Variable, string>();
  for (const [k, v] of all) keyOfVar.set(v, k);

  const where = `objective "${objectiveName}".groups`;
  const defs = objective.groups?.() ?? [];
  const problems: string[] = [];
  const claimed = new Map<tf.Variable, string>();
  const names = new Set<string>();
  const groupVars: Array<Map<string, tf.Variable>> = [];
  for (const g of defs) {
    if (typeof g.name !== 'string' || !KEBAB.test(g.name) || g.name === 'main') {
      problems.push(`${where}: group name ${JSON.stringify(g.name)} must be kebab-case and not "main"`);
    } else if (names.has(g.name)) {
      problems.push(`${where}: group "${g.name}" is declared twice`);
    }
    names.add(g.name);
    problems.push(...scheduleProblems(`${where}: group "${g.name}"`, g.every, g.phase));
    problems.push(...optimizerProblems(`${where}: group "${g.name}"`, g.optimizer ?? {}));
    const vars = new Map<string, tf.Variable>();
    for (const [name, v] of g.variables()) {
      const key = keyOfVar.get(v);
      if (key === undefined) {
        problems.push(`${where}: variable "${name}" of group "${g.name}" is not among the objective's variables(); return it from variables() too`);
        continue;
      }
      const other = claimed.get(v);
      if (other !== undefined) {
        problems.push(`${where}: variable "${key}" is in groups "${other}" and "${g.name}"`);
        continue;
      }
      claimed.set(v, g.name);
      if (matchesPrefix(key, trainable)) vars.set(key, v);
    }
    groupVars.push(vars);
  }
  const mainUpdate = objective.mainUpdate ?? {};
  problems.push(...scheduleProblems(`objective "${objectiveName}".mainUpdate:`, mainUpdate.every, mainUpdate.phase));
  if (problems.length > 0) throw new RegistrationError(problems.join('; '));

  const main = new Map<string, tf.Variable>();
  for (const [k, v] of all) if (!claimed.has(v) && matchesPrefix(k, trainable)) main.set(k, v);
  if (main.size === 0) {
    throw new ConfigError(
      `train.trainable: ${JSON.stringify(trainable)} leaves the main group no variable to train (the objective's loss would update nothing)`,
    );
  }
  const groups = [makeGroup('main', main, settings, mainUpdate.every ?? 1, mainUpdate.phase ?? 0, null)];
  defs.forEach((g, i) => {
    // A group whose variables are all frozen in this stage does not step.
    if (groupVars[i].size === 0) return;
    const overrides = Object.fromEntries(Object.entries(g.optimizer ?? {}).filter(([, v]) => v !== undefined));
    groups.push(makeGroup(g.name, groupVars[i], { ...settings, ...overrides }, g.every ?? 1, g.phase ?? 0, g));
  });
  return groups;
}
