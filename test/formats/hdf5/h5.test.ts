/**
 * Generic HDF5 through the public entry: readH5/readH5Sync/decodeH5/openH5 and writeH5, every
 * error code of the reader on hand-made and damaged files, both structure readers (tensorio's own
 * and h5wasm), and the files h5py writes (test/formats/hdf5/h5-dump.ts).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'node:test';

import fc from 'fast-check';

import { decodeH5, type DType, dtypeInfo, h5wasmReady, type NdArray, openH5, openH5Sync, readH5, readH5Sync, TensorioError, writeH5 } from '../../../src/index.js';
import { expectCode } from '../../expect-code.js';
import { assertStorageAsH5pyReports, H5PY_DUMP, hex, NUMPY_NAMES, pointDataPastEnd, type DamageReport, type Dump } from './h5-dump.js';
import { ROOT, runPython, runPythonJson, tempDir } from '../../helpers.js';

const dir = tempDir('tensorio-h5');
const REGRESSIONS = path.join(ROOT, 'test', 'regressions');

async function rejectsWith(promise: Promise<unknown> | (() => unknown), code: string): Promise<void> {
  await assert.rejects(
    async () => (typeof promise === 'function' ? promise() : promise),
    (error: unknown) => error instanceof TensorioError && error.code === code,
  );
}

const ALL_DTYPES: DType[] = ['int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'float16', 'float32', 'float64', 'complex64', 'complex128'];

function sample(dtype: DType, shape: number[], seed = 1): NdArray {
  const info = dtypeInfo(dtype);
  const size = shape.reduce((a, b) => a * b, 1);
  const data = new info.array(size * info.lanes);
  for (let i = 0; i < data.length; i++) {
    const v = ((i * 7919 + seed * 104729) % 251) - 120;
    if (data instanceof BigInt64Array) data[i] = BigInt(v) * 1000000007n;
    else if (data instanceof BigUint64Array) data[i] = BigInt(v + 120) * 1000000007n;
    else if (dtype === 'float16') data[i] = (0x3c00 + v) & 0xffff;
    else if (dtype.startsWith('u')) data[i] = v + 120;
    else data[i] = dtype.startsWith('float') || dtype.startsWith('complex') ? v / 8 : v;
  }
  return { dtype, shape, data };
}

test('h5py reads what writeH5 writes: every dtype, scalars, empty arrays, nested groups, big datasets', async () => {
  const record: Record<string, NdArray> = {};
  for (const dtype of ALL_DTYPES) record[`types/${dtype}`] = sample(dtype, [3, 4]);
  record['scalar'] = sample('float64', []);
  record['empty'] = sample('float32', [0, 5]);
  record['a/b/c/deep'] = sample('int32', [2, 2, 2]);
  record['big/f32'] = sample('float32', [512, 1024]); // 2 MiB: past the heap-write limit
  record['big/f16'] = sample('float16', [1024, 1024]);
  const file = path.join(dir, 'ours.h5');
  await writeH5(file, record);
  const dump = runPythonJson<Dump>(H5PY_DUMP, [file]);
  assert.deepEqual(Object.keys(dump).sort(), Object.keys(record).sort());
  for (const [name, array] of Object.entries(record)) {
    const got = dump[name];
    assert.ok(got && !('error' in got), name);
    assert.equal(NUMPY_NAMES[got.dtype], array.dtype, name);
    assert.deepEqual(got.shape, array.shape, name);
    assert.equal(got.hex, hex(array), name);
  }
  // Superblock v0 and h5py's own checks pass on the file.
  const version = runPython(`import sys, h5py\nf = h5py.File(sys.argv[1], 'r')\nprint(open(sys.argv[1], 'rb').read(9)[8])`, [file]).trim();
  assert.equal(version, '0');
  const back = await readH5(file);
  for (const [name, array] of Object.entries(record)) assert.equal(hex(back[name] as NdArray), hex(array), name);
});

test('readH5 reads what h5py writes: byte orders, chunks, gzip, shuffle, float16, bool, complex', async () => {
  const file = path.join(dir, 'h5py.h5');
  runPython(
    `
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], 'w') as f:
    f['le'] = np.arange(12, dtype='<f4').reshape(3, 4)
    f['be'] = np.arange(12, dtype='>f8').reshape(3, 4)
    f['bei'] = np.arange(-6, 6, dtype='>i2')
    f.create_dataset('chunked', data=np.arange(1000, dtype='<i4').reshape(10, 100), chunks=(3, 7))
    f.create_dataset('gzip', data=np.linspace(0, 1, 999, dtype='<f4'), chunks=(100,), compression='gzip', shuffle=True)
    f['half'] = np.array([0.5, -2, 65504, np.inf], dtype='<f2')
    f.create_dataset('half_chunked', data=np.arange(50, dtype='<f2'), chunks=(7,))
    f['flag'] = np.array([True, False, True])
    f['z'] = np.array([1 + 2j, -3.5j], dtype='<c16')
    f['g/h/scalar'] = np.float32(2.5)
    f.attrs['note'] = 'hello'
`,
    [file],
  );
  const ours = await readH5(file);
  const expected = runPythonJson<Dump>(H5PY_DUMP, [file]);
  assert.deepEqual(Object.keys(ours).sort(), Object.keys(expected).sort());
  for (const [name, want] of Object.entries(expected)) {
    assert.ok(!('error' in want));
    const got = ours[name] as NdArray;
    assert.equal(got.dtype, NUMPY_NAMES[want.dtype], name);
    assert.deepEqual(got.shape, want.shape, name);
    assert.equal(hex(got), want.hex, name);
  }
  const h5 = await openH5(file);
  try {
    assert.equal(h5.attribute('', 'note'), 'hello');
    assert.equal(h5.attribute('', 'missing'), undefined);
    assert.equal(h5.info('le').storage.layout, 'contiguous');
    assert.equal(h5.info('chunked').storage.layout, 'chunked');
    assert.equal(h5.info('gzip').storage.layout, 'filtered');
    assert.deepEqual(h5.keys(), ['be', 'bei', 'chunked', 'flag', 'g', 'gzip', 'half', 'half_chunked', 'le', 'z']);
    assert.deepEqual(h5.keys('g'), ['h']);
    assert.equal(h5.isGroup('g/h'), true);
    assert.equal(h5.isDataset('g/h/scalar'), true);
  } finally {
    h5.close();
  }
});

test('writeH5 round-trips random arrays (property)', async () => {
  const file = path.join(dir, 'prop.h5');
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...ALL_DTYPES),
      fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 0, maxLength: 3 }),
      fc.integer({ min: 0, max: 1000 }),
      fc.boolean(),
      async (dtype, shape, seed, bypassHeap) => {
        const array = sample(dtype, shape, seed);
        await writeH5(file, { 'x/y': array }, bypassHeap ? { heapWriteLimit: 0 } : {});
        const back = await readH5(file);
        const got = back['x/y'] as NdArray;
        assert.equal(got.dtype, dtype);
        assert.deepEqual(got.shape, shape);
        assert.equal(hex(got), hex(array));
      },
    ),
    { numRuns: 40 },
  );
});

test('writeH5 errors: a dataset where a group is, a bad array', async () => {
  const file = path.join(dir, 'bad.h5');
  await rejectsWith(writeH5(file, { a: sample('float32', [2]), 'a/b': sample('float32', [2]) }), 'ERR_INVALID_ARGUMENT');
  await rejectsWith(writeH5(file, { a: { dtype: 'float32', shape: [3], data: new Float32Array(2) } }), 'ERR_SHAPE_MISMATCH');
  assert.equal(fs.existsSync(file), false, 'a failed write leaves no file');
  assert.deepEqual(fs.readdirSync(dir).filter((n) => n.includes('tensorio-tmp')), [], 'and no temporary file');
});

test('ERR_NOT_FOUND: a missing file', async () => {
  await rejectsWith(readH5(path.join(dir, 'missing.h5')), 'ERR_NOT_FOUND');
});

test('ERR_BAD_MAGIC: a file that is not HDF5', async () => {
  const file = path.join(dir, 'not.h5');
  fs.writeFileSync(file, Buffer.alloc(600, 0x41));
  await rejectsWith(readH5(file), 'ERR_BAD_MAGIC');
});

/** A small file written by h5py (Debian's): a group, contiguous numeric datasets, and fixed-length strings if asked. */
function h5pyFile(name: string, strings = false): string {
  const file = path.join(dir, name);
  runPython(
    `
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], 'w') as f:
    f['x'] = np.arange(12, dtype='<f4').reshape(3, 4)
    f['g/y'] = np.arange(5, dtype='<i8')
    if sys.argv[2] == '1':
        f['fixed_length_ascii'] = np.array([b'abc', b'de'], dtype='S3')
    f.attrs['note'] = 'hello'
`,
    [file, strings ? '1' : '0'],
  );
  return file;
}

test('contiguous datasets of an h5py file are found at the offset h5py reports, and read outside h5wasm', async () => {
  const file = h5pyFile('offsets.h5');
  await assertStorageAsH5pyReports(file);
});

test('ERR_NOT_FOUND_IN_ARCHIVE and ERR_CLOSED', async () => {
  const h5 = await openH5(h5pyFile('earliest.h5'));
  await rejectsWith(h5.read('nope'), 'ERR_NOT_FOUND_IN_ARCHIVE');
  await rejectsWith(() => h5.keys('nope'), 'ERR_NOT_FOUND_IN_ARCHIVE');
  h5.close();
  await rejectsWith(() => h5.keys(), 'ERR_CLOSED');
});

test('ERR_BAD_OFFSETS (and ERR_BAD_HEADER through h5wasm): a contiguous dataset whose address points past the end of the file', async () => {
  const file = path.join(dir, 'corrupt.h5');
  await writeH5(file, { x: sample('float32', [64]) });
  const [header, offset] = runPythonJson<[number, number]>(
    `import sys, json, h5py\nd = h5py.File(sys.argv[1], 'r')['x']\nprint(json.dumps([h5py.h5o.get_info(d.id).addr, d.id.get_offset()]))`,
    [file],
  );
  const bytes = fs.readFileSync(file);
  pointDataPastEnd(bytes, header, offset);
  fs.writeFileSync(file, bytes);
  const h5 = await openH5(file);
  try {
    await rejectsWith(h5.read('x'), 'ERR_BAD_OFFSETS');
  } finally {
    h5.close();
  }
  // Through h5wasm, HDF5 itself refuses the dataset before tensorio's bounds check runs.
  const viaWasm = await openH5(file, { h5wasm: true });
  try {
    await rejectsWith(viaWasm.read('x'), 'ERR_BAD_HEADER');
  } finally {
    viaWasm.close();
  }
});

test('ERR_UNSUPPORTED_DTYPE: reading a string dataset as an array', async () => {
  const h5 = await openH5(h5pyFile('strings.h5', true));
  try {
    await rejectsWith(h5.read('fixed_length_ascii'), 'ERR_UNSUPPORTED_DTYPE');
  } finally {
    h5.close();
  }
});

test('ERR_UNSUPPORTED_VERSION: a superblock version tensorio does not know', async () => {
  const file = path.join(dir, 'v9.h5');
  const bytes = Buffer.alloc(1024);
  Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a, 9]).copy(bytes);
  fs.writeFileSync(file, bytes);
  await rejectsWith(readH5(file), 'ERR_UNSUPPORTED_VERSION');
});

test('readH5Sync, decodeH5 and openH5Sync read what h5py writes, as readH5 does', async () => {
  const file = path.join(dir, 'sync.h5');
  runPython(`
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], 'w') as f:
    f['a'] = np.arange(12, dtype='<f4').reshape(3, 4)
    f['g/b'] = np.arange(5, dtype='>i8')
    f['g/c'] = np.array(7.5)
`, [file]);
  const expected = await readH5(file);
  assert.deepEqual(Object.keys(expected).sort(), ['a', 'g/b', 'g/c']);
  for (const got of [readH5Sync(file), readH5Sync(file, { mmap: true }), decodeH5(new Uint8Array(fs.readFileSync(file)))]) {
    assert.deepEqual(Object.keys(got).sort(), Object.keys(expected).sort());
    for (const [name, array] of Object.entries(expected)) {
      assert.equal(got[name]?.dtype, array.dtype, name);
      assert.deepEqual(got[name]?.shape, array.shape, name);
      assert.deepEqual(Array.from(got[name]?.data as ArrayLike<unknown>), Array.from(array.data as ArrayLike<unknown>), name);
    }
  }
  const h5 = openH5Sync(file);
  try {
    assert.deepEqual(h5.keys('g'), ['b', 'c']);
    assert.deepEqual(Array.from(h5.readSync('g/b').data as BigInt64Array), [0n, 1n, 2n, 3n, 4n]);
  } finally {
    h5.close();
  }
});

test('ERR_NEEDS_H5WASM: a libver-latest file (superblock 3) read from memory, or synchronously before h5wasmReady()', async () => {
  // tensorio's own structure reader walks superblocks 0 and 1; its chunk reader then reads the
  // dataset (an extensible array index, one unlimited dimension) under h5wasm's structure.
  const file = path.join(dir, 'chunked-sync.h5');
  runPython(`
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], 'w', libver='latest') as f:
    f.create_dataset('z', data=np.arange(100, dtype='<f4'), chunks=(10,), maxshape=(None,), compression='gzip')
`, [file]);
  const bytes = new Uint8Array(fs.readFileSync(file));
  await expectCode(() => decodeH5(bytes, 'chunked.h5'), 'ERR_NEEDS_H5WASM', /chunked\.h5: the file uses HDF5 structures only h5wasm reads, which needs h5wasm, and h5wasm reads only files/);
  await h5wasmReady();
  const got = readH5Sync(file);
  assert.deepEqual(Array.from(got.z?.data as Float32Array), Array.from({ length: 100 }, (_, i) => i));
});

test('ERR_TRUNCATED: an HDF5 file shorter than its superblock says, or cut inside the superblock', async () => {
  const file = path.join(dir, 'cut.h5');
  const whole = fs.readFileSync(h5pyFile('whole.h5'));
  for (const at of [0, 4, 8, 40, 95, 96, 2000, whole.length - 1]) {
    fs.writeFileSync(file, whole.subarray(0, at));
    await rejectsWith(readH5(file), 'ERR_TRUNCATED');
    await rejectsWith(() => readH5Sync(file), 'ERR_TRUNCATED');
    await rejectsWith(() => decodeH5(whole.subarray(0, at)), 'ERR_TRUNCATED');
  }
});

test('ERR_BAD_HEADER, not a hang: hard links that fan out (2^40 paths in 50 KiB), with and without h5wasm', async () => {
  const file = path.join(REGRESSIONS, 'keras-h5', 'hostile-hardlink-fanout.bin');
  for (const h5wasm of [false, true]) {
    await expectCode(() => readH5(file, { h5wasm }), 'ERR_BAD_HEADER', /hard links that fan out/);
  }
});


/** Good file, damaged file, good file again, through h5wasm in a fresh process (see the child). */
function h5wasmDamage(damaged: string, deadlineMs: number, good = h5pyFile('good.h5')): DamageReport & { stderr: string } {
  const child = spawnSync(process.execPath, [path.join(__dirname, '..', '..', 'reliability', 'h5wasm-child.js'), good, damaged, String(deadlineMs)], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(child.status, 0, child.stderr.slice(-2000));
  const report = JSON.parse(child.stdout) as DamageReport;
  assert.ok(report.before > 0);
  assert.equal(report.after, report.before);
  assert.equal(report.syncAfterReady, null);
  return { ...report, stderr: child.stderr };
}

/**
 * Copies of the damaged file and the good file in a folder whose path has `length` characters
 * (at least), spaces and non-ASCII letters included: HDF5 inside h5wasm reads uninitialised
 * heap memory on damaged files, and what it finds there depended on the lengths of the paths
 * earlier allocations held (the outcome changed at a 108-character path; see
 * src/formats/hdf5/h5wasm-errors.ts).
 */
/**
 * A child's stderr without Node's one warning that the native addon did not load (a build
 * older or newer than the sources says so, once): that is tensorio's own, asked for by
 * running without the addon, not HDF5's.
 */
function hdf5Stderr(stderr: string): string {
  return stderr.replace(/^\(node:\d+\) \[TENSORIO_NO_NATIVE\].*\n(\(Use `node --trace-warnings.*\n)?/m, '');
}

function damagedCopies(damaged: string, length: number, label: string): { good: string; bad: string } {
  let folder = path.join(dir, `where ${label} ü`);
  while (folder.length < length) folder += 'x';
  fs.mkdirSync(folder, { recursive: true });
  const good = path.join(folder, 'good.h5');
  const bad = path.join(folder, path.basename(damaged));
  fs.copyFileSync(h5pyFile('good.h5'), good);
  fs.copyFileSync(damaged, bad);
  return { good, bad };
}

test('a file that makes HDF5 abort() inside h5wasm is refused with ERR_BAD_HEADER wherever it lies, silently, and h5wasm still reads the next file', () => {
  // Found by the h5wasm-file fuzz campaign: reading the root attribute 'backend' aborts, or
  // (with other heap contents) fails on a global heap that is not one.
  const aborting = path.join(REGRESSIONS, 'h5wasm-file', '8c6f286c47292da7.bin');
  const messages = new Set<string>();
  for (const [length, label] of [[0, 'short'], [101, 'long'], [140, 'longer']] as const) {
    const { good, bad } = damagedCopies(aborting, length, label);
    const { damage, earlierAfter, syncAfter, stderr } = h5wasmDamage(bad, 60_000, good);
    assert.ok(damage, `the damaged file was read under ${bad}`);
    assert.ok(damage.typed && damage.code === 'ERR_BAD_HEADER', JSON.stringify(damage));
    assert.ok(damage.message.startsWith(`${bad}: HDF5 cannot read attribute 'backend' of '/' (`), damage.message);
    assert.match(damage.message, /\((Aborted\(native code called abort\(\)\)|H5\w+\(\): [^)]+)\); the file is damaged$/);
    messages.add(damage.message.slice(bad.length));
    assert.equal(hdf5Stderr(stderr), '', 'nothing printed');
    // An abort leaves h5wasm usable: nothing was retired.
    assert.equal(earlierAfter, null);
    assert.equal(syncAfter, null);
  }
  assert.ok(messages.size >= 1);
});

test('HDF5 error stacks do not reach stderr: the most specific line goes into the error, through the library and the CLI', () => {
  // Superblock v2, so h5wasm opens it; a dataspace message HDF5 refuses.
  const damaged = path.join(REGRESSIONS, 'keras-h5-file', 'c15acdc1837bbbf1.bin');
  const file = path.join(dir, 'damaged-dataspace.h5');
  fs.copyFileSync(damaged, file);
  const script = `require(${JSON.stringify(path.join(ROOT, 'dist', 'index.js'))}).readH5(process.argv[1]).then(() => console.log('read'), (e) => console.log(e.code + ' ' + e.message))`;
  const library = spawnSync(process.execPath, ['-e', script, file], { encoding: 'utf8' });
  assert.equal(hdf5Stderr(library.stderr), '');
  assert.equal(library.stdout.trim(), `ERR_BAD_HEADER ${file}: HDF5 cannot open dataset 'model_weights/gru_1/gru_1/kernel:0' (H5O__sdspace_decode(): wrong version number in dataspace message); the file is damaged`);
  const cli = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'cli', 'main.js'), 'inspect', file], { encoding: 'utf8' });
  assert.equal(cli.status, 2);
  assert.doesNotMatch(cli.stderr, /HDF5-DIAG|#0\d\d:/);
  assert.equal(hdf5Stderr(cli.stderr).trim().split('\n').length, 1, cli.stderr);
  assert.match(cli.stderr, /ERR_BAD_HEADER: .*H5O__sdspace_decode\(\): wrong version number in dataspace message/);
});

test('HDF5 errors thrown through h5wasm leave no descriptor open (its error handler\'s temporary file is closed)', async () => {
  const file = path.join(dir, 'damaged-dataspace-fds.h5');
  fs.copyFileSync(path.join(REGRESSIONS, 'keras-h5-file', 'c15acdc1837bbbf1.bin'), file);
  const open = () => fs.readdirSync('/proc/self/fd').length;
  await expectCode(() => readH5(file), 'ERR_BAD_HEADER');
  const before = open();
  for (let i = 0; i < 30; i++) await expectCode(() => readH5(file), 'ERR_BAD_HEADER', /H5O__sdspace_decode\(\)/);
  assert.ok(open() <= before + 1, `${before} descriptors before, ${open()} after 30 refusals`);
});

test('ERR_TIMEOUT: a file on which HDF5 loops inside h5wasm is stopped at the deadline, and a fresh h5wasm reads the next file', () => {
  // Found by the h5wasm-file fuzz campaign: reading the root attribute 'backend' never returned.
  const looping = path.join(REGRESSIONS, 'h5wasm-file', 'd5c4420e9ba02a37.bin');
  const { damage, earlierAfter, syncAfter } = h5wasmDamage(looping, 1000);
  assert.ok(damage, 'the looping file was read');
  assert.ok(damage.typed && damage.code === 'ERR_TIMEOUT', JSON.stringify(damage));
  assert.ok(damage.message.includes(looping) && /within the 1000 ms/.test(damage.message), damage.message);
  assert.ok(damage.ms >= 1000 && damage.ms < 10_000, `stopped after ${damage.ms} ms`);
  // The instance it ran on is retired: files opened on it are closed, synchronous readers need
  // h5wasmReady() again, and asynchronous ones load a fresh instance by themselves.
  assert.equal(earlierAfter?.code, 'ERR_CLOSED');
  assert.equal(syncAfter?.code, 'ERR_NEEDS_H5WASM');
});
