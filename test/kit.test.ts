/**
 * Tests of the conformance kit itself (testing/): it fails plugins with one deliberate defect
 * each (test/fixtures/kit-plugins.ts) with the exact message, in the check that names the defect
 * and in no other; it passes the fixture plugins of core v2 (several feature depths, grid
 * latents, a flow posterior, a conditioned latent, a labelled objective); its options and its
 * describe/it adapter, and a run under node:test. Written with node:assert only, as a third-party
 * plugin's tests can be.
 */
import assert, { AssertionError } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError } from '../core';
import type { PluginDefinition } from '../core/plugin';
import {
  TINY_IMAGE_INFO,
  buildParts,
  conformanceChecks,
  describeConformance,
  disposeParts,
  expectThrowExact,
  greyBatch,
  pluginGrads,
  syntheticData,
  trainSteps,
  type ConformanceCheck,
  type ConformanceOptions,
  type TestApi,
} from '../testing';
import * as v2 from './fixtures/core-v2';
import * as kit from './fixtures/kit-plugins';

/** The one check of a plugin's first case with this id. */
function check(def: PluginDefinition, id: string, options: ConformanceOptions = {}): ConformanceCheck {
  const found = conformanceChecks(def, [{}], options).find((c) => c.id === id);
  assert.ok(found, `no check "${id}" for ${def.slot} "${def.name}"`);
  return found;
}

const failsWith = (run: () => void, message: string) => assert.throws(run, (e: unknown) => {
  assert.ok(e instanceof AssertionError, `expected an AssertionError; got ${String(e)}`);
  assert.strictEqual(e.message, message);
  return true;
});

describe('conformance kit (vaelab/testing)', () => {
  describe('fails a plugin with a defect in the check that names it, with the exact message', () => {
    // [defect, plugin, check id, message, other checks the defect also trips]
    const cases: Array<[string, PluginDefinition, string, string, string[]]> = [
      [
        'a prior whose sample returns [n, D+1]',
        kit.tooWidePrior,
        'Prior.sample',
        'prior "too-wide".sample in training: must be [5, 3] ([n, ...priorShape] for n = 5; latent "gaussian" priorShape [3]); got [5, 4]',
        // vaelab's own dry run refuses it too (core/check.ts)
        ['build'],
      ],
      [
        'a likelihood whose mean has the wrong shape',
        kit.wrongMeanLikelihood,
        'Likelihood.mean',
        'likelihood "wrong-mean".mean: must be [4, 64] ([N, data dim] for N = 4; data "tiny" [8, 8, 1]); got [4, 128]',
        ['build'],
      ],
      [
        'a latent whose mode leaks a tensor',
        kit.leakyModeLatent,
        'Latent.mode',
        'latent "leaky-mode".mode in training: leaks 1 tensor per call; tf.memory().numTensors must be the same before a call and after disposing its inputs and outputs (after a warm-up call)',
        [],
      ],
      [
        'a decoder with a variable that gets no gradient',
        kit.deadWeightDecoder,
        'gradients',
        'decoder "dead-weight": variable "decoder/unused" [3] gets no gradient from the loss; every trainable variable must (buffers updated without gradients belong in state())',
        [],
      ],
      [
        'a prior whose sample ignores its seed (a fixed internal seed)',
        kit.fixedSeedPrior,
        'Prior.sample',
        'prior "fixed-seed".sample in training: must draw from the Rng it is given; got the same values for seeds 1 and 2 (all 15 entries of [5, 3]). List Prior.sample in options.deterministic if it draws nothing',
        [],
      ],
      [
        'a prior whose sample depends on a call counter, not on its seed',
        kit.driftingPrior,
        'Prior.sample',
        // the first call fills with 0, the second with 1
        'prior "drifting".sample in training: must give the same values for the same seed; the output differs between two calls with seed 1 at entry 0 of [5, 3]: 0 then 1',
        [],
      ],
      [
        'a latent marking a trainable buffer as state',
        kit.trainableStateLatent,
        'build',
        'latent "trainable-state".state: buffer "codebook" must not be trainable (make it with tf.variable(value, false); no optimizer updates state); got trainable = true',
        [],
      ],
      [
        'a latent whose logQ is not the density of the exact posterior it sets',
        kit.wrongLogQLatent,
        'Latent.sample',
        // row 0: log N(z; loc, var) of a draw at twice the scale (-9.7676) against the logQ it reports (-3.8612)
        'latent "wrong-log-q".sample in training: logQ must be log N(priorZ; posterior.loc, exp(posterior.logVar)) when posterior is set (it claims q is exactly that Gaussian; use posteriorStats for diagnostics); row 0 is -9.767590522766113; got -3.861198902130127',
        [],
      ],
      [
        'a prior whose closed-form KL is twice the true one',
        kit.doubledKlPrior,
        'Prior.analyticKl',
        // true KL of example 0 ~ 0.334 (the Monte-Carlo estimate 0.3621 +- 0.0174); the plugin says 0.6679
        'prior "doubled-kl".analyticKl: must agree with the Monte-Carlo mean of log q(z) - log p(z) over 2000 draws z ~ q (within 5 standard errors); the estimate for example 0 is 0.3621 with standard error 0.0174; got 0.6678627729415894',
        [],
      ],
      [
        'an objective whose parameter group loss is [B], not a scalar',
        kit.vectorGroupLossObjective,
        'Objective.groups',
        'objective "vector-group-loss".groups: group "critic" loss in training: must be [] (a scalar); got [4]',
        // the dry run refuses it, and tf.variableGrads cannot differentiate it
        ['build', 'gradients', 'leaks'],
      ],
    ];
    for (const [defect, def, id, message, alsoFails] of cases) {
      it(`Should fail ${defect} in ${id}, and pass its other fast checks`, () => {
        const checks = conformanceChecks(def, [{}]).filter((c) => !c.slow);
        failsWith(checks.find((c) => c.id === id)!.run, message);
        for (const c of checks.filter((k) => k.id !== id)) {
          if (alsoFails.includes(c.id)) assert.throws(c.run);
          else c.run();
        }
      });
    }

    it('Should name the plugin and the check when tfjs throws inside one', () => {
      failsWith(
        check(kit.vectorGroupLossObjective, 'gradients').run,
        'objective "vector-group-loss": gradients: threw Error: The f passed in variableGrads(f) must return a scalar, but it returned a rank-1 tensor',
      );
    });

    it('Should fail an objective whose loss training cannot lower, with the numbers', () => {
      failsWith(
        check(kit.flatObjective, 'training').run,
        // the loss is 1 at every step: bound 1 - 0.2 * 1 = 0.8
        'objective "flat": training: the mean loss of the last 20 of 200 Adam steps (learning rate 0.01, batches of 16 from 64 synthetic examples) must be at most 0.8000 (the first 20 steps\' mean 1.0000 less a fifth of its size); got 1.0000',
      );
    });
  });

  describe('passes plugins that keep the contracts: the core v2 fixtures', () => {
    const v2plugin = (slot: string, name: string) => v2.plugins.find((p) => p.slot === slot && p.name === name)!;
    const grid = { encoder: { use: 'grid' }, latent: { use: 'grid' }, decoder: { use: 'grid' }, prior: { use: 'grid-normal' } };
    const passing: Array<[string, PluginDefinition, Record<string, unknown>, boolean]> = [
      // [what, plugin, the rest of the model, with the training check]
      ['a [B, 2, 2, 3] grid latent', v2plugin('latent', 'grid'), grid, true],
      ['a prior over grid latents', v2plugin('prior', 'grid-normal'), grid, false],
      ['an encoder of grid features', v2plugin('encoder', 'grid'), grid, false],
      ['a two-layer latent on two feature depths', v2plugin('latent', 'two-layer'), { encoder: { use: 'two-depth' } }, true],
      ['an encoder of two feature depths', v2plugin('encoder', 'two-depth'), { latent: { use: 'two-layer' } }, false],
      ['a flow latent with posteriorStats only', v2plugin('latent', 'affine-flow'), {}, true],
      ['an objective that uses labels', v2plugin('objective', 'masked-classifier'), {}, true],
      ['a prior that encodes its pseudo-inputs with the pass options', v2plugin('prior', 'pseudo-input'), {}, true],
    ];
    it('Should pass an objective with a parameter group of its own (stepped every 2nd step), training included', () => {
      const ids = conformanceChecks(kit.criticObjective, [{}]).map((c) => {
        c.run();
        return c.id;
      });
      assert.ok(ids.includes('Objective.groups'));
    });
    for (const [what, def, slots, training] of passing) {
      it(`Should pass ${what} (${def.slot} "${def.name}")${training ? ', training included' : ''}`, () => {
        const checks = conformanceChecks(def, [{ slots, training }], { plugins: v2.plugins });
        assert.ok(checks.some((c) => c.id.includes('.')), 'no method check');
        for (const c of checks) c.run();
      });
    }

    it('Should pass a latent that reads the conditioning input, on conditioned data', () => {
      const info = { name: 'tiny', shape: [8, 8, 1] as [number, number, number], dim: 64, numClasses: 4, condDim: 4 };
      for (const c of conformanceChecks(v2plugin('latent', 'cond-shift'), [{ info, training: false }], { plugins: v2.plugins })) c.run();
    });
  });

  describe('options and listing', () => {
    it('Should list one check per contract method the class declares, and build nothing until a check runs', () => {
      const before = tf.memory().numTensors;
      const checks = conformanceChecks(kit.plainGaussianLatent, [{}, { title: 'second' }]);
      assert.strictEqual(tf.memory().numTensors, before);
      // PlainGaussianLatent declares posterior but neither posteriorStats nor generate
      const ids = ['build', 'Latent.sample', 'Latent.mode', 'Latent.posterior', 'Latent.generate', 'gradients', 'leaks', 'training'];
      assert.deepStrictEqual(checks.map((c) => c.id), [...ids, ...ids]);
      assert.deepStrictEqual([...new Set(checks.map((c) => c.case))], ['default config', 'second']);
      assert.strictEqual(checks[1].title, 'latent "plain-gaussian" default config: Latent.sample: z, priorZ, logQ and posteriors of the declared shapes, finite, seeded draws, no leaks');
      assert.deepStrictEqual(checks.filter((c) => c.slow).map((c) => c.id), ['training', 'training']);
      assert.deepStrictEqual(conformanceChecks(kit.plainNormalPrior, [{ training: false }]).map((c) => c.id), ['build', 'Prior.logProb', 'Prior.sample', 'Prior.analyticKl', 'gradients', 'leaks']);
    });

    it('Should refuse an empty case list and a plugin not made with definePlugin', () => {
      assert.throws(() => conformanceChecks(kit.plainNormalPrior, []), { name: 'TypeError', message: 'conformanceChecks: prior "plain-normal" needs at least one case; got []' });
      assert.throws(() => conformanceChecks({ slot: 'prior' } as unknown as PluginDefinition, [{}]), {
        name: 'TypeError',
        message: 'conformanceChecks: the plugin must be a registration made with definePlugin; got object',
      });
    });

    it('Should demand the same values under another seed from a sampler listed in options.deterministic', () => {
      check(kit.fixedSeedPrior, 'Prior.sample', { deterministic: ['Prior.sample'] }).run();
      assert.throws(check(kit.plainNormalPrior, 'Prior.sample', { deterministic: ['Prior.sample'] }).run, (e: unknown) => {
        assert.ok(e instanceof AssertionError);
        assert.match(e.message, /^prior "plain-normal"\.sample in training: is listed in options\.deterministic, so another seed must give the same values; the output differs between seeds 1 and 2 at entry 0 of \[5, 3\]: /);
        return true;
      });
    });

    it('Should build the rest of the model from options.builtins, not from vaelab\'s plugins, when given', () => {
      assert.throws(check(kit.plainNormalPrior, 'build', { builtins: [] }).run, (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        assert.ok(e.problems[0].startsWith('encoder.use: unknown plugin "mlp"'), e.message);
        return true;
      });
    });
  });

  describe('helpers for a plugin\'s own tests', () => {
    it('Should build parts with extra plugins and give gradients over one slot\'s own variables only', () => {
      const parts = buildParts({ decoder: { use: 'dead-weight' } }, TINY_IMAGE_INFO, { plugins: [kit.deadWeightDecoder] });
      const grads = pluginGrads(parts, 'decoder', greyBatch(4, TINY_IMAGE_INFO));
      // the decoder's own keys (no "decoder/" prefix); "unused" has no gradient, so no entry
      assert.deepStrictEqual([...grads.keys()].sort(), ['mlp/dense0/bias', 'mlp/dense0/kernel', 'mlp/dense1/bias', 'mlp/dense1/kernel']);
      // kernel of the first layer: latent dim 3 x hidden 8
      assert.strictEqual(grads.get('mlp/dense0/kernel')!.length, 3 * 8);
      disposeParts(parts);
    });

    it('Should give seeded batches with one-hot cond and labels, and a synthetic set of 4 noisy patterns', () => {
      const info = { ...TINY_IMAGE_INFO, condDim: 3 };
      const b = greyBatch(5, info, 1, true);
      // row i: cond one-hot of i % 3, labels one-hot of i % 4
      assert.deepStrictEqual(b.cond!.arraySync()[4], [0, 1, 0]);
      assert.deepStrictEqual(b.labels!.arraySync()[4], [1, 0, 0, 0]);
      // labelled rows 0, 2, 4; hidden labels on rows 1 and 3
      assert.deepStrictEqual(Array.from(b.labelMask!.dataSync()), [1, 0, 1, 0, 1]);
      assert.deepStrictEqual(Array.from(greyBatch(5, info, 1).x.dataSync()), Array.from(b.x.dataSync()));
      const d = syntheticData(TINY_IMAGE_INFO, 8);
      const x = d.x.arraySync();
      // every value is a level 0.1 or 0.9 plus noise in [-0.05, 0.05]; rows i and i + 4 show the same pattern
      for (const row of x) for (const v of row) assert.ok(Math.abs(v - 0.1) <= 0.05 + 1e-6 || Math.abs(v - 0.9) <= 0.05 + 1e-6, `${v}`);
      for (let i = 0; i < 4; i++) x[i].forEach((v, j) => assert.ok(Math.abs(v - x[i + 4][j]) <= 0.1 + 1e-6));
      assert.notDeepStrictEqual(x[0].map((v) => v > 0.5), x[1].map((v) => v > 0.5));
      assert.deepStrictEqual(d.labels!.arraySync()[6], [0, 0, 1, 0]);
    });

    it('Should train with Adam and return one finite loss per step', () => {
      const parts = buildParts();
      const data = syntheticData(TINY_IMAGE_INFO, 32);
      const losses = trainSteps(parts, data, { steps: 12, batchSize: 16 });
      assert.strictEqual(losses.length, 12);
      assert.ok(losses.every(Number.isFinite));
      assert.throws(() => trainSteps(parts, data, { batchSize: 64 }), { name: 'RangeError', message: 'trainSteps: the data has 32 rows, fewer than batchSize = 64' });
      disposeParts(parts);
    });

    it('Should pass an error of the class and exact message, and fail nothing thrown, another class or another message', () => {
      const throwing = (e: unknown) => () => {
        throw e;
      };
      expectThrowExact(throwing(new ConfigError('a.b: must be 1; got 2')), ConfigError, 'a.b: must be 1; got 2');
      failsWith(() => expectThrowExact(() => 0, ConfigError, 'm'), 'expected a ConfigError with message "m"; nothing was thrown');
      failsWith(() => expectThrowExact(throwing(new RangeError('m')), ConfigError, 'm'), 'expected a ConfigError with message "m"; got RangeError: m');
      failsWith(() => expectThrowExact(throwing(new ConfigError('m.')), ConfigError, 'm'), 'expected ConfigError message\n  m\ngot\n  m.');
      assert.throws(() => expectThrowExact(throwing(new ConfigError('m.')), ConfigError, 'm'), (e: unknown) => {
        // both messages as actual and expected, so that a runner shows the difference
        assert.ok(e instanceof AssertionError);
        assert.deepStrictEqual([e.actual, e.expected], ['m.', 'm']);
        return true;
      });
    });
  });

  describe('describeConformance', () => {
    /** A describe/it pair that records the tree of titles and the test functions. */
    function recorder(): { api: TestApi; tree: string[]; tests: Map<string, () => void> } {
      const tree: string[] = [];
      const tests = new Map<string, () => void>();
      const path: string[] = [];
      const api: TestApi = {
        describe(title, fn) {
          path.push(title);
          tree.push(path.join(' > '));
          fn();
          path.pop();
        },
        it(title, fn) {
          const full = [...path, title].join(' > ');
          tree.push(full);
          tests.set(full, fn as () => void);
        },
      };
      return { api, tree, tests };
    }

    it('Should register a describe per plugin and case, an it per check, and the training check under "training @slow"', () => {
      const r = recorder();
      describeConformance(kit.leakyModeLatent, [{ title: 'one' }], { api: r.api });
      const top = 'conformance: latent "leaky-mode" > one';
      // each entry: a describe's title path, or an it's path up to the first words of its title
      const expected = [
        'conformance: latent "leaky-mode"',
        `${top}`,
        `${top} > build: `,
        `${top} > Latent.sample: `,
        `${top} > Latent.mode: `,
        `${top} > Latent.posterior: `,
        `${top} > Latent.generate (absent): `,
        `${top} > gradients: `,
        `${top} > leaks: `,
        `${top} > training @slow`,
        `${top} > training @slow > training: 200 Adam steps`,
      ];
      assert.strictEqual(r.tree.length, expected.length, r.tree.join('\n'));
      r.tree.forEach((t, i) => assert.ok(t.startsWith(expected[i]), `${t} should start with ${expected[i]}`));
      const mode = [...r.tests.keys()].find((k) => k.startsWith(`${top} > Latent.mode`))!;
      assert.throws(r.tests.get(mode)!, { name: 'AssertionError' });
    });

    it('Should say how to pass describe and it when there are no globals', () => {
      const g = globalThis as Record<string, unknown>;
      const saved = { describe: g.describe, it: g.it };
      delete g.describe;
      try {
        assert.throws(() => describeConformance(kit.plainNormalPrior, [{}]), {
          name: 'TypeError',
          message:
            "describeConformance: no global describe/it (mocha, jasmine); pass them as options.api, e.g. import { describe, it } from 'node:test', or run conformanceChecks(...) yourself",
        });
      } finally {
        g.describe = saved.describe;
      }
    });
  });

  // A child process compiling the kit afresh: seconds, not milliseconds.
  describe('under node:test @slow', () => {
    it('Should run under node:test in a process without mocha or chai, reporting the failing check with its message', () => {
      // test/fixtures/kit-node-test.ts: a passing prior (6 checks), the too-wide prior (6 checks, of
      // which build and Prior.sample fail) and a check that neither mocha nor chai was loaded.
      const root = path.join(__dirname, '..');
      const run = spawnSync(
        process.execPath,
        ['--require', 'ts-node/register/transpile-only', '--test', '--test-reporter', 'tap', 'test/fixtures/kit-node-test.ts'],
        { cwd: root, encoding: 'utf8', timeout: 60_000 },
      );
      assert.strictEqual(run.status, 1, run.stderr);
      assert.match(run.stdout, /^# pass 11$/m);
      assert.match(run.stdout, /^# fail 2$/m);
      assert.ok(
        run.stdout.includes(
          `error: 'prior "too-wide".sample in training: must be [5, 3] ([n, ...priorShape] for n = 5; latent "gaussian" priorShape [3]); got [5, 4]'`,
        ),
        run.stdout,
      );
    });
  });
});
