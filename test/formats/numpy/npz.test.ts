/**
 * .npz archives: NumPy both ways, mapping, laziness, every error code, truncation, round trips.
 * Internal on purpose: AtomicWriter and ZipWriter (src/io/atomic-writer.ts, src/formats/zip.ts) build archives
 * the public writer cannot (forced ZIP64, odd layouts); bytesOf compares bytes.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { describe, test } from 'node:test';
import * as fc from 'fast-check';

import { TensorioError, encodeNpy, ndarray, openNpz, readNpz, writeNpz, type DType, type NdArray } from '../../../src/index.js';
import { AtomicWriter } from '../../../src/io/atomic-writer.js';
import { bytesOf } from '../../../src/ndarray.js';
import { ZipWriter } from '../../../src/formats/zip.js';
import { expectCode } from '../../expect-code.js';
import { NATIVE_MODE, numpyPythons, runPython, runPythonWith, tempDir } from '../../helpers.js';
import { DESCRIBE } from './npz-describe.js';

const dir = tempDir('npz');
let counter = 0;
const tmp = (name = 'a.npz'): string => path.join(dir, `${counter++}-${name}`);


const values = (a: NdArray | undefined): unknown[] => Array.from((a?.data ?? []) as ArrayLike<unknown>);
const hex = (a: NdArray): string => Buffer.from(bytesOf(a.data)).toString('hex');

const sha = (a: NdArray): string => createHash('sha256').update(bytesOf(a.data)).digest('hex');

const DTYPES: DType[] = ['bool', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'float16', 'float32', 'float64', 'complex64', 'complex128'];

for (const { label, python } of numpyPythons()) {
  const run = (script: string, args: string[] = []): string => runPythonWith(python(), script, args);
  const runJson = <T>(script: string, args: string[] = []): T => JSON.parse(run(script, args)) as T;
  describe(`NumPy both ways, ${label}`, () => {
    const MAKE = `import numpy as np, sys
rng = np.random.default_rng(1)
arrays = {
  'b': rng.integers(0, 2, 7).astype(bool), 'i1': rng.integers(-100, 100, (3, 4)).astype('i1'), 'u8': rng.integers(0, 2**63, 5, dtype=np.uint64),
  'f2': rng.standard_normal(9).astype('<f2'), 'f4': rng.standard_normal((16, 33)).astype('f4'), 'c16': (rng.standard_normal(4) + 1j).astype('c16'),
  'big': rng.standard_normal(300_000), 'fort': np.asfortranarray(rng.standard_normal((5, 6))), 'be': np.arange(6, dtype='>i4'),
  'empty': np.zeros((0, 2), 'f4'), 'scalar': np.array(3.5),
}
np.savez(sys.argv[1], **arrays)
np.savez_compressed(sys.argv[2], **arrays)
np.savez(sys.argv[3], arrays['f4'], arrays['big'])`;

    test('np.savez and np.savez_compressed read by tensorio, mapped and not', async () => {
      const stored = tmp('np-stored.npz');
      const compressed = tmp('np-compressed.npz');
      const positional = tmp('np-positional.npz');
      run(MAKE, [stored, compressed, positional]);
      const want = runJson<Record<string, Record<string, { descr: string; shape: number[]; fortran: boolean; sha: string }>>>(DESCRIBE, [stored, compressed, positional]);
      for (const file of [stored, compressed, positional]) {
        for (const mmap of [false, true]) {
          const got = await readNpz(file, { mmap });
          assert.deepEqual(Object.keys(got), Object.keys(want[file] as object));
          for (const [key, array] of Object.entries(got)) {
            const w = (want[file] as Record<string, { shape: number[]; fortran: boolean; sha: string }>)[key] as { shape: number[]; fortran: boolean; sha: string };
            assert.deepEqual(array.shape, w.shape, `${file} ${key}`);
            assert.equal(sha(array), w.sha, `${file} ${key}`);
            if (!mmap) assert.equal(array.mapped, false);
            else if (file === compressed) assert.equal(array.copyReason, 'the member is compressed');
            else if (array.mapped === false) assert.ok(array.copyReason, `${key} has no copyReason`);
          }
          // NumPy's stored members are not aligned: float64 data lands on an odd offset.
          if (mmap && file === stored) {
            assert.equal(got.big?.mapped, false);
            assert.match(got.big?.copyReason ?? '', NATIVE_MODE ? /not a multiple of the float64 size 8/ : /native addon/);
          }
        }
      }
    });

    test('tensorio archives (stored, deflated at levels 1, 6, 9) read by np.load and Python zipfile', async () => {
      const arrays: Record<string, NdArray> = {};
      for (const [i, dtype] of DTYPES.entries()) {
        const a = ndarray(new Uint8Array(24 * [1, 1, 1, 2, 2, 4, 4, 8, 8, 2, 4, 8, 8, 16][i]!).map((_, j) => (j * 37 + i) % (dtype === 'bool' ? 2 : 256)) as unknown as Uint8Array, [24 * [1, 1, 1, 2, 2, 4, 4, 8, 8, 2, 4, 8, 8, 16][i]!], 'uint8');
        const { data } = a;
        const { array: ctor, lanes } = (await import('../../../src/dtype.js')).dtypeInfo(dtype);
        const typed = new ctor(data.buffer, 0, data.byteLength / ctor.BYTES_PER_ELEMENT);
        arrays[`m_${dtype}`] = { dtype, shape: [2, typed.length / lanes / 2], data: typed };
      }
      arrays['fortran'] = { ...ndarray(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]), order: 'F' };
      arrays['scalar'] = ndarray(new Float64Array([2.5]), []);
      arrays['empty'] = ndarray(new Int32Array(0), [0, 3]);
      arrays['dir/name é'] = ndarray(new Float32Array(1000).map((_, i) => Math.sin(i)), [10, 100]);
      for (const compress of [false, 1, true, 9] as const) {
        const file = tmp('ours.npz');
        await writeNpz(file, arrays, { compress });
        const seen = runJson<Record<string, Record<string, { descr: string; shape: number[]; fortran: boolean; sha: string }>>>(DESCRIBE, [file]);
        const members = seen[file] as Record<string, { shape: number[]; fortran: boolean; sha: string }>;
        assert.deepEqual(Object.keys(members), Object.keys(arrays));
        for (const [key, array] of Object.entries(arrays)) {
          assert.deepEqual(members[key]?.shape, array.shape, key);
          assert.equal(members[key]?.sha, sha(array), key);
          assert.equal(members[key]?.fortran, key === 'fortran', key);
        }
        assert.equal(run(`import zipfile, sys\nprint(zipfile.ZipFile(sys.argv[1]).testzip())`, [file]).trim(), 'None');
        const back = await readNpz(file);
        for (const [key, array] of Object.entries(arrays)) assert.equal(hex(back[key] as NdArray), hex(array), key);
      }
    });

    test('a list is written as arr_0, arr_1, ... like np.savez(path, *arrays)', async () => {
      const file = tmp();
      await writeNpz(file, [ndarray(new Float32Array([1, 2])), ndarray(new Int8Array([3]))]);
      assert.equal(run(`import numpy as np, sys\nd = np.load(sys.argv[1])\nprint(d.files, d['arr_0'].tolist(), d['arr_1'].tolist())`, [file]).trim(), "['arr_0', 'arr_1'] [1.0, 2.0] [3]");
    });

    test('ZIP64 records everywhere (Python writing with tiny limits; tensorio with forceZip64) both ways', async () => {
      const pyFile = tmp('py-zip64.npz');
      run(
        `import zipfile, numpy as np, sys\nzipfile.ZIP64_LIMIT = 8\nzipfile.ZIP_FILECOUNT_LIMIT = 1\nnp.savez(sys.argv[1], a=np.arange(5.0), b=np.arange(3, dtype='i2'))\nnp.savez_compressed(sys.argv[2], a=np.arange(5.0))`,
        [pyFile, `${pyFile}.c.npz`],
      );
      assert.ok(fs.readFileSync(pyFile).includes(Buffer.from([0x50, 0x4b, 0x06, 0x06])), 'Python wrote a ZIP64 end record');
      const got = await readNpz(pyFile);
      assert.deepEqual(values(got.a), [0, 1, 2, 3, 4]);
      assert.deepEqual(values((await readNpz(`${pyFile}.c.npz`)).a), [0, 1, 2, 3, 4]);

      const ours = tmp('ours-zip64.npz');
      const writer = await AtomicWriter.open(ours);
      const zip = new ZipWriter(writer, ours, { forceZip64: true });
      await zip.addStored('a.npy', encodeNpy(ndarray(new Float64Array([1, 2, 3]))));
      await zip.addDeflated('b.npy', encodeNpy(ndarray(new Int16Array([4, 5]))), 6);
      await zip.finish();
      await writer.commit();
      assert.equal(run(`import numpy as np, sys\nd = np.load(sys.argv[1])\nprint(d['a'].tolist(), d['b'].tolist())`, [ours]).trim(), '[1.0, 2.0, 3.0] [4, 5]');
      const back = await readNpz(ours, { mmap: true });
      assert.deepEqual(values(back.a), [1, 2, 3]);
      assert.equal(back.a?.mapped, NATIVE_MODE);
    });
  });
}

describe('mapping and laziness', () => {
  test('stored members written by tensorio are 64-byte aligned and mapped zero-copy from one mapping', async () => {
    const file = tmp();
    const arrays = { a: ndarray(new Float64Array([1, 2, 3])), bb: ndarray(new Float32Array(17).fill(2)), ccc: ndarray(new BigInt64Array([5n])) };
    await writeNpz(file, arrays);
    const got = await readNpz(file, { mmap: true });
    const buffers = new Set(Object.values(got).map((a) => a.data.buffer));
    for (const [key, array] of Object.entries(got)) {
      assert.equal(hex(array), hex(arrays[key as keyof typeof arrays]), key);
      assert.equal(array.data.byteOffset % 64, 0, `${key} data offset ${array.data.byteOffset}`);
      if (NATIVE_MODE) assert.equal(array.mapped, true, key);
      else assert.match(array.copyReason ?? '', /native addon/);
    }
    if (NATIVE_MODE) assert.equal(buffers.size, 1, 'all members are views of one mapping');
  });

  test('openNpz reads only the central directory; get() reads one member', async () => {
    const file = tmp();
    await writeNpz(file, { good: ndarray(new Float32Array([1, 2])), bad: ndarray(new Float32Array([3, 4])) });
    const bytes = fs.readFileSync(file);
    // Corrupt the data of 'bad' (its last float): opening and reading 'good' must not notice.
    const at = bytes.indexOf(Buffer.from(new Float32Array([3, 4]).buffer));
    bytes[at + 7] = (bytes[at + 7] as number) ^ 0xff;
    fs.writeFileSync(file, bytes);
    const archive = await openNpz(file);
    assert.deepEqual(archive.keys(), ['good', 'bad']);
    assert.equal(archive.has('good.npy'), true);
    assert.deepEqual(values(await archive.get('good')), [1, 2]);
    await expectCode(() => archive.get('bad'), 'ERR_CRC_MISMATCH', /'bad\.npy' is corrupt/);
    await expectCode(() => archive.get('nope'), 'ERR_NOT_FOUND_IN_ARCHIVE', /'good', 'bad'/);
    archive.close();
    await expectCode(() => archive.get('good'), 'ERR_CLOSED');
  });

  test('object members need allowPickle', async () => {
    const file = tmp();
    runPython(`import numpy as np, sys\nnp.savez(sys.argv[1], obj=np.array([np.arange(2), np.arange(3)], dtype=object), x=np.arange(2))`, [file]);
    await expectCode(() => readNpz(file), 'ERR_PICKLE_DISALLOWED', /allowPickle/);
    const got = await readNpz(file, { allowPickle: true });
    assert.deepEqual((got.obj as NdArray[]).map((a) => values(a)), [[0n, 1n], [0n, 1n, 2n]]);
  });
});

/** A minimal hand-made zip: one member, stored or deflated, with the given header fields. */
function handZip(member: { name: string; data: Uint8Array; method?: number; size?: number; crc?: number; compressed?: Uint8Array }): Buffer {
  const name = Buffer.from(member.name);
  const body = member.compressed ?? Buffer.from(member.data);
  const crc = member.crc ?? zlib.crc32(member.data);
  const size = member.size ?? member.data.length;
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(20, 4);
  local.writeUInt16LE(member.method ?? 0, 8);
  local.writeUInt32LE(crc, 14);
  local.writeUInt32LE(body.length, 18);
  local.writeUInt32LE(size, 22);
  local.writeUInt16LE(name.length, 26);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt16LE(20, 6);
  central.writeUInt16LE(member.method ?? 0, 10);
  central.writeUInt32LE(crc, 16);
  central.writeUInt32LE(body.length, 20);
  central.writeUInt32LE(size, 24);
  central.writeUInt16LE(name.length, 28);
  const cdOffset = 30 + name.length + body.length;
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(1, 8);
  end.writeUInt16LE(1, 10);
  end.writeUInt32LE(46 + name.length, 12);
  end.writeUInt32LE(cdOffset, 16);
  return Buffer.concat([local, name, body, central, name, end]);
}

const npyBytes = (array: NdArray): Uint8Array => new Uint8Array(Buffer.concat(encodeNpy(array)));

describe('error codes, hand-made bytes', () => {
  const write = (bytes: Uint8Array): string => {
    const file = tmp();
    fs.writeFileSync(file, bytes);
    return file;
  };
  const member = npyBytes(ndarray(new Float32Array([1, 2, 3, 4])));

  test('the hand-made archive itself is valid (NumPy agrees)', async () => {
    const file = write(handZip({ name: 'x.npy', data: member }));
    assert.deepEqual(values((await readNpz(file)).x), [1, 2, 3, 4]);
    assert.equal(runPython(`import numpy as np, sys\nprint(np.load(sys.argv[1])['x'].tolist())`, [file]).trim(), '[1.0, 2.0, 3.0, 4.0]');
  });

  test('ERR_BAD_ZIP: not a zip', async () => {
    await expectCode(() => readNpz(write(new Uint8Array(Buffer.from('this is not a zip archive at all, just text')))), 'ERR_BAD_ZIP', /no end-of-central-directory/);
  });

  test('ERR_BAD_ZIP: unsupported method, encryption', async () => {
    await expectCode(() => readNpz(write(handZip({ name: 'x.npy', data: member, method: 12 }))), 'ERR_BAD_ZIP', /method 12/);
    const encrypted = handZip({ name: 'x.npy', data: member });
    encrypted.writeUInt16LE(1, encrypted.length - 22 - 46 - 5 + 8);
    await expectCode(() => readNpz(write(encrypted)), 'ERR_BAD_ZIP', /encrypted/);
  });

  test('ERR_CRC_MISMATCH', async () => {
    await expectCode(() => readNpz(write(handZip({ name: 'x.npy', data: member, crc: 1234 }))), 'ERR_CRC_MISMATCH', /x\.npy/);
  });

  test('ERR_NOT_FOUND_IN_ARCHIVE', async () => {
    const archive = await openNpz(write(handZip({ name: 'x.npy', data: member })));
    await expectCode(() => archive.get('y'), 'ERR_NOT_FOUND_IN_ARCHIVE', /no member 'y'.*'x'/);
    archive.close();
  });

  test('ERR_TRUNCATED: a member cut short', async () => {
    const whole = handZip({ name: 'x.npy', data: member });
    await expectCode(() => readNpz(write(whole.subarray(0, 100))), 'ERR_TRUNCATED', /cut short/);
  });

  test('ERR_TOO_LARGE: a member over maxMemberSize', async () => {
    await expectCode(() => readNpz(write(handZip({ name: 'x.npy', data: member })), { maxMemberSize: 100 }), 'ERR_TOO_LARGE', /over the limit of 100/);
  });

  test('zip bombs: a member inflating past its declared size, and an impossible claim', async () => {
    const bomb = new Uint8Array(50 << 20); // 50 MiB of zeros deflates to ~50 KiB
    const compressed = zlib.deflateRawSync(bomb);
    const lying = handZip({ name: 'x.npy', data: member, method: 8, size: member.length, compressed });
    const before = process.memoryUsage().arrayBuffers;
    await expectCode(() => readNpz(write(lying)), 'ERR_BAD_ZIP', /inflates to more than its declared 144 bytes/);
    assert.ok(process.memoryUsage().arrayBuffers - before < 40 << 20, 'inflation stopped early');
    const claim = handZip({ name: 'x.npy', data: member, method: 8, size: 2 ** 31, compressed: zlib.deflateRawSync(member) });
    await expectCode(() => readNpz(write(claim)), 'ERR_BAD_ZIP', /more than deflate can produce/);
    const short = handZip({ name: 'x.npy', data: member, method: 8, size: member.length + 10, compressed: zlib.deflateRawSync(member) });
    await expectCode(() => readNpz(write(short)), 'ERR_BAD_ZIP', /inflates to 144 bytes, its header says 154/);
  });

  test('a member lying about a huge size costs only the memory of its real data', async () => {
    const random = new Uint8Array(randomBytes(2 << 20));
    const lying = handZip({ name: 'x.npy', data: member, method: 8, size: 1 << 30, compressed: zlib.deflateRawSync(random) });
    const before = process.memoryUsage().arrayBuffers;
    // The member's first bytes are not a .npy header: found before anything else is inflated.
    await expectCode(() => readNpz(write(lying)), 'ERR_BAD_MAGIC');
    assert.ok(process.memoryUsage().arrayBuffers - before < 200 << 20, 'the claimed gigabyte was not allocated');
  });

  test('random corruption of a valid archive is a TensorioError or a correct read, never anything else', async () => {
    const file = tmp();
    await writeNpz(file, { a: ndarray(new Float32Array([1, 2, 3])), b: ndarray(new Int16Array([4, 5])) });
    const deflated = tmp();
    await writeNpz(deflated, { a: ndarray(new Float64Array(64).map((_, i) => i)) }, { compress: true });
    const originals = [fs.readFileSync(file), fs.readFileSync(deflated)];
    const target = tmp();
    await fc.assert(
      fc.asyncProperty(fc.nat(1), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), fc.boolean(), async (which, edits, mmap) => {
        const bytes = Buffer.from(originals[which] as Buffer);
        for (const [at, value] of edits) bytes[at % bytes.length] = value;
        fs.writeFileSync(target, bytes);
        try {
          await readNpz(target, { mmap });
        } catch (error) {
          assert.ok(error instanceof TensorioError, `not a TensorioError: ${String(error)}`);
        }
      }),
      { numRuns: 300 },
    );
  });

  test('every truncation of a valid archive is ERR_TRUNCATED (even the empty file), never a crash', async () => {
    const file = tmp();
    await writeNpz(file, { a: ndarray(new Float32Array([1, 2])), b: ndarray(new Int8Array([3])) });
    const whole = fs.readFileSync(file);
    const cut = tmp();
    for (let n = 0; n < whole.length; n++) {
      fs.writeFileSync(cut, whole.subarray(0, n));
      for (const mmap of [false, true]) {
        const error = await expectCode(() => readNpz(cut, { mmap }), 'ERR_TRUNCATED');
        assert.ok(error.message.length > 0);
      }
    }
  });

  test('writeNpz refuses bad arguments before creating a file', async () => {
    const file = tmp();
    await expectCode(() => writeNpz(file, { a: ndarray(new Float32Array(2)) }, { compress: 11 }), 'ERR_INVALID_ARGUMENT', /level 0-9/);
    await expectCode(() => writeNpz(file, { a: { dtype: 'bfloat16', shape: [1], data: new Uint16Array(1) } }), 'ERR_UNSUPPORTED_DTYPE', /member 'a'/);
    await expectCode(() => writeNpz(file, { a: { dtype: 'float32', shape: [3], data: new Float32Array(2) } }), 'ERR_SHAPE_MISMATCH');
    assert.equal(fs.existsSync(file), false);
  });
});

describe('property tests', () => {
  test('fast-check: writeNpz then readNpz returns the same arrays, stored or deflated, mapped or not', async () => {
    const dtypeArb = fc.constantFrom<DType>('uint8', 'int16', 'int32', 'float32', 'float64', 'int64');
    const arrayArb = fc.tuple(dtypeArb, fc.array(fc.integer({ min: 0, max: 6 }), { maxLength: 3 }), fc.integer()).map(([dtype, shape, seed]) => {
      const size = shape.reduce((a, b) => a * b, 1);
      const bytes = new Uint8Array(size * { uint8: 1, int16: 2, int32: 4, float32: 4, float64: 8, int64: 8 }[dtype as 'uint8']);
      for (let i = 0; i < bytes.length; i++) bytes[i] = (seed + i * 131) & 0xff;
      const ctor = { uint8: Uint8Array, int16: Int16Array, int32: Int32Array, float32: Float32Array, float64: Float64Array, int64: BigInt64Array }[dtype as 'uint8'];
      return { dtype, shape, data: new ctor(bytes.buffer) } as NdArray;
    });
    await fc.assert(
      fc.asyncProperty(fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), arrayArb, { maxKeys: 5, noNullPrototype: true }), fc.constantFrom(false, true, 1), fc.boolean(), async (arrays, compress, mmap) => {
        const file = tmp();
        await writeNpz(file, arrays, { compress });
        const back = await readNpz(file, { mmap });
        assert.deepEqual(Object.keys(back), Object.keys(arrays));
        for (const [key, array] of Object.entries(arrays)) {
          assert.deepEqual(back[key]?.shape, array.shape);
          assert.equal(back[key]?.dtype, array.dtype);
          assert.equal(hex(back[key] as NdArray), hex(array));
        }
        fs.rmSync(file);
      }),
      { numRuns: 60 },
    );
  });
});
