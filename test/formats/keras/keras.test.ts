/**
 * Keras HDF5 weights (src/formats/keras/weights-h5.ts): the legacy `.h5` and Keras 3
 * `.weights.h5` layouts, read and written, with h5py as the judge. It also imports
 * `kerasAttributeChunks` from that module on purpose: the attribute split is internal.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

import { readKerasWeights, TensorioError, writeKerasWeights, type NdArray } from '../../../src/index.js';
import { kerasAttributeChunks } from '../../../src/formats/keras/weights-h5.js';
import { h5pyPythons, runPythonWith, tempDir } from '../../helpers.js';
import { hex, KERAS_READ, type KerasDump } from './keras-dump.js';

const dir = tempDir('tensorio-keras');


function dense(rows: number, cols: number, seed: number): NdArray {
  const data = new Float32Array(rows * cols);
  for (let i = 0; i < data.length; i++) data[i] = Math.fround(Math.sin(i * 0.37 + seed) / 3);
  return { dtype: 'float32', shape: rows === 1 ? [cols] : [rows, cols], data };
}

for (const { label, python } of h5pyPythons()) {
  const runJson = <T>(script: string, args: string[] = []): T => JSON.parse(runPythonWith(python(), script, args)) as T;

  test(`${label}: Keras reads our legacy file: fixed-length ASCII attributes, weightless layers, weight datasets`, async () => {
    const file = path.join(dir, 'w.h5');
    await writeKerasWeights(file, [
      { name: 'flatten', weights: [] },
      { name: 'dense', weights: [{ name: 'dense/kernel:0', array: dense(20, 256, 1) }, { name: 'dense/bias:0', array: dense(1, 256, 2) }] },
      { name: 'dense_1', weights: [{ name: 'dense_1/kernel:0', array: dense(256, 10, 3) }, { name: 'dense_1/bias:0', array: dense(1, 10, 4) }] },
    ]);
    const types = runJson<Record<string, string>>(
      `
import sys, json, h5py
f = h5py.File(sys.argv[1], 'r')
out = {}
for name in ['layer_names', 'backend', 'keras_version']:
    a = h5py.h5a.open(f.id, name.encode())
    t = a.get_type()
    out[name] = '%s/%s/%s' % (type(t).__name__, t.is_variable_str(), t.get_cset())
out['weight_names'] = str(f['dense'].attrs['weight_names'].dtype)
out['flatten'] = str(f['flatten'].attrs['weight_names'].dtype) + str(f['flatten'].attrs['weight_names'].shape)
out['layer_names_value'] = [n.decode('utf8') for n in f.attrs['layer_names']]
out['backend_value'] = f.attrs['backend'].decode('utf8')
print(json.dumps(out))
`,
      [file],
    );
    assert.equal(types.layer_names, 'TypeStringID/False/0');
    assert.equal(types.backend, 'TypeStringID/False/0');
    assert.equal(types.weight_names, '|S14');
    assert.equal(types.flatten, 'float64(0,)');
    assert.deepEqual(types.layer_names_value, ['flatten', 'dense', 'dense_1']);
    assert.equal(types.backend_value, 'tensorflow');
    const expected = runJson<KerasDump>(KERAS_READ, [file]);
    const ours = await readKerasWeights(file);
    assert.deepEqual(expected.map(([n, w]) => [n, w.map(([x]) => x)]), ours.layers.map((l) => [l.name, l.weights.map((w) => w.name)]));
  });

  test(`${label}: layer_names past 64 KiB is split into layer_names0..N as Keras does, and read back joined`, async () => {
    const names = Array.from({ length: 700 }, (_, i) => `layer_with_a_rather_long_generated_name_${'x'.repeat(60)}_${i}`);
    const chunks = kerasAttributeChunks(names);
    assert.ok(chunks.length > 1);
    assert.deepEqual(chunks.flat(), names);
    const file = path.join(dir, 'many.h5');
    await writeKerasWeights(file, names.map((name) => ({ name, weights: [] })));
    const seen = runJson<{ keys: string[]; names: string[] }>(
      `
import sys, json, h5py, numpy as np
f = h5py.File(sys.argv[1], 'r')
keys = sorted(k for k in f.attrs.keys() if k.startswith('layer_names'))
names = []
for k in keys:
    names.extend(n.decode('utf8') for n in f.attrs[k])
# Keras's own splitting of the same list, for comparison.
HDF5_OBJECT_HEADER_LIMIT = 64512
data = np.asarray([n.encode('utf8') for n in json.loads(sys.argv[2])])
num = 1
chunked = np.array_split(data, num)
while any(x.nbytes > HDF5_OBJECT_HEADER_LIMIT for x in chunked):
    num += 1
    chunked = np.array_split(data, num)
print(json.dumps({'keys': keys, 'names': names, 'num': num}))
`,
      [file, JSON.stringify(names)],
    ) as { keys: string[]; names: string[]; num?: number };
    assert.equal(seen.keys.length, chunks.length);
    assert.equal((seen as { num?: number }).num, chunks.length);
    assert.deepEqual([...seen.names].sort(), [...names].sort());
    const back = await readKerasWeights(file);
    assert.deepEqual(back.layers.map((l) => l.name), names);
  });

  test(`${label}: float64 and 0-d weights keep their dtype and shape both ways`, async () => {
    const file = path.join(dir, 'f64.h5');
    const w64: NdArray = { dtype: 'float64', shape: [2, 2], data: new Float64Array([0.1, 0.2, 0.3, 1e-300]) };
    const scalar: NdArray = { dtype: 'float32', shape: [], data: new Float32Array([4.5]) };
    await writeKerasWeights(file, [{ name: 'bn', weights: [{ name: 'bn/w:0', array: w64 }, { name: 'bn/step:0', array: scalar }] }]);
    const expected = runJson<KerasDump>(KERAS_READ, [file]);
    assert.deepEqual(expected[0]?.[1].map(([, d]) => [d.dtype, d.shape]), [['<f8', [2, 2]], ['<f4', []]]);
    const back = await readKerasWeights(file);
    assert.equal(back.layers[0]?.weights[0]?.array.dtype, 'float64');
    assert.deepEqual(back.layers[0]?.weights[1]?.array.shape, []);
    assert.equal(hex(back.layers[0]?.weights[0]?.array as NdArray), hex(w64));
  });

  test(`${label}: Keras 3 layout round trip: layers/<name>/vars/<i>`, async () => {
    const file = path.join(dir, 'm.weights.h5');
    await writeKerasWeights(
      file,
      [
        { name: 'flatten', weights: [] },
        { name: 'dense', weights: [{ name: 'kernel', array: dense(20, 256, 1) }, { name: 'bias', array: dense(1, 256, 2) }] },
      ],
      { layout: 'keras3' },
    );
    const back = await readKerasWeights(file);
    assert.equal(back.layout, 'keras3');
    const d = back.layers.find((l) => l.name === 'dense');
    assert.ok(d);
    assert.deepEqual(d.weights.map((w) => w.name), ['0', '1']);
    assert.equal(hex(d.weights[0]?.array as NdArray), hex(dense(20, 256, 1)));
    const expected = runJson<KerasDump>(KERAS_READ, [file]);
    assert.deepEqual(expected.map(([n]) => n).sort(), ['dense', 'flatten']);
  });

  test(`${label}: full-model layout: model_config at the root, weights under model_weights`, async () => {
    const file = path.join(dir, 'full.h5');
    const config = JSON.stringify({ class_name: 'Sequential', config: { name: 's', layers: [] } });
    await writeKerasWeights(file, [{ name: 'dense', weights: [{ name: 'dense/kernel:0', array: dense(2, 3, 1) }] }], { modelConfig: config });
    const back = await readKerasWeights(file);
    assert.equal(back.modelConfig, config);
    assert.equal(back.layers[0]?.name, 'dense');
    const py = runJson<string>(`import sys, json, h5py\nf = h5py.File(sys.argv[1], 'r')\nc = f.attrs['model_config']\nprint(json.dumps(c.decode('utf8') if hasattr(c, 'decode') else c))`, [file]);
    assert.equal(py, config);
  });
}

test('ERR_BAD_HEADER: an HDF5 file that holds no Keras weights', async () => {
  const file = path.join(dir, 'plain.h5');
  const { writeH5 } = await import('../../../src/index.js');
  await writeH5(file, { x: dense(2, 2, 0) });
  await assert.rejects(readKerasWeights(file), (e: unknown) => e instanceof TensorioError && e.code === 'ERR_BAD_HEADER');
});

test('ERR_INVALID_ARGUMENT: two layers with one name', async () => {
  const file = path.join(dir, 'dup.h5');
  await assert.rejects(
    writeKerasWeights(file, [{ name: 'a', weights: [] }, { name: 'a', weights: [] }]),
    (e: unknown) => e instanceof TensorioError && e.code === 'ERR_INVALID_ARGUMENT',
  );
  assert.equal(fs.existsSync(file), false);
});
