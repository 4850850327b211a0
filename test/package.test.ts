/**
 * vaelab as a plugin author gets it: `npm pack` (which builds dist/ from the current sources),
 * the tarball installed into a fresh folder outside the repository holding a copy of
 * examples/laplace-prior (the README's plugin package), and there: the plugin built against
 * vaelab's declarations, its own tests run with the public conformance kit (`vaelab/testing`),
 * one copy of tfjs-core and inversify, one epoch of `npx vaelab train` on synthetic data
 * loading the plugin's TypeScript source, and `npx vaelab dashboard` serving its page.
 *
 * The install works offline from npm's cache once `npm ci` has run here: every dependency of the
 * example is also one of vaelab's, at the same version.
 */
import { expect } from 'chai';
import { execFileSync, spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeRuns } from './fixtures/make-runs';

const ROOT = path.join(__dirname, '..');
const EXAMPLE = path.join(ROOT, 'examples', 'laplace-prior');
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** The environment without the npm_* variables of an enclosing `npm test`, which would steer the inner npm. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  return { ...env, ...extra };
}

function run(cmd: string, args: string[], cwd: string, extra: Record<string, string> = {}): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd, env: cleanEnv(extra), encoding: 'utf8', timeout: 180000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) exited with ${r.status ?? r.signal}\n${r.stdout}\n${r.stderr}`);
  return r;
}

describe('README', () => {
  it("Should show, under \"Writing a plugin\", the example plugin's source exactly as the package test runs it", () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Writing a plugin'));
    const block = /```ts\n([\s\S]*?)```/.exec(section);
    expect(block?.[1]).to.equal(fs.readFileSync(path.join(EXAMPLE, 'src', 'laplace.prior.ts'), 'utf8'));
  });
});

describe('installed package: npm pack, install outside the repository, then build, test and train a plugin there @slow @package', function () {
  this.timeout(240000);
  let work = '';
  let plugin = '';
  let tarball = '';
  let files: string[] = [];

  before(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'vaelab-package-'));
    plugin = path.join(work, 'laplace-prior');
    // The repository must not be an ancestor of the install, or Node would resolve from it.
    expect(path.relative(ROOT, work).startsWith('..')).to.equal(true);
    const packed = JSON.parse(run(NPM, ['pack', '--json', '--pack-destination', work], ROOT).stdout.replace(/^[^[]*/, '')) as Array<{ filename: string; files: Array<{ path: string }> }>;
    tarball = path.join(work, packed[0].filename);
    files = packed[0].files.map((f) => f.path).sort();
    fs.cpSync(EXAMPLE, plugin, { recursive: true, filter: (src) => !/[\\/](node_modules|dist|runs)$/.test(src) });
    run(NPM, ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball], plugin);
  });

  after(() => {
    if (work !== '') fs.rmSync(work, { recursive: true, force: true });
  });

  it('Should pack the compiled code with declarations, the CLI and the native sources, and no tests, bench, CI or build leftovers', () => {
    for (const f of [
      'bin/vaelab.js',
      'dist/core/index.js',
      'dist/core/index.d.ts',
      'dist/core/cli.js',
      'dist/plugins/index.js',
      'dist/plugins/index.d.ts',
      'dist/testing/index.js',
      'dist/testing/index.d.ts',
      // what the install script (scripts/build-native.js) needs to build the native pack
      'scripts/build-native.js',
      'native/binding.gyp',
      'native/find-openblas.js',
      'native/src/vaelab_native.c',
      // the dashboard's page, which tsc does not emit (scripts/build.js copies it)
      'dist/core/dashboard/page/index.html',
      'dist/core/dashboard/page/app.js',
      'dist/core/dashboard/page/style.css',
      // the font plots are drawn with
      'assets/fonts/DejaVuSans.ttf',
      'assets/fonts/DejaVuSans.LICENSE',
      'package.json',
      'README.md',
    ]) {
      expect(files, f).to.include(f);
    }
    const unwanted = files.filter(
      (f) =>
        /(^|\/)(test|bench|examples|\.ci|node_modules)\//.test(f) ||
        /\.test\.|\.log$|^native\/build\/|\.tsbuildinfo$|^dist\/\.built$/.test(f) ||
        (/\.ts$/.test(f) && !/\.d\.ts$/.test(f)),
    );
    expect(unwanted).to.deep.equal([]);
  });

  it('Should install one copy of tfjs-core and inversify, shared by vaelab and the plugin (instanceof tf.Variable holds across)', () => {
    const ls = run(NPM, ['ls', '--all', '--parseable', '@tensorflow/tfjs-core', 'inversify'], plugin).stdout.trim().split('\n');
    expect(ls.map((p) => path.relative(plugin, p)).sort()).to.deep.equal([
      path.join('node_modules', '@tensorflow', 'tfjs-core'),
      path.join('node_modules', 'inversify'),
    ]);
    // The plugin's tfjs-core is vaelab's: a variable it creates is tracked as one by vaelab's Module.
    const probe = `
      const tf = require('@tensorflow/tfjs-core');
      const { Module } = require('vaelab');
      const vaelabTf = require(require.resolve('@tensorflow/tfjs-core', { paths: [require('path').dirname(require.resolve('vaelab'))] }));
      class Probe extends Module { constructor() { super(); this.track('w', tf.variable(tf.zeros([2]))); } }
      process.stdout.write(JSON.stringify({ same: vaelabTf === tf, variables: [...new Probe().variables().keys()] }));`;
    const out = JSON.parse(execFileSync(process.execPath, ['-e', probe], { cwd: plugin, env: cleanEnv(), encoding: 'utf8' })) as unknown;
    expect(out).to.deep.equal({ same: true, variables: ['w'] });
  });

  it('Should export vaelab (= vaelab/core), vaelab/testing and vaelab/plugins as compiled JavaScript, and no deep paths', () => {
    const probe = `
      const entry = (id) => require.resolve(id).slice(require('path').dirname(require.resolve('vaelab/package.json')).length + 1);
      let deep;
      try { require.resolve('vaelab/dist/core/nn'); deep = 'resolved'; } catch (e) { deep = e.code; }
      process.stdout.write(JSON.stringify({
        entries: ['vaelab', 'vaelab/core', 'vaelab/testing', 'vaelab/plugins'].map(entry),
        sameCore: require('vaelab') === require('vaelab/core'),
        kit: typeof require('vaelab/testing').describeConformance,
        builtins: require('vaelab/plugins').plugins.map((p) => p.slot + '/' + p.name).includes('prior/standard-normal'),
        deep,
      }));`;
    const out = JSON.parse(execFileSync(process.execPath, ['-e', probe], { cwd: plugin, env: cleanEnv(), encoding: 'utf8' })) as unknown;
    expect(out).to.deep.equal({
      entries: ['dist/core/index.js', 'dist/core/index.js', 'dist/testing/index.js', 'dist/plugins/index.js'].map((f) => path.normalize(f)),
      sameCore: true,
      kit: 'function',
      builtins: true,
      deep: 'ERR_PACKAGE_PATH_NOT_EXPORTED',
    });
  });

  it('Should build the plugin against the installed declarations of vaelab', () => {
    run(NPM, ['run', 'build'], plugin);
    expect(fs.readdirSync(path.join(plugin, 'dist')).sort()).to.deep.equal(['laplace.prior.d.ts', 'laplace.prior.js']);
  });

  it("Should pass the plugin's tests, written with the public conformance kit", () => {
    const r = run(NPM, ['test'], plugin);
    expect(r.stdout).to.match(/\b[1-9]\d* passing\b/);
    expect(r.stdout).to.not.match(/\bfailing\b/);
  });

  it('Should train the plugin for one epoch with npx vaelab train, loading its TypeScript source', () => {
    const r = run('npx', ['vaelab', 'train', 'experiment.yaml', '--out', path.join(work, 'runs')], plugin);
    const runDir = path.join(work, 'runs', 'laplace-prior', fs.readdirSync(path.join(work, 'runs', 'laplace-prior'))[0]);
    const summary = JSON.parse(fs.readFileSync(path.join(runDir, 'summary.json'), 'utf8')) as { status: string };
    expect(summary.status, r.stderr).to.equal('completed');
    const config = JSON.parse(fs.readFileSync(path.join(runDir, 'config.json'), 'utf8')) as { prior: { use: string }; plugins: string[] };
    expect(config.prior.use).to.equal('laplace');
    expect(config.plugins).to.deep.equal([path.join(plugin, 'src', 'laplace.prior.ts')]);
    expect(r.stderr).to.contain('epoch 1/1:');
  });

  it('Should serve the dashboard from the installed package: its page as packed, its script and style, vega from node_modules, the index', async () => {
    const made = makeRuns(path.join(work, 'dashboard-runs'), { runs: 2, lines: 20, staged: false, sweep: false, bad: false });
    // a process group of its own: npx and the server it starts are stopped together
    const child = spawn('npx', ['vaelab', 'dashboard', '--port', '0', made.root], { cwd: plugin, env: cleanEnv(), detached: true });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = '';
        let err = '';
        child.stdout.on('data', (c: Buffer) => {
          out += c.toString();
          const m = /(http:\/\/\S+)/.exec(out);
          if (m) resolve(m[1]);
        });
        child.stderr.on('data', (c: Buffer) => (err += c.toString()));
        child.on('exit', (code) => reject(new Error(`npx vaelab dashboard exited with ${code}: ${out}${err}`)));
      });
      const get = async (p: string) => {
        const r = await fetch(new URL(p, url));
        return { status: r.status, type: r.headers.get('content-type'), body: await r.text() };
      };
      const packed = (name: string) => fs.readFileSync(path.join(plugin, 'node_modules', 'vaelab', 'dist', 'core', 'dashboard', 'page', name), 'utf8');
      expect(await get('/')).to.deep.equal({ status: 200, type: 'text/html; charset=utf-8', body: packed('index.html') });
      expect(await get('/page/app.js')).to.deep.equal({ status: 200, type: 'text/javascript; charset=utf-8', body: packed('app.js') });
      expect(await get('/page/style.css')).to.deep.equal({ status: 200, type: 'text/css; charset=utf-8', body: packed('style.css') });
      for (const lib of ['vega', 'vega-lite', 'vega-embed']) {
        const v = await get(`/vendor/${lib}.js`);
        expect([v.status, v.type, v.body.length > 10000], lib).to.deep.equal([200, 'text/javascript; charset=utf-8', true]);
      }
      const ix = JSON.parse((await get('/api/index')).body) as { runs: Array<{ id: string }> };
      expect(ix.runs.map((r) => r.id).sort()).to.deep.equal([...made.runs].sort());
    } finally {
      process.kill(-child.pid!, 'SIGINT');
    }
  });
});
