/**
 * Large durable writes streamed through the page cache (native WriteThrough in
 * native/io_core.h, used by src/io/atomic-writer.ts by default for writes of 64 MiB and more
 * with fsync). Tests the addon's writeThrough / writeThroughSync and the writer's choice of
 * path directly, on purpose: the bytes on disk must be exactly those written, for every
 * position and chunk layout across the 16 MiB blocks, errors must come back as system errors,
 * and only large durable writes may take this path (directIo and fsync: false keep theirs).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';

import { readNpy, writeNpy, writeNpySync, TensorioError } from '../../src/index.js';
import { AtomicWriter } from '../../src/io/atomic-writer.js';
import { native, type NativeBinding } from '../../src/native.js';
import { chunked, mountTmpfs, NATIVE_MODE, pattern, tempDir } from '../helpers.js';

const MiB = 1 << 20;
const dir = tempDir('tensorio-through');

/** The addon; undefined in the pure-TypeScript run, which the test then checks it is. */
function addon(): NativeBinding | undefined {
  if (!native) assert.equal(NATIVE_MODE, false);
  return native ?? undefined;
}

function sameBytes(file: string, expected: Uint8Array): void {
  const got = fs.readFileSync(file);
  assert.equal(got.length, expected.length, 'file length');
  const first = got.findIndex((b, i) => b !== expected[i]);
  assert.equal(first, -1, `first differing byte at ${first}`);
}

describe('writes through the page cache, dropped as written back', () => {
  test('writeThrough and writeThroughSync write exactly the chunks, at any position and across blocks', async () => {
    const binding = addon();
    if (!binding) return;
    assert.equal(typeof binding.writeThrough, 'function');
    assert.equal(typeof binding.writeThroughSync, 'function');
    const head = pattern(16 * MiB + 4099, 3);
    const body = pattern(40 * MiB + 77, 5);
    for (const [position, lengths] of [
      [0, [body.length]],
      [3, [1, 16 * MiB, 4095, 7 * MiB + 1]],
      [16 * MiB - 5, [128, 9 * MiB]],
      [16 * MiB + 4099, [5 * MiB, 1]],
    ] as const) {
      for (const sync of [true, false]) {
        const file = path.join(dir, `through-${position}-${sync}.bin`);
        // A prefix already in the file must stay as it was.
        fs.writeFileSync(file, head.subarray(0, position));
        const fd = fs.openSync(file, 'r+');
        try {
          const chunks = chunked(body, [...lengths], 5);
          const bytes: number = sync
            ? binding.writeThroughSync!(fd, position, chunks)
            : await new Promise<number>((resolve, reject) => binding.writeThrough!(fd, position, chunks, (error, n) => (error ? reject(error) : resolve(n as number))));
          assert.equal(bytes, body.length, `bytes reported at ${position}`);
          fs.fsyncSync(fd);
        } finally {
          fs.closeSync(fd);
        }
        const expected = new Uint8Array(position + body.length);
        expected.set(head.subarray(0, position));
        expected.set(body, position);
        sameBytes(file, expected);
      }
    }
  });

  test('an empty write writes nothing; a bad descriptor or a read-only one is a system error', async () => {
    const binding = addon();
    if (!binding) return;
    const file = path.join(dir, 'empty.bin');
    fs.writeFileSync(file, 'abc');
    const fd = fs.openSync(file, 'r+');
    try {
      assert.equal(binding.writeThroughSync!(fd, 1, []), 0);
    } finally {
      fs.closeSync(fd);
    }
    assert.equal(fs.readFileSync(file, 'utf8'), 'abc');
    const readOnly = fs.openSync(file, 'r');
    try {
      assert.throws(() => binding.writeThroughSync!(readOnly, 0, [pattern(MiB, 7)]), (error: NodeJS.ErrnoException) => error.code === 'EBADF');
      await assert.rejects(
        new Promise<number>((resolve, reject) => binding.writeThrough!(readOnly, 0, [pattern(MiB, 7)], (error, n) => (error ? reject(error) : resolve(n as number)))),
        (error: NodeJS.ErrnoException) => error.code === 'EBADF',
      );
    } finally {
      fs.closeSync(readOnly);
    }
    assert.throws(() => binding.writeThroughSync!(-1, 0, [pattern(16, 1)]), /fd|descriptor/i);
  });

  test('the writer streams only writes of 64 MiB and more with fsync, and not when directIo is set', async () => {
    const binding = addon();
    const big = pattern(64 * MiB + 4096, 11);
    const cases = [
      [{}, big, true],
      [{}, big.subarray(0, 64 * MiB - 1), false],
      [{ directIo: false }, big, false],
      [{ fsync: false }, big, false],
      [{ directIo: true }, big, false],
    ] as const;
    for (const sync of [false, true]) {
      for (const [options, bytes, expectThrough] of cases) {
        const target = path.join(dir, 'choice.bin');
        let through = 0;
        const real = binding && { writeThrough: binding.writeThrough, writeThroughSync: binding.writeThroughSync };
        if (binding && real) {
          binding.writeThrough = (...args) => (through++, real.writeThrough!.apply(binding, args));
          binding.writeThroughSync = (...args) => (through++, real.writeThroughSync!.apply(binding, args));
        }
        try {
          if (sync) {
            const writer = AtomicWriter.openSync(target, options);
            writer.writeSync([bytes]);
            writer.commitSync();
          } else {
            const writer = await AtomicWriter.open(target, options);
            await writer.write([bytes]);
            await writer.commit();
          }
        } finally {
          if (binding && real) Object.assign(binding, real);
        }
        sameBytes(target, bytes);
        assert.equal(through > 0, expectThrough && binding !== undefined, `${JSON.stringify(options)} ${bytes.length} bytes, sync ${sync}`);
      }
    }
  });

  test('a large durable .npy written by default reads back the same, async and sync', async () => {
    const data = new Float32Array((80 * MiB) / 4).map((_, i) => i * 0.5);
    for (const [name, write] of [
      ['async.npy', (file: string) => writeNpy(file, { dtype: 'float32', shape: [data.length], data })],
      ['sync.npy', async (file: string) => writeNpySync(file, { dtype: 'float32', shape: [data.length], data })],
    ] as const) {
      const file = path.join(dir, name);
      await write(file);
      const back = await readNpy(file);
      assert.deepEqual(back.shape, [data.length]);
      assert.equal(Buffer.compare(Buffer.from(back.data.buffer, back.data.byteOffset, back.data.byteLength), Buffer.from(data.buffer)), 0);
    }
  });

  test('a full disk gives ERR_NO_SPACE on the streamed path, keeping the old file and leaving no temporary file', async () => {
    const mount = mountTmpfs('size=8m');
    if (!mount) return;
    const target = path.join(mount, 'old.npy');
    await writeNpy(target, { dtype: 'float32', shape: [4], data: new Float32Array([1, 2, 3, 4]) });
    const big = { dtype: 'float32' as const, shape: [(64 * MiB) / 4], data: new Float32Array((64 * MiB) / 4).fill(2) };
    for (const write of [() => writeNpy(target, big), async () => writeNpySync(target, big)]) {
      await assert.rejects(write(), (error: unknown) => error instanceof TensorioError && error.code === 'ERR_NO_SPACE');
      assert.deepEqual(Array.from((await readNpy(target)).data as Float32Array), [1, 2, 3, 4]);
      assert.deepEqual(fs.readdirSync(mount).filter((n) => n.endsWith('.tensorio-tmp')), []);
    }
  });
});
