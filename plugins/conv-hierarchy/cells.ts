/**
 * The deterministic pieces of the convolutional hierarchy: residual cells, the convolutional
 * Gaussian head of a latent group, the stride-2 up- and downsampling, and the checks that turn
 * the image size and a list of sides into messages. Shared by the encoder, latent and decoder of
 * plugins/conv-hierarchy. In the spirit of NVAE (Vahdat & Kautz 2020, https://arxiv.org/abs/2007.03898)
 * and VDVAE (Child 2021, https://arxiv.org/abs/2011.10650), at our scale: no batch norm, no
 * squeeze-and-excitation, no bottleneck widths.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Conv2d, ConvTranspose2d, Module, activate, type Activation, type DiagGaussianParams, type Rng } from '../../core';
import type { Variance } from '../ladder';

/** Multiplies a freshly initialised layer's kernel and bias by `factor` (VDVAE's scaled output layers). */
function scaleLayer(layer: Conv2d | ConvTranspose2d, factor: number): void {
  if (factor === 1) return;
  for (const v of [layer.kernel, layer.bias]) v.assign(tf.tidy(() => tf.mul(v, factor)));
}

/**
 * y = x + conv3x3(act(conv3x3(act(x)))), channels kept. The second convolution starts scaled by
 * `outScale` (VDVAE scales it by 1/sqrt(number of cells), so that the residual stream of a deep
 * stack does not grow with depth at initialisation). Variables: conv0/{kernel,bias}, conv1/{kernel,bias}.
 */
export class ResidualCell extends Module {
  private readonly first: Conv2d;
  private readonly second: Conv2d;
  constructor(
    channels: number,
    private readonly activation: Activation,
    outScale: number,
    rng: Rng,
  ) {
    super();
    this.first = this.track('conv0', new Conv2d(channels, channels, 3, 1, rng));
    this.second = this.track('conv1', new Conv2d(channels, channels, 3, 1, rng));
    scaleLayer(this.second, outScale);
  }

  /** Shapes: x [N, H, W, C] -> [N, H, W, C]. */
  apply(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => tf.add(x, this.second.apply(this.first.apply(activate(x, this.activation), this.activation))) as tf.Tensor4D);
  }
}

/** Applies cells in order. Shapes: x [N, H, W, C] -> [N, H, W, C] (a copy with no cells). */
export function applyCells(cells: readonly ResidualCell[], x: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    let h = x;
    for (const c of cells) h = c.apply(h);
    return h === x ? tf.clone(x) : h;
  });
}

/** log of the variance from a head's raw output a: log(softplus(a) + min), or max(a, log min) (the ladder's two forms). */
export function logVarianceOf(a: tf.Tensor, variance: Variance, minVariance: number): tf.Tensor {
  return tf.tidy(() => (variance === 'exp' ? tf.maximum(a, Math.log(minVariance)) : tf.log(tf.add(tf.softplus(a), minVariance))));
}

/**
 * The diagonal Gaussian of a spatial latent group from a feature map: conv1x1(act(conv3x3(act(x))))
 * gives 2 zChannels per position, the first zChannels the mean, the others the variance's raw
 * output (softplus or exp, `variance`). Returned flat, as core's Gaussian maths takes it: the
 * [N, H, W, zChannels] grids reshaped to [N, H*W*zChannels] (row-major, so a reshape back gives
 * the grid). Variables: hidden/{kernel,bias}, out/{kernel,bias}.
 */
export class ConvGaussianHead extends Module {
  readonly hidden: Conv2d;
  readonly out: Conv2d;
  constructor(
    inChannels: number,
    hiddenChannels: number,
    readonly zChannels: number,
    private readonly activation: Activation,
    private readonly variance: Variance,
    private readonly minVariance: number,
    rng: Rng,
  ) {
    super();
    this.hidden = this.track('hidden', new Conv2d(inChannels, hiddenChannels, 3, 1, rng));
    this.out = this.track('out', new Conv2d(hiddenChannels, 2 * zChannels, 1, 1, rng));
  }

  /** Shapes: x [N, H, W, inChannels] -> loc, logVar [N, H*W*zChannels]. */
  apply(x: tf.Tensor4D): DiagGaussianParams {
    return tf.tidy(() => {
      const y = this.out.apply(this.hidden.apply(activate(x, this.activation), this.activation));
      const [loc, a] = tf.split(y, 2, 3);
      const n = x.shape[0];
      return {
        loc: tf.reshape(loc, [n, -1]),
        logVar: tf.reshape(logVarianceOf(a, this.variance, this.minVariance), [n, -1]),
      } as unknown as tf.TensorContainer;
    }) as unknown as DiagGaussianParams;
  }
}

/**
 * `doublings` stride-2 transposed convolutions (4x4, as decoder.conv's), each doubling H and W,
 * the first from inChannels, all to outChannels; linear, as a step of a residual stream.
 * Variables: deconv<i>/{kernel,bias}.
 */
export class Upsample extends Module {
  private readonly layers: ConvTranspose2d[] = [];
  constructor(inChannels: number, outChannels: number, doublings: number, rng: Rng) {
    super();
    for (let i = 0; i < doublings; i++) this.layers.push(this.track(`deconv${i}`, new ConvTranspose2d(i === 0 ? inChannels : outChannels, outChannels, 4, 2, rng)));
  }

  /** Shapes: x [N, H, W, inChannels] -> [N, H * 2^doublings, W * 2^doublings, outChannels]. */
  apply(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      let h = x;
      for (const l of this.layers) h = l.apply(h);
      return h === x ? tf.clone(x) : h;
    });
  }
}

/** log2 of a power of two, or null. */
export function log2Exact(n: number): number | null {
  if (!Number.isInteger(n) || n < 1) return null;
  const k = Math.round(Math.log2(n));
  return 2 ** k === n ? k : null;
}
