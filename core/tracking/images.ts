/**
 * Image grids as PNG (pngjs): tiles of [H, W, C] examples with values in [0, 1], one pixel of
 * padding between tiles.
 */
import { PNG } from 'pngjs';
import { writeFileAtomic } from './files';

/**
 * Encodes `images` (n examples of H*W*C floats in [0,1], row-major HWC) as a grid PNG of `cols`
 * columns. C = 1 gives grey, C = 3 colour; values are clipped to [0, 1].
 */
export function encodeGrid(images: Float32Array, n: number, shape: readonly number[], cols: number): Buffer {
  const [h, w, c] = shape;
  const rows = Math.ceil(n / cols);
  const pad = 1;
  const width = cols * (w + pad) + pad;
  const height = rows * (h + pad) + pad;
  const png = new PNG({ width, height, colorType: 6 });
  png.data.fill(0);
  for (let i = 3; i < png.data.length; i += 4) png.data[i] = 255;
  const per = h * w * c;
  for (let k = 0; k < n; k++) {
    const ox = pad + (k % cols) * (w + pad);
    const oy = pad + Math.floor(k / cols) * (h + pad);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const src = k * per + (y * w + x) * c;
        const dst = ((oy + y) * width + (ox + x)) * 4;
        for (let ch = 0; ch < 3; ch++) {
          const v = images[src + (c === 3 ? ch : 0)];
          png.data[dst + ch] = Math.round(255 * Math.min(1, Math.max(0, Number.isFinite(v) ? v : 0)));
        }
      }
    }
  }
  return PNG.sync.write(png);
}

/** Writes a grid PNG atomically. */
export function writeGrid(file: string, images: Float32Array, n: number, shape: readonly number[], cols: number): void {
  writeFileAtomic(file, encodeGrid(images, n, shape, cols));
}
