/**
 * Sweep pictures: parameter importance against its definition on hand-made trials, and the four
 * PNGs drawn from a hand-made sweep state (no training).
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { groupsOf, importance, sweepPlotSpecs, varianceFraction, writeSweepPlots } from '../core/sweep/plots';
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
