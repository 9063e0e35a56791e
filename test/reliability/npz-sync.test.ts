/**
 * The synchronous `.npz` readers the reliability table uses (`readNpzSync`, `decodeNpz`):
 * they agree with `readNpz` on what NumPy writes (same arrays, or the same refusal; the real
 * files of other tools: test/fixtures/npz-sync.test.ts), map what it
 * maps, and bound inflation the same way. Imports bytesOf (src/ndarray.ts) on purpose, to compare
 * array bytes.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';

import { decodeNpz, readNpz, readNpzSync, writeNpz } from '../../src/index.js';
import { bytesOf } from '../../src/ndarray.js';
import { expectCode } from '../expect-code.js';
import { NATIVE_MODE, runPython, tempDir } from '../helpers.js';
import { assertSyncReadersAgree } from '../formats/numpy/npz-agree.js';

const dir = tempDir('npz-sync');
let counter = 0;
const tmp = (): string => path.join(dir, `${counter++}.npz`);

describe('readNpzSync and decodeNpz agree with readNpz on what NumPy writes', () => {
  // np.savez and np.savez_compressed (Debian's NumPy): stored and deflated members, Fortran
  // order, big-endian, 0-d, empty, an object array, a string array. ../shared's real files: test/fixtures/.
  const files = [tmp(), tmp(), tmp()];
  runPython(
    `import sys, numpy as np
arrays = dict(f4=np.arange(12, dtype='<f4').reshape(3, 4), be=np.arange(5, dtype='>i8'), fort=np.asfortranarray(np.arange(6.).reshape(2, 3)),
              scalar=np.array(2.5), empty=np.zeros((0, 3), 'u1'), flags=np.array([True, False]), words=np.array(['ab', 'c']))
np.savez(sys.argv[1], **arrays)
np.savez_compressed(sys.argv[2], **arrays)
np.savez(sys.argv[3], obj=np.array([1, 'two', None], dtype=object), x=np.ones(3, '<f2'))`,
    files,
  );
  for (const file of files) test(path.basename(file), () => assertSyncReadersAgree(file));
});

describe('readNpzSync', () => {
  const x = { dtype: 'float32' as const, shape: [3, 4], data: Float32Array.from({ length: 12 }, (_, i) => i / 3) };
  const y = { dtype: 'int16' as const, shape: [5], data: Int16Array.from([1, -2, 3, -4, 5]) };

  test('stored members map (with the addon), compressed ones are copies saying why', async () => {
    const stored = tmp();
    await writeNpz(stored, { x, y });
    const mapped = readNpzSync(stored, { mmap: true });
    assert.deepEqual(Object.keys(mapped), ['x', 'y']);
    assert.deepEqual(Array.from(mapped.x?.data as Float32Array), Array.from(x.data));
    assert.equal(mapped.x?.mapped, NATIVE_MODE);
    const compressed = tmp();
    await writeNpz(compressed, { x, y }, { compress: true });
    const copy = readNpzSync(compressed, { mmap: true });
    assert.deepEqual(Array.from(copy.y?.data as Int16Array), Array.from(y.data));
    assert.equal(copy.y?.mapped, false);
    assert.equal(copy.y?.copyReason, 'the member is compressed');
  });

  test('ERR_BAD_ZIP: a deflated member inflating past its declared size stops at the claim', async () => {
    const file = tmp();
    await writeNpz(file, { x }, { compress: true });
    const bytes = fs.readFileSync(file);
    const cdOffset = bytes.readUInt32LE(bytes.length - 22 + 16);
    bytes.writeUInt32LE(40, cdOffset + 24);
    fs.writeFileSync(file, bytes);
    await expectCode(() => readNpzSync(file), 'ERR_BAD_ZIP', /inflates to more than its declared 40 bytes/);
    await expectCode(() => decodeNpz(bytes), 'ERR_BAD_ZIP', /inflates to more than its declared 40 bytes/);
  });

  test('ERR_CRC_MISMATCH: a changed byte in a stored member (eager reads check, as readNpz does)', async () => {
    const file = tmp();
    await writeNpz(file, { y });
    const bytes = fs.readFileSync(file);
    const at = bytes.indexOf(Buffer.from(bytesOf(y.data))) + 1;
    bytes[at] = (bytes[at] as number) ^ 0xff;
    fs.writeFileSync(file, bytes);
    await expectCode(() => readNpzSync(file), 'ERR_CRC_MISMATCH');
    await expectCode(() => readNpz(file), 'ERR_CRC_MISMATCH');
  });

  test('ERR_TRUNCATED: an empty file or a cut signature; ERR_BAD_ZIP: other short bytes', async () => {
    for (const head of ['', 'P', 'PK', 'PK\x03']) {
      await expectCode(() => decodeNpz(new Uint8Array(Buffer.from(head, 'latin1'))), 'ERR_TRUNCATED', /not a complete zip archive/);
    }
    await expectCode(() => decodeNpz(new Uint8Array(Buffer.from('PX'))), 'ERR_BAD_ZIP');
    const empty = tmp();
    fs.writeFileSync(empty, '');
    await expectCode(() => readNpzSync(empty, { mmap: true }), 'ERR_TRUNCATED');
    await expectCode(() => readNpz(empty), 'ERR_TRUNCATED');
  });

  test('an archive comment (the end record not in the last 22 bytes) reads the same', async () => {
    const file = tmp();
    await writeNpz(file, { y });
    const plain = fs.readFileSync(file);
    const comment = Buffer.from('a comment of 40 bytes, PK\x05\x06 inside..', 'latin1');
    const withComment = Buffer.concat([plain, comment]);
    withComment.writeUInt16LE(comment.length, plain.length - 2);
    fs.writeFileSync(file, withComment);
    assert.deepEqual(Array.from(readNpzSync(file).y?.data as Int16Array), Array.from(y.data));
    assert.deepEqual(Array.from((await readNpz(file)).y?.data as Int16Array), Array.from(y.data));
  });

  test('ERR_NOT_FOUND: a missing file', async () => {
    await expectCode(() => readNpzSync(path.join(dir, 'missing.npz')), 'ERR_NOT_FOUND');
  });
});
