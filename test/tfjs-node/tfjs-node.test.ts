// What only @tensorflow/tfjs-node makes possible: tensorio beside its `tensorflow` backend, its
// file:// router and its own file format. Runs under scripts/run-tfjs-node-tests.cjs (which
// builds tfjs-node against a TensorFlow wheel's C library and sets TENSORIO_TFJS=node); it lives
// in this folder so that scripts/run-tests.cjs, which runs without tfjs-node, does not list it.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

import * as tf from '@tensorflow/tfjs';

import { readNpy } from '../../src/index.js';
import { ioHandler, load, loadWeights, registerRouters, save, saveWeights } from '../../src/tfjs/index.js';
import { TFJS_MODE, tfjsNode } from '../tfjs/tfjs-backend.js';
import { runOracleJson, runPythonJson, tempDir } from '../helpers.js';

if (TFJS_MODE !== 'node' || !tfjsNode) throw new Error('test/tfjs-node/ needs TENSORIO_TFJS=node: run it with scripts/run-tfjs-node-tests.cjs');
const node = tfjsNode;

const dir = tempDir('tensorio-tfjs-node');

// The chapter's MLP, as in test/tfjs/tfjs.test.ts (tfjs's Flatten needs rank >= 3).
function mlp(): tf.Sequential {
  return tf.sequential({
    layers: [tf.layers.flatten({ inputShape: [4, 5] }), tf.layers.dense({ units: 256, activation: 'relu' }), tf.layers.dense({ units: 10 })],
  });
}

const X = tf.randomUniform([2, 4, 5], -1, 1, 'float32', 13);

/** The forward pass's output; its tensors are freed, so counts of live tensors stay exact. */
function forward(net: tf.LayersModel): number[] {
  return [...tf.tidy(() => (net.predict(X) as tf.Tensor).dataSync() as Float32Array)];
}

/** True when the tensorflow backend (TensorFlow's C library) holds the tensor's data. */
function inTensorflowBackend(t: tf.Tensor): boolean {
  const backend = tf.backend() as unknown as { tensorMap?: { has(id: object): boolean } };
  return tf.getBackend() === 'tensorflow' && backend.tensorMap?.has(t.dataId) === true;
}

test("tfjs-node 4.22 loads on the wheel's TensorFlow, the oracle's version, with one @tensorflow/tfjs", () => {
  assert.equal(tf.getBackend(), 'tensorflow');
  assert.equal(node.version['tfjs-node'], '4.22.0');
  assert.equal(node.tensor, tf.tensor);
  assert.equal(node.io.getLoadHandlers, tf.io.getLoadHandlers);
  const binding = (tf.backend() as unknown as { binding: { TF_Version: string } }).binding;
  const oracle = runOracleJson<string>('import json, tensorflow as tf\nprint(json.dumps(tf.__version__))');
  assert.equal(binding.TF_Version, oracle);
});

test("tensors computed by TensorFlow's kernels: saved by tensorio, read by NumPy, loaded back into the tensorflow backend", async () => {
  const start = tf.memory().numTensors;
  const a = tf.tensor2d([1.5, -2, 3, 4.25, 5, -6], [2, 3]);
  const product = tf.matMul(a, a, false, true);
  const ints = tf.tensor1d([7, -8, 2 ** 30], 'int32');
  assert.ok(inTensorflowBackend(product));
  const file = path.join(dir, 'kernels.npz');
  await save(file, { product, ints });
  const seen = runPythonJson<{ product: number[]; ints: number[]; dtypes: string[] }>(
    `import sys, json, numpy as np\nz = np.load(sys.argv[1])\nprint(json.dumps({'product': z['product'].ravel().tolist(), 'ints': z['ints'].tolist(), 'dtypes': [str(z['product'].dtype), str(z['ints'].dtype)]}))`,
    [file],
  );
  assert.deepEqual(seen.dtypes, ['float32', 'int32']);
  assert.deepEqual(seen.product, [...product.dataSync()]);
  assert.deepEqual(seen.ints, [7, -8, 2 ** 30]);
  const before = tf.memory().numTensors;
  const back = (await load(file)) as Record<string, tf.Tensor>;
  assert.equal(tf.memory().numTensors, before + 2, 'load made exactly its two tensors');
  for (const t of Object.values(back)) assert.ok(inTensorflowBackend(t));
  assert.deepEqual([...(back.product as tf.Tensor).dataSync()], [...product.dataSync()]);
  // An op of TensorFlow's on a loaded tensor.
  assert.deepEqual([...tf.tidy(() => tf.add(back.ints as tf.Tensor, tf.scalar(1, 'int32')).dataSync())], [8, -7, 2 ** 30 + 1]);
  tf.dispose([a, product, ints, ...Object.values(back)]);
  assert.equal(tf.memory().numTensors, start);
  // And a .npy of a kernel's output, read by tensorio's own reader.
  const sum = tf.sum(tf.ones([3, 3]));
  await save(path.join(dir, 'sum.npy'), sum);
  assert.deepEqual([...(await readNpy(path.join(dir, 'sum.npy'))).data], [9]);
  sum.dispose();
});

for (const name of ['mlp.h5', 'mlp.weights.h5', 'mlp.npz', 'mlp.safetensors']) {
  test(`saveWeights/loadWeights on the tensorflow backend, numTensors back to its start after the load (${name})`, async () => {
    const net = mlp();
    const Y = forward(net);
    const file = path.join(dir, name);
    await saveWeights(net, file);
    const clone = mlp();
    assert.notDeepEqual(forward(clone), Y);
    const start = tf.memory().numTensors;
    await loadWeights(clone, file);
    assert.equal(tf.memory().numTensors, start);
    for (const w of clone.getWeights()) assert.ok(inTensorflowBackend(w));
    assert.deepEqual(forward(clone), Y);
    net.dispose();
    clone.dispose();
  });
}

test('registerRouters beside tfjs-node: each URL has exactly one router, and both schemes save and load', async () => {
  registerRouters();
  const h5 = path.join(dir, 'routed.h5');
  const folder = path.join(dir, 'routed-file');
  for (const get of [tf.io.getSaveHandlers, tf.io.getLoadHandlers]) {
    assert.equal(get(`tensorio://${h5}`).length, 1, 'tensorio:// is ours alone');
    assert.equal(get(`file://${folder}`).length, 1, "file:// is tfjs-node's alone");
  }
  const net = mlp();
  const Y = forward(net);
  await net.save(`tensorio://${h5}`);
  await net.save(`file://${folder}`);
  for (const url of [`tensorio://${h5}`, `file://${path.join(folder, 'model.json')}`]) {
    const start = tf.memory().numTensors;
    const again = await tf.loadLayersModel(url);
    assert.equal(tf.memory().numTensors, start + again.weights.length, `${url}: only the model's variables stay`);
    assert.deepEqual(forward(again), Y, url);
    again.dispose();
    assert.equal(tf.memory().numTensors, start);
  }
  net.dispose();
});

for (const name of ['model.json', 'model.h5', 'model.safetensors']) {
  test(`ioHandler + tf.loadLayersModel on the tensorflow backend: same output, numTensors back to its start (${name})`, async () => {
    const net = mlp();
    const Y = forward(net);
    const file = path.join(dir, `io-${name}`);
    const start = tf.memory().numTensors;
    await net.save(ioHandler(file));
    assert.equal(tf.memory().numTensors, start, 'save leaves no tensor behind');
    const again = await tf.loadLayersModel(ioHandler(file));
    assert.equal(tf.memory().numTensors, start + again.weights.length, 'load leaves only the model variables');
    for (const w of again.getWeights()) assert.ok(inTensorflowBackend(w));
    assert.deepEqual(forward(again), Y);
    again.dispose();
    assert.equal(tf.memory().numTensors, start);
    net.dispose();
  });
}

test("tfjs-node's model.save('file://dir') is what tensorio writes: same topology, same manifest, same weight bytes; each reads the other's", async () => {
  const net = mlp();
  const Y = forward(net);
  const theirs = path.join(dir, 'by-tfjs-node');
  await net.save(`file://${theirs}`);
  assert.deepEqual(fs.readdirSync(theirs).sort(), ['model.json', 'weights.bin']);
  const ours = path.join(dir, 'by-tensorio');
  fs.mkdirSync(ours);
  await net.save(ioHandler(path.join(ours, 'model.json')));
  assert.deepEqual(fs.readdirSync(ours).sort(), ['model.json', 'model.weights.bin']);

  type ModelJson = { modelTopology: unknown; format: string; weightsManifest: { paths: string[]; weights: unknown[] }[] };
  const a = JSON.parse(fs.readFileSync(path.join(theirs, 'model.json'), 'utf8')) as ModelJson;
  const b = JSON.parse(fs.readFileSync(path.join(ours, 'model.json'), 'utf8')) as ModelJson;
  assert.deepEqual(b.modelTopology, a.modelTopology);
  assert.equal(b.format, a.format);
  assert.deepEqual(b.weightsManifest[0]?.weights, a.weightsManifest[0]?.weights);
  assert.deepEqual(fs.readFileSync(path.join(ours, 'model.weights.bin')), fs.readFileSync(path.join(theirs, 'weights.bin')));

  // tensorio reads what tfjs-node wrote; tfjs-node's own loader reads what tensorio wrote.
  const readByTensorio = await tf.loadLayersModel(ioHandler(path.join(theirs, 'model.json')));
  assert.deepEqual(forward(readByTensorio), Y);
  const readByTfjsNode = await tf.loadLayersModel(`file://${path.join(ours, 'model.json')}`);
  assert.deepEqual(forward(readByTfjsNode), Y);
  // And on to Keras's format: tfjs-node's files through tensorio into a full .h5 and back.
  const h5 = path.join(dir, 'from-tfjs-node.h5');
  await readByTensorio.save(ioHandler(h5));
  const fromH5 = await tf.loadLayersModel(ioHandler(h5));
  assert.deepEqual(forward(fromH5), Y);
  for (const model of [net, readByTensorio, readByTfjsNode, fromH5]) model.dispose();
});

test("tfjs-node's file:// shards: a model saved in several weight groups by tfjs-node loads through ioHandler", async () => {
  // tfjs-node writes one weights.bin; a manifest of several shards is what the converter and
  // tfjs's browser handlers write. Split tfjs-node's file in two to check tensorio joins them.
  const net = mlp();
  const Y = forward(net);
  const folder = path.join(dir, 'sharded');
  await net.save(`file://${folder}`);
  const json = JSON.parse(fs.readFileSync(path.join(folder, 'model.json'), 'utf8')) as { weightsManifest: { paths: string[] }[] };
  const bin = fs.readFileSync(path.join(folder, 'weights.bin'));
  const cut = 4096 * 4;
  fs.writeFileSync(path.join(folder, 'group1-shard1of2.bin'), bin.subarray(0, cut));
  fs.writeFileSync(path.join(folder, 'group1-shard2of2.bin'), bin.subarray(cut));
  fs.rmSync(path.join(folder, 'weights.bin'));
  (json.weightsManifest[0] as { paths: string[] }).paths = ['group1-shard1of2.bin', 'group1-shard2of2.bin'];
  fs.writeFileSync(path.join(folder, 'model.json'), JSON.stringify(json));
  for (const handler of [ioHandler(path.join(folder, 'model.json')), `file://${path.join(folder, 'model.json')}`]) {
    const again = await tf.loadLayersModel(handler);
    assert.deepEqual(forward(again), Y);
    again.dispose();
  }
  net.dispose();
});
