/**
 * HDF5 interop with both h5py builds (issue 20, check 7): Debian's h5py 3.7 on HDF5 1.10.8 and
 * the oracle's h5py 3.16 on HDF5 2.0. Both directions: h5py reads what writeH5 writes, and
 * tensorio's readers (h5wasm's structure walk, the own reader without h5wasm, storage offsets)
 * read what each h5py writes, with the default format and with libver='latest'.
 *
 * What HDF5 2.0 writes differently (checked below, each file read by both h5py builds): with
 * the default libver the files are byte for byte those of HDF5 1.10 except a chunked dataset's
 * fill value message, whose fill time is IFSET (2) where 1.10 writes ALLOC (0); with
 * libver='latest' (superblock 3 in both) the root group's v2 object header no longer stores
 * times (flags 0x00 instead of 0x20, 16 bytes less). tensorio reads both the same.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

import { decodeH5, type DType, dtypeInfo, type NdArray, openH5, readH5, readH5Sync, writeH5 } from '../../../src/index.js';
import { assertStorageAsH5pyReports, H5PY_DUMP, hex, NUMPY_NAMES, type Dump } from './h5-dump.js';
import { h5pyPythons, pattern, runPythonWith, tempDir } from '../../helpers.js';

const dir = tempDir('h5-h5py');

/** One file per feature, written with the default libver (f-*) and libver='latest' (l-*). */
const FEATURES = `
import sys, h5py, numpy as np
d = sys.argv[1]
features = {
    'contiguous': lambda f: f.__setitem__('a', np.arange(12, dtype='<f4').reshape(3, 4)),
    'big-endian': lambda f: f.__setitem__('a', np.arange(12, dtype='>f8').reshape(3, 4)),
    'chunked': lambda f: f.create_dataset('a', data=np.arange(1000, dtype='<i4').reshape(10, 100), chunks=(3, 7)),
    'gzip-shuffle': lambda f: f.create_dataset('a', data=np.linspace(0, 1, 999, dtype='<f4'), chunks=(100,), compression='gzip', shuffle=True),
    'fletcher32': lambda f: f.create_dataset('a', data=np.linspace(0, 1, 999, dtype='<f4'), chunks=(100,), fletcher32=True),
    'lzf': lambda f: f.create_dataset('a', data=np.arange(500, dtype='<i8'), chunks=(64,), compression='lzf'),
    'unlimited': lambda f: f.create_dataset('a', data=np.arange(100, dtype='<f4').reshape(10, 10), chunks=(3, 3), maxshape=(None, None)),
    'float16': lambda f: f.__setitem__('a', np.array([0.5, -2, 65504, np.inf], dtype='<f2')),
    'bool': lambda f: f.__setitem__('a', np.array([True, False, True])),
    'complex': lambda f: f.__setitem__('a', np.array([1 + 2j, -3.5j], dtype='<c16')),
    'scalar': lambda f: f.__setitem__('g/h/a', np.float32(2.5)),
    'empty': lambda f: f.__setitem__('a', np.zeros((0, 3), 'f4')),
    'attributes': lambda f: (f.__setitem__('a', np.ones(2)), f.attrs.__setitem__('note', 'hello'), f.attrs.__setitem__('names', [b'a', b'bc'])),
    'many-links': lambda f: [f.__setitem__('many/d%02d' % i, np.arange(i + 1, dtype='u2')) for i in range(40)],
}
for name, make in features.items():
    for prefix, libver in (('f-', 'earliest'), ('l-', 'latest')):
        with h5py.File(d + '/' + prefix + name + '.h5', 'w', libver=libver) as f:
            make(f)
print(h5py.version.version + ' ' + h5py.version.hdf5_version)
`;

/** What the own reader reads from memory without h5wasm (the same for both builds). */
const OWN_READER = ['contiguous', 'big-endian', 'chunked', 'gzip-shuffle', 'fletcher32', 'lzf', 'unlimited', 'float16', 'scalar', 'attributes', 'many-links'];

function sample(dtype: DType, shape: number[], seed: number): NdArray {
  const info = dtypeInfo(dtype);
  const count = shape.reduce((a, b) => a * b, 1);
  const bytes = pattern(count * info.itemSize, seed);
  if (dtype === 'bool') bytes.forEach((b, i) => (bytes[i] = b & 1));
  // Finite floats: the pattern's NaNs would compare by bits anyway, but keep values plain.
  if (dtype === 'float16' || dtype === 'float32' || dtype === 'float64' || dtype.startsWith('complex')) {
    for (let i = info.swapSize - 1; i < bytes.length; i += info.swapSize) bytes[i] = (bytes[i] as number) & 0x3f;
  }
  return { dtype, shape, data: new info.array(bytes.buffer, 0, count * info.lanes) as NdArray['data'] };
}

const written: Record<string, string> = {};

/** H5PY_DUMP over many files in one process: {file: dump}. */
const TAIL = "with h5py.File(sys.argv[1], 'r') as f:\n    walk(f, '', 0)\nprint(json.dumps(out))";
if (!H5PY_DUMP.includes(TAIL)) throw new Error('H5PY_DUMP changed: update DUMP_ALL');
const DUMP_ALL = `${H5PY_DUMP.replace(TAIL, '')}
every = {}
for file in sys.argv[1:]:
    out = {}
    with h5py.File(file, 'r') as f:
        walk(f, '', 0)
    every[file] = out
print(json.dumps(every))
`;

for (const { label, python } of h5pyPythons()) {
  const folder = path.join(dir, label.replace(/\W+/g, '-'));
  fs.mkdirSync(folder);
  const dumps = (files: string[]): Record<string, Dump> => JSON.parse(runPythonWith(python(), DUMP_ALL, files)) as Record<string, Dump>;
  const dump = (file: string): Dump => dumps([file])[file] as Dump;

  test(`${label}: h5py reads what writeH5 writes: every dtype, bool, 0-d, empty, nested groups, a 2 MiB dataset`, async () => {
    const record: Record<string, NdArray> = {};
    const dtypes: DType[] = ['bool', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'float16', 'float32', 'float64', 'complex64', 'complex128'];
    dtypes.forEach((dtype, i) => (record[`types/${dtype}`] = sample(dtype, [3, 4], i + 1)));
    record.scalar = sample('float64', [], 30);
    record.empty = sample('float32', [0, 5], 31);
    record['a/b/c/deep'] = sample('int32', [2, 2, 2], 32);
    record['big/f32'] = sample('float32', [512, 1024], 33);
    const file = path.join(folder, 'ours.h5');
    await writeH5(file, record);
    const seen = dump(file);
    assert.deepEqual(Object.keys(seen).sort(), Object.keys(record).sort());
    for (const [name, array] of Object.entries(record)) {
      const got = seen[name];
      assert.ok(got && !('error' in got), name);
      assert.equal(got.dtype === '|b1' ? 'bool' : NUMPY_NAMES[got.dtype], array.dtype, name);
      assert.deepEqual(got.shape, array.shape, name);
      assert.equal(got.hex, hex(array), name);
    }
    const superblock = JSON.parse(runPythonWith(python(), `import sys, json, h5py\nh5py.File(sys.argv[1], 'r').close()\nprint(json.dumps(open(sys.argv[1], 'rb').read(9)[8]))`, [file])) as number;
    assert.equal(superblock, 0);
  });

  test(`${label}: readH5, readH5Sync and openH5 read what h5py writes, default format and libver='latest'`, async () => {
    const versions = runPythonWith(python(), FEATURES, [folder]).trim();
    assert.match(versions, label.startsWith('Debian') ? /^3\.7\.\d+ 1\.10\./ : /^3\.16\.\d+ 2\.0\./);
    written[label] = folder;
    const files = fs.readdirSync(folder).filter((f) => /^[fl]-.*\.h5$/.test(f));
    assert.equal(files.length, 28);
    const all = dumps(files.map((f) => path.join(folder, f)));
    for (const file of files) {
      const full = path.join(folder, file);
      const want = all[full] as Dump;
      for (const got of [await readH5(full), readH5Sync(full)]) {
        assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort(), file);
        for (const [name, w] of Object.entries(want)) {
          assert.ok(!('error' in w), `${file} ${name}`);
          const array = got[name] as NdArray;
          assert.equal(array.dtype, w.dtype === '|b1' ? 'bool' : NUMPY_NAMES[w.dtype], `${file} ${name}`);
          assert.deepEqual(array.shape, w.shape, `${file} ${name}`);
          assert.equal(hex(array), w.hex, `${file} ${name}`);
        }
      }
      if (file.endsWith('attributes.h5')) {
        const h5 = await openH5(full);
        try {
          assert.equal(h5.attribute('', 'note'), 'hello');
          assert.deepEqual(h5.attribute('', 'names'), ['a', 'bc']);
        } finally {
          h5.close();
        }
      }
    }
  });

  test(`${label}: the own reader (decodeH5 from memory, no h5wasm) reads h5py's default-format files, and finds contiguous data where h5py says it lies`, async () => {
    const all = dumps(OWN_READER.map((feature) => path.join(folder, `f-${feature}.h5`)));
    for (const feature of OWN_READER) {
      const full = path.join(folder, `f-${feature}.h5`);
      const got = decodeH5(new Uint8Array(fs.readFileSync(full)), full);
      const want = all[full] as Dump;
      assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort(), feature);
      for (const [name, w] of Object.entries(want)) assert.equal(hex(got[name] as NdArray), (w as { hex: string }).hex, `${feature} ${name}`);
    }
    for (const feature of ['big-endian', 'many-links']) {
      for (const prefix of ['f-', 'l-']) await assertStorageAsH5pyReports(path.join(folder, `${prefix}${feature}.h5`), python());
    }
  });
}

test('what HDF5 2.0 writes differently from HDF5 1.10: the same bytes by default but a chunked fill time IFSET; no root-group times with libver=latest', () => {
  const [debian, oracle] = h5pyPythons();
  const a = written[debian?.label as string];
  const b = written[oracle?.label as string];
  assert.ok(a && b, 'both h5py builds wrote their files (the tests above)');
  const bytes = (folder: string, name: string): Buffer => fs.readFileSync(path.join(folder, `${name}.h5`));
  assert.ok(bytes(a, 'f-contiguous').equals(bytes(b, 'f-contiguous')), 'default format, contiguous: byte for byte');
  assert.ok(bytes(a, 'f-attributes').equals(bytes(b, 'f-attributes')), 'default format, attributes: byte for byte');
  assert.equal(bytes(a, 'l-contiguous')[8], 3);
  assert.equal(bytes(b, 'l-contiguous')[8], 3);
  // Each build reads both builds' files and reports the same properties.
  const QUERY = `
import sys, json, h5py
out = []
for folder in sys.argv[1:]:
    row = {}
    for name in ('f-chunked', 'l-chunked'):
        with h5py.File(folder + '/' + name + '.h5', 'r') as f:
            root = h5py.h5g.open(f.id, b'/')
            row[name] = [root.get_create_plist().get_obj_track_times(), f['a'].id.get_create_plist().get_fill_time()]
    out.append(row)
print(json.dumps(out))
`;
  for (const { python } of h5pyPythons()) {
    const seen = JSON.parse(runPythonWith(python(), QUERY, [a, b])) as Array<Record<string, [boolean | number, number]>>;
    assert.deepEqual(
      seen.map((row) => [Number(row['f-chunked']?.[0]), row['f-chunked']?.[1], Number(row['l-chunked']?.[0]), row['l-chunked']?.[1]]),
      [
        [1, 0, 1, 0], // HDF5 1.10: fill time ALLOC; root times kept under libver=latest
        [1, 2, 0, 2], // HDF5 2.0: fill time IFSET; no root times under libver=latest
      ],
    );
  }
});
