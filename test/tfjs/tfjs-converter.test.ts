/**
 * Check 4 of issue 20: the tensorflowjs converter (Python, 4.22) as a peer. One Python process
 * builds tf-keras models (Conv2D, BatchNormalization, Dense; Embedding, LSTM, Dense), saves
 * them with `model.save('m.h5')` and converts each with `tensorflowjs_converter --input_format
 * keras` (plain, --quantize_float16, --quantize_uint8, --quantize_uint16). Then:
 * - tensorio reads the converter's model.json and shards: tfjs predicts what Keras predicts,
 *   and tensorio's dequantization equals tfjs's own decodeWeights bit for bit;
 * - `tensorio convert m.h5 model.json` loads in tfjs with the converter's predictions, and its
 *   manifest differs from the converter's only as docs/tfjs.md's table says;
 * - `tensorio convert m.h5 model.json --quantize D` writes the converter's bytes and numbers.
 * It imports the CLI's `main` and src/formats/tfjs-quantization.ts on purpose: the converter
 * is checked against the command line and the quantization arithmetic directly.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

import * as tf from '@tensorflow/tfjs';
import './tfjs-backend.js';

import { main } from '../../src/cli/main.js';
import { readNpz } from '../../src/index.js';
import { dequantizeWeight, quantizeWeight } from '../../src/formats/tfjs-quantization.js';
import { ioHandler } from '../../src/tfjs/index.js';
import { ROOT, runOracleJson, tempDir } from '../helpers.js';

interface ModelCase {
  h5: string;
  x: number[];
  xShape: number[];
  xDtype: string;
  y: number[];
  yShape: number[];
  variants: Record<string, string>;
  weights: Record<string, number[]>;
}

interface Manifest {
  format: string;
  generatedBy: string;
  convertedBy: string | null;
  modelTopology: Record<string, unknown>;
  weightsManifest: Array<{ paths: string[]; weights: tf.io.WeightsManifestEntry[] }>;
}

const dir = tempDir('tensorio-converter');
const scenario = runOracleJson<{ tensorflowjs: string; keras: string; models: Record<string, ModelCase> }>(
  fs.readFileSync(path.join(ROOT, 'test', 'python', 'tfjs_converter_scenario.py'), 'utf8'),
  [dir],
);
const VARIANTS = ['plain', 'float16', 'uint8', 'uint16'] as const;

function readJson(file: string): Manifest {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as Manifest;
}

/** The manifest's specs and the concatenated shard bytes. */
function weightsOf(file: string): { specs: tf.io.WeightsManifestEntry[]; data: Uint8Array } {
  const json = readJson(file);
  const specs = json.weightsManifest.flatMap((g) => g.weights);
  const data = Buffer.concat(json.weightsManifest.flatMap((g) => g.paths.map((p) => fs.readFileSync(path.join(path.dirname(file), p)))));
  return { specs, data: new Uint8Array(data) };
}

/** Each weight's stored bytes, by name. */
function bytesByName(file: string): Map<string, Uint8Array> {
  const { specs, data } = weightsOf(file);
  const out = new Map<string, Uint8Array>();
  let offset = 0;
  for (const spec of specs) {
    const count = spec.shape.reduce((a, b) => a * b, 1);
    const size = count * (spec.quantization ? (spec.quantization.dtype === 'uint8' ? 1 : 2) : 4);
    out.set(spec.name, data.subarray(offset, offset + size));
    offset += size;
  }
  assert.equal(offset, data.byteLength, `${file}: the manifest accounts for every shard byte`);
  return out;
}

function input(c: ModelCase): tf.Tensor {
  return tf.tensor(c.x, c.xShape, c.xDtype === 'int32' ? 'int32' : 'float32');
}

async function predict(file: string, c: ModelCase): Promise<Float32Array> {
  const model = await tf.loadLayersModel(ioHandler(file));
  const y = model.predict(input(c)) as tf.Tensor;
  const out = (await y.data()) as Float32Array;
  model.dispose();
  return out;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

/** tfjs's names for a converter weight: its loader drops the RNN cell scope ('lstm/lstm_cell/kernel' → 'lstm/kernel'). */
function tfjsName(name: string, known: Set<string>): string {
  if (known.has(name)) return name;
  const parts = name.split('/');
  return [...parts.slice(0, -2), parts[parts.length - 1]].join('/');
}

function withoutKeys(value: unknown, keys: string[]): unknown {
  if (Array.isArray(value)) return value.map((v) => withoutKeys(v, keys));
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(Object.entries(value).filter(([k]) => !keys.includes(k)).map(([k, v]) => [k, withoutKeys(v, keys)]));
}

test(`the scenario ran tensorflowjs ${scenario.tensorflowjs} with tf-keras ${scenario.keras}`, () => {
  assert.equal(scenario.tensorflowjs, '4.22.0');
  for (const c of Object.values(scenario.models)) for (const v of VARIANTS) assert.ok(fs.existsSync(c.variants[v] as string), `${v}: model.json written`);
});

for (const [name, c] of Object.entries(scenario.models)) {
  // Plain weights are Keras's float32 values, so tfjs's prediction differs from Keras's only
  // by the two backends' float32 rounding (different summation order in matMul/conv, LSTM's
  // sigmoid/tanh): 1e-5 absolute on outputs of order 1. Quantized weights move the
  // prediction by about the quantization step times the fan-in; the bounds are loose on
  // purpose, the exact check is the dequantized weights against tfjs's decoder below.
  const tolerance: Record<string, number> = { plain: 1e-5, float16: 2e-2, uint16: 2e-2, uint8: 0.5 };
  for (const variant of VARIANTS) {
    test(`${name}, converter ${variant}: tf.loadLayersModel(ioHandler(model.json)) predicts what Keras predicts`, async () => {
      const y = await predict(c.variants[variant] as string, c);
      const diff = maxAbsDiff(y, c.y);
      assert.ok(diff <= (tolerance[variant] as number), `max |tfjs - keras| = ${diff}`);
      if (variant === 'plain') assert.ok(diff > 0 || diff === 0);
    });

    test(`${name}, converter ${variant}: tensorio's dequantization equals tfjs's decodeWeights bit for bit`, () => {
      const file = c.variants[variant] as string;
      const { specs, data } = weightsOf(file);
      const decoded = tf.io.decodeWeights(data.slice().buffer, specs);
      const stored = bytesByName(file);
      for (const spec of specs) {
        const expected = decoded[spec.name]?.dataSync() as Float32Array;
        if (!spec.quantization) {
          assert.equal(variant, 'plain');
          assert.deepEqual(new Uint8Array(expected.buffer, expected.byteOffset, expected.byteLength), stored.get(spec.name));
          continue;
        }
        assert.equal(spec.quantization.dtype, variant);
        const ours = dequantizeWeight(spec, stored.get(spec.name) as Uint8Array);
        assert.deepEqual(new Uint32Array(ours.buffer, ours.byteOffset, ours.length), new Uint32Array(expected.buffer, expected.byteOffset, expected.length), spec.name);
      }
      tf.dispose(Object.values(decoded));
    });
  }

  test(`${name}: tensorio convert m.h5 model.json loads in tfjs and predicts what the converter's model.json predicts`, async () => {
    const out = path.join(dir, `${name}-tensorio`, 'model.json');
    fs.mkdirSync(path.dirname(out), { recursive: true });
    assert.equal(await main(['convert', c.h5, out, '--no-fsync']), 0);
    const ours = await predict(out, c);
    const theirs = await predict(c.variants.plain as string, c);
    // The same float32 weights through the same tfjs kernels: identical to the bit.
    assert.deepEqual(ours, theirs);

    // The manifests: the differences docs/tfjs.md's table explains, and nothing else.
    const a = readJson(out);
    const b = readJson(c.variants.plain as string);
    assert.equal(a.format, 'layers-model');
    assert.equal(b.format, 'layers-model');
    assert.equal(b.convertedBy, 'TensorFlow.js Converter v4.22.0');
    assert.equal(a.convertedBy, 'tensorio');
    assert.match(b.generatedBy, /^keras v2\.19/);
    // Group layout: one group each; the converter's shards are group1-shardNofM.bin (4 MiB
    // each, these models fit one), tensorio writes one <stem>.weights.bin.
    assert.deepEqual(b.weightsManifest.map((g) => g.paths), [['group1-shard1of1.bin']]);
    assert.deepEqual(a.weightsManifest.map((g) => g.paths), [['model.weights.bin']]);
    const shardBytes = (m: Manifest, file: string) => m.weightsManifest[0]?.paths.reduce((s, p) => s + fs.statSync(path.join(path.dirname(file), p)).size, 0);
    assert.equal(shardBytes(a, out), shardBytes(b, c.variants.plain as string), 'the same bytes in total');
    // Topology: the converter wraps Keras's model_config with keras_version and backend;
    // tensorio stores the model config itself (both are what tfjs's loader accepts).
    assert.deepEqual(Object.keys(b.modelTopology).sort(), ['backend', 'keras_version', 'model_config']);
    assert.ok('class_name' in a.modelTopology && 'config' in a.modelTopology);
    // ... and the same config, but for the Keras bookkeeping keys tensorio drops (JSON.parse
    // already reads the converter's 0.0 as tensorio's 0).
    assert.deepEqual(a.modelTopology, withoutKeys(b.modelTopology.model_config, ['module', 'registered_name']));
    // Weights: the same set with the same dtypes and shapes; tensorio names them as tfjs
    // does (RNN cell scope dropped) and orders them by the model's layers, the converter by
    // the HDF5 group order (alphabetical layer names).
    const specsA = a.weightsManifest.flatMap((g) => g.weights);
    const specsB = b.weightsManifest.flatMap((g) => g.weights);
    const namesA = new Set(specsA.map((s) => s.name));
    const renamed = specsB.map((s) => ({ ...s, name: tfjsName(s.name, namesA) }));
    const key = (s: tf.io.WeightsManifestEntry) => `${s.name} ${s.dtype} ${s.shape.join('x')}`;
    assert.deepEqual(specsA.map(key).sort(), renamed.map(key).sort());
    assert.deepEqual(specsB.map((s) => s.name), [...specsB.map((s) => s.name)].sort((x, y) => (x.split('/')[0] as string).localeCompare(y.split('/')[0] as string)), 'converter: alphabetical by layer');
    if (name === 'seq') assert.ok(specsB.some((s) => s.name === 'lstm/lstm_cell/kernel') && namesA.has('lstm/kernel'));
    // And each weight's bytes are the same.
    const bytesA = bytesByName(out);
    const bytesB = bytesByName(c.variants.plain as string);
    for (const [weight, bytes] of bytesB) assert.deepEqual(bytesA.get(tfjsName(weight, namesA)), bytes, weight);
  });

  for (const variant of ['float16', 'uint8', 'uint16'] as const) {
    test(`${name}: tensorio convert m.h5 model.json --quantize ${variant} writes the converter's bytes, min and scale`, async () => {
      const out = path.join(dir, `${name}-tensorio-${variant}`, 'model.json');
      fs.mkdirSync(path.dirname(out), { recursive: true });
      assert.equal(await main(['convert', c.h5, out, '--quantize', variant, '--no-fsync']), 0);
      const ours = readJson(out).weightsManifest.flatMap((g) => g.weights);
      const theirs = readJson(c.variants[variant] as string).weightsManifest.flatMap((g) => g.weights);
      const names = new Set(ours.map((s) => s.name));
      const byName = new Map(ours.map((s) => [s.name, s]));
      const bytesOurs = bytesByName(out);
      const bytesTheirs = bytesByName(c.variants[variant] as string);
      assert.equal(ours.length, theirs.length);
      for (const spec of theirs) {
        const mine = byName.get(tfjsName(spec.name, names));
        assert.ok(mine, spec.name);
        assert.deepEqual(mine.quantization, spec.quantization, `${spec.name}: quantization`);
        assert.deepEqual(bytesOurs.get(mine.name), bytesTheirs.get(spec.name), `${spec.name}: bytes`);
      }
      assert.deepEqual(await predict(out, c), await predict(c.variants[variant] as string, c));
    });
  }
}

test('a quantized model.json from the converter converts to .h5, .safetensors and .npz with its dequantized weights', async () => {
  const c = scenario.models.cnn as ModelCase;
  const expected = await predict(c.variants.uint8 as string, c);
  const h5 = path.join(dir, 'q.h5');
  assert.equal(await main(['convert', c.variants.uint8 as string, h5, '--no-fsync']), 0);
  assert.deepEqual(await predict(h5, c), expected, 'q.h5');
  // The command line converts to .safetensors tensor by tensor; the whole model goes through ioHandler.
  const st = path.join(dir, 'q.safetensors');
  const artifacts = await (ioHandler(c.variants.uint8 as string).load as () => Promise<tf.io.ModelArtifacts>)();
  await (ioHandler(st).save as (a: tf.io.ModelArtifacts) => Promise<unknown>)(artifacts);
  assert.deepEqual(await predict(st, c), expected, 'q.safetensors');
  // Tensor by tensor (inspect, diff, convert to .npz/.safetensors) the weights are the dequantized values too.
  const npz = path.join(dir, 'q.npz');
  assert.equal(await main(['convert', c.variants.uint8 as string, npz, '--no-fsync']), 0);
  const arrays = await readNpz(npz);
  const { specs, data } = weightsOf(c.variants.uint8 as string);
  const decoded = tf.io.decodeWeights(data.slice().buffer, specs);
  for (const spec of specs) assert.deepEqual(Array.from(arrays[spec.name]?.data as Float32Array), Array.from(decoded[spec.name]?.dataSync() as Float32Array), spec.name);
});

test('dequantizeWeight: every float16 bit pattern widens as tfjs decodes it; uint8/uint16 and int32 as decodeWeights', () => {
  const halves = new Uint16Array(65536).map((_, i) => i);
  const spec = { name: 'w', shape: [65536], dtype: 'float32' as const, quantization: { dtype: 'float16' as const } };
  const bytes = new Uint8Array(halves.buffer);
  const decoded = tf.io.decodeWeights(bytes.slice().buffer, [spec]).w as tf.Tensor;
  const ours = dequantizeWeight(spec, bytes);
  assert.deepEqual(new Uint32Array(ours.buffer), new Uint32Array((decoded.dataSync() as Float32Array).buffer));
  for (const q of [
    { dtype: 'uint8' as const, min: -0.7001, scale: 0.0123456789, dtypeOut: 'float32' as const },
    { dtype: 'uint16' as const, min: -3.3, scale: 1e-4, dtypeOut: 'float32' as const },
    { dtype: 'uint8' as const, min: -100.5, scale: 0.5, dtypeOut: 'int32' as const },
  ]) {
    const n = q.dtype === 'uint8' ? 256 : 65536;
    const raw = q.dtype === 'uint8' ? new Uint8Array(n).map((_, i) => i) : new Uint8Array(new Uint16Array(n).map((_, i) => i).buffer);
    const s = { name: 'w', shape: [n], dtype: q.dtypeOut, quantization: { dtype: q.dtype, min: q.min, scale: q.scale } };
    const theirs = (tf.io.decodeWeights(raw.slice().buffer, [s]).w as tf.Tensor).dataSync();
    assert.deepEqual(Array.from(dequantizeWeight(s, raw)), Array.from(theirs), `${q.dtype} → ${q.dtypeOut}`);
  }
});

test('quantizeWeight: a constant weight is zeros with scale 1; ties round to even; a range without 0 is not nudged', () => {
  assert.deepEqual(quantizeWeight(new Float32Array([0.25, 0.25]), 'uint8'), { bytes: new Uint8Array(2), quantization: { dtype: 'uint8', min: 0.25, scale: 1, original_dtype: 'float32' } });
  const positive = quantizeWeight(new Float32Array([1, 2, 3]), 'uint8');
  assert.equal(positive.quantization.min, 1);
  assert.deepEqual(Array.from(positive.bytes), [0, 128, 255]); // 127.5 rounds to 128 (even)
});

test('ioHandler({ quantize }) and --quantize are refused where they do not apply', async () => {
  assert.throws(() => ioHandler(path.join(dir, 'x.h5'), { quantize: 'uint8' }), /model\.json only/);
  assert.throws(() => ioHandler(path.join(dir, 'x.json'), { quantize: 'int4' as 'uint8' }), /model\.json only/);
  const c = scenario.models.cnn as ModelCase;
  assert.equal(await main(['convert', c.h5, path.join(dir, 'x.safetensors'), '--quantize', 'uint8']), 2);
  assert.equal(await main(['convert', c.h5, path.join(dir, 'x.json'), '--quantize', 'int4']), 2);
});

test('a quantized manifest whose shards are short is ERR_TRUNCATED, naming the file', async () => {
  const c = scenario.models.seq as ModelCase;
  const folder = path.join(dir, 'short');
  fs.cpSync(path.dirname(c.variants.uint16 as string), folder, { recursive: true });
  const shard = path.join(folder, 'group1-shard1of1.bin');
  fs.truncateSync(shard, fs.statSync(shard).size - 1);
  await assert.rejects(() => tf.loadLayersModel(ioHandler(path.join(folder, 'model.json'))), (e: unknown) => (e as { code?: string }).code === 'ERR_TRUNCATED');
});
