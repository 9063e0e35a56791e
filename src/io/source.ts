/**
 * The one byte source every format reads through, and the way a format's parser is written
 * once for both the synchronous and the asynchronous API.
 *
 * A {@link ByteSource} is a file read with positioned reads, or bytes already in memory: a
 * buffer the caller passed in, or a mapping of the whole file. Its contract:
 * - every read is bounds-checked against `size` before anything is allocated, so a hostile
 *   offset or length in a header costs nothing; a read past the end is {@link outOfBounds}
 *   (`ERR_TRUNCATED`, the same error a file that shrinks under a read gives), a position or
 *   length that is not a non-negative safe integer is `ERR_INVALID_ARGUMENT` (a parser bug or
 *   an unchecked field: formats validate their fields and give their own codes first);
 * - `read`/`readAsync` return a VIEW into the memory when the source is in memory (no copy:
 *   do not modify it unless the bytes are yours) and fresh memory otherwise; `readCopy` is
 *   always fresh memory, for bytes handed to a caller;
 * - `readInto`/`readIntoAsync` always fill the caller's memory; the async one runs on the
 *   thread pool, in parallel parts when large (src/io/read.ts), for a file;
 * - `inMemory` says reads are views (formats hand those out as their arrays' data); the
 *   memory is kept as an ArrayBuffer and every read makes its own view, so a mapped archive
 *   larger than one Uint8Array can be (4 GiB on Node 20) is still mapped; `mapped` tells a
 *   live mapping from a plain buffer, and `mapReason` (one of {@link COPY_REASONS}) says why
 *   a file asked to be mapped was not;
 * - the source never closes its file: whoever opened the descriptor closes it (`fd`).
 *
 * Walkers: a parser is a generator that yields the reads it needs ({@link ReadRequest}) and
 * receives their bytes ({@link Reads}); {@link runSync} and {@link runAsync} drive it over a
 * source, so the sync and async readers of a format are the same code.
 */
import { constants as bufferConstants } from 'node:buffer';

import { TensorioError } from '../errors.js';
import { COPY_REASONS } from './copy-reasons.js';
import { canMap, mapFile, unmapBuffer } from './map.js';
import { readExactly, readExactlySync } from './read.js';

export { COPY_REASONS } from './copy-reasons.js';

/** A read a walker needs: `length` bytes at `position`, named `what` for the error messages. */
export type ReadRequest = readonly [position: number, length: number, what: string];

/** A format's walker: yields reads, receives their bytes, returns its result. */
export type Reads<T> = Generator<ReadRequest, T, Uint8Array>;

/**
 * The one out-of-bounds error: `length` bytes at `position` reach past the end of a source of
 * `size` bytes.
 */
export function outOfBounds(path: string, what: string, position: number, length: number, size: number): TensorioError {
  return new TensorioError('ERR_TRUNCATED', `file ends inside the ${what}: expected ${length} bytes at offset ${position}, found ${Math.max(0, size - position)}`, { path });
}

/** Where a file's bytes come from; see the module comment for the contract. */
export class ByteSource {
  private constructor(
    /** The open file (its opener closes it), or null for bytes passed in. */
    readonly fd: number | null,
    /** The bytes in memory (a mapping or the caller's buffer), from `memoryOffset` on. */
    private readonly memory: ArrayBuffer | undefined,
    private readonly memoryOffset: number,
    /** True when the memory is a live mapping of the file. */
    readonly mapped: boolean,
    readonly size: number,
    readonly path: string,
    /** Why a file asked to be mapped is read with positioned reads instead. */
    readonly mapReason: string | undefined,
  ) {}

  /**
   * A source over an open file of `size` bytes. With `map: true` the whole file is mapped
   * when it can be (then reads are views into the mapping); otherwise, and when mapping is
   * refused ({@link mapReason} says why), reads are positioned reads.
   */
  static ofFile(fd: number, size: number, path: string, options: { map?: boolean } = {}): ByteSource {
    if (options.map) {
      const result = size === 0 && canMap() ? { reason: COPY_REASONS.emptyFile } : mapFile(fd, size, false, path);
      if (result.buffer) return new ByteSource(fd, result.buffer, 0, true, size, path, undefined);
      return new ByteSource(fd, undefined, 0, false, size, path, result.reason);
    }
    return new ByteSource(fd, undefined, 0, false, size, path, undefined);
  }

  /** A source over bytes in memory; `mapped` when they are a mapping of the file. */
  static ofBytes(bytes: Uint8Array, path: string, mapped = false): ByteSource {
    return new ByteSource(null, bytes.buffer as ArrayBuffer, bytes.byteOffset, mapped, bytes.length, path, undefined);
  }

  /** True when the bytes are in memory (mapped or passed in): reads are views, not copies. */
  get inMemory(): boolean {
    return this.memory !== undefined;
  }

  /**
   * This file with the whole of it mapped now: a source whose reads are views, or, when
   * mapping is refused, one that reads and says why ({@link mapReason}). A source already in
   * memory is returned as it is. For formats that map only once a mapped read is asked for.
   */
  withMapping(): ByteSource {
    if (this.memory || this.fd === null) return this;
    return ByteSource.ofFile(this.fd, this.size, this.path, { map: true });
  }

  /**
   * Where [position, position + length) lies in memory: the buffer and the byte offset, for
   * a typed array over it (which may be larger than one Uint8Array can be). The range is
   * checked; the source must be {@link inMemory}.
   */
  memoryAt(position: number, length: number, what: string): { buffer: ArrayBuffer; byteOffset: number } {
    this.check(position, length, what);
    if (!this.memory) throw new TypeError(`ByteSource.memoryAt: ${this.path} is read, not in memory`);
    return { buffer: this.memory, byteOffset: this.memoryOffset + position };
  }

  /** Releases a mapping at once (views into it become empty); nothing for other sources. */
  unmap(): void {
    if (this.mapped && this.memory) unmapBuffer(this.memory);
  }

  /** The view of [position, position + length) of the memory; the range is checked. */
  private view(memory: ArrayBuffer, position: number, length: number, what: string): Uint8Array {
    if (length > bufferConstants.MAX_LENGTH) {
      throw new TensorioError('ERR_TOO_LARGE', `the ${what} is ${length} bytes, more than one Uint8Array can view on this Node (${bufferConstants.MAX_LENGTH})`, { path: this.path });
    }
    return new Uint8Array(memory, this.memoryOffset + position, length);
  }

  /** True when [position, position + length) lies inside the source (both safe integers). */
  contains(position: number, length: number): boolean {
    return Number.isSafeInteger(position) && Number.isSafeInteger(length) && position >= 0 && length >= 0 && position + length <= this.size;
  }

  private check(position: number, length: number, what: string): void {
    if (this.contains(position, length)) return;
    if (!Number.isSafeInteger(position) || !Number.isSafeInteger(length) || position < 0 || length < 0) {
      throw new TensorioError('ERR_INVALID_ARGUMENT', `the ${what} is asked for at offset ${position} with length ${length}: both must be non-negative integers`, { path: this.path });
    }
    throw outOfBounds(this.path, what, position, length, this.size);
  }

  /** `length` bytes at `position`: a view when in memory, else fresh memory. */
  read(position: number, length: number, what: string): Uint8Array {
    this.check(position, length, what);
    if (this.memory) return this.view(this.memory, position, length, what);
    const out = new Uint8Array(length);
    readExactlySync(this.fd as number, position, out, this.path, what);
    return out;
  }

  /** `length` bytes at `position` in fresh memory the caller owns: a copy when in memory. */
  readCopy(position: number, length: number, what: string): Uint8Array {
    const bytes = this.read(position, length, what);
    return this.memory ? bytes.slice() : bytes;
  }

  /** Asynchronous {@link read}: a file is read on the thread pool. */
  async readAsync(position: number, length: number, what: string): Promise<Uint8Array> {
    this.check(position, length, what);
    if (this.memory) return this.view(this.memory, position, length, what);
    const out = new Uint8Array(length);
    await readExactly(this.fd as number, position, out, this.path, what);
    return out;
  }

  /** Fills `target` with the bytes at `position`. */
  readInto(position: number, target: ArrayBufferView, what: string): void {
    this.check(position, target.byteLength, what);
    const bytes = asBytes(target);
    if (this.memory) bytes.set(this.view(this.memory, position, bytes.length, what));
    else readExactlySync(this.fd as number, position, bytes, this.path, what);
  }

  /** Asynchronous {@link readInto}: on the thread pool, in parallel parts when large, for a file. */
  async readIntoAsync(position: number, target: ArrayBufferView, what: string): Promise<void> {
    if (this.memory) return this.readInto(position, target, what);
    this.check(position, target.byteLength, what);
    await readExactly(this.fd as number, position, target, this.path, what);
  }
}

function asBytes(view: ArrayBufferView): Uint8Array {
  return view instanceof Uint8Array ? view : new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/** Runs a walker over a source with synchronous reads. */
export function runSync<T>(walk: Reads<T>, source: ByteSource): T {
  let step = walk.next();
  while (!step.done) step = walk.next(source.read(...step.value));
  return step.value;
}

/** Runs a walker over a source, each read on the thread pool (or a view, in memory). */
export async function runAsync<T>(walk: Reads<T>, source: ByteSource): Promise<T> {
  let step = walk.next();
  while (!step.done) step = walk.next(await source.readAsync(...step.value));
  return step.value;
}
