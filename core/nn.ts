/**
 * Small layers with seeded initialisation, for plugins to build networks from. Initialisation
 * follows PyTorch's defaults (kaiming-uniform with a = sqrt(5), i.e. U(-1/sqrt(fanIn), 1/sqrt(fanIn))
 * for weights and biases), so that published PyTorch recipes reproduce here.
 */
import * as os from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import type { Trainable } from './contracts';
import { ConfigError } from './errors';
import { fusedBiasRelu, fusedDense, isDenseActivation } from './fused';
import type { Rng } from './rng';

/** Activation names a schema may offer. */
export const ACTIVATIONS = ['relu', 'elu', 'leaky-relu', 'tanh', 'sigmoid', 'softplus', 'selu', 'swish', 'linear'] as const;
export type Activation = (typeof ACTIVATIONS)[number];

/**
 * tanh(x) computed as 2 sigmoid(2x) - 1, with the gradient dy (1 - y^2). tfjs-backend-wasm's Tanh
 * kernel is scalar and about 15x slower than its vectorised Sigmoid (400 000 values: 20 ms
 * against 1.4 ms for this form, one core), and every tanh network (Burda et al.'s MLPs, the
 * gated PixelCNN) spends much of its step there. The two agree to float32 rounding: an absolute
 * difference of at most a few 1e-7 (test/nn-tanh.test.ts); both saturate to exactly -1 and 1.
 */
export const tanh = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
  const x = args[0] as tf.Tensor;
  const save = args[1] as tf.GradSaveFunc;
  const y = tf.tidy(() => tf.sub(tf.mul(tf.sigmoid(tf.mul(x, 2)), 2), 1));
  save([y]);
  return { value: y, gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(dy, tf.sub(1, tf.square(saved[0]))) };
}) as unknown as <T extends tf.Tensor>(x: T) => T;

/** Applies a named activation. */
export function activate<T extends tf.Tensor>(x: T, name: Activation): T {
  switch (name) {
    case 'relu':
      return tf.relu(x);
    case 'elu':
      return tf.elu(x);
    case 'leaky-relu':
      return tf.leakyRelu(x, 0.01);
    case 'tanh':
      return tanh(x);
    case 'sigmoid':
      return tf.sigmoid(x);
    case 'softplus':
      return tf.softplus(x);
    case 'selu':
      return tf.selu(x);
    case 'swish':
      return tf.mul(x, tf.sigmoid(x));
    case 'linear':
      return x;
  }
}

/**
 * activation(y + bias), a layer's last two steps: one fused kernel for relu where the backend has
 * it (core/fused.ts), else tfjs's add and the activation. Shapes: y [..., C], bias [C].
 */
export function addBiasActivate<T extends tf.Tensor>(y: T, bias: tf.Tensor, name: Activation): T {
  if (name === 'relu') {
    const fused = fusedBiasRelu(y, bias);
    if (fused !== null) return fused;
  }
  return activate(tf.add(y, bias) as T, name);
}

/** Most values one weight tensor may hold: 2^31 - 1 (tfjs sizes and the wasm heap are 32-bit). */
export const MAX_TENSOR_VALUES = 2 ** 31 - 1;

/** Bytes a parameter takes in training: float32 weight, gradient and Adam's two moments. */
const TRAINING_BYTES_PER_PARAMETER = 16;

/** The parameter limit and what set it, for messages. */
export interface ParameterLimit {
  parameters: number;
  reason: string;
}

const formatBytes = (bytes: number): string =>
  bytes >= 1e9 ? `${(bytes / 1e9).toFixed(2)} GB` : bytes >= 1e6 ? `${(bytes / 1e6).toFixed(2)} MB` : `${(bytes / 1e3).toFixed(2)} kB`;

/**
 * The most parameters a model may have on this machine: `VAELAB_MAX_PARAMETERS` when set, else as
 * many as fit in half the machine's memory at 16 bytes each (training keeps the float32 weight,
 * its gradient and Adam's two moments), leaving the other half to activations and data.
 */
export function parameterLimit(): ParameterLimit {
  const env = process.env.VAELAB_MAX_PARAMETERS;
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (!Number.isSafeInteger(n) || n < 1) throw new ConfigError(`VAELAB_MAX_PARAMETERS: must be an integer >= 1; got ${JSON.stringify(env)}`);
    return { parameters: n, reason: 'VAELAB_MAX_PARAMETERS' };
  }
  const mem = os.totalmem();
  return {
    parameters: Math.floor(mem / 2 / TRAINING_BYTES_PER_PARAMETER),
    reason: `half of this machine's ${formatBytes(mem)} at ${TRAINING_BYTES_PER_PARAMETER} bytes each in training; VAELAB_MAX_PARAMETERS sets another`,
  };
}

/**
 * A weight refused before its memory was allocated: the model would pass the parameter limit,
 * or one tensor would hold more than MAX_TENSOR_VALUES. core/container.ts adds the plugin and
 * its size keys to the message.
 */
export class ParameterBudgetError extends ConfigError {}

let budget: { used: number; limit: ParameterLimit } | null = null;

/**
 * Runs `build` with a running count of the parameters the layers of core/nn.ts allocate, each
 * weight checked against `limit` before it is allocated (core/container.ts builds every plugin
 * of an experiment inside one). Outside such a scope each weight is checked on its own.
 */
export function withParameterBudget<T>(build: () => T, limit: ParameterLimit = parameterLimit()): T {
  const outer = budget;
  budget = { used: 0, limit };
  try {
    return build();
  } finally {
    budget = outer;
  }
}

/**
 * Counts a weight of `shape` against the parameter budget before it is allocated; throws a
 * ParameterBudgetError, naming the shape, the model's count and bytes and the limit, when it
 * does not fit. Plugins that create weights with tf.variable themselves call it first.
 */
export function reserveParameters(shape: readonly number[]): void {
  const size = shape.reduce((p, d) => p * d, 1);
  const shown = `[${shape.join(', ')}]`;
  if (size > MAX_TENSOR_VALUES) {
    throw new ParameterBudgetError(`a ${shown} weight would hold ${size} values; one tensor holds at most ${MAX_TENSOR_VALUES}`);
  }
  const current = budget ?? { used: 0, limit: parameterLimit() };
  const total = current.used + size;
  if (total > current.limit.parameters) {
    throw new ParameterBudgetError(
      `a ${shown} weight would bring the model to ${total} parameters (${formatBytes(total * 4)} as float32); ` +
        `the limit is ${current.limit.parameters} (${current.limit.reason})`,
    );
  }
  current.used = total;
}

function uniformVariable(shape: number[], bound: number, rng: Rng): tf.Variable {
  reserveParameters(shape);
  return tf.tidy(() => tf.variable(rng.uniformTensor(shape, -bound, bound), true));
}

/** A container of named variables; layers and plugins extend it. */
export class Module implements Trainable {
  private readonly vars = new Map<string, tf.Variable>();
  private readonly buffers = new Map<string, tf.Variable>();

  /**
   * Registers a trainable variable (or all of a sub-module's variables and state) under `name`.
   * A sub-module's state stays state.
   */
  protected track<T extends tf.Variable | Trainable>(name: string, item: T): T {
    if (item instanceof tf.Variable) {
      this.vars.set(name, item);
    } else {
      for (const [k, v] of item.variables()) this.vars.set(`${name}/${k}`, v);
      for (const [k, v] of item.state?.() ?? []) this.buffers.set(`${name}/${k}`, v);
    }
    return item;
  }

  /**
   * Registers non-trainable state under `name` (an EMA codebook, running statistics): a
   * variable created with `tf.variable(init, false)`, saved in checkpoints, never optimised.
   */
  protected trackState(name: string, v: tf.Variable): tf.Variable {
    if (v.trainable) throw new TypeError(`Module.trackState: state "${name}" must be created with tf.variable(value, false) (not trainable)`);
    this.buffers.set(name, v);
    return v;
  }

  variables(): Map<string, tf.Variable> {
    return this.vars;
  }

  state(): Map<string, tf.Variable> {
    return this.buffers;
  }

  /** Disposes every variable and state buffer. */
  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
    for (const v of this.buffers.values()) v.dispose();
    this.vars.clear();
    this.buffers.clear();
  }
}

/** y = x W + b. Shapes: x [N, inDim] -> [N, outDim]. */
export class Dense extends Module {
  readonly kernel: tf.Variable;
  readonly bias: tf.Variable;
  constructor(
    readonly inDim: number,
    readonly outDim: number,
    rng: Rng,
  ) {
    super();
    const bound = 1 / Math.sqrt(inDim);
    this.kernel = this.track('kernel', uniformVariable([inDim, outDim], bound, rng));
    this.bias = this.track('bias', uniformVariable([outDim], bound, rng));
  }

  /**
   * activation(x W + b): for relu, tanh, softplus and linear one fused kernel each way where the
   * backend has it (core/fused.ts DENSE), else a matMul and addBiasActivate. Not tf.fused: its
   * gradient computes the gradient of every input (the data's too, in a first layer); here x's
   * is computed only when the tape needs it. The fused tanh and softplus agree with the unfused
   * ones to float32 rounding, not bit for bit (test/backend/native.test.ts, "dense layer (fused)").
   */
  apply(x: tf.Tensor2D, activation: Activation = 'linear'): tf.Tensor2D {
    if (isDenseActivation(activation)) {
      const fused = fusedDense(x, this.kernel, this.bias, activation);
      if (fused !== null) return fused;
    }
    return addBiasActivate(tf.matMul(x, this.kernel as tf.Tensor2D), this.bias, activation);
  }
}

/** A stack of Dense layers with an activation between them (none after the last). */
export class Mlp extends Module {
  readonly layers: Dense[];
  constructor(
    sizes: readonly number[],
    readonly activation: Activation,
    rng: Rng,
    readonly activateLast = false,
  ) {
    super();
    this.layers = [];
    for (let i = 0; i + 1 < sizes.length; i++) {
      this.layers.push(this.track(`dense${i}`, new Dense(sizes[i], sizes[i + 1], rng)));
    }
  }

  apply(x: tf.Tensor2D): tf.Tensor2D {
    let h = x;
    this.layers.forEach((layer, i) => {
      h = layer.apply(h, i < this.layers.length - 1 || this.activateLast ? this.activation : 'linear');
    });
    return h;
  }
}

/** Square convolution kernel and bias with PyTorch's initialisation bound 1/sqrt(fanIn). */
abstract class ConvBase extends Module {
  readonly kernel: tf.Variable;
  readonly bias: tf.Variable;
  constructor(
    readonly inC: number,
    readonly outC: number,
    readonly size: number,
    readonly stride: number,
    kernelShape: number[],
    fanIn: number,
    rng: Rng,
  ) {
    super();
    const bound = 1 / Math.sqrt(fanIn);
    this.kernel = this.track('kernel', uniformVariable(kernelShape, bound, rng));
    this.bias = this.track('bias', uniformVariable([outC], bound, rng));
  }
}

/** 2-D convolution, NHWC, 'same' padding. Shapes: x [N, H, W, inC] -> [N, ceil(H/s), ceil(W/s), outC]. */
export class Conv2d extends ConvBase {
  constructor(inC: number, outC: number, size: number, stride: number, rng: Rng) {
    super(inC, outC, size, stride, [size, size, inC, outC], inC * size * size, rng);
  }

  /** activation(conv(x) + b) (not tf.fused, for the reason given at Dense.apply). */
  apply(x: tf.Tensor4D, activation: Activation = 'linear'): tf.Tensor4D {
    return addBiasActivate(tf.conv2d(x, this.kernel as tf.Tensor4D, this.stride, 'same'), this.bias, activation);
  }
}

/**
 * Transposed 2-D convolution, NHWC, 'same' padding: the gradient of Conv2d with respect to its
 * input. Shapes: x [N, H, W, inC] -> [N, H*s, W*s, outC]. The fan-in of PyTorch's
 * ConvTranspose2d initialisation is outC * size^2 (its weight is [inC, outC, k, k]); the
 * tf.conv2dTranspose filter layout is [k, k, outC, inC].
 */
export class ConvTranspose2d extends ConvBase {
  constructor(inC: number, outC: number, size: number, stride: number, rng: Rng) {
    super(inC, outC, size, stride, [size, size, outC, inC], outC * size * size, rng);
  }

  /** activation(convTranspose(x) + b). */
  apply(x: tf.Tensor4D, activation: Activation = 'linear'): tf.Tensor4D {
    const [n, h, w] = x.shape;
    const out = tf.conv2dTranspose(
      x,
      this.kernel as tf.Tensor4D,
      [n, h * this.stride, w * this.stride, this.outC],
      this.stride,
      'same',
    );
    return addBiasActivate(out, this.bias, activation);
  }
}
