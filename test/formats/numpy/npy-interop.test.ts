/**
 * .npy interop with real NumPy, both ways: NumPy writes the dtype × shape × byte order ×
 * Fortran-order matrix and tensorio reads it (mapped and eager); tensorio writes the same
 * arrays and NumPy loads them and compares, and the files must equal np.save's byte for byte.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';

import { expectCode } from '../../expect-code.js';

import { dtypeInfo, load, readNpy, readNpySync, writeNpy, type DType, type NdArray } from '../../../src/index.js';
import { NATIVE_MODE, numpyPythons, oraclePython, runPythonWith, tempDir } from '../../helpers.js';

interface MatrixEntry {
  file: string;
  dtype: DType;
  shape: number[];
  fortran: boolean;
  bigEndian: boolean;
  /** The little-endian bytes in stored order, as NumPy holds them. */
  raw: string;
}

const NUMPY_TO_DTYPE: Record<string, DType> = {
  b1: 'bool', i1: 'int8', u1: 'uint8', i2: 'int16', u2: 'uint16', i4: 'int32', u4: 'uint32', i8: 'int64', u8: 'uint64',
  f2: 'float16', f4: 'float32', f8: 'float64', c8: 'complex64', c16: 'complex128',
};

const MATRIX_SCRIPT = String.raw`
import json, sys, os, base64
import numpy as np
out = sys.argv[1]
codes = ['b1','i1','u1','i2','u2','i4','u4','i8','u8','f2','f4','f8','c8','c16']
shapes = [(), (0,), (5,), (3, 4), (2, 3, 4), (1, 7), (4, 0, 2), (2, 1, 3)]
entries = []
for code in codes:
    for shape in shapes:
        n = int(np.prod(shape))
        base = (np.arange(n, dtype=np.float64) * 7.25 - 11).reshape(shape)
        if code == 'b1':
            a = (np.arange(n) % 3 == 0).reshape(shape)
        elif code[0] in 'iu':
            info = np.iinfo(np.dtype(code))
            a = (np.arange(n, dtype=np.int64).reshape(shape) * 37 % (int(info.max) if info.max < 2**62 else 2**62)).astype(code)
            if n >= 2:
                a.flat[0] = info.min
                a.flat[-1] = info.max
        elif code[0] == 'c':
            a = (base + 1j * (base[::-1] if base.ndim else base)).astype(code)
        else:
            a = base.astype(code)
            if n >= 4:
                a.flat[1] = np.nan
                a.flat[2] = np.inf
                a.flat[3] = -0.0
        for order in ['<', '>']:
            if order == '>' and np.dtype(code).itemsize == 1:
                continue
            for fortran in [False, True]:
                b = a.astype(np.dtype(code).newbyteorder(order))
                b = np.asfortranarray(b) if fortran else np.ascontiguousarray(b)
                name = f"{code}_{'x'.join(map(str, shape)) or 'scalar'}_{'be' if order == '>' else 'le'}_{'F' if fortran else 'C'}.npy"
                path = os.path.join(out, name)
                np.save(path, b)
                stored_fortran = b.flags.f_contiguous and not b.flags.c_contiguous
                le = b.astype(np.dtype(code).newbyteorder('<'))
                raw = le.tobytes(order='F' if stored_fortran else 'C')
                entries.append(dict(file=name, code=code, shape=list(b.shape), fortran=bool(stored_fortran),
                                    bigEndian=b.dtype.byteorder == '>', raw=base64.b64encode(raw).decode()))
print(json.dumps(entries))
`;

const CHECK_SCRIPT = String.raw`
import json, sys, os, base64
import numpy as np
ours, theirs, manifest = sys.argv[1], sys.argv[2], json.load(open(sys.argv[3]))
problems = []
for e in manifest:
    mine = os.path.join(ours, e['file'])
    a = np.load(mine)
    expected = np.load(os.path.join(theirs, e['file']))
    code = e['code']
    if a.dtype != np.dtype(code).newbyteorder('<') and a.dtype.itemsize > 1:
        problems.append(f"{e['file']}: dtype {a.dtype.str}")
    if a.shape != expected.shape:
        problems.append(f"{e['file']}: shape {a.shape} != {expected.shape}")
    if a.astype(expected.dtype).tobytes() != expected.tobytes():
        problems.append(f"{e['file']}: values differ")
    # Byte for byte what np.save writes for the little-endian array in the same layout.
    le = expected.astype(expected.dtype.newbyteorder('<'))
    ref = os.path.join(ours, e['file'] + '.ref')
    np.save(ref, le)
    if open(mine, 'rb').read() != open(ref + '.npy', 'rb').read():
        problems.append(f"{e['file']}: file bytes differ from np.save")
print(json.dumps(dict(checked=len(manifest), problems=problems)))
`;

for (const { label, python } of numpyPythons()) {
  describe(`NumPy interop, ${label}`, () => {
    const numpyDir = tempDir('npy-numpy');
    const ourDir = tempDir('npy-ours');
    const manifest = (JSON.parse(runPythonWith(python(), MATRIX_SCRIPT, [numpyDir])) as Array<Omit<MatrixEntry, 'dtype'> & { code: string }>).map((e) => ({
      ...e,
      dtype: NUMPY_TO_DTYPE[e.code] as DType,
    }));

    test('the matrix is complete', () => {
      // 14 dtypes × 8 shapes × (1 or 2 byte orders) × 2 layouts.
      assert.equal(manifest.length, (3 * 1 + 11 * 2) * 8 * 2);
    });

    test('tensorio reads what NumPy writes, mapped and eager, sync and async', async () => {
      let mappedCount = 0;
      for (const entry of manifest) {
        const file = path.join(numpyDir, entry.file);
        const expected = Buffer.from(entry.raw, 'base64');
        for (const mmap of [false, true]) {
          for (const array of [await readNpy(file, { mmap }), readNpySync(file, { mmap })]) {
            assert.equal(array.dtype, entry.dtype, entry.file);
            assert.deepEqual(array.shape, entry.shape, entry.file);
            assert.equal(array.order === 'F', entry.fortran, entry.file);
            const bytes = Buffer.from(array.data.buffer, array.data.byteOffset, array.data.byteLength);
            assert.ok(bytes.equals(expected), `${entry.file} (mmap ${mmap}) values differ`);
            if (mmap && NATIVE_MODE && !entry.bigEndian) {
              assert.equal(array.mapped, true, entry.file);
              mappedCount++;
            } else {
              assert.equal(array.mapped, false, entry.file);
            }
          }
        }
      }
      if (NATIVE_MODE) assert.ok(mappedCount > 100);
    });

    test('NumPy reads what tensorio writes, and the bytes equal np.save', async () => {
      for (const entry of manifest) {
        const info = dtypeInfo(entry.dtype);
        const raw = Buffer.from(entry.raw, 'base64');
        const copy = new Uint8Array(raw.length);
        copy.set(raw);
        const array: NdArray = { dtype: entry.dtype, shape: entry.shape, data: new info.array(copy.buffer, 0, raw.length / info.array.BYTES_PER_ELEMENT) };
        if (entry.fortran) array.order = 'F';
        await writeNpy(path.join(ourDir, entry.file), array, { fsync: false });
      }
      const manifestFile = path.join(ourDir, 'manifest.json');
      fs.writeFileSync(manifestFile, JSON.stringify(manifest.map((e) => ({ file: e.file, code: Object.keys(NUMPY_TO_DTYPE).find((k) => NUMPY_TO_DTYPE[k] === e.dtype) }))));
      const result = JSON.parse(runPythonWith(python(), CHECK_SCRIPT, [ourDir, numpyDir, manifestFile])) as { checked: number; problems: string[] };
      assert.equal(result.checked, manifest.length);
      assert.deepEqual(result.problems, []);
    });
  });
}

test('NumPy 2 np.save of ml_dtypes arrays: bfloat16 is written as descr <V2, float8_e4m3fn as <V1 (NumPy loads both back as raw void), float8_e5m2 as <f1 (NumPy cannot load it); tensorio reads the voids with voidAs', async () => {
  const folder = tempDir('npy-ml-dtypes');
  const seen = JSON.parse(
    runPythonWith(
      oraclePython(),
      `import sys, json, numpy as np, ml_dtypes
d = sys.argv[1]; out = {}
arrays = {'bf16': np.arange(65536, dtype=np.uint16).view(ml_dtypes.bfloat16).reshape(256, 256),
          'e4m3': np.arange(256, dtype=np.uint8).view(ml_dtypes.float8_e4m3fn), 'e5m2': np.arange(256, dtype=np.uint8).view(ml_dtypes.float8_e5m2)}
for name, a in arrays.items():
    np.save(d + '/' + name + '.npy', a)
    with open(d + '/' + name + '.npy', 'rb') as f:
        head = f.read(128)
    try:
        back = np.load(d + '/' + name + '.npy').dtype.str
    except ValueError as e:
        back = 'ValueError'
    out[name] = [head[10:head.index(b'}') + 1].decode(), back]
np.savez(d + '/both.npz', bf16=arrays['bf16'], w=np.ones(2))
print(json.dumps({'numpy': np.__version__, 'seen': out}))`,
      [folder],
    ),
  ) as { numpy: string; seen: Record<string, [string, string]> };
  assert.match(seen.numpy, /^2\./);
  assert.deepEqual(seen.seen, {
    bf16: ["{'descr': '<V2', 'fortran_order': False, 'shape': (256, 256), }", '|V2'],
    e4m3: ["{'descr': '<V1', 'fortran_order': False, 'shape': (256,), }", '|V1'],
    e5m2: ["{'descr': '<f1', 'fortran_order': False, 'shape': (256,), }", 'ValueError'],
  });
  const bf16 = path.join(folder, 'bf16.npy');
  await expectCode(() => readNpy(bf16), 'ERR_UNSUPPORTED_DTYPE', /<V2.*voidAs/);
  const all16 = Uint16Array.from({ length: 65536 }, (_, i) => i);
  for (const mmap of [false, true]) {
    const a = await readNpy(bf16, { voidAs: 'bfloat16', mmap });
    assert.deepEqual([a.dtype, a.shape, a.data], ['bfloat16', [256, 256], all16]);
  }
  const raw = readNpySync(bf16, { voidAs: 'uint16' });
  assert.deepEqual([raw.dtype, raw.data], ['uint16', all16]);
  await expectCode(() => readNpy(bf16, { voidAs: 'float8_e4m3fn' }), 'ERR_UNSUPPORTED_DTYPE', /1-byte items, the file's are 2 bytes/);
  const e4m3 = await readNpy(path.join(folder, 'e4m3.npy'), { voidAs: 'float8_e4m3fn' });
  assert.deepEqual([e4m3.dtype, e4m3.data], ['float8_e4m3fn', Uint8Array.from({ length: 256 }, (_, i) => i)]);
  // '<f1' names no NumPy type (np.load refuses it too): no option makes it a float8.
  await expectCode(() => readNpy(path.join(folder, 'e5m2.npy'), { voidAs: 'float8_e5m2' }), 'ERR_UNSUPPORTED_DTYPE', /'<f1'/);
  const both = (await load(path.join(folder, 'both.npz'), { voidAs: 'bfloat16' })) as Record<string, NdArray>;
  assert.deepEqual([both.bf16?.dtype, both.bf16?.data, both.w?.dtype], ['bfloat16', all16, 'float64']);
});

// What NumPy itself makes of each fixture: dtype, shape, stored order and bytes, or why it fails.
