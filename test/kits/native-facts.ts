/**
 * What the machine says about vaelab's native kernel pack, found without asking
 * core/backend/native.ts: whether the addon file was built, whether VAELAB_NATIVE=0 disables it,
 * the thread count VAELAB_THREADS asks for, and the OpenBLAS core the pack must report. Tests
 * decide from these which outcome to expect, instead of accepting whichever one occurs.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface NativeFacts {
  /** Where scripts/build-native.js writes the addon. */
  addonFile: string;
  /** The addon file exists. */
  built: boolean;
  /** VAELAB_NATIVE=0 is set. */
  disabled: boolean;
  /** The pack must load: built and not disabled. */
  expectAvailable: boolean;
  /** VAELAB_THREADS, default 1. */
  threads: number;
  /**
   * The OpenBLAS core the pack must run on, or null when OpenBLAS detects it itself: the one named
   * by OPENBLAS_CORETYPE; else on Linux x64 SkylakeX when /proc/cpuinfo lists AVX-512 F, CD, BW, DQ
   * and VL, Haswell when it lists AVX2 and FMA (native.ts forces these because OpenBLAS 0.3.21
   * maps newer CPUs to a slow core).
   */
  core: string | null;
}

function cpuFlags(): Set<string> {
  try {
    const line = /^flags\s*:(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'));
    return new Set(line ? line[1].trim().split(/\s+/) : []);
  } catch {
    return new Set();
  }
}

export function nativeFacts(): NativeFacts {
  const addonFile = path.resolve(__dirname, '..', '..', 'native', 'build', 'Release', 'vaelab_native.node');
  const built = fs.existsSync(addonFile);
  const disabled = process.env.VAELAB_NATIVE === '0';
  const threads = Number(process.env.VAELAB_THREADS || 1);
  let core: string | null = null;
  const userCore = process.env.OPENBLAS_CORETYPE;
  if (userCore) {
    core = userCore;
  } else if (process.platform === 'linux' && process.arch === 'x64') {
    const flags = cpuFlags();
    if (['avx512f', 'avx512cd', 'avx512bw', 'avx512dq', 'avx512vl'].every((f) => flags.has(f))) core = 'SkylakeX';
    else if (flags.has('avx2') && flags.has('fma')) core = 'Haswell';
  }
  return { addonFile, built, disabled, expectAvailable: built && !disabled, threads, core };
}

/**
 * Whether this runtime's WebAssembly has SIMD: validates a module whose one function does
 * i32.const 0, i8x16.splat, drop (the bytes tfjs-backend-wasm's WASM_HAS_SIMD_SUPPORT probe uses).
 */
export function wasmHasSimd(): boolean {
  // typed here: the project's lib setting (ES2022, no DOM) omits the WebAssembly global
  const wasm = (globalThis as { WebAssembly?: { validate(bytes: Uint8Array): boolean } }).WebAssembly;
  return wasm !== undefined && wasm.validate(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 3, 2, 1, 0, 10, 9, 1, 7, 0, 65, 0, 253, 15, 26, 11]));
}
