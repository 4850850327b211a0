/**
 * The command line as a user meets it: real processes of bin/vaelab.js, their exit codes,
 * output and files, Ctrl-C (SIGINT) included.
 */
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { builtins } from './kits/build';

const BIN = path.join(__dirname, '..', 'bin', 'vaelab.js');
const TINY = path.join(__dirname, 'fixtures', 'tiny.yaml');
const env = { ...process.env, VAELAB_BACKEND: 'cpu' };

function vaelab(args: string[], cwd = process.cwd(), extraEnv: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, env: { ...env, ...extraEnv }, encoding: 'utf8', timeout: 120000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function tempFile(name: string, text: string): string {
  const f = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vaelab-cli-')), name);
  fs.writeFileSync(f, text);
  return f;
}

describe('cli', () => {
  it('Should exit 2 with the file, key, value and allowed values for a bad experiment', () => {
    const f = tempFile('bad.yaml', fs.readFileSync(TINY, 'utf8').replace('use: bernoulli', 'use: bernouli'));
    const r = vaelab(['validate', f]);
    expect(r.code).to.equal(2);
    // Allowed values: every built-in likelihood, sorted.
    expect(r.err.trim()).to.equal(`${f}: likelihood.use: unknown plugin "bernouli". Allowed values: ${builtins().names('likelihood').map((n) => JSON.stringify(n)).join(', ')}. Did you mean "bernoulli"?`);
  });

  it('Should validate a good experiment and report its slots', () => {
    const r = vaelab(['validate', TINY]);
    expect(r.code).to.equal(0);
    expect(r.out).to.contain('valid (encoder=mlp latent=gaussian decoder=mlp prior=standard-normal likelihood=bernoulli objective=elbo;');
  });

  it('Should say in one plain line, without Node\'s warning frame, that the KL is estimated by Monte Carlo', () => {
    const r = vaelab(['validate', TINY, '--set', 'prior.use=mixture']);
    expect(r.code, r.err).to.equal(0);
    expect(r.err.trim()).to.equal('note: KL(q||p) is estimated by Monte Carlo: prior "MixturePrior" offers no closed form for latent "GaussianLatent"');
  });

  it('Should give the note once in a training whose stages each build their model', () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'vaelab-cli-note-'));
    const r = vaelab(['train', path.join(__dirname, 'fixtures', 'two-stage.yaml'), '--out', out, '--set', 'prior.use=mixture', '--set', 'train.progress=none']);
    expect(r.code, r.err).to.equal(0);
    const notes = r.err.split('\n').filter((l) => l.startsWith('note: KL(q||p) is estimated by Monte Carlo'));
    expect(notes).to.deep.equal(['note: KL(q||p) is estimated by Monte Carlo: prior "MixturePrior" offers no closed form for latent "GaussianLatent"']);
  });

  it('Should list every registered plugin with its keys and defaults', () => {
    const r = vaelab(['plugins', '--json']);
    expect(r.code).to.equal(0);
    const list = JSON.parse(r.out) as Array<{ slot: string; name: string; keys: Array<{ key: string; default: unknown }> }>;
    // Every registration of plugins/index.ts, slot by slot in slot order, names sorted.
    expect(list.map((p) => `${p.slot}/${p.name}`)).to.deep.equal(builtins().all().map((d) => `${d.slot}/${d.name}`));
    expect(list.map((p) => `${p.slot}/${p.name}`)).to.include.members(['encoder/mlp', 'latent/gaussian', 'prior/standard-normal', 'likelihood/bernoulli', 'objective/elbo']);
    const dim = list.find((p) => p.name === 'gaussian' && p.slot === 'latent')!.keys.find((k) => k.key === 'latent.gaussian.dim')!;
    expect(dim.default).to.equal(20);
  });

  it('Should reject an unknown backend with a suggestion', () => {
    const r = vaelab(['train', TINY, '--backend', 'wsam']);
    expect(r.code).to.equal(2);
    expect(r.err.trim().split('\n').pop()).to.equal('--backend: unknown backend "wsam". Allowed values: "auto", "node-gpu", "node", "wasm", "cpu". Did you mean "wasm"?');
  });

  it('Should exit 2 with one line naming the file for a YAML alias bomb', () => {
    const lol = (x: string) => `[${Array(10).fill(x).join(', ')}]`;
    // a = [0 x 10] is 11 values, b = [a x 10] 111, ..., f 1111111; with the mapping and its 6 keys
    // 11 + 111 + 1111 + 11111 + 111111 + 1111111 = 1234566, + 7 = 1234573.
    const f = tempFile('bomb.yaml', `a: &a ${lol('0')}\nb: &b ${lol('*a')}\nc: &c ${lol('*b')}\nd: &d ${lol('*c')}\ne: &e ${lol('*d')}\nf: &f ${lol('*e')}\n`);
    const r = vaelab(['validate', f]);
    expect(r.code).to.equal(2);
    expect(r.err).to.equal(`${f}: the YAML document holds 1234573 values with its aliases (*name) expanded; at most 100000 are allowed\n`);
  });

  it('Should exit 2 with one line naming the plugin, the weight and the key for vae-mnist with encoder.mlp.hiddenSizes: [10000000]', () => {
    const text = fs.readFileSync(path.join(__dirname, '..', 'experiments', 'vae-mnist.yaml'), 'utf8');
    const f = tempFile('vae-mnist.yaml', text.replace('hiddenSizes: [400]', 'hiddenSizes: [10000000]'));
    const r = vaelab(['validate', f]);
    expect(r.code).to.equal(2);
    // 784 MNIST pixels x 10000000 hidden units in the first weight.
    expect(r.err).to.equal(
      `${f}: encoder "mlp" (plugins/index.ts): too large: a [784, 10000000] weight would hold 7840000000 values; one tensor holds at most 2147483647; its sizes: encoder.mlp.hiddenSizes = [10000000]\n`,
    );
  });

  it('Should exit 2 with the parameter count and bytes of a model over VAELAB_MAX_PARAMETERS', () => {
    const r = vaelab(['validate', TINY], process.cwd(), { VAELAB_MAX_PARAMETERS: '1000' });
    expect(r.code).to.equal(2);
    // tiny.yaml's first weight: 196 pixels of the 14x14 shapes x 32 hidden units, 4 bytes each.
    expect(r.err).to.equal(
      `${TINY}: encoder "mlp" (plugins/index.ts): too large: a [196, 32] weight would bring the model to 6272 parameters (25.09 kB as float32); the limit is 1000 (VAELAB_MAX_PARAMETERS); its sizes: encoder.mlp.hiddenSizes = [32]\n`,
    );
  });

  it('Should exit 2 naming the module of a plugin that cannot be built', () => {
    const broken = path.join(__dirname, 'fixtures', 'broken-plugins.ts');
    const f = tempFile('broken.yaml', `plugins: [${broken}]\n${fs.readFileSync(TINY, 'utf8').replace('encoder: { use: mlp, mlp: { hiddenSizes: [32] } }', 'encoder: { use: throws-on-build }')}`);
    const r = vaelab(['validate', f]);
    expect(r.code).to.equal(2);
    expect(r.err).to.equal(`encoder "throws-on-build" (${broken}): cannot be built: cannot read properties of undefined (reading "width")\n`);
  });

  describe('train, Ctrl-C, resume, eval, sample @slow', () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'vaelab-cli-run-'));
    let runDir = '';

    it('Should write a checkpoint and exit 130 on SIGINT', async () => {
      const child = spawn(process.execPath, [BIN, 'train', TINY, '--out', out, '--set', 'train.progress=plain', '--set', 'train.logEvery=1', '--set', 'train.syncEvery=1'], { env });
      let err = '';
      let sent = false;
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString();
        if (!sent && /step 5 \|/.test(err)) {
          sent = true;
          child.kill('SIGINT');
        }
      });
      const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
      expect(code, err).to.equal(130);
      expect(err).to.contain('interrupt: finishing the current step, then writing a checkpoint');
      runDir = path.join(out, 'tiny', fs.readdirSync(path.join(out, 'tiny'))[0]);
      expect(fs.existsSync(path.join(runDir, 'checkpoints', 'interrupt.ckpt'))).to.equal(true);
      expect(JSON.parse(fs.readFileSync(path.join(runDir, 'summary.json'), 'utf8')).status).to.equal('interrupted');
    });

    it('Should resume the run to completion', () => {
      const r = vaelab(['train', '--resume', runDir]);
      expect(r.code, r.err).to.equal(0);
      expect(r.err).to.match(/resumed from .*interrupt\.ckpt at step \d+/);
      const summary = JSON.parse(fs.readFileSync(path.join(runDir, 'summary.json'), 'utf8'));
      expect(summary.status).to.equal('completed');
      expect(summary.steps).to.equal(64);
      const again = vaelab(['train', '--resume', runDir]);
      expect(again.code).to.equal(2);
      expect(again.err.trim().split('\n').pop()).to.equal(`--resume: run ${runDir} has already ended (status "completed")`);
    });

    it('Should evaluate the run with a chosen k and write eval.json', () => {
      const r = vaelab(['eval', runDir, '--k', '3']);
      expect(r.code, r.err).to.equal(0);
      const test = JSON.parse(r.out);
      expect(test['test/iw-log-likelihood']).to.be.a('number');
      const record = JSON.parse(fs.readFileSync(path.join(runDir, 'eval.json'), 'utf8'));
      expect(record.iw.k).to.equal(3);
    });

    it('Should add the prior Monte-Carlo estimate with --prior-samples, on the same examples as the IW one', () => {
      const r = vaelab(['eval', runDir, '--k', '3', '--limit', '20', '--prior-samples', '4']);
      expect(r.code, r.err).to.equal(0);
      const record = JSON.parse(fs.readFileSync(path.join(runDir, 'eval.json'), 'utf8'));
      expect(record.prior).to.include({ k: 4, examples: 20 });
      expect(record.iw).to.include({ k: 3, examples: 20 });
      expect(record.test['test/prior-log-likelihood']).to.be.a('number').and.to.be.below(0);
      expect(record.test['test/prior-log-likelihood-se']).to.be.above(0);
    });

    it('Should refuse disentanglement metrics for a run not trained on the data set with known factors', () => {
      const r = vaelab(['eval', runDir, '--k', '2', '--disentanglement']);
      expect(r.code).to.equal(2);
      expect(r.err.trim().split('\n').pop()).to.equal(
        `eval --disentanglement: needs a run trained on data.use: dsprites (the data set whose factors of variation are known); run ${JSON.stringify(runDir)} was trained on data.use: synthetic`,
      );
    });

    it('Should draw a sample grid into a PNG', () => {
      const file = path.join(out, 'grid.png');
      const r = vaelab(['sample', runDir, '--n', '9', '--out', file]);
      expect(r.code, r.err).to.equal(0);
      const png = PNG.sync.read(fs.readFileSync(file));
      expect([png.width, png.height]).to.deep.equal([3 * 15 + 1, 3 * 15 + 1]);
      // --per-layer needs a hierarchy; this run's latent is flat
      const flat = vaelab(['sample', runDir, '--per-layer', '--out', file]);
      expect(flat.code).to.equal(2);
      expect(flat.err.trim().split('\n').pop()).to.equal(
        `--per-layer: needs an unconditioned hierarchy (a latent with more than one stochastic layer and data.condition.use "none"); run ${runDir} has latent "gaussian" with 1 layer(s) and data.condition.use "none"`,
      );
    });

    it('Should draw a hierarchy\'s samples per layer into a PNG, a row per layer', () => {
      const deep = path.join(out, 'deep');
      const t = vaelab(['train', TINY, '--out', deep, '--set', 'latent.use=bottom-up', '--set', 'latent.bottom-up.dims=[3,2,2]', '--set', 'latent.bottom-up.hiddenSizes=[4,4]']);
      expect(t.code, t.err).to.equal(0);
      const run = path.join(deep, fs.readdirSync(deep)[0]);
      const dir = path.join(run, fs.readdirSync(run)[0]);
      const file = path.join(out, 'layers.png');
      const r = vaelab(['sample', dir, '--per-layer', '--n', '5', '--out', file]);
      expect(r.code, r.err).to.equal(0);
      const png = PNG.sync.read(fs.readFileSync(file));
      expect([png.width, png.height]).to.deep.equal([5 * 15 + 1, 3 * 15 + 1]);
      // and its traversals per layer, a row per layer, each naming the unit swept
      const trav = path.join(out, 'traversals.png');
      const t2 = vaelab(['sample', dir, '--layer-traversals', '--n', '5', '--out', trav]);
      expect(t2.code, t2.err).to.equal(0);
      expect(t2.out.trim().split('\n').slice(0, 3).map((l) => l.replace(/unit \d+ \(.*\)$/, 'unit'))).to.deep.equal(['layer 3: unit', 'layer 2: unit', 'layer 1: unit']);
      const tp = PNG.sync.read(fs.readFileSync(trav));
      expect([tp.width, tp.height]).to.deep.equal([5 * 15 + 1, 3 * 15 + 1]);
      const both = vaelab(['sample', dir, '--per-layer', '--layer-traversals', '--out', trav]);
      expect(both.code).to.equal(2);
      expect(both.err.trim().split('\n')).to.include('--per-layer, --layer-traversals: give one of them (each writes its own picture to --out)');
      const one = vaelab(['sample', dir, '--layer-traversals', '--n', '1', '--out', trav]);
      expect(one.code).to.equal(2);
      expect(one.err.trim().split('\n')).to.include('--n: a traversal needs at least 2 columns; got 1');
    });
  });
});
