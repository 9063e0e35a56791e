/**
 * Full and read-only disks. A 1 MiB tmpfs mounted by the test fills up mid-write: the writer
 * must say ERR_NO_SPACE, keep the old file whole and leave no temporary file. The same is
 * checked through a second, independent mechanism that needs no mount: RLIMIT_FSIZE in a
 * child process (writes past the limit fail with EFBIG). A read-only mount gives
 * ERR_READ_ONLY. Mounting needs root (CI runs as root); where it is impossible the test fails
 * loudly unless TENSORIO_NO_MOUNT=1 acknowledges it, and then only the RLIMIT check runs.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';

import { TensorioError } from '../../src/index.js';
import { mountTmpfs } from '../helpers.js';
import { FORMATS, sampleArray, uniformGeneration } from './formats.js';

const SMALL = 16 << 10; // 64 KiB of float32: fits the 1 MiB disk
const BIG = 1 << 19; // 2 MiB of float32: does not

function temps(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => n.endsWith('.tensorio-tmp'));
}

const isCode = (code: string) => (error: unknown) => {
  assert.ok(error instanceof TensorioError, `expected a TensorioError, got ${String(error)}`);
  assert.equal(error.code, code, error.message);
  return true;
};

for (const format of FORMATS) {
  describe(`${format.name}: full and read-only disks`, () => {
    test('a full tmpfs gives ERR_NO_SPACE, keeps the old file and leaves no temporary file', async () => {
      const dir = mountTmpfs('size=1m');
      if (!dir) return;
      const target = path.join(dir, `old${format.extension}`);
      await format.write(target, sampleArray(1, SMALL), false);
      for (const sync of [false, true]) {
        await assert.rejects(format.write(target, sampleArray(2, BIG), sync), isCode('ERR_NO_SPACE'));
        assert.equal(uniformGeneration(await format.read(target, false), SMALL), 1);
        assert.deepEqual(temps(dir), []);
      }
      // The disk is usable again afterwards: the failed write released its space.
      await format.write(target, sampleArray(3, SMALL), true);
      assert.equal(uniformGeneration(await format.read(target, true), SMALL), 3);
    });

    test('a disk with a few KiB left: a write smaller than any placeholder or split still gives ERR_NO_SPACE', async () => {
      // Writers that hand small arrays to a library (h5wasm writes datasets under 1 MiB
      // itself and reports a failed write only on stderr) must still notice the failure.
      const dir = mountTmpfs('size=1m');
      if (!dir) return;
      const target = path.join(dir, `old${format.extension}`);
      await format.write(target, sampleArray(1, 1024), false);
      const free = () => {
        const { bavail, bsize } = fs.statfsSync(dir);
        return bavail * bsize;
      };
      fs.writeFileSync(path.join(dir, 'filler'), new Uint8Array(Math.max(0, free() - (12 << 10))));
      for (const sync of [false, true]) {
        await assert.rejects(format.write(target, sampleArray(2, 60000), sync), isCode('ERR_NO_SPACE'));
        assert.equal(uniformGeneration(await format.read(target, false), 1024), 1);
        assert.deepEqual(temps(dir), []);
      }
    });

    test('RLIMIT_FSIZE (EFBIG) in a child process gives ERR_NO_SPACE and keeps the old file', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tensorio-fsize-'));
      after(() => fs.rmSync(dir, { recursive: true, force: true }));
      const target = path.join(dir, `old${format.extension}`);
      await format.write(target, sampleArray(1, SMALL), false);
      const child = path.join(__dirname, 'write-once-child.js');
      for (const mode of ['async', 'sync']) {
        const run = spawnSync('prlimit', [`--fsize=${1 << 20}`, process.execPath, child, format.name, target, String(BIG), mode], { encoding: 'utf8' });
        assert.equal(run.status, 0, `child failed: ${run.stderr}`);
        assert.equal(run.stdout.trim(), 'ERR_NO_SPACE', run.stderr);
        assert.equal(uniformGeneration(await format.read(target, false), SMALL), 1);
        assert.deepEqual(temps(dir), []);
      }
    });

    test('a read-only mount gives ERR_READ_ONLY and keeps the old file', async () => {
      const dir = mountTmpfs('size=1m');
      if (!dir) return;
      const target = path.join(dir, `old${format.extension}`);
      await format.write(target, sampleArray(1, SMALL), false);
      execFileSync('mount', ['-o', 'remount,ro', dir]);
      for (const sync of [false, true]) {
        await assert.rejects(format.write(target, sampleArray(2, SMALL), sync), (error: unknown) => {
          isCode('ERR_READ_ONLY')(error);
          assert.match((error as Error).message, /read-only/i);
          return true;
        });
      }
      assert.equal(uniformGeneration(await format.read(target, true), SMALL), 1);
    });
  });
}
