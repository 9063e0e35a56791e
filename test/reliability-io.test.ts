/**
 * Regressions in the foundation found by the reliability work (src/io.ts).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs'; // the module object itself, so src/io.ts sees the patch below
import * as path from 'node:path';
import { test } from 'node:test';

import { readNpy, writeNpy, zeros } from '../src/index.js';
import { tempDir } from './helpers.js';

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
