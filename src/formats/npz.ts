/**
 * NumPy's `.npz` archives: a ZIP file whose members are `.npy` files, `x.npy` holding the
 * array NumPy calls `x` (numpy/lib/npyio.py, NpzFile and savez).
 */
import * as zlib from 'node:zlib';

import { dtypeInfo, type DType } from '../dtype.js';
import { TensorioError } from '../errors.js';
import { allocateForRead, AtomicWriter, closeQuietly, mapWholeFile, openForRead, openForReadAsync, type WriteOptions } from '../io.js';
import { validateNdArray, type LoadedArray, type NdArray } from '../ndarray.js';
import { arrayFromBuffer, decodeNpy, DEFAULT_MAX_HEADER_SIZE, encodeNpy, isObjectDescr, parseNpyHeader, parseNpyRawHeader, type NpyReadOptions } from './npy.js';
import { unpickle, type PyObject } from './pickle.js';
import {
  bytesSource,
  bytesSourceSync,
  checkCrc,
  checkMemberSize,
  crc32,
  CrcCursor,
  DEFAULT_MAX_MEMBER_SIZE,
  fdSource,
  fdSourceSync,
  memberDataOffset,
  memberDataOffsetSync,
  readCentralDirectory,
  readCentralDirectorySync,
  readIntoWithCrc,
  readMember,
  readMemberSync,
  ZipWriter,
  type ZipEntry,
  type ZipSource,
  type ZipSourceSync,
} from './zip.js';

/** Options for reading `.npz` archives. */
export interface NpzReadOptions {
  /**
   * Map the archive (once) and return stored, aligned, little-endian members as views into
   * the mapping. Default false. Other members are read or inflated; each array's `mapped` and
   * `copyReason` say which path was taken. Mapped members are not CRC-checked, since that
   * would read every page. NumPy ignores mmap_mode for `.npz`.
   */
  mmap?: boolean;
  /**
   * Unpickle object-array members (lists, dicts, ragged arrays) with the restricted
   * unpickler. Default false, as in NumPy: an object member then throws
   * `ERR_PICKLE_DISALLOWED`.
   */
  allowPickle?: boolean;
  /** Largest uncompressed member accepted, in bytes. Default 16 GiB. */
  maxMemberSize?: number;
  /** Largest `.npy` header accepted. Default 10,000 (NumPy's limit). */
  maxHeaderSize?: number;
}

/** An `.npz` archive opened lazily: only the central directory has been read. */
export interface NpzFile<T = LoadedArray> {
  readonly path: string;
  /** Member names with `.npy` removed, in archive order (NumPy's `NpzFile.files`). */
  keys(): string[];
  /** True when `name` (with or without `.npy`) is a member. */
  has(name: string): boolean;
  /**
   * Reads one member (by key, or by its full member name).
   * @throws TensorioError `ERR_NOT_FOUND_IN_ARCHIVE`, `ERR_CLOSED`, `ERR_PICKLE_DISALLOWED`,
   * and every error of {@link readNpz}.
   */
  get(name: string): Promise<T>;
  /**
   * What a member holds, from its `.npy` header alone (a deflated member inflates only its
   * first bytes): dtype, shape, whether it is compressed, and for stored members where its
   * data starts in the archive. Object (pickled) members report `dtype: null`.
   * @throws TensorioError `ERR_NOT_FOUND_IN_ARCHIVE`, `ERR_CLOSED`, header errors.
   */
  info(name: string): Promise<NpzMemberInfo>;
  /**
   * Closes the file. Arrays already returned stay valid (mapped ones keep their mapping
   * until they are collected, or until `unmap(array.data.buffer)`).
   */
  close(): void;
}

/** What {@link NpzFile.info} reports. */
export interface NpzMemberInfo {
  key: string;
  /** Null for an object (pickled) member. */
  dtype: DType | null;
  shape: number[];
  compressed: boolean;
  /** Bytes of array data (uncompressed). */
  dataLength: number;
  /** Absolute offset of the array data in the archive, for stored members. */
  dataOffset?: number;
  bigEndian: boolean;
  fortranOrder: boolean;
}

// Enough of a member's start to hold any .npy header within NumPy's default limit.
const HEADER_PROBE = 16 * 1024;

function keyOf(name: string): string {
  return name.endsWith('.npy') ? name.slice(0, -4) : name;
}

function headerOptionsOf(options: NpzReadOptions): NpyReadOptions {
  return options.maxHeaderSize === undefined ? {} : { maxHeaderSize: options.maxHeaderSize };
}

function unpickleMember(bytes: Uint8Array, where: string, options: NpzReadOptions): PyObject {
  if (!options.allowPickle) {
    throw new TensorioError(
      'ERR_PICKLE_DISALLOWED',
      'the member is an object array stored as a Python pickle; pass { allowPickle: true } to read it with the restricted unpickler',
      { path: where },
    );
  }
  return unpickle(bytes, { path: where });
}

/**
 * A stored member of a mapped archive: a view into the mapping when its data is aligned and
 * little-endian, else a copy saying why. Not CRC-checked (that would read every page).
 */
function mappedMember(mapping: Uint8Array, start: number, entry: ZipEntry, where: string, options: NpzReadOptions): LoadedArray | PyObject {
  const headerOptions = headerOptionsOf(options);
  const bytes = mapping.subarray(start, start + entry.compressedSize);
  const raw = parseNpyRawHeader(bytes, where, headerOptions);
  if (isObjectDescr(raw.descr)) return unpickleMember(bytes.subarray(raw.dataOffset), where, options);
  const header = parseNpyHeader(bytes, where, headerOptions);
  const dataStart = start + header.dataOffset;
  if (header.dataOffset + header.dataLength > bytes.length) {
    throw new TensorioError('ERR_TRUNCATED', `member ends inside the data: ${header.dataLength} bytes needed at offset ${header.dataOffset}, the member has ${bytes.length}`, { path: where });
  }
  const alignment = dtypeInfo(header.dtype).array.BYTES_PER_ELEMENT;
  let reason: string | undefined;
  if (header.bigEndian) reason = 'the data is big-endian and was converted to native order';
  else if ((mapping.byteOffset + dataStart) % alignment !== 0) {
    reason = `the member's data starts at offset ${dataStart}, not a multiple of the ${header.dtype} size ${alignment} (NumPy does not align .npz members)`;
  }
  if (reason === undefined) return arrayFromBuffer(header, mapping.buffer as ArrayBuffer, mapping.byteOffset + dataStart, where, { mapped: true });
  const copy = bytes.slice(header.dataOffset, header.dataOffset + header.dataLength);
  return arrayFromBuffer(header, copy.buffer, 0, where, { mapped: false, copyReason: reason });
}

class NpzFileImpl implements NpzFile<LoadedArray | PyObject> {
  private readonly byName = new Map<string, ZipEntry>();
  private readonly order: string[] = [];
  private closed = false;
  private pending = 0;

  constructor(
    readonly path: string,
    private readonly fd: number,
    private readonly source: ZipSource,
    entries: ZipEntry[],
    private readonly options: NpzReadOptions,
    private readonly mapReason: string | undefined,
  ) {
    for (const entry of entries) {
      // A repeated name resolves to the last entry, as Python's zipfile does.
      if (!this.byName.has(entry.name)) this.order.push(keyOf(entry.name));
      this.byName.set(entry.name, entry);
    }
  }

  keys(): string[] {
    return [...this.order];
  }

  private entry(name: string): ZipEntry | undefined {
    return this.byName.get(`${name}.npy`) ?? this.byName.get(name);
  }

  has(name: string): boolean {
    return this.entry(name) !== undefined;
  }

  async get(name: string): Promise<LoadedArray | PyObject> {
    if (this.closed) throw new TensorioError('ERR_CLOSED', 'the archive is closed', { path: this.path });
    const entry = this.entry(name);
    if (!entry) {
      const keys = this.order.slice(0, 20).map((k) => `'${k}'`).join(', ');
      throw new TensorioError(
        'ERR_NOT_FOUND_IN_ARCHIVE',
        `no member '${name}' in the archive; it holds ${this.order.length === 0 ? 'nothing' : keys}${this.order.length > 20 ? ', ...' : ''}`,
        { path: this.path },
      );
    }
    this.pending++;
    try {
      return await this.load(entry);
    } finally {
      this.pending--;
      if (this.closed && this.pending === 0) closeQuietly(this.fd);
    }
  }

  async info(name: string): Promise<NpzMemberInfo> {
    if (this.closed) throw new TensorioError('ERR_CLOSED', 'the archive is closed', { path: this.path });
    const entry = this.entry(name);
    if (!entry) throw new TensorioError('ERR_NOT_FOUND_IN_ARCHIVE', `no member '${name}' in the archive`, { path: this.path });
    const where = `${this.path}[${entry.name}]`;
    const start = await memberDataOffset(this.source, entry, this.path);
    const probe = await this.source.read(start, Math.min(entry.compressedSize, HEADER_PROBE), 'member header');
    // A partial deflate stream inflates as far as it goes with a sync flush.
    const bytes = entry.method === 0 ? probe : new Uint8Array(zlib.inflateRawSync(probe, { finishFlush: zlib.constants.Z_SYNC_FLUSH, maxOutputLength: HEADER_PROBE * 64 }));
    const headerOptions = headerOptionsOf(this.options);
    const raw = parseNpyRawHeader(bytes, where, headerOptions, entry.uncompressedSize);
    const common = { key: keyOf(entry.name), compressed: entry.method !== 0 };
    if (isObjectDescr(raw.descr)) {
      return { ...common, dtype: null, shape: raw.shape, dataLength: entry.uncompressedSize - raw.dataOffset, bigEndian: false, fortranOrder: raw.fortranOrder };
    }
    const header = parseNpyHeader(bytes, where, headerOptions, entry.uncompressedSize);
    const info: NpzMemberInfo = { ...common, dtype: header.dtype, shape: header.shape, dataLength: header.dataLength, bigEndian: header.bigEndian, fortranOrder: header.fortranOrder };
    if (entry.method === 0) info.dataOffset = start + header.dataOffset;
    return info;
  }

  private async load(entry: ZipEntry): Promise<LoadedArray | PyObject> {
    const where = `${this.path}[${entry.name}]`;
    const headerOptions = headerOptionsOf(this.options);
    const mapping = this.source.mapping;
    if (this.options.mmap && entry.method === 0 && mapping) {
      checkMemberSize(entry, this.path, this.options.maxMemberSize);
      const start = await memberDataOffset(this.source, entry, this.path);
      return mappedMember(mapping, start, entry, where, this.options);
    }
    if (entry.method === 0 && !mapping) {
      const array = await this.readStored(entry, where, headerOptions);
      if (array !== undefined) {
        if (!this.options.mmap) return array;
        return { ...array, mapped: false, copyReason: this.mapReason ?? 'the archive is not mapped' };
      }
    }
    // Deflated members, and stored ones the fast path leaves: a fresh buffer (stored members
    // of a mapping never get here, so nothing read this way pins the mapping).
    const bytes = await readMember(this.source, entry, this.path, {
      maxMemberSize: this.options.maxMemberSize ?? DEFAULT_MAX_MEMBER_SIZE,
    });
    const raw = parseNpyRawHeader(bytes, where, headerOptions);
    if (isObjectDescr(raw.descr)) return unpickleMember(bytes.subarray(raw.dataOffset), where, this.options);
    const array = decodeNpy(bytes, where, headerOptions);
    if (!this.options.mmap) return array;
    const copyReason = entry.method !== 0 ? 'the member is compressed' : (this.mapReason ?? 'the archive is not mapped');
    return { ...array, mapped: false, copyReason };
  }

  /**
   * A stored numeric member read straight into a buffer of its own, the data at offset 0 so it
   * is aligned whatever the archive's layout, CRC-checked chunk by chunk as it arrives.
   * Undefined for members that need the general path (object arrays, trailing bytes).
   */
  private async readStored(entry: ZipEntry, where: string, headerOptions: NpyReadOptions): Promise<LoadedArray | undefined> {
    checkMemberSize(entry, this.path, this.options.maxMemberSize);
    const start = await memberDataOffset(this.source, entry, this.path);
    const maxHeaderSize = headerOptions.maxHeaderSize ?? DEFAULT_MAX_HEADER_SIZE;
    const prefix = await this.source.read(start, Math.min(entry.compressedSize, 12 + maxHeaderSize), `member '${entry.name}'`);
    const raw = parseNpyRawHeader(prefix, where, headerOptions, entry.compressedSize);
    if (isObjectDescr(raw.descr)) return undefined;
    const header = parseNpyHeader(prefix, where, headerOptions, entry.compressedSize);
    if (header.dataOffset + header.dataLength !== entry.compressedSize) {
      if (header.dataOffset + header.dataLength > entry.compressedSize) {
        throw new TensorioError('ERR_TRUNCATED', `member ends inside the data: ${header.dataLength} bytes needed at offset ${header.dataOffset}, the member has ${entry.compressedSize}`, { path: where });
      }
      return undefined;
    }
    const buffer = allocateForRead(header.dataLength);
    const crc = await readIntoWithCrc(this.source, start + header.dataOffset, new Uint8Array(buffer), crc32(prefix.subarray(0, header.dataOffset)), `member '${entry.name}'`);
    checkCrc(entry, crc, this.path);
    return arrayFromBuffer(header, buffer, 0, where, { mapped: false });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.pending === 0) closeQuietly(this.fd);
  }
}

/**
 * Opens an `.npz` archive, reading only its central directory; members are read by
 * {@link NpzFile.get}. With `mmap`, the file is mapped once here (no bytes are read).
 * @throws TensorioError `ERR_BAD_ZIP`, `ERR_TRUNCATED`, `ERR_NOT_FOUND`, `ERR_PERMISSION`, `ERR_IO`.
 */
export async function openNpz(path: string, options?: NpzReadOptions & { allowPickle?: false }): Promise<NpzFile<LoadedArray>>;
export async function openNpz(path: string, options: NpzReadOptions): Promise<NpzFile<LoadedArray | PyObject>>;
export async function openNpz(path: string, options: NpzReadOptions = {}): Promise<NpzFile<LoadedArray | PyObject>> {
  const { fd, size } = await openForReadAsync(path, 0);
  try {
    let source = fdSource(fd, size, path);
    let mapReason: string | undefined;
    if (options.mmap) {
      const mapped = mapWholeFile(fd, size, path);
      if (mapped.bytes) source = bytesSource(mapped.bytes, path);
      else mapReason = mapped.reason;
    }
    const entries = await readCentralDirectory(source, path);
    return new NpzFileImpl(path, fd, source, entries, options, mapReason);
  } catch (error) {
    closeQuietly(fd);
    throw error;
  }
}

/**
 * Reads every member of an `.npz` archive into a record keyed like NumPy's `NpzFile`
 * (`x.npy` → `x`).
 * @param options `mmap` (default false), `allowPickle` (default false), `maxMemberSize`
 * (default 16 GiB), `maxHeaderSize` (default 10,000).
 * @throws TensorioError `ERR_BAD_ZIP` (not a zip, unsupported method, encrypted, corrupt
 * directory, a member inflating past its declared size), `ERR_CRC_MISMATCH`, `ERR_TRUNCATED`,
 * `ERR_TOO_LARGE` (a member over `maxMemberSize`), `ERR_PICKLE_DISALLOWED`, `ERR_UNSAFE_PICKLE`,
 * `ERR_BAD_PICKLE`, every `.npy` error of {@link readNpy} (with the member named in the path),
 * `ERR_NOT_FOUND`, `ERR_PERMISSION`, `ERR_IO`.
 */
export async function readNpz(path: string, options?: NpzReadOptions & { allowPickle?: false }): Promise<Record<string, LoadedArray>>;
export async function readNpz(path: string, options: NpzReadOptions): Promise<Record<string, LoadedArray | PyObject>>;
export async function readNpz(path: string, options: NpzReadOptions = {}): Promise<Record<string, LoadedArray | PyObject>> {
  const file = await openNpz(path, options);
  try {
    // Two members in flight: one is read on libuv's pool while the other's CRC is checked here.
    const keys = file.keys();
    const values = new Array<LoadedArray | PyObject>(keys.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < keys.length) {
        const index = next++;
        values[index] = await file.get(keys[index] as string);
      }
    };
    await Promise.all([worker(), worker()]);
    const out: Record<string, LoadedArray | PyObject> = {};
    keys.forEach((key, index) => {
      Object.defineProperty(out, key, { value: values[index], enumerable: true, writable: true, configurable: true });
    });
    return out;
  } finally {
    file.close();
  }
}

/**
 * Reads every member of an archive from a synchronous source, as {@link readNpz} does: the
 * one loop behind {@link readNpzSync} (a file or its mapping) and {@link decodeNpz} (bytes).
 * A repeated member name resolves to its last entry, as Python's zipfile does. With `mmap`
 * and a mapped source, stored members go through the same view-or-copy rule as readNpz's.
 * @throws TensorioError every error of {@link readNpz}.
 */
export function readNpzSource(source: ZipSourceSync, path: string, options: NpzReadOptions = {}, mapReason?: string): Record<string, LoadedArray | PyObject> {
  const headerOptions = headerOptionsOf(options);
  const out: Record<string, LoadedArray | PyObject> = {};
  for (const entry of readCentralDirectorySync(source, path)) {
    const where = `${path}[${entry.name}]`;
    let value: LoadedArray | PyObject;
    if (options.mmap && entry.method === 0 && source.mapping) {
      checkMemberSize(entry, path, options.maxMemberSize);
      value = mappedMember(source.mapping, memberDataOffsetSync(source, entry, path), entry, where, options);
    } else {
      const bytes = readMemberSync(source, entry, path, { maxMemberSize: options.maxMemberSize ?? DEFAULT_MAX_MEMBER_SIZE });
      const raw = parseNpyRawHeader(bytes, where, headerOptions);
      if (isObjectDescr(raw.descr)) value = unpickleMember(bytes.subarray(raw.dataOffset), where, options);
      else {
        const array = decodeNpy(bytes, where, headerOptions);
        value = options.mmap ? { ...array, mapped: false, copyReason: entry.method !== 0 ? 'the member is compressed' : (mapReason ?? 'the archive is not mapped') } : array;
      }
    }
    Object.defineProperty(out, keyOf(entry.name), { value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/**
 * Synchronous {@link readNpz}: the same result, read with blocking calls (one positioned
 * read per structure and member; deflated members inflate in one call capped at their
 * declared size). With `mmap` the archive is mapped once and aligned stored members are views.
 * @param options as {@link readNpz}.
 * @throws TensorioError every error of {@link readNpz}.
 */
export function readNpzSync(path: string, options?: NpzReadOptions & { allowPickle?: false }): Record<string, LoadedArray>;
export function readNpzSync(path: string, options: NpzReadOptions): Record<string, LoadedArray | PyObject>;
export function readNpzSync(path: string, options: NpzReadOptions = {}): Record<string, LoadedArray | PyObject> {
  const { fd, size } = openForRead(path);
  try {
    let source = fdSourceSync(fd, size, path);
    let mapReason: string | undefined;
    if (options.mmap) {
      const mapped = mapWholeFile(fd, size, path);
      if (mapped.bytes) source = bytesSourceSync(mapped.bytes, path);
      else mapReason = mapped.reason;
    }
    return readNpzSource(source, path, options, mapReason);
  } finally {
    closeQuietly(fd);
  }
}

/**
 * Parses an `.npz` archive held in memory. Stored members' arrays may be views into `bytes`
 * (when aligned); `mmap` is ignored.
 * @param path names the archive in error messages. Default `'<bytes>'`.
 * @throws TensorioError every error of {@link readNpz} but the file-system ones.
 */
export function decodeNpz(bytes: Uint8Array, options?: NpzReadOptions & { allowPickle?: false }, path?: string): Record<string, LoadedArray>;
export function decodeNpz(bytes: Uint8Array, options: NpzReadOptions, path?: string): Record<string, LoadedArray | PyObject>;
export function decodeNpz(bytes: Uint8Array, options: NpzReadOptions = {}, path = '<bytes>'): Record<string, LoadedArray | PyObject> {
  return readNpzSource(bytesSourceSync(bytes, path), path, { ...options, mmap: false });
}

/** Options of {@link writeNpz}. */
export interface NpzWriteOptions extends WriteOptions {
  /**
   * Deflate the members (`np.savez_compressed`). `true` is zlib level 6, as NumPy uses; a
   * number 0-9 chooses the level. Default false: stored members (`np.savez`), their data
   * aligned to 64 bytes so `readNpz(path, { mmap: true })` maps them.
   */
  compress?: boolean | number;
}

/** Member names of a list (`arr_0`, `arr_1`, ..., as `np.savez(path, *arrays)` names them) or a record. */
export function npzMemberNames(arrays: readonly NdArray[] | Readonly<Record<string, NdArray>>): [string, NdArray][] {
  return Array.isArray(arrays) ? arrays.map((a, i) => [`arr_${i}`, a]) : Object.entries(arrays as Record<string, NdArray>);
}

/**
 * Writes arrays as an `.npz` archive that `np.load` reads: a list becomes members `arr_0`,
 * `arr_1`, ...; a record's keys name its members. Streamed (the archive is never assembled in
 * memory) and atomic (temporary file, fsync, rename).
 * @param options `compress` (default false), `fsync` (default true).
 * @throws TensorioError `ERR_INVALID_ARGUMENT` (not a list or record of NdArrays, bad
 * compression level), `ERR_SHAPE_MISMATCH`, `ERR_UNSUPPORTED_DTYPE` (bfloat16, float8),
 * `ERR_NO_SPACE`, `ERR_PERMISSION`, `ERR_NOT_FOUND` (missing folder), `ERR_IO`.
 */
export async function writeNpz(path: string, arrays: readonly NdArray[] | Readonly<Record<string, NdArray>>, options: NpzWriteOptions = {}): Promise<void> {
  if (arrays === null || typeof arrays !== 'object') {
    throw new TensorioError('ERR_INVALID_ARGUMENT', 'writeNpz needs an array or a record of NdArrays', { path });
  }
  const compress = options.compress ?? false;
  const level = compress === true ? 6 : compress === false ? -1 : compress;
  if (!Number.isInteger(level) || level < -1 || level > 9) {
    throw new TensorioError('ERR_INVALID_ARGUMENT', `compress must be a boolean or a level 0-9, got ${String(compress)}`, { path });
  }
  // Every member is checked before the file is created, so a bad argument leaves nothing behind.
  const members = npzMemberNames(arrays).map(([name, array]) => {
    try {
      validateNdArray(array, path);
      return { name: `${name}.npy`, chunks: encodeNpy(array, path) };
    } catch (error) {
      if (error instanceof TensorioError) {
        throw new TensorioError(error.code, `member '${name}': ${error.message.replace(`${path}: `, '')}`, { path, cause: error });
      }
      throw error;
    }
  });
  const out = await AtomicWriter.open(path, options);
  try {
    const zip = new ZipWriter(out, path);
    if (level < 0) {
      // The CRC of member k + 1 is computed here, a piece at a time, while the pieces of
      // member k are written on libuv's pool.
      let crc = members.length > 0 ? new CrcCursor((members[0] as { chunks: Uint8Array[] }).chunks).finish() : 0;
      for (const [index, member] of members.entries()) {
        const next = members[index + 1];
        const cursor = next ? new CrcCursor(next.chunks) : undefined;
        await zip.addStored(member.name, member.chunks, 64, crc, () => cursor?.step(16 << 20));
        if (cursor) crc = cursor.finish();
      }
    } else {
      for (const member of members) await zip.addDeflated(member.name, member.chunks, level);
    }
    await zip.finish();
    await out.commit();
  } catch (error) {
    await out.abort();
    throw error;
  }
}
