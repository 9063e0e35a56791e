/**
 * PyTorch checkpoints against real PyTorch (the `torch` test environment): files torch.save
 * writes at test time (every dtype, shared and strided storages, zip and legacy formats, whole
 * training checkpoints, big-endian, refused pickles) read equal, and what writeTorch writes
 * torch.load(weights_only=True) reads back equal.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';

import { listTorchTensors, load, openTorch, openTorchSync, readTorch, readTorchSync, save, scanTorchGlobals, sharedTorchTensors, writeTorch, type LoadedArray, type NdArray, type TorchReadOptions, type TorchValue } from '../../../src/index.js';
import { expectCode } from '../../expect-code.js';
import { NATIVE_MODE, runTorch, tempDir } from '../../helpers.js';

const dir = tempDir('torch');
const file = (name: string): string => path.join(dir, name);

const hex = (a: NdArray): string => Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength).toString('hex');
const arr = (v: TorchValue | undefined): LoadedArray => v as LoadedArray;
const rec = (v: TorchValue | undefined): Record<string, TorchValue> => v as Record<string, TorchValue>;

// Prints, for every tensor of a saved object, its dtype, shape and C-order bytes, so tensorio's
// view of the file is compared with torch's own, byte for byte.
const DESCRIBE = `
import torch, json
def describe(t):
    name = str(t.dtype).replace('torch.', '')
    flat = t.contiguous().reshape(-1)
    return {'dtype': name, 'shape': list(t.shape), 'hex': flat.view(torch.uint8).numpy().tobytes().hex() if flat.numel() else ''}
`;

const DTYPES_SCRIPT = `${DESCRIBE}
import sys
torch.manual_seed(0)
base = torch.randn(2, 3)
d = {
  'float32': base, 'float64': base.double(), 'float16': base.half(), 'bfloat16': base.bfloat16(),
  'int8': torch.tensor([-128, 0, 127], dtype=torch.int8), 'uint8': torch.tensor([0, 255], dtype=torch.uint8),
  'int16': torch.tensor([-32768, 32767], dtype=torch.int16), 'int32': torch.tensor([-2**31, 2**31 - 1], dtype=torch.int32),
  'int64': torch.tensor([-2**63, 2**63 - 1, 5], dtype=torch.int64), 'bool': torch.tensor([True, False, True]),
  'complex64': torch.tensor([1 - 2j, 3.5j]), 'complex128': torch.tensor([1 - 2j], dtype=torch.complex128),
  'scalar': torch.tensor(42.5), 'empty': torch.zeros(0, 3), 'special': torch.tensor([float('nan'), float('inf'), -0.0]),
}
if sys.argv[2] == 'zip':
    d.update({'uint16': torch.tensor([0, 65535], dtype=torch.uint16), 'uint32': torch.tensor([0, 2**32 - 1], dtype=torch.uint32),
              'uint64': torch.tensor([0, 2**63], dtype=torch.uint64),
              'float8_e4m3fn': base.to(torch.float8_e4m3fn), 'float8_e5m2': base.to(torch.float8_e5m2)})
torch.save(d, sys.argv[1], _use_new_zipfile_serialization=(sys.argv[2] == 'zip'))
print(json.dumps({k: describe(v) for k, v in d.items()}))
`;

// What a read gave, arrays as dtype, shape, bytes and whether mapped: the sync twin must agree.
function shapeOf(value: unknown): unknown {
  if (value !== null && typeof value === 'object' && 'data' in value && 'dtype' in value) {
    const a = value as LoadedArray;
    return { dtype: a.dtype, shape: a.shape, hex: hex(a), mapped: a.mapped, copyReason: a.copyReason };
  }
  if (Array.isArray(value)) return value.map(shapeOf);
  if (value instanceof Map) return new Map([...value].map(([k, v]) => [k, shapeOf(v)]));
  if (value instanceof Set) return new Set([...value].map(shapeOf));
  if (value !== null && typeof value === 'object' && !ArrayBuffer.isView(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, shapeOf(v)]));
  return value;
}

/** readTorch, checked against readTorchSync of the same file. */
async function readBoth(target: string, options: TorchReadOptions = {}): Promise<TorchValue> {
  const got = await readTorch(target, options);
  assert.deepEqual(shapeOf(readTorchSync(target, options)), shapeOf(got), `readTorchSync of ${path.basename(target)}`);
  return got;
}

type Described = Record<string, { dtype: string; shape: number[]; hex: string }>;

function torchJson<T>(script: string, args: string[]): T {
  const lines = runTorch(script, args).trim().split('\n');
  return JSON.parse(lines[lines.length - 1] ?? 'null') as T;
}

describe('files torch.save writes', () => {
  for (const format of ['zip', 'legacy']) {
    test(`every dtype, ${format} format, eager and mapped`, async () => {
      const target = file(`dtypes-${format}.pt`);
      const expected = torchJson<Described>(DTYPES_SCRIPT, [target, format]);
      for (const mmap of [false, true]) {
        const got = rec(await readBoth(target, { mmap }));
        assert.deepEqual(Object.keys(got).sort(), Object.keys(expected).sort());
        for (const [name, want] of Object.entries(expected)) {
          const a = arr(got[name]);
          assert.equal(a.dtype, want.dtype, name);
          assert.deepEqual(a.shape, want.shape, name);
          assert.equal(hex(a), want.hex, `${name} (mmap ${mmap})`);
          // Zip storages are 64-byte aligned, so contiguous tensors are views of the mapping.
          if (mmap && format === 'zip' && NATIVE_MODE && a.data.byteLength > 0) assert.equal(a.mapped, true, name);
          if (mmap && !a.mapped) assert.equal(typeof a.copyReason, 'string', name);
        }
      }
    });
  }

  test('shared storages and views: tied tensors share memory, strided ones are C-order copies', async () => {
    const target = file('shared.pt');
    const expected = torchJson<Described>(
      `${DESCRIBE}
import sys
x = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4)
d = {'x': x, 'tied': x, 't': x.transpose(0, 2), 'col': x[:, 1], 'flat': x.view(-1)[5:9], 'step': x.view(-1)[1::5], 'perm': x.permute(2, 0, 1)}
torch.save(d, sys.argv[1])
print(json.dumps({k: describe(v) for k, v in d.items()}))`,
      [target],
    );
    for (const mmap of [false, true]) {
      const got = rec(await readBoth(target, { mmap }));
      for (const [name, want] of Object.entries(expected)) {
        assert.deepEqual(arr(got[name]).shape, want.shape, name);
        assert.equal(hex(arr(got[name])), want.hex, `${name} (mmap ${mmap})`);
      }
      // The same tensor object twice, and a contiguous slice, view the one storage.
      assert.equal(got.tied, got.x);
      assert.equal(arr(got.flat).data.buffer, arr(got.x).data.buffer);
      assert.notEqual(arr(got.t).data.buffer, arr(got.x).data.buffer);
      if (mmap) assert.match(arr(got.t).copyReason ?? '', /not contiguous/);
    }
    const sync = rec(readTorchSync(target, { mmap: true }));
    assert.equal(sync.tied, sync.x);
    assert.equal(arr(sync.flat).data.buffer, arr(sync.x).data.buffer);
    const lazySync = openTorchSync(target);
    assert.equal(hex(lazySync.get('step')), hex(arr(sync.step)));
    assert.equal(lazySync.get('x').data.buffer, lazySync.get('flat').data.buffer);
    lazySync.close();
    await expectCode(() => lazySync.get('x'), 'ERR_CLOSED');
    const lazy = await openTorch(target);
    assert.deepEqual(lazy.info('flat'), { name: 'flat', dtype: 'float32', shape: [4], stride: [1], storageOffset: 5, storage: '0', file: target, storageNumel: 24, contiguous: true, parameter: false });
    assert.deepEqual(lazy.info('t').stride, [1, 4, 12]);
    // For a converter: every tensor is on storage '0', so all alias 'x'; not all are identical.
    assert.deepEqual(listTorchTensors(lazy).map((i) => [i.name, i.storage, i.storageOffset]), Object.keys(expected).map((k) => [k, '0', lazy.info(k).storageOffset]));
    assert.deepEqual(sharedTorchTensors(lazy), [{ file: target, storage: '0', names: Object.keys(expected), identical: false }]);
    const [a, b] = [await lazy.get('x'), await lazy.get('flat')];
    assert.equal(a.data.buffer, b.data.buffer);
    lazy.close();
    await expectCode(() => lazy.get('x'), 'ERR_CLOSED');
  });

  test('a training checkpoint: model and optimizer state, epoch, nested values', async () => {
    const target = file('checkpoint.ckpt');
    const expected = torchJson<{ weight: { hex: string }; momentum: { hex: string }; lr: number }>(
      `${DESCRIBE}
import sys
torch.manual_seed(1)
model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU(), torch.nn.Linear(2, 1))
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
model(torch.randn(4, 3)).sum().backward()
opt.step()
torch.save({'model': model.state_dict(), 'optimizer': opt.state_dict(), 'epoch': 3, 'loss': 0.25, 'tags': ('a', 'b'), 'best': None}, sys.argv[1])
print(json.dumps({'weight': describe(model[0].weight.detach()), 'momentum': describe(opt.state_dict()['state'][0]['momentum_buffer']), 'lr': 0.1}))`,
      [target],
    );
    const got = rec(await readBoth(target));
    assert.equal(got.epoch, 3);
    assert.equal(got.loss, 0.25);
    assert.deepEqual(got.tags, ['a', 'b']);
    assert.equal(got.best, null);
    const model = rec(got.model);
    assert.deepEqual(Object.keys(model), ['0.weight', '0.bias', '2.weight', '2.bias']);
    assert.equal(hex(arr(model['0.weight'])), expected.weight.hex);
    // Optimizer state is keyed by parameter index (ints): a Map.
    const optimizer = rec(got.optimizer);
    const state = optimizer.state as Map<TorchValue, TorchValue>;
    assert.ok(state instanceof Map);
    assert.equal(hex(arr(rec(state.get(0)).momentum_buffer)), expected.momentum.hex);
    const groups = optimizer.param_groups as Record<string, TorchValue>[];
    assert.equal(groups[0]?.lr, expected.lr);
    assert.deepEqual(groups[0]?.params, [0, 1, 2, 3]);
    const lazy = await openTorch(target);
    assert.ok(lazy.keys().includes('model.0.weight'));
    assert.ok(lazy.keys().includes('optimizer.state.0.momentum_buffer'));
    lazy.close();
  });

  test('nn.Parameter and a bare tensor', async () => {
    const target = file('param.pth');
    const expected = torchJson<Described>(
      `${DESCRIBE}
import sys
p = torch.nn.Parameter(torch.arange(6.0).reshape(2, 3))
torch.save(p, sys.argv[1])
print(json.dumps({'p': describe(p.detach())}))`,
      [target],
    );
    const got = arr(await readBoth(target));
    assert.equal(hex(got), expected.p?.hex);
    const lazy = await openTorch(target);
    assert.deepEqual(lazy.keys(), ['']);
    assert.equal(lazy.info('').parameter, true);
    lazy.close();
  });

  test('big-endian: a file whose byteorder record says big is byte-swapped', async () => {
    // torch writes big-endian files only on big-endian hosts; this one is the little-endian
    // file rewritten as such a host writes it, and torch.load itself is checked to agree.
    const target = file('big.pt');
    const expected = torchJson<Described>(
      `${DESCRIBE}
import sys, zipfile, io, numpy as np
d = {'f': torch.arange(6, dtype=torch.float32).reshape(2, 3) / 3, 'h': torch.tensor([1.5, -2.0], dtype=torch.float16), 'i': torch.tensor([1, -2], dtype=torch.int64), 'c': torch.tensor([1 - 2j])}
buf = io.BytesIO(); torch.save(d, buf)
src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
sizes = {'0': 4, '1': 2, '2': 8, '3': 4}
with zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_STORED) as out:
    for info in src.infolist():
        data = src.read(info)
        name = info.filename.split('/', 1)[1]
        if name == 'byteorder': data = b'big'
        if name.startswith('data/'):
            data = np.frombuffer(data, dtype='<u%d' % sizes[name[5:]]).byteswap().tobytes()
        out.writestr(info.filename, data)
back = torch.load(sys.argv[1], weights_only=True)
assert all(torch.equal(back[k], v) for k, v in d.items())
print(json.dumps({k: describe(v) for k, v in d.items()}))`,
      [target],
    );
    for (const mmap of [false, true]) {
      const got = rec(await readBoth(target, { mmap }));
      for (const [name, want] of Object.entries(expected)) assert.equal(hex(arr(got[name])), want.hex, name);
      if (mmap) assert.match(arr(got.f).copyReason ?? '', /big-endian/);
    }
    const lazy = await openTorch(target);
    assert.equal(lazy.byteOrder, 'big');
    lazy.close();
  });

  test('torch.save without CRCs (set_crc32_options(False)) reads, as torch.load reads it; verifyCrc checks storages', async () => {
    const target = file('nocrc.pt');
    const expected = torchJson<Described>(
      `${DESCRIBE}
import sys
torch.serialization.set_crc32_options(False)
d = {'w': torch.arange(6, dtype=torch.float32).reshape(2, 3), 'i': torch.tensor([7], dtype=torch.int64)}
torch.save(d, sys.argv[1])
print(json.dumps({k: describe(v) for k, v in d.items()}))`,
      [target],
    );
    for (const mmap of [false, true]) {
      const got = rec(await readBoth(target, { mmap }));
      for (const [name, want] of Object.entries(expected)) assert.equal(hex(arr(got[name])), want.hex, name);
    }
    await expectCode(() => readTorch(target, { verifyCrc: true }), 'ERR_CRC_MISMATCH');
  });

  test('refused: a pickled nn.Module and an os.system reduce, in both formats; nothing runs', async () => {
    const marker = file('pwned');
    runTorch(
      `import torch, os, sys
class Evil:
    def __reduce__(self):
        return (os.system, ('touch ' + sys.argv[2],))
for fmt in ('zip', 'legacy'):
    z = fmt == 'zip'
    torch.save({'model': torch.nn.Linear(2, 2)}, sys.argv[1] + '/module-' + fmt + '.pt', _use_new_zipfile_serialization=z)
    torch.save({'w': torch.zeros(2), 'x': Evil()}, sys.argv[1] + '/evil-' + fmt + '.pt', _use_new_zipfile_serialization=z)`,
      [dir, marker],
    );
    for (const fmt of ['zip', 'legacy']) {
      await expectCode(() => readTorch(file(`module-${fmt}.pt`)), 'ERR_UNSAFE_PICKLE', /torch\.nn\.modules\.linear\.Linear/);
      await expectCode(() => readTorch(file(`evil-${fmt}.pt`)), 'ERR_UNSAFE_PICKLE', /posix\.system/);
      await expectCode(() => openTorch(file(`evil-${fmt}.pt`), { mmap: true }), 'ERR_UNSAFE_PICKLE', /posix\.system/);
      // The scan reports what the reader refuses, without building or calling anything.
      const evil = await scanTorchGlobals(file(`evil-${fmt}.pt`));
      const system = evil.find((g) => g.name === 'system');
      assert.equal(system?.module, 'posix', JSON.stringify(evil));
      assert.equal(system?.allowed, false);
      assert.ok(evil.some((g) => g.module === 'torch._utils' && g.name === '_rebuild_tensor_v2' && g.allowed), JSON.stringify(evil));
      assert.ok(evil.every((g) => g.allowed === (g.name !== 'system')), JSON.stringify(evil));
      const module = await scanTorchGlobals(file(`module-${fmt}.pt`));
      assert.ok(module.some((g) => g.module === 'torch.nn.modules.linear' && g.name === 'Linear' && !g.allowed), JSON.stringify(module));
    }
    assert.equal(fs.existsSync(marker), false);
  });
});

// Reads a file with torch.load(weights_only=True) and prints what it holds.
const LOAD_BACK = `${DESCRIBE}
import sys
def walk(v):
    if torch.is_tensor(v): return {'tensor': describe(v), 'stride': list(v.stride()), 'offset': v.storage_offset(), 'ptr': v.untyped_storage().data_ptr()}
    if isinstance(v, dict): return {'dict': [[walk(k), walk(u)] for k, u in v.items()]}
    if isinstance(v, (list, tuple)): return {'list': [walk(u) for u in v]}
    if isinstance(v, float): return {'float': repr(v)}
    if isinstance(v, int) and not isinstance(v, bool): return {'int': str(v)}
    return v
print(json.dumps(walk(torch.load(sys.argv[1], weights_only=True))))
`;

interface Walked {
  tensor?: { dtype: string; shape: number[]; hex: string };
  stride?: number[];
  offset?: number;
  ptr?: number;
  dict?: [Walked, Walked][];
  list?: Walked[];
  int?: string;
  float?: string;
}

describe('files writeTorch writes, read by torch.load(weights_only=True)', () => {
  test('every dtype, nested values, Fortran order as strides, shared storages once', async () => {
    const base = new Float32Array([1, 2, 3, 4, 5, 6]);
    const arrays: Record<string, NdArray> = {
      float32: { dtype: 'float32', shape: [2, 3], data: base },
      tied: { dtype: 'float32', shape: [2, 3], data: base },
      tail: { dtype: 'float32', shape: [3], data: base.subarray(3) },
      fortran: { dtype: 'float32', shape: [3, 2], data: base, order: 'F' },
      float64: { dtype: 'float64', shape: [2], data: new Float64Array([Math.PI, -0]) },
      float16: { dtype: 'float16', shape: [2], data: new Uint16Array([0x3c00, 0xc000]) },
      bfloat16: { dtype: 'bfloat16', shape: [2], data: new Uint16Array([0x3f80, 0xc040]) },
      float8_e4m3fn: { dtype: 'float8_e4m3fn', shape: [2], data: new Uint8Array([0x38, 0xc0]) },
      float8_e5m2: { dtype: 'float8_e5m2', shape: [2], data: new Uint8Array([0x3c, 0xc0]) },
      int8: { dtype: 'int8', shape: [2], data: new Int8Array([-128, 127]) },
      uint8: { dtype: 'uint8', shape: [2], data: new Uint8Array([0, 255]) },
      int16: { dtype: 'int16', shape: [2], data: new Int16Array([-32768, 32767]) },
      uint16: { dtype: 'uint16', shape: [2], data: new Uint16Array([0, 65535]) },
      int32: { dtype: 'int32', shape: [2], data: new Int32Array([-(2 ** 31), 2 ** 31 - 1]) },
      uint32: { dtype: 'uint32', shape: [2], data: new Uint32Array([0, 2 ** 32 - 1]) },
      int64: { dtype: 'int64', shape: [2], data: new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n]) },
      uint64: { dtype: 'uint64', shape: [1], data: new BigUint64Array([2n ** 63n]) },
      bool: { dtype: 'bool', shape: [3], data: new Uint8Array([1, 0, 1]) },
      complex64: { dtype: 'complex64', shape: [1], data: new Float32Array([1, -2]) },
      complex128: { dtype: 'complex128', shape: [1], data: new Float64Array([0.5, 3]) },
      scalar: { dtype: 'float32', shape: [], data: new Float32Array([7]) },
      empty: { dtype: 'int32', shape: [0, 4], data: new Int32Array(0) },
    };
    const target = file('written.pt');
    await writeTorch(target, { state_dict: arrays, epoch: 3, lr: 0.5, big: 2n ** 70n, steps: new Map([[0, 'a'], [1, 'b']]), tags: ['x', true, null] });
    const back = torchJson<Walked>(LOAD_BACK, [target]);
    const top = new Map(back.dict?.map(([k, v]) => [k as unknown as string, v]));
    assert.deepEqual(top.get('epoch'), { int: '3' });
    assert.deepEqual(top.get('lr'), { float: '0.5' });
    assert.deepEqual(top.get('big'), { int: String(2n ** 70n) });
    assert.deepEqual(top.get('steps'), { dict: [[{ int: '0' }, 'a'], [{ int: '1' }, 'b']] });
    assert.deepEqual(top.get('tags'), { list: ['x', true, null] });
    const tensors = new Map(top.get('state_dict')?.dict?.map(([k, v]) => [k as unknown as string, v]));
    for (const [name, a] of Object.entries(arrays)) {
      const t = tensors.get(name);
      assert.equal(t?.tensor?.dtype, a.dtype, name);
      assert.deepEqual(t?.tensor?.shape, a.shape, name);
    }
    // Values: what torch reads is what tensorio holds, in C order.
    for (const name of Object.keys(arrays).filter((n) => n !== 'fortran')) assert.equal(tensors.get(name)?.tensor?.hex, hex(arrays[name] as NdArray), name);
    assert.equal(tensors.get('fortran')?.tensor?.hex, Buffer.from(new Float32Array([1, 4, 2, 5, 3, 6]).buffer).toString('hex'));
    assert.deepEqual(tensors.get('fortran')?.stride, [1, 3]);
    // One storage for the arrays that view one buffer.
    assert.equal(tensors.get('tied')?.ptr, tensors.get('float32')?.ptr);
    assert.equal(tensors.get('tail')?.ptr, tensors.get('float32')?.ptr);
    assert.equal(tensors.get('tail')?.offset, 3);
    // And tensorio reads its own file back the same.
    const mine = rec(rec(await readBoth(target)).state_dict);
    for (const [name, a] of Object.entries(arrays)) if (name !== 'fortran') assert.equal(hex(arr(mine[name])), hex(a), name);
  });

  test('save() and load() by extension; .bin is sniffed', async () => {
    const w = { dtype: 'float32' as const, shape: [2], data: new Float32Array([1, 2]) };
    for (const name of ['m.pt', 'm.pth', 'm.ckpt', 'pytorch_model.bin']) {
      await save(file(name), { w } as never);
      const back = (await load(file(name))) as unknown as Record<string, LoadedArray>;
      assert.deepEqual(Array.from(back.w?.data as Float32Array), [1, 2]);
    }
    const loaded = torchJson<Walked>(LOAD_BACK, [file('pytorch_model.bin')]);
    assert.equal(loaded.dict?.[0]?.[1].tensor?.hex, hex(w));
    fs.writeFileSync(file('other.bin'), 'not a checkpoint');
    await expectCode(() => load(file('other.bin')), 'ERR_BAD_MAGIC', /not a PyTorch checkpoint/);
  });

  test('refusals: values torch.save could not have written', async () => {
    await expectCode(() => writeTorch(file('bad1.pt'), { f: (() => 1) as never }), 'ERR_INVALID_ARGUMENT', /f is a function/);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    await expectCode(() => writeTorch(file('bad2.pt'), cyclic as never), 'ERR_INVALID_ARGUMENT', /contains itself/);
    await expectCode(() => writeTorch(file('bad3.pt'), { w: { dtype: 'float32', shape: [3], data: new Float32Array(2) } }), 'ERR_SHAPE_MISMATCH', /w:/);
    assert.equal(fs.existsSync(file('bad3.pt')), false);
  });
});
