/**
 * String datasets (HDF5 fixed-length and variable-length strings), read as
 * {@link H5StringArray}s: each element's bytes as h5py returns them, and the same decoded as
 * UTF-8. The bytes are read by tensorio whichever reader walks the structure: contiguous and
 * compact data straight from the file, chunked data by chunks.ts, variable-length strings
 * from the global heap (own-reader.ts).
 *
 * Padding as h5py 3.7 and 3.16 read it (checked): h5py reads fixed-length strings as NumPy
 * `|S<n>`, through HDF5's conversion to a null-padded type, so a null-terminated string ends
 * at its first NUL, a space-padded one loses its trailing spaces, and NumPy then drops
 * trailing NULs. Variable-length strings are their heap bytes (h5py 3 returns them as bytes).
 */
import { dtypeInfo, type DTypeInfo } from '../../dtype.js';
import { TensorioError } from '../../errors.js';
import { shapeSize } from '../../ndarray.js';
import { readChunkedDataset } from './chunks.js';
import type { ByteSource } from '../../io/source.js';
import { checkInside, readStructure, readUint, storageOf, MSG_DATATYPE, type HeaderMessage, type Superblock } from './format.js';
import { vlenElement } from './own-reader.js';

/**
 * A string dataset as tensorio reads it: `items` and `bytes` list the elements in C
 * (row-major) order, `shape` says how they nest (`[]` for a scalar dataset).
 */
export interface H5StringArray {
  readonly kind: 'string-array';
  readonly shape: readonly number[];
  /** Each element decoded as UTF-8 (ASCII is a subset); bytes that are not UTF-8 read as U+FFFD, exact in `bytes`. */
  readonly items: readonly string[];
  /** Each element's bytes exactly as h5py returns them (padding removed as h5py and NumPy remove it). */
  readonly bytes: readonly Uint8Array[];
  /** The character set the file declares: h5py writes `ascii` for bytes (`|S<n>`), `utf-8` for str. */
  readonly encoding: 'ascii' | 'utf-8';
  /** Bytes per element of a fixed-length string type (NumPy's `|S<width>`), null for variable length. */
  readonly width: number | null;
}

/** A string datatype: fixed width or variable length, its padding and character set. */
interface StringType {
  /** Bytes per stored element: the width, or a heap ID's size for variable length. */
  elementSize: number;
  vlen: boolean;
  /** 0 null-terminated, 1 null-padded, 2 space-padded. */
  pad: number;
  encoding: 'ascii' | 'utf-8';
}

/** Unallocated datasets hold no bytes to bound their size by: at most this many (empty) strings. */
const MAX_UNALLOCATED_STRINGS = 1 << 24;

/** The string type of a datatype message (spec IV.A.2.d: class 3, or class 9 of type string), or null. */
function stringType(body: Uint8Array, sb: Superblock, file: string): StringType | null {
  const cls = (body[0] as number) & 0x0f;
  const bits = body[1] as number;
  if (cls === 3) return { elementSize: readUint(body, 4, 4, file), vlen: false, pad: bits & 0x0f, encoding: (bits >> 4) & 0x0f ? 'utf-8' : 'ascii' };
  if (cls === 9 && (bits & 0x0f) === 1) {
    return { elementSize: 4 + sb.offsetSize + 4, vlen: true, pad: (bits >> 4) & 0x0f, encoding: (body[2] as number) & 0x0f ? 'utf-8' : 'ascii' };
  }
  return null;
}

/** A fixed-length element's bytes as h5py returns them (see the padding rules above). */
function fixedElement(raw: Uint8Array, pad: number): Uint8Array {
  let end = raw.length;
  if (pad === 0) {
    const nul = raw.indexOf(0);
    if (nul >= 0) end = nul;
  } else if (pad === 2) {
    while (end > 0 && raw[end - 1] === 0x20) end--;
  }
  while (end > 0 && raw[end - 1] === 0) end--;
  return raw.slice(0, end);
}

/**
 * Reads the string dataset `dataset` of shape `shape` whose object header holds `messages`.
 * `inMemory` says the file is in memory (chunks.ts then refuses what only h5wasm decodes).
 * @throws TensorioError `ERR_UNSUPPORTED_DTYPE` when the dataset does not hold strings,
 * `ERR_BAD_OFFSETS` when its data lies outside the file, `ERR_UNSUPPORTED_FILTER` or
 * `ERR_NEEDS_H5WASM` for chunked data compressed with a filter only HDF5 applies.
 */
export function readStringDataset(source: ByteSource, sb: Superblock, messages: HeaderMessage[], dataset: string, shape: number[], inMemory: boolean): H5StringArray {
  const file = source.path;
  const typeMessage = messages.find((m) => m.type === MSG_DATATYPE);
  const type = typeMessage ? stringType(readStructure(source, typeMessage.offset, typeMessage.size, 'datatype message'), sb, file) : null;
  if (!type) throw new TensorioError('ERR_UNSUPPORTED_DTYPE', `dataset '${dataset}' does not hold strings`, { path: file });
  if (type.elementSize === 0) throw new TensorioError('ERR_BAD_HEADER', `dataset '${dataset}' has strings of 0 bytes`, { path: file });
  const count = shapeSize(shape, file);
  const { storage } = storageOf(source, sb, messages);
  let raw: Uint8Array;
  if (storage.layout === 'contiguous' || storage.layout === 'compact') {
    if (storage.length !== count * type.elementSize || storage.offset + storage.length > source.size) {
      throw new TensorioError(
        'ERR_BAD_OFFSETS',
        `dataset '${dataset}': its ${storage.layout} data (${storage.length} bytes at offset ${storage.offset}) does not hold ${count} strings of ${type.elementSize} bytes within the file of ${source.size} bytes`,
        { path: file },
      );
    }
    // Its own memory, as the element views below go to the caller: not a view of bytes in memory.
    checkInside(source, storage.offset, storage.length, `dataset '${dataset}'`);
    raw = source.readCopy(storage.offset, storage.length, `dataset '${dataset}'`);
  } else if (storage.layout === 'unallocated') {
    // Never written: every element is the fill value, zeros (an empty string) as h5py writes it.
    if (count > MAX_UNALLOCATED_STRINGS) throw new TensorioError('ERR_TOO_LARGE', `dataset '${dataset}' declares ${count} unwritten strings`, { path: file });
    raw = new Uint8Array(count * type.elementSize);
  } else if (storage.layout === 'chunked' || storage.layout === 'filtered') {
    // The chunk reader moves elements of any size: a byte array whose elements are `elementSize` bytes.
    const elements: DTypeInfo = { ...dtypeInfo('uint8'), itemSize: type.elementSize };
    const data = readChunkedDataset(source, sb, messages, dataset, shape, elements, count * type.elementSize, inMemory);
    if (data === 'needs-h5wasm') {
      throw new TensorioError('ERR_UNSUPPORTED_FILTER', `dataset '${dataset}' is compressed with a filter tensorio does not apply to strings (only HDF5 does)`, { path: file });
    }
    raw = data as Uint8Array;
  } else {
    throw new TensorioError('ERR_UNSUPPORTED_DTYPE', `dataset '${dataset}' is stored as ${storage.layout}, which tensorio does not read for strings`, { path: file });
  }
  const cache = new Map<number, Uint8Array>();
  const decoder = new TextDecoder('utf-8');
  const bytes: Uint8Array[] = [];
  const items: string[] = [];
  for (let i = 0; i < count; i++) {
    const at = i * type.elementSize;
    const element = type.vlen ? vlenElement(source, sb, raw, at, cache).slice() : fixedElement(raw.subarray(at, at + type.elementSize), type.pad);
    bytes.push(element);
    items.push(decoder.decode(element));
  }
  return { kind: 'string-array', shape: [...shape], items, bytes, encoding: type.encoding, width: type.vlen ? null : type.elementSize };
}
