/**
 * The residual block of the VQ-VAE paper (van den Oord et al. 2017, section 4.1): ReLU, 3x3
 * convolution, ReLU, 1x1 convolution, added to the input. Shared by the vq-conv encoder and
 * decoder; not a plugin.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Conv2d, ConfigError, Module, type Rng } from '../../core';

/** x + conv1x1(relu(conv3x3(relu(x)))). Shapes: x [N, H, W, C] -> [N, H, W, C]. */
export class ResidualBlock extends Module {
  private readonly conv3: Conv2d;
  private readonly conv1: Conv2d;
  constructor(channels: number, hidden: number, rng: Rng) {
    super();
    this.conv3 = this.track('conv3', new Conv2d(channels, hidden, 3, 1, rng));
    this.conv1 = this.track('conv1', new Conv2d(hidden, channels, 1, 1, rng));
  }

  apply(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => tf.add(x, this.conv1.apply(this.conv3.apply(tf.relu(x), 'relu'))) as tf.Tensor4D);
  }
}

/**
 * The spatial size after `layers` stride-2 convolutions, checking that they divide the image
 * exactly (the decoder's transposed convolutions must give the image back). Throws a ConfigError
 * naming `key`. Shapes: shape [H, W, C] -> [H / 2^layers, W / 2^layers].
 */
export function gridSize(shape: readonly number[], layers: number, key: string, dataName: string): [number, number] {
  const [h, w] = shape;
  const f = 2 ** layers;
  if (h < 2 || w < 2) throw new ConfigError(`${key}: convolutions need image data; data set "${dataName}" has examples of shape [${shape.join(', ')}]`);
  if (h % f !== 0 || w % f !== 0) {
    throw new ConfigError(`${key}: ${layers} stride-2 convolutions need image sides divisible by ${f} (a grid of codes that divides the image); data set "${dataName}" is ${h}x${w}`);
  }
  return [h / f, w / f];
}

/** The conditioning input broadcast over a grid as extra channels. Shapes: x [N, H, W, C], cond [N, c] -> [N, H, W, C + c]. */
export function withCondChannels(x: tf.Tensor4D, cond: tf.Tensor2D | null | undefined): tf.Tensor4D {
  if (!cond) return x;
  const [n, h, w] = x.shape;
  return tf.concat([x, tf.tile(tf.reshape(cond, [n, 1, 1, cond.shape[1]]), [1, h, w, 1])], 3) as tf.Tensor4D;
}
