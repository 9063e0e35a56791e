/** Property-based tests: .npy round trips for random arrays, and random bytes never crash the parser. */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';

import { TensorioError, decodeNpy, dtypeInfo, encodeNpy, readNpy, writeNpy, type DType, type NdArray } from '../../../src/index.js';
import { tempDir } from '../../helpers.js';

const NUMPY_DTYPES: DType[] = ['bool', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'float16', 'float32', 'float64', 'complex64', 'complex128'];

const arrayArbitrary: fc.Arbitrary<NdArray> = fc
  .record({
    dtype: fc.constantFrom(...NUMPY_DTYPES),
    shape: fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 0, maxLength: 4 }),
    fortran: fc.boolean(),
    seed: fc.integer(),
  })
  .map(({ dtype, shape, fortran, seed }) => {
    const info = dtypeInfo(dtype);
    const size = shape.reduce((a, b) => a * b, 1);
    const bytes = new Uint8Array(size * info.itemSize);
    let state = seed >>> 0;
    for (let i = 0; i < bytes.length; i++) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      bytes[i] = dtype === 'bool' ? state & 1 : state >>> 24;
    }
    const array: NdArray = { dtype, shape, data: new info.array(bytes.buffer, 0, size * info.lanes) };
    if (fortran) array.order = 'F';
    return array;
  });

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

const sameBytes = (a: NdArray, b: NdArray): boolean =>
  Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength).equals(Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength));

test('encode then decode gives back the same array (bytes, shape, dtype, layout)', () => {
  fc.assert(
    fc.property(arrayArbitrary, (array) => {
      const decoded = decodeNpy(concat(encodeNpy(array)));
      assert.equal(decoded.dtype, array.dtype);
      assert.deepEqual(decoded.shape, array.shape);
      assert.ok(sameBytes(decoded, array));
      const layoutMatters = array.shape.filter((d) => d > 1).length >= 2 && !array.shape.includes(0);
      assert.equal(decoded.order === 'F', array.order === 'F' && layoutMatters);
    }),
    { numRuns: 500 },
  );
});

test('file round trips, mapped and eager', async () => {
  const dir = tempDir('npy-prop');
  let n = 0;
  await fc.assert(
    fc.asyncProperty(arrayArbitrary, fc.boolean(), async (array, mmap) => {
      const file = path.join(dir, `${n++}.npy`);
      await writeNpy(file, array, { fsync: false });
      const loaded = await readNpy(file, { mmap });
      assert.deepEqual(loaded.shape, array.shape);
      assert.ok(sameBytes(loaded, array));
    }),
    { numRuns: 100 },
  );
});

test('arbitrary bytes after the magic are read or refused with a TensorioError, never anything else', () => {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  const header = fc.oneof(
    fc.uint8Array({ maxLength: 300 }),
    // Mutations of a valid header: much more likely to get deep into the parser.
    fc.tuple(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 3 })).map(([at, value, cut]) => {
      const valid = concat(encodeNpy({ dtype: 'float32', shape: [2, 3], data: new Float32Array(6) }));
      const bytes = valid.slice(0, valid.length - cut * 7);
      if (at < bytes.length) bytes[at] = value;
      return bytes.subarray(6);
    }),
  );
  fc.assert(
    fc.property(header, (rest) => {
      const bytes = concat([new Uint8Array(magic), rest]);
      try {
        const array = decodeNpy(bytes);
        assert.ok(array.data.byteLength >= 0);
      } catch (error) {
        assert.ok(error instanceof TensorioError, `unexpected ${String(error)}`);
      }
    }),
    { numRuns: 5000 },
  );
});
