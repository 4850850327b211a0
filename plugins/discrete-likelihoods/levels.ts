/**
 * What the discrete likelihoods of this folder share: 8-bit grey levels x = k/255, k = 0..255,
 * and the refusal of data that are not images. Not a plugin.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, type DataInfo } from '../../core';

/** Number of grey levels of 8-bit data. */
export const LEVELS = 256;

/**
 * Refuses vector data (DataInfo.shape [1, 1, D], e.g. synthetic/mixture2d), whose real values
 * have no 8-bit levels, with a ConfigError naming likelihood.use and the data set.
 */
export function requireGreyLevelImages(plugin: string, info: DataInfo): void {
  const [h, w] = info.shape;
  if (h === 1 && w === 1) {
    throw new ConfigError(
      `likelihood.use: "${plugin}" scores 8-bit grey levels of images (x = k/255, k = 0..255); data set "${info.name}" is vector data of shape [${info.shape.join(', ')}]. Use "gaussian" for real-valued vectors`,
    );
  }
}

/** The level index k = clip(round(255 x), 0, 255) of grey levels. Shapes: x [...] -> int32 [...]. */
export function levelIndex(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.cast(tf.clipByValue(tf.round(tf.mul(x, LEVELS - 1)), 0, LEVELS - 1), 'int32'));
}
