/**
 * The chapter, literally, both ways, with real Keras as the judge (issue 20, check 1):
 * test/python/keras_chapter.py saves the chapter's MLP with tf-keras (`net.save_weights(
 * '4.5saved_model.h5')`) and Keras 3 (`model.save_weights('m.weights.h5')`, `model.save(
 * 'm.keras')`); tensorio loads them into the tfjs MLP, saves them back, and Keras loads what
 * tensorio wrote. Python runs twice for the whole file (TensorFlow's import costs seconds).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, test } from 'node:test';

import * as tf from '@tensorflow/tfjs';
import './tfjs-backend.js';

import { ioHandler, loadWeights, saveWeights } from '../../src/tfjs/index.js';
import { ROOT, runOracleJson, tempDir } from '../helpers.js';

const dir = tempDir('tensorio-keras-oracle');
const SCRIPT = path.join(ROOT, 'test', 'python', 'keras_chapter.py');

interface Hexed {
  dtype: string;
  shape: number[];
  hex: string;
}
interface Written {
  X: Hexed;
  tf_keras: { version: string; weights: Hexed[]; Y: Hexed };
  keras3: { version: string; weights: Hexed[]; Y: Hexed };
}
type Checked = Record<string, { weights: Hexed[]; Y2: Hexed; 'Y2 == Y': boolean }>;

function hexOf(data: Float32Array): string {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('hex');
}

function floats(h: Hexed): Float32Array {
  const bytes = Buffer.from(h.hex, 'hex');
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

// The chapter's MLP in tfjs. tfjs's Flatten needs rank >= 3 (Keras's is a no-op on rank 2),
// so X (2, 20) is fed as (2, 4, 5): the same 20 numbers per row, in the same order.
function mlp(): tf.Sequential {
  return tf.sequential({
    layers: [tf.layers.flatten({ inputShape: [4, 5] }), tf.layers.dense({ units: 256, activation: 'relu' }), tf.layers.dense({ units: 10 })],
  });
}

let X: tf.Tensor;
let written: Written;

function predict(model: tf.LayersModel, input = X.reshape([2, 4, 5])): Float32Array {
  return (model.predict(input) as tf.Tensor).dataSync() as Float32Array;
}

/** Each weight of the model, layer by layer in each layer's order: Keras's get_weights(). */
function weightsHex(model: tf.LayersModel): string[] {
  return model.layers.flatMap((layer) => layer.getWeights().map((w) => hexOf(w.dataSync() as Float32Array)));
}

/**
 * Keras's Y and tfjs's prediction from the same float32 weights and input agree to a few ulps,
 * not exactly: each output is a sum of 20 (then 256) float32 products, and TensorFlow (Eigen,
 * blocked and vectorised, with FMA) adds them in another order than tfjs's cpu backend (a plain
 * loop over blocks). The float32 rounding error of such a sum is bounded by about n·u·Σ|xᵢwᵢ|
 * (u = 2⁻²⁴); 1e-5 absolute plus 1e-5 relative is well above what the two orders produce for
 * n = 256 and values of order 1, and far below any real difference (a wrong or transposed
 * weight moves outputs by 1e-1).
 */
function assertClose(actual: Float32Array, expected: Float32Array, label: string): void {
  assert.equal(actual.length, expected.length, label);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i] as number;
    const e = expected[i] as number;
    assert.ok(Math.abs(a - e) <= 1e-5 + 1e-5 * Math.abs(e), `${label}[${i}]: tfjs ${a}, Keras ${e}`);
  }
  // And they are not trivially equal: the check compares real outputs.
  assert.ok(expected.some((v) => Math.abs(v) > 1e-3), `${label}: Keras's output is all zeros`);
}

let checked: Checked;
const fresh: { h5?: tf.Sequential; weightsH5?: tf.Sequential } = {};

before(async () => {
  written = runOracleJson<Written>(fs.readFileSync(SCRIPT, 'utf8'), ['write', dir]);
  X = tf.tensor(floats(written.X), [2, 20]);
  fs.writeFileSync(path.join(dir, 'X.json'), JSON.stringify(written.X));
  // Everything tensorio writes for Keras to read, then one Python run reads it all.
  const net = mlp();
  await loadWeights(net, path.join(dir, '4.5saved_model.h5'));
  await saveWeights(net, path.join(dir, 'back.h5'));
  const model = mlp();
  await loadWeights(model, path.join(dir, 'm.weights.h5'));
  await saveWeights(model, path.join(dir, 'back.weights.h5'));
  fresh.h5 = mlp();
  await saveWeights(fresh.h5, path.join(dir, 'fresh.h5'));
  fresh.weightsH5 = mlp();
  await saveWeights(fresh.weightsH5, path.join(dir, 'fresh.weights.h5'));
  checked = runOracleJson<Checked>(fs.readFileSync(SCRIPT, 'utf8'), ['check', dir]);
});

test("tf-keras's 4.5saved_model.h5 (subclassed MLP): loadWeights gives get_weights() bit for bit, and Keras's Y", async () => {
  assert.match(written.tf_keras.version, /^2\./);
  const net = mlp();
  await loadWeights(net, path.join(dir, '4.5saved_model.h5'));
  assert.deepEqual(weightsHex(net), written.tf_keras.weights.map((w) => w.hex));
  assert.deepEqual(net.layers.flatMap((l) => l.getWeights().map((w) => w.shape)), written.tf_keras.weights.map((w) => w.shape));
  assertClose(predict(net), floats(written.tf_keras.Y), 'Y');
});

test("Keras 3's m.weights.h5 and m.keras: loadWeights gives get_weights() bit for bit, and Keras's Y", async () => {
  assert.match(written.keras3.version, /^3\./);
  for (const name of ['m.weights.h5', 'm.keras']) {
    const model = mlp();
    await loadWeights(model, path.join(dir, name));
    assert.deepEqual(weightsHex(model), written.keras3.weights.map((w) => w.hex), name);
    assertClose(predict(model), floats(written.keras3.Y), `${name}: Y`);
  }
});

test("Keras 3's m.keras as a full model: tf.loadLayersModel(ioHandler('m.keras')) predicts Keras's Y", async () => {
  // Keras 3's config has Flatten on a rank-2 input, which tfjs refuses to build; ioHandler
  // rebuilds it as the no-op it is in Keras, so the model takes X as (2, 20).
  const model = await tf.loadLayersModel(ioHandler(path.join(dir, 'm.keras')));
  assert.deepEqual(weightsHex(model), written.keras3.weights.map((w) => w.hex));
  assertClose(predict(model, X), floats(written.keras3.Y), 'Y');
});

test("back to tf-keras: net2.load_weights of tensorio's .h5 gives Y2 == Y, bit for bit", () => {
  const back = checked['back.h5'];
  assert.ok(back);
  assert.equal(back['Y2 == Y'], true);
  assert.deepEqual(back.weights.map((w) => w.hex), written.tf_keras.weights.map((w) => w.hex));
  // A tfjs model's own weights: Keras reads them bit for bit and predicts what tfjs predicts.
  const mine = checked['fresh.h5'];
  assert.ok(mine && fresh.h5);
  assert.deepEqual(mine.weights.map((w) => w.hex), weightsHex(fresh.h5));
  assertClose(predict(fresh.h5), floats(mine.Y2), 'tfjs vs Keras');
});

test("back to Keras 3: load_weights of tensorio's .weights.h5 gives Y2 == Y, bit for bit", () => {
  const back = checked['back.weights.h5'];
  assert.ok(back);
  assert.equal(back['Y2 == Y'], true);
  assert.deepEqual(back.weights.map((w) => w.hex), written.keras3.weights.map((w) => w.hex));
  const mine = checked['fresh.weights.h5'];
  assert.ok(mine && fresh.weightsH5);
  assert.deepEqual(mine.weights.map((w) => w.hex), weightsHex(fresh.weightsH5));
  assertClose(predict(fresh.weightsH5), floats(mine.Y2), 'tfjs vs Keras');
});
