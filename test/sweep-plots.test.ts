/**
 * Sweep pictures: parameter importance against its definition on hand-made trials, and the four
 * PNGs drawn from a hand-made sweep state (no training).
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { groupsOf, importance, linearTicks, logTicks, parallelCoordinatesSpec, sweepPlotSpecs, tickLabels, varianceFraction, writeSweepPlots } from '../core/sweep/plots';
import { vegaLiteToSvg } from '../core/tracking/plots';
import type { Param } from '../core/sweep/space';
import { TPE_DEFAULTS, type SweepSpec } from '../core/sweep/spec';
import type { SweepState, TrialRecord } from '../core/sweep/state';

const a: Param = { kind: 'choice', path: 'objective.beta-vae.beta', values: [1, 4] };
const b: Param = { kind: 'range', path: 'train.optimizer.learningRate', distribution: 'log-uniform', min: 1e-4, max: 1e-2 };

function specOf(dir: string): SweepSpec {
  return {
    file: '/x/s.yaml', shownFile: 's.yaml', name: 'plots', experiment: '/x/e.yaml', baseRaw: {}, set: {}, method: 'random', seed: 0,
    metric: { name: 'val/loss', goal: 'minimize' }, parameters: [a, b], seeds: null, budget: { trials: 8, concurrent: null, wallMinutes: null },
    earlyTermination: { use: 'asha', minEpochs: 1, reductionFactor: 2 }, tpe: { ...TPE_DEFAULTS }, retries: 0, dir,
  };
}

function trial(number: number, beta: number, lr: number, value: number, status: 'completed' | 'pruned' = 'completed'): TrialRecord {
  const intermediate: Record<number, number> = status === 'pruned' ? { 1: value + 5, 2: value } : { 1: value + 10, 2: value + 5, 3: value };
  return {
    number, params: { [a.path]: beta, [b.path]: lr }, seed: null, dir: `trials/${number}`, status, attempts: 1, failures: [], intermediate,
    decisions: status === 'pruned' ? [{ trial: number, epoch: 2, rule: 'asha', action: 'prune', value, threshold: value - 1, rung: 1, among: 2, reason: 'r' }] : [],
    value, seconds: 1,
  };
}

describe('sweep pictures', () => {
  it('Should give the share of variance explained by each group mean', () => {
    // y = 1, 3 | 5, 7: mean 4, Var(y) = (9 + 1 + 1 + 9) / 4 = 5; group means 2 and 6: Var = 4; 4 / 5.
    expect(varianceFraction([[1, 3], [5, 7]])).to.be.closeTo(0.8, 1e-12);
    // Equal group means: nothing explained; a constant y: 0 by convention.
    expect(varianceFraction([[1, 3], [3, 1]])).to.equal(0);
    expect(varianceFraction([[2, 2], [2]])).to.equal(0);
    // Four quantile bins of 8 values: pairs by rank.
    expect(groupsOf(b, [5, 1, 7, 3, 8, 2, 6, 4].map((x) => ({ x, y: 10 * x })))).to.deep.equal([[10, 20], [30, 40], [50, 60], [70, 80]]);
  });

  it('Should rate a parameter the metric depends on above one it does not, over completed trials only', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vaelab-plots-'));
    // val/loss = 100 + 10 * (beta == 4), whatever the learning rate: beta explains all of it.
    const lrs = [1e-4, 3e-4, 1e-3, 3e-3];
    const trials = [...lrs.map((lr, i) => trial(i, 1, lr, 100)), ...lrs.map((lr, i) => trial(4 + i, 4, lr, 110)), trial(8, 4, 5e-3, 999, 'pruned')];
    const state = { trials } as unknown as SweepState;
    const imp = importance(specOf(dir), state);
    expect(imp[0]).to.deep.equal({ parameter: a.path, importance: 1, trials: 8 });
    // Each of the 4 learning-rate bins holds one trial of each beta: bin means all 105, so 0.
    expect(imp[1]).to.deep.equal({ parameter: b.path, importance: 0, trials: 8 });
  });

  it('Should choose nice ticks: multiples of 1, 2 or 5 times a power of ten, and 1, 2, 5 per decade on log axes', () => {
    // span 30 in about 5 parts: 6, rounded to 5
    expect(linearTicks(90, 120)).to.deep.equal([90, 95, 100, 105, 110, 115, 120]);
    // span 0.7: 0.14 rounded to 0.1; no binary noise (0.30000000000000004)
    expect(linearTicks(0.25, 0.95)).to.deep.equal([0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]);
    expect(logTicks(1e-4, 1e-2)).to.deep.equal([1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2]);
    // more than 3 decades: the powers of ten only
    expect(logTicks(1e-6, 1)).to.deep.equal([1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1]);
    // one notation per axis: exponents when a tick is below 1e-3
    expect(tickLabels([1e-4, 5e-4, 1e-3, 1e-2])).to.deep.equal(['1e-4', '5e-4', '1e-3', '1e-2']);
    expect(tickLabels([0.001, 0.01, 0.1])).to.deep.equal(['0.001', '0.01', '0.1']);
    expect(tickLabels([2e5, 0])).to.deep.equal(['2e5', '0']);
  });

  it('Should label every axis of the parallel coordinates on its own scale: categories, log over the distribution\'s interval, nice linear ends', async () => {
    const c: Param = { kind: 'range', path: 'prior.mixture.components', distribution: 'int', min: 2, max: 20, step: 1 };
    const d: Param = { kind: 'choice', path: 'encoder.use', values: ['mlp', 'conv', 'resnet'] };
    const t = (n: number, beta: number, lr: number, k: number, enc: string, value: number, status: 'completed' | 'pruned' = 'completed') => ({ number: n, status, params: { [a.path]: beta, [b.path]: lr, [c.path]: k, [d.path]: enc }, value });
    const trials = [t(0, 1, 1e-3, 4, 'mlp', 100), t(1, 4, 1e-2, 12, 'conv', 90), t(2, 4, 2e-4, 19, 'resnet', 121, 'pruned'), t(3, 1, 5e-3, 7, 'mlp', 95)];
    const axes = [a, b, c, d].map((p) => ({ path: p.path, numeric: true, log: p.kind === 'range' && p.distribution === 'log-uniform', ...(p.kind === 'choice' ? { choices: p.values } : { min: p.min, max: p.max }) }));
    const spec = parallelCoordinatesSpec('pc', { name: 'val/loss', goal: 'minimize' }, axes, trials) as { data: { values: Array<{ trial: number; axis: string; scaled: number }> }; layer: Array<{ mark: { type: string; stroke?: string }; data?: { values: Array<{ axis: string; scaled: number; label: string }> } }> };
    const labels = spec.layer.find((l) => l.mark.type === 'text' && !l.mark.stroke)!.data!.values;
    const on = (axis: string) => labels.filter((l) => l.axis === axis).map((l) => [l.label, Number(l.scaled.toFixed(4))]);
    // choices: evenly spaced in their order
    expect(on(a.path)).to.deep.equal([['1', 0], ['4', 1]]);
    expect(on(d.path)).to.deep.equal([['mlp', 0], ['conv', 0.5], ['resnet', 1]]);
    // log-uniform on [1e-4, 1e-2] (the distribution's, not the trials' 2e-4 to 1e-2): 1e-3 halfway, 2e-4 at log10(2) / 2 = 0.1505
    expect(on(b.path)).to.deep.equal([['1e-4', 0], ['2e-4', 0.1505], ['5e-4', 0.3495], ['1e-3', 0.5], ['2e-3', 0.6505], ['5e-3', 0.8495], ['1e-2', 1]]);
    // int on [2, 20]: ticks every 5 (18 / 5 = 3.6, rounded to 5), and the end 2 (no tick within 0.1 of it)
    expect(on(c.path)).to.deep.equal([['2', 0], ['5', 0.1667], ['10', 0.4444], ['15', 0.7222], ['20', 1]]);
    // the metric: the trials' 90 to 121 widened to 90 to 125, ticks every 5
    expect(on('val/loss').map((x) => x[0])).to.deep.equal(['90', '95', '100', '105', '110', '115', '120', '125']);
    // the trials' lines sit on the same scales: lr 1e-3 at 0.5, components 4 at 2/18, the metric 100 at 10/35
    const at = (trial: number, axis: string) => Number(spec.data.values.find((v) => v.trial === trial && v.axis === axis)!.scaled.toFixed(4));
    expect([at(0, b.path), at(0, c.path), at(0, 'val/loss'), at(1, d.path)]).to.deep.equal([0.5, 0.1111, 0.2857, 0.5]);
    // and the picture shows the labels as text
    const svg = await vegaLiteToSvg(spec);
    for (const label of ['1e-4', '5e-3', 'conv', 'resnet', '15', '125']) expect(svg, label).to.include(`>${label}</text>`);
  });

  it('Should draw the four pictures as PNG, with the pruned trial marked on the curves', async function () {
    this.timeout(60000);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vaelab-plots-'));
    const trials = [trial(0, 1, 1e-3, 100), trial(1, 4, 1e-2, 90), trial(2, 4, 2e-4, 120, 'pruned'), trial(3, 1, 5e-3, 95)];
    const state = { trials } as unknown as SweepState;
    const specs = sweepPlotSpecs(specOf(dir), state);
    const crosses = ((specs['curves.png'].layer as Array<{ data: { values: unknown[] } }>)[1]).data.values;
    expect(crosses).to.deep.equal([{ trial: 2, epoch: 2, value: 120 }]);
    const files = await writeSweepPlots(specOf(dir), state);
    expect(files.map((f) => path.basename(f))).to.deep.equal(['metric-vs-parameters.png', 'curves.png', 'parallel-coordinates.png', 'importance.png']);
    for (const f of files) {
      const png = PNG.sync.read(fs.readFileSync(f));
      expect(png.width).to.be.above(200);
      expect(png.height).to.be.above(100);
      // Not blank: some pixels are far from white.
      let dark = 0;
      for (let i = 0; i < png.data.length; i += 4) if (png.data[i] + png.data[i + 1] + png.data[i + 2] < 300) dark++;
      expect(dark, f).to.be.above(500);
    }
  });
});
