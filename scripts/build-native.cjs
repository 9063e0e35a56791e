#!/usr/bin/env node
// Builds the native addon at install time: cmake-js first (CMakeLists.txt), node-gyp
// (binding.gyp) as the fallback. When neither can build it (no compiler, no cmake), the
// install still succeeds and tensorio runs on its pure-TypeScript path; `--strict` makes
// that a failure instead, for CI and for `npm run build:native`.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const strict = process.argv.includes('--strict');
const addon = path.join(root, 'build', 'Release', 'tensorio.node');

function run(command, args) {
  console.log(`tensorio: ${command} ${args.join(' ')}`);
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', env: process.env });
  return result.status === 0 && fs.existsSync(addon);
}

function cmakeJs() {
  let bin;
  try {
    bin = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
  } catch {
    return false;
  }
  return run(process.execPath, [bin, 'compile', '--log-level', 'warn']);
}

function nodeGyp() {
  // npm tells lifecycle scripts where its bundled node-gyp is.
  const bundled = process.env.npm_config_node_gyp;
  if (bundled && fs.existsSync(bundled)) return run(process.execPath, [bundled, 'rebuild']);
  return run('node-gyp', ['rebuild']);
}

if (process.env.TENSORIO_SKIP_NATIVE_BUILD === '1') {
  console.log('tensorio: TENSORIO_SKIP_NATIVE_BUILD=1, not building the addon');
  process.exit(0);
}
if (cmakeJs() || nodeGyp()) {
  console.log(`tensorio: built ${path.relative(root, addon)}`);
  process.exit(0);
}
const message =
  'tensorio: could not build the native addon (needs a C++17 compiler and cmake or python3 for node-gyp).\n' +
  'tensorio: falling back to the pure-TypeScript path: everything works, but without memory mapping.';
if (strict) {
  console.error(message.replace('falling back', 'would fall back'));
  process.exit(1);
}
console.warn(message);
