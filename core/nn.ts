/**
 * Small layers with seeded initialisation, for plugins to build networks from. Initialisation
 * follows PyTorch's defaults (kaiming-uniform with a = sqrt(5), i.e. U(-1/sqrt(fanIn), 1/sqrt(fanIn))
 * for weights and biases), so that published PyTorch recipes reproduce here.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Trainable } from './contracts';
import { fusedBiasRelu, fusedDense } from './fused';
import type { Rng } from './rng';

/** Activation names a schema may offer. */
export const ACTIVATIONS = ['relu', 'elu', 'leaky-relu', 'tanh', 'sigmoid', 'softplus', 'selu', 'swish', 'linear'] as const;
export type Activation = (typeof ACTIVATIONS)[number];

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
      return tf.tanh(x);
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

function uniformVariable(shape: number[], bound: number, rng: Rng): tf.Variable {
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
   * activation(x W + b): for relu and linear one fused kernel each way where the backend has it
   * (core/fused.ts DENSE), else a matMul and addBiasActivate. Not tf.fused: its gradient
   * computes the gradient of every input (the data's too, in a first layer); here x's is
   * computed only when the tape needs it.
   */
  apply(x: tf.Tensor2D, activation: Activation = 'linear'): tf.Tensor2D {
    if (activation === 'relu' || activation === 'linear') {
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
