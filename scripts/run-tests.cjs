#!/usr/bin/env node
// Runs the compiled test suite twice: with the native addon, and on the pure-TypeScript
// path (TENSORIO_NO_NATIVE=1), since users without a compiler get the second one.
// Fails when either run fails, and when the addon did not build (CI must test it).
// Every *.test.js below dist-test/test (the tests mirror the source tree), except two folders
// with runners of their own: test/fixtures/ (real files of other tools, outside the
// repository: scripts/run-fixture-tests.cjs) and test/tfjs-node/ (scripts/run-tfjs-node-tests.cjs).
'use strict';
const { runOnBothPaths } = require('./test-paths.cjs');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const testDir = path.join(root, 'dist-test', 'test');
const only = process.argv.slice(2); // optional file names to run
const OWN_RUNNERS = new Set(['fixtures', 'tfjs-node']);
function testFiles(dir, top) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return top && OWN_RUNNERS.has(entry.name) ? [] : testFiles(full, false);
    return entry.isFile() && entry.name.endsWith('.test.js') ? [full] : [];
  });
}
const files = testFiles(testDir, true)
  .filter((file) => only.length === 0 || only.some((o) => path.relative(testDir, file).includes(o)))
  .sort();
// node --test with no file runs every test it finds, fixtures included: never hand it none.
if (files.length === 0) {
  console.error(`run-tests: no test file below ${testDir}${only.length ? ` matches ${only.join(', ')}` : ''}`);
  process.exit(1);
}

// Real TensorFlow, Keras, safetensors and NumPy 2 (the oracle), and real PyTorch
// (test/python/requirements-torch.txt: a CUDA build of about 4.4 GiB that runs on the CPU here).
runOnBothPaths({
  name: 'run-tests',
  label: 'tensorio tests',
  files,
  pythonEnvs: { oracle: 'TENSORIO_ORACLE_PYTHON', torch: 'TENSORIO_TORCH_PYTHON' },
});
