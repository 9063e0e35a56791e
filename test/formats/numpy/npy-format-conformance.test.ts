/**
 * NumPy's own `.npy` format tests, re-expressed for tensorio: numpy/lib/tests/test_format.py
 * of NumPy main at commit 1f90bbb (2.6.0.dev0, 2026-08), each case run against real NumPy
 * (Debian's 1.24 and the oracle's 2.1.3, which write the files and judge tensorio's). Each
 * test names the NumPy test it ports. Where tensorio differs on purpose (record dtypes, long
 * doubles) the test asserts the typed error and says why.
 *
 * Not ported: test_roundtrip_randsize (NumPy's reads from a stream returning random short
 * reads; tensorio reads files and byte buffers, never a Python-style stream),
 * test_large_file_support and test_large_archive (5 GiB sparse and 2 GiB files: too big for
 * the suite; tests/bench of big files live elsewhere), test_pickle_python2_python3 (NumPy's
 * data files; the pickle tests cover Python 2 pickles), test_descr_to_dtype and
 * test_load_padded_dtype (NumPy's record descr round trip: tensorio refuses records, tested
 * below with NumPy's own record arrays).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';

import { asCOrder, encodeNpyHeader, load, openNpy, openNpz, parseNpyHeader, readNpy, readNpySync, readNpz, readNpzSync, writeNpy, writeNpz, type LoadedArray } from '../../../src/index.js';
import { expectCode } from '../../expect-code.js';
import { numpyPythons, runPythonWith, tempDir } from '../../helpers.js';
import { assertBothRefuse, assertSameArray, dtypeOfNumpy, memberVerdict, numpyVerdicts, rawNpy, tensorioOutcome, type NumpyVerdict } from './npy-verdict.js';

/** Writes what test_format.py builds, with the NumPy under test; prints the manifest. */
const GENERATE = String.raw`
import json, os, sys, warnings
from io import BytesIO
import numpy as np
from numpy.lib import format
warnings.simplefilter('ignore')
out = sys.argv[1]
def p(*parts): return os.path.join(out, *parts)
os.makedirs(p('basic')); os.makedirs(p('object')); os.makedirs(p('records'))
# test_format.py's basic_arrays: every scalar type in both byte orders, six shapes/layouts.
scalars = [np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.uint64, np.int64,
           np.float32, np.float64, np.complex64, np.complex128]
basic = []
for scalar in scalars:
    for endian in '<>':
        dtype = np.dtype(scalar).newbyteorder(endian)
        b = np.arange(1500).astype(dtype)
        for kind, arr in [('empty', np.array([], dtype=dtype)), ('rank0', np.array(10, dtype=dtype)), ('1d', b),
                          ('c2d', b.reshape((30, 50))), ('f2d', b.reshape((30, 50)).T), ('nc2d', b.reshape((30, 50))[::-1, ::2])]:
            name = '%s_%s_%s.npy' % (dtype.str[1:], 'be' if endian == '>' else 'le', kind)
            np.save(p('basic', name), arr)
            basic.append({'file': p('basic', name), 'little': endian == '<' or dtype.itemsize == 1, 'kind': kind})
objects = []
b = np.arange(1500).astype(object)
for kind, arr in [('empty', np.array([], dtype=object)), ('rank0', np.array(10, dtype=object)), ('1d', b),
                  ('c2d', b.reshape((30, 50))), ('f2d', b.reshape((30, 50)).T), ('nc2d', b.reshape((30, 50))[::-1, ::2])]:
    np.save(p('object', kind + '.npy'), arr)
    objects.append(p('object', kind + '.npy'))
np.savez(p('object', 'objects.npz'), x=b)
# record_arrays
Pdescr = [('x', 'i4', (2,)), ('y', 'f8', (2, 2)), ('z', 'u1')]
PbufferT = [([3, 2], [[6., 4.], [6., 4.]], 8), ([4, 3], [[7., 5.], [7., 5.]], 9)]
records = [np.array(PbufferT, dtype=np.dtype(Pdescr).newbyteorder('<')), np.array(PbufferT, dtype=np.dtype(Pdescr).newbyteorder('>')),
           np.zeros(1, dtype=[('c', ('<f8', (5,)), (2,))]),
           np.zeros(3, np.dtype([('a', np.int8), ('b', np.int16), ('c', np.int32)], align=True))]
for i, r in enumerate(records): np.save(p('records', 'rec%d.npy' % i), r)
# test_compressed_roundtrip, and the stored form
rng = np.random.default_rng(0)
arrays = {'rand': rng.random((200, 200)), 'ints': np.arange(-50, 50, dtype='>i2').reshape(10, 10), 'F': np.asfortranarray(rng.random((7, 5)).astype('<f4'))}
np.savez_compressed(p('compressed.npz'), **arrays)
np.savez(p('stored.npz'), **arrays)
# test_read_array_header_1_0 / 2_0, test_write_version
for v in [(1, 0), (2, 0)]:
    with open(p('ones_v%d.npy' % v[0]), 'wb') as f: format.write_array(f, np.ones((3, 6), dtype=float), version=v)
# test_version_2_0: a record dtype whose header needs more than 2 bytes of length
dt = [(f"{i}" * 100, float) for i in range(500)]
with open(p('version2_records.npy'), 'wb') as f: format.write_array(f, np.ones(1000, dtype=dt), version=(2, 0))
# test_huge_header / test_huge_header_npz
arr = np.array(1, dtype="i," * 10000 + "i")
np.save(p('huge_header.npy'), arr); np.savez(p('huge_header.npz'), arr=arr)
# test_empty_npz
np.savez(p('empty.npz'))
# test_unicode_field_names
uni = np.array([(1, 3), (1, 2), (1, 3), (1, 2)], dtype=[('int', int), ('\N{CJK UNIFIED IDEOGRAPH-6574}\N{CJK UNIFIED IDEOGRAPH-5F62}', int)])
with open(p('unicode.npy'), 'wb') as f: format.write_array(f, uni, version=(3, 0))
# test_metadata_dtype (the metadata is dropped on save)
np.save(p('metadata.npy'), np.ones(10, dtype=np.dtype(int, metadata={'some': 'stuff'})))
# test_large_header and test_header_growth_axis: NumPy's header writer on dicts tensorio can write.
headers = []
for descr in ['<i8', '<f4', '|u1', '|b1', '<c16']:
    for fortran in [False, True]:
        # NumPy's test grows the descr with spaces to cross the 64-byte boundaries; with the
        # numeric descrs tensorio writes, longer shapes do it.
        growth = [(size, 2) + extra if not fortran else extra + (2, size) for size in [10**i for i in range(16)]
                  for extra in [(), (7,), (12345, 678), (123456789, 123456789, 123456789, 1234)]]
        for shape in [()] + growth + [(0,), (3,), (1, 1, 1, 1)]:
            s = BytesIO(); format.write_array_header_1_0(s, {'shape': shape, 'fortran_order': fortran, 'descr': descr})
            headers.append({'descr': descr, 'fortran': fortran, 'shape': list(shape), 'hex': s.getvalue().hex()})
try:
    format.write_array_header_1_0(BytesIO(), {'shape': (), 'fortran_order': False, 'descr': [('x' * 256 * 256, '<i8')]})
    large_v1 = 'written'
except ValueError:
    large_v1 = 'ValueError'
s = BytesIO(); format.write_array_header_2_0(s, {'shape': (), 'fortran_order': False, 'descr': [('x' * 256 * 256, '<i8')]})
with open(p('large_header_v2.npy'), 'wb') as f: f.write(s.getvalue() + np.zeros((), '<i8').tobytes())
print(json.dumps({'basic': basic, 'objects': objects, 'headers': headers, 'large_v1': large_v1}))
`;

interface Manifest {
  basic: { file: string; little: boolean; kind: string }[];
  objects: string[];
  headers: { descr: string; fortran: boolean; shape: number[]; hex: string }[];
  large_v1: string;
}

/** Nested arrays following `shape`, from a flat list in C order (what load gives for object arrays). */
function sameNested(ours: unknown, theirs: unknown, what: string): void {
  assert.deepEqual(JSON.parse(JSON.stringify(ours)), theirs, what);
}

const hexOf = (array: LoadedArray): string => Buffer.from(array.data.buffer, array.data.byteOffset, array.data.byteLength).toString('hex');

for (const { label, python } of numpyPythons()) {
  describe(`numpy/lib/tests/test_format.py, judged by ${label}`, () => {
    const dir = tempDir('npy-conformance');
    const numpyDir = path.join(dir, 'numpy');
    const oursDir = path.join(dir, 'ours');
    fs.mkdirSync(oursDir);
    const manifest = JSON.parse(runPythonWith(python(), GENERATE, [numpyDir])) as Manifest;
    const basicFiles = manifest.basic.map((b) => b.file);
    const verdicts = numpyVerdicts(python(), basicFiles);
    const p = (...parts: string[]): string => path.join(numpyDir, ...parts);

    test('test_roundtrip, NumPy to tensorio: every basic array np.save writes reads equal on every read path', async () => {
      assert.equal(manifest.basic.length, 12 * 2 * 6);
      for (const { file } of manifest.basic) assertSameArray(await tensorioOutcome(file, oursDir), verdicts[file] as NumpyVerdict, path.basename(file));
    });

    test('test_roundtrip, tensorio to NumPy: writeNpy of each array np.load reads equal, byte for byte what np.save writes', async () => {
      const ours: string[] = [];
      for (const { file } of manifest.basic) {
        const target = path.join(oursDir, path.basename(file));
        await writeNpy(target, await readNpy(file));
        ours.push(target);
      }
      const back = numpyVerdicts(python(), ours);
      for (const [index, { file, little }] of manifest.basic.entries()) {
        const theirs = verdicts[file] as NumpyVerdict;
        const mine = back[ours[index] as string] as NumpyVerdict;
        const what = path.basename(file);
        assert.ok(mine.ok, `${what}: ${mine.message}`);
        assert.equal(dtypeOfNumpy(mine.descr as string), dtypeOfNumpy(theirs.descr as string), what);
        assert.deepEqual(mine.shape, theirs.shape, what);
        assert.equal(mine.fortran, theirs.fortran, `${what}: layout`);
        assert.equal(mine.hex, theirs.hex, `${what}: values`);
        // tensorio writes little-endian: np.save's own bytes wherever NumPy's array was too.
        if (little) assert.ok(fs.readFileSync(ours[index] as string).equals(fs.readFileSync(file)), `${what}: not np.save's bytes`);
      }
    });

    test('test_memmap_roundtrip: openNpy w+ filled with each array gives np.save\'s file', async () => {
      for (const { file, little } of manifest.basic.filter((b) => b.little)) {
        assert.ok(little);
        const source = await readNpy(file);
        const target = path.join(oursDir, `memmap-${path.basename(file)}`);
        const memmap = openNpy(target, { mode: 'w+', dtype: source.dtype, shape: source.shape, order: source.order ?? 'C', fsync: false });
        memmap.data.set(source.data as never);
        memmap.close();
        assert.ok(fs.readFileSync(target).equals(fs.readFileSync(file)), path.basename(file));
      }
    });

    test('test_roundtrip of object arrays and test_pickle_disallow: refused without allowPickle, equal with it', async () => {
      const objectVerdicts = numpyVerdicts(python(), manifest.objects, true);
      const strict = numpyVerdicts(python(), manifest.objects, false);
      for (const file of manifest.objects) {
        assert.equal(strict[file]?.ok, false, 'NumPy refuses it without allow_pickle');
        await expectCode(() => load(file), 'ERR_PICKLE_DISALLOWED');
        const theirs = objectVerdicts[file] as NumpyVerdict;
        sameNested(await load(file, { allowPickle: true }), theirs.list, path.basename(file));
      }
      const npz = p('object', 'objects.npz');
      const lazy = await openNpz(npz);
      await expectCode(() => lazy.get('x'), 'ERR_PICKLE_DISALLOWED');
      lazy.close();
      sameNested((await readNpz(npz, { allowPickle: true })).x, memberVerdict(numpyVerdicts(python(), [npz], true)[npz], 'x').list, 'objects.npz');
    });

    test('record_arrays: NumPy reads them; tensorio refuses them by name (records have no NdArray form)', async () => {
      const files = fs.readdirSync(p('records')).map((name) => p('records', name));
      assert.equal(files.length, 4);
      const records = numpyVerdicts(python(), files);
      for (const file of files) {
        assert.ok(records[file]?.ok, `NumPy reads ${file}`);
        const ours = await tensorioOutcome(file, oursDir);
        assert.ok(!ours.ok && ours.code === 'ERR_UNSUPPORTED_DTYPE' && /structured/.test(ours.message), path.basename(file));
      }
    });

    test('test_roundtrip_truncated / test_file_truncated: one byte short is refused by both, ERR_TRUNCATED on every path', async () => {
      const cut: string[] = [];
      for (const { file } of manifest.basic) {
        const bytes = fs.readFileSync(file);
        const target = path.join(oursDir, `cut-${path.basename(file)}`);
        fs.writeFileSync(target, bytes.subarray(0, bytes.length - 1));
        cut.push(target);
      }
      const judged = numpyVerdicts(python(), cut);
      for (const file of cut) assertBothRefuse(await tensorioOutcome(file, oursDir), judged[file] as NumpyVerdict, 'ERR_TRUNCATED', path.basename(file));
    });

    test('test_compressed_roundtrip: np.savez_compressed and np.savez read equal; writeNpz (both forms) np.load reads equal', async () => {
      for (const name of ['compressed.npz', 'stored.npz']) {
        const file = p(name);
        const theirs = numpyVerdicts(python(), [file])[file] as NumpyVerdict;
        for (const arrays of [await readNpz(file), readNpzSync(file), await readNpz(file, { mmap: true })]) {
          for (const key of ['rand', 'ints', 'F']) {
            const member = memberVerdict(theirs, key);
            const array = arrays[key] as LoadedArray;
            assertSameArray({ ok: true, dtype: array.dtype, shape: array.shape, hex: hexOf(asCOrder(array) as LoadedArray) }, member, `${name} ${key}`);
          }
        }
        for (const compress of [false, true]) {
          const target = path.join(oursDir, `${compress}-${name}`);
          await writeNpz(target, await readNpz(file), { compress });
          const back = numpyVerdicts(python(), [target])[target] as NumpyVerdict;
          for (const key of ['rand', 'ints', 'F']) {
            const mine = memberVerdict(back, key);
            const member = memberVerdict(theirs, key);
            assert.equal(mine.hex, member.hex, `${name} ${key} compress=${compress}`);
            assert.equal(mine.fortran, member.fortran, `${name} ${key}: layout`);
          }
        }
      }
    });

    test('test_read_array_header_1_0 / 2_0 (and test_write_version): both versions NumPy writes parse, data 64-aligned', async () => {
      for (const major of [1, 2]) {
        const file = p(`ones_v${major}.npy`);
        const header = parseNpyHeader(new Uint8Array(fs.readFileSync(file)), file);
        assert.deepEqual(header.version, [major, 0]);
        assert.deepEqual(header.shape, [3, 6]);
        assert.equal(header.fortranOrder, false);
        assert.equal(header.dtype, 'float64');
        assert.equal(header.dataOffset % 64, 0);
        assertSameArray(await tensorioOutcome(file, oursDir), numpyVerdicts(python(), [file])[file] as NumpyVerdict, file);
      }
      // The writer picks the smallest version, 1.0, as NumPy's version=None does.
      assert.deepEqual(parseNpyHeader(encodeNpyHeader('float64', [3, 6], false)).version, [1, 0]);
    });

    test('test_version_2_0: a record header over 65,535 bytes needs 2.0; tensorio parses it and refuses the records by name', async () => {
      const file = p('version2_records.npy');
      assert.ok(numpyVerdicts(python(), [file], true)[file]?.ok);
      await expectCode(() => readNpy(file), 'ERR_HEADER_TOO_LARGE');
      await expectCode(() => readNpy(file, { maxHeaderSize: 200000 }), 'ERR_UNSUPPORTED_DTYPE', /structured/);
      // The same size of header on a numeric array: read by both, with the limit raised.
      const padded = path.join(oursDir, 'v2-numeric.npy');
      const values = new Float64Array([1, 2, 3, 4, 5, 6]);
      fs.writeFileSync(padded, rawNpy(`{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }${' '.repeat(70000)}`, new Uint8Array(values.buffer), 2));
      assert.equal(parseNpyHeader(new Uint8Array(fs.readFileSync(padded)), padded, { maxHeaderSize: 200000 }).version[0], 2);
      const theirs = numpyVerdicts(python(), [padded], true)[padded] as NumpyVerdict;
      assert.equal(hexOf(readNpySync(padded, { maxHeaderSize: 200000 })), theirs.hex);
      assert.equal(hexOf((await load(padded, { allowPickle: true })) as LoadedArray), theirs.hex);
    });

    test('test_huge_header / test_huge_header_npz: refused by default and at 20,000; allowPickle and 180,000 lift the limit', async () => {
      const file = p('huge_header.npy');
      const strict = numpyVerdicts(python(), [file])[file] as NumpyVerdict;
      assert.ok(!strict.ok && /large/.test(strict.message ?? ''));
      assert.ok(numpyVerdicts(python(), [file], true)[file]?.ok);
      for (const mmap of [false, true]) {
        await expectCode(() => load(file, { mmap }), 'ERR_HEADER_TOO_LARGE');
        await expectCode(() => load(file, { mmap, maxHeaderSize: 20000 }), 'ERR_HEADER_TOO_LARGE');
        // Past the limit: a record of 10,001 int32 fields, which tensorio refuses by name.
        await expectCode(() => load(file, { mmap, allowPickle: true }), 'ERR_UNSUPPORTED_DTYPE');
        await expectCode(() => load(file, { mmap, maxHeaderSize: 180000 }), 'ERR_UNSUPPORTED_DTYPE');
      }
      const npz = p('huge_header.npz');
      const lazy = await openNpz(npz); // only getting the array reads it, as in NumPy
      await expectCode(() => lazy.get('arr'), 'ERR_HEADER_TOO_LARGE');
      lazy.close();
      const raised = await openNpz(npz, { maxHeaderSize: 20000 });
      await expectCode(() => raised.get('arr'), 'ERR_HEADER_TOO_LARGE');
      raised.close();
      for (const options of [{ allowPickle: true }, { maxHeaderSize: 180000 }]) {
        const archive = await openNpz(npz, options);
        await expectCode(() => archive.get('arr'), 'ERR_UNSUPPORTED_DTYPE');
        archive.close();
      }
    });

    test('test_read_magic_bad_magic / test_read_version_1_0_bad_magic / test_bad_magic_args: refused by both, with the typed error', async () => {
      const cases: [string, string][] = [
        ['93 4e 55 4d 50 59 01 01', 'ERR_UNSUPPORTED_VERSION'],
        ['93 4e 55 4d 50 59 00 00', 'ERR_UNSUPPORTED_VERSION'],
        ['93 4e 55 4d 50 59 00 01', 'ERR_UNSUPPORTED_VERSION'],
        ['93 4e 55 4d 50 59 02 00', 'ERR_TRUNCATED'], // a valid 2.0 magic, and nothing after it
        ['93 4e 55 4d 50 59 02 02', 'ERR_UNSUPPORTED_VERSION'],
        ['93 4e 55 4d 50 59 ff ff', 'ERR_UNSUPPORTED_VERSION'],
        // test_bad_magic_args: format.magic refuses versions outside 0-255; the reader, every version but 1.0-3.0.
        ['93 4e 55 4d 50 59 04 00', 'ERR_UNSUPPORTED_VERSION'],
        ['92 4e 55 4d 50 59 01 00', 'ERR_BAD_MAGIC'],
        ['00 4e 55 4d 50 59 01 00', 'ERR_BAD_MAGIC'],
        ['93 6e 75 6d 70 79 01 00', 'ERR_BAD_MAGIC'],
        ['93 4d 41 54 4c 42 01 00', 'ERR_BAD_MAGIC'],
        ['93 4e 55 4d 50 59 01', 'ERR_TRUNCATED'],
        ['93 4e 55 4d 50 59', 'ERR_TRUNCATED'],
        ['', 'ERR_TRUNCATED'],
      ];
      const files = cases.map(([hex], index) => {
        const file = path.join(oursDir, `magic-${index}.npy`);
        fs.writeFileSync(file, Buffer.from(hex.replace(/ /g, ''), 'hex'));
        return file;
      });
      const judged = numpyVerdicts(python(), files);
      for (const [index, [hex, code]] of cases.entries()) {
        const file = files[index] as string;
        assertBothRefuse(await tensorioOutcome(file, oursDir), judged[file] as NumpyVerdict, code, `magic '${hex}'`);
      }
    });

    test('test_bad_header: short lengths, a header shorter than its length, missing and extra keys', async () => {
      const magic = '\x93NUMPY\x01\x00';
      const cases: [string, Buffer, string][] = [
        ['no length', Buffer.from(magic, 'latin1'), 'ERR_TRUNCATED'],
        ['one byte of length', Buffer.from(`${magic}1`, 'latin1'), 'ERR_TRUNCATED'],
        ['header shorter than its length', Buffer.from(`${magic}\x01\x00`, 'latin1'), 'ERR_TRUNCATED'],
        ['no fortran_order', Buffer.from(`${magic}6\x00{'descr': 'x', 'shape': (1, 2), }                    \n`, 'latin1'), 'ERR_BAD_HEADER'],
        ['an extra key', Buffer.from(rawNpy("{'descr': 'x', 'extrakey': -1, 'fortran_order': False, 'shape': (1, 2), }")), 'ERR_BAD_HEADER'],
      ];
      const files = cases.map(([, bytes], index) => {
        const file = path.join(oursDir, `bad-header-${index}.npy`);
        fs.writeFileSync(file, bytes);
        return file;
      });
      const judged = numpyVerdicts(python(), files);
      for (const [index, [what, , code]] of cases.entries()) {
        const file = files[index] as string;
        assertBothRefuse(await tensorioOutcome(file, oursDir), judged[file] as NumpyVerdict, code, what);
      }
    });

    test('test_large_header and test_header_growth_axis: encodeNpyHeader writes what write_array_header_1_0 writes, byte for byte', () => {
      assert.equal(manifest.headers.length, 5 * 2 * (1 + 16 * 4 + 3));
      // The growth axis's spare spaces move some headers across a 64-byte boundary (else this proves little).
      assert.ok(new Set(manifest.headers.map((h) => h.hex.length)).size >= 2);
      for (const { descr, fortran, shape, hex } of manifest.headers) {
        const dtype = dtypeOfNumpy(descr);
        assert.ok(dtype);
        assert.equal(Buffer.from(encodeNpyHeader(dtype, shape, fortran)).toString('hex'), hex, `${descr} ${JSON.stringify(shape)} fortran=${fortran}`);
      }
      // A header over 65,535 bytes cannot be 1.0 (NumPy raises); it is 2.0, and tensorio reads it.
      assert.equal(manifest.large_v1, 'ValueError');
    });

    test('test_large_header (2.0 side): the 65 KB record header NumPy writes as 2.0 parses, and the record is refused by name', async () => {
      await expectCode(() => readNpy(p('large_header_v2.npy'), { maxHeaderSize: 100000 }), 'ERR_UNSUPPORTED_DTYPE', /structured/);
      await expectCode(() => readNpy(p('large_header_v2.npy')), 'ERR_HEADER_TOO_LARGE');
    });

    test('test_empty_npz: np.savez of nothing reads as no members; writeNpz of nothing, np.load opens', async () => {
      assert.deepEqual(Object.keys(await readNpz(p('empty.npz'))), []);
      assert.deepEqual(Object.keys(readNpzSync(p('empty.npz'))), []);
      const lazy = await openNpz(p('empty.npz'));
      assert.deepEqual(lazy.keys(), []);
      lazy.close();
      const ours = path.join(oursDir, 'empty.npz');
      await writeNpz(ours, {});
      const back = numpyVerdicts(python(), [ours])[ours] as NumpyVerdict;
      assert.deepEqual(back.members, {});
    });

    test('test_unicode_field_names: the UTF-8 (3.0) header parses, the record is refused naming its CJK field', async () => {
      const file = p('unicode.npy');
      assert.ok(numpyVerdicts(python(), [file])[file]?.ok);
      const error = await expectCode(() => readNpy(file), 'ERR_UNSUPPORTED_DTYPE', /structured/);
      assert.match(error.message, /\u6574\u5f62/);
      // And a version 3.0 header on a numeric array reads (by both).
      const v3 = path.join(oursDir, 'v3.npy');
      fs.writeFileSync(v3, rawNpy("{'descr': '<i2', 'fortran_order': False, 'shape': (3,), }", new Uint8Array([1, 0, 2, 0, 3, 0]), 3));
      assertSameArray(await tensorioOutcome(v3, oursDir), numpyVerdicts(python(), [v3])[v3] as NumpyVerdict, 'v3 header');
    });

    test('test_metadata_dtype: a dtype with metadata is saved without it and reads as the plain dtype', async () => {
      const file = p('metadata.npy');
      assertSameArray(await tensorioOutcome(file, oursDir), numpyVerdicts(python(), [file])[file] as NumpyVerdict, 'metadata');
    });
  });
}
