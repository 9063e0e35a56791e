#!/usr/bin/env node
// Runs the fixtures suite (every *.test.js under dist-test/test/fixtures): the tests that read
// real files written by other tools, kept outside the repository because they belong to their
// authors. They live in ../shared/fixtures beside the repository, or in the folder named by
// TENSORIO_FIXTURES. Like scripts/run-tests.cjs it runs twice, with the native addon and on the
// pure-TypeScript path, and fails when the folder, the addon or either run is missing or fails.
'use strict';
const { runOnBothPaths } = require('./test-paths.cjs');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const testDir = path.join(root, 'dist-test', 'test', 'fixtures');
const fixtures = path.resolve(process.env.TENSORIO_FIXTURES || path.join(root, '..', 'shared', 'fixtures'));
const only = process.argv.slice(2); // optional file names to run

if (!fs.existsSync(fixtures) || !fs.statSync(fixtures).isDirectory()) {
  console.error(`run-fixture-tests: the fixtures folder ${fixtures} does not exist.`);
  console.error('  Put the third-party files in ../shared/fixtures beside the repository, or set TENSORIO_FIXTURES to their folder.');
  process.exit(1);
}
if (!fs.existsSync(testDir)) {
  console.error(`run-fixture-tests: ${testDir} is missing; run \`npm run build:test\` first`);
  process.exit(1);
}
const files = fs
  .readdirSync(testDir)
  .filter((name) => name.endsWith('.test.js'))
  .filter((name) => only.length === 0 || only.some((o) => name.includes(o)))
  .map((name) => path.join(testDir, name));
if (files.length === 0) {
  console.error(`run-fixture-tests: no test file in ${testDir}${only.length ? ` matches ${only.join(', ')}` : ''}`);
  process.exit(1);
}
runOnBothPaths({
  name: 'run-fixture-tests',
  label: `tensorio fixtures tests (${fixtures})`,
  files,
  env: { TENSORIO_FIXTURES: fixtures },
  pythonEnvs: { oracle: 'TENSORIO_ORACLE_PYTHON' },
});
