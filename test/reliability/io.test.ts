/**
 * Regressions in the foundation found by the reliability work (src/io/*). Imports the internal
 * src/io/read.ts on purpose: the split reads it tests have no public entry of their own.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs'; // the module object itself, so src/io/read.ts sees the patch below
import * as path from 'node:path';
import { test } from 'node:test';

import { readNpy, writeNpy, zeros } from '../../src/index.js';
import { tempDir } from '../helpers.js';

test('async writes list the folder off the event loop (100,000 files held it 60-115 ms per write)', async () => {
  const dir = tempDir('crowded');
  const target = path.join(dir, 'model.npy');
  // A temporary file of a writer that died: a pid that existed and is gone.
  const dead = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
  const stale = path.join(dir, `.model.npy.${dead.stdout.trim()}.0badf00d.tensorio-tmp`);
  fs.writeFileSync(stale, 'half a file');
  const readdirSync = fs.readdirSync;
  fs.readdirSync = (() => {
    throw new Error('readdirSync called on an asynchronous write');
  }) as typeof fs.readdirSync;
  try {
    await writeNpy(target, zeros([3]));
  } finally {
    fs.readdirSync = readdirSync;
  }
  assert.equal(fs.existsSync(stale), false, 'the stale temporary file is still cleaned');
  assert.deepEqual(Array.from((await readNpy(target)).data as Float32Array), [0, 0, 0]);
});

for (const mode of ['async', 'sync'] as const) {
  test(`${mode} reads of 64 MiB and more are split into parallel parts: every byte lands in place, and a short file returns the bytes it has`, async () => {
    const io = await import('../../src/io/read.js');
    // Natively the sync read runs its parts on threads of the addon's own (ReadFullyInParts).
    const readAt = mode === 'async' ? io.readAt : async (...args: Parameters<typeof io.readAtSync>) => io.readAtSync(...args);
    const readExactly = mode === 'async' ? io.readExactly : async (...args: Parameters<typeof io.readExactlySync>) => io.readExactlySync(...args);
    const file = path.join(tempDir('io-split'), 'big.bin');
    const length = (70 << 20) + 123; // not a multiple of the part size
    const bytes = new Uint8Array(length);
    for (let i = 0; i < length; i += 4093) bytes[i] = (i / 4093) & 0xff;
    bytes[length - 1] = 0xab;
    fs.writeFileSync(file, bytes);
    const fd = fs.openSync(file, 'r');
    try {
      const whole = new Uint8Array(length);
      assert.equal(await readAt(fd, 0, whole, file), length);
      assert.ok(Buffer.from(whole.buffer).equals(Buffer.from(bytes.buffer)), 'the split read differs from the file');
      // A target longer than the rest of the file: the count stops at the end of the file.
      const longer = new Uint8Array(length + (9 << 20));
      assert.equal(await readAt(fd, 0, longer, file), length);
      const fromMiddle = new Uint8Array(66 << 20);
      assert.equal(await readAt(fd, 5 << 20, fromMiddle, file), length - (5 << 20));
      assert.ok(Buffer.from(fromMiddle.buffer, 0, length - (5 << 20)).equals(Buffer.from(bytes.buffer, 5 << 20)));
      await assert.rejects(readExactly(fd, 0, longer, file, 'data'), (error: { code?: string }) => error.code === 'ERR_TRUNCATED');
      // The file ends inside the second of four 18 MiB parts.
      const early = new Uint8Array(72 << 20);
      assert.equal(await readAt(fd, length - (20 << 20), early, file), 20 << 20);
      assert.ok(Buffer.from(early.buffer, 0, 20 << 20).equals(Buffer.from(bytes.buffer, length - (20 << 20))));
      // A target that ends before the file, inside a larger zeroed buffer: its last part is
      // the short one, and nothing lands past it.
      const backing = new Uint8Array(67 << 20);
      const inner = backing.subarray(0, (66 << 20) + 7);
      assert.equal(await readAt(fd, 3, inner, file), inner.length);
      assert.ok(Buffer.from(inner.buffer, 0, inner.length).equals(Buffer.from(bytes.buffer, 3, inner.length)));
      assert.ok(backing.subarray(inner.length).every((b) => b === 0), 'bytes were written past the target');
    } finally {
      fs.closeSync(fd);
    }
  });
}
