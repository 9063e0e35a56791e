#!/usr/bin/env node
// Loading a Keras .h5 into a TensorFlow.js model, against h5py reading the same datasets
// and against h5wasm's own dataset reads, each trial in a fresh process, with peak RSS.
//
//   node bench/keras.mjs             # 1 GiB file (4 x 256 MiB kernels), 3 trials each
//   node bench/keras.mjs --big       # also: 3 GiB (12 x 256 MiB) save and load, peak RSS
//   node bench/keras.mjs --size-mib 256 --trials 1   # a quick run
//   --no-keras leaves out Keras's own load_weights (the oracle venv's tf-keras), which is
//   otherwise a peer whenever that venv exists
//
// Files are read warm (they were just written and sit in the page cache; this machine does
// not let us drop caches), so the numbers compare parsing and copying, not the disk.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const PYTHON = process.env.TENSORIO_PYTHON ?? '/usr/bin/python3';
const MiB = 1 << 20;

function maxRssMiB() {
  return process.resourceUsage().maxRSS / 1024;
}

// ---- trials (run in a child process) ----------------------------------------------------

async function trial(kind, file, layers, units) {
  const tensorio = require(path.join(root, 'dist', 'index.js'));
  if (kind === 'tensorio-read' || kind === 'tensorio-mmap') {
    const t0 = performance.now();
    const weights = await tensorio.readKerasWeights(file, { mmap: kind === 'tensorio-mmap' });
    let bytes = 0;
    for (const layer of weights.layers) for (const w of layer.weights) bytes += w.array.data.byteLength;
    return { ms: performance.now() - t0, bytes, rssMiB: maxRssMiB() };
  }
  if (kind === 'tensorio-tfjs' || kind === 'tensorio-tfjs-mmap') {
    const tf = require('@tensorflow/tfjs');
    const { loadWeights } = require(path.join(root, 'dist', 'tfjs', 'index.js'));
    // Zero initializers: an untouched zero-filled buffer is not resident, so the RSS shows
    // what loading costs rather than what random initialisation costs.
    const model = tf.sequential();
    for (let i = 0; i < layers; i++) {
      model.add(tf.layers.dense({ units, inputShape: i === 0 ? [units] : undefined, kernelInitializer: 'zeros', name: `dense_${i}` }));
    }
    const rssBefore = process.memoryUsage().rss / MiB;
    const t0 = performance.now();
    await loadWeights(model, file, { mmap: kind === 'tensorio-tfjs-mmap' });
    const ms = performance.now() - t0;
    const check = model.layers[layers - 1].getWeights()[0].dataSync()[0];
    return { ms, rssMiB: maxRssMiB(), rssBeforeMiB: rssBefore, check };
  }
  if (kind === 'h5wasm') {
    const { default: h5wasm } = await import('h5wasm/node');
    await h5wasm.ready;
    const t0 = performance.now();
    const f = new h5wasm.File(file, 'r');
    let bytes = 0;
    for (const layer of f.get_attribute('layer_names', false)) {
      const names = f.get(layer).get_attribute('weight_names', false);
      for (const name of Array.isArray(names) ? names : []) bytes += f.get(`${layer}/${name}`).value.byteLength;
    }
    f.close();
    return { ms: performance.now() - t0, bytes, rssMiB: maxRssMiB() };
  }
  if (kind === 'save-big') {
    const { writeKerasWeights } = tensorio;
    const per = units * units;
    const list = [];
    for (let i = 0; i < layers; i++) {
      const data = new Float32Array(per);
      data.fill(i + 0.5); // every page touched: the RSS counts all of the data
      const bias = { dtype: 'float32', shape: [units], data: new Float32Array(units).fill(i) };
      list.push({ name: `dense_${i}`, weights: [{ name: `dense_${i}/kernel:0`, array: { dtype: 'float32', shape: [units, units], data } }, { name: `dense_${i}/bias:0`, array: bias }] });
    }
    const rssBefore = process.memoryUsage().rss / MiB;
    const t0 = performance.now();
    await writeKerasWeights(file, list, { fsync: false });
    return { ms: performance.now() - t0, rssMiB: maxRssMiB(), rssBeforeMiB: rssBefore };
  }
  throw new Error(`unknown trial ${kind}`);
}

const H5PY_READ = `
import sys, time, json, resource, h5py, numpy as np
t0 = time.perf_counter()
n = 0
kept = []  # every array stays alive, as it does when loading a model
with h5py.File(sys.argv[1], 'r') as f:
    for layer in [x.decode('utf8') for x in f.attrs['layer_names']]:
        g = f[layer]
        for name in [x.decode('utf8') for x in g.attrs['weight_names']]:
            a = g[name][()]
            kept.append(a)
            n += a.nbytes
ms = (time.perf_counter() - t0) * 1000
print(json.dumps({'ms': ms, 'bytes': n, 'rssMiB': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
`;

// Keras 2 (tf-keras) itself: the chapter's `net2.load_weights(...)`, into a Sequential model of
// the same Dense layers built before the clock starts. Runs in the oracle venv (TensorFlow).
const KERAS_LOAD = `
import os, sys, time, json, resource
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
import tf_keras as keras
layers, units = int(sys.argv[2]), int(sys.argv[3])
model = keras.Sequential([keras.Input((units,))] + [keras.layers.Dense(units) for _ in range(layers)])
rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t0 = time.perf_counter()
model.load_weights(sys.argv[1])
ms = (time.perf_counter() - t0) * 1000
print(json.dumps({'ms': ms, 'rssMiB': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 'rssBeforeMiB': rss_before}))
`;

/** The oracle venv's Python (TensorFlow, tf-keras), or undefined when it is not built. */
function oraclePython() {
  if (process.env.TENSORIO_ORACLE_PYTHON) return process.env.TENSORIO_ORACLE_PYTHON;
  const cache = path.join(os.homedir(), '.cache', 'tensorio');
  if (!fs.existsSync(cache)) return undefined;
  const name = fs.readdirSync(cache).sort().find((n) => n.startsWith('python-oracle-') && fs.existsSync(path.join(cache, n, 'bin', 'python')));
  return name && path.join(cache, name, 'bin', 'python');
}

const H5PY_WRITE = `
import sys, numpy as np, h5py
layers, units = int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
with h5py.File(sys.argv[1], 'w') as f:
    f.attrs['layer_names'] = np.array([('dense_%d' % i).encode() for i in range(layers)])
    f.attrs['backend'] = b'tensorflow'
    f.attrs['keras_version'] = b'2.13.1'
    for i in range(layers):
        g = f.create_group('dense_%d' % i)
        g.attrs['weight_names'] = np.array([('dense_%d/kernel:0' % i).encode(), ('dense_%d/bias:0' % i).encode()])
        g['dense_%d/kernel:0' % i] = rng.standard_normal((units, units), dtype=np.float32)
        g['dense_%d/bias:0' % i] = rng.standard_normal((units,), dtype=np.float32)
`;

// ---- orchestration -------------------------------------------------------------------

function runChild(args, env = {}) {
  const result = spawnSync(args[0], args.slice(1), { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 16 << 20 });
  if (result.status !== 0) throw new Error(`${args.join(' ')} failed:\n${result.stderr}`);
  const lines = result.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function nodeTrial(kind, file, layers, units, env) {
  return runChild([process.execPath, fileURLToPath(import.meta.url), '--trial', kind, file, String(layers), String(units)], env);
}

async function main() {
  const argv = process.argv.slice(2);
  if (argv[0] === '--trial') {
    const out = await trial(argv[1], argv[2], Number(argv[3]), Number(argv[4]));
    console.log(JSON.stringify(out));
    return;
  }
  const opt = (name, fallback) => {
    const i = argv.indexOf(name);
    return i >= 0 ? Number(argv[i + 1]) : fallback;
  };
  const sizeMiB = opt('--size-mib', 1024);
  const trials = opt('--trials', 3);
  const units = 8192;
  const layers = Math.max(1, Math.round((sizeMiB * MiB) / (units * units * 4)));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tensorio-bench-'));
  const file = path.join(dir, 'model.h5');
  const env = { OPENBLAS_CORETYPE: '', OPENBLAS_L2_SIZE: '' };
  delete process.env.OPENBLAS_CORETYPE;
  delete process.env.OPENBLAS_L2_SIZE;
  try {
    console.log(`# bench/keras.mjs ${new Date().toISOString()} on ${os.cpus()[0]?.model ?? '?'} x${os.cpus().length}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}`);
    runChild([PYTHON, '-c', `${H5PY_WRITE}\nimport json; print(json.dumps({}))`, file, String(layers), String(units)]);
    const fileMiB = fs.statSync(file).size / MiB;
    console.log(`file: ${file} written by h5py, ${layers} Dense layers ${units}x${units} float32, ${fileMiB.toFixed(0)} MiB (warm page cache)`);
    const kinds = ['tensorio-tfjs', 'tensorio-tfjs-mmap', 'tensorio-read', 'tensorio-mmap', 'h5py', 'h5wasm'];
    // --no-keras: the suite's smoke run, which should not wait for TensorFlow to import.
    const oracle = argv.includes('--no-keras') ? undefined : oraclePython();
    if (oracle) kinds.push('keras-load-weights');
    else if (!argv.includes('--no-keras')) console.log('skipped keras-load-weights: no oracle venv (set TENSORIO_ORACLE_PYTHON to a Python with tf-keras)');
    const results = {};
    for (const kind of kinds) {
      const runs = [];
      for (let t = 0; t < trials; t++) {
        if (kind === 'h5py') runs.push(runChild([PYTHON, '-c', H5PY_READ, file], env));
        else if (kind === 'keras-load-weights') runs.push(runChild([oracle, '-c', KERAS_LOAD, file, String(layers), String(units)], env));
        else runs.push(nodeTrial(kind, file, layers, units, env));
      }
      results[kind] = { ms: median(runs.map((r) => r.ms)), rssMiB: Math.max(...runs.map((r) => r.rssMiB)), rssBeforeMiB: runs[0].rssBeforeMiB };
    }
    const h5py = results.h5py.ms;
    const h5wasm = results.h5wasm.ms;
    console.log('\ntrial               median ms   MiB/s   vs h5py   vs h5wasm   peak RSS MiB (x file)');
    for (const kind of kinds) {
      const r = results[kind];
      const extra = r.rssBeforeMiB ? `  (RSS before load ${r.rssBeforeMiB.toFixed(0)})` : '';
      console.log(
        `${kind.padEnd(19)} ${r.ms.toFixed(0).padStart(9)} ${(fileMiB / (r.ms / 1000)).toFixed(0).padStart(7)} ${(h5py / r.ms).toFixed(2).padStart(8)}x ${(h5wasm / r.ms).toFixed(2).padStart(9)}x   ${r.rssMiB.toFixed(0).padStart(6)} (${(r.rssMiB / fileMiB).toFixed(2)})${extra}`,
      );
    }
    console.log('(vs columns: how many times faster than the peer; > 1 is faster)');
    if (argv.includes('--big')) {
      const bigLayers = 12;
      const bigUnits = 8192;
      const big = path.join(dir, 'big.h5');
      const save = nodeTrial('save-big', big, bigLayers, bigUnits, env);
      const bigMiB = fs.statSync(big).size / MiB;
      const loadRun = nodeTrial('tensorio-read', big, bigLayers, bigUnits, env);
      const tfjsRun = nodeTrial('tensorio-tfjs', big, bigLayers, bigUnits, env);
      console.log(`\n3 GiB file (${bigLayers} x 256 MiB): ${bigMiB.toFixed(0)} MiB`);
      console.log(`save (writeKerasWeights): ${save.ms.toFixed(0)} ms, peak RSS ${save.rssMiB.toFixed(0)} MiB = ${(save.rssMiB / bigMiB).toFixed(2)} x file (data alone ${save.rssBeforeMiB.toFixed(0)} MiB)`);
      console.log(`load (readKerasWeights): ${loadRun.ms.toFixed(0)} ms, peak RSS ${loadRun.rssMiB.toFixed(0)} MiB = ${(loadRun.rssMiB / bigMiB).toFixed(2)} x file`);
      console.log(`load into tfjs (loadWeights): ${tfjsRun.ms.toFixed(0)} ms, peak RSS ${tfjsRun.rssMiB.toFixed(0)} MiB = ${(tfjsRun.rssMiB / bigMiB).toFixed(2)} x file`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
