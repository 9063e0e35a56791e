/** `expectCode`: the assertion every error-code test of the containers area uses. */
import assert from 'node:assert/strict';

import { TensorioError, type ErrorCode } from '../src/index.js';

/** Runs `action` (sync or async) and asserts it throws a TensorioError with `code` (and `message`). */
export async function expectCode(action: () => unknown, code: ErrorCode, message?: RegExp): Promise<TensorioError> {
  try {
    await action();
  } catch (error) {
    assert.ok(error instanceof TensorioError, `expected a TensorioError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    if (message) assert.match(error.message, message);
    return error;
  }
  assert.fail(`expected ${code}, nothing was thrown`);
}
