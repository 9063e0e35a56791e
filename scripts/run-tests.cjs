#!/usr/bin/env node
// Runs the compiled test suite twice: with the native addon, and on the pure-TypeScript
// path (TENSORIO_NO_NATIVE=1), since users without a compiler get the second one.
// Fails when either run fails, and when the addon did not build (CI must test it).
// Only the files directly in dist-test/test: test/fixtures/ (real files of other tools, outside
// the repository) is the fixtures suite, run by scripts/run-fixture-tests.cjs.
'use strict';
const { spawnSync } = require('node:child_process');
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

if (!fs.existsSync(path.join(root, 'build', 'Release', 'tensorio.node'))) {
  console.error('run-tests: build/Release/tensorio.node is missing; run `npm run build:native` (the suite tests both paths)');
  process.exit(1);
}

// The oracle environment (real TensorFlow, Keras, safetensors, NumPy 2) is made here once, so
// the test files, which run in parallel, find it ready; when it cannot be made the run fails.
const { ensurePythonEnv } = require('./python-env.cjs');
let oracle;
let torch;
try {
  oracle = ensurePythonEnv('oracle');
  // Real PyTorch for the torch format's tests (test/python/requirements-torch.txt): a CUDA
  // build of about 4.4 GiB that runs on the CPU here, made once like the oracle.
  torch = ensurePythonEnv('torch');
} catch (error) {
  console.error(`run-tests: ${error.message}`);
  process.exit(1);
}

let failed = false;
for (const mode of ['native', 'pure-typescript']) {
  const env = { ...process.env, TENSORIO_TEST_MODE: mode, TENSORIO_ORACLE_PYTHON: oracle, TENSORIO_TORCH_PYTHON: torch };
  if (mode === 'pure-typescript') env.TENSORIO_NO_NATIVE = '1';
  else delete env.TENSORIO_NO_NATIVE;
  console.log(`\n=== tensorio tests: ${mode} path ===`);
  const result = spawnSync(process.execPath, ['--expose-gc', '--test', '--test-concurrency=2', ...files], {
    cwd: root,
    env,
    stdio: 'inherit',
  });
  if (result.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
