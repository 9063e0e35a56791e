/**
 * One open safetensors file: its validated header and its bytes through the one byte source
 * (src/io/source.ts), mapped on the first read or read with positioned reads, and the arrays
 * built from them (views into the mapping where aligned, else copies, each saying why). The
 * header is read by one walker for the sync and the async open.
 */
import { constants as bufferConstants } from 'node:buffer';

import { dtypeInfo } from '../../dtype.js';
import { TensorioError } from '../../errors.js';
import { canMap } from '../../io/map.js';
import { allocateForRead, closeQuietly, openForRead, openForReadAsync } from '../../io/read.js';
import { ByteSource, COPY_REASONS, runSync, type Reads } from '../../io/source.js';
import type { LoadedArray } from '../../ndarray.js';
import { headerReads, type ParsedHeader, type SafetensorsEntry } from './header.js';
import type { Run } from './slice.js';

// V8's TypedArray length limit, which Node publishes as the Buffer limit (2^32 on Node 20).
const MAX_TYPED_ARRAY_LENGTH = bufferConstants.MAX_LENGTH;

/**
 * The element count of `byteLength` bytes of a tensor's dtype.
 * @throws TensorioError `ERR_TOO_LARGE` when one TypedArray cannot hold them.
 */
export function elementCount(entry: { name: string; dtype: SafetensorsEntry['dtype'] }, byteLength: number, file: string): number {
  const info = dtypeInfo(entry.dtype);
  const elements = (byteLength / info.itemSize) * info.lanes;
  if (elements > MAX_TYPED_ARRAY_LENGTH) {
    throw new TensorioError(
      'ERR_TOO_LARGE',
      `tensor '${entry.name}' has ${elements} elements, more than one TypedArray holds here (${MAX_TYPED_ARRAY_LENGTH}); read it in parts with getSlice`,
      { path: file },
    );
  }
  return elements;
}

// An async open reads this much with the open itself (one trip to the thread pool): the
// header of about 1,200 tensors at 100 bytes each. A longer header takes a second trip (about
// 1 ms in a fresh process) for exactly its length. Not more: every byte read lands in memory the
// worker touches (a 256 KiB first read took 0.8 ms on a VM where a page touched for the first
// time costs 12.5 µs), and under glibc's 128 KiB mmap threshold the buffer reuses freed memory.
const FIRST_READ = 120 * 1024;

/**
 * Runs a walker over a file whose first bytes were read with the open: reads inside `prefix`
 * are views into it, a read past it keeps the part already read and reads only the rest.
 */
async function runAsyncAfter<T>(walk: Reads<T>, prefix: Uint8Array, source: ByteSource): Promise<T> {
  let step = walk.next();
  while (!step.done) {
    const [position, length, what] = step.value;
    if (position + length <= prefix.length) {
      step = walk.next(prefix.subarray(position, position + length));
      continue;
    }
    const bytes = new Uint8Array(length);
    const known = Math.max(0, Math.min(length, prefix.length - position));
    if (known > 0) bytes.set(prefix.subarray(position, position + known));
    await source.readIntoAsync(position + known, bytes.subarray(known), what);
    step = walk.next(bytes);
  }
  return step.value;
}

/** A copy still to be filled from the file: the runs, and the array once they are read. */
interface PendingRead {
  /** [absolute position in the file, the part of the array's buffer it fills] for each run. */
  parts: Array<[number, Uint8Array]>;
  what: string;
  finish: () => LoadedArray;
}

/** One open file of a view (the file itself, or one shard of a checkpoint). */
export class Shard {
  readonly path: string;
  readonly header: ParsedHeader;
  private fd: number | undefined;
  // The file's bytes: positioned reads, then (once a mapped read is asked for) the mapping;
  // undefined once closed. A closed file drops it: views handed out keep the mapping alive.
  private source: ByteSource | undefined;
  // Mapping is deferred to the first read: handing V8 gigabytes of external memory makes it
  // schedule garbage collection, a cost that would make opening depend on the data size.
  private wantMap: boolean;
  private mapReasonValue: string | undefined;
  // Async reads in flight, and whether close() waits for them: closing the descriptor under a
  // pending pread could let the number be reused by another open file and read from it.
  private reading = 0;
  private closeWhenIdle = false;

  private constructor(path: string, header: ParsedHeader, source: ByteSource, mmap: boolean) {
    this.path = path;
    this.header = header;
    this.fd = source.fd as number;
    this.source = source;
    this.wantMap = mmap && canMap();
    if (mmap && !canMap()) this.mapReasonValue = COPY_REASONS.noAddon;
  }

  /** True when the file is (or, before the first read, will be) mapped. */
  get mapped(): boolean {
    return this.source?.mapped === true || this.wantMap;
  }

  /** Why the file is read rather than mapped, when mapping was asked for. */
  get mapReason(): string | undefined {
    return this.mapReasonValue;
  }

  /** The source, mapped now if a mapping is wanted and not yet made. */
  private ensureMapping(): ByteSource {
    const source = this.openSource();
    if (!this.wantMap || this.fd === undefined) return source;
    this.wantMap = false;
    this.source = source.withMapping();
    if (!this.source.mapped) {
      this.mapReasonValue = this.source.mapReason;
      return this.source;
    }
    // A mapping of the whole file needs no descriptor.
    if (this.reading === 0) this.closeFd();
    return this.source;
  }

  static async open(path: string, mmap: boolean): Promise<Shard> {
    // One trip to the thread pool opens the file, sizes it and reads the first FIRST_READ bytes.
    const { fd, size, prefix } = await openForReadAsync(path, FIRST_READ);
    const source = ByteSource.ofFile(fd, size, path);
    try {
      return new Shard(path, await runAsyncAfter(headerReads(size, path), prefix, source), source, mmap);
    } catch (error) {
      closeQuietly(fd);
      throw error;
    }
  }

  static openSync(path: string, mmap: boolean): Shard {
    // Reads are cheap here (no trip to the thread pool), so the length first, then the header.
    const { fd, size } = openForRead(path);
    const source = ByteSource.ofFile(fd, size, path);
    try {
      return new Shard(path, runSync(headerReads(size, path), source), source, mmap);
    } catch (error) {
      closeQuietly(fd);
      throw error;
    }
  }

  /** The source to read from; refused once closed. */
  private openSource(): ByteSource {
    if (!this.source) throw new TensorioError('ERR_CLOSED', 'the safetensors file is closed', { path: this.path });
    return this.source;
  }

  /**
   * The runs of a tensor as one array: a view into the mapping when they are one aligned run
   * inside it, else a fresh buffer, copied from the mapping at once or left for the caller to
   * read (the parts of a {@link PendingRead}).
   */
  private build(entry: SafetensorsEntry, shape: number[], runs: Run[], length: number): LoadedArray | PendingRead {
    this.openSource();
    const info = dtypeInfo(entry.dtype);
    const elements = elementCount(entry, length, this.path);
    if (length === 0) return { dtype: entry.dtype, shape, data: new info.array(0), mapped: false } as LoadedArray;
    const base = this.header.dataStart + entry.dataOffsets[0];
    const source = this.ensureMapping();
    const mapping = source.mapped;
    const first = runs[0] as Run;
    const aligned = (base + first.start) % info.array.BYTES_PER_ELEMENT === 0;
    if (mapping && runs.length === 1 && aligned) {
      const at = source.memoryAt(base + first.start, first.length, `data of tensor '${entry.name}'`);
      const data = new info.array(at.buffer, at.byteOffset, elements);
      return { dtype: entry.dtype, shape, data, mapped: true } as LoadedArray;
    }
    const reason = !mapping
      ? this.mapReasonValue
      : runs.length > 1
        ? 'the selected rows are not contiguous in the file'
        : `the data starts at byte ${base + first.start}, not a multiple of the ${entry.dtype} element size ${info.array.BYTES_PER_ELEMENT} (its writer did not align it)`;
    const buffer = allocateForRead(length);
    const target = new Uint8Array(buffer);
    const parts: Array<[number, Uint8Array]> = [];
    let at = 0;
    for (const run of runs) {
      parts.push([base + run.start, target.subarray(at, at + run.length)]);
      at += run.length;
    }
    const finish = (): LoadedArray => {
      const array: LoadedArray = { dtype: entry.dtype, shape, data: new info.array(buffer, 0, elements), mapped: false };
      return reason === undefined ? array : { ...array, copyReason: reason };
    };
    const pending = { parts, what: `data of tensor '${entry.name}'`, finish };
    // Copies out of the mapping are made here, for the sync and the async read alike.
    return mapping ? this.fill(pending) : pending;
  }

  private fill(pending: PendingRead): LoadedArray {
    const source = this.openSource();
    for (const [position, part] of pending.parts) source.readInto(position, part, pending.what);
    return pending.finish();
  }

  async load(entry: SafetensorsEntry, shape: number[], runs: Run[], length: number): Promise<LoadedArray> {
    const built = this.build(entry, shape, runs, length);
    if (!('parts' in built)) return built;
    const source = this.openSource();
    this.reading++;
    try {
      for (const [position, part] of built.parts) await source.readIntoAsync(position, part, built.what);
    } finally {
      this.reading--;
      if (this.reading === 0 && this.closeWhenIdle) this.closeFd();
    }
    return built.finish();
  }

  loadSync(entry: SafetensorsEntry, shape: number[], runs: Run[], length: number): LoadedArray {
    const built = this.build(entry, shape, runs, length);
    return 'parts' in built ? this.fill(built) : built;
  }

  /** Fills `target` with the file's bytes at `position` (the eager reader's, never mapped). */
  readInto(position: number, target: Uint8Array, what: string): void {
    this.openSource().readInto(position, target, what);
  }

  /** Asynchronous {@link readInto}. */
  async readIntoAsync(position: number, target: Uint8Array, what: string): Promise<void> {
    const source = this.openSource();
    this.reading++;
    try {
      await source.readIntoAsync(position, target, what);
    } finally {
      this.reading--;
      if (this.reading === 0 && this.closeWhenIdle) this.closeFd();
    }
  }

  private closeFd(): void {
    if (this.fd !== undefined) closeQuietly(this.fd);
    this.fd = undefined;
  }

  close(unmap: boolean): void {
    this.wantMap = false;
    if (this.reading > 0) this.closeWhenIdle = true;
    else this.closeFd();
    if (unmap) this.source?.unmap();
    this.source = undefined;
  }
}
