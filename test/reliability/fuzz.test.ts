/**
 * Hostile input: every parser in the reliability table (and the .npy header and Python
 * literal parsers) reads or refuses fuzzed inputs with a typed error, in bounded time and
 * memory. A short run here; `npm run fuzz` runs the long campaign. Every input that ever
 * failed lives in test/regressions/<target>/ and is replayed below.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, test } from 'node:test';

import { checkInput, fuzz, fuzzTargets, prepareTargets, REGRESSIONS, regressionInputs } from './fuzz.js';

const RUNS = Number(process.env.TENSORIO_FUZZ_RUNS ?? 1500);
const targets = fuzzTargets();
const suiteTargets = targets.filter((target) => !target.replayThrough);
before(prepareTargets);

describe('fuzzing (short run; npm run fuzz for the long one)', () => {
  for (const target of suiteTargets) {
    test(`${target.name}: ${RUNS} inputs read or refused with a typed error, in bounded time and memory`, () => {
      const figures = fuzz(target, RUNS);
      assert.equal(figures.failures, 0, `failing inputs saved as ${figures.saved.join(', ')} (${figures.messages.join('; ')}); rerun to replay them`);
      // Both outcomes must be reached, or the generators are not exercising the parser.
      assert.ok(figures.refused > 0, 'no input was refused');
      assert.ok(figures.accepted > 0, 'no input was accepted: the generators only make garbage');
    });
  }
});

describe('saved regressions', () => {
  test('every regression folder names a fuzz target', () => {
    if (!fs.existsSync(REGRESSIONS)) return;
    const names = new Set(targets.map((t) => t.name));
    for (const entry of fs.readdirSync(REGRESSIONS, { withFileTypes: true })) {
      if (entry.isDirectory()) assert.ok(names.has(entry.name), `test/regressions/${entry.name} is not a fuzz target`);
    }
  });

  for (const target of suiteTargets) {
    // A file reader also replays the inputs saved for its in-memory parser, and those of the
    // campaign-only targets that name it.
    const files = [
      ...regressionInputs(target.name),
      ...(target.name.endsWith('-file') ? regressionInputs(target.name.slice(0, -'-file'.length)) : []),
      ...targets.filter((t) => t.replayThrough === target.name).flatMap((t) => regressionInputs(t.name)),
    ];
    if (files.length === 0) continue;
    test(`${target.name}: ${files.length} saved inputs replay cleanly`, () => {
      for (const file of files) {
        assert.doesNotThrow(() => checkInput(target, new Uint8Array(fs.readFileSync(file))), path.basename(file));
      }
    });
  }
});

describe('the checks themselves', () => {
  const base = { seeds: () => [], structured: [], typed: (e: unknown) => e instanceof RangeError };
  test('catch a parser that allocates beyond the bound', () => {
    const greedy = { ...base, name: 'greedy', run: () => new ArrayBuffer(8 << 20).byteLength };
    assert.throws(() => checkInput(greedy, new Uint8Array(10)), /allocated \d+ bytes for a 10-byte input/);
  });
  test('catch a parser whose heap grows beyond the bound', () => {
    const hoarder = { ...base, name: 'hoarder', run: () => { (globalThis as { hoard?: unknown }).hoard = Array.from({ length: 3e6 }, (_, i) => ({ i })); return 0; } };
    try {
      assert.throws(() => checkInput(hoarder, new Uint8Array(10)), /heap grew by \d+ bytes/);
    } finally {
      delete (globalThis as { hoard?: unknown }).hoard;
    }
  });
  test('catch an untyped error', () => {
    const crashy = { ...base, name: 'crashy', run: (): number => { throw new TypeError('boom'); } };
    assert.throws(() => checkInput(crashy, new Uint8Array(1)), /untyped failure TypeError: boom/);
  });
  test('catch an input that takes too long', () => {
    const slow = { ...base, name: 'slow', run: () => { const end = performance.now() + 2000; while (performance.now() < end); return 0; } };
    assert.throws(() => checkInput(slow, new Uint8Array(1)), /budget/);
  });
});
