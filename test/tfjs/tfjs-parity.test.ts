/**
 * Parity of the two entries: the tfjs save/load take and give what the main save/load take
 * and give, with tf.Tensors in place of NdArrays, in every format (pickled .npy of a list or
 * dict as np.save writes it, .npz, .safetensors, .h5), and each result is read back by the
 * reference tool in Python (NumPy, safetensors, h5py) and by the other entry.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';

import * as tf from '@tensorflow/tfjs';
import './tfjs-backend.js';

import { load as mainLoad, save as mainSave, type NdArray } from '../../src/index.js';
import { load, save } from '../../src/tfjs/index.js';
import { expectCode } from '../expect-code.js';
import { runOracleJson, tempDir } from '../helpers.js';

const dir = tempDir('tfjs-parity');

/** Python: what the reference reader sees in `file`, as {name: [dtype, values]} (lists by index). */
const READ = `
import sys, json, numpy as np
f = sys.argv[1]
def show(a): return [str(a.dtype), np.asarray(a).tolist() if a.dtype.kind != 'c' else [[z.real, z.imag] for z in np.asarray(a).ravel().tolist()]]
def walk(v):
    if isinstance(v, np.ndarray) and v.dtype != object: return show(v)
    if isinstance(v, np.ndarray): return walk(v.tolist() if v.ndim else v.item())
    if isinstance(v, dict): return {k: walk(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)): return [walk(x) for x in v]
    return v
if f.endswith('.npy'):
    out = walk(np.load(f, allow_pickle=True))
elif f.endswith('.npz'):
    z = np.load(f); out = {k: show(z[k]) for k in z.files}
elif f.endswith('.safetensors'):
    from safetensors.numpy import load_file
    out = {k: show(v) for k, v in load_file(f).items()}
else:
    import h5py
    out = {}
    with h5py.File(f, 'r') as h:
        h.visititems(lambda name, obj: out.__setitem__(name, show(obj[()])) if isinstance(obj, h5py.Dataset) else None)
print(json.dumps(out))
`;

const x = tf.tensor([0, 1, 2, 3]);
const y = tf.tensor([[1, -2]], [1, 2], 'int32');
const flags = tf.tensor([true, false], [2], 'bool');
const X = ['float32', [0, 1, 2, 3]];
const Y = ['int32', [[1, -2]]];
const FLAGS = ['bool', [true, false]];

test("the chapter with tf.Tensors: save('xy.npy', [x, y]) and save('mydict.npy', {x, y}) are np.save's pickles, and load reads them", async () => {
  const xy = path.join(dir, 'xy.npy');
  const mydict = path.join(dir, 'mydict.npy');
  await save(xy, [x, y]);
  await save(mydict, { x, y, flags });
  assert.deepEqual(runOracleJson(READ, [xy]), [X, Y]);
  assert.deepEqual(runOracleJson(READ, [mydict]), { x: X, y: Y, flags: FLAGS });
  await expectCode(() => load(xy), 'ERR_PICKLE_DISALLOWED', /allowPickle/);
  const pair = (await load(xy, { allowPickle: true })) as tf.Tensor[];
  assert.equal(pair.length, 2);
  assert.deepEqual(await (pair[0] as tf.Tensor).array(), [0, 1, 2, 3]);
  assert.equal((pair[1] as tf.Tensor).dtype, 'int32');
  const dict = (await load(mydict, { allowPickle: true })) as Record<string, tf.Tensor>;
  assert.deepEqual(Object.keys(dict), ['x', 'y', 'flags']);
  assert.equal(dict.flags?.dtype, 'bool');
  // Nested values with numbers and strings, as the main save pickles them.
  const nested = path.join(dir, 'nested.npy');
  await save(nested, { a: [x, 2, 'two'], b: { c: y }, n: null });
  assert.deepEqual(runOracleJson(READ, [nested]), { a: [X, 2, 'two'], b: { c: Y }, n: null });
  const back = (await load(nested, { allowPickle: true })) as { a: [tf.Tensor, number, string]; b: { c: tf.Tensor } };
  assert.deepEqual(await back.a[0].array(), [0, 1, 2, 3]);
  assert.deepEqual(back.a.slice(1), [2, 'two']);
  assert.deepEqual(await back.b.c.array(), [[1, -2]]);
});

test("the tfjs load reads what NumPy's np.save writes for a list and a dict (ragged, float64, Fortran order)", async () => {
  const xy = path.join(dir, 'numpy-xy.npy');
  const d = path.join(dir, 'numpy-dict.npy');
  runOracleJson(`import sys, json, numpy as np
xy = np.empty(2, dtype=object); xy[0] = np.arange(3.0); xy[1] = np.arange(6, dtype=np.int64).reshape(2, 3).T
np.save(sys.argv[1], xy)
np.save(sys.argv[2], {'w': np.arange(6, dtype='<f4').reshape(2, 3).T, 'b': np.ones(2)})
print('null')`, [xy, d]);
  const [a, b] = (await load(xy, { allowPickle: true })) as tf.Tensor[];
  assert.equal(a?.dtype, 'float32');
  assert.deepEqual(await a?.array(), [0, 1, 2]);
  assert.equal(b?.dtype, 'int32');
  assert.deepEqual(await b?.array(), [[0, 3], [1, 4], [2, 5]]);
  const dict = (await load(d, { allowPickle: true })) as Record<string, tf.Tensor>;
  assert.deepEqual(await dict.w?.array(), [[0, 3], [1, 4], [2, 5]]);
  assert.deepEqual(await dict.b?.array(), [1, 1]);
});

for (const ext of ['npz', 'safetensors', 'h5'] as const) {
  test(`.${ext}: one tensor, a list and a record from the tfjs save read by Python and by the main load, and the other way`, async () => {
    const names = ext === 'h5' ? { one: 'x', list: ['0', '1'] } : { one: 'arr_0', list: ['arr_0', 'arr_1'] };
    const one = path.join(dir, `one.${ext}`);
    const list = path.join(dir, `list.${ext}`);
    const record = path.join(dir, `record.${ext}`);
    await save(one, x);
    await save(list, [x, y]);
    await save(record, { x, 'g/y': y, flags });
    assert.deepEqual(runOracleJson(READ, [one]), { [names.one]: X });
    assert.deepEqual(runOracleJson(READ, [list]), { [names.list[0] as string]: X, [names.list[1] as string]: Y });
    assert.deepEqual(runOracleJson(READ, [record]), { x: X, 'g/y': Y, flags: FLAGS });
    // The main load gives the same shape of value, with NdArrays.
    const mainOne = await mainLoad(one);
    assert.deepEqual(Array.from(((Array.isArray(mainOne) ? mainOne[0] : mainOne) as NdArray).data as Float32Array), [0, 1, 2, 3]);
    const mainList = (await mainLoad(list)) as NdArray[];
    assert.equal(mainList.length, 2);
    assert.equal(mainList[1]?.dtype, 'int32');
    const mainRecord = (await mainLoad(record)) as Record<string, NdArray>;
    assert.deepEqual(Object.keys(mainRecord).sort(), ['flags', 'g/y', 'x']);
    assert.equal(mainRecord.flags?.dtype, 'bool');
    // The main save of NdArrays (one in Fortran order) is read by the tfjs load.
    const fromMain = path.join(dir, `main.${ext}`);
    await mainSave(fromMain, { w: { dtype: 'float64', shape: [2, 3], data: Float64Array.of(0, 3, 1, 4, 2, 5), order: 'F' }, n: { dtype: 'int64', shape: [2], data: BigInt64Array.of(-1n, 7n) } });
    assert.deepEqual(runOracleJson(READ, [fromMain]), { w: ['float64', [[0, 1, 2], [3, 4, 5]]], n: ['int64', [-1, 7]] });
    const tensors = (await load(fromMain)) as Record<string, tf.Tensor>;
    assert.deepEqual(await tensors.w?.array(), [[0, 1, 2], [3, 4, 5]]);
    assert.equal(tensors.n?.dtype, 'int32');
    assert.deepEqual(await tensors.n?.array(), [-1, 7]);
  });
}

test('the main save points at the tfjs entry when given a tf.Tensor', async () => {
  await expectCode(() => mainSave(path.join(dir, 't.npy'), [x] as never), 'ERR_INVALID_ARGUMENT', /tf\.Tensor: use save\(\) from 'tensorio\/tfjs'/);
  await expectCode(() => mainSave(path.join(dir, 't.npz'), { x } as never), 'ERR_INVALID_ARGUMENT', /tf\.Tensor/);
  await expectCode(() => mainSave(path.join(dir, 't.h5'), x as never), 'ERR_INVALID_ARGUMENT', /tf\.Tensor/);
  await expectCode(() => save(path.join(dir, 't.h5'), { a: [x] }), 'ERR_INVALID_ARGUMENT', /entry 'a' is not one/);
  await expectCode(() => save(path.join(dir, 't.txt'), x), 'ERR_INVALID_ARGUMENT');
});
