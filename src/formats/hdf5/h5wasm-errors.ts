/**
 * HDF5's error stack inside h5wasm: switched from printing to throwing, and summarised.
 *
 * By default HDF5 prints its whole diagnostic stack (`HDF5-DIAG: Error detected in HDF5`,
 * 20 to 90 lines) to the process's stderr on every failed API call, and h5wasm's high-level
 * code often ignores the failed call's status: `get_attribute` then decodes a buffer HDF5
 * never filled, which returns garbage strings or makes HDF5 abort() while reclaiming them,
 * depending on what earlier allocations (of file names, among others) left in the heap. That
 * is why a damaged-file test passed under one checkout path and failed under another.
 *
 * h5wasm exposes `activate_throwing_error_handler()`, which installs an HDF5 automatic error
 * handler that prints the stack into a temporary file and throws it as a JavaScript Error
 * from inside the failing API call. Nothing reaches stderr, and h5wasm's code after the
 * failed call never runs, so a damaged file is refused at its first failure whatever the
 * heap holds. The handler leaves its temporary file open (the throw skips its fclose); with
 * h5wasm's NODERAWFS that is a real descriptor of a deleted file, so {@link releaseErrorFiles}
 * closes those after each error.
 */

/** The part of h5wasm's module this file uses. */
export interface ErrorHandlingModule {
  activate_throwing_error_handler(): number;
  FS?: { streams: ({ path?: string } | null | undefined)[]; close(stream: unknown): void };
}

/** Makes HDF5 throw its error stacks instead of printing them (once per h5wasm instance). */
export function throwHdf5Errors(module: ErrorHandlingModule): void {
  module.activate_throwing_error_handler();
}

/** True when `error` is an error stack thrown by HDF5's automatic error handler. */
export function isHdf5Stack(error: unknown): error is Error {
  return error instanceof Error && error.message.startsWith('HDF5-DIAG');
}

/**
 * The most specific line of an HDF5 error stack: the innermost frame (the highest `#NNN`),
 * without the source file's build path, e.g. `H5C__verify_len_eoa(): address of object past
 * end of allocation`. HDF5 lists the API call first and the place that failed last.
 */
export function hdf5StackSummary(message: string): string {
  const frames = message.split('\n').filter((line) => /^\s*#\d+:/.test(line));
  const last = frames[frames.length - 1];
  if (!last) return message.split('\n')[0] ?? message;
  const m = /\bin\s+(\S+\(\)):\s*(.*)$/.exec(last);
  return m ? `${m[1]}: ${m[2]}`.trim() : last.replace(/^\s*#\d+:\s*/, '').trim();
}

/**
 * Closes the temporary files the throwing handler left open (see the header comment), and the
 * descriptors of `file` when given: a write that failed inside H5Fcreate or H5Fclose leaves
 * HDF5's descriptor of it open, which would keep a removed file's blocks allocated.
 */
export function releaseErrorFiles(module: ErrorHandlingModule, file?: string): void {
  const fs = module.FS;
  if (!fs) return;
  for (const stream of fs.streams) {
    if (stream && typeof stream.path === 'string' && (stream.path.startsWith('/tmp/tmpfile_') || stream.path === file)) {
      try {
        fs.close(stream);
      } catch {
        // Already closed: nothing is left to release.
      }
    }
  }
}

/**
 * Runs `call` with process.stderr's writes dropped. When HDF5 abort()s, the Emscripten
 * runtime prints `Aborted(...)` through a `console.error` it bound when h5wasm loaded,
 * before throwing the RuntimeError that carries the same text; console.error looks up
 * process.stderr.write on every call, so replacing that method for the length of a
 * synchronous h5wasm call keeps the line off the caller's stderr. Nothing else can write
 * in between: the call is synchronous.
 */
export function withoutStderr<T>(call: () => T): T {
  const stderr = process.stderr;
  const write = Object.getOwnPropertyDescriptor(stderr, 'write');
  stderr.write = (() => true) as typeof stderr.write;
  try {
    return call();
  } finally {
    if (write) Object.defineProperty(stderr, 'write', write);
    else delete (stderr as { write?: unknown }).write;
  }
}
