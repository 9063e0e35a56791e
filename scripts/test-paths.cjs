// What both test runners (scripts/run-tests.cjs, scripts/run-fixture-tests.cjs) share: the
// addon must be built (the suites test both paths), the Python environments are made once before
// the test files, which run in parallel, look for them, and every file runs twice: with the
// native addon, and on the pure-TypeScript path (TENSORIO_NO_NATIVE=1) users without a compiler get.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');

/**
 * Runs `files` on both paths with `env` added; exits the process with 1 when the addon is
 * missing, an environment cannot be made, or either run fails, else with 0.
 * `pythonEnvs` maps an environment name of scripts/python-env.cjs to the variable that names
 * its interpreter for the tests.
 */
function runOnBothPaths({ name, label, files, env: extra = {}, pythonEnvs = {} }) {
  if (!fs.existsSync(path.join(root, 'build', 'Release', 'tensorio.node'))) {
    console.error(`${name}: build/Release/tensorio.node is missing; run \`npm run build:native\` (the suite tests both paths)`);
    process.exit(1);
  }
  const { ensurePythonEnv } = require('./python-env.cjs');
  const pythons = {};
  try {
    for (const [envName, variable] of Object.entries(pythonEnvs)) pythons[variable] = ensurePythonEnv(envName);
  } catch (error) {
    console.error(`${name}: ${error.message}`);
    process.exit(1);
  }
  let failed = false;
  for (const mode of ['native', 'pure-typescript']) {
    const env = { ...process.env, ...extra, ...pythons, TENSORIO_TEST_MODE: mode };
    if (mode === 'pure-typescript') env.TENSORIO_NO_NATIVE = '1';
    else delete env.TENSORIO_NO_NATIVE;
    console.log(`\n=== ${label}: ${mode} path ===`);
    const result = spawnSync(process.execPath, ['--expose-gc', '--test', '--test-concurrency=2', ...files], { cwd: root, env, stdio: 'inherit' });
    if (result.status !== 0) failed = true;
  }
  process.exit(failed ? 1 : 0);
}

module.exports = { runOnBothPaths };
