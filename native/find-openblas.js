#!/usr/bin/env node
/**
 * Locates OpenBLAS (its cblas.h and libopenblas) for the native kernel pack.
 *
 *   node native/find-openblas.js include   -> the include directory (for binding.gyp)
 *   node native/find-openblas.js libs      -> linker flags, e.g. "-L/usr/lib/... -lopenblas"
 *   node native/find-openblas.js           -> a JSON report
 *
 * Search order: VAELAB_OPENBLAS_INCLUDE / VAELAB_OPENBLAS_LIB (directories; either may be given
 * alone), then `pkg-config openblas`, then the usual Debian/Fedora/Homebrew/source-build places.
 * The header directory must hold both cblas.h and openblas_config.h: the addon calls
 * openblas_set_num_threads and friends, which another BLAS's cblas.h does not declare.
 * Pointing VAELAB_OPENBLAS_INCLUDE at a missing directory makes the search fail (used to test
 * that `npm install` survives a machine without OpenBLAS).
 */
'use strict';
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');

const LIB_NAMES = ['libopenblas.so', 'libopenblas.dylib', 'libopenblas.a'];

function isFile(p) {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

function subdirs(dir) {
  try {
    return fs.readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory() || d.isSymbolicLink()).map((d) => path.join(dir, d.name));
  } catch {
    return [];
  }
}

function isOpenBlasInclude(dir) {
  return isFile(path.join(dir, 'cblas.h')) && isFile(path.join(dir, 'openblas_config.h'));
}

function hasLib(dir) {
  return LIB_NAMES.some((n) => isFile(path.join(dir, n)));
}

/** Include and library directories from `pkg-config openblas`, or null. */
function fromPkgConfig() {
  try {
    const opts = { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 };
    const cflags = execFileSync('pkg-config', ['--cflags-only-I', 'openblas'], opts).trim();
    const libs = execFileSync('pkg-config', ['--libs-only-L', 'openblas'], opts).trim();
    const include = cflags.split(/\s+/).filter((f) => f.startsWith('-I')).map((f) => f.slice(2));
    const lib = libs.split(/\s+/).filter((f) => f.startsWith('-L')).map((f) => f.slice(2));
    return { include, lib };
  } catch {
    return null;
  }
}

function candidateIncludes() {
  const out = [];
  // Debian/Ubuntu multiarch: /usr/include/<triplet>/openblas-{pthread,openmp,serial}/, and the
  // alternatives-managed /usr/include/<triplet>/cblas.h.
  for (const triplet of subdirs('/usr/include')) {
    for (const variant of ['openblas-pthread', 'openblas-openmp', 'openblas-serial', 'openblas64-pthread']) {
      out.push(path.join(triplet, variant));
    }
    out.push(triplet);
  }
  out.push(
    '/usr/include/openblas', // Fedora, Arch
    '/usr/include',
    '/usr/local/include/openblas',
    '/usr/local/include',
    '/opt/OpenBLAS/include', // `make install` from source
    '/opt/homebrew/opt/openblas/include',
    '/usr/local/opt/openblas/include',
  );
  return out;
}

function candidateLibs(includeDir) {
  const out = [];
  if (includeDir) {
    // A source or Homebrew install keeps include/ and lib/ side by side.
    out.push(path.join(path.dirname(includeDir), 'lib'));
  }
  for (const triplet of subdirs('/usr/lib')) {
    out.push(triplet, path.join(triplet, 'openblas-pthread'), path.join(triplet, 'openblas-openmp'), path.join(triplet, 'openblas-serial'));
  }
  out.push('/usr/lib64', '/usr/lib', '/usr/local/lib', '/opt/OpenBLAS/lib', '/opt/homebrew/opt/openblas/lib', '/usr/local/opt/openblas/lib');
  return out;
}

/**
 * Finds OpenBLAS. Returns { ok: true, include, libDir, rpath } or { ok: false, reason }.
 * `rpath` is true when libDir is outside the system library directories, so that the addon
 * finds the library at run time without LD_LIBRARY_PATH.
 */
function findOpenBlas(env = process.env) {
  const includeEnv = env.VAELAB_OPENBLAS_INCLUDE;
  const libEnv = env.VAELAB_OPENBLAS_LIB;
  let include = null;
  if (includeEnv) {
    if (!isOpenBlasInclude(includeEnv)) {
      return { ok: false, reason: `VAELAB_OPENBLAS_INCLUDE=${includeEnv} has no cblas.h with openblas_config.h` };
    }
    include = includeEnv;
  }
  const pc = includeEnv && libEnv ? null : fromPkgConfig();
  if (include === null) {
    include = (pc ? pc.include : []).concat(candidateIncludes()).find(isOpenBlasInclude) || null;
  }
  if (include === null) return { ok: false, reason: 'OpenBLAS headers (cblas.h, openblas_config.h) not found' };

  let libDir = null;
  if (libEnv) {
    if (!hasLib(libEnv)) return { ok: false, reason: `VAELAB_OPENBLAS_LIB=${libEnv} has no ${LIB_NAMES.join(' or ')}` };
    libDir = libEnv;
  } else {
    libDir = (pc ? pc.lib : []).concat(candidateLibs(include)).find(hasLib) || null;
  }
  if (libDir === null) return { ok: false, reason: `OpenBLAS headers found in ${include} but no ${LIB_NAMES.join(' or ')}` };
  const system = /^\/usr\/lib(64)?(\/|$)/.test(libDir);
  return { ok: true, include: include.replace(/\/+$/, ''), libDir: libDir.replace(/\/+$/, ''), rpath: !system };
}

module.exports = { findOpenBlas };

if (require.main === module) {
  const found = findOpenBlas();
  const what = process.argv[2];
  if (what === undefined) {
    process.stdout.write(`${JSON.stringify(found)}\n`);
  } else if (!found.ok) {
    process.stderr.write(`find-openblas: ${found.reason}\n`);
    process.exitCode = 1;
  } else if (what === 'include') {
    process.stdout.write(`${found.include}\n`);
  } else if (what === 'libs') {
    const flags = [`-L${found.libDir}`, '-lopenblas'];
    if (found.rpath) flags.push(`-Wl,-rpath,${found.libDir}`);
    process.stdout.write(`${flags.join(' ')}\n`);
  } else {
    process.stderr.write(`find-openblas: unknown argument "${what}"; expected include, libs or nothing\n`);
    process.exitCode = 2;
  }
}
