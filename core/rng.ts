/**
 * Seeded, counter-addressable randomness.
 *
 * Every random draw in vaelab comes from an `Rng` derived from the experiment seed, a stream
 * name and a counter (`Rng.derive(seed, 'train', step)`), so a run's randomness is a pure
 * function of (seed, what, when). Resuming at step s needs no saved generator: the stream for
 * step s is derived again. Streams are independent: adding a draw to one (say, more samples
 * for a new objective) never shifts data order in another.
 *
 * Generator: sfc32 (Small Fast Counting, 128-bit state), seeded through splitmix32 of a
 * 32-bit FNV-1a hash of the stream key. Normals: Box-Muller, both outputs used.
 */
import * as tf from '@tensorflow/tfjs-core';

function fnv1a(text: string, h = 0x811c9dc5): number {
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

function splitmix32(state: number): [number, number] {
  state = (state + 0x9e3779b9) >>> 0;
  let z = state;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return [state, (z ^ (z >>> 16)) >>> 0];
}

/** Serialisable generator state: four 32-bit words plus a cached spare normal. */
export interface RngState {
  s: [number, number, number, number];
  spare: number | null;
}

/** A seedable pseudo-random generator with host-side draws and tensor helpers. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spare: number | null = null;

  /** Seeds from any integer; prefer `Rng.derive` to get independent streams. */
  constructor(seed: number) {
    let st = seed >>> 0;
    const words: number[] = [];
    for (let i = 0; i < 4; i++) {
      const [next, out] = splitmix32(st);
      st = next;
      words.push(out);
    }
    [this.a, this.b, this.c, this.d] = words as [number, number, number, number];
    for (let i = 0; i < 12; i++) this.nextUint32();
  }

  /** The stream for (seed, name, ...counters): independent of every other key. */
  static derive(seed: number, name: string, ...counters: number[]): Rng {
    const key = `${seed >>> 0}/${name}/${counters.join('/')}`;
    return new Rng(fnv1a(key) ^ Math.imul(seed >>> 0, 0x9e3779b1));
  }

  /** A child stream keyed by `name` and counters, drawn from this generator's next word. */
  fork(name: string, ...counters: number[]): Rng {
    return Rng.derive(this.nextUint32(), name, ...counters);
  }

  /** Uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** Uniform float in [0, 1) with 32 bits of resolution. */
  uniform(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Standard normal draw (Box-Muller). */
  normal(): number {
    if (this.spare !== null) {
      const v = this.spare;
      this.spare = null;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** In-place Fisher-Yates shuffle; returns its argument. */
  shuffle<T extends { length: number; [i: number]: unknown }>(arr: T): T {
    for (let i = arr.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = arr[i];
      arr[i] = arr[j];
      arr[j] = tmp;
    }
    return arr;
  }

  /** A random permutation of 0..n-1. */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    return this.shuffle(p);
  }

  /**
   * Fills `out` with standard normals: the values `normal()` would give one by one (the same
   * integer steps and Box-Muller arithmetic, tested bit for bit), with the generator state in
   * local variables instead of fields for the whole loop.
   */
  fillNormal(out: Float32Array): Float32Array {
    const n = out.length;
    let i = 0;
    if (n > 0 && this.spare !== null) {
      out[i++] = this.spare;
      this.spare = null;
    }
    let a = this.a;
    let b = this.b;
    let c = this.c;
    let d = this.d;
    while (i < n) {
      // As normal(): u drawn until it is nonzero, then v once.
      let u = 0;
      let v = 0;
      let drawn = 0;
      while (drawn < 2) {
        const t = (((a + b) >>> 0) + d) >>> 0;
        d = (d + 1) >>> 0;
        a = b ^ (b >>> 9);
        b = (c + (c << 3)) >>> 0;
        c = ((c << 21) | (c >>> 11)) >>> 0;
        c = (c + t) >>> 0;
        const x = t / 4294967296;
        if (drawn === 1) {
          v = x;
          drawn = 2;
        } else if (x !== 0) {
          u = x;
          drawn = 1;
        }
      }
      const r = Math.sqrt(-2 * Math.log(u));
      out[i++] = r * Math.cos(2 * Math.PI * v);
      const second = r * Math.sin(2 * Math.PI * v);
      if (i < n) out[i++] = second;
      else this.spare = second;
    }
    this.a = a;
    this.b = b;
    this.c = c;
    this.d = d;
    return out;
  }

  /** Fills `out` with uniforms in [0, 1). */
  fillUniform(out: Float32Array): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = this.uniform();
    return out;
  }

  /** A float32 tensor of standard normals. Shape: `shape`. */
  normalTensor(shape: number[]): tf.Tensor {
    const n = shape.reduce((p, s) => p * s, 1);
    return tf.tensor(this.fillNormal(new Float32Array(n)), shape, 'float32');
  }

  /** A float32 tensor of uniforms in [lo, hi). Shape: `shape`. */
  uniformTensor(shape: number[], lo = 0, hi = 1): tf.Tensor {
    const n = shape.reduce((p, s) => p * s, 1);
    const v = this.fillUniform(new Float32Array(n));
    if (lo !== 0 || hi !== 1) for (let i = 0; i < n; i++) v[i] = lo + (hi - lo) * v[i];
    return tf.tensor(v, shape, 'float32');
  }

  /** The generator state, for checkpoints. */
  getState(): RngState {
    return { s: [this.a, this.b, this.c, this.d], spare: this.spare };
  }

  /** Restores a state from `getState`. */
  setState(state: RngState): void {
    [this.a, this.b, this.c, this.d] = state.s;
    this.spare = state.spare;
  }
}

/** The initialisation stream of one plugin: independent of every other plugin's and of training. */
export function initRng(seed: number, slot: string, name: string): Rng {
  return Rng.derive(seed, `init/${slot}/${name}`);
}
