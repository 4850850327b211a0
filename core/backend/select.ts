/**
 * Chooses and initialises the TensorFlow.js backend a run uses.
 *
 * Order for `auto`: `@tensorflow/tfjs-node-gpu`, `@tensorflow/tfjs-node` (native libtensorflow,
 * both register tf backend 'tensorflow'), then wasm (with vaelab's training kernels, see
 * wasm-kernels.ts, and, when built, the native OpenBLAS kernel pack over them, see native.ts;
 * VAELAB_NATIVE=0 leaves the pack out), then the pure-JS cpu backend. The native packages are
 * optional and are only ever loaded with a dynamic `require`, so nothing here needs them
 * installed or typed.
 * Backend packages are loaded lazily: importing this module changes no tf state.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, unknownValueMessage } from '../errors';
import { NATIVE_HINT, NATIVE_KERNEL_NAMES, installNativeKernels, nativeStatus } from './native';
import { installWasmKernels } from './wasm-kernels';

/** A backend vaelab can run on, fastest first. */
export type BackendName = 'node-gpu' | 'node' | 'wasm' | 'cpu';

/** What `--backend` and `VAELAB_BACKEND` accept. */
export const BACKEND_CHOICES = ['auto', 'node-gpu', 'node', 'wasm', 'cpu'] as const;

/** The backend in use after `selectBackend`. */
export interface BackendInfo {
  name: BackendName;
  /** `tf.getBackend()`: 'tensorflow' for node and node-gpu, else the same as `name`. */
  tfBackend: string;
  /**
   * Package, version and features, e.g. `tfjs-backend-wasm 4.22.0, SIMD, project kernels: ...`;
   * in auto mode followed by `; skipped node: <why>` for each installed backend that failed to load.
   */
  detail: string;
  /** On wasm with the native OpenBLAS kernel pack: the kernels it replaced, sorted; absent otherwise. */
  native?: string[];
}

/** Options of `selectBackend`. */
export interface SelectBackendOptions {
  /** Print nothing (default false). */
  quiet?: boolean;
  /** Where the one-line `backend: ...` report goes (default console.error). */
  log?: (line: string) => void;
}

/** The tfjs version every backend package must match (tfjs-core's). */
const TFJS_VERSION = tf.version_core;

const NATIVE: Record<'node-gpu' | 'node', { pkg: string; extra: string }> = {
  'node-gpu': { pkg: '@tensorflow/tfjs-node-gpu', extra: 'Linux x86-64 with CUDA 11.2 and cuDNN 8.1' },
  node: { pkg: '@tensorflow/tfjs-node', extra: 'Linux/macOS/Windows x86-64 or Linux arm64' },
};

/** How to install a native package, in one sentence (used by errors and `describeBackends`). */
function installHint(pkg: string): string {
  return (
    `install it with "npm install ${pkg}@${TFJS_VERSION}" and allow its install script, which npm 11 ` +
    `skips unless approved ("npm install-scripts approve ${pkg}", or an "allowScripts" entry in package.json)`
  );
}

type NativeLoad =
  | { ok: true; version: string }
  | { ok: false; missing: boolean; reason: string };

/** Requires a native tfjs package by a computed name, so TypeScript never resolves it. */
function loadNative(pkg: string): NativeLoad {
  const load: NodeRequire = require;
  try {
    load(pkg);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const missing = e.code === 'MODULE_NOT_FOUND' && e.message.includes(`'${pkg}'`);
    return { ok: false, missing, reason: firstLine(e.message) };
  }
  let version = '?';
  try {
    version = String((load(`${pkg}/package.json`) as { version: unknown }).version);
  } catch {
    // The version is only reported; a package without a readable manifest still works.
  }
  return { ok: true, version };
}

function firstLine(text: string): string {
  return text.split('\n')[0].trim();
}

async function tryNative(name: 'node-gpu' | 'node'): Promise<BackendInfo | { error: string; missing: boolean }> {
  const { pkg } = NATIVE[name];
  const loaded = loadNative(pkg);
  if (!loaded.ok) return { error: loaded.reason, missing: loaded.missing };
  // The package registers 'tensorflow' on the tfjs-core copy it resolves; if that is not ours
  // (a version mismatch gives npm no way to dedupe), our engine has no such backend.
  if (tf.findBackendFactory('tensorflow') === null) {
    return {
      error: `it loaded but registered no "tensorflow" backend with this @tensorflow/tfjs-core ${TFJS_VERSION} (is it ${loaded.version}, not ${TFJS_VERSION}?)`,
      missing: false,
    };
  }
  if (!(await tf.setBackend('tensorflow'))) {
    return { error: 'the "tensorflow" backend failed to initialise (see the warning above)', missing: false };
  }
  return { name, tfBackend: tf.getBackend(), detail: `${pkg.replace('@tensorflow/', '')} ${loaded.version}, libtensorflow` };
}

async function tryWasm(): Promise<BackendInfo | { error: string }> {
  let version: string;
  try {
    // Under Node the package's Emscripten loader finds the .wasm files next to its own script
    // (node_modules/@tensorflow/tfjs-backend-wasm/dist/), so setWasmPaths is not needed.
    version = (await import('@tensorflow/tfjs-backend-wasm')).version_wasm;
  } catch (err) {
    return { error: firstLine((err as Error).message) };
  }
  if (!(await tf.setBackend('wasm'))) return { error: 'the wasm module failed to initialise (see the warning above)' };
  const kernels = installWasmKernels();
  const simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) ? 'SIMD' : 'no SIMD';
  const wasm = `tfjs-backend-wasm ${version}, ${simd}`;
  // Throws a ConfigError for a bad VAELAB_THREADS; [] when the pack is unavailable.
  const native = installNativeKernels();
  const status = nativeStatus();
  if (native.length > 0) {
    const threads = `${status.threads} thread${status.threads === 1 ? '' : 's'}`;
    // The kernel names are in `native` and in `npx vaelab doctor`; the line gives their count.
    return { name: 'wasm', tfBackend: tf.getBackend(), detail: `${status.blas}, ${threads}, ${native.length} kernels; ${wasm}`, native };
  }
  // Disabled on purpose (VAELAB_NATIVE=0): the plain report. Otherwise say why it is missing.
  const missing = process.env.VAELAB_NATIVE === '0' ? '' : `; native OpenBLAS kernels unavailable: ${status.reason}`;
  return { name: 'wasm', tfBackend: tf.getBackend(), detail: `${wasm}, project kernels: ${kernels.join(', ')}${missing}` };
}

/** The report's name part: `wasm + native OpenBLAS kernels` when the pack is in use. */
function reportName(info: BackendInfo): string {
  return info.native !== undefined ? `${info.name} + native OpenBLAS kernels` : info.name;
}

async function useCpu(): Promise<BackendInfo> {
  const { version_cpu: version } = await import('@tensorflow/tfjs-backend-cpu');
  if (!(await tf.setBackend('cpu'))) throw new Error('selectBackend: the cpu backend failed to initialise');
  return { name: 'cpu', tfBackend: tf.getBackend(), detail: `tfjs-backend-cpu ${version}, pure JavaScript` };
}

/**
 * Initialises a TensorFlow.js backend and makes it the current one.
 *
 * `requested`: 'auto' | 'node-gpu' | 'node' | 'wasm' | 'cpu'; when undefined, the environment
 * variable VAELAB_BACKEND, else 'auto'. `auto` takes the first of node-gpu, node, wasm, cpu that
 * loads. A backend asked for by name must load, or a ConfigError says why and how to fix it.
 * Prints one line `backend: <name> (<detail>)` through `opts.log` unless `opts.quiet`; on wasm
 * with the native pack, `backend: wasm + native OpenBLAS kernels (OpenBLAS 0.3.21 SkylakeX,
 * 1 thread, 25 kernels; tfjs-backend-wasm 4.22.0, SIMD)` (the names: BackendInfo.native).
 */
export async function selectBackend(requested?: string, opts: SelectBackendOptions = {}): Promise<BackendInfo> {
  const env = process.env.VAELAB_BACKEND;
  const fromEnv = requested === undefined && env !== undefined && env !== '';
  const key = fromEnv ? 'VAELAB_BACKEND' : '--backend';
  const choice = requested ?? (fromEnv ? env : 'auto');
  if (!(BACKEND_CHOICES as readonly string[]).includes(choice)) {
    throw new ConfigError(unknownValueMessage(key, 'backend', choice, BACKEND_CHOICES));
  }

  let info: BackendInfo | undefined;
  if (choice === 'node-gpu' || choice === 'node') {
    const r = await tryNative(choice);
    if ('error' in r) {
      const { pkg } = NATIVE[choice];
      throw new ConfigError(
        r.missing
          ? `${key}: backend "${choice}" needs ${pkg}, which is not installed; ${installHint(pkg)}`
          : `${key}: backend "${choice}": ${pkg} is installed but cannot be used: ${r.error}`,
      );
    }
    info = r;
  } else if (choice === 'wasm') {
    const r = await tryWasm();
    if ('error' in r) throw new ConfigError(`${key}: backend "wasm" cannot be used: ${r.error}`);
    info = r;
  } else if (choice === 'cpu') {
    info = await useCpu();
  } else {
    // Packages that are installed but unusable are named in the report: a silent fall-through
    // to a 10x slower backend would be hard to notice. Packages that are absent are not.
    const skipped: string[] = [];
    for (const name of ['node-gpu', 'node'] as const) {
      const r = await tryNative(name);
      if (!('error' in r)) {
        info = r;
        break;
      }
      if (!r.missing) skipped.push(`skipped ${name}: ${r.error}`);
    }
    if (info === undefined) {
      const r = await tryWasm();
      if ('error' in r) skipped.push(`skipped wasm: ${r.error}`);
      info = 'error' in r ? await useCpu() : r;
    }
    if (skipped.length > 0) info = { ...info, detail: `${info.detail}; ${skipped.join('; ')}` };
  }

  if (!opts.quiet) (opts.log ?? ((line: string) => console.error(line)))(`backend: ${reportName(info)} (${info.detail})`);
  return info;
}

/** The directory of an installed package, or null (resolves its manifest; loads nothing). */
function packageDir(pkg: string): string | null {
  try {
    return path.dirname(require.resolve(`${pkg}/package.json`));
  } catch {
    return null;
  }
}

function packageVersion(dir: string): string {
  try {
    return String((JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version: unknown }).version);
  } catch {
    return '?';
  }
}

/** Whether a native tfjs package's install script has run: it leaves an N-API addon under lib/. */
function hasNativeBinding(dir: string): boolean {
  const lib = path.join(dir, 'lib');
  try {
    return fs.readdirSync(lib).some((d) => d.startsWith('napi-v') && fs.existsSync(path.join(lib, d, 'tfjs_binding.node')));
  } catch {
    return false;
  }
}

/** The WebAssembly global, typed here because the project's lib setting (ES2022, no DOM) omits it. */
const wasmGlobal = (globalThis as { WebAssembly?: { validate(bytes: Uint8Array): boolean } }).WebAssembly;

/** Whether this runtime validates a WebAssembly module that uses a SIMD instruction. */
function wasmSimdSupported(): boolean {
  if (wasmGlobal === undefined) return false;
  // A module with one function `() -> ()` whose body is `v128.const 0; drop`.
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
    0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type section: one type, func () -> ()
    0x03, 0x02, 0x01, 0x00, // function section: one function of type 0
    0x0a, 0x17, 0x01, 0x15, 0x00, 0xfd, 0x0c, ...new Array<number>(16).fill(0), 0x1a, 0x0b, // code
  ];
  try {
    return wasmGlobal.validate(new Uint8Array(bytes));
  } catch {
    return false;
  }
}

/** The native kernel pack's line of `describeBackends`. */
function describeNative(): string {
  const status = nativeStatus();
  if (status.available) {
    const threads = `${status.threads} thread${status.threads === 1 ? '' : 's'}`;
    return (
      `+ native OpenBLAS kernels: available (${status.blas}, ${threads}; set VAELAB_THREADS to change): ` +
      `${NATIVE_KERNEL_NAMES.join(', ')} and the Adam step on the wasm heap, used with wasm unless VAELAB_NATIVE=0`
    );
  }
  if (process.env.VAELAB_NATIVE === '0') return '+ native OpenBLAS kernels: disabled by VAELAB_NATIVE=0 (unset it to use them)';
  const fix = status.reason.includes(NATIVE_HINT) ? '' : `; to build them, ${NATIVE_HINT}`;
  return `+ native OpenBLAS kernels (the fastest way to train on wasm): unavailable: ${status.reason}${fix}`;
}

/**
 * A report of the four backends: which are usable here, and how to get the missing ones, with
 * the status of the native OpenBLAS kernel pack for wasm.
 * Loads no backend (safe to call before or after `selectBackend`); a native package that is
 * installed is only checked for its addon, `selectBackend` shows whether it really loads. The
 * kernel pack's addon is loaded (that registers nothing).
 */
export function describeBackends(): string {
  const lines = ['Backends, fastest first ("auto" takes the first that loads):'];
  for (const name of ['node-gpu', 'node'] as const) {
    const { pkg, extra } = NATIVE[name];
    const dir = packageDir(pkg);
    let status: string;
    if (dir === null) status = `not installed: ${installHint(pkg)}; needs ${extra}`;
    else if (!hasNativeBinding(dir)) {
      status = `${pkg} ${packageVersion(dir)} is installed but its install script has not run (no lib/napi-v*/tfjs_binding.node): approve it ("npm install-scripts approve ${pkg}") and run "npm rebuild ${pkg}"`;
    } else status = `installed: ${pkg} ${packageVersion(dir)} with its native addon`;
    lines.push(`  ${name.padEnd(8)} ${status}`);
  }
  const wasmDir = packageDir('@tensorflow/tfjs-backend-wasm');
  const wasmStatus =
    wasmGlobal === undefined
      ? 'unavailable: this runtime has no WebAssembly'
      : wasmDir === null
        ? `not installed: npm install @tensorflow/tfjs-backend-wasm@${TFJS_VERSION}`
        : `available: @tensorflow/tfjs-backend-wasm ${packageVersion(wasmDir)}, ${wasmSimdSupported() ? 'SIMD' : 'no SIMD'}, single-threaded under Node, with vaelab's matMul and conv-gradient kernels`;
  lines.push(`  ${'wasm'.padEnd(8)} ${wasmStatus}`);
  lines.push(`  ${''.padEnd(8)} ${describeNative()}`);
  const cpuDir = packageDir('@tensorflow/tfjs-backend-cpu');
  lines.push(
    `  ${'cpu'.padEnd(8)} ${cpuDir === null ? `not installed: npm install @tensorflow/tfjs-backend-cpu@${TFJS_VERSION}` : `available: @tensorflow/tfjs-backend-cpu ${packageVersion(cpuDir)}, pure JavaScript (slowest)`}`,
  );
  lines.push(
    'The tfjs-node install script downloads libtensorflow 2.9.1 and a prebuilt addon from Google storage, not from npm. ' +
      'Behind a proxy set HTTPS_PROXY; offline, mirror both archives and set TFJS_NODE_BASE_URI (or TFJS_NODE_CDN_STORAGE) ' +
      'and npm_config_tfjs_binding_binary_host_mirror, or pre-populate node_modules/@tensorflow/tfjs-node/deps/lib/.',
  );
  lines.push('Choose with --backend <auto|node-gpu|node|wasm|cpu> or VAELAB_BACKEND.');
  return lines.join('\n');
}
