/**
 * Reading `.npy` files: eager (like `np.load`) or mapped (like `mmap_mode='r'`), the header
 * alone, and string arrays; async and sync.
 */
import { checkOptions, OPTIONS } from '../../options.js';
import { dtypeInfo } from '../../dtype.js';
import { allocateForRead, closeQuietly, mapFile, openForRead, openForReadAsync, readExactly, readExactlySync } from '../../io.js';
import { type LoadedArray } from '../../ndarray.js';
import { native } from '../../native.js';
import { arrayFromBuffer } from './array.js';
import {
  checkDataFits,
  DEFAULT_MAX_HEADER_SIZE,
  firstReadLength,
  headerBytesNeeded,
  headerProbeLength,
  npyHeaderEnd,
  parseNpyHeader,
  parseNpyRawHeader,
  stringHeader,
  truncatedHeader,
  type NpyHeader,
  type NpyRawHeader,
  type NpyReadOptions,
} from './header.js';
import { decodeStrings, type StringArray } from './strings.js';

// What an async open reads along with the header: small arrays arrive whole in one trip.
const SMALL_FILE = 64 * 1024;

/**
 * Reads and parses the raw header of an open file whose first bytes are `prefix`, reading the
 * rest of a longer header only once the file is known to hold it.
 */
export async function readNpyRawHeaderAt(fd: number, size: number, prefix: Uint8Array, file: string, options: NpyReadOptions): Promise<NpyRawHeader> {
  const needed = npyHeaderEnd(prefix, size, file, options);
  let bytes = prefix;
  if (needed > prefix.length) {
    bytes = new Uint8Array(needed);
    await readExactly(fd, 0, bytes, file, '.npy header');
  }
  return parseNpyRawHeader(bytes, file, options, size);
}

/** Parses the header of an open file from its first bytes, reading more if it is longer. */
async function readHeader(fd: number, size: number, first: Uint8Array, file: string, options: NpyReadOptions): Promise<NpyHeader> {
  let prefix = first;
  const needed = headerBytesNeeded(prefix, size, file, options);
  if (needed > prefix.length) {
    if (needed > size) throw truncatedHeader(file, size, needed);
    prefix = new Uint8Array(needed);
    await readExactly(fd, 0, prefix, file, '.npy header');
  }
  const header = parseNpyHeader(prefix, file, options, size);
  checkDataFits(header, size, file);
  return header;
}

/** Synchronous {@link readHeader}. */
export function readHeaderSync(fd: number, size: number, file: string, options: NpyReadOptions): NpyHeader {
  let prefix = new Uint8Array(firstReadLength(size, options.maxHeaderSize ?? DEFAULT_MAX_HEADER_SIZE));
  readExactlySync(fd, 0, prefix, file, '.npy header');
  const needed = headerBytesNeeded(prefix, size, file, options);
  if (needed > prefix.length) {
    if (needed > size) throw truncatedHeader(file, size, needed);
    prefix = new Uint8Array(needed);
    readExactlySync(fd, 0, prefix, file, '.npy header');
  }
  const header = parseNpyHeader(prefix, file, options, size);
  checkDataFits(header, size, file);
  return header;
}

export interface ReadPlan {
  header: NpyHeader;
  /** Set when the data is to be mapped. */
  map: boolean;
  copyReason?: string;
}

export function planRead(header: NpyHeader, options: NpyReadOptions): ReadPlan {
  if (!options.mmap) return { header, map: false };
  const alignment = dtypeInfo(header.dtype).array.BYTES_PER_ELEMENT;
  if (header.bigEndian) return { header, map: false, copyReason: 'the data is big-endian and was converted to native order' };
  if (header.dataOffset % alignment !== 0) {
    return { header, map: false, copyReason: `the data offset ${header.dataOffset} is not a multiple of the ${header.dtype} size ${alignment}` };
  }
  if (!native) return { header, map: false, copyReason: 'the native addon is not loaded' };
  return { header, map: true };
}

/** The array mapped from an open file, or why it could not be mapped. */
export function mapped(header: NpyHeader, fd: number, file: string, writable: boolean): LoadedArray | string {
  const result = mapFile(fd, header.dataOffset + header.dataLength, writable, file);
  if (!result.buffer) return result.reason;
  return arrayFromBuffer(header, result.buffer, header.dataOffset, file, { mapped: true });
}

export function readInfo(copyReason: string | undefined): { mapped: false; copyReason?: string } {
  return copyReason === undefined ? { mapped: false } : { mapped: false, copyReason };
}

/**
 * Reads a `.npy` file.
 *
 * @param path the file.
 * @param options `mmap` (default false) maps instead of reading; `maxHeaderSize` (default 10,000).
 * @returns the array, with `mapped` and, when mapping was asked for but not possible, `copyReason`.
 * @throws TensorioError `ERR_BAD_MAGIC`, `ERR_UNSUPPORTED_VERSION`, `ERR_HEADER_TOO_LARGE`,
 * `ERR_BAD_HEADER`, `ERR_UNSUPPORTED_DTYPE`, `ERR_TRUNCATED`, `ERR_BAD_VALUE` (bool bytes
 * other than 0/1), `ERR_NOT_FOUND`, `ERR_PERMISSION`, `ERR_IO`.
 */
export async function readNpy(path: string, options?: NpyReadOptions & { strings?: false }): Promise<LoadedArray>;
export async function readNpy(path: string, options: NpyReadOptions): Promise<LoadedArray | StringArray>;
export async function readNpy(path: string, options: NpyReadOptions = {}): Promise<LoadedArray | StringArray> {
  checkOptions(options, OPTIONS.readNpy, 'readNpy', path);
  if (options.strings) {
    const strings = await readStringNpy(path, options);
    if (strings) return strings;
  }
  if (options.mmap && native) {
    // A mapped open moves no data: open, fstat, one small header read and mmap are done in
    // place, as np.load(mmap_mode='r') does them. Trips to the thread pool and back cost more
    // than these calls (2 ms against 1.3 ms in a fresh process). Only a fallback to reading
    // (big-endian or unaligned data) continues below, asynchronously.
    const array = mapWhenPossibleSync(path, options);
    if (array) return array;
  }
  const { fd, size, prefix } = await openForReadAsync(path, SMALL_FILE);
  try {
    const plan = planRead(await readHeader(fd, size, prefix, path, options), options);
    const mappedArray = plan.map ? mapped(plan.header, fd, path, false) : undefined;
    if (mappedArray && typeof mappedArray !== 'string') return mappedArray;
    const { header } = plan;
    const end = header.dataOffset + header.dataLength;
    // A small file came whole with the open: no second trip to the thread pool.
    const buffer = end <= prefix.length ? prefix.slice(header.dataOffset, end).buffer : allocateForRead(header.dataLength);
    if (end > prefix.length) await readExactly(fd, header.dataOffset, new Uint8Array(buffer), path, '.npy data');
    return arrayFromBuffer(header, buffer, 0, path, readInfo(mappedArray ?? plan.copyReason));
  } finally {
    closeQuietly(fd);
  }
}

/** The mapped array, or undefined when the file must be read instead. */
function mapWhenPossibleSync(path: string, options: NpyReadOptions): LoadedArray | undefined {
  const { fd, size } = openForRead(path);
  try {
    const plan = planRead(readHeaderSync(fd, size, path, options), options);
    if (!plan.map) return undefined;
    const array = mapped(plan.header, fd, path, false);
    return typeof array === 'string' ? undefined : array;
  } finally {
    closeQuietly(fd);
  }
}

/**
 * Reads only the header of a `.npy` file: dtype, shape, layout, where the data starts.
 * @throws TensorioError as {@link readNpy}, except for data errors (the data is not read;
 * truncation is still detected from the file size).
 */
export async function readNpyHeader(path: string, options: Pick<NpyReadOptions, 'maxHeaderSize'> = {}): Promise<NpyHeader> {
  const maxHeaderSize = options.maxHeaderSize ?? DEFAULT_MAX_HEADER_SIZE;
  const { fd, size, prefix } = await openForReadAsync(path, firstReadLength(Number.MAX_SAFE_INTEGER, maxHeaderSize));
  try {
    return await readHeader(fd, size, prefix, path, options);
  } finally {
    closeQuietly(fd);
  }
}

/** Synchronous {@link readNpy}. */
export function readNpySync(path: string, options?: NpyReadOptions & { strings?: false }): LoadedArray;
export function readNpySync(path: string, options: NpyReadOptions): LoadedArray | StringArray;
export function readNpySync(path: string, options: NpyReadOptions = {}): LoadedArray | StringArray {
  checkOptions(options, OPTIONS.readNpy, 'readNpySync', path);
  const { fd, size } = openForRead(path);
  try {
    if (options.strings) {
      const strings = stringsFromFdSync(fd, size, path, options);
      if (strings) return strings;
    }
    const plan = planRead(readHeaderSync(fd, size, path, options), options);
    const mappedArray = plan.map ? mapped(plan.header, fd, path, false) : undefined;
    if (mappedArray && typeof mappedArray !== 'string') return mappedArray;
    const { header } = plan;
    const buffer = allocateForRead(header.dataLength);
    readExactlySync(fd, header.dataOffset, new Uint8Array(buffer), path, '.npy data');
    return arrayFromBuffer(header, buffer, 0, path, readInfo(mappedArray ?? plan.copyReason));
  } finally {
    closeQuietly(fd);
  }
}

/** A string `.npy` read whole (header, then exactly its data), or undefined for any other descr. */
async function readStringNpy(path: string, options: NpyReadOptions): Promise<StringArray | undefined> {
  const { fd, size, prefix } = await openForReadAsync(path, headerProbeLength(options.maxHeaderSize ?? DEFAULT_MAX_HEADER_SIZE));
  try {
    let raw: NpyRawHeader;
    try {
      raw = await readNpyRawHeaderAt(fd, size, prefix, path, options);
    } catch {
      return undefined; // the numeric reader reports it with its own message
    }
    const header = stringHeader(raw, path);
    if (!header) return undefined;
    checkDataFits(header, size, path);
    const data = new Uint8Array(header.dataLength);
    await readExactly(fd, header.dataOffset, data, path, '.npy data');
    return decodeStrings(header.descr, header.shape, header.fortranOrder, data, path);
  } finally {
    closeQuietly(fd);
  }
}

function stringsFromFdSync(fd: number, size: number, path: string, options: NpyReadOptions): StringArray | undefined {
  const first = new Uint8Array(firstReadLength(size, options.maxHeaderSize ?? DEFAULT_MAX_HEADER_SIZE));
  readExactlySync(fd, 0, first, path, '.npy header');
  let raw: NpyRawHeader;
  try {
    const needed = npyHeaderEnd(first, size, path, options);
    let bytes = first;
    if (needed > first.length) {
      bytes = new Uint8Array(needed);
      readExactlySync(fd, 0, bytes, path, '.npy header');
    }
    raw = parseNpyRawHeader(bytes, path, options, size);
  } catch {
    return undefined;
  }
  const header = stringHeader(raw, path);
  if (!header) return undefined;
  checkDataFits(header, size, path);
  const data = new Uint8Array(header.dataLength);
  readExactlySync(fd, header.dataOffset, data, path, '.npy data');
  return decodeStrings(header.descr, header.shape, header.fortranOrder, data, path);
}
