/**
 * How an atomic write puts its file at the target. Over an existing file the commit swaps the
 * two (renameat2 RENAME_EXCHANGE) and removes the old one; it must end exactly as the rename
 * it replaces would: the new bytes at the target, no temporary file left, a folder never
 * swapped away, a symbolic link replaced by the file (not written through).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

import { readNpy, readNpySync, TensorioError, writeNpy, writeNpySync, zeros } from '../../src/index.js';
import { tempDir } from '../helpers.js';

const filled = (value: number) => {
  const array = zeros([1000], 'float64');
  (array.data as Float64Array).fill(value);
  return array;
};

for (const mode of ['async', 'sync'] as const) {
  const write = (file: string, value: number) => (mode === 'sync' ? writeNpySync(file, filled(value), { fsync: false }) : writeNpy(file, filled(value), { fsync: false }));

  test(`${mode}: writing over an existing file leaves the new bytes and nothing else`, async () => {
    const dir = tempDir('replace');
    const file = path.join(dir, 'a.npy');
    await write(file, 1);
    const mapped = readNpySync(file, { mmap: true });
    for (let value = 2; value < 6; value++) await write(file, value);
    assert.equal((await readNpy(file)).data[999], 5);
    assert.equal(mapped.data[0], 1, 'a mapping of the old file keeps the old bytes');
    assert.deepEqual(fs.readdirSync(dir), ['a.npy']);
  });

  test(`${mode}: a folder at the target is refused and left as it was`, async () => {
    const dir = tempDir('replace-folder');
    const target = path.join(dir, 'a.npy');
    fs.mkdirSync(target);
    fs.writeFileSync(path.join(target, 'inside'), 'kept');
    await assert.rejects(async () => write(target, 1), (error: unknown) => error instanceof TensorioError);
    assert.equal(fs.readFileSync(path.join(target, 'inside'), 'utf8'), 'kept');
    assert.deepEqual(fs.readdirSync(dir), ['a.npy']);
  });

  test(`${mode}: a symbolic link at the target is replaced by the file, its target untouched`, async () => {
    const dir = tempDir('replace-link');
    const real = path.join(dir, 'real.npy');
    await write(real, 7);
    const link = path.join(dir, 'link.npy');
    fs.symlinkSync(real, link);
    await write(link, 8);
    assert.equal(fs.lstatSync(link).isSymbolicLink(), false);
    assert.equal((await readNpy(link)).data[0], 8);
    assert.equal((await readNpy(real)).data[0], 7);
    assert.deepEqual(fs.readdirSync(dir).sort(), ['link.npy', 'real.npy']);
  });
}
