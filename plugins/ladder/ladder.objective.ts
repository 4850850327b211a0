/**
 * The ladder VAE's training objective (Sønderby et al. 2016, https://arxiv.org/abs/1602.02282):
 * the ELBO with its KL split by stochastic layer, each layer's KL reported, an optional KL
 * warm-up (the paper's section 2.3: the KL weight rises linearly from 0 to 1) and optional free
 * bits per layer (Kingma et al. 2016, https://arxiv.org/abs/1606.04934, with a layer as the group).
 *
 *   KL_L = KL(q(z_L | x) || p(z_L))                               (the prior's closed form, else Monte Carlo)
 *   KL_l = KL(q(z_l | z_l+1, x) || p(z_l | z_l+1)), l < L         (closed form given the drawn z_l+1)
 *   loss = reconstruction + w(step) * sum_l penalty_l (+ latent terms)
 *   penalty_l = KL_l, or with free bits lambda_l: max(lambda_l, E_batch[KL_l]) (over: batch) or
 *   max(lambda_l, KL_l) per example (over: example)
 *
 * Needs a latent that draws layer by layer (`LayeredLatent`: latent.ladder, or
 * latent.conv-hierarchy whose groups are the layers); the per-layer terms come from its top-down
 * pass. Reads objective.ladder.samples, klSchedule.* (core's KL-weight schedule) and freeBits.*.
 */
import { inject, injectable } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import {
  Module,
  TOKENS,
  addLatentTerms,
  definePlugin,
  klScheduleProblems,
  klScheduleSchema,
  meanOverSamples,
  pluginConfig,
  tileSamples,
  weightAt,
  type ConfigOf,
  type Features,
  type Latent,
  type ModelBatch,
  type Objective,
  type ObjectiveContext,
  type ObjectiveTerms,
  type PassOptions,
  type VaeModel,
} from '../../core';
import { refuse } from './blocks';
import type { LadderDraw } from './ladder.latent';

export const ladderObjectiveSchema = {
  samples: { doc: 'Monte-Carlo samples of z per input', format: 'positive-int', default: 1 },
  klSchedule: klScheduleSchema,
  freeBits: {
    natsPerLayer: {
      doc: 'free bits per stochastic layer: [] off; one value for every layer; or one per layer, bottom first. KL_l below lambda_l costs nothing',
      format: 'number-list',
      default: [],
    },
    over: {
      doc: 'clamp the batch mean of each layer KL (batch, as Kingma et al.) or each example own (example)',
      format: ['batch', 'example'],
      default: 'batch',
    },
  },
} as const;

export type LadderObjectiveConfig = ConfigOf<typeof ladderObjectiveSchema>;

const KEY = 'objective.ladder';

/**
 * What objective.ladder needs of a latent: a draw that keeps each stochastic layer's terms, bottom
 * first (`sampleLayers`), the number of layers, and the config key that sets it (for messages).
 * latent.ladder offers it; so does any latent with a top-down pass of several layers.
 */
export interface LayeredLatent extends Latent {
  readonly layers: number;
  /** e.g. "latent.ladder.dims" */
  readonly layersKey: string;
  sampleLayers(h: Features, samples: number, opts: PassOptions): LadderDraw;
}

/** Whether a latent offers what objective.ladder needs (LayeredLatent). */
export function isLayeredLatent(latent: Latent): latent is LayeredLatent {
  const l = latent as Partial<LayeredLatent>;
  return typeof l.sampleLayers === 'function' && typeof l.layers === 'number' && typeof l.layersKey === 'string';
}

/**
 * Terms, each [B]: loss; reconstruction = -E_q[log p(x | z_1)]; kl = sum_l KL_l (unweighted);
 * elbo = -(reconstruction + kl); klLayer1 .. klLayerL (bottom first); klWeight = w(step);
 * klPenalty = sum_l penalty_l (= kl without free bits); each latent term under its own name.
 */
@injectable()
export class LadderObjective extends Module implements Objective {
  private readonly latent: LayeredLatent;
  private readonly lambda: number[];

  constructor(
    @inject(pluginConfig('objective', 'ladder')) private readonly cfg: LadderObjectiveConfig,
    @inject(TOKENS.Model) private readonly model: VaeModel,
  ) {
    super();
    const latent = model.latent;
    const problems: Array<string | null> = klScheduleProblems(cfg.klSchedule, `${KEY}.klSchedule`);
    const fb = cfg.freeBits.natsPerLayer;
    if (!isLayeredLatent(latent)) {
      problems.push(
        `${KEY}: needs a latent that draws layer by layer, e.g. "ladder" or "conv-hierarchy" (the KL of each layer comes from its top-down pass); got latent "${latent.constructor.name}"`,
      );
    } else if (fb.length > 1 && fb.length !== latent.layers) {
      problems.push(
        `${KEY}.freeBits.natsPerLayer: must have no entry (off), one (every layer) or one per stochastic layer, ${latent.layers} for ${latent.layersKey}; ` +
          `got ${JSON.stringify(fb)} (${fb.length} entries)`,
      );
    }
    if (fb.some((v) => !(v >= 0))) problems.push(`${KEY}.freeBits.natsPerLayer: every entry must be a non-negative number of nats; got ${JSON.stringify(fb)}`);
    refuse(problems);
    this.latent = latent as LayeredLatent;
    this.lambda = fb.length === 0 ? [] : fb.length === 1 ? new Array<number>(this.latent.layers).fill(fb[0]) : [...fb];
  }

  /** Encoder, the ladder's draw with its layer terms, decoder and likelihood: VaeModel.forward with the layers kept. */
  private forward(batch: ModelBatch, ctx: ObjectiveContext): { draw: LadderDraw; logPx: tf.Tensor1D } {
    const { model } = this;
    const S = this.cfg.samples;
    const o: PassOptions = { ...ctx, cond: batch.cond };
    const h = model.encoder.encode(batch.x, batch.cond, o);
    const draw = this.latent.sampleLayers(h, S, o);
    const condS = tileSamples(batch.cond, S);
    const params = model.decoder.decode(draw.sample.z as tf.Tensor2D, condS, { ...ctx, cond: condS });
    const xS = tileSamples(batch.x, S);
    return { draw, logPx: model.likelihood.logProb(xS, params) };
  }

  /**
   * Each layer's KL per example [B], bottom first. The top's is the prior's closed form over
   * q(z_L | x) when it has one, else the Monte-Carlo mean of log q(z_L | x) - log p(z_L).
   */
  private layerKls(draw: LadderDraw, batch: ModelBatch, ctx: ObjectiveContext): tf.Tensor1D[] {
    const { sample, layers } = draw;
    const S = sample.samples;
    const prior = this.model.prior;
    const L = layers.length;
    const out = layers.slice(0, L - 1).map((t) => meanOverSamples(t.kl!, S));
    let top: tf.Tensor1D;
    if (prior.analyticKl) {
      top = prior.analyticKl(sample.posterior!, batch.cond, false, { ...ctx, cond: batch.cond }) as tf.Tensor1D;
    } else {
      const condS = tileSamples(batch.cond, S);
      top = meanOverSamples(tf.sub(layers[L - 1].logQ, prior.logProb(sample.priorZ ?? sample.z, condS, { ...ctx, cond: condS })), S);
    }
    out.push(top);
    return out;
  }

  /** sum_l penalty_l with free bits lambda_l per layer (see the module doc). kls: L x [B] -> [B] */
  private freeBitsPenalty(kls: tf.Tensor1D[]): tf.Tensor1D {
    const clamped = kls.map((kl, l) => {
      const lambda = this.lambda[l];
      if (this.cfg.freeBits.over === 'example') return tf.maximum(kl, lambda);
      // max(lambda, E_batch[KL_l]): a layer whose batch mean reaches lambda keeps its KL (the batch
      // mean and its gradient are E_batch[KL_l]); a layer below contributes the constant lambda,
      // with no gradient. The mask is a decision, not a function to differentiate.
      const above = tf.cast(tf.greaterEqual(tf.mean(kl), lambda), 'float32');
      return tf.add(tf.mul(kl, above), tf.mul(tf.sub(1, above), lambda));
    });
    return tf.addN(clamped) as tf.Tensor1D;
  }

  terms(batch: ModelBatch, ctx: ObjectiveContext): ObjectiveTerms {
    return tf.tidy(() => {
      const { draw, logPx } = this.forward(batch, ctx);
      const reconstruction = tf.neg(meanOverSamples(logPx, this.cfg.samples)) as tf.Tensor1D;
      const kls = this.layerKls(draw, batch, ctx);
      const kl = (kls.length === 1 ? kls[0] : tf.addN(kls)) as tf.Tensor1D;
      const penalty = this.lambda.length > 0 ? this.freeBitsPenalty(kls) : kl;
      const w = weightAt(this.cfg.klSchedule, ctx.step);
      const b = reconstruction.shape[0];
      const out: ObjectiveTerms = { loss: reconstruction, reconstruction, kl, elbo: tf.neg(tf.add(reconstruction, kl)) as tf.Tensor1D };
      kls.forEach((k, l) => (out[`klLayer${l + 1}`] = k));
      out.klWeight = tf.fill([b], w) as tf.Tensor1D;
      out.klPenalty = penalty;
      return addLatentTerms(out, tf.add(reconstruction, tf.mul(penalty, w)) as tf.Tensor1D, draw.sample);
    });
  }
}

export const ladderObjective = definePlugin({
  slot: 'objective',
  name: 'ladder',
  description: 'ladder VAE ELBO: KL per layer reported, KL warm-up, free bits per layer',
  schema: ladderObjectiveSchema,
  implementation: LadderObjective,
});
