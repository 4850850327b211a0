import { expect } from 'chai';
import { injectable, inject, tagged } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import * as path from 'node:path';
import { checkShapes } from '../core/check';
import { experimentFromObject, loadExperiment } from '../core/config/experiment';
import { buildContainer, resolveParts } from '../core/container';
import { TOKENS, type Decoder, type Latent } from '../core/contracts';
import { ConfigError, RegistrationError, ShapeError } from '../core/errors';
import { Module } from '../core/nn';
import { PluginRegistry, definePlugin, pluginConfig, type ConfigOf, type PluginDefinition, type PluginSchema } from '../core/plugin';
import { plugins } from '../plugins';
import { openSession } from '../core/session';
import { builtins, experimentObject, TINY_IMAGE_INFO } from './kits/build';
import { expectThrowExact } from './data/helpers';

const wrongSchema = { width: { doc: 'output width', format: 'positive-int', default: 5 } } as const;

/** A decoder that ignores the likelihood and data size: the dry run must catch it. */
@injectable()
class WrongWidthDecoder extends Module implements Decoder {
  constructor(
    @inject(pluginConfig('decoder', 'wrong-width')) private readonly cfg: ConfigOf<typeof wrongSchema>,
    @inject(TOKENS.Latent) readonly latent: Latent,
  ) {
    super();
  }
  decode(z: tf.Tensor2D): tf.Tensor2D {
    return tf.zeros([z.shape[0], this.cfg.width]) as tf.Tensor2D;
  }
}
const wrongWidth = definePlugin({ slot: 'decoder', name: 'wrong-width', description: 'test', schema: wrongSchema, implementation: WrongWidthDecoder });

describe('container', () => {
  it('Should resolve each slot to the plugin named in the experiment, as singletons shared by all dependants', () => {
    const exp = experimentFromObject(experimentObject({ encoder: { use: 'conv', conv: { channels: [4] } } }), builtins());
    const parts = resolveParts(exp, TINY_IMAGE_INFO);
    expect(parts.model.encoder.constructor.name).to.equal('ConvEncoder');
    expect(parts.model.decoder.constructor.name).to.equal('MlpDecoder');
    // the latent injected into the decoder and prior is the model's latent
    const c = parts.container;
    expect(c.get(TOKENS.Latent)).to.equal(parts.model.latent);
    expect(c.get(TOKENS.Encoder, { name: 'conv' })).to.equal(parts.model.encoder);
  });

  it('Should bind each plugin its own validated config sub-tree only', () => {
    const exp = experimentFromObject(experimentObject({ latent: { use: 'gaussian', gaussian: { dim: 7 } } }), builtins());
    const c = buildContainer(exp.config, exp.registry, TINY_IMAGE_INFO);
    expect(c.get(pluginConfig('latent', 'gaussian'))).to.deep.equal({ dim: 7, minLogVar: -30 });
    expect(c.get(pluginConfig('encoder', 'mlp'))).to.deep.equal({ hiddenSizes: [16], activation: 'relu', conditioned: true });
  });

  it('Should list the built-in plugins once each, sorted within each slot', () => {
    const reg = new PluginRegistry(plugins);
    // The first built-ins are all there (more variants join the list over time) ...
    expect(reg.names('encoder')).to.include.members(['conv', 'mlp']);
    expect(reg.names('decoder')).to.include.members(['conv', 'mlp']);
    expect(reg.names('latent')).to.include.members(['gaussian']);
    expect(reg.names('prior')).to.include.members(['standard-normal']);
    expect(reg.names('likelihood')).to.include.members(['bernoulli', 'gaussian']);
    expect(reg.names('objective')).to.include.members(['elbo']);
    // ... and the registry holds every registration plugins/index.ts exports, none lost.
    expect(reg.all().length).to.equal(plugins.length);
  });

  it('Should refuse a registration with a bad slot or a name that is not kebab-case', () => {
    expectThrowExact(
      () => definePlugin({ slot: 'posterior' as 'prior', name: 'x', description: '', schema: {}, implementation: WrongWidthDecoder }),
      RegistrationError,
      'definePlugin: slot "posterior" of plugin "x" is not a slot. Allowed values: "encoder", "latent", "decoder", "prior", "likelihood", "objective"',
    );
    expectThrowExact(
      () => definePlugin({ slot: 'prior', name: 'MyPrior', description: '', schema: {}, implementation: WrongWidthDecoder }),
      RegistrationError,
      'definePlugin: prior name "MyPrior" must be kebab-case (lower-case words joined by "-")',
    );
  });

  const FORMAT_LIST =
    '"nat", "int", "positive-int", "number", "positive-number", "non-negative-number", "probability", "boolean", "string", "nat-list", "positive-int-list", "number-list", "string-list" or a list of allowed values';
  const declare = (schema: unknown) => () =>
    definePlugin({ slot: 'prior', name: 'laplace', description: '', schema: schema as PluginSchema, implementation: WrongWidthDecoder });

  it('Should refuse a format with a typo when the plugin is declared, naming the key, with a suggestion', () => {
    expectThrowExact(
      declare({ scale: { doc: 'b', format: 'positve-number', default: 1 } }),
      RegistrationError,
      `definePlugin: prior.laplace.scale: unknown format "positve-number". Allowed values: ${FORMAT_LIST}. Did you mean "positive-number"?`,
    );
    expectThrowExact(
      declare({ bounds: { low: { doc: 'l', format: 'float', default: 0 } } }),
      RegistrationError,
      `definePlugin: prior.laplace.bounds.low: unknown format "float". Allowed values: ${FORMAT_LIST}`,
    );
  });

  it('Should refuse a default that its own format refuses, and an entry that is not one', () => {
    expectThrowExact(
      declare({ bounds: { components: { doc: 'k', format: 'positive-int', default: 0 } } }),
      RegistrationError,
      'definePlugin: prior.laplace.bounds.components: default must be an integer in [1, 2147483647]; got 0',
    );
    expectThrowExact(
      declare({ mode: { doc: 'm', format: ['fixed', 'learned'], default: 'learnt' } }),
      RegistrationError,
      'definePlugin: prior.laplace.mode: default must be one of "fixed", "learned"; got "learnt"',
    );
    expectThrowExact(declare({ mode: { doc: 'm', format: [], default: 'a' } }), RegistrationError, 'definePlugin: prior.laplace.mode: format must be a format name or a non-empty list of allowed strings or numbers; got []');
    expectThrowExact(declare({ scale: { format: 'number', default: 1 } }), RegistrationError, 'definePlugin: prior.laplace.scale: an entry needs doc, format and default; doc missing');
    expectThrowExact(declare({ scale: 1 }), RegistrationError, 'definePlugin: prior.laplace.scale: must be an entry { doc, format, default } or a group of entries; got 1');
  });

  it('Should refuse a registration not made with definePlugin whose schema has a bad format, when it is added', () => {
    const def = { slot: 'prior', name: 'laplace', description: '', schema: { scale: { doc: 'b', format: 'postive-number', default: 1 } }, implementation: WrongWidthDecoder };
    expectThrowExact(
      () => builtins().addAll([def as unknown as PluginDefinition], 'hand-made.ts'),
      RegistrationError,
      `definePlugin: prior.laplace.scale: unknown format "postive-number". Allowed values: ${FORMAT_LIST}. Did you mean "positive-number"?`,
    );
  });

  it('Should refuse a plugin module with a format typo when it is loaded, even if the plugin is not selected', () => {
    const module = path.join(__dirname, 'fixtures', 'format-typo-plugin.ts');
    const file = path.join(__dirname, 'fixtures', 'tiny.yaml');
    let thrown: unknown;
    try {
      loadExperiment(file, builtins(), [`plugins=[${module}]`]);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).to.be.instanceOf(ConfigError);
    // The loader puts the module's file and line before the registration's message.
    const message = (thrown as Error).message;
    expect(message.startsWith(`${file}: plugins[0]: module ${JSON.stringify(module)} failed to load: `), message).to.equal(true);
    expect(message.endsWith(`definePlugin: prior.typo.components: unknown format "positve-int". Allowed values: ${FORMAT_LIST}. Did you mean "positive-int"?`), message).to.equal(true);
  });

  it('Should name the slot, plugin, expected and received shape when a decoder output does not fit', () => {
    const reg = builtins();
    reg.addAll([wrongWidth], 'test');
    const exp = experimentFromObject(experimentObject({ decoder: { use: 'wrong-width' } }), reg);
    const parts = resolveParts(exp, TINY_IMAGE_INFO);
    expectThrowExact(
      () => checkShapes(parts.model, parts.objective, TINY_IMAGE_INFO, exp.config),
      ShapeError,
      'decoder "wrong-width".decode: must return [N, 64] (data dim 64 x likelihood "bernoulli" paramsPerDim 1); got [2, 5]',
    );
    // Given the registry (as a session does), the message names the module the plugin came from.
    expectThrowExact(
      () => checkShapes(parts.model, parts.objective, TINY_IMAGE_INFO, exp.config, reg),
      ShapeError,
      'decoder "wrong-width" (test).decode: must return [N, 64] (data dim 64 x likelihood "bernoulli" (plugins/index.ts) paramsPerDim 1); got [2, 5]',
    );
  });

  // A plugin module's own defects are named with the module, so its author knows which file to open.
  const BROKEN = path.join(__dirname, 'fixtures', 'broken-plugins.ts');

  it('Should name the slot, plugin and module of a plugin whose constructor throws', () => {
    const exp = experimentFromObject(experimentObject({ plugins: [BROKEN], encoder: { use: 'throws-on-build' } }), builtins());
    expectThrowExact(
      () => resolveParts(exp, TINY_IMAGE_INFO),
      RegistrationError,
      `encoder "throws-on-build" (${BROKEN}): cannot be built: cannot read properties of undefined (reading "width")`,
    );
  });

  it('Should name the slot, plugin and module of a plugin that throws in the dry run', () => {
    const exp = experimentFromObject(
      experimentObject({ plugins: [BROKEN], data: { use: 'synthetic', synthetic: { kind: 'shapes', size: 8 } }, decoder: { use: 'throws-on-decode' } }),
      builtins(),
    );
    // z has latent.gaussian.dim = 3 columns; synthetic shapes are 14 x 14 grey images
    expectThrowExact(
      () => openSession(exp),
      ShapeError,
      `decoder "throws-on-decode" (${BROKEN}): dry run on 2 examples of shape [14, 14, 1] failed: row 3 of a table of 3 rows`,
    );
  });
});

const COMPONENT = Symbol.for('test.TwoPartPrior.Component');

/** One Gaussian factor N(loc, 1) of the composite test prior, selected by tag. */
@injectable()
class ShiftedComponent {
  constructor(readonly loc: number) {}
}

/** A composite prior whose two halves are tagged sub-components bound by its own registration. */
@injectable()
class TwoPartPrior extends Module {
  constructor(
    @inject(COMPONENT) @tagged('part', 0) readonly first: ShiftedComponent,
    @inject(COMPONENT) @tagged('part', 1) readonly second: ShiftedComponent,
  ) {
    super();
  }
  logProb(z: tf.Tensor2D): tf.Tensor1D {
    return tf.tidy(() => {
      const [a, b] = tf.split(z, 2, 1);
      const lp = (x: tf.Tensor, loc: number) => tf.sum(tf.mul(tf.add(tf.square(tf.sub(x, loc)), Math.log(2 * Math.PI)), -0.5), -1);
      return tf.add(lp(a, this.first.loc), lp(b, this.second.loc)) as tf.Tensor1D;
    });
  }
  sample(n: number): tf.Tensor2D {
    return tf.zeros([n, 2]) as tf.Tensor2D;
  }
}
const twoPartSchema = { shift: { doc: 'loc of the second part', format: 'number', default: 3 } } as const;
const twoPart = definePlugin({
  slot: 'prior',
  name: 'two-part',
  description: 'test',
  schema: twoPartSchema,
  implementation: TwoPartPrior,
  bindings: ({ bind, config }) => {
    bind(COMPONENT).toConstantValue(new ShiftedComponent(0)).whenTagged('part', 0);
    bind(COMPONENT).toConstantValue(new ShiftedComponent((config as ConfigOf<typeof twoPartSchema>).shift)).whenTagged('part', 1);
  },
});

describe('container: composite plugins', () => {
  it('Should let a plugin bind tagged sub-components, configured from its own keys', () => {
    const reg = builtins();
    reg.addAll([twoPart], 'test');
    const exp = experimentFromObject(experimentObject({ latent: { use: 'gaussian', gaussian: { dim: 2 } }, prior: { use: 'two-part', 'two-part': { shift: 5 } } }), reg);
    const prior = resolveParts(exp, TINY_IMAGE_INFO).model.prior as unknown as TwoPartPrior;
    expect([prior.first.loc, prior.second.loc]).to.deep.equal([0, 5]);
    // log N([0, 5]; [0, 5], I) = -log(2 pi)
    expect(prior.logProb(tf.tensor2d([[0, 5]])).dataSync()[0]).to.be.closeTo(-Math.log(2 * Math.PI), 1e-5);
  });
});
