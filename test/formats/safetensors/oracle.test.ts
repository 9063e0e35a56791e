/**
 * safetensors' reference package as the judge (issue 20, check 5), in the oracle (safetensors
 * 0.8, ml_dtypes 0.7, NumPy 2.1). What the package writes and tensorio reads, bit for bit,
 * including bfloat16 and float8 through ml_dtypes; what tensorio writes (every dtype it writes,
 * 0-d, empty, metadata) read by `load_file` and `safe_open` (`get_tensor`, `get_slice`,
 * `metadata()`, `keys()`); sharded checkpoints checked against the Hugging Face layout.
 *
 * Seen here: safetensors 0.8 has no index handling (nothing in the package reads or writes
 * `*.index.json`; huggingface_hub, which has the splitting helpers, is not installed), so the
 * index is checked against `split_state_dict_into_shards_factory`'s documented plan and each
 * shard is loaded with `safe_open` through the weight_map. The package's NumPy reader finds
 * float8 types as attributes of the numpy module (`numpy.float8_e4m3fn`), which NumPy does
 * not have: float8 loads only once they are set from ml_dtypes. It writes F8_E4M3FNUZ,
 * F8_E5M2FNUZ and F8_E8M0, which tensorio does not hold (refused with ERR_UNSUPPORTED_DTYPE).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

import { DTYPES, dtypeInfo, openSafetensors, readSafetensors, writeSafetensors, type DType, type NdArray } from '../../../src/index.js';
import { expectCode } from '../../expect-code.js';
import { pattern, runOracleJson, tempDir } from '../../helpers.js';

const dir = tempDir('safetensors-oracle');

function hex(array: { data: ArrayBufferView }): string {
  return Buffer.from(array.data.buffer, array.data.byteOffset, array.data.byteLength).toString('hex');
}

/** The package's NumPy reader looks float8 types up on numpy; ml_dtypes has them. */
const FLOAT8_ON_NUMPY = `
import ml_dtypes
for _name in ('float8_e4m3fn', 'float8_e5m2', 'float8_e4m3fnuz', 'float8_e5m2fnuz', 'float8_e8m0fnu'):
    setattr(np, _name, getattr(ml_dtypes, _name))
`;

test('safetensors.numpy.save_file of ml_dtypes bfloat16, float8_e4m3fn and float8_e5m2 (every bit pattern) reads in tensorio with the exact bits, with metadata', async () => {
  const file = path.join(dir, 'ml-dtypes.safetensors');
  const other = path.join(dir, 'fnuz.safetensors');
  const r = runOracleJson<{ header: Record<string, { dtype: string }>; float8WithoutNumpyNames: string }>(
    `import sys, json, struct, numpy as np, ml_dtypes
from safetensors.numpy import save_file, load_file
bits16 = np.arange(65536, dtype=np.uint16); bits8 = np.arange(256, dtype=np.uint8)
save_file({'bf16': bits16.view(ml_dtypes.bfloat16).reshape(256, 256), 'e4m3': bits8.view(ml_dtypes.float8_e4m3fn),
           'e5m2': bits8.view(ml_dtypes.float8_e5m2).reshape(2, 8, 16), 'w': np.arange(6, dtype=np.float32)},
          sys.argv[1], metadata={'format': 'np', 'dtypes': 'ml_dtypes'})
save_file({'fnuz': bits8.view(ml_dtypes.float8_e4m3fnuz)}, sys.argv[2])
with open(sys.argv[1], 'rb') as f:
    n = struct.unpack('<Q', f.read(8))[0]; header = json.loads(f.read(n))
try:
    load_file(sys.argv[1]); without = 'loaded'
except AttributeError as e:
    without = str(e)
print(json.dumps({'header': header, 'float8WithoutNumpyNames': without}))`,
    [file, other],
  );
  assert.deepEqual([r.header.bf16?.dtype, r.header.e4m3?.dtype, r.header.e5m2?.dtype], ['BF16', 'F8_E4M3', 'F8_E5M2']);
  assert.match(r.float8WithoutNumpyNames, /numpy.*float8_e4m3fn/);
  const all16 = Uint16Array.from({ length: 65536 }, (_, i) => i);
  const all8 = Uint8Array.from({ length: 256 }, (_, i) => i);
  for (const mmap of [false, true]) {
    const { tensors, metadata } = await readSafetensors(file, { mmap });
    assert.deepEqual(metadata, { format: 'np', dtypes: 'ml_dtypes' });
    assert.deepEqual([tensors.bf16?.dtype, tensors.bf16?.shape], ['bfloat16', [256, 256]]);
    assert.deepEqual(tensors.bf16?.data, all16);
    assert.deepEqual([tensors.e4m3?.dtype, tensors.e4m3?.shape, tensors.e4m3?.data], ['float8_e4m3fn', [256], all8]);
    assert.deepEqual([tensors.e5m2?.dtype, tensors.e5m2?.shape, tensors.e5m2?.data], ['float8_e5m2', [2, 8, 16], all8]);
  }
  await expectCode(() => readSafetensors(other), 'ERR_UNSUPPORTED_DTYPE', /F8_E4M3FNUZ/);
});

/** Every dtype tensorio writes to safetensors, with pattern bits (0/1 for bool). */
function everyDtype(): Record<string, NdArray> {
  const tensors: Record<string, NdArray> = {};
  const writable = DTYPES.filter((d) => dtypeInfo(d).safetensors !== null);
  writable.forEach((dtype: DType, i) => {
    const info = dtypeInfo(dtype);
    const shape = [3, 4, 5];
    const bytes = pattern(60 * info.itemSize, i + 1);
    if (dtype === 'bool') bytes.forEach((b, j) => (bytes[j] = b & 1));
    const data = new info.array(bytes.buffer, 0, 60 * info.lanes) as NdArray['data'];
    tensors[`t_${dtype}`] = { dtype, shape, data };
  });
  tensors.scalar = { dtype: 'float64', shape: [], data: Float64Array.of(-2.5) };
  tensors.empty = { dtype: 'float32', shape: [0, 3], data: new Float32Array(0) };
  tensors.empty_bf16 = { dtype: 'bfloat16', shape: [2, 0], data: new Uint16Array(0) };
  return tensors;
}

/** get_slice patterns, with the [start, end) ranges tensorio's getSlice takes for the same selection (null: not expressible). */
const SLICES: Array<[string, (readonly [number, number] | null)[] | null]> = [
  ['[:]', []],
  ['[1:3]', [[1, 3]]],
  ['[:, 1:3]', [null, [1, 3]]],
  ['[0:2, ..., 1:4]', [[0, 2], null, [1, 4]]],
  ['[2:3, 3:4, 0:5]', [[2, 3], [3, 4], [0, 5]]],
  ['[1]', null],
  ['[-1]', null],
  ['[..., 2]', null],
  ['[::2]', null],
];

test("every dtype tensorio writes, 0-d, empty and metadata load with load_file and safe_open: get_tensor, get_slice (NumPy's slicing), keys, metadata", async () => {
  const file = path.join(dir, 'tensorio.safetensors');
  const tensors = everyDtype();
  await writeSafetensors(file, tensors, { metadata: { format: 'pt', written_by: 'tensorio' } });
  const r = runOracleJson<{
    loadFile: Record<string, [string, number[], string]>;
    open: Record<string, [string, number[], string, string, number[]]>;
    slices: Record<string, Record<string, [boolean, string] | string>>;
    metadata: Record<string, string>;
    keys: string[];
  }>(
    `import sys, json, numpy as np
${FLOAT8_ON_NUMPY}
from safetensors.numpy import load_file
from safetensors import safe_open
f = sys.argv[1]
slices = json.loads(sys.argv[2])
def show(a): return [a.dtype.name, list(a.shape), a.tobytes().hex()]
out = {'loadFile': {k: show(v) for k, v in load_file(f).items()}, 'open': {}, 'slices': {}}
with safe_open(f, framework='numpy') as h:
    out['metadata'] = h.metadata(); out['keys'] = list(h.keys())
    for k in h.keys():
        a = h.get_tensor(k); s = h.get_slice(k)
        out['open'][k] = show(a) + [s.get_dtype(), list(s.get_shape())]
        if a.ndim == 3:
            res = {}
            for text in slices:
                got = eval('s' + text); want = eval('a' + text)
                res[text] = [bool(got.shape == want.shape and got.tobytes() == want.tobytes()), got.tobytes().hex()]
            out['slices'][k] = res
        elif a.ndim == 0:
            out['slices'][k] = {'[...]': show(s[...])[2]}
print(json.dumps(out))`,
    [file, JSON.stringify(SLICES.map(([text]) => text))],
  );
  assert.deepEqual(r.metadata, { format: 'pt', written_by: 'tensorio' });
  assert.deepEqual(r.keys, Object.keys(tensors).sort());
  const view = await openSafetensors(file);
  try {
    for (const [name, t] of Object.entries(tensors)) {
      const numpyName = t.dtype === 'bool' ? 'bool' : t.dtype;
      const want = [numpyName, t.shape, hex(t)];
      assert.deepEqual(r.loadFile[name], want, `load_file ${name}`);
      assert.deepEqual(r.open[name]?.slice(0, 3), want, `get_tensor ${name}`);
      assert.deepEqual(r.open[name]?.slice(3), [dtypeInfo(t.dtype).safetensors, t.shape], `get_slice ${name}`);
      if (t.shape.length !== 3) continue;
      for (const [text, ranges] of SLICES) {
        const [same, bytes] = r.slices[name]?.[text] as [boolean, string];
        assert.equal(same, true, `get_slice('${name}')${text} equals NumPy's slicing`);
        if (ranges) assert.equal(hex(await view.getSlice(name, ranges)), bytes, `tensorio getSlice of ${name}${text}`);
      }
    }
    assert.equal(r.slices.scalar?.['[...]'], hex(tensors.scalar as NdArray));
  } finally {
    view.close();
  }
});

test('a sharded checkpoint tensorio writes: the plan, names and index of the Hugging Face splitter, each shard loaded with safe_open through the weight_map', async () => {
  const target = path.join(dir, 'sharded', 'model.safetensors');
  fs.mkdirSync(path.dirname(target));
  // Sizes chosen to hit every rule: fill, tip over, one larger than the limit (own shard).
  const sizes: Array<[string, number, DType]> = [
    ['embed.weight', 400, 'float32'],
    ['layer.0.w', 300, 'bfloat16'],
    ['layer.0.b', 600, 'float32'],
    ['huge', 2000, 'float8_e4m3fn'],
    ['layer.1.w', 104, 'int64'],
    ['layer.1.b', 1000, 'float16'],
    ['norm', 24, 'bool'],
  ];
  const tensors: Record<string, NdArray> = {};
  sizes.forEach(([name, bytes, dtype], i) => {
    const info = dtypeInfo(dtype);
    const raw = pattern(bytes, 40 + i);
    if (dtype === 'bool') raw.forEach((b, j) => (raw[j] = b & 1));
    tensors[name] = { dtype, shape: [bytes / info.itemSize], data: new info.array(raw.buffer, 0, bytes / info.itemSize) as NdArray['data'] };
  });
  const maxShardSize = 1000;
  const written = await writeSafetensors(target, tensors, { maxShardSize, metadata: { format: 'pt' } });
  assert.ok(written.index, 'an index is written');
  const r = runOracleJson<{
    index: { metadata: Record<string, unknown>; weight_map: Record<string, string> };
    plan: Record<string, string>;
    total: number;
    files: string[];
    tensors: Record<string, [string, string]>;
    shardKeys: Record<string, string[]>;
    hasIndexHandling: string[];
    hub: boolean;
  }>(
    `import sys, os, json, importlib.util, numpy as np, safetensors
${FLOAT8_ON_NUMPY}
from safetensors import safe_open
index_file, order, limit = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
folder = os.path.dirname(index_file)
# split_state_dict_into_shards_factory's documented plan (huggingface_hub serialization/_base.py):
# tensors in state-dict order; one larger than the limit gets a shard of its own; a tensor that
# would tip the current shard over the limit starts a new one; names model-0000i-of-0000n.
shards, current, size, total = [], [], 0, 0
for name, nbytes in order:
    total += nbytes
    if nbytes > limit:
        shards.append([name]); continue
    if size + nbytes > limit:
        shards.append(current); current, size = [], 0
    current.append(name); size += nbytes
if current: shards.append(current)
plan = {name: 'model-%05d-of-%05d.safetensors' % (i + 1, len(shards)) for i, shard in enumerate(shards) for name in shard}
with open(index_file) as f: index = json.load(f)
tensors, shard_keys = {}, {}
for name, shard in index['weight_map'].items():
    with safe_open(os.path.join(folder, shard), framework='numpy') as h:
        shard_keys[shard] = sorted(h.keys())
        a = h.get_tensor(name); tensors[name] = [a.dtype.name, a.tobytes().hex()]
src = open(safetensors.__file__).read() + open(os.path.join(os.path.dirname(safetensors.__file__), 'numpy.py')).read()
print(json.dumps({'index': index, 'plan': plan, 'total': total, 'files': sorted(os.listdir(folder)), 'tensors': tensors,
    'shardKeys': shard_keys, 'hasIndexHandling': [w for w in ('index.json', 'weight_map') if w in src],
    'hub': importlib.util.find_spec('huggingface_hub') is not None}))`,
    [written.index, JSON.stringify(sizes.map(([name, bytes]) => [name, bytes])), String(maxShardSize)],
  );
  assert.deepEqual(r.hasIndexHandling, [], 'safetensors itself has no index handling');
  assert.equal(r.hub, false, 'huggingface_hub is not in the oracle');
  assert.deepEqual(r.index.weight_map, r.plan, "tensorio's shards are the Hugging Face splitter's");
  assert.deepEqual(r.index.metadata, { total_size: r.total });
  assert.equal(written.totalSize, r.total);
  const shardNames = [...new Set(Object.values(r.plan))].sort();
  assert.equal(shardNames.length, 5);
  assert.deepEqual(r.files, [...shardNames, 'model.safetensors.index.json'].sort());
  for (const [name, t] of Object.entries(tensors)) {
    assert.deepEqual(r.tensors[name], [t.dtype, hex(t)], name);
  }
  for (const [shard, keys] of Object.entries(r.shardKeys)) {
    assert.deepEqual(keys, Object.keys(r.plan).filter((k) => r.plan[k] === shard).sort(), `${shard} holds its weight_map's tensors only`);
  }
});
