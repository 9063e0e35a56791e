/**
 * The public shapes of the safetensors reader: options, what a read returns, and the lazy
 * file view's interface (implemented in view.ts).
 */
import type { LoadedArray } from '../../ndarray.js';
import type { SafetensorsEntry } from './header.js';
import type { SafetensorsIndex } from './sharded.js';

/** Where a tensor lives and what it is, as {@link SafetensorsFile.info} reports it. */
export interface SafetensorsTensorInfo extends SafetensorsEntry {
  /** The file holding the tensor (a shard, for sharded checkpoints). */
  readonly file: string;
  /** Absolute offset of the tensor's first byte in `file`. */
  readonly byteOffset: number;
  readonly byteLength: number;
}

/** Options of {@link readSafetensors}. */
export interface SafetensorsReadOptions {
  /**
   * Map the file(s) and return views into the mapping instead of reading. Default false: an
   * eager read (like `safetensors.numpy.load_file`), so the arrays do not depend on the file.
   * A tensor whose offset is not a multiple of its element size (files whose writer did not
   * pad the header) is copied out of the mapping instead; each array says which in `mapped`
   * and `copyReason`. Without the native addon every tensor is read.
   */
  mmap?: boolean;
}

/** Options of {@link openSafetensors}. */
export interface SafetensorsOpenOptions {
  /** Map the file(s) (default true, like `safe_open`); false reads each tensor with pread. */
  mmap?: boolean;
}

/** What {@link readSafetensors} returns. */
export interface SafetensorsContents {
  /** The tensors, keyed by name, in sorted name order. */
  tensors: Record<string, LoadedArray>;
  /** The file's `__metadata__` (of the first shard, for a sharded checkpoint); {} when absent. */
  metadata: Record<string, string>;
}

/**
 * A range along one leading axis for {@link SafetensorsFile.getSlice}: `[start, end)` with
 * `0 <= start <= end <= dim`, or null for the whole axis.
 */
export type SliceRange = readonly [number, number] | null;

/** A safetensors file (or a sharded checkpoint) opened lazily: only headers are read. */
export interface SafetensorsFile {
  /** The path given to {@link openSafetensors}. */
  readonly path: string;
  /** `__metadata__` (of the first shard, for a sharded checkpoint); {} when absent. */
  readonly metadata: Record<string, string>;
  /** The files behind this view: the file itself, or every shard. */
  readonly files: readonly string[];
  /** The parsed index, for a sharded checkpoint. */
  readonly index: SafetensorsIndex | undefined;
  /**
   * True when the file(s) are memory-mapped. The mapping itself is made on the first read, so
   * opening costs the same whatever the data size.
   */
  readonly mapped: boolean;
  /** Why the file(s) are not mapped although mapping was asked for. */
  readonly copyReason: string | undefined;
  /** Tensor names, sorted by code point (the order of Python's `safe_open.keys()`). */
  keys(): string[];
  /** Tensor names in the order of their data in the file(s). */
  offsetKeys(): string[];
  has(name: string): boolean;
  /**
   * Dtype, shape and byte range of a tensor, without reading it.
   * @throws TensorioError `ERR_NOT_FOUND_IN_ARCHIVE` for an unknown name.
   */
  info(name: string): SafetensorsTensorInfo;
  /**
   * A tensor. Mapped: a view into the mapping when its offset is aligned for its dtype (no
   * bytes read up front), else a copy, as `mapped` and `copyReason` say. Not mapped: read.
   * @throws TensorioError `ERR_NOT_FOUND_IN_ARCHIVE`, `ERR_CLOSED`, `ERR_TOO_LARGE` (more
   * elements than one TypedArray holds: 2^32 on Node 20; use getSlice), `ERR_IO`.
   */
  get(name: string): Promise<LoadedArray>;
  /** Synchronous {@link get}. */
  getSync(name: string): LoadedArray;
  /**
   * Part of a tensor, read without the rest: `ranges[i]` selects `[start, end)` along axis i
   * (null: the whole axis); axes past `ranges.length` are whole. Only the bytes of the selected
   * rows are read. A selection along axis 0 alone of a mapped, aligned tensor is a view.
   * @throws TensorioError `ERR_INVALID_ARGUMENT` for a range outside the shape, plus
   * those of {@link get}.
   */
  getSlice(name: string, ranges: readonly SliceRange[]): Promise<LoadedArray>;
  /** Synchronous {@link getSlice}. */
  getSliceSync(name: string, ranges: readonly SliceRange[]): LoadedArray;
  /**
   * Closes the files. Arrays already returned stay valid: a mapping is released when the
   * last view into it is garbage-collected. `{ unmap: true }` releases mappings at once;
   * every view into them then becomes empty (length 0) rather than dangling.
   */
  close(options?: { unmap?: boolean }): void;
}
