/**
 * Model weights in `.npz` and `.safetensors` through the tfjs entry (saveWeights, loadWeights,
 * ioHandler). It also imports `readWeightsFile`/`writeWeightsFile` from
 * src/formats/weight-files.ts on purpose: the naming scheme is tested below the entry too.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

import * as tf from '@tensorflow/tfjs';
// Loads @tensorflow/tfjs-node first when TENSORIO_TFJS=node: the same tests then run on its backend.
import { EXPECTED_BACKEND, TFJS_MODE } from './tfjs-backend.js';
import fc from 'fast-check';

import { readNpz, readSafetensors, writeSafetensors, type NdArray } from '../../src/index.js';
import { ioHandler, load, loadWeights, save, saveWeights } from '../../src/tfjs/index.js';
import { readWeightsFile, writeWeightsFile } from '../../src/formats/weight-files.js';
import { expectCode } from '../expect-code.js';
import { NATIVE_MODE, runPython, runPythonJson, tempDir } from '../helpers.js';

const dir = tempDir('tensorio-tfjs-formats');

test(`the tests run on the '${EXPECTED_BACKEND}' backend (TENSORIO_TFJS=${TFJS_MODE})`, () => {
  assert.equal(tf.getBackend(), EXPECTED_BACKEND);
});

// The chapter's MLP (demo/chapter-tfjs.mjs). tfjs's Flatten needs rank >= 3, so X (2, 20) is fed as (2, 4, 5).
function mlp(hidden = 256, names: string[] = []): tf.Sequential {
  const [a, b, c] = names;
  return tf.sequential({
    layers: [
      tf.layers.flatten({ inputShape: [4, 5], ...(a ? { name: a } : {}) }),
      tf.layers.dense({ units: hidden, activation: 'relu', ...(b ? { name: b } : {}) }),
      tf.layers.dense({ units: 10, ...(c ? { name: c } : {}) }),
    ],
  });
}

const X = tf.randomUniform([2, 20], -1, 1, 'float32', 11);

function forward(net: tf.LayersModel): Float32Array {
  return (net.predict(X.reshape([2, 4, 5])) as tf.Tensor).dataSync() as Float32Array;
}

// What NumPy computes from the weights [k1, b1, k2, b2] of the MLP, given as JSON on stdout.
const NUMPY_FORWARD = `
x = np.asarray(json.loads(sys.argv[2]), dtype=np.float32).reshape(2, 20)
k1, b1, k2, b2 = ws
y = np.maximum(x @ k1 + b1, 0) @ k2 + b2
`;

function assertClose(actual: number[], expected: Float32Array): void {
  assert.equal(actual.length, expected.length);
  actual.forEach((v, i) => assert.ok(Math.abs(v - (expected[i] as number)) <= 1e-5 * Math.max(1, Math.abs(v)), `y[${i}]: ${v} vs ${expected[i]}`));
}

for (const ext of ['npz', 'safetensors'] as const) {
  for (const mmap of [false, true]) {
    test(`the chapter's MLP: Y2 == Y exactly after saveWeights/loadWeights (.${ext}${mmap ? ', mmap' : ''})`, async () => {
      const net = mlp();
      const Y = forward(net);
      const file = path.join(dir, `4.5saved_model${mmap ? '-mmap' : ''}.${ext}`);
      await saveWeights(net, file);
      const clone = mlp();
      assert.notDeepEqual([...forward(clone)], [...Y]);
      await loadWeights(clone, file, { mmap });
      assert.deepEqual([...forward(clone)], [...Y]);
    });
  }

  test(`.${ext}: tensors are named '<layer>/<weight>', layers in model order, each layer's weights in its order`, async () => {
    const net = mlp(256, ['flat', 'hidden', 'out']);
    const file = path.join(dir, `names.${ext}`);
    await saveWeights(net, file);
    const { layers, metadata } = await readWeightsFile(file, ext, true);
    assert.deepEqual(
      layers.filter((l) => l.weights.length > 0).map((l) => [l.name, l.weights.map((w) => w.name)]),
      [
        ['hidden', ['hidden/kernel', 'hidden/bias']],
        ['out', ['out/kernel', 'out/bias']],
      ],
    );
    // Stored aligned, so mmap gives views of the mapping (the native addon maps; the fallback reads).
    for (const layer of layers) for (const w of layer.weights) assert.equal(w.array.mapped, NATIVE_MODE, `${w.name} mapped`);
    if (ext === 'safetensors') {
      assert.deepEqual(JSON.parse(metadata.layer_names ?? ''), ['flat', 'hidden', 'out']);
      assert.deepEqual(JSON.parse(metadata.weight_names ?? ''), { hidden: ['hidden/kernel', 'hidden/bias'], out: ['out/kernel', 'out/bias'] });
    } else {
      assert.deepEqual(Object.keys(await readNpz(file)), ['hidden/kernel', 'hidden/bias', 'out/kernel', 'out/bias']);
    }
  });

  test(`.${ext}: byName loads the layers whose names match, and leaves the others only with allowUnmatched`, async () => {
    const source = mlp(256, ['flat', 'hidden', 'out']);
    const file = path.join(dir, `byname.${ext}`);
    await saveWeights(source, file);
    // An extra Dense layer in the middle: topologically the file no longer fits, by name it does.
    const target = tf.sequential({
      layers: [
        tf.layers.flatten({ inputShape: [4, 5], name: 'flat' }),
        tf.layers.dense({ units: 256, activation: 'relu', name: 'hidden' }),
        tf.layers.dense({ units: 256, name: 'extra', kernelInitializer: 'identity' }),
        tf.layers.dense({ units: 10, name: 'out' }),
      ],
    });
    target.getLayer('extra').setWeights([tf.eye(256), tf.zeros([256])]);
    await expectCode(() => loadWeights(target, file), 'ERR_SHAPE_MISMATCH', /the file has 2 layers with weights, the model 3/);
    // By name, the extra layer would be left as it is: only allowed when asked for.
    await expectCode(() => loadWeights(target, file, { byName: true }), 'ERR_SHAPE_MISMATCH', /model layers left unset: 'extra' \(extra\/kernel, extra\/bias\); pass \{ allowUnmatched: true \}/);
    await loadWeights(target, file, { byName: true, allowUnmatched: true });
    // With the identity layer in between, the target computes what the source computes.
    const Y = forward(source);
    const Y2 = forward(target);
    Y2.forEach((v, i) => assert.ok(Math.abs(v - (Y[i] as number)) <= 1e-5 * Math.max(1, Math.abs(v))));
    assert.deepEqual([...(target.getLayer('out').getWeights()[0] as tf.Tensor).dataSync()], [...(source.getLayer('out').getWeights()[0] as tf.Tensor).dataSync()]);
  });
}

for (const ext of ['h5', 'npz', 'safetensors'] as const) {
  test(`.${ext}: ERR_SHAPE_MISMATCH names the layer, the weight and both shapes; skipMismatch skips the layer`, async () => {
    const file = path.join(dir, `mismatch.${ext}`);
    await saveWeights(mlp(), file);
    const other = mlp(128);
    const before = (other.layers[2]?.getWeights()[1] as tf.Tensor).dataSync().slice();
    const error = await expectCode(() => loadWeights(other, file), 'ERR_SHAPE_MISMATCH');
    assert.match(error.message, /layer 'dense_Dense\d+', weight 'dense_Dense\d+\/kernel'/);
    assert.match(error.message, /the model expects shape \(20, 128\), file weight 'dense_Dense\d+\/kernel(:0)?' has shape \(20, 256\)/);
    assert.deepEqual((other.layers[2]?.getWeights()[1] as tf.Tensor).dataSync(), before, 'a failed load leaves the model unchanged');
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    await loadWeights(other, file, { skipMismatch: true });
    await new Promise((resolve) => setImmediate(resolve));
    process.off('warning', onWarning);
    assert.equal(warnings.filter((w) => /skipping layer/.test(w)).length, 2, warnings.join('\n'));
  });
}

test('NumPy reads the .npz of saveWeights (np.load, member order = topological order) and its forward pass matches', async () => {
  const net = mlp();
  const Y = forward(net);
  const file = path.join(dir, 'numpy.npz');
  await saveWeights(net, file);
  const result = runPythonJson<{ files: string[]; dtypes: string[]; y: number[] }>(
    `
import sys, json, numpy as np
f = np.load(sys.argv[1])
ws = [f[k] for k in f.files]
${NUMPY_FORWARD}
print(json.dumps({'files': f.files, 'dtypes': [str(w.dtype) for w in ws], 'y': y.ravel().tolist()}))
`,
    [file, JSON.stringify([...X.dataSync()])],
  );
  const [d1, d2] = [net.layers[1]?.name, net.layers[2]?.name];
  assert.deepEqual(result.files, [`${d1}/kernel`, `${d1}/bias`, `${d2}/kernel`, `${d2}/bias`]);
  assert.deepEqual(result.dtypes, ['float32', 'float32', 'float32', 'float32']);
  assertClose(result.y, Y);
});

test('an independent json + numpy reader reads the .safetensors of saveWeights, in the order __metadata__ records', async () => {
  const net = mlp();
  const Y = forward(net);
  const file = path.join(dir, 'numpy.safetensors');
  await saveWeights(net, file);
  const result = runPythonJson<{ layers: string[]; y: number[] }>(
    `
import sys, json, struct, numpy as np
data = open(sys.argv[1], 'rb').read()
(n,) = struct.unpack('<Q', data[:8])
header = json.loads(data[8:8 + n])
meta = header.pop('__metadata__')
base = 8 + n
def tensor(name):
    h = header[name]
    assert h['dtype'] == 'F32'
    b, e = h['data_offsets']
    return np.frombuffer(data[base + b:base + e], dtype='<f4').reshape(h['shape'])
layers = json.loads(meta['layer_names'])
names = json.loads(meta['weight_names'])
ws = [tensor(k) for layer in layers for k in names.get(layer, [])]
${NUMPY_FORWARD}
print(json.dumps({'layers': layers, 'y': y.ravel().tolist()}))
`,
    [file, JSON.stringify([...X.dataSync()])],
  );
  assert.deepEqual(result.layers, net.layers.map((l) => l.name));
  assertClose(result.y, Y);
});

test('weights NumPy saves under the naming scheme load into the tfjs model (np.savez with a dict)', async () => {
  const net = mlp(256, ['flat', 'hidden', 'out']);
  const file = path.join(dir, 'from-numpy.npz');
  runPython(
    `
import sys, numpy as np
rng = np.random.default_rng(0)
w = {'hidden/kernel': rng.standard_normal((20, 256)), 'hidden/bias': rng.standard_normal(256),
     'out/kernel': rng.standard_normal((256, 10)).astype(np.float32), 'out/bias': rng.standard_normal(10).astype(np.float32)}
np.savez(sys.argv[1], **w)
`,
    [file],
  );
  await loadWeights(net, file);
  const stored = await readNpz(file);
  const bias = stored['hidden/bias'];
  assert.equal(bias?.dtype, 'float64');
  assert.deepEqual([...(net.getLayer('hidden').getWeights()[1] as tf.Tensor).dataSync()], [...Float32Array.from(bias?.data as Float64Array)]);
});

test("ioHandler('.safetensors'): model.save / tf.loadLayersModel round trip with Y2 == Y; loadWeights reads the same file", async () => {
  const net = mlp();
  const Y = forward(net);
  const file = path.join(dir, 'model.safetensors');
  await net.save(ioHandler(file));
  const { metadata, tensors } = await readSafetensors(file);
  assert.equal(JSON.parse(metadata.model_topology ?? '{}').class_name, 'Sequential');
  assert.equal(JSON.parse(metadata.weight_specs ?? '[]').length, 4);
  assert.deepEqual(Object.keys(tensors).sort(), net.weights.map((w) => w.originalName).sort());
  const artifacts = await ioHandler(file).load?.();
  assert.ok(Array.isArray(artifacts?.weightData) && artifacts.weightData.length === 4, 'one ArrayBuffer per weight');
  const seen = runPythonJson<{ topology: string; keys: string[] }>(
    `
import sys, json, struct
data = open(sys.argv[1], 'rb').read()
(n,) = struct.unpack('<Q', data[:8])
h = json.loads(data[8:8 + n])
meta = h.pop('__metadata__')
print(json.dumps({'topology': json.loads(meta['model_topology'])['class_name'], 'keys': sorted(h)}))
`,
    [file],
  );
  assert.deepEqual(seen, { topology: 'Sequential', keys: Object.keys(tensors).sort() });
  const again = await tf.loadLayersModel(ioHandler(file));
  assert.deepEqual([...forward(again)], [...Y]);
  const clone = mlp();
  await loadWeights(clone, file);
  assert.deepEqual([...forward(clone)], [...Y]);
});

test("ioHandler('.safetensors') with includeOptimizer: the training config and Adam's state come back", async () => {
  const net = mlp();
  net.compile({ optimizer: tf.train.adam(0.01), loss: 'meanSquaredError' });
  await net.fit(X.reshape([2, 4, 5]), tf.ones([2, 10]), { epochs: 2, verbose: 0 });
  const file = path.join(dir, 'trained.safetensors');
  await net.save(ioHandler(file), { includeOptimizer: true });
  const { metadata, tensors } = await readSafetensors(file);
  assert.ok(metadata.training_config, 'the training config is kept');
  assert.ok(Object.keys(tensors).some((k) => k.startsWith('optimizer/')), Object.keys(tensors).join());
  const again = await tf.loadLayersModel(ioHandler(file));
  assert.deepEqual([...forward(again)], [...forward(net)]);
  const state = async (m: tf.LayersModel) => Promise.all((await m.optimizer.getWeights()).map(async (w) => [w.name, [...(await w.tensor.data())]]));
  assert.deepEqual(await state(again), await state(net));
});

test('ioHandler: an RNN model round-trips through .safetensors', async () => {
  const model = tf.sequential({
    layers: [tf.layers.bidirectional({ layer: tf.layers.lstm({ units: 3 }) as tf.RNN, inputShape: [4, 2] }), tf.layers.dense({ units: 2 })],
  });
  const x = tf.randomUniform([1, 4, 2], -1, 1, 'float32', 3);
  const y = (model.predict(x) as tf.Tensor).dataSync();
  const file = path.join(dir, 'rnn.safetensors');
  await model.save(ioHandler(file));
  const again = await tf.loadLayersModel(ioHandler(file));
  assert.deepEqual([...(again.predict(x) as tf.Tensor).dataSync()], [...y]);
  const clone = tf.sequential({
    layers: [tf.layers.bidirectional({ layer: tf.layers.lstm({ units: 3 }) as tf.RNN, inputShape: [4, 2] }), tf.layers.dense({ units: 2 })],
  });
  const weightsFile = path.join(dir, 'rnn-weights.safetensors');
  await saveWeights(model, weightsFile);
  await loadWeights(clone, weightsFile);
  assert.deepEqual([...(clone.predict(x) as tf.Tensor).dataSync()], [...y]);
});

test("ERR_BAD_METADATA: a weights-only .safetensors given to ioHandler, and files without the naming scheme given to loadWeights", async () => {
  const weightsOnly = path.join(dir, 'weights-only.safetensors');
  await saveWeights(mlp(), weightsOnly);
  await expectCode(() => tf.loadLayersModel(ioHandler(weightsOnly)), 'ERR_BAD_METADATA', /weights-only file; build the model and use loadWeights/);
  const plain = path.join(dir, 'plain.safetensors');
  await writeSafetensors(plain, { kernel: { dtype: 'float32', shape: [1], data: new Float32Array(1) } });
  await expectCode(() => loadWeights(mlp(), plain), 'ERR_BAD_METADATA', /no 'layer_names' and 'weight_names'/);
  const lying = path.join(dir, 'lying.safetensors');
  await writeSafetensors(lying, { 'a/kernel': { dtype: 'float32', shape: [1], data: new Float32Array(1) } }, { metadata: { layer_names: '["a"]', weight_names: '{"a": ["a/bias"]}' } });
  await expectCode(() => loadWeights(mlp(), lying), 'ERR_BAD_METADATA', /lists tensor 'a\/bias', which the file lacks/);
  const badJson = path.join(dir, 'bad-json.safetensors');
  await writeSafetensors(badJson, { 'a/kernel': { dtype: 'float32', shape: [1], data: new Float32Array(1) } }, { metadata: { layer_names: '["a"', weight_names: '{}' } });
  await expectCode(() => loadWeights(mlp(), badJson), 'ERR_BAD_METADATA', /layer_names is not valid JSON/);
  const npz = path.join(dir, 'plain.npz');
  runPython('import sys, numpy as np\nnp.savez(sys.argv[1], np.zeros(3))', [npz]);
  await expectCode(() => loadWeights(mlp(), npz), 'ERR_BAD_METADATA', /member 'arr_0' is not named '<layer>\/<weight>'/);
});

test("ERR_INVALID_ARGUMENT: ioHandler('.npz') points to the formats that hold a topology; bad names and options", async () => {
  await expectCode(() => ioHandler(path.join(dir, 'm.npz')), 'ERR_INVALID_ARGUMENT', /\.safetensors, \.h5 or model\.json/);
  const slashed = tf.sequential({ layers: [tf.layers.dense({ units: 2, inputShape: [3], name: 'a/b' })] });
  await expectCode(() => saveWeights(slashed, path.join(dir, 'slash.npz')), 'ERR_INVALID_ARGUMENT', /without '\/'/);
  await expectCode(() => saveWeights(mlp(), path.join(dir, 'x.safetensors'), { compress: true }), 'ERR_INVALID_ARGUMENT', /compress applies to \.npz only/);
  await expectCode(() => saveWeights(mlp(), path.join(dir, 'x.npz'), { layout: 'keras3' }), 'ERR_INVALID_ARGUMENT', /layout applies to \.h5/);
  assert.ok(!fs.existsSync(path.join(dir, 'slash.npz')));
});

test('saveWeights .npz with compress: NumPy reads the deflated members, and loadWeights too', async () => {
  const net = mlp();
  const Y = forward(net);
  const file = path.join(dir, 'compressed.npz');
  await saveWeights(net, file, { compress: true });
  const clone = mlp();
  await loadWeights(clone, file);
  assert.deepEqual([...forward(clone)], [...Y]);
  assert.equal(runPython('import sys, numpy as np\nprint(sum(np.load(sys.argv[1])[k].size for k in np.load(sys.argv[1]).files))', [file]).trim(), String(20 * 256 + 256 + 256 * 10 + 10));
});

for (const ext of ['npz', 'safetensors'] as const) {
  test(`save/load tensors as .${ext}: an array, a record, every tfjs dtype; NumPy reads them`, async () => {
    const x = tf.range(0, 4);
    const y = tf.zeros([4]);
    const listFile = path.join(dir, `xy.${ext}`);
    await save(listFile, [x, y]);
    const pair = (await load(listFile)) as tf.Tensor[];
    assert.ok(Array.isArray(pair) && pair.length === 2);
    assert.deepEqual([...(pair[0] as tf.Tensor).dataSync()], [0, 1, 2, 3]);
    const dictFile = path.join(dir, `dict.${ext}`);
    const dict = { x, y, flags: tf.tensor([true, false], [2], 'bool'), n: tf.tensor([[1, -2]], [1, 2], 'int32'), z: tf.complex([1, 2], [3, -4]) };
    await save(dictFile, dict);
    const back = (await load(dictFile)) as Record<string, tf.Tensor>;
    assert.deepEqual(Object.keys(back).sort(), ['flags', 'n', 'x', 'y', 'z']);
    for (const [k, t] of Object.entries(dict)) {
      const got = back[k] as tf.Tensor;
      assert.equal(got.dtype, t.dtype, k);
      assert.deepEqual(got.shape, t.shape, k);
      assert.deepEqual(await got.array(), await t.array(), k);
    }
    const reader =
      ext === 'npz'
        ? 'f = np.load(sys.argv[1]); d = {k: f[k] for k in f.files}'
        : `
data = open(sys.argv[1], 'rb').read()
(n,) = struct.unpack('<Q', data[:8])
h = json.loads(data[8:8 + n]); h.pop('__metadata__', None)
kinds = {'F32': '<f4', 'I32': '<i4', 'BOOL': '?', 'C64': '<c8'}
d = {k: np.frombuffer(data[8 + n + v['data_offsets'][0]:8 + n + v['data_offsets'][1]], dtype=kinds[v['dtype']]).reshape(v['shape']) for k, v in h.items()}`;
    const seen = runPythonJson<Record<string, [string, string]>>(
      `
import sys, json, struct, numpy as np
${reader}
print(json.dumps({k: [str(v.dtype), repr(v.tolist())] for k, v in d.items()}))
`,
      [dictFile],
    );
    assert.deepEqual(seen, {
      x: ['float32', '[0.0, 1.0, 2.0, 3.0]'],
      y: ['float32', '[0.0, 0.0, 0.0, 0.0]'],
      flags: ['bool', '[True, False]'],
      n: ['int32', '[[1, -2]]'],
      z: ['complex64', '[(1+3j), (2-4j)]'],
    });
    // One tensor is member arr_0, as the main entry's save (and np.savez(f, x)) writes it.
    await save(path.join(dir, `one.${ext}`), x);
    const one = (await load(path.join(dir, `one.${ext}`))) as tf.Tensor[];
    assert.ok(Array.isArray(one) && one.length === 1);
    assert.deepEqual([...(one[0] as tf.Tensor).dataSync()], [0, 1, 2, 3]);
  });
}

test('load .npz / .safetensors: dtypes tfjs lacks convert (float64 → float32, int64 → int32 with a range check) unless convert: false', async () => {
  const file = path.join(dir, 'numpy-dtypes.npz');
  runPython('import sys, numpy as np\nnp.savez(sys.argv[1], a=np.array([0.5, 1e-3]), i=np.array([5, -7], dtype=np.int64))', [file]);
  const got = (await load(file)) as Record<string, tf.Tensor>;
  assert.equal(got.a?.dtype, 'float32');
  assert.deepEqual([...(got.i as tf.Tensor).dataSync()], [5, -7]);
  await expectCode(() => load(file, { convert: false }), 'ERR_UNSUPPORTED_DTYPE');
  const big = path.join(dir, 'big.safetensors');
  await writeSafetensors(big, { b: { dtype: 'int64', shape: [1], data: new BigInt64Array([1n << 40n]) } });
  await expectCode(() => load(big), 'ERR_UNSUPPORTED_DTYPE', /tensor 'b' is int64 .*does not fit tfjs's int32/);
});

test("ioHandler('.safetensors'): weight specs that do not fit the tensors give ERR_SHAPE_MISMATCH / ERR_BAD_METADATA", async () => {
  const topology = JSON.stringify({ class_name: 'Sequential', config: { name: 's', layers: [] } });
  const kernel: NdArray = { dtype: 'float32', shape: [2, 3], data: new Float32Array(6) };
  const cases: [string, Record<string, string>, 'ERR_SHAPE_MISMATCH' | 'ERR_BAD_METADATA', RegExp][] = [
    ['shape', { weight_specs: '[{"name":"d/kernel","shape":[3,2],"dtype":"float32"}]' }, 'ERR_SHAPE_MISMATCH', /the spec says \(3, 2\), the tensor has \(2, 3\)/],
    ['missing', { weight_specs: '[{"name":"d/bias","shape":[3],"dtype":"float32"}]' }, 'ERR_BAD_METADATA', /has no tensor 'd\/bias'/],
    ['dtype', { weight_specs: '[{"name":"d/kernel","shape":[2,3],"dtype":"string"}]' }, 'ERR_BAD_METADATA', /is not \{name, shape, dtype/],
    ['int', { weight_specs: '[{"name":"d/kernel","shape":[2,3],"dtype":"int32"}]' }, 'ERR_BAD_METADATA', /the spec says int32, the tensor is float32/],
    ['json', { weight_specs: '[{' }, 'ERR_BAD_METADATA', /weight_specs is not valid JSON/],
    ['topology', { weight_specs: '[]', model_topology: '[1]' }, 'ERR_BAD_METADATA', /model_topology is not a JSON object/],
  ];
  for (const [name, metadata, code, message] of cases) {
    const file = path.join(dir, `bad-specs-${name}.safetensors`);
    await writeSafetensors(file, { 'd/kernel': kernel }, { metadata: { model_topology: topology, ...metadata } });
    await expectCode(() => ioHandler(file).load?.(), code, message);
  }
  const list = path.join(dir, 'bad-weight-names.safetensors');
  await writeSafetensors(list, { 'd/kernel': kernel }, { metadata: { layer_names: '["d"]', weight_names: '{"d": "d/kernel"}' } });
  await expectCode(() => loadWeights(mlp(), list), 'ERR_BAD_METADATA', /weight_names\['d'\] must be a JSON list of strings/);
  const stray = path.join(dir, 'stray-layer.safetensors');
  await writeSafetensors(stray, { 'd/kernel': kernel }, { metadata: { layer_names: '[]', weight_names: '{"d": ["d/kernel"]}' } });
  await expectCode(() => loadWeights(mlp(), stray), 'ERR_BAD_METADATA', /has layer 'd', which layer_names lacks/);
});

test('property: any layers (names, weight names, shapes, dtypes) come back from both formats in the order written', async () => {
  const name = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_.:-]{0,11}$/);
  const weight = fc.record({ weight: fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_/]{0,9}$/), shape: fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 3 }), dtype: fc.constantFrom('float32', 'int32', 'float64', 'uint8') });
  const layers = fc.uniqueArray(fc.record({ name, weights: fc.uniqueArray(weight, { selector: (w) => w.weight, maxLength: 4 }) }), { selector: (l) => l.name, maxLength: 5 });
  let run = 0;
  await fc.assert(
    fc.asyncProperty(layers, fc.constantFrom('npz', 'safetensors') as fc.Arbitrary<'npz' | 'safetensors'>, async (spec, format) => {
      const list = spec.map((l) => ({
        name: l.name,
        weights: l.weights.map((w) => {
          const count = w.shape.reduce((a, b) => a * b, 1);
          const data = w.dtype === 'float32' ? new Float32Array(count).map((_, i) => i / 3) : w.dtype === 'int32' ? new Int32Array(count).map((_, i) => -i) : w.dtype === 'float64' ? new Float64Array(count).map((_, i) => i * 1.5) : new Uint8Array(count).map((_, i) => i);
          return { weight: w.weight, array: { dtype: w.dtype, shape: w.shape, data } as NdArray };
        }),
      }));
      const file = path.join(dir, `prop-${run++}.${format}`);
      await writeWeightsFile(file, format, list, { fsync: false });
      const back = await readWeightsFile(file, format);
      const expected = list.filter((l) => l.weights.length > 0 || format === 'safetensors');
      assert.deepEqual(
        back.layers.map((l) => [l.name, l.weights.map((w) => [w.name, w.array.dtype, w.array.shape, Array.from(w.array.data as ArrayLike<number>)])]),
        expected.map((l) => [l.name, l.weights.map((w) => [`${l.name}/${w.weight}`, w.array.dtype, w.array.shape, Array.from(w.array.data as ArrayLike<number>)])]),
      );
      fs.rmSync(file);
    }),
    { numRuns: 60 },
  );
});
