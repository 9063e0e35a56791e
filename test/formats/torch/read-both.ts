/**
 * The PyTorch tests' reader of files that may be refused: readTorch, with readTorchSync
 * required to read or fail the same way (hostile.test.ts, tar.test.ts).
 */
import * as path from 'node:path';

import assert from 'node:assert/strict';

import { readTorch, readTorchSync, TensorioError, type TorchReadOptions, type TorchValue } from '../../../src/index.js';

/** readTorch, and readTorchSync must fail the same way. */
export async function readBoth(target: string, options: TorchReadOptions = {}): Promise<TorchValue> {
  let syncError: unknown;
  try {
    readTorchSync(target, options);
  } catch (error) {
    syncError = error;
  }
  let value: TorchValue;
  try {
    value = await readTorch(target, options);
  } catch (error) {
    assert.ok(syncError instanceof TensorioError, `readTorchSync did not throw a TensorioError for ${path.basename(target)}: ${String(syncError)}`);
    assert.equal(syncError.code, (error as TensorioError).code, syncError.message);
    throw error;
  }
  assert.equal(syncError, undefined, 'readTorchSync threw where readTorch read');
  return value;
}
