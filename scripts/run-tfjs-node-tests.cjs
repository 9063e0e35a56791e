#!/usr/bin/env node
// Runs tensorio's TensorFlow.js tests a second time on @tensorflow/tfjs-node (the `tensorflow`
// backend, TensorFlow's C library), plus the tests only tfjs-node makes possible
// (test/tfjs-node/: its file:// router and file format beside tensorio's).
//
// tfjs-node cannot install here as published (its install script downloads libtensorflow), so
// scripts/tfjs-node-offline.cjs builds it first, once, against the C library of the
// tensorflow-cpu wheel of the oracle venv's TensorFlow version (pip download, cached); the tests
// find it through NODE_PATH, with the repo's @tensorflow/tfjs as its tfjs. The venv's own
// `tensorflow` wheel serves the binding as well, but its CUDA plugins print six lines to stderr
// at every load whatever TF_CPP_MIN_LOG_LEVEL says; tensorflow-cpu prints nothing.
// Like scripts/run-tests.cjs it runs the files on the native and on the pure-TypeScript path,
// and fails when either fails or when tfjs-node cannot be built: it never skips.
//
// Needs `npm run build && npm run build:test` first. Usage:
//   node scripts/run-tfjs-node-tests.cjs [NAME...]   (only files whose name contains NAME)
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const testDir = path.join(root, 'dist-test', 'test');
const only = process.argv.slice(2);
// The tfjs test files that also run on plain tfjs (test/tfjs/), and the tfjs-node-only ones
// (test/tfjs-node/, a top-level folder so that scripts/run-tests.cjs leaves it to this runner).
const files = [path.join(testDir, 'tfjs', 'tfjs.test.js'), path.join(testDir, 'tfjs', 'tfjs-formats.test.js')];
const nodeOnly = path.join(testDir, 'tfjs-node');
if (fs.existsSync(nodeOnly)) files.push(...fs.readdirSync(nodeOnly).filter((n) => n.endsWith('.test.js')).map((n) => path.join(nodeOnly, n)));
const selected = files.filter((f) => only.length === 0 || only.some((o) => path.basename(f).includes(o)));

const missing = files.filter((f) => !fs.existsSync(f));
if (missing.length > 0 || !fs.existsSync(nodeOnly)) {
  console.error(`run-tfjs-node-tests: ${missing.join(', ') || nodeOnly} missing; run \`npm run build && npm run build:test\``);
  process.exit(1);
}
if (!fs.existsSync(path.join(root, 'build', 'Release', 'tensorio.node'))) {
  console.error('run-tfjs-node-tests: build/Release/tensorio.node is missing; run `npm run build:native` (the tests run on both paths)');
  process.exit(1);
}

let oracle;
let tfjsNode;
try {
  oracle = require('./python-env.cjs').ensurePythonEnv('oracle');
  const started = Date.now();
  const pins = fs.readFileSync(path.join(root, 'test', 'python', 'requirements.txt'), 'utf8');
  const version = (pins.match(/^tensorflow==(\S+)\s*$/m) ?? [])[1];
  if (!version) throw new Error('test/python/requirements.txt pins no tensorflow==<version>');
  tfjsNode = require('./tfjs-node-offline.cjs').ensureTfjsNode({ pipDownload: version, python: oracle, log: (line) => console.log(line) });
  console.log(`run-tfjs-node-tests: tfjs-node on TensorFlow ${tfjsNode.tensorflow}, ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
} catch (error) {
  console.error(`run-tfjs-node-tests: ${error.message}`);
  process.exit(1);
}

let failed = false;
for (const mode of ['native', 'pure-typescript']) {
  const env = {
    ...process.env,
    TENSORIO_TEST_MODE: mode,
    TENSORIO_ORACLE_PYTHON: oracle,
    TENSORIO_TFJS: 'node',
    NODE_PATH: tfjsNode.nodePath,
    // TensorFlow's C++ logging (CPU features, plugin registration) would fill the test output.
    TF_CPP_MIN_LOG_LEVEL: process.env.TF_CPP_MIN_LOG_LEVEL ?? '3',
  };
  if (mode === 'pure-typescript') env.TENSORIO_NO_NATIVE = '1';
  else delete env.TENSORIO_NO_NATIVE;
  console.log(`\n=== tensorio tfjs tests on tfjs-node: ${mode} path ===`);
  const result = spawnSync(process.execPath, ['--expose-gc', '--test', '--test-concurrency=2', ...selected], { cwd: root, env, stdio: 'inherit' });
  if (result.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
