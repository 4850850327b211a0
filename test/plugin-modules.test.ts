/**
 * Modules named under an experiment's `plugins:`: TypeScript type-checked with the nearest
 * tsconfig.json before it runs, and every failure (type error, syntax error, a throw while
 * loading) reported on one line per problem with the module's file, line and column.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadExperiment } from '../core/config/experiment';
import { ConfigError } from '../core/errors';
import { builtins } from './kits/build';
import { expectThrowExact, makeTempDir, removeDir } from './data/helpers';

const SLOTS_YAML = `encoder: { use: mlp }
latent: { use: gaussian }
decoder: { use: mlp }
prior: { use: standard-normal }
likelihood: { use: bernoulli }
objective: { use: elbo }
`;

const made: string[] = [];

/** A temp folder (under the OS temp folder: no tsconfig.json above it) holding `files` and e.yaml naming `spec`. */
function project(spec: string, files: Record<string, string>): { dir: string; exp: string } {
  const dir = makeTempDir('modules');
  made.push(dir);
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
  const exp = path.join(dir, 'e.yaml');
  fs.writeFileSync(exp, `plugins: [${spec}]\n${SLOTS_YAML}`);
  return { dir, exp };
}

describe('plugin modules', () => {
  after(() => made.forEach(removeDir));

  it('Should name the file and line of a JavaScript syntax error', () => {
    const { dir, exp } = project('./bad.js', { 'bad.js': 'module.exports = {\n  plugins: [],\n  scale 2,\n};\n' });
    expectThrowExact(
      () => loadExperiment(exp, builtins()),
      ConfigError,
      `${exp}: plugins[0]: module "./bad.js" failed to load: ${dir}/bad.js:3: SyntaxError: Unexpected number`,
    );
  });

  it('Should name the line and column where a module throws while loading', () => {
    const { dir, exp } = project('./throws.js', { 'throws.js': "'use strict';\nconst scale = -1;\nif (scale < 0) throw new RangeError('scale must be positive');\n" });
    expectThrowExact(
      () => loadExperiment(exp, builtins()),
      ConfigError,
      `${exp}: plugins[0]: module "./throws.js" failed to load: ${dir}/throws.js:3:22: RangeError: scale must be positive`,
    );
  });

  describe('TypeScript @slow', () => {
    it('Should report a type error with file, line, column and the compiler message', () => {
      const { dir, exp } = project('./typo.prior.ts', { 'typo.prior.ts': 'export const plugins = [];\nexport const scale: number = "wide";\n' });
      expectThrowExact(
        () => loadExperiment(exp, builtins()),
        ConfigError,
        `${exp}: plugins[0]: module "./typo.prior.ts" failed to load: ${dir}/typo.prior.ts:2:14: Type 'string' is not assignable to type 'number' (TS2322)`,
      );
    });

    it('Should list every syntax error of a TypeScript module, one line each', () => {
      const { dir, exp } = project('./syntax.prior.ts', { 'syntax.prior.ts': 'export const plugins = [\n  { slot: ;\n];\n' });
      expectThrowExact(
        () => loadExperiment(exp, builtins()),
        ConfigError,
        [
          `${exp}: 2 problems`,
          `  - plugins[0]: module "./syntax.prior.ts" failed to load: ${dir}/syntax.prior.ts:2:11: Expression expected (TS1109)`,
          `  - plugins[0]: module "./syntax.prior.ts" failed to load: ${dir}/syntax.prior.ts:3:1: Property assignment expected (TS1136)`,
        ].join('\n'),
      );
    });

    it('Should check the TypeScript files the module imports from its folder', () => {
      const { dir, exp } = project('./main.ts', {
        'main.ts': "import { halve } from './lib/math';\nexport const plugins = [];\nexport const h = halve(4);\n",
        'lib/math.ts': 'export function halve(x: number): string {\n  return x / 2;\n}\n',
      });
      expectThrowExact(
        () => loadExperiment(exp, builtins()),
        ConfigError,
        `${exp}: plugins[0]: module "./main.ts" failed to load: ${dir}/lib/math.ts:2:3: Type 'number' is not assignable to type 'string' (TS2322)`,
      );
    });

    it("Should check with the module's nearest tsconfig.json, and load it when it type-checks", () => {
      // Implicit any is an error only under "strict": the same file loads without the tsconfig.
      const text = 'export const plugins = [];\nexport function twice(x) {\n  return 2 * x;\n}\n';
      const strict = project('./src/loose.ts', { 'src/loose.ts': text, 'tsconfig.json': '{ "compilerOptions": { "strict": true } }' });
      expectThrowExact(
        () => loadExperiment(strict.exp, builtins()),
        ConfigError,
        `${strict.exp}: plugins[0]: module "./src/loose.ts" failed to load: ${strict.dir}/src/loose.ts:2:23: Parameter 'x' implicitly has an 'any' type (TS7006)`,
      );
      const loose = project('./src/loose', { 'src/loose.ts': text });
      expect(loadExperiment(loose.exp, builtins()).registry.names('prior')).to.deep.equal(builtins().names('prior'));
    });

    it('Should skip the type check with VAELAB_TYPECHECK=0', () => {
      const { exp } = project('./typo.prior.ts', { 'typo.prior.ts': 'export const plugins = [];\nexport const scale: number = "wide";\n' });
      process.env.VAELAB_TYPECHECK = '0';
      try {
        expect(loadExperiment(exp, builtins()).registry.names('prior')).to.deep.equal(builtins().names('prior'));
      } finally {
        delete process.env.VAELAB_TYPECHECK;
      }
    });

    it('Should stop the CLI with exit code 2 and one line naming the file when a plugin does not type-check', () => {
      const { dir, exp } = project('./typo.prior.ts', { 'typo.prior.ts': 'export const plugins = [];\nexport const scale: number = "wide";\n' });
      const r = spawnSync(process.execPath, [path.join(__dirname, '..', 'bin', 'vaelab.js'), 'validate', exp], {
        cwd: dir,
        encoding: 'utf8',
        env: { ...process.env, VAELAB_BACKEND: 'cpu' },
      });
      expect(r.status, r.stderr).to.equal(2);
      // Inside the working directory, files are shown relative to it.
      expect(r.stderr.trim()).to.equal(`${exp}: plugins[0]: module "./typo.prior.ts" failed to load: typo.prior.ts:2:14: Type 'string' is not assignable to type 'number' (TS2322)`);
    });
  });
});

describe('plugin modules: one copy of tfjs-core and inversify', () => {
  it('Should refuse a plugin folder that would load its own copy of @tensorflow/tfjs-core, before loading it', () => {
    const { dir, exp } = project('./p.js', {
      'p.js': "require('@tensorflow/tfjs-core'); exports.plugins = [];\n",
      // A second copy, as `npm install` inside a plugin folder with tfjs-core as a dependency gives.
      'node_modules/@tensorflow/tfjs-core/package.json': '{ "name": "@tensorflow/tfjs-core", "version": "4.22.0", "main": "index.js" }\n',
      'node_modules/@tensorflow/tfjs-core/index.js': "throw new Error('the second copy must not be loaded');\n",
    });
    const theirs = fs.realpathSync(path.join(dir, 'node_modules/@tensorflow/tfjs-core/index.js'));
    const ours = fs.realpathSync(require.resolve('@tensorflow/tfjs-core'));
    const shown = (f: string) => (path.relative(process.cwd(), f).startsWith('..') ? f : path.relative(process.cwd(), f));
    expectThrowExact(
      () => loadExperiment(exp, builtins()),
      ConfigError,
      `${exp}: plugins[0]: module "./p.js" failed to load: it would load its own copy of @tensorflow/tfjs-core (${shown(theirs)}) besides vaelab's (${shown(ours)}); list @tensorflow/tfjs-core under peerDependencies of the plugin's package.json and remove its own copy`,
    );
  });
});
