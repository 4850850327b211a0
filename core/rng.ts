/**
 * Seeded, counter-addressable randomness.
 *
 * Every random draw in vaelab comes from an `Rng` derived from the experiment seed, a stream
 * name and a counter (`Rng.derive(seed, 'train', step)`), so a run's randomness is a pure
 * function of (seed, what, when). Resuming at step s needs no saved generator: the stream for
 * step s is derived again. Streams are independent: adding a draw to one (say, more samples
 * for a new objective) never shifts data order in another.
 *
 * Generator: sfc32 (Small Fast Counting, 128-bit state). Normals: Box-Muller, both outputs used.
 *
 * Stream keys: the key text `seed/name/counters` is hashed with MurmurHash3_x86_128 (over its
 * UTF-16 code units) and the 128-bit hash is the whole sfc32 state, so two keys share a stream
 * only when their 128-bit hashes collide: about n^2 / 2^129 expected pairs among n keys, 1e-26
 * for the 2 M steps of a long run. (Until 2026-11 the key went through a 32-bit FNV-1a hash,
 * which gives ~n^2 / 2^33 pairs: ~260 steps of a 1.5 M-step run shared their noise.) Why this
 * and not a counter-based generator (Philox, Threefry): sfc32 and its inner loop in `fillNormal`
 * stay as they are (one add-xor-shift round per word, fast in JavaScript's 32-bit integer
 * arithmetic), and only the seeding changes. Why 128 bits rather than a 64-bit key: sfc32's
 * state is 128 bits, so a 128-bit hash fills it at no extra cost (MurmurHash3_x86_128 needs only
 * 32-bit multiplies, no BigInt), and two derived states are then as unlikely to be close on
 * sfc32's cycle as two random ones (streams of L words overlap with probability ~n^2 L / 2^128).
 */
import * as tf from '@tensorflow/tfjs-core';

const MM_C1 = 0x239b961b;
const MM_C2 = 0xab0e9789;
const MM_C3 = 0x38b34ae5;
const MM_C4 = 0xa1e38b93;

function rotl32(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * MurmurHash3_x86_128 (Austin Appleby's reference, seed 0) of the UTF-16LE bytes of `text`, as
 * four unsigned 32-bit words h1..h4 (the reference's output order). Internal: the stream-key
 * hash of `Rng.derive`; exported for its test against an independent implementation.
 */
export function murmur3x86128(text: string): [number, number, number, number] {
  const units = text.length;
  let h1 = 0;
  let h2 = 0;
  let h3 = 0;
  let h4 = 0;
  // Little-endian 32-bit word j of the UTF-16LE bytes: code units 2j and 2j+1 (0 past the end).
  const word = (j: number): number => (text.charCodeAt(2 * j) | ((2 * j + 1 < units ? text.charCodeAt(2 * j + 1) : 0) << 16)) | 0;
  const blocks = units >>> 3; // 16 bytes = 8 code units per block
  for (let i = 0; i < blocks; i++) {
    let k1 = word(4 * i);
    let k2 = word(4 * i + 1);
    let k3 = word(4 * i + 2);
    let k4 = word(4 * i + 3);
    k1 = Math.imul(rotl32(Math.imul(k1, MM_C1), 15), MM_C2);
    h1 ^= k1;
    h1 = (Math.imul(rotl32(h1, 19) + h2, 5) + 0x561ccd1b) | 0;
    k2 = Math.imul(rotl32(Math.imul(k2, MM_C2), 16), MM_C3);
    h2 ^= k2;
    h2 = (Math.imul(rotl32(h2, 17) + h3, 5) + 0x0bcaa747) | 0;
    k3 = Math.imul(rotl32(Math.imul(k3, MM_C3), 17), MM_C4);
    h3 ^= k3;
    h3 = (Math.imul(rotl32(h3, 15) + h4, 5) + 0x96cd1c35) | 0;
    k4 = Math.imul(rotl32(Math.imul(k4, MM_C4), 18), MM_C1);
    h4 ^= k4;
    h4 = (Math.imul(rotl32(h4, 13) + h1, 5) + 0x32ac3b17) | 0;
  }
  // The tail: 0-7 code units = 0-14 bytes; a lane is mixed when the tail reaches into it.
  const rest = units - 8 * blocks;
  const w0 = 4 * blocks;
  if (rest > 6) h4 ^= Math.imul(rotl32(Math.imul(word(w0 + 3), MM_C4), 18), MM_C1);
  if (rest > 4) h3 ^= Math.imul(rotl32(Math.imul(word(w0 + 2), MM_C3), 17), MM_C4);
  if (rest > 2) h2 ^= Math.imul(rotl32(Math.imul(word(w0 + 1), MM_C2), 16), MM_C3);
  if (rest > 0) h1 ^= Math.imul(rotl32(Math.imul(word(w0), MM_C1), 15), MM_C2);
  const bytes = 2 * units;
  h1 ^= bytes;
  h2 ^= bytes;
  h3 ^= bytes;
  h4 ^= bytes;
  h1 = (h1 + h2 + h3 + h4) | 0;
  h2 = (h2 + h1) | 0;
  h3 = (h3 + h1) | 0;
  h4 = (h4 + h1) | 0;
  h1 = fmix32(h1);
  h2 = fmix32(h2);
  h3 = fmix32(h3);
  h4 = fmix32(h4);
  h1 = (h1 + h2 + h3 + h4) >>> 0;
  h2 = (h2 + h1) >>> 0;
  h3 = (h3 + h1) >>> 0;
  h4 = (h4 + h1) >>> 0;
  return [h1, h2, h3, h4];
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

  /** Seeds from any integer (through splitmix32 of its low 32 bits); prefer `Rng.derive` to get independent streams. */
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

  /** The stream whose 128-bit state is the MurmurHash3_x86_128 of `key` (see the file header). */
  private static fromKey(key: string): Rng {
    const r = new Rng(0);
    r.setState({ s: murmur3x86128(key), spare: null });
    // As the constructor: 12 words are discarded, so that the first output mixes all four words.
    for (let i = 0; i < 12; i++) r.nextUint32();
    return r;
  }

  /** The stream for (seed, name, ...counters): independent of every other key (see the file header). */
  static derive(seed: number, name: string, ...counters: number[]): Rng {
    return Rng.fromKey(`${seed >>> 0}/${name}/${counters.join('/')}`);
  }

  /**
   * A child stream keyed by `name` and counters and by this generator's next two words (64
   * bits, so that children forked from different parents or at different places differ).
   */
  fork(name: string, ...counters: number[]): Rng {
    const hi = this.nextUint32();
    const lo = this.nextUint32();
    return Rng.fromKey(`fork:${hi}:${lo}/${name}/${counters.join('/')}`);
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

  /**
   * Fills `out` with uniforms in [0, 1): `uniform()` rounded to float32, except that the draws
   * that round up to 1 (u >= 1 - 2^-25, probability 2^-25) become 1 - 2^-24, the largest float32
   * below 1. Every other value is the nearest float32 to `uniform()`, so the fine resolution near
   * 0 is kept (a 24-bit draw would lose it).
   */
  fillUniform(out: Float32Array): Float32Array {
    for (let i = 0; i < out.length; i++) {
      out[i] = this.uniform();
      if (out[i] === 1) out[i] = BELOW_ONE_F32;
    }
    return out;
  }

  /** A float32 tensor of standard normals. Shape: `shape`. */
  normalTensor(shape: number[]): tf.Tensor {
    const n = shape.reduce((p, s) => p * s, 1);
    return tf.tensor(this.fillNormal(new Float32Array(n)), shape, 'float32');
  }

  /**
   * A float32 tensor of uniforms in [lo, hi): lo + (hi - lo) u for u from `fillUniform`, see
   * `uniformToRange` (values that float32 rounding would put at hi, or below lo, are moved to the
   * nearest float32 inside). Shape: `shape`.
   */
  uniformTensor(shape: number[], lo = 0, hi = 1): tf.Tensor {
    const n = shape.reduce((p, s) => p * s, 1);
    const v = this.fillUniform(new Float32Array(n));
    if (lo !== 0 || hi !== 1) uniformToRange(v, lo, hi);
    return tf.tensor(v, shape, 'float32');
  }

  /**
   * A float32 tensor of uniforms strictly inside (lo, hi): as `uniformTensor`, with a value that
   * lands on lo moved to the next float32 above it. For inverse-CDF samplers whose transform is
   * infinite at both ends (Laplace: -b sign(u) log(1 - 2|u|) on (-1/2, 1/2)). Shape: `shape`.
   */
  openUniformTensor(shape: number[], lo = 0, hi = 1): tf.Tensor {
    const n = shape.reduce((p, s) => p * s, 1);
    const v = uniformToRange(this.fillUniform(new Float32Array(n)), lo, hi, true);
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

/** 1 - 2^-24: the largest float32 below 1. */
const BELOW_ONE_F32 = 1 - 2 ** -24;

const f32 = new Float32Array(1);
const f32Bits = new Int32Array(f32.buffer);

/** The float32 next to float32 `x` towards +inf (up) or -inf (down). */
function stepF32(x: number, up: boolean): number {
  if (x === 0) return up ? 2 ** -149 : -(2 ** -149);
  f32[0] = x;
  // For positive floats the bit pattern grows with the value; for negative ones it shrinks.
  f32Bits[0] += (x > 0) === up ? 1 : -1;
  return f32[0];
}

/** The largest float32 strictly below the real number x. */
function floatBelow(x: number): number {
  const f = Math.fround(x);
  return f < x ? f : stepF32(f, false);
}

/** The smallest float32 at or above the real number x. */
function floatAtOrAbove(x: number): number {
  const f = Math.fround(x);
  return f >= x ? f : stepF32(f, true);
}

/**
 * Maps uniforms u in [0, 1) to [lo, hi) in place: v = lo + (hi - lo) u rounded to float32, then
 * moved inside when rounding put it outside: a v >= hi becomes the largest float32 below hi (u
 * within ~2^-24 of 1 rounds to hi itself: a Laplace sampler on uniformTensor(-0.5, 0.5) then gave
 * +-inf), and a v < lo (lo not a float32) becomes the smallest float32 >= lo. Values inside are
 * unchanged. Throws when [lo, hi) holds no float32 (lo >= hi included).
 */
export function uniformToRange(v: Float32Array, lo: number, hi: number, open = false): Float32Array {
  const top = floatBelow(hi);
  // With `open`, lo itself is excluded too: the smallest float32 strictly above lo.
  const atOrAbove = floatAtOrAbove(lo);
  const bottom = open && atOrAbove === lo ? stepF32(atOrAbove, true) : atOrAbove;
  if (!(bottom <= top)) {
    throw new Error(`Rng.${open ? 'openUniformTensor' : 'uniformTensor'}: ${open ? '(lo, hi)' : '[lo, hi)'} must hold a float32 value; got lo = ${lo}, hi = ${hi}`);
  }
  const width = hi - lo;
  for (let i = 0; i < v.length; i++) {
    const x = Math.fround(lo + width * v[i]);
    v[i] = x > top ? top : x < bottom ? bottom : x;
  }
  return v;
}

/** The initialisation stream of one plugin: independent of every other plugin's and of training. */
export function initRng(seed: number, slot: string, name: string): Rng {
  return Rng.derive(seed, `init/${slot}/${name}`);
}
