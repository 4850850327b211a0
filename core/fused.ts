/**
 * vaelab's own fused kernels: a whole formula of our field as one kernel instead of a chain of
 * tfjs ops, where a backend implements it (today: the native kernel pack on wasm, see
 * core/backend/native.ts). Each has an op here that uses the kernel when the current backend
 * registers it and the inputs fit, and otherwise returns null so that the caller runs the
 * composite tfjs formula; its gradient is registered by core/gradients.ts.
 *
 * Kernel names start with "Vaelab" so that they never clash with tfjs's.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GradConfig } from '@tensorflow/tfjs-core';

/**
 * Bernoulli log-density on logits summed over the last axis, x l - softplus(l).
 * Inputs {x, logits} [N, D] float32 -> [N].
 */
export const BERNOULLI_LOG_PROB = 'VaelabBernoulliLogProb';
/** Its gradient with respect to the logits, dy (x - sigmoid(l)). Inputs {dy [N], x, logits [N, D]} -> [N, D]. */
export const BERNOULLI_LOG_PROB_GRAD = 'VaelabBernoulliLogProbGrad';

/** The gradient of relu at its input x, dy * step(x). Inputs {dy, x} (same shape) -> x's shape. */
export const RELU_GRAD = 'VaelabReluGrad';

/** A layer's bias and relu, max(x + bias, 0). Inputs {x [..., C], bias [C]} float32 -> x's shape. */
export const BIAS_RELU = 'VaelabBiasRelu';
/**
 * Its gradient from the output y: dx = dy * step(y) and dbias = dx summed over every axis but the
 * last, in one pass. Inputs {dy, y [..., C]} -> [dx (y's shape), dbias [C]].
 */
export const BIAS_RELU_GRAD = 'VaelabBiasReluGrad';

/**
 * A dense layer, activation(x kernel + bias) with activation "relu", "tanh", "softplus" or
 * "linear" (attr `activation`). Inputs {x [N, K], kernel [K, C], bias [C]} float32 -> [N, C].
 */
export const DENSE = 'VaelabDense';
/**
 * Its gradient from the output y, for the kernel and the bias, in one call: dz = dy * step(y)
 * (relu), dy (1 - y^2) (tanh), dy (1 - exp(-y)) (softplus: sigmoid of the input) or dy (linear),
 * dkernel = xᵀ dz and dbias = dz summed over the rows. Inputs
 * {dy, y [N, C], x [N, K]}, attr `activation` -> [dz [N, C], dkernel [K, C], dbias [C]]. The
 * gradient of x, dz kernelᵀ, is left to a matMul that runs only when x needs one (not for data).
 */
export const DENSE_GRAD = 'VaelabDenseGrad';
/** The activations DENSE implements. */
export const DENSE_ACTIVATIONS = ['relu', 'tanh', 'softplus', 'linear'] as const;
export type DenseActivation = (typeof DENSE_ACTIVATIONS)[number];
/** Whether DENSE implements `activation`. */
export function isDenseActivation(activation: unknown): activation is DenseActivation {
  return (DENSE_ACTIVATIONS as readonly unknown[]).includes(activation);
}

/**
 * KL(N(loc, exp(logVar)) || N(0, I)) summed over the last axis. Inputs {loc, logVar} [N, D]
 * float32 -> [N].
 */
export const KL_STD_NORMAL = 'VaelabKlStdNormal';
/** Its gradient. Inputs {dy [N], loc, logVar [N, D]} -> [dloc, dlogVar], each [N, D]. */
export const KL_STD_NORMAL_GRAD = 'VaelabKlStdNormalGrad';

/**
 * The reparameterised sample of N(loc, exp(logVar)): loc + exp(logVar / 2) * eps.
 * Inputs {loc, logVar, eps} [N, D] float32 -> [N, D].
 */
export const REPARAM = 'VaelabReparam';
/** Its gradient for logVar, dz * eps * exp(logVar / 2) / 2. Inputs {dz, logVar, eps} [N, D] -> [N, D]. */
export const REPARAM_GRAD = 'VaelabReparamGrad';
/**
 * log N(z; loc, exp(logVar)) of a reparameterised z, from its noise: -(eps^2 + logVar + log 2pi) / 2
 * summed over the last axis. Inputs {logVar, eps} [N, D] float32 -> [N].
 */
export const REPARAM_LOG_PROB = 'VaelabReparamLogProb';

/**
 * Batch normalisation over the rows with the batch's statistics (training), in one pass:
 * y = (x - mean) / sqrt(variance + epsilon) * scale + offset, mean and biased variance over
 * the rows. Inputs {x [N, C], scale [C], offset [C]} float32, attr `epsilon` ->
 * [y [N, C], mean [C], variance [C]] (the statistics for the caller's running averages).
 */
export const BATCH_NORM = 'VaelabBatchNorm';
/**
 * Its gradient for x, scale and offset from the gradients of its three outputs. Inputs {dy,
 * x [N, C], scale, mean, variance, dmean, dvariance [C]}, attr `epsilon` -> [dx [N, C],
 * dscale [C], doffset [C]].
 */
export const BATCH_NORM_GRAD = 'VaelabBatchNormGrad';
/** The gradient of tfjs's LeakyRelu at its input x: dy where x > 0, alpha dy elsewhere. Inputs {dy, x} (one shape), attr `alpha` -> x's shape. */
export const LEAKY_RELU_GRAD = 'VaelabLeakyReluGrad';

function registered(kernel: string): boolean {
  return tf.getKernel(kernel, tf.getBackend()) !== undefined;
}

function plainMatrices(...ts: tf.Tensor[]): boolean {
  return ts.every((t) => t.dtype === 'float32' && t.rank === 2 && t.size > 0 && t.shape[0] === ts[0].shape[0] && t.shape[1] === ts[0].shape[1]);
}

/** The fused Bernoulli log-density, or null when the backend has no kernel for it or the shapes differ. Shapes: [N, D] -> [N]. */
export function fusedBernoulliLogProb(x: tf.Tensor2D, logits: tf.Tensor2D): tf.Tensor1D | null {
  if (!plainMatrices(x, logits) || !registered(BERNOULLI_LOG_PROB)) return null;
  return tf.engine().runKernel(BERNOULLI_LOG_PROB, { x, logits }, {}) as tf.Tensor1D;
}

/** Gradient of BERNOULLI_LOG_PROB: logits get dy (x - sigmoid(l)), x gets dy l. */
export const bernoulliLogProbGrad: GradConfig = {
  kernelName: BERNOULLI_LOG_PROB,
  inputsToSave: ['x', 'logits'],
  gradFunc: (dy, saved) => {
    const [x, logits] = saved;
    const dyCol = () => tf.reshape(dy as tf.Tensor, [logits.shape[0], 1]);
    return {
      logits: () =>
        registered(BERNOULLI_LOG_PROB_GRAD)
          ? (tf.engine().runKernel(BERNOULLI_LOG_PROB_GRAD, { dy: dy as tf.Tensor, x, logits }, {}) as tf.Tensor)
          : tf.mul(dyCol(), tf.sub(x, tf.sigmoid(logits))),
      x: () => tf.mul(dyCol(), logits),
    };
  },
};

/**
 * Gradient of tfjs's `Relu`, as tfjs computes it (dy * step(x), NaN where x is NaN) but as one
 * RELU_GRAD kernel where the backend has it, instead of a Step, a Cast and a Multiply.
 */
export const reluGrad: GradConfig = {
  kernelName: 'Relu',
  inputsToSave: ['x'],
  gradFunc: (dy, saved) => {
    const [x] = saved;
    const d = dy as tf.Tensor;
    return {
      x: () =>
        registered(RELU_GRAD) && d.dtype === 'float32' && x.dtype === 'float32' && d.size === x.size
          ? (tf.engine().runKernel(RELU_GRAD, { dy: d, x }, {}) as tf.Tensor)
          : tf.mul(d, tf.cast(tf.step(x), 'float32')),
    };
  },
};

/**
 * relu(x + bias) as one BIAS_RELU kernel, or null when the backend has none or bias is not one
 * value per channel of x's last axis. Shapes: x [..., C], bias [C] -> x's shape.
 */
export function fusedBiasRelu<T extends tf.Tensor>(x: T, bias: tf.Tensor): T | null {
  if (x.dtype !== 'float32' || bias.dtype !== 'float32' || bias.rank !== 1 || x.rank < 2 || x.shape[x.rank - 1] !== bias.size) return null;
  if (!registered(BIAS_RELU)) return null;
  return tf.engine().runKernel(BIAS_RELU, { x, bias }, {}) as T;
}

/**
 * Gradient of BIAS_RELU from its output y: dy * step(y) for x, and that summed over every axis
 * but the last for the bias; one BIAS_RELU_GRAD kernel where the backend has it, else tfjs ops.
 */
export const biasReluGrad: GradConfig = {
  kernelName: BIAS_RELU,
  inputsToSave: [],
  outputsToSave: [true],
  gradFunc: (dy, saved) => {
    const [y] = saved;
    const d = dy as tf.Tensor;
    if (registered(BIAS_RELU_GRAD) && d.dtype === 'float32' && y.dtype === 'float32' && d.size === y.size) {
      const [dx, dBias] = tf.engine().runKernel(BIAS_RELU_GRAD, { dy: d, y }, {}) as tf.Tensor[];
      return { x: () => dx, bias: () => dBias };
    }
    const dyAct = tf.mul(d, tf.cast(tf.step(y), 'float32'));
    const lead = [...Array(y.rank - 1).keys()];
    return { x: () => tf.clone(dyAct), bias: () => tf.sum(dyAct, lead) };
  },
};

/**
 * activation(x kernel + bias) as one DENSE kernel, or null when the backend has none or the
 * shapes are not a plain dense layer's. Shapes: x [N, K], kernel [K, C], bias [C] -> [N, C].
 */
export function fusedDense(x: tf.Tensor2D, kernel: tf.Tensor, bias: tf.Tensor, activation: DenseActivation): tf.Tensor2D | null {
  const float = [x, kernel, bias].every((t) => t.dtype === 'float32' && t.size > 0);
  if (!float || x.rank !== 2 || kernel.rank !== 2 || bias.rank !== 1 || x.shape[1] !== kernel.shape[0] || bias.size !== kernel.shape[1]) return null;
  if (!registered(DENSE)) return null;
  return tf.engine().runKernel(DENSE, { x, kernel, bias }, { activation }) as tf.Tensor2D;
}

/**
 * Gradient of DENSE: the kernel's and the bias's from one DENSE_GRAD kernel (registered with
 * DENSE), x's as dz kernelᵀ when the tape asks for it.
 */
export const denseGrad: GradConfig = {
  kernelName: DENSE,
  inputsToSave: ['x', 'kernel'],
  outputsToSave: [true],
  gradFunc: (dy, saved, attrs) => {
    const [x, kernel, y] = saved;
    const [dz, dKernel, dBias] = tf.engine().runKernel(DENSE_GRAD, { dy: dy as tf.Tensor, y, x }, { activation: attrs.activation }) as tf.Tensor[];
    return { x: () => tf.matMul(dz, kernel, false, true), kernel: () => dKernel, bias: () => dBias };
  },
};

/** The fused KL to a standard normal, or null when the backend has no kernel or the shapes differ. Shapes: [N, D] -> [N]. */
export function fusedKlStdNormal(loc: tf.Tensor2D, logVar: tf.Tensor2D): tf.Tensor1D | null {
  if (!plainMatrices(loc, logVar) || !registered(KL_STD_NORMAL)) return null;
  return tf.engine().runKernel(KL_STD_NORMAL, { loc, logVar }, {}) as tf.Tensor1D;
}

/** Gradient of KL_STD_NORMAL: loc gets dy loc, logVar gets dy (exp(logVar) - 1) / 2. */
export const klStdNormalGrad: GradConfig = {
  kernelName: KL_STD_NORMAL,
  inputsToSave: ['loc', 'logVar'],
  gradFunc: (dy, saved) => {
    const [loc, logVar] = saved;
    const d = dy as tf.Tensor;
    if (registered(KL_STD_NORMAL_GRAD)) {
      const [dLoc, dLogVar] = tf.engine().runKernel(KL_STD_NORMAL_GRAD, { dy: d, loc, logVar }, {}) as tf.Tensor[];
      return { loc: () => dLoc, logVar: () => dLogVar };
    }
    const dyCol = () => tf.reshape(d, [loc.shape[0], 1]);
    return {
      loc: () => tf.mul(dyCol(), loc),
      logVar: () => tf.mul(dyCol(), tf.mul(tf.sub(tf.exp(logVar), 1), 0.5)),
    };
  },
};

/** The fused reparameterised sample, or null when the backend has no kernel or the shapes differ. Shapes: [N, D] -> [N, D]. */
export function fusedReparam(loc: tf.Tensor2D, logVar: tf.Tensor2D, eps: tf.Tensor2D): tf.Tensor2D | null {
  if (!plainMatrices(loc, logVar, eps) || !registered(REPARAM)) return null;
  return tf.engine().runKernel(REPARAM, { loc, logVar, eps }, {}) as tf.Tensor2D;
}

/** Gradient of REPARAM: loc gets dz; logVar gets dz eps exp(logVar / 2) / 2 (one REPARAM_GRAD kernel where there is one); eps gets dz exp(logVar / 2). */
export const reparamGrad: GradConfig = {
  kernelName: REPARAM,
  inputsToSave: ['logVar', 'eps'],
  gradFunc: (dy, saved) => {
    const [logVar, eps] = saved;
    const dz = dy as tf.Tensor;
    return {
      loc: () => tf.clone(dz),
      logVar: () =>
        registered(REPARAM_GRAD)
          ? (tf.engine().runKernel(REPARAM_GRAD, { dz, logVar, eps }, {}) as tf.Tensor)
          : tf.mul(tf.mul(tf.mul(dz, eps), tf.exp(tf.mul(logVar, 0.5))), 0.5),
      eps: () => tf.mul(dz, tf.exp(tf.mul(logVar, 0.5))),
    };
  },
};

/** The fused log-density of a reparameterised sample, or null when the backend has no kernel or the shapes differ. Shapes: [N, D] -> [N]. */
export function fusedReparamLogProb(logVar: tf.Tensor2D, eps: tf.Tensor2D): tf.Tensor1D | null {
  if (!plainMatrices(logVar, eps) || !registered(REPARAM_LOG_PROB)) return null;
  return tf.engine().runKernel(REPARAM_LOG_PROB, { logVar, eps }, {}) as tf.Tensor1D;
}

/** Gradient of REPARAM_LOG_PROB: logVar gets -dy / 2 on every entry of its row, eps gets -dy eps. */
export const reparamLogProbGrad: GradConfig = {
  kernelName: REPARAM_LOG_PROB,
  inputsToSave: ['logVar', 'eps'],
  gradFunc: (dy, saved) => {
    const [logVar, eps] = saved;
    const dyCol = () => tf.reshape(dy as tf.Tensor, [logVar.shape[0], 1]);
    return {
      logVar: () => tf.mul(tf.onesLike(logVar), tf.mul(dyCol(), -0.5)),
      eps: () => tf.mul(tf.neg(dyCol()), eps),
    };
  },
};

/**
 * Batch normalisation of x [N, C] over its rows with the batch's statistics as one BATCH_NORM
 * kernel, or null when the backend has none or the shapes do not fit (then the caller composes
 * it from tfjs ops). Returns y [N, C] and the batch's mean and biased variance [C].
 */
export function fusedBatchNorm(x: tf.Tensor2D, scale: tf.Tensor, offset: tf.Tensor, epsilon: number): { y: tf.Tensor2D; mean: tf.Tensor1D; variance: tf.Tensor1D } | null {
  const float = [x, scale, offset].every((t) => t.dtype === 'float32' && t.size > 0);
  if (!float || x.rank !== 2 || scale.rank !== 1 || offset.rank !== 1 || scale.size !== x.shape[1] || offset.size !== x.shape[1]) return null;
  if (!registered(BATCH_NORM)) return null;
  const [y, mean, variance] = tf.engine().runKernel(BATCH_NORM, { x, scale, offset }, { epsilon }) as tf.Tensor[];
  return { y: y as tf.Tensor2D, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D };
}

/**
 * Gradient of BATCH_NORM: x's, scale's and offset's from one BATCH_NORM_GRAD kernel (registered
 * with BATCH_NORM), from the gradients of all three outputs: the mean's and the variance's are
 * the zeros the tape fills in when they feed only running averages (assigned), and add
 * dmean / N + 2 (x - mean) dvariance / N to x's when they do reach the loss.
 */
export const batchNormGrad: GradConfig = {
  kernelName: BATCH_NORM,
  inputsToSave: ['x', 'scale'],
  outputsToSave: [false, true, true],
  gradFunc: (dys, saved, attrs) => {
    const [x, scale, mean, variance] = saved;
    const [dy, dmean, dvariance] = dys as tf.Tensor[];
    const [dx, dScale, dOffset] = tf.engine().runKernel(BATCH_NORM_GRAD, { dy, x, scale, mean, variance, dmean, dvariance }, { epsilon: attrs.epsilon }) as tf.Tensor[];
    return { x: () => dx, scale: () => dScale, offset: () => dOffset };
  },
};

/**
 * Gradient of tfjs's `LeakyRelu`, as tfjs computes it (where(x > 0, dy, alpha dy)) but as one
 * LEAKY_RELU_GRAD kernel where the backend has it, instead of a Greater, a Multiply and a Select.
 */
export const leakyReluGrad: GradConfig = {
  kernelName: 'LeakyRelu',
  inputsToSave: ['x'],
  gradFunc: (dy, saved, attrs) => {
    const [x] = saved;
    const d = dy as tf.Tensor;
    const alpha = attrs.alpha as number;
    return {
      x: () =>
        registered(LEAKY_RELU_GRAD) && d.dtype === 'float32' && x.dtype === 'float32' && d.size === x.size
          ? (tf.engine().runKernel(LEAKY_RELU_GRAD, { dy: d, x }, { alpha }) as tf.Tensor)
          : tf.where(tf.greater(x, 0), d, tf.mul(d, alpha)),
    };
  },
};
