/**
 * Backend selection: the exact messages for bad names, explicit cpu, and what `auto` picks on a
 * machine without the native tfjs packages (skipped where they are installed).
 */
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
// The cpu backend the after-each hook returns to (registered by the union package).
import '@tensorflow/tfjs';
import { describeBackends, selectBackend } from '../../core/backend/select';
import * as path from 'node:path';
import { NATIVE_HINT, NATIVE_KERNEL_NAMES } from '../../core/backend/native';
import { ConfigError } from '../../core/errors';
import { nativeFacts, wasmHasSimd } from '../kits/native-facts';

const ALLOWED = '"auto", "node-gpu", "node", "wasm", "cpu"';

function installed(pkg: string): boolean {
  try {
    require.resolve(`${pkg}/package.json`);
    return true;
  } catch {
    return false;
  }
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

describe('core/backend/select: selectBackend', () => {
  let savedEnv: string | undefined;

  beforeEach(() => {
    savedEnv = process.env.VAELAB_BACKEND;
    delete process.env.VAELAB_BACKEND;
  });

  afterEach(async () => {
    if (savedEnv === undefined) delete process.env.VAELAB_BACKEND;
    else process.env.VAELAB_BACKEND = savedEnv;
    await tf.setBackend('cpu');
  });

  it('Should reject an unknown backend with the allowed values and a suggestion', async () => {
    const err = await rejection(selectBackend('wsam'));
    expect(err).to.be.instanceOf(ConfigError);
    expect(err.message).to.equal(`--backend: unknown backend "wsam". Allowed values: ${ALLOWED}. Did you mean "wasm"?`);
  });

  it('Should name VAELAB_BACKEND when the unknown value came from the environment', async () => {
    process.env.VAELAB_BACKEND = 'cpux';
    const err = await rejection(selectBackend());
    expect(err.message).to.equal(`VAELAB_BACKEND: unknown backend "cpux". Allowed values: ${ALLOWED}. Did you mean "cpu"?`);
  });

  it('Should leave out the suggestion when no allowed value is close', async () => {
    const err = await rejection(selectBackend('tensorflow'));
    expect(err.message).to.equal(`--backend: unknown backend "tensorflow". Allowed values: ${ALLOWED}`);
  });

  it('Should select cpu and report it in one line', async () => {
    const lines: string[] = [];
    const info = await selectBackend('cpu', { log: (line) => lines.push(line) });
    expect(info).to.deep.equal({ name: 'cpu', tfBackend: 'cpu', detail: 'tfjs-backend-cpu 4.22.0, pure JavaScript' });
    expect(tf.getBackend()).to.equal('cpu');
    expect(lines).to.deep.equal(['backend: cpu (tfjs-backend-cpu 4.22.0, pure JavaScript)']);
  });

  it('Should take the backend from VAELAB_BACKEND when none is requested, and print nothing when quiet', async () => {
    process.env.VAELAB_BACKEND = 'cpu';
    const lines: string[] = [];
    const info = await selectBackend(undefined, { quiet: true, log: (line) => lines.push(line) });
    expect(info.name).to.equal('cpu');
    expect(lines).to.deep.equal([]);
  });

  it('Should say how to install @tensorflow/tfjs-node when "node" is requested but missing', async function () {
    if (installed('@tensorflow/tfjs-node')) this.skip();
    const err = await rejection(selectBackend('node'));
    expect(err).to.be.instanceOf(ConfigError);
    expect(err.message).to.equal(
      '--backend: backend "node" needs @tensorflow/tfjs-node, which is not installed; ' +
        'install it with "npm install @tensorflow/tfjs-node@4.22.0" and allow its install script, which npm 11 ' +
        'skips unless approved ("npm install-scripts approve @tensorflow/tfjs-node", or an "allowScripts" entry in package.json)',
    );
  });

  it('Should fall through to wasm (with the native pack when built) in auto mode without tfjs-node packages', async function () {
    if (installed('@tensorflow/tfjs-node-gpu') || installed('@tensorflow/tfjs-node')) this.skip();
    const lines: string[] = [];
    const info = await selectBackend('auto', { log: (line) => lines.push(line) });
    expect(info.name).to.equal('wasm');
    expect(info.tfBackend).to.equal('wasm');
    expect(lines).to.have.length(1);
    // Which of the three lines is expected follows from facts checked here (test/kits/native-facts.ts):
    // VAELAB_NATIVE=0 -> the plain wasm line; the addon file built -> the native pack's line (a
    // built pack that fails to load fails this test); not built -> the wasm line with the reason.
    const facts = nativeFacts();
    const esc = (t: string) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const wasm = `tfjs-backend-wasm 4.22.0, ${wasmHasSimd() ? 'SIMD' : 'no SIMD'}`;
    const project = 'project kernels: BatchMatMul, Cast, Conv2DBackpropFilter, Conv2DBackpropInput, Identity, Tile, _FusedMatMul';
    if (facts.disabled) {
      expect(lines[0]).to.equal(`backend: wasm (${wasm}, ${project})`);
    } else if (facts.built) {
      const tail = `, ${facts.threads} thread${facts.threads === 1 ? '' : 's'}, ${NATIVE_KERNEL_NAMES.length} kernels; ${wasm})`;
      const m = new RegExp(`^${esc('backend: wasm + native OpenBLAS kernels (OpenBLAS ')}\\d+\\.\\d+\\.\\d+ (\\S+)${esc(tail)}$`).exec(lines[0]);
      expect(m, lines[0]).to.not.equal(null);
      // OpenBLAS's version is not known here; its core is, unless OpenBLAS detects it (facts.core
      // null). OpenBLAS reads OPENBLAS_CORETYPE without regard to case.
      if (facts.core !== null) expect(m![1].toLowerCase()).to.equal(facts.core.toLowerCase());
      // The line gives the count; the names are in the info and in describeBackends (doctor).
      expect(info.native).to.deep.equal([...NATIVE_KERNEL_NAMES]);
      expect(NATIVE_KERNEL_NAMES).to.have.length(25);
      expect(describeBackends()).to.include(NATIVE_KERNEL_NAMES.join(', '));
    } else {
      const reason = `not built (no ${path.relative(process.cwd(), facts.addonFile)}); ${NATIVE_HINT}`;
      expect(lines[0]).to.equal(`backend: wasm (${wasm}, ${project}; native OpenBLAS kernels unavailable: ${reason})`);
      expect(info.native).to.equal(undefined);
    }
  });

  it('Should describe all four backends, with how to get the missing ones', () => {
    const text = describeBackends();
    for (const name of ['node-gpu', 'node', 'wasm', 'cpu']) expect(text).to.match(new RegExp(`^  ${name} +\\S`, 'm'));
    if (!installed('@tensorflow/tfjs-node')) expect(text).to.include('npm install @tensorflow/tfjs-node@4.22.0');
    expect(text).to.match(/^ {2}cpu +available: @tensorflow\/tfjs-backend-cpu 4\.22\.0/m);
  });
});
