/**
 * The chapter's pickles as TensorFlow writes them (issue 20, check 2). `np.save` of a dict or an
 * object array of EagerTensors pickles each tensor by its `__reduce__`,
 * `(convert_to_tensor, (ndarray,))`, which names a TensorFlow module:
 *
 * - TF 1.14 and earlier 1.x: `tensorflow.python.framework.ops` (`self.numpy()`);
 * - TF 1.15, 2.0, 2.1: `tensorflow_core.python.framework.ops` (the wheels ship the code as
 *   `tensorflow_core` and alias `tensorflow` to it; read in those wheels' `ops.py`);
 * - TF 2.2 to 2.19: `tensorflow.python.framework.ops` (2.19 seen here).
 *
 * Real TF 2.19 files (the oracle, NumPy 2.1, pickle protocol 4) and hand-made ones for every
 * module name and pickle protocol 0-5 (Debian's NumPy 1.24, whose np.save uses protocol 3) load
 * as NdArrays from the main entry and tf.Tensors from `tensorio/tfjs`. Every other use of
 * those globals, and any other TensorFlow global, is ERR_UNSAFE_PICKLE, and a probe file shows
 * nothing ran (while Python itself runs the same payloads).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

import * as tf from '@tensorflow/tfjs';
import '../../tfjs/tfjs-backend.js';

import { load as mainLoad, unpickle, type NdArray } from '../../../src/index.js';
import { load as tfLoad } from '../../../src/tfjs/index.js';
import { expectCode } from '../../expect-code.js';
import { runOracleJson, runPythonJson, tempDir } from '../../helpers.js';

const dir = tempDir('pickle-tf');

/** Real TensorFlow: the chapter's files, and what Python itself reports about them. */
const REAL = `
import sys, os, json, pickle, numpy as np, ml_dtypes, tensorflow as tf
from tensorflow.python.framework import ops
d = sys.argv[1]
x = tf.ones(3); y = tf.zeros(4)
fn, args = x.__reduce__()
np.save(d + '/mydict.npy', {'x': x, 'y': y})
np.save(d + '/xy.npy', np.array([x, y], dtype=object))
np.save(d + '/same.npy', [x, x])                 # equal shapes: NumPy converts, nothing is pickled
try:
    np.save(d + '/ragged.npy', [x, y]); ragged = 'saved'
except ValueError as e:
    ragged = 'ValueError'
np.save(d + '/kinds.npy', {'i': tf.constant([[1, -2]], tf.int32), 'l': tf.constant(3, tf.int64),
    's': tf.constant(2.5), 'b': tf.constant([True, False]), 'h': tf.constant([1.5, -2.0], tf.bfloat16),
    'c': tf.constant([1 + 2j], tf.complex64),
    'e4m3': np.arange(256, dtype=np.uint8).view(ml_dtypes.float8_e4m3fn), 'e5m2': np.arange(256, dtype=np.uint8).view(ml_dtypes.float8_e5m2)})
def header(f):
    with open(f, 'rb') as fh:
        v = np.lib.format.read_magic(fh); shape, fortran, dtype = np.lib.format._read_array_header(fh, v)
        return [dtype.str, list(shape), b'convert_to_tensor' in fh.read()]

# Hostile pickles with the real TensorFlow functions. Each one's payload writes the file its
# argument names; the live copy (same code, other path) is loaded by Python to show it runs.
class Call:
    def __init__(self, fn, args): self.fn, self.args = fn, args
    def __reduce__(self): return (self.fn, self.args)
def hostile(target):
    write = Call(tf.io.write_file, (target, 'pwned'))
    system = Call(os.system, ('touch ' + target,))
    a = np.arange(3.0)
    return {
        'two-arguments': Call(ops.convert_to_tensor, (a, 'float32')),
        'no-argument': Call(ops.convert_to_tensor, ()),
        'a-list': Call(ops.convert_to_tensor, ([1.0, 2.0],)),
        'a-string': Call(ops.convert_to_tensor, (target,)),
        'nested-call': Call(ops.convert_to_tensor, (x,)),
        'write-file-inside': Call(ops.convert_to_tensor, (write,)),
        'os-system-inside': Call(ops.convert_to_tensor, (system,)),
        'write-file': write,
        'py-func': Call(tf.py_function, (print, [], [])),
        'gfile-remove': Call(tf.io.gfile.remove, (target,)),
    }
files = {}
for name, payload in hostile(d + '/pwned').items():
    files[name] = [pickle.dumps({'x': payload}, protocol=p).hex() for p in (2, 4, 5)]
    arr = np.empty(2, dtype=object); arr[0] = x; arr[1] = payload
    np.save(d + '/hostile-' + name + '.npy', arr)
live = {}
for name in ('write-file', 'write-file-inside', 'os-system-inside'):
    target = d + '/live-' + name
    try:
        pickle.loads(pickle.dumps(hostile(target)[name]))
    except ValueError:
        pass                                     # convert_to_tensor(None) after write_file ran
    live[name] = os.path.exists(target)
print(json.dumps({'tf': tf.__version__, 'numpy': np.__version__, 'module': fn.__module__, 'name': fn.__name__,
    'args': [type(a).__name__ for a in args], 'ragged': ragged, 'live': live, 'hostile': files,
    'headers': {f: header(d + '/' + f + '.npy') for f in ('mydict', 'xy', 'same', 'kinds')},
    'h': tf.constant([1.5, -2.0], tf.bfloat16).numpy().view(np.uint16).tolist()}))
`;

/**
 * Hand-made: the reduce as each TensorFlow version writes it, without TensorFlow. A stand-in
 * module under the version's name holds a convert_to_tensor, so pickle names it exactly as
 * TensorFlow's own function would be named.
 */
const CRAFTED = `
import sys, json, types, pickle, numpy as np
d = sys.argv[1]
out = {}
for tag, module in (('tf1.14', 'tensorflow.python.framework.ops'), ('tf2.1', 'tensorflow_core.python.framework.ops'),
                    ('tf2.19', 'tensorflow.python.framework.ops')):
    parts = module.split('.')
    for i in range(1, len(parts)):                # pickle imports the module, parents first
        sys.modules.setdefault('.'.join(parts[:i]), types.ModuleType('.'.join(parts[:i])))
    m = types.ModuleType(module)
    def convert_to_tensor(value, dtype=None, name=None): return value
    convert_to_tensor.__module__ = module
    m.convert_to_tensor = convert_to_tensor
    sys.modules[module] = m
    class Eager:
        def __init__(self, a): self.a = a
        def __reduce__(self): return (convert_to_tensor, (self.a,))
    x = Eager(np.ones(3, np.float32)); y = Eager(np.zeros(4, np.float32))
    np.save(d + '/' + tag + '-mydict.npy', {'x': x, 'y': y})
    np.save(d + '/' + tag + '-xy.npy', np.array([x, y], dtype=object))
    value = [Eager(np.arange(6, dtype='>i4').reshape(2, 3)), Eager(np.float64(2.5)), Eager(np.arange(4.0).reshape(2, 2).T)]
    out[tag] = [pickle.dumps(value, protocol=p).hex() for p in range(6)]
    out[tag + '-global'] = module in pickle.dumps(x, protocol=0).decode('latin1')
print(json.dumps({'numpy': np.__version__, 'pickles': out}))
`;

function ones(n: number): number[] {
  return new Array<number>(n).fill(1);
}

async function values(t: tf.Tensor): Promise<unknown> {
  return t.array();
}

interface Real {
  tf: string;
  numpy: string;
  module: string;
  name: string;
  args: string[];
  ragged: string;
  live: Record<string, boolean>;
  hostile: Record<string, string[]>;
  headers: Record<string, [string, number[], boolean]>;
  h: number[];
}

const realDir = path.join(dir, 'real');
fs.mkdirSync(realDir);
let real: Real | undefined;
const realRun = (): Real => (real ??= runOracleJson<Real>(REAL, [realDir]));

test('TensorFlow 2.19 with NumPy 2: EagerTensor pickles as tensorflow.python.framework.ops.convert_to_tensor(ndarray); np.save pickles dicts and object arrays, converts equal-shape lists, refuses ragged ones', () => {
  const r = realRun();
  assert.match(r.tf, /^2\.19\./);
  assert.match(r.numpy, /^2\./);
  assert.deepEqual([r.module, r.name, r.args], ['tensorflow.python.framework.ops', 'convert_to_tensor', ['ndarray']]);
  assert.deepEqual(r.headers.mydict, ['|O', [], true]);
  assert.deepEqual(r.headers.xy, ['|O', [2], true]);
  assert.deepEqual(r.headers.same, ['<f4', [2, 3], false]);
  assert.deepEqual(r.headers.kinds, ['|O', [], true]);
  assert.equal(r.ragged, 'ValueError');
});

test("the chapter's mydict.npy and xy.npy from TensorFlow 2.19: NdArrays from the main load, tf.Tensors from tensorio/tfjs", async () => {
  realRun();
  const mydict = path.join(realDir, 'mydict.npy');
  const xy = path.join(realDir, 'xy.npy');
  await expectCode(() => mainLoad(mydict), 'ERR_PICKLE_DISALLOWED');
  const d = (await mainLoad(mydict, { allowPickle: true })) as Record<string, NdArray>;
  assert.deepEqual(Object.keys(d), ['x', 'y']);
  assert.deepEqual([d.x?.dtype, d.x?.shape, Array.from(d.x?.data as Float32Array)], ['float32', [3], ones(3)]);
  assert.deepEqual([d.y?.dtype, d.y?.shape, Array.from(d.y?.data as Float32Array)], ['float32', [4], [0, 0, 0, 0]]);
  const pair = (await mainLoad(xy, { allowPickle: true })) as NdArray[];
  assert.deepEqual(pair.map((a) => [a.dtype, a.shape, Array.from(a.data as Float32Array)]), [['float32', [3], ones(3)], ['float32', [4], [0, 0, 0, 0]]]);

  const t = (await tfLoad(mydict, { allowPickle: true })) as Record<string, tf.Tensor>;
  assert.ok(t.x instanceof tf.Tensor && t.y instanceof tf.Tensor);
  assert.deepEqual([t.x.dtype, await values(t.x), await values(t.y)], ['float32', ones(3), [0, 0, 0, 0]]);
  const tp = (await tfLoad(xy, { allowPickle: true })) as tf.Tensor[];
  assert.deepEqual(await Promise.all(tp.map(values)), [ones(3), [0, 0, 0, 0]]);
  tf.dispose([...Object.values(t), ...tp]);
  // The equal-shape list is a plain float32 (2, 3) array: no pickle, no allowPickle needed.
  const same = (await mainLoad(path.join(realDir, 'same.npy'))) as NdArray;
  assert.deepEqual([same.dtype, same.shape], ['float32', [2, 3]]);
});

test('TensorFlow 2.19 tensors of other kinds: int32, 0-d int64 and float32 (pickled as NumPy scalars), bool, bfloat16 (dtype ml_dtypes.bfloat16), complex64; ml_dtypes float8 arrays', async () => {
  const r = realRun();
  const k = (await mainLoad(path.join(realDir, 'kinds.npy'), { allowPickle: true })) as Record<string, NdArray>;
  assert.deepEqual([k.i?.dtype, k.i?.shape, Array.from(k.i?.data as Int32Array)], ['int32', [1, 2], [1, -2]]);
  // A 0-d EagerTensor's _numpy() is a NumPy scalar: convert_to_tensor(np.int64(3)) is a 0-d array.
  assert.deepEqual([k.l?.dtype, k.l?.shape, Array.from(k.l?.data as BigInt64Array)], ['int64', [], [3n]]);
  assert.deepEqual([k.s?.dtype, k.s?.shape, Array.from(k.s?.data as Float32Array)], ['float32', [], [2.5]]);
  assert.deepEqual([k.b?.dtype, Array.from(k.b?.data as Uint8Array)], ['bool', [1, 0]]);
  assert.deepEqual([k.h?.dtype, k.h?.shape, Array.from(k.h?.data as Uint16Array)], ['bfloat16', [2], r.h]);
  assert.deepEqual([k.c?.dtype, Array.from(k.c?.data as Float32Array)], ['complex64', [1, 2]]);
  // Plain ml_dtypes float8 arrays beside them (dtype ml_dtypes.float8_e4m3fn / float8_e5m2).
  const all8 = Uint8Array.from({ length: 256 }, (_, i) => i);
  assert.deepEqual([k.e4m3?.dtype, k.e4m3?.data, k.e5m2?.dtype, k.e5m2?.data], ['float8_e4m3fn', all8, 'float8_e5m2', all8]);
  const t = (await tfLoad(path.join(realDir, 'kinds.npy'), { allowPickle: true })) as Record<string, tf.Tensor>;
  assert.deepEqual([t.l?.dtype, t.l?.shape, await t.l?.array()], ['int32', [], 3]);
  assert.deepEqual([t.h?.dtype, await t.h?.array()], ['float32', [1.5, -2]]);
  tf.dispose(Object.values(t));
});

test('the reduce as TF 1.14, TF 1.15-2.1 (tensorflow_core) and TF 2.2-2.19 write it, pickle protocols 0-5 and np.save of NumPy 1.24: read, values equal', async () => {
  const craftedDir = path.join(dir, 'crafted');
  fs.mkdirSync(craftedDir);
  const c = runPythonJson<{ numpy: string; pickles: Record<string, string[] | boolean> }>(CRAFTED, [craftedDir]);
  assert.match(c.numpy, /^1\.24\./);
  for (const tag of ['tf1.14', 'tf2.1', 'tf2.19']) {
    assert.equal(c.pickles[`${tag}-global`], true, `${tag}: the pickle names the stand-in module`);
    for (const [protocol, hex] of (c.pickles[tag] as string[]).entries()) {
      const [a, s, f] = unpickle(new Uint8Array(Buffer.from(hex, 'hex'))) as NdArray[];
      const what = `${tag} protocol ${protocol}`;
      assert.deepEqual([a?.dtype, a?.shape, Array.from(a?.data as Int32Array)], ['int32', [2, 3], [0, 1, 2, 3, 4, 5]], what);
      assert.deepEqual([s?.dtype, s?.shape, Array.from(s?.data as Float64Array)], ['float64', [], [2.5]], what);
      assert.deepEqual([f?.dtype, f?.shape, f?.order, Array.from(f?.data as Float64Array)], ['float64', [2, 2], 'F', [0, 1, 2, 3]], what);
    }
    const d = (await mainLoad(path.join(craftedDir, `${tag}-mydict.npy`), { allowPickle: true })) as Record<string, NdArray>;
    assert.deepEqual([Array.from(d.x?.data as Float32Array), Array.from(d.y?.data as Float32Array)], [ones(3), [0, 0, 0, 0]], tag);
    const t = (await tfLoad(path.join(craftedDir, `${tag}-xy.npy`), { allowPickle: true })) as tf.Tensor[];
    assert.deepEqual(await Promise.all(t.map(values)), [ones(3), [0, 0, 0, 0]], tag);
    tf.dispose(t);
  }
});

test('any other use of convert_to_tensor, and other TensorFlow globals, are ERR_UNSAFE_PICKLE and run nothing (Python runs the same payloads)', async () => {
  const r = realRun();
  const probe = path.join(realDir, 'pwned');
  // Proof that the payloads are live: Python wrote the probe of each live copy.
  assert.deepEqual(r.live, { 'write-file': true, 'write-file-inside': true, 'os-system-inside': true });
  const named: Record<string, RegExp> = {
    'two-arguments': /convert_to_tensor with something other than one NumPy array/,
    'no-argument': /convert_to_tensor with something other than one NumPy array/,
    'a-list': /convert_to_tensor with something other than one NumPy array/,
    'a-string': /convert_to_tensor with something other than one NumPy array/,
    'nested-call': /convert_to_tensor with something other than one NumPy array/,
    'write-file-inside': /tensorflow\.python\.ops\.gen_io_ops\.write_file/,
    'os-system-inside': /(posix|os)\.system/,
    'write-file': /tensorflow\.python\.ops\.gen_io_ops\.write_file/,
    'py-func': /tensorflow\.python\.ops\.script_ops\.eager_py_func/,
    'gfile-remove': /tensorflow\.python\.lib\.io\.file_io\.delete_file_v2/,
  };
  assert.deepEqual(Object.keys(r.hostile).sort(), Object.keys(named).sort());
  for (const [name, protocols] of Object.entries(r.hostile)) {
    for (const hex of protocols) await expectCode(() => unpickle(new Uint8Array(Buffer.from(hex, 'hex'))), 'ERR_UNSAFE_PICKLE', named[name]);
    const file = path.join(realDir, `hostile-${name}.npy`);
    await expectCode(() => mainLoad(file, { allowPickle: true }), 'ERR_UNSAFE_PICKLE', named[name]);
    await expectCode(() => tfLoad(file, { allowPickle: true }), 'ERR_UNSAFE_PICKLE', named[name]);
  }
  assert.equal(fs.existsSync(probe), false, 'a payload ran');
});
