/** .npy reading and writing: header variants, every error code, truncation, openNpy. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';

import { TensorioError, asCOrder, decodeNpy, encodeNpyHeader, isMapped, ndarray, ones, openNpy, parseNpyHeader, readNpy, readNpySync, unmap, writeNpy, writeNpySync, zeros, type ErrorCode, type NdArray } from '../../../src/index.js';
import { expectCode } from '../../expect-code.js';
import { NATIVE_MODE, tempDir } from '../../helpers.js';

const dir = tempDir('npy');
let counter = 0;
const tmp = (name = 'a.npy'): string => path.join(dir, `${counter++}-${name}`);

/** A .npy file from a header dict literal and raw data, with NumPy's v1 framing. */
function rawNpy(dict: string, data: Uint8Array = new Uint8Array(0), version = 1, align = 64): Uint8Array {
  const lengthBytes = version === 1 ? 2 : 4;
  const textLength = dict.length + 1;
  const padding = (align - ((8 + lengthBytes + textLength) % align)) % align;
  const headerLength = textLength + padding;
  const text = Buffer.from(dict + ' '.repeat(padding) + '\n', version === 3 ? 'utf8' : 'latin1');
  const out = new Uint8Array(8 + lengthBytes + text.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  const view = new DataView(out.buffer);
  if (version === 1) view.setUint16(8, text.length, true);
  else view.setUint32(8, text.length, true);
  assert.equal(text.length, headerLength);
  out.set(text, 8 + lengthBytes);
  out.set(data, 8 + lengthBytes + text.length);
  return out;
}

function f64Bytes(values: number[], bigEndian = false): Uint8Array {
  const out = new Uint8Array(values.length * 8);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => view.setFloat64(i * 8, v, !bigEndian));
  return out;
}


function writeRaw(bytes: Uint8Array, name?: string): string {
  const file = tmp(name);
  fs.writeFileSync(file, bytes);
  return file;
}

describe('header parsing', () => {
  test('accepts the header variants real writers produce', () => {
    const variants: Array<[string, number[], boolean]> = [
      ["{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", [2], false],
      ["{'descr': '<f8', 'fortran_order': False, 'shape': (2L,), }", [2], false], // Python 2 on Win64
      ["{'descr': '<f8', 'fortran_order': True, 'shape': (1, 2)}", [1, 2], true], // no trailing comma
      ["{'descr':'<f8','fortran_order':False,'shape':(2,)}", [2], false], // no spaces
      ['{"descr": "<f8", "fortran_order": False, "shape": (2,)}', [2], false], // double quotes
      ["{'shape': (2,), 'fortran_order': False, 'descr': '<f8'}", [2], false], // any key order
      ["{'descr': '<f8', 'fortran_order': False, 'shape': (1,2,), }", [1, 2], false], // npyjs style
    ];
    for (const [dict, shape, fortran] of variants) {
      const header = parseNpyHeader(rawNpy(dict, f64Bytes(new Array(shape.reduce((a, b) => a * b, 1)).fill(1))));
      assert.deepEqual(header.shape, shape, dict);
      assert.equal(header.fortranOrder, fortran, dict);
      assert.equal(header.dtype, 'float64');
    }
  });

  test('reads versions 2.0 and 3.0 and 16-byte aligned headers', () => {
    for (const [version, align] of [[1, 16], [2, 64], [3, 64]] as const) {
      const bytes = rawNpy("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", f64Bytes([1, 2, 3]), version, align);
      const array = decodeNpy(bytes);
      assert.deepEqual([...(array.data as Float64Array)], [1, 2, 3]);
      assert.deepEqual(parseNpyHeader(bytes).version, [version, 0]);
    }
  });

  test('byte orders <, >, | and = all read as native values', () => {
    const le = rawNpy("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", f64Bytes([1.5, -2]));
    const be = rawNpy("{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }", f64Bytes([1.5, -2], true));
    const native = rawNpy("{'descr': '=f8', 'fortran_order': False, 'shape': (2,), }", f64Bytes([1.5, -2]));
    const bytes = rawNpy("{'descr': '|u1', 'fortran_order': False, 'shape': (2,), }", new Uint8Array([7, 9]));
    for (const file of [le, be, native]) assert.deepEqual([...(decodeNpy(file).data as Float64Array)], [1.5, -2]);
    assert.deepEqual([...(decodeNpy(bytes).data as Uint8Array)], [7, 9]);
  });

  test('0-d and empty arrays', () => {
    const scalar = decodeNpy(rawNpy("{'descr': '<i8', 'fortran_order': False, 'shape': (), }", new Uint8Array(new BigInt64Array([-5n]).buffer)));
    assert.deepEqual(scalar.shape, []);
    assert.deepEqual([...(scalar.data as BigInt64Array)], [-5n]);
    const empty = decodeNpy(rawNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }"));
    assert.deepEqual(empty.shape, [0, 3]);
    assert.equal(empty.data.length, 0);
  });
});

describe('one test per error code', () => {
  test('ERR_BAD_MAGIC', async () => {
    const file = writeRaw(new TextEncoder().encode('PK\x03\x04 this is a zip, not a .npy file'));
    await expectCode(() => readNpy(file), 'ERR_BAD_MAGIC', /expected the magic/);
    const error = await expectCode(() => readNpySync(file), 'ERR_BAD_MAGIC');
    assert.equal(error.path, file);
  });

  test('ERR_UNSUPPORTED_VERSION', async () => {
    const bytes = rawNpy("{'descr': '<f8', 'fortran_order': False, 'shape': (0,), }");
    bytes[6] = 4;
    await expectCode(() => readNpy(writeRaw(bytes)), 'ERR_UNSUPPORTED_VERSION', /4\.0/);
  });

  test('ERR_HEADER_TOO_LARGE, with the limit as an option', async () => {
    const dict = `{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }${' '.repeat(20000)}`;
    const file = writeRaw(rawNpy(dict, f64Bytes([4]), 2));
    await expectCode(() => readNpy(file), 'ERR_HEADER_TOO_LARGE', /maxHeaderSize/);
    const array = await readNpy(file, { maxHeaderSize: 30000 });
    assert.deepEqual([...(array.data as Float64Array)], [4]);
    // A hostile length is refused before anything of that size is allocated.
    const hostile = rawNpy("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", f64Bytes([1]), 2);
    new DataView(hostile.buffer).setUint32(8, 0xffffffff, true);
    await expectCode(() => readNpy(writeRaw(hostile), { maxHeaderSize: 2 ** 32 }), 'ERR_TRUNCATED');
  });

  test('ERR_BAD_HEADER for malformed dicts', async () => {
    const bad = [
      "{'descr': '<f8', 'fortran_order': False}", // missing key
      "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), 'extra': 1}",
      "{'descr': '<f8', 'fortran_order': 'no', 'shape': (2,)}",
      "{'descr': '<f8', 'fortran_order': False, 'shape': [2]}", // list, not tuple
      "{'descr': '<f8', 'fortran_order': False, 'shape': (-1,)}",
      "{'descr': '<f8', 'fortran_order': False, 'shape': (2.5,)}",
      "{'descr': '<f8', 'fortran_order': False, 'shape': (2,)",
      "__import__('os').system('echo pwned')",
      "{'descr': '<f8', 'fortran_order': False, 'shape': (2,)} trailing",
      '[' .repeat(500),
    ];
    for (const dict of bad) {
      await expectCode(() => readNpy(writeRaw(rawNpy(dict, f64Bytes([1, 2])))), 'ERR_BAD_HEADER');
    }
  });

  test('ERR_UNSUPPORTED_DTYPE names the descr', async () => {
    const cases: Array<[string, RegExp]> = [
      ["[('a', '<i4'), ('b', '<f4')]", /structured/],
      ["'<U5'", /'<U5'.*string/],
      ["'|S3'", /string/],
      ["'<M8[ns]'", /datetime/],
      ["'|O'", /allowPickle/],
      ["'<f16'", /'<f16'/],
      ["'|V8'", /void/],
    ];
    for (const [descr, message] of cases) {
      const file = writeRaw(rawNpy(`{'descr': ${descr}, 'fortran_order': False, 'shape': (1,), }`, new Uint8Array(16)));
      await expectCode(() => readNpy(file), 'ERR_UNSUPPORTED_DTYPE', message);
    }
    await expectCode(() => writeNpy(tmp(), zeros([2], 'bfloat16')), 'ERR_UNSUPPORTED_DTYPE', /NumPy has no bfloat16/);
  });

  test('ERR_TRUNCATED names where the file ends', async () => {
    const full = rawNpy("{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }", f64Bytes([1, 2, 3, 4]));
    const error = await expectCode(() => readNpy(writeRaw(full.subarray(0, full.length - 1))), 'ERR_TRUNCATED', /data/);
    assert.match(error.message, /32 bytes/);
  });

  test('ERR_BAD_VALUE for bool bytes other than 0 and 1', async () => {
    const file = writeRaw(rawNpy("{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", new Uint8Array([0, 1, 7])));
    await expectCode(() => readNpy(file), 'ERR_BAD_VALUE', /byte 7 at element 2/);
  });

  test('ERR_TOO_LARGE for shapes whose size overflows', async () => {
    const file = writeRaw(rawNpy("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }"));
    await expectCode(() => readNpy(file), 'ERR_TOO_LARGE');
  });

  test('ERR_INVALID_ARGUMENT and ERR_SHAPE_MISMATCH for bad arrays to write', async () => {
    await expectCode(() => writeNpy(tmp(), { dtype: 'float32', shape: [2], data: new Float64Array(2) }), 'ERR_INVALID_ARGUMENT', /Float32Array/);
    await expectCode(() => writeNpy(tmp(), { dtype: 'float32', shape: [3], data: new Float32Array(2) }), 'ERR_SHAPE_MISMATCH', /needs 3/);
    await expectCode(() => openNpy(tmp(), { mode: 'w+' }), 'ERR_INVALID_ARGUMENT', /dtype and shape/);
  });

  test('ERR_NOT_FOUND, ERR_IS_DIRECTORY and ERR_PERMISSION from the file system', async () => {
    await expectCode(() => readNpy(path.join(dir, 'missing.npy')), 'ERR_NOT_FOUND', /missing\.npy/);
    await expectCode(() => readNpySync(dir), 'ERR_IS_DIRECTORY');
    await expectCode(() => writeNpy(path.join(dir, 'no-such-folder', 'x.npy'), ones([1])), 'ERR_NOT_FOUND');
    if (process.getuid?.() !== 0) {
      const locked = path.join(dir, 'locked');
      fs.mkdirSync(locked, { mode: 0o500 });
      await expectCode(() => writeNpy(path.join(locked, 'x.npy'), ones([1])), 'ERR_PERMISSION');
    } else {
      // Root ignores folder permissions: a read-only bind is not available, so use a
      // file in place of the folder, which fails for everyone.
      const notDir = writeRaw(new Uint8Array(1), 'plain-file');
      await expectCode(() => writeNpy(path.join(notDir, 'x.npy'), ones([1])), 'ERR_NOT_FOUND');
    }
  });

  test('ERR_CLOSED after openNpy close', () => {
    const map = openNpy(tmp(), { mode: 'w+', dtype: 'float32', shape: [2] });
    map.close();
    assert.throws(() => map.flush(), (e: unknown) => e instanceof TensorioError && e.code === 'ERR_CLOSED');
  });
});

describe('truncation', () => {
  test('a valid file cut at every byte is refused with ERR_TRUNCATED, mapped or not', async () => {
    const full = rawNpy("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", f64Bytes([1, 2, 3]));
    const file = tmp();
    for (let length = 0; length < full.length; length++) {
      fs.writeFileSync(file, full.subarray(0, length));
      for (const mmap of [false, true]) {
        await expectCode(() => readNpy(file, { mmap }), 'ERR_TRUNCATED');
        await expectCode(() => readNpySync(file, { mmap }), 'ERR_TRUNCATED');
      }
    }
    fs.writeFileSync(file, full);
    assert.deepEqual([...((await readNpy(file, { mmap: true })).data as Float64Array)], [1, 2, 3]);
  });
});

describe('reading and writing', () => {
  test('round trip every NumPy dtype, sync and async, mapped and eager', async () => {
    const arrays: NdArray[] = [
      ndarray(new Uint8Array([0, 1, 1]), [3], 'bool'),
      ndarray(new Int8Array([-128, 0, 127]), [3]),
      ndarray(new Uint8Array([0, 255]), [2]),
      ndarray(new Int16Array([-32768, 32767]), [2]),
      ndarray(new Uint16Array([65535, 1]), [2]),
      ndarray(new Int32Array([-(2 ** 31), 2 ** 31 - 1]), [2]),
      ndarray(new Uint32Array([2 ** 32 - 1, 0]), [2]),
      ndarray(new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n]), [2]),
      ndarray(new BigUint64Array([2n ** 64n - 1n, 0n]), [2]),
      ndarray(new Uint16Array([0x3c00, 0x7c00, 0xfe00]), [3], 'float16'),
      ndarray(new Float32Array([1.5, -0, Infinity, NaN]), [2, 2]),
      ndarray(new Float64Array([Math.PI, -1e308, 5e-324]), [3, 1]),
      ndarray(new Float32Array([1, 2, 3, 4]), [2], 'complex64'),
      ndarray(new Float64Array([1, -2, 3.5, 4]), [2, 1], 'complex128'),
    ];
    for (const array of arrays) {
      const file = tmp();
      await writeNpy(file, array);
      for (const mmap of [false, true]) {
        for (const loaded of [await readNpy(file, { mmap }), readNpySync(file, { mmap })]) {
          assert.equal(loaded.dtype, array.dtype);
          assert.deepEqual(loaded.shape, array.shape);
          assert.deepEqual(loaded.data, array.data);
          assert.equal(loaded.mapped, mmap && NATIVE_MODE);
          if (mmap && !NATIVE_MODE) assert.match(loaded.copyReason ?? '', /native addon/);
        }
      }
      writeNpySync(file, array);
      assert.deepEqual((await readNpy(file)).data, array.data);
    }
  });

  test('Fortran order is kept as stored and asCOrder copies it to C order', async () => {
    // 2x3 matrix [[1,2,3],[4,5,6]] stored column-major.
    const fortran: NdArray = { dtype: 'float64', shape: [2, 3], data: new Float64Array([1, 4, 2, 5, 3, 6]), order: 'F' };
    const file = tmp();
    await writeNpy(file, fortran);
    assert.match(fs.readFileSync(file).subarray(0, 128).toString('latin1'), /'fortran_order': True/);
    for (const mmap of [false, true]) {
      const loaded = await readNpy(file, { mmap });
      assert.equal(loaded.order, 'F');
      assert.deepEqual([...(loaded.data as Float64Array)], [1, 4, 2, 5, 3, 6]);
      const c = asCOrder(loaded);
      assert.equal(c.order, 'C');
      assert.deepEqual([...(c.data as Float64Array)], [1, 2, 3, 4, 5, 6]);
    }
    // Complex elements move as pairs; 3-d index order.
    const complex: NdArray = { dtype: 'complex64', shape: [2, 2], data: new Float32Array([1, 10, 3, 30, 2, 20, 4, 40]), order: 'F' };
    assert.deepEqual([...(asCOrder(complex).data as Float32Array)], [1, 10, 2, 20, 3, 30, 4, 40]);
    const cube: NdArray = { dtype: 'int32', shape: [2, 2, 2], data: new Int32Array([0, 4, 2, 6, 1, 5, 3, 7]), order: 'F' };
    assert.deepEqual([...(asCOrder(cube).data as Int32Array)], [0, 1, 2, 3, 4, 5, 6, 7]);
  });

  test('big-endian data asked to be mapped is read and converted, and says so', async () => {
    const file = writeRaw(rawNpy("{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }", f64Bytes([3, 4], true)));
    const loaded = await readNpy(file, { mmap: true });
    assert.equal(loaded.mapped, false);
    assert.match(loaded.copyReason ?? '', /big-endian/);
    assert.deepEqual([...(loaded.data as Float64Array)], [3, 4]);
  });

  test('unaligned data asked to be mapped is read, and says so', async () => {
    // 82-byte data offset (NPZ.jl's hand-made v2 file): not a multiple of 8.
    const file = writeRaw(rawNpy("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", f64Bytes([5, 6]), 1, 2));
    const loaded = readNpySync(file, { mmap: true });
    assert.equal(loaded.mapped, false);
    assert.match(loaded.copyReason ?? '', NATIVE_MODE ? /not a multiple/ : /not a multiple|native addon/);
    assert.deepEqual([...(loaded.data as Float64Array)], [5, 6]);
  });

  test('a failed write leaves the old file intact and no temporary file behind', async () => {
    const file = tmp();
    await writeNpy(file, ones([4]));
    const before = fs.readFileSync(file);
    await expectCode(() => writeNpy(file, { dtype: 'float32', shape: [5], data: new Float32Array(4) }), 'ERR_SHAPE_MISMATCH');
    assert.deepEqual(fs.readFileSync(file), before);
    assert.deepEqual(fs.readdirSync(path.dirname(file)).filter((n) => n.includes('tensorio-tmp')), []);
  });

  test('stale temporary files of dead writers are removed on the next write', async () => {
    const file = tmp();
    const stale = path.join(path.dirname(file), `.${path.basename(file)}.999999999.deadbeef.tensorio-tmp`);
    fs.writeFileSync(stale, 'half a file');
    await writeNpy(file, ones([1]), { fsync: false });
    assert.equal(fs.existsSync(stale), false);
  });

  test('writing over a mapped file keeps the mapping reading the old data', async () => {
    const file = tmp();
    await writeNpy(file, ndarray(new Float32Array([1, 2, 3])));
    const mapped = await readNpy(file, { mmap: true });
    await writeNpy(file, ndarray(new Float32Array([7, 8, 9])));
    assert.deepEqual([...(mapped.data as Float32Array)], [1, 2, 3]);
    assert.deepEqual([...((await readNpy(file)).data as Float32Array)], [7, 8, 9]);
  });

  test('the written header is NumPy\'s, padded to 64 bytes, version 2.0 when it must be', () => {
    const header = encodeNpyHeader('float32', [2, 3], false);
    assert.equal(header.length % 64, 0);
    assert.equal(
      Buffer.from(header.subarray(10)).toString('latin1').trimEnd(),
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
    );
    const long = encodeNpyHeader('float32', new Array(25000).fill(1), false);
    assert.equal(long[6], 2);
    assert.equal(long.length % 64, 0);
    assert.deepEqual(parseNpyHeader(long, 'x', { maxHeaderSize: 1e6 }, long.length).shape.length, 25000);
  });
});

describe('unmap', () => {
  test('unmap releases a mapping now and leaves views empty, not dangling', async () => {
    const file = tmp();
    await writeNpy(file, ones([1024]));
    const loaded = await readNpy(file, { mmap: true });
    if (!NATIVE_MODE) {
      assert.equal(isMapped(loaded.data.buffer), false);
      assert.equal(unmap(loaded.data.buffer), false);
      return;
    }
    assert.equal(isMapped(loaded.data.buffer), true);
    assert.equal(unmap(loaded.data.buffer), true);
    assert.equal(loaded.data.length, 0);
    assert.equal(loaded.data[0], undefined);
    assert.equal(unmap(loaded.data.buffer), false);
  });
});

describe('openNpy', () => {
  test("'w+' creates a file that appears complete at its path on flush", () => {
    const file = tmp();
    const map = openNpy(file, { mode: 'w+', dtype: 'float64', shape: [2, 3] });
    assert.equal(map.mapped, NATIVE_MODE);
    (map.data as Float64Array).set([1, 2, 3, 4, 5, 6]);
    assert.equal(fs.existsSync(file), false, 'nothing at the path before the first flush');
    map.flush();
    assert.deepEqual([...(readNpySync(file).data as Float64Array)], [1, 2, 3, 4, 5, 6]);
    (map.data as Float64Array)[0] = 42;
    map.close();
    assert.equal((readNpySync(file).data as Float64Array)[0], 42);
    map.close(); // idempotent
  });

  test("'r+' modifies an existing file in place", async () => {
    const file = tmp();
    await writeNpy(file, ndarray(new Int32Array([1, 2, 3, 4]), [2, 2]));
    const map = openNpy(file, { mode: 'r+' });
    assert.deepEqual(map.shape, [2, 2]);
    (map.data as Int32Array)[3] = -7;
    map.flush();
    assert.deepEqual([...(readNpySync(file).data as Int32Array)], [1, 2, 3, -7]);
    map.close();
  });

  test("'w+' Fortran order and 'r+' of a big-endian file (rewritten little-endian)", () => {
    const file = tmp();
    const map = openNpy(file, { mode: 'w+', dtype: 'int16', shape: [2, 2], order: 'F' });
    (map.data as Int16Array).set([1, 3, 2, 4]);
    map.close();
    const loaded = readNpySync(file);
    assert.equal(loaded.order, 'F');
    assert.deepEqual([...(asCOrder(loaded).data as Int16Array)], [1, 2, 3, 4]);

    const be = writeRaw(rawNpy("{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }", f64Bytes([1, 2], true)));
    const swapped = openNpy(be, { mode: 'r+' });
    assert.equal(swapped.mapped, false);
    (swapped.data as Float64Array)[1] = 9;
    swapped.close();
    assert.deepEqual([...(readNpySync(be).data as Float64Array)], [1, 9]);
  });
});
