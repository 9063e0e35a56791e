/**
 * The safetensors header, sans I/O: the length field and the JSON, validated over bytes as
 * huggingface/safetensors (safetensors/src/tensor.rs, `read_metadata` and `validate`) checks
 * them. Nothing here touches a file: the header walker yields the reads it needs, and
 * file.ts (or decodeSafetensors, over bytes in memory) answers them.
 *
 * Layout: an unsigned 64-bit little-endian header length N, N bytes of UTF-8 JSON
 * (`{"__metadata__": {str: str}, "name": {"dtype": "F32", "shape": [2, 3],
 * "data_offsets": [begin, end]}, ...}`, padded with spaces to a multiple of 8 by the
 * reference writer), then the tensors' little-endian C-order bytes back to back. Offsets
 * are relative to the end of the header; together they must cover the rest of the file
 * exactly, without gaps or overlaps.
 */
import { dtypeFromSafetensors, type DTypeInfo, type DType } from '../../dtype.js';
import { TensorioError } from '../../errors.js';
import type { Reads } from '../../io/source.js';
import { shapeSize } from '../../ndarray.js';

/** The reference implementation's bound on the header length (100 MB). */
export const SAFETENSORS_MAX_HEADER_SIZE = 100_000_000;

// The reference's `Dtype` enum in its declared order (increasing alignment). Its writer
// sorts tensors by this order, largest first, then by name; we use the same ranks so our
// files are byte-identical to its own. Names tensorio cannot hold (F4, F6_*, F8_E8M0) are
// listed so that reading them reports "unsupported" rather than "unknown".
export const REFERENCE_DTYPE_ORDER = [
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


export function ownSet<T>(target: Record<string, T>, key: string, value: T): void {
  // Keys come from files: '__proto__' must become an own property, not a prototype.
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
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
export class ParsedHeader {
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

export function parseHeader(json: Uint8Array, fileSize: number, file: string): ParsedHeader {
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

/**
 * The header walker: yields a read of the length field, then one of exactly the JSON it
 * announces, and returns the validated header.
 */
export function* headerReads(size: number, path: string): Reads<ParsedHeader> {
  const lengthField = yield [0, Math.min(size, 8), 'safetensors header'];
  const n = safetensorsHeaderLength(lengthField, size, path);
  return parseHeader(yield [8, n, 'safetensors header'], size, path);
}
