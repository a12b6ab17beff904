#!/usr/bin/env node
'use strict';
// Thin launcher: the CLI is compiled to dist/ by `npm run build`.
// Node >= 22.1 can keep compiled code between starts (in the OS temp dir): compiling our
// modules and their dependencies is a fifth of a start. Older Node has no such API.
require('node:module').enableCompileCache?.();
require('../dist/src/cli.js').main(process.argv.slice(2));
