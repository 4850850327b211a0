/**
 * The model: the five generative/inference slots wired together. Objectives and the evaluator
 * use it rather than the slots one by one, so every objective sees the same forward pass.
 */
import { inject, injectable } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's CommonJS build registers no gradients: this registers tfjs's (from the union
// package) and vaelab's replacements. Every training path goes through the model.
import './gradients';
import {
  TOKENS,
  type DataInfo,
  type Decoder,
  type Encoder,
  type Features,
  type Latent,
  type LatentSample,
  type Likelihood,
  type ModelBatch,
  type ObjectiveTerms,
  type PassOptions,
  type Prior,
  type Trainable,
} from './contracts';
import { meanOverSamples, tileSamples } from './math';

/** One forward pass with S samples per input. Shapes: B = batch. */
export interface ForwardPass {
  latent: LatentSample;
  /** Likelihood parameters. [S*B, dataDim * paramsPerDim] */
  params: tf.Tensor2D;
  /** log p(x | z). [S*B] */
  logPx: tf.Tensor1D;
}

/** Which KL estimate a pass used. */
export type KlKind = 'analytic' | 'monte-carlo';
/** How VaeModel.kl estimates the KL: the closed form where one exists (else Monte Carlo), or Monte Carlo always. */
export type KlEstimator = 'closed-form' | 'monte-carlo';

/** Encoder, latent, decoder, prior and likelihood of one experiment. */
@injectable()
export class VaeModel implements Trainable {
  private warnedMc = false;
  constructor(
    @inject(TOKENS.Encoder) readonly encoder: Encoder,
    @inject(TOKENS.Latent) readonly latent: Latent,
    @inject(TOKENS.Decoder) readonly decoder: Decoder,
    @inject(TOKENS.Prior) readonly prior: Prior,
    @inject(TOKENS.Likelihood) readonly likelihood: Likelihood,
    @inject(TOKENS.DataInfo) readonly data: DataInfo,
  ) {}

  /** The model's five slots with their parts, in SLOTS order. */
  slots(): Array<[string, Trainable]> {
    return [
      ['encoder', this.encoder],
      ['latent', this.latent],
      ['decoder', this.decoder],
      ['prior', this.prior],
      ['likelihood', this.likelihood],
    ];
  }

  /** Every trainable variable, keyed "<slot>/<name>"; a variable shared by two slots appears once. */
  variables(): Map<string, tf.Variable> {
    return collectVariables(this.slots(), (p) => p.variables());
  }

  /** Every slot's non-trainable state (Trainable.state), keyed "<slot>/<name>". */
  state(): Map<string, tf.Variable> {
    return collectVariables(this.slots(), (p) => p.state?.() ?? new Map());
  }

  /** Encodes, samples S codes per input, decodes and scores x. opts.cond is set to batch.cond. */
  forward(batch: ModelBatch, samples: number, opts: PassOptions): ForwardPass {
    const o: PassOptions = { ...opts, cond: batch.cond };
    const h = this.encoder.encode(batch.x, batch.cond, o);
    const latent = this.latent.sample(h, samples, o);
    disposeFeatures(h);
    const condS = tileSamples(batch.cond, samples);
    const params = this.decoder.decode(latent.z, condS, { ...opts, cond: condS });
    const xS = samples === 1 ? batch.x : tileSamples(batch.x, samples);
    const logPx = this.likelihood.logProb(xS, params);
    if (xS !== batch.x) xS.dispose();
    condS?.dispose();
    return { latent, params, logPx };
  }

  /**
   * log p(z) of a pass's samples, including inner layers of a hierarchy. [S*B]
   * cond is the batch's conditioning input [B, condDim] (tiled here).
   */
  logPrior(latent: LatentSample, cond: tf.Tensor2D | null, opts?: PassOptions): tf.Tensor1D {
    return tf.tidy(() => {
      const condS = tileSamples(cond, latent.samples);
      let lp = this.prior.logProb(latent.priorZ ?? latent.z, condS, opts && { ...opts, cond: condS });
      if (latent.innerLogPrior) lp = tf.add(lp, latent.innerLogPrior);
      return lp;
    });
  }

  /**
   * KL(q(z|x) || p(z)) per example [B]: closed form when the latent exposes a diagonal
   * Gaussian posterior and the prior offers `analyticKl`, else the Monte-Carlo estimate
   * mean_s(log q - log p) over the pass's samples. `estimator: 'monte-carlo'` takes the
   * Monte-Carlo estimate even where a closed form exists (same expectation, noisier gradients).
   */
  kl(latent: LatentSample, cond: tf.Tensor2D | null, opts?: PassOptions, estimator: KlEstimator = 'closed-form'): { kl: tf.Tensor1D; kind: KlKind } {
    // Only an exact posterior (never posteriorStats, which is for diagnostics) gives a closed form.
    if (estimator === 'closed-form' && latent.posterior && this.prior.analyticKl && (!latent.innerLogPrior || latent.innerKl)) {
      const kl = tf.tidy(() => {
        let k = this.prior.analyticKl!(latent.posterior!, cond, false, opts && { ...opts, cond }) as tf.Tensor1D;
        if (latent.innerKl) k = tf.add(k, latent.innerKl);
        return k;
      });
      return { kl, kind: 'analytic' };
    }
    if (estimator === 'closed-form' && !this.warnedMc) {
      this.warnedMc = true;
      const p = `prior "${this.prior.constructor.name}"`;
      const l = `latent "${this.latent.constructor.name}"`;
      const why = !this.prior.analyticKl
        ? `${p} offers no closed form for ${l}`
        : !latent.posterior
          ? `${l} gives no exact diagonal-Gaussian posterior for the closed form of ${p}`
          : `${l} has inner layers without a closed-form KL (innerKl)`;
      process.emitWarning(`KL(q||p) is estimated by Monte Carlo: ${why}`, { code: 'VAELAB_MC_KL' });
    }
    const kl = tf.tidy(() => meanOverSamples(tf.sub(latent.logQ, this.logPrior(latent, cond, opts)), latent.samples));
    return { kl, kind: 'monte-carlo' };
  }

  /** Posterior-mode reconstructions E[x | mode(z|x)]. Shapes: x [B, dataDim] -> [B, dataDim]. */
  reconstruct(batch: ModelBatch, opts: PassOptions): tf.Tensor2D {
    return tf.tidy(() => {
      const o: PassOptions = { ...opts, cond: batch.cond };
      const h = this.encoder.encode(batch.x, batch.cond, o);
      const z = this.latent.mode(h, o);
      return this.likelihood.mean(this.decoder.decode(z, batch.cond, o));
    });
  }

  /** n new examples E[x | z], z ~ p(z | cond). Shapes: cond [n, condDim] or null -> [n, dataDim]. */
  generate(n: number, cond: tf.Tensor2D | null, opts: PassOptions): tf.Tensor2D {
    return tf.tidy(() => {
      const o: PassOptions = { ...opts, cond };
      const zPrior = this.prior.sample(n, opts.rng, cond, o);
      const z = this.latent.generate ? this.latent.generate(zPrior, o) : zPrior;
      return this.likelihood.mean(this.decoder.decode(z, cond, o));
    });
  }
}

/**
 * The latent's own per-example losses (LatentSample.terms: VQ's codebook and commitment terms)
 * added to an objective's loss and reported under their names: out.loss = loss + sum(terms).
 * With LatentSample.layerKl and a `kl` term, also the KL per stochastic layer (klLayer1 ..).
 * Every objective that takes a latent sample ends with it. Shapes: loss and every term [B].
 */
export function addLatentTerms(out: ObjectiveTerms, loss: tf.Tensor1D, latent: LatentSample): ObjectiveTerms {
  let total = loss;
  for (const [name, t] of Object.entries(latent.terms ?? {})) {
    total = tf.add(total, t) as tf.Tensor1D;
    out[name] = t;
  }
  out.loss = total;
  if (latent.layerKl?.length && out.kl) {
    const rows = out.kl.shape[0];
    let below: tf.Tensor1D | null = null;
    latent.layerKl.forEach((t, i) => {
      const perExample = t.shape[0] === rows ? t : meanOverSamples(t, latent.samples);
      out[`klLayer${i + 1}`] = perExample;
      below = below ? (tf.add(below, perExample) as tf.Tensor1D) : perExample;
    });
    out[`klLayer${latent.layerKl.length + 1}`] = tf.sub(out.kl, below!) as tf.Tensor1D;
  }
  return out;
}

/** Variables of several parts keyed "<part>/<name>", each variable once (under its first part). */
export function collectVariables<P>(parts: Array<[string, P]>, of: (p: P) => Map<string, tf.Variable>): Map<string, tf.Variable> {
  const out = new Map<string, tf.Variable>();
  const seen = new Set<tf.Variable>();
  for (const [slot, part] of parts) {
    for (const [k, v] of of(part)) {
      if (seen.has(v)) continue;
      seen.add(v);
      out.set(`${slot}/${k}`, v);
    }
  }
  return out;
}

/** Disposes an encoder's features (one tensor or a list). */
export function disposeFeatures(h: Features): void {
  if (Array.isArray(h)) tf.dispose(h);
  else h.dispose();
}

/** Disposes every tensor of a latent sample. */
export function disposeLatentSample(s: LatentSample): void {
  const ts: Array<tf.Tensor | undefined> = [
    s.z,
    s.priorZ,
    s.logQ,
    s.posterior?.loc,
    s.posterior?.logVar,
    s.posteriorStats?.loc,
    s.posteriorStats?.logVar,
    s.innerLogPrior,
    s.innerKl,
    ...(s.layerKl ?? []),
    ...(s.layerLoc ?? []),
  ];
  for (const t of ts) t?.dispose();
  for (const t of Object.values(s.terms ?? {})) t.dispose();
}
