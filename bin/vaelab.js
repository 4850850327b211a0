#!/usr/bin/env node
// Entry point of the `vaelab` command: compiles the TypeScript sources on the fly (transpile
// only; `npm test` type-checks), then runs the CLI with the built-in plugins.
'use strict';
const path = require('node:path');
require('ts-node').register({ transpileOnly: true, project: path.join(__dirname, '..', 'tsconfig.json') });
require('reflect-metadata');
const { main } = require('../core/cli');
const { plugins } = require('../plugins');

main(process.argv.slice(2), plugins).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`${e && e.stack ? e.stack : String(e)}\n`);
    process.exitCode = 1;
  },
);
