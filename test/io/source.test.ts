/**
 * The one byte source (src/io/source.ts), imported on purpose: it is internal, and every format
 * reads through it. Views against copies, bounds checked before anything is allocated, the one
 * out-of-bounds error, and the synchronous and asynchronous reads agreeing byte for byte, over a
 * file, bytes in memory and a mapping (the last only with the addon).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import test from 'node:test';

import { ByteSource, COPY_REASONS, outOfBounds, runAsync, runSync, type Reads } from '../../src/io/source.js';
import { closeQuietly, openForRead } from '../../src/io/read.js';
import { TensorioError } from '../../src/index.js';
import { NATIVE_MODE, pattern, tempDir } from '../helpers.js';

const SIZE = 10_000;

async function withFile<T>(bytes: Uint8Array, use: (fd: number, size: number, file: string) => T | Promise<T>): Promise<T> {
  const file = path.join(tempDir('source'), 'bytes.bin');
  fs.writeFileSync(file, bytes);
  const { fd, size } = openForRead(file);
  try {
    return await use(fd, size, file);
  } finally {
    closeQuietly(fd);
  }
}

function isTruncated(error: unknown): boolean {
  return error instanceof TensorioError && error.code === 'ERR_TRUNCATED';
}

test('bytes in memory: read and readAsync are views (no copy), readCopy and readInto are copies', async () => {
  const bytes = pattern(SIZE, 1);
  const source = ByteSource.ofBytes(bytes, '<memory>');
  assert.equal(source.size, SIZE);
  assert.equal(source.inMemory, true);
  assert.equal(source.fd, null);
  assert.equal(source.mapped, false);
  const view = source.read(100, 50, 'test range');
  assert.equal(view.buffer, bytes.buffer);
  assert.equal(view.byteOffset, 100);
  const viewAsync = await source.readAsync(100, 50, 'test range');
  assert.equal(viewAsync.buffer, bytes.buffer);
  const copy = source.readCopy(100, 50, 'test range');
  assert.notEqual(copy.buffer, bytes.buffer);
  assert.deepEqual(copy, view);
  copy[0] = (copy[0] as number) ^ 0xff;
  assert.notEqual(copy[0], bytes[100], 'a copy is the caller\'s own memory');
  const target = new Uint16Array(25);
  source.readInto(200, target, 'test range');
  assert.deepEqual(new Uint8Array(target.buffer), bytes.subarray(200, 250));
  const targetAsync = new Uint16Array(25);
  await source.readIntoAsync(200, targetAsync, 'test range');
  assert.deepEqual(targetAsync, target);
});

test('a file: every read is fresh memory, sync and async agree with the bytes written', async () => {
  const bytes = pattern(SIZE, 2);
  await withFile(bytes, async (fd, size, file) => {
    const source = ByteSource.ofFile(fd, size, file);
    assert.equal(source.inMemory, false);
    assert.equal(source.fd, fd);
    assert.equal(source.path, file);
    for (const [position, length] of [[0, 0], [0, 1], [17, 4000], [SIZE - 1, 1], [SIZE, 0], [0, SIZE]] as const) {
      const expected = bytes.subarray(position, position + length);
      const sync = source.read(position, length, 'test range');
      const async = await source.readAsync(position, length, 'test range');
      assert.deepEqual(sync, expected);
      assert.deepEqual(async, expected);
      assert.notEqual(sync.buffer, async.buffer);
      assert.deepEqual(source.readCopy(position, length, 'test range'), expected);
      const into = new Uint8Array(length);
      await source.readIntoAsync(position, into, 'test range');
      assert.deepEqual(into, expected);
    }
  });
});

test('a mapping: views into one ArrayBuffer when the addon maps, else positioned reads with the reason why', async () => {
  const bytes = pattern(SIZE, 3);
  await withFile(bytes, async (fd, size, file) => {
    const source = ByteSource.ofFile(fd, size, file, { map: true });
    if (!NATIVE_MODE) {
      assert.equal(source.inMemory, false);
      assert.equal(source.mapped, false);
      assert.equal(source.mapReason, COPY_REASONS.noAddon);
      assert.deepEqual(source.read(5, 10, 'test range'), bytes.subarray(5, 15));
      return;
    }
    assert.equal(source.mapped, true);
    assert.equal(source.mapReason, undefined);
    assert.equal(source.inMemory, true);
    const whole = source.read(0, SIZE, 'the whole file');
    assert.deepEqual(whole, bytes);
    const view = source.read(5, 10, 'test range');
    assert.equal(view.buffer, whole.buffer);
    assert.equal(view.byteOffset, 5);
    assert.equal((await source.readAsync(5, 10, 'test range')).buffer, whole.buffer);
  });
});

test('an empty file asked to be mapped says why it is not', async () => {
  await withFile(new Uint8Array(0), (fd, size, file) => {
    const source = ByteSource.ofFile(fd, size, file, { map: true });
    assert.equal(source.mapReason, NATIVE_MODE ? COPY_REASONS.emptyFile : COPY_REASONS.noAddon);
    assert.deepEqual(source.read(0, 0, 'nothing'), new Uint8Array(0));
  });
});

test('out of bounds: ERR_TRUNCATED naming the file and the structure, before anything is allocated, for every kind of source and read', async () => {
  const bytes = pattern(SIZE, 4);
  await withFile(bytes, async (fd, size, file) => {
    const sources = [ByteSource.ofBytes(bytes, file), ByteSource.ofFile(fd, size, file)];
    for (const source of sources) {
      for (const [position, length] of [[SIZE, 1], [SIZE - 3, 4], [0, SIZE + 1], [1, 2 ** 52]] as const) {
        const message = new RegExp(`file ends inside the central widget: expected ${length} bytes at offset ${position}, found ${Math.max(0, SIZE - position)}$`);
        const check = (error: unknown) => isTruncated(error) && (error as TensorioError).path === file && message.test((error as Error).message);
        // 2^52 bytes could never be allocated: the error proves the bound came first.
        assert.throws(() => source.read(position, length, 'central widget'), check);
        assert.throws(() => source.readCopy(position, length, 'central widget'), check);
        await assert.rejects(source.readAsync(position, length, 'central widget'), check);
        if (length < 2 ** 20) {
          assert.throws(() => source.readInto(position, new Uint8Array(length), 'central widget'), check);
          await assert.rejects(source.readIntoAsync(position, new Uint8Array(length), 'central widget'), check);
        }
      }
      assert.equal(source.contains(0, SIZE), true);
      assert.equal(source.contains(SIZE, 0), true);
      assert.equal(source.contains(SIZE, 1), false);
      assert.equal(source.contains(-1, 1), false);
      assert.equal(source.contains(0.5, 1), false);
    }
  });
  const error = outOfBounds('f.bin', 'header', 8, 16, 10);
  assert.equal(error.code, 'ERR_TRUNCATED');
  assert.match(error.message, /file ends inside the header: expected 16 bytes at offset 8, found 2$/);
});

test('a request that is not a non-negative integer range is ERR_INVALID_ARGUMENT, not a read', () => {
  const source = ByteSource.ofBytes(pattern(64, 5), '<memory>');
  for (const [position, length] of [[-1, 4], [0, -4], [0.5, 4], [0, Number.NaN], [2 ** 53, 1]] as const) {
    assert.throws(() => source.read(position, length, 'field'), (e: unknown) => e instanceof TensorioError && e.code === 'ERR_INVALID_ARGUMENT');
  }
});

test('a file that shrinks under its source: a read past the new end is ERR_TRUNCATED too', async () => {
  const bytes = pattern(SIZE, 6);
  await withFile(bytes, async (fd, size, file) => {
    const source = ByteSource.ofFile(fd, size, file);
    fs.truncateSync(file, 100);
    assert.throws(() => source.read(50, 100, 'tail'), isTruncated);
    await assert.rejects(source.readAsync(50, 100, 'tail'), isTruncated);
    assert.deepEqual(source.read(0, 100, 'head'), bytes.subarray(0, 100));
  });
});

// A walker of the shape the formats use: a length-prefixed list of records.
function* records(): Reads<string[]> {
  const head = yield [0, 4, 'record count'];
  const count = new DataView(head.buffer, head.byteOffset, 4).getUint32(0, true);
  const out: string[] = [];
  let at = 4;
  for (let i = 0; i < count; i++) {
    const length = (yield [at, 1, `length of record ${i}`])[0] as number;
    out.push(Buffer.from(yield [at + 1, length, `record ${i}`]).toString('latin1'));
    at += 1 + length;
  }
  return out;
}

function recordBytes(items: string[]): Uint8Array {
  const parts = [Buffer.from(Uint32Array.of(items.length).buffer), ...items.flatMap((s) => [Buffer.from([s.length]), Buffer.from(s, 'latin1')])];
  return new Uint8Array(Buffer.concat(parts));
}

test('runSync and runAsync drive one walker to the same result over every source, and to the same error on a cut file', async () => {
  const items = ['alpha', '', 'gamma delta', 'x'.repeat(255)];
  const bytes = recordBytes(items);
  await withFile(bytes, async (fd, size, file) => {
    for (const source of [ByteSource.ofBytes(bytes, file), ByteSource.ofFile(fd, size, file), ByteSource.ofFile(fd, size, file, { map: true })]) {
      assert.deepEqual(runSync(records(), source), items);
      assert.deepEqual(await runAsync(records(), source), items);
    }
  });
  const cut = ByteSource.ofBytes(bytes.subarray(0, bytes.length - 10), '<cut>');
  const syncError = (() => {
    try {
      runSync(records(), cut);
    } catch (error) {
      return error as TensorioError;
    }
    return undefined;
  })();
  assert.ok(isTruncated(syncError));
  await assert.rejects(runAsync(records(), cut), (e: unknown) => isTruncated(e) && (e as Error).message === (syncError as Error).message);
  assert.match((syncError as Error).message, /record 3/);
});

test('an archive larger than one Uint8Array can be is still mapped: each read is its own view', () => {
  // A sparse file one page past buffer.constants.MAX_LENGTH (4 GiB on Node 20): one
  // whole-file Uint8Array cannot exist, so the source keeps the ArrayBuffer and makes a view
  // per read (a 5 GiB pytorch_model.bin or .npz stays zero-copy).
  const file = path.join(tempDir('source'), 'huge.bin');
  const size = 2 ** 32 + 4096;
  const fd0 = fs.openSync(file, 'w');
  fs.ftruncateSync(fd0, size);
  fs.writeSync(fd0, Uint8Array.of(7), 0, 1, size - 1);
  fs.closeSync(fd0);
  const { fd } = openForRead(file);
  try {
    const source = ByteSource.ofFile(fd, size, file, { map: true });
    assert.equal(source.mapped, NATIVE_MODE);
    assert.equal(source.mapReason, NATIVE_MODE ? undefined : COPY_REASONS.noAddon);
    const last = source.read(size - 2, 2, 'the last bytes');
    assert.deepEqual([...last], [0, 7]);
    if (NATIVE_MODE) {
      assert.equal(last.byteOffset, size - 2, 'a view past 4 GiB into the one mapping');
      assert.throws(() => source.read(0, size, 'the whole archive'), (e: unknown) => e instanceof TensorioError && e.code === 'ERR_TOO_LARGE' && /the whole archive/.test(e.message));
    }
  } finally {
    closeQuietly(fd);
    fs.rmSync(file);
  }
});
