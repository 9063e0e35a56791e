/**
 * Crash safety: a child process writes generation after generation of an array to one target
 * and is killed with SIGKILL at a random moment. The target must then be a complete file of
 * one generation (never a mix, never short), and the next write from another process must
 * remove the temporary file the dead writer left. TENSORIO_KILL_TRIALS raises the count.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';

import { tempDir } from '../helpers.js';
import { FORMATS, sampleArray, uniformGeneration } from './formats.js';

const TRIALS = Number(process.env.TENSORIO_KILL_TRIALS ?? 24);
const ELEMENTS = 1 << 20; // 4 MiB of float32: long enough that kills land mid-write
const WRITER = path.join(__dirname, 'writer-child.js');

function temps(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => n.endsWith('.tensorio-tmp'));
}

/** Starts the endless writer; resolves once it has started writing. */
function startWriter(format: string, target: string, sync: boolean, start: number) {
  const child = spawn(process.execPath, [WRITER, format, target, String(ELEMENTS), sync ? 'sync' : 'async', String(start)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    child.once('exit', (code, signal) => reject(new Error(`writer exited early (${code ?? signal})`)));
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
  return { child, ready, exited };
}

for (const format of FORMATS) {
  describe(`${format.name}: SIGKILL during writes`, () => {
    test(`${TRIALS} writers killed at random moments leave a complete old or new file`, async () => {
      const dir = tempDir(`kill-${format.name}`);
      const target = path.join(dir, `target${format.extension}`);
      await format.write(target, sampleArray(1, ELEMENTS), false);
      // Kills land anywhere in about two and a half writes (at least 80 ms): a slow writer
      // (h5wasm builds a .h5 file) is then killed after completed writes too, not only in
      // its first one.
      const started = performance.now();
      await format.write(target, sampleArray(1, ELEMENTS), false);
      const window = Math.max(80, 2.5 * (performance.now() - started));
      const size = fs.statSync(target).size;
      let strays = 0;
      let advanced = 0;
      // Past TRIALS, keep going (up to 4 x TRIALS) until a kill has landed inside a write:
      // with fast writers only some do, and the test is about those.
      let trial = 0;
      for (; trial < TRIALS || (strays === 0 && trial < 4 * TRIALS); trial++) {
        const before = uniformGeneration(await format.read(target, false), ELEMENTS);
        const writer = startWriter(format.name, target, trial % 2 === 0, before + 1);
        await writer.ready;
        await new Promise((resolve) => setTimeout(resolve, Math.random() * window));
        writer.child.kill('SIGKILL');
        assert.equal(await writer.exited, 'SIGKILL');

        assert.equal(fs.statSync(target).size, size, `trial ${trial}: the target changed size`);
        const after = uniformGeneration(await format.read(target, trial % 3 === 0), ELEMENTS);
        assert.ok(after >= before, `trial ${trial}: went back from generation ${before} to ${after}`);
        if (after > before) advanced++;
        if (temps(dir).length > 0) strays++;

        // The next write (from this, a different process) cleans what the dead writer left.
        await format.write(target, sampleArray(after, ELEMENTS), trial % 2 === 1);
        assert.deepEqual(temps(dir), [], `trial ${trial}: temporary files survived the next write`);
      }
      console.log(`# ${format.name}: ${trial} kills survived; ${strays} left a temporary file, ${advanced} landed after a completed write`);
      // The point of the test is kills during a write: make sure some happened.
      assert.ok(strays > 0, 'no kill landed during a write; the timing of the test is off');
    });
  });
}
