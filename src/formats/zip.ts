/**
 * The ZIP container under `.npz`: a reader of the central directory (ZIP64 included), of
 * stored and deflated members with CRC checks and bounded inflation, and a streaming writer
 * whose stored members start on 64-byte boundaries so they can be mapped without a copy.
 *
 * Deflate itself is node:zlib. The container code is ours because no ZIP library writes
 * stored members with aligned data (padding in the local header's extra field), and reading
 * members as views of one mapping needs the raw offsets that libraries keep to themselves.
 */
import * as zlib from 'node:zlib';

import { TensorioError } from '../errors.js';
import type { AtomicWriter } from '../io/atomic-writer.js';
import { ByteSource, runAsync, runSync, type Reads } from '../io/source.js';
import { inflateChunks } from './numpy/inflate.js';

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_DESCRIPTOR = 0x08074b50;
const EOCD_SIZE = 22;
const LOCAL_SIZE = 30;
const CENTRAL_SIZE = 46;
const MAX_COMMENT = 0xffff;
const U16_MAX = 0xffff;
const U32_MAX = 0xffffffff;
// Deflate cannot expand data by more than about 1032:1; larger claims are forged.
const MAX_DEFLATE_RATIO = 1032;
/** Default largest uncompressed member accepted (16 GiB). */
export const DEFAULT_MAX_MEMBER_SIZE = 2 ** 34;
// Android's zipalign extra field: 2 bytes of alignment, then zero padding.
const ALIGN_EXTRA_ID = 0xd935;
// 1980-01-01 00:00, what Python's zipfile writes for members created with zipf.open(name, 'w').
const DOS_DATE = (0 << 9) | (1 << 5) | 1;
const DOS_TIME = 0;
const STEP = 1 << 30;

/** One member of an archive, from the central directory. */
export interface ZipEntry {
  readonly name: string;
  /** 0 stored, 8 deflated. */
  readonly method: number;
  readonly flags: number;
  readonly crc32: number;
  readonly compressedSize: number;
  readonly uncompressedSize: number;
  readonly localHeaderOffset: number;
}

/**
 * Where an archive's bytes come from: the one {@link ByteSource} (src/io/source.ts). Stored
 * members of a source in memory (a mapping) are views; `mapping` is the whole archive then.
 * The names below are the ones npz and the PyTorch reader used before the source was one;
 * they stay as aliases until those callers construct ByteSources themselves.
 */
export type ZipSource = ByteSource;
/** The same {@link ByteSource}: one source serves the synchronous readers too. */
export type ZipSourceSync = ByteSource;

/** A source over an open file descriptor ({@link ByteSource.ofFile}). */
export function fdSource(fd: number, size: number, path: string): ByteSource {
  return ByteSource.ofFile(fd, size, path);
}

/** A source over a mapping, or any in-memory copy, of the whole file ({@link ByteSource.ofBytes}). */
export function bytesSource(bytes: Uint8Array, path: string): ByteSource {
  return ByteSource.ofBytes(bytes, path);
}

/** {@link fdSource}, for synchronous readers. */
export const fdSourceSync = fdSource;
/** {@link bytesSource}, for synchronous readers (`readNpzSync`, `decodeNpz`). */
export const bytesSourceSync = bytesSource;

// The directory walkers are generators that yield the reads they need ([position, length,
// what]), so one walker serves the async readers and the sync ones (runAsync / runSync).

function badZip(path: string, what: string): TensorioError {
  return new TensorioError('ERR_BAD_ZIP', what, { path });
}

function dv(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function u64(view: DataView, at: number, path: string): number {
  const value = view.getBigUint64(at, true);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw badZip(path, `a ZIP64 size or offset of ${value} is beyond any real file`);
  return Number(value);
}

// CP437, the names' encoding when the UTF-8 flag (bit 11) is clear; bytes < 0x80 are ASCII.
const CP437_HIGH =
  'ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u00a0';

function decodeName(raw: Uint8Array, utf8: boolean, path: string): string {
  if (utf8) {
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(raw);
    } catch {
      throw badZip(path, 'a member name is flagged UTF-8 but is not valid UTF-8');
    }
  }
  let out = '';
  for (const b of raw) out += b < 0x80 ? String.fromCharCode(b) : (CP437_HIGH[b - 0x80] as string);
  return out;
}

/** Finds the end of central directory and reads every entry. Reads nothing else. */
export function readCentralDirectory(source: ByteSource, path: string): Promise<ZipEntry[]> {
  return runAsync(centralDirectory(source.size, path), source);
}

/** Synchronous {@link readCentralDirectory}. */
export function readCentralDirectorySync(source: ByteSource, path: string): ZipEntry[] {
  return runSync(centralDirectory(source.size, path), source);
}

/** The walker behind {@link readCentralDirectorySync}, for readers that drive their own walk (PyTorch's). */
export function* centralDirectory(size: number, path: string): Reads<ZipEntry[]> {
  if (size < EOCD_SIZE) {
    throw new TensorioError((yield* looksLikeZip(size)) ? 'ERR_TRUNCATED' : 'ERR_BAD_ZIP', `not a complete zip archive: ${size} bytes, less than the 22-byte end record`, { path });
  }
  // Most archives have no comment, so the end record is their last 22 bytes: reading the up
  // to 64 KiB a comment could span is then wasted (it doubled the reads of a 64 KiB .npz).
  let tailLength = EOCD_SIZE;
  let tail = yield [size - EOCD_SIZE, EOCD_SIZE, 'zip end record'];
  if (dv(tail).getUint32(0, true) !== SIG_EOCD || dv(tail).getUint16(20, true) !== 0) {
    tailLength = Math.min(size, EOCD_SIZE + MAX_COMMENT);
    tail = yield [size - tailLength, tailLength, 'zip end record'];
  }
  const tailStart = size - tailLength;
  const tailView = dv(tail);
  let eocd = -1;
  for (let i = tail.length - EOCD_SIZE; i >= 0; i--) {
    if (tailView.getUint32(i, true) === SIG_EOCD && i + EOCD_SIZE + tailView.getUint16(i + 20, true) <= tail.length) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) {
    if (yield* looksLikeZip(size)) {
      throw new TensorioError('ERR_TRUNCATED', 'the zip archive is cut short: it starts with a member but has no end-of-central-directory record', { path });
    }
    throw badZip(path, 'not a zip archive: no end-of-central-directory record (an .npz is a zip file)');
  }
  const eocdPos = tailStart + eocd;
  let entries = tailView.getUint16(eocd + 10, true);
  let cdSize = tailView.getUint32(eocd + 12, true);
  let cdOffset = tailView.getUint32(eocd + 16, true);
  if (tailView.getUint16(eocd + 4, true) !== 0 || tailView.getUint16(eocd + 6, true) !== 0) {
    throw badZip(path, 'multi-disk (split) zip archives are not supported');
  }
  let cdLimit = eocdPos;
  if (eocdPos >= 20) {
    const locator = yield [eocdPos - 20, 20, 'ZIP64 locator'];
    const lv = dv(locator);
    if (lv.getUint32(0, true) === SIG_ZIP64_LOCATOR) {
      const recordPos = u64(lv, 8, path);
      if (recordPos + 56 > eocdPos - 20) throw badZip(path, `the ZIP64 end record offset ${recordPos} is outside the archive`);
      const record = yield [recordPos, 56, 'ZIP64 end record'];
      const rv = dv(record);
      if (rv.getUint32(0, true) !== SIG_ZIP64_EOCD) throw badZip(path, `no ZIP64 end record at offset ${recordPos}`);
      entries = u64(rv, 32, path);
      cdSize = u64(rv, 40, path);
      cdOffset = u64(rv, 48, path);
      cdLimit = recordPos;
    }
  }
  if (cdOffset + cdSize > cdLimit) {
    throw new TensorioError('ERR_BAD_ZIP', `the central directory (${cdSize} bytes at offset ${cdOffset}) runs past its end record at ${cdLimit}`, { path });
  }
  if (entries * CENTRAL_SIZE > cdSize) throw badZip(path, `${entries} entries cannot fit in a central directory of ${cdSize} bytes`);
  const cd = yield [cdOffset, cdSize, 'central directory'];
  const view = dv(cd);
  const out: ZipEntry[] = [];
  let at = 0;
  for (let index = 0; index < entries; index++) {
    if (at + CENTRAL_SIZE > cd.length || view.getUint32(at, true) !== SIG_CENTRAL) {
      throw badZip(path, `central directory entry ${index} at offset ${cdOffset + at} is missing or corrupt`);
    }
    const flags = view.getUint16(at + 8, true);
    const method = view.getUint16(at + 10, true);
    const crc32 = view.getUint32(at + 16, true);
    let compressedSize = view.getUint32(at + 20, true);
    let uncompressedSize = view.getUint32(at + 24, true);
    const nameLength = view.getUint16(at + 28, true);
    const extraLength = view.getUint16(at + 30, true);
    const commentLength = view.getUint16(at + 32, true);
    let localHeaderOffset = view.getUint32(at + 42, true);
    const end = at + CENTRAL_SIZE + nameLength + extraLength + commentLength;
    if (end > cd.length) throw badZip(path, `central directory entry ${index} runs past the directory`);
    const name = decodeName(cd.subarray(at + CENTRAL_SIZE, at + CENTRAL_SIZE + nameLength), (flags & 0x800) !== 0, path);
    // ZIP64 extra: the fields whose 32-bit slots hold 0xFFFFFFFF, in this order.
    let extra = at + CENTRAL_SIZE + nameLength;
    const extraEnd = extra + extraLength;
    while (extra + 4 <= extraEnd) {
      const id = view.getUint16(extra, true);
      const length = view.getUint16(extra + 2, true);
      if (extra + 4 + length > extraEnd) throw badZip(path, `member '${name}' has a malformed extra field`);
      if (id === 0x0001) {
        let field = extra + 4;
        const next = (what: string): number => {
          if (field + 8 > extra + 4 + length) throw badZip(path, `member '${name}' has a ZIP64 extra field without its ${what}`);
          const value = u64(view, field, path);
          field += 8;
          return value;
        };
        if (uncompressedSize === U32_MAX) uncompressedSize = next('uncompressed size');
        if (compressedSize === U32_MAX) compressedSize = next('compressed size');
        if (localHeaderOffset === U32_MAX) localHeaderOffset = next('header offset');
      }
      extra += 4 + length;
    }
    if (flags & 0x1) throw badZip(path, `member '${name}' is encrypted; encrypted archives are not supported`);
    if (method !== 0 && method !== 8) {
      throw badZip(path, `member '${name}' uses compression method ${method}; expected 0 (stored) or 8 (deflate)`);
    }
    if (method === 0 && compressedSize !== uncompressedSize) {
      throw badZip(path, `stored member '${name}' has a compressed size ${compressedSize} different from its size ${uncompressedSize}`);
    }
    if (localHeaderOffset + LOCAL_SIZE + compressedSize > cdOffset) {
      throw badZip(path, `member '${name}' (${compressedSize} bytes at offset ${localHeaderOffset}) runs into the central directory at ${cdOffset}`);
    }
    out.push({ name, method, flags, crc32, compressedSize, uncompressedSize, localHeaderOffset });
    at = end;
  }
  return out;
}

// Starts like a member, or is a prefix of the signature: an empty or 1-3 byte file is a
// zip cut short as much as it is anything else.
function* looksLikeZip(size: number): Reads<boolean> {
  const head = yield [0, Math.min(size, 4), 'zip signature'];
  return head.every((byte, i) => byte === [0x50, 0x4b, 0x03, 0x04][i]);
}

/** The offset of a member's data: after its local header, whose extra field may differ from the central one. */
export function memberDataOffset(source: ByteSource, entry: ZipEntry, path: string): Promise<number> {
  return runAsync(dataOffset(source.size, entry, path), source);
}

/** Synchronous {@link memberDataOffset}. */
export function memberDataOffsetSync(source: ByteSource, entry: ZipEntry, path: string): number {
  return runSync(dataOffset(source.size, entry, path), source);
}

/** The walker behind {@link memberDataOffsetSync}, for callers that hold the bytes in a region of their own. */
export function* dataOffset(size: number, entry: ZipEntry, path: string): Reads<number> {
  const header = yield [entry.localHeaderOffset, LOCAL_SIZE, `local header of '${entry.name}'`];
  const view = dv(header);
  if (view.getUint32(0, true) !== SIG_LOCAL) throw badZip(path, `no local header for member '${entry.name}' at offset ${entry.localHeaderOffset}`);
  const nameLength = view.getUint16(26, true);
  const extraLength = view.getUint16(28, true);
  const start = entry.localHeaderOffset + LOCAL_SIZE + nameLength + extraLength;
  if (start + entry.compressedSize > size) {
    throw new TensorioError('ERR_TRUNCATED', `file ends inside member '${entry.name}': ${entry.compressedSize} bytes at offset ${start}, the file has ${size}`, { path });
  }
  const rawName = yield [entry.localHeaderOffset + LOCAL_SIZE, nameLength, `local header of '${entry.name}'`];
  if (decodeName(rawName, (view.getUint16(6, true) & 0x800) !== 0, path) !== entry.name) {
    throw badZip(path, `the local header of member '${entry.name}' names a different file`);
  }
  return start;
}

/** CRC-32 of bytes of any length (zlib.crc32 in 1 GiB steps). */
export function crc32(bytes: Uint8Array, initial = 0): number {
  let crc = initial;
  for (let at = 0; at < bytes.length; at += STEP) crc = zlib.crc32(bytes.subarray(at, Math.min(bytes.length, at + STEP)), crc);
  return crc >>> 0;
}

// Bytes per write call: one 64 MiB pwritev measured 1.6x slower here than 16 MiB ones.
const WRITE_PIECE = 16 << 20;

/** `chunks` regrouped into write calls of at most `limit` bytes (views, no copies). */
function* pieces(chunks: readonly Uint8Array[], limit: number): Generator<Uint8Array[]> {
  let group: Uint8Array[] = [];
  let groupBytes = 0;
  for (const chunk of chunks) {
    for (let at = 0; at < chunk.length; ) {
      const take = Math.min(chunk.length - at, limit - groupBytes);
      group.push(chunk.subarray(at, at + take));
      groupBytes += take;
      at += take;
      if (groupBytes === limit) {
        yield group;
        group = [];
        groupBytes = 0;
      }
    }
  }
  if (group.length > 0) yield group;
}

/**
 * A CRC-32 computed a slice at a time, so the work can be spread over the writes of the
 * previous member (the two cores then CRC and write at once).
 */
export class CrcCursor {
  private value = 0;
  private chunk = 0;
  private at = 0;

  constructor(private readonly chunks: readonly Uint8Array[]) {}

  /** Advances over at most `bytes` bytes. */
  step(bytes: number): void {
    let left = bytes;
    while (left > 0 && this.chunk < this.chunks.length) {
      const chunk = this.chunks[this.chunk] as Uint8Array;
      const take = Math.min(left, chunk.length - this.at);
      this.value = crc32(chunk.subarray(this.at, this.at + take), this.value);
      this.at += take;
      left -= take;
      if (this.at >= chunk.length) {
        this.chunk++;
        this.at = 0;
      }
    }
  }

  /** The CRC of all the chunks (finishing what is left). */
  finish(): number {
    this.step(Number.MAX_SAFE_INTEGER);
    return this.value >>> 0;
  }
}

/** CRC-32 of chunks taken as one byte sequence. */
export function crc32OfChunks(chunks: readonly Uint8Array[]): number {
  return new CrcCursor(chunks).finish();
}

export function checkCrc(entry: ZipEntry, actual: number, path: string): void {
  if (actual !== entry.crc32 >>> 0) {
    throw new TensorioError(
      'ERR_CRC_MISMATCH',
      `member '${entry.name}' is corrupt: its CRC-32 is ${actual.toString(16).padStart(8, '0')}, the archive says ${(entry.crc32 >>> 0).toString(16).padStart(8, '0')}`,
      { path },
    );
  }
}

/** Options of {@link readMember}. */
export interface ReadMemberOptions {
  /** Largest uncompressed size accepted. Default {@link DEFAULT_MAX_MEMBER_SIZE}. */
  maxMemberSize?: number;
  /** Check the CRC-32. Default true. */
  verify?: boolean;
}

/** Checks a member's declared size against the limit and what deflate can produce. */
export function checkMemberSize(entry: ZipEntry, path: string, maxMemberSize = DEFAULT_MAX_MEMBER_SIZE): void {
  if (entry.uncompressedSize > maxMemberSize) {
    throw new TensorioError(
      'ERR_TOO_LARGE',
      `member '${entry.name}' claims ${entry.uncompressedSize} bytes uncompressed, over the limit of ${maxMemberSize}; pass { maxMemberSize } if you trust this file`,
      { path },
    );
  }
  if (entry.method === 8 && entry.uncompressedSize > entry.compressedSize * MAX_DEFLATE_RATIO + 1024) {
    throw badZip(path, `member '${entry.name}' claims ${entry.uncompressedSize} bytes from ${entry.compressedSize} compressed, more than deflate can produce`);
  }
}

/**
 * A member's uncompressed bytes, CRC-checked. Stored members of a mapped source are views;
 * otherwise the bytes are a fresh buffer of exactly the declared size. Inflation stops with
 * an error as soon as it passes the declared size, so a zip bomb allocates nothing extra.
 * @throws TensorioError `ERR_BAD_ZIP`, `ERR_CRC_MISMATCH`, `ERR_TOO_LARGE`, `ERR_TRUNCATED`.
 */
export async function readMember(source: ByteSource, entry: ZipEntry, path: string, options: ReadMemberOptions = {}): Promise<Uint8Array> {
  checkMemberSize(entry, path, options.maxMemberSize);
  const start = await memberDataOffset(source, entry, path);
  if (entry.method === 0) {
    const raw = await source.readAsync(start, entry.compressedSize, `member '${entry.name}'`);
    if (options.verify !== false) checkCrc(entry, crc32(raw), path);
    return raw;
  }
  const { out, crc } = await inflateInto(source, start, entry.compressedSize, entry.uncompressedSize, entry.name, path);
  if (options.verify !== false) checkCrc(entry, crc, path);
  return out;
}

/**
 * The first `length` bytes of a member (fewer only when the member holds fewer), for readers
 * that know from elsewhere how much of a member they need (a PyTorch storage whose size the
 * pickle gives, an .npy header): a deflated member is inflated only that far, so a member
 * whose stream holds far more costs only what is asked for. Not CRC-checked unless the whole
 * member is read (`length` at least its size).
 * @throws TensorioError `ERR_BAD_ZIP`, `ERR_CRC_MISMATCH` (whole members), `ERR_TOO_LARGE`, `ERR_TRUNCATED`.
 */
export async function readMemberPrefix(source: ByteSource, entry: ZipEntry, path: string, length: number, options: ReadMemberOptions = {}): Promise<Uint8Array> {
  if (length >= entry.uncompressedSize) return readMember(source, entry, path, options);
  checkMemberSize(entry, path, options.maxMemberSize);
  const start = await memberDataOffset(source, entry, path);
  if (entry.method === 0) return source.readAsync(start, length, `member '${entry.name}'`);
  const out = new Uint8Array(length);
  let filled = 0;
  await inflateChunks(source, start, entry.compressedSize, entry.name, path, (chunk) => {
    const take = Math.min(chunk.length, length - filled);
    out.set(chunk.subarray(0, take), filled);
    filled += take;
    return filled < length;
  });
  if (filled < length) throw badZip(path, `member '${entry.name}' inflates to ${filled} bytes, its header says ${entry.uncompressedSize}`);
  return out;
}

/**
 * Synchronous {@link readMember}. A deflated member is inflated in one call whose output is
 * capped at its declared size (itself bounded by {@link checkMemberSize}), so a member that
 * lies about its size allocates no more than it claims.
 * @throws TensorioError `ERR_BAD_ZIP`, `ERR_CRC_MISMATCH`, `ERR_TOO_LARGE`, `ERR_TRUNCATED`.
 */
export function readMemberSync(source: ByteSource, entry: ZipEntry, path: string, options: ReadMemberOptions = {}): Uint8Array {
  return runSync(wholeMember(source.size, entry, path, options), source);
}

/**
 * The walker of {@link readMemberSync}, for formats whose parsers are walkers (PyTorch): the
 * member read whole in one request, a deflated one inflated in one capped call.
 */
export function* wholeMember(size: number, entry: ZipEntry, path: string, options: ReadMemberOptions = {}): Reads<Uint8Array> {
  checkMemberSize(entry, path, options.maxMemberSize);
  const start = yield* dataOffset(size, entry, path);
  const raw = yield [start, entry.compressedSize, `member '${entry.name}'`];
  const out = entry.method === 0 ? raw : inflateWholeSync(raw, entry, path);
  if (options.verify !== false) checkCrc(entry, crc32(out), path);
  return out;
}

/**
 * A deflated member's whole output, in one inflate whose output is capped at the member's
 * declared size (itself bounded by {@link checkMemberSize}): more is `ERR_BAD_ZIP` at once.
 * @throws TensorioError `ERR_BAD_ZIP`.
 */
export function inflateWholeSync(raw: Uint8Array, entry: ZipEntry, path: string): Uint8Array {
  let out: Uint8Array;
  try {
    const inflated = zlib.inflateRawSync(raw, { maxOutputLength: Math.max(1, entry.uncompressedSize) });
    out = new Uint8Array(inflated.buffer, inflated.byteOffset, inflated.byteLength);
  } catch (error) {
    if ((error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
      throw badZip(path, `member '${entry.name}' inflates to more than its declared ${entry.uncompressedSize} bytes`);
    }
    throw new TensorioError('ERR_BAD_ZIP', `member '${entry.name}' is not valid deflate data: ${(error as Error).message}`, { path, cause: error });
  }
  if (out.length !== entry.uncompressedSize) throw badZip(path, `member '${entry.name}' inflates to ${out.length} bytes, its header says ${entry.uncompressedSize}`);
  return out;
}

const PIPELINE_CHUNK = 8 << 20;
// Compressed bytes read per step while inflating: memory stays bounded by this, not the member.
const INFLATE_SLICE = 4 << 20;

/**
 * Reads `target.length` bytes at `position` in chunks, computing the CRC-32 of each chunk
 * (continuing from `crc`) while the next one is being read on libuv's pool; returns the CRC.
 */
export async function readIntoWithCrc(source: ByteSource, position: number, target: Uint8Array, crc: number, what: string): Promise<number> {
  let pending: Promise<void> | undefined;
  let previous: Uint8Array | undefined;
  for (let at = 0; at < target.length || previous; at += PIPELINE_CHUNK) {
    const chunk = at < target.length ? target.subarray(at, Math.min(target.length, at + PIPELINE_CHUNK)) : undefined;
    const reading = chunk ? source.readIntoAsync(position + at, chunk, what) : undefined;
    if (pending) await pending;
    if (previous) crc = crc32(previous, crc);
    pending = reading;
    previous = chunk;
  }
  return crc >>> 0;
}

/**
 * Inflates raw deflate data, read from the source in slices (the next slice is read while the
 * current one inflates), into a buffer of exactly `claimed` bytes, and returns it with its
 * CRC. The buffer starts at most a few times the compressed size and grows only as output
 * really arrives, so a member that lies about its size costs no more memory than the data it
 * holds; output past the claim stops inflation at once.
 */
async function inflateInto(source: ByteSource, start: number, length: number, claimed: number, name: string, path: string): Promise<{ out: Uint8Array; crc: number }> {
  let target = new Uint8Array(Math.min(claimed, Math.max(INFLATE_SLICE, length * 4)));
  let filled = 0;
  let crc = 0;
  await inflateChunks(source, start, length, name, path, (chunk) => {
    if (filled + chunk.length > claimed) throw badZip(path, `member '${name}' inflates to more than its declared ${claimed} bytes`);
    if (filled + chunk.length > target.length) {
      const grown = new Uint8Array(Math.min(claimed, Math.max(filled + chunk.length, target.length * 2)));
      grown.set(target.subarray(0, filled));
      target = grown;
    }
    target.set(chunk, filled);
    crc = zlib.crc32(chunk, crc);
    filled += chunk.length;
    return true;
  });
  if (filled !== claimed) throw badZip(path, `member '${name}' inflates to ${filled} bytes, its header says ${claimed}`);
  return { out: target, crc: crc >>> 0 };
}

// ---------------------------------------------------------------------------------------
// Writing

interface WrittenEntry {
  nameBytes: Uint8Array;
  method: number;
  flags: number;
  crc: number;
  compressedSize: number;
  uncompressedSize: number;
  offset: number;
}

function header(length: number): { bytes: Uint8Array; view: DataView } {
  const bytes = new Uint8Array(length);
  return { bytes, view: new DataView(bytes.buffer) };
}

/**
 * Writes a ZIP archive as a stream of chunks through an {@link AtomicWriter}; nothing is
 * assembled in memory but the headers. Stored members get their data aligned to `align`
 * bytes; deflated members are compressed by node:zlib in chunks and end with a data
 * descriptor, since their size is known only afterwards.
 */
export class ZipWriter {
  private readonly entries: WrittenEntry[] = [];
  private readonly names = new Set<string>();

  /**
   * @param options `forceZip64` writes ZIP64 fields everywhere, as if every size and offset
   * were past 4 GiB (Python's `force_zip64`); it lets tests reach the large-file paths.
   */
  constructor(
    private readonly out: AtomicWriter,
    private readonly path: string,
    private readonly options: { forceZip64?: boolean } = {},
  ) {}

  private nameBytes(name: string): Uint8Array {
    if (this.names.has(name)) throw new TensorioError('ERR_INVALID_ARGUMENT', `duplicate member name '${name}'`, { path: this.path });
    this.names.add(name);
    const bytes = new TextEncoder().encode(name);
    if (bytes.length > U16_MAX) throw new TensorioError('ERR_INVALID_ARGUMENT', `member name is ${bytes.length} bytes, over the zip limit of 65535`, { path: this.path });
    return bytes;
  }

  private static isAscii(bytes: Uint8Array): boolean {
    return bytes.every((b) => b < 0x80);
  }

  /**
   * Adds a stored member whose contents are `chunks`, its data starting at a multiple of
   * `align`. Pass `crc` (from {@link crc32OfChunks}) when it is already known, so a caller can
   * compute the next member's CRC while this one is being written; `whileWriting` is called
   * each time a piece of the data has been handed to the writer, before it is awaited.
   */
  async addStored(name: string, chunks: Uint8Array[], align = 64, crc = crc32OfChunks(chunks), whileWriting?: () => void): Promise<void> {
    const nameBytes = this.nameBytes(name);
    const size = chunks.reduce((sum, c) => sum + c.length, 0);
    const offset = this.out.bytesWritten;
    const zip64 = this.options.forceZip64 === true || size >= U32_MAX;
    const zip64Extra = zip64 ? 20 : 0;
    // The alignment extra (id, length, 2-byte alignment, zero padding) is at least 6 bytes.
    const before = offset + LOCAL_SIZE + nameBytes.length + zip64Extra + 6;
    const padding = (align - (before % align)) % align;
    const extraLength = zip64Extra + 6 + padding;
    const { bytes, view } = header(LOCAL_SIZE + nameBytes.length + extraLength);
    const flags = ZipWriter.isAscii(nameBytes) ? 0 : 0x800;
    this.localHeader(view, flags, 0, crc, zip64 ? U32_MAX : size, zip64 ? U32_MAX : size, nameBytes.length, extraLength, zip64);
    bytes.set(nameBytes, LOCAL_SIZE);
    let at = LOCAL_SIZE + nameBytes.length;
    if (zip64) {
      view.setUint16(at, 0x0001, true);
      view.setUint16(at + 2, 16, true);
      view.setBigUint64(at + 4, BigInt(size), true);
      view.setBigUint64(at + 12, BigInt(size), true);
      at += 20;
    }
    view.setUint16(at, ALIGN_EXTRA_ID, true);
    view.setUint16(at + 2, 2 + padding, true);
    view.setUint16(at + 4, align, true);
    for (const piece of pieces([bytes, ...chunks], WRITE_PIECE)) {
      const writing = this.out.write(piece);
      whileWriting?.();
      await writing;
    }
    this.entries.push({ nameBytes, method: 0, flags, crc, compressedSize: size, uncompressedSize: size, offset });
  }

  /** Adds a deflated member (level 0-9), streamed through node:zlib. */
  async addDeflated(name: string, chunks: Uint8Array[], level: number): Promise<void> {
    const nameBytes = this.nameBytes(name);
    const size = chunks.reduce((sum, c) => sum + c.length, 0);
    // Deflate's worst case adds 5 bytes per 16 KiB block: size it as ZIP64 with a margin.
    const zip64 = this.options.forceZip64 === true || size + Math.ceil(size / 16384) * 5 + 64 >= U32_MAX;
    const offset = this.out.bytesWritten;
    const flags = 0x8 | (ZipWriter.isAscii(nameBytes) ? 0 : 0x800);
    const extraLength = zip64 ? 20 : 0;
    const { bytes, view } = header(LOCAL_SIZE + nameBytes.length + extraLength);
    this.localHeader(view, flags, 8, 0, zip64 ? U32_MAX : 0, zip64 ? U32_MAX : 0, nameBytes.length, extraLength, zip64);
    bytes.set(nameBytes, LOCAL_SIZE);
    if (zip64) {
      view.setUint16(LOCAL_SIZE + nameBytes.length, 0x0001, true);
      view.setUint16(LOCAL_SIZE + nameBytes.length + 2, 16, true);
    }
    await this.out.write([bytes]);
    let crc = 0;
    let compressedSize = 0;
    const deflate = zlib.createDeflateRaw({ level, chunkSize: 1 << 20 });
    const pending: Buffer[] = [];
    let pendingBytes = 0;
    const flushPending = async (): Promise<void> => {
      if (pending.length === 0) return;
      const batch = pending.splice(0);
      pendingBytes = 0;
      await this.out.write(batch);
    };
    const done = new Promise<void>((resolve, reject) => {
      deflate.on('end', resolve);
      deflate.on('error', reject);
    });
    deflate.on('data', (chunk: Buffer) => {
      pending.push(chunk);
      pendingBytes += chunk.length;
      compressedSize += chunk.length;
    });
    const INPUT = 4 << 20;
    for (const chunk of chunks) {
      for (let at = 0; at < chunk.length; at += INPUT) {
        const slice = chunk.subarray(at, Math.min(chunk.length, at + INPUT));
        crc = crc32(slice, crc);
        if (!deflate.write(slice)) await new Promise<void>((resolve) => deflate.once('drain', resolve));
        if (pendingBytes >= 8 << 20) await flushPending();
      }
    }
    deflate.end();
    await done;
    await flushPending();
    const descriptor = header(zip64 ? 24 : 16);
    descriptor.view.setUint32(0, SIG_DESCRIPTOR, true);
    descriptor.view.setUint32(4, crc, true);
    if (zip64) {
      descriptor.view.setBigUint64(8, BigInt(compressedSize), true);
      descriptor.view.setBigUint64(16, BigInt(size), true);
    } else {
      descriptor.view.setUint32(8, compressedSize, true);
      descriptor.view.setUint32(12, size, true);
    }
    await this.out.write([descriptor.bytes]);
    this.entries.push({ nameBytes, method: 8, flags, crc, compressedSize, uncompressedSize: size, offset });
  }

  private localHeader(view: DataView, flags: number, method: number, crc: number, compressed: number, uncompressed: number, nameLength: number, extraLength: number, zip64: boolean): void {
    view.setUint32(0, SIG_LOCAL, true);
    view.setUint16(4, zip64 ? 45 : 20, true);
    view.setUint16(6, flags, true);
    view.setUint16(8, method, true);
    view.setUint16(10, DOS_TIME, true);
    view.setUint16(12, DOS_DATE, true);
    view.setUint32(14, crc, true);
    view.setUint32(18, compressed, true);
    view.setUint32(22, uncompressed, true);
    view.setUint16(26, nameLength, true);
    view.setUint16(28, extraLength, true);
  }

  /** Writes the central directory and end records. */
  async finish(): Promise<void> {
    const chunks: Uint8Array[] = [];
    const cdOffset = this.out.bytesWritten;
    let cdSize = 0;
    for (const entry of this.entries) {
      const force = this.options.forceZip64 === true;
      const needs = [force || entry.uncompressedSize >= U32_MAX, force || entry.compressedSize >= U32_MAX, force || entry.offset >= U32_MAX];
      const zip64Length = needs.filter(Boolean).length * 8;
      const extraLength = zip64Length > 0 ? 4 + zip64Length : 0;
      const { bytes, view } = header(CENTRAL_SIZE + entry.nameBytes.length + extraLength);
      view.setUint32(0, SIG_CENTRAL, true);
      view.setUint16(4, (3 << 8) | 45, true); // made by Unix, spec 4.5
      view.setUint16(6, zip64Length > 0 ? 45 : 20, true);
      view.setUint16(8, entry.flags, true);
      view.setUint16(10, entry.method, true);
      view.setUint16(12, DOS_TIME, true);
      view.setUint16(14, DOS_DATE, true);
      view.setUint32(16, entry.crc, true);
      view.setUint32(20, needs[1] ? U32_MAX : entry.compressedSize, true);
      view.setUint32(24, needs[0] ? U32_MAX : entry.uncompressedSize, true);
      view.setUint16(28, entry.nameBytes.length, true);
      view.setUint16(30, extraLength, true);
      view.setUint32(38, (0o100644 << 16) >>> 0, true); // a regular file, rw-r--r--
      view.setUint32(42, needs[2] ? U32_MAX : entry.offset, true);
      bytes.set(entry.nameBytes, CENTRAL_SIZE);
      if (extraLength > 0) {
        let at = CENTRAL_SIZE + entry.nameBytes.length;
        view.setUint16(at, 0x0001, true);
        view.setUint16(at + 2, zip64Length, true);
        at += 4;
        if (needs[0]) (view.setBigUint64(at, BigInt(entry.uncompressedSize), true), (at += 8));
        if (needs[1]) (view.setBigUint64(at, BigInt(entry.compressedSize), true), (at += 8));
        if (needs[2]) view.setBigUint64(at, BigInt(entry.offset), true);
      }
      chunks.push(bytes);
      cdSize += bytes.length;
    }
    const count = this.entries.length;
    const zip64 = this.options.forceZip64 === true || count >= U16_MAX || cdSize >= U32_MAX || cdOffset >= U32_MAX;
    if (zip64) {
      const record = header(56 + 20);
      const v = record.view;
      v.setUint32(0, SIG_ZIP64_EOCD, true);
      v.setBigUint64(4, 44n, true);
      v.setUint16(12, (3 << 8) | 45, true);
      v.setUint16(14, 45, true);
      v.setBigUint64(24, BigInt(count), true);
      v.setBigUint64(32, BigInt(count), true);
      v.setBigUint64(40, BigInt(cdSize), true);
      v.setBigUint64(48, BigInt(cdOffset), true);
      v.setUint32(56, SIG_ZIP64_LOCATOR, true);
      v.setBigUint64(64, BigInt(cdOffset + cdSize), true);
      v.setUint32(72, 1, true);
      chunks.push(record.bytes);
    }
    const end = header(EOCD_SIZE);
    end.view.setUint32(0, SIG_EOCD, true);
    end.view.setUint16(8, zip64 ? U16_MAX : count, true);
    end.view.setUint16(10, zip64 ? U16_MAX : count, true);
    end.view.setUint32(12, zip64 ? U32_MAX : cdSize, true);
    end.view.setUint32(16, zip64 ? U32_MAX : cdOffset, true);
    chunks.push(end.bytes);
    await this.out.write(chunks);
  }
}
