/**
 * The buffers eager reads fill, and when their memory comes back.
 *
 * With `new ArrayBuffer`, a process that read a 512 MiB file over and over, dropping each
 * result, held three buffers at once (1,587 MiB peak for 512 MiB of data): V8 frees a dropped
 * ArrayBuffer only after incremental marking ends, which in a synchronous loop waits for a
 * stack-guard interrupt. Large read buffers now come from the addon (native/mapping.cc,
 * Allocate), which asks for a full collection before handing out more than it holds.
 * Imports the addon binding (src/native.ts) on purpose, to count the bytes its buffers hold.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';

import { encodeNpyHeader, readNpy, readNpySync } from '../../src/index.js';
import { native } from '../../src/native.js';
import { NATIVE_MODE, pattern, tempDir } from '../helpers.js';

const MiB = 1 << 20;

function npyFile(dir: string, name: string, bytes: number, fill?: Uint8Array): string {
  const file = path.join(dir, name);
  const header = encodeNpyHeader('uint8', [bytes], false);
  fs.writeFileSync(file, header);
  if (fill) fs.appendFileSync(file, fill);
  else fs.truncateSync(file, header.length + bytes);
  return file;
}

// Reads and drops the result inside a function of its own, so no frame keeps it.
function readAndDrop(file: string): number {
  return readNpySync(file).data.length;
}

async function readAndDropAsync(file: string): Promise<number> {
  return (await readNpy(file)).data.length;
}

describe('eager read buffers', () => {
  test('the addon is the one that allocates large read buffers', () => {
    assert.equal(typeof native?.allocate === 'function', NATIVE_MODE);
  });

  test('dropped 64 MiB reads are freed before the next one allocates (sync and async)', async () => {
    const dir = tempDir('read-buffers');
    try {
      const file = npyFile(dir, 'big.npy', 64 * MiB);
      let mostHeld = 0;
      for (let i = 0; i < 12; i++) {
        assert.equal(i % 2 ? await readAndDropAsync(file) : readAndDrop(file), 64 * MiB);
        if (native?.readBuffersHeld) mostHeld = Math.max(mostHeld, native.readBuffersHeld());
      }
      // One buffer for the read just made, and at most one more not yet swept; without the
      // collection this grew to 3-4 buffers.
      if (NATIVE_MODE) assert.ok(mostHeld <= 2 * 64 * MiB, `held ${mostHeld / MiB} MiB of read buffers`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('buffers still in use are never freed by the collections, and keep their bytes', () => {
    const dir = tempDir('read-buffers');
    try {
      const bytes = pattern(8 * MiB, 7);
      const file = npyFile(dir, 'data.npy', bytes.length, bytes);
      const kept = Array.from({ length: 10 }, () => readNpySync(file));
      const dropped = npyFile(dir, 'zeros.npy', 16 * MiB);
      for (let i = 0; i < 10; i++) readAndDrop(dropped);
      for (const array of kept) assert.deepEqual(array.data, bytes);
      if (native?.readBuffersHeld) assert.ok(native.readBuffersHeld() >= 10 * 8 * MiB);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('allocate() checks its argument and returns zero-filled memory', () => {
    if (!native?.allocate) {
      assert.equal(NATIVE_MODE, false);
      return;
    }
    const allocate = native.allocate.bind(native);
    assert.throws(() => allocate(-1), RangeError);
    assert.throws(() => (allocate as (v: unknown) => ArrayBuffer)('8'), TypeError);
    assert.equal(allocate(0).byteLength, 0);
    for (const length of [1, 4 * MiB + 3, 5 * MiB]) {
      const view = new Uint8Array(allocate(length));
      assert.equal(view.length, length);
      assert.ok(view.every((b) => b === 0));
      view.fill(0xff);
      assert.equal(view[length - 1], 0xff);
    }
  });
});
