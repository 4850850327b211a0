/**
 * Shared math of our field: Gaussian log-densities and KL divergences, Bernoulli log-density
 * from logits, and log-mean-exp over samples. Every function is pure tfjs and differentiable.
 */
import * as tf from '@tensorflow/tfjs-core';
import { fusedBernoulliLogProb, fusedKlStdNormal, fusedReparam, fusedReparamLogProb } from './fused';
import type { Rng } from './rng';

/** log(2 pi) */
export const LOG_2PI = Math.log(2 * Math.PI);

/**
 * log N(z; loc, exp(logVar)) summed over the last axis.
 * = -0.5 * sum(log 2pi + logVar + (z - loc)^2 / exp(logVar)).
 * Shapes: z, loc, logVar [N, D] (broadcastable) -> [N].
 */
export function diagGaussianLogProb(z: tf.Tensor2D, loc: tf.Tensor, logVar: tf.Tensor): tf.Tensor1D {
  return tf.tidy(() => {
    const diff = tf.sub(z, loc);
    const quad = tf.mul(tf.square(diff), tf.exp(tf.neg(logVar)));
    const perDim = tf.add(tf.add(quad, logVar), LOG_2PI);
    return tf.mul(tf.sum(perDim, -1), -0.5) as tf.Tensor1D;
  });
}

/** log N(z; 0, I) summed over the last axis. Shapes: z [N, D] -> [N]. */
export function standardNormalLogProb(z: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => tf.mul(tf.sum(tf.add(tf.square(z), LOG_2PI), -1), -0.5) as tf.Tensor1D);
}

/**
 * KL(N(loc, exp(logVar)) || N(0, I)) per dimension:
 * 0.5 * (loc^2 + exp(logVar) - logVar - 1). Shapes: loc, logVar [B, D] -> [B, D].
 */
export function klStdNormalPerDim(loc: tf.Tensor2D, logVar: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => tf.mul(tf.sub(tf.sub(tf.add(tf.square(loc), tf.exp(logVar)), logVar), 1), 0.5) as tf.Tensor2D);
}

/**
 * KL(N(loc, exp(logVar)) || N(0, I)) summed over the last axis: one fused kernel where the
 * backend has it (core/fused.ts; terms in float32, rows summed in double), else the sum of
 * klStdNormalPerDim. Shapes: loc, logVar [B, D] -> [B].
 */
export function klStdNormal(loc: tf.Tensor2D, logVar: tf.Tensor2D): tf.Tensor1D {
  return fusedKlStdNormal(loc, logVar) ?? tf.tidy(() => tf.sum(klStdNormalPerDim(loc, logVar), -1) as tf.Tensor1D);
}

/**
 * log q(z) of a reparameterised sample z = loc + exp(logVar / 2) eps, from eps:
 * -0.5 sum(log 2pi + logVar + eps^2) over the last axis. The same function of (loc, logVar, eps)
 * as diagGaussianLogProb(z, loc, logVar), since (z - loc)^2 / exp(logVar) = eps^2, with 4 kernels
 * instead of 9 (one fused kernel where the backend has it, core/fused.ts). Shapes: logVar, eps
 * [N, D] -> [N].
 */
export function reparamLogProb(logVar: tf.Tensor2D, eps: tf.Tensor2D): tf.Tensor1D {
  const fused = fusedReparamLogProb(logVar, eps);
  if (fused !== null) return fused;
  return tf.tidy(() => tf.mul(tf.sum(tf.add(tf.add(tf.square(eps), logVar), LOG_2PI), -1), -0.5) as tf.Tensor1D);
}

/**
 * The reparameterised sample z = loc + exp(logVar / 2) eps of N(loc, exp(logVar)), eps ~ N(0, I)
 * given (Kingma & Welling 2014): one fused kernel where the backend has it (core/fused.ts), else
 * the tfjs ops. Shapes: [N, D] -> [N, D].
 */
export function reparameterize(loc: tf.Tensor2D, logVar: tf.Tensor2D, eps: tf.Tensor2D): tf.Tensor2D {
  const fused = fusedReparam(loc, logVar, eps);
  if (fused !== null) return fused;
  return tf.tidy(() => tf.add(loc, tf.mul(tf.exp(tf.mul(logVar, 0.5)), eps)) as tf.Tensor2D);
}

/**
 * `samples` reparameterised draws per row of N(loc, exp(logVar)) with noise from `rng`, stacked
 * sample-major, and log q of each draw (from the noise: reparamLogProb). The draw of every
 * Gaussian latent. Shapes: loc, logVar [B, D] -> z [S*B, D], logQ [S*B].
 */
export function drawDiagGaussian(loc: tf.Tensor2D, logVar: tf.Tensor2D, samples: number, rng: Rng): { z: tf.Tensor2D; logQ: tf.Tensor1D } {
  return tf.tidy(() => {
    const locS = tileSamples(loc, samples);
    const logVarS = tileSamples(logVar, samples);
    const eps = rng.normalTensor(locS.shape) as tf.Tensor2D;
    return { z: reparameterize(locS, logVarS, eps), logQ: reparamLogProb(logVarS, eps) } as unknown as tf.TensorContainer;
  }) as unknown as { z: tf.Tensor2D; logQ: tf.Tensor1D };
}

/**
 * KL(N(locQ, e^logVarQ) || N(locP, e^logVarP)) per dimension:
 * 0.5 * (logVarP - logVarQ + (e^logVarQ + (locQ - locP)^2) / e^logVarP - 1). Shapes: [B, D] -> [B, D].
 */
export function klDiagGaussiansPerDim(
  locQ: tf.Tensor2D,
  logVarQ: tf.Tensor2D,
  locP: tf.Tensor,
  logVarP: tf.Tensor,
): tf.Tensor2D {
  return tf.tidy(() => {
    const ratio = tf.mul(tf.add(tf.exp(logVarQ), tf.square(tf.sub(locQ, locP))), tf.exp(tf.neg(logVarP)));
    return tf.mul(tf.sub(tf.add(tf.sub(logVarP, logVarQ), ratio), 1), 0.5) as tf.Tensor2D;
  });
}

/**
 * log Bernoulli(x; sigmoid(logits)) summed over the last axis, computed stably as
 * x * logits - softplus(logits) = x * l - max(l, 0) - log(1 + exp(-|l|)).
 * Accepts grey levels x in [0, 1] (the continuous relaxation, i.e. minus binary cross-entropy).
 * One fused kernel where the backend has it (core/fused.ts; the terms in float32, each row summed
 * in double), else the tfjs ops. Shapes: x, logits [N, D] -> [N].
 */
export function bernoulliLogProb(x: tf.Tensor2D, logits: tf.Tensor2D): tf.Tensor1D {
  const fused = fusedBernoulliLogProb(x, logits);
  if (fused !== null) return fused;
  return tf.tidy(() => {
    const softplus = tf.add(tf.relu(logits), tf.log1p(tf.exp(tf.neg(tf.abs(logits)))));
    return tf.sum(tf.sub(tf.mul(x, logits), softplus), -1) as tf.Tensor1D;
  });
}

/**
 * log (1/S) sum_s exp(a[s, b]) over the sample axis, stably. Shapes: a [S*B] (sample-major) -> [B].
 */
export function logMeanExp(a: tf.Tensor1D, samples: number): tf.Tensor1D {
  return tf.tidy(() => {
    const m = tf.reshape(a, [samples, -1]);
    // Shift by the column maximum (held fixed: the shift cancels in value and gradient). A
    // column of -Infinity only (every weight zero) is shifted by 0, so it gives log 0 = -Infinity,
    // where logSumExp's own shift gives -Infinity - (-Infinity) = NaN.
    const top = stopGradient(tf.max(m, 0));
    const shift = tf.where(tf.isFinite(top), top, tf.zerosLike(top));
    const sum = tf.sum(tf.exp(tf.sub(m, shift)), 0);
    return tf.add(tf.log(sum), tf.sub(shift, Math.log(samples))) as tf.Tensor1D;
  });
}

/** Mean over the sample axis. Shapes: a [S*B] -> [B]. */
export function meanOverSamples(a: tf.Tensor1D, samples: number): tf.Tensor1D {
  if (samples === 1) return tf.clone(a);
  return tf.tidy(() => tf.mean(tf.reshape(a, [samples, -1]), 0) as tf.Tensor1D);
}

/** Stacks `samples` copies of a batch, sample-major. Shapes: x [B, ...] -> [S*B, ...]. */
export function tileSamples<T extends tf.Tensor | null>(x: T, samples: number): T {
  if (x === null || samples === 1) return x === null ? x : (tf.clone(x as tf.Tensor) as T);
  const t = x as tf.Tensor;
  return tf.tile(t, [samples, ...t.shape.slice(1).map(() => 1)]) as T;
}

/**
 * x in the forward pass, with no gradient flowing back through it: the sg[.] of the
 * literature. Uses: the straight-through estimator z_e + sg[z_q - z_e] and the codebook loss
 * ||sg[z_e] - e||^2 of VQ-VAE; the DReG estimator of IWAE, which scores a sample under a q whose
 * parameters are held fixed. Any shape.
 */
export function stopGradient<T extends tf.Tensor>(x: T): T {
  const f = tf.customGrad((a: tf.Tensor | tf.GradSaveFunc) => ({
    value: tf.clone(a as tf.Tensor),
    gradFunc: (dy: tf.Tensor | tf.Tensor[]) => tf.zerosLike(dy as tf.Tensor),
  }));
  return f(x) as T;
}

/** Standard error of the mean of `v`: the sample standard deviation over sqrt(n); 0 for n < 2. */
export function standardError(v: ArrayLike<number>): number {
  const n = v.length;
  if (n < 2) return 0;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += v[i];
  mean /= n;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (v[i] - mean) ** 2;
  return Math.sqrt(ss / (n - 1) / n);
}
