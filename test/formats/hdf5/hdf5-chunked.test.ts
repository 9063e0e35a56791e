/**
 * Chunked HDF5 datasets read by tensorio's own reader (src/formats/hdf5/chunks.ts, filters.ts):
 * files written at test time by Debian's h5py 3.7 (HDF5 1.10) and the oracle's h5py 3.16
 * (HDF5 2.0), with libver 'earliest' (version 1 B-trees) and 'latest' (single chunk, fixed
 * array, paged fixed array, version 2 B-tree), LZF, gzip with shuffle and fletcher32, fill
 * values, edge chunks, every dtype; values compared with what h5py reads. Imports the internal
 * filters (src/formats/hdf5/filters.ts) on purpose, to test Fletcher-32 and LZF on their own.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

import { decodeH5, openH5, openH5Bytes, readH5, TensorioError } from '../../../src/index.js';
import { fletcher32, lzfDecompress } from '../../../src/formats/hdf5/filters.js';
import { numpyPythons, runPythonWith, tempDir } from '../../helpers.js';

const dir = tempDir('tensorio-hdf5-chunked');

const WRITE = `
import sys, json, h5py, numpy as np
path, libver = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(7)
dtypes = ['i1', 'u1', '<i2', '>i2', '<u2', '<i4', '>i4', '<u4', '<i8', '<u8', '<f2', '<f4', '>f4', '<f8', '>f8', '?', '<c8', '<c16']
with h5py.File(path, 'w', libver=libver) as f:
    for dt in dtypes:
        shape = (13, 7)
        if dt == '?':
            a = rng.integers(0, 2, shape).astype('?')
        elif np.dtype(dt).kind == 'c':
            a = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dt)
        elif np.dtype(dt).kind == 'f':
            a = rng.standard_normal(shape).astype(dt)
        else:
            info = np.iinfo(np.dtype(dt))
            a = rng.integers(info.min, info.max, shape, endpoint=True, dtype=np.dtype(dt).newbyteorder('='))
            a = a.astype(dt)
        name = np.dtype(dt).str.replace('<', 'le_').replace('>', 'be_').replace('|', '')
        f.create_dataset('lzf/' + name, data=a, chunks=(4, 3), compression='lzf')
        f.create_dataset('gzip/' + name, data=a, chunks=(5, 2), compression='gzip', shuffle=True, fletcher32=True)
        f.create_dataset('plain/' + name, data=a, chunks=(6, 6))
    f.create_dataset('lzf3d', data=np.arange(5 * 6 * 7, dtype='<f8').reshape(5, 6, 7) / 3, chunks=(2, 4, 3), compression='lzf', shuffle=True)
    f.create_dataset('single', data=np.arange(40, dtype='<i4').reshape(5, 8), chunks=(5, 8), compression='gzip')
    f.create_dataset('single_plain', data=np.arange(40, dtype='<i4').reshape(5, 8), chunks=(5, 8))
    # Random data LZF cannot shrink: h5py's LZF filter then fails, and HDF5 stores the chunk
    # unfiltered with the filter's bit set in the chunk's mask (LZF is an optional filter).
    f.create_dataset('incompressible', data=rng.integers(0, 256, 4000, dtype='u1'), chunks=(1000,), compression='lzf')
    # Over 1024 chunks: a paged fixed array under libver latest.
    f.create_dataset('paged', data=np.arange(3000, dtype='<i2'), chunks=(2,), compression='gzip')
    d = f.create_dataset('fill', shape=(10, 9), dtype='<f4', chunks=(4, 4), fillvalue=-7.5, compression='lzf')
    d[0:3, 0:3] = 1.25
    d[8:10, 8] = 2.5
    g = f.create_dataset('fill_int', shape=(100,), dtype='<i8', chunks=(10,), fillvalue=42)
    g[55] = -1
    f.create_dataset('never_written', shape=(6, 5), dtype='<u2', chunks=(3, 3), fillvalue=9, compression='gzip')
    f.create_dataset('zero_fill', shape=(20,), dtype='<f8', chunks=(8,))
    r = f.create_dataset('resizable', data=np.arange(30, dtype='<f4').reshape(5, 6), chunks=(2, 4), maxshape=(None, None), compression='gzip')
    r.resize((7, 6))
    # Fixed maximum dimensions above the current ones: the fixed array numbers chunks over the maximum grid.
    m = f.create_dataset('max_fixed', data=np.arange(10 * 9, dtype='<f4').reshape(10, 9), chunks=(3, 4), maxshape=(20, 13), compression='lzf')
    # One unlimited dimension (an extensible array under libver latest), the second one unlimited too (v2 B-tree).
    e = f.create_dataset('unlimited0', data=np.arange(50 * 3, dtype='<i4').reshape(50, 3), chunks=(2, 2), maxshape=(None, 7), compression='gzip')
    e.resize((60, 3))
    e[55:60] = -4
    f.create_dataset('unlimited1', data=np.arange(6 * 40, dtype='<u2').reshape(6, 40), chunks=(4, 3), maxshape=(6, None), compression='lzf')
    f.create_dataset('unlimited_plain', data=np.arange(3000, dtype='<i2'), chunks=(4,), maxshape=(None,))
out = {}
def dump(name, obj):
    if isinstance(obj, h5py.Dataset):
        dt = obj.dtype
        out[name] = {'dtype': dt.newbyteorder('<').str if dt.kind != 'b' else '|b1', 'shape': list(obj.shape), 'hex': np.asarray(obj[()]).astype(dt.newbyteorder('<')).tobytes().hex()}
with h5py.File(path, 'r') as f:
    f.visititems(dump)
print(json.dumps(out))
`;

type Dump = Record<string, { dtype: string; shape: number[]; hex: string }>;

function hex(data: ArrayBufferView): string {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('hex');
}

for (const { label, python } of numpyPythons()) {
  for (const libver of ['earliest', 'latest']) {
    test(`chunked datasets of h5py (${label}, libver ${libver}) read as h5py reads them`, async () => {
      const file = path.join(dir, `chunked-${label.replace(/\W+/g, '-')}-${libver}.h5`);
      const expected = JSON.parse(runPythonWith(python(), WRITE, [file, libver])) as Dump;
      const names = Object.keys(expected).sort();
      assert.ok(names.length > 60, `${names.length} datasets`);
      const got = await readH5(file);
      assert.deepEqual(Object.keys(got).sort(), names);
      for (const name of names) {
        const want = expected[name] as Dump[string];
        const array = got[name];
        assert.ok(array, name);
        assert.deepEqual(array.shape, want.shape, name);
        assert.equal(hex(array.data), want.hex, `${name} (${array.dtype})`);
      }
    });
  }
}

test('LZF, gzip+shuffle+fletcher32 and fill values on bytes in memory, synchronously, without h5wasm (libver earliest)', async () => {
  const file = path.join(dir, 'memory.h5');
  const [python] = numpyPythons();
  const expected = JSON.parse(runPythonWith((python as { python: () => string }).python(), `
import sys, json, h5py, numpy as np
a = np.arange(13 * 7, dtype='<f4').reshape(13, 7) / 7
with h5py.File(sys.argv[1], 'w') as f:
    f.create_dataset('lzf', data=a, chunks=(4, 3), compression='lzf')
    f.create_dataset('gzip', data=a.astype('>i2'), chunks=(5, 2), compression='gzip', shuffle=True, fletcher32=True)
    d = f.create_dataset('fill', shape=(10, 9), dtype='<f8', chunks=(4, 4), fillvalue=-7.5)
    d[2:5, 3:7] = 1.5
with h5py.File(sys.argv[1], 'r') as f:
    print(json.dumps({k: f[k][()].astype(f[k].dtype.newbyteorder('<')).tobytes().hex() for k in f}))
`, [file])) as Record<string, string>;
  const h5 = await openH5(file);
  try {
    assert.equal(h5.usesH5wasm, false);
    assert.equal(h5.info('lzf').storage.layout, 'filtered');
    for (const name of Object.keys(expected)) assert.equal(hex((await h5.read(name)).data), expected[name], name);
  } finally {
    h5.close();
  }
  const memory = decodeH5(new Uint8Array(fs.readFileSync(file)), 'memory.h5');
  for (const name of Object.keys(expected)) assert.equal(hex((memory[name] as { data: ArrayBufferView }).data), expected[name], name);
  assert.equal(memory.gzip?.dtype, 'int16');
});

test('ERR_CRC_MISMATCH: a chunk whose fletcher32 checksum does not match, for that dataset only', async () => {
  const file = path.join(dir, 'fletcher.h5');
  const [python] = numpyPythons();
  runPythonWith((python as { python: () => string }).python(), `
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], 'w') as f:
    f.create_dataset('checked', data=np.arange(1000, dtype='<i4'), chunks=(1000,), fletcher32=True)
    f.create_dataset('other', data=np.arange(10, dtype='<f4'))
`, [file]);
  const bytes = new Uint8Array(fs.readFileSync(file));
  // The chunk is 4000 bytes of little-endian 0..999 then 4 bytes of checksum: flip one byte of value 500.
  const needle = Buffer.from(new Int32Array([500, 501]).buffer);
  const at = Buffer.from(bytes).indexOf(needle);
  assert.ok(at > 0);
  bytes[at] = (bytes[at] as number) ^ 0xff;
  const h5 = openH5Bytes(bytes, 'fletcher.h5');
  try {
    assert.throws(() => h5.readSync('checked'), (error: unknown) => error instanceof TensorioError && error.code === 'ERR_CRC_MISMATCH' && /fletcher\.h5: dataset 'checked', chunk \[0\]: Fletcher-32 checksum/.test(error.message));
    assert.deepEqual(Array.from(h5.readSync('other').data as Float32Array), Array.from({ length: 10 }, (_, i) => i));
  } finally {
    h5.close();
  }
});

test('ERR_UNSUPPORTED_FILTER names the dataset and the filter; the file\'s other datasets still read (openH5, read)', async () => {
  const file = path.join(dir, 'unknown-filter.h5');
  const [python] = numpyPythons();
  runPythonWith((python as { python: () => string }).python(), `
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], 'w') as f:
    f.create_dataset('odd', data=np.arange(100, dtype='<f4'), chunks=(10,), compression='lzf')
    f.create_dataset('fine', data=np.arange(5, dtype='<i8'), chunks=(5,), compression='gzip')
`, [file]);
  // Rename the LZF filter (id 32000 = 0x7d00) to id 32123, a filter nobody registered.
  const bytes = Buffer.from(fs.readFileSync(file));
  const at = bytes.indexOf(Buffer.from('lzf\0', 'latin1'));
  assert.ok(at > 0);
  let id = -1;
  for (let i = at - 1; i > at - 16; i--) if (bytes[i] === 0x00 && bytes[i + 1] === 0x7d) id = i;
  assert.ok(id > 0, 'the filter id before its name');
  bytes[id] = 0x7b;
  fs.writeFileSync(file, bytes);
  const h5 = await openH5(file);
  try {
    await assert.rejects(h5.read('odd'), (error: unknown) => error instanceof TensorioError && error.code === 'ERR_UNSUPPORTED_FILTER' && /dataset 'odd' uses HDF5 filter lzf \(id 32123\)|dataset 'odd' uses HDF5 filter #32123 \(id 32123\)/.test(error.message));
    assert.deepEqual(Array.from((await h5.read('fine')).data as BigInt64Array), [0n, 1n, 2n, 3n, 4n]);
  } finally {
    h5.close();
  }
  await assert.rejects(readH5(file), (error: unknown) => error instanceof TensorioError && error.code === 'ERR_UNSUPPORTED_FILTER');
});

test('LZF: literal runs, back references (overlapping ones too), and refusals of streams that do not decode to the size', () => {
  // "abcabcabcX": 3 literals, a reference of length 6 at distance 3 (overlapping), 1 literal.
  const stream = Uint8Array.from([2, 0x61, 0x62, 0x63, (4 << 5) | 0, 2, 0, 0x58]);
  assert.equal(Buffer.from(lzfDecompress(stream, 10) as Uint8Array).toString('latin1'), 'abcabcabcX');
  assert.equal(lzfDecompress(stream, 9), null);
  assert.equal(lzfDecompress(stream, 11), null);
  assert.equal(lzfDecompress(Uint8Array.from([0x20, 5]), 3), null, 'a reference before the start');
  assert.equal(lzfDecompress(Uint8Array.from([5, 1]), 6), null, 'a literal run past the input');
  // Fletcher-32 of HDF5's own test vector would need HDF5; check the odd-length rule instead.
  assert.equal(fletcher32(Uint8Array.from([1, 2])), ((0x0102 << 16) | 0x0102) >>> 0);
  assert.equal(fletcher32(Uint8Array.from([1])), ((0x0100 << 16) | 0x0100) >>> 0);
});

test('damaged chunked files: every one-byte change of a file with LZF, gzip+shuffle+fletcher32 and fill values reads or is a TensorioError, never another exception', () => {
  const file = path.join(dir, 'mutate.h5');
  const [python] = numpyPythons();
  runPythonWith((python as { python: () => string }).python(), `
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], 'w') as f:
    f.create_dataset('lzf', data=np.arange(60, dtype='<f4').reshape(6, 10), chunks=(4, 3), compression='lzf')
    f.create_dataset('gz', data=np.arange(50, dtype='<i8'), chunks=(7,), compression='gzip', shuffle=True, fletcher32=True)
    d = f.create_dataset('fill', shape=(9,), dtype='<u2', chunks=(4,), fillvalue=3)
    d[0] = 1
`, [file]);
  const original = new Uint8Array(fs.readFileSync(file));
  let seed = 12345;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
  const codes = new Map<string, number>();
  for (let i = 0; i < 1500; i++) {
    const bytes = original.slice();
    const at = next() % bytes.length;
    bytes[at] = (bytes[at] as number) ^ (1 + (next() % 255));
    try {
      decodeH5(bytes, 'mutated.h5');
      codes.set('read', (codes.get('read') ?? 0) + 1);
    } catch (error) {
      assert.ok(error instanceof TensorioError, `byte ${at}: ${(error as Error).stack}`);
      codes.set(error.code, (codes.get(error.code) ?? 0) + 1);
    }
  }
  assert.ok((codes.get('ERR_CRC_MISMATCH') ?? 0) > 0 || (codes.get('ERR_BAD_HEADER') ?? 0) > 0, JSON.stringify([...codes]));
});

test('an implicit chunk index (early allocation, no filters, libver latest), and ERR_TOO_LARGE for a chunked dataset declaring 8 TiB in a small file', async () => {
  const file = path.join(dir, 'implicit.h5');
  const [, oracle] = numpyPythons();
  const expected = runPythonWith((oracle as { python: () => string }).python(), `
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], 'w', libver='latest') as f:
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_chunk((4, 3))
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    space = h5py.h5s.create_simple((9, 7))
    dsid = h5py.h5d.create(f.id, b'implicit', h5py.h5t.STD_I32LE, space, dcpl=dcpl)
    d = h5py.Dataset(dsid)
    d[...] = np.arange(63, dtype='<i4').reshape(9, 7)
    f.create_dataset('huge', shape=(2 ** 40,), dtype='<f8', chunks=(1024,))
    f.create_dataset('small', data=np.arange(3, dtype='<f8'))
with h5py.File(sys.argv[1], 'r') as f:
    print(f['implicit'][()].tobytes().hex())
`, [file]).trim();
  const h5 = await openH5(file);
  try {
    assert.equal(hex((await h5.read('implicit')).data), expected);
    await assert.rejects(h5.read('huge'), (error: unknown) => error instanceof TensorioError && error.code === 'ERR_TOO_LARGE' && /dataset 'huge' declares 8796093022208 bytes of chunked data/.test(error.message));
    assert.deepEqual(Array.from((await h5.read('small')).data as Float64Array), [0, 1, 2]);
  } finally {
    h5.close();
  }
});
