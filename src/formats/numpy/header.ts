/**
 * The `.npy` header, NumPy's format versions 1.0 to 3.0 (numpy/lib/format.py), over bytes and
 * with no I/O: the preamble, the limits on its length, the dict literal parsed and resolved to
 * a dtype, and the header `np.save` writes, byte for byte.
 *
 * Layout: the magic `\x93NUMPY`, a major and minor version byte, the header length (2 bytes
 * little-endian in 1.0, 4 bytes in 2.0 and 3.0), then a Python dict literal
 * `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }` padded with spaces and a
 * newline so the data that follows starts on a 64-byte boundary (16 before NumPy 1.14).
 * Version 3.0 only changes the header's encoding from latin-1 to UTF-8.
 */
import { isUtf8 } from 'node:buffer';
import * as os from 'node:os';

import { dtypeFromNumpyChar, dtypeFromNumpyCode, dtypeInfo, type DType, type DTypeInfo } from '../../dtype.js';
import { TensorioError } from '../../errors.js';
import { shapeSize, type NdArray } from '../../ndarray.js';
import { parsePyLiteral, PyBytes, PyDict, PyFloat, PyLiteralError, PyTuple, type PyValue } from '../pyliteral.js';
import { stringDescr } from './strings.js';

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

export function truncatedHeader(file: string, fileSize: number, needed: number): TensorioError {
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
    if (!isUtf8(bytes)) throw badHeader(file, 'a version 3.0 header is not valid UTF-8');
    return new TextDecoder().decode(bytes);
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
  return resolveNpyHeader(parseNpyRawHeader(bytes, file, options, fileSize), file, options);
}

/**
 * A raw header resolved to its dtype (with `voidAs` for a raw void descr) and data length.
 * @throws TensorioError `ERR_UNSUPPORTED_DTYPE`, `ERR_TOO_LARGE`.
 */
export function resolveNpyHeader(raw: NpyRawHeader, file: string, options: NpyReadOptions): NpyHeader {
  const { version, descr, fortranOrder: fortran, shape, dataOffset } = raw;
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
export function firstReadLength(fileSize: number, maxHeaderSize: number): number {
  return Math.min(fileSize, 12 + Math.min(maxHeaderSize, 4096 - 12));
}

/** Bytes needed to parse the header, from the preamble in `prefix`. */
export function headerBytesNeeded(prefix: Uint8Array, fileSize: number, file: string, options: NpyReadOptions): number {
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

/** Throws ERR_TRUNCATED when the file (or member) of `fileSize` bytes ends inside the data. */
export function checkDataFits(header: NpyHeader, fileSize: number, file: string): void {
  const needed = header.dataOffset + header.dataLength;
  if (fileSize < needed) {
    throw new TensorioError(
      'ERR_TRUNCATED',
      `file ends inside the data: ${header.dtype} (${header.shape.join(', ')}) needs ${header.dataLength} bytes at offset ${header.dataOffset}, the file has ${Math.max(0, fileSize - header.dataOffset)}`,
      { path: file },
    );
  }
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
export function storesFortran(array: NdArray): boolean {
  return array.order === 'F' && fortranDiffersFromC(array.shape);
}

export function fortranDiffersFromC(shape: readonly number[]): boolean {
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
