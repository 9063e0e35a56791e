/**
 * safetensors, as huggingface/safetensors (safetensors/src/tensor.rs) defines it.
 *
 * Layout: an unsigned 64-bit little-endian header length N, N bytes of UTF-8 JSON
 * (`{"__metadata__": {str: str}, "name": {"dtype": "F32", "shape": [2, 3],
 * "data_offsets": [begin, end]}, ...}`, padded with spaces to a multiple of 8 by the
 * reference writer), then the tensors' little-endian C-order bytes back to back. Offsets
 * are relative to the end of the header; together they must cover the rest of the file
 * exactly, without gaps or overlaps.
 */
import { checkOptions, OPTIONS } from '../options.js';
import { constants as bufferConstants } from 'node:buffer';
import * as fs from 'node:fs';
import * as nodePath from 'node:path';

import { dtypeFromSafetensors, dtypeInfo, type DTypeInfo, type DType } from '../dtype.js';
import { TensorioError } from '../errors.js';
import {
  allocateForRead,
  AtomicWriter,
  closeQuietly,
  mapFile,
  openForRead,
  openForReadAsync,
  readExactly,
  readExactlySync,
  unmapBuffer,
  type WriteOptions,
} from '../io.js';
import { asCOrder, bytesOf, shapeSize, validateNdArray, type LoadedArray, type NdArray } from '../ndarray.js';
import { native } from '../native.js';
import {
  compareCodePoints,
  encodeSafetensorsIndex,
  INDEX_SUFFIX,
  MAX_INDEX_SIZE,
  parseSafetensorsIndex,
  parseShardSize,
  planShards,
  shardFileName,
  shardNamePattern,
  type SafetensorsIndex,
} from './safetensors-sharded.js';

/** The reference implementation's bound on the header length (100 MB). */
export const SAFETENSORS_MAX_HEADER_SIZE = 100_000_000;

// The reference's `Dtype` enum in its declared order (increasing alignment). Its writer
// sorts tensors by this order, largest first, then by name; we use the same ranks so our
// files are byte-identical to its own. Names tensorio cannot hold (F4, F6_*, F8_E8M0) are
// listed so that reading them reports "unsupported" rather than "unknown".
const REFERENCE_DTYPE_ORDER = [
  'BOOL', 'F4', 'F6_E2M3', 'F6_E3M2', 'U8', 'I8', 'F8_E5M2', 'F8_E4M3', 'F8_E8M0',
  'I16', 'U16', 'F16', 'BF16', 'I32', 'U32', 'F32', 'C64', 'F64', 'I64', 'U64',
];

/** One tensor of a safetensors header. */
export interface SafetensorsEntry {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: number[];
  /** `[begin, end)` relative to the end of the header, as written in the file. */
  readonly dataOffsets: [number, number];
}

/** A parsed, validated safetensors header. */
export interface SafetensorsHeader {
  /** N, the header's length in bytes (padding included). */
  readonly headerLength: number;
  /** 8 + N: where the tensor data starts in the file. */
  readonly dataStart: number;
  /** `__metadata__`, or an empty object when the file has none. */
  readonly metadata: Record<string, string>;
  /** The tensors in data order. */
  readonly entries: SafetensorsEntry[];
}

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

// ---------------------------------------------------------------------------------------
// Header parsing

function ownSet<T>(target: Record<string, T>, key: string, value: T): void {
  // Keys come from files: '__proto__' must become an own property, not a prototype.
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function badHeader(file: string, what: string): TensorioError {
  return new TensorioError('ERR_BAD_HEADER', `malformed safetensors header: ${what}`, { path: file });
}

/**
 * The header length N from a file's first 8 bytes, checked as the reference checks it:
 * at most {@link SAFETENSORS_MAX_HEADER_SIZE}, and inside the file.
 * @throws TensorioError `ERR_TRUNCATED` (file under 8 bytes, or N past its end),
 * `ERR_HEADER_TOO_LARGE`.
 */
export function safetensorsHeaderLength(first8: Uint8Array, fileSize: number, file = '<buffer>'): number {
  if (fileSize < 8 || first8.length < 8) {
    throw new TensorioError('ERR_TRUNCATED', `file is ${fileSize} bytes; a safetensors file starts with an 8-byte header length`, { path: file });
  }
  const view = new DataView(first8.buffer, first8.byteOffset, 8);
  const low = view.getUint32(0, true);
  const high = view.getUint32(4, true);
  if (high !== 0 || low > SAFETENSORS_MAX_HEADER_SIZE) {
    const declared = (BigInt(high) << 32n) | BigInt(low);
    throw new TensorioError(
      'ERR_HEADER_TOO_LARGE',
      `header length is ${declared} bytes, over the limit of ${SAFETENSORS_MAX_HEADER_SIZE} (the reference implementation's)`,
      { path: file },
    );
  }
  if (8 + low > fileSize) {
    throw new TensorioError(
      'ERR_TRUNCATED',
      `file ends inside the header: the header length is ${low} bytes, the file has ${fileSize - 8} after the length field`,
      { path: file },
    );
  }
  return low;
}

function parseDtype(value: unknown, name: string, file: string): DTypeInfo {
  if (typeof value !== 'string') throw badHeader(file, `tensor '${name}': 'dtype' must be a string, found ${JSON.stringify(value)}`);
  const info = dtypeFromSafetensors(value);
  if (info) return info;
  const why = REFERENCE_DTYPE_ORDER.includes(value)
    ? 'a safetensors dtype tensorio does not hold'
    : 'not a safetensors dtype';
  throw new TensorioError(
    'ERR_UNSUPPORTED_DTYPE',
    `tensor '${name}' has dtype '${value.slice(0, 40)}': ${why} (supported: BOOL, U8, I8, I16, U16, I32, U32, I64, U64, F16, BF16, F32, F64, C64, F8_E4M3, F8_E5M2)`,
    { path: file },
  );
}

// Checked inline, not through a helper per element: this runs for every dimension and offset
// of every entry in a fresh process, where a call into cold code costs about 0.2 µs (a copy of
// these checks over 1,000 entries: 1.9 ms with a call per element, 0.7 ms without).
function isCountList(value: unknown): value is number[] {
  if (!Array.isArray(value)) return false;
  for (let i = 0; i < value.length; i++) {
    const item: unknown = value[i];
    if (!Number.isSafeInteger(item) || (item as number) < 0) return false;
  }
  return true;
}

/** A tensor's entry as JSON.parse returns it, once {@link checkEntry} has accepted it. */
interface RawEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

// Kept lean (no closures, no copies): a checkpoint header holds thousands of entries and is
// parsed in a fresh process, before the JIT has warmed up.
function checkEntry(name: string, value: unknown, file: string): asserts value is RawEntry {
  if (!isPlainObject(value) || value.dtype === undefined || value.shape === undefined || value.data_offsets === undefined) {
    throw badHeader(file, `tensor '${name}' must be an object with 'dtype', 'shape' and 'data_offsets'`);
  }
  parseDtype(value.dtype, name, file);
  const shape = value.shape;
  if (!isCountList(shape)) {
    throw badHeader(file, `tensor '${name}': 'shape' must be a list of non-negative integers, found ${JSON.stringify(shape).slice(0, 80)}`);
  }
  const offsets = value.data_offsets;
  if (!isCountList(offsets) || offsets.length !== 2) {
    throw badHeader(file, `tensor '${name}': 'data_offsets' must be [begin, end] with non-negative integers, found ${JSON.stringify(offsets).slice(0, 80)}`);
  }
}

/** Data order: by begin, then end. */
function byRange(a: RawEntry, b: RawEntry): number {
  return a.data_offsets[0] - b.data_offsets[0] || a.data_offsets[1] - b.data_offsets[1];
}

function parseMetadata(value: unknown, file: string): Record<string, string> {
  const metadata: Record<string, string> = {};
  // The reference reads `__metadata__` as Option<HashMap<String, String>>: null is "none".
  if (value === null) return metadata;
  if (!isPlainObject(value)) throw new TensorioError('ERR_BAD_METADATA', `__metadata__ must be an object of strings, found ${JSON.stringify(value).slice(0, 80)}`, { path: file });
  for (const [key, entry] of Object.entries(value)) {
    if (typeof entry !== 'string') {
      throw new TensorioError('ERR_BAD_METADATA', `__metadata__['${key}'] must be a string, found ${JSON.stringify(entry).slice(0, 80)}`, { path: file });
    }
    ownSet(metadata, key, entry);
  }
  return metadata;
}

/**
 * A validated header as an open keeps it: the parsed JSON itself serves as the name → entry
 * lookup, and entries are made on demand. Opens happen early in a process, while V8's young
 * generation is still about 1 MiB: decoding and parsing a 1,000-tensor header take 350 KiB of
 * it, and an object per tensor plus a Map by name took another 200 KiB, enough to make most
 * opens pay for a scavenge (2-5 ms on a VM where memory touched for the first time is slow).
 */
class ParsedHeader {
  constructor(
    /** N, the header's length in bytes (padding included). */
    readonly headerLength: number,
    readonly metadata: Record<string, string>,
    /** Tensor names in data order. */
    readonly names: string[],
    private readonly raw: Record<string, RawEntry>,
  ) {}

  /** 8 + N: where the tensor data starts in the file. */
  get dataStart(): number {
    return 8 + this.headerLength;
  }

  has(name: string): boolean {
    return typeof name === 'string' && name !== '__metadata__' && Object.hasOwn(this.raw, name);
  }

  /** The entry named `name`; the caller has checked {@link has}. */
  entry(name: string): SafetensorsEntry {
    const raw = this.raw[name] as RawEntry;
    return { name, dtype: (dtypeFromSafetensors(raw.dtype) as DTypeInfo).name, shape: raw.shape, dataOffsets: raw.data_offsets };
  }
}

function parseHeader(json: Uint8Array, fileSize: number, file: string): ParsedHeader {
  const headerLength = json.length;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(json);
  } catch {
    throw badHeader(file, 'the header is not valid UTF-8');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw badHeader(file, `the header is not valid JSON (${(error as Error).message})`);
  }
  if (!isPlainObject(parsed)) throw badHeader(file, `expected a JSON object, found ${Array.isArray(parsed) ? 'an array' : JSON.stringify(parsed).slice(0, 40)}`);
  let metadata: Record<string, string> = {};
  // The object's own keys, in JSON.parse's order, become the names in data order once checked.
  const names = Object.keys(parsed);
  let count = 0;
  let sorted = true;
  let previous: RawEntry | undefined;
  for (let i = 0; i < names.length; i++) {
    const name = names[i] as string;
    const value = parsed[name];
    if (name === '__metadata__') {
      metadata = parseMetadata(value, file);
      continue;
    }
    checkEntry(name, value, file);
    if (previous && byRange(previous, value) > 0) sorted = false;
    previous = value;
    names[count++] = name;
  }
  names.length = count;
  const raw = parsed as Record<string, RawEntry>;
  // Writers other than the reference may list tensors in any order; the data order is what
  // counts. Array#sort is stable, so equal ranges (empty tensors) keep JSON.parse's order: the
  // file's, except that integer-like names come first.
  if (!sorted) names.sort((a, b) => byRange(raw[a] as RawEntry, raw[b] as RawEntry));
  let cursor = 0;
  for (let i = 0; i < count; i++) {
    const name = names[i] as string;
    const { dtype, shape, data_offsets: offsets } = raw[name] as RawEntry;
    const begin = offsets[0];
    const end = offsets[1];
    if (begin !== cursor || end < begin) {
      const what =
        end < begin
          ? `ends (${end}) before it begins (${begin})`
          : begin > cursor
            ? `begins at ${begin}, leaving a gap after the data before it, which ends at ${cursor}`
            : `begins at ${begin}, overlapping the data before it, which ends at ${cursor}`;
      throw new TensorioError('ERR_BAD_OFFSETS', `tensor '${name}' ${what}; data offsets must be contiguous from 0`, { path: file });
    }
    cursor = end;
    const info = dtypeFromSafetensors(dtype) as DTypeInfo;
    const bytes = shapeSize(shape, file) * info.itemSize;
    if (!Number.isSafeInteger(bytes)) {
      throw new TensorioError('ERR_TOO_LARGE', `tensor '${name}' of shape (${shape.join(', ')}) is too large`, { path: file });
    }
    if (end - begin !== bytes) {
      throw new TensorioError(
        'ERR_SHAPE_MISMATCH',
        `tensor '${name}': ${info.name} (${shape.join(', ')}) needs ${bytes} bytes, its data_offsets [${begin}, ${end}] span ${end - begin}`,
        { path: file },
      );
    }
  }
  const expected = 8 + headerLength + cursor;
  if (expected > fileSize) {
    throw new TensorioError('ERR_TRUNCATED', `file ends inside the tensor data: the header describes ${expected} bytes, the file has ${fileSize}`, { path: file });
  }
  if (expected < fileSize) {
    throw new TensorioError(
      'ERR_BAD_OFFSETS',
      `the tensors' data ends at byte ${expected} but the file has ${fileSize}: data offsets must cover the file exactly`,
      { path: file },
    );
  }
  return new ParsedHeader(headerLength, metadata, names, headerLength > count * MAX_KEPT_PER_TENSOR ? withoutExtras(raw, names) : raw);
}

// A view keeps its parsed header, so fields the format ignores (the reference reader skips
// unknown keys in an entry) would stay in memory with it: up to the 100 MB header bound for a
// hostile file. Headers longer than this per tensor are copied down to the three fields that
// count; the reference writer's take about 100 bytes per tensor.
const MAX_KEPT_PER_TENSOR = 1024;

function withoutExtras(raw: Record<string, RawEntry>, names: string[]): Record<string, RawEntry> {
  const kept: Record<string, RawEntry> = {};
  for (const name of names) {
    const { dtype, shape, data_offsets } = raw[name] as RawEntry;
    ownSet(kept, name, { dtype, shape, data_offsets });
  }
  return kept;
}

/**
 * Parses and validates a header's JSON (the N bytes after the length field) against a file
 * of `fileSize` bytes: what `SafeTensors::read_metadata` and `Metadata::validate` check.
 * @throws TensorioError `ERR_BAD_HEADER` (not UTF-8 JSON, not an object, a malformed entry),
 * `ERR_BAD_METADATA`, `ERR_UNSUPPORTED_DTYPE`, `ERR_BAD_OFFSETS` (a gap, an overlap, a range
 * ending before it starts, bytes after the last tensor), `ERR_SHAPE_MISMATCH` (shape × item
 * size differs from the range), `ERR_TOO_LARGE`, `ERR_TRUNCATED` (data past the end of the file).
 */
export function parseSafetensorsHeader(json: Uint8Array, fileSize: number, file = '<buffer>'): SafetensorsHeader {
  const header = parseHeader(json, fileSize, file);
  const entries = header.names.map((name) => header.entry(name));
  return { headerLength: header.headerLength, dataStart: header.dataStart, metadata: header.metadata, entries };
}

// ---------------------------------------------------------------------------------------
// Files: one open shard

// V8's TypedArray length limit, which Node publishes as the Buffer limit (2^32 on Node 20).
const MAX_TYPED_ARRAY_LENGTH = bufferConstants.MAX_LENGTH;

// An async open reads this much with the open itself (one trip to the thread pool): the
// header of about 1,200 tensors at 100 bytes each. A longer header takes a second trip (about
// 1 ms in a fresh process) for exactly its length. Not more: every byte read lands in memory the
// worker touches (a 256 KiB first read took 0.8 ms on a VM where a page touched for the first
// time costs 12.5 µs), and under glibc's 128 KiB mmap threshold the buffer reuses freed memory.
const FIRST_READ = 120 * 1024;

class Shard {
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

/** A contiguous byte run of a tensor, relative to the tensor's first byte. */
interface Run {
  start: number;
  length: number;
}

function sliceArgument(message: string, file: string): TensorioError {
  return new TensorioError('ERR_INVALID_ARGUMENT', message, { path: file });
}

/** The shape and byte runs of a selection along leading axes. */
function planSlice(entry: SafetensorsEntry, ranges: readonly SliceRange[], file: string): { shape: number[]; runs: Run[]; length: number } {
  const shape = entry.shape;
  if (!Array.isArray(ranges)) throw sliceArgument('ranges must be an array of [start, end] pairs or null', file);
  if (ranges.length > shape.length) {
    throw sliceArgument(`tensor '${entry.name}' has ${shape.length} axes, ${ranges.length} ranges were given`, file);
  }
  const starts = shape.map(() => 0);
  const outShape = [...shape];
  let lastPartial = -1;
  ranges.forEach((range, axis) => {
    if (range === null || range === undefined) return;
    const dim = shape[axis] as number;
    const [start, end] = Array.isArray(range) ? range : [Number.NaN, Number.NaN];
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start || end > dim) {
      throw sliceArgument(`tensor '${entry.name}' axis ${axis} has length ${dim}; range ${JSON.stringify(range)} is not [start, end] with 0 <= start <= end <= ${dim}`, file);
    }
    starts[axis] = start;
    outShape[axis] = end - start;
    if (start !== 0 || end !== dim) lastPartial = axis;
  });
  const itemSize = dtypeInfo(entry.dtype).itemSize;
  const length = shapeSize(outShape, file) * itemSize;
  if (lastPartial < 0) return { shape: outShape, runs: [{ start: 0, length }], length };
  if (length === 0) return { shape: outShape, runs: [], length: 0 };
  // strides[i]: bytes between consecutive indices of axis i.
  const strides = new Array<number>(shape.length);
  let stride = itemSize;
  for (let axis = shape.length - 1; axis >= 0; axis--) {
    strides[axis] = stride;
    stride *= shape[axis] as number;
  }
  const runLength = (outShape[lastPartial] as number) * (strides[lastPartial] as number);
  const runs: Run[] = [];
  const index = starts.slice(0, lastPartial);
  const tail = (starts[lastPartial] as number) * (strides[lastPartial] as number);
  for (;;) {
    let start = tail;
    for (let axis = 0; axis < lastPartial; axis++) start += (index[axis] as number) * (strides[axis] as number);
    runs.push({ start, length: runLength });
    let axis = lastPartial - 1;
    for (; axis >= 0; axis--) {
      const next = (index[axis] as number) + 1;
      if (next < (starts[axis] as number) + (outShape[axis] as number)) {
        index[axis] = next;
        break;
      }
      index[axis] = starts[axis] as number;
    }
    if (axis < 0) break;
  }
  return { shape: outShape, runs, length };
}

// ---------------------------------------------------------------------------------------
// The lazy view over one file or many shards

class SafetensorsView implements SafetensorsFile {
  readonly path: string;
  readonly metadata: Record<string, string>;
  readonly index: SafetensorsIndex | undefined;
  private readonly shards: Shard[];
  // Sharded checkpoints only: which shard holds each tensor, in the index's order. A single
  // file's tensors are looked up in its header (see ParsedHeader).
  private readonly shardByName: Map<string, Shard> | undefined;
  private closed = false;

  constructor(path: string, shards: Shard[], index: SafetensorsIndex | undefined, indexPath?: string) {
    this.path = path;
    this.shards = shards;
    this.index = index;
    this.metadata = shards[0]?.header.metadata ?? {};
    if (!index) return;
    this.shardByName = new Map();
    const byPath = new Map(shards.map((shard) => [shard.path, shard]));
    const folder = nodePath.dirname(indexPath ?? path);
    for (const [name, file] of index.weightMap) {
      const shard = byPath.get(nodePath.join(folder, file));
      if (!shard?.header.has(name)) {
        throw new TensorioError('ERR_BAD_HEADER', `malformed safetensors index: it puts tensor '${name}' in '${file}', which does not hold it`, { path: indexPath ?? path });
      }
      this.shardByName.set(name, shard);
    }
  }

  /** The shard holding `name`, or undefined. */
  private shardOf(name: string): Shard | undefined {
    if (this.shardByName) return this.shardByName.get(name);
    const shard = this.shards[0] as Shard;
    return shard.header.has(name) ? shard : undefined;
  }

  get files(): readonly string[] {
    return this.shards.map((shard) => shard.path);
  }

  get mapped(): boolean {
    return this.shards.length > 0 && this.shards.every((shard) => shard.mapped);
  }

  get copyReason(): string | undefined {
    return this.shards.find((shard) => shard.mapReason !== undefined)?.mapReason;
  }

  keys(): string[] {
    const names = this.shardByName ? [...this.shardByName.keys()] : [...(this.shards[0] as Shard).header.names];
    return names.sort(compareCodePoints);
  }

  offsetKeys(): string[] {
    if (!this.shardByName) return [...(this.shards[0] as Shard).header.names];
    const order: string[] = [];
    for (const shard of this.shards) {
      for (const name of shard.header.names) if (this.shardByName.get(name) === shard) order.push(name);
    }
    return order;
  }

  has(name: string): boolean {
    return this.shardOf(name) !== undefined;
  }

  private lookup(name: string): { shard: Shard; entry: SafetensorsEntry } {
    if (this.closed) throw new TensorioError('ERR_CLOSED', 'the safetensors file is closed', { path: this.path });
    const shard = this.shardOf(name);
    if (!shard) {
      const count = this.shardByName?.size ?? (this.shards[0] as Shard).header.names.length;
      throw new TensorioError('ERR_NOT_FOUND_IN_ARCHIVE', `no tensor named '${String(name).slice(0, 200)}' (the file holds ${count})`, { path: this.path });
    }
    return { shard, entry: shard.header.entry(name) };
  }

  info(name: string): SafetensorsTensorInfo {
    const { shard, entry } = this.lookup(name);
    const [begin, end] = entry.dataOffsets;
    return {
      name: entry.name,
      dtype: entry.dtype,
      shape: [...entry.shape],
      dataOffsets: [begin, end],
      file: shard.path,
      byteOffset: shard.header.dataStart + begin,
      byteLength: end - begin,
    };
  }

  get(name: string): Promise<LoadedArray> {
    try {
      const { shard, entry } = this.lookup(name);
      const length = entry.dataOffsets[1] - entry.dataOffsets[0];
      return shard.load(entry, [...entry.shape], [{ start: 0, length }], length);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  getSync(name: string): LoadedArray {
    const { shard, entry } = this.lookup(name);
    const length = entry.dataOffsets[1] - entry.dataOffsets[0];
    return shard.loadSync(entry, [...entry.shape], [{ start: 0, length }], length);
  }

  getSlice(name: string, ranges: readonly SliceRange[]): Promise<LoadedArray> {
    try {
      const { shard, entry } = this.lookup(name);
      const plan = planSlice(entry, ranges, shard.path);
      return shard.load(entry, plan.shape, plan.runs, plan.length);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  getSliceSync(name: string, ranges: readonly SliceRange[]): LoadedArray {
    const { shard, entry } = this.lookup(name);
    const plan = planSlice(entry, ranges, shard.path);
    return shard.loadSync(entry, plan.shape, plan.runs, plan.length);
  }

  close(options: { unmap?: boolean } = {}): void {
    this.closed = true;
    for (const shard of this.shards) shard.close(options.unmap === true);
  }
}

/** Whether `path` names an index, directly or as the sibling of a missing `.safetensors` file. */
function resolveIndex(path: string): string | undefined {
  return path.endsWith('.json') ? path : undefined;
}

/** The sibling index of a missing `X.safetensors`, looked for only once opening it failed. */
function siblingIndex(path: string, error: unknown): string | undefined {
  if (error instanceof TensorioError && error.code === 'ERR_NOT_FOUND' && fs.existsSync(path + INDEX_SUFFIX)) return path + INDEX_SUFFIX;
  return undefined;
}

function readIndexFile(indexPath: string): SafetensorsIndex {
  const { fd, size } = openForRead(indexPath);
  try {
    if (size > MAX_INDEX_SIZE) {
      throw new TensorioError('ERR_HEADER_TOO_LARGE', `index is ${size} bytes, over the limit of ${MAX_INDEX_SIZE}`, { path: indexPath });
    }
    const bytes = new Uint8Array(size);
    readExactlySync(fd, 0, bytes, indexPath, 'safetensors index');
    return parseSafetensorsIndex(bytes, indexPath);
  } finally {
    closeQuietly(fd);
  }
}

function shardPaths(indexPath: string, index: SafetensorsIndex): string[] {
  const folder = nodePath.dirname(indexPath);
  return [...new Set(index.weightMap.values())].map((file) => nodePath.join(folder, file));
}

/**
 * Opens a safetensors file lazily, like Python's `safe_open`: the header is read and
 * validated, the file mapped (by default), and no tensor data is touched until asked for.
 * A path ending in `.json` (or a missing `X.safetensors` whose `X.safetensors.index.json`
 * exists) opens a sharded checkpoint: every shard's header is read and the view covers all
 * of them.
 * @param options `mmap` (default true).
 * @throws TensorioError `ERR_NOT_FOUND`, `ERR_TRUNCATED`, `ERR_HEADER_TOO_LARGE`,
 * `ERR_BAD_HEADER`, `ERR_BAD_METADATA`, `ERR_BAD_OFFSETS`, `ERR_SHAPE_MISMATCH`,
 * `ERR_UNSUPPORTED_DTYPE`, `ERR_TOO_LARGE`, `ERR_PERMISSION`, `ERR_IO`.
 */
export async function openSafetensors(path: string, options: SafetensorsOpenOptions = {}): Promise<SafetensorsFile> {
  checkOptions(options, OPTIONS.openSafetensors, 'openSafetensors', path);
  const mmap = options.mmap ?? true;
  let indexPath = resolveIndex(path);
  if (indexPath === undefined) {
    try {
      return new SafetensorsView(path, [await Shard.open(path, mmap)], undefined);
    } catch (error) {
      indexPath = siblingIndex(path, error);
      if (indexPath === undefined) throw error;
    }
  }
  const index = readIndexFile(indexPath);
  const results = await Promise.allSettled(shardPaths(indexPath, index).map((file) => Shard.open(file, mmap)));
  const shards = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  try {
    if (failure) throw failure.reason;
    return new SafetensorsView(path, shards, index, indexPath);
  } catch (error) {
    for (const shard of shards) shard.close(true);
    throw error;
  }
}

/** Synchronous {@link openSafetensors}. */
export function openSafetensorsSync(path: string, options: SafetensorsOpenOptions = {}): SafetensorsFile {
  checkOptions(options, OPTIONS.openSafetensors, 'openSafetensorsSync', path);
  const mmap = options.mmap ?? true;
  let indexPath = resolveIndex(path);
  if (indexPath === undefined) {
    try {
      return new SafetensorsView(path, [Shard.openSync(path, mmap)], undefined);
    } catch (error) {
      indexPath = siblingIndex(path, error);
      if (indexPath === undefined) throw error;
    }
  }
  const index = readIndexFile(indexPath);
  const shards: Shard[] = [];
  try {
    for (const file of shardPaths(indexPath, index)) shards.push(Shard.openSync(file, mmap));
    return new SafetensorsView(path, shards, index, indexPath);
  } catch (error) {
    for (const shard of shards) shard.close(true);
    throw error;
  }
}

// Concurrent reads keep the disk (or the page cache copy) busy while JS builds the next one.
const READ_CONCURRENCY = 4;

/**
 * Reads every tensor of a safetensors file or sharded checkpoint (see {@link openSafetensors}
 * for which paths are sharded).
 * @param options `mmap` (default false): map and return views, copying only unaligned tensors.
 * @returns `{ tensors, metadata }`; each array carries `mapped` and, when mapping was asked
 * for but not used, `copyReason`.
 * @throws TensorioError as {@link openSafetensors}.
 */
export async function readSafetensors(path: string, options: SafetensorsReadOptions = {}): Promise<SafetensorsContents> {
  checkOptions(options, OPTIONS.readSafetensors, 'readSafetensors', path);
  const view = await openSafetensors(path, { mmap: options.mmap ?? false });
  try {
    const names = view.keys();
    if (!options.mmap) {
      const arrays = await Promise.all(filesOf(view, names).map(async ({ file, start, length, infos }) => {
        const buffer = allocateForRead(length);
        const { fd } = await openForReadAsync(file, 0);
        try {
          await readExactly(fd, start, new Uint8Array(buffer), file, 'safetensors data');
        } finally {
          closeQuietly(fd);
        }
        return viewsInto(buffer, start, infos, file);
      }));
      return { tensors: inNameOrder(names, arrays), metadata: view.metadata };
    }
    const loaded = new Array<LoadedArray>(names.length);
    let next = 0;
    const worker = async () => {
      while (next < names.length) {
        const i = next++;
        loaded[i] = await view.get(names[i] as string);
      }
    };
    await Promise.all(Array.from({ length: Math.min(READ_CONCURRENCY, names.length) }, worker));
    const tensors: Record<string, LoadedArray> = {};
    names.forEach((name, i) => ownSet(tensors, name, loaded[i] as LoadedArray));
    return { tensors, metadata: view.metadata };
  } finally {
    view.close({ unmap: false });
  }
}

/**
 * An eager read puts each file's data in one buffer, filled by one read, with tensors as
 * views into it: the kernel copies at page-cache speed into memory that (past 4 MiB) gets
 * huge pages, where a buffer per tensor paid a page fault per 4 KiB page. The price: a tensor
 * keeps its file's buffer alive. Tensors whose offset is not aligned for their dtype (files
 * whose writer did not pad the header) are copied out.
 */
function filesOf(view: SafetensorsFile, names: string[]): Array<{ file: string; start: number; length: number; infos: SafetensorsTensorInfo[] }> {
  const byFile = new Map<string, SafetensorsTensorInfo[]>();
  for (const name of names) {
    const info = view.info(name);
    const list = byFile.get(info.file) ?? [];
    list.push(info);
    byFile.set(info.file, list);
  }
  return [...byFile].map(([file, infos]) => {
    let start = Infinity;
    let end = 0;
    for (const info of infos) {
      start = Math.min(start, info.byteOffset);
      end = Math.max(end, info.byteOffset + info.byteLength);
    }
    return { file, start, length: end - start, infos };
  });
}

function inNameOrder(names: string[], parts: Record<string, LoadedArray>[]): Record<string, LoadedArray> {
  const found = new Map<string, LoadedArray>();
  for (const part of parts) for (const [name, array] of Object.entries(part)) found.set(name, array);
  const tensors: Record<string, LoadedArray> = {};
  for (const name of names) ownSet(tensors, name, found.get(name) as LoadedArray);
  return tensors;
}

function viewsInto(buffer: ArrayBuffer, start: number, infos: SafetensorsTensorInfo[], file: string): Record<string, LoadedArray> {
  const tensors: Record<string, LoadedArray> = {};
  for (const entry of infos) {
    const info = dtypeInfo(entry.dtype);
    const elements = (entry.byteLength / info.itemSize) * info.lanes;
    if (elements > MAX_TYPED_ARRAY_LENGTH) {
      throw new TensorioError('ERR_TOO_LARGE', `tensor '${entry.name}' has ${elements} elements, more than one TypedArray holds here (${MAX_TYPED_ARRAY_LENGTH}); read it in parts with getSlice`, { path: file });
    }
    const offset = entry.byteOffset - start;
    const data = offset % info.array.BYTES_PER_ELEMENT === 0 ? new info.array(buffer, offset, elements) : new info.array(buffer.slice(offset, offset + entry.byteLength), 0, elements);
    ownSet(tensors, entry.name, { dtype: entry.dtype, shape: entry.shape, data, mapped: false });
  }
  return tensors;
}

/** Synchronous {@link readSafetensors}. */
export function readSafetensorsSync(path: string, options: SafetensorsReadOptions = {}): SafetensorsContents {
  checkOptions(options, OPTIONS.readSafetensors, 'readSafetensorsSync', path);
  const view = openSafetensorsSync(path, { mmap: options.mmap ?? false });
  try {
    if (!options.mmap) {
      const arrays = filesOf(view, view.keys()).map(({ file, start, length, infos }) => {
        const buffer = allocateForRead(length);
        const { fd } = openForRead(file);
        try {
          readExactlySync(fd, start, new Uint8Array(buffer), file, 'safetensors data');
        } finally {
          closeQuietly(fd);
        }
        return viewsInto(buffer, start, infos, file);
      });
      return { tensors: inNameOrder(view.keys(), arrays), metadata: view.metadata };
    }
    const tensors: Record<string, LoadedArray> = {};
    for (const name of view.keys()) ownSet(tensors, name, view.getSync(name));
    return { tensors, metadata: view.metadata };
  } finally {
    view.close({ unmap: false });
  }
}

// A copy into a fresh buffer (Buffer#slice would return a view, so it is not used).
function copyOf(bytes: Uint8Array): ArrayBuffer {
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return copy.buffer;
}

/**
 * Parses a whole safetensors file held in memory (a fetched response, a buffer). Arrays are
 * views into `bytes` where aligned, else copies.
 * @throws TensorioError as {@link parseSafetensorsHeader} and {@link safetensorsHeaderLength}.
 */
export function decodeSafetensors(bytes: Uint8Array, file = '<buffer>'): SafetensorsContents {
  const n = safetensorsHeaderLength(bytes, bytes.length, file);
  const header = parseSafetensorsHeader(bytes.subarray(8, 8 + n), bytes.length, file);
  const tensors: Record<string, LoadedArray> = {};
  for (const entry of [...header.entries].sort((a, b) => compareCodePoints(a.name, b.name))) {
    const info = dtypeInfo(entry.dtype);
    const [begin, end] = entry.dataOffsets;
    const start = bytes.byteOffset + header.dataStart + begin;
    const elements = ((end - begin) / info.itemSize) * info.lanes;
    const data =
      start % info.array.BYTES_PER_ELEMENT === 0
        ? new info.array(bytes.buffer, start, elements)
        : new info.array(copyOf(bytes.subarray(header.dataStart + begin, header.dataStart + end)), 0, elements);
    ownSet(tensors, entry.name, { dtype: entry.dtype, shape: [...entry.shape], data, mapped: false });
  }
  return { tensors, metadata: header.metadata };
}

// ---------------------------------------------------------------------------------------
// Writing

/** Tensors to write: a plain object or a Map of name → array. */
export type TensorDict = Record<string, NdArray> | Map<string, NdArray>;

/** Options of {@link writeSafetensors}. */
export interface SafetensorsWriteOptions extends WriteOptions {
  /** Written as `__metadata__` (in every shard, when sharded). Values must be strings. */
  metadata?: Record<string, string>;
  /**
   * Split into shards of at most this many bytes of tensor data (a number, or '5GB' = 5×10^9,
   * '2GiB' = 2×2^30), named and indexed as the Hugging Face tools do. A tensor larger than the
   * limit gets a shard of its own. Default: one file.
   */
  maxShardSize?: number | string;
}

/** What {@link writeSafetensors} wrote. */
export interface SafetensorsWriteResult {
  /** The safetensors file(s) written. */
  files: string[];
  /** The index file, when the checkpoint was split into more than one shard. */
  index?: string;
  /** The tensors' data bytes in total (`metadata.total_size` of the index). */
  totalSize: number;
}

interface Prepared {
  name: string;
  array: NdArray;
  info: DTypeInfo;
  bytes: number;
}

function entriesOf(tensors: TensorDict): Array<[string, NdArray]> {
  if (tensors instanceof Map) return [...tensors.entries()];
  if (tensors === null || typeof tensors !== 'object') {
    throw new TensorioError('ERR_INVALID_ARGUMENT', 'tensors must be an object or a Map of name → NdArray');
  }
  return Object.entries(tensors);
}

function prepareTensors(tensors: TensorDict, file: string): Prepared[] {
  return entriesOf(tensors).map(([name, array]) => {
    if (typeof name !== 'string' || name === '__metadata__' || !wellFormed(name)) {
      throw new TensorioError('ERR_INVALID_ARGUMENT', `invalid tensor name ${JSON.stringify(name)}: names are UTF-8 strings other than '__metadata__'`, { path: file });
    }
    let bytes: number;
    try {
      bytes = validateNdArray(array, file);
    } catch (error) {
      if (error instanceof TensorioError) throw new TensorioError(error.code, `tensor '${name}': ${error.message.replace(`${file}: `, '')}`, { path: file });
      throw error;
    }
    const info = dtypeInfo(array.dtype);
    if (info.safetensors === null) {
      throw new TensorioError('ERR_UNSUPPORTED_DTYPE', `tensor '${name}': safetensors has no ${array.dtype} dtype; convert it first`, { path: file });
    }
    // safetensors is C order only; a Fortran-order array is copied into C order.
    return { name, array: array.order === 'F' ? asCOrder(array) : array, info, bytes };
  });
}

// A lone surrogate has no UTF-8 encoding (TextEncoder would silently write U+FFFD).
function wellFormed(text: string): boolean {
  return !/\p{Cs}/u.test(text);
}

function checkMetadata(metadata: unknown, file: string): Record<string, string> | undefined {
  if (metadata === undefined) return undefined;
  if (!isPlainObject(metadata)) throw new TensorioError('ERR_INVALID_ARGUMENT', 'metadata must be an object of strings', { path: file });
  for (const [key, value] of Object.entries(metadata)) {
    if (typeof value !== 'string' || !wellFormed(value) || !wellFormed(key)) {
      throw new TensorioError('ERR_INVALID_ARGUMENT', `metadata['${key}'] must be a string, got ${typeof value}`, { path: file });
    }
  }
  return metadata as Record<string, string>;
}

function rank(prepared: Prepared): number {
  return REFERENCE_DTYPE_ORDER.indexOf(prepared.info.safetensors as string);
}

/** The chunks of one file: length, padded header, then each tensor's own bytes. */
function encodePrepared(prepared: Prepared[], metadata: Record<string, string> | undefined, file: string): Uint8Array[] {
  const ordered = [...prepared].sort((a, b) => rank(b) - rank(a) || compareCodePoints(a.name, b.name));
  const parts: string[] = [];
  if (metadata !== undefined) {
    parts.push(`"__metadata__":{${Object.entries(metadata).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`);
  }
  let offset = 0;
  for (const { name, array, info, bytes } of ordered) {
    parts.push(`${JSON.stringify(name)}:{"dtype":"${info.safetensors}","shape":[${array.shape.join(',')}],"data_offsets":[${offset},${offset + bytes}]}`);
    offset += bytes;
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const headerLength = Math.ceil(json.length / 8) * 8;
  if (headerLength > SAFETENSORS_MAX_HEADER_SIZE) {
    throw new TensorioError('ERR_HEADER_TOO_LARGE', `the header would be ${headerLength} bytes, over the limit of ${SAFETENSORS_MAX_HEADER_SIZE} readers accept`, { path: file });
  }
  const head = new Uint8Array(8 + headerLength).fill(0x20, 8 + json.length);
  new DataView(head.buffer).setUint32(0, headerLength, true);
  head.set(json, 8);
  const chunks: Uint8Array[] = [head];
  for (const { array, bytes } of ordered) if (bytes > 0) chunks.push(bytesOf(array.data));
  return chunks;
}

/**
 * The bytes of a safetensors file as chunks (the header, then each tensor's own bytes, not
 * copied), exactly as the reference `serialize` lays them out: tensors ordered by dtype
 * alignment (largest first) then name, the header padded with spaces to a multiple of 8.
 * @throws TensorioError `ERR_INVALID_ARGUMENT`, `ERR_SHAPE_MISMATCH`, `ERR_UNSUPPORTED_DTYPE`
 * (complex128), `ERR_HEADER_TOO_LARGE`.
 */
export function encodeSafetensors(tensors: TensorDict, options: { metadata?: Record<string, string> } = {}): Uint8Array[] {
  const file = '<buffer>';
  return encodePrepared(prepareTensors(tensors, file), checkMetadata(options.metadata, file), file);
}

interface Plan {
  files: Array<{ path: string; chunks: Uint8Array[] }>;
  index?: { path: string; bytes: Uint8Array };
  totalSize: number;
  stale: () => void;
}

function planWrite(path: string, tensors: TensorDict, options: SafetensorsWriteOptions): Plan {
  const metadata = checkMetadata(options.metadata, path);
  const prepared = prepareTensors(tensors, path);
  const totalSize = prepared.reduce((sum, p) => sum + p.bytes, 0);
  if (options.maxShardSize === undefined) {
    return { files: [{ path, chunks: encodePrepared(prepared, metadata, path) }], totalSize, stale: () => undefined };
  }
  const limit = parseShardSize(options.maxShardSize);
  const groups = planShards(prepared.map((p) => [p.name, p.bytes] as const), limit);
  const byName = new Map(prepared.map((p) => [p.name, p]));
  const indexPath = path + INDEX_SUFFIX;
  const folder = nodePath.dirname(path);
  if (groups.length <= 1) {
    return {
      files: [{ path, chunks: encodePrepared(prepared, metadata, path) }],
      totalSize,
      stale: () => removeStale(folder, shardNamePattern(path), new Set(), indexPath),
    };
  }
  const weightMap = new Map<string, string>();
  const files = groups.map((names, i) => {
    const name = shardFileName(path, i, groups.length);
    for (const tensor of names) weightMap.set(tensor, name);
    return { path: nodePath.join(folder, name), chunks: encodePrepared(names.map((n) => byName.get(n) as Prepared), metadata, path) };
  });
  const keep = new Set(files.map((f) => nodePath.basename(f.path)));
  return {
    files,
    index: { path: indexPath, bytes: encodeSafetensorsIndex(totalSize, weightMap) },
    totalSize,
    stale: () => removeStale(folder, shardNamePattern(path), keep, undefined),
  };
}

/** Removes shards of an earlier save of the same checkpoint that this save did not write. */
function removeStale(folder: string, pattern: RegExp, keep: Set<string>, staleIndex: string | undefined): void {
  let names: string[] = [];
  try {
    names = fs.readdirSync(folder);
  } catch {
    return;
  }
  const doomed = names.filter((name) => pattern.test(name) && !keep.has(name)).map((name) => nodePath.join(folder, name));
  if (staleIndex !== undefined) doomed.push(staleIndex);
  for (const file of doomed) {
    try {
      fs.unlinkSync(file);
    } catch {
      // Already gone, or not ours to remove: a stale shard is harmless once the index moved on.
    }
  }
}

function result(plan: Plan): SafetensorsWriteResult {
  const out: SafetensorsWriteResult = { files: plan.files.map((f) => f.path), totalSize: plan.totalSize };
  if (plan.index) out.index = plan.index.path;
  return out;
}

/**
 * Writes tensors as a safetensors file, byte for byte as the reference writer does (see
 * {@link encodeSafetensors}), streamed from the arrays' own buffers, atomically (temporary
 * file, fsync, rename). With `maxShardSize`, writes `model-00001-of-0000N.safetensors` shards
 * concurrently next to `path` and then `path + '.index.json'`; a checkpoint that fits one
 * shard is written to `path` alone, as the Hugging Face tools do. Shards of an earlier save of
 * the same `path` that this one did not write are removed after the index is in place.
 * @param options `metadata`, `maxShardSize`, `fsync` (default true).
 * @throws TensorioError `ERR_INVALID_ARGUMENT`, `ERR_SHAPE_MISMATCH`, `ERR_UNSUPPORTED_DTYPE`,
 * `ERR_HEADER_TOO_LARGE`, `ERR_NO_SPACE`, `ERR_PERMISSION`, `ERR_NOT_FOUND`, `ERR_IO`.
 */
export async function writeSafetensors(path: string, tensors: TensorDict, options: SafetensorsWriteOptions = {}): Promise<SafetensorsWriteResult> {
  checkOptions(options, OPTIONS.writeSafetensors, 'writeSafetensors', path);
  const plan = planWrite(path, tensors, options);
  const writers: AtomicWriter[] = [];
  try {
    for (const file of plan.files) writers.push(await AtomicWriter.open(file.path, options));
    // Every shard is complete on disk before any replaces an older file of the same name.
    await Promise.all(plan.files.map((file, i) => (writers[i] as AtomicWriter).write(file.chunks)));
    await Promise.all(writers.map((writer) => writer.commit()));
  } catch (error) {
    await Promise.all(writers.map((writer) => writer.abort()));
    throw error;
  }
  if (plan.index) {
    const writer = await AtomicWriter.open(plan.index.path, options);
    await writer.write([plan.index.bytes]);
    await writer.commit();
  }
  plan.stale();
  return result(plan);
}

/** Synchronous {@link writeSafetensors} (shards are written one after another). */
export function writeSafetensorsSync(path: string, tensors: TensorDict, options: SafetensorsWriteOptions = {}): SafetensorsWriteResult {
  checkOptions(options, OPTIONS.writeSafetensors, 'writeSafetensorsSync', path);
  const plan = planWrite(path, tensors, options);
  const writers: AtomicWriter[] = [];
  try {
    for (const file of plan.files) {
      const writer = AtomicWriter.openSync(file.path, options);
      writers.push(writer);
      writer.writeSync(file.chunks);
    }
    for (const writer of writers) writer.commitSync();
  } catch (error) {
    for (const writer of writers) writer.abortSync();
    throw error;
  }
  if (plan.index) {
    const writer = AtomicWriter.openSync(plan.index.path, options);
    writer.writeSync([plan.index.bytes]);
    writer.commitSync();
  }
  plan.stale();
  return result(plan);
}
