/**
 * What a mapping costs the garbage collector, and what happens when one is posted to a worker.
 *
 * A mapping is the page cache's memory, not the heap's. When V8 counted its bytes, every
 * ArrayBuffer allocated after a mapped open forced a scavenge ("external memory pressure"): a
 * warm process paid a GC per open (261 scavenges in 300 opens of a 512 MiB file). Since the
 * buffer is not counted, the addon releases the pages from a finalizer on the buffer object, so
 * no other ArrayBuffer may share them: a transfer to a worker must copy.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { describe, test } from 'node:test';
import { MessageChannel } from 'node:worker_threads';

import { encodeNpyHeader, isMapped, readNpySync, unmap } from '../../src/index.js';
import { NATIVE_MODE, tempDir } from '../helpers.js';

/** A sparse .npy of `bytes` bytes of float32 zeros (no disk is spent on the data). */
function sparseNpy(dir: string, bytes: number): string {
  const file = path.join(dir, 'big.npy');
  const header = encodeNpyHeader('float32', [bytes / 4], false);
  fs.writeFileSync(file, header);
  fs.truncateSync(file, header.length + bytes);
  return file;
}

describe('mapped buffers and the garbage collector', () => {
  test('warm mapped opens of a 512 MiB file, each followed by small allocations, cause almost no GCs', async () => {
    // The TypeScript path reads instead of mapping: a small file keeps its run cheap.
    const file = sparseNpy(tempDir('mapping-gc'), NATIVE_MODE ? 512 * 2 ** 20 : 16 * 1024);
    let collections = 0;
    const observer = new PerformanceObserver((list) => {
      collections += list.getEntries().length;
    });
    observer.observe({ entryTypes: ['gc'] });
    const opens = 300;
    for (let i = 0; i < opens; i++) {
      const array = readNpySync(file, { mmap: true });
      assert.equal(array.mapped, NATIVE_MODE);
      // What any program does between opens: small buffers (a header, a Buffer from fs).
      for (let k = 0; k < 4; k++) new Uint8Array(4096).fill(k);
    }
    // GC entries are delivered asynchronously.
    await new Promise((resolve) => setTimeout(resolve, 50));
    observer.disconnect();
    // Before the fix: about one scavenge per open. The allocations themselves (300 x 16 KiB)
    // fit in a few scavenges of a young generation.
    assert.ok(collections < opens / 10, `${collections} garbage collections in ${opens} opens`);
  });

  test('a mapped buffer in a transfer list is copied: the sender keeps its mapping and both read the data', async () => {
    const dir = tempDir('mapping-transfer');
    const file = path.join(dir, 'a.npy');
    const header = encodeNpyHeader('int32', [1024], false);
    const values = Int32Array.from({ length: 1024 }, (_, i) => i * 7 - 3);
    fs.writeFileSync(file, Buffer.concat([header, Buffer.from(values.buffer)]));
    const array = readNpySync(file, { mmap: true });
    const offset = array.data.byteOffset;
    const { port1, port2 } = new MessageChannel();
    const received = new Promise<ArrayBuffer>((resolve) => port2.once('message', resolve));
    port1.postMessage(array.data.buffer, [array.data.buffer as ArrayBuffer]);
    const copy = await received;
    port1.close();
    port2.close();
    if (NATIVE_MODE) {
      assert.equal(isMapped(array.data.buffer), true);
      assert.deepEqual(Array.from(array.data as Int32Array), Array.from(values));
      // The copy is independent of the mapping: it still reads after the mapping is released.
      unmap(array.data.buffer);
    } else {
      // A buffer the read allocated is an ordinary one: transferred, so the sender's is detached.
      assert.equal(array.data.length, 0);
    }
    assert.deepEqual(Array.from(new Int32Array(copy, offset, 1024)), Array.from(values));
  });
});
