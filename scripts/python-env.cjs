#!/usr/bin/env node
// The Python environment that judges interop: real TensorFlow, Keras 2 (tf-keras) and 3, the
// tensorflowjs converter, safetensors, ml_dtypes, h5py and NumPy 2, from the pinned lists in
// test/python/. `npm test` calls ensurePythonEnv() first; the benches use it too.
//
// One virtual environment per requirements file, in a cache folder named by the file's hash,
// so a clone anywhere (CI's fresh one, a worktree) reuses an environment already built for the
// same pins, and a changed pin builds a new one. The folder is complete only when its stamp
// exists: a build that died half way is built again, never used.
//
// Usage: node scripts/python-env.cjs [oracle]   (prints the interpreter's path)
'use strict';
const { spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');

/** The environments: a name, its pinned list, and a check that it works once built. */
const ENVS = {
  oracle: {
    requirements: path.join(root, 'test', 'python', 'requirements.txt'),
    what: 'TensorFlow, Keras 2 and 3, tensorflowjs, safetensors, h5py, NumPy 2',
    check: 'import numpy, h5py, safetensors, ml_dtypes, tensorflow, tf_keras, keras, tensorflowjs',
  },
  torch: {
    requirements: path.join(root, 'test', 'python', 'requirements-torch.txt'),
    what: 'PyTorch (a CUDA build run on the CPU), safetensors and NumPy 2',
    check: 'import numpy, torch, safetensors.torch; torch.save(torch.zeros(2), __import__("io").BytesIO())',
  },
};

function cacheRoot() {
  if (process.env.TENSORIO_VENV_CACHE) return process.env.TENSORIO_VENV_CACHE;
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'tensorio');
}

/** Where the environment `name` lives for the current pins, and whether it is complete. */
function envLocation(name = 'oracle') {
  const spec = ENVS[name];
  if (!spec) throw new Error(`python-env: unknown environment '${name}'`);
  const pins = fs.readFileSync(spec.requirements);
  const hash = crypto.createHash('sha256').update(pins).digest('hex').slice(0, 12);
  const dir = process.env.TENSORIO_VENV || path.join(cacheRoot(), `python-${name}-${hash}`);
  const python = path.join(dir, 'bin', 'python');
  const stamp = path.join(dir, '.tensorio-ready');
  const ready = fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8').trim() === hash;
  return { dir, python, stamp, hash, ready, spec };
}

function run(command, args, label) {
  // The output of pip goes to a log beside the environment, so a failure can be read in full
  // while npm test's own output stays short.
  const result = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 256 << 20, env: { ...process.env, PIP_DISABLE_PIP_VERSION_CHECK: '1' } });
  if (result.status !== 0) {
    const out = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim().split('\n').slice(-25).join('\n');
    throw new Error(`python-env: ${label} failed (exit ${result.status ?? result.signal}):\n${out || result.error?.message || ''}`);
  }
  return result.stdout;
}

/**
 * Makes the environment when it is missing or its pins changed, and returns its interpreter.
 * Throws when it cannot be made: the suite then fails, it never skips the interop tests.
 */
function ensurePythonEnv(name = 'oracle', { log = (line) => console.log(line) } = {}) {
  const where = envLocation(name);
  if (where.ready) return where.python;
  const started = Date.now();
  const base = process.env.TENSORIO_VENV_PYTHON || 'python3';
  log(`tensorio: making the Python test environment '${name}' (${where.spec.what}) in ${where.dir}; first run or changed pins, a few minutes`);
  fs.rmSync(where.dir, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(where.dir), { recursive: true });
  run(base, ['-m', 'venv', where.dir], `${base} -m venv`);
  // --no-deps: the file pins every package, transitive ones included, so what is installed is
  // exactly what was tested; the resolver would refuse the combination the file pins on purpose
  // (see the comments in the requirements file).
  run(where.python, ['-m', 'pip', 'install', '--quiet', '--no-deps', '--no-input', '-r', where.spec.requirements], 'pip install');
  run(where.python, ['-c', where.spec.check], 'the environment check');
  fs.writeFileSync(where.stamp, `${where.hash}\n`);
  const seconds = ((Date.now() - started) / 1000).toFixed(0);
  const size = run('du', ['-sh', where.dir], 'du').split('\t')[0];
  log(`tensorio: the Python test environment '${name}' is ready (${seconds} s, ${size})`);
  return where.python;
}

module.exports = { ensurePythonEnv, envLocation, ENVS };

if (require.main === module) {
  try {
    const python = ensurePythonEnv(process.argv[2] || 'oracle', { log: (line) => console.error(line) });
    console.log(python);
  } catch (error) {
    console.error(error.message);
    process.exit(1);
  }
}
