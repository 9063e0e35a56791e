/**
 * The bridge between NdArray and tf.Tensor (toTensor / fromTensor) and everything routed
 * through it: Fortran order, the documented dtype conversions, and files NumPy wrote in
 * Fortran order reaching tfjs through loadWeights, load and `tensorio convert`.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

import * as tf from '@tensorflow/tfjs';
import './tfjs-backend.js';

import { type NdArray } from '../../src/index.js';
import { fromTensor, load, loadWeights, toTensor } from '../../src/tfjs/index.js';
import { expectCode } from '../expect-code.js';
import { oraclePython, ROOT, runOracleJson, runPythonWith, tempDir } from '../helpers.js';

const dir = tempDir('tfjs-bridge');
const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');

test('toTensor copies a Fortran-order array to C order, for every tfjs dtype and the converted ones', () => {
  // Logical [[0, 1, 2], [3, 4, 5]] stored column-major: 0 3 1 4 2 5.
  const f = [0, 3, 1, 4, 2, 5];
  const cases: NdArray[] = [
    { dtype: 'float32', shape: [2, 3], data: Float32Array.from(f), order: 'F' },
    { dtype: 'int32', shape: [2, 3], data: Int32Array.from(f), order: 'F' },
    { dtype: 'float64', shape: [2, 3], data: Float64Array.from(f), order: 'F' },
    { dtype: 'int64', shape: [2, 3], data: BigInt64Array.from(f.map(BigInt)), order: 'F' },
    { dtype: 'uint64', shape: [2, 3], data: BigUint64Array.from(f.map(BigInt)), order: 'F' },
    { dtype: 'uint8', shape: [2, 3], data: Uint8Array.from(f), order: 'F' },
  ];
  for (const array of cases) {
    const t = toTensor(array);
    assert.deepEqual(t.shape, [2, 3], array.dtype);
    assert.deepEqual(t.arraySync(), [[0, 1, 2], [3, 4, 5]], array.dtype);
    t.dispose();
  }
  const bool = toTensor({ dtype: 'bool', shape: [2, 2], data: Uint8Array.of(1, 0, 0, 0), order: 'F' });
  assert.equal(bool.dtype, 'bool');
  assert.deepEqual(bool.arraySync(), [[1, 0], [0, 0]]); // tfjs gives bool values as 0/1
  // complex128 in F order: logical [[1+10i, 3+30i], [2+20i, 4+40i]] stored column-major.
  const c = toTensor({ dtype: 'complex128', shape: [2, 2], data: Float64Array.of(1, 10, 3, 30, 2, 20, 4, 40), order: 'F' });
  assert.equal(c.dtype, 'complex64');
  assert.deepEqual([...tf.real(c).dataSync()], [1, 2, 3, 4]);
  assert.deepEqual([...tf.imag(c).dataSync()], [10, 20, 30, 40]);
});

test('toTensor: float16 and bfloat16 become float32; an int64 that does not fit int32 is ERR_UNSUPPORTED_DTYPE naming the tensor', async () => {
  assert.deepEqual([...toTensor({ dtype: 'float16', shape: [2], data: Uint16Array.of(0x3c00, 0xc000) }).dataSync()], [1, -2]);
  assert.deepEqual([...toTensor({ dtype: 'bfloat16', shape: [2], data: Uint16Array.of(0x3f80, 0x4040) }).dataSync()], [1, 3]);
  assert.deepEqual([...toTensor({ dtype: 'int64', shape: [2], data: BigInt64Array.of(-(2n ** 31n), 2n ** 31n - 1n) }).dataSync()], [-(2 ** 31), 2 ** 31 - 1]);
  await expectCode(() => toTensor({ dtype: 'int64', shape: [2], data: BigInt64Array.of(0n, 2n ** 31n) }, { name: 'step' }), 'ERR_UNSUPPORTED_DTYPE', /tensor 'step' is int64.*2147483648 at index 1/);
  await expectCode(() => toTensor({ dtype: 'uint64', shape: [1], data: BigUint64Array.of(2n ** 63n) }, { name: 'u' }), 'ERR_UNSUPPORTED_DTYPE', /tensor 'u' is uint64/);
  await expectCode(() => toTensor({ dtype: 'float64', shape: [1], data: Float64Array.of(1) }, { name: 'w', convert: false }), 'ERR_UNSUPPORTED_DTYPE', /tensor 'w' is float64/);
});

test('fromTensor gives C-order NdArrays of tfjs dtypes, and toTensor(fromTensor(t)) is t', async () => {
  const tensors = [
    tf.tensor([[1.5, 2], [3, 4]]),
    tf.tensor([1, -2, 3], [3], 'int32'),
    tf.tensor([true, false, true], [3], 'bool'),
    tf.complex([1, 2], [3, 4]),
    tf.scalar(7),
  ];
  for (const t of tensors) {
    const array = await fromTensor(t);
    assert.equal(array.dtype, t.dtype);
    assert.deepEqual(array.shape, t.shape);
    assert.equal(array.order, undefined);
    const back = toTensor(array);
    assert.equal(back.dtype, t.dtype);
    assert.deepEqual(back.arraySync(), t.arraySync());
  }
  assert.deepEqual([...((await fromTensor(tf.tensor([true, false], [2], 'bool'))).data as Uint8Array)], [1, 0]);
  await expectCode(() => fromTensor(tf.tensor(['a', 'b']), 'labels'), 'ERR_UNSUPPORTED_DTYPE', /tensor 'labels' has dtype string/);
});

// An MLP whose kernels NumPy wrote in Fortran order (W.T saved as is): NumPy's forward pass
// is the reference, computed in float32 in Python.
const FORTRAN_MLP = `
import sys, json, numpy as np
rng = np.random.default_rng(3)
W1 = rng.standard_normal((16, 20)).astype(np.float32).T     # (20, 16), F-contiguous
W2 = rng.standard_normal((4, 16)).astype(np.float32).T      # (16, 4), F-contiguous
b1 = rng.standard_normal(16).astype(np.float32)
b2 = rng.standard_normal(4).astype(np.float32)
assert W1.flags.f_contiguous and not W1.flags.c_contiguous
np.savez(sys.argv[1], **{'d1/kernel': W1, 'd1/bias': b1, 'd2/kernel': W2, 'd2/bias': b2})
X = rng.standard_normal((3, 20)).astype(np.float32)
Y = np.maximum(X @ W1 + b1, 0) @ W2 + b2
print(json.dumps({'x': X.tolist(), 'y': Y.astype(np.float64).tolist()}))
`;

function mlp(): tf.Sequential {
  return tf.sequential({
    layers: [tf.layers.dense({ name: 'd1', inputShape: [20], units: 16, activation: 'relu' }), tf.layers.dense({ name: 'd2', units: 4 })],
  });
}

test("loadWeights of an .npz with Fortran-order kernels predicts what NumPy's forward pass computes", async () => {
  const file = path.join(dir, 'fortran-mlp.npz');
  const { x, y } = runOracleJson<{ x: number[][]; y: number[][] }>(FORTRAN_MLP, [file]);
  // The archive really holds Fortran-order members (the case tfjs used to scramble).
  const header = runPythonWith(oraclePython(), `import sys, zipfile, numpy as np, io
z = zipfile.ZipFile(sys.argv[1]); f = io.BytesIO(z.read('d1/kernel.npy')); np.lib.format.read_magic(f)
print(np.lib.format.read_array_header_1_0(f)[1])`, [file]);
  assert.equal(header.trim(), 'True');
  for (const mmap of [false, true]) {
    const model = mlp();
    await loadWeights(model, file, { mmap });
    const predicted = (model.predict(tf.tensor(x)) as tf.Tensor).arraySync() as number[][];
    for (let i = 0; i < y.length; i++) {
      for (let j = 0; j < (y[i] as number[]).length; j++) {
        const want = (y[i] as number[])[j] as number;
        const got = (predicted[i] as number[])[j] as number;
        assert.ok(Math.abs(got - want) <= 1e-4 * Math.max(1, Math.abs(want)), `Y[${i}][${j}]: tfjs ${got}, NumPy ${want} (mmap ${mmap})`);
      }
    }
  }
});

test('load() of Fortran-order .npy files from the tfjs entry gives the logical values', async () => {
  const script = `import sys, numpy as np
np.save(sys.argv[1] + '/f32.npy', np.arange(24, dtype='<f4').reshape(2, 3, 4).T)
np.save(sys.argv[1] + '/f64be.npy', np.arange(6, dtype='>f8').reshape(2, 3).T)
np.save(sys.argv[1] + '/i64.npy', np.arange(6, dtype='<i8').reshape(3, 2).T * -5)
np.save(sys.argv[1] + '/c8.npy', (np.arange(6) + 1j * np.arange(6)).astype('<c8').reshape(2, 3).T)
np.save(sys.argv[1] + '/b.npy', (np.arange(6).reshape(2, 3) % 2 == 0).T)`;
  runPythonWith(oraclePython(), script, [dir]);
  const logical = (shape: number[], scale = 1): unknown => {
    // np.arange(n).reshape(shape).T, as nested lists.
    const n = shape.reduce((a, b) => a * b, 1);
    const values = Array.from({ length: n }, (_, i) => i * scale + 0); // + 0: -0 is 0 in int32
    return tf.tidy(() => tf.tensor(values).reshape(shape).transpose().arraySync());
  };
  const f32 = (await load(path.join(dir, 'f32.npy'))) as tf.Tensor;
  assert.deepEqual(f32.shape, [4, 3, 2]);
  assert.deepEqual(f32.arraySync(), logical([2, 3, 4]));
  assert.deepEqual(((await load(path.join(dir, 'f64be.npy'))) as tf.Tensor).arraySync(), logical([2, 3]));
  const i64 = (await load(path.join(dir, 'i64.npy'))) as tf.Tensor;
  assert.equal(i64.dtype, 'int32');
  assert.deepEqual(i64.arraySync(), logical([3, 2], -5));
  const c8 = (await load(path.join(dir, 'c8.npy'))) as tf.Tensor;
  assert.deepEqual(tf.real(c8).arraySync(), logical([2, 3]));
  assert.deepEqual(tf.imag(c8).arraySync(), logical([2, 3]));
  const b = (await load(path.join(dir, 'b.npy'))) as tf.Tensor;
  assert.equal(b.dtype, 'bool');
  assert.deepEqual(b.arraySync(), [[1, 0], [0, 1], [1, 0]]);
});

test('tensorio convert of Fortran-order members to model.json writes them in C order (read back by NumPy from the manifest)', () => {
  const src = path.join(dir, 'fortran-members.npz');
  const out = path.join(dir, 'fortran-out', 'model.json');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  runPythonWith(oraclePython(), `import sys, numpy as np
np.savez(sys.argv[1], a=np.arange(12, dtype='<f4').reshape(3, 4).T, b=np.arange(24, dtype='<f8').reshape(2, 3, 4).T, c=np.arange(6, dtype='<i8').reshape(2, 3).T)`, [src]);
  const result = spawnSync(process.execPath, [CLI, 'convert', src, out, '--no-fsync'], { encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  const check = runPythonWith(oraclePython(), `import sys, json, os, numpy as np
src = np.load(sys.argv[1]); m = json.load(open(sys.argv[2])); base = os.path.dirname(sys.argv[2])
data = b''.join(open(os.path.join(base, p), 'rb').read() for g in m['weightsManifest'] for p in g['paths'])
off = 0; ok = {}
for g in m['weightsManifest']:
    for w in g['weights']:
        n = int(np.prod(w['shape'])); dt = {'float32': '<f4', 'int32': '<i4'}[w['dtype']]
        a = np.frombuffer(data, dt, n, off).reshape(w['shape']); off += n * 4
        ok[w['name']] = bool(np.array_equal(a, src[w['name']])) and list(a.shape) == list(src[w['name']].shape)
print(json.dumps(ok))`, [src, out]);
  assert.deepEqual(JSON.parse(check), { a: true, b: true, c: true });
});
