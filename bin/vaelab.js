#!/usr/bin/env node
// Entry point of the `vaelab` command. It runs the compiled JavaScript in dist/: the installed
// package ships it, and in a checkout `npm ci` / `npm install` build it (the `prepare` script).
// No TypeScript compiler is loaded at start-up; ts-node is registered later, and only if an
// experiment names a TypeScript plugin module (core/config/plugin-modules.ts).
//
// Stale builds in a checkout: when the sources sit next to dist/ (core/cli.ts exists) and
// dist/ is missing or older than any source file (dist/.built, written by `npm run build`),
// the command runs the sources through ts-node instead (transpile only; `npm test`
// type-checks), silently. So `npx vaelab` after an edit or a `git pull`, and the CLI tests
// (test/cli.test.ts spawns this file), always run the current sources, with no build step
// before `npm test`. `npm run build` makes the fast path current again.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const SOURCE_DIRS = ['core', 'plugins', 'testing'];

/**
 * Whether any .ts file under `dir` was modified after `time` (ms), tests (*.test.ts) and test
 * fixtures (*.fixture.ts) aside: the build does not compile them.
 */
function newerSource(dir, time) {
  let entries;
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return false;
  }
  return entries.some((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return newerSource(p, time);
    return e.name.endsWith('.ts') && !/\.(test|fixture)\.ts$/.test(e.name) && fs.statSync(p).mtimeMs > time;
  });
}

/** In a checkout: true when dist/ is missing or older than a source. Always false when installed. */
function staleBuild() {
  if (!fs.existsSync(path.join(ROOT, 'core', 'cli.ts'))) return false;
  let built;
  try {
    built = fs.statSync(path.join(ROOT, 'dist', '.built')).mtimeMs;
  } catch {
    return true;
  }
  return SOURCE_DIRS.some((d) => newerSource(path.join(ROOT, d), built));
}

let code = path.join(ROOT, 'dist');
if (staleBuild()) {
  require('ts-node').register({ transpileOnly: true, project: path.join(ROOT, 'tsconfig.json') });
  code = ROOT;
}
require('reflect-metadata');
const { main } = require(path.join(code, 'core', 'cli'));
const { plugins } = require(path.join(code, 'plugins'));

main(process.argv.slice(2), plugins).then(
  (exitCode) => {
    process.exitCode = exitCode;
  },
  (e) => {
    process.stderr.write(`${e && e.stack ? e.stack : String(e)}\n`);
    process.exitCode = 1;
  },
);
