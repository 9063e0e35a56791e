/**
 * Leaks: two batches each of 10,000 map/unmap cycles, 10,000 mappings released by the garbage
 * collector alone and 10,000 eager reads leave resident memory, open descriptors and live mappings flat.
 * Needs --expose-gc (scripts/run-tests.cjs passes it). Imports the addon binding (src/native.ts)
 * on purpose, to count live mappings.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';

import { unmap } from '../../src/index.js';
import { native } from '../../src/native.js';
import { NATIVE_MODE, tempDir } from '../helpers.js';
import { FORMATS, sampleArray } from './formats.js';

const CYCLES = 10000;
const ELEMENTS = 16 << 10; // 64 KiB: a leaked copy or mapping per cycle would be 640 MiB
// A leak of the data would add 640 MiB; the bound catches any leak above ~3 KiB per cycle.
// Under the sanitizer suite ASan's allocator keeps freed blocks in quarantine and caches, so
// resident memory is noisier there and the bound doubles.
const UNDER_ASAN = (process.env.LD_PRELOAD ?? '').includes('libasan');
const RSS_BOUND = (UNDER_ASAN ? 64 : 32) << 20;

interface Usage {
  rss: number;
  fds: number;
  maps: number;
  live: number;
}

/**
 * One turn of the event loop. A real program yields between reads; a loop that never does
 * keeps Node's deferred finalizers (and, on a loaded machine, V8's concurrent collector)
 * from catching up, which measures the loop rather than a leak.
 */
function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * An anonymous read-write mapping of exactly 256 KiB: a V8 heap page. Their number follows the
 * young generation, which V8 grows up to 16 MiB (64 pages) under a high allocation rate, so
 * a reader that allocates more small objects (the .npz directory walk) adds up to 64 lines
 * without leaking anything; RSS and the live-mapping count still catch real leaks.
 */
function isV8Page(line: string): boolean {
  const match = /^([0-9a-f]+)-([0-9a-f]+) rw-p 00000000 00:00 0\s*$/.exec(line);
  return match !== null && parseInt(match[2] as string, 16) - parseInt(match[1] as string, 16) === 256 * 1024;
}

/** Runs `cycle` `count` times, yielding a turn every 500 cycles. */
async function repeat(count: number, cycle: () => void): Promise<void> {
  for (let i = 0; i < count; i++) {
    cycle();
    if (i % 500 === 499) await turn();
  }
}

async function usage(): Promise<Usage> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with --expose-gc');
  // Node defers N-API finalizers (the munmap of a collected mapping) to the next turn of the
  // event loop, so collect, let them run, and collect again.
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
  return {
    rss: process.memoryUsage.rss(),
    fds: fs.readdirSync('/proc/self/fd').length,
    maps: fs.readFileSync('/proc/self/maps', 'utf8').split('\n').filter((line) => !isV8Page(line)).length,
    live: native ? native.liveMappings() : 0,
  };
}

const mib = (bytes: number) => (bytes / 1048576).toFixed(1);

/**
 * Runs `batch` (CYCLES cycles) twice and checks that neither left anything behind. A leak
 * grows with every batch; V8 growing its young generation or malloc keeping a freed arena
 * happens once and can take a moment to go, so resident memory is judged on the smaller
 * of the two batches' growth, after letting freed memory settle for up to a second.
 */
async function assertNoLeak(what: string, batch: () => Promise<void>): Promise<void> {
  const settled = async (previous: Usage): Promise<Usage> => {
    let now = await usage();
    for (let wait = 0; wait < 10 && now.rss - previous.rss >= RSS_BOUND; wait++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      now = await usage();
    }
    return now;
  };
  const start = await usage();
  await batch();
  const middle = await settled(start);
  await batch();
  const end = await settled(middle);
  const grew = Math.min(middle.rss - start.rss, end.rss - middle.rss);
  console.log(
    `# ${what}: RSS ${mib(middle.rss - start.rss)} then ${mib(end.rss - middle.rss)} MiB, ` +
      `fds ${start.fds} -> ${end.fds}, maps ${start.maps} -> ${end.maps}, live mappings ${start.live} -> ${end.live}`,
  );
  assert.ok(grew < RSS_BOUND, `${what}: RSS grew by at least ${mib(grew)} MiB in each of two batches (bound ${RSS_BOUND / 1048576} MiB)`);
  assert.ok(end.fds <= start.fds, `${what}: open descriptors went from ${start.fds} to ${end.fds}`);
  assert.ok(end.live <= start.live, `${what}: live mappings went from ${start.live} to ${end.live}`);
  // Address-space mappings: a few come and go with the heap, a leak would add thousands.
  assert.ok(end.maps < start.maps + 64, `${what}: /proc/self/maps went from ${start.maps} to ${end.maps} lines`);
}

for (const format of FORMATS) {
  describe(`${format.name}: no leaks over ${CYCLES} cycles`, () => {
    const dir = tempDir(`leaks-${format.name}`);
    const file = path.join(dir, `t${format.extension}`);
    const touch = (arrays: { data: ArrayLike<unknown> }[]) => arrays.reduce((n, a) => n + a.data.length, 0);

    test('map and unmap', async () => {
      await format.write(file, sampleArray(1, ELEMENTS), false);
      const cycle = () => {
        const arrays = format.readSync(file, true);
        assert.equal(touch(arrays), ELEMENTS);
        if (format.mappable) assert.equal(arrays[0]?.mapped, NATIVE_MODE);
        for (const array of arrays) unmap(array.data.buffer);
      };
      for (let i = 0; i < 1000; i++) cycle();
      await assertNoLeak('map/unmap', () => repeat(CYCLES, cycle));
    });

    test('mappings released by the garbage collector alone', async () => {
      await format.write(file, sampleArray(1, ELEMENTS), false);
      const cycle = () => assert.equal(touch(format.readSync(file, true)), ELEMENTS);
      for (let i = 0; i < 1000; i++) cycle();
      await assertNoLeak('map, dropped', () => repeat(CYCLES, cycle));
    });

    test('eager reads, sync and async', async () => {
      await format.write(file, sampleArray(1, ELEMENTS), false);
      for (let i = 0; i < 1000; i++) touch(format.readSync(file, false));
      await assertNoLeak('eager reads', async () => {
        await repeat(CYCLES, () => assert.equal(touch(format.readSync(file, false)), ELEMENTS));
        for (let i = 0; i < CYCLES / 10; i++) assert.equal(touch(await format.read(file, false)), ELEMENTS);
      });
    });
  });
}
