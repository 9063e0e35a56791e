/**
 * The HDF5 file format itself, as far as tensorio parses it: the superblock (address sizes,
 * base address, end of file), object headers and their messages (following continuations),
 * and the data layout message that says where a dataset's bytes are. Also the bounds check
 * of every structure read (over the one byte source, src/io/source.ts), and the normalisation
 * of paths inside a file.
 * Both structure readers (own-reader.ts, h5wasm.ts) and the writer (writer.ts) use it.
 */
import { TensorioError } from '../../errors.js';
import { closeQuietly, openForRead } from '../../io/read.js';
import { ByteSource } from '../../io/source.js';

// Just enough of the HDF5 file format to find a dataset's data: the superblock (for the
// size of addresses and the base address) and the object header's data layout message.
// Spec: "HDF5 File Format Specification Version 3.0", sections II.A, IV.A.1-2, IV.A.2.i.

const SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];
// Object header message types (spec IV.A.2).
export const MSG_DATASPACE = 0x01;
export const MSG_LINK_INFO = 0x02;
export const MSG_DATATYPE = 0x03;
export const MSG_LINK = 0x06;
export const MSG_EXTERNAL = 0x07;
export const MSG_LAYOUT = 0x08;
export const MSG_FILTERS = 0x0b;
export const MSG_ATTRIBUTE = 0x0c;
export const MSG_CONTINUATION = 0x10;
export const MSG_SYMBOL_TABLE = 0x11;
export const MSG_ATTRIBUTE_INFO = 0x15;
// A header larger than this is hostile: real ones are a few hundred bytes to a few KiB
// (attributes of 64 KiB live in dense storage outside the header).
const MAX_HEADER_BYTES = 16 << 20;
const MAX_CONTINUATIONS = 4096;

export interface Superblock {
  version: number;
  offsetSize: number;
  lengthSize: number;
  base: number;
  /** Absolute offset of the root group's object header. */
  rootAddress: number;
  /** The end-of-file address: the file's length as HDF5 wrote it. */
  end: number;
}

/** Where a dataset's bytes are. */
export type H5Storage =
  | { layout: 'contiguous'; offset: number; length: number }
  | { layout: 'compact'; offset: number; length: number }
  | { layout: 'chunked' | 'virtual' | 'external' | 'unallocated' | 'filtered' | 'unknown' };

/** A message found in an object header: its type and where its body is in the file. */
export interface HeaderMessage {
  type: number;
  offset: number;
  size: number;
}

/**
 * Checks that a structure a field of the file points at lies inside the file. HDF5 checks its
 * own fields before it reads: once the superblock's end-of-file address is known to fit the
 * file (else `ERR_TRUNCATED`), an offset or length outside the file is a bad header field,
 * `ERR_BAD_HEADER`, not a file cut short (the byte source's own bound, src/io/source.ts).
 */
export function checkInside(source: ByteSource, position: number, length: number, what: string): void {
  if (!source.contains(position, length)) {
    throw new TensorioError('ERR_BAD_HEADER', `the ${what} at offset ${position} (${length} bytes) lies outside the file of ${source.size} bytes`, { path: source.path });
  }
}

/** `length` bytes at `position` after {@link checkInside}: a view when the file is in memory. */
export function readStructure(source: ByteSource, position: number, length: number, what: string): Uint8Array {
  checkInside(source, position, length, what);
  return source.read(position, length, what);
}

export function readUint(bytes: Uint8Array, at: number, size: number, file: string): number {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < size; i++) {
    const byte = bytes[at + i];
    if (byte === undefined) throw new TensorioError('ERR_BAD_HEADER', `field at byte ${at} runs past its structure`, { path: file });
    value += byte * scale;
    scale *= 256;
  }
  return value;
}

export function isUndefinedAddress(bytes: Uint8Array, at: number, size: number): boolean {
  for (let i = 0; i < size; i++) if (bytes[at + i] !== 0xff) return false;
  return true;
}

export function readSuperblock(source: ByteSource, options: { allowShort?: boolean } = {}): Superblock {
  // The superblock sits at 0, 512, 1024, 2048, ... (after a user block).
  for (let at = 0; at + 64 <= source.size || at === 0; at = at === 0 ? 512 : at * 2) {
    if (at + 16 > source.size) {
      // Fewer bytes than a superblock's start: a file cut short if they begin the signature.
      if (at === 0 && readStructure(source, 0, Math.min(SIGNATURE.length, source.size), 'HDF5 signature').every((b, i) => b === SIGNATURE[i])) {
        throw new TensorioError('ERR_TRUNCATED', `the file ends after ${source.size} bytes, inside the HDF5 superblock`, { path: source.path });
      }
      break;
    }
    const head = readStructure(source, at, Math.min(128, source.size - at), 'HDF5 superblock');
    if (!SIGNATURE.every((b, i) => head[i] === b)) continue;
    const version = head[8] as number;
    let offsetSize: number;
    let lengthSize: number;
    let baseAt: number;
    if (version === 0 || version === 1) {
      offsetSize = head[13] as number;
      lengthSize = head[14] as number;
      baseAt = version === 0 ? 24 : 28;
    } else if (version === 2 || version === 3) {
      offsetSize = head[9] as number;
      lengthSize = head[10] as number;
      baseAt = 12;
    } else {
      throw new TensorioError('ERR_UNSUPPORTED_VERSION', `HDF5 superblock version ${version}; expected 0 to 3`, { path: source.path });
    }
    if (![2, 4, 8].includes(offsetSize) || ![2, 4, 8].includes(lengthSize)) {
      throw new TensorioError('ERR_BAD_HEADER', `HDF5 superblock declares ${offsetSize}-byte addresses and ${lengthSize}-byte lengths; expected 2, 4 or 8`, { path: source.path });
    }
    // v0/v1: base, free space, end of file, driver info, then the root's symbol table entry
    // (name offset, header address, cache type, reserved, 16 bytes of scratch); v2/v3: base,
    // extension, end of file, root header, checksum.
    const rootAt = version <= 1 ? baseAt + 5 * offsetSize : baseAt + 3 * offsetSize;
    const superblockEnd = version <= 1 ? rootAt + offsetSize + 24 : rootAt + offsetSize + 4;
    if (head.length < superblockEnd) {
      throw new TensorioError('ERR_TRUNCATED', `the file ends after ${source.size} bytes, inside the HDF5 superblock (${at + superblockEnd} bytes)`, { path: source.path });
    }
    const base = readUint(head, baseAt, offsetSize, source.path);
    // The end-of-file address counts from the start of the file (user block included, as
    // HDF5 writes it). HDF5 refuses a file shorter than it ("truncated file"), and so do we:
    // every structure and every byte of data lies below it.
    const eofAt = baseAt + 2 * offsetSize;
    if (isUndefinedAddress(head, eofAt, offsetSize)) throw new TensorioError('ERR_BAD_HEADER', 'the HDF5 superblock has no end-of-file address', { path: source.path });
    const end = readUint(head, eofAt, offsetSize, source.path);
    if (end > source.size && !options.allowShort) {
      throw new TensorioError('ERR_TRUNCATED', `the HDF5 superblock says the file holds ${end} bytes; it has ${source.size}`, { path: source.path });
    }
    const rootAddress = base + readUint(head, rootAt, offsetSize, source.path);
    return { version, offsetSize, lengthSize, base, rootAddress, end };
  }
  throw new TensorioError('ERR_BAD_MAGIC', 'no HDF5 superblock signature (\\x89HDF\\r\\n\\x1a\\n) at offset 0, 512, 1024, ...', { path: source.path });
}

/** Every message of the object header at `address` (absolute), following continuations. */
export function headerMessages(source: ByteSource, sb: Superblock, address: number): HeaderMessage[] {
  const messages: HeaderMessage[] = [];
  const first = readStructure(source, address, Math.min(16, source.size - address), 'object header');
  const blocks: { start: number; length: number; v2: boolean }[] = [];
  let v2 = false;
  if (first[0] === 1) {
    const headerSize = readUint(first, 8, 4, source.path);
    blocks.push({ start: address + 16, length: headerSize, v2: false });
  } else if (first[0] === 0x4f && first[1] === 0x48 && first[2] === 0x44 && first[3] === 0x52 && first[4] === 2) {
    v2 = true;
    const flags = first[5] as number;
    let at = 6;
    if (flags & 0x20) at += 16;
    if (flags & 0x10) at += 4;
    const sizeBytes = 1 << (flags & 3);
    const sizeField = readStructure(source, address + at, sizeBytes, 'object header');
    const chunkSize = readUint(sizeField, 0, sizeBytes, source.path);
    blocks.push({ start: address + at + sizeBytes, length: chunkSize, v2: true });
  } else {
    throw new TensorioError('ERR_BAD_HEADER', `object header at offset ${address}: expected version 1 or an OHDR signature, found byte ${String(first[0])}`, { path: source.path });
  }
  let total = 0;
  let continuations = 0;
  const creationOrder = v2 && ((first[5] as number) & 0x04) !== 0;
  while (blocks.length > 0) {
    const block = blocks.shift() as { start: number; length: number; v2: boolean };
    total += block.length;
    if (total > MAX_HEADER_BYTES) throw new TensorioError('ERR_HEADER_TOO_LARGE', `object header at offset ${address} exceeds ${MAX_HEADER_BYTES} bytes`, { path: source.path });
    const bytes = readStructure(source, block.start, block.length, 'object header');
    let at = 0;
    const headSize = block.v2 ? 4 + (creationOrder ? 2 : 0) : 8;
    while (at + headSize <= bytes.length) {
      const type = block.v2 ? (bytes[at] as number) : readUint(bytes, at, 2, source.path);
      const size = block.v2 ? readUint(bytes, at + 1, 2, source.path) : readUint(bytes, at + 2, 2, source.path);
      const body = at + headSize;
      if (body + size > bytes.length) {
        throw new TensorioError('ERR_BAD_HEADER', `object header message of ${size} bytes at offset ${block.start + at} runs past its block`, { path: source.path });
      }
      messages.push({ type, offset: block.start + body, size });
      if (type === MSG_CONTINUATION) {
        if (++continuations > MAX_CONTINUATIONS) throw new TensorioError('ERR_BAD_HEADER', 'too many object header continuations', { path: source.path });
        const target = sb.base + readUint(bytes, body, sb.offsetSize, source.path);
        const length = readUint(bytes, body + sb.offsetSize, sb.lengthSize, source.path);
        if (block.v2) {
          // OCHK signature before, checksum after the messages.
          blocks.push({ start: target + 4, length: Math.max(0, length - 8), v2: true });
        } else {
          blocks.push({ start: target, length, v2: false });
        }
      }
      at = body + size;
    }
  }
  return messages;
}

/** Where a dataset's bytes are, and its datatype message (rewritten for float16 writes). */
export interface Located {
  storage: H5Storage;
  datatypeMessage?: HeaderMessage;
}

/** Where the data of the dataset whose header is at `address` (relative to the base) lives. */
export function locateStorage(source: ByteSource, sb: Superblock, address: number): Located {
  return storageOf(source, sb, headerMessages(source, sb, sb.base + address));
}

export function storageOf(source: ByteSource, sb: Superblock, messages: HeaderMessage[]): Located {
  const datatypeMessage = messages.find((m) => m.type === MSG_DATATYPE);
  const withType = (storage: H5Storage) => (datatypeMessage ? { storage, datatypeMessage } : { storage });
  if (messages.some((m) => m.type === MSG_EXTERNAL)) return withType({ layout: 'external' });
  if (messages.some((m) => m.type === MSG_FILTERS)) return withType({ layout: 'filtered' });
  const layout = messages.find((m) => m.type === MSG_LAYOUT);
  if (!layout) return withType({ layout: 'unknown' });
  const body = readStructure(source, layout.offset, layout.size, 'data layout message');
  const version = body[0] as number;
  if (version === 3 || version === 4) {
    const cls = body[1] as number;
    if (cls === 0) {
      const length = readUint(body, 2, 2, source.path);
      return withType({ layout: 'compact', offset: layout.offset + 4, length });
    }
    if (cls === 1) {
      if (isUndefinedAddress(body, 2, sb.offsetSize)) return withType({ layout: 'unallocated' });
      const offset = sb.base + readUint(body, 2, sb.offsetSize, source.path);
      const length = readUint(body, 2 + sb.offsetSize, sb.lengthSize, source.path);
      return withType({ layout: 'contiguous', offset, length });
    }
    return withType({ layout: cls === 2 ? 'chunked' : cls === 3 ? 'virtual' : 'unknown' });
  }
  if (version === 1 || version === 2) {
    const rank = body[1] as number;
    const cls = body[2] as number;
    if (cls === 1) {
      if (isUndefinedAddress(body, 8, sb.offsetSize)) return withType({ layout: 'unallocated' });
      const offset = sb.base + readUint(body, 8, sb.offsetSize, source.path);
      // Versions 1-2 store no byte size: the dimensions, the last being the element size.
      let length = 1;
      for (let i = 0; i < rank; i++) length *= readUint(body, 8 + sb.offsetSize + 4 * i, 4, source.path);
      return withType({ layout: 'contiguous', offset, length });
    }
    if (cls === 0) {
      const at = 8 + 4 * rank;
      const length = readUint(body, at, 4, source.path);
      return withType({ layout: 'compact', offset: layout.offset + at + 4, length });
    }
    return withType({ layout: 'chunked' });
  }
  throw new TensorioError('ERR_UNSUPPORTED_VERSION', `data layout message version ${version}; expected 1 to 4`, { path: source.path });
}

// Paths inside a file: no leading or trailing slash ('' is the root group).

export function joinPath(group: string, name: string): string {
  return group === '' || group === '/' ? name : `${group.replace(/^\/+|\/+$/g, '')}/${name}`;
}

export function normalise(path: string): string {
  return path.replace(/^\/+|\/+$/g, '');
}

/** @internal Exposed for tests: the superblock and storage parser over a file. */
export function locateDatasetStorage(path: string, headerAddress: number): H5Storage {
  const { fd, size } = openForRead(path);
  try {
    const source = ByteSource.ofFile(fd, size, path);
    return locateStorage(source, readSuperblock(source), headerAddress).storage;
  } finally {
    closeQuietly(fd);
  }
}

