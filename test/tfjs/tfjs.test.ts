import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

import * as tf from '@tensorflow/tfjs';
// Loads @tensorflow/tfjs-node first when TENSORIO_TFJS=node: the same tests then run on its backend.
import { EXPECTED_BACKEND, TFJS_MODE } from './tfjs-backend.js';

import { TensorioError, writeNpy } from '../../src/index.js';
import { ioHandler, load, loadWeights, registerRouters, save, saveWeights } from '../../src/tfjs/index.js';
import { ROOT, runPythonJson, tempDir } from '../helpers.js';

const dir = tempDir('tensorio-tfjs');

test(`the tests run on the '${EXPECTED_BACKEND}' backend (TENSORIO_TFJS=${TFJS_MODE})`, () => {
  assert.equal(tf.getBackend(), EXPECTED_BACKEND);
});

function isCode(code: string) {
  return (error: unknown) => error instanceof TensorioError && error.code === code;
}

// The chapter's MLP. tfjs's Flatten needs rank >= 3, so X (2, 20) is fed as (2, 4, 5).
function mlp(): tf.Sequential {
  return tf.sequential({
    layers: [tf.layers.flatten({ inputShape: [4, 5] }), tf.layers.dense({ units: 256, activation: 'relu' }), tf.layers.dense({ units: 10 })],
  });
}

const X = tf.randomUniform([2, 20], -1, 1, 'float32', 7);

function forward(net: tf.LayersModel): Float32Array {
  return (net.predict(X.reshape([2, 4, 5])) as tf.Tensor).dataSync() as Float32Array;
}

for (const name of ['4.5saved_model.h5', 'mlp.weights.h5']) {
  test(`the chapter's MLP: Y2 == Y exactly after saveWeights/loadWeights (${name})`, async () => {
    const net = mlp();
    const Y = forward(net);
    const file = path.join(dir, name);
    await saveWeights(net, file);
    const clone = mlp();
    assert.notDeepEqual([...forward(clone)], [...Y]);
    await loadWeights(clone, file);
    assert.deepEqual([...forward(clone)], [...Y]);
  });
}

test("Keras's legacy loader reads our .h5 and NumPy's forward pass matches tfjs's output", async () => {
  const net = mlp();
  const Y = forward(net);
  const file = path.join(dir, 'numpy.h5');
  await saveWeights(net, file);
  const result = runPythonJson<{ layers: string[]; y: number[] }>(
    `
import sys, json, h5py, numpy as np
f = h5py.File(sys.argv[1], 'r')
layer_names = [n.decode('utf8') for n in f.attrs['layer_names']]
weights = []
for name in layer_names:
    g = f[name]
    names = [n.decode('utf8') for n in g.attrs['weight_names']]
    if names:
        weights.append([np.asarray(g[n]) for n in names])
x = np.asarray(json.loads(sys.argv[2]), dtype=np.float32).reshape(2, 20)
(k1, b1), (k2, b2) = weights
y = np.maximum(x @ k1 + b1, 0) @ k2 + b2
print(json.dumps({'layers': layer_names, 'y': y.ravel().tolist()}))
`,
    [file, JSON.stringify([...X.dataSync()])],
  );
  assert.deepEqual(result.layers, net.layers.map((l) => l.name));
  result.y.forEach((v, i) => assert.ok(Math.abs(v - (Y[i] as number)) <= 1e-5 * Math.max(1, Math.abs(v)), `y[${i}]: ${v} vs ${Y[i]}`));
});

// ERR_SHAPE_MISMATCH and skipMismatch, for .h5, .npz and .safetensors alike: test/tfjs/tfjs-formats.test.ts.

test('ioHandler: model.json round trip', async () => {
  const net = mlp();
  const Y = forward(net);
  const file = path.join(dir, 'model.json');
  await net.save(ioHandler(file));
  const again = await tf.loadLayersModel(ioHandler(file));
  assert.deepEqual([...forward(again)], [...Y]);
});

test('ioHandler: a full Keras .h5 written from tfjs loads back with the same output, and h5py sees the layout', async () => {
  const net = mlp();
  const Y = forward(net);
  const file = path.join(dir, 'full.h5');
  await net.save(ioHandler(file));
  const again = await tf.loadLayersModel(ioHandler(file));
  assert.deepEqual([...forward(again)], [...Y]);
  const seen = runPythonJson<{ cls: string; layers: string[] }>(
    `import sys, json, h5py\nf = h5py.File(sys.argv[1], 'r')\nc = json.loads(f.attrs['model_config'])\ng = f['model_weights']\nprint(json.dumps({'cls': c['class_name'], 'layers': [n.decode() for n in g.attrs['layer_names']]}))`,
    [file],
  );
  assert.equal(seen.cls, 'Sequential');
  assert.deepEqual(seen.layers, net.layers.map((l) => l.name));
});

test('ERR_BAD_METADATA: a weights-only .h5 given to ioHandler', async () => {
  const file = path.join(dir, 'weights-only.h5');
  await saveWeights(mlp(), file);
  await assert.rejects(tf.loadLayersModel(ioHandler(file)), isCode('ERR_BAD_METADATA'));
});

test('ERR_INVALID_ARGUMENT: unknown extensions', () => {
  assert.throws(() => ioHandler(path.join(dir, 'model.bin')), isCode('ERR_INVALID_ARGUMENT'));
  assert.throws(() => ioHandler(path.join(dir, 'm.weights.h5')), isCode('ERR_INVALID_ARGUMENT'));
});

test('save/load tensors: one, an array, a record; dtype conversion rules', async () => {
  const x = tf.range(0, 4);
  await save(path.join(dir, 'x.npy'), x);
  assert.deepEqual([...((await load(path.join(dir, 'x.npy'))) as tf.Tensor).dataSync()], [0, 1, 2, 3]);
  const y = tf.zeros([4]);
  await save(path.join(dir, 'xy.h5'), [x, y]);
  const pair = (await load(path.join(dir, 'xy.h5'))) as tf.Tensor[];
  assert.equal(pair.length, 2);
  assert.deepEqual([...(pair[1] as tf.Tensor).dataSync()], [0, 0, 0, 0]);
  await save(path.join(dir, 'dict.h5'), { x, y, flags: tf.tensor([true, false], [2], 'bool'), n: tf.tensor([1, -2], [2], 'int32') });
  const dict = (await load(path.join(dir, 'dict.h5'))) as Record<string, tf.Tensor>;
  assert.deepEqual(Object.keys(dict).sort(), ['flags', 'n', 'x', 'y']);
  assert.equal(dict.n?.dtype, 'int32');
  // float64 → float32; int64 within range → int32; out of range → ERR_UNSUPPORTED_DTYPE; convert: false refuses.
  await writeNpy(path.join(dir, 'f64.npy'), { dtype: 'float64', shape: [2], data: new Float64Array([0.5, 1e-3]) });
  const f64 = (await load(path.join(dir, 'f64.npy'))) as tf.Tensor;
  assert.equal(f64.dtype, 'float32');
  await assert.rejects(load(path.join(dir, 'f64.npy'), { convert: false }), isCode('ERR_UNSUPPORTED_DTYPE'));
  await writeNpy(path.join(dir, 'i64.npy'), { dtype: 'int64', shape: [2], data: new BigInt64Array([5n, -7n]) });
  assert.deepEqual([...((await load(path.join(dir, 'i64.npy'))) as tf.Tensor).dataSync()], [5, -7]);
  await writeNpy(path.join(dir, 'big.npy'), { dtype: 'int64', shape: [1], data: new BigInt64Array([1n << 40n]) });
  await assert.rejects(load(path.join(dir, 'big.npy')), isCode('ERR_UNSUPPORTED_DTYPE'));
});

test('ioHandler: an RNN model round-trips through .h5 and model.json', async () => {
  const build = () => tf.sequential({ layers: [tf.layers.gru({ units: 3, inputShape: [5, 2] }), tf.layers.dense({ units: 2 })] });
  const model = build();
  const input = tf.randomUniform([4, 5, 2], -1, 1, 'float32', 3);
  const expected = [...(model.predict(input) as tf.Tensor).dataSync()];
  for (const name of ['rnn.h5', 'rnn.json']) {
    const file = path.join(dir, name);
    await model.save(ioHandler(file));
    const again = await tf.loadLayersModel(ioHandler(file));
    assert.deepEqual([...(again.predict(input) as tf.Tensor).dataSync()], expected, name);
  }
});

test('ERR_BAD_ZIP: a damaged .keras archive', async () => {
  const file = path.join(dir, 'broken.keras');
  fs.writeFileSync(file, Buffer.concat([Buffer.from('PK\x03\x04'), Buffer.alloc(100, 7)]));
  await assert.rejects(tf.loadLayersModel(ioHandler(file)), isCode('ERR_BAD_ZIP'));
});

test('ERR_NOT_FOUND_IN_ARCHIVE: a .keras archive without config.json', async () => {
  const file = path.join(dir, 'empty.keras');
  runPythonJson(`import sys, zipfile, json\nz = zipfile.ZipFile(sys.argv[1], 'w')\nz.writestr('metadata.json', '{}')\nz.close()\nprint(json.dumps(0))`, [file]);
  await assert.rejects(tf.loadLayersModel(ioHandler(file)), isCode('ERR_NOT_FOUND_IN_ARCHIVE'));
});

test('ERR_TRUNCATED: a model.json whose shard is shorter than its manifest', async () => {
  const file = path.join(dir, 'short.json');
  await mlp().save(ioHandler(file));
  const bin = path.join(dir, 'short.weights.bin');
  fs.truncateSync(bin, fs.statSync(bin).size - 4);
  await assert.rejects(tf.loadLayersModel(ioHandler(file)), isCode('ERR_TRUNCATED'));
});

test('the chapter demo runs and prints Y_clone == Y, all true', () => {
  const out = execFileSync(process.execPath, [path.join(ROOT, 'demo', 'chapter-tfjs.mjs')], { encoding: 'utf8' });
  assert.match(out, /x2: Tensor\s+\[0, 1, 2, 3\]/);
  const verdict = out.slice(out.indexOf('Y_clone == Y:'));
  assert.ok(verdict.includes('true') && !verdict.includes('false'), verdict);
});

test('registerRouters: tensorio:// URLs save and load through ioHandler', async () => {
  registerRouters();
  registerRouters();
  const net = mlp();
  const Y = forward(net);
  const file = path.join(dir, 'routed.h5');
  await net.save(`tensorio://${file}`);
  const again = await tf.loadLayersModel(`tensorio://${file}`);
  assert.deepEqual([...forward(again)], [...Y]);
});

test('a Bidirectional LSTM round-trips through saveWeights and a full-model .h5, and Keras order holds', async () => {
  const build = () =>
    tf.sequential({ layers: [tf.layers.bidirectional({ layer: tf.layers.lstm({ units: 3 }) as tf.RNN, inputShape: [5, 2] }), tf.layers.dense({ units: 2 })] });
  const model = build();
  const input = tf.randomUniform([3, 5, 2], -1, 1, 'float32', 5);
  const expected = [...(model.predict(input) as tf.Tensor).dataSync()];
  const weightsFile = path.join(dir, 'bilstm.h5');
  await saveWeights(model, weightsFile);
  const clone = build();
  await loadWeights(clone, weightsFile);
  assert.deepEqual([...(clone.predict(input) as tf.Tensor).dataSync()], expected);
  // Keras's Bidirectional lists the forward layer's weights, then the backward layer's.
  const names = runPythonJson<string[]>(
    `import sys, json, h5py\nf = h5py.File(sys.argv[1], 'r')\nl = [n.decode() for n in f.attrs['layer_names']][0]\nprint(json.dumps([n.decode() for n in f[l].attrs['weight_names']]))`,
    [weightsFile],
  );
  assert.equal(names.length, 6);
  assert.match(names[0] ?? '', /forward.*kernel:0$/);
  assert.match(names[3] ?? '', /backward.*kernel:0$/);
  const full = path.join(dir, 'bilstm-full.h5');
  await model.save(ioHandler(full));
  const again = await tf.loadLayersModel(ioHandler(full));
  assert.deepEqual([...(again.predict(input) as tf.Tensor).dataSync()], expected);
});
