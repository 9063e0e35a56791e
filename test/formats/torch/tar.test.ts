/**
 * The tar layout of torch.save before 0.1.10. Real PyTorch cannot write it any more, so the
 * files are built at test time with Python's tarfile and pickle, following the layout that
 * torch/serialization.py's `_legacy_load` reads (members `sys_info`, `pickle`, `tensors`,
 * `storages`; see src/formats/torch/tar-layout.ts), with real torch classes in the pickles. The
 * oracle is today's torch.load(weights_only=False), which still reads the layout (it refuses it
 * with weights_only=True): every file is read by both and must agree. Then hostile variants:
 * cut at every point, member sizes that lie, bad checksums, forbidden globals, a module's
 * persistent id, counts and dimensions past their member: each a typed error.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';

import assert from 'node:assert/strict';

import { load, openTorch, openTorchSync, readTorch, readTorchSync, scanTorchGlobals, TensorioError, toFloat32, type LoadedArray, type TorchValue } from '../../../src/index.js';
import { expectCode } from '../../expect-code.js';
import { NATIVE_MODE, runTorch, tempDir } from '../../helpers.js';
import { readBoth } from './read-both.js';

const dir = tempDir('torch-tar');
const file = (name: string): string => path.join(dir, name);

// Builds <dir>/<case>.pt for each case, then prints what torch.load(weights_only=False) finds in
// the good ones: {case: {path: {dtype, shape, values}}}.
const BUILD = `
import collections, io, json, os, pickle, struct, sys, tarfile
import torch

out = sys.argv[1]

class Ref:
    def __init__(self, key): self.key = key

def build(name, make, fmt=tarfile.PAX_FORMAT, little=True, members=None, pax=False, pid_of=None):
    storages, views, tensors = {}, [], {}
    def storage(key, cls, t):
        storages[key] = (cls, t.numpy().tobytes(), t.numel()); return Ref(key)
    def view(key, root, offset, numel):
        views.append((key, root, offset, numel)); return Ref(key)
    def tensor(key, skey, cls, size, stride, offset):
        tensors[key] = (skey, cls, size, stride, offset); return Ref(key)
    obj = make(storage, view, tensor)
    def dump(f, v): pickle.dump(v, f, protocol=2)
    sys_info = io.BytesIO(); dump(sys_info, dict(protocol_version=1001, little_endian=little, type_sizes=dict(short=2, int=4, long=8)))
    main = io.BytesIO(); p = pickle.Pickler(main, protocol=2)
    p.persistent_id = pid_of or (lambda o: str(o.key) if isinstance(o, Ref) else None); p.dump(obj)
    ten = io.BytesIO(); dump(ten, len(tensors))
    for key, (skey, cls, size, stride, offset) in tensors.items():
        dump(ten, (key, skey, cls))
        ten.write(struct.pack('<i', len(size)) + bytes(4) + struct.pack(f'<{len(size)}q', *size) + struct.pack(f'<{len(stride)}q', *stride) + struct.pack('<q', offset))
    sto = io.BytesIO(); dump(sto, len(storages))
    for key, (cls, data, numel) in storages.items():
        dump(sto, (key, 'cpu', cls)); sto.write(struct.pack('<q', numel)); sto.write(data)
    dump(sto, views)
    parts = {'sys_info': sys_info, 'pickle': main, 'tensors': ten, 'storages': sto}
    with tarfile.open(os.path.join(out, name + '.pt'), 'w:', format=fmt) as tar:
        for member in members or ['sys_info', 'pickle', 'tensors', 'storages']:
            data = parts[member].getvalue()
            info = tarfile.TarInfo(member); info.size = len(data)
            if pax: info.pax_headers = {'comment': 'a pax header before ' + member}
            tar.addfile(info, io.BytesIO(data))

def state(storage, view, tensor):
    storage(1, torch.FloatStorage, torch.arange(6, dtype=torch.float32) / 4 - 0.5)
    storage(2, torch.LongStorage, torch.arange(10, dtype=torch.int64) * 1000003 - 7)
    storage(4, torch.HalfStorage, torch.tensor([1.5, -2.25, 65504, 0.0001], dtype=torch.float16))
    storage(5, torch.ByteStorage, torch.tensor([0, 1, 255], dtype=torch.uint8))
    storage(6, torch.DoubleStorage, torch.tensor([3.141592653589793, -1e300], dtype=torch.float64))
    v = view(3, 2, 4, 5)
    return collections.OrderedDict(
        w=tensor(10, 1, torch.FloatTensor, (2, 3), (3, 1), 0),
        w_flat=tensor(11, 1, torch.FloatTensor, (6,), (1,), 0),
        w_t=tensor(12, 1, torch.FloatTensor, (3, 2), (1, 3), 0),
        on_view=tensor(13, 3, torch.LongTensor, (4,), (1,), 1),
        half=tensor(14, 4, torch.HalfTensor, (2, 2), (2, 1), 0),
        scalar=tensor(15, 6, torch.DoubleTensor, (), (), 1),
        bytes=tensor(16, 5, torch.ByteTensor, (3,), (1,), 0),
        a_view=v,
        nested=[tensor(17, 2, torch.LongTensor, (2, 2), (1, 5), 0), {'epoch': 3, 'lr': 0.5}],
    )

def one(storage, view, tensor):
    storage(1, torch.FloatStorage, torch.tensor([1.0, 2.0, 3.0]))
    return {'w': tensor(10, 1, torch.FloatTensor, (3,), (1,), 0)}

build('state', state)
build('state-gnu', state, fmt=tarfile.GNU_FORMAT)
build('state-ustar', state, fmt=tarfile.USTAR_FORMAT, members=['storages', 'tensors', 'pickle', 'sys_info'])
build('state-pax', state, pax=True)
build('one', one)

# Hostile ones.
build('big-endian', one, little=False)
build('missing', one, members=['sys_info', 'pickle', 'storages'])
build('twice', one, members=['sys_info', 'pickle', 'tensors', 'storages', 'pickle'])
def ghost(storage, view, tensor):
    storage(1, torch.FloatStorage, torch.zeros(2)); return {'w': Ref(999)}
build('ghost', ghost)
def outside(storage, view, tensor):
    storage(1, torch.FloatStorage, torch.zeros(4)); return {'w': tensor(10, 1, torch.FloatTensor, (2, 2), (2, 1), 1)}
build('outside', outside)
def view_outside(storage, view, tensor):
    storage(1, torch.FloatStorage, torch.zeros(4)); return {'v': view(3, 1, 2, 3)}
build('view-outside', view_outside)
class Evil:
    def __reduce__(self): return (os.system, ('echo owned',))
build('evil', lambda s, v, t: {'x': Evil()})
# torch named a module class once by (class, source file, source), as its persistent_id did.
named = set()
def module_pid(o):
    if o is torch.nn.Linear and o not in named:
        named.add(o); return (o, 'linear.py', 'source')
    return None
build('module', lambda s, v, t: {'m': torch.nn.Linear}, pid_of=module_pid)

expected = {}
for case in ['state', 'state-gnu', 'state-ustar', 'state-pax', 'one']:
    got = torch.load(os.path.join(out, case + '.pt'), weights_only=False)
    flat = {}
    def walk(v, name):
        if isinstance(v, torch.Tensor):
            flat[name] = {'dtype': str(v.dtype)[6:], 'shape': list(v.shape), 'values': v.reshape(-1).tolist()}
        elif isinstance(v, torch.storage.TypedStorage):
            flat[name] = {'dtype': str(v.dtype)[6:], 'shape': [len(v)], 'values': list(v)}
        elif isinstance(v, dict):
            for k, x in v.items(): walk(x, f'{name}.{k}' if name else k)
        elif isinstance(v, list):
            for i, x in enumerate(v): walk(x, f'{name}.{i}' if name else str(i))
    walk(got, '')
    expected[case] = flat
print(json.dumps(expected))
`;

interface Expected {
  dtype: string;
  shape: number[];
  values: (number | boolean)[];
}
const expected = JSON.parse(runTorch(BUILD, [dir]).trim().split('\n').pop() as string) as Record<string, Record<string, Expected>>;

/** The tensors of a value, flattened by path as the Python side does. */
function flatten(value: TorchValue, name = '', out = new Map<string, LoadedArray>()): Map<string, LoadedArray> {
  if (value && typeof value === 'object' && 'dtype' in value && 'data' in value) out.set(name, value as LoadedArray);
  else if (Array.isArray(value)) value.forEach((v, i) => flatten(v, name ? `${name}.${i}` : String(i), out));
  else if (value && typeof value === 'object' && !(value instanceof Uint8Array) && !(value instanceof Map) && !(value instanceof Set)) {
    for (const [k, v] of Object.entries(value)) flatten(v, name ? `${name}.${k}` : k, out);
  }
  return out;
}

function assertMatches(value: TorchValue, want: Record<string, Expected>, label: string): void {
  const got = flatten(value);
  assert.deepEqual([...got.keys()].sort(), Object.keys(want).sort(), label);
  for (const [name, array] of got) {
    const w = want[name] as Expected;
    assert.equal(array.dtype, w.dtype, `${label} ${name}`);
    assert.deepEqual(array.shape, w.shape, `${label} ${name}`);
    // float16 holds its bits: compared as numbers through float32, exact for every half.
    const data = array.dtype === 'float16' ? toFloat32(array).data : array.data;
    assert.deepEqual(Array.from(data as ArrayLike<number | bigint>, Number), w.values.map(Number), `${label} ${name}`);
  }
}

/** Rewrites a tar header's field and its checksum, as a writer that lies would. */
function setField(bytes: Uint8Array, header: number, start: number, length: number, text: string): void {
  bytes.fill(0, header + start, header + start + length);
  bytes.set(new TextEncoder().encode(text), header + start);
  bytes.fill(0x20, header + 148, header + 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += bytes[header + i] as number;
  bytes.set(new TextEncoder().encode(`${sum.toString(8).padStart(6, '0')}\0 `), header + 148);
}

/** The offset of the header of member `name` in a tar built above (plain ustar headers). */
function headerOf(bytes: Uint8Array, name: string): number {
  for (let at = 0; at + 512 <= bytes.length; ) {
    const field = new TextDecoder('latin1').decode(bytes.subarray(at, at + 100)).replace(/\0.*$/s, '');
    const size = parseInt(new TextDecoder('latin1').decode(bytes.subarray(at + 124, at + 136)).replace(/\0.*$/s, '').trim() || '0', 8);
    if (field === name) return at;
    at += 512 + Math.ceil(size / 512) * 512;
  }
  throw new Error(`no member ${name}`);
}

describe('the tar layout (torch before 0.1.10), built at test time', () => {
  test('read as torch.load reads it: every dtype, views of storages, strided tensors, nested values; eager, mapped, sync; ustar, GNU and pax headers', async () => {
    for (const name of ['state', 'state-gnu', 'state-ustar', 'state-pax', 'one']) {
      const want = expected[name] as Record<string, Expected>;
      for (const mmap of [false, true]) {
        assertMatches(await readTorch(file(`${name}.pt`), { mmap }), want, `${name} mmap=${mmap}`);
        assertMatches(readTorchSync(file(`${name}.pt`), { mmap }), want, `${name} sync mmap=${mmap}`);
      }
    }
    const value = (await readTorch(file('state.pt'))) as Record<string, LoadedArray> & { nested: [LoadedArray, { epoch: number; lr: number }] };
    assert.deepEqual(value.nested[1], { epoch: 3, lr: 0.5 });
    // Tensors on one storage share it; a strided one is a C-order copy.
    assert.equal(value['w']?.data.buffer, value['w_flat']?.data.buffer);
    assert.notEqual(value['w_t']?.data.buffer, value['w']?.data.buffer);
    const mapped = (await readTorch(file('state.pt'), { mmap: true })) as Record<string, LoadedArray>;
    assert.equal(mapped['w']?.data.buffer, mapped['w_flat']?.data.buffer);
    // Tar storages follow their record pickles unpadded: mapped when aligned, else copied once,
    // saying why (without the addon nothing is mapped, and the reason says so).
    const reason = String(mapped['w']?.copyReason);
    if (NATIVE_MODE) assert.ok(mapped['w']?.mapped === true || /off its 4-byte alignment/.test(reason), reason);
    else assert.match(reason, /native addon/);
  });

  test('openTorch lists and describes its tensors; load() and a .bin are sniffed', async () => {
    const lazy = await openTorch(file('state.pt'));
    try {
      assert.equal(lazy.format, 'tar');
      assert.equal(lazy.byteOrder, 'little');
      assert.deepEqual(lazy.keys(), ['w', 'w_flat', 'w_t', 'on_view', 'half', 'scalar', 'bytes', 'a_view', 'nested.0']);
      assert.deepEqual(
        { ...lazy.info('on_view'), file: '' },
        { name: 'on_view', dtype: 'int64', shape: [4], stride: [1], storageOffset: 5, storage: '2', file: '', storageNumel: 10, contiguous: true, parameter: false },
      );
      assert.deepEqual(Array.from((await lazy.get('w_t')).data as Float32Array), (expected['state']?.['w_t'] as Expected).values);
    } finally {
      lazy.close();
    }
    const sync = openTorchSync(file('one.pt'), { mmap: true });
    assert.deepEqual(Array.from(sync.get('w').data as Float32Array), [1, 2, 3]);
    sync.close();
    fs.copyFileSync(file('one.pt'), file('one.bin'));
    assertMatches((await load(file('one.bin'))) as TorchValue, expected['one'] as Record<string, Expected>, 'load(.bin)');
    await expectCode(() => scanTorchGlobals(file('one.pt')), 'ERR_UNSUPPORTED_VERSION', /tar layout/);
  });

  test('refused: forbidden globals, a module by persistent id, big-endian, names that point nowhere, tensors and views outside their storage', async () => {
    await expectCode(() => readBoth(file('evil.pt')), 'ERR_UNSAFE_PICKLE', /posix\.system/);
    await expectCode(() => readBoth(file('module.pt')), 'ERR_UNSAFE_PICKLE', /torch\.nn\.modules\.linear\.Linear/);
    await expectCode(() => readBoth(file('big-endian.pt')), 'ERR_UNSUPPORTED_VERSION', /big-endian/);
    await expectCode(() => readBoth(file('missing.pt')), 'ERR_BAD_HEADER', /no member 'tensors'/);
    await expectCode(() => readBoth(file('twice.pt')), 'ERR_BAD_HEADER', /'pickle' twice/);
    await expectCode(() => readBoth(file('ghost.pt')), 'ERR_BAD_HEADER', /object '999'/);
    for (const mmap of [false, true]) {
      await expectCode(() => readBoth(file('outside.pt'), { mmap }), 'ERR_BAD_VALUE', /reach element 4, the storage holds 4/);
      await expectCode(() => readBoth(file('view-outside.pt'), { mmap }), 'ERR_BAD_VALUE', /storage view/);
    }
  });

  test('hostile archives: every cut, member sizes that lie, bad checksums and fields, counts past their member', async () => {
    const good = new Uint8Array(fs.readFileSync(file('state.pt')));
    const storages = headerOf(good, 'storages');
    const size = parseInt(new TextDecoder().decode(good.subarray(storages + 124, storages + 135)), 8);
    // 'storages' is the last member: a cut before its data ends is some typed error (ERR_TRUNCATED
    // for most, ERR_BAD_MAGIC before the magic); one in the padding and end blocks after it
    // loses nothing, and reads, as Python's tarfile reads it.
    const dataEnd = storages + 512 + size;
    const cuts = new Set<number>([1, 100, 262, 511, 512, 513, 600, dataEnd - 1, dataEnd, dataEnd + 1, good.length - 1]);
    for (let at = 0; at < good.length; at += 173) cuts.add(at);
    for (const cut of cuts) {
      fs.writeFileSync(file('cut.pt'), good.subarray(0, cut));
      if (cut >= dataEnd) assertMatches(await readBoth(file('cut.pt')), expected['state'] as Record<string, Expected>, `cut at ${cut}`);
      else await assert.rejects(() => readBoth(file('cut.pt')), (error: unknown) => error instanceof TensorioError, `cut at ${cut}`);
    }
    // The members end where the file has the rest of the archive: a cut between two members
    // (no end block, no 'storages') is a truncation, not a foreign file.
    fs.writeFileSync(file('cut.pt'), good.subarray(0, headerOf(good, 'storages')));
    await expectCode(() => readBoth(file('cut.pt')), 'ERR_TRUNCATED', /without its end block/);

    const variant = (edit: (bytes: Uint8Array) => void): string => {
      const bytes = good.slice();
      edit(bytes);
      fs.writeFileSync(file('variant.pt'), bytes);
      return file('variant.pt');
    };
    // Shorter than its records: the last pickle or storage runs past the member's end.
    for (const shorter of [1, 20, 60, size - 10]) {
      await assert.rejects(
        () => readBoth(variant((b) => setField(b, storages, 124, 12, `${(size - shorter).toString(8).padStart(11, '0')}`))),
        (error: unknown) => error instanceof TensorioError && ['ERR_TRUNCATED', 'ERR_BAD_PICKLE'].includes(error.code),
        `storages ${shorter} bytes short`,
      );
    }
    await expectCode(() => readBoth(variant((b) => setField(b, storages, 124, 12, '77777777777'))), 'ERR_TRUNCATED', /tar member 'storages'/);
    await expectCode(() => readBoth(variant((b) => setField(b, storages, 124, 12, '12x4'))), 'ERR_BAD_HEADER', /not an octal number/);
    await expectCode(() => readBoth(variant((b) => (b[storages + 10] = 0x41))), 'ERR_BAD_HEADER', /checksum/);
    // A storage's element count of 2^62 (its int64 sits after the first record pickles).
    const data = new TextDecoder('latin1').decode(good.subarray(storages + 512, storages + 512 + size));
    const count = data.indexOf('ctorch\nFloatStorage\n') >= 0 ? data.indexOf('.', data.indexOf('ctorch\nFloatStorage\n')) + 1 : -1;
    assert.ok(count > 0, 'the first storage record');
    await expectCode(
      () => readBoth(variant((b) => new DataView(b.buffer).setBigInt64(storages + 512 + count, 2n ** 62n, true))),
      'ERR_TRUNCATED',
      /claims 4611686018427387904 elements/,
    );
    // A tensor's dimension count past its member.
    const tensors = headerOf(good, 'tensors');
    const tdata = new TextDecoder('latin1').decode(good.subarray(tensors + 512, tensors + 1024));
    const ndim = tdata.indexOf('ctorch\nFloatTensor\n') >= 0 ? tdata.indexOf('.', tdata.indexOf('ctorch\nFloatTensor\n')) + 1 : -1;
    assert.ok(ndim > 0, 'the first tensor record');
    await expectCode(() => readBoth(variant((b) => new DataView(b.buffer).setInt32(tensors + 512 + ndim, 1000, true))), 'ERR_BAD_VALUE', /1000 dimensions/);
    await expectCode(() => readBoth(variant((b) => new DataView(b.buffer).setInt32(tensors + 512 + ndim, 64, true))), 'ERR_TRUNCATED', /tar member 'tensors' ends/);
    // The fake tar of an all-zero header with only the magic.
    const fake = new Uint8Array(1024);
    fake.set(new TextEncoder().encode('ustar'), 257);
    fs.writeFileSync(file('fake.pt'), fake);
    await expectCode(() => readBoth(file('fake.pt')), 'ERR_BAD_HEADER', /checksum/);
  });
});
