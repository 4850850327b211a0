import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, Rng, experimentFromObject, type DataInfo } from '../../core';
import {
  MNIST_INFO,
  TINY_IMAGE_INFO,
  buildParts,
  disposeBatch,
  disposeParts,
  expectThrowExact,
  experimentObject,
  greyBatch,
  lossGrads,
  registryOf,
  type Parts,
} from '../../testing';
import { plugins as ladderPlugins } from '../ladder';
import { ConvHierarchyLatent, plugins } from '.';

const set = { plugins: [...plugins, ...ladderPlugins] };
const train = (seed: number, name: string) => ({ training: true, rng: Rng.derive(seed, name) });
const evaluation = (seed: number, name: string) => ({ training: false, rng: Rng.derive(seed, name) });
const values = (t: tf.Tensor) => Array.from(t.dataSync());
const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
const sd = (a: number[]) => {
  const m = mean(a);
  return Math.sqrt(a.reduce((s, v) => s + (v - m) ** 2, 0) / (a.length - 1));
};

const slot = (use: string, cfg: Record<string, unknown>) => ({ use, [use]: cfg });
/** A hierarchy on the kit's 8x8 images: maps at 8, 4, 2; groups [1, 2] at sides 4 and 2 (three groups; the top two at side 2). */
const hierarchy = (latent: Record<string, unknown> = {}, objective: Record<string, unknown> = {}) => ({
  encoder: slot('conv-hierarchy', { channels: [4, 4, 4] }),
  latent: slot('conv-hierarchy', { resolutions: [4, 2], groups: [1, 2], channels: [4, 6], zChannels: 2, ...latent }),
  decoder: slot('conv-hierarchy', { channels: [4] }),
  objective: slot('ladder', objective),
});

/** Adds `by` to the loc outputs of every q head (the first zChannels of its out bias), so that every KL is well above 0. */
function shiftPosteriors(parts: Parts, by: number): void {
  for (const [k, v] of parts.model.latent.variables()) {
    if (!/^group\d+\/q\/out\/bias$/.test(k)) continue;
    const half = v.shape[0] / 2;
    v.assign(tf.tidy(() => tf.add(v, tf.concat([tf.linspace(-by, by, half), tf.zeros([half])]))));
  }
}

describe('conv-hierarchy latent', () => {
  describe('KL per group', () => {
    for (const merge of ['concat', 'precision'] as const) {
      it(`Should match, group by group, the Monte-Carlo mean of log q - log p over 5 000 draws within 4 standard errors (merge ${merge})`, () => {
        // For a group below the top, the closed form is KL(q(z_l | x, z_>l) || p(z_l | z_>l)) at the
        // drawn groups above, and d = (log q - log p) - KL at the same draw has mean 0 exactly: the
        // test is |mean(d)| < 4 sd(d) / sqrt(n). The top: KL(q(z_G | x) || N(0, I)) per example.
        const parts = buildParts(hierarchy({ merge }), TINY_IMAGE_INFO, set);
        shiftPosteriors(parts, 1);
        const latent = parts.model.latent as ConvHierarchyLatent;
        const n = 5000;
        const x = greyBatch(2, parts.model.data, 5);
        const h = parts.model.encoder.encode(x.x, null, evaluation(1, 'kl'));
        const draw = latent.sampleLayers(h, n, evaluation(2, 'kl'));
        const priorLogP = tf.tidy(() => values(parts.model.prior.logProb(draw.sample.priorZ!, null)));
        const klTop = tf.tidy(() => values(parts.model.prior.analyticKl!(draw.sample.posterior!, null)));
        expect(draw.layers.length).to.equal(3);
        for (let l = 0; l < 3; l++) {
          const t = draw.layers[l];
          const logQ = values(t.logQ);
          const logP = t.logP ? values(t.logP) : priorLogP;
          const kl = t.kl ? values(t.kl) : logQ.map((_, i) => klTop[i % 2]);
          const d = logQ.map((q, i) => q - logP[i] - kl[i]);
          const se = sd(d) / Math.sqrt(n);
          expect(t.logP === null, `group ${l + 1}: only the top has no inner p`).to.equal(l === 2);
          expect(mean(kl), `group ${l + 1}: a KL away from 0`).to.be.above(0.1);
          expect(se, `group ${l + 1}: Monte-Carlo noise`).to.be.above(1e-4);
          expect(Math.abs(mean(d)), `group ${l + 1}: closed form ${mean(kl)}, Monte Carlo ${mean(kl) + mean(d)}, se ${se}`).to.be.below(4 * se);
        }
        tf.dispose(h as tf.Tensor[]);
        for (const t of draw.layers) tf.dispose([t.logQ, t.logP, t.kl].filter((v): v is tf.Tensor1D => v !== null));
        const s = draw.sample;
        tf.dispose([s.z, s.priorZ!, s.logQ, s.innerLogPrior!, s.innerKl!, s.posterior!.loc, s.posterior!.logVar]);
        disposeBatch(x);
        disposeParts(parts);
      });
    }

    it('Should report klLayer1..3 (bottom first) summing to kl, equal to the model closed form (prior.analyticKl + innerKl) with the same draws', () => {
      const parts = buildParts(hierarchy({}, { samples: 3 }), TINY_IMAGE_INFO, set);
      shiftPosteriors(parts, 1);
      const batch = greyBatch(4, parts.model.data, 4);
      const terms = parts.objective.terms(batch, { ...evaluation(9, 'terms'), step: 0 });
      const perGroup = [1, 2, 3].map((l) => values(terms[`klLayer${l}`]));
      const kl = values(terms.kl);
      kl.forEach((v, i) => expect(perGroup[0][i] + perGroup[1][i] + perGroup[2][i]).to.be.closeTo(v, 1e-4));
      const model = tf.tidy(() => {
        const pass = parts.model.forward(batch, 3, evaluation(9, 'terms'));
        return parts.model.kl(pass.latent, null);
      });
      expect(model.kind).to.equal('analytic');
      values(model.kl).forEach((v, i) => expect(kl[i]).to.be.closeTo(v, 1e-4));
      perGroup.forEach((g) => g.forEach((v) => expect(v).to.be.above(0)));
      tf.dispose([model.kl, ...Object.values(terms)]);
      disposeBatch(batch);
      disposeParts(parts);
    });
  });

  describe('one group at one side', () => {
    it('Should give the numbers of a plain VAE computed by hand from its weights, and the same terms under objective.elbo and objective.ladder', () => {
      // Not the numbers of encoder.conv + latent.gaussian + decoder.conv: those have a flat latent
      // with dense heads on the flattened map and a dense layer into the decoder, where one group
      // here is a spatial latent [2, 2, 2] with convolutional heads and a residual state; no weight
      // mapping turns one into the other. What holds is that one group is a plain VAE: q(z | x) is
      // the head's diagonal Gaussian (posterior), p(z) = N(0, I) alone (no inner layers), and
      // -ELBO = -log p(x | decoder(s(z))) + 0.5 sum(mu^2 + e^logVar - logVar - 1) with z = mu + e^(logVar/2) eps.
      const over = (objective: Record<string, unknown>) => ({
        ...hierarchy({ resolutions: [2], groups: [1], channels: [4] }),
        decoder: slot('conv-hierarchy', { channels: [4, 4] }),
        objective,
      });
      const ladder = buildParts(over(slot('ladder', { samples: 1 })), TINY_IMAGE_INFO, set);
      const elbo = buildParts(over(slot('elbo', { samples: 1 })), TINY_IMAGE_INFO, set);
      const batch = greyBatch(5, ladder.model.data, 3);
      for (const opts of [train(7, 'one'), evaluation(7, 'one')]) {
        const a = ladder.objective.terms(batch, { ...opts, rng: Rng.derive(7, 'one'), step: 0 });
        const b = elbo.objective.terms(batch, { ...opts, rng: Rng.derive(7, 'one'), step: 0 });
        for (const k of ['loss', 'reconstruction', 'kl', 'elbo']) expect(values(a[k]), `${k}, training ${opts.training}`).to.deep.equal(values(b[k]));
        expect(values(a.klLayer1)).to.deep.equal(values(b.kl));
        tf.dispose([...Object.values(a), ...Object.values(b)]);
      }
      const latent = ladder.model.latent as ConvHierarchyLatent;
      const o = evaluation(7, 'one');
      const h = ladder.model.encoder.encode(batch.x, null, o);
      const sample = latent.sample(h, 1, evaluation(7, 'one'));
      expect(sample.innerLogPrior).to.equal(undefined);
      expect(sample.innerKl).to.equal(undefined);
      const q = latent.posterior(h);
      const loc = values(q.loc);
      const logVar = values(q.logVar);
      // the same noise: drawDiagGaussian draws eps [B, D] first from the pass's Rng
      const eps = values(Rng.derive(7, 'one').normalTensor([5, 8]));
      const zHand = loc.map((m, i) => m + Math.exp(logVar[i] / 2) * eps[i]);
      values(sample.priorZ!).forEach((v, i) => expect(v).to.be.closeTo(zHand[i], 1e-5));
      // log q(z | x) = sum -0.5 (log 2pi + logVar + eps^2)
      values(sample.logQ).forEach((v, b) => {
        let s = 0;
        for (let d = 0; d < 8; d++) s += -0.5 * (Math.log(2 * Math.PI) + logVar[b * 8 + d] + eps[b * 8 + d] ** 2);
        expect(v).to.be.closeTo(s, 1e-4);
      });
      const terms = ladder.objective.terms(batch, { ...evaluation(7, 'one'), step: 0 });
      const rec = tf.tidy(() => {
        const z = tf.tensor2d(zHand, [5, 8]);
        const { state } = latent.pathFrom([z], o);
        return tf.neg(ladder.model.likelihood.logProb(batch.x, ladder.model.decoder.decode(state, null, o)));
      });
      values(rec).forEach((v, i) => expect(terms.reconstruction.dataSync()[i]).to.be.closeTo(v, 1e-3));
      values(terms.kl).forEach((v, b) => {
        let s = 0;
        for (let d = 0; d < 8; d++) s += 0.5 * (loc[b * 8 + d] ** 2 + Math.exp(logVar[b * 8 + d]) - logVar[b * 8 + d] - 1);
        expect(v).to.be.closeTo(s, 1e-4);
      });
      tf.dispose([...(h as tf.Tensor[]), q.loc, q.logVar, rec, ...Object.values(terms)]);
      tf.dispose([sample.z, sample.priorZ!, sample.logQ, sample.posterior!.loc, sample.posterior!.logVar]);
      disposeBatch(batch);
      disposeParts(ladder);
      disposeParts(elbo);
    });
  });

  describe('generation', () => {
    it('Should run every group of the top-down path: generate(z_G) equals the path with each lower group drawn from its p given the groups above', () => {
      const parts = buildParts(hierarchy(), TINY_IMAGE_INFO, set);
      const latent = parts.model.latent as ConvHierarchyLatent;
      const n = 6;
      const zTop = Rng.derive(3, 'top').normalTensor([n, latent.priorDim]) as tf.Tensor2D;
      const generated = latent.generate(zTop, evaluation(4, 'gen'));
      expect(generated.shape).to.deep.equal([n, 4, 4, 4]);
      // by hand, with the same noise in the same order: p of group t depends only on the groups above it
      const rng = Rng.derive(4, 'gen');
      const zs: tf.Tensor2D[] = [zTop];
      const sizes = [2, 1, 0].map((l) => latent.groupShape(l).reduce((a, b) => a * b, 1)); // top first: 2x2x2, 2x2x2, 4x4x2
      for (let t = 1; t < 3; t++) {
        const filler = sizes.slice(t).map((d) => tf.zeros([n, d]) as tf.Tensor2D);
        const { state, priors } = latent.pathFrom([...zs, ...filler], evaluation(0, 'by-hand'));
        const p = priors[t]!;
        const eps = rng.normalTensor(p.loc.shape);
        zs.push(tf.tidy(() => tf.add(p.loc, tf.mul(tf.exp(tf.mul(p.logVar, 0.5)), eps))) as tf.Tensor2D);
        tf.dispose([state, eps, ...filler, ...priors.flatMap((q) => (q ? [q.loc, q.logVar] : []))]);
      }
      const byHand = latent.pathFrom(zs, evaluation(0, 'by-hand'));
      const g = values(generated);
      values(byHand.state).forEach((v, i) => expect(g[i]).to.be.closeTo(v, 1e-5));
      // another seed draws other lower groups from the same top
      const other = latent.generate(zTop, evaluation(5, 'gen'));
      expect(values(other).some((v, i) => Math.abs(v - g[i]) > 1e-3)).to.equal(true);
      // and the model's generation goes through it: a prior draw, the top-down path, the decoder
      const xs = parts.model.generate(3, null, evaluation(6, 'gen'));
      expect(xs.shape).to.deep.equal([3, 64]);
      tf.dispose([generated, other, xs, byHand.state, ...zs, ...byHand.priors.flatMap((q) => (q ? [q.loc, q.logVar] : []))]);
      disposeParts(parts);
    });
  });

  describe('gradients', () => {
    for (const merge of ['concat', 'precision'] as const) {
      it(`Should send the loss gradient to every trainable variable of encoder, latent and decoder (merge ${merge}, warm-up on)`, () => {
        const parts = buildParts(hierarchy({ merge }, { klSchedule: { use: 'linear', warmupSteps: 10 } }), TINY_IMAGE_INFO, set);
        const batch = greyBatch(4, parts.model.data, 6);
        const grads = lossGrads(parts, batch);
        const keys = [...parts.model.variables().keys()];
        // encoder: stem, 2 downs, 3 cells x 2 convs = 9 convs; latent: state + 3 q heads (2 convs) + 2 p heads + 3 zProj + 3 cells (2 convs) + 1 upsampling = 1 + 2 * 20;
        // decoder: upsampling, one cell, out = 4 convs; 2 variables (kernel, bias) per conv
        expect(keys.filter((k) => k.startsWith('encoder/')).length).to.equal(18);
        expect(keys.filter((k) => k.startsWith('latent/')).length).to.equal(1 + 2 * (6 + 4 + 3 + 6 + 1));
        expect(keys.filter((k) => k.startsWith('decoder/')).length).to.equal(8);
        for (const k of keys) {
          const g = grads.get(k);
          expect(g, `${k} has a gradient`).to.not.equal(undefined);
          expect(g!.every(Number.isFinite), `${k} finite`).to.equal(true);
          expect(g!.some((v) => v !== 0), `${k} non-zero`).to.equal(true);
        }
        expect(parts.model.state().size).to.equal(0);
        disposeBatch(batch);
        disposeParts(parts);
      });
    }
  });

  // ---------------------------------------------------------------------------------------------
  // A linear-Gaussian hierarchy on 2x2 images, everything affine (activation linear, no cells):
  // z_G [1, 1, 1] ~ N(0, 1); z_1 [2, 2, 1] | z_G ~ N(A z_G + a, diag(v)) (v constant: the
  // variance half of p's output kernel is set to 0); x | z ~ N(c + M_G z_G + M_1 z_1, S^2 I).
  // So x ~ N(c + M_1 a, u u^T + M_1 diag(v) M_1^T + S^2 I), u = M_G + M_1 A: log p(x) exactly.
  // A, a, v, c, M_G, M_1 are read off the network by evaluating it at 0 and at unit vectors.
  // q is the network's own (random weights), not the exact posterior: the IW estimate must still
  // reach log p(x) as k grows.
  describe('a linear-Gaussian hierarchy', () => {
    const TWO: DataInfo = { name: 'two-by-two', shape: [2, 2, 1], dim: 4, numClasses: 0, condDim: 0 };
    const S = 1;

    /** Cholesky log-density of N(x; mu, C) for a small dense C. */
    function gaussLogPdf(x: number[], mu: number[], C: number[][]): number {
      const n = x.length;
      const L = C.map(() => new Array<number>(n).fill(0));
      for (let i = 0; i < n; i++) {
        for (let j = 0; j <= i; j++) {
          let s = C[i][j];
          for (let k = 0; k < j; k++) s -= L[i][k] * L[j][k];
          L[i][j] = i === j ? Math.sqrt(s) : s / L[j][j];
        }
      }
      const y = new Array<number>(n).fill(0);
      for (let i = 0; i < n; i++) {
        let s = x[i] - mu[i];
        for (let k = 0; k < i; k++) s -= L[i][k] * y[k];
        y[i] = s / L[i][i];
      }
      let logDet = 0;
      for (let i = 0; i < n; i++) logDet += 2 * Math.log(L[i][i]);
      return -0.5 * (n * Math.log(2 * Math.PI) + logDet + y.reduce((s, v) => s + v * v, 0));
    }

    it('Should give an IW estimate (k = 20 000) within 4 standard errors of the exact log p(x), above the ELBO', () => {
      const parts = buildParts(
        {
          encoder: slot('conv-hierarchy', { channels: [2, 2], cellsPerResolution: 0, activation: 'linear' }),
          latent: slot('conv-hierarchy', { resolutions: [2, 1], groups: [1, 1], channels: [2, 2], zChannels: 1, cellsPerGroup: 0, activation: 'linear', variance: 'exp', minVariance: 1e-12 }),
          decoder: slot('conv-hierarchy', { channels: [], activation: 'linear' }),
          likelihood: { use: 'gaussian', gaussian: { scale: 'fixed', fixedScale: S } },
          objective: slot('elbo', {}),
        },
        TWO,
        set,
      );
      const latent = parts.model.latent as ConvHierarchyLatent;
      // p(z_1 | z_G): zero the kernel of the variance output (channel 1 of group0/p/out), so v is its bias alone
      const pOut = latent.variables().get('group0/p/out/kernel')!;
      pOut.assign(tf.tidy(() => tf.mul(pOut, tf.tensor([1, 0]))));
      const o = evaluation(0, 'probe');
      const meanOf = (zg: number, z1: number[]) =>
        tf.tidy(() => {
          const { state } = latent.pathFrom([tf.tensor2d([[zg]]), tf.tensor2d([z1])], o);
          return values(parts.model.likelihood.mean(parts.model.decoder.decode(state, null, o)));
        });
      const priorOf = (zg: number) =>
        tf.tidy(() => {
          const { priors } = latent.pathFrom([tf.tensor2d([[zg]]), tf.zeros([1, 4]) as tf.Tensor2D], o);
          return { loc: values(priors[1]!.loc), logVar: values(priors[1]!.logVar) };
        });
      const c = meanOf(0, [0, 0, 0, 0]);
      const MG = meanOf(1, [0, 0, 0, 0]).map((v, i) => v - c[i]);
      const M1 = [0, 1, 2, 3].map((j) => meanOf(0, [0, 1, 2, 3].map((i) => (i === j ? 1 : 0))).map((v, i) => v - c[i])); // M1[j] = column j
      const p0 = priorOf(0);
      const p1 = priorOf(1);
      p0.logVar.forEach((v, i) => expect(p1.logVar[i], 'a constant variance of p(z_1 | z_G)').to.be.closeTo(v, 1e-6));
      const a = p0.loc;
      const Acol = p1.loc.map((v, i) => v - a[i]);
      const vv = p0.logVar.map(Math.exp);
      const mu = c.map((ci, i) => ci + [0, 1, 2, 3].reduce((s, j) => s + M1[j][i] * a[j], 0));
      const u = MG.map((m, i) => m + [0, 1, 2, 3].reduce((s, j) => s + M1[j][i] * Acol[j], 0));
      const C = [0, 1, 2, 3].map((i) => [0, 1, 2, 3].map((k) => u[i] * u[k] + [0, 1, 2, 3].reduce((s, j) => s + M1[j][i] * vv[j] * M1[j][k], 0) + (i === k ? S * S : 0)));
      const k = 20000;
      const points = [
        [0.2, -0.5, 0.9, 0.1],
        [1.5, 0.3, -0.8, 0.6],
      ];
      points.forEach((x, j) => {
        const lw = tf.tidy(() => {
          const pass = parts.model.forward({ x: tf.tensor2d([x]), cond: null }, k, evaluation(10 + j, 'iw'));
          return values(tf.sub(tf.add(pass.logPx, parts.model.logPrior(pass.latent, null)), pass.latent.logQ));
        });
        const max = Math.max(...lw);
        let sum = 0;
        let sumSq = 0;
        for (const v of lw) {
          const w = Math.exp(v - max);
          sum += w;
          sumSq += w * w;
        }
        const m = sum / k;
        const estimate = max + Math.log(m);
        // delta method: sd(log mean w) = sd(w) / (mean(w) sqrt(k))
        const se = Math.sqrt(Math.max(sumSq / k - m * m, 0)) / (m * Math.sqrt(k));
        const exact = gaussLogPdf(x, mu, C);
        expect(se, 'q is not the exact posterior: the weights are random').to.be.above(1e-4);
        expect(Math.abs(estimate - exact), `x = ${x}: estimate ${estimate}, exact ${exact}, se ${se}`).to.be.below(4 * se);
        expect(mean(lw), 'the ELBO is below log p(x)').to.be.below(exact);
      });
      disposeParts(parts);
    });
  });

  describe('bad input', () => {
    const mnist = (over: Record<string, Record<string, unknown>>) => () =>
      buildParts(
        {
          encoder: slot('conv-hierarchy', { channels: [16, 32, 64], ...over.encoder }),
          latent: slot('conv-hierarchy', { resolutions: [14, 7], groups: [1, 1], channels: [32, 64], ...over.latent }),
          decoder: slot('conv-hierarchy', { channels: [16], ...over.decoder }),
          objective: slot('ladder', {}),
        },
        MNIST_INFO,
        set,
      );

    it('Should refuse sides that do not divide the image, naming the key and the allowed sides', () => {
      expectThrowExact(
        mnist({ encoder: { channels: [8, 16, 32, 64] } }),
        ConfigError,
        'encoder.conv-hierarchy.channels: 4 sides need the image side divisible by 8 (3 halvings); data set "mnist" is 28x28, whose sides are 28, 14, 7 (at most 3 entries)',
      );
      expectThrowExact(
        mnist({ latent: { resolutions: [10, 7] } }),
        ConfigError,
        'latent.conv-hierarchy.resolutions: every side must be the image side 28 divided by a power of 2 (28, 14, 7); got [10,7], where 10 is not',
      );
      expectThrowExact(
        mnist({ latent: { resolutions: [7, 14] } }),
        ConfigError,
        'latent.conv-hierarchy.resolutions: must run from the finest side to the coarsest, each smaller than the one before; got [7,14]',
      );
      expectThrowExact(
        mnist({ encoder: { channels: [16, 32] } }),
        ConfigError,
        'latent.conv-hierarchy.resolutions: needs an encoder feature map [7, 7, C] at side 7 (e.g. encoder "conv-hierarchy" with channels down to that side); got the encoder\'s feature shapes [[28,28,16],[14,14,32]]',
      );
    });

    it('Should refuse an empty side or group list, and lists whose lengths do not match the sides', () => {
      expectThrowExact(
        mnist({ latent: { resolutions: [], groups: [], channels: [] } }),
        ConfigError,
        'latent.conv-hierarchy.resolutions: must list at least one side of the latent grids; got []',
      );
      expectThrowExact(
        mnist({ latent: { groups: [] } }),
        ConfigError,
        'latent.conv-hierarchy.groups: must have one entry per side of latent.conv-hierarchy.resolutions (the number of latent groups there), 2 for [14,7]; got [] (0 entries)',
      );
      expectThrowExact(
        mnist({ latent: { groups: [2], channels: [32, 64, 64] } }),
        ConfigError,
        '2 problems\n' +
          '  - latent.conv-hierarchy.groups: must have one entry per side of latent.conv-hierarchy.resolutions (the number of latent groups there), 2 for [14,7]; got [2] (1 entry)\n' +
          '  - latent.conv-hierarchy.channels: must have one entry per side of latent.conv-hierarchy.resolutions (the width of the top-down state there), 2 for [14,7]; got [32,64,64] (3 entries)',
      );
      expectThrowExact(
        mnist({ decoder: { channels: [32, 16] } }),
        ConfigError,
        'decoder.conv-hierarchy.channels: must have one entry per doubling from the latent state\'s side 14 to the image side 28, 1; got [32,16] (2 entries)',
      );
      expectThrowExact(
        () => buildParts({ decoder: slot('conv-hierarchy', {}) }, MNIST_INFO, set),
        ConfigError,
        'decoder.conv-hierarchy: needs a latent whose code is a square grid [s, s, C] (latent "conv-hierarchy"); got latent "GaussianLatent" with shape [3]',
      );
      expectThrowExact(
        () => buildParts({ encoder: slot('conv-hierarchy', {}) }, { ...MNIST_INFO, condDim: 10 }, set),
        ConfigError,
        'encoder.conv-hierarchy: takes no conditioning input (set data.condition to none); got condDim 10',
      );
    });

    it('Should refuse an undeclared key and a bad value with the strict-mode messages', () => {
      expectThrowExact(
        () => experimentFromObject(experimentObject({ latent: slot('conv-hierarchy', { sides: [7] }) }), registryOf(set)),
        ConfigError,
        'latent.conv-hierarchy.sides: not declared in the schema of plugin "conv-hierarchy" (keys: resolutions, groups, channels, zChannels, cellsPerGroup, merge, activation, variance, minVariance)',
      );
      expectThrowExact(
        () => experimentFromObject(experimentObject({ latent: slot('conv-hierarchy', { groups: [0] }) }), registryOf(set)),
        ConfigError,
        'latent.conv-hierarchy.groups: must be a list of at most 1024 integers in [1, 2147483647]; got [0]',
      );
    });
  });
});
