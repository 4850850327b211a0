/**
 * `vaelab report`: the HTML page of a run, and of two runs side by side, built from real run
 * directories; self-contained (pictures inlined, no scripts, nothing fetched).
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { experimentFromObject } from '../core/config/experiment';
import { ConfigError } from '../core/errors';
import { readRun, writeReport } from '../core/report';
import { curveSpecs } from '../core/report/report';
import { metricCurvesSpec, type CurvePoint } from '../core/tracking/plots';
import { openSession } from '../core/session';
import { RunDir } from '../core/tracking/run-dir';
import { train } from '../core/train/trainer';
import { disposeParts } from '../core/container';
import { builtins, experimentObject } from './kits/build';

async function trainedRun(root: string, seed: number): Promise<RunDir> {
  const experiment = experimentFromObject(
    experimentObject({
      name: 'report-demo',
      seed,
      data: { use: 'synthetic', synthetic: { kind: 'shapes', size: 48 } },
      latent: { use: 'gaussian', gaussian: { dim: 3 } },
      train: { epochs: 2, batchSize: 16, progress: 'none', logEvery: 1 },
      eval: { iwSamples: 4, gridSize: 4, traversalRows: 3 },
    }),
    builtins(),
  );
  const session = openSession(experiment);
  const run = RunDir.create(root, 'report-demo', seed);
  run.writeConfig(experiment.config as unknown as Record<string, unknown>);
  try {
    await train(session, { run, backend: 'cpu', log: () => undefined, handleSignals: false });
  } finally {
    disposeParts(session.parts);
  }
  return run;
}

const images = (html: string) => [...html.matchAll(/<img src="data:image\/png;base64,([^"]+)" alt="([^"]*)"/g)].map((m) => ({ png: PNG.sync.read(Buffer.from(m[1], 'base64')), alt: m[2] }));

describe('run reports', function () {
  this.timeout(120000);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'vaelab-report-'));
  let a: RunDir;
  let b: RunDir;
  before(async () => {
    a = await trainedRun(root, 1);
    b = await trainedRun(root, 2);
  });

  it('Should write one self-contained page with the run, its test metrics, curves, latent statistics and pictures', async () => {
    const file = await writeReport([a.dir]);
    expect(file).to.equal(path.join(a.dir, 'report.html'));
    const html = fs.readFileSync(file, 'utf8');
    const summary = JSON.parse(fs.readFileSync(a.file('summary.json'), 'utf8'));
    expect(html).to.include('report-demo');
    expect(html).to.include(`<td class="n">${(summary.test['test/iw-log-likelihood'] as number).toFixed(2)}</td>`);
    expect(html).to.include('test/iw-log-likelihood-se');
    // the pictures: two plots, the latent bars, and the run's four grids, each a decodable PNG
    const alts = images(html).map((i) => i.alt.replace(/: [^:]*\.png$/, ''));
    expect(alts).to.deep.equal([
      'training loss per logged step',
      'metrics per epoch',
      `latent dimensions (${summary.test['test/active-units']} active units)`,
      'reconstructions (rows in pairs: inputs, then their reconstructions)',
      'samples from the prior',
      'interpolations between the posterior modes of two test inputs of one class (one row per pair)',
      'latent traversals (one row per dimension, largest KL first)',
    ]);
    const grid = images(html).find((i) => i.alt.startsWith('latent traversals'))!.png;
    const grey = PNG.sync.read(fs.readFileSync(path.join(a.images, 'traversals.png')));
    expect([grid.width, grid.height]).to.deep.equal([grey.width, grey.height]);
    // nothing outside the page
    expect(html).to.not.match(/<script|src="http|href="http|<link/);
    expect(html).to.include('<summary>config.json</summary>');
  });

  it('Should put two runs side by side with one table and overlaid curves', async () => {
    const out = path.join(root, 'compare.html');
    await writeReport([a.dir, b.dir], { out });
    const html = fs.readFileSync(out, 'utf8');
    const la = readRun(a.dir).label;
    const lb = readRun(b.dir).label;
    expect(la).to.not.equal(lb);
    const firstTable = html.slice(html.indexOf('<h2>Runs</h2>'), html.indexOf('<h2>Test metrics</h2>'));
    expect(firstTable).to.include(`<th>run</th><th>${la}</th><th>${lb}</th>`);
    const metrics = html.slice(html.indexOf('<h2>Test metrics</h2>'), html.indexOf('<h2>Curves</h2>'));
    expect(metrics).to.include(`<th>${la}</th><th>${lb}</th>`);
    // each run's own section follows
    expect(html.split(`<h2>${la}</h2>`)).to.have.length(2);
    expect(html.split(`<h2>${lb}</h2>`)).to.have.length(2);
  });

  it('Should draw its curves with the dashboard\'s curve spec (metricCurvesSpec): every logged loss, every epoch metric in its facet', () => {
    const ra = readRun(a.dir);
    const rb = readRun(b.dir);
    const one = curveSpecs([ra]);
    // the loss of every step record (logEvery 1: 2 epochs of 48 / 16 = 3 steps), as the shared spec draws it, no legend for one run
    const losses: CurvePoint[] = ra.metrics.filter((m) => m.kind === 'step').map((m) => ({ run: ra.label, x: m.step, value: m['train/loss'] }));
    expect(losses).to.have.length(6);
    expect(one.steps).to.deep.equal(metricCurvesSpec(losses, { metric: 'train/loss', x: 'step', legend: false }));
    // per epoch: one facet per metric, each the shared spec's layer with its points marked
    const epochs = one.epochs as { data: { values: Array<{ metric: string; x: number }> }; facet: { field: string }; spec: { layer: Array<{ mark: Record<string, unknown>; encoding: { color: { legend: unknown } } }> } };
    expect(epochs.facet.field).to.equal('metric');
    expect(new Set(epochs.data.values.map((v) => v.x))).to.deep.equal(new Set([1, 2]));
    expect(epochs.data.values.map((v) => v.metric)).to.include('train/loss'); // the epoch means
    expect(epochs.spec.layer).to.have.length(1);
    expect(epochs.spec.layer[0].mark).to.deep.include({ type: 'line', point: true });
    expect(epochs.spec.layer[0].encoding.color.legend).to.equal(null);
    // two runs: both in the data, told apart by a legend
    const two = curveSpecs([ra, rb]) as unknown as { steps: { data: { values: CurvePoint[] }; layer: Array<{ encoding: { color: { legend: unknown } } }> } };
    expect(new Set(two.steps.data.values.map((p) => p.run))).to.deep.equal(new Set([ra.label, rb.label]));
    expect(two.steps.layer[0].encoding.color.legend).to.not.equal(null);
  });

  it('Should open the run to draw the map of its test codes into images/ and the page, when given the plugins', async () => {
    const out = path.join(root, 'with-map.html');
    await writeReport([a.dir], { out, registry: builtins(), mapPoints: 20 });
    const png = PNG.sync.read(fs.readFileSync(path.join(a.images, 'latent-map.png')));
    expect(png.width).to.be.above(200);
    const alts = images(fs.readFileSync(out, 'utf8')).map((i) => i.alt.replace(/: [^:]*\.png$/, ''));
    expect(alts[alts.length - 1]).to.equal('test codes (posterior modes) in 2-D, coloured by label');
  });

  it("Should show a staged run by its stages: each stage's plugins, its last tested stage's metrics in a comparison, an interrupted stage said so", async () => {
    // a staged run of two stages laid out as run-stages writes it: stage 0 completed (run a),
    // stage 1 interrupted before its final evaluation (run b's files, another prior)
    const staged = path.join(root, 'staged');
    fs.cpSync(a.dir, path.join(staged, 'stages', '0-vae'), { recursive: true });
    fs.cpSync(b.dir, path.join(staged, 'stages', '1-prior'), { recursive: true });
    const stage1 = path.join(staged, 'stages', '1-prior');
    const config1 = JSON.parse(fs.readFileSync(path.join(stage1, 'config.json'), 'utf8'));
    fs.writeFileSync(path.join(stage1, 'config.json'), JSON.stringify({ ...config1, prior: { use: 'mixture' } }));
    // the stage's own trainer names the stage directory; only the staged run's command continues it
    fs.writeFileSync(path.join(stage1, 'summary.json'), JSON.stringify({ status: 'interrupted', steps: 3, resume: `npx vaelab train --resume ${stage1}` }));
    fs.copyFileSync(a.file('config.json'), path.join(staged, 'config.json'));
    const resume = `npx vaelab train --resume ${staged}`;
    fs.writeFileSync(path.join(staged, 'summary.json'), JSON.stringify({ status: 'interrupted', stages: [{ index: 0, status: 'completed' }, { index: 1, status: 'interrupted' }], resume }));

    const html = fs.readFileSync(await writeReport([staged], { out: path.join(root, 'staged.html') }), 'utf8');
    const top = html.slice(0, html.indexOf('<h3>stage 0-vae</h3>'));
    expect(top).to.include('stage 0-vae: encoder=mlp latent=gaussian decoder=mlp prior=standard-normal');
    expect(top).to.include('stage 1-prior: encoder=mlp latent=gaussian decoder=mlp prior=mixture');
    expect(top, 'no metrics table of its own').to.not.include('Test metrics');
    const stage1Html = html.slice(html.indexOf('<h3>stage 1-prior</h3>'));
    expect(stage1Html).to.include(`No test metrics: the run was interrupted before its final evaluation (continue it with <code>${resume}</code>).`);

    // beside another run, the staged run stands with its last tested stage (stage 0 = run a)
    const cmp = fs.readFileSync(await writeReport([staged, b.dir], { out: path.join(root, 'staged-compare.html') }), 'utf8');
    const runsTable = cmp.slice(cmp.indexOf('<h2>Runs</h2>'), cmp.indexOf('<h2>Test metrics</h2>'));
    const iwA = JSON.parse(fs.readFileSync(a.file('summary.json'), 'utf8')).iw;
    expect(runsTable, "the IW protocol of the stage's metrics").to.include(`<tr><td>IW estimate</td><td>k = ${iwA.k} on ${iwA.examples} test examples`);
    const metrics = cmp.slice(cmp.indexOf('<h2>Test metrics</h2>'), cmp.indexOf('<h2>Curves</h2>'));
    expect(metrics).to.include(`<th>${readRun(staged).label} (stage 0-vae)</th>`);
    const lossRow = metrics.split('\n').find((l) => l.startsWith('<tr><td>test/loss</td>'))!;
    const summaryA = JSON.parse(fs.readFileSync(a.file('summary.json'), 'utf8'));
    const summaryB = JSON.parse(fs.readFileSync(b.file('summary.json'), 'utf8'));
    const fmt = (v: number) => v.toFixed(Math.abs(v) >= 100 ? 2 : 4);
    expect(lossRow).to.equal(`<tr><td>test/loss</td><td class="n">${fmt(summaryA.test['test/loss'])}</td><td class="n">${fmt(summaryB.test['test/loss'])}</td></tr>`);
  });

  it('Should refuse a directory that is not a run with one message naming it', () => {
    expect(() => readRun(root)).to.throw(ConfigError, `report: ${root} is not a vaelab run directory (no readable config.json)`);
  });
});
