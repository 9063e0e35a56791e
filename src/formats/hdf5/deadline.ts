/**
 * Deadlines for synchronous h5wasm calls (HDF5 loops forever on some damaged files); h5wasm.ts
 * runs every call of a file under its deadline.
 */
import * as vm from 'node:vm';

// A synchronous WebAssembly call cannot be interrupted from JavaScript, but V8 can stop it
// from a watchdog thread: node:vm runs a script with a timeout that way, and the call made
// from inside that script is stopped with it.
// Made on first use: a context costs milliseconds, which programs that never need h5wasm
// should not pay when they import tensorio.
let deadline: { script: vm.Script; context: { call: (() => void) | undefined } } | undefined;
let deadlineDepth = 0;

/** Runs `call` and stops it after `ms` (a nested call runs under the outer deadline). */
export function withDeadline<T>(call: () => T, ms: number): T {
  if (deadlineDepth > 0 || !Number.isFinite(ms)) return call();
  if (!deadline) {
    const context: { call: (() => void) | undefined } = { call: undefined };
    vm.createContext(context);
    deadline = { script: new vm.Script('call()', { filename: 'tensorio-h5wasm-deadline' }), context };
  }
  const { script, context } = deadline;
  let result: T | undefined;
  context.call = () => {
    result = call();
  };
  deadlineDepth++;
  try {
    script.runInContext(context, { timeout: Math.max(1, Math.ceil(ms)) });
  } finally {
    deadlineDepth--;
    context.call = undefined;
  }
  return result as T;
}

export function isDeadlineError(error: unknown): boolean {
  // Made in the script's context, so not an instance of this context's Error.
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'ERR_SCRIPT_EXECUTION_TIMEOUT';
}

/** True while a call runs under a deadline (a nested call then runs under the outer one). */
export function insideDeadline(): boolean {
  return deadlineDepth > 0;
}
