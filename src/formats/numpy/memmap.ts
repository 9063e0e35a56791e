/**
 * Writable mappings of `.npy` files, as `numpy.lib.format.open_memmap` makes them: 'r+' maps an
 * existing file, 'w+' creates one; without a mapping, the data is held in memory and each flush
 * rewrites the file atomically.
 */
import { checkOptions, keysOf } from '../../options.js';
import * as fs from 'node:fs';

import { dtypeInfo, type DType } from '../../dtype.js';
import { fromSystemError, TensorioError } from '../../errors.js';
import { createTempFor, type WriteOptions, WRITE_OPTION_KEYS } from '../../io/atomic-writer.js';
import { canMap, mapFile, syncMapping, unmapBuffer } from '../../io/map.js';
import { closeQuietly, openForRead } from '../../io/read.js';
import { ByteSource, COPY_REASONS, runSync } from '../../io/source.js';
import { shapeSize, type NdArray } from '../../ndarray.js';
import { arrayFromBuffer } from './array.js';
import { encodeNpyHeader, storesFortran } from './header.js';
import { headerWalk, mapPlanned, planRead, readInfo } from './read.js';
import { writeNpySync } from './write.js';

/** The options openNpy takes (checked: a misspelt key is ERR_INVALID_ARGUMENT). */
export const OPEN_NPY_OPTIONS = keysOf<OpenNpyOptions>({ ...WRITE_OPTION_KEYS, mode: true, dtype: true, shape: true, order: true, maxHeaderSize: true });

/** Options of {@link openNpy}. */
export interface OpenNpyOptions extends WriteOptions {
  /** 'r+' opens an existing file for reading and writing; 'w+' creates (or replaces) one. */
  mode: 'r+' | 'w+';
  /** Required with 'w+'. */
  dtype?: DType;
  /** Required with 'w+'. */
  shape?: number[];
  /** Layout of a new file; default 'C'. */
  order?: 'C' | 'F';
  /** Largest header accepted with 'r+'. Default 10,000. */
  maxHeaderSize?: number;
}

/** A `.npy` file open for modification in place through {@link NdArray.data}. */
export interface NpyMemmap extends NdArray {
  readonly path: string;
  /** True when `data` is a shared mapping of the file; false on the in-memory fallback. */
  readonly mapped: boolean;
  /** Why the file is not mapped, when it is not. */
  readonly copyReason?: string;
  /**
   * Makes the file hold the current data. Mapped: msync (and, for a new file, the first flush
   * moves it into place). Not mapped: the whole file is rewritten atomically.
   */
  flush(): void;
  /** Flushes, then releases the mapping; `data` becomes empty. Further calls do nothing. */
  close(): void;
}

class NpyMemmapImpl implements NpyMemmap {
  dtype: DType;
  shape: number[];
  data: NdArray['data'];
  order?: 'C' | 'F';
  readonly path: string;
  readonly mapped: boolean;
  readonly copyReason?: string;
  private closed = false;
  private pendingTemp: string | undefined;
  private readonly fsync: boolean;
  private readonly buffer: ArrayBuffer | undefined;

  constructor(init: {
    path: string;
    array: NdArray;
    mapping?: ArrayBuffer;
    pendingTemp?: string;
    copyReason?: string;
    fsync: boolean;
  }) {
    this.path = init.path;
    this.dtype = init.array.dtype;
    this.shape = init.array.shape;
    this.data = init.array.data;
    if (init.array.order === 'F') this.order = 'F';
    this.mapped = init.mapping !== undefined;
    this.buffer = init.mapping;
    this.pendingTemp = init.pendingTemp;
    if (init.copyReason !== undefined) this.copyReason = init.copyReason;
    this.fsync = init.fsync;
  }

  flush(): void {
    if (this.closed) throw new TensorioError('ERR_CLOSED', 'the mapping is closed', { path: this.path });
    if (!this.buffer) {
      writeNpySync(this.path, this, { fsync: this.fsync });
      return;
    }
    syncMapping(this.buffer);
    if (this.pendingTemp !== undefined) {
      // A new file appears at its path only once it is complete.
      try {
        fs.renameSync(this.pendingTemp, this.path);
      } catch (error) {
        throw new TensorioError('ERR_IO', `cannot move the new file into place: ${(error as Error).message}`, { path: this.path, cause: error });
      }
      this.pendingTemp = undefined;
    }
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    if (this.buffer) unmapBuffer(this.buffer);
  }
}

/**
 * Opens a `.npy` file for modification in place, like `numpy.lib.format.open_memmap`.
 *
 * 'w+' creates a file of `dtype` and `shape` filled with zeros; it is built next to the
 * target and appears at `path` on the first {@link NpyMemmap.flush} (or close), so a crash
 * before that leaves any old file intact. 'r+' maps an existing file; writes through `data`
 * reach the file directly, as with NumPy. Without the native addon, or for big-endian or
 * unaligned files, the data is held in memory and each flush rewrites the file atomically
 * (`mapped` is false and `copyReason` says why).
 *
 * @throws TensorioError `ERR_INVALID_ARGUMENT` for a missing dtype/shape with 'w+', and every
 * error of {@link readNpy} and {@link writeNpy}.
 */
export function openNpy(path: string, options: OpenNpyOptions): NpyMemmap {
  checkOptions(options, OPEN_NPY_OPTIONS, 'openNpy', path);
  const fsync = options.fsync ?? true;
  if (options.mode === 'w+') return createNpy(path, options, fsync);
  if (options.mode !== 'r+') {
    throw new TensorioError('ERR_INVALID_ARGUMENT', `openNpy mode must be 'r+' or 'w+', got '${String(options.mode)}'`, { path });
  }
  const { fd, size } = openForRead(path, true);
  try {
    const source = ByteSource.ofFile(fd, size, path);
    const plan = planRead(runSync(headerWalk(size, path, options), source), { mmap: true });
    const mapped = mapPlanned(plan, source, true);
    if (typeof mapped === 'object') return new NpyMemmapImpl({ path, array: mapped, mapping: mapped.data.buffer as ArrayBuffer, fsync });
    const { header } = plan;
    const buffer = new ArrayBuffer(header.dataLength);
    source.readInto(header.dataOffset, new Uint8Array(buffer), '.npy data');
    const array = arrayFromBuffer(header, buffer, 0, path, { mapped: false });
    return new NpyMemmapImpl({ path, array, fsync, ...readInfo(mapped) });
  } finally {
    closeQuietly(fd);
  }
}

function createNpy(path: string, options: OpenNpyOptions, fsync: boolean): NpyMemmap {
  if (options.dtype === undefined || options.shape === undefined) {
    throw new TensorioError('ERR_INVALID_ARGUMENT', "openNpy mode 'w+' needs dtype and shape", { path });
  }
  const info = dtypeInfo(options.dtype);
  const shape = [...options.shape];
  const elements = shapeSize(shape, path) * info.lanes;
  const array: NdArray = { dtype: options.dtype, shape, data: new info.array(0) };
  if (options.order === 'F') array.order = 'F';
  const header = encodeNpyHeader(options.dtype, shape, storesFortran(array));
  const total = header.length + (elements / info.lanes) * info.itemSize;
  if (!canMap()) {
    array.data = new info.array(elements);
    return new NpyMemmapImpl({ path, array, copyReason: COPY_REASONS.noAddon, fsync });
  }
  const { tempPath, fd } = createTempFor(path);
  try {
    fs.writeSync(fd, header);
    fs.ftruncateSync(fd, total);
    const result = mapFile(fd, total, true, path);
    if (!result.buffer) {
      fs.unlinkSync(tempPath);
      array.data = new info.array(elements);
      return new NpyMemmapImpl({ path, array, copyReason: result.reason, fsync });
    }
    array.data = new info.array(result.buffer, header.length, elements);
    return new NpyMemmapImpl({ path, array, mapping: result.buffer, pendingTemp: tempPath, fsync });
  } catch (error) {
    try {
      fs.unlinkSync(tempPath);
    } catch {
      // Already gone.
    }
    throw fromSystemError(error, path, 'create');
  } finally {
    closeQuietly(fd);
  }
}
