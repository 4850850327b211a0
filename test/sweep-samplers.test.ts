/**
 * Samplers and pruners of core/sweep against their definitions: Optuna's documented Parzen
 * estimator rules worked by hand, TPE against random search on a quadratic over many seeds, the
 * grid's order and conditional parameters, median stopping and ASHA on hand-made values.
 */
import { expect } from 'chai';
import { Rng } from '../core/rng';
import { ParzenEstimator, gamma, logNormalCdf, logNormalMass, observationWeights } from '../core/sweep/parzen';
import { gridPoints } from '../core/sweep/points';
import { decide, median, rungEpochs, type TrialReports } from '../core/sweep/pruners';
import { GridSampler, RandomSampler, TpeSampler, splitTrials, type Observation } from '../core/sweep/samplers';
import { type Param } from '../core/sweep/space';
import { TPE_DEFAULTS, type SweepSpec } from '../core/sweep/spec';

/** A sweep over `parameters` of an empty base, for the samplers (no file behind it). */
function specOf(parameters: Param[], over: Partial<SweepSpec> = {}): SweepSpec {
  return {
    file: '/x/sweep.yaml',
    shownFile: 'sweep.yaml',
    name: 'test',
    experiment: '/x/base.yaml',
    baseRaw: { prior: { use: 'standard-normal' } },
    set: {},
    method: 'tpe',
    seed: 0,
    metric: { name: 'test/loss', goal: 'minimize' },
    parameters,
    seeds: null,
    budget: { trials: 40, concurrent: null, wallMinutes: null },
    earlyTermination: { use: 'none' },
    tpe: { ...TPE_DEFAULTS },
    retries: 0,
    dir: '/x/out',
    ...over,
  };
}

const close = (a: number, b: number, tol = 1e-9) => expect(Math.abs(a - b), `${a} vs ${b}`).to.be.below(tol);

describe('sweep: Parzen estimator (Optuna reference rules)', () => {
  it('Should weigh observations 1 each below 25, and ramp the oldest from 1/n to 1 above', () => {
    expect(observationWeights(3)).to.deep.equal([1, 1, 1]);
    const w = observationWeights(30);
    // n = 30: a ramp over the oldest 5 = linspace(1/30, 1, 5), then 25 ones.
    const ramp = [1 / 30, 1 / 30 + (29 / 30) / 4, 1 / 30 + (2 * 29) / 30 / 4, 1 / 30 + (3 * 29) / 30 / 4, 1];
    ramp.forEach((r, i) => close(w[i], r));
    expect(w.slice(5)).to.deep.equal(new Array(25).fill(1));
  });

  it('Should put ceil(n / 10) trials in the good group, at most 25', () => {
    expect([1, 10, 11, 20, 21, 250, 251, 1000].map(gamma)).to.deep.equal([1, 1, 2, 2, 3, 25, 25, 25]);
  });

  it('Should compute the normal log-CDF and log-mass far into the tails', () => {
    // Phi(1) - Phi(-1) = erf(1/sqrt 2) = 0.682689492137
    close(logNormalMass(-1, 1), Math.log(0.682689492137), 1e-6);
    // Phi(-10) = 7.619853024160527e-24 (tables); relative error of the erfc fit < 1.2e-7
    close(logNormalCdf(-10), Math.log(7.619853024160527e-24), 1e-6);
    // Phi(-40) - Phi(-41): both underflow-prone; log Phi(-40) = -804.608 (asymptotic series)
    expect(Number.isFinite(logNormalMass(-41, -40))).to.equal(true);
    close(logNormalMass(-41, -40), logNormalCdf(-40), 1e-6); // Phi(-41) is e^-40 times smaller
    close(logNormalMass(2, 3), Math.log(0.0227501319 - 0.0013498980), 1e-6);
  });

  it('Should set each kernel\'s scale to its larger neighbour distance, clipped by the magic clip', () => {
    // obs 0.5, 0.52, 0.9 on [0, 1] and the prior at 0.5. Sorted with the ends:
    // [0, 0.5 (obs), 0.5 (prior), 0.52, 0.9, 1]. Larger neighbour distances: obs 0.5 -> its inner
    // distance 0 (outermost kernel), 0.52 -> max(0.02, 0.38), 0.9 -> outermost: 0.9 - 0.52.
    // Clip: [1 / min(100, 1 + 3 + 1), 1] = [0.2, 1], so 0 becomes 0.2. The prior's scale is the range.
    const pe = new ParzenEstimator([[0.5], [0.52], [0.9]], [{ kind: 'numeric', low: 0, high: 1, step: null }], { priorWeight: 1, multivariate: false, magicClip: true });
    pe.sigmas(0).forEach((s, i) => close(s, [0.2, 0.38, 0.38, 1][i], 1e-12));
    // 3 observations weigh 1, the prior 1: a quarter each.
    expect(pe.mixtureWeights).to.deep.equal([0.25, 0.25, 0.25, 0.25]);
  });

  it('Should use Scott\'s rule 0.2 n^(-1/(d+4)) x range for every kernel when multivariate', () => {
    const dims = [{ kind: 'numeric' as const, low: 0, high: 2, step: null }, { kind: 'numeric' as const, low: -1, high: 1, step: null }];
    const obs = [[0.1, 0.2], [1, -0.5], [1.5, 0.9], [0.3, 0]];
    const pe = new ParzenEstimator(obs, dims, { priorWeight: 1, multivariate: true, magicClip: true });
    // n = 4, d = 2: 0.2 * 4^(-1/6) * 2 = 0.31748; above the clip 2 / 6.
    const s = 0.2 * 4 ** (-1 / 6) * 2;
    pe.sigmas(0).forEach((x, i) => close(x, i < 4 ? Math.max(s, 2 / 6) : 2, 1e-12));
  });

  it('Should give a categorical observation priorWeight / (n + 1) on every choice and 1 more on its own', () => {
    // 2 observations of choice 0 among 3: rows [1/3 + 1, 1/3, 1/3] / 2 = [2/3, 1/6, 1/6] each, the
    // prior's [1/3, 1/3, 1/3]; mixture weights 1/3 each: P(0) = (2/3 + 2/3 + 1/3) / 3 = 5/9.
    const pe = new ParzenEstimator([[0], [0]], [{ kind: 'categorical', choices: 3 }], { priorWeight: 1, multivariate: false, magicClip: true });
    close(Math.exp(pe.logPdf([0])), 5 / 9, 1e-12);
    close(Math.exp(pe.logPdf([1])), (1 / 6 + 1 / 6 + 1 / 3) / 3, 1e-12);
  });

  it('Should be a density on a continuous range and a distribution on a discrete one', () => {
    const cont = new ParzenEstimator([[0.1], [0.15], [0.8]], [{ kind: 'numeric', low: 0, high: 1, step: null }], { priorWeight: 1, multivariate: false, magicClip: true });
    let integral = 0;
    const n = 20000;
    for (let i = 0; i < n; i++) integral += Math.exp(cont.logPdf([(i + 0.5) / n])) / n;
    close(integral, 1, 1e-4);
    const disc = new ParzenEstimator([[2], [2], [5]], [{ kind: 'numeric', low: 1, high: 6, step: 1 }], { priorWeight: 1, multivariate: false, magicClip: true });
    close([1, 2, 3, 4, 5, 6].reduce((s, x) => s + Math.exp(disc.logPdf([x])), 0), 1, 1e-6);
    // Draws from the discrete estimator are grid values in range.
    for (const [x] of disc.sample(200, new Rng(3))) expect([1, 2, 3, 4, 5, 6]).to.include(x);
  });
});

describe('sweep: samplers', () => {
  const x: Param = { kind: 'range', path: 'train.optimizer.learningRate', distribution: 'uniform', min: -10, max: 10 };

  /** Runs a sampler for n trials on f; returns the best value after each trial. */
  function run(sampler: { suggest(i: number, h: readonly Observation[]): Record<string, unknown> | null }, f: (p: Record<string, unknown>) => number, n: number): number[] {
    const history: Observation[] = [];
    const best: number[] = [];
    for (let i = 0; i < n; i++) {
      const params = sampler.suggest(i, history)!;
      const value = f(params);
      history.push({ number: i, params, state: 'complete', value, lastEpoch: 1 });
      best.push(Math.min(value, best[i - 1] ?? Infinity));
    }
    return best;
  }

  it('Should find a better minimum of (x - 2)^2 with TPE than with random search after 40 trials, in at least 24 of 30 seeds', () => {
    const f = (p: Record<string, unknown>) => ((p[x.path] as number) - 2) ** 2;
    let wins = 0;
    const tpeBest: number[] = [];
    const rndBest: number[] = [];
    for (let seed = 0; seed < 30; seed++) {
      const spec = specOf([x], { seed });
      const t = run(new TpeSampler(spec), f, 40)[39];
      // The random stream is not the one TPE used for its startup trials: another seed space.
      const r = run(new RandomSampler({ ...spec, seed: 1000 + seed }), f, 40)[39];
      tpeBest.push(t);
      rndBest.push(r);
      if (t < r) wins++;
    }
    // Under "no better than random" wins ~ Binomial(30, 1/2): P(wins >= 24) = 0.0007.
    expect(wins, `TPE ${median(tpeBest)} vs random ${median(rndBest)} (medians)`).to.be.at.least(24);
  });

  it('Should beat random search on a 2-D quadratic with the multivariate option too (sign test over 20 seeds)', () => {
    const y: Param = { kind: 'range', path: 'train.optimizer.beta1', distribution: 'uniform', min: 0, max: 1 };
    const f = (p: Record<string, unknown>) => ((p[x.path] as number) - 2) ** 2 + 100 * ((p[y.path] as number) - 0.7) ** 2;
    let wins = 0;
    for (let seed = 0; seed < 20; seed++) {
      const spec = specOf([x, y], { seed, tpe: { ...TPE_DEFAULTS, multivariate: true } });
      if (run(new TpeSampler(spec), f, 40)[39] < run(new RandomSampler({ ...spec, seed: 500 + seed }), f, 40)[39]) wins++;
    }
    // P(wins >= 16 | Binomial(20, 1/2)) = 0.006
    expect(wins).to.be.at.least(16);
  });

  it('Should suggest random points for the first 10 trials and the same point again for the same index and history', () => {
    const spec = specOf([x]);
    const tpe = new TpeSampler(spec);
    const rnd = new RandomSampler(spec);
    for (let i = 0; i < 10; i++) expect(tpe.suggest(i, [])).to.deep.equal(rnd.suggest(i));
    const history: Observation[] = Array.from({ length: 12 }, (_, i) => ({ number: i, params: { [x.path]: i - 6 }, state: 'complete', value: (i - 8) ** 2, lastEpoch: 1 }));
    expect(tpe.suggest(12, history)).to.deep.equal(tpe.suggest(12, history));
  });

  it('Should rank completed trials first, then pruned ones by epochs reached, and count running trials as bad (constant liar)', () => {
    const obs = (number: number, state: Observation['state'], value: number | null, lastEpoch = 3): Observation => ({ number, params: {}, state, value, lastEpoch });
    const history = [obs(0, 'complete', 5), obs(1, 'complete', 1), obs(2, 'pruned', 0.1, 1), obs(3, 'complete', 3), ...Array.from({ length: 8 }, (_, i) => obs(4 + i, 'complete', 10 + i)), obs(12, 'running', null), obs(13, 'running', null)];
    // 14 trials with the liar: gamma(14) = 2 -> the two best completed: #1 (1) and #3 (3);
    // the pruned #2, despite its 0.1, ranks after every completed trial.
    const liar = splitTrials(history, 'minimize', true);
    expect(liar.below.map((o) => o.number)).to.deep.equal([1, 3]);
    expect(liar.above.map((o) => o.number)).to.include.members([2, 12, 13]);
    // Without it the running trials are left out: 12 trials, gamma 2.
    const plain = splitTrials(history, 'minimize', false);
    expect(plain.above.map((o) => o.number)).to.not.include(12);
    expect(splitTrials(history, 'maximize', true).below.map((o) => o.number)).to.deep.equal([10, 11]);
  });

  it('Should walk the grid with the last parameter fastest and leave out a conditional parameter where its condition fails', () => {
    const spec = specOf(
      [
        { kind: 'choice', path: 'prior.use', values: ['mixture', 'standard-normal'] },
        { kind: 'choice', path: 'prior.mixture.components', values: [2, 8], when: { 'prior.use': 'mixture' } },
        { kind: 'choice', path: 'latent.gaussian.dim', values: [4, 8] },
      ],
      { method: 'grid' },
    );
    expect(gridPoints(spec)).to.deep.equal([
      { 'prior.use': 'mixture', 'prior.mixture.components': 2, 'latent.gaussian.dim': 4 },
      { 'prior.use': 'mixture', 'prior.mixture.components': 2, 'latent.gaussian.dim': 8 },
      { 'prior.use': 'mixture', 'prior.mixture.components': 8, 'latent.gaussian.dim': 4 },
      { 'prior.use': 'mixture', 'prior.mixture.components': 8, 'latent.gaussian.dim': 8 },
      { 'prior.use': 'standard-normal', 'latent.gaussian.dim': 4 },
      { 'prior.use': 'standard-normal', 'latent.gaussian.dim': 8 },
    ]);
    expect(new GridSampler(spec).suggest(6)).to.equal(null);
  });

  it('Should draw log-uniform values evenly on the log scale, integers with both ends, and quantised values on their grid', () => {
    const lr: Param = { kind: 'range', path: 'train.optimizer.learningRate', distribution: 'log-uniform', min: 1e-4, max: 1e-2 };
    const k: Param = { kind: 'range', path: 'prior.mixture.components', distribution: 'int', min: 1, max: 4, step: 1 };
    const q: Param = { kind: 'range', path: 'train.optimizer.beta1', distribution: 'uniform', min: 0.5, max: 0.9, step: 0.1 };
    const rnd = new RandomSampler(specOf([lr, k, q], { method: 'random' }));
    const n = 4000;
    let below = 0;
    const counts = [0, 0, 0, 0];
    const qs = new Set<number>();
    for (let i = 0; i < n; i++) {
      const p = rnd.suggest(i);
      const v = p[lr.path] as number;
      expect(v).to.be.within(1e-4, 1e-2);
      if (v < 1e-3) below++; // 1e-3 is the middle of [1e-4, 1e-2] on the log scale
      counts[(p[k.path] as number) - 1]++;
      qs.add(p[q.path] as number);
    }
    // Binomial(4000, 1/2): sd = 31.6; 4 sd = 126. Each integer: p = 1/4, sd = 27.4, 4 sd = 110.
    expect(Math.abs(below - n / 2)).to.be.below(126);
    for (const c of counts) expect(Math.abs(c - n / 4)).to.be.below(110);
    expect([...qs].sort()).to.deep.equal([0.5, 0.6, 0.7, 0.8, 0.9]);
  });
});

describe('sweep: pruners', () => {
  const t = (number: number, state: TrialReports['state'], values: Record<number, number>): TrialReports => ({ number, state, values });

  it('Should rung ASHA at minEpochs * eta^k below the epoch budget', () => {
    expect(rungEpochs({ minEpochs: 1, reductionFactor: 3 }, 10)).to.deep.equal([1, 3, 9]);
    expect(rungEpochs({ minEpochs: 2, reductionFactor: 2 }, 16)).to.deep.equal([2, 4, 8]);
  });

  it('Should prune with median stopping when the best value so far is worse than the median of completed trials at that epoch', () => {
    const done = [t(0, 'complete', { 1: 30, 2: 10 }), t(1, 'complete', { 1: 40, 2: 20 }), t(2, 'complete', { 1: 50, 2: 30 })];
    const rule = { use: 'median' as const, startupTrials: 3, warmupEpochs: 1 };
    // Trial 3 at epoch 2: best so far min(25, 22) = 22; median of 10, 20, 30 = 20: 22 > 20, prune.
    const me = t(3, 'running', { 1: 25, 2: 22 });
    const d = decide(rule, 'minimize', me, 2, [...done, me], 'val/loss')!;
    expect(d).to.include({ action: 'prune', value: 22, threshold: 20, among: 3, rule: 'median', rung: null });
    expect(d.reason).to.equal('median stopping at epoch 2: best val/loss so far 22 worse than the median 20 of 3 completed trials');
    // Best so far 19 (epoch 1) beats 20 even though epoch 2 is 22: continue.
    const lucky = t(4, 'running', { 1: 19, 2: 22 });
    expect(decide(rule, 'minimize', lucky, 2, [...done, lucky])!.action).to.equal('continue');
    // Warm-up (epoch 1 <= 1) and too few completed trials: no decision.
    expect(decide(rule, 'minimize', me, 1, [...done, me])).to.equal(null);
    expect(decide({ ...rule, startupTrials: 4 }, 'minimize', me, 2, [...done, me])).to.equal(null);
    // Four completed trials: the median of 10, 20, 30, 40 is 25. Maximising, the best so far is
    // max(25, 22) = 25, not worse than 25: continue; a trial at 24 and 21 is pruned.
    const four = [...done, t(5, 'complete', { 2: 40 })];
    expect(median([10, 20, 30, 40])).to.equal(25);
    expect(decide(rule, 'maximize', me, 2, [...four, me])).to.include({ action: 'continue', value: 25, threshold: 25 });
    const low = t(6, 'running', { 1: 24, 2: 21 });
    expect(decide(rule, 'maximize', low, 2, [...four, low])).to.include({ action: 'prune', value: 24, threshold: 25 });
  });

  it('Should promote exactly the top floor(n / eta) of the values at an ASHA rung', () => {
    const rule = { use: 'asha' as const, minEpochs: 1, reductionFactor: 3 };
    const values = [7, 3, 9, 1, 8, 5, 2, 6, 4];
    const trials = values.map((v, i) => t(i, 'running', { 1: v }));
    // With all 9 values at rung 0: floor(9 / 3) = 3 promoted: the values 1, 2 and 3.
    const promoted = trials.filter((tr) => decide(rule, 'minimize', tr, 1, trials)!.action === 'continue').map((tr) => values[tr.number]);
    expect(promoted.sort()).to.deep.equal([1, 2, 3]);
    expect(decide(rule, 'minimize', trials[0], 1, trials)).to.include({ rung: 0, threshold: 3, among: 9, value: 7, action: 'prune' });
    // Maximising: the three largest, 7, 8, 9.
    const maxed = trials.filter((tr) => decide(rule, 'maximize', tr, 1, trials)!.action === 'continue').map((tr) => values[tr.number]);
    expect(maxed.sort()).to.deep.equal([7, 8, 9]);
    // Epoch 2 is no rung; epoch 3 is rung 1.
    expect(decide(rule, 'minimize', t(0, 'running', { 1: 1, 2: 1 }), 2, [])).to.equal(null);
    expect(decide(rule, 'minimize', t(0, 'running', { 3: 1 }), 3, [])).to.include({ rung: 1, action: 'continue' });
  });

  it('Should promote asynchronously: while fewer than eta values are in, only the best so far goes on', () => {
    const rule = { use: 'asha' as const, minEpochs: 1, reductionFactor: 3 };
    const arrivals = [5, 6, 4, 7, 3, 9];
    const seen: TrialReports[] = [];
    const actions = arrivals.map((v, i) => {
      const me = t(i, 'running', { 1: v });
      seen.push(me);
      return decide(rule, 'minimize', me, 1, seen)!.action;
    });
    // n = 1: 5 best -> on; n = 2: 6 vs best 5 -> pruned; n = 3 (k = 1): 4 best -> on; n = 4 (k = 1):
    // 7 -> pruned; n = 5 (k = 1): 3 best -> on; n = 6 (k = 2, top two are 3 and 4): 9 -> pruned.
    expect(actions).to.deep.equal(['continue', 'prune', 'continue', 'prune', 'continue', 'prune']);
  });
});
