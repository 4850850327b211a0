/**
 * `vaelab reproduce` (core/reproduce): the manifest read strictly, each row's status and verdict
 * from run directories (written by hand, so the expected values are the hand-written ones), a
 * claim with its two-standard-error rule, the shipped manifest valid, and one reproduction end
 * to end: train, evaluate with the row's k, compare.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { claimStatus, manifestStatus, readManifest, rowStatus, type RowStatus } from '../core/reproduce';
import { listTable } from '../core/reproduce';
import type { ClaimRow, RunRow } from '../core/reproduce/manifest';
import { experimentName } from '../core/reproduce/status';
import { pairedDifference } from '../core/eval/per-example';

const BIN = path.join(__dirname, '..', 'bin', 'vaelab.js');
const TINY = path.join(__dirname, 'fixtures', 'tiny.yaml');
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'vaelab-repro-'));

function manifest(dir: string, rows: unknown[]): string {
  const f = path.join(dir, 'reproductions.yaml');
  fs.writeFileSync(f, stringify({ rows }));
  return f;
}

const tinyRow = (over: Record<string, unknown> = {}) => ({
  name: 'tiny-nll',
  title: 'tiny',
  experiment: TINY,
  metric: { key: 'test/iw-log-likelihood', negate: true, label: 'NLL', se: 'test/iw-log-likelihood-se' },
  evaluate: { k: 7, limit: 40 },
  reference: { value: 100, source: 'a hand-written reference', epochs: 2 },
  tolerance: 5,
  ...over,
});

function summaryOf(runDir: string) {
  return JSON.parse(fs.readFileSync(path.join(runDir, 'summary.json'), 'utf8'));
}

function writeRun(dir: string, files: Record<string, object>): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const [n, v] of Object.entries(files)) fs.writeFileSync(path.join(dir, n), JSON.stringify(v));
}

describe('reproduce', () => {
  it('Should read the shipped manifest: every experiment exists and every claim names rows', () => {
    const m = readManifest(path.join(__dirname, '..', 'experiments', 'baselines', 'reproductions.yaml'));
    expect(m.rows.length).to.be.at.least(10);
    for (const r of m.rows) if (r.kind === 'run') expect(fs.existsSync(r.experiment), r.experiment).to.equal(true);
    expect(m.rows.filter((r) => r.kind === 'claim').map((r) => r.name)).to.include('vampprior-claim');
  });

  it('Should refuse a bad manifest naming the file, the row and the key', () => {
    const dir = tmp();
    const f = manifest(dir, [
      tinyRow({ tolerance: 0 }),
      tinyRow({ name: 'Bad Name', experiment: 'missing.yaml', evaluate: { k: 0 } }),
      { name: 'c', title: 'claim', claim: { lower: ['tiny-nll'], than: ['nope'] } },
    ]);
    let msg = '';
    try {
      readManifest(f);
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg.split('\n')).to.deep.equal([
      `${f}: rows[0] (tiny-nll).tolerance: a number > 0 (the distance from the reference that still matches); got 0`,
      `${f}: rows[1] (Bad Name).name: lower-case letters, digits and hyphens; got "Bad Name"`,
      `${f}: rows[1] (Bad Name).experiment: no such file "missing.yaml" (relative to ${f})`,
      `${f}: rows[1] (Bad Name).evaluate: { k: an integer >= 1, limit: an integer >= 0 (0: the whole test split) }; got {"k":0}`,
      `${f}: row c: claim names "nope", which is no row`,
    ]);
  });

  it('Should pass a row\'s overrides to its fresh run and find its runs under the name they set', () => {
    const dir = tmp();
    const m = readManifest(manifest(dir, [tinyRow({ set: ['name=tiny-grey', 'data.binarize=none'] })]));
    const row = m.rows[0] as RunRow;
    expect(row.set).to.deep.equal(['name=tiny-grey', 'data.binarize=none']);
    expect(experimentName(row)).to.equal('tiny-grey');
    expect(() => readManifest(manifest(dir, [tinyRow({ set: ['noequals'] })]))).to.throw('rows[0] (tiny-nll).set: a list of KEY=VALUE overrides (as --set takes them); got ["noequals"]');
  });

  describe('status from run directories', () => {
    const dir = tmp();
    const out = path.join(dir, 'runs');
    const f = manifest(dir, [tinyRow(), tinyRow({ name: 'other', reference: { none: 'ours only' } })]);
    const m = readManifest(f);
    const row = m.rows[0] as RunRow;
    const run = path.join(out, 'tiny', '20260101-000000-s1');

    it('Should say not started, then that the row needs its evaluation', () => {
      expect(rowStatus(row, out).verdict).to.equal('not started');
      writeRun(run, {
        'config.json': { name: 'tiny' },
        'run.json': { startedAt: '2026-01-01T00:00:00.000Z' },
        'summary.json': { status: 'completed', steps: 64, epochsCompleted: 2, trainSeconds: 30, test: { 'test/iw-log-likelihood': -90 } },
      });
      const st = rowStatus(row, out);
      expect([st.epochs, st.seconds, st.needsEval]).to.deep.equal([2, 30, true]);
      expect(st.verdict).to.equal('trained; needs its evaluation (k = 7, first 40 test examples)');
      // an evaluation with another k does not count
      writeRun(run, { 'eval.json': { iw: { k: 5, examples: 40, of: 512 }, test: { 'test/iw-log-likelihood': -97 } } });
      expect(rowStatus(row, out).needsEval).to.equal(true);
    });

    it('Should compare the evaluated value with the reference and its tolerance', () => {
      writeRun(run, { 'eval.json': { iw: { k: 7, examples: 40, of: 512 }, test: { 'test/iw-log-likelihood': -97, 'test/iw-log-likelihood-se': 1.5 } } });
      const st = rowStatus(row, out);
      expect([st.value, st.se, st.needsEval]).to.deep.equal([97, 1.5, false]);
      expect(st.verdict).to.equal('matches (-3.00, tolerance 5.00)');
      writeRun(run, { 'eval.json': { iw: { k: 7, examples: 40, of: 512 }, test: { 'test/iw-log-likelihood': -107.5 } } });
      expect(rowStatus(row, out).verdict).to.equal('off by +7.50 (tolerance 5.00)');
      const short = readManifest(manifest(dir, [tinyRow({ reference: { value: 100, source: 's', epochs: 3280 } })])).rows[0] as RunRow;
      expect(rowStatus(short, out).verdict).to.equal('not comparable yet: 2 of 3280 epochs; off by +7.50 (tolerance 5.00)');
      expect(listTable(manifestStatus(m, out)).split('\n')[2]).to.match(/^tiny-nll\s+NLL\s+100\.00\s+107\.50\s+2 of 2\s+30 s\s+off by \+7\.50/);
    });

    it('Should decide a claim by the gap against two standard errors of the difference', () => {
      const claim: ClaimRow = { kind: 'claim', name: 'c', title: 'a below b', lower: ['a'], than: ['b'] };
      const st = (value: number | null, se: number | null) => ({ value, se }) as RowStatus;
      const verdict = (a: RowStatus, b: RowStatus) => claimStatus(claim, new Map([['a', a], ['b', b]])).verdict;
      // gap 4, 2 SE = 2 * sqrt(1 + 1) = 2.83
      expect(verdict(st(90, 1), st(94, 1))).to.equal('holds: a 90.00 vs b 94.00: gap 4.00 +- 2.83 (2 SE)');
      // gap 2 < 2.83: not shown
      expect(verdict(st(92, 1), st(94, 1))).to.equal('not shown: a 92.00 vs b 94.00: gap 2.00 +- 2.83 (2 SE)');
      expect(verdict(st(null, null), st(94, 1))).to.equal('open: a not evaluated yet');
    });

    it('Should pair the two rows over their test examples when both kept them, and not when the data differ', () => {
      const claim: ClaimRow = { kind: 'claim', name: 'c', title: 'a below b', lower: ['a'], than: ['b'] };
      // examples of very different difficulty, b one nat worse on each give or take 0.2
      const base = [80, 100, 120, 90, 110];
      const step = [1, 1.2, 0.8, 1.1, 0.9];
      const a = { value: 100, se: 7.07, perExample: { data: 'mnist', values: base } } as RowStatus;
      const b = { value: 101, se: 7.07, perExample: { data: 'mnist', values: base.map((v, i) => v + step[i]) } } as RowStatus;
      // d = step: mean 1, squared deviations 0 + 0.04 + 0.04 + 0.01 + 0.01 = 0.1; se = sqrt(0.1 / 4 / 5) = 0.0707
      expect(claimStatus(claim, new Map([['a', a], ['b', b]])).verdict).to.equal('holds: a 100.00 vs b 101.00: gap 1.00 +- 0.1414 (2 SE, paired over 5 test examples)');
      const other = { ...b, perExample: { data: 'fashion-mnist', values: b.perExample!.values } } as RowStatus;
      // unpaired: 2 sqrt(7.07^2 + 7.07^2) = 20.00
      expect(claimStatus(claim, new Map([['a', a], ['b', other]])).verdict).to.equal('not shown: a 100.00 vs b 101.00: gap 1.00 +- 20.00 (2 SE)');
    });

    it('Should give the mean paired difference and its standard error by hand', () => {
      // d = [1, 0, 2, 0]: mean 0.75, squared deviations 0.0625 + 0.5625 + 1.5625 + 0.5625 = 2.75, var 2.75 / 3
      const r = pairedDifference([1, 2, 3, 4], [0, 2, 1, 4]);
      expect(r.mean).to.equal(0.75);
      expect(r.n).to.equal(4);
      expect(r.se).to.be.closeTo(Math.sqrt(2.75 / 3 / 4), 1e-12);
      expect(() => pairedDifference([1], [2])).to.throw(RangeError, 'pairedDifference: needs two lists of the same length >= 2; got 1 and 1');
    });
  });

  describe('one reproduction end to end @slow', () => {
    it('Should train, evaluate with the row\'s k and limit, and print ours beside the reference', function () {
      this.timeout(240000);
      const dir = tmp();
      const f = manifest(dir, [tinyRow()]);
      const out = path.join(dir, 'runs');
      const env = { ...process.env, VAELAB_BACKEND: 'cpu' };
      const r = spawnSync(process.execPath, [BIN, 'reproduce', 'tiny-nll', '--manifest', f, '--out', out, '--set', 'train.progress=none'], { env, encoding: 'utf8', cwd: dir });
      expect(r.status, r.stderr).to.equal(0);
      expect(r.stderr).to.contain(`$ npx vaelab train ${path.relative(dir, TINY)} --out ${out} --set train.progress=none`);
      expect(r.stderr).to.match(/\$ npx vaelab eval runs\/tiny\/\S+ --k 7 --limit 40/);
      const runDir = path.join(out, 'tiny', fs.readdirSync(path.join(out, 'tiny')).filter((d) => !d.startsWith('.'))[0]);
      const ev = JSON.parse(fs.readFileSync(path.join(runDir, 'eval.json'), 'utf8'));
      expect(ev.iw).to.include({ k: 7, examples: 40 });
      // the per-example estimates beside both evaluations: as many as evaluated, their mean the reported one
      for (const [file, k, n, mean] of [
        ['eval-iw-per-example.json', 7, 40, ev.test['test/iw-log-likelihood']],
        ['iw-per-example.json', summaryOf(runDir).iw.k, summaryOf(runDir).iw.examples, summaryOf(runDir).test['test/iw-log-likelihood']],
      ] as const) {
        const per = JSON.parse(fs.readFileSync(path.join(runDir, file), 'utf8'));
        expect(per, file).to.include({ estimate: 'iw', k, data: 'synthetic', examples: n });
        expect(per.values, file).to.have.length(n);
        expect(per.values.reduce((a: number, v: number) => a + v, 0) / n, file).to.be.closeTo(mean, 1e-9);
      }
      const nll = -ev.test['test/iw-log-likelihood'];
      const lines = r.stdout.trim().split('\n');
      expect(lines[0]).to.equal('tiny-nll: tiny');
      expect(lines[1]).to.equal(`  NLL: ours ${nll.toFixed(2)} (standard error over examples ${ev.test['test/iw-log-likelihood-se'].toFixed(2)}), from eval.json (k = 7, 40 test examples)`);
      const gap = nll - 100;
      const verdict = Math.abs(gap) <= 5 ? 'matches' : 'off by';
      expect(lines[4]).to.contain(`verdict: ${verdict}`);
      expect(lines[4]).to.contain(`${gap >= 0 ? '+' : ''}${gap.toFixed(2)}`);
      // a second call trains nothing and evaluates nothing
      const again = spawnSync(process.execPath, [BIN, 'reproduce', 'tiny-nll', '--manifest', f, '--out', out], { env, encoding: 'utf8', cwd: dir });
      expect(again.status, again.stderr).to.equal(0);
      expect(again.stderr).to.not.contain('$ npx vaelab');
      expect(again.stderr).to.contain('tiny-nll: trained already');
      expect(again.stdout).to.equal(r.stdout);
    });
  });
});
