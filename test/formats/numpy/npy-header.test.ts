/**
 * `.npy` header rules, judged by real NumPy (Debian's 1.24 and the oracle's 2.1): every header
 * below is loaded by np.load and by every tensorio read path (npy-verdict.ts), and tensorio
 * must read what NumPy reads (same dtype, shape, bytes) and refuse what NumPy refuses.
 *
 * - shapes must be tuples of Python ints: `(6.0,)`, `(2j,)`, `[2]`, `(True, 2)` are refused;
 * - keys must be str: `{b'descr': ...}` is refused, and so is a bytes descr;
 * - Python 2's `L` suffix is stripped in 1.0 and 2.0 headers only (NumPy's `_filter_header`);
 * - NumPy's one-character type codes (`'f'`, `'d'`, `'<h'`, `'>Q'`, ...) read as np.dtype reads them.
 *
 * Internal on purpose: bytesOf (src/ndarray.ts) compares the bytes tensorio read with NumPy's.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';

import { TensorioError, decodeNpz, load, openNpz, readNpy, readNpySync, readNpz, readNpzSync, type LoadedArray } from '../../../src/index.js';
import { bytesOf } from '../../../src/ndarray.js';
import { expectCode } from '../../expect-code.js';
import { numpyPythons, pythonWithNumpy, runPythonWith, tempDir } from '../../helpers.js';
import { assertBothRefuse, assertSameArray, numpyVerdicts, rawNpy, tensorioOutcome } from './npy-verdict.js';

const dir = tempDir('npy-header');

function f64Data(count: number): Uint8Array {
  const out = new Uint8Array(count * 8);
  const view = new DataView(out.buffer);
  for (let i = 0; i < count; i++) view.setFloat64(i * 8, i * 1.5 - 2.25, true);
  return out;
}

interface HeaderCase {
  label: string;
  /** The header dict's text; `%S` stands for the shape. */
  dict: string;
  /** tensorio's error code where NumPy refuses the header. */
  refused?: string;
  /** Set where tensorio refuses, on purpose, what NumPy reads; says why. */
  deliberate?: { code: string; why: string };
}

const F8 = (shape: string): string => `{'descr': '<f8', 'fortran_order': False, 'shape': ${shape}, }`;

const CASES: HeaderCase[] = [
  // NumPy's check: isinstance(d['shape'], tuple) and every item isinstance(x, int).
  { label: 'float shape (6.0,)', dict: F8('(6.0,)'), refused: 'ERR_BAD_HEADER' },
  { label: 'float in a shape (2, 3.0)', dict: F8('(2, 3.0)'), refused: 'ERR_BAD_HEADER' },
  { label: 'exponent shape (1e1,)', dict: F8('(1e1,)'), refused: 'ERR_BAD_HEADER' },
  { label: 'imaginary shape (2j,)', dict: F8('(2j,)'), refused: 'ERR_BAD_HEADER' },
  { label: 'list shape [2]', dict: F8('[2]'), refused: 'ERR_BAD_HEADER' },
  { label: 'bare int shape 2', dict: F8('2'), refused: 'ERR_BAD_HEADER' },
  // isinstance(True, int) holds in Python, but np.empty((True, 2)) then raises TypeError.
  { label: 'bool in a shape (True, 2)', dict: F8('(True, 2)'), refused: 'ERR_BAD_HEADER' },
  {
    label: 'negative shape (-1,)',
    dict: F8('(-1,)'),
    // np.load of a real file passes count = prod(shape) = -1 to np.fromfile, which then reads
    // the rest of the file (shape (20,) here); from a stream (an .npz member, BytesIO) NumPy
    // raises "negative dimensions are not allowed". A shape is never negative: refused.
    deliberate: { code: 'ERR_BAD_HEADER', why: 'a negative dimension is malformed; NumPy reads to the end of the file by accident' },
  },
  { label: 'leading zero (02,)', dict: F8('(02,)'), refused: 'ERR_BAD_HEADER' },
  { label: "lower-case l suffix (2l,)", dict: F8('(2l,)'), refused: 'ERR_BAD_HEADER' },
  // Python 2 longs: stripped in 1.0 and 2.0 headers, a syntax error in 3.0.
  { label: 'L suffix (2L,)', dict: F8('(2L,)'), refused: 'ERR_BAD_HEADER' },
  { label: 'L suffixes (2L, 1L)', dict: F8('(2L, 1L)'), refused: 'ERR_BAD_HEADER' },
  { label: 'spaced L suffix (2 L,)', dict: F8('(2 L,)'), refused: 'ERR_BAD_HEADER' },
  // Keys and values of the wrong type.
  { label: 'bytes keys', dict: "{b'descr': '<f8', b'fortran_order': False, b'shape': (2,), }", refused: 'ERR_BAD_HEADER' },
  { label: 'one bytes key', dict: "{'descr': '<f8', b'fortran_order': False, 'shape': (2,), }", refused: 'ERR_BAD_HEADER' },
  { label: 'bytes key beside the str keys', dict: "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), b'shape': (2,)}", refused: 'ERR_BAD_HEADER' },
  { label: 'bytes descr', dict: "{'descr': b'<f8', 'fortran_order': False, 'shape': (2,), }", refused: 'ERR_BAD_HEADER' },
  { label: 'extra key', dict: "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), 'extra': 1}", refused: 'ERR_BAD_HEADER' },
  { label: 'missing key', dict: "{'descr': '<f8', 'shape': (2,), }", refused: 'ERR_BAD_HEADER' },
  { label: 'fortran_order 0', dict: "{'descr': '<f8', 'fortran_order': 0, 'shape': (2,), }", refused: 'ERR_BAD_HEADER' },
  { label: 'fortran_order None', dict: "{'descr': '<f8', 'fortran_order': None, 'shape': (2,), }", refused: 'ERR_BAD_HEADER' },
  { label: 'not a dict', dict: "[('descr', '<f8')]", refused: 'ERR_BAD_HEADER' },
  // What ast.literal_eval accepts and NumPy then reads.
  { label: 'hex shape (0x2,)', dict: F8('(0x2,)') },
  { label: 'underscore shape (1_0,)', dict: F8('(1_0,)') },
  { label: 'repeated key: the last wins', dict: "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), 'shape': (1,)}" },
  { label: "u'' descr", dict: "{'descr': u'<f8', 'fortran_order': False, 'shape': (2,), }" },
  { label: 'descr without byte order', dict: "{'descr': 'f8', 'fortran_order': False, 'shape': (2,), }" },
  { label: 'double-quoted, reordered keys', dict: '{"shape": (2, 3), "fortran_order": True, "descr": "<f8"}' },
  { label: 'concatenated strings', dict: "{'descr': '<' 'f8', 'fortran_order': False, 'shape': (3,), }" },
  { label: 'no trailing comma', dict: "{'descr': '<f8', 'fortran_order': False, 'shape': (4,)}" },
  { label: 'comments', dict: "{'descr': '<f8', # the dtype\n 'fortran_order': False, 'shape': (4,)} # done" },
  { label: 'a # inside a string is no comment', dict: "{'descr': '<f8#', 'fortran_order': False, 'shape': (4,)}", refused: 'ERR_UNSUPPORTED_DTYPE' },
  { label: 'backslash continuation', dict: "{'descr': '<f8', 'fortran_order': False, \\\n'shape': (4,)}" },
  { label: 'backslash not before a newline', dict: "{'descr': '<f8', 'fortran_order': False, \\ 'shape': (4,)}", refused: 'ERR_BAD_HEADER' },
  {
    label: 'structured descr',
    dict: "{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (2,), }",
    deliberate: { code: 'ERR_UNSUPPORTED_DTYPE', why: 'records have no NdArray form; refused naming the dtype, never misread' },
  },
];

/** The files of the header cases, in every header version. */
function writeCases(): { file: string; label: string; version: number; c: HeaderCase }[] {
  const out: { file: string; label: string; version: number; c: HeaderCase }[] = [];
  CASES.forEach((c, index) => {
    for (const version of [1, 2, 3]) {
      const file = path.join(dir, `case${index}-v${version}.npy`);
      fs.writeFileSync(file, rawNpy(c.dict, f64Data(20), version));
      out.push({ file, label: `${c.label} (v${version}.0)`, version, c });
    }
  });
  return out;
}

const files = writeCases();

for (const { label, python } of numpyPythons()) {
  describe(`header rules, judged by ${label}`, () => {
    test('every header: tensorio reads what NumPy reads and refuses what it refuses', async () => {
      const verdicts = numpyVerdicts(python(), files.map((f) => f.file));
      for (const { file, label: what, c } of files) {
        const numpy = verdicts[file];
        assert.ok(numpy, what);
        const ours = await tensorioOutcome(file, dir);
        if (c.deliberate) {
          assert.ok(numpy.ok, `${what}: NumPy reads it`);
          assert.ok(!ours.ok && ours.code === c.deliberate.code, `${what}: expected ${c.deliberate.code} (${c.deliberate.why})`);
        } else if (numpy.ok) {
          assertSameArray(ours, numpy, what);
        } else {
          assertBothRefuse(ours, numpy, c.refused ?? 'ERR_BAD_HEADER', what);
        }
      }
    });

    test('the L suffix reads in 1.0 and 2.0 headers and is refused in 3.0, as NumPy does', async () => {
      // Guards the matrix above against a NumPy that changed its mind: the verdicts themselves.
      const lCases = files.filter((f) => f.c.label.startsWith('L suffix') || f.c.label.startsWith('spaced L'));
      assert.equal(lCases.length, 9);
      const verdicts = numpyVerdicts(python(), lCases.map((f) => f.file));
      for (const { file, version, label: what } of lCases) {
        const ours = await tensorioOutcome(file, dir);
        assert.equal(verdicts[file]?.ok, version < 3, `NumPy on ${what}`);
        assert.equal(ours.ok, version < 3, `tensorio on ${what}`);
        if (!ours.ok) assert.equal(ours.code, 'ERR_BAD_HEADER');
      }
    });
  });
}

/**
 * Writes, with NumPy's own header writer (np.lib.format.write_array_header_1_0, which writes any
 * dict), files whose descr is a one-character code, the data being an array of the dtype NumPy
 * gives that code. Prints what was written: descr, the dtype string and the little-endian bytes.
 */
const CHAR_CODES_SCRIPT = String.raw`
import json, sys, os
import numpy as np
import numpy.lib.format as fmt
out = sys.argv[1]
# 'n'/'N' (intp, NumPy 2 only): the data is written as the equal 'q'/'Q'.
same = {'n': 'q', 'N': 'Q'}
entries = []
for code in '?bBhHiIlLqQpPnNefdFDgG':
    for order in ['', '<', '>', '=', '|']:
        dt = np.dtype(same.get(code, code)).newbyteorder(order or '=') if order != '|' else np.dtype(same.get(code, code))
        n = 6
        if code == '?':
            a = (np.arange(n) % 3 == 0)
        elif dt.kind in 'iu':
            # Bytes that differ everywhere: any bytes are a valid integer.
            a = np.frombuffer(bytes((i * 37 + 11) % 256 for i in range(n * dt.itemsize)), dtype=dt).copy()
        elif dt.kind == 'c':
            a = (np.arange(n) * 1.5 - 2 + 1j * np.arange(n)).astype(dt)
        else:
            a = (np.arange(n) * 1.5 - 2.25).astype(dt)
        a = a.astype(dt).reshape(2, 3)
        name = 'char-%s-%s.npy' % ('upper-' + code if code.isupper() else code, {'': 'none', '<': 'lt', '>': 'gt', '=': 'eq', '|': 'pipe'}[order])
        with open(os.path.join(out, name), 'wb') as f:
            fmt.write_array_header_1_0(f, {'descr': order + code, 'fortran_order': False, 'shape': (2, 3)})
            f.write(a.tobytes())
        le = a.astype(a.dtype.newbyteorder('<'))
        entries.append({'file': os.path.join(out, name), 'descr': order + code, 'dtype': le.dtype.str, 'hex': le.tobytes().hex()})
print(json.dumps(entries))
`;

interface CharEntry {
  file: string;
  descr: string;
  dtype: string;
  hex: string;
}

for (const { label, python } of numpyPythons()) {
  test(`one-character type codes read as ${label} reads them (header written by its own write_array_header_1_0)`, async () => {
    const out = path.join(dir, label.replace(/\W+/g, '-'));
    fs.mkdirSync(out);
    const entries = JSON.parse(runPythonWith(python(), CHAR_CODES_SCRIPT, [out])) as CharEntry[];
    assert.equal(entries.length, 22 * 5);
    const verdicts = numpyVerdicts(python(), entries.map((e) => e.file));
    const numpy2 = label.includes('NumPy 2');
    for (const entry of entries) {
      const what = `descr '${entry.descr}'`;
      const numpy = verdicts[entry.file];
      assert.ok(numpy);
      const ours = await tensorioOutcome(entry.file, out);
      const code = entry.descr.replace(/^[<>=|]/, '');
      if (code === 'g' || code === 'G') {
        // Long double (80-bit extended in 16 bytes on x86-64): JavaScript has no such type,
        // and converting it to float64 would change values, so it is refused by name.
        assert.ok(numpy.ok, `${what}: NumPy reads long double`);
        assert.ok(!ours.ok && ours.code === 'ERR_UNSUPPORTED_DTYPE', `${what}: tensorio must refuse long double`);
        continue;
      }
      if (!numpy2 && (code === 'n' || code === 'N')) {
        // 'n'/'N' are NumPy 2's intp codes: 1.24 refuses them, tensorio reads them as NumPy 2
        // does (int64/uint64), the values being what was written.
        assert.ok(!numpy.ok, `${what}: NumPy 1.24 does not know 'n'/'N'`);
        assert.ok(ours.ok, `${what}: ${ours.ok ? '' : ours.message}`);
        assert.equal(ours.dtype, code === 'n' ? 'int64' : 'uint64');
        assert.equal(ours.hex, entry.hex);
        continue;
      }
      assertSameArray(ours, numpy, what);
      // And NumPy's reading is the data written, so the comparison means something.
      assert.equal(numpy.descr?.slice(1), entry.dtype.slice(1), what);
      assert.equal(numpy.ok && numpy.hex, entry.hex, what);
    }
  });
}

test('the one-character codes are exactly the table column, nothing else slips through', async () => {
  // 'c' (S1), 'S', 'U', 'V', 'M', 'm', 'a' are string, raw and datetime codes: refused by name
  // here (strings are issue 14's), never read as numbers.
  for (const code of ['c', 'S', 'U', 'V', 'M', 'm', 'a', 'x', 'Z', 'y']) {
    const file = path.join(dir, `other-${code.charCodeAt(0)}.npy`);
    fs.writeFileSync(file, rawNpy(`{'descr': '${code}', 'fortran_order': False, 'shape': (2,), }`, new Uint8Array(64)));
    const ours = await tensorioOutcome(file, dir);
    assert.ok(!ours.ok, `'${code}' must be refused`);
    assert.ok(ours.code === 'ERR_UNSUPPORTED_DTYPE' || ours.code === 'ERR_PICKLE_DISALLOWED', `'${code}': ${ours.code}`);
  }
});

// ---------------------------------------------------------------------------------------
// allowPickle lifts the header-size limit (NumPy's read_array: "max_header_size ... is ignored
// when allow_pickle is passed"), the header then bounded by the file's real size.

describe('allowPickle lifts the 10,000-byte header limit, as in NumPy', () => {
  const values = f64Data(12);
  // A header NumPy reads only with allow_pickle (or a raised max_header_size): 20,000 spaces of padding.
  const padded = path.join(dir, 'padded-header.npy');
  fs.writeFileSync(padded, rawNpy(`{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }${' '.repeat(20000)}`, values));

  for (const { label, python } of numpyPythons()) {
    test(`a 20 KB header: refused without allowPickle, read with it, as ${label} does`, async () => {
      const strict = numpyVerdicts(python(), [padded], false)[padded];
      const trusting = numpyVerdicts(python(), [padded], true)[padded];
      assert.ok(strict && !strict.ok && /max_header_size/.test(strict.message ?? ""), JSON.stringify(strict));
      assert.ok(trusting?.ok, JSON.stringify(trusting));
      await expectCode(() => load(padded), 'ERR_HEADER_TOO_LARGE', /allowPickle/);
      await expectCode(() => readNpy(padded), 'ERR_HEADER_TOO_LARGE');
      for (const mmap of [false, true]) {
        const array = (await load(padded, { allowPickle: true, mmap })) as LoadedArray;
        assert.deepEqual(array.shape, trusting.shape);
        assert.equal(Buffer.from(bytesOf(array.data)).toString('hex'), trusting.hex);
      }
      // maxHeaderSize still raises the limit for the plain readers.
      assert.equal(Buffer.from(bytesOf(readNpySync(padded, { maxHeaderSize: 30000 }).data)).toString('hex'), trusting.hex);
    });

    test(`a real NumPy file with a 30 KB header (600-field record, written by ${label}): the limit is lifted, the record dtype then refused by name`, async () => {
      const file = path.join(dir, `record-${label.replace(/\W+/g, '-')}.npy`);
      runPythonWith(python(), "import numpy as np, sys; np.save(sys.argv[1], np.zeros(3, dtype=[('field%d' % i, '<f8') for i in range(600)]))", [file]);
      assert.ok(fs.statSync(file).size > 10000 + 3 * 600 * 8);
      const strict = numpyVerdicts(python(), [file], false)[file];
      assert.ok(strict && !strict.ok && /max_header_size/.test(strict.message ?? ""), 'NumPy needs allow_pickle for it');
      assert.ok(numpyVerdicts(python(), [file], true)[file]?.ok);
      await expectCode(() => load(file), 'ERR_HEADER_TOO_LARGE');
      await expectCode(() => load(file, { allowPickle: true }), 'ERR_UNSUPPORTED_DTYPE', /structured/);
    });
  }

  for (const { label, python } of numpyPythons()) {
    test(`a 3.0 header is limited in characters, as ${label} limits it: 17 KB of UTF-8 in 9,300 characters pass`, async () => {
      const file = path.join(dir, `utf8-header-${label.replace(/\W+/g, '-')}.npy`);
      // 400 fields named by ten CJK characters each (3 bytes apiece in UTF-8).
      runPythonWith(python(), "import numpy as np, sys\nfrom numpy.lib import format\nwith open(sys.argv[1], 'wb') as f: format.write_array(f, np.zeros(2, dtype=[(chr(0x4e00 + i) * 10, '<i1') for i in range(400)]), version=(3, 0))", [file]);
      const header = fs.readFileSync(file).readUInt32LE(8);
      assert.ok(header > 10000, `${header} bytes`);
      assert.ok(numpyVerdicts(python(), [file])[file]?.ok, 'NumPy reads it without allow_pickle');
      // Past the limit check: the record dtype, refused by name.
      await expectCode(() => readNpy(file), 'ERR_UNSUPPORTED_DTYPE', /structured/);
      await expectCode(() => readNpy(file, { maxHeaderSize: 5000 }), 'ERR_HEADER_TOO_LARGE', /header is 93[0-9]{2} characters/);
    });
  }

  test('.npz members: allowPickle lifts the limit for readNpz, readNpzSync, decodeNpz and openNpz (get and info), stored and deflated', async () => {
    const archive = path.join(dir, 'padded.npz');
    runPythonWith(
      pythonWithNumpy(),
      "import zipfile, sys\nwith zipfile.ZipFile(sys.argv[1], 'w') as z:\n  data = open(sys.argv[2], 'rb').read()\n  z.writestr('stored.npy', data, zipfile.ZIP_STORED)\n  z.writestr('deflated.npy', data, zipfile.ZIP_DEFLATED)",
      [archive, padded],
    );
    const expected = Buffer.from(values).toString('hex');
    await expectCode(() => readNpz(archive), 'ERR_HEADER_TOO_LARGE');
    await expectCode(() => readNpzSync(archive), 'ERR_HEADER_TOO_LARGE');
    const readers: [string, () => Promise<Record<string, unknown>> | Record<string, unknown>][] = [
      ['readNpz', () => readNpz(archive, { allowPickle: true })],
      ['readNpz mmap', () => readNpz(archive, { allowPickle: true, mmap: true })],
      ['readNpzSync', () => readNpzSync(archive, { allowPickle: true })],
      ['readNpzSync mmap', () => readNpzSync(archive, { allowPickle: true, mmap: true })],
      ['decodeNpz', () => decodeNpz(new Uint8Array(fs.readFileSync(archive)), { allowPickle: true })],
      ['load', () => load(archive, { allowPickle: true }) as Promise<Record<string, unknown>>],
    ];
    for (const [what, read] of readers) {
      const arrays = (await read()) as Record<string, LoadedArray>;
      for (const key of ['stored', 'deflated']) {
        assert.deepEqual(arrays[key]?.shape, [3, 4], `${what} ${key}`);
        assert.equal(Buffer.from(bytesOf((arrays[key] as LoadedArray).data)).toString('hex'), expected, `${what} ${key}`);
      }
    }
    for (const mmap of [false, true]) {
      const lazy = await openNpz(archive, { allowPickle: true, mmap });
      try {
        for (const key of ['stored', 'deflated']) {
          assert.deepEqual((await lazy.info(key)).shape, [3, 4], `info ${key}`);
          assert.equal(Buffer.from(bytesOf(((await lazy.get(key)) as LoadedArray).data)).toString('hex'), expected);
        }
      } finally {
        lazy.close();
      }
      const strict = await openNpz(archive, { mmap });
      try {
        await expectCode(() => strict.get('deflated'), 'ERR_HEADER_TOO_LARGE');
        await expectCode(() => strict.info('stored'), 'ERR_HEADER_TOO_LARGE');
      } finally {
        strict.close();
      }
    }
  });

  test("a header length that claims more than the file holds is ERR_TRUNCATED with allowPickle, before anything is allocated", async () => {
    // A version 2.0 preamble claiming a 4 GiB header in a 64-byte file.
    const bytes = rawNpy(F8('(2,)'), f64Data(2), 2);
    new DataView(bytes.buffer).setUint32(8, 0xfffffff0, true);
    const file = path.join(dir, 'claims-4GiB.npy');
    fs.writeFileSync(file, bytes);
    const before = process.memoryUsage().rss;
    await expectCode(() => load(file, { allowPickle: true }), 'ERR_TRUNCATED');
    await expectCode(() => readNpy(file, { maxHeaderSize: Infinity }), 'ERR_TRUNCATED');
    assert.throws(() => readNpySync(file, { maxHeaderSize: Infinity }), (e: Error) => e instanceof TensorioError && e.code === 'ERR_TRUNCATED');
    assert.ok(process.memoryUsage().rss - before < 64 << 20, 'no allocation from the claim');
    // The same claim inside an .npz member, stored and deflated.
    const archive = path.join(dir, 'claims-4GiB.npz');
    runPythonWith(
      pythonWithNumpy(),
      "import zipfile, sys\nwith zipfile.ZipFile(sys.argv[1], 'w') as z:\n  data = open(sys.argv[2], 'rb').read()\n  z.writestr('s.npy', data, zipfile.ZIP_STORED)\n  z.writestr('d.npy', data, zipfile.ZIP_DEFLATED)",
      [archive, file],
    );
    for (const key of ['s', 'd']) {
      const lazy = await openNpz(archive, { allowPickle: true });
      await expectCode(() => lazy.get(key), 'ERR_TRUNCATED');
      await expectCode(() => lazy.info(key), 'ERR_TRUNCATED');
      lazy.close();
    }
    assert.throws(() => readNpzSync(archive, { allowPickle: true }), (e: Error) => e instanceof TensorioError && e.code === 'ERR_TRUNCATED');
    assert.ok(process.memoryUsage().rss - before < 64 << 20, 'no allocation from the claim');
  });
});
