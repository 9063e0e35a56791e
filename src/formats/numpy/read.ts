/**
 * Reading `.npy` files: eager (like `np.load`) or mapped (like `mmap_mode='r'`), the header
 * alone, and string arrays. The header is found by one walker (a generator of the reads it
 * needs, src/io/source.ts) that the synchronous and the asynchronous readers both drive; they
 * differ only in how the data is then read.
 */
import { checkOptions, keysOf } from '../../options.js';
import { dtypeInfo } from '../../dtype.js';
import { allocateForRead, closeQuietly, openForRead, openForReadAsync } from '../../io/read.js';
import { canMap, mapFile } from '../../io/map.js';
import { ByteSource, COPY_REASONS, runAsync, runSync, type Reads } from '../../io/source.js';
import { type LoadedArray } from '../../ndarray.js';
import { arrayFromBuffer } from './array.js';
import {
  checkDataFits,
  DEFAULT_MAX_HEADER_SIZE,
  firstReadLength,
  npyHeaderEnd,
  parseNpyRawHeader,
  resolveNpyHeader,
  stringHeader,
  type NpyHeader,
  type NpyRawHeader,
  type NpyReadOptions,
} from './header.js';
import { decodeStrings, type StringArray } from './strings.js';

/** The options readNpy takes (checked: a misspelt key is ERR_INVALID_ARGUMENT). */
export const READ_NPY_OPTIONS = keysOf<NpyReadOptions>({ mmap: true, maxHeaderSize: true, strings: true, voidAs: true });

// What an async open reads along with the header: small arrays arrive whole in one trip.
const SMALL_FILE = 64 * 1024;

/**
 * The raw header of a `.npy` of `size` bytes, reading the rest of a longer header only once
 * the file is known to hold it. `known` is the file's first bytes when the open read them.
 */
export function* rawHeaderWalk(size: number, file: string, options: NpyReadOptions, known?: Uint8Array): Reads<NpyRawHeader> {
  const first = known ?? (yield [0, firstReadLength(size, options.maxHeaderSize ?? DEFAULT_MAX_HEADER_SIZE), '.npy header']);
  const needed = npyHeaderEnd(first, size, file, options);
  const bytes = needed > first.length ? yield [0, needed, '.npy header'] : first;
  return parseNpyRawHeader(bytes, file, options, size);
}

/** The header of a numeric `.npy` of `size` bytes whose data the file holds. */
export function* headerWalk(size: number, file: string, options: NpyReadOptions, known?: Uint8Array): Reads<NpyHeader> {
  const header = resolveNpyHeader(yield* rawHeaderWalk(size, file, options, known), file, options);
  checkDataFits(header, size, file);
  return header;
}

/** How an array is to be read: mapped, or copied (saying why when a mapping was asked for). */
export interface ReadPlan {
  header: NpyHeader;
  /** Set when the data is to be mapped. */
  map: boolean;
  copyReason?: string;
}

/** What a read finds: a numeric array and its plan, or (with `strings`) a string array's header. */
type Found = ReadPlan | { strings: NpyHeader };

function* findWalk(size: number, file: string, options: NpyReadOptions, known?: Uint8Array): Reads<Found> {
  const raw = yield* rawHeaderWalk(size, file, options, known);
  const strings = options.strings ? stringHeader(raw, file) : undefined;
  const header = strings ?? resolveNpyHeader(raw, file, options);
  checkDataFits(header, size, file);
  return strings ? { strings } : planRead(header, options);
}

export function planRead(header: NpyHeader, options: NpyReadOptions): ReadPlan {
  if (!options.mmap) return { header, map: false };
  const alignment = dtypeInfo(header.dtype).array.BYTES_PER_ELEMENT;
  if (header.bigEndian) return { header, map: false, copyReason: COPY_REASONS.bigEndianConverted };
  if (header.dataOffset % alignment !== 0) return { header, map: false, copyReason: COPY_REASONS.unalignedOffset(header.dataOffset, header.dtype, alignment) };
  if (!canMap()) return { header, map: false, copyReason: COPY_REASONS.noAddon };
  return { header, map: true };
}

/** The array mapped from the plan's file when the plan maps and the mapping works; else why it is copied. */
export function mapPlanned(plan: ReadPlan, source: ByteSource, writable: boolean): LoadedArray | string | undefined {
  if (!plan.map) return plan.copyReason;
  const { header } = plan;
  const result = mapFile(source.fd as number, header.dataOffset + header.dataLength, writable, source.path);
  if (!result.buffer) return result.reason;
  return arrayFromBuffer(header, result.buffer, header.dataOffset, source.path, { mapped: true });
}

export function readInfo(copyReason: string | undefined): { mapped: false; copyReason?: string } {
  return copyReason === undefined ? { mapped: false } : { mapped: false, copyReason };
}

/** The string array of a header, from exactly its data bytes. */
function stringsOf(header: NpyHeader, data: Uint8Array, file: string): StringArray {
  return decodeStrings(header.descr, header.shape, header.fortranOrder, data, file);
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
  checkOptions(options, READ_NPY_OPTIONS, 'readNpy', path);
  if (options.mmap && canMap()) {
    // A mapped open moves no data: open, fstat, one small header read and mmap are done in
    // place, as np.load(mmap_mode='r') does them. Trips to the thread pool and back cost more
    // than these calls (2 ms against 1.3 ms in a fresh process). Only a fallback to reading
    // (big-endian or unaligned data, a string array) continues below, asynchronously.
    const array = mapWhenPossibleSync(path, options);
    if (array) return array;
  }
  const { fd, size, prefix } = await openForReadAsync(path, SMALL_FILE);
  try {
    const source = ByteSource.ofFile(fd, size, path);
    const found = await runAsync(findWalk(size, path, options, prefix), source);
    // A small file came whole with the open: no second trip to the thread pool.
    const header = 'strings' in found ? found.strings : found.header;
    const end = header.dataOffset + header.dataLength;
    if ('strings' in found) return stringsOf(header, end <= prefix.length ? prefix.subarray(header.dataOffset, end) : await source.readAsync(header.dataOffset, header.dataLength, '.npy data'), path);
    const mapped = mapPlanned(found, source, false);
    if (typeof mapped === 'object') return mapped;
    const buffer = end <= prefix.length ? prefix.slice(header.dataOffset, end).buffer : allocateForRead(header.dataLength);
    if (end > prefix.length) await source.readIntoAsync(header.dataOffset, new Uint8Array(buffer), '.npy data');
    return arrayFromBuffer(header, buffer, 0, path, readInfo(mapped));
  } finally {
    closeQuietly(fd);
  }
}

/** The mapped array, or undefined when the file must be read instead. */
function mapWhenPossibleSync(path: string, options: NpyReadOptions): LoadedArray | undefined {
  const { fd, size } = openForRead(path);
  try {
    const source = ByteSource.ofFile(fd, size, path);
    const found = runSync(findWalk(size, path, options), source);
    if ('strings' in found || !found.map) return undefined;
    const array = mapPlanned(found, source, false);
    return typeof array === 'object' ? array : undefined;
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
    return await runAsync(headerWalk(size, path, options, prefix), ByteSource.ofFile(fd, size, path));
  } finally {
    closeQuietly(fd);
  }
}

/** Synchronous {@link readNpy}. */
export function readNpySync(path: string, options?: NpyReadOptions & { strings?: false }): LoadedArray;
export function readNpySync(path: string, options: NpyReadOptions): LoadedArray | StringArray;
export function readNpySync(path: string, options: NpyReadOptions = {}): LoadedArray | StringArray {
  checkOptions(options, READ_NPY_OPTIONS, 'readNpySync', path);
  const { fd, size } = openForRead(path);
  try {
    const source = ByteSource.ofFile(fd, size, path);
    const found = runSync(findWalk(size, path, options), source);
    if ('strings' in found) return stringsOf(found.strings, source.read(found.strings.dataOffset, found.strings.dataLength, '.npy data'), path);
    const mapped = mapPlanned(found, source, false);
    if (typeof mapped === 'object') return mapped;
    const buffer = allocateForRead(found.header.dataLength);
    source.readInto(found.header.dataOffset, new Uint8Array(buffer), '.npy data');
    return arrayFromBuffer(found.header, buffer, 0, path, readInfo(mapped));
  } finally {
    closeQuietly(fd);
  }
}
