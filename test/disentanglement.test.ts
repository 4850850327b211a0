/**
 * Disentanglement metrics (core/eval/disentanglement): hand-worked cases of the information
 * measures, the discretiser, the vote classifier, the DCI entropies, the boosted trees and the
 * linear SVM; then every metric on representations whose answer is known: the factors themselves
 * with a little noise (near the top), a random rotation of them (lower), pure noise (near the
 * bottom); then a model's posterior means on the dSprites-like generator.
 */
import { expect } from 'chai';
import {
  GradientBoostingClassifier,
  LinearSvm1d,
  dci,
  dciCompleteness,
  dciDisentanglement,
  discreteEntropy,
  discreteMutualInfo,
  disentanglementSummary,
  evaluateModelDisentanglement,
  factorVaeScore,
  histogramDiscretize,
  majorityVote,
  meanTopTwoGap,
  mig,
  migFromCodes,
  posteriorMeanRepresentation,
  sapFromCodes,
  sapScore,
  solveSquaredHinge,
  type FactorCodes,
  type GroundTruthData,
  type Representation,
} from '../core/eval/disentanglement';
import { DspritesData } from '../core/data';
import { Rng } from '../core/rng';
import { disposeParts } from '../core/container';
import { buildParts } from './kits/build';

const LN2 = Math.log(2);
const LN3 = Math.log(3);

/** Factor labels as observations: x = the factors as floats (disentanglement_lib's IdentityObservationsData). */
class IdentityData implements GroundTruthData {
  readonly numFactors: number;
  constructor(readonly factorSizes: readonly number[]) {
    this.numFactors = factorSizes.length;
  }
  sampleFactors(n: number, rng: Rng): Int32Array {
    const out = new Int32Array(n * this.numFactors);
    for (let i = 0; i < out.length; i++) out[i] = rng.int(this.factorSizes[i % this.numFactors]);
    return out;
  }
  observations(factors: Int32Array): Float32Array {
    return Float32Array.from(factors);
  }
}

const SIZES = [4, 5, 6, 7];
const F = SIZES.length;
const data = new IdentityData(SIZES);

/** The factors plus N(0, 0.1^2) noise, one code per factor: a factor-aligned code. */
function aligned(seed: number): Representation {
  const rng = Rng.derive(seed, 'test-aligned');
  return (x) => Float64Array.from(x, (v) => v + 0.1 * rng.normal());
}

/** A seeded random F x F rotation (Gram-Schmidt of a Gaussian matrix), row-major. */
function randomRotation(seed: number, d: number): Float64Array {
  const rng = Rng.derive(seed, 'test-rotation');
  const m = Float64Array.from({ length: d * d }, () => rng.normal());
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < i; j++) {
      let dot = 0;
      for (let k = 0; k < d; k++) dot += m[i * d + k] * m[j * d + k];
      for (let k = 0; k < d; k++) m[i * d + k] -= dot * m[j * d + k];
    }
    let norm = 0;
    for (let k = 0; k < d; k++) norm += m[i * d + k] ** 2;
    for (let k = 0; k < d; k++) m[i * d + k] /= Math.sqrt(norm);
  }
  return m;
}

/** The aligned code turned by a random rotation: every code mixes every factor. */
function rotated(seed: number): Representation {
  const noisy = aligned(seed);
  const R = randomRotation(seed, F);
  return (x, n) => {
    const z = noisy(x, n);
    const out = new Float64Array(n * F);
    for (let i = 0; i < n; i++) for (let j = 0; j < F; j++) for (let k = 0; k < F; k++) out[i * F + j] += R[j * F + k] * z[i * F + k];
    return out;
  };
}

/** Standard normal codes that ignore the input. */
function noise(seed: number): Representation {
  const rng = Rng.derive(seed, 'test-noise');
  return (x, n) => Float64Array.from({ length: n * F }, () => rng.normal());
}

const codesOf = (codes: number[][], factors: number[][]): FactorCodes => ({
  codes: Float64Array.from(codes.flat()),
  factors: Int32Array.from(factors.flat()),
  n: codes.length,
  numCodes: codes[0].length,
  numFactors: factors[0].length,
});

describe('Disentanglement metrics', () => {
  describe('information measures (nats)', () => {
    it('Should give the entropy of 3 equally frequent labels as ln 3 and of a constant as 0', () => {
      expect(discreteEntropy([1, 1, 2, 2, 3, 3])).to.be.closeTo(LN3, 1e-12);
      expect(discreteEntropy([7, 7, 7])).to.equal(0);
      // p = (1/4, 3/4): -(1/4 ln 1/4 + 3/4 ln 3/4)
      expect(discreteEntropy([0, 1, 1, 1])).to.be.closeTo(-(0.25 * Math.log(0.25) + 0.75 * Math.log(0.75)), 1e-12);
    });

    it('Should give I(a; a) = H(a), I = 0 for independent labels, and a hand-worked partial case', () => {
      const a = [0, 0, 1, 1, 2, 2];
      expect(discreteMutualInfo(a, a)).to.be.closeTo(discreteEntropy(a), 1e-12);
      // Every (x, y) pair once among 4: p(x,y) = p(x) p(y).
      expect(discreteMutualInfo([0, 0, 1, 1], [0, 1, 0, 1])).to.be.closeTo(0, 1e-12);
      // y = [0,1,1,1] given x = [0,0,1,1]: H(y) - H(y|x) = H(1/4, 3/4) - (1/2 ln 2 + 1/2 * 0).
      const hy = -(0.25 * Math.log(0.25) + 0.75 * Math.log(0.75));
      expect(discreteMutualInfo([0, 0, 1, 1], [0, 1, 1, 1])).to.be.closeTo(hy - 0.5 * LN2, 1e-12);
      // Relabelling does not change it: only the partition counts.
      expect(discreteMutualInfo([5, 5, 9, 9], [-1, 3, 3, 3])).to.be.closeTo(hy - 0.5 * LN2, 1e-12);
    });

    it('Should discretise into equal-width bins over [min, max] labelled 1..bins, the maximum in the last', () => {
      // 3 bins over [0.1, 0.6]: edges 0.1, 0.2667, 0.4333 (and 0.6).
      expect(Array.from(histogramDiscretize([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], 3))).to.deep.equal([1, 1, 2, 2, 3, 3]);
      expect(Array.from(histogramDiscretize([0.6, 0.5, 0.4, 0.3, 0.2, 0.1], 3))).to.deep.equal([3, 3, 2, 2, 1, 1]);
      // 4 bins over [0, 4]: edges 0, 1, 2, 3; a value on an edge goes to the bin above it.
      expect(Array.from(histogramDiscretize([0, 1, 2, 3, 4, 0.999], 4))).to.deep.equal([1, 2, 3, 4, 4, 1]);
      // A constant code: one bin (numpy widens the range to [v - 0.5, v + 0.5]; 20 bins put v in bin 11).
      expect(Array.from(histogramDiscretize([2, 2, 2], 20))).to.deep.equal([11, 11, 11]);
    });
  });

  describe('pure functions on hand-built codes', () => {
    const v0 = [0, 0, 1, 1];
    const v1 = [0, 1, 0, 1];
    const factors = v0.map((a, i) => [a, v1[i]]);

    it('Should give MIG 1 when each code copies one factor, and 0 when both codes copy the same factor', () => {
      // 2 bins over [0, 1] keep the two values apart: I(z_k; v_k) = ln 2 = H(v_k), I(z_k; v_other) = 0.
      const separate = migFromCodes(codesOf(v0.map((a, i) => [a, v1[i]]), factors), 2);
      expect(separate.mig).to.be.closeTo(1, 1e-12);
      expect(separate.factorEntropy[0]).to.be.closeTo(LN2, 1e-12);
      // Both codes = v0: factor 0 has two codes with ln 2 (gap 0), factor 1 none (gap 0).
      const duplicated = migFromCodes(codesOf(v0.map((a) => [a, a]), factors), 2);
      expect(duplicated.mig).to.be.closeTo(0, 1e-12);
      expect(duplicated.mutualInfo[1][0]).to.be.closeTo(LN2, 1e-12);
    });

    it('Should build the majority-vote classifier and count its accuracy over all votes', () => {
      // Code 0: 3 votes for factor 0, 1 for factor 1 -> factor 0; code 1: 0 vs 2 -> factor 1.
      // Right: 3 + 2 of 6 training votes; evaluation votes [[1, 1], [0, 2]]: 1 + 2 of 4.
      const r = majorityVote([[3, 0], [1, 2]], [[1, 1], [0, 2]]);
      expect(r.classifier).to.deep.equal([0, 1]);
      expect(r.trainAccuracy).to.be.closeTo(5 / 6, 1e-12);
      expect(r.evalAccuracy).to.be.closeTo(3 / 4, 1e-12);
      // A tie goes to the lower factor, and a pruned code gets -1.
      expect(majorityVote([[1, 0], [1, 0]], [[0, 0], [0, 0]], [false, true]).classifier).to.deep.equal([0, -1]);
    });

    it('Should give DCI disentanglement and completeness on the hand-worked importance matrices', () => {
      const diag = [[5, 0, 0], [0, 5, 0], [0, 0, 5]];
      expect(dciDisentanglement(diag)).to.be.closeTo(1, 1e-9);
      expect(dciCompleteness(diag)).to.be.closeTo(1, 1e-9);
      // A code that matters for nothing does not lower either score (weight 0 / all importance elsewhere).
      expect(dciDisentanglement([[1, 0], [0, 1], [0, 0]])).to.be.closeTo(1, 1e-9);
      expect(dciCompleteness([[1, 0], [0, 1], [0, 0]])).to.be.closeTo(1, 1e-9);
      // Each factor split evenly over 2 of 6 codes (codes duplicated): completeness 1 - ln 2 / ln 6
      // (entropy of (1/2, 1/2) in base 6); each code still serves one factor: disentanglement 1.
      const dup = [...diag, ...diag];
      expect(dciDisentanglement(dup)).to.be.closeTo(1, 1e-9);
      expect(dciCompleteness(dup)).to.be.closeTo(1 - LN2 / Math.log(6), 1e-9);
      // Each code serves 2 of 6 factors evenly: disentanglement 1 - ln 2 / ln 6, completeness 1.
      const wide = diag.map((row) => [...row, ...row]);
      expect(dciDisentanglement(wide)).to.be.closeTo(1 - LN2 / Math.log(6), 1e-9);
      expect(dciCompleteness(wide)).to.be.closeTo(1, 1e-9);
      // No importance at all: every row uniform (after + 1e-11), entropy 1 in base F: 0.
      const zero = [[0, 0, 0], [0, 0, 0], [0, 0, 0]];
      expect(dciDisentanglement(zero)).to.be.closeTo(0, 1e-9);
      expect(dciCompleteness(zero)).to.be.closeTo(0, 1e-9);
    });

    it('Should give SAP as the mean gap of the two best codes per factor, and squared correlations for continuous factors', () => {
      // Column 0: 0.9 - 0.5; column 1: 0.7 - 0.6. Mean 0.25.
      expect(meanTopTwoGap([[0.9, 0.1], [0.5, 0.6], [0.2, 0.7]])).to.be.closeTo(0.25, 1e-12);
      // z0 = 2 v0 + 1 (correlation 1), z1 = v1 (uncorrelated with v0): S = [[1, 0], [0, 1]], SAP 1.
      const s = codesOf(v0.map((a, i) => [2 * a + 1, v1[i]]), factors);
      const r = sapFromCodes(s, s, true);
      expect(r.scoreMatrix[0][0]).to.be.closeTo(1, 1e-12);
      expect(r.scoreMatrix[1][0]).to.be.closeTo(0, 1e-12);
      expect(r.sap).to.be.closeTo(1, 1e-12);
      // A constant code has no variance: score 0 (the protocol's 1e-12 guard), not NaN.
      expect(sapFromCodes(codesOf(v0.map(() => [3, 3]), factors), codesOf(v0.map(() => [3, 3]), factors), true).sap).to.equal(0);
    });
  });

  describe('boosted trees (sklearn GradientBoostingClassifier defaults)', () => {
    it('Should take one hand-worked binary stage: init logit(1/2) = 0, leaf values sum(r) / sum(p(1-p)) = +-2', () => {
      // x = 0..3, y = [0, 0, 1, 1]: p = 1/2, residuals -1/2, -1/2, 1/2, 1/2; the split at 1.5 makes
      // pure leaves; leaf value (2 * 1/2) / (2 * 1/4) = 2, times the learning rate 0.1.
      const x = Float64Array.of(0, 1, 2, 3);
      const m = GradientBoostingClassifier.fit(x, 4, 1, [0, 0, 1, 1], { nEstimators: 1 });
      const raw = Array.from(m.decisionFunction(x, 4));
      [-0.2, -0.2, 0.2, 0.2].forEach((v, i) => expect(raw[i]).to.be.closeTo(v, 1e-12));
      expect(Array.from(m.predict(x, 4))).to.deep.equal([0, 0, 1, 1]);
      expect(Array.from(m.featureImportances)).to.deep.equal([1]);
    });

    it('Should take one hand-worked 3-class stage: init log(1/3), leaf values 2 and -1 from the multinomial Newton step', () => {
      // One example per class at x = 0, 1, 2: p = 1/3 everywhere. Tree of class k: residual 2/3 at
      // its own example, -1/3 at the others. Own leaf: (2/3 * (K-1)/K) / (1/3 * 2/3) = (4/9) / (2/9)
      // = 2. The others' leaf (they have equal residuals, so they are not split further):
      // (-2/3 * 2/3) / (2 * 2/9) = -1. Raw = log(1/3) + 0.1 * value.
      const x = Float64Array.of(0, 1, 2);
      const m = GradientBoostingClassifier.fit(x, 3, 1, [0, 1, 2], { nEstimators: 1 });
      const raw = m.decisionFunction(x, 3);
      for (let i = 0; i < 3; i++) {
        for (let k = 0; k < 3; k++) expect(raw[i * 3 + k]).to.be.closeTo(Math.log(1 / 3) + 0.1 * (i === k ? 2 : -1), 1e-12);
      }
    });

    it('Should learn an XOR of two features and give a third, irrelevant feature almost no importance', () => {
      const rng = Rng.derive(0, 'test-gbt-xor');
      const n = 400;
      const x = new Float64Array(n * 3);
      const y = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        for (let f = 0; f < 3; f++) x[i * 3 + f] = rng.uniform();
        y[i] = (x[i * 3] > 0.5 ? 1 : 0) ^ (x[i * 3 + 1] > 0.5 ? 1 : 0);
      }
      const m = GradientBoostingClassifier.fit(x, n, 3, y, { nEstimators: 30 });
      const pred = m.predict(x, n);
      let right = 0;
      for (let i = 0; i < n; i++) if (pred[i] === y[i]) right++;
      expect(right / n).to.be.greaterThan(0.95);
      const imp = Array.from(m.featureImportances);
      expect(imp[0] + imp[1] + imp[2]).to.be.closeTo(1, 1e-9);
      expect(imp[2]).to.be.lessThan(0.1);
    });
  });

  describe('linear SVM on one feature (LinearSVC, squared hinge, penalised intercept)', () => {
    it('Should find the closed-form optimum of a symmetric two-class problem: w = 4nC / (1 + 4nC), b = 0', () => {
      // n = 50 points at x = +1 (y = +1) and at x = -1 (y = -1), C = 0.01: by symmetry b = 0, and
      // 0.5 w^2 + 2nC (1 - w)^2 is least at w = 4nC / (1 + 4nC) = 2/3.
      const x = Float64Array.from({ length: 100 }, (_, i) => (i < 50 ? 1 : -1));
      const y = Float64Array.from(x);
      const { w, b } = solveSquaredHinge(x, y, new Float64Array(100).fill(0.01));
      expect(w).to.be.closeTo(2 / 3, 1e-9);
      expect(b).to.be.closeTo(0, 1e-9);
    });

    it('Should reach a minimum on an asymmetric problem: no small step lowers the objective', () => {
      const rng = Rng.derive(1, 'test-svm');
      const n = 200;
      const x = Float64Array.from({ length: n }, () => rng.normal());
      const y = Float64Array.from(x, (v) => (v + 0.5 * rng.normal() > 0.3 ? 1 : -1));
      const c = Float64Array.from(y, (v) => (v > 0 ? 0.03 : 0.01));
      const { w, b } = solveSquaredHinge(x, y, c);
      const f = (ww: number, bb: number) => {
        let s = 0.5 * (ww * ww + bb * bb);
        for (let i = 0; i < n; i++) s += c[i] * Math.max(0, 1 - y[i] * (ww * x[i] + bb)) ** 2;
        return s;
      };
      const f0 = f(w, b);
      for (const [dw, db] of [[1e-4, 0], [-1e-4, 0], [0, 1e-4], [0, -1e-4], [1e-4, 1e-4], [-1e-4, 1e-4]]) {
        expect(f(w + dw, b + db)).to.be.greaterThanOrEqual(f0 - 1e-12);
      }
    });

    it('Should separate ordered classes on one feature one-vs-rest and predict among the training labels', () => {
      // Classes 10 and 20 far apart: any sensible linear rule separates them.
      const x = [-3, -2.5, -2, 2, 2.5, 3];
      const svm = LinearSvm1d.fit(x, [10, 10, 10, 20, 20, 20], { c: 1 });
      expect(Array.from(svm.predict([-4, 4]))).to.deep.equal([10, 20]);
      // Three classes: the outer two are linearly separable from the rest, so they are found.
      const x3 = [-5, -5, -5, 0, 0, 0, 5, 5, 5];
      const m3 = LinearSvm1d.fit(x3, [0, 0, 0, 1, 1, 1, 2, 2, 2], { c: 1 });
      const p3 = Array.from(m3.predict([-5, 5]));
      expect(p3).to.deep.equal([0, 2]);
    });
  });

  describe('known representations of 4 factors of 4-7 values', () => {
    const small = {
      mig: { numTrain: 3000 },
      factorVae: { numTrain: 300, numEval: 300, numVarianceEstimate: 1000 },
      dci: { numTrain: 600, numTest: 300, gbt: { nEstimators: 20 } },
      sap: { numTrain: 1000, numTest: 500 },
    };
    const scores = (represent: () => Representation) => ({
      mig: mig(data, represent(), 0, small.mig).mig,
      factorVae: factorVaeScore(data, represent(), 0, small.factorVae).evalAccuracy,
      dci: dci(data, represent(), 0, small.dci),
      sap: sapScore(data, represent(), 0, small.sap).sap,
      sapContinuous: sapScore(data, represent(), 0, { ...small.sap, continuousFactors: true }).sap,
    });
    let good: ReturnType<typeof scores>;
    let turned: ReturnType<typeof scores>;
    let bad: ReturnType<typeof scores>;

    before(() => {
      good = scores(() => aligned(1));
      turned = scores(() => rotated(1));
      bad = scores(() => noise(1));
    });

    it('Should score a factor-aligned code near the top of every metric', () => {
      // MIG: I(z_k; v_k) = H(v_k) when the noise (sd 0.1) never moves a value across the bins it
      // falls in; the other codes carry only the plug-in bias, about cells / (2n) = 140 / 6000 nats.
      expect(good.mig).to.be.greaterThan(0.9);
      // FactorVAE: the fixed factor's code has variance 0.01 against about 1-4 for the others.
      expect(good.factorVae).to.be.greaterThan(0.95);
      expect(good.dci.disentanglement).to.be.greaterThan(0.9);
      expect(good.dci.completeness).to.be.greaterThan(0.9);
      expect(good.dci.informativenessTest).to.be.greaterThan(0.95);
      // Squared correlation of z_k = v_k + noise with v_k is Var(v)/(Var(v) + 0.01), with 0 elsewhere.
      expect(good.sapContinuous).to.be.greaterThan(0.9);
    });

    it('Should score a random rotation of it lower on MIG, DCI and SAP, and not higher on the FactorVAE score', () => {
      expect(turned.mig).to.be.lessThan(good.mig - 0.3);
      // The vote takes the code of least normalised variance, so a rotation that leaves every factor
      // its own most-aligned code can keep the score at 1 (the 45-degree case below cannot).
      expect(turned.factorVae).to.be.at.most(good.factorVae);
      expect(turned.dci.disentanglement).to.be.lessThan(good.dci.disentanglement - 0.3);
      expect(turned.dci.completeness).to.be.lessThan(good.dci.completeness - 0.3);
      expect(turned.sap).to.be.lessThan(good.sap);
      expect(turned.sapContinuous).to.be.lessThan(good.sapContinuous - 0.3);
      // The rotation loses no information: trees on the whole code still find the factors far above
      // chance (about 0.19), if less well than on the aligned code (axis-aligned splits, 600 points).
      expect(turned.dci.informativenessTest).to.be.greaterThan(0.6);
    });

    it('Should lower the FactorVAE score when a 45-degree rotation gives two factors the same best code', () => {
      // z0 = (v0 + v1) / sqrt 2, z1 = (v0 - v1) / sqrt 2: fixing v0 or v1 leaves z0 and z1 the same
      // share of their variance, so the votes of factors 0 and 1 fall on codes 0 and 1 about
      // evenly; the majority vote gives each of the two codes one factor, and about half of those
      // two factors' votes (a quarter of all votes) land on the code of the other: about 0.75.
      const noisy = aligned(1);
      const mixed: Representation = (x, n) => {
        const z = Float64Array.from(noisy(x, n));
        for (let i = 0; i < n; i++) {
          const [a, b] = [z[i * F], z[i * F + 1]];
          z[i * F] = (a + b) / Math.SQRT2;
          z[i * F + 1] = (a - b) / Math.SQRT2;
        }
        return z;
      };
      const score = factorVaeScore(data, mixed, 0, small.factorVae).evalAccuracy;
      expect(score).to.be.lessThan(0.85);
      expect(score).to.be.lessThan(good.factorVae - 0.1);
    });

    it('Should score pure noise near the bottom of every metric', () => {
      expect(bad.mig).to.be.lessThan(0.05);
      // The vote classifier is right by chance: about 1 / 4 of the votes.
      expect(bad.factorVae).to.be.lessThan(0.4);
      expect(bad.dci.disentanglement).to.be.lessThan(0.2);
      expect(bad.dci.completeness).to.be.lessThan(0.2);
      // Chance accuracy averaged over factors of 4..7 values: mean of 1/4 .. 1/7, about 0.19.
      expect(bad.dci.informativenessTest).to.be.lessThan(0.3);
      expect(bad.sap).to.be.lessThan(0.05);
      expect(bad.sapContinuous).to.be.lessThan(0.05);
    });

    it('Should score the discrete SAP of the aligned code above noise, with each factor best predicted by its own code', () => {
      expect(good.sap).to.be.greaterThan(bad.sap + 0.1);
      const s = sapFromCodes(
        codesFrom(aligned(2), 1000, 3),
        codesFrom(aligned(2), 500, 4),
      );
      for (let k = 0; k < F; k++) {
        const col = s.scoreMatrix.map((row) => row[k]);
        expect(col.indexOf(Math.max(...col)), `factor ${k}`).to.equal(k);
      }
    });
  });

  describe('the dSprites-like generator', () => {
    it('Should give a code of centre of mass and area its MIG gaps on posX, posY and scale', () => {
      // The sprite's centre of mass moves with posX (column) and posY (row) alone, up to about a
      // pixel of shape and rotation; the area grows with scale and also depends on shape.
      const moments: Representation = (x, n) => {
        const out = new Float64Array(n * 3);
        for (let i = 0; i < n; i++) {
          let area = 0;
          let col = 0;
          let row = 0;
          for (let p = 0; p < 4096; p++) {
            const v = x[i * 4096 + p];
            area += v;
            col += v * (p % 64);
            row += v * Math.floor(p / 64);
          }
          out.set([col / area, row / area, area], i * 3);
        }
        return out;
      };
      const r = mig(new DspritesData(), moments, 0, { numTrain: 2000 });
      // Factors: shape, scale, orientation, posX, posY. 20 bins cannot tell 32 positions apart:
      // I(z; v) <= ln 20, so a position's gap is at most ln 20 / ln 32 = 0.86; the heart's
      // off-centre mass, turning with orientation, blurs it further.
      const posXInfo = r.mutualInfo.map((row) => row[3]);
      const posYInfo = r.mutualInfo.map((row) => row[4]);
      expect(posXInfo.indexOf(Math.max(...posXInfo))).to.equal(0);
      expect(posYInfo.indexOf(Math.max(...posYInfo))).to.equal(1);
      expect(r.mutualInfo[0][3]).to.be.at.most(Math.log(20) + 1e-9);
      expect(r.gapPerFactor[3]).to.be.within(0.5, Math.log(20) / Math.log(32));
      expect(r.gapPerFactor[4]).to.be.within(0.5, Math.log(20) / Math.log(32));
      const scaleInfo = r.mutualInfo.map((row) => row[1]);
      expect(scaleInfo.indexOf(Math.max(...scaleInfo))).to.equal(2);
      expect(r.gapPerFactor[1]).to.be.greaterThan(0.2);
    });
  });

  describe('a model on the dSprites-like generator', () => {
    it('Should score the posterior means of a model with every metric, as values in [0, 1]', function () {
      // DEFAULT_EXPERIMENT of the kit: MLP encoder and decoder (16 hidden units), a 3-D Gaussian latent.
      const parts = buildParts({}, { name: 'dsprites', shape: [64, 64, 1], dim: 4096, numClasses: 3, condDim: 0 });
      try {
        const represent = posteriorMeanRepresentation(parts.model, 0);
        const x = new DspritesData().observations(Int32Array.of(0, 1, 2, 3, 4, 2, 5, 39, 31, 31), 2);
        expect(represent(x, 2).length).to.equal(2 * 3);
        const r = evaluateModelDisentanglement(parts.model, new DspritesData(), 0, {
          mig: { numTrain: 64 },
          factorVae: { numTrain: 4, numEval: 4, numVarianceEstimate: 64, batchSize: 8, pruneThreshold: 0 },
          dci: { numTrain: 48, numTest: 16, gbt: { nEstimators: 2 } },
          sap: { numTrain: 48, numTest: 16 },
        });
        const summary = disentanglementSummary(r);
        expect(Object.keys(summary)).to.include.members(['disentanglement/mig', 'disentanglement/factor-vae', 'disentanglement/dci-disentanglement', 'disentanglement/sap']);
        for (const [key, v] of Object.entries(summary)) {
          if (key.endsWith('active-codes')) expect(v).to.equal(3);
          else expect(v, key).to.be.within(0, 1);
        }
        expect(r.dci!.importance.length).to.equal(3);
        expect(r.mig!.mutualInfo[0].length).to.equal(5);
      } finally {
        disposeParts(parts);
      }
    });
  });
});

/** n (code, factor) pairs of `data` under `represent`, from stream `seed`. */
function codesFrom(represent: Representation, n: number, seed: number): FactorCodes {
  const factors = data.sampleFactors(n, Rng.derive(seed, 'test-codes'));
  const codes = Float64Array.from(represent(data.observations(factors), n));
  return { codes, factors, n, numCodes: F, numFactors: F };
}
