/**
 * One open safetensors file: its validated header and its bytes, mapped (on the first read)
 * or read with pread, and the arrays built from them (views into the mapping where aligned,
 * else copies, each saying why).
 */
import { constants as bufferConstants } from 'node:buffer';

import { dtypeInfo } from '../../dtype.js';
import { TensorioError } from '../../errors.js';
import {
  allocateForRead,
  closeQuietly,
  mapFile,
  openForRead,
  openForReadAsync,
  readExactly,
  readExactlySync,
  unmapBuffer,
} from '../../io.js';
import type { LoadedArray } from '../../ndarray.js';
import { native } from '../../native.js';
import { parseHeader, safetensorsHeaderLength, type ParsedHeader, type SafetensorsEntry } from './header.js';
import type { Run } from './slice.js';


// V8's TypedArray length limit, which Node publishes as the Buffer limit (2^32 on Node 20).
export const MAX_TYPED_ARRAY_LENGTH = bufferConstants.MAX_LENGTH;

// An async open reads this much with the open itself (one trip to the thread pool): the
// header of about 1,200 tensors at 100 bytes each. A longer header takes a second trip (about
// 1 ms in a fresh process) for exactly its length. Not more: every byte read lands in memory the
// worker touches (a 256 KiB first read took 0.8 ms on a VM where a page touched for the first
// time costs 12.5 µs), and under glibc's 128 KiB mmap threshold the buffer reuses freed memory.
const FIRST_READ = 120 * 1024;

export class Shard {
  readonly path: string;
  readonly header: ParsedHeader;
  private readonly size: number;
  private fd: number | undefined;
  private closed = false;
  // Mapping is deferred to the first read: handing V8 gigabytes of external memory makes it
  // schedule garbage collection, a cost that would make opening depend on the data size.
  private wantMap: boolean;
  private mapping: ArrayBuffer | undefined;
  private mapReasonValue: string | undefined;
  // Async reads in flight, and whether close() waits for them: closing the descriptor under a
  // pending pread could let the number be reused by another open file and read from it.
  private reading = 0;
  private closeWhenIdle = false;

  constructor(path: string, header: ParsedHeader, fd: number, size: number, mmap: boolean) {
    this.path = path;
    this.header = header;
    this.size = size;
    this.fd = fd;
    this.wantMap = mmap && native !== null;
    if (mmap && !native) this.mapReasonValue = 'the native addon is not loaded';
  }

  /** True when the file is (or, before the first read, will be) mapped. */
  get mapped(): boolean {
    return this.mapping !== undefined || this.wantMap;
  }

  /** Why the file is read rather than mapped, when mapping was asked for. */
  get mapReason(): string | undefined {
    return this.mapReasonValue;
  }

  /** The mapping of the whole file, made now if needed; undefined when the file is read. */
  private ensureMapping(): ArrayBuffer | undefined {
    if (!this.wantMap || this.fd === undefined) return this.mapping;
    this.wantMap = false;
    const result = mapFile(this.fd, this.size, false, this.path);
    if (!result.buffer) {
      this.mapReasonValue = result.reason;
      return undefined;
    }
    this.mapping = result.buffer;
    // A mapping of the whole file needs no descriptor.
    if (this.reading === 0) this.closeFd();
    return this.mapping;
  }

  static async open(path: string, mmap: boolean): Promise<Shard> {
    // One trip to the thread pool opens the file, sizes it and reads the first FIRST_READ bytes.
    const { fd, size, prefix } = await openForReadAsync(path, FIRST_READ);
    try {
      const n = safetensorsHeaderLength(prefix, size, path);
      let json = prefix.subarray(8, 8 + n);
      if (8 + n > prefix.length) {
        // The part already read is kept; the second trip reads only the rest.
        json = new Uint8Array(n);
        json.set(prefix.subarray(8));
        await readExactly(fd, prefix.length, json.subarray(prefix.length - 8), path, 'safetensors header');
      }
      return new Shard(path, parseHeader(json, size, path), fd, size, mmap);
    } catch (error) {
      closeQuietly(fd);
      throw error;
    }
  }

  static openSync(path: string, mmap: boolean): Shard {
    const { fd, size } = openForRead(path);
    try {
      // Reads are cheap here (no trip to the thread pool), so the length first, then the header.
      const lengthField = new Uint8Array(Math.min(size, 8));
      readExactlySync(fd, 0, lengthField, path, 'safetensors header');
      const json = new Uint8Array(safetensorsHeaderLength(lengthField, size, path));
      readExactlySync(fd, 8, json, path, 'safetensors header');
      return new Shard(path, parseHeader(json, size, path), fd, size, mmap);
    } catch (error) {
      closeQuietly(fd);
      throw error;
    }
  }

  private requireOpen(): void {
    if (this.closed) throw new TensorioError('ERR_CLOSED', 'the safetensors file is closed', { path: this.path });
  }

  /**
   * The runs of a tensor as one array: a view into the mapping when they are one aligned run
   * inside it, else a fresh buffer, copied from the mapping or filled by `read`.
   */
  private build(entry: SafetensorsEntry, shape: number[], runs: Run[], length: number, read: (target: Uint8Array, runs: Run[]) => void | Promise<void>) {
    const info = dtypeInfo(entry.dtype);
    const elements = (length / info.itemSize) * info.lanes;
    if (elements > MAX_TYPED_ARRAY_LENGTH) {
      throw new TensorioError(
        'ERR_TOO_LARGE',
        `tensor '${entry.name}' has ${elements} elements, more than one TypedArray holds here (${MAX_TYPED_ARRAY_LENGTH}); read it in parts with getSlice`,
        { path: this.path },
      );
    }
    if (length === 0) return { done: { dtype: entry.dtype, shape, data: new info.array(0), mapped: false } as LoadedArray };
    const base = this.header.dataStart + entry.dataOffsets[0];
    const mapping = this.ensureMapping();
    const first = runs[0] as Run;
    const aligned = (base + first.start) % info.array.BYTES_PER_ELEMENT === 0;
    if (mapping && runs.length === 1 && aligned) {
      const data = new info.array(mapping, base + first.start, elements);
      return { done: { dtype: entry.dtype, shape, data, mapped: true } as LoadedArray };
    }
    const reason = !mapping
      ? this.mapReasonValue
      : runs.length > 1
        ? 'the selected rows are not contiguous in the file'
        : `the data starts at byte ${base + first.start}, not a multiple of the ${entry.dtype} element size ${info.array.BYTES_PER_ELEMENT} (its writer did not align it)`;
    const buffer = allocateForRead(length);
    const target = new Uint8Array(buffer);
    const finish = (): LoadedArray => {
      const array: LoadedArray = { dtype: entry.dtype, shape, data: new info.array(buffer, 0, elements), mapped: false };
      return reason === undefined ? array : { ...array, copyReason: reason };
    };
    if (mapping) {
      let at = 0;
      for (const run of runs) {
        target.set(new Uint8Array(mapping, base + run.start, run.length), at);
        at += run.length;
      }
      return { done: finish() };
    }
    return { pending: read(target, runs), finish };
  }

  async load(entry: SafetensorsEntry, shape: number[], runs: Run[], length: number): Promise<LoadedArray> {
    this.requireOpen();
    const built = this.build(entry, shape, runs, length, async (target, pieces) => {
      const fd = this.fd as number;
      const base = this.header.dataStart + entry.dataOffsets[0];
      let at = 0;
      for (const run of pieces) {
        await readExactly(fd, base + run.start, target.subarray(at, at + run.length), this.path, `data of tensor '${entry.name}'`);
        at += run.length;
      }
    });
    if ('done' in built) return built.done as LoadedArray;
    this.reading++;
    try {
      await built.pending;
    } finally {
      this.reading--;
      if (this.reading === 0 && this.closeWhenIdle) this.closeFd();
    }
    return built.finish();
  }

  loadSync(entry: SafetensorsEntry, shape: number[], runs: Run[], length: number): LoadedArray {
    this.requireOpen();
    const built = this.build(entry, shape, runs, length, (target, pieces) => {
      const fd = this.fd as number;
      const base = this.header.dataStart + entry.dataOffsets[0];
      let at = 0;
      for (const run of pieces) {
        readExactlySync(fd, base + run.start, target.subarray(at, at + run.length), this.path, `data of tensor '${entry.name}'`);
        at += run.length;
      }
    });
    if ('done' in built) return built.done as LoadedArray;
    return built.finish();
  }

  private closeFd(): void {
    if (this.fd !== undefined) closeQuietly(this.fd);
    this.fd = undefined;
  }

  close(unmap: boolean): void {
    this.closed = true;
    this.wantMap = false;
    if (this.reading > 0) this.closeWhenIdle = true;
    else this.closeFd();
    if (unmap && this.mapping) unmapBuffer(this.mapping);
    this.mapping = undefined;
  }
}
