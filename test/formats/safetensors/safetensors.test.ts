/**
 * safetensors: the reference's validation, its exact bytes, lazy views, shards and big files.
 * Through the public entry; two tests also load src/native.ts on purpose, to count and check
 * mappings (the split into shards is tested in sharded.test.ts).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

import fc from 'fast-check';

import {
  decodeSafetensors,
  encodeSafetensors,
  openSafetensors,
  openSafetensorsSync,
  readSafetensors,
  readSafetensorsSync,
  TensorioError,
  writeSafetensors,
  writeSafetensorsSync,
  type DType,
  type LoadedArray,
  type NdArray,
  type TypedArray,
} from '../../../src/index.js';
import { NATIVE_MODE, runOracle, runPythonJson, tempDir } from '../../helpers.js';
import { expectCode } from '../../expect-code.js';
import { allReadersRefuse, assertMatchesPython, assertReadsLikePython, assertReencodes, bytes, concat, PY_READER, pyRead, sha, type PyFile } from './reader.js';

const rejectsWith = (code: string, fn: () => unknown): Promise<TensorioError> => expectCode(fn, code as Parameters<typeof expectCode>[1]);

const dir = tempDir('safetensors');
let counter = 0;
function tmp(name = 'x.safetensors'): string {
  const sub = path.join(dir, String(counter++));
  fs.mkdirSync(sub);
  return path.join(sub, name);
}

function writeTemp(content: Uint8Array): string {
  const file = tmp();
  fs.writeFileSync(file, content);
  return file;
}

/** A safetensors file from a header object and data bytes, with the header as given (no padding). */
function handMade(header: unknown, data: Uint8Array | number = 0, rawHeader?: Uint8Array): Buffer {
  const json = rawHeader ?? Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  const body = typeof data === 'number' ? Buffer.alloc(data) : Buffer.from(data);
  return Buffer.concat([length, Buffer.from(json), body]);
}

// ---------------------------------------------------------------------------------------
// The reference's own test vectors (safetensors/src/tensor.rs tests)

test('writes the reference serialize() test vectors byte for byte', () => {
  const data = new Float32Array([0, 1, 2, 3, 4, 5]);
  const expected = [
    64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100, 116, 121, 112, 101, 34, 58, 34, 70, 51,
    50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58, 91, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102, 115,
    101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64,
    0, 0, 160, 64,
  ];
  assert.deepEqual([...concat(encodeSafetensors({ 'attn.0': { dtype: 'float32', shape: [1, 2, 3], data } }))], expected);
  // A shorter name forces seven spaces of padding.
  const padded = concat(encodeSafetensors({ attn0: { dtype: 'float32', shape: [1, 1, 2, 3], data } }));
  assert.equal(padded.readUInt32LE(0), 72);
  assert.equal(padded.subarray(8, 80).toString(), '{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}       ');
  assert.deepEqual([...concat(encodeSafetensors({}))], [8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]);
  const withMetadata = concat(encodeSafetensors({}, { metadata: { framework: 'pt' } }));
  assert.equal(withMetadata.readUInt32LE(0), 40);
  assert.equal(withMetadata.subarray(8).toString(), '{"__metadata__":{"framework":"pt"}}     ');
});

// ---------------------------------------------------------------------------------------
// Files written by the reference library (the oracle's safetensors); other tools' real files: test/fixtures/

/** Files written by safetensors.numpy.save_file: every NumPy dtype it takes, 0-d, empty, metadata. */
function referenceFiles(): string[] {
  const files = [tmp('reference.safetensors'), tmp('metadata.safetensors')];
  runOracle(
    `import sys, numpy as np
from safetensors.numpy import save_file
rng = np.random.default_rng(3)
tensors = {name: (rng.standard_normal((3, 5)) * 50).astype(name) for name in ['float16', 'float32', 'float64', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64']}
tensors['flags'] = np.array([True, False, True])
tensors['scalar'] = np.array(7, dtype=np.int64)
tensors['empty'] = np.zeros((0, 4), np.float32)
save_file(tensors, sys.argv[1])
save_file({'w': np.arange(6, dtype=np.float32).reshape(2, 3), 'b': np.ones(3, np.float32)}, sys.argv[2], metadata={'format': 'np', 'note': 'hello'})`,
    files,
  );
  return files;
}

test('reads what the reference library writes like an independent json + numpy reader, eagerly, mapped and synchronously', async () => {
  const files = referenceFiles();
  await assertReadsLikePython(files);
});

test('re-encodes what the reference library writes to identical bytes', async () => {
  await assertReencodes(referenceFiles(), tmp);
});

/** A file like mlverse's hello.safetensors (hello: 10x10 zeros ending in 1, world: 5x10), written by the reference library. */
function helloFile(): string {
  const file = tmp('hello.safetensors');
  runOracle(
    `import sys, numpy as np
from safetensors.numpy import save_file
hello = np.zeros((10, 10), np.float32); hello[9, 9] = 1
save_file({'hello': hello, 'world': np.ones((5, 10), np.float32)}, sys.argv[1])`,
    [file],
  );
  return file;
}

// ---------------------------------------------------------------------------------------
// One test per error code, with tiny hand-made files

const F32_2 = { dtype: 'F32', shape: [2], data_offsets: [0, 8] };

test('ERR_TRUNCATED: under 8 bytes, header past the end, data past the end', async () => {
  await allReadersRefuse(new Uint8Array([1, 0, 0]), 'ERR_TRUNCATED');
  await allReadersRefuse(handMade({ a: F32_2 }, 8).subarray(0, 20), 'ERR_TRUNCATED');
  await allReadersRefuse(handMade({ a: F32_2 }, 4), 'ERR_TRUNCATED');
});

test('ERR_HEADER_TOO_LARGE: a header length over 100,000,000, in either 32-bit half', async () => {
  const big = Buffer.alloc(16);
  big.writeBigUInt64LE(100_000_001n);
  await allReadersRefuse(big, 'ERR_HEADER_TOO_LARGE');
  big.writeBigUInt64LE(1n << 40n);
  await allReadersRefuse(big, 'ERR_HEADER_TOO_LARGE');
  // Exactly at the limit is allowed by the bound (and then fails as truncated).
  big.writeBigUInt64LE(100_000_000n);
  await allReadersRefuse(big, 'ERR_TRUNCATED');
});

test('ERR_BAD_HEADER: not UTF-8, not JSON, not an object, malformed entries', async () => {
  await allReadersRefuse(handMade(null, 0, new Uint8Array([0x7b, 0xff, 0x7d])), 'ERR_BAD_HEADER');
  await allReadersRefuse(handMade(null, 0, Buffer.from('{"a":')), 'ERR_BAD_HEADER');
  await allReadersRefuse(handMade([1, 2]), 'ERR_BAD_HEADER');
  await allReadersRefuse(handMade({ a: 5 }), 'ERR_BAD_HEADER');
  await allReadersRefuse(handMade({ a: { dtype: 'F32', shape: [2] } }, 8), 'ERR_BAD_HEADER');
  await allReadersRefuse(handMade({ a: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, 8), 'ERR_BAD_HEADER');
  await allReadersRefuse(handMade({ a: { dtype: 'F32', shape: [2.5], data_offsets: [0, 8] } }, 8), 'ERR_BAD_HEADER');
  await allReadersRefuse(handMade({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8, 8] } }, 8), 'ERR_BAD_HEADER');
  await allReadersRefuse(handMade({ a: { dtype: 7, shape: [2], data_offsets: [0, 8] } }, 8), 'ERR_BAD_HEADER');
  // Trailing NUL padding is not JSON whitespace (the reference's serde_json refuses it too).
  await allReadersRefuse(handMade(null, 0, Buffer.from('{}\0\0')), 'ERR_BAD_HEADER');
});

test('ERR_BAD_METADATA: __metadata__ must map strings to strings', async () => {
  await allReadersRefuse(handMade({ __metadata__: { a: 1 } }), 'ERR_BAD_METADATA');
  await allReadersRefuse(handMade({ __metadata__: ['a'] }), 'ERR_BAD_METADATA');
  await allReadersRefuse(handMade({ __metadata__: 'x' }), 'ERR_BAD_METADATA');
  // null is "no metadata" for the reference (an Option).
  const { metadata } = decodeSafetensors(handMade({ __metadata__: null }));
  assert.deepEqual(metadata, {});
});

test('ERR_BAD_OFFSETS: gaps, overlaps, reversed ranges, a start after 0, bytes after the data', async () => {
  await allReadersRefuse(handMade({ a: F32_2, b: { dtype: 'F32', shape: [1], data_offsets: [12, 16] } }, 16), 'ERR_BAD_OFFSETS');
  await allReadersRefuse(handMade({ a: F32_2, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, 8), 'ERR_BAD_OFFSETS');
  await allReadersRefuse(handMade({ a: { dtype: 'U8', shape: [0], data_offsets: [8, 0] } }, 8), 'ERR_BAD_OFFSETS');
  await allReadersRefuse(handMade({ a: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, 12), 'ERR_BAD_OFFSETS');
  const error = await rejectsWith('ERR_BAD_OFFSETS', () => decodeSafetensors(handMade({ a: F32_2 }, 9)));
  assert.match(error.message, /cover the file exactly/);
  // Entries listed out of data order are fine: the reference sorts them by offset first.
  const shuffled = decodeSafetensors(handMade({ b: { dtype: 'U8', shape: [1], data_offsets: [8, 9] }, a: F32_2 }, 9));
  assert.deepEqual(Object.keys(shuffled.tensors), ['a', 'b']);
});

test('ERR_SHAPE_MISMATCH: shape × item size must equal the byte range', async () => {
  await allReadersRefuse(handMade({ a: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 12] } }, 12), 'ERR_SHAPE_MISMATCH');
});

test('ERR_TOO_LARGE: shape products beyond 2^53 are refused with checked arithmetic', async () => {
  await allReadersRefuse(handMade({ a: { dtype: 'F64', shape: [2 ** 30, 2 ** 30, 2 ** 10], data_offsets: [0, 0] } }), 'ERR_TOO_LARGE');
  // The element count overflows: refused at that step even though a 0 follows.
  const count = await rejectsWith('ERR_TOO_LARGE', () => decodeSafetensors(handMade({ a: { dtype: 'U8', shape: [2 ** 53 - 1, 2, 0], data_offsets: [0, 0] } })));
  assert.match(count.message, /more elements than fit in a safe integer/);
  // Only the bytes overflow (2^51 elements of 8 bytes each).
  const bytes = await rejectsWith('ERR_TOO_LARGE', () => decodeSafetensors(handMade({ a: { dtype: 'F64', shape: [2 ** 51], data_offsets: [0, 0] } })));
  assert.match(bytes.message, /is too large/);
  // As in the reference, the item size multiplies the element count once, at the end: a
  // count that is safe times 0 is an empty tensor, whatever its item size.
  for (const dtype of ['F32', 'F64', 'U8']) {
    const empty = decodeSafetensors(handMade({ a: { dtype, shape: [2 ** 52, 0], data_offsets: [0, 0] } }));
    assert.deepEqual(empty.tensors.a?.shape, [2 ** 52, 0]);
    assert.equal(empty.tensors.a?.data.length, 0);
  }
});

test('ERR_UNSUPPORTED_DTYPE: unknown dtypes and the ones tensorio cannot hold', async () => {
  const error = await rejectsWith('ERR_UNSUPPORTED_DTYPE', () => decodeSafetensors(handMade({ a: { dtype: 'F8_E8M0', shape: [1], data_offsets: [0, 1] } }, 1)));
  assert.match(error.message, /does not hold/);
  await allReadersRefuse(handMade({ a: { dtype: 'Q4', shape: [1], data_offsets: [0, 1] } }, 1), 'ERR_UNSUPPORTED_DTYPE');
  await rejectsWith('ERR_UNSUPPORTED_DTYPE', () => encodeSafetensors({ c: { dtype: 'complex128', shape: [1], data: new Float64Array(2) } }));
});

test('ERR_NOT_FOUND, ERR_NOT_FOUND_IN_ARCHIVE, ERR_CLOSED and ERR_INVALID_ARGUMENT', async () => {
  await rejectsWith('ERR_NOT_FOUND', () => readSafetensors(path.join(dir, 'missing.safetensors')));
  const file = helloFile();
  const view = await openSafetensors(file);
  await rejectsWith('ERR_NOT_FOUND_IN_ARCHIVE', () => view.get('nope'));
  await rejectsWith('ERR_NOT_FOUND_IN_ARCHIVE', () => view.info('nope'));
  await rejectsWith('ERR_INVALID_ARGUMENT', () => view.getSlice('hello', [[0, 11]]));
  await rejectsWith('ERR_INVALID_ARGUMENT', () => view.getSlice('hello', [[3, 2]]));
  await rejectsWith('ERR_INVALID_ARGUMENT', () => view.getSlice('hello', [null, null, [0, 1]]));
  view.close();
  await rejectsWith('ERR_CLOSED', () => view.get('hello'));
  await rejectsWith('ERR_CLOSED', () => view.getSync('hello'));
  const t = { dtype: 'float32' as const, shape: [1], data: new Float32Array(1) };
  await rejectsWith('ERR_INVALID_ARGUMENT', () => writeSafetensors(tmp(), { __metadata__: t }));
  await rejectsWith('ERR_INVALID_ARGUMENT', () => writeSafetensors(tmp(), { a: t }, { metadata: { v: 1 as unknown as string } }));
  await rejectsWith('ERR_INVALID_ARGUMENT', () => writeSafetensors(tmp(), { '\ud800': t }));
  await rejectsWith('ERR_INVALID_ARGUMENT', () => writeSafetensors(tmp(), { a: t }, { maxShardSize: '5 parsecs' }));
  await rejectsWith('ERR_SHAPE_MISMATCH', () => writeSafetensors(tmp(), { a: { ...t, shape: [2] } }));
});

test('hostile bytes never crash: mutated files parse or fail with a TensorioError', () => {
  const good = concat(
    encodeSafetensors(
      { w: { dtype: 'float32', shape: [2, 3], data: new Float32Array(6) }, b: { dtype: 'int64', shape: [], data: new BigInt64Array(1) } },
      { metadata: { k: 'v' } },
    ),
  );
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }), fc.nat(good.length), (edits, cut) => {
      const bad = Buffer.from(good);
      for (const [at, value] of edits) bad[at] = value;
      try {
        decodeSafetensors(bad.subarray(0, cut === good.length ? bad.length : cut));
      } catch (error) {
        if (!(error instanceof TensorioError)) throw error;
      }
    }),
    { numRuns: 500 },
  );
});

// ---------------------------------------------------------------------------------------
// Writing

const DTYPES: DType[] = [
  'bool', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64',
  'float16', 'bfloat16', 'float32', 'float64', 'complex64', 'float8_e4m3fn', 'float8_e5m2',
];

function randomArray(dtype: DType, shape: number[], seed: number): NdArray {
  const size = shape.reduce((a, b) => a * b, 1);
  const lanes = dtype === 'complex64' ? 2 : 1;
  const raw = new Uint8Array(size * lanes * (dtype === 'complex64' ? 4 : ITEM[dtype]));
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < raw.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    raw[i] = x >>> 24;
  }
  if (dtype === 'bool') raw.forEach((v, i) => (raw[i] = v & 1));
  const Ctor = ARRAY[dtype];
  return { dtype, shape, data: new Ctor(raw.buffer, 0, size * lanes) };
}
const ITEM: Record<DType, number> = {
  bool: 1, int8: 1, uint8: 1, int16: 2, uint16: 2, int32: 4, uint32: 4, int64: 8, uint64: 8, float16: 2, bfloat16: 2,
  float32: 4, float64: 8, complex64: 8, complex128: 16, float8_e4m3fn: 1, float8_e5m2: 1,
};
const ARRAY: Record<DType, new (b: ArrayBuffer, o: number, l: number) => TypedArray> = {
  bool: Uint8Array, int8: Int8Array, uint8: Uint8Array, int16: Int16Array, uint16: Uint16Array, int32: Int32Array,
  uint32: Uint32Array, int64: BigInt64Array, uint64: BigUint64Array, float16: Uint16Array, bfloat16: Uint16Array,
  float32: Float32Array, float64: Float64Array, complex64: Float32Array, complex128: Float64Array,
  float8_e4m3fn: Uint8Array, float8_e5m2: Uint8Array,
};

test('every dtype round-trips and an independent reader sees the reference layout', async () => {
  const tensors: Record<string, NdArray> = {};
  DTYPES.forEach((dtype, i) => {
    tensors[`t.${dtype}`] = randomArray(dtype, [3, i % 4 + 1], i);
  });
  tensors.scalar = randomArray('float64', [], 99);
  tensors.empty = randomArray('float32', [0, 4], 7);
  tensors['naïve 名前 🙂'] = randomArray('int16', [2], 5);
  const file = tmp();
  await writeSafetensors(file, tensors, { metadata: { format: 'pt', 'ünï': '✓' } });
  const py = pyRead(file)[file] as PyFile;
  assert.equal(py.n % 8, 0);
  assert.deepEqual(py.metadata, { format: 'pt', 'ünï': '✓' });
  assertMatchesPython(tensors, py);
  // Data order: dtype alignment (the reference enum, largest first), then name.
  const order = py.order.map((name) => py.tensors[name]?.dtype);
  assert.deepEqual(order.slice(0, 4), ['U64', 'I64', 'F64', 'F64']);
  assert.equal(order.at(-1), 'BOOL');
  for (const read of [await readSafetensors(file), await readSafetensors(file, { mmap: true }), readSafetensorsSync(file)]) {
    for (const [name, array] of Object.entries(tensors)) {
      const back = read.tensors[name] as LoadedArray;
      assert.equal(back.dtype, array.dtype, name);
      assert.deepEqual(back.shape, array.shape, name);
      assert.ok(bytes(back.data).equals(bytes(array.data)), name);
    }
  }
});

test('property: any dict of tensors round-trips through write and read', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.dictionary(
        fc.string({ minLength: 0, maxLength: 6 }).filter((s) => s !== '__metadata__' && !/\p{Cs}/u.test(s)),
        fc.tuple(fc.constantFrom(...DTYPES), fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 }), fc.nat()),
        { maxKeys: 6 },
      ),
      fc.dictionary(fc.string({ maxLength: 4 }).filter((s) => !/\p{Cs}/u.test(s)), fc.string({ maxLength: 4 }).filter((s) => !/\p{Cs}/u.test(s)), { maxKeys: 3 }),
      async (spec, metadata) => {
        const tensors: Record<string, NdArray> = {};
        for (const [name, [dtype, shape, seed]] of Object.entries(spec)) Object.defineProperty(tensors, name, { value: randomArray(dtype, shape, seed), enumerable: true });
        const file = tmp();
        writeSafetensorsSync(file, tensors, { metadata, fsync: false });
        const content = fs.readFileSync(file);
        assert.equal(content.readUInt32LE(0) % 8, 0);
        const back = await readSafetensors(file, { mmap: true });
        assert.deepEqual(back.metadata, { ...metadata });
        assert.deepEqual(Object.keys(back.tensors).sort(), Object.keys(tensors).sort());
        for (const [name, array] of Object.entries(tensors)) {
          const got = back.tensors[name] as LoadedArray;
          assert.deepEqual(got.shape, array.shape);
          assert.ok(bytes(got.data).equals(bytes(array.data)));
          // The reference layout aligns every tensor, so all are mapped when mapping is possible
          // (empty ones are fresh empty arrays).
          assert.equal(got.mapped, NATIVE_MODE && got.data.length > 0);
        }
        assert.ok(concat(encodeSafetensors(back.tensors, { metadata })).equals(content));
      },
    ),
    { numRuns: 60 },
  );
});

test('Fortran-order arrays are written in C order', () => {
  const f: NdArray = { dtype: 'int32', shape: [2, 3], data: new Int32Array([1, 4, 2, 5, 3, 6]), order: 'F' };
  const { tensors } = decodeSafetensors(concat(encodeSafetensors({ f })));
  assert.deepEqual([...(tensors.f?.data as Int32Array)], [1, 2, 3, 4, 5, 6]);
});

test('writes are atomic: a failed write keeps the old file, a mapped reader keeps its bytes', async () => {
  const file = tmp();
  const before = { a: { dtype: 'float32' as const, shape: [4], data: new Float32Array([1, 2, 3, 4]) } };
  await writeSafetensors(file, before);
  const original = fs.readFileSync(file);
  await rejectsWith('ERR_SHAPE_MISMATCH', () => writeSafetensors(file, { a: { dtype: 'float32', shape: [5], data: new Float32Array(4) } }));
  assert.ok(fs.readFileSync(file).equals(original));
  assert.deepEqual(fs.readdirSync(path.dirname(file)), [path.basename(file)]);
  const view = await openSafetensors(file);
  const mapped = await view.get('a');
  await writeSafetensors(file, { a: { dtype: 'float32', shape: [4], data: new Float32Array([9, 9, 9, 9]) } });
  assert.deepEqual([...(mapped.data as Float32Array)], [1, 2, 3, 4]);
  assert.deepEqual([...((await readSafetensors(file)).tensors.a?.data as Float32Array)], [9, 9, 9, 9]);
  view.close();
});

// ---------------------------------------------------------------------------------------
// The lazy view

test('openSafetensors: keys, metadata, info with byte ranges, get and slices', async () => {
  const file = tmp();
  const m = { dtype: 'int32' as const, shape: [4, 3, 2], data: Int32Array.from({ length: 24 }, (_, i) => i) };
  const h = { dtype: 'float16' as const, shape: [5], data: new Uint16Array([1, 2, 3, 4, 5]) };
  await writeSafetensors(file, { m, h, 'z\u{1F600}': h, 'z\uFFFD': h }, { metadata: { a: 'b' } });
  for (const mmap of [true, false]) {
    const view = await openSafetensors(file, { mmap });
    // Code-point order, like Python: U+FFFD sorts before U+1F600 (UTF-16 order says otherwise).
    assert.deepEqual(view.keys(), ['h', 'm', 'z\uFFFD', 'z\u{1F600}']);
    assert.deepEqual(view.metadata, { a: 'b' });
    assert.equal(view.mapped, mmap && NATIVE_MODE);
    const info = view.info('m');
    assert.equal(info.dtype, 'int32');
    assert.deepEqual(info.shape, [4, 3, 2]);
    assert.equal(info.byteLength, 96);
    const raw = fs.readFileSync(file).subarray(info.byteOffset, info.byteOffset + info.byteLength);
    assert.ok(raw.equals(bytes(m.data)));
    assert.deepEqual([...((await view.get('m')).data as Int32Array)], [...m.data]);
    const rows = await view.getSlice('m', [[1, 3]]);
    assert.deepEqual(rows.shape, [2, 3, 2]);
    assert.deepEqual([...(rows.data as Int32Array)], [...m.data.subarray(6, 18)]);
    assert.equal(rows.mapped, mmap && NATIVE_MODE);
    const inner = view.getSliceSync('m', [[1, 3], [2, 3]]);
    assert.deepEqual(inner.shape, [2, 1, 2]);
    assert.deepEqual([...(inner.data as Int32Array)], [10, 11, 16, 17]);
    assert.equal(inner.mapped, false);
    const middle = await view.getSlice('m', [null, [1, 2], [1, 2]]);
    assert.deepEqual([...(middle.data as Int32Array)], [3, 9, 15, 21]);
    const none = await view.getSlice('m', [[2, 2]]);
    assert.deepEqual(none.shape, [0, 3, 2]);
    assert.equal(none.data.length, 0);
    assert.deepEqual([...((await view.getSlice('h', [[4, 5]])).data as Uint16Array)], [5]);
    view.close();
  }
});

test('close({ unmap: true }) releases the mapping at once; plain close leaves arrays valid', async () => {
  const file = helloFile();
  const view = openSafetensorsSync(file);
  const hello = view.getSync('hello');
  view.close();
  assert.equal(hello.data.length, 100);
  assert.equal((hello.data as Float32Array)[99], 1);
  const again = await openSafetensors(file);
  const world = await again.get('world');
  again.close({ unmap: true });
  assert.equal(world.data.length, NATIVE_MODE ? 0 : 50);
});

// ---------------------------------------------------------------------------------------
// Sharded checkpoints

test('maxShardSize writes Hugging Face shards and index; reading gives one view over them', async () => {
  const file = tmp('model.safetensors');
  const folder = path.dirname(file);
  const tensors: Record<string, NdArray> = {};
  for (let i = 0; i < 7; i++) tensors[`layer.${i}.weight`] = randomArray(i % 2 ? 'bfloat16' : 'float32', [10, 10], i); // 400 or 200 bytes
  const result = await writeSafetensors(file, tensors, { maxShardSize: 1000, metadata: { format: 'pt' } });
  assert.deepEqual(result.files.map((f) => path.basename(f)), [
    'model-00001-of-00003.safetensors',
    'model-00002-of-00003.safetensors',
    'model-00003-of-00003.safetensors',
  ]);
  assert.equal(result.index, `${file}.index.json`);
  assert.equal(result.totalSize, 4 * 400 + 3 * 200);
  assert.ok(!fs.existsSync(file));
  const indexText = fs.readFileSync(`${file}.index.json`, 'utf8');
  const index = JSON.parse(indexText) as { metadata: { total_size: number }; weight_map: Record<string, string> };
  assert.equal(index.metadata.total_size, 2200);
  assert.deepEqual(Object.keys(index.weight_map), Object.keys(tensors).sort());
  assert.ok(indexText.startsWith('{\n  "metadata": {\n    "total_size": 2200\n  },\n  "weight_map": {\n    "layer.0.weight": "model-00001-of-00003.safetensors",'));
  assert.ok(indexText.endsWith('}\n}\n'));
  // An independent reader follows the index to the same bytes.
  const py = runPythonJson<Record<string, { index: unknown; shards: Record<string, PyFile> }>>(PY_READER, [`${file}.index.json`]);
  const shards = py[`${file}.index.json`]?.shards ?? {};
  assert.equal(Object.keys(shards).length, 3);
  for (const [name, shardFile] of Object.entries(index.weight_map)) {
    assert.equal(shards[shardFile]?.tensors[name]?.sha, sha((tensors[name] as NdArray).data));
    assert.deepEqual(shards[shardFile]?.metadata, { format: 'pt' });
  }
  for (const target of [`${file}.index.json`, file]) {
    const view = await openSafetensors(target);
    assert.deepEqual(view.keys(), Object.keys(tensors).sort());
    assert.equal(view.files.length, 3);
    assert.equal(view.index?.totalSize, 2200);
    assert.deepEqual(view.metadata, { format: 'pt' });
    assert.equal(path.basename(view.info('layer.6.weight').file), 'model-00003-of-00003.safetensors');
    const slice = await view.getSlice('layer.5.weight', [[9, 10]]);
    assert.ok(bytes(slice.data).equals(bytes((tensors['layer.5.weight'] as NdArray).data).subarray(180)));
    view.close();
    const all = await readSafetensors(target, { mmap: true });
    for (const [name, array] of Object.entries(tensors)) assert.ok(bytes((all.tensors[name] as LoadedArray).data).equals(bytes(array.data)));
  }
  // A smaller save of the same checkpoint removes the shards it no longer uses.
  writeSafetensorsSync(file, { a: tensors['layer.0.weight'] as NdArray, b: tensors['layer.1.weight'] as NdArray }, { maxShardSize: 500 });
  assert.deepEqual(fs.readdirSync(folder).sort(), ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'model.safetensors.index.json']);
  // One shard is one plain file, as the Hugging Face tools write it, and the index goes.
  await writeSafetensors(file, { a: tensors['layer.0.weight'] as NdArray }, { maxShardSize: '5GB' });
  assert.deepEqual(fs.readdirSync(folder), ['model.safetensors']);
});

test('a hostile or inconsistent index is refused', async () => {
  const folder = path.dirname(tmp());
  const shard = path.join(folder, 'model-00001-of-00001.safetensors');
  await writeSafetensors(shard, { a: { dtype: 'uint8', shape: [1], data: new Uint8Array(1) } });
  const write = (content: unknown) => {
    const file = path.join(folder, 'model.safetensors.index.json');
    fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
    return file;
  };
  await rejectsWith('ERR_BAD_HEADER', () => openSafetensors(write({ weight_map: { a: '../../etc/passwd' } })));
  await rejectsWith('ERR_BAD_HEADER', () => openSafetensors(write({ weight_map: { a: '/etc/passwd' } })));
  await rejectsWith('ERR_BAD_HEADER', () => openSafetensors(write({ weight_map: { b: 'model-00001-of-00001.safetensors' } })));
  await rejectsWith('ERR_BAD_HEADER', () => openSafetensors(write({ weight_map: [] })));
  await rejectsWith('ERR_BAD_HEADER', () => openSafetensors(write('{')));
  await rejectsWith('ERR_NOT_FOUND', () => openSafetensors(write({ weight_map: { a: 'gone.safetensors' } })));
  const ok = await openSafetensors(write({ metadata: { total_size: 1 }, weight_map: { a: 'model-00001-of-00001.safetensors' } }));
  assert.deepEqual(ok.keys(), ['a']);
  ok.close();
});

// ---------------------------------------------------------------------------------------
// Larger than memory: sparse files

/**
 * A sparse safetensors file: a header padded to 256 bytes, then `dataLength` bytes of holes
 * except the given writes (data-relative offset → bytes).
 */
function sparseFile(header: Record<string, unknown>, dataLength: number, writes: Array<[number, Uint8Array]>): string {
  const json = Buffer.from(JSON.stringify(header).padEnd(256, ' '));
  const file = tmp();
  const fd = fs.openSync(file, 'w');
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  fs.writeSync(fd, length, 0, 8, 0);
  fs.writeSync(fd, json, 0, json.length, 8);
  fs.ftruncateSync(fd, 8 + json.length + dataLength);
  for (const [at, data] of writes) fs.writeSync(fd, data, 0, data.length, 8 + json.length + at);
  fs.closeSync(fd);
  return file;
}

/** A sparse file with one huge U8 tensor of `big` bytes (last byte 7) and a small F32 tail. */
function sparseCheckpoint(big: number, tail: Float32Array): string {
  const header = {
    huge: { dtype: 'U8', shape: [big / 8, 8], data_offsets: [0, big] },
    tail: { dtype: 'F32', shape: [tail.length], data_offsets: [big, big + tail.byteLength] },
  };
  return sparseFile(header, big + tail.byteLength, [[big, bytes(tail)], [big - 1, Buffer.from([7])]]);
}

test('files and tensors over 4 GiB: header-time open, reads at the end (sparse file)', async () => {
  const big = 5 * 2 ** 30 + 8;
  const tail = new Float32Array([1.5, -2, 3, 4, 5, 6]);
  const file = sparseCheckpoint(big, tail);
  try {
    const start = process.hrtime.bigint();
    const view = await openSafetensors(file);
    const openMs = Number(process.hrtime.bigint() - start) / 1e6;
    assert.ok(openMs < 500, `open took ${openMs} ms`);
    assert.equal(view.info('huge').byteLength, big);
    assert.equal(view.info('tail').byteOffset, 8 + 256 + big);
    const tailArray = await view.get('tail');
    assert.deepEqual([...(tailArray.data as Float32Array)], [...tail]);
    assert.equal(tailArray.mapped, NATIVE_MODE);
    const lastRow = await view.getSlice('huge', [[big / 8 - 1, big / 8]]);
    assert.deepEqual([...(lastRow.data as Uint8Array)], [0, 0, 0, 0, 0, 0, 0, 7]);
    assert.equal(lastRow.mapped, NATIVE_MODE);
    // 5 GiB of U8 is more elements than one TypedArray holds on Node 20: refused before any read.
    await rejectsWith('ERR_TOO_LARGE', () => view.get('huge'));
    view.close({ unmap: true });
    // The same reads without a mapping touch only the bytes asked for.
    const plain = openSafetensorsSync(file, { mmap: false });
    assert.equal(plain.getSliceSync('huge', [[big / 8 - 1, big / 8]]).data[7], 7);
    assert.deepEqual([...(plain.getSync('tail').data as Float32Array)], [...tail]);
    assert.throws(() => plain.getSync('huge'), (e: unknown) => e instanceof TensorioError && e.code === 'ERR_TOO_LARGE');
    plain.close();
  } finally {
    fs.unlinkSync(file);
  }
});

test('a 3.5 GiB tensor is mapped as one view without reading it (sparse file)', async () => {
  const big = 3.5 * 2 ** 30;
  const file = sparseCheckpoint(big, new Float32Array([1]));
  try {
    const view = await openSafetensors(file);
    assert.equal(view.mapped, NATIVE_MODE);
    if (NATIVE_MODE) {
      const huge = await view.get('huge');
      assert.equal(huge.mapped, true);
      assert.equal(huge.data.length, big);
      assert.equal((huge.data as Uint8Array)[big - 1], 7);
      assert.equal((await view.get('tail')).mapped, true);
    }
    view.close({ unmap: true });
  } finally {
    fs.unlinkSync(file);
  }
});

// ---------------------------------------------------------------------------------------
// docs/safetensors.md's first example, as written there (paths moved to a temp folder).

test('the docs example runs as documented', async () => {
  const file = tmp('model.safetensors');
  await writeSafetensors(
    file,
    {
      'embed.weight': { dtype: 'bfloat16', shape: [4, 8], data: new Uint16Array(32) },
      'head.bias': { dtype: 'float32', shape: [8], data: new Float32Array(8) },
    },
    { metadata: { format: 'pt' } },
  );
  const { tensors, metadata } = await readSafetensors(file);
  assert.ok(tensors['head.bias']?.data instanceof Float32Array);
  assert.equal(tensors['head.bias']?.data.length, 8);
  assert.equal(metadata.format, 'pt');
  const view = await openSafetensors(file);
  assert.deepEqual(view.keys(), ['embed.weight', 'head.bias']);
  assert.deepEqual(Object.keys(view.info('embed.weight')).sort(), ['byteLength', 'byteOffset', 'dataOffsets', 'dtype', 'file', 'name', 'shape']);
  const rows = await view.getSlice('embed.weight', [[1, 3]]);
  assert.deepEqual(rows.shape, [2, 8]);
  view.close();
});

test('a name like __proto__ is an ordinary tensor name, never a prototype', async () => {
  const tensors: Record<string, NdArray> = {};
  Object.defineProperty(tensors, '__proto__', { value: { dtype: 'uint8', shape: [1], data: new Uint8Array([5]) }, enumerable: true });
  const file = tmp();
  await writeSafetensors(file, tensors, { metadata: JSON.parse('{"__proto__": "x"}') as Record<string, string> });
  const back = await readSafetensors(file);
  assert.deepEqual(Object.keys(back.tensors), ['__proto__']);
  assert.equal(Object.getPrototypeOf(back.tensors), Object.prototype);
  assert.equal(Object.getOwnPropertyDescriptor(back.metadata, '__proto__')?.value, 'x');
});

test('lookups find tensor names only: not Object.prototype members, not __metadata__, not non-strings', async () => {
  // An open looks names up in the parsed header object itself, so these must stay out.
  const byte = (value: number): NdArray => ({ dtype: 'uint8', shape: [1], data: new Uint8Array([value]) });
  const tensors: Record<string, NdArray> = { a: byte(1), '5': byte(2) };
  Object.defineProperty(tensors, '__proto__', { value: byte(3), enumerable: true });
  const file = tmp();
  await writeSafetensors(file, tensors, { metadata: { k: 'v' } });
  for (const view of [await openSafetensors(file), openSafetensorsSync(file)]) {
    assert.deepEqual(view.keys(), ['5', '__proto__', 'a']);
    for (const name of ['toString', 'constructor', 'hasOwnProperty', 'valueOf', '__metadata__']) {
      assert.equal(view.has(name), false, name);
      await rejectsWith('ERR_NOT_FOUND_IN_ARCHIVE', () => view.info(name));
      await rejectsWith('ERR_NOT_FOUND_IN_ARCHIVE', () => view.get(name));
    }
    assert.equal(view.has(5 as unknown as string), false);
    assert.deepEqual([...view.getSync('__proto__').data], [3]);
    assert.deepEqual([...(await view.get('5')).data], [2]);
    view.close();
  }
});

test('headers out of data order (integer-like names first, as JSON.parse lists them) and longer than the first read', async () => {
  // JSON.parse lists '5' before 'b'; the data order is b, then 5.
  const text = '{"b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"5":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}';
  const unsorted = writeTemp(handMade(undefined, new Uint8Array([7, 8]), Buffer.from(text)));
  for (const view of [await openSafetensors(unsorted), openSafetensorsSync(unsorted)]) {
    assert.deepEqual(view.offsetKeys(), ['b', '5']);
    assert.deepEqual(view.keys(), ['5', 'b']);
    assert.deepEqual([view.info('b').byteOffset, view.info('5').byteOffset], [8 + text.length, 9 + text.length]);
    assert.deepEqual([...view.getSync('5').data], [8]);
    view.close();
  }
  // An async open reads 120 KiB with the open; a longer header takes a second read.
  const many: Record<string, NdArray> = {};
  for (let i = 0; i < 2000; i++) many[`model.layers.${i}.mlp.down_proj.weight`] = { dtype: 'uint8', shape: [1], data: new Uint8Array([i & 255]) };
  const long = tmp('long.safetensors');
  await writeSafetensors(long, many);
  assert.ok(fs.readFileSync(long).readUInt32LE(0) > 120 * 1024);
  for (const view of [await openSafetensors(long), openSafetensorsSync(long)]) {
    assert.equal(view.keys().length, 2000);
    assert.deepEqual([...view.getSync('model.layers.1999.mlp.down_proj.weight').data], [1999 & 255]);
    view.close();
  }
});

test('header lengths around the async first read (120 KiB) open the same, async and sync', async () => {
  const first = 120 * 1024;
  for (const n of [first - 9, first - 8, first - 7, first + 1, 2 * first + 3]) {
    // A patterned metadata string fills the header and the tensor's entry comes last, so a byte
    // lost, doubled or shifted across the two reads changes what is parsed.
    const entry = ',"w":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}';
    const fill = n - '{"__metadata__":{"p":""}}'.length - entry.length + 1;
    const pattern = Array.from({ length: fill }, (_, i) => String.fromCharCode(97 + ((i * 7) % 26))).join('');
    const text = `{"__metadata__":{"p":"${pattern}"}${entry}`;
    assert.equal(text.length, n);
    const file = writeTemp(handMade(undefined, new Uint8Array([3, 4]), Buffer.from(text)));
    for (const view of [await openSafetensors(file), openSafetensorsSync(file)]) {
      assert.equal(view.metadata.p, pattern);
      assert.equal(view.info('w').byteOffset, 8 + n);
      assert.deepEqual([...(await view.get('w')).data], [3, 4]);
      view.close();
    }
  }
});

test('an open view does not keep fields the format ignores (a hostile 32 MB field inside an entry)', async () => {
  const gc = (globalThis as { gc?: () => void }).gc;
  assert.ok(gc, 'the suite runs with --expose-gc');
  const text = `{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"junk":"${'x'.repeat(32 * 2 ** 20)}"}}`;
  const file = writeTemp(handMade(undefined, new Uint8Array([9]), Buffer.from(text)));
  const settle = () => {
    gc();
    gc();
    return process.memoryUsage().heapUsed;
  };
  for (const open of [() => openSafetensorsSync(file), () => openSafetensors(file)]) {
    const before = settle();
    const view = await open();
    const held = settle() - before;
    assert.deepEqual([...view.getSync('w').data], [9]);
    assert.ok(held < 8 * 2 ** 20, `the view holds ${held} bytes of heap`);
    view.close();
  }
});

test('mappings are released when their last view is garbage-collected', async () => {
  const gc = (globalThis as { gc?: () => void }).gc;
  assert.ok(gc, 'the suite runs with --expose-gc');
  const { native } = await import('../../../src/native.js');
  if (!native) {
    assert.equal(NATIVE_MODE, false);
    return;
  }
  const settle = async () => {
    // Collect what earlier tests left, until the count stops moving.
    for (let i = 0, last = -1; i < 20 && native.liveMappings() !== last; i++) {
      last = native.liveMappings();
      gc();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
  await settle();
  const before = native.liveMappings();
  await (async () => {
    const view = await openSafetensors(helloFile());
    const hello = await view.get('hello');
    view.close();
    assert.equal(native.liveMappings(), before + 1);
    assert.equal(hello.data.length, 100);
  })();
  await settle();
  assert.equal(native.liveMappings(), before);
});

test('close() during reads in flight waits for them before closing the descriptor', async () => {
  const file = tmp('multi.safetensors');
  await writeSafetensors(file, Object.fromEntries(['conv1.weight', 'conv1.bias', 'fc1.weight', 'fc1.bias'].map((name, i) => [name, randomArray('float32', [16, 64 * (i + 1)], i)])));
  const expected = (await readSafetensors(file)).tensors;
  const view = await openSafetensors(file, { mmap: false });
  const pending = view.keys().map((name) => view.get(name));
  view.close();
  const got = await Promise.all(pending);
  view.keys().forEach((name, i) => assert.ok(bytes((got[i] as LoadedArray).data).equals(bytes((expected[name] as LoadedArray).data)), name));
  await rejectsWith('ERR_CLOSED', () => view.get('fc1.weight'));
});

test("the index is byte for byte Python's json.dumps(index, indent=2, sort_keys=True)", async () => {
  const file = tmp('model.safetensors');
  const tensors: Record<string, NdArray> = {};
  for (const name of ['b', 'a', 'é.weight', '\u{1F600}', 'z\uFFFD', 'q"uote\\']) tensors[name] = randomArray('float32', [4], name.length);
  await writeSafetensors(file, tensors, { maxShardSize: 40 });
  const ours = fs.readFileSync(`${file}.index.json`, 'utf8');
  const python = runPythonJson<string>(
    'import json, sys\nindex = json.load(open(sys.argv[1]))\nprint(json.dumps(json.dumps(index, indent=2, sort_keys=True) + "\\n"))',
    [`${file}.index.json`],
  );
  assert.equal(ours, python);
  const view = await openSafetensors(file);
  assert.deepEqual(view.keys(), Object.keys(tensors).sort(compareForTest));
  view.close();
});

function compareForTest(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

test('a 6 GiB file of 3, 2 and 1 GiB tensors maps as one buffer of views (sparse file)', async () => {
  const GiB = 2 ** 30;
  const layout: Array<[string, number]> = [['a', 3 * GiB], ['b', 2 * GiB], ['c', GiB - 8], ['d', 8]];
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, length] of layout) {
    header[name] = { dtype: 'U8', shape: [length], data_offsets: [offset, offset + length] };
    offset += length;
  }
  const file = sparseFile(header, offset, layout.map((_, i) => [layout.slice(0, i + 1).reduce((sum, [, n]) => sum + n, 0) - 1, Buffer.from([9])]));
  try {
    const view = await openSafetensors(file);
    for (const [name, size] of layout) {
      if (!NATIVE_MODE && size > 2 ** 26) continue; // would read gigabytes into memory
      const array = await view.get(name);
      assert.equal(array.mapped, NATIVE_MODE, name);
      if (NATIVE_MODE) {
        assert.equal(array.data.length, size);
        assert.equal((array.data as Uint8Array)[size - 1], 9, name);
      }
    }
    if (NATIVE_MODE) {
      const { native } = await import('../../../src/native.js');
      const a = await view.get('a');
      // One mapping, one ArrayBuffer: V8 aborts on two buffers over the same memory.
      for (const [name] of layout) assert.equal((await view.get(name)).data.buffer, a.data.buffer, name);
      assert.ok(native?.isMapped(a.data.buffer as ArrayBuffer));
    }
    view.close({ unmap: true });
  } finally {
    fs.unlinkSync(file);
  }
});
