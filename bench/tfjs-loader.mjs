#!/usr/bin/env node
// Loading a TensorFlow.js model (model.json + weight shards, written by the tensorflowjs
// converter from a tf-keras model) into a model: tensorio's ioHandler with
// tf.loadLayersModel, TensorFlow.js's own path (fs + tf.io.fromMemory), and the Python
// tensorflowjs package's loader (tensorflowjs.converters.load_keras_model, into tf-keras),
// each trial in a fresh process (imports not timed), with peak RSS.
//
//   node bench/tfjs-loader.mjs                     # 256 MiB (4 x 4096x4096 float32), median of 5
//   node bench/tfjs-loader.mjs --size-mib 64 --trials 3
//
// Needs the oracle venv (scripts/python-env.cjs oracle; TENSORIO_ORACLE_PYTHON) for the
// converter and the Python peer. Files are read warm (page cache), so this compares parsing,
// copying and model building, not the disk.
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { formatTable, machine, measureInterleaved, trial } from './lib.mjs';

const require = createRequire(import.meta.url);
const self = fileURLToPath(import.meta.url);
const root = path.resolve(path.dirname(self), '..');
const MiB = 1 << 20;

function oraclePython() {
  if (process.env.TENSORIO_ORACLE_PYTHON) return process.env.TENSORIO_ORACLE_PYTHON;
  const cache = path.join(os.homedir(), '.cache', 'tensorio');
  const name = fs.existsSync(cache) ? fs.readdirSync(cache).sort().find((n) => n.startsWith('python-oracle-') && fs.existsSync(path.join(cache, n, 'bin', 'python'))) : undefined;
  if (!name) throw new Error('bench/tfjs-loader.mjs needs the oracle venv: run node scripts/python-env.cjs oracle');
  return path.join(cache, name, 'bin', 'python');
}

// Writes the model with tf-keras and converts it with the converter's own entry point.
const WRITE = `
import os, sys
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
import numpy as np, tf_keras as keras
from tensorflowjs.converters import converter
out, layers, units = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
model = keras.Sequential([keras.Input((units,))] + [keras.layers.Dense(units, name='dense_%d' % i) for i in range(layers)])
model.set_weights([np.full(w.shape, i // 2, np.float32) for i, w in enumerate(model.weights)])
model.save(os.path.join(out, 'm.h5'))
converter.convert(['--input_format', 'keras', os.path.join(out, 'm.h5'), os.path.join(out, 'tfjs')])
print('{}')
`;

// The Python peer: tensorflowjs's loader of model.json into tf-keras.
const PY_LOAD = `
import os, sys, json, time, resource
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
import tf_keras
from tensorflowjs.converters import keras_tfjs_loader
rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
before = rss()
t0 = time.perf_counter()
model = keras_tfjs_loader.load_keras_model(sys.argv[1])
seconds = time.perf_counter() - t0
assert float(model.layers[-1].get_weights()[1][0]) == len(model.layers) - 1
print(json.dumps({'seconds': seconds, 'rssBeforeKb': before, 'maxRssKb': rss()}))
`;

async function child(kind, file, layers) {
  const tf = require('@tensorflow/tfjs');
  const rssBeforeKb = process.memoryUsage().rss / 1024;
  const t0 = performance.now();
  let model;
  if (kind === 'tensorio') {
    const { ioHandler } = require(path.join(root, 'dist', 'tfjs', 'index.js'));
    model = await tf.loadLayersModel(ioHandler(file));
  } else {
    // TensorFlow.js's own path without a file:// router: the JSON and the shards read with
    // fs, handed to tf.io.fromMemory (what its browser and http loaders do after fetching).
    const json = JSON.parse(fs.readFileSync(file, 'utf8'));
    const weightSpecs = json.weightsManifest.flatMap((group) => group.weights);
    const buffers = json.weightsManifest.flatMap((group) => group.paths.map((p) => fs.readFileSync(path.join(path.dirname(file), p))));
    const all = Buffer.concat(buffers);
    const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
    model = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs, weightData }));
  }
  const seconds = (performance.now() - t0) / 1000;
  const last = model.layers[model.layers.length - 1].getWeights()[1].dataSync()[0];
  if (last !== layers - 1) throw new Error(`wrong weights loaded: the last bias is ${last}, expected ${layers - 1} (${model.layers.length} layers)`);
  return { seconds, rssBeforeKb, maxRssKb: process.resourceUsage().maxRSS };
}

async function main() {
  const argv = process.argv.slice(2);
  if (argv[0] === '--trial') {
    console.log(JSON.stringify(await child(argv[1], argv[2], Number(argv[3]))));
    return;
  }
  const opt = (name, fallback) => (argv.includes(name) ? Number(argv[argv.indexOf(name) + 1]) : fallback);
  const sizeMiB = opt('--size-mib', 256);
  const repeat = opt('--trials', 5);
  const units = opt('--units', 4096);
  const layers = Math.max(1, Math.round((sizeMiB * MiB) / (units * units * 4)));
  const python = oraclePython();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tensorio-bench-tfjs-'));
  try {
    console.log(`# bench/tfjs-loader.mjs ${new Date().toISOString()}: ${machine()}`);
    trial(python, ['-c', WRITE, dir, String(layers), String(units)]);
    const json = path.join(dir, 'tfjs', 'model.json');
    const shards = fs.readdirSync(path.dirname(json)).filter((f) => f.endsWith('.bin'));
    const fileMiB = shards.reduce((sum, f) => sum + fs.statSync(path.join(path.dirname(json), f)).size, 0) / MiB;
    const node = (kind) => ({ command: process.execPath, args: [self, '--trial', kind, json, String(layers)] });
    const results = measureInterleaved(
      [
        { label: 'tensorio ioHandler + tf.loadLayersModel', ...node('tensorio') },
        { label: 'tfjs tf.io.fromMemory (fs reads)', ...node('tfjs') },
        { label: 'tensorflowjs load_keras_model (Python, tf-keras)', command: python, args: ['-c', PY_LOAD, json] },
      ],
      repeat,
    );
    const peer = results[2].seconds;
    console.log(`\nmodel.json written by tensorflowjs_converter: ${fileMiB.toFixed(0)} MiB in ${shards.length} shards, ${layers} Dense layers ${units}x${units} float32, median of ${repeat} after a warm-up round\n`);
    console.log(
      formatTable(results, [
        { title: 'trial', value: (r) => r.label },
        { title: 'median ms', value: (r) => (r.seconds * 1000).toFixed(0) },
        { title: 'vs tensorflowjs (Python)', value: (r) => `${(peer / r.seconds).toFixed(2)}x` },
        { title: 'peak RSS MiB', value: (r) => r.maxRssMb.toFixed(0) },
        { title: 'RSS added MiB', value: (r) => r.deltaRssMb.toFixed(0) },
      ]),
    );
    console.log('(vs tensorflowjs: how many times faster; > 1 is faster)');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
