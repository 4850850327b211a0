/**
 * A staged experiment through the command line (test/fixtures/two-stage.yaml): `vaelab train`
 * runs the stages in one run directory, `vaelab eval` evaluates its last stage, and a mistake in
 * any stage is refused before training starts.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { builtins } from './kits/build';

const BIN = path.join(__dirname, '..', 'bin', 'vaelab.js');
const STAGED = path.join(__dirname, 'fixtures', 'two-stage.yaml');
const env = { ...process.env, VAELAB_BACKEND: 'cpu' };

function vaelab(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { env, encoding: 'utf8', timeout: 180000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('cli: stages @slow', () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'vaelab-cli-stages-'));
  let runDir = '';

  it('Should validate every stage of a staged file, one line each, and refuse a mistake in any stage', () => {
    const r = vaelab(['validate', STAGED]);
    expect(r.code, r.err).to.equal(0);
    // One line per stage with its own slot selection (stage 2 swaps the objective).
    const lines = r.out.trim().split('\n');
    expect(lines[0]).to.equal(`${STAGED}: valid (2 stages)`);
    expect(lines[1]).to.match(/^  stage 1 "vae": encoder=mlp latent=gaussian decoder=mlp prior=learned-loc likelihood=bernoulli objective=elbo; \d+ parameters$/);
    expect(lines[2]).to.match(/^  stage 2 "prior": encoder=mlp latent=gaussian decoder=mlp prior=learned-loc likelihood=bernoulli objective=prior-fit; \d+ parameters$/);
    const bad = vaelab(['validate', STAGED, '--set', 'train.earlyStopping.patience=2']);
    expect(bad.code).to.equal(2);
    expect(bad.err).to.contain('data.validationSize');
  });

  it('Should train every stage of an experiment file in one run directory', () => {
    const r = vaelab(['train', STAGED, '--out', out]);
    expect(r.code, r.err).to.equal(0);
    runDir = path.join(out, 'two-stage', fs.readdirSync(path.join(out, 'two-stage'))[0]);
    expect(r.err).to.contain(`stage 1/2 "vae": ${path.relative(process.cwd(), path.join(runDir, 'stages', '0-vae'))}`);
    expect(r.err).to.contain(`stage 2/2 "prior": ${path.relative(process.cwd(), path.join(runDir, 'stages', '1-prior'))}`);
    expect(fs.readdirSync(path.join(runDir, 'stages'))).to.deep.equal(['0-vae', '1-prior']);
    const summary = JSON.parse(fs.readFileSync(path.join(runDir, 'summary.json'), 'utf8'));
    expect([summary.status, summary.stages.map((s: { status: string }) => s.status)]).to.deep.equal(['completed', ['completed', 'completed']]);
    // the saved config is the staged experiment, with the plugin module's path made absolute
    const saved = JSON.parse(fs.readFileSync(path.join(runDir, 'config.json'), 'utf8'));
    expect(saved.plugins).to.deep.equal([path.join(__dirname, 'fixtures', 'learned-prior.ts')]);
    expect(saved.stages.map((s: { name: string }) => s.name)).to.deep.equal(['vae', 'prior']);
  });

  it('Should evaluate the last stage of a staged run, and refuse to resume it once ended', () => {
    const r = vaelab(['eval', runDir, '--k', '2']);
    expect(r.code, r.err).to.equal(0);
    expect(r.err).to.contain(`staged run: using its last stage, ${path.relative(process.cwd(), path.join(runDir, 'stages', '1-prior'))}`);
    expect(JSON.parse(r.out)['test/log-prior']).to.be.a('number');
    const again = vaelab(['train', '--resume', runDir]);
    expect(again.code).to.equal(2);
    expect(again.err.trim().split('\n').pop()).to.equal(`--resume: run ${runDir} has already ended (status "completed")`);
  });

  it('Should refuse a staged experiment with a mistake in its last stage before any run directory is made', () => {
    const bad = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vaelab-cli-stages-bad-')), 'bad.yaml');
    fs.writeFileSync(bad, fs.readFileSync(STAGED, 'utf8').replace('./learned-prior.ts', path.join(__dirname, 'fixtures', 'learned-prior.ts')).replace('use: prior-fit', 'use: prior-fitt'));
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'vaelab-cli-stages-none-'));
    const r = vaelab(['train', bad, '--out', root]);
    expect(r.code).to.equal(2);
    expect(r.err.trim().split('\n').pop()).to.equal(
      `${bad}: stages[1] "prior": objective.use: unknown plugin "prior-fitt". Allowed values: ${[...builtins().names('objective'), 'prior-fit'].sort().map((n) => JSON.stringify(n)).join(', ')}. Did you mean "prior-fit"?`,
    );
    expect(fs.readdirSync(root)).to.deep.equal([]);
    // A mistake only opening the stage finds (its data split cannot be made) is refused before training too.
    const late = bad.replace('bad.yaml', 'late.yaml');
    fs.writeFileSync(late, fs.readFileSync(bad, 'utf8').replace('use: prior-fitt }', 'use: prior-fit }\n    data: { validationSize: 64 }'));
    const r2 = vaelab(['train', late, '--out', root]);
    expect(r2.code, r2.err).to.equal(2);
    expect(r2.err.trim().split('\n').pop()).to.equal(`${late}: data.validationSize: must be less than the number of training examples of synthetic/shapes (64); got 64`);
    expect(fs.readdirSync(root)).to.deep.equal([]);
  });

  it('Should refuse a second-stage objective (prior-nll) with no first stage and no init.from, by validate and train, before any run directory', () => {
    const vq = path.join(__dirname, 'fixtures', 'vq-two-stage.yaml');
    const ok = vaelab(['validate', vq]);
    expect(ok.code, ok.err).to.equal(0);
    expect(ok.out.trim().split('\n')[0]).to.equal(`${vq}: valid (2 stages)`);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vaelab-cli-stages-vq-'));
    const text = fs.readFileSync(vq, 'utf8');
    const stage2 = text.slice(text.indexOf('  - name: prior'));
    // the prior stage alone, as the only entry of stages:, and as a plain experiment
    const only = path.join(dir, 'only-prior.yaml');
    fs.writeFileSync(only, text.slice(0, text.indexOf('  - name: vq-vae')) + stage2);
    const plain = path.join(dir, 'plain.yaml');
    fs.writeFileSync(
      plain,
      text.slice(0, text.indexOf('stages:')).replace('prior: { use: uniform-codes }', 'prior: { use: pixelcnn, pixelcnn: { layers: 6, channels: 8, kernelSize: 3, firstKernelSize: 3 } }').replace('objective: { use: vq-vae }', 'objective: { use: prior-nll }'),
    );
    const why =
      'objective.use: "prior-nll" fits the prior to the codes of a trained model (the first stage), whose encoder and latent it keeps frozen, but init.from is not set, so the run would start from untrained weights; set init.from to a finished run of the first stage (its directory or a checkpoint), or make this a later entry of stages: (which starts from the entry before it)';
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'vaelab-cli-stages-none-'));
    for (const file of [only, plain]) {
      for (const args of [['validate', file], ...(file === only ? [['train', file, '--out', root]] : [])]) {
        const r = vaelab(args);
        expect(r.code, `${args[0]} ${path.basename(file)}: ${r.err}`).to.equal(2);
        expect(r.err.trim().split('\n').pop()).to.equal(`${file}: ${why}`);
      }
    }
    expect(fs.readdirSync(root)).to.deep.equal([]);
  });
});
