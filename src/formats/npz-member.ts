/**
 * One `.npz` member's `.npy`, read as NumPy's NpzFile reads it: the header, then exactly the
 * data the header declares, and nothing after it. A deflated member is inflated as a stream
 * and inflation stops there, so a member whose stream holds more than its header declares
 * (1 GiB of zeros after 10 float64 values: an inflate bomb) costs the 10 values, as in NumPy,
 * which reads header plus data from the zip stream and never reads to its end.
 *
 * Bytes after the declared data (NumPy ignores them too) are inflated or read only to check the
 * member's CRC-32, and only when there are no more of them than max(header + data, 1 MiB);
 * past that the read stops at the data and the CRC is not checked (NumPy never checks it in
 * this case either: zipfile checks the CRC only on reaching the end of a member).
 */
import { TensorioError } from '../errors.js';
import { allocateForRead } from '../io.js';
import { type LoadedArray } from '../ndarray.js';
import { arrayFromBuffer, decodeNpy, isObjectDescr, npyHeaderEnd, parseNpyHeader, parseNpyRawHeader, stringHeader, type NpyHeader, type NpyRawHeader, type NpyReadOptions } from './npy.js';
import { decodeStrings, type StringArray } from './npy-strings.js';
import { inflateChunks, inflatePrefixSync } from './inflate.js';
import { checkCrc, crc32, inflateWholeSync, readIntoWithCrc, type ZipEntry, type ZipSource, type ZipSourceSync } from './zip.js';

// A member's .npy preamble is at most 12 bytes (magic, version, 4-byte length).
const PREAMBLE = 12;
// First buffer for a member's header; it doubles as header bytes really arrive.
const FIRST_HEAD = 4096;
// First buffer for inflated data: grows as output really arrives, never from a claim alone.
const FIRST_DATA = 4 << 20;

/** How many bytes after the declared data are still read to check the CRC. */
function trailingBudget(needed: number): number {
  return Math.max(needed, 1 << 20);
}

/** What reading a member gave: its array, or word that it is a pickle (to be read whole). */
export type MemberResult = { array: LoadedArray | StringArray } | { pickle: NpyRawHeader };

/**
 * The resolved header: a numeric dtype, or (with `strings`) a string array's placeholder header
 * (npy.ts stringHeader). Throws ERR_UNSUPPORTED_DTYPE for other descrs.
 */
function resolveHeader(raw: NpyRawHeader, bytes: Uint8Array, where: string, options: NpyReadOptions, size: number): Resolved {
  const strings = options.strings ? stringHeader(raw, where) : undefined;
  return strings ? { header: strings, strings: true } : { header: parseNpyHeader(bytes, where, options, size), strings: false };
}

type Resolved = { header: NpyHeader; strings: boolean };

/**
 * A member's header, `prefix` (preamble and header) read from a member of `size` bytes: the
 * raw header of an object array, or the resolved one with `needed` (header + data bytes).
 * @throws TensorioError ERR_TRUNCATED when the data would run past the member.
 */
function planMember(prefix: Uint8Array, size: number, where: string, options: NpyReadOptions): { pickle: NpyRawHeader } | { resolved: Resolved; needed: number } {
  const raw = parseNpyRawHeader(prefix, where, options, size);
  if (isObjectDescr(raw.descr)) return { pickle: raw };
  const resolved = resolveHeader(raw, prefix, where, options, size);
  const needed = resolved.header.dataOffset + resolved.header.dataLength;
  if (needed > size) throw truncatedData(resolved.header, size, where);
  return { resolved, needed };
}

/** The array of a member whose `data` holds exactly its declared data bytes (a view or its own copy). */
function build(resolved: Resolved, data: Uint8Array, where: string, ownBuffer: boolean): LoadedArray | StringArray {
  const { header } = resolved;
  if (resolved.strings) return decodeStrings(header.descr, header.shape, header.fortranOrder, data, where);
  if (ownBuffer && data.byteOffset === 0) return arrayFromBuffer(header, data.buffer as ArrayBuffer, 0, where, { mapped: false });
  const copy = data.slice();
  return arrayFromBuffer(header, copy.buffer, 0, where, { mapped: false });
}

function truncatedData(header: NpyHeader, size: number, where: string): TensorioError {
  return new TensorioError('ERR_TRUNCATED', `member ends inside the data: ${header.dataLength} bytes needed at offset ${header.dataOffset}, the member has ${size}`, { path: where });
}

function mismatch(entry: ZipEntry, got: number, path: string): TensorioError {
  return new TensorioError('ERR_BAD_ZIP', `member '${entry.name}' inflates to ${got} bytes, its header says ${entry.uncompressedSize}`, { path });
}

/**
 * Takes a member's uncompressed bytes chunk by chunk: collects the header (its buffer growing
 * only as bytes arrive), then fills the data buffer, then counts what follows. `take` returns
 * false as soon as nothing more is wanted.
 */
class MemberSink {
  private head = new Uint8Array(FIRST_HEAD);
  private headLength = 0;
  private headerEnd: number | undefined;
  raw: NpyRawHeader | undefined;
  header: NpyHeader | undefined;
  /** True when the header is a string array's (read with `strings`). */
  strings = false;
  headBytes: Uint8Array | undefined;
  private data = new Uint8Array(0);
  private filled = 0;
  /** After the data: 'check' drains the rest for the CRC; 'stop' stops at once. */
  state: 'head' | 'data' | 'check' | 'stopped' = 'head';
  total = 0;
  crc = 0;

  constructor(
    private readonly entry: ZipEntry,
    private readonly where: string,
    private readonly path: string,
    private readonly options: NpyReadOptions,
    /** False for a header-only read (NpzFile.info). */
    private readonly wantData: boolean,
  ) {}

  take(chunk: Uint8Array): boolean {
    this.total += chunk.length;
    if (this.total > this.entry.uncompressedSize) {
      throw new TensorioError('ERR_BAD_ZIP', `member '${this.entry.name}' inflates to more than its declared ${this.entry.uncompressedSize} bytes`, { path: this.path });
    }
    this.crc = crc32(chunk, this.crc);
    let at = 0;
    while (at < chunk.length) {
      if (this.state === 'head') {
        // The preamble first (8 bytes, then 10 for version 1.0 or 12), so that no byte after a
        // short header is taken for header.
        const want = this.headerEnd ?? (this.headLength < 8 ? 8 : this.head[6] === 1 ? 10 : PREAMBLE);
        const take = Math.min(want - this.headLength, chunk.length - at);
        if (this.headLength + take > this.head.length) {
          const grown = new Uint8Array(Math.min(want, Math.max(this.headLength + take, this.head.length * 2)));
          grown.set(this.head.subarray(0, this.headLength));
          this.head = grown;
        }
        this.head.set(chunk.subarray(at, at + take), this.headLength);
        this.headLength += take;
        at += take;
        if (this.headerEnd === undefined && this.headLength === want && want > 8) {
          this.headerEnd = npyHeaderEnd(this.head.subarray(0, this.headLength), this.entry.uncompressedSize, this.where, this.options);
        }
        if (this.headerEnd !== undefined && this.headLength >= this.headerEnd) {
          if (!this.headerDone()) {
            this.state = 'stopped';
            return false;
          }
        }
      } else if (this.state === 'data') {
        const header = this.header as NpyHeader;
        const take = Math.min(header.dataLength - this.filled, chunk.length - at);
        if (this.filled + take > this.data.length) {
          const grown = new Uint8Array(Math.min(header.dataLength, Math.max(this.filled + take, this.data.length * 2)));
          grown.set(this.data.subarray(0, this.filled));
          this.data = grown;
        }
        this.data.set(chunk.subarray(at, at + take), this.filled);
        this.filled += take;
        at += take;
        if (this.filled === header.dataLength && !this.afterData()) return false;
      } else {
        break; // 'check': the bytes are counted and in the CRC already
      }
    }
    return this.state !== 'stopped';
  }

  /** The header is complete: parse it; false when nothing more is wanted. */
  private headerDone(): boolean {
    const bytes = this.head.subarray(0, this.headerEnd);
    this.headBytes = bytes;
    this.raw = parseNpyRawHeader(bytes, this.where, this.options, this.entry.uncompressedSize);
    if (isObjectDescr(this.raw.descr)) return false;
    const resolved = resolveHeader(this.raw, bytes, this.where, this.options, this.entry.uncompressedSize);
    this.header = resolved.header;
    this.strings = resolved.strings;
    if (!this.wantData) return false;
    const needed = this.header.dataOffset + this.header.dataLength;
    if (needed > this.entry.uncompressedSize) throw truncatedData(this.header, this.entry.uncompressedSize, this.where);
    this.data = new Uint8Array(Math.min(this.header.dataLength, Math.max(FIRST_DATA, this.entry.compressedSize * 4)));
    this.state = 'data';
    return this.header.dataLength > 0 || this.afterData();
  }

  /** The data is complete: decide whether to read on for the CRC. */
  private afterData(): boolean {
    const header = this.header as NpyHeader;
    const trailing = this.entry.uncompressedSize - header.dataOffset - header.dataLength;
    this.state = trailing <= trailingBudget(header.dataOffset + header.dataLength) ? 'check' : 'stopped';
    return this.state === 'check';
  }

  /** The inflated data, in a buffer of its own. */
  dataBuffer(): ArrayBuffer {
    return this.data.buffer as ArrayBuffer;
  }

  /** Called when the stream ended: checks it was complete and, when all was read, the CRC. */
  finish(ended: boolean): void {
    if (!ended) return;
    if (this.total !== this.entry.uncompressedSize) throw mismatch(this.entry, this.total, this.path);
    if (this.state === 'head') {
      // The whole member is shorter than its header: the header parser names what is missing.
      const bytes = this.head.subarray(0, this.headLength);
      npyHeaderEnd(bytes, this.total, this.where, this.options);
      parseNpyRawHeader(bytes, this.where, this.options, this.total);
    }
    if (this.state === 'check') checkCrc(this.entry, this.crc >>> 0, this.path);
  }
}

/**
 * Reads a deflated member's header and, unless it is a pickle or `wantData` is false, its
 * declared data, inflating no further than the rule above allows.
 */
async function inflateMember(source: ZipSource, entry: ZipEntry, start: number, where: string, path: string, options: NpyReadOptions, wantData: boolean): Promise<MemberSink> {
  const sink = new MemberSink(entry, where, path, options, wantData);
  const ended = await inflateChunks(source, start, entry.compressedSize, entry.name, path, (chunk) => sink.take(chunk));
  sink.finish(ended);
  if (!ended && sink.state === 'head') throw mismatch(entry, sink.total, path);
  return sink;
}

/** The header of a stored member: a small probe, then the rest once its length is known. */
async function storedHeader(source: ZipSource, entry: ZipEntry, start: number, where: string, options: NpyReadOptions): Promise<Uint8Array> {
  const first = await source.readAsync(start, Math.min(entry.compressedSize, FIRST_HEAD), `member '${entry.name}'`);
  const end = npyHeaderEnd(first, entry.compressedSize, where, options);
  return end > first.length ? source.readAsync(start, end, `member '${entry.name}'`) : first.subarray(0, end);
}

/**
 * The `.npy` header of a member (stored or deflated), reading or inflating only its first bytes.
 * @returns the raw header, and the resolved one unless the member is a pickle.
 */
export async function readMemberHeader(source: ZipSource, entry: ZipEntry, start: number, where: string, path: string, options: NpyReadOptions): Promise<{ raw: NpyRawHeader; header?: NpyHeader }> {
  if (entry.method === 0) {
    const bytes = await storedHeader(source, entry, start, where, options);
    const raw = parseNpyRawHeader(bytes, where, options, entry.uncompressedSize);
    return isObjectDescr(raw.descr) ? { raw } : { raw, header: resolveHeader(raw, bytes, where, options, entry.uncompressedSize).header };
  }
  const sink = await inflateMember(source, entry, start, where, path, options, false);
  return sink.header ? { raw: sink.raw as NpyRawHeader, header: sink.header } : { raw: sink.raw as NpyRawHeader };
}

/**
 * Reads a member's array (its data at offset 0 of a buffer of its own, so it is aligned
 * whatever the archive's layout), CRC-checked as it arrives under the rule above.
 */
export async function readNpyMember(source: ZipSource, entry: ZipEntry, start: number, where: string, path: string, options: NpyReadOptions): Promise<MemberResult> {
  if (entry.method !== 0) {
    const sink = await inflateMember(source, entry, start, where, path, options, true);
    if (!sink.header) return { pickle: sink.raw as NpyRawHeader };
    return { array: build({ header: sink.header, strings: sink.strings }, new Uint8Array(sink.dataBuffer(), 0, sink.header.dataLength), where, true) };
  }
  const prefix = await storedHeader(source, entry, start, where, options);
  const plan = planMember(prefix, entry.compressedSize, where, options);
  if ('pickle' in plan) return plan;
  const { resolved, needed } = plan;
  const { header } = resolved;
  const buffer = allocateForRead(header.dataLength);
  let crc = await readIntoWithCrc(source, start + header.dataOffset, new Uint8Array(buffer), crc32(prefix), `member '${entry.name}'`);
  const trailing = entry.compressedSize - needed;
  if (trailing <= trailingBudget(needed)) {
    if (trailing > 0) crc = crc32(await source.readAsync(start + needed, trailing, `member '${entry.name}'`), crc);
    checkCrc(entry, crc, path);
  }
  return { array: build(resolved, new Uint8Array(buffer), where, true) };
}

/**
 * Synchronous {@link readNpyMember}. Stored members of an in-memory source come back as views
 * into it where aligned and native-endian (as decodeNpy gives them), else as copies.
 */
export function readNpyMemberSync(source: ZipSourceSync, entry: ZipEntry, start: number, where: string, path: string, options: NpyReadOptions): MemberResult {
  const what = `member '${entry.name}'`;
  if (entry.method === 0) {
    const first = source.read(start, Math.min(entry.compressedSize, FIRST_HEAD), what);
    const end = npyHeaderEnd(first, entry.compressedSize, where, options);
    const prefix = end > first.length ? source.read(start, end, what) : first.subarray(0, end);
    const plan = planMember(prefix, entry.compressedSize, where, options);
    if ('pickle' in plan) return plan;
    const { resolved, needed } = plan;
    const { header } = resolved;
    const trailing = entry.compressedSize - needed;
    const check = trailing <= trailingBudget(needed);
    // One read of the member (or of its header and data) when it is in the CRC rule, as before.
    const bytes = check ? source.read(start, entry.compressedSize, what) : undefined;
    if (bytes) {
      checkCrc(entry, crc32(bytes), path);
      return { array: resolved.strings ? build(resolved, bytes.subarray(header.dataOffset, needed), where, false) : decodeNpy(bytes.subarray(0, needed), where, options) };
    }
    const data = source.read(start + header.dataOffset, header.dataLength, what);
    if (resolved.strings) return { array: build(resolved, data, where, false) };
    const whole = new Uint8Array(needed);
    whole.set(prefix);
    whole.set(data, header.dataOffset);
    return { array: decodeNpy(whole, where, options) };
  }
  const compressed = source.read(start, entry.compressedSize, what);
  let head = inflatePrefixSync(compressed, PREAMBLE, entry.name, path);
  if (head.length > entry.uncompressedSize) throw new TensorioError('ERR_BAD_ZIP', `member '${entry.name}' inflates to more than its declared ${entry.uncompressedSize} bytes`, { path });
  if (head.length < PREAMBLE && head.length < entry.uncompressedSize) throw mismatch(entry, head.length, path);
  const end = npyHeaderEnd(head, entry.uncompressedSize, where, options);
  if (head.length < end) head = inflatePrefixSync(compressed, end, entry.name, path);
  if (head.length < end) throw mismatch(entry, head.length, path);
  const prefix = head.subarray(0, end);
  const plan = planMember(prefix, entry.uncompressedSize, where, options);
  if ('pickle' in plan) return plan;
  const { resolved, needed } = plan;
  const { header } = resolved;
  const arrayOf = (bytes: Uint8Array): LoadedArray | StringArray =>
    resolved.strings ? build(resolved, bytes.subarray(header.dataOffset, needed), where, false) : decodeNpy(bytes.subarray(0, needed), where, options);
  if (entry.uncompressedSize - needed <= trailingBudget(needed)) {
    // Within the rule: the whole member in one inflate capped at its declared size, CRC-checked.
    const whole = inflateWholeSync(compressed, entry, path);
    checkCrc(entry, crc32(whole), path);
    return { array: arrayOf(whole) };
  }
  const out = head.length >= needed ? head : inflatePrefixSync(compressed, needed, entry.name, path);
  if (out.length < needed) throw mismatch(entry, out.length, path);
  return { array: arrayOf(out) };
}
