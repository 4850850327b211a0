/**
 * The conformance kit: the same checks over any plugin, the way ESLint's RuleTester runs the
 * same tests over any rule. The plugin under test is given by its registration (from
 * `definePlugin`) and a list of cases (its config, the data, the rest of the model); the kit
 * builds the rest of the model from other plugins (vaelab's built-ins by default) and checks,
 * for every case:
 *
 * - build: the same seed builds the same variables; `variables()` holds trainable variables
 *   and `state()` non-trainable ones; declared sizes agree with the declared shapes; vaelab's
 *   dry run passes;
 * - every method of the plugin's slot contract (optional ones when its class declares them):
 *   output shapes (from Latent.shape / priorShape, Encoder.outputDim / outputShapes, the data
 *   and Likelihood.paramsPerDim), finite values, the same values for the same seed, other draws
 *   for another seed (sampling methods), no tensor left behind once the outputs are disposed;
 * - gradients: the loss (and each parameter group's loss) reaches every trainable variable with
 *   finite gradients that are not all zero (state buffers are not asked for one);
 * - leaks: a training step (loss and gradients) and an evaluation pass leave no tensor behind;
 * - training (@slow): 200 Adam steps on a tiny synthetic set lower the loss by a fifth.
 *
 * Checks throw node:assert's AssertionError with one-line messages that name the plugin, the
 * method, what was expected and what was received. Nothing here depends on a test runner.
 */
import { AssertionError } from 'node:assert';
import * as tf from '@tensorflow/tfjs-core';
import { checkShapes, latentShape, priorShape } from '../core/check';
import type { Experiment } from '../core/config/experiment';
import { resolveParts, type Parts } from '../core/container';
import type {
  DataInfo,
  DiagGaussianParams,
  ExampleShape,
  Features,
  LatentSample,
  ModelBatch,
  PassOptions,
  Slot,
  Trainable,
} from '../core/contracts';
import { VaelabError } from '../core/errors';
import { diagGaussianLogProb, tileSamples } from '../core/math';
import type { PluginDefinition } from '../core/plugin';
import { Rng } from '../core/rng';
import { buildGroups, type OptimizerGroup } from '../core/train/groups';
import {
  DEFAULT_EXPERIMENT,
  TINY_IMAGE_INFO,
  disposeBatch,
  disposeParts,
  experimentOf,
  greyBatch,
  slotOf,
  syntheticData,
  trainSteps,
  trainableVariables,
  type PluginSet,
} from './build';

/** One configuration of the plugin under test, and what it runs in. */
export interface ConformanceCase {
  /** Shown in test titles; default: the config as JSON, and the data when it is not the default. */
  title?: string;
  /** The plugin's own config sub-tree (keys of its schema); default: the schema's defaults. */
  config?: Record<string, unknown>;
  /**
   * The rest of the model, as experiment entries that replace the base's, e.g.
   * `{ latent: { use: 'gaussian', gaussian: { dim: 2 } } }`. The plugin's own slot is set by the kit.
   */
  slots?: Record<string, unknown>;
  /** The data the case runs on (no data set is loaded); default TINY_IMAGE_INFO (8x8x1, 4 classes). */
  info?: DataInfo;
  /** Run the @slow training check for this case (default true). */
  training?: boolean;
}

/** Sampling methods whose draws the kit expects to change with the seed. */
export type SamplingMethod = 'Latent.sample' | 'Prior.sample' | 'Likelihood.sample';

/** How the kit builds the rest of the model. */
export interface ConformanceOptions extends PluginSet {
  /**
   * The experiment every case starts from (slot selections and the seed); default
   * DEFAULT_EXPERIMENT, a small MLP VAE on vaelab's built-in plugins. Pass one when `builtins`
   * does not hold those plugins.
   */
  base?: Record<string, unknown>;
  /**
   * Sampling methods of the plugin that draw nothing (a vector-quantised latent's sample is its
   * nearest codeword): for these the kit demands the same values under another seed instead of
   * other draws.
   */
  deterministic?: readonly SamplingMethod[];
}

/** One check: a title for any test runner, and a function that throws an AssertionError when the plugin fails it. */
export interface ConformanceCheck {
  /** Full title: plugin, case and check. */
  title: string;
  /** The plugin, as `slot "name"`. */
  plugin: string;
  /** The case title. */
  case: string;
  /** What is checked, e.g. `Prior.sample: [n, ...priorShape], finite, seeded, no leaks`. */
  name: string;
  /** Stable id: "build", "<Contract>.<method>" (e.g. "Prior.sample"), "gradients", "leaks" or "training". */
  id: string;
  /** True for the training check (seconds, not milliseconds). */
  slow: boolean;
  run(): void;
}

/** Rows of a batch in the method checks. */
const N = 4;
/** Samples per input in Latent.sample (S > 1, to check the sample-major layout). */
const S = 3;
/** Draws asked of Prior.sample (unlike N, so that a prior that returns N rows is caught). */
const DRAWS = 5;
/** Monte-Carlo draws per example when checking analyticKl. */
const KL_DRAWS = 2000;
const TRAIN = { steps: 200, window: 20, examples: 64, batchSize: 16, learningRate: 1e-2 } as const;

const show = (s: readonly number[]) => `[${s.join(', ')}]`;

function fail(message: string): never {
  throw new AssertionError({ message });
}

function describeValue(v: unknown): string {
  if (v instanceof tf.Tensor) return `a tensor ${show(v.shape)}`;
  if (Array.isArray(v)) return `a list of ${v.length}`;
  if (v === null || v === undefined) return String(v);
  return typeof v;
}

function sameShape(t: tf.Tensor, want: readonly number[]): boolean {
  return t.rank === want.length && t.shape.every((d, i) => d === want[i]);
}

const prod = (s: ExampleShape) => s.reduce((p, d) => p * d, 1);

/** Every tensor in a value (tensors, arrays, plain objects), with its path ("z", "posterior.loc", "1"). */
function tensorsIn(v: unknown, path = '', out: Array<[string, tf.Tensor]> = []): Array<[string, tf.Tensor]> {
  if (v instanceof tf.Tensor) out.push([path, v]);
  else if (Array.isArray(v)) v.forEach((x, i) => tensorsIn(x, path ? `${path}.${i}` : `${i}`, out));
  else if (v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    for (const [k, x] of Object.entries(v)) tensorsIn(x, path ? `${path}.${k}` : k, out);
  }
  return out;
}

/** Disposes every tensor in the values, each once, never a variable (a method may return one of its own). */
function disposeAll(...values: unknown[]): void {
  const set = new Set<tf.Tensor>();
  for (const v of values) for (const [, t] of tensorsIn(v)) if (!(t instanceof tf.Variable)) set.add(t);
  for (const t of set) t.dispose();
}

function cloneAll<T>(v: T): T {
  if (v instanceof tf.Tensor) return tf.clone(v) as T;
  if (Array.isArray(v)) return v.map(cloneAll) as T;
  return v;
}

/** The first entry where two arrays differ, or -1. */
function firstDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

function firstNonFinite(t: tf.Tensor): { index: number; value: number } | null {
  if (t.dtype !== 'float32') return null;
  const v = t.dataSync();
  for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i])) return { index: i, value: v[i] };
  return null;
}

/** Asserts a tensor's shape and, for float tensors, finite values. `what` names the output ("z "), or is "". */
function expectTensor(label: string, what: string, t: unknown, want: readonly number[], why: string): void {
  if (!(t instanceof tf.Tensor)) fail(`${label}: ${what}must be a tensor ${show(want)} (${why}); got ${describeValue(t)}`);
  if (!sameShape(t, want)) fail(`${label}: ${what}must be ${show(want)} (${why}); got ${show(t.shape)}`);
  const bad = firstNonFinite(t);
  if (bad) fail(`${label}: ${what}must be finite; got ${bad.value} at entry ${bad.index} of ${show(t.shape)}`);
}

/** The values of every tensor of an output, by path. */
function valuesOf(out: unknown): Map<string, { shape: number[]; values: ArrayLike<number> }> {
  return new Map(tensorsIn(out).map(([p, t]) => [p, { shape: t.shape, values: t.dataSync() as ArrayLike<number> }]));
}

/** The seed streams of the method checks: the same (seed, method) key always gives the same draws. */
const rngOf = (seed: number, method: string) => Rng.derive(seed, `conformance/${method}`);

/** One call of a method on fresh copies of its inputs: its outputs, and the copies to dispose. */
interface Call {
  out: unknown;
  inputs: unknown[];
}

/** How to check one method. */
interface MethodSpec {
  /** `prior "laplace".sample`. */
  label: string;
  /** Contract method name, e.g. "Prior.sample" (for options.deterministic). */
  method: string;
  /** Pass modes to run in: training true and false for methods that take PassOptions; [null] for those that do not. */
  modes: Array<boolean | null>;
  call(seed: number, training: boolean): Call;
  /** Shapes and finiteness of one call's outputs. */
  validate(out: unknown, label: string): void;
  /** Paths of the outputs that are random draws (must change with the seed), for sampling methods. */
  draws?: string[];
}

/**
 * Runs a method check: for each mode, a first call (validated), a second with the same seed
 * (identical values), one with another seed (other draws, for sampling methods), then a call
 * between two counts of tf.memory().numTensors. State buffers are restored before every call,
 * so a method that updates them in training is called on the same state each time.
 */
function runMethod(spec: MethodSpec, restore: () => void, deterministic: readonly string[]): void {
  for (const mode of spec.modes) {
    const training = mode ?? false;
    const label = mode === null ? spec.label : `${spec.label} in ${mode ? 'training' : 'evaluation'}`;
    const once = (seed: number): Call => {
      restore();
      try {
        return spec.call(seed, training);
      } catch (e) {
        if (e instanceof AssertionError) throw e;
        const err = new AssertionError({ message: `${label}: threw ${(e as Error).name}: ${String((e as Error).message).split('\n')[0]}` });
        (err as { cause?: unknown }).cause = e;
        throw err;
      }
    };
    const first = once(1);
    let a: ReturnType<typeof valuesOf>;
    try {
      spec.validate(first.out, label);
      a = valuesOf(first.out);
    } finally {
      disposeAll(first.out, first.inputs);
    }
    const again = once(1);
    const b = valuesOf(again.out);
    disposeAll(again.out, again.inputs);
    for (const [path, va] of a) {
      const vb = b.get(path);
      const i = vb ? firstDifference(va.values, vb.values) : 0;
      if (i >= 0) {
        fail(
          `${label}: must give the same values for the same seed; ${path || 'the output'} differs between two calls with seed 1 at entry ${i} of ${show(va.shape)}: ${va.values[i]} then ${vb?.values[i]}`,
        );
      }
    }
    if (spec.draws) {
      const other = once(2);
      const c = valuesOf(other.out);
      disposeAll(other.out, other.inputs);
      const fixed = deterministic.includes(spec.method);
      for (const path of spec.draws) {
        const va = a.get(path)!;
        const vc = c.get(path);
        const i = vc ? firstDifference(va.values, vc.values) : 0;
        if (fixed && i >= 0) {
          fail(
            `${label}: is listed in options.deterministic, so another seed must give the same values; ${path || 'the output'} differs between seeds 1 and 2 at entry ${i} of ${show(va.shape)}: ${va.values[i]} then ${vc?.values[i]}`,
          );
        }
        if (!fixed && i < 0) {
          fail(
            `${label}: must draw from the Rng it is given; got the same ${path || 'values'} for seeds 1 and 2 (all ${va.values.length} entries of ${show(va.shape)}). List ${spec.method} in options.deterministic if it draws nothing`,
          );
        }
      }
    }
    restore();
    const before = tf.memory().numTensors;
    const last = once(1);
    disposeAll(last.out, last.inputs);
    const leaked = tf.memory().numTensors - before;
    if (leaked !== 0) {
      fail(
        `${label}: ${leaked > 0 ? `leaks ${leaked} tensor${leaked === 1 ? '' : 's'}` : `disposes ${-leaked} tensor${leaked === -1 ? '' : 's'} it does not own`} per call; tf.memory().numTensors must be the same before a call and after disposing its inputs and outputs (after a warm-up call)`,
      );
    }
  }
  restore();
}

/** Saves every state buffer now; the returned function puts the saved values back. */
function stateKeeper(parts: Parts): { restore: () => void; dispose: () => void } {
  const vars = new Set<tf.Variable>([...parts.model.state().values(), ...(parts.objective.state?.().values() ?? [])]);
  const saved = [...vars].map((v) => [v, tf.clone(v)] as const);
  return {
    restore: () => {
      for (const [v, s] of saved) v.assign(s);
    },
    dispose: () => {
      for (const [, s] of saved) s.dispose();
    },
  };
}

/** Optional methods of each contract, checked when the plugin's class declares them. */
const OPTIONAL: Record<Slot, string[]> = {
  encoder: [],
  latent: ['posterior', 'posteriorStats', 'generate'],
  decoder: [],
  prior: ['analyticKl'],
  likelihood: [],
  objective: ['groups'],
};

function declares(def: PluginDefinition, method: string): boolean {
  return typeof (def.implementation.prototype as Record<string, unknown>)[method] === 'function';
}

/** The checks of one case, built lazily: nothing is built until a check runs. */
class CaseChecks {
  readonly where: string;
  readonly info: DataInfo;
  private exp: Experiment | null = null;
  constructor(
    readonly def: PluginDefinition,
    readonly c: ConformanceCase,
    readonly options: ConformanceOptions,
  ) {
    this.where = `${def.slot} "${def.name}"`;
    this.info = c.info ?? TINY_IMAGE_INFO;
  }

  /** The validated experiment of the case (composed once). */
  experiment(): Experiment {
    if (!this.exp) {
      const over: Record<string, unknown> = {
        ...(this.options.base ?? DEFAULT_EXPERIMENT),
        ...(this.c.slots ?? {}),
        [this.def.slot]: { use: this.def.name, ...(this.c.config ? { [this.def.name]: this.c.config } : {}) },
      };
      const others = (this.options.plugins ?? []).filter((d) => !(d.slot === this.def.slot && d.name === this.def.name));
      this.exp = experimentOf(over, { builtins: this.options.builtins, plugins: [...others, this.def] });
    }
    return this.exp;
  }

  /** Builds fresh parts, runs `body` on them, then frees their variables. */
  withParts(body: (parts: Parts) => void): void {
    const parts = resolveParts(this.experiment(), this.info);
    try {
      body(parts);
    } finally {
      disposeParts(parts);
    }
  }

  /** Runs `body` with fresh parts, a saved copy of their state, and persistent inputs made by `make`. */
  withInputs<I>(make: (parts: Parts) => I, body: (parts: Parts, inputs: I, restore: () => void) => void): void {
    this.withParts((parts) => {
      const keeper = stateKeeper(parts);
      let inputs: I | undefined;
      try {
        inputs = tf.tidy(() => make(parts) as unknown as tf.TensorContainer) as unknown as I;
        keeper.restore();
        body(parts, inputs, keeper.restore);
      } finally {
        keeper.restore();
        keeper.dispose();
        if (inputs !== undefined) disposeAll(inputs);
      }
    });
  }

  private opts(seed: number, method: string, training: boolean, cond: tf.Tensor2D | null): PassOptions {
    return { training, rng: rngOf(seed, method), cond };
  }

  private batch(n: number): ModelBatch {
    return greyBatch(n, this.info, 1, true);
  }

  /** The checks of this case, for the plugin's slot. */
  checks(): Array<Omit<ConformanceCheck, 'title' | 'plugin' | 'case'>> {
    const out: Array<Omit<ConformanceCheck, 'title' | 'plugin' | 'case'>> = [];
    const add = (id: string, name: string, run: () => void, slow = false) => out.push({ id, name, run, slow });
    add('build', 'build: the same seed gives the same variables, variables() trainable and state() not, declared sizes agree, the dry run passes', () => this.build());
    const has = (m: string) => declares(this.def, m);
    switch (this.def.slot) {
      case 'encoder':
        add('Encoder.encode', 'Encoder.encode: [N, outputDim] or one tensor per outputShapes, finite, seeded, no leaks', () => this.encode());
        break;
      case 'latent':
        add('Latent.sample', 'Latent.sample: z, priorZ, logQ and posteriors of the declared shapes, finite, seeded draws, no leaks', () => this.latentSample());
        add('Latent.mode', 'Latent.mode: [N, ...shape], finite, seeded, no leaks', () => this.latentMode());
        if (has('posterior')) add('Latent.posterior', 'Latent.posterior: loc and logVar [N, priorDim], finite, the posterior of sample, no leaks', () => this.latentPosterior('posterior'));
        if (has('posteriorStats')) add('Latent.posteriorStats', 'Latent.posteriorStats: loc and logVar [N, priorDim], finite, seeded, no leaks', () => this.latentPosterior('posteriorStats'));
        if (has('generate')) add('Latent.generate', 'Latent.generate: [n, ...shape] from prior draws [n, ...priorShape], finite, seeded, no leaks', () => this.latentGenerate());
        else add('Latent.generate', 'Latent.generate (absent): priorShape equals shape, so prior draws can be decoded as they are', () => this.noGenerate());
        break;
      case 'decoder':
        add('Decoder.decode', 'Decoder.decode: [N, dataDim * paramsPerDim], finite, seeded, no leaks', () => this.decode());
        break;
      case 'prior':
        add('Prior.logProb', 'Prior.logProb: [N], finite on posterior and prior draws, seeded, no leaks', () => this.priorLogProb());
        add('Prior.sample', 'Prior.sample: [n, ...priorShape], finite, the same draws for the same seed and others for another, no leaks', () => this.priorSample());
        if (has('analyticKl')) {
          add('Prior.analyticKl', 'Prior.analyticKl: [B] and [B, priorDim] with perDim, finite, >= 0, rows of perDim sum to the total, Monte Carlo agrees, no leaks', () => this.analyticKl());
        }
        break;
      case 'likelihood':
        add('Likelihood.logProb', 'Likelihood.logProb: [N], finite, repeatable, no leaks', () => this.likelihoodMethod('logProb'));
        add('Likelihood.mean', 'Likelihood.mean: [N, dataDim], finite, repeatable, no leaks', () => this.likelihoodMethod('mean'));
        add('Likelihood.sample', 'Likelihood.sample: [N, dataDim], finite, the same draws for the same seed and others for another, no leaks', () => this.likelihoodMethod('sample'));
        break;
      case 'objective':
        add('Objective.terms', 'Objective.terms: a "loss" term, every term [B] and finite, in training and evaluation, seeded, no leaks', () => this.terms());
        if (has('groups')) add('Objective.groups', 'Objective.groups: valid groups, each loss a finite scalar, seeded, no leaks', () => this.groups());
        break;
    }
    add('gradients', 'gradients: the loss (and each group loss) reaches every trainable variable, finite and not all zero', () => this.gradients());
    add('leaks', 'leaks: a training step (loss and gradients) and an evaluation pass leave no tensor behind', () => this.leaks());
    if (this.c.training !== false) {
      add(
        'training',
        `training: ${TRAIN.steps} Adam steps on ${TRAIN.examples} synthetic examples lower the loss (mean of the last ${TRAIN.window} steps at most 0.8 x the first ${TRAIN.window}'s)`,
        () => this.training(),
        true,
      );
    }
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // build

  private build(): void {
    const where = this.where;
    const snapshot = (parts: Parts) => {
      const p = slotOf(parts, this.def.slot);
      const entries = [...p.variables(), ...(p.state?.() ?? new Map())];
      return new Map(entries.map(([k, v]) => [k, { shape: v.shape, values: v.dataSync().slice() }]));
    };
    let first = new Map<string, { shape: number[]; values: ArrayLike<number> }>();
    this.withParts((parts) => {
      first = snapshot(parts);
      const p = slotOf(parts, this.def.slot);
      this.checkOwnership(p);
      this.checkOptionalMethods(p);
      this.checkSizes(parts);
      const exp = this.experiment();
      checkShapes(parts.model, parts.objective, this.info, exp.config, exp.registry);
    });
    this.withParts((parts) => {
      const second = snapshot(parts);
      const keys = (m: Map<string, unknown>) => [...m.keys()].sort().join(', ');
      if (keys(first) !== keys(second)) {
        fail(`${where}: two builds with the same seed must have the same variables; got (${keys(first)}) then (${keys(second)})`);
      }
      for (const [k, a] of first) {
        const b = second.get(k)!;
        const i = firstDifference(a.values, b.values);
        if (i >= 0) {
          fail(
            `${where}: variable "${k}" must be the same in two builds with the same seed (initialise from the seed, e.g. initRng(seed, slot, name)); it differs at entry ${i} of ${show(a.shape)}: ${a.values[i]} then ${b.values[i]}`,
          );
        }
      }
    });
  }

  private checkOwnership(p: Trainable): void {
    const vars = p.variables();
    const state = p.state?.() ?? new Map<string, tf.Variable>();
    for (const [k, v] of vars) {
      if (!v.trainable) fail(`${this.where}.variables: "${k}" must be trainable (put buffers updated without gradients in state()); got trainable = false`);
    }
    const inVars = new Set(vars.values());
    for (const [k, v] of state) {
      if (v.trainable) {
        fail(`${this.where}.state: buffer "${k}" must not be trainable (make it with tf.variable(value, false); no optimizer updates state); got trainable = true`);
      }
      if (inVars.has(v)) fail(`${this.where}.state: buffer "${k}" is also in variables(); a variable is either trainable or state`);
    }
  }

  private checkOptionalMethods(p: Trainable): void {
    for (const m of OPTIONAL[this.def.slot]) {
      const onInstance = typeof (p as unknown as Record<string, unknown>)[m] === 'function';
      if (onInstance && !declares(this.def, m)) {
        fail(`${this.where}: ${m} is set on the instance but not declared as a method of its class ${this.def.implementation.name}; declare it as a method so that the kit checks it`);
      }
    }
  }

  private checkSizes(parts: Parts): void {
    const where = this.where;
    const positiveInt = (v: unknown) => Number.isInteger(v) && (v as number) > 0;
    if (this.def.slot === 'encoder') {
      const e = parts.model.encoder;
      if (!positiveInt(e.outputDim)) fail(`${where}: outputDim must be a positive integer; got ${e.outputDim}`);
      if (e.outputShapes) {
        if (e.outputShapes.length === 0) fail(`${where}: outputShapes must list at least one feature shape; got []`);
        const top = e.outputShapes[e.outputShapes.length - 1];
        if (prod(top) !== e.outputDim) fail(`${where}: outputDim must be the flat size of the last of outputShapes, ${show(top)} = ${prod(top)}; got ${e.outputDim}`);
      }
    }
    if (this.def.slot === 'latent') {
      const l = parts.model.latent;
      if (!positiveInt(l.dim)) fail(`${where}: dim must be a positive integer; got ${l.dim}`);
      if (!positiveInt(l.priorDim)) fail(`${where}: priorDim must be a positive integer; got ${l.priorDim}`);
      if (prod(latentShape(l)) !== l.dim) fail(`${where}: dim must be the product of shape ${show(latentShape(l))} = ${prod(latentShape(l))}; got ${l.dim}`);
      if (prod(priorShape(l)) !== l.priorDim) {
        fail(`${where}: priorDim must be the product of priorShape ${show(priorShape(l))} = ${prod(priorShape(l))}; got ${l.priorDim}`);
      }
    }
    if (this.def.slot === 'likelihood') {
      const ppd = parts.model.likelihood.paramsPerDim;
      if (!positiveInt(ppd)) fail(`${where}: paramsPerDim must be a positive integer; got ${ppd}`);
    }
  }

  // -------------------------------------------------------------------------------------------
  // slot methods

  /** Why the latent's shapes are what they are, for messages. */
  private latentWhy(parts: Parts, which: 'shape' | 'priorShape'): string {
    const l = parts.model.latent;
    return `latent "${this.use('latent')}" ${which} ${show(which === 'shape' ? latentShape(l) : priorShape(l))}`;
  }

  /** The plugin the case selects for a slot. */
  private use(slot: Slot): string {
    return (this.experiment().config[slot] as { use: string }).use;
  }

  private encode(): void {
    this.withInputs(
      () => this.batch(N),
      (parts, b, restore) => {
        const enc = parts.model.encoder;
        const label = `${this.where}.encode`;
        runMethod(
          {
            label,
            method: 'Encoder.encode',
            modes: [true, false],
            call: (seed, training) => {
              const x = tf.clone(b.x);
              const cond = cloneAll(b.cond);
              return { out: enc.encode(x, cond, this.opts(seed, 'encode', training, cond)), inputs: [x, cond] };
            },
            validate: (h, l) => {
              if (enc.outputShapes) {
                const want = enc.outputShapes;
                if (!Array.isArray(h) || h.length !== want.length) {
                  fail(`${l}: must return a list of ${want.length} feature tensors (outputShapes ${want.map(show).join(', ')}); got ${describeValue(h)}`);
                }
                (h as tf.Tensor[]).forEach((t, i) => expectTensor(l, `feature ${i} `, t, [N, ...want[i]], `[N, ...outputShapes[${i}]] for N = ${N}`));
              } else {
                if (Array.isArray(h)) fail(`${l}: must return one tensor [${N}, ${enc.outputDim}] (declare outputShapes to return several); got a list of ${h.length}`);
                expectTensor(l, '', h, [N, enc.outputDim], `[N, outputDim] for N = ${N}`);
              }
            },
          },
          restore,
          this.options.deterministic ?? [],
        );
      },
    );
  }

  /** Encoder features of a batch of N, computed once for the latent checks. */
  private features(parts: Parts, b: ModelBatch): Features {
    return parts.model.encoder.encode(b.x, b.cond, this.opts(0, 'features', false, b.cond));
  }

  private validateGaussian(label: string, what: string, q: DiagGaussianParams | undefined, parts: Parts): void {
    if (q === undefined) return;
    const pd = parts.model.latent.priorDim;
    expectTensor(label, `${what}loc `, q.loc, [N, pd], `[N, priorDim] for N = ${N}`);
    expectTensor(label, `${what}logVar `, q.logVar, [N, pd], `[N, priorDim] for N = ${N}`);
  }

  private latentSample(): void {
    this.withInputs(
      (parts) => {
        const b = this.batch(N);
        return { h: this.features(parts, b), cond: b.cond };
      },
      (parts, inp, restore) => {
        const lat = parts.model.latent;
        const zShape = latentShape(lat);
        const pShape = priorShape(lat);
        runMethod(
          {
            label: `${this.where}.sample`,
            method: 'Latent.sample',
            modes: [true, false],
            call: (seed, training) => {
              const h = cloneAll(inp.h);
              const cond = cloneAll(inp.cond);
              return { out: lat.sample(h, S, this.opts(seed, 'latent.sample', training, cond)), inputs: [h, cond] };
            },
            validate: (o, l) => {
              const s = o as LatentSample;
              const rows = `for S = ${S} samples of N = ${N}`;
              if (s.samples !== S) fail(`${l}: samples must be ${S} (as asked); got ${s.samples}`);
              expectTensor(l, 'z ', s.z, [S * N, ...zShape], `[S*N, ...shape] ${rows}; ${this.latentWhy(parts, 'shape')}`);
              if (s.priorZ !== undefined) expectTensor(l, 'priorZ ', s.priorZ, [S * N, ...pShape], `[S*N, ...priorShape] ${rows}; ${this.latentWhy(parts, 'priorShape')}`);
              else if (!sameShape(s.z, [S * N, ...pShape])) fail(`${l}: priorZ must be set when shape ${show(zShape)} differs from priorShape ${show(pShape)}; got none`);
              expectTensor(l, 'logQ ', s.logQ, [S * N], `[S*N] ${rows}`);
              this.validateGaussian(l, 'posterior ', s.posterior, parts);
              this.validateGaussian(l, 'posteriorStats ', s.posteriorStats, parts);
              if (s.innerLogPrior !== undefined) expectTensor(l, 'innerLogPrior ', s.innerLogPrior, [S * N], `[S*N] ${rows}`);
              if (s.innerKl !== undefined) expectTensor(l, 'innerKl ', s.innerKl, [N], `[N] for N = ${N}`);
              for (const [k, t] of Object.entries(s.terms ?? {})) expectTensor(l, `term "${k}" `, t, [N], `[N] for N = ${N}`);
              if (s.posterior && !s.innerLogPrior && !s.innerKl) this.expectExactPosterior(l, s);
            },
            draws: ['z'],
          },
          restore,
          this.options.deterministic ?? [],
        );
      },
    );
  }

  /**
   * A sample that sets `posterior` claims q(priorZ | x) is exactly that Gaussian: its logQ must
   * then be log N(priorZ; loc, e^logVar), row by row (the posterior tiled S times, sample-major).
   */
  private expectExactPosterior(label: string, s: LatentSample): void {
    const [got, want] = tf.tidy(() => {
      const pz = s.priorZ ?? s.z;
      const flat = tf.reshape(pz, [pz.shape[0], -1]) as tf.Tensor2D;
      const loc = tileSamples(s.posterior!.loc, s.samples);
      const logVar = tileSamples(s.posterior!.logVar, s.samples);
      return [s.logQ.dataSync(), diagGaussianLogProb(flat, loc, logVar).dataSync()];
    });
    for (let i = 0; i < got.length; i++) {
      if (Math.abs(got[i] - want[i]) > 1e-3 * Math.max(1, Math.abs(want[i]))) {
        fail(
          `${label}: logQ must be log N(priorZ; posterior.loc, exp(posterior.logVar)) when posterior is set (it claims q is exactly that Gaussian; use posteriorStats for diagnostics); row ${i} is ${want[i]}; got ${got[i]}`,
        );
      }
    }
  }

  private latentMode(): void {
    this.withInputs(
      (parts) => {
        const b = this.batch(N);
        return { h: this.features(parts, b), cond: b.cond };
      },
      (parts, inp, restore) => {
        const lat = parts.model.latent;
        runMethod(
          {
            label: `${this.where}.mode`,
            method: 'Latent.mode',
            modes: [true, false],
            call: (seed, training) => {
              const h = cloneAll(inp.h);
              const cond = cloneAll(inp.cond);
              return { out: lat.mode(h, this.opts(seed, 'latent.mode', training, cond)), inputs: [h, cond] };
            },
            validate: (z, l) => expectTensor(l, '', z, [N, ...latentShape(lat)], `[N, ...shape] for N = ${N}; ${this.latentWhy(parts, 'shape')}`),
          },
          restore,
          this.options.deterministic ?? [],
        );
      },
    );
  }

  private latentPosterior(method: 'posterior' | 'posteriorStats'): void {
    this.withInputs(
      (parts) => {
        const b = this.batch(N);
        return { h: this.features(parts, b), cond: b.cond };
      },
      (parts, inp, restore) => {
        const lat = parts.model.latent;
        const label = `${this.where}.${method}`;
        runMethod(
          {
            label,
            method: `Latent.${method}`,
            modes: [true, false],
            call: (seed, training) => {
              const h = cloneAll(inp.h);
              const cond = cloneAll(inp.cond);
              return { out: lat[method]!(h, this.opts(seed, `latent.${method}`, training, cond)), inputs: [h, cond] };
            },
            validate: (q, l) => this.validateGaussian(l, '', q as DiagGaussianParams, parts),
          },
          restore,
          this.options.deterministic ?? [],
        );
        if (method !== 'posterior') return;
        // VampPrior-style priors encode with posterior(): it must be the q that sample draws from.
        restore();
        const [q, s] = tf.tidy(() => {
          const o = this.opts(1, 'latent.posterior', false, inp.cond);
          const p = lat.posterior!(inp.h, o);
          const smp = lat.sample(inp.h, 1, { ...o, rng: rngOf(1, 'latent.sample') });
          const pair = (g: DiagGaussianParams | undefined) => (g ? [g.loc.dataSync(), g.logVar.dataSync()] : null);
          const res = [pair(p), pair(smp.posterior)];
          return res as unknown as tf.TensorContainer;
        }) as unknown as Array<[ArrayLike<number>, ArrayLike<number>] | null>;
        if (!s) return;
        ['loc', 'logVar'].forEach((k, j) => {
          for (let i = 0; i < q![j].length; i++) {
            if (Math.abs(q![j][i] - s[j][i]) > 1e-5 * Math.max(1, Math.abs(s[j][i]))) {
              fail(`${label} in evaluation: must be the posterior that sample draws from; ${k} entry ${i} is ${s[j][i]} in sample(h).posterior; got ${q![j][i]}`);
            }
          }
        });
      },
    );
  }

  private latentGenerate(): void {
    this.withInputs(
      (parts) => {
        const cond = this.batch(DRAWS).cond;
        const zPrior = parts.model.prior.sample(DRAWS, rngOf(0, 'prior-draws'), cond, this.opts(0, 'prior-draws', false, cond));
        return { zPrior, cond };
      },
      (parts, inp, restore) => {
        const lat = parts.model.latent;
        runMethod(
          {
            label: `${this.where}.generate`,
            method: 'Latent.generate',
            modes: [true, false],
            call: (seed, training) => {
              const z = tf.clone(inp.zPrior);
              const cond = cloneAll(inp.cond);
              return { out: lat.generate!(z, this.opts(seed, 'latent.generate', training, cond)), inputs: [z, cond] };
            },
            validate: (g, l) => expectTensor(l, '', g, [DRAWS, ...latentShape(lat)], `[n, ...shape] for n = ${DRAWS}; ${this.latentWhy(parts, 'shape')}`),
          },
          restore,
          this.options.deterministic ?? [],
        );
      },
    );
  }

  private noGenerate(): void {
    this.withParts((parts) => {
      const lat = parts.model.latent;
      const z = latentShape(lat);
      const p = priorShape(lat);
      if (!(p.length === z.length && p.every((d, i) => d === z[i]))) {
        fail(`${this.where}: has no generate method, so prior draws [n, ...priorShape] = [n, ${p.join(', ')}] go to the decoder as z, which must be [n, ${z.join(', ')}]; give it a generate method`);
      }
    });
  }

  private decode(): void {
    this.withInputs(
      (parts) => {
        const b = this.batch(N);
        const s = parts.model.latent.sample(this.features(parts, b), 2, this.opts(0, 'latent-draws', false, b.cond));
        return { z: s.z, cond: tileSamples(b.cond, 2) };
      },
      (parts, inp, restore) => {
        const dec = parts.model.decoder;
        const ppd = parts.model.likelihood.paramsPerDim;
        const use = this.use('likelihood');
        runMethod(
          {
            label: `${this.where}.decode`,
            method: 'Decoder.decode',
            modes: [true, false],
            call: (seed, training) => {
              const z = tf.clone(inp.z);
              const cond = cloneAll(inp.cond);
              return { out: dec.decode(z, cond, this.opts(seed, 'decode', training, cond)), inputs: [z, cond] };
            },
            validate: (p, l) =>
              expectTensor(l, '', p, [2 * N, this.info.dim * ppd], `[N, dataDim * paramsPerDim] for N = ${2 * N} rows (2 samples of ${N}): data dim ${this.info.dim}, likelihood "${use}" paramsPerDim ${ppd}`),
          },
          restore,
          this.options.deterministic ?? [],
        );
      },
    );
  }

  private priorLogProb(): void {
    this.withInputs(
      (parts) => {
        const b = this.batch(N);
        const s = parts.model.latent.sample(this.features(parts, b), 2, this.opts(0, 'latent-draws', false, b.cond));
        const condS = tileSamples(b.cond, 2);
        const condN = this.batch(DRAWS).cond;
        const zPrior = parts.model.prior.sample(DRAWS, rngOf(0, 'prior-draws'), condN, this.opts(0, 'prior-draws', false, condN));
        return { zq: s.priorZ ?? s.z, condS, zPrior, condN };
      },
      (parts, inp, restore) => {
        const prior = parts.model.prior;
        runMethod(
          {
            label: `${this.where}.logProb`,
            method: 'Prior.logProb',
            modes: [true, false],
            call: (seed, training) => {
              const inputs = cloneAll([inp.zq, inp.condS, inp.zPrior, inp.condN]);
              const [zq, condS, zp, condN] = inputs as [tf.Tensor, tf.Tensor2D | null, tf.Tensor, tf.Tensor2D | null];
              const out = {
                'on posterior draws': prior.logProb(zq, condS, this.opts(seed, 'prior.logProb', training, condS)),
                'on prior draws': prior.logProb(zp, condN, this.opts(seed, 'prior.logProb/2', training, condN)),
              };
              return { out, inputs };
            },
            validate: (o, l) => {
              const r = o as Record<string, tf.Tensor>;
              expectTensor(l, 'on posterior draws ', r['on posterior draws'], [2 * N], `[N] for N = ${2 * N} rows (2 samples of ${N})`);
              expectTensor(l, 'on prior draws ', r['on prior draws'], [DRAWS], `[N] for N = ${DRAWS} of its own draws`);
            },
          },
          restore,
          this.options.deterministic ?? [],
        );
      },
    );
  }

  private priorSample(): void {
    this.withInputs(
      () => ({ cond: this.batch(DRAWS).cond }),
      (parts, inp, restore) => {
        const prior = parts.model.prior;
        runMethod(
          {
            label: `${this.where}.sample`,
            method: 'Prior.sample',
            modes: [true, false],
            call: (seed, training) => {
              const cond = cloneAll(inp.cond);
              return { out: prior.sample(DRAWS, rngOf(seed, 'prior.sample'), cond, this.opts(seed, 'prior.sample/opts', training, cond)), inputs: [cond] };
            },
            validate: (z, l) => expectTensor(l, '', z, [DRAWS, ...priorShape(parts.model.latent)], `[n, ...priorShape] for n = ${DRAWS}; ${this.latentWhy(parts, 'priorShape')}`),
            draws: [''],
          },
          restore,
          this.options.deterministic ?? [],
        );
      },
    );
  }

  private analyticKl(): void {
    this.withInputs(
      (parts) => {
        const pd = parts.model.latent.priorDim;
        const rng = Rng.derive(0, 'conformance/kl-q');
        // A posterior well away from N(0, I), so that a wrong closed form shows.
        const q: DiagGaussianParams = { loc: rng.uniformTensor([N, pd], -1, 1) as tf.Tensor2D, logVar: rng.uniformTensor([N, pd], -1, 0.5) as tf.Tensor2D };
        return { q, cond: this.batch(N).cond };
      },
      (parts, inp, restore) => {
        const prior = parts.model.prior;
        const pd = parts.model.latent.priorDim;
        const label = `${this.where}.analyticKl`;
        runMethod(
          {
            label,
            method: 'Prior.analyticKl',
            modes: [true, false],
            call: (seed, training) => {
              const inputs = cloneAll([inp.q.loc, inp.q.logVar, inp.cond]);
              const [loc, logVar, cond] = inputs as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D | null];
              const o = this.opts(seed, 'prior.analyticKl', training, cond);
              return { out: { total: prior.analyticKl!({ loc, logVar }, cond, false, o), perDim: prior.analyticKl!({ loc, logVar }, cond, true, o) }, inputs };
            },
            validate: (o, l) => {
              const r = o as { total: tf.Tensor; perDim: tf.Tensor };
              expectTensor(l, '', r.total, [N], `[B] for B = ${N}`);
              expectTensor(l, 'with perDim ', r.perDim, [N, pd], `[B, priorDim] for B = ${N}; latent "${this.use('latent')}" priorDim ${pd}`);
              const total = r.total.dataSync();
              const rows = tf.tidy(() => tf.sum(r.perDim, 1).dataSync());
              for (let i = 0; i < N; i++) {
                if (total[i] < -1e-4 * Math.max(1, Math.abs(total[i]))) fail(`${l}: must be >= 0 (a KL divergence); got ${total[i]} for example ${i}`);
                if (Math.abs(rows[i] - total[i]) > 1e-4 * Math.max(1, Math.abs(total[i]))) {
                  fail(`${l}: the row sums of the perDim result must be the per-example KL ${total[i]} (example ${i}); got ${rows[i]}`);
                }
              }
            },
          },
          restore,
          this.options.deterministic ?? [],
        );
        this.klAgreesWithMonteCarlo(parts, inp.q, inp.cond, label);
      },
    );
  }

  /**
   * The closed form against mean(log q(z) - log p(z)) over KL_DRAWS draws z ~ q per example:
   * within 5 standard errors of the estimate, plus 1e-3 relative for float32 rounding.
   */
  private klAgreesWithMonteCarlo(parts: Parts, q: DiagGaussianParams, cond: tf.Tensor2D | null, label: string): void {
    const prior = parts.model.prior;
    const pShape = priorShape(parts.model.latent);
    const [exact, mean, se] = tf.tidy(() => {
      const o = this.opts(3, 'kl-mc', false, cond);
      const exact = prior.analyticKl!(q, cond, false, o).dataSync();
      const loc = tileSamples(q.loc, KL_DRAWS);
      const logVar = tileSamples(q.logVar, KL_DRAWS);
      const eps = rngOf(3, 'kl-mc/eps').normalTensor(loc.shape) as tf.Tensor2D;
      const z = tf.add(loc, tf.mul(tf.exp(tf.mul(logVar, 0.5)), eps)) as tf.Tensor2D;
      const condS = tileSamples(cond, KL_DRAWS);
      const logP = prior.logProb(tf.reshape(z, [z.shape[0], ...pShape]), condS, { ...o, cond: condS });
      const diff = tf.reshape(tf.sub(diagGaussianLogProb(z, loc, logVar), logP), [KL_DRAWS, N]);
      const m = tf.moments(diff, 0);
      return [exact, m.mean.dataSync(), tf.sqrt(tf.div(m.variance, KL_DRAWS)).dataSync()];
    }) as unknown as [Float32Array, Float32Array, Float32Array];
    for (let i = 0; i < N; i++) {
      const tol = 5 * se[i] + 1e-3 * Math.max(1, Math.abs(mean[i]));
      if (!(Math.abs(exact[i] - mean[i]) <= tol)) {
        fail(
          `${label}: must agree with the Monte-Carlo mean of log q(z) - log p(z) over ${KL_DRAWS} draws z ~ q (within 5 standard errors); the estimate for example ${i} is ${mean[i].toFixed(4)} with standard error ${se[i].toFixed(4)}; got ${exact[i]}`,
        );
      }
    }
  }

  private likelihoodMethod(method: 'logProb' | 'mean' | 'sample'): void {
    this.withInputs(
      (parts) => {
        const b = this.batch(N);
        const s = parts.model.latent.sample(this.features(parts, b), 1, this.opts(0, 'latent-draws', false, b.cond));
        return { x: b.x, params: parts.model.decoder.decode(s.z, b.cond, this.opts(0, 'decode', false, b.cond)) };
      },
      (parts, inp, restore) => {
        const lik = parts.model.likelihood;
        const dataWhy = `for N = ${N}; data "${this.info.name}" ${show(this.info.shape)}`;
        const spec: MethodSpec = {
          label: `${this.where}.${method}`,
          method: `Likelihood.${method}`,
          modes: [null],
          call: (seed) => {
            const params = tf.clone(inp.params);
            if (method === 'logProb') {
              const x = tf.clone(inp.x);
              return { out: lik.logProb(x, params), inputs: [x, params] };
            }
            if (method === 'mean') return { out: lik.mean(params), inputs: [params] };
            return { out: lik.sample(params, rngOf(seed, 'likelihood.sample')), inputs: [params] };
          },
          validate: (o, l) =>
            method === 'logProb' ? expectTensor(l, '', o, [N], `[N] for N = ${N}`) : expectTensor(l, '', o, [N, this.info.dim], `[N, data dim] ${dataWhy}`),
          ...(method === 'sample' ? { draws: [''] } : {}),
        };
        runMethod(spec, restore, this.options.deterministic ?? []);
      },
    );
  }

  private terms(): void {
    this.withInputs(
      () => this.batch(N),
      (parts, b, restore) => {
        runMethod(
          {
            label: `${this.where}.terms`,
            method: 'Objective.terms',
            modes: [true, false],
            call: (seed, training) => {
              const batch = cloneAll([b.x, b.cond, b.labels ?? null, b.labelMask ?? null]);
              const [x, cond, labels, labelMask] = batch as [tf.Tensor2D, tf.Tensor2D | null, tf.Tensor2D | null, tf.Tensor1D | null];
              return { out: parts.objective.terms({ x, cond, labels, labelMask }, { training, rng: rngOf(seed, 'terms'), step: 0 }), inputs: batch };
            },
            validate: (t, l) => {
              const terms = t as Record<string, unknown>;
              if (!('loss' in terms)) fail(`${l}: must return a "loss" term; got terms ${Object.keys(terms).map((k) => `"${k}"`).join(', ') || 'none'}`);
              for (const [k, v] of Object.entries(terms)) expectTensor(l, `term "${k}" `, v, [N], `[B] for B = ${N}`);
            },
          },
          restore,
          this.options.deterministic ?? [],
        );
      },
    );
  }

  /** The optimizer groups of the parts (main first), validated as the trainer validates them. */
  private optimizerGroups(parts: Parts): OptimizerGroup[] {
    return buildGroups(trainableVariables(parts), parts.objective, this.use('objective'), {
      learningRate: TRAIN.learningRate,
      beta1: 0.9,
      beta2: 0.999,
      epsilon: 1e-8,
      weightDecay: 0,
    }, []);
  }

  private groups(): void {
    this.withInputs(
      () => this.batch(N),
      (parts, b, restore) => {
        const groups = this.optimizerGroups(parts);
        try {
          for (const g of groups) {
            if (!g.def) continue;
            const def = g.def;
            runMethod(
              {
                label: `${this.where}.groups: group "${g.name}" loss`,
                method: 'ParamGroup.loss',
                modes: [true],
                call: (seed, training) => {
                  const batch = cloneAll([b.x, b.cond, b.labels ?? null, b.labelMask ?? null]);
                  const [x, cond, labels, labelMask] = batch as [tf.Tensor2D, tf.Tensor2D | null, tf.Tensor2D | null, tf.Tensor1D | null];
                  return { out: def.loss({ x, cond, labels, labelMask }, { training, rng: rngOf(seed, `group/${g.name}`), step: 0 }), inputs: batch };
                },
                validate: (l, label) => expectTensor(label, '', l, [], 'a scalar'),
              },
              restore,
              this.options.deterministic ?? [],
            );
          }
        } finally {
          for (const g of groups) g.adam.dispose();
        }
      },
    );
  }

  // -------------------------------------------------------------------------------------------
  // model-level checks

  private gradients(): void {
    this.withInputs(
      () => this.batch(2 * N),
      (parts, b) => {
        const groups = this.optimizerGroups(parts);
        const problems: string[] = [];
        try {
          for (const g of groups) {
            const ctx = { training: true, rng: rngOf(1, `gradients/${g.name}`), step: 0 };
            const loss = () => (g.def ? g.def.loss(b, ctx) : (tf.mean(parts.objective.terms(b, ctx).loss) as tf.Scalar));
            const what = g.def ? `the loss of group "${g.name}"` : 'the loss';
            const { value, grads } = tf.variableGrads(loss, g.list);
            value.dispose();
            for (const [key, v] of g.vars) {
              const t = grads[v.name];
              if (!t) {
                problems.push(`variable "${key}" ${show(v.shape)} gets no gradient from ${what}; every trainable variable must (buffers updated without gradients belong in state())`);
                continue;
              }
              const bad = firstNonFinite(t);
              if (bad) problems.push(`the gradient of ${what} for variable "${key}" must be finite; got ${bad.value} at entry ${bad.index} of ${show(v.shape)}`);
              else if (t.dataSync().every((x) => x === 0)) problems.push(`the gradient of ${what} for variable "${key}" is zero at all ${t.size} entries of ${show(v.shape)}; some entry must be non-zero`);
            }
            tf.dispose(Object.values(grads));
          }
        } finally {
          for (const g of groups) g.adam.dispose();
        }
        if (problems.length === 1) fail(`${this.where}: ${problems[0]}`);
        if (problems.length > 1) fail(`${this.where}: ${problems.length} problems with gradients\n${problems.map((p) => `  - ${p}`).join('\n')}`);
      },
    );
  }

  private leaks(): void {
    this.withInputs(
      () => this.batch(N),
      (parts, b, restore) => {
        const groups = this.optimizerGroups(parts);
        try {
          const step = () => {
            for (const g of groups) {
              const ctx = { training: true, rng: rngOf(1, `leaks/${g.name}`), step: 0 };
              const { value, grads } = tf.variableGrads(() => (g.def ? g.def.loss(b, ctx) : (tf.mean(parts.objective.terms(b, ctx).loss) as tf.Scalar)), g.list);
              tf.dispose([value, ...Object.values(grads)]);
            }
          };
          const evaluate = () => disposeAll(parts.objective.terms(b, { training: false, rng: rngOf(1, 'leaks/eval'), step: 0 }));
          for (const [what, f] of [['a training step (loss and gradients)', step], ['an evaluation pass (terms)', evaluate]] as const) {
            restore();
            f();
            restore();
            const before = tf.memory().numTensors;
            f();
            const leaked = tf.memory().numTensors - before;
            if (leaked !== 0) {
              fail(`${this.where}: ${what} ${leaked > 0 ? `leaks ${leaked} tensor${leaked === 1 ? '' : 's'}` : `disposes ${-leaked} tensor${leaked === -1 ? '' : 's'} it does not own`}; tf.memory().numTensors must be the same before and after (after a warm-up call)`);
            }
          }
        } finally {
          for (const g of groups) g.adam.dispose();
        }
      },
    );
  }

  private training(): void {
    this.withParts((parts) => {
      const data = syntheticData(this.info, TRAIN.examples, 0);
      let losses: number[];
      try {
        losses = trainSteps(parts, data, { steps: TRAIN.steps, learningRate: TRAIN.learningRate, batchSize: TRAIN.batchSize, seed: 0 });
      } finally {
        disposeBatch(data);
      }
      const bad = losses.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0) fail(`${this.where}: training: the loss must stay finite over ${TRAIN.steps} Adam steps (learning rate ${TRAIN.learningRate}); got ${losses[bad]} at step ${bad}`);
      const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
      const first = mean(losses.slice(0, TRAIN.window));
      const last = mean(losses.slice(-TRAIN.window));
      // last <= 0.8 * first for a positive loss; for any sign: a fall of at least a fifth of |first|.
      const bound = first - 0.2 * Math.abs(first);
      if (!(last <= bound)) {
        fail(
          `${this.where}: training: the mean loss of the last ${TRAIN.window} of ${TRAIN.steps} Adam steps (learning rate ${TRAIN.learningRate}, batches of ${TRAIN.batchSize} from ${TRAIN.examples} synthetic examples) must be at most ${bound.toFixed(4)} (the first ${TRAIN.window} steps' mean ${first.toFixed(4)} less a fifth of its size); got ${last.toFixed(4)}`,
        );
      }
    });
  }
}

/**
 * Texts of the Monte-Carlo KL warnings (core/model.ts, code VAELAB_MC_KL) already shown while
 * checks ran: every check builds a model of its own, and each model would warn once more.
 */
const shownKlWarnings = new Set<string>();

/** Runs a check with repeats of an already shown VAELAB_MC_KL warning dropped; other warnings pass. */
function withoutRepeatedKlWarnings(run: () => void): void {
  const original = process.emitWarning;
  process.emitWarning = function (warning: string | Error, ...rest: unknown[]): void {
    const first = rest[0] as { code?: string } | string | undefined;
    const code = typeof first === 'object' ? first?.code : rest[1];
    const text = typeof warning === 'string' ? warning : warning.message;
    if (code === 'VAELAB_MC_KL') {
      if (shownKlWarnings.has(text)) return;
      shownKlWarnings.add(text);
    }
    (original as (...args: unknown[]) => void).call(process, warning, ...rest);
  } as typeof process.emitWarning;
  try {
    run();
  } finally {
    process.emitWarning = original;
  }
}

/**
 * Runs a check; an error from inside tfjs or the plugin (neither an assertion nor one of vaelab's
 * own errors, whose messages say where already) becomes an AssertionError naming the plugin and
 * the check, with the original as `cause`.
 */
function runNamed(where: string, id: string, run: () => void): void {
  try {
    run();
  } catch (e) {
    if (e instanceof AssertionError || e instanceof VaelabError || !(e instanceof Error)) throw e;
    const err = new AssertionError({ message: `${where}: ${id}: threw ${e.name}: ${e.message.split('\n')[0]}` });
    (err as { cause?: unknown }).cause = e;
    throw err;
  }
}

function caseTitle(c: ConformanceCase): string {
  if (c.title) return c.title;
  const cfg = c.config && Object.keys(c.config).length > 0 ? JSON.stringify(c.config) : 'default config';
  const parts = [cfg];
  if (c.slots && Object.keys(c.slots).length > 0) parts.push(`with ${JSON.stringify(c.slots)}`);
  if (c.info) parts.push(`on "${c.info.name}" ${show(c.info.shape)}${c.info.condDim > 0 ? `, conditioned (${c.info.condDim})` : ''}`);
  return parts.join(' ');
}

/**
 * The conformance checks of a plugin, as data: one entry per case and check, each with a title
 * and a `run` that throws an AssertionError when the plugin fails. Nothing is built until a
 * check runs; every check builds its own model, so any subset runs in any order.
 *
 * ```ts
 * for (const check of conformanceChecks(laplacePrior, [{ config: { scale: 0.5 } }])) test(check.title, check.run);
 * ```
 */
export function conformanceChecks(plugin: PluginDefinition, cases: readonly ConformanceCase[], options: ConformanceOptions = {}): ConformanceCheck[] {
  if (!plugin || typeof plugin.slot !== 'string' || typeof plugin.name !== 'string' || typeof plugin.implementation !== 'function') {
    throw new TypeError('conformanceChecks: the plugin must be a registration made with definePlugin; got ' + describeValue(plugin));
  }
  if (cases.length === 0) throw new TypeError(`conformanceChecks: ${plugin.slot} "${plugin.name}" needs at least one case; got []`);
  const where = `${plugin.slot} "${plugin.name}"`;
  const titles = cases.map(caseTitle);
  return cases.flatMap((c, i) => {
    const title = titles.filter((t) => t === titles[i]).length > 1 ? `${titles[i]} (case ${i + 1})` : titles[i];
    return new CaseChecks(plugin, c, options).checks().map((k) => ({
      ...k,
      plugin: where,
      case: title,
      title: `${where} ${title}: ${k.name}`,
      run: () => withoutRepeatedKlWarnings(() => runNamed(where, k.id, k.run)),
    }));
  });
}
