import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  applyOverrides,
  experimentFromObject,
  loadExperiment,
  readExperimentFile,
} from '../core/config/experiment';
import { ConfigError, RegistrationError } from '../core/errors';
import { openSession } from '../core/session';
import { train } from '../core/train/trainer';
import { RunDir } from '../core/tracking/run-dir';
import { builtins, experimentObject } from './kits/build';
import { expectThrowExact } from './data/helpers';

function tempFile(name: string, text: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vaelab-config-'));
  const f = path.join(dir, name);
  fs.writeFileSync(f, text);
  return f;
}

const SLOTS_YAML = `encoder: { use: mlp }
latent: { use: gaussian }
decoder: { use: mlp }
prior: { use: standard-normal }
likelihood: { use: bernoulli }
objective: { use: elbo }
`;

describe('experiment config', () => {
  it('Should fill every default and name the experiment after its file', () => {
    const f = tempFile('my-exp.yaml', SLOTS_YAML);
    const { config } = loadExperiment(f, builtins());
    expect(config.name).to.equal('my-exp');
    expect(config.train.batchSize).to.equal(128);
    expect(config.latent.use).to.equal('gaussian');
    expect((config.latent.gaussian as { dim: number }).dim).to.equal(20);
    expect((config.encoder.mlp as { hiddenSizes: number[] }).hiddenSizes).to.deep.equal([400]);
  });

  it('Should read JSON experiments as well as YAML', () => {
    const f = tempFile('e.json', JSON.stringify(experimentObject({ seed: 3 })));
    expect(loadExperiment(f, builtins()).config.seed).to.equal(3);
  });

  it('Should apply --set overrides as YAML values on dotted paths', () => {
    const raw = applyOverrides(experimentObject(), ['train.optimizer.learningRate=3e-4', 'encoder.mlp.hiddenSizes=[32, 8]', 'data.condition.use=labels', 'name=x']);
    const { config } = experimentFromObject(raw, builtins());
    expect(config.train.optimizer.learningRate).to.equal(3e-4);
    expect((config.encoder.mlp as { hiddenSizes: number[] }).hiddenSizes).to.deep.equal([32, 8]);
    expect(config.data.condition.use).to.equal('labels');
    expect(config.name).to.equal('x');
  });

  it('Should reject a --set without "="', () => {
    expectThrowExact(() => applyOverrides({}, ['train.epochs']), ConfigError, '--set "train.epochs": expected dotted.key=value');
  });

  it('Should name the file, line and column of malformed YAML', () => {
    const f = tempFile('bad.yaml', 'encoder: { use: mlp\nlatent: [1, 2\n');
    let message = '';
    try {
      readExperimentFile(f);
    } catch (e) {
      expect(e).to.be.instanceOf(ConfigError);
      message = (e as Error).message;
    }
    expect(message).to.match(new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: malformed YAML: line \\d+, column \\d+: `));
  });

  it('Should name a missing file', () => {
    expectThrowExact(() => readExperimentFile('/nonexistent/x.yaml'), ConfigError, '/nonexistent/x.yaml: no such file');
  });

  it('Should list every problem at once, each with key, value, what is allowed and a suggestion', () => {
    const f = tempFile(
      'many.yaml',
      `${SLOTS_YAML.replace('use: standard-normal', 'use: standard-normall').replace('latent: { use: gaussian }', 'latent: { use: gaussian, gaussian: { dim: -1 } }')}train: { epoch: 3, batchSize: 0 }\ndata: { binarize: dynamc }\n`,
    );
    expectThrowExact(
      () => loadExperiment(f, builtins()),
      ConfigError,
      [
        `${f}: 5 problems`,
        `  - prior.use: unknown plugin "standard-normall". Allowed values: ${builtins().names('prior').map((n) => JSON.stringify(n)).join(', ')}. Did you mean "standard-normal"?`,
        '  - data.binarize: must be one of "none", "static", "dynamic"; got "dynamc". Did you mean "dynamic"?',
        '  - train.batchSize: must be an integer in [1, 2147483647]; got 0',
        '  - latent.gaussian.dim: must be an integer in [1, 2147483647]; got -1',
        '  - train.epoch: not a known key (keys here: epochs, batchSize, maxSteps, dropLast, optimizer, schedule, clipNorm, evalEvery, earlyStopping, logEvery, syncEvery, progress, keepCheckpoints, trainable). Did you mean "epochs"?',
      ].join('\n'),
    );
  });

  it('Should say which slot is missing and what it may be', () => {
    const raw = experimentObject();
    delete raw.likelihood;
    expectThrowExact(
      () => experimentFromObject(raw, builtins()),
      ConfigError,
      `likelihood.use: missing; choose a likelihood plugin. Allowed values: ${builtins().names('likelihood').map((n) => JSON.stringify(n)).join(', ')}`,
    );
  });

  it('Should reject settings for a plugin that does not exist in the slot', () => {
    expectThrowExact(
      () => experimentFromObject(experimentObject({ encoder: { use: 'mlp', mpl: { hiddenSizes: [3] } } }), builtins()),
      ConfigError,
      'encoder.mpl: not a plugin of slot encoder (plugins: conv, conv-hierarchy, gated-mlp, ladder, mlp, vq-conv; select one with encoder.use). Did you mean "mlp"?',
    );
  });

  it('Should name the missing data set package before any training', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vaelab-empty-'));
    const f = tempFile('fm.yaml', `${SLOTS_YAML}data: { use: fashion-mnist, dir: ${dir} }\n`);
    expect(() => openSession(loadExperiment(f, builtins())))
      .to.throw(ConfigError)
      .with.property('message')
      .that.matches(new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: data.dir: fashion-mnist: no data at ${dir}`));
  });

  it('Should report encoder/decoder sizes that do not fit the data before any training', () => {
    const f = tempFile('conv-on-points.yaml', `${SLOTS_YAML.replace('encoder: { use: mlp }', 'encoder: { use: conv }')}data: { use: synthetic, synthetic: { kind: mixture2d, size: 32 } }\n`);
    expectThrowExact(
      () => openSession(loadExperiment(f, builtins())),
      ConfigError,
      `${f}: encoder.conv.channels: convolutions need image data; data set "synthetic/mixture2d" has examples of shape [1, 1, 2]`,
    );
  });

  it('Should load a third-party plugin named under plugins: and build the model with it', () => {
    const exp = loadExperiment(path.join(__dirname, 'fixtures', 'with-plugin.yaml'), builtins());
    expect(exp.registry.names('prior')).to.deep.equal([...builtins().names('prior'), 'laplace'].sort());
    const s = openSession(exp);
    expect(s.parts.model.prior.constructor.name).to.equal('LaplacePrior');
  });

  describe('a third-party plugin in training @slow', () => {
    it('Should train with the plugin named under plugins: for 200 steps and lower the loss (last 20 < 0.8 x first 20)', async () => {
      // 64 synthetic shapes, batch 16: 4 steps an epoch, 50 epochs = 200 steps; a loss line every step.
      const overrides = [
        'train.epochs=50',
        'train.batchSize=16',
        'train.logEvery=1',
        'train.evalEvery=0',
        'train.progress=none',
        'train.optimizer.learningRate=1e-2',
        'eval.iwSamples=0',
        'eval.images=false',
      ];
      const exp = loadExperiment(path.join(__dirname, 'fixtures', 'with-plugin.yaml'), builtins(), overrides);
      const session = openSession(exp);
      expect(session.parts.model.prior.constructor.name).to.equal('LaplacePrior');
      const run = RunDir.create(fs.mkdtempSync(path.join(os.tmpdir(), 'vaelab-plugin-')), session.config.name, session.config.seed);
      const result = await train(session, { run, backend: 'cpu', log: () => undefined, handleSignals: false });
      expect(result.status).to.equal('completed');
      expect(result.steps).to.equal(200);
      const losses = run.readMetrics().filter((r) => r.kind === 'step').map((r) => r['train/loss'] as number);
      expect(losses).to.have.length(200);
      expect(losses.every(Number.isFinite), 'every step loss is finite').to.equal(true);
      const mean = (a: number[]) => a.reduce((t, v) => t + v, 0) / a.length;
      expect(mean(losses.slice(-20))).to.be.below(0.8 * mean(losses.slice(0, 20)));
    });
  });

  it('Should report a plugin module that cannot be found or exports no plugins', () => {
    const f = tempFile('p.yaml', `plugins: [./nope.ts]\n${SLOTS_YAML}`);
    expectThrowExact(() => loadExperiment(f, builtins()), ConfigError, `${f}: plugins[0]: cannot find module "./nope.ts" (looked from ${path.dirname(f)})`);
    const g = tempFile('q.yaml', `plugins: [${path.join(__dirname, 'kits', 'build.ts')}]\n${SLOTS_YAML}`);
    expectThrowExact(
      () => loadExperiment(g, builtins()),
      ConfigError,
      `${g}: plugins[0]: module ${JSON.stringify(path.join(__dirname, 'kits', 'build.ts'))} exports no "plugins" array`,
    );
  });

  it('Should reject keys given to a plugin that declares none, and a plugin sub-tree that is not a mapping', () => {
    expectThrowExact(
      () => experimentFromObject(experimentObject({ prior: { use: 'standard-normal', 'standard-normal': { dim: 3 } } }), builtins()),
      ConfigError,
      'prior.standard-normal.dim: not declared in the schema of plugin "standard-normal" (it has no keys)',
    );
    expectThrowExact(
      () => experimentFromObject(experimentObject({ latent: { use: 'gaussian', gaussian: 5 } }), builtins()),
      ConfigError,
      'latent.gaussian: must be a mapping of plugin "gaussian"\'s keys; got number 5',
    );
  });

  it('Should report a plugin registered twice with both sources', () => {
    const reg = builtins();
    const dup = reg.get('prior', 'standard-normal')!;
    expectThrowExact(
      () => reg.addAll([{ ...dup, source: undefined }], 'my-plugins.ts'),
      RegistrationError,
      'definePlugin: prior "standard-normal" is registered twice (plugins/index.ts, my-plugins.ts)',
    );
  });

});
