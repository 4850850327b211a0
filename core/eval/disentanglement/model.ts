/**
 * The disentanglement metrics of a trained model: its representation is the posterior mean
 * E_q[z|x] (disentanglement_lib scores the encoder's means), and every metric samples its own
 * points from the ground-truth generator (`DspritesData` for dSprites), not from the data set's
 * splits.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { PassOptions } from '../../contracts';
import type { VaeModel } from '../../model';
import { Rng } from '../../rng';
import { diagnosticGaussian } from '../evaluate';
import { dci, type DciOptions, type DciResult } from './dci';
import { factorVaeScore, type FactorVaeOptions, type FactorVaeResult } from './factor-vae';
import { mig, type MigOptions, type MigResult } from './mig';
import { sapScore, type SapOptions, type SapResult } from './sap';
import type { GroundTruthData, Representation } from './types';

/**
 * The posterior-mean representation of an unconditional model: x [n, dim] -> loc [n, priorDim]
 * of the Gaussian statistics of q (the latent's posteriorStats or posterior), or, for a latent
 * without them, its mode (the code used for reconstructions), flattened to [n, prod(shape)].
 * Evaluation mode (training: false); any randomness of a pass comes from
 * Rng.derive(seed, 'disentanglement/representation', call).
 */
export function posteriorMeanRepresentation(model: VaeModel, seed = 0): Representation {
  let call = 0;
  return (x: Float32Array, n: number) => {
    const rng = Rng.derive(seed, 'disentanglement/representation', call++);
    const out = tf.tidy(() => {
      const xt = tf.tensor2d(x, [n, x.length / n]);
      const opts: PassOptions = { training: false, rng, cond: null };
      const h = model.encoder.encode(xt, null, opts);
      const { q } = diagnosticGaussian(model, h, opts);
      const code = q ? q.loc : model.latent.mode(h, opts);
      return tf.reshape(code, [n, -1]);
    });
    const values = out.dataSync() as Float32Array;
    out.dispose();
    return values;
  };
}

/** Which metrics to compute and their settings; a metric set to false is skipped. */
export interface DisentanglementOptions {
  mig: Partial<MigOptions> | false;
  factorVae: Partial<FactorVaeOptions> | false;
  dci: Partial<DciOptions> | false;
  sap: Partial<SapOptions> | false;
}

/** The results of the metrics that were computed. */
export interface DisentanglementResult {
  mig?: MigResult;
  factorVae?: FactorVaeResult;
  dci?: DciResult;
  sap?: SapResult;
}

/**
 * Every metric of `represent` on `data` with the given settings (disentanglement_lib's protocol
 * by default), each from its own stream of `seed`, so skipping one leaves the others' numbers
 * unchanged.
 */
export function evaluateRepresentation(
  data: GroundTruthData,
  represent: Representation,
  seed: number,
  options: Partial<DisentanglementOptions> = {},
): DisentanglementResult {
  const out: DisentanglementResult = {};
  if (options.mig !== false) out.mig = mig(data, represent, seed, options.mig);
  if (options.factorVae !== false) out.factorVae = factorVaeScore(data, represent, seed, options.factorVae);
  if (options.dci !== false) out.dci = dci(data, represent, seed, options.dci);
  if (options.sap !== false) out.sap = sapScore(data, represent, seed, options.sap);
  return out;
}

/** The metrics of a trained model's posterior means on `data` (e.g. `new DspritesData()`). */
export function evaluateModelDisentanglement(
  model: VaeModel,
  data: GroundTruthData,
  seed: number,
  options: Partial<DisentanglementOptions> = {},
): DisentanglementResult {
  return evaluateRepresentation(data, posteriorMeanRepresentation(model, seed), seed, options);
}

/** The headline numbers of a result, keyed as metrics are logged: disentanglement/mig, ... */
export function disentanglementSummary(r: DisentanglementResult): Record<string, number> {
  const s: Record<string, number> = {};
  if (r.mig) s['disentanglement/mig'] = r.mig.mig;
  if (r.factorVae) {
    s['disentanglement/factor-vae'] = r.factorVae.evalAccuracy;
    s['disentanglement/factor-vae-train'] = r.factorVae.trainAccuracy;
    s['disentanglement/factor-vae-active-codes'] = r.factorVae.numActiveCodes;
  }
  if (r.dci) {
    s['disentanglement/dci-disentanglement'] = r.dci.disentanglement;
    s['disentanglement/dci-completeness'] = r.dci.completeness;
    s['disentanglement/dci-informativeness-train'] = r.dci.informativenessTrain;
    s['disentanglement/dci-informativeness-test'] = r.dci.informativenessTest;
  }
  if (r.sap) s['disentanglement/sap'] = r.sap.sap;
  return s;
}
