/**
 * Concurrency: 100 reads and writes of mixed arrays in flight at once in one process, then the
 * same in four worker threads at once (each loading the library and the addon itself).
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';

import { NATIVE_MODE, tempDir } from '../helpers.js';
import { mixedWorkload } from './workload.js';

describe('concurrency', () => {
  test('100 concurrent reads and writes in one process return correct data', async () => {
    const result = await mixedWorkload(tempDir('concurrent'), 1);
    assert.deepEqual(result, { reads: 50, writes: 50 });
  });

  test('the same workload in 4 worker threads at once', async () => {
    const dir = tempDir('workers');
    const results = await Promise.all(
      [2, 3, 4, 5].map(
        (seed) =>
          new Promise<{ ok: boolean; native?: boolean; reads?: number; writes?: number; error?: string }>((resolve, reject) => {
            const worker = new Worker(path.join(__dirname, 'workload-worker.js'), { workerData: { dir: path.join(dir, `w${seed}`), seed } });
            worker.once('message', resolve);
            worker.once('error', reject);
          }),
      ),
    );
    for (const result of results) {
      assert.ok(result.ok, result.error);
      assert.equal(result.native, NATIVE_MODE);
      assert.equal(result.reads, 50);
      assert.equal(result.writes, 50);
    }
  });
});
