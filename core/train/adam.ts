/**
 * Adam (Kingma & Ba 2015, https://arxiv.org/abs/1412.6980) with PyTorch's update rule:
 *   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
 *   p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * Its moments are plain variables keyed by the model's variable names, so checkpoints can
 * save and restore them exactly.
 */
import * as tf from '@tensorflow/tfjs-core';
import { nativeAdamStep, nativeAdamStepSquares, nativeSumSquares } from '../backend/native';

/** Adam settings (train.optimizer.*). */
export interface AdamOptions {
  beta1: number;
  beta2: number;
  epsilon: number;
  weightDecay: number;
}

/** Adam over a fixed set of named variables. */
export class Adam {
  /** Steps taken (t in the bias corrections). */
  t = 0;
  readonly m = new Map<string, tf.Variable>();
  readonly v = new Map<string, tf.Variable>();

  constructor(
    private readonly vars: Map<string, tf.Variable>,
    private readonly opts: AdamOptions,
  ) {
    // In a tidy: tf.variable keeps the zeros' data but not the zeros tensor, which would outlive
    // dispose() (two tensors per variable left behind by every run of a process).
    for (const [name, p] of vars) {
      this.m.set(name, tf.tidy(() => tf.variable(tf.zerosLike(p), false)));
      this.v.set(name, tf.tidy(() => tf.variable(tf.zerosLike(p), false)));
    }
  }

  /**
   * One update with learning rate `lr`. grads: name -> gradient of that variable (missing = no
   * update). With `sumSquares`, returns the sum of the squares of the gradients when the native
   * pack ran the update (computed inside its pass, the same number nativeSumSquares gives), else
   * null; without, null.
   */
  apply(grads: Map<string, tf.Tensor>, lr: number, opts: { sumSquares?: boolean } = {}): number | null {
    this.t += 1;
    const { beta1, beta2, epsilon, weightDecay } = this.opts;
    const stepSize = lr / (1 - beta1 ** this.t);
    const sqrtBc2 = Math.sqrt(1 - beta2 ** this.t);
    // The native pack updates every variable and both moments in one pass, in place on the wasm
    // heap; elsewhere the update below runs as tfjs ops. Per element the pack does the float32
    // operations of the ops below in their order (no FMA contraction), so on equal inputs it
    // gives equal bits, except where an operand or a result is denormal (below 2^-126): the pack
    // flushes those to 0 and WebAssembly keeps them, and the moments of weights whose gradient is
    // almost always 0 get there after ~800 steps. What is bit-exact is one path (cpu; wasm with
    // vaelab's kernels; wasm with the pack) on one machine with one seed
    // (test/backend/same-path.test.ts); two paths also sum products in different orders and
    // drift apart over a run (bench/README.md, 2026-11-28).
    const names = [...grads.keys()];
    const args = [
      names.map((n) => this.vars.get(n)!),
      names.map((n) => grads.get(n)!),
      names.map((n) => this.m.get(n)!),
      names.map((n) => this.v.get(n)!),
      { stepSize, beta1, beta2, epsilon, sqrtBc2, weightDecay },
    ] as const;
    if (opts.sumSquares) {
      const squares = nativeAdamStepSquares(...args);
      if (squares !== null) return squares;
    } else if (nativeAdamStep(...args)) {
      return null;
    }
    tf.tidy(() => {
      for (const [name, g0] of grads) {
        const p = this.vars.get(name)!;
        const g = weightDecay > 0 ? tf.add(g0, tf.mul(p, weightDecay)) : g0;
        const m = this.m.get(name)!;
        const v = this.v.get(name)!;
        m.assign(tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1)));
        v.assign(tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2)));
        const denom = tf.add(tf.div(tf.sqrt(v), sqrtBc2), epsilon);
        p.assign(tf.sub(p, tf.mul(tf.div(m, denom), stepSize)));
      }
    });
    return null;
  }

  /** Frees the moment variables. */
  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
  }
}

/**
 * Global L2 norm of a set of gradients and, when clipNorm > 0, the gradients scaled by
 * clipNorm / max(norm, clipNorm) (so they are unchanged when the norm is within the bound).
 * With clipping, returns new tensors; without, the input map itself. The caller disposes the
 * inputs and the outputs (disposing a tensor twice is harmless). norm: a scalar tensor. With the
 * native pack the sum of squares is one native pass per gradient, accumulated in double
 * (instead of a Square and a Sum kernel per gradient); otherwise tfjs ops in float32.
 */
export function clipByGlobalNorm(
  grads: Map<string, tf.Tensor>,
  clipNorm: number,
): { grads: Map<string, tf.Tensor>; norm: tf.Scalar } {
  const squares = nativeSumSquares([...grads.values()]);
  const norm =
    squares !== null
      ? tf.scalar(Math.sqrt(squares))
      : tf.tidy(() => tf.sqrt(tf.addN([...grads.values()].map((g) => tf.sum(tf.square(g))))) as tf.Scalar);
  if (clipNorm <= 0) return { grads, norm };
  const keys = [...grads.keys()];
  const scaled = tf.tidy(() => {
    const factor = tf.div(clipNorm, tf.maximum(norm, clipNorm));
    return keys.map((k) => tf.mul(grads.get(k)!, factor));
  });
  return { grads: new Map(keys.map((k, i) => [k, scaled[i]])), norm };
}
