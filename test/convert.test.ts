/**
 * Conversions: native and TypeScript paths agree with NumPy's astype, bit for bit. Internal on
 * purpose: halfToNumber/numberToHalf (src/convert.ts), the scalar kernels the public ones use.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';

import { byteswap, ndarray, readNpy, TensorioError, toBfloat16, toFloat16, toFloat32, toFloat64, writeNpy } from '../src/index.js';
import { halfToNumber, numberToHalf } from '../src/convert.js';
import { runPython, tempDir } from './helpers.js';

const dir = tempDir('convert');

describe('conversions against NumPy', () => {
  test('float16 → float32 for all 65,536 bit patterns, and float32 → float16 rounding', async () => {
    const bits = new Uint16Array(65536).map((_, i) => i);
    const singles = toFloat32(ndarray(bits, [65536], 'float16')).data as Float32Array;
    // Values around every rounding boundary, plus overflow and subnormal ranges.
    const probes = new Float32Array(4096);
    for (let i = 0; i < probes.length; i++) probes[i] = (i % 2 ? -1 : 1) * 2 ** ((i % 64) - 30) * (1 + ((i * 2654435761) % 4096) / 4096);
    probes.set([65504, 65520, 65519.99, 1e-8, 6e-8, 3e-8, 2.98e-8, NaN, Infinity, -Infinity, 0, -0], 0);
    const halves = toFloat16(ndarray(probes)).data as Uint16Array;
    const file16 = path.join(dir, 'h.npy');
    const file32 = path.join(dir, 'p.npy');
    await writeNpy(file16, ndarray(halves, [halves.length], 'float16'));
    await writeNpy(file32, ndarray(probes));
    const out = path.join(dir, 'numpy.npy');
    runPython(
      `import sys, numpy as np
bits = np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float32)
np.save(sys.argv[1], bits)
p = np.load(sys.argv[2]); h = np.load(sys.argv[3])
ref = p.astype(np.float16)
same = (ref.view(np.uint16) == h.view(np.uint16)) | (np.isnan(ref) & np.isnan(h))
assert same.all(), (np.nonzero(~same)[0][:5], p[~same][:5], ref[~same][:5], h[~same][:5])`,
      [out, file32, file16],
    );
    const reference = (await readNpy(out)).data as Float32Array;
    for (let i = 0; i < 65536; i++) {
      if (Number.isNaN(reference[i])) assert.ok(Number.isNaN(singles[i]), `bits ${i}`);
      else assert.equal(singles[i], reference[i], `bits ${i}`);
    }
  });

  test('integers and float64 → float32 round once, like NumPy (int64 past 2^53 included)', async () => {
    const int64 = new BigInt64Array([0n, 1n, -1n, 2n ** 53n + 1n, 2n ** 62n + 2n ** 38n + 1n, -(2n ** 63n), 2n ** 63n - 1n, 16777217n, 36028797018963971n]);
    const f64 = new Float64Array([0.1, 1 / 3, 3.4028235677973366e38, 1e-46, -2.5, 16777217]);
    const i32 = new Int32Array([2 ** 31 - 1, -(2 ** 31), 16777217, 16777219]);
    const u64 = new BigUint64Array([2n ** 64n - 1n, 2n ** 63n + 2n ** 39n + 1n]);
    const cases = { int64, f64, i32, u64 };
    for (const [name, data] of Object.entries(cases)) await writeNpy(path.join(dir, `${name}.npy`), ndarray(data));
    const script = `import sys, numpy as np, json
print(json.dumps({n: np.load(sys.argv[1] + '/' + n + '.npy').astype(np.float32).view(np.uint32).tolist() for n in ['int64','f64','i32','u64']}))`;
    const expected = JSON.parse(runPython(script, [dir])) as Record<string, number[]>;
    for (const [name, data] of Object.entries(cases)) {
      const converted = toFloat32(ndarray(data)).data as Float32Array;
      const got = [...new Uint32Array(converted.buffer, converted.byteOffset, converted.length)];
      assert.deepEqual(got, expected[name], name);
    }
  });
});

describe('conversion properties', () => {
  test('float16 → float32 → float16 is the identity for every non-NaN pattern', () => {
    const bits = new Uint16Array(65536).map((_, i) => i);
    const back = toFloat16(toFloat32(ndarray(bits, [65536], 'float16'))).data as Uint16Array;
    for (let i = 0; i < 65536; i++) {
      if (Number.isNaN(halfToNumber(i))) assert.ok(Number.isNaN(halfToNumber(back[i] as number)));
      else assert.equal(back[i], i);
    }
  });

  test('the TypeScript float32 → float16 matches the native (or itself) for random floats', () => {
    fc.assert(
      fc.property(fc.float({ noNaN: true }), (value) => {
        const native = (toFloat16(ndarray(new Float32Array([value]))).data as Uint16Array)[0];
        assert.equal(numberToHalf(value), native);
      }),
      { numRuns: 2000 },
    );
  });

  test('bfloat16 rounds to nearest even and keeps NaN', () => {
    const input = new Float32Array([1, 1.00390625, 1.01171875, -3.5, NaN, Infinity, 3.3895314e38]);
    const bf = toBfloat16(ndarray(input)).data as Uint16Array;
    assert.deepEqual([...bf.slice(0, 4)], [0x3f80, 0x3f80, 0x3f82, 0xc060]);
    assert.ok((bf[4] as number & 0x7fff) > 0x7f80);
    assert.equal(bf[5], 0x7f80);
    const back = toFloat32(ndarray(bf, [bf.length], 'bfloat16')).data as Float32Array;
    assert.equal(back[0], 1);
    assert.equal(back[3], -3.5);
  });

  test('float8 decode, bool and float64 conversions keep shape and order', () => {
    const e4m3 = toFloat32(ndarray(new Uint8Array([0x38, 0x7e, 0x7f, 0x01]), [2, 2], 'float8_e4m3fn'));
    assert.deepEqual([...(e4m3.data as Float32Array)].slice(0, 2), [1, 448]);
    assert.ok(Number.isNaN((e4m3.data as Float32Array)[2]));
    assert.equal((e4m3.data as Float32Array)[3], 2 ** -9);
    const e5m2 = toFloat32(ndarray(new Uint8Array([0x3c, 0x7c]), [2], 'float8_e5m2'));
    assert.deepEqual([...(e5m2.data as Float32Array)], [1, Infinity]);
    const f = { ...ndarray(new Uint8Array([1, 0, 1, 1]), [2, 2], 'bool'), order: 'F' as const };
    const converted = toFloat64(f);
    assert.equal(converted.order, 'F');
    assert.deepEqual([...(converted.data as Float64Array)], [1, 0, 1, 1]);
    assert.throws(() => toFloat32(ndarray(new Float32Array(2), [1], 'complex64')), (e: unknown) => e instanceof TensorioError && e.code === 'ERR_UNSUPPORTED_DTYPE');
  });

  test('byteswap reverses each item in place and refuses bad sizes', () => {
    const data = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
    byteswap(data, 4);
    assert.deepEqual([...data], [4, 3, 2, 1, 8, 7, 6, 5]);
    byteswap(data, 8);
    assert.deepEqual([...data], [5, 6, 7, 8, 1, 2, 3, 4]);
    assert.throws(() => byteswap(data, 3), (e: unknown) => e instanceof TensorioError && e.code === 'ERR_INVALID_ARGUMENT');
    assert.throws(() => byteswap(new Uint8Array(3), 2), (e: unknown) => e instanceof TensorioError);
  });
});

test('temporary files are cleaned up', () => {
  assert.equal(fs.readdirSync(dir).some((n) => n.endsWith('.tensorio-tmp')), false);
});
