/**
 * Positioned reads into caller-owned memory: whole or in parallel parts on the thread pool,
 * `readExactly*` (a short read is `ERR_TRUNCATED`), buffers for eager reads, and opening a
 * file for reading. Uses the native addon when it is loaded and plain `fs` otherwise.
 * Formats read through src/io/source.ts; this module is its file half.
 */
import * as fs from 'node:fs';

import { fromSystemError, TensorioError } from '../errors.js';
import { native } from '../native.js';

// fs moves at most 2 GiB - 1 per call; larger spans are looped in 1 GiB steps.
export const FS_STEP = 1 << 30;

/** `length` bytes of `view` from `start`, as bytes. */
export function viewBytes(view: ArrayBufferView, start: number, length: number): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset + start, length);
}

// Reads from 64 MiB up are split into up to four parts of whole 2 MiB (huge) pages, read at
// once on the thread pool: one thread faulting in fresh pages and copying from the page cache
// leaves the other cores idle. Measured on a 2 GiB file, warm cache, 2-core VM, six rounds
// interleaved: one pread 297-1,552 ms (median 963), four parts 179-205 ms (median 200),
// dd bs=16M 187-227 ms. Synchronous reads split the same way natively, on the addon's own
// threads (readSafetensorsSync of a 2 GiB file, nine rounds interleaved: one pread 284-5,627 ms,
// median 1,435; four parts 198-1,206 ms, median 213; dd 176-303 ms, median 226).
const SPLIT_FROM = 64 << 20;
const MAX_PARTS = 4;
const PART_GRAIN = 2 << 20;

// Buffers from 4 MiB up come from the addon, which collects dropped ones before making more
// (native/mapping.cc, Allocate): with `new ArrayBuffer`, a process reading a 512 MiB file
// over and over held three at once. Below that, V8's own allocator is as good and cheaper.
const ADDON_BUFFER_FROM = 4 << 20;

/** A zero-filled buffer of `length` bytes for an eager read to fill. */
export function allocateForRead(length: number): ArrayBuffer {
  if (native?.allocate && length >= ADDON_BUFFER_FROM) return native.allocate(length);
  return new ArrayBuffer(length);
}

/** Reads into `target` from `position`; returns the bytes read (fewer only at end of file). */
export function readAt(fd: number, position: number, target: ArrayBufferView, file: string): Promise<number> {
  const partLength = splitPartLength(target.byteLength);
  return partLength === undefined ? readAtOnce(fd, position, target, file) : readAtSplit(fd, position, target, partLength, file);
}

/** The part length a read of `length` bytes is split into (whole huge pages, at most MAX_PARTS parts), or undefined for one read. */
function splitPartLength(length: number): number | undefined {
  return length < SPLIT_FROM ? undefined : Math.ceil(length / MAX_PARTS / PART_GRAIN) * PART_GRAIN;
}

async function readAtSplit(fd: number, position: number, target: ArrayBufferView, partLength: number, file: string): Promise<number> {
  const length = target.byteLength;
  const parts: Promise<number>[] = [];
  for (let at = 0; at < length; at += partLength) {
    parts.push(readAtOnce(fd, position + at, viewBytes(target, at, Math.min(partLength, length - at)), file));
  }
  const counts = await Promise.all(parts);
  // A short part means the file ended there: the bytes read are the contiguous prefix.
  let total = 0;
  for (const count of counts) {
    total += count;
    if (count < partLength) break;
  }
  return total;
}

function readAtOnce(fd: number, position: number, target: ArrayBufferView, file: string): Promise<number> {
  if (target.byteLength === 0) return Promise.resolve(0);
  if (native) {
    const binding = native;
    return new Promise((resolve, reject) => {
      binding.read(fd, position, target, (error, bytes) => {
        if (error) reject(fromSystemError(error, file, 'read'));
        else resolve(bytes as number);
      });
    });
  }
  return (async () => {
    let done = 0;
    try {
      while (done < target.byteLength) {
        const step = Math.min(target.byteLength - done, FS_STEP);
        const { bytesRead } = await fsRead(fd, viewBytes(target, done, step), position + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
    } catch (error) {
      throw fromSystemError(error, file, 'read');
    }
    return done;
  })();
}

function fsRead(fd: number, buffer: Uint8Array, position: number): Promise<{ bytesRead: number }> {
  return new Promise((resolve, reject) => {
    fs.read(fd, buffer, 0, buffer.byteLength, position, (error, bytesRead) => (error ? reject(error) : resolve({ bytesRead })));
  });
}

/** Synchronous {@link readAt}. */
export function readAtSync(fd: number, position: number, target: ArrayBufferView, file: string): number {
  if (target.byteLength === 0) return 0;
  try {
    if (native) return native.readSync(fd, position, target, splitPartLength(target.byteLength));
    let done = 0;
    while (done < target.byteLength) {
      const step = Math.min(target.byteLength - done, FS_STEP);
      const bytesRead = fs.readSync(fd, viewBytes(target, done, step), 0, step, position + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done;
  } catch (error) {
    throw fromSystemError(error, file, 'read');
  }
}

function truncated(file: string, what: string, position: number, wanted: number, got: number): TensorioError {
  return new TensorioError(
    'ERR_TRUNCATED',
    `file ends inside the ${what}: expected ${wanted} bytes at offset ${position}, found ${got}`,
    { path: file },
  );
}

/** Reads exactly `target.byteLength` bytes or throws `ERR_TRUNCATED` naming `what`. */
export async function readExactly(fd: number, position: number, target: ArrayBufferView, file: string, what: string): Promise<void> {
  const got = await readAt(fd, position, target, file);
  if (got !== target.byteLength) throw truncated(file, what, position, target.byteLength, got);
}

/** Synchronous {@link readExactly}. */
export function readExactlySync(fd: number, position: number, target: ArrayBufferView, file: string, what: string): void {
  const got = readAtSync(fd, position, target, file);
  if (got !== target.byteLength) throw truncated(file, what, position, target.byteLength, got);
}

/** Opens a file for reading and returns its descriptor and size (a regular file only). */
export function openForRead(file: string, writable = false): { fd: number; size: number } {
  let fd: number;
  try {
    fd = fs.openSync(file, writable ? 'r+' : 'r');
  } catch (error) {
    throw fromSystemError(error, file, 'open');
  }
  try {
    const stat = fs.fstatSync(fd);
    if (stat.isDirectory()) throw new TensorioError('ERR_IS_DIRECTORY', 'is a directory, not a file', { path: file });
    return { fd, size: stat.size };
  } catch (error) {
    fs.closeSync(fd);
    throw fromSystemError(error, file, 'stat');
  }
}

/** An open file: its descriptor, its size, and its first bytes. */
export interface OpenedFile {
  fd: number;
  size: number;
  /** The first min(prefixLength, size) bytes. */
  prefix: Uint8Array;
}

/**
 * Asynchronous {@link openForRead} that also reads the file's first `prefixLength` bytes
 * (a header). Natively this is one trip to the thread pool instead of three.
 */
export async function openForReadAsync(file: string, prefixLength: number, writable = false): Promise<OpenedFile> {
  if (native) {
    const binding = native;
    return new Promise((resolve, reject) => {
      binding.open(file, writable, prefixLength, (error, fd, size, prefix) => {
        if (error) reject(fromSystemError(error, file, 'open'));
        else resolve({ fd: fd as number, size: size as number, prefix: new Uint8Array(prefix as ArrayBuffer) });
      });
    });
  }
  let fd: number;
  try {
    fd = await new Promise<number>((resolve, reject) => fs.open(file, writable ? 'r+' : 'r', (e, d) => (e ? reject(e) : resolve(d))));
  } catch (error) {
    throw fromSystemError(error, file, 'open');
  }
  try {
    const stat = await new Promise<fs.Stats>((resolve, reject) => fs.fstat(fd, (e, s) => (e ? reject(e) : resolve(s))));
    if (stat.isDirectory()) throw new TensorioError('ERR_IS_DIRECTORY', 'is a directory, not a file', { path: file });
    const prefix = new Uint8Array(Math.min(prefixLength, stat.size));
    const got = await readAt(fd, 0, prefix, file);
    return { fd, size: stat.size, prefix: prefix.subarray(0, got) };
  } catch (error) {
    closeQuietly(fd);
    throw fromSystemError(error, file, 'read');
  }
}

/** Closes a descriptor, ignoring errors (read paths have nothing left to flush). */
export function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // Nothing to recover: the descriptor is being given up either way.
  }
}
