#!/usr/bin/env node
/**
 * `npm run build` (and `prepare`, so `npm ci`, `npm install` and `npm pack` run it): compiles
 * core/, plugins/ and testing/ with tsconfig.build.json into dist/ (JavaScript and declarations;
 * no tests, no bench), copies the dashboard's static page (core/dashboard/page/: HTML, JS, CSS,
 * which tsc does not emit) next to its compiled server, then writes dist/.built, the stamp bin/vaelab.js compares with the
 * sources' times in a checkout.
 *
 * It compiles into a fresh directory and swaps it in when tsc succeeds, so a command started
 * during a build sees either the old dist/ or the new one, and a failed build leaves the old one.
 */
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..');
const DIST = path.join(ROOT, 'dist');
const next = path.join(ROOT, `.dist-${process.pid}`);
const old = path.join(ROOT, `.dist-old-${process.pid}`);

const t0 = Date.now();
const tsc = require.resolve('typescript/bin/tsc', { paths: [ROOT] });
const run = spawnSync(process.execPath, [tsc, '-p', path.join(ROOT, 'tsconfig.build.json'), '--outDir', next], { cwd: ROOT, stdio: 'inherit' });
if (run.status !== 0) {
  fs.rmSync(next, { recursive: true, force: true });
  console.error(`vaelab: build failed (tsc exited with ${run.status ?? run.signal}); dist/ left as it was`);
  process.exit(1);
}
fs.cpSync(path.join(ROOT, 'core', 'dashboard', 'page'), path.join(next, 'core', 'dashboard', 'page'), { recursive: true });
fs.writeFileSync(path.join(next, '.built'), `${new Date().toISOString()}\n`);
if (fs.existsSync(DIST)) fs.renameSync(DIST, old);
fs.renameSync(next, DIST);
fs.rmSync(old, { recursive: true, force: true });
console.log(`vaelab: built dist/ in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
