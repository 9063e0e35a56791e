/**
 * Files changed under a mapping. The library's own writes replace a file by rename, so a
 * mapping of the old file keeps reading the old inode, whole. What another process can do is
 * documented and pinned here: truncating a mapped file makes the next access past the new
 * end fault with SIGBUS (the reason eager reads are the default).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';

import { unmap } from '../../src/index.js';
import { NATIVE_MODE, tempDir } from '../helpers.js';
import { FORMATS, sampleArray, uniformGeneration } from './formats.js';

const ELEMENTS = 1 << 18;

for (const format of FORMATS.filter((f) => f.mappable)) {
  describe(`${format.name}: writing over a mapped file`, () => {
    test('the library\'s writes (sync and async, many times) never disturb an open mapping', async () => {
      const dir = tempDir(`mapped-${format.name}`);
      const target = path.join(dir, `t${format.extension}`);
      await format.write(target, sampleArray(1, ELEMENTS), false);
      const old = await format.read(target, true);
      assert.equal(old[0]?.mapped, NATIVE_MODE);
      for (let generation = 2; generation < 8; generation++) {
        await format.write(target, sampleArray(generation, ELEMENTS), generation % 2 === 0);
        // Every element of the old mapping, after every write.
        assert.equal(uniformGeneration(old, ELEMENTS), 1);
        assert.equal(uniformGeneration(await format.read(target, true), ELEMENTS), generation);
      }
      for (const array of old) unmap(array.data.buffer);
    });

    test('a rename by another process over a mapped file also keeps the old bytes', async () => {
      const dir = tempDir(`renamed-${format.name}`);
      const target = path.join(dir, `t${format.extension}`);
      const other = path.join(dir, `o${format.extension}`);
      await format.write(target, sampleArray(1, ELEMENTS), false);
      await format.write(other, sampleArray(2, ELEMENTS), false);
      const old = await format.read(target, true);
      fs.renameSync(other, target);
      assert.equal(uniformGeneration(old, ELEMENTS), 1);
      assert.equal(uniformGeneration(await format.read(target, false), ELEMENTS), 2);
    });

    test(NATIVE_MODE ? 'truncation by another process under a mapping is a SIGBUS (documented hazard)' : 'without the addon a read is a copy, so truncation afterwards changes nothing', async () => {
      const dir = tempDir(`truncated-${format.name}`);
      const target = path.join(dir, `t${format.extension}`);
      await format.write(target, sampleArray(1, ELEMENTS), false);
      const script = `
        const { FORMATS } = require(${JSON.stringify(path.join(__dirname, 'formats.js'))});
        const format = FORMATS.find((f) => f.name === ${JSON.stringify(format.name)});
        const [array] = format.readSync(${JSON.stringify(target)}, true);
        require('fs').truncateSync(${JSON.stringify(target)}, 64);
        console.log(String(array.data[array.data.length - 1]));`;
      const child = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
      if (NATIVE_MODE && (process.env.LD_PRELOAD ?? '').includes('libasan')) {
        // Under scripts/test-sanitized.sh ASan catches the SIGBUS, reports it, and aborts.
        assert.ok(child.signal === 'SIGBUS' || child.signal === 'SIGABRT', `expected a fault, got status ${child.status}: ${child.stderr}`);
      } else if (NATIVE_MODE) {
        assert.equal(child.signal, 'SIGBUS', `expected SIGBUS, got status ${child.status}: ${child.stdout}${child.stderr}`);
      } else {
        assert.equal(child.status, 0, child.stderr);
        assert.equal(child.stdout.trim(), '1');
      }
    });
  });
}
