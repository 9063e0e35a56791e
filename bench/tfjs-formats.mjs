#!/usr/bin/env node
// loadWeights from .npz and .safetensors into a TensorFlow.js model, against NumPy reading the
// same file (np.load of every .npz member; json + np.fromfile for safetensors, which is what
// safetensors.numpy.load_file does), each trial in a fresh process (bench/lib.mjs), with peak RSS.
//
//   node bench/tfjs-formats.mjs                    # 1 GiB (4 x 8192x8192 float32), median of 5
//   node bench/tfjs-formats.mjs --size-mib 256 --trials 1
//   node bench/tfjs-formats.mjs --size-mib 4 --units 256 --trials 1   # the suite's smoke run
// TensorFlow.js's own path (model.json + .bin read with fs, tf.io.decodeWeights,
// model.loadWeights) is measured on the same weights as a peer.
//
// The files are written by tensorio (as saveWeights writes them) and read warm (they sit in
// the page cache), so this compares parsing and copying, not the disk.
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { formatTable, machine, measureInterleaved, PYTHON, pythonVersions, trial } from './lib.mjs';

const require = createRequire(import.meta.url);
const self = fileURLToPath(import.meta.url);
const root = path.resolve(path.dirname(self), '..');
const MiB = 1 << 20;

const report = (t0, rssBeforeKb) => ({ seconds: (performance.now() - t0) / 1000, rssBeforeKb, maxRssKb: process.resourceUsage().maxRSS });

async function child(kind, file, layers, units) {
  if (kind === 'write') {
    // writeWeightsFile is what saveWeights calls once it has the weights' arrays.
    const { writeWeightsFile } = require(path.join(root, 'dist', 'formats', 'weight-files.js'));
    const list = [];
    for (let i = 0; i < layers; i++) {
      const kernel = new Float32Array(units * units);
      for (let j = 0; j < kernel.length; j++) kernel[j] = ((j * 2654435761) % 1000) / 1000 - 0.5 + i;
      const bias = new Float32Array(units).fill(i);
      list.push({ name: `dense_${i}`, weights: [{ weight: 'kernel', array: { dtype: 'float32', shape: [units, units], data: kernel } }, { weight: 'bias', array: { dtype: 'float32', shape: [units], data: bias } }] });
    }
    for (const f of file.split(',')) {
      if (f.endsWith('.json')) {
        // The tfjs format, as tfjs's own peer reads it: model.json + one .bin.
        const { ioHandler } = require(path.join(root, 'dist', 'tfjs', 'index.js'));
        const weightSpecs = list.flatMap((l) => l.weights.map((w) => ({ name: `${l.name}/${w.weight}`, shape: w.array.shape, dtype: 'float32' })));
        const weightData = list.flatMap((l) => l.weights.map((w) => w.array.data.buffer));
        await ioHandler(f, { fsync: false }).save({ modelTopology: null, format: 'weights-only', weightSpecs, weightData });
      } else {
        await writeWeightsFile(f, f.endsWith('.npz') ? 'npz' : 'safetensors', list, { fsync: false });
      }
    }
    return report(performance.now(), 0);
  }
  const tf = require('@tensorflow/tfjs');
  const { loadWeights } = require(path.join(root, 'dist', 'tfjs', 'index.js'));
  // Zero initializers: an untouched zero-filled buffer is not resident, so the RSS shows what
  // loading costs rather than what random initialisation costs.
  const model = tf.sequential();
  for (let i = 0; i < layers; i++) {
    model.add(tf.layers.dense({ units, inputShape: i === 0 ? [units] : undefined, kernelInitializer: 'zeros', name: `dense_${i}` }));
  }
  const rssBeforeKb = process.memoryUsage().rss / 1024;
  const t0 = performance.now();
  if (kind === 'tfio') {
    // TensorFlow.js's own path for weights (what tf.loadLayersModel does after fetching):
    // the manifest and shards read with fs, tf.io.decodeWeights, model.loadWeights.
    const json = JSON.parse(fs.readFileSync(file, 'utf8'));
    const specs = json.weightsManifest.flatMap((group) => group.weights);
    const shards = json.weightsManifest.flatMap((group) => group.paths.map((p) => {
      const bytes = fs.readFileSync(path.join(path.dirname(file), p));
      return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    }));
    model.loadWeights(tf.io.decodeWeights(shards.length === 1 ? shards[0] : shards, specs));
  } else {
    await loadWeights(model, file, { mmap: kind === 'mmap' });
  }
  const out = report(t0, rssBeforeKb);
  if (model.layers[layers - 1].getWeights()[1].dataSync()[0] !== layers - 1) throw new Error('wrong weights loaded');
  return out;
}

const NUMPY_READ = `
import sys, time, json, struct, resource, numpy as np
rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
before = rss()
t0 = time.perf_counter()
kept = []
if sys.argv[1].endswith('.npz'):
    f = np.load(sys.argv[1])
    kept = [f[k] for k in f.files]
else:
    with open(sys.argv[1], 'rb') as fh:
        (n,) = struct.unpack('<Q', fh.read(8))
        header = json.loads(fh.read(n)); header.pop('__metadata__', None)
        for k, v in header.items():
            b, e = v['data_offsets']
            fh.seek(8 + n + b)
            kept.append(np.fromfile(fh, dtype='<f4', count=(e - b) // 4).reshape(v['shape']))
print(json.dumps({'seconds': time.perf_counter() - t0, 'rssBeforeKb': before, 'maxRssKb': rss()}))
`;

async function main() {
  const argv = process.argv.slice(2);
  if (argv[0] === '--trial') {
    console.log(JSON.stringify(await child(argv[1], argv[2], Number(argv[3]), Number(argv[4]))));
    return;
  }
  const opt = (name, fallback) => {
    const i = argv.indexOf(name);
    return i >= 0 ? Number(argv[i + 1]) : fallback;
  };
  const sizeMiB = opt('--size-mib', 1024);
  const repeat = opt('--trials', 5);
  const units = opt('--units', 8192);
  const layers = Math.max(1, Math.round((sizeMiB * MiB) / (units * units * 4)));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tensorio-bench-'));
  const files = { npz: path.join(dir, 'model.npz'), safetensors: path.join(dir, 'model.safetensors') };
  const tfjsJson = path.join(dir, 'model.json');
  const node = (kind, file) => ({ command: process.execPath, args: [self, '--trial', kind, file, String(layers), String(units)] });
  try {
    console.log(`# bench/tfjs-formats.mjs ${new Date().toISOString()}: ${machine()}; ${pythonVersions()}`);
    trial(process.execPath, [self, '--trial', 'write', `${files.npz},${files.safetensors},${tfjsJson}`, String(layers), String(units)]);
    for (const [format, file] of Object.entries(files)) {
      const fileMiB = fs.statSync(file).size / MiB;
      const results = measureInterleaved(
        [
          { label: 'loadWeights', ...node('eager', file) },
          { label: 'loadWeights mmap', ...node('mmap', file) },
          { label: 'NumPy', command: PYTHON, args: ['-c', NUMPY_READ, file] },
          { label: 'tfjs tf.io (model.json + .bin, fs + decodeWeights)', ...node('tfio', tfjsJson) },
        ],
        repeat,
      );
      const numpy = results[2].seconds;
      console.log(`\n.${format} written by tensorio: ${fileMiB.toFixed(0)} MiB, ${layers} Dense layers ${units}x${units} float32, median of ${repeat} after a warm-up round\n`);
      console.log(
        formatTable(results, [
          { title: 'trial', value: (r) => r.label },
          { title: 'median ms', value: (r) => (r.seconds * 1000).toFixed(0) },
          { title: 'vs NumPy', value: (r) => `${(numpy / r.seconds).toFixed(2)}x` },
          { title: 'peak RSS MiB (x file)', value: (r) => `${r.maxRssMb.toFixed(0)} (${(r.maxRssMb / fileMiB).toFixed(2)})` },
          { title: 'RSS added MiB', value: (r) => r.deltaRssMb.toFixed(0) },
        ]),
      );
    }
    console.log('(vs NumPy: how many times faster; > 1 is faster)');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
