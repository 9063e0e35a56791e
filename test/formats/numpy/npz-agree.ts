/**
 * Whether the synchronous .npz readers agree with readNpz on a file (same arrays, or the same refusal).
 * Internal on purpose: bytesOf (src/ndarray.ts) compares the arrays' bytes.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';

import { TensorioError, decodeNpz, readNpz, readNpzSync, type LoadedArray } from '../../../src/index.js';
import { bytesOf } from '../../../src/ndarray.js';

type Outcome = { ok: true; arrays: Record<string, unknown> } | { ok: false; code: string };

function summary(arrays: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(arrays)) {
    const a = value as LoadedArray;
    out[key] = a.dtype === undefined ? value : { dtype: a.dtype, shape: a.shape, bytes: Buffer.from(bytesOf(a.data)).toString('hex') };
  }
  return out;
}

async function outcome(action: () => unknown): Promise<Outcome> {
  try {
    return { ok: true, arrays: summary((await action()) as Record<string, unknown>) };
  } catch (error) {
    assert.ok(error instanceof TensorioError, String(error));
    return { ok: false, code: error.code };
  }
}

/** readNpzSync (eager and mapped) and decodeNpz give what readNpz gives, with and without allowPickle. */
export async function assertSyncReadersAgree(file: string): Promise<void> {
  for (const allowPickle of [false, true]) {
    const expected = await outcome(() => readNpz(file, { allowPickle }));
    assert.deepEqual(await outcome(() => readNpzSync(file, { allowPickle })), expected, 'sync eager');
    assert.deepEqual(await outcome(() => readNpzSync(file, { allowPickle, mmap: true })), expected, 'sync mapped');
    assert.deepEqual(await outcome(() => decodeNpz(new Uint8Array(fs.readFileSync(file)), { allowPickle })), expected, 'from memory');
  }
}
