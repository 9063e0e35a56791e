/**
 * The removal of temporary files left by dead writers (src/io/atomic-writer.ts): a write lists
 * its folder only when the folder changed since this process's own last change to it, so a
 * write into a folder of 10,000 files does not cost a listing of 10,000 names each time, and a
 * leftover that appears later is still removed by the next write of its target.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs'; // the module object itself, so src/io/atomic-writer.ts sees the patch below
import * as path from 'node:path';
import { test } from 'node:test';

import { writeNpy, writeNpySync, zeros } from '../../src/index.js';
import { tempDir } from '../helpers.js';

/** The name of a temporary file of `target` whose writer (a process that existed) is gone. */
function deadWritersTemp(target: string): string {
  const dead = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
  return path.join(path.dirname(target), `.${path.basename(target)}.${dead.stdout.trim()}.0badf00d.tensorio-tmp`);
}

/** Runs `body` counting the folder listings (sync and async) made meanwhile. */
async function countListings(body: () => Promise<void>): Promise<number> {
  let listings = 0;
  const readdirSync = fs.readdirSync;
  const readdir = fs.promises.readdir;
  fs.readdirSync = ((...args: Parameters<typeof fs.readdirSync>) => (listings++, readdirSync(...args))) as typeof fs.readdirSync;
  fs.promises.readdir = ((...args: Parameters<typeof fs.promises.readdir>) => (listings++, readdir(...args))) as typeof fs.promises.readdir;
  try {
    await body();
  } finally {
    fs.readdirSync = readdirSync;
    fs.promises.readdir = readdir;
  }
  return listings;
}

for (const mode of ['async', 'sync'] as const) {
  const write = async (file: string) => {
    if (mode === 'sync') writeNpySync(file, zeros([4]), { fsync: false });
    else await writeNpy(file, zeros([4]), { fsync: false });
  };

  test(`${mode}: the folder is listed again only when something else changed it, and late leftovers are still removed`, async () => {
    const dir = tempDir('stale-temps');
    for (let i = 0; i < 50; i++) fs.writeFileSync(path.join(dir, `other-${i}.npy`), '');
    const a = path.join(dir, 'a.npy');
    const b = path.join(dir, 'b.npy');
    const early = deadWritersTemp(a);
    fs.writeFileSync(early, 'half a file');

    assert.equal(await countListings(() => write(a)), 1, 'the first write lists the folder');
    assert.equal(fs.existsSync(early), false, "the dead writer's file of a.npy is removed");
    assert.equal(
      await countListings(async () => {
        for (let i = 0; i < 5; i++) await write(i % 2 ? a : b);
      }),
      0,
      "this process's own writes do not make the folder be listed again",
    );

    const late = deadWritersTemp(b);
    fs.writeFileSync(late, 'half a file');
    assert.equal(await countListings(() => write(b)), 1, 'a change by someone else is seen');
    assert.equal(fs.existsSync(late), false, "the late dead writer's file of b.npy is removed");
    assert.deepEqual(fs.readdirSync(dir).filter((n) => n.endsWith('.tensorio-tmp')), []);
  });
}
