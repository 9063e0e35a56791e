/**
 * NumPy's `.npy` format, versions 1.0 to 3.0, as numpy/lib/format.py defines it.
 *
 * Layout: the magic `\x93NUMPY`, a major and minor version byte, the header length (2 bytes
 * little-endian in 1.0, 4 bytes in 2.0 and 3.0), then a Python dict literal
 * `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }` padded with spaces and a
 * newline so the data that follows starts on a 64-byte boundary (16 before NumPy 1.14).
 * Version 3.0 only changes the header's encoding from latin-1 to UTF-8.
 */
import { checkOptions, OPTIONS } from '../options.js';
import * as fs from 'node:fs';
import * as os from 'node:os';

import { byteswap } from '../convert.js';
import { dtypeFromNumpyChar, dtypeFromNumpyCode, dtypeInfo, type DType, type DTypeInfo } from '../dtype.js';
import { fromSystemError, TensorioError } from '../errors.js';
import {
  allocateForRead,
  closeQuietly,
  createTempFor,
  mapFile,
  openForRead,
  openForReadAsync,
  readExactly,
  readExactlySync,
  unmapBuffer,
  writeAtomic,
  writeAtomicSync,
  type WriteOptions,
} from '../io.js';
import { bytesOf, shapeSize, validateNdArray, type LoadedArray, type NdArray } from '../ndarray.js';
import { native } from '../native.js';
import { decodeStrings, encodeStrings, isStringArray, storesStringsFortran, stringDescr, stringDescrOf, type StringArray } from './npy-strings.js';
import { parsePyLiteral, PyBytes, PyDict, PyFloat, PyLiteralError, PyTuple, type PyValue } from './pyliteral.js';

const NATIVE_BIG_ENDIAN = os.endianness() === 'BE';
const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const ALIGN = 64;
// NumPy's default max_header_size (numpy >= 1.24): longer headers need an explicit opt-in.
export const DEFAULT_MAX_HEADER_SIZE = 10000;
// NumPy leaves room for the growth axis to reach 21 digits, so open_memmap-style appends can
// rewrite the header in place; we match its bytes exactly.
const GROWTH_AXIS_MAX_DIGITS = 21;

/** Options for reading `.npy` files. */
export interface NpyReadOptions {
  /**
   * Map the file and return a view into the mapping instead of reading it. Default false:
   * an eager read, like `np.load`, so the array is independent of the file (a mapped file
   * that another process truncates makes later reads fault). Mapping falls back to a read,
   * reported in `copyReason`, when the data is big-endian (it must be converted), not aligned
   * for its dtype, or the native addon is not loaded.
   */
  mmap?: boolean;
  /** Largest header accepted, in bytes. Default 10,000, NumPy's own limit. */
  maxHeaderSize?: number;
  /**
   * Read NumPy's fixed-width string arrays (`|S<n>`, `<U<n>`, `>U<n>`) as a
   * {@link StringArray}. Default false: they are `ERR_UNSUPPORTED_DTYPE`, so code that expects
   * numeric arrays never receives strings unasked.
   */
  strings?: boolean;
  /**
   * The dtype to read a raw void descr (`'<V2'`, `'|V1'`) as, when its item size agrees.
   * NumPy 2 with ml_dtypes saves bfloat16 as `'<V2'` and float8_e4m3fn as `'<V1'`: the header
   * does not name the type (NumPy itself loads such a file back as raw bytes), so only the
   * caller can say what it is: `{ voidAs: 'bfloat16' }`, or `'uint16'` for the raw 2-byte
   * values. Default: a void descr is refused with `ERR_UNSUPPORTED_DTYPE`.
   */
  voidAs?: DType;
}

/** What a `.npy` header says. */
export interface NpyHeader {
  version: [number, number];
  /** The descr exactly as written ('<f4'). */
  descr: string;
  dtype: DType;
  /** True when the stored data is big-endian and must be swapped. */
  bigEndian: boolean;
  fortranOrder: boolean;
  shape: number[];
  /** Byte offset of the data in the file. */
  dataOffset: number;
  /** Byte length of the data. */
  dataLength: number;
}

function startsWithMagic(bytes: Uint8Array): boolean {
  for (let i = 0; i < Math.min(bytes.length, MAGIC.length); i++) if (bytes[i] !== MAGIC[i]) return false;
  return true;
}

function describe(value: PyValue): string {
  if (typeof value === 'string') return `'${value}'`;
  if (value instanceof PyBytes) return `b'${value.text}'`;
  if (value instanceof PyFloat) return value.imaginary ? `${value.value}j` : Number.isInteger(value.value) ? value.value.toFixed(1) : String(value.value);
  if (value instanceof PyTuple) return `(${value.items.map(describe).join(', ')}${value.items.length === 1 ? ',' : ''})`;
  if (Array.isArray(value)) return `[${value.map(describe).join(', ')}]`;
  if (value instanceof PyDict) return `{${[...[...value.entries].map(([k, v]) => `'${k}': ${describe(v)}`), ...value.otherKeys.map((k) => `${describe(k)}: ...`)].join(', ')}}`;
  if (value === null) return 'None';
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  return String(value);
}

function shorten(text: string): string {
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

/**
 * The dtype of a NumPy descr string ('<f4', '>u8', '|b1').
 * @throws TensorioError `ERR_UNSUPPORTED_DTYPE` naming the descr for structured, string,
 * datetime, object and other dtypes tensorio does not hold.
 */
export function dtypeFromDescr(descr: PyValue, file?: string): { info: DTypeInfo; bigEndian: boolean } {
  const unsupported = (why: string): never => {
    throw new TensorioError('ERR_UNSUPPORTED_DTYPE', `unsupported dtype ${shorten(describe(descr))}: ${why}`, { path: file });
  };
  if (typeof descr !== 'string') return unsupported('structured (record) dtypes are not supported');
  const match = /^([<>|=]?)([a-zA-Z?])(\d*)(\[\w+\])?$/.exec(descr);
  if (!match) return unsupported('not a NumPy type string');
  const [, order, kind, width, unit] = match as unknown as [string, string, string, string, string | undefined];
  if (kind === 'O') return unsupported('object arrays hold pickled Python objects; read them with load(path, { allowPickle: true })');
  if (kind === 'T') return unsupported("NumPy 2's variable-width StringDType is not supported");
  if (kind === 'U' || kind === 'S' || kind === 'a' || (kind === 'c' && width === '')) return unsupported('a string array; pass { strings: true } to read it as a StringArray');
  if (kind === 'M' || kind === 'm' || unit) return unsupported('datetime and timedelta arrays are not supported');
  if (kind === 'V') return unsupported("void (raw record) arrays are not supported; NumPy 2 with ml_dtypes saves bfloat16 as '<V2' and float8_e4m3fn as '<V1': read them with { voidAs: 'bfloat16' } (or the dtype they hold)");
  // 'd', '<f', '=l': NumPy's one-character codes, read as np.dtype(code) reads them.
  const info = width === '' ? dtypeFromNumpyChar(kind) : kind === '?' ? undefined : dtypeFromNumpyCode(`${kind}${width}`);
  if (!info) return unsupported('no matching tensorio dtype (supported: b1, i1-i8, u1-u8, f2, f4, f8, c8, c16 and their one-character codes ? b B h H i I l L q Q p P n N e f d F D)');
  // '=', '|' and no order character all mean this machine's order, as in np.dtype.
  const big = order === '>' || (order !== '<' && NATIVE_BIG_ENDIAN);
  return { info, bigEndian: big && info.swapSize > 1 };
}

/** `voidAs` applied to a raw void descr ('<V2'); undefined for any other descr or without `voidAs`. */
function voidDtype(descr: PyValue, voidAs: DType | undefined, file: string): { info: DTypeInfo; bigEndian: boolean } | undefined {
  const match = typeof descr === 'string' ? /^([<>|=]?)V(\d+)$/.exec(descr) : null;
  if (!match || voidAs === undefined) return undefined;
  const info = dtypeInfo(voidAs);
  if (info.itemSize !== Number(match[2])) {
    throw new TensorioError('ERR_UNSUPPORTED_DTYPE', `unsupported dtype '${descr as string}': voidAs '${voidAs}' has ${info.itemSize}-byte items, the file's are ${match[2]} bytes`, { path: file });
  }
  // ml_dtypes writes its types with this machine's order ('<' here); '>' is swapped.
  const big = match[1] === '>' || (match[1] === '=' && NATIVE_BIG_ENDIAN);
  return { info, bigEndian: big && info.swapSize > 1 };
}

/**
 * Reads the fixed preamble: magic, version and header length. Returns the total number of
 * bytes (preamble plus header) needed before the header can be parsed.
 */
function parsePreamble(prefix: Uint8Array, fileSize: number, file: string, maxHeaderSize: number) {
  if (!startsWithMagic(prefix)) {
    throw new TensorioError('ERR_BAD_MAGIC', `not a .npy file: expected the magic \\x93NUMPY, found ${hex(prefix.subarray(0, 6))}`, { path: file });
  }
  if (prefix.length < 8) throw truncatedHeader(file, fileSize, 8);
  const major = prefix[6] as number;
  const minor = prefix[7] as number;
  if (major < 1 || major > 3 || minor !== 0) {
    throw new TensorioError('ERR_UNSUPPORTED_VERSION', `unsupported .npy format version ${major}.${minor}; expected 1.0, 2.0 or 3.0`, { path: file });
  }
  const lengthBytes = major === 1 ? 2 : 4;
  const start = 8 + lengthBytes;
  if (prefix.length < start) throw truncatedHeader(file, fileSize, start);
  const view = new DataView(prefix.buffer, prefix.byteOffset, prefix.byteLength);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  // NumPy limits the decoded header's length in characters: a byte each in 1.0 and 2.0
  // (latin-1), up to 4 in 3.0 (UTF-8), where the exact count is checked once it is decoded.
  if (headerLength > (major === 3 ? maxHeaderSize * 4 : maxHeaderSize)) throw headerTooLarge(file, headerLength, maxHeaderSize, 'bytes');
  return { version: [major, minor] as [number, number], headerStart: start, dataOffset: start + headerLength };
}

function headerTooLarge(file: string, length: number, maxHeaderSize: number, unit: string): TensorioError {
  return new TensorioError(
    'ERR_HEADER_TOO_LARGE',
    `header is ${length} ${unit}, over the limit of ${maxHeaderSize}; pass { maxHeaderSize: ${length} } (or, to load(), { allowPickle: true }, as NumPy) if you trust this file`,
    { path: file },
  );
}

function truncatedHeader(file: string, fileSize: number, needed: number): TensorioError {
  return new TensorioError('ERR_TRUNCATED', `file ends inside the .npy header: ${fileSize} bytes, the header needs ${needed}`, { path: file });
}

function hex(bytes: Uint8Array): string {
  return bytes.length === 0 ? 'an empty file' : Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' ');
}

function badHeader(file: string, what: string): TensorioError {
  return new TensorioError('ERR_BAD_HEADER', `malformed .npy header: ${what}`, { path: file });
}

function decodeHeaderText(bytes: Uint8Array, utf8: boolean, file: string): string {
  if (utf8) {
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      throw badHeader(file, 'a version 3.0 header is not valid UTF-8');
    }
  }
  // Latin-1 maps each byte to the code point of the same value. Decoded by hand: creating a
  // TextDecoder costs more than parsing a whole NumPy header.
  let text = '';
  for (let i = 0; i < bytes.length; i += 4096) text += String.fromCharCode(...bytes.subarray(i, i + 4096));
  return text;
}

// The exact form np.save writes; matched first so the common case skips the general parser.
const CANONICAL_HEADER = /^\{'descr': '([<>|=]?[a-zA-Z]\d*)', 'fortran_order': (True|False), 'shape': \(((?:(?:0|[1-9]\d*), )*(?:0|[1-9]\d*)?,?)\), \} *\n?$/;

function parseCanonicalHeader(text: string): PyDict | undefined {
  const match = CANONICAL_HEADER.exec(text);
  if (!match) return undefined;
  const dims = (match[3] as string).split(',').map((d) => d.trim()).filter((d) => d !== '');
  const shape = dims.map(Number);
  if (!shape.every((d) => Number.isSafeInteger(d))) return undefined;
  return new PyDict(
    new Map<string, PyValue>([
      ['descr', match[1] as string],
      ['fortran_order', match[2] === 'True'],
      ['shape', new PyTuple(shape)],
    ]),
  );
}

/** A `.npy` header before its descr is resolved to a dtype (object arrays stop here). */
export interface NpyRawHeader {
  version: [number, number];
  descr: PyValue;
  fortranOrder: boolean;
  shape: number[];
  dataOffset: number;
}

/**
 * Parses a complete `.npy` header (preamble included) without resolving its descr, so a
 * caller can handle descrs {@link parseNpyHeader} refuses (object arrays, for the pickle
 * reader). `bytes` must hold at least `dataOffset` bytes.
 */
export function parseNpyRawHeader(bytes: Uint8Array, file = '<buffer>', options: NpyReadOptions = {}, fileSize = bytes.length): NpyRawHeader {
  const maxHeaderSize = options.maxHeaderSize ?? DEFAULT_MAX_HEADER_SIZE;
  const preamble = parsePreamble(bytes, fileSize, file, maxHeaderSize);
  if (bytes.length < preamble.dataOffset) throw truncatedHeader(file, fileSize, preamble.dataOffset);
  const text = decodeHeaderText(bytes.subarray(preamble.headerStart, preamble.dataOffset), preamble.version[0] === 3, file);
  if (preamble.version[0] === 3 && preamble.dataOffset - preamble.headerStart > maxHeaderSize) {
    let characters = 0; // code points, as Python's len counts them
    for (let i = 0; i < text.length; i++) if ((text.charCodeAt(i) & 0xfc00) !== 0xdc00) characters++;
    if (characters > maxHeaderSize) throw headerTooLarge(file, characters, maxHeaderSize, 'characters');
  }
  let parsed: PyValue;
  try {
    // NumPy strips Python 2's `L` suffixes (`(3L,)`) from 1.0 and 2.0 headers only (_filter_header).
    parsed = parseCanonicalHeader(text) ?? parsePyLiteral(text, { longSuffix: preamble.version[0] < 3 });
  } catch (error) {
    if (error instanceof PyLiteralError) throw badHeader(file, error.message);
    throw error;
  }
  if (!(parsed instanceof PyDict)) throw badHeader(file, `expected a dict, found ${shorten(describe(parsed))}`);
  if (parsed.otherKeys.length > 0) {
    throw badHeader(file, `keys must be the strings 'descr', 'fortran_order' and 'shape', found the key ${shorten(describe(parsed.otherKeys[0] as PyValue))}`);
  }
  const keys = [...parsed.entries.keys()].sort();
  if (keys.join(',') !== 'descr,fortran_order,shape') {
    throw badHeader(file, `expected exactly the keys 'descr', 'fortran_order' and 'shape', found ${keys.map((k) => `'${k}'`).join(', ') || 'none'}`);
  }
  const descr = parsed.entries.get('descr') as PyValue;
  const fortran = parsed.entries.get('fortran_order') as PyValue;
  const shapeValue = parsed.entries.get('shape') as PyValue;
  if (!(typeof descr === 'string' || Array.isArray(descr) || descr instanceof PyTuple)) {
    throw badHeader(file, `'descr' is not a valid dtype descriptor: ${shorten(describe(descr))}`);
  }
  if (typeof fortran !== 'boolean') throw badHeader(file, `'fortran_order' must be True or False, found ${shorten(describe(fortran))}`);
  if (!(shapeValue instanceof PyTuple) || !shapeValue.items.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
    throw badHeader(file, `'shape' must be a tuple of non-negative integers, found ${shorten(describe(shapeValue))}`);
  }
  return { version: preamble.version, descr, fortranOrder: fortran, shape: shapeValue.items as number[], dataOffset: preamble.dataOffset };
}

/** True for the descr of an object (pickled) array: '|O', '|O8', 'O'. */
export function isObjectDescr(descr: PyValue): boolean {
  return typeof descr === 'string' && /^[|<>=]?O\d*$/.test(descr);
}

/**
 * Parses a complete `.npy` header (preamble included). `bytes` must hold at least
 * `dataOffset` bytes; the data itself is not looked at.
 */
export function parseNpyHeader(bytes: Uint8Array, file = '<buffer>', options: NpyReadOptions = {}, fileSize = bytes.length): NpyHeader {
  const { version, descr, fortranOrder: fortran, shape, dataOffset } = parseNpyRawHeader(bytes, file, options, fileSize);
  const preamble = { version, dataOffset };
  const { info, bigEndian } = voidDtype(descr, options.voidAs, file) ?? dtypeFromDescr(descr, file);
  const size = shapeSize(shape, file);
  const dataLength = size * info.itemSize;
  if (!Number.isSafeInteger(dataLength)) throw new TensorioError('ERR_TOO_LARGE', `shape (${shape.join(', ')}) is too large`, { path: file });
  return {
    version: preamble.version,
    descr: descr as string,
    dtype: info.name,
    bigEndian,
    fortranOrder: fortran,
    shape,
    dataOffset: preamble.dataOffset,
    dataLength,
  };
}

/** How many bytes of a file to read first: enough for any header within the limit. */
// What an async open reads along with the header: small arrays arrive whole in one trip.
const SMALL_FILE = 64 * 1024;

function firstReadLength(fileSize: number, maxHeaderSize: number): number {
  return Math.min(fileSize, 12 + Math.min(maxHeaderSize, 4096 - 12));
}

/** Bytes needed to parse the header, from the preamble in `prefix`. */
function headerBytesNeeded(prefix: Uint8Array, fileSize: number, file: string, options: NpyReadOptions): number {
  return parsePreamble(prefix, fileSize, file, options.maxHeaderSize ?? DEFAULT_MAX_HEADER_SIZE).dataOffset;
}

/**
 * The header limit of a read that may pass `allowPickle`. NumPy's `read_array` ignores
 * `max_header_size` when `allow_pickle` is given ("allow_pickle indicates that the input is
 * fully trusted"), so `load` and `readNpz` with `allowPickle: true` lift the limit too; the
 * header is then bounded by the file's (or member's) real size, checked before any allocation.
 */
export function headerLimitOf(options: { allowPickle?: boolean; maxHeaderSize?: number }): number {
  return options.allowPickle ? Number.POSITIVE_INFINITY : (options.maxHeaderSize ?? DEFAULT_MAX_HEADER_SIZE);
}

/** How much of a file to read first to find its header: all of it when the limit allows, else 4 KiB. */
export function headerProbeLength(maxHeaderSize: number): number {
  return 12 + Math.min(maxHeaderSize, 4096 - 12);
}

/**
 * Where the data of a `.npy` starts (magic, version, length and header bytes), from its first
 * 12 bytes or more: the header's own claim, checked against the limit and against `size`, the
 * bytes that really exist, so a caller can allocate it.
 * @throws TensorioError `ERR_BAD_MAGIC`, `ERR_UNSUPPORTED_VERSION`, `ERR_HEADER_TOO_LARGE`, `ERR_TRUNCATED`.
 */
export function npyHeaderEnd(prefix: Uint8Array, size: number, file: string, options: NpyReadOptions = {}): number {
  const needed = headerBytesNeeded(prefix, size, file, options);
  if (needed > size) throw truncatedHeader(file, size, needed);
  return needed;
}

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
function readHeaderSync(fd: number, size: number, file: string, options: NpyReadOptions): NpyHeader {
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

function checkDataFits(header: NpyHeader, fileSize: number, file: string): void {
  const needed = header.dataOffset + header.dataLength;
  if (fileSize < needed) {
    throw new TensorioError(
      'ERR_TRUNCATED',
      `file ends inside the data: ${header.dtype} (${header.shape.join(', ')}) needs ${header.dataLength} bytes at offset ${header.dataOffset}, the file has ${Math.max(0, fileSize - header.dataOffset)}`,
      { path: file },
    );
  }
}

/** Rejects bool data holding bytes other than 0 and 1 (NumPy reads them silently as True). */
function checkBool(data: Uint8Array, file: string): void {
  for (let i = 0; i < data.length; i++) {
    if ((data[i] as number) > 1) {
      throw new TensorioError('ERR_BAD_VALUE', `bool array holds the byte ${data[i]} at element ${i}; expected 0 or 1`, { path: file });
    }
  }
}

/**
 * Builds the NdArray over `buffer` (at `byteOffset`), converting big-endian data to native
 * order in place. The buffer must be ours to modify unless the data is already native.
 */
export function arrayFromBuffer(header: NpyHeader, buffer: ArrayBuffer, byteOffset: number, file: string, read: { mapped: boolean; copyReason?: string }): LoadedArray {
  const info = dtypeInfo(header.dtype);
  const data = new info.array(buffer, byteOffset, (header.dataLength / info.itemSize) * info.lanes);
  if (header.bigEndian) byteswap(data, info.swapSize);
  if (header.dtype === 'bool') checkBool(data as Uint8Array, file);
  const array: LoadedArray = { dtype: header.dtype, shape: header.shape, data, ...read };
  // Files may say fortran_order for shapes whose two layouts coincide ((6, 1), (11,)); like
  // NumPy's flags, only a layout that differs from C order is reported as 'F'.
  if (header.fortranOrder && fortranDiffersFromC(header.shape)) array.order = 'F';
  return array;
}

/**
 * Parses a whole `.npy` file held in memory (an `.npz` member, a fetched response).
 * The returned data is a view into `bytes` when the data is aligned and native-endian,
 * else a copy.
 */
export function decodeNpy(bytes: Uint8Array, file = '<buffer>', options: NpyReadOptions = {}): LoadedArray {
  const header = parseNpyHeader(bytes, file, options);
  checkDataFits(header, bytes.length, file);
  const alignment = dtypeInfo(header.dtype).array.BYTES_PER_ELEMENT;
  const start = bytes.byteOffset + header.dataOffset;
  if (!header.bigEndian && start % alignment === 0 && bytes.buffer instanceof ArrayBuffer) {
    return arrayFromBuffer(header, bytes.buffer, start, file, { mapped: false });
  }
  const copy = bytes.slice(header.dataOffset, header.dataOffset + header.dataLength);
  return arrayFromBuffer(header, copy.buffer, 0, file, { mapped: false });
}

interface ReadPlan {
  header: NpyHeader;
  /** Set when the data is to be mapped. */
  map: boolean;
  copyReason?: string;
}

function planRead(header: NpyHeader, options: NpyReadOptions): ReadPlan {
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
function mapped(header: NpyHeader, fd: number, file: string, writable: boolean): LoadedArray | string {
  const result = mapFile(fd, header.dataOffset + header.dataLength, writable, file);
  if (!result.buffer) return result.reason;
  return arrayFromBuffer(header, result.buffer, header.dataOffset, file, { mapped: true });
}

function readInfo(copyReason: string | undefined): { mapped: false; copyReason?: string } {
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

/**
 * The header of a string array (its dtype field a placeholder: only descr, shape, layout and
 * the data's place and length are meaningful), or undefined for another descr.
 */
export function stringHeader(raw: NpyRawHeader, file: string): NpyHeader | undefined {
  const spec = stringDescr(raw.descr);
  if (!spec) return undefined;
  const dataLength = shapeSize(raw.shape, file) * spec.itemSize;
  if (!Number.isSafeInteger(dataLength)) throw new TensorioError('ERR_TOO_LARGE', `shape (${raw.shape.join(', ')}) is too large`, { path: file });
  return { version: raw.version, descr: raw.descr as string, dtype: 'uint8', bigEndian: false, fortranOrder: raw.fortranOrder, shape: raw.shape, dataOffset: raw.dataOffset, dataLength };
}

// ---------------------------------------------------------------------------------------
// Writing

function pyRepr(value: string | boolean | number[]): string {
  if (typeof value === 'string') return `'${value}'`;
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  return value.length === 1 ? `(${value[0]},)` : `(${value.join(', ')})`;
}

/** The descr NumPy writes for a dtype ('<f4', '|b1'). */
export function descrFor(dtype: DType): string {
  const info = dtypeInfo(dtype);
  if (info.numpy === null) {
    throw new TensorioError(
      'ERR_UNSUPPORTED_DTYPE',
      `NumPy has no ${dtype} dtype, so .npy cannot hold it; convert it first (toFloat32) or write safetensors`,
    );
  }
  return `${info.itemSize === 1 ? '|' : '<'}${info.numpy}`;
}

/**
 * Whether NumPy would record an array of this shape as fortran_order: only when its
 * Fortran layout differs from the C one (at least two axes longer than 1, not empty).
 */
function storesFortran(array: NdArray): boolean {
  return array.order === 'F' && fortranDiffersFromC(array.shape);
}

function fortranDiffersFromC(shape: readonly number[]): boolean {
  return shape.filter((d) => d > 1).length >= 2 && !shape.includes(0);
}

/**
 * The header NumPy's `np.save` writes for an array, byte for byte: sorted keys, the
 * growth-axis spare spaces, padding to 64 bytes, and the smallest version that fits.
 */
export function encodeNpyHeader(dtype: DType, shape: readonly number[], fortranOrder: boolean): Uint8Array {
  return encodeNpyHeaderDescr(descrFor(dtype), shape, fortranOrder);
}

/** {@link encodeNpyHeader} for any descr string ('|O' for a pickled object array). */
export function encodeNpyHeaderDescr(descr: string, shape: readonly number[], fortranOrder: boolean): Uint8Array {
  let dict = `{'descr': ${pyRepr(descr)}, 'fortran_order': ${pyRepr(fortranOrder)}, 'shape': ${pyRepr([...shape])}, }`;
  if (shape.length > 0) {
    const growthAxis = shape[fortranOrder ? shape.length - 1 : 0] as number;
    dict += ' '.repeat(Math.max(0, GROWTH_AXIS_MAX_DIGITS - String(growthAxis).length));
  }
  const textLength = dict.length + 1; // the closing newline
  let version = 1;
  let lengthBytes = 2;
  let padding = ALIGN - ((8 + lengthBytes + textLength) % ALIGN);
  if (textLength + padding >= 65536) {
    version = 2;
    lengthBytes = 4;
    padding = ALIGN - ((8 + lengthBytes + textLength) % ALIGN);
  }
  const headerLength = textLength + padding;
  const out = new Uint8Array(8 + lengthBytes + headerLength);
  out.set(MAGIC, 0);
  out[6] = version;
  out[7] = 0;
  const view = new DataView(out.buffer);
  if (version === 1) view.setUint16(8, headerLength, true);
  else view.setUint32(8, headerLength, true);
  const text = dict + ' '.repeat(padding) + '\n';
  for (let i = 0; i < text.length; i++) out[8 + lengthBytes + i] = text.charCodeAt(i);
  return out;
}

/**
 * The chunks of a `.npy` file for an array: its header, then the array's own bytes (no
 * copy). Fortran-order arrays are written as stored, with fortran_order True.
 */
export function encodeNpy(array: NdArray | StringArray, file?: string): Uint8Array[] {
  if (isStringArray(array)) return [encodeNpyHeaderDescr(stringDescrOf(array), array.shape, storesStringsFortran(array)), encodeStrings(array, file)];
  validateNdArray(array, file);
  return [encodeNpyHeader(array.dtype, array.shape, storesFortran(array)), bytesOf(array.data)];
}

/**
 * Writes an array as a `.npy` file, as `np.save` writes it. Atomic: a temporary file in the
 * same folder, fsync, rename, so the old file survives any failure.
 * @param options `fsync` (default true); see {@link WriteOptions}.
 * @throws TensorioError `ERR_UNSUPPORTED_DTYPE` (bfloat16, float8: NumPy has no such dtype),
 * `ERR_INVALID_ARGUMENT`/`ERR_SHAPE_MISMATCH` for an inconsistent array, `ERR_NO_SPACE`,
 * `ERR_PERMISSION`, `ERR_NOT_FOUND` (missing folder), `ERR_IO`.
 */
export async function writeNpy(path: string, array: NdArray | StringArray, options: WriteOptions = {}): Promise<void> {
  checkOptions(options, OPTIONS.writeNpy, 'writeNpy', path);
  await writeAtomic(path, encodeNpy(array, path), options);
}

/** Synchronous {@link writeNpy}. */
export function writeNpySync(path: string, array: NdArray | StringArray, options: WriteOptions = {}): void {
  checkOptions(options, OPTIONS.writeNpy, 'writeNpySync', path);
  writeAtomicSync(path, encodeNpy(array, path), options);
}

// ---------------------------------------------------------------------------------------
// Writable mappings (numpy.lib.format.open_memmap)

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
    (native as NonNullable<typeof native>).sync(this.buffer);
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
  checkOptions(options, OPTIONS.openNpy, 'openNpy', path);
  const fsync = options.fsync ?? true;
  if (options.mode === 'w+') return createNpy(path, options, fsync);
  if (options.mode !== 'r+') {
    throw new TensorioError('ERR_INVALID_ARGUMENT', `openNpy mode must be 'r+' or 'w+', got '${String(options.mode)}'`, { path });
  }
  const { fd, size } = openForRead(path, true);
  try {
    const plan = planRead(readHeaderSync(fd, size, path, options), { mmap: true });
    const mappedArray = plan.map ? mapped(plan.header, fd, path, true) : undefined;
    if (mappedArray && typeof mappedArray !== 'string') {
      return new NpyMemmapImpl({ path, array: mappedArray, mapping: mappedArray.data.buffer as ArrayBuffer, fsync });
    }
    const { header } = plan;
    const buffer = new ArrayBuffer(header.dataLength);
    readExactlySync(fd, header.dataOffset, new Uint8Array(buffer), path, '.npy data');
    const array = arrayFromBuffer(header, buffer, 0, path, { mapped: false });
    return new NpyMemmapImpl({ path, array, fsync, ...readInfo(mappedArray ?? plan.copyReason) });
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
  if (!native) {
    array.data = new info.array(elements);
    return new NpyMemmapImpl({ path, array, copyReason: 'the native addon is not loaded', fsync });
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
