/**
 * The truncation check shared by the main suite (files written at test time) and the fixtures
 * suite (other tools' real files): each file cut at its structural boundaries (preamble, length
 * field, header end, data start, element boundaries) and at a sample of other offsets is refused
 * with a TensorioError, from memory and from a file read eagerly or mapped, sync and async. A
 * file that was readable whole must say ERR_TRUNCATED.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';

import { TensorioError } from '../../src/index.js';
import { tempDir } from '../helpers.js';
import type { ReliabilityFormat } from './formats.js';

/** Every structural boundary below the file's length. */
function boundariesOf(format: ReliabilityFormat, bytes: Uint8Array): number[] {
  return [...new Set(format.boundaries(bytes))].filter((c) => c >= 0 && c < bytes.length).sort((a, b) => a - b);
}

/** The cuts also tried through files: every boundary when few, else a spread of them, plus samples. */
function cutsFor(format: ReliabilityFormat, bytes: Uint8Array): number[] {
  let boundaries = boundariesOf(format, bytes);
  if (boundaries.length > 96) {
    // Element boundaries of big arrays: the first and last ones and an even spread between.
    const spread = Array.from({ length: 32 }, (_, i) => boundaries[Math.floor(((i + 1) * boundaries.length) / 33)] as number);
    boundaries = [...boundaries.slice(0, 32), ...spread, ...boundaries.slice(-32)];
  }
  // A deterministic sample of other offsets (a simple LCG keeps failures reproducible).
  let state = bytes.length;
  const sample = Array.from({ length: 12 }, () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state % bytes.length;
  });
  return [...new Set([...boundaries, ...sample, bytes.length - 1])].filter((c) => c >= 0).sort((a, b) => a - b);
}

function outcome(run: () => unknown): { ok: true } | { ok: false; error: unknown } {
  try {
    run();
    return { ok: true };
  } catch (error) {
    return { ok: false, error };
  }
}

async function outcomeAsync(run: () => Promise<unknown>): Promise<{ ok: true } | { ok: false; error: unknown }> {
  try {
    await run();
    return { ok: true };
  } catch (error) {
    return { ok: false, error };
  }
}

/** A cut must be refused with a TensorioError (ERR_TRUNCATED for a readable file), or be a valid prefix. */
function checkCut(result: { ok: true } | { ok: false; error: unknown }, at: number, how: string, wholeReadable: boolean): void {
  // A prefix can only be valid if the file carried bytes after its data.
  if (result.ok) {
    assert.ok(wholeReadable, `cut at ${at} (${how}) was accepted although the whole file is not`);
    return;
  }
  assert.ok(result.error instanceof TensorioError, `cut at ${at} (${how}): ${String(result.error)}`);
  if (wholeReadable) assert.equal(result.error.code, 'ERR_TRUNCATED', `cut at ${at} (${how}): ${result.error.message}`);
}

/** One test per file: every cut of it refused as above. `what` names the files in the suite's title. */
export function truncationTests(format: ReliabilityFormat, what: string, files: () => string[]): void {
  describe(`${format.name}: every ${what} cut at its structural boundaries`, () => {
    const list = files();
    test(`there are ${what}s`, () => assert.ok(list.length > 0));
    for (const file of list) {
      test(path.basename(file), async () => {
        const bytes = new Uint8Array(fs.readFileSync(file));
        const wholeReadable = outcome(() => format.parse(bytes)).ok;
        const dir = tempDir(`trunc-${format.name}`);
        const cut = path.join(dir, `cut${format.extension}`);
        // Every boundary from memory (cheap), then the chosen cuts and samples through files too.
        for (const at of boundariesOf(format, bytes)) checkCut(outcome(() => format.parse(bytes.slice(0, at))), at, 'from memory', wholeReadable);
        const cuts = cutsFor(format, bytes);
        assert.ok(cuts.length >= 6, `only ${cuts.length} cuts`);
        for (const at of cuts) {
          const prefix = bytes.slice(0, at);
          fs.writeFileSync(cut, prefix);
          const results = [
            outcome(() => format.parse(prefix)),
            outcome(() => format.readSync(cut, false)),
            outcome(() => format.readSync(cut, true)),
            await outcomeAsync(() => format.read(cut, false)),
            await outcomeAsync(() => format.read(cut, true)),
          ];
          for (const [i, result] of results.entries()) {
            checkCut(result, at, ['from memory', 'sync eager', 'sync mapped', 'async eager', 'async mapped'][i] as string, wholeReadable);
          }
        }
      });
    }
  });
}
