/**
 * A Gated PixelCNN prior over a grid of codes (van den Oord, Kalchbrenner, Vinyals, Espeholt,
 * Graves & Kavukcuoglu 2016, "Conditional Image Generation with PixelCNN Decoders",
 * https://arxiv.org/abs/1606.05328), the learned prior of VQ-VAE (van den Oord et al. 2017,
 * https://arxiv.org/abs/1711.00937, section 3.3):
 *   p(codes) = prod_{i,j in raster order} p(c_ij | c_<ij, cond),
 * each factor a softmax over the K codes. Layers:
 * - codes -> embedding [K, channels] (read through a one-hot product);
 * - `layers` gated layers, each with a vertical stack (a [k/2+1, k] kernel: the row and the rows
 *   above) and a horizontal stack (a [1, k/2+1] kernel: the row up to the position). The vertical
 *   stack reaches the horizontal one only shifted down by one row, so the horizontal stack at
 *   (i, j) sees rows < i and, in row i, columns < j (first layer, type A: its kernel is [1, k/2],
 *   left of the position) or <= j (later layers, type B, which only see features that already
 *   exclude the position). Gate: tanh(a) * sigmoid(b) over the two halves of 2 * channels
 *   pre-activations; a conditioning input (class labels) adds a learned bias to both stacks'
 *   pre-activations; the horizontal stack has a 1x1 convolution and a residual connection
 *   (type B only, so that the position's own input never leaks);
 * - head: ReLU, 1x1 convolution, ReLU, 1x1 convolution to K logits.
 * Masking is built into the kernel shapes and paddings (no masked weights are stored).
 * `sample` draws position by position in raster order (H' W' passes of the network, each over
 * the rows down to the position's, with the head at the position only).
 * Reads prior.pixelcnn.layers, channels, kernelSize, firstKernelSize.
 */
import { inject, injectable } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import {
  ConfigError,
  Dense,
  Module,
  TOKENS,
  definePlugin,
  initRng,
  pluginConfig,
  reserveParameters,
  tanh,
  type ConfigOf,
  type DataInfo,
  type Latent,
  type PassOptions,
  type Prior,
  type Rng,
} from '../../core';

export const pixelCnnPriorSchema = {
  layers: { doc: 'gated layers (the first of type A, the others of type B)', format: 'positive-int', default: 8 },
  channels: { doc: 'channels of every gated layer and of the code embedding', format: 'positive-int', default: 64 },
  kernelSize: { doc: 'kernel width k of the type-B layers (odd, at least 3)', format: 'positive-int', default: 3 },
  firstKernelSize: { doc: 'kernel width of the first (type-A) layer (odd, at least 3)', format: 'positive-int', default: 7 },
} as const;

/** The latent as a grid of K-way codes: what this prior reads of it. */
interface CodeGrid {
  numCodes: number;
  height: number;
  width: number;
}

/**
 * The grid of codes of a latent whose prior codes are indices (numCodes, priorShape [H, W]), or a
 * ConfigError naming `key` (a flat Gaussian latent, say).
 */
export function codeGridOf(latent: Latent, key: string): CodeGrid {
  const k = (latent as { numCodes?: unknown }).numCodes;
  const shape = latent.priorShape ?? [latent.priorDim];
  if (typeof k !== 'number' || !Number.isInteger(k) || k < 2 || shape.length !== 2) {
    throw new ConfigError(
      `${key}: needs a latent whose prior codes are a grid [H, W] of code indices (numCodes and priorShape, as latent "vq" gives); latent ${latent.constructor.name} has priorShape [${shape.join(', ')}]${typeof k === 'number' ? ` and ${k} codes` : ' and no numCodes'}`,
    );
  }
  return { numCodes: k, height: shape[0], width: shape[1] };
}

/**
 * A convolution with a rectangular kernel and explicit zero padding, 'valid' otherwise; PyTorch's
 * initialisation bound 1/sqrt(fanIn). Shapes: x [N, H, W, inC] -> [N, H + top + bottom - kh + 1, W + left + right - kw + 1, outC].
 */
class PaddedConv extends Module {
  readonly kernel: tf.Variable;
  readonly bias: tf.Variable;
  constructor(
    kh: number,
    kw: number,
    inC: number,
    outC: number,
    private readonly pad: [[number, number], [number, number]],
    rng: Rng,
  ) {
    super();
    const bound = 1 / Math.sqrt(kh * kw * inC);
    reserveParameters([kh, kw, inC, outC]);
    reserveParameters([outC]);
    this.kernel = this.track('kernel', tf.tidy(() => tf.variable(rng.uniformTensor([kh, kw, inC, outC], -bound, bound), true)));
    this.bias = this.track('bias', tf.tidy(() => tf.variable(rng.uniformTensor([outC], -bound, bound), true)));
  }

  apply(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const [[t, b], [l, r]] = this.pad;
      const padded = t + b + l + r > 0 ? tf.pad(x, [[0, 0], [t, b], [l, r], [0, 0]]) : x;
      return tf.add(tf.conv2d(padded, this.kernel as tf.Tensor4D, 1, 'valid'), this.bias) as tf.Tensor4D;
    });
  }
}

/**
 * One-hot rows of float32 code indices. Shapes: codes [N, ...] -> [N * ..., depth]. Made as
 * int32 and cast: the wasm backend's OneHot kernel (tfjs-backend-wasm 4.22) asked for float32
 * writes the int32 bit patterns (1 reads as 1.4e-45).
 */
function oneHotFloat(codes: tf.Tensor, depth: number): tf.Tensor2D {
  return tf.tidy(() => tf.cast(tf.oneHot(tf.cast(tf.reshape(codes, [-1]), 'int32') as tf.Tensor1D, depth), 'float32') as tf.Tensor2D);
}

/** tanh(a) * sigmoid(b) over the two channel halves. Shapes: [N, H, W, 2C] -> [N, H, W, C]. */
function gate(x: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    const [a, b] = tf.split(x, 2, 3);
    return tf.mul(tanh(a), tf.sigmoid(b)) as tf.Tensor4D;
  });
}

/** Row i <- row i - 1, zeros in row 0. Shapes: [N, H, W, C] -> [N, H, W, C]. */
function shiftDown(x: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => tf.slice(tf.pad(x, [[0, 0], [1, 0], [0, 0], [0, 0]]), [0, 0, 0, 0], x.shape) as tf.Tensor4D);
}

/** One gated layer with a vertical and a horizontal stack. Shapes: v, h [N, H, W, C] -> same. */
class GatedLayer extends Module {
  private readonly vConv: PaddedConv;
  private readonly hConv: PaddedConv;
  private readonly v2h: PaddedConv;
  private readonly hOut: PaddedConv;
  private readonly condV: Dense | null;
  private readonly condH: Dense | null;
  constructor(
    channels: number,
    k: number,
    readonly typeA: boolean,
    condDim: number,
    rng: Rng,
  ) {
    super();
    const half = Math.floor(k / 2);
    const c2 = 2 * channels;
    // vertical: rows i - k/2 .. i, columns j - k/2 .. j + k/2
    this.vConv = this.track('v', new PaddedConv(half + 1, k, channels, c2, [[half, 0], [half, half]], rng));
    // horizontal: columns j - k/2 .. j (type B) or j - k/2 .. j - 1 (type A: one column less, and
    // the padding on the right is one column short, see apply)
    this.hConv = this.track('h', new PaddedConv(1, typeA ? half : half + 1, channels, c2, [[0, 0], [half, 0]], rng));
    this.v2h = this.track('v2h', new PaddedConv(1, 1, c2, c2, [[0, 0], [0, 0]], rng));
    this.hOut = this.track('hOut', new PaddedConv(1, 1, channels, channels, [[0, 0], [0, 0]], rng));
    this.condV = condDim > 0 ? this.track('condV', new Dense(condDim, c2, rng)) : null;
    this.condH = condDim > 0 ? this.track('condH', new Dense(condDim, c2, rng)) : null;
  }

  apply(v: tf.Tensor4D, h: tf.Tensor4D, cond: tf.Tensor2D | null): [tf.Tensor4D, tf.Tensor4D] {
    return tf.tidy(() => {
      const [n, H, W] = h.shape;
      const bias = (d: Dense | null) => (d && cond ? tf.reshape(d.apply(cond), [n, 1, 1, -1]) : null);
      const withBias = (x: tf.Tensor4D, d: Dense | null) => {
        const b = bias(d);
        return b ? (tf.add(x, b) as tf.Tensor4D) : x;
      };
      const vPre = this.vConv.apply(v);
      let hPre = this.hConv.apply(h);
      // Type A: the [1, k/2] kernel over the left-padded row gives W + 1 columns; output j (of the
      // first W) covers columns j - k/2 .. j - 1, so the position itself is never seen.
      if (this.typeA) hPre = tf.slice(hPre, [0, 0, 0, 0], [n, H, W, -1]);
      const hGated = gate(withBias(tf.add(hPre, this.v2h.apply(shiftDown(vPre))) as tf.Tensor4D, this.condH));
      const hNew = this.hOut.apply(hGated);
      return [gate(withBias(vPre, this.condV)), this.typeA ? hNew : (tf.add(h, hNew) as tf.Tensor4D)] as [tf.Tensor4D, tf.Tensor4D];
    }) as [tf.Tensor4D, tf.Tensor4D];
  }
}

/** Shapes: codes [N, H', W'] (float32 integers in [0, K)), cond [N, condDim] or null -> log p [N]. */
@injectable()
export class GatedPixelCnnPrior extends Module implements Prior {
  readonly grid: CodeGrid;
  private readonly embedding: tf.Variable;
  private readonly layers: GatedLayer[] = [];
  private readonly head1: PaddedConv;
  private readonly head2: PaddedConv;

  constructor(
    @inject(pluginConfig('prior', 'pixelcnn')) cfg: ConfigOf<typeof pixelCnnPriorSchema>,
    @inject(TOKENS.Latent) latent: Latent,
    @inject(TOKENS.DataInfo) data: DataInfo,
    @inject(TOKENS.Seed) seed: number,
  ) {
    super();
    this.grid = codeGridOf(latent, 'prior.pixelcnn');
    for (const key of ['kernelSize', 'firstKernelSize'] as const) {
      if (cfg[key] < 3 || cfg[key] % 2 === 0) throw new ConfigError(`prior.pixelcnn.${key}: must be an odd integer >= 3; got ${cfg[key]}`);
    }
    const reach = pixelCnnReach(cfg.layers, cfg.firstKernelSize, cfg.kernelSize);
    const need = this.grid.width - 1;
    if (reach < need) {
      const layers = 1 + Math.ceil((need - Math.floor(cfg.firstKernelSize / 2)) / Math.floor(cfg.kernelSize / 2));
      throw new ConfigError(
        `prior.pixelcnn.layers: ${cfg.layers} gated layers (firstKernelSize ${cfg.firstKernelSize}, kernelSize ${cfg.kernelSize}) see ${reach} codes to the left of a position, less than one row: the code grid is ${this.grid.width} wide, so it must see ${need}; use at least ${layers} layers or larger kernels`,
      );
    }
    const rng = initRng(seed, 'prior', 'pixelcnn');
    const K = this.grid.numCodes;
    const C = cfg.channels;
    reserveParameters([K, C]);
    this.embedding = this.track('embedding', tf.tidy(() => tf.variable(rng.normalTensor([K, C]), true)));
    for (let l = 0; l < cfg.layers; l++) {
      this.layers.push(this.track(`layer${l}`, new GatedLayer(C, l === 0 ? cfg.firstKernelSize : cfg.kernelSize, l === 0, data.condDim, rng)));
    }
    this.head1 = this.track('head1', new PaddedConv(1, 1, C, C, [[0, 0], [0, 0]], rng));
    this.head2 = this.track('head2', new PaddedConv(1, 1, C, K, [[0, 0], [0, 0]], rng));
  }

  /**
   * The horizontal stack's features after the last gated layer. Shapes: codes [N, h, W'] with
   * h <= H' (the rows from the top; row i of the features depends only on rows <= i, so a grid
   * cut below row i gives row i exactly as the whole grid does), cond [N, condDim] or null ->
   * [N, h, W', channels].
   */
  private features(codes: tf.Tensor, cond: tf.Tensor2D | null): tf.Tensor4D {
    return tf.tidy(() => {
      const { numCodes: K, width: W } = this.grid;
      const [n, rows] = codes.shape;
      // A one-hot product rather than tf.gather (whose gradient the wasm backend cannot run).
      const oneHot = oneHotFloat(codes, K);
      let v = tf.reshape(tf.matMul(oneHot, this.embedding as tf.Tensor2D), [n, rows, W, -1]) as tf.Tensor4D;
      let h = v;
      for (const layer of this.layers) [v, h] = layer.apply(v, h, cond);
      return h;
    });
  }

  /** The head: features [N, h, w, channels] -> logits [N, h, w, K]. */
  private head(h: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => this.head2.apply(tf.relu(this.head1.apply(tf.relu(h)))));
  }

  /** Logits of p(c_ij | c_<ij). Shapes: codes [N, H', W'], cond [N, condDim] or null -> [N, H', W', K]. */
  logits(codes: tf.Tensor, cond: tf.Tensor2D | null): tf.Tensor4D {
    return tf.tidy(() => this.head(this.features(codes, cond)));
  }

  /** log p(codes) = sum over positions of log softmax(logits)[code]. Shapes: codes [N, H', W'] -> [N]. */
  logProb(codes: tf.Tensor, cond: tf.Tensor2D | null, _opts?: PassOptions): tf.Tensor1D {
    return tf.tidy(() => {
      const K = this.grid.numCodes;
      const logP = tf.logSoftmax(this.logits(codes, cond));
      const oneHot = tf.reshape(oneHotFloat(codes, K), logP.shape);
      return tf.sum(tf.reshape(tf.mul(logP, oneHot), [codes.shape[0], -1]), 1) as tf.Tensor1D;
    });
  }

  /**
   * n grids drawn position by position in raster order, each code from softmax(logits) at its
   * position by the inverse CDF of one uniform of `rng`. Returns float32 code indices [n, H', W'].
   */
  sample(n: number, rng: Rng, cond: tf.Tensor2D | null, _opts?: PassOptions): tf.Tensor {
    const { numCodes: K, height: H, width: W } = this.grid;
    const codes = new Float32Array(n * H * W);
    for (let i = 0; i < H; i++) {
      for (let j = 0; j < W; j++) {
        // Only rows 0..i reach position (i, j), and only its features reach the head.
        const probs = tf.tidy(() => {
          const h = this.features(tf.slice(tf.tensor3d(codes, [n, H, W]), [0, 0, 0], [n, i + 1, W]), cond);
          return tf.softmax(tf.reshape(this.head(tf.slice(h, [0, i, j, 0], [n, 1, 1, -1])), [n, K]));
        });
        const p = probs.dataSync();
        probs.dispose();
        for (let r = 0; r < n; r++) {
          const u = rng.uniform();
          let k = 0;
          let cum = p[r * K];
          while (cum <= u && k < K - 1) cum += p[r * K + ++k];
          codes[(r * H + i) * W + j] = k;
        }
      }
    }
    return tf.tensor3d(codes, [n, H, W]);
  }
}

/**
 * How many codes to the left of a position (and, through the vertical stack, to either side in
 * the rows above) the network sees: floor(k1 / 2) + (layers - 1) * floor(k / 2).
 */
export function pixelCnnReach(layers: number, firstKernelSize: number, kernelSize: number): number {
  return Math.floor(firstKernelSize / 2) + (layers - 1) * Math.floor(kernelSize / 2);
}

export const pixelCnnPrior = definePlugin({
  slot: 'prior',
  name: 'pixelcnn',
  description: 'Gated PixelCNN over a grid of codes (the learned prior of VQ-VAE), optionally conditioned on the labels',
  schema: pixelCnnPriorSchema,
  implementation: GatedPixelCnnPrior,
});
