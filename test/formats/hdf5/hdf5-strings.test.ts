// HDF5 string datasets (H5File.readStrings), judged by h5py: Debian's 3.7 and the oracle's 3.16
// write the files and say what each element's bytes are; tensorio must read the same on every
// path (its own structure reader, h5wasm's, the synchronous and in-memory readers).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

import { H5Writer, h5wasmReady, openH5, openH5Bytes, openH5Sync, TensorioError, writeH5, type H5File, type H5StringArray } from '../../../src/index.js';
import { numpyPythons, runPythonWith, tempDir } from '../../helpers.js';
import { pointDataPastEnd } from './h5-dump.js';

const dir = tempDir('tensorio-h5-strings');

/** Writes the string datasets (libver 'latest' when asked, which tensorio's own reader does not walk) and prints what h5py reads. */
const WRITE_AND_DUMP = `
import sys, json, h5py, numpy as np
fn, libver = sys.argv[1], sys.argv[2]
kw = {'libver': 'latest'} if libver == 'latest' else {}
with h5py.File(fn, 'w', **kw) as f:
    f['nullpad'] = np.array([[b'abc', b'd\\x00e'], [b'', b'\\xff\\xfe ']], dtype='S3')
    for pad, name in [(h5py.h5t.STR_NULLTERM, 'nullterm'), (h5py.h5t.STR_SPACEPAD, 'spacepad')]:
        t = h5py.h5t.C_S1.copy(); t.set_size(4); t.set_strpad(pad)
        d = h5py.h5d.create(f.id, name.encode(), t, h5py.h5s.create_simple((4,)))
        d.write(h5py.h5s.ALL, h5py.h5s.ALL, np.array([b'ab  ', b'a\\x00bc', b'abcd', b'x\\x00 '], dtype='S4'), mtype=t)
    f.create_dataset('vlen_utf8', data=['h\\u00e9llo', '', 'w\\u00f6rld', '\\U0001f600'], dtype=h5py.string_dtype('utf-8'))
    f.create_dataset('vlen_ascii', data=[b'ab', b'\\xff'], dtype=h5py.string_dtype('ascii'))
    f.create_dataset('vlen_2d', data=np.array([['a', 'bb', 'ccc'], ['', 'e', 'ff']], dtype=object), dtype=h5py.string_dtype())
    f.create_dataset('scalar', data='one', dtype=h5py.string_dtype())
    f.create_dataset('fixed_scalar', data=np.bytes_(b'xyz'))
    f.create_dataset('fixed_utf8', data=np.array(['\\u00e9'.encode(), b'x'], dtype='S2').astype(h5py.string_dtype('utf-8', 2)))
    f.create_dataset('chunked', data=np.array([b'x%d' % i for i in range(100)], dtype='S4'), chunks=(10,), compression='gzip')
    f.create_dataset('vchunked', data=['v%d' % i for i in range(50)], dtype=h5py.string_dtype(), chunks=(7,))
    f.create_dataset('unwritten', shape=(3,), dtype='S5')
    f['numbers'] = np.arange(3)
out = {}
with h5py.File(fn, 'r') as f:
    for k in f:
        info = h5py.check_string_dtype(f[k].dtype)
        if info is None: continue
        v = np.asarray(f[k][()], dtype=object)
        out[k] = {'shape': list(v.shape), 'bytes': [bytes(b).hex() for b in v.reshape(-1)], 'encoding': info.encoding, 'width': info.length}
print(json.dumps(out))
`;

interface Expected {
  shape: number[];
  bytes: string[];
  encoding: 'ascii' | 'utf-8';
  width: number | null;
}

function assertLikeH5py(actual: H5StringArray, expected: Expected, name: string): void {
  assert.equal(actual.kind, 'string-array');
  assert.deepEqual(actual.shape, expected.shape, name);
  assert.deepEqual(
    actual.bytes.map((b) => Buffer.from(b).toString('hex')),
    expected.bytes,
    name,
  );
  assert.deepEqual(
    actual.items,
    expected.bytes.map((h) => new TextDecoder().decode(Buffer.from(h, 'hex'))),
    name,
  );
  assert.equal(actual.encoding, expected.encoding, name);
  assert.equal(actual.width, expected.width, name);
}

function assertEvery(file: H5File, expected: Record<string, Expected>): void {
  try {
    for (const [name, want] of Object.entries(expected)) assertLikeH5py(file.readStrings(name), want, name);
  } finally {
    file.close();
  }
}

for (const { label, python } of numpyPythons()) {
  for (const libver of ['default', 'latest']) {
    test(`string datasets h5py writes (${label}, libver ${libver}) read as h5py reads them, on every reader`, async () => {
      const file = path.join(dir, `${label.replace(/\W+/g, '-')}-${libver}.h5`);
      const expected = JSON.parse(runPythonWith(python(), WRITE_AND_DUMP, [file, libver])) as Record<string, Expected>;
      assert.equal(Object.keys(expected).length, 12);
      // The bytes h5py returns that the decoding must keep exact.
      assert.deepEqual(expected.nullterm?.bytes, ['61622020', '61', '61626364', '78']);
      assert.deepEqual(expected.spacepad?.bytes, ['6162', '61006263', '61626364', '780020']);
      assert.deepEqual(expected.nullpad?.bytes, ['616263', '640065', '', 'fffe20']);

      const own = await openH5(file);
      assert.equal(own.usesH5wasm, libver === 'latest', 'tensorio walks the default layout itself and hands the latest to h5wasm');
      assertEvery(own, expected);
      assertEvery(await openH5(file, { h5wasm: true }), expected);
      await h5wasmReady();
      assertEvery(openH5Sync(file), expected);
      if (libver === 'default') assertEvery(openH5Bytes(fs.readFileSync(file), 'strings.h5'), expected);
    });
  }
}

test('readStrings refuses what is not a string dataset, and read() still refuses strings', async () => {
  const file = path.join(dir, 'refusals.h5');
  await writeH5(file, { x: { dtype: 'float32', shape: [2], data: new Float32Array(2) } });
  const h5 = await openH5(file);
  try {
    assert.throws(() => h5.readStrings('x'), (e: unknown) => e instanceof TensorioError && e.code === 'ERR_UNSUPPORTED_DTYPE' && /does not hold strings/.test(e.message));
    assert.throws(() => h5.readStrings('nope'), (e: unknown) => e instanceof TensorioError && e.code === 'ERR_NOT_FOUND_IN_ARCHIVE');
  } finally {
    h5.close();
  }
  const strings = path.join(dir, 'refusals-strings.h5');
  runPythonWith(numpyPythons()[0]!.python(), `import sys, h5py, numpy as np\nwith h5py.File(sys.argv[1], 'w') as f: f['s'] = np.array([b'a'], dtype='S1')`, [strings]);
  const s = await openH5(strings);
  try {
    await assert.rejects(s.read('s'), (e: unknown) => e instanceof TensorioError && e.code === 'ERR_UNSUPPORTED_DTYPE' && /readStrings/.test(e.message));
    assert.equal(s.info('s').dtype, null);
  } finally {
    s.close();
  }
});

test('ERR_BAD_OFFSETS: a fixed-length string dataset whose data lies past the end of the file', async () => {
  const file = path.join(dir, 'short.h5');
  const python = numpyPythons()[0]!.python();
  const [header, offset] = JSON.parse(
    runPythonWith(
      python,
      `import sys, json, h5py, numpy as np\nwith h5py.File(sys.argv[1], 'w') as f:\n    d = f.create_dataset('s', data=np.array([b'abcdefgh'] * 64, dtype='S8'))\n    print(json.dumps([h5py.h5o.get_info(d.id).addr, d.id.get_offset()]))`,
      [file],
    ),
  ) as [number, number];
  const bytes = fs.readFileSync(file);
  pointDataPastEnd(bytes, header, offset);
  const h5 = openH5Bytes(bytes, 'short.h5');
  try {
    assert.throws(() => h5.readStrings('s'), (e: unknown) => e instanceof TensorioError && e.code === 'ERR_BAD_OFFSETS');
  } finally {
    h5.close();
  }
});

/** What h5py reads of every string dataset in a file: dtype, shape, each element's bytes, character set. */
const H5PY_STRINGS = `
import sys, json, h5py, numpy as np
out = {}
with h5py.File(sys.argv[1], 'r') as f:
    def visit(name, d):
        if not isinstance(d, h5py.Dataset) or h5py.check_string_dtype(d.dtype) is None: return
        v = np.asarray(d[()], dtype=object)
        out[name] = {'dtype': d.dtype.str, 'shape': list(v.shape), 'bytes': [bytes(b).hex() for b in v.reshape(-1)], 'encoding': h5py.check_string_dtype(d.dtype).encoding}
    f.visititems(visit)
print(json.dumps(out))
`;

for (const { label, python } of numpyPythons()) {
  test(`strings tensorio writes read back in h5py (${label}) as the bytes written: |S<n> fixed-length, object for variable-length`, async () => {
    const file = path.join(dir, `written-${label.replace(/\W+/g, '-')}.h5`);
    await writeH5(file, {
      'g/labels': { kind: 'string-array', shape: [2, 2], items: [], bytes: [Buffer.from('cat'), Buffer.from('dog'), new Uint8Array(0), Uint8Array.of(0xff, 0x00, 0x41)], encoding: 'ascii', width: 3 },
      x: { dtype: 'int32', shape: [2], data: Int32Array.of(1, 2) },
    });
    const file2 = path.join(dir, `written2-${label.replace(/\W+/g, '-')}.h5`);
    const writer = await H5Writer.create(file2);
    writer.strings('text', ['h\u00e9llo', 'a', ''], [3]);
    writer.strings('ascii', ['abc', 'de']);
    writer.strings('g/variable', ['\u03b1\u03b2', '', 'long text '.repeat(20)], [1, 3], { variable: true });
    await writer.commit();
    const seen = {
      ...(JSON.parse(runPythonWith(python(), H5PY_STRINGS, [file])) as Record<string, unknown>),
      ...(JSON.parse(runPythonWith(python(), H5PY_STRINGS, [file2])) as Record<string, unknown>),
    };
    assert.deepEqual(seen['g/labels'], { dtype: '|S3', shape: [2, 2], bytes: ['636174', '646f67', '', 'ff0041'], encoding: 'ascii' });
    assert.deepEqual(seen.text, { dtype: '|S6', shape: [3], bytes: [Buffer.from('h\u00e9llo').toString('hex'), '61', ''], encoding: 'utf-8' });
    assert.deepEqual(seen.ascii, { dtype: '|S3', shape: [2], bytes: ['616263', '6465'], encoding: 'ascii' });
    assert.deepEqual(seen['g/variable'], { dtype: '|O', shape: [1, 3], bytes: [Buffer.from('\u03b1\u03b2').toString('hex'), '', Buffer.from('long text '.repeat(20)).toString('hex')], encoding: 'utf-8' });
    const back = await openH5(file2);
    try {
      assert.deepEqual(back.readStrings('text').items, ['h\u00e9llo', 'a', '']);
      assert.equal(back.readStrings('text').width, 6);
      assert.deepEqual(back.readStrings('g/variable').items, ['\u03b1\u03b2', '', 'long text '.repeat(20)]);
      assert.equal(back.readStrings('g/variable').width, null);
    } finally {
      back.close();
    }
  });
}

test('string datasets read from h5py and written again hold the same bytes and types for h5py', async () => {
  const python = numpyPythons()[0]!.python();
  const source = path.join(dir, 'again-source.h5');
  const expected = JSON.parse(runPythonWith(python, WRITE_AND_DUMP, [source, 'default'])) as Record<string, Expected>;
  const h5 = await openH5(source);
  const record: Record<string, H5StringArray> = {};
  try {
    for (const name of Object.keys(expected)) record[name] = h5.readStrings(name);
  } finally {
    h5.close();
  }
  // Variable-length strings go through h5wasm as text: bytes that are not UTF-8 are refused, never changed.
  const { vlen_ascii: notText, ...text } = record;
  assert.ok(notText);
  await assert.rejects(writeH5(path.join(dir, 'not-text.h5'), { vlen_ascii: notText }), (e: unknown) => e instanceof TensorioError && e.code === 'ERR_INVALID_ARGUMENT' && /not UTF-8/.test(e.message));
  const again = path.join(dir, 'again.h5');
  await writeH5(again, text);
  const seen = JSON.parse(runPythonWith(python, H5PY_STRINGS, [again])) as Record<string, { dtype: string; bytes: string[]; shape: number[]; encoding: string }>;
  assert.deepEqual(Object.keys(seen).sort(), Object.keys(text).sort());
  for (const [name, want] of Object.entries(expected)) {
    if (name === 'vlen_ascii') continue;
    assert.deepEqual(seen[name]?.bytes, want.bytes, name);
    assert.deepEqual(seen[name]?.shape, want.shape, name);
    assert.equal(seen[name]?.encoding, want.encoding, name);
    assert.equal(seen[name]?.dtype, want.width === null ? '|O' : `|S${want.width}`, name);
  }
});

test('H5Writer.strings refuses a shape that does not hold the values', async () => {
  const writer = await H5Writer.create(path.join(dir, 'bad-shape.h5'));
  try {
    assert.throws(() => writer.strings('s', ['a', 'b'], [3]), (e: unknown) => e instanceof TensorioError && e.code === 'ERR_SHAPE_MISMATCH');
  } finally {
    await writer.abort();
  }
});

test('damaged variable-length strings are TensorioErrors: a global heap that is not one, a file cut short', async () => {
  const file = path.join(dir, 'vlen-damage.h5');
  runPythonWith(numpyPythons()[0]!.python(), `import sys, h5py\nwith h5py.File(sys.argv[1], 'w') as f: f.create_dataset('v', data=['abc', 'de'] * 50, dtype=h5py.string_dtype())`, [file]);
  const bytes = fs.readFileSync(file);
  const heap = bytes.indexOf('GCOL');
  assert.ok(heap > 0);
  const noHeap = Buffer.from(bytes);
  noHeap.write('XXXX', heap);
  const h5 = openH5Bytes(noHeap, 'no-heap.h5');
  try {
    assert.throws(() => h5.readStrings('v'), (e: unknown) => e instanceof TensorioError && e.code === 'ERR_BAD_HEADER' && /global heap/.test(e.message));
  } finally {
    h5.close();
  }
  // Every cut of the file is refused with a TensorioError (the superblock's end-of-file address says it is short), never a crash.
  for (let cut = 0; cut < bytes.length; cut += 97) {
    assert.throws(
      () => {
        const short = openH5Bytes(bytes.subarray(0, cut), 'short.h5');
        try {
          short.readStrings('v');
        } finally {
          short.close();
        }
      },
      (e: unknown) => e instanceof TensorioError,
      `cut at ${cut}`,
    );
  }
});
