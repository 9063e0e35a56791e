/**
 * The HDF5 filter pipeline of chunked datasets, as tensorio's own reader applies it: the
 * filter pipeline message (spec IV.A.2.l), and the filters h5py users meet: deflate (id 1,
 * node:zlib), shuffle (2), fletcher32 (3, verified) and LZF (32000, the filter h5py bundles;
 * liblzf's format, decoded here). Every output size is the chunk's size, known before any
 * filter runs, so no filter allocates from what the file claims.
 */
import * as zlib from 'node:zlib';

import { TensorioError } from '../../errors.js';

export const FILTER_DEFLATE = 1;
export const FILTER_SHUFFLE = 2;
export const FILTER_FLETCHER32 = 3;
export const FILTER_LZF = 32000;

const KNOWN: Record<number, string> = { 1: 'deflate', 2: 'shuffle', 3: 'fletcher32', 4: 'szip', 5: 'nbit', 6: 'scaleoffset', 32000: 'lzf', 32001: 'blosc', 32004: 'lz4', 32008: 'bitshuffle', 32015: 'zstd' };

export interface Filter {
  id: number;
  name: string;
  /** Bit 0: optional (HDF5 may have skipped it for a chunk, and says so in the chunk's mask). */
  flags: number;
  values: number[];
}

function u16(b: Uint8Array, at: number): number {
  if (at + 2 > b.length) throw new RangeError('past the message');
  return (b[at] as number) | ((b[at + 1] as number) << 8);
}

function u32(b: Uint8Array, at: number): number {
  if (at + 4 > b.length) throw new RangeError('past the message');
  return ((b[at] as number) | ((b[at + 1] as number) << 8) | ((b[at + 2] as number) << 16)) + (b[at + 3] as number) * 0x1000000;
}

/** Parses a filter pipeline message (versions 1 and 2). */
export function parseFilterPipeline(body: Uint8Array, file: string, dataset: string): Filter[] {
  try {
    const version = body[0] as number;
    const count = body[1] as number;
    if (version !== 1 && version !== 2) throw new TensorioError('ERR_UNSUPPORTED_VERSION', `dataset '${dataset}': filter pipeline message version ${version}; expected 1 or 2`, { path: file });
    if (count > 32) throw new TensorioError('ERR_BAD_HEADER', `dataset '${dataset}': ${count} filters; HDF5 allows 32`, { path: file });
    let at = version === 1 ? 8 : 2;
    const out: Filter[] = [];
    for (let i = 0; i < count; i++) {
      const id = u16(body, at);
      at += 2;
      let nameLength = 0;
      if (version === 1 || id >= 256) {
        nameLength = u16(body, at);
        at += 2;
      }
      const flags = u16(body, at);
      const nValues = u16(body, at + 2);
      at += 4;
      let name = '';
      if (nameLength > 0) {
        const raw = body.subarray(at, at + nameLength);
        const nul = raw.indexOf(0);
        name = Buffer.from(nul >= 0 ? raw.subarray(0, nul) : raw).toString('latin1');
        at += version === 1 ? Math.ceil(nameLength / 8) * 8 : nameLength;
      }
      const values: number[] = [];
      for (let v = 0; v < nValues; v++) values.push(u32(body, at + 4 * v));
      at += 4 * nValues;
      if (version === 1 && nValues % 2 === 1) at += 4;
      if (at > body.length) throw new RangeError('past the message');
      out.push({ id, name: KNOWN[id] ?? (name || `#${id}`), flags, values });
    }
    return out;
  } catch (error) {
    if (error instanceof RangeError) throw new TensorioError('ERR_BAD_HEADER', `dataset '${dataset}': its filter pipeline message runs past its end`, { path: file });
    throw error;
  }
}

/** The first filter of `filters` tensorio cannot apply, or undefined. */
export function unsupportedFilter(filters: Filter[]): Filter | undefined {
  return filters.find((f) => ![FILTER_DEFLATE, FILTER_SHUFFLE, FILTER_FLETCHER32, FILTER_LZF].includes(f.id));
}

/**
 * liblzf's decompressor (lzf_d.c's format): a control byte below 32 starts a run of that
 * many plus one literal bytes; otherwise its top 3 bits are a length (7: plus the next byte)
 * and, with the next byte, a back reference of length + 2 bytes, which may overlap itself.
 * The output must come out exactly `size` bytes long.
 */
export function lzfDecompress(input: Uint8Array, size: number): Uint8Array | null {
  const out = new Uint8Array(size);
  let ip = 0;
  let op = 0;
  while (ip < input.length) {
    const ctrl = input[ip++] as number;
    if (ctrl < 32) {
      const run = ctrl + 1;
      if (op + run > size || ip + run > input.length) return null;
      out.set(input.subarray(ip, ip + run), op);
      ip += run;
      op += run;
      continue;
    }
    let length = ctrl >> 5;
    if (length === 7) {
      if (ip >= input.length) return null;
      length += input[ip++] as number;
    }
    if (ip >= input.length) return null;
    const ref = op - ((ctrl & 0x1f) << 8) - (input[ip++] as number) - 1;
    length += 2;
    if (ref < 0 || op + length > size) return null;
    for (let i = 0; i < length; i++) out[op + i] = out[ref + i] as number;
    op += length;
  }
  return op === size ? out : null;
}

/** HDF5's Fletcher-32 (H5_checksum_fletcher32): 16-bit big-endian words, sums mod 65535. */
export function fletcher32(data: Uint8Array): number {
  let sum1 = 0;
  let sum2 = 0;
  let at = 0;
  let words = data.length >> 1;
  while (words > 0) {
    const block = Math.min(words, 360);
    words -= block;
    for (let i = 0; i < block; i++) {
      sum1 += (((data[at] as number) << 8) | (data[at + 1] as number)) >>> 0;
      sum2 += sum1;
      at += 2;
    }
    sum1 = (sum1 & 0xffff) + (sum1 >>> 16);
    sum2 = (sum2 & 0xffff) + (sum2 >>> 16);
  }
  if (data.length & 1) {
    sum1 += (data[at] as number) << 8;
    sum2 += sum1;
    sum1 = (sum1 & 0xffff) + (sum1 >>> 16);
    sum2 = (sum2 & 0xffff) + (sum2 >>> 16);
  }
  sum1 = (sum1 & 0xffff) + (sum1 >>> 16);
  sum2 = (sum2 & 0xffff) + (sum2 >>> 16);
  return ((sum2 << 16) | sum1) >>> 0;
}

function unshuffle(data: Uint8Array, itemSize: number): Uint8Array {
  if (itemSize <= 1 || data.length < itemSize) return data;
  const n = Math.floor(data.length / itemSize);
  const out = new Uint8Array(data.length);
  for (let j = 0; j < itemSize; j++) {
    const from = j * n;
    for (let i = 0; i < n; i++) out[i * itemSize + j] = data[from + i] as number;
  }
  out.set(data.subarray(n * itemSize), n * itemSize);
  return out;
}

/**
 * Undoes a chunk's filters (in reverse order; a set bit `i` of `mask` says filter `i` was
 * skipped for this chunk). `size` is the chunk's unfiltered size.
 * @throws TensorioError `ERR_CRC_MISMATCH` for a Fletcher-32 mismatch, `ERR_BAD_HEADER` for a
 * chunk that does not decode to `size` bytes, `ERR_UNSUPPORTED_FILTER` for another filter.
 */
export function unfilterChunk(stored: Uint8Array, filters: Filter[], mask: number, size: number, where: { file: string; dataset: string; chunk: string }): Uint8Array {
  let data = stored;
  const fail = (what: string) => new TensorioError('ERR_BAD_HEADER', `dataset '${where.dataset}', chunk ${where.chunk}: ${what}`, { path: where.file });
  for (let i = filters.length - 1; i >= 0; i--) {
    if (mask & (1 << i)) continue;
    const filter = filters[i] as Filter;
    if (filter.id === FILTER_DEFLATE) {
      try {
        data = zlib.inflateSync(data, { maxOutputLength: Math.max(1, size) });
      } catch (error) {
        throw fail(`its deflate stream does not inflate to ${size} bytes (${(error as Error).message})`);
      }
    } else if (filter.id === FILTER_LZF) {
      const out = lzfDecompress(data, size);
      if (!out) throw fail(`its LZF stream does not decompress to ${size} bytes`);
      data = out;
    } else if (filter.id === FILTER_SHUFFLE) {
      data = unshuffle(data, filter.values[0] ?? 1);
    } else if (filter.id === FILTER_FLETCHER32) {
      if (data.length < 4) throw fail('shorter than its Fletcher-32 checksum');
      const body = data.subarray(0, data.length - 4);
      const stored32 = u32(data, data.length - 4);
      const sum = fletcher32(body);
      // HDF5 before 1.6.3 stored the sum byte-swapped; HDF5 accepts both, and so do we.
      const swapped = (((sum & 0xff) << 24) | ((sum & 0xff00) << 8) | ((sum >>> 8) & 0xff00) | (sum >>> 24)) >>> 0;
      if (stored32 !== sum && stored32 !== swapped) {
        throw new TensorioError('ERR_CRC_MISMATCH', `dataset '${where.dataset}', chunk ${where.chunk}: Fletcher-32 checksum ${stored32.toString(16)} stored, ${sum.toString(16)} computed`, { path: where.file });
      }
      data = body;
    } else {
      throw new TensorioError('ERR_UNSUPPORTED_FILTER', `dataset '${where.dataset}' uses HDF5 filter ${filter.name} (id ${filter.id}), which tensorio does not apply`, { path: where.file });
    }
  }
  if (data.length !== size) throw fail(`its filters give ${data.length} bytes; the chunk holds ${size}`);
  return data;
}
