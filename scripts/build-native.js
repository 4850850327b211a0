#!/usr/bin/env node
/**
 * Builds vaelab's optional native kernel pack (native/build/Release/vaelab_native.node: an N-API
 * addon linked against OpenBLAS) with node-gyp. Run by `npm install` / `npm ci` (the root
 * package's install script) and by hand: `node scripts/build-native.js`.
 *
 * It never fails the install: whatever goes wrong (no OpenBLAS, no node-gyp, no compiler, no
 * Node headers, a compile error), it prints ONE line saying so and how to get the fast path, and
 * exits 0. vaelab then runs on its pure-wasm kernels. The full compiler output goes to
 * native/build-native.log.
 *
 * Environment:
 *   VAELAB_NATIVE=0            skip the build (and, at run time, the pack)
 *   VAELAB_OPENBLAS_INCLUDE    directory of OpenBLAS's cblas.h (default: searched, see native/find-openblas.js)
 *   VAELAB_OPENBLAS_LIB        directory of libopenblas
 *   npm_config_nodedir         Node headers to build against (npm sets it from `nodedir`); else the
 *                              headers next to this node binary, so node-gyp never downloads them
 */
'use strict';
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const ROOT = path.resolve(__dirname, '..');
const NATIVE = path.join(ROOT, 'native');
const ADDON = path.join(NATIVE, 'build', 'Release', 'vaelab_native.node');
const LOG = path.join(NATIVE, 'build-native.log');
const RETRY = 'node scripts/build-native.js';
const HINT = `for the fast path install OpenBLAS ("sudo apt-get install libopenblas-dev", or "brew install openblas") and run "${RETRY}"`;

function say(line) {
  // npm shows the install script's output; one line, whatever happened.
  console.log(`vaelab: ${line}`);
}

function rel(p) {
  return path.relative(ROOT, p) || '.';
}

function exists(p) {
  try {
    fs.accessSync(p);
    return true;
  } catch {
    return false;
  }
}

/** node-gyp's CLI script: npm's own copy (npm passes it as npm_config_node_gyp), or one installed near node. */
function findNodeGyp() {
  const fromNpm = process.env.npm_config_node_gyp;
  if (fromNpm && exists(fromNpm)) return fromNpm;
  const bin = path.dirname(process.execPath);
  const paths = [
    path.join(bin, '..', 'lib', 'node_modules', 'npm', 'node_modules'), // Unix installs: <prefix>/lib/node_modules/npm
    path.join(bin, 'node_modules', 'npm', 'node_modules'), // Windows installs: <prefix>/node_modules/npm
    path.join(bin, '..', 'lib', 'node_modules'), // a global `npm install -g node-gyp`
    ROOT,
  ];
  for (const p of paths) {
    try {
      return require.resolve('node-gyp/bin/node-gyp.js', { paths: [p] });
    } catch {
      // try the next place
    }
  }
  return null;
}

/** Node headers to build against without downloading: npm's nodedir, else the ones installed with this node. */
function findNodeDir() {
  const configured = process.env.npm_config_nodedir;
  if (configured && exists(path.join(configured, 'include', 'node', 'node_api.h'))) return configured;
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  if (exists(path.join(prefix, 'include', 'node', 'node_api.h')) && exists(path.join(prefix, 'include', 'node', 'common.gypi'))) return prefix;
  return null; // node-gyp falls back to its header cache (and downloads only when online)
}

/** The line of node-gyp's output that best says why the build failed. */
function failureLine(text) {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  if (/network connectivity|ENOTFOUND|EAI_AGAIN|ECONNREFUSED|install got an error/.test(text)) {
    return 'node-gyp needed the Node headers and could not download them; point npm_config_nodedir at a directory holding include/node/node_api.h';
  }
  const pick = (re) => lines.find((l) => re.test(l));
  const line =
    pick(/(fatal )?error: /) || // the compiler
    pick(/undefined reference|cannot find -l|ld returned/) || // the linker
    pick(/^gyp ERR! stack Error: /) ||
    pick(/error|not found|cannot|No such file/i) ||
    lines[lines.length - 1] ||
    'no output';
  return line.replace(/^gyp ERR! (stack )?/, '').slice(0, 200);
}

function main() {
  if (process.env.VAELAB_NATIVE === '0') {
    say('native OpenBLAS kernel pack skipped (VAELAB_NATIVE=0)');
    return;
  }
  const { findOpenBlas } = require(path.join(NATIVE, 'find-openblas.js'));
  const blas = findOpenBlas();
  if (!blas.ok) {
    say(`native OpenBLAS kernel pack not built: ${blas.reason}; training uses the slower wasm kernels; ${HINT}`);
    return;
  }
  const gyp = findNodeGyp();
  if (gyp === null) {
    say(`native OpenBLAS kernel pack not built: node-gyp not found (it ships with npm); install it with "npm install -g node-gyp" and run "${RETRY}"`);
    return;
  }
  const nodedir = findNodeDir();
  const args = [gyp, 'rebuild', `--directory=${NATIVE}`, '--loglevel=warn'];
  if (nodedir !== null) args.push(`--nodedir=${nodedir}`);
  const t0 = Date.now();
  const run = spawnSync(process.execPath, args, { cwd: NATIVE, encoding: 'utf8', timeout: 3 * 60 * 1000, env: process.env });
  const output = `$ ${process.execPath} ${args.join(' ')}\n${run.stdout || ''}${run.stderr || ''}${run.error ? `\n${run.error.message}\n` : ''}`;
  try {
    fs.writeFileSync(LOG, output);
  } catch {
    // the log is a convenience
  }
  if (run.error || run.status !== 0 || !exists(ADDON)) {
    const why = run.error ? run.error.message : failureLine(output);
    say(`native OpenBLAS kernel pack not built: node-gyp failed (${why}; full log: ${rel(LOG)}); training uses the slower wasm kernels; fix the cause and run "${RETRY}"`);
    return;
  }
  // Load it in a child, so that a library missing at run time is reported now, not at training time.
  const probe = spawnSync(process.execPath, ['-e', `process.stdout.write(require(${JSON.stringify(ADDON)}).info().config)`], {
    encoding: 'utf8',
    timeout: 60 * 1000,
  });
  if (probe.status !== 0) {
    const why = failureLine(`${probe.stderr || ''}${probe.error ? probe.error.message : ''}`);
    // Removed, so that vaelab does not try to load it: a missing symbol can kill the process.
    try {
      fs.rmSync(ADDON, { force: true });
    } catch {
      // nothing more to do
    }
    say(`native OpenBLAS kernel pack built but does not load (${why}), so it was removed; training uses the slower wasm kernels; fix the cause and run "${RETRY}"`);
    return;
  }
  const version = (/OpenBLAS [0-9.]+/.exec(probe.stdout) || ['OpenBLAS'])[0];
  say(`built the native OpenBLAS kernel pack (${rel(ADDON)}, ${version} from ${blas.libDir}, ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
}

try {
  main();
} catch (err) {
  say(`native OpenBLAS kernel pack not built: ${String(err && err.message ? err.message : err).split('\n')[0]}; ${HINT}`);
}
process.exitCode = 0;
