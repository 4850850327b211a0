/**
 * Hostile experiments: mutations of experiments/vae-mnist.yaml that a typo, a script or an
 * attacker could produce (alias bombs, deep nesting, a 10 MB string, sizes out of range or too
 * large for memory, NaN and Infinity, wrong types at every level, unknown plugins, keys named
 * like an object's own properties). Each must end in one ConfigError that names the file or the
 * key (the exact text for the important ones), never another exception, and quickly: before any
 * data set is read for a config problem, and before the weights of a model too large for memory
 * are allocated.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { applyOverrides, experimentFromObject, loadExperiment, readExperimentFile } from '../core/config/experiment';
import type { Slot } from '../core/contracts';
import { ConfigError } from '../core/errors';
import type { Module } from '../core/nn';
import { openSession } from '../core/session';
import { builtins } from './kits/build';

const VAE_MNIST = path.join(__dirname, '..', 'experiments', 'vae-mnist.yaml');
const VAE_MNIST_TEXT = fs.readFileSync(VAE_MNIST, 'utf8');

/** Every refusal comes within this bound (they take milliseconds; an expansion or a hang would not). */
const TIME_BOUND_MS = 5000;

type Raw = Record<string, unknown>;

/** vae-mnist.yaml as an object, on 8 synthetic 14x14 shapes (196 values each) instead of MNIST. */
function vaeMnist(): Raw {
  const raw = readExperimentFile(VAE_MNIST);
  raw.data = { use: 'synthetic', synthetic: { kind: 'shapes', size: 8 } };
  return raw;
}

function tempFile(name: string, text: string): string {
  const f = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vaelab-mutation-')), name);
  fs.writeFileSync(f, text);
  return f;
}

/** Runs `fn`, which must throw a ConfigError within TIME_BOUND_MS; returns it. */
function refused(fn: () => unknown): ConfigError {
  const t0 = Date.now();
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  const ms = Date.now() - t0;
  if (!(thrown instanceof ConfigError)) {
    throw new Error(`expected a ConfigError; got ${thrown instanceof Error ? (thrown.stack ?? thrown.message) : `no error (${String(thrown)})`}`);
  }
  expect(ms, `refused after ${ms} ms`).to.be.below(TIME_BOUND_MS);
  return thrown;
}

/** Sets a dotted path of a plain object (lists and mappings alike). */
function setAt(raw: Raw, key: string, value: unknown): Raw {
  const parts = key.split('.');
  let cur = raw;
  for (const p of parts.slice(0, -1)) cur = cur[p] as Raw;
  cur[parts[parts.length - 1]] = value;
  return raw;
}

/** Builds the experiment and its model, as `vaelab validate` does. */
const session = (raw: Raw) => openSession(experimentFromObject(raw, builtins()));

const allowed = (slot: Slot) => builtins().names(slot).map((n) => JSON.stringify(n)).join(', ');

describe('hostile experiment files', () => {
  it('Should refuse a billion-laughs alias bomb, naming the file and the expanded size, without expanding it', () => {
    const levels = 'abcdefghi'.split('');
    const text = levels
      .map((name, i) => `${name}: &${name} [${Array.from({ length: 10 }, () => (i === 0 ? 'lol' : `*${levels[i - 1]}`)).join(', ')}]`)
      .join('\n');
    const f = tempFile('bomb.yaml', `${text}\n`);
    // Level k (a = 1 ... i = 9) is a list of 10 copies of level k - 1: (10^(k+1) - 1) / 9 values
    // (11, 111, ..., 1111111111), summing to 1234567899; plus the mapping and its 9 keys.
    expect(refused(() => loadExperiment(f, builtins())).message).to.equal(
      `${f}: the YAML document holds 1234567909 values with its aliases (*name) expanded; at most 100000 are allowed`,
    );
  });

  it('Should refuse an alias bomb inside vae-mnist.yaml as well', () => {
    const bomb = '&a [0,0,0,0,0,0,0,0,0,0]\nx1: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nx2: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nx3: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\nx4: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n';
    const f = tempFile('vae-mnist.yaml', `${VAE_MNIST_TEXT}\nx0: ${bomb}`);
    expect(refused(() => loadExperiment(f, builtins())).message).to.match(
      new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: the YAML document holds \\d+ values with its aliases \\(\\*name\\) expanded; at most 100000 are allowed$`),
    );
  });

  it('Should refuse an alias bomb in a --set value, naming the key', () => {
    const ten = (x: string) => `[${Array(10).fill(x).join(',')}]`;
    const value = `[&a ${ten('0')}, &b ${ten('*a')}, &c ${ten('*b')}, &d ${ten('*c')}, &e ${ten('*d')}]`;
    // The outer list, then 11 + 111 + 1111 + 11111 + 111111 values for a to e.
    expect(refused(() => applyOverrides(vaeMnist(), [`encoder.mlp.hiddenSizes=${value}`])).message).to.equal(
      '--set "encoder.mlp.hiddenSizes": the YAML value holds 123456 values with its aliases (*name) expanded; at most 100000 are allowed',
    );
  });

  it('Should still read a few aliases, as YAML allows', () => {
    const net = 'mlp: { hiddenSizes: [400], activation: relu }';
    const text = VAE_MNIST_TEXT.replace(net, 'mlp: &net { hiddenSizes: [400], activation: relu }').replace(net, 'mlp: *net');
    expect(text).to.contain('mlp: *net');
    const f = tempFile('aliases.yaml', text);
    const { config } = loadExperiment(f, builtins());
    expect((config.decoder.mlp as { hiddenSizes: number[] }).hiddenSizes).to.deep.equal([400]);
  });

  // encoder, mlp and hiddenSizes are levels 2 to 4 (the file is level 1): level 33 is the list
  // at hiddenSizes followed by 29 [0]; the path is cut after 80 characters.
  const deepPath = `encoder.mlp.hiddenSizes${'[0]'.repeat(19)}...`;
  const deepMessage = `${deepPath}: nested more than 32 levels deep (mappings and lists); at most 32 are allowed`;

  it('Should refuse lists nested 40 deep in YAML, naming the key', () => {
    const f = tempFile('deep.yaml', VAE_MNIST_TEXT.replace('hiddenSizes: [400]', `hiddenSizes: ${'['.repeat(40)}400${']'.repeat(40)}`));
    expect(refused(() => loadExperiment(f, builtins())).message).to.equal(`${f}: ${deepMessage}`);
  });

  it('Should refuse lists nested 100 000 deep in YAML (too deep for the YAML reader), naming the file', () => {
    const f = tempFile('deeper.yaml', VAE_MNIST_TEXT.replace('hiddenSizes: [400]', `hiddenSizes: ${'['.repeat(100000)}${']'.repeat(100000)}`));
    expect(refused(() => loadExperiment(f, builtins())).message).to.equal(`${f}: malformed YAML: nested too deeply to read; at most 32 levels are allowed`);
  });

  it('Should refuse lists nested 100 000 deep in JSON, naming the key', () => {
    const json = JSON.stringify(vaeMnist()).replace('"hiddenSizes":[400]', `"hiddenSizes":${'['.repeat(100000)}${']'.repeat(100000)}`);
    const f = tempFile('deep.json', json);
    expect(refused(() => loadExperiment(f, builtins())).message).to.equal(`${f}: ${deepMessage}`);
    expect(refused(() => experimentFromObject(JSON.parse(json) as Raw, builtins())).message).to.equal(deepMessage);
  });

  const MB10 = 10 * 2 ** 20;

  it('Should refuse a 10 MB string, showing its first 80 characters and its length', () => {
    const f = tempFile('long.yaml', VAE_MNIST_TEXT.replace(/^description: .*$/m, `description: ${'x'.repeat(MB10)}`));
    expect(refused(() => loadExperiment(f, builtins())).message).to.equal(
      `${f}: description: must be a string of at most 4096 characters; got "${'x'.repeat(80)}"... (10485760 characters)`,
    );
  });

  it('Should refuse a 10 MB plugin name and a 10 MB key the same way', () => {
    expect(refused(() => experimentFromObject(setAt(vaeMnist(), 'likelihood.use', 'b'.repeat(MB10)), builtins())).message).to.equal(`likelihood.use: unknown plugin "${'b'.repeat(80)}"... (10485760 characters). Allowed values: ${allowed('likelihood')}`);
    const raw = vaeMnist();
    (raw.train as Raw)['k'.repeat(MB10)] = 1;
    // "train." and the first 74 characters of the key make 80.
    expect(refused(() => experimentFromObject(raw, builtins())).message).to.match(
      new RegExp(`^train\\.k{74}\\.\\.\\. \\(10485766 characters\\): not a known key \\(keys here: epochs, batchSize, `),
    );
  });

  it('Should refuse keys named like an object property, and change no prototype', () => {
    const raw = vaeMnist();
    Object.defineProperty(raw, '__proto__', { value: { polluted: true }, enumerable: true, configurable: true, writable: true });
    expect(refused(() => experimentFromObject(raw, builtins())).message).to.match(/^__proto__: not a known key \(keys here: name, description, seed, /);
    const json = tempFile('proto.json', JSON.stringify(vaeMnist()).replace('{', '{"__proto__":{"polluted":true},'));
    expect(refused(() => loadExperiment(json, builtins())).message).to.match(new RegExp(`: __proto__: not a known key \\(keys here: `));
    const yaml = tempFile('proto.yaml', `${VAE_MNIST_TEXT}\n__proto__: { polluted: true }\n`);
    expect(refused(() => loadExperiment(yaml, builtins())).message).to.match(new RegExp(`: __proto__: not a known key \\(keys here: `));
    expect(refused(() => experimentFromObject(setAt(vaeMnist(), 'encoder.mlp.constructor', { prototype: { polluted: true } }), builtins())).message).to.equal(
      'encoder.mlp.constructor: not declared in the schema of plugin "mlp" (keys: hiddenSizes, activation, conditioned)',
    );
    expect(({} as Raw).polluted).to.equal(undefined);
  });

  // [key, value, exact message]: a mutation of one key of vae-mnist.yaml and its one-line refusal.
  const values: Array<[string, unknown, string]> = [
    ['latent.gaussian.dim', 1e308, 'latent.gaussian.dim: must be an integer in [1, 2147483647]; got 1e+308'],
    ['latent.gaussian.dim', 2 ** 31, 'latent.gaussian.dim: must be an integer in [1, 2147483647]; got 2147483648'],
    ['latent.gaussian.dim', -5, 'latent.gaussian.dim: must be an integer in [1, 2147483647]; got -5'],
    ['latent.gaussian.dim', 2.5, 'latent.gaussian.dim: must be an integer in [1, 2147483647]; got 2.5'],
    ['latent.gaussian.dim', NaN, 'latent.gaussian.dim: must be an integer in [1, 2147483647]; got NaN'],
    ['latent.gaussian.dim', Infinity, 'latent.gaussian.dim: must be an integer in [1, 2147483647]; got Infinity'],
    ['latent.gaussian.dim', 'NaN', 'latent.gaussian.dim: must be an integer in [1, 2147483647]; got "NaN"'],
    ['latent.gaussian.dim', '20', 'latent.gaussian.dim: must be an integer in [1, 2147483647]; got "20"'],
    ['latent.gaussian.dim', [20], 'latent.gaussian.dim: must be an integer in [1, 2147483647]; got [20]'],
    ['latent.gaussian.dim', { value: 20 }, 'latent.gaussian.dim: must be an integer in [1, 2147483647]; got {"value":20}'],
    ['train.optimizer.learningRate', NaN, 'train.optimizer.learningRate: must be a positive number; got NaN'],
    ['train.optimizer.learningRate', -Infinity, 'train.optimizer.learningRate: must be a positive number; got -Infinity'],
    ['train.optimizer.learningRate', 'Infinity', 'train.optimizer.learningRate: must be a positive number; got "Infinity"'],
    ['train.epochs', 1e21, 'train.epochs: must be an integer in [1, 2147483647]; got 1e+21'],
    ['seed', -1, 'seed: must be an integer in [0, 2147483647]; got -1'],
    ['data.synthetic.size', 2 ** 31 - 1, '<session>data.synthetic.size: must be an integer in [1, 1000000]; got 2147483647'],
    ['encoder.mlp.hiddenSizes', [-1], 'encoder.mlp.hiddenSizes: must be a list of at most 1024 integers in [1, 2147483647]; got [-1]'],
    ['encoder.mlp.hiddenSizes', [0], 'encoder.mlp.hiddenSizes: must be a list of at most 1024 integers in [1, 2147483647]; got [0]'],
    ['encoder.mlp.hiddenSizes', [400, NaN], 'encoder.mlp.hiddenSizes: must be a list of at most 1024 integers in [1, 2147483647]; got [400,NaN]'],
    ['encoder.mlp.hiddenSizes', [1e308], 'encoder.mlp.hiddenSizes: must be a list of at most 1024 integers in [1, 2147483647]; got [1e+308]'],
    ['encoder.mlp.hiddenSizes', '400', 'encoder.mlp.hiddenSizes: must be a list of at most 1024 integers in [1, 2147483647]; got "400"'],
    ['encoder.mlp.hiddenSizes', { 0: 400 }, 'encoder.mlp.hiddenSizes: must be a list of at most 1024 integers in [1, 2147483647]; got {"0":400}'],
    [
      'encoder.mlp.hiddenSizes',
      Array(2000).fill(1),
      // 1,1,... is 2 characters an entry: the cut keeps "[" and 79 more.
      `encoder.mlp.hiddenSizes: must be a list of at most 1024 integers in [1, 2147483647]; got [${'1,'.repeat(39)}1... (2000 entries)`,
    ],
    ['encoder.mlp.activation', 'reLU', 'encoder.mlp.activation: must be one of "relu", "elu", "leaky-relu", "tanh", "sigmoid", "softplus", "selu", "swish", "linear"; got "reLU". Did you mean "relu"?'],
    ['encoder.use', 'mlpp', `encoder.use: unknown plugin "mlpp". Allowed values: ${allowed('encoder')}. Did you mean "mlp"?`],
    ['decoder.use', 7, `decoder.use: must be one of ${allowed('decoder')}; got 7`],
    ['likelihood.use', '', `likelihood.use: unknown plugin "". Allowed values: ${allowed('likelihood')}`],
    ['latent.gaussian', 20, 'latent.gaussian: must be a mapping of plugin "gaussian"\'s keys; got number 20'],
    ['encoder.mlp.hiddenSize', [400], 'encoder.mlp.hiddenSize: not declared in the schema of plugin "mlp" (keys: hiddenSizes, activation, conditioned). Did you mean "hiddenSizes"?'],
  ];
  for (const [key, value, expected] of values) {
    // Marked ones pass the schema and are refused when the session opens (the data set is made).
    const atSession = expected.startsWith('<session>');
    const message = expected.replace('<session>', '');
    it(`Should refuse ${key}: ${typeof value === 'object' ? JSON.stringify(value)?.slice(0, 40) : String(value)} with one line naming the key`, () => {
      const raw = setAt(vaeMnist(), key, value);
      expect(refused(() => (atSession ? session(raw) : experimentFromObject(raw, builtins()))).message).to.equal(message);
    });
  }

  it('Should refuse a wrong type at every level of vae-mnist.yaml, naming the key', () => {
    // Every mapping, list and value of the file, replaced by a value of another type.
    const wrong = (v: unknown): unknown =>
      Array.isArray(v) ? { list: false } : typeof v === 'object' && v !== null ? 7 : typeof v === 'number' ? 'seven' : typeof v === 'string' ? 7 : [true];
    const keys: string[] = [];
    const walk = (v: unknown, at: string) => {
      if (at) keys.push(at);
      if (typeof v === 'object' && v !== null && !Array.isArray(v)) for (const [k, e] of Object.entries(v)) walk(e, at ? `${at}.${k}` : k);
    };
    walk(vaeMnist(), '');
    expect(keys.length).to.be.above(30);
    for (const key of keys) {
      const raw = vaeMnist();
      const parts = key.split('.');
      const parent = parts.slice(0, -1).reduce<Raw>((o, p) => o[p] as Raw, raw);
      setAt(raw, key, wrong(parent[parts[parts.length - 1]]));
      const e = refused(() => session(raw));
      expect(e.problems, key).to.have.length(1);
      expect(e.message.startsWith(`${key}: `), `${key}: ${e.message.slice(0, 200)}`).to.equal(true);
    }
  });

  describe('sizes too large for memory, refused before their weights are allocated', () => {
    const saved = process.env.VAELAB_MAX_PARAMETERS;
    afterEach(() => {
      if (saved === undefined) delete process.env.VAELAB_MAX_PARAMETERS;
      else process.env.VAELAB_MAX_PARAMETERS = saved;
    });

    /** Runs a refused build and checks that tfjs holds no more than `mb` more megabytes after it. */
    function refusedWithin(mb: number, fn: () => unknown): ConfigError {
      const before = tf.memory().numBytes;
      const e = refused(fn);
      expect(tf.memory().numBytes - before).to.be.below(mb * 1e6);
      return e;
    }

    it('Should refuse encoder.mlp.hiddenSizes: [20000000], naming the plugin, the weight and the key', () => {
      // The first weight is [196 synthetic pixels, 20000000]: 3.92e9 values, over 2^31 - 1.
      expect(refusedWithin(1, () => session(setAt(vaeMnist(), 'encoder.mlp.hiddenSizes', [20000000]))).message).to.equal(
        'encoder "mlp" (plugins/index.ts): too large: a [196, 20000000] weight would hold 3920000000 values; one tensor holds at most 2147483647; its sizes: encoder.mlp.hiddenSizes = [20000000]',
      );
    });

    it('Should refuse latent.gaussian.dim: 2000000000 (a valid integer), naming the latent', () => {
      // The location head maps the encoder's 400 features to 2e9 dimensions.
      expect(refusedWithin(5, () => session(setAt(vaeMnist(), 'latent.gaussian.dim', 2000000000))).message).to.equal(
        'latent "gaussian" (plugins/index.ts): too large: a [400, 2000000000] weight would hold 800000000000 values; one tensor holds at most 2147483647; its sizes: latent.gaussian.dim = 2000000000',
      );
    });

    it('Should refuse a model over VAELAB_MAX_PARAMETERS with its parameter count and bytes', () => {
      process.env.VAELAB_MAX_PARAMETERS = '100000';
      // Encoder 196x400 + 400 = 78800; latent heads 2 x (400x20 + 20) = 16040, 94840 in all;
      // the decoder's first weight, 20x400, brings it to 102840 (411360 bytes as float32).
      expect(refusedWithin(1, () => session(vaeMnist())).message).to.equal(
        'decoder "mlp" (plugins/index.ts): too large: a [20, 400] weight would bring the model to 102840 parameters (411.36 kB as float32); the limit is 100000 (VAELAB_MAX_PARAMETERS); its sizes: decoder.mlp.hiddenSizes = [400]',
      );
    });

    it('Should build a model of exactly VAELAB_MAX_PARAMETERS parameters, and refuse one more', () => {
      // 94840 as above, then the decoder: 20x400 + 400 + 400x196 + 196 = 86996; 181836 in all.
      process.env.VAELAB_MAX_PARAMETERS = '181836';
      const s = session(vaeMnist());
      const vars = [s.parts.model.encoder, s.parts.model.latent, s.parts.model.decoder].flatMap((m) => [...(m as unknown as Module).variables().values()]);
      expect(vars.reduce((n, v) => n + v.size, 0)).to.equal(181836);
      process.env.VAELAB_MAX_PARAMETERS = '181835';
      expect(refused(() => session(vaeMnist())).message).to.equal(
        'decoder "mlp" (plugins/index.ts): too large: a [196] weight would bring the model to 181836 parameters (727.34 kB as float32); the limit is 181835 (VAELAB_MAX_PARAMETERS); its sizes: decoder.mlp.hiddenSizes = [400]',
      );
    });

    it('Should refuse a model over half of the machine memory at 16 bytes a parameter, without allocating it', function () {
      delete process.env.VAELAB_MAX_PARAMETERS;
      // One [196, 10900000] weight: 2136400000 parameters, under the tensor bound; 34 GB in
      // training, over half the memory of any machine with less than 68 GB.
      const limit = Math.floor(os.totalmem() / 2 / 16);
      if (limit >= 2136400000) this.skip();
      const e = refusedWithin(1, () => session(setAt(vaeMnist(), 'encoder.mlp.hiddenSizes', [10900000])));
      expect(e.message.startsWith(`encoder "mlp" (plugins/index.ts): too large: a [196, 10900000] weight would bring the model to 2136400000 parameters (8.55 GB as float32); the limit is ${limit} (half of this machine's `)).to.equal(
        true,
        e.message,
      );
      expect(e.message.endsWith(' at 16 bytes each in training; VAELAB_MAX_PARAMETERS sets another); its sizes: encoder.mlp.hiddenSizes = [10900000]')).to.equal(true, e.message);
    });

    it('Should refuse a VAELAB_MAX_PARAMETERS that is not a positive integer', () => {
      process.env.VAELAB_MAX_PARAMETERS = 'lots';
      expect(refused(() => session(vaeMnist())).message).to.equal('VAELAB_MAX_PARAMETERS: must be an integer >= 1; got "lots"');
    });
  });
});

describe('hostile experiment files: plugin modules', () => {
  it('Should say that relative module paths start with "./" when the file is next to the experiment', () => {
    const f = tempFile('exp.yaml', `plugins: [laplace.prior.ts]\n${VAE_MNIST_TEXT}`);
    fs.copyFileSync(path.join(__dirname, 'fixtures', 'plugin-module', 'laplace.prior.ts'), path.join(path.dirname(f), 'laplace.prior.ts'));
    expect(refused(() => loadExperiment(f, builtins())).message).to.equal(
      `${f}: plugins[0]: cannot find module "laplace.prior.ts" (looked from ${path.dirname(f)}); relative paths start with "./": did you mean "./laplace.prior.ts"?`,
    );
  });
});
