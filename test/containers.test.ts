/** save() and load(): the chapter's list and dict examples in .npy and .npz form, both ways with NumPy. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';

import { load, ndarray, save, type LoadedArray, type NdArray, type PyObject } from '../src/index.js';
import { expectCode } from './expect-code.js';
import { NATIVE_MODE, runPython, runPythonJson, tempDir } from './helpers.js';

const dir = tempDir('containers');
let counter = 0;
const tmp = (name: string): string => path.join(dir, `${counter++}-${name}`);


const values = (a: unknown): unknown[] => Array.from((a as NdArray).data as ArrayLike<unknown>);

// The chapter's tensors: x = torch.arange(4), y = torch.zeros(4); mydict = {'x': x, 'y': y}.
const x = ndarray(new Float32Array([0, 1, 2, 3]));
const y = ndarray(new Float32Array(4));
const w = ndarray(new Float64Array([1, 2, 3, 4, 5, 6]), [2, 3]);

const DUMP = `import numpy as np, json, sys
def plain(v):
    if isinstance(v, np.ndarray) and v.dtype != object: return {'dtype': str(v.dtype), 'shape': list(v.shape), 'data': v.ravel().tolist()}
    if isinstance(v, np.ndarray): return plain(v.tolist()) if v.ndim else plain(v.item())
    if isinstance(v, dict): return {k: plain(u) for k, u in v.items()}
    if isinstance(v, (list, tuple)): return [plain(u) for u in v]
    return v
f = sys.argv[1]
v = np.load(f, allow_pickle=True)
if f.endswith('.npz'): v = {k: v[k] for k in v.files}
print(json.dumps(plain(v)))`;

describe('save() read by NumPy', () => {
  test('.npy: an array, a list (pickled object array), a dict (0-d object array)', async () => {
    const one = tmp('x.npy');
    await save(one, x);
    assert.deepEqual(runPythonJson(DUMP, [one]), { dtype: 'float32', shape: [4], data: [0, 1, 2, 3] });
    const list = tmp('xy.npy');
    await save(list, [x, y]);
    assert.deepEqual(runPythonJson(DUMP, [list]), [
      { dtype: 'float32', shape: [4], data: [0, 1, 2, 3] },
      { dtype: 'float32', shape: [4], data: [0, 0, 0, 0] },
    ]);
    // Python sees exactly the object array np.save would have written.
    assert.equal(runPython(`import numpy as np, sys\na = np.load(sys.argv[1], allow_pickle=True)\nprint(a.dtype, a.shape, type(a[0]).__name__)`, [list]).trim(), 'object (2,) ndarray');
    const dict = tmp('mydict.npy');
    await save(dict, { x, y, w });
    assert.deepEqual(runPythonJson(DUMP, [dict]), {
      x: { dtype: 'float32', shape: [4], data: [0, 1, 2, 3] },
      y: { dtype: 'float32', shape: [4], data: [0, 0, 0, 0] },
      w: { dtype: 'float64', shape: [2, 3], data: [1, 2, 3, 4, 5, 6] },
    });
  });

  test('.npy: the vgg16 style dict of [W, b] lists', async () => {
    const file = tmp('vgg.npy');
    await save(file, { conv1_1: [w, x], fc8: [x, y] });
    assert.equal(
      runPython(`import numpy as np, sys\nd = np.load(sys.argv[1], allow_pickle=True, encoding='latin1').item()\nprint(sorted(d), d['conv1_1'][0].shape, d['fc8'][1].dtype)`, [file]).trim(),
      "['conv1_1', 'fc8'] (2, 3) float32",
    );
  });

  test('.npz: an array (arr_0), a list (arr_0, arr_1), a dict (by key), stored and compressed', async () => {
    const single = tmp('x.npz');
    await save(single, x);
    assert.deepEqual(runPythonJson(DUMP, [single]), { arr_0: { dtype: 'float32', shape: [4], data: [0, 1, 2, 3] } });
    for (const compress of [false, true]) {
      const list = tmp('xy.npz');
      await save(list, [x, y], { compress });
      assert.deepEqual(Object.keys(runPythonJson(DUMP, [list]) as object), ['arr_0', 'arr_1']);
      const dict = tmp('mydict.npz');
      await save(dict, { x, w }, { compress });
      assert.deepEqual(runPythonJson(DUMP, [dict]), {
        x: { dtype: 'float32', shape: [4], data: [0, 1, 2, 3] },
        w: { dtype: 'float64', shape: [2, 3], data: [1, 2, 3, 4, 5, 6] },
      });
    }
  });
});

describe('save() and load() of .safetensors', () => {
  // An independent reader: the header JSON and numpy.frombuffer, as the format defines it.
  const SAFETENSORS_DUMP = `import json, struct, sys, numpy as np
raw = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
header = json.loads(raw[8:8 + n])
types = {'F32': '<f4', 'F64': '<f8', 'I64': '<i8'}
out = {}
for name, e in sorted(header.items()):
    if name == '__metadata__': continue
    b, end = e['data_offsets']
    a = np.frombuffer(raw[8 + n + b: 8 + n + end], dtype=types[e['dtype']]).reshape(e['shape'])
    out[name] = {'dtype': str(a.dtype), 'shape': list(a.shape), 'data': a.ravel().tolist()}
print(json.dumps(out))`;

  test('a dict keeps its keys, a list is arr_0, arr_1, ...; load gives back the same shape of value', async () => {
    const dict = tmp('mydict.safetensors');
    await save(dict, { x, w });
    assert.deepEqual(runPythonJson(SAFETENSORS_DUMP, [dict]), {
      w: { dtype: 'float64', shape: [2, 3], data: [1, 2, 3, 4, 5, 6] },
      x: { dtype: 'float32', shape: [4], data: [0, 1, 2, 3] },
    });
    const loaded = (await load(dict, { mmap: true })) as Record<string, LoadedArray>;
    assert.deepEqual(Object.keys(loaded).sort(), ['w', 'x']);
    assert.deepEqual(values(loaded.w), [1, 2, 3, 4, 5, 6]);
    assert.equal(loaded.x?.mapped, NATIVE_MODE);

    const list = tmp('xy.safetensors');
    await save(list, [x, y]);
    const back = (await load(list)) as LoadedArray[];
    assert.ok(Array.isArray(back));
    assert.deepEqual(back.map(values), [[0, 1, 2, 3], [0, 0, 0, 0]]);
  });

  test('refusals: nested values and compress', async () => {
    await expectCode(() => save(tmp('bad.safetensors'), { a: [x] } as never), 'ERR_INVALID_ARGUMENT', /entry 'a' is not an NdArray/);
    await expectCode(() => save(tmp('bad.safetensors'), { x }, { compress: true }), 'ERR_INVALID_ARGUMENT', /compress/);
  });
});

describe('load() of what NumPy wrote', () => {
  test('np.save of a list and a dict, with allowPickle', async () => {
    const list = tmp('xy.npy');
    const dict = tmp('mydict.npy');
    runPython(
      `import numpy as np, sys\nx = np.arange(4, dtype='f4'); y = np.zeros(3)\nnp.save(sys.argv[1], np.array([x, y], dtype=object))\nnp.save(sys.argv[2], {'x': x, 'y': y})`,
      [list, dict],
    );
    const gotList = (await load(list, { allowPickle: true })) as PyObject[];
    assert.equal(gotList.length, 2);
    assert.deepEqual(values(gotList[0]), [0, 1, 2, 3]);
    assert.deepEqual(values(gotList[1]), [0, 0, 0]);
    const gotDict = (await load(dict, { allowPickle: true })) as Record<string, NdArray>;
    assert.deepEqual(Object.keys(gotDict), ['x', 'y']);
    assert.equal(gotDict.y?.dtype, 'float64');
    await expectCode(() => load(dict), 'ERR_PICKLE_DISALLOWED', /allowPickle: true/);
  });

  test('np.savez: positional arrays come back as a list, keywords as a record', async () => {
    const positional = tmp('p.npz');
    const named = tmp('n.npz');
    runPython(`import numpy as np, sys\nnp.savez(sys.argv[1], np.arange(3), np.ones(2))\nnp.savez_compressed(sys.argv[2], a=np.arange(3), b=np.ones(2))`, [positional, named]);
    const list = (await load(positional)) as LoadedArray[];
    assert.ok(Array.isArray(list));
    assert.deepEqual(values(list[1]), [1, 1]);
    const record = (await load(named)) as Record<string, LoadedArray>;
    assert.deepEqual(Object.keys(record), ['a', 'b']);
  });

  test('round trips through save and load keep the shape of the value', async () => {
    for (const [name, value] of [
      ['a.npy', x],
      ['b.npz', [x, w]],
      ['c.npz', { x, w }],
      ['d.npy', [x, w]],
      ['e.npy', { x, w, meta: ['text', 3, 1.5, true, null] }],
    ] as const) {
      const file = tmp(name);
      await save(file, value as never);
      const back = await load(file, { allowPickle: true });
      const strip = (v: unknown): unknown =>
        v && typeof v === 'object' && 'data' in (v as object)
          ? { dtype: (v as NdArray).dtype, shape: (v as NdArray).shape, data: values(v) }
          : Array.isArray(v)
            ? v.map(strip)
            : v && typeof v === 'object'
              ? Object.fromEntries(Object.entries(v).map(([k, u]) => [k, strip(u)]))
              : v;
      assert.deepEqual(strip(back), strip(value), name);
    }
  });

  test('load(.npz, { mmap: true }) maps the members tensorio wrote', async () => {
    const file = tmp('m.npz');
    await save(file, { x, w });
    const got = (await load(file, { mmap: true })) as Record<string, LoadedArray>;
    assert.equal(got.x?.mapped, NATIVE_MODE);
    assert.equal(got.w?.mapped, NATIVE_MODE);
    const npy = tmp('m.npy');
    await save(npy, w);
    assert.equal(((await load(npy, { mmap: true })) as LoadedArray).mapped, NATIVE_MODE);
  });
});

describe('errors', () => {
  test('ERR_INVALID_ARGUMENT: unknown extension, non-arrays in .npz, compress on .npy', async () => {
    await expectCode(() => save(tmp('x.dat'), x), 'ERR_INVALID_ARGUMENT', /\.npy, \.npz, \.safetensors, \.pt, \.pth, \.ckpt, \.bin, \.h5 or \.hdf5/);
    await expectCode(() => load(tmp('x.txt')), 'ERR_INVALID_ARGUMENT');
    await expectCode(() => save(tmp('x.npz'), { a: x, b: [x] } as never), 'ERR_INVALID_ARGUMENT', /entry 'b' is not an NdArray/);
    await expectCode(() => save(tmp('x.npy'), [x], { compress: true }), 'ERR_INVALID_ARGUMENT', /\.npz only/);
    await expectCode(() => save(tmp('x.npy'), [() => 1] as never), 'ERR_INVALID_ARGUMENT', /cannot pickle a function/);
  });

  test('ERR_PICKLE_DISALLOWED names the option; ERR_TOO_LARGE for a pickle over maxPickleSize', async () => {
    const file = tmp('p.npy');
    await save(file, [x]);
    await expectCode(() => load(file), 'ERR_PICKLE_DISALLOWED', /\{ allowPickle: true \}/);
    await expectCode(() => load(file, { allowPickle: true, maxPickleSize: 10 }), 'ERR_TOO_LARGE', /maxPickleSize/);
  });

  test('a failed save leaves the old file alone', async () => {
    const file = tmp('keep.npz');
    await save(file, [x]);
    const before = fs.readFileSync(file);
    await expectCode(() => save(file, [x, { dtype: 'float32', shape: [9], data: new Float32Array(1) }]), 'ERR_SHAPE_MISMATCH');
    assert.deepEqual(fs.readFileSync(file), before);
  });
});
