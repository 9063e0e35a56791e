#!/usr/bin/env node
// Runs the compiled test suite twice: with the native addon, and on the pure-TypeScript
// path (TENSORIO_NO_NATIVE=1), since users without a compiler get the second one.
// Fails when either run fails, and when the addon did not build (CI must test it).
// Only the files directly in dist-test/test: test/fixtures/ (real files of other tools, outside
// the repository) is the fixtures suite, run by scripts/run-fixture-tests.cjs.
'use strict';
const { runOnBothPaths } = require('./test-paths.cjs');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const testDir = path.join(root, 'dist-test', 'test');
const only = process.argv.slice(2); // optional file names to run
const files = fs
  .readdirSync(testDir)
  .filter((name) => name.endsWith('.test.js') && fs.statSync(path.join(testDir, name)).isFile())
  .filter((name) => only.length === 0 || only.some((o) => name.includes(o)))
  .map((name) => path.join(testDir, name));

// Real TensorFlow, Keras, safetensors and NumPy 2 (the oracle), and real PyTorch
// (test/python/requirements-torch.txt: a CUDA build of about 4.4 GiB that runs on the CPU here).
runOnBothPaths({
  name: 'run-tests',
  label: 'tensorio tests',
  files,
  pythonEnvs: { oracle: 'TENSORIO_ORACLE_PYTHON', torch: 'TENSORIO_TORCH_PYTHON' },
});
