/**
 * Generic HDF5 through h5wasm (the HDF5 C library compiled to WebAssembly), with the bulk
 * data kept out of h5wasm's heap.
 *
 * h5wasm reads the file's structure (groups, attributes, dataset shapes and types). Its heap
 * is capped at 2 GiB, never shrinks, and its high-level API refuses float16, so dataset
 * payloads do not go through it when that can be avoided: for a contiguous, allocated,
 * unfiltered dataset we take the object header's address from an HDF5 object reference
 * (`hobj_ref_t` is that address), parse just enough of the header to find the data layout
 * message, and read or map the bytes with src/io.ts, the way h5py's
 * `dataset.id.get_offset()` allows. Chunked datasets are read by src/formats/hdf5/chunks.ts
 * from the same header; the few it does not cover go through h5wasm's low-level
 * `get_dataset_data`, which copies raw bytes converted to little-endian (float16 too).
 *
 * Writes build the file with h5wasm in the temporary file of an {@link AtomicWriter} next
 * to the target. Small datasets are written through the heap; a large one is created from
 * an uninitialised heap block (HDF5 insists on writing the whole dataset at creation), and
 * its real bytes are then written over that placeholder region with positioned writes
 * before the temporary file is renamed over the target. float16 datasets are created as uint16 and their datatype message is
 * rewritten in the final header, since h5wasm cannot create a 2-byte float type.
 */
import { checkOptions, OPTIONS } from '../options.js';
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { pathToFileURL } from 'node:url';

import { byteswap } from '../convert.js';
import { dtypeInfo, type DType, type DTypeInfo } from '../dtype.js';
import { TensorioError } from '../errors.js';
import {
  AtomicWriter,
  closeQuietly,
  mapFile,
  openForRead,
  readExactly,
  readExactlySync,
  type WriteOptions,
} from '../io.js';
import { asCOrder, bytesOf, shapeSize, validateNdArray, type LoadedArray, type NdArray } from '../ndarray.js';
import { readChunkedDataset } from './hdf5/chunks.js';
import { dtypeOfMetadata, H5T_COMPOUND, H5T_FLOAT, H5T_INTEGER, H5T_STRING, type H5Metadata } from './hdf5/types.js';
import { decodeExternalLink, externalLinkRead, type H5ExternalLink } from './hdf5/links.js';
import { insideDeadline, isDeadlineError, withDeadline } from './hdf5/deadline.js';
import { hdf5StackSummary, isHdf5Stack, releaseErrorFiles, throwHdf5Errors, withoutStderr, type ErrorHandlingModule } from './hdf5/h5wasm-errors.js';

// ---------------------------------------------------------------------------------------
// h5wasm, loaded lazily. It is an ES module; this package is CommonJS, and TypeScript keeps
// `import()` as a real dynamic import under module node16.

interface H5Module extends ErrorHandlingModule {
  HEAPU8: Uint8Array;
  _malloc(size: number): number;
  _free(ptr: number): void;
  MAXIMUM_MEMORY: number;
  get_dataset_metadata(fileId: bigint, path: string): H5Metadata;
  get_dataset_filters(fileId: bigint, path: string): { id: number; name: string }[];
  get_dataset_data(fileId: bigint, path: string, count: null, offset: null, strides: null, ptr: bigint): number;
  create_dataset(fileId: bigint, path: string, ptr: bigint, metadata: object): number;
  create_object_reference(fileId: bigint, path: string): Uint8Array;
  get_type(fileId: bigint, path: string): number;
  get_external_link(fileId: bigint, path: string): { filename?: string; obj_path?: string };
  H5O_TYPE_DATASET: number;
  H5O_TYPE_GROUP: number;
}

interface H5Group {
  file_id: bigint;
  path: string;
  keys(): string[];
  get(name: string): unknown;
  attrs: Record<string, { metadata: H5Metadata }>;
  get_attribute(name: string, json: false): unknown;
  create_attribute(name: string, data: unknown, shape?: number[] | null, dtype?: string | null): void;
  create_group(name: string): H5Group;
}

interface H5FileObject extends H5Group {
  close(): number;
}

interface H5Lib {
  File: new (filename: string, mode: 'r' | 'w', options?: { libver?: string | [string, string] }) => H5FileObject;
  Group: new (fileId: bigint, path: string) => H5Group;
  ready: Promise<H5Module>;
}

/** One instance of h5wasm; `generation` counts the instances replaced after a deadline. */
interface LoadedH5wasm {
  lib: H5Lib;
  module: H5Module;
  generation: number;
}

let h5Promise: Promise<LoadedH5wasm> | undefined;
/** h5wasm once loaded, for the synchronous readers (it can only be loaded asynchronously). */
let loadedH5wasm: LoadedH5wasm | undefined;
let h5wasmGeneration = 0;

/** Loads h5wasm once (a few hundred milliseconds: it compiles the WebAssembly module). */
export function loadH5wasm(): Promise<LoadedH5wasm> {
  if (!h5Promise) {
    const generation = h5wasmGeneration;
    const promise = (async () => {
      // After a reset, the same module file imported under a new URL is evaluated again, and
      // so instantiates a fresh WebAssembly module with a fresh HDF5 library state.
      const specifier = generation === 0 ? 'h5wasm/node' : `${h5wasmModuleUrl()}?instance=${generation}`;
      const imported = (await import(specifier)) as { default: H5Lib };
      const lib = imported.default;
      const module = await lib.ready;
      // HDF5 errors thrown, not printed to stderr and then ignored (src/formats/hdf5/h5wasm-errors.ts).
      throwHdf5Errors(module);
      const loaded = { lib, module, generation };
      if (generation === h5wasmGeneration) loadedH5wasm = loaded;
      return loaded;
    })();
    h5Promise = promise;
    // A failed load is not cached: the next call tries again.
    promise.catch(() => {
      if (h5Promise === promise) h5Promise = undefined;
    });
  }
  return h5Promise;
}

/** The file URL of h5wasm's Node entry point (its package exports it to `import` only). */
function h5wasmModuleUrl(): string {
  for (const folder of require.resolve.paths('h5wasm') ?? []) {
    const file = nodePath.join(folder, 'h5wasm', 'dist', 'node', 'hdf5_hl.js');
    if (fs.existsSync(file)) return pathToFileURL(file).href;
  }
  throw new TensorioError('ERR_NEEDS_H5WASM', 'cannot find the h5wasm package to load a fresh instance of it');
}

/**
 * Retires the h5wasm instance after an operation on it was stopped at its deadline: HDF5's
 * state inside it may be half-updated, so nothing reads through it again. The next load
 * (`h5wasmReady()`, or an asynchronous reader that needs h5wasm) makes a fresh instance.
 */
function retireH5wasm(generation: number): void {
  if (generation !== h5wasmGeneration) return;
  h5wasmGeneration++;
  h5Promise = undefined;
  loadedH5wasm = undefined;
}

/** Default {@link H5ReadOptions.h5wasmTimeoutMs}. */
export const H5WASM_TIMEOUT_MS = 60_000;

/**
 * Loads h5wasm now. The asynchronous HDF5 readers load it when a file needs it; the
 * synchronous ones (`readH5Sync`, `readKerasWeightsSync`) cannot, so await this once before
 * using them on files tensorio's own structure reader does not cover (superblock v2/v3,
 * dense link or attribute storage) or on chunked and compressed datasets.
 */
export async function h5wasmReady(): Promise<void> {
  await loadH5wasm();
}

function h5wasmNeeded(file: string, inMemory: boolean, why: string): TensorioError {
  if (inMemory) {
    return new TensorioError('ERR_NEEDS_H5WASM', `${why}, which needs h5wasm, and h5wasm reads only files: write the bytes to a file and read that`, { path: file });
  }
  return new TensorioError('ERR_NEEDS_H5WASM', `${why}, which needs h5wasm; it loads asynchronously, so await h5wasmReady() once before synchronous HDF5 reads, or use the asynchronous reader`, { path: file });
}

function loadedH5wasmOrThrow(file: string, inMemory: boolean, why: string): LoadedH5wasm {
  if (inMemory || !loadedH5wasm) throw h5wasmNeeded(file, inMemory, why);
  return loadedH5wasm;
}

// ---------------------------------------------------------------------------------------
// Just enough of the HDF5 file format to find a dataset's data: the superblock (for the
// size of addresses and the base address) and the object header's data layout message.
// Spec: "HDF5 File Format Specification Version 3.0", sections II.A, IV.A.1-2, IV.A.2.i.

const SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];
// Object header message types (spec IV.A.2).
const MSG_DATASPACE = 0x01;
const MSG_LINK_INFO = 0x02;
const MSG_DATATYPE = 0x03;
const MSG_LINK = 0x06;
const MSG_EXTERNAL = 0x07;
const MSG_LAYOUT = 0x08;
const MSG_FILTERS = 0x0b;
const MSG_ATTRIBUTE = 0x0c;
const MSG_CONTINUATION = 0x10;
const MSG_SYMBOL_TABLE = 0x11;
const MSG_ATTRIBUTE_INFO = 0x15;
// A header larger than this is hostile: real ones are a few hundred bytes to a few KiB
// (attributes of 64 KiB live in dense storage outside the header).
const MAX_HEADER_BYTES = 16 << 20;
const MAX_CONTINUATIONS = 4096;

interface Superblock {
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
interface HeaderMessage {
  type: number;
  offset: number;
  size: number;
}

/**
 * The bytes of an HDF5 file: an open file (read with positioned reads) or a buffer in
 * memory (an archive member). Every read is bounds-checked against the real size, so a
 * hostile offset or length is refused before anything is allocated.
 */
class ByteSource {
  private constructor(
    /** The open file, or null for bytes in memory. */
    readonly fd: number | null,
    private readonly memory: Uint8Array | null,
    readonly size: number,
    readonly file: string,
  ) {}

  static ofFile(fd: number, size: number, file: string): ByteSource {
    return new ByteSource(fd, null, size, file);
  }

  static ofBytes(bytes: Uint8Array, file: string): ByteSource {
    return new ByteSource(null, bytes, bytes.length, file);
  }

  private check(position: number, length: number, what: string): void {
    if (!Number.isSafeInteger(position) || position < 0 || length < 0 || position + length > this.size) {
      throw new TensorioError('ERR_BAD_HEADER', `the ${what} at offset ${position} (${length} bytes) lies outside the file of ${this.size} bytes`, { path: this.file });
    }
  }

  read(position: number, length: number, what: string): Uint8Array {
    this.check(position, length, what);
    const bytes = new Uint8Array(length);
    this.fill(position, bytes, what);
    return bytes;
  }

  /** Fills `target` from `position`; a short file is `ERR_TRUNCATED`. */
  readInto(position: number, target: ArrayBufferView, what: string): void {
    this.check(position, target.byteLength, what);
    this.fill(position, new Uint8Array(target.buffer, target.byteOffset, target.byteLength), what);
  }

  /** {@link readInto} on the thread pool (in parallel parts when large) for a file. */
  async readIntoAsync(position: number, target: ArrayBufferView, what: string): Promise<void> {
    if (this.fd === null) return this.readInto(position, target, what);
    this.check(position, target.byteLength, what);
    await readExactly(this.fd, position, target, this.file, what);
  }

  private fill(position: number, bytes: Uint8Array, what: string): void {
    if (this.memory) bytes.set(this.memory.subarray(position, position + bytes.length));
    else readExactlySync(this.fd as number, position, bytes, this.file, what);
  }
}

function readUint(bytes: Uint8Array, at: number, size: number, file: string): number {
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

function isUndefinedAddress(bytes: Uint8Array, at: number, size: number): boolean {
  for (let i = 0; i < size; i++) if (bytes[at + i] !== 0xff) return false;
  return true;
}

function readSuperblock(source: ByteSource, options: { allowShort?: boolean } = {}): Superblock {
  // The superblock sits at 0, 512, 1024, 2048, ... (after a user block).
  for (let at = 0; at + 64 <= source.size || at === 0; at = at === 0 ? 512 : at * 2) {
    if (at + 16 > source.size) {
      // Fewer bytes than a superblock's start: a file cut short if they begin the signature.
      if (at === 0 && source.read(0, Math.min(SIGNATURE.length, source.size), 'HDF5 signature').every((b, i) => b === SIGNATURE[i])) {
        throw new TensorioError('ERR_TRUNCATED', `the file ends after ${source.size} bytes, inside the HDF5 superblock`, { path: source.file });
      }
      break;
    }
    const head = source.read(at, Math.min(128, source.size - at), 'HDF5 superblock');
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
      throw new TensorioError('ERR_UNSUPPORTED_VERSION', `HDF5 superblock version ${version}; expected 0 to 3`, { path: source.file });
    }
    if (![2, 4, 8].includes(offsetSize) || ![2, 4, 8].includes(lengthSize)) {
      throw new TensorioError('ERR_BAD_HEADER', `HDF5 superblock declares ${offsetSize}-byte addresses and ${lengthSize}-byte lengths; expected 2, 4 or 8`, { path: source.file });
    }
    // v0/v1: base, free space, end of file, driver info, then the root's symbol table entry
    // (name offset, header address, cache type, reserved, 16 bytes of scratch); v2/v3: base,
    // extension, end of file, root header, checksum.
    const rootAt = version <= 1 ? baseAt + 5 * offsetSize : baseAt + 3 * offsetSize;
    const superblockEnd = version <= 1 ? rootAt + offsetSize + 24 : rootAt + offsetSize + 4;
    if (head.length < superblockEnd) {
      throw new TensorioError('ERR_TRUNCATED', `the file ends after ${source.size} bytes, inside the HDF5 superblock (${at + superblockEnd} bytes)`, { path: source.file });
    }
    const base = readUint(head, baseAt, offsetSize, source.file);
    // The end-of-file address counts from the start of the file (user block included, as
    // HDF5 writes it). HDF5 refuses a file shorter than it ("truncated file"), and so do we:
    // every structure and every byte of data lies below it.
    const eofAt = baseAt + 2 * offsetSize;
    if (isUndefinedAddress(head, eofAt, offsetSize)) throw new TensorioError('ERR_BAD_HEADER', 'the HDF5 superblock has no end-of-file address', { path: source.file });
    const end = readUint(head, eofAt, offsetSize, source.file);
    if (end > source.size && !options.allowShort) {
      throw new TensorioError('ERR_TRUNCATED', `the HDF5 superblock says the file holds ${end} bytes; it has ${source.size}`, { path: source.file });
    }
    const rootAddress = base + readUint(head, rootAt, offsetSize, source.file);
    return { version, offsetSize, lengthSize, base, rootAddress, end };
  }
  throw new TensorioError('ERR_BAD_MAGIC', 'no HDF5 superblock signature (\\x89HDF\\r\\n\\x1a\\n) at offset 0, 512, 1024, ...', { path: source.file });
}

/** Every message of the object header at `address` (absolute), following continuations. */
function headerMessages(source: ByteSource, sb: Superblock, address: number): HeaderMessage[] {
  const messages: HeaderMessage[] = [];
  const first = source.read(address, Math.min(16, source.size - address), 'object header');
  const blocks: { start: number; length: number; v2: boolean }[] = [];
  let v2 = false;
  if (first[0] === 1) {
    const headerSize = readUint(first, 8, 4, source.file);
    blocks.push({ start: address + 16, length: headerSize, v2: false });
  } else if (first[0] === 0x4f && first[1] === 0x48 && first[2] === 0x44 && first[3] === 0x52 && first[4] === 2) {
    v2 = true;
    const flags = first[5] as number;
    let at = 6;
    if (flags & 0x20) at += 16;
    if (flags & 0x10) at += 4;
    const sizeBytes = 1 << (flags & 3);
    const sizeField = source.read(address + at, sizeBytes, 'object header');
    const chunkSize = readUint(sizeField, 0, sizeBytes, source.file);
    blocks.push({ start: address + at + sizeBytes, length: chunkSize, v2: true });
  } else {
    throw new TensorioError('ERR_BAD_HEADER', `object header at offset ${address}: expected version 1 or an OHDR signature, found byte ${String(first[0])}`, { path: source.file });
  }
  let total = 0;
  let continuations = 0;
  const creationOrder = v2 && ((first[5] as number) & 0x04) !== 0;
  while (blocks.length > 0) {
    const block = blocks.shift() as { start: number; length: number; v2: boolean };
    total += block.length;
    if (total > MAX_HEADER_BYTES) throw new TensorioError('ERR_HEADER_TOO_LARGE', `object header at offset ${address} exceeds ${MAX_HEADER_BYTES} bytes`, { path: source.file });
    const bytes = source.read(block.start, block.length, 'object header');
    let at = 0;
    const headSize = block.v2 ? 4 + (creationOrder ? 2 : 0) : 8;
    while (at + headSize <= bytes.length) {
      const type = block.v2 ? (bytes[at] as number) : readUint(bytes, at, 2, source.file);
      const size = block.v2 ? readUint(bytes, at + 1, 2, source.file) : readUint(bytes, at + 2, 2, source.file);
      const body = at + headSize;
      if (body + size > bytes.length) {
        throw new TensorioError('ERR_BAD_HEADER', `object header message of ${size} bytes at offset ${block.start + at} runs past its block`, { path: source.file });
      }
      messages.push({ type, offset: block.start + body, size });
      if (type === MSG_CONTINUATION) {
        if (++continuations > MAX_CONTINUATIONS) throw new TensorioError('ERR_BAD_HEADER', 'too many object header continuations', { path: source.file });
        const target = sb.base + readUint(bytes, body, sb.offsetSize, source.file);
        const length = readUint(bytes, body + sb.offsetSize, sb.lengthSize, source.file);
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
interface Located {
  storage: H5Storage;
  datatypeMessage?: HeaderMessage;
}

/** Where the data of the dataset whose header is at `address` (relative to the base) lives. */
function locateStorage(source: ByteSource, sb: Superblock, address: number): Located {
  return storageOf(source, sb, headerMessages(source, sb, sb.base + address));
}

function storageOf(source: ByteSource, sb: Superblock, messages: HeaderMessage[]): Located {
  const datatypeMessage = messages.find((m) => m.type === MSG_DATATYPE);
  const withType = (storage: H5Storage) => (datatypeMessage ? { storage, datatypeMessage } : { storage });
  if (messages.some((m) => m.type === MSG_EXTERNAL)) return withType({ layout: 'external' });
  if (messages.some((m) => m.type === MSG_FILTERS)) return withType({ layout: 'filtered' });
  const layout = messages.find((m) => m.type === MSG_LAYOUT);
  if (!layout) return withType({ layout: 'unknown' });
  const body = source.read(layout.offset, layout.size, 'data layout message');
  const version = body[0] as number;
  if (version === 3 || version === 4) {
    const cls = body[1] as number;
    if (cls === 0) {
      const length = readUint(body, 2, 2, source.file);
      return withType({ layout: 'compact', offset: layout.offset + 4, length });
    }
    if (cls === 1) {
      if (isUndefinedAddress(body, 2, sb.offsetSize)) return withType({ layout: 'unallocated' });
      const offset = sb.base + readUint(body, 2, sb.offsetSize, source.file);
      const length = readUint(body, 2 + sb.offsetSize, sb.lengthSize, source.file);
      return withType({ layout: 'contiguous', offset, length });
    }
    return withType({ layout: cls === 2 ? 'chunked' : cls === 3 ? 'virtual' : 'unknown' });
  }
  if (version === 1 || version === 2) {
    const rank = body[1] as number;
    const cls = body[2] as number;
    if (cls === 1) {
      if (isUndefinedAddress(body, 8, sb.offsetSize)) return withType({ layout: 'unallocated' });
      const offset = sb.base + readUint(body, 8, sb.offsetSize, source.file);
      // Versions 1-2 store no byte size: the dimensions, the last being the element size.
      let length = 1;
      for (let i = 0; i < rank; i++) length *= readUint(body, 8 + sb.offsetSize + 4 * i, 4, source.file);
      return withType({ layout: 'contiguous', offset, length });
    }
    if (cls === 0) {
      const at = 8 + 4 * rank;
      const length = readUint(body, at, 4, source.file);
      return withType({ layout: 'compact', offset: layout.offset + at + 4, length });
    }
    return withType({ layout: 'chunked' });
  }
  throw new TensorioError('ERR_UNSUPPORTED_VERSION', `data layout message version ${version}; expected 1 to 4`, { path: source.file });
}

// ---------------------------------------------------------------------------------------
// A structure reader for the files Keras and h5py write (superblock v0/v1, symbol-table
// groups, attributes in the object header, contiguous or compact datasets), so opening
// such a file does not need h5wasm at all: loading h5wasm costs about 0.4 s (it compiles
// the HDF5 library) and 80 MiB, more than reading a small model. Anything else (dense
// link or attribute storage, soft or external links, newer superblocks, compound or enum
// types, ...) makes buildLiteIndex return null and h5wasm reads the file instead.

/**
 * How many paths a walk of a file may visit. Every link takes at least 16 bytes of the file
 * (a 40-byte symbol table entry, or a link message with its 4-byte header, a name and an
 * address), so more paths than that can only come from hard links that fan out (a group
 * linked twice from its parent, and so on down: 2^40 paths in 50 KiB), which would make any
 * walk of the whole tree run for ever.
 */
function pathBudget(fileSize: number): number {
  return Math.max(64, Math.floor(fileSize / 16));
}

function tooManyPaths(file: string, fileSize: number): TensorioError {
  return new TensorioError('ERR_BAD_HEADER', `the file links more than ${pathBudget(fileSize)} paths in ${fileSize} bytes: hard links that fan out`, { path: file });
}

class LiteUnsupported extends Error {}

interface LiteType {
  cls: number;
  size: number;
  bigEndian: boolean;
  signed: boolean;
  /** Strings: true for variable length. */
  vlen: boolean;
  /** Strings: padding (0 null-terminated, 1 null-padded, 2 space-padded). */
  pad: number;
}

interface LiteSpace {
  /** null for a null dataspace. */
  shape: number[] | null;
}

interface LiteAttribute {
  type: LiteType;
  space: LiteSpace;
  /** File offset and length of the raw value. */
  offset: number;
  length: number;
}

interface LiteObject {
  kind: 'group' | 'dataset' | 'other' | 'external';
  /** An external link's target. */
  link?: H5ExternalLink;
  messages: HeaderMessage[];
  attributes: Map<string, LiteAttribute>;
  children?: string[];
}

/** Every object of a file by path ('' is the root), or null when h5wasm must read it. */
type LiteIndex = Map<string, LiteObject>;

function parseLiteType(bytes: Uint8Array, file: string): LiteType {
  const b0 = bytes[0] as number;
  const cls = b0 & 0x0f;
  const bits = bytes[1] as number;
  const size = readUint(bytes, 4, 4, file);
  if (cls === H5T_INTEGER) return { cls, size, bigEndian: (bits & 1) === 1, signed: (bits & 8) === 8, vlen: false, pad: 0 };
  if (cls === H5T_FLOAT) {
    if (bits & 0x40) throw new LiteUnsupported('VAX float');
    return { cls, size, bigEndian: (bits & 1) === 1, signed: true, vlen: false, pad: 0 };
  }
  if (cls === H5T_STRING) return { cls, size, bigEndian: false, signed: false, vlen: false, pad: bits & 0x0f };
  if (cls === 9 && (bits & 0x0f) === 1) return { cls: H5T_STRING, size, bigEndian: false, signed: false, vlen: true, pad: (bits >> 4) & 0x0f };
  throw new LiteUnsupported(`datatype class ${cls}`);
}

function parseLiteSpace(bytes: Uint8Array, sb: Superblock, file: string): LiteSpace {
  const version = bytes[0] as number;
  const rank = bytes[1] as number;
  let at: number;
  if (version === 1) {
    at = 8;
  } else if (version === 2) {
    const type = bytes[3] as number;
    if (type === 2) return { shape: null };
    at = 4;
  } else {
    throw new LiteUnsupported(`dataspace version ${version}`);
  }
  const shape: number[] = [];
  for (let i = 0; i < rank; i++) shape.push(readUint(bytes, at + i * sb.lengthSize, sb.lengthSize, file));
  return { shape };
}

/**
 * Link and attribute info messages: version, flags, an optional field (creation order
 * index: 8 bytes for links, 2 for attributes), then the fractal heap address, undefined
 * unless the links or attributes are in dense storage, which this reader does not follow.
 */
function requireCompactStorage(source: ByteSource, sb: Superblock, m: HeaderMessage, what: string, optionalBytes: number): void {
  const body = source.read(m.offset, m.size, `${what} info message`);
  const at = 2 + ((body[1] as number) & 1 ? optionalBytes : 0);
  if (!isUndefinedAddress(body, at, sb.offsetSize)) throw new LiteUnsupported(`dense ${what} storage`);
}

function liteAttributes(source: ByteSource, sb: Superblock, messages: HeaderMessage[]): Map<string, LiteAttribute> {
  const out = new Map<string, LiteAttribute>();
  for (const m of messages) {
    if (m.type === MSG_ATTRIBUTE_INFO) requireCompactStorage(source, sb, m, 'attribute', 2);
    if (m.type !== MSG_ATTRIBUTE) continue;
    const body = source.read(m.offset, m.size, 'attribute message');
    const version = body[0] as number;
    if (version < 1 || version > 3) throw new LiteUnsupported(`attribute message version ${version}`);
    const nameSize = readUint(body, 2, 2, source.file);
    const typeSize = readUint(body, 4, 2, source.file);
    const spaceSize = readUint(body, 6, 2, source.file);
    if (version === 3 && body[8] !== 0 && body[8] !== 1) throw new LiteUnsupported('attribute name encoding');
    const pad = (n: number) => (version === 1 ? Math.ceil(n / 8) * 8 : n);
    let at = version === 3 ? 9 : 8;
    const nameBytes = body.subarray(at, at + nameSize);
    const nul = nameBytes.indexOf(0);
    const name = Buffer.from(nul >= 0 ? nameBytes.subarray(0, nul) : nameBytes).toString('utf8');
    at += pad(nameSize);
    if (version >= 2 && (body[1] as number) & 3) throw new LiteUnsupported('shared attribute datatype');
    const type = parseLiteType(body.subarray(at, at + typeSize), source.file);
    at += pad(typeSize);
    const space = parseLiteSpace(body.subarray(at, at + spaceSize), sb, source.file);
    at += pad(spaceSize);
    if (at > body.length) throw new TensorioError('ERR_BAD_HEADER', `attribute '${name}' runs past its message`, { path: source.file });
    out.set(name, { type, space, offset: m.offset + at, length: body.length - at });
  }
  return out;
}

/** The children (name → header address) of an old-style group: B-tree v1 → SNOD → local heap. */
function symbolTableChildren(source: ByteSource, sb: Superblock, body: Uint8Array): [string, number][] {
  const btree = sb.base + readUint(body, 0, sb.offsetSize, source.file);
  const heapAddress = sb.base + readUint(body, sb.offsetSize, sb.offsetSize, source.file);
  const heap = source.read(heapAddress, 8 + 2 * sb.lengthSize + sb.offsetSize, 'local heap');
  if (Buffer.from(heap.subarray(0, 4)).toString('latin1') !== 'HEAP') throw new TensorioError('ERR_BAD_HEADER', `no local heap signature at offset ${heapAddress}`, { path: source.file });
  const heapSize = readUint(heap, 8, sb.lengthSize, source.file);
  const heapData = source.read(sb.base + readUint(heap, 8 + 2 * sb.lengthSize, sb.offsetSize, source.file), heapSize, 'local heap data');
  const out: [string, number][] = [];
  const seen = new Set<number>();
  const visitNode = (address: number, depth: number): void => {
    if (depth > 64 || seen.has(address)) throw new TensorioError('ERR_BAD_HEADER', 'the group B-tree has a cycle', { path: source.file });
    seen.add(address);
    const head = source.read(address, 8 + 2 * sb.offsetSize, 'group B-tree node');
    const signature = Buffer.from(head.subarray(0, 4)).toString('latin1');
    if (signature === 'SNOD') {
      const count = readUint(head, 6, 2, source.file);
      const entrySize = 2 * sb.offsetSize + 24;
      const entries = source.read(address + 8, count * entrySize, 'symbol table node');
      for (let i = 0; i < count; i++) {
        const at = i * entrySize;
        const nameOffset = readUint(entries, at, sb.offsetSize, source.file);
        const header = readUint(entries, at + sb.offsetSize, sb.offsetSize, source.file);
        const cacheType = readUint(entries, at + 2 * sb.offsetSize, 4, source.file);
        if (cacheType === 2) throw new LiteUnsupported('soft link');
        const end = heapData.indexOf(0, nameOffset);
        if (nameOffset >= heapData.length || end < 0) throw new TensorioError('ERR_BAD_HEADER', 'a link name lies outside the local heap', { path: source.file });
        out.push([Buffer.from(heapData.subarray(nameOffset, end)).toString('utf8'), sb.base + header]);
      }
      return;
    }
    if (signature !== 'TREE' || head[4] !== 0) throw new TensorioError('ERR_BAD_HEADER', `expected a group B-tree node at offset ${address}`, { path: source.file });
    const entries = readUint(head, 6, 2, source.file);
    const keyed = source.read(address + 8 + 2 * sb.offsetSize, (entries + 1) * sb.lengthSize + entries * sb.offsetSize, 'group B-tree node');
    for (let i = 0; i < entries; i++) {
      const child = readUint(keyed, sb.lengthSize + i * (sb.lengthSize + sb.offsetSize), sb.offsetSize, source.file);
      visitNode(sb.base + child, depth + 1);
    }
  };
  visitNode(btree, 0);
  return out;
}

/** The hard links of a new-style compact group (link messages in its header). */
function linkMessageChildren(source: ByteSource, sb: Superblock, messages: HeaderMessage[], group: string): [string, number | H5ExternalLink][] {
  const out: [string, number | H5ExternalLink][] = [];
  for (const m of messages) {
    if (m.type === MSG_LINK_INFO) requireCompactStorage(source, sb, m, 'link', 8);
    if (m.type !== MSG_LINK) continue;
    const body = source.read(m.offset, m.size, 'link message');
    const flags = body[1] as number;
    let at = 2;
    let linkType = 0;
    if (flags & 0x08) linkType = body[at++] as number;
    if (flags & 0x04) at += 8;
    if (flags & 0x10) at += 1;
    const lengthSize = 1 << (flags & 3);
    const nameLength = readUint(body, at, lengthSize, source.file);
    at += lengthSize;
    const name = Buffer.from(body.subarray(at, at + nameLength)).toString('utf8');
    at += nameLength;
    if (linkType === 64) out.push([name, decodeExternalLink(body.subarray(at + 2, at + 2 + readUint(body, at, 2, source.file)), joinPath(group, name), source.file)]);
    else if (linkType !== 0) throw new LiteUnsupported('soft or user-defined link');
    else out.push([name, sb.base + readUint(body, at, sb.offsetSize, source.file)]);
  }
  // HDF5 (and so h5py and h5wasm) lists links by name unless asked for creation order.
  return out.sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

/** Walks the whole file from the root group; null when h5wasm is needed. */
function buildLiteIndex(source: ByteSource, sb: Superblock): LiteIndex | null {
  if (sb.version > 1) return null;
  const index: LiteIndex = new Map();
  try {
    const visit = (path: string, address: number, depth: number): void => {
      if (index.size >= pathBudget(source.size)) throw tooManyPaths(source.file, source.size);
      if (depth > 64) throw new LiteUnsupported('a hard-link cycle');
      const messages = headerMessages(source, sb, address);
      const attributes = liteAttributes(source, sb, messages);
      const table = messages.find((m) => m.type === MSG_SYMBOL_TABLE);
      const isGroup = table !== undefined || messages.some((m) => m.type === MSG_LINK_INFO || m.type === MSG_LINK || m.type === 0x0a);
      if (isGroup) {
        const children = table ? symbolTableChildren(source, sb, source.read(table.offset, table.size, 'symbol table message')) : linkMessageChildren(source, sb, messages, path);
        index.set(path, { kind: 'group', messages, attributes, children: children.map(([name]) => name) });
        for (const [name, child] of children) {
          if (typeof child === 'number') visit(path === '' ? name : `${path}/${name}`, child, depth + 1);
          else index.set(child.path, { kind: 'external', messages: [], attributes: new Map(), link: child });
        }
        return;
      }
      if (messages.some((m) => m.type === MSG_LAYOUT)) {
        const typeMessage = messages.find((m) => m.type === MSG_DATATYPE);
        if (!typeMessage) throw new TensorioError('ERR_BAD_HEADER', `dataset '${path}' has no datatype message`, { path: source.file });
        parseLiteType(source.read(typeMessage.offset, typeMessage.size, 'datatype message'), source.file);
        // Parsed now, so a dataspace this reader does not know hands the file to h5wasm
        // rather than failing later in info().
        const spaceMessage = messages.find((m) => m.type === MSG_DATASPACE);
        if (spaceMessage) parseLiteSpace(source.read(spaceMessage.offset, spaceMessage.size, 'dataspace message'), sb, source.file);
        index.set(path, { kind: 'dataset', messages, attributes });
        return;
      }
      index.set(path, { kind: 'other', messages, attributes });
    };
    visit('', sb.rootAddress, 0);
    return index;
  } catch (error) {
    if (error instanceof LiteUnsupported) return null;
    throw error;
  }
}

/** Reads a variable-length string from the global heap. */
function globalHeapString(source: ByteSource, sb: Superblock, collection: number, objectIndex: number, cache: Map<number, Uint8Array>): Uint8Array {
  let bytes = cache.get(collection);
  if (!bytes) {
    const head = source.read(collection, 8 + sb.lengthSize, 'global heap collection');
    if (Buffer.from(head.subarray(0, 4)).toString('latin1') !== 'GCOL') throw new TensorioError('ERR_BAD_HEADER', `no global heap signature at offset ${collection}`, { path: source.file });
    bytes = source.read(collection, readUint(head, 8, sb.lengthSize, source.file), 'global heap collection');
    cache.set(collection, bytes);
  }
  let at = 8 + sb.lengthSize;
  while (at + 8 + sb.lengthSize <= bytes.length) {
    const index = readUint(bytes, at, 2, source.file);
    const size = readUint(bytes, at + 8, sb.lengthSize, source.file);
    const data = at + 8 + sb.lengthSize;
    if (index === objectIndex) {
      if (data + size > bytes.length) break;
      return bytes.subarray(data, data + size);
    }
    if (index === 0) break;
    at = data + Math.ceil(size / 8) * 8;
  }
  throw new TensorioError('ERR_BAD_HEADER', `global heap object ${objectIndex} not found in the collection at ${collection}`, { path: source.file });
}

function liteAttributeValue(source: ByteSource, sb: Superblock, attr: LiteAttribute, name: string, cache: Map<number, Uint8Array>): H5AttributeValue {
  const { type, space } = attr;
  if (space.shape === null) return null;
  const count = shapeSize(space.shape, source.file);
  if (type.cls === H5T_STRING) {
    const strings: string[] = [];
    const element = type.vlen ? 4 + sb.offsetSize + 4 : type.size;
    if (count * element > attr.length) throw new TensorioError('ERR_BAD_HEADER', `attribute '${name}' holds fewer bytes than its ${count} strings need`, { path: source.file });
    const raw = source.read(attr.offset, count * element, 'attribute value');
    for (let i = 0; i < count; i++) {
      let bytes: Uint8Array;
      if (type.vlen) {
        const at = i * element;
        const length = readUint(raw, at, 4, source.file);
        bytes = length === 0 ? new Uint8Array(0) : globalHeapString(source, sb, sb.base + readUint(raw, at + 4, sb.offsetSize, source.file), readUint(raw, at + 4 + sb.offsetSize, 4, source.file), cache).subarray(0, length);
      } else {
        bytes = raw.subarray(i * element, (i + 1) * element);
        const nul = bytes.indexOf(0);
        if (nul >= 0) bytes = bytes.subarray(0, nul);
      }
      let text = Buffer.from(bytes).toString('utf8');
      if (!type.vlen && type.pad === 2) text = text.replace(/ +$/, '');
      strings.push(text);
    }
    return space.shape.length === 0 ? (strings[0] as string) : strings;
  }
  const info = dtypeOfMetadata({ type: type.cls, size: type.size, signed: type.signed, littleEndian: !type.bigEndian, vlen: false, shape: space.shape, total_size: count, chunks: null });
  if (!info) throw new TensorioError('ERR_UNSUPPORTED_DTYPE', `attribute '${name}' has an HDF5 type tensorio does not read`, { path: source.file });
  if (count * info.itemSize > attr.length) throw new TensorioError('ERR_BAD_HEADER', `attribute '${name}' holds fewer bytes than its shape needs`, { path: source.file });
  const data = new info.array(count * info.lanes);
  source.readInto(attr.offset, data, 'attribute value');
  if (type.bigEndian) byteswap(data, info.swapSize);
  if (space.shape.length === 0) {
    const value = data[0] as number | bigint;
    return value;
  }
  return { dtype: info.name, shape: [...space.shape], data };
}

// ---------------------------------------------------------------------------------------
// Reading

/** Options for reading HDF5 datasets. */
export interface H5ReadOptions {
  /**
   * Map the file and return views into the mapping for contiguous little-endian datasets
   * whose offset is aligned for their dtype. Default false (each dataset is read into its
   * own ArrayBuffer). Anything that cannot be mapped is read, with `copyReason` saying why.
   */
  mmap?: boolean;
  /**
   * Read the file's structure with h5wasm even when tensorio's own reader could (files
   * with superblock v0/v1, symbol-table groups and plain types, as Keras and h5py write).
   * Default false. Chunked data is read by tensorio's chunk reader either way (see src/formats/hdf5/chunks.ts).
   */
  h5wasm?: boolean;
  /**
   * The longest h5wasm may work on one open file, in ms, over all its operations (opening
   * it, listing groups, reading attributes and datasets). HDF5 loops forever on some damaged
   * files, and can be slow on every call of others; past this the operation is stopped with
   * `ERR_TIMEOUT`, and an h5wasm instance stopped mid-call is retired (see `ERR_TIMEOUT` in the
   * README). Default {@link H5WASM_TIMEOUT_MS} (60 s); `Infinity` for no limit (for long reads
   * of large chunked or compressed files). Files tensorio's own reader walks do not count it.
   */
  h5wasmTimeoutMs?: number;
}

/** What {@link H5File.info} tells about a dataset. */
export interface H5DatasetInfo {
  /** Full path, without the leading slash. */
  path: string;
  /** The tensorio dtype, or null when the dataset is not a numeric array (strings, ...). */
  dtype: DType | null;
  /** The shape; null for an HDF5 null dataspace (no elements, not even a scalar). */
  shape: number[] | null;
  /** True when the stored bytes are big-endian. */
  bigEndian: boolean;
  /** Where the bytes are: `contiguous` datasets are read or mapped without h5wasm. */
  storage: H5Storage;
}

type ObjectKind = 'group' | 'dataset' | 'other' | 'external' | 'missing';

/** An attribute's value as tensorio returns it: strings, numbers, or an NdArray. */
export type H5AttributeValue = string | string[] | number | bigint | boolean | NdArray | null;

function joinPath(group: string, name: string): string {
  return group === '' || group === '/' ? name : `${group.replace(/^\/+|\/+$/g, '')}/${name}`;
}

function normalise(path: string): string {
  return path.replace(/^\/+|\/+$/g, '');
}

/**
 * An HDF5 file open for reading; see {@link openH5}. Datasets are read one at a time, so a
 * file larger than memory can be processed dataset by dataset.
 */
export class H5File {
  private closed = false;
  private mapping: ArrayBuffer | undefined;
  private mappingReason: string | undefined;
  private readonly infos = new Map<string, H5DatasetInfo>();
  private readonly kinds = new Map<string, ObjectKind>();
  private readonly children = new Map<string, string[]>();
  private readonly heapCache = new Map<number, Uint8Array>();
  /** External links met through h5wasm, by path. */
  private readonly externals = new Map<string, H5ExternalLink>();
  /** The h5wasm instance this file is open on, and its handle of the file. */
  private wasm: LoadedH5wasm | undefined;
  private wasmHandle: H5FileObject | undefined;
  /** Time h5wasm has worked on this file, against {@link H5ReadOptions.h5wasmTimeoutMs}. */
  private wasmSpentMs = 0;

  /** @internal */
  constructor(
    /** The file's path. */
    readonly path: string,
    private readonly source: ByteSource,
    private readonly superblock: Superblock,
    private readonly options: H5ReadOptions,
    /** The structure read without h5wasm, or null when h5wasm reads it. */
    private readonly lite: LiteIndex | null,
    wasm?: LoadedH5wasm,
  ) {
    if (wasm) this.openThroughWasm(wasm);
  }

  /**
   * @internal A counter for walks of the whole tree: `spend()` once per path visited; it
   * throws `ERR_BAD_HEADER` past {@link pathBudget} (hard links that fan out).
   */
  pathBudget(): { spend(): void } {
    let left = pathBudget(this.source.size);
    return {
      spend: () => {
        if (--left < 0) throw tooManyPaths(this.path, this.source.size);
      },
    };
  }

  /** @internal Whether h5wasm was needed (loaded) for this file so far. */
  get usesH5wasm(): boolean {
    return this.wasm !== undefined;
  }

  private get lib(): H5Lib {
    return (this.wasm as { lib: H5Lib }).lib;
  }

  private get module(): H5Module {
    return (this.wasm as { module: H5Module }).module;
  }

  private get h5(): H5FileObject {
    return this.wasmHandle as H5FileObject;
  }

  /** Loads h5wasm if needed, then opens the file with it; `why` says what needs it. */
  private async ensureWasm(why: string): Promise<void> {
    // The instance just loaded, not the global one, which a deadline elsewhere may retire.
    if (!this.wasm && this.source.fd !== null) this.openThroughWasm(await loadH5wasm());
    else this.ensureWasmSync(why);
  }

  /** Opens the file with h5wasm if it is loaded; `why` says what needs it. */
  private ensureWasmSync(why: string): void {
    if (this.wasm) return;
    this.openThroughWasm(loadedH5wasmOrThrow(this.path, this.source.fd === null, why));
  }

  /** Opens the file with h5wasm `wasm`, under the file's deadline like every h5wasm call. */
  private openThroughWasm(wasm: LoadedH5wasm): void {
    this.wasm = wasm;
    try {
      this.wasmHandle = this.wasmCall(() => new wasm.lib.File(this.path, 'r'), 'open the file');
    } catch (error) {
      this.wasm = undefined;
      throw error;
    }
  }

  /**
   * Every h5wasm call of the reader goes through here: it runs under the deadline, and
   * HDF5's refusals (plain Errors, and the RuntimeError of an abort()) become TensorioErrors
   * saying HDF5 could not do `what`. `onRefusal`, when given, answers a plain Error instead
   * (h5wasm also signals "not there" or "not convertible" that way); an abort() is always
   * damage.
   */
  private wasmCall<T>(call: () => T, what: string, onRefusal?: (error: Error) => T): T {
    const wasm = this.wasm as LoadedH5wasm;
    if (wasm.generation !== h5wasmGeneration) {
      throw new TensorioError('ERR_CLOSED', `h5wasm was reset after an operation on a damaged file ran past its deadline; open this file again`, { path: this.path });
    }
    // The deadline is for the whole file, so many slow calls are bounded as one endless one is.
    // A call made inside another runs under the outer one's deadline, which counts its time.
    const nested = insideDeadline();
    const left = this.timeoutMs - this.wasmSpentMs;
    if (!nested && left <= 0) throw this.deadlineExceeded(what);
    const start = performance.now();
    try {
      return nested ? call() : withDeadline(() => withoutStderr(call), left);
    } catch (error) {
      if (error instanceof TensorioError) throw error;
      if (isDeadlineError(error)) {
        retireH5wasm(wasm.generation);
        throw this.deadlineExceeded(what);
      }
      let refusal = error as Error;
      if (isHdf5Stack(error)) {
        releaseErrorFiles(wasm.module);
        refusal = new Error(hdf5StackSummary(error.message), { cause: error });
      }
      if (onRefusal && !isWasmAbort(error)) return onRefusal(refusal);
      throw new TensorioError('ERR_BAD_HEADER', `HDF5 cannot ${what} (${refusal.message}); the file is damaged`, { path: this.path, cause: error });
    } finally {
      if (!nested) this.wasmSpentMs += performance.now() - start;
    }
  }

  private get timeoutMs(): number {
    return this.options.h5wasmTimeoutMs ?? H5WASM_TIMEOUT_MS;
  }

  private deadlineExceeded(what: string): TensorioError {
    return new TensorioError(
      'ERR_TIMEOUT',
      `HDF5 (h5wasm) did not ${what} within the ${this.timeoutMs} ms it may work on this file (h5wasmTimeoutMs), so it was stopped; HDF5 loops on some damaged files. An h5wasm instance stopped mid-call is retired: asynchronous readers load a fresh one, synchronous ones need await h5wasmReady() first`,
      { path: this.path },
    );
  }

  private requireOpen(): void {
    if (this.closed) throw new TensorioError('ERR_CLOSED', 'the HDF5 file is closed', { path: this.path });
  }

  private kind(path: string): ObjectKind {
    if (this.lite) return this.lite.get(normalise(path))?.kind ?? 'missing';
    const p = `/${normalise(path)}`;
    // The file does not change while open: each path is asked of h5wasm once (a walk asks
    // for every parent of every path, and each h5wasm lookup walks the path again).
    let kind = this.kinds.get(p);
    if (kind === undefined) this.kinds.set(p, (kind = this.wasmKind(p)));
    return kind;
  }

  /** The names in the group at `p` (absolute, known to be a group), through h5wasm, once. */
  private wasmChildren(p: string): string[] {
    let names = this.children.get(p);
    if (names === undefined) {
      const group = p === '/' ? this.h5 : new this.lib.Group(this.h5.file_id, p);
      this.children.set(p, (names = this.wasmCall(() => group.keys(), `list group '${p}'`)));
    }
    return names;
  }

  private wasmKind(p: string): ObjectKind {
    if (p === '/') return 'group';
    // Ask the parent first: HDF5 prints an error stack for every lookup of a missing name.
    const slash = p.lastIndexOf('/');
    const parent = p.slice(0, slash);
    const name = p.slice(slash + 1);
    if (parent !== '' && this.kind(parent) !== 'group') return 'missing';
    if (!this.wasmChildren(parent || '/').includes(name)) return 'missing';
    // Before get_type, which follows an external link into the file it names.
    const link = this.wasmCall(() => this.module.get_external_link(this.h5.file_id, p), `look up '${p}'`, () => ({}) as { filename?: string; obj_path?: string });
    if (typeof link.filename === 'string') {
      this.externals.set(p.slice(1), { path: p.slice(1), file: link.filename, target: link.obj_path ?? '' });
      return 'external';
    }
    const type = this.wasmCall(() => this.module.get_type(this.h5.file_id, p), `look up '${p}'`, () => -1);
    if (type === this.module.H5O_TYPE_GROUP) return 'group';
    if (type === this.module.H5O_TYPE_DATASET) return 'dataset';
    return type < 0 ? 'missing' : 'other';
  }

  private requireGroup(path: string): void {
    this.requireOpen();
    if (this.kind(path) !== 'group') throw new TensorioError('ERR_NOT_FOUND_IN_ARCHIVE', `no group '${normalise(path)}' in the file`, { path: this.path });
  }

  /** True when `path` names a group. */
  isGroup(path: string): boolean {
    this.requireOpen();
    return this.kind(path) === 'group';
  }

  /** True when `path` names a dataset. */
  isDataset(path: string): boolean {
    this.requireOpen();
    return this.kind(path) === 'dataset';
  }

  /** The names of a group's members, in the file's order. Default: the root group. */
  keys(group = ''): string[] {
    if (this.lite) {
      this.requireOpen();
      const object = this.lite.get(normalise(group));
      if (object?.kind !== 'group') throw new TensorioError('ERR_NOT_FOUND_IN_ARCHIVE', `no group '${normalise(group)}' in the file`, { path: this.path });
      return [...(object.children ?? [])];
    }
    this.requireGroup(group);
    return [...this.wasmChildren(`/${normalise(group)}`)];
  }

  /** Where the external link at `path` points, or undefined when `path` is not one (see src/formats/hdf5/links.ts). */
  externalLink(path: string): H5ExternalLink | undefined {
    this.requireOpen();
    const p = normalise(path);
    if (this.kind(p) !== 'external') return undefined;
    return { ...((this.lite ? this.lite.get(p)?.link : this.externals.get(p)) as H5ExternalLink) };
  }

  /** Every external link below `group`, depth first: tensorio reports them and does not follow them. */
  externalLinks(group = ''): H5ExternalLink[] {
    const out: H5ExternalLink[] = [];
    this.walk(group, (full, kind) => {
      if (kind === 'external') out.push(this.externalLink(full) as H5ExternalLink);
    });
    return out;
  }

  /** Full paths (no leading slash) of every dataset below `group`, depth first. */
  datasets(group = ''): string[] {
    const out: string[] = [];
    this.walk(group, (full, kind) => {
      if (kind === 'dataset') out.push(full);
    });
    return out;
  }

  private walk(group: string, each: (full: string, kind: ObjectKind) => void): void {
    const budget = this.pathBudget();
    const visit = (prefix: string, depth: number): void => {
      if (depth > 64) return; // a link cycle; HDF5 hard links can make one
      for (const name of this.keys(prefix)) {
        budget.spend();
        const full = joinPath(prefix, name);
        const kind = this.kind(full);
        each(full, kind);
        if (kind === 'group') visit(full, depth + 1);
      }
    };
    this.batch(() => visit(normalise(group), 0), `walk the groups below '${normalise(group) || '/'}'`);
  }

  /**
   * @internal Runs `walk`, a sequence of calls on this file, under one h5wasm deadline
   * rather than one per call (each costs a watchdog thread, about 80 µs); `what` names it in
   * errors. Files tensorio's own reader walks run it directly.
   */
  batch<T>(walk: () => T, what: string): T {
    return this.wasm ? this.wasmCall(walk, what) : walk();
  }

  /** The names of the attributes of the object at `path`. */
  attributeNames(path = ''): string[] {
    if (this.lite) return [...this.liteObject(path).attributes.keys()];
    const object = this.object(path);
    return this.wasmCall(() => Object.keys(object.attrs), `list the attributes of '${normalise(path) || '/'}'`);
  }

  private liteObject(path: string): LiteObject {
    this.requireOpen();
    const object = this.lite?.get(normalise(path));
    if (!object) throw new TensorioError('ERR_NOT_FOUND_IN_ARCHIVE', `no object '${normalise(path)}' in the file`, { path: this.path });
    return object;
  }

  private object(path: string): H5Group {
    this.requireOpen();
    const kind = this.kind(path);
    if (kind === 'missing') throw new TensorioError('ERR_NOT_FOUND_IN_ARCHIVE', `no object '${normalise(path)}' in the file`, { path: this.path });
    const p = normalise(path);
    return p === '' ? this.h5 : this.wasmCall(() => this.h5.get(p) as H5Group, `open '${p}'`);
  }

  /**
   * An attribute of the object at `path`: strings (fixed or variable length) as strings,
   * numeric scalars as numbers, numeric arrays as NdArrays (an empty float64 array as one
   * of shape [0]). Returns undefined when there is no such attribute.
   * @throws TensorioError `ERR_UNSUPPORTED_DTYPE` for attribute types tensorio does not read.
   */
  attribute(path: string, name: string): H5AttributeValue | undefined {
    if (this.lite) {
      const attr = this.liteObject(path).attributes.get(name);
      return attr ? liteAttributeValue(this.source, this.superblock, attr, name, this.heapCache) : undefined;
    }
    const object = this.object(path);
    const attr = this.wasmCall(() => object.attrs[name], `read attribute '${name}'`);
    if (!attr) return undefined;
    const meta = attr.metadata;
    const where = `attribute '${name}' of '${normalise(path) || '/'}'`;
    const value = this.wasmCall(() => object.get_attribute(name, false), `read ${where}`, (error) => {
      // An HDF5 error stack is damage (a heap it cannot read); h5wasm's own refusals are types it does not convert.
      if (isHdf5Stack(error.cause)) throw new TensorioError('ERR_BAD_HEADER', `HDF5 cannot read ${where} (${error.message}); the file is damaged`, { path: this.path, cause: error.cause });
      throw new TensorioError('ERR_UNSUPPORTED_DTYPE', `${where}: ${error.message}`, { path: this.path, cause: error });
    });
    if (value === null || value === undefined) return null;
    if (meta.type === H5T_STRING) {
      if (typeof value === 'string') return meta.shape && meta.shape.length > 0 ? [value] : value;
      if (Array.isArray(value)) return value.map(String);
    }
    const info = dtypeOfMetadata(meta);
    if (info && meta.shape) {
      if (ArrayBuffer.isView(value)) {
        const data = new info.array(shapeSize(meta.shape) * info.lanes);
        new Uint8Array(data.buffer).set(new Uint8Array(value.buffer, value.byteOffset, value.byteLength).subarray(0, data.byteLength));
        return { dtype: info.name, shape: [...meta.shape], data };
      }
    }
    if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean' || typeof value === 'string') return value;
    if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value as string[];
    throw new TensorioError('ERR_UNSUPPORTED_DTYPE', `attribute '${name}' of '${normalise(path) || '/'}' has an HDF5 type tensorio does not read (class ${meta.type})`, { path: this.path });
  }

  /** Dtype, shape and storage of a dataset. */
  info(path: string): H5DatasetInfo {
    this.requireOpen();
    const p = normalise(path);
    const cached = this.infos.get(p);
    if (cached) return cached;
    const kind = this.kind(p);
    if (kind === 'external') throw externalLinkRead(this.externalLink(p) as H5ExternalLink, this.path, 'dataset');
    if (kind !== 'dataset') throw new TensorioError('ERR_NOT_FOUND_IN_ARCHIVE', `no dataset '${p}' in the file`, { path: this.path });
    if (this.lite) {
      const object = this.liteObject(p);
      const typeMessage = object.messages.find((m) => m.type === MSG_DATATYPE) as HeaderMessage;
      const type = parseLiteType(this.source.read(typeMessage.offset, typeMessage.size, 'datatype message'), this.path);
      const spaceMessage = object.messages.find((m) => m.type === MSG_DATASPACE);
      if (!spaceMessage) throw new TensorioError('ERR_BAD_HEADER', `dataset '${p}' has no dataspace message`, { path: this.path });
      const space = parseLiteSpace(this.source.read(spaceMessage.offset, spaceMessage.size, 'dataspace message'), this.superblock, this.path);
      const meta: H5Metadata = { type: type.cls, size: type.size, signed: type.signed, littleEndian: !type.bigEndian, vlen: type.vlen, shape: space.shape, total_size: 0, chunks: null };
      return this.finishInfo(p, meta, () => storageOf(this.source, this.superblock, object.messages).storage);
    }
    const meta = this.wasmCall(() => this.module.get_dataset_metadata(this.h5.file_id, `/${p}`), `open dataset '${p}'`);
    return this.finishInfo(p, meta, () => {
      const ref = this.wasmCall(() => this.module.create_object_reference(this.h5.file_id, `/${p}`), `locate dataset '${p}'`);
      const address = readUint(ref, 0, Math.min(8, ref.length), this.path);
      return locateStorage(this.source, this.superblock, address).storage;
    });
  }

  private finishInfo(p: string, meta: H5Metadata, locate: () => H5Storage): H5DatasetInfo {
    const info = dtypeOfMetadata(meta);
    let storage: H5Storage = { layout: 'unknown' };
    if (info && meta.shape) {
      storage = locate();
      if (storage.layout === 'contiguous' || storage.layout === 'compact') {
        const expected = shapeSize(meta.shape, this.path) * info.itemSize;
        if (storage.length !== expected || storage.offset + storage.length > this.source.size) {
          throw new TensorioError(
            'ERR_BAD_OFFSETS',
            `dataset '${p}': its ${storage.layout} data (${storage.length} bytes at offset ${storage.offset}) does not hold ${expected} bytes within the file of ${this.source.size} bytes`,
            { path: this.path },
          );
        }
      }
    }
    const result: H5DatasetInfo = { path: p, dtype: info?.name ?? null, shape: meta.shape ? [...meta.shape] : null, bigEndian: info !== null && !meta.littleEndian, storage };
    this.infos.set(p, result);
    return result;
  }

  private mapped(): ArrayBuffer | string {
    if (this.mapping) return this.mapping;
    if (this.mappingReason) return this.mappingReason;
    if (this.source.fd === null) return (this.mappingReason = 'the file is in memory');
    const result = mapFile(this.source.fd, this.source.size, false, this.path);
    if (result.buffer) return (this.mapping = result.buffer);
    return (this.mappingReason = result.reason);
  }

  /**
   * Reads one numeric dataset. Contiguous data is read (or mapped, with `mmap`) straight
   * from the file; other layouts go through h5wasm.
   * @throws TensorioError `ERR_NOT_FOUND_IN_ARCHIVE` when there is no such dataset,
   * `ERR_UNSUPPORTED_DTYPE` when it is not a numeric array, `ERR_BAD_OFFSETS` when its
   * declared storage lies outside the file.
   */
  async read(path: string, options: H5ReadOptions = {}): Promise<LoadedArray> {
    const plan = this.plan(path, options);
    if (plan.kind === 'done') return plan.result;
    if (plan.kind === 'copy') {
      await this.source.readIntoAsync(plan.offset, plan.data, `dataset '${plan.info.path}'`);
      return plan.finish();
    }
    await this.ensureWasm(`dataset '${plan.info.path}' is ${plan.info.storage.layout}`);
    return plan.finish(this.readThroughHeap(plan.info, plan.dtype, plan.length));
  }

  /**
   * {@link read}, synchronously. Datasets that need h5wasm (chunked, filtered) need it
   * loaded first, since it cannot load synchronously: `await h5wasmReady()`.
   * @throws TensorioError as {@link read}, and `ERR_NEEDS_H5WASM` when h5wasm is needed
   * and not loaded (or the file is in memory, which h5wasm cannot read).
   */
  readSync(path: string, options: H5ReadOptions = {}): LoadedArray {
    const plan = this.plan(path, options);
    if (plan.kind === 'done') return plan.result;
    if (plan.kind === 'copy') {
      this.source.readInto(plan.offset, plan.data, `dataset '${plan.info.path}'`);
      return plan.finish();
    }
    this.ensureWasmSync(`dataset '${plan.info.path}' is ${plan.info.storage.layout}`);
    return plan.finish(this.readThroughHeap(plan.info, plan.dtype, plan.length));
  }

  /**
   * What reading a dataset takes: nothing more (a view of the mapping), a copy of a byte
   * range, or h5wasm. `finish` wraps the filled data as the result.
   */
  private plan(path: string, options: H5ReadOptions):
    | { kind: 'done'; result: LoadedArray }
    | { kind: 'copy'; info: H5DatasetInfo; data: NdArray['data']; offset: number; finish: () => LoadedArray }
    | { kind: 'wasm'; info: H5DatasetInfo; dtype: DTypeInfo; length: number; finish: (data: NdArray['data']) => LoadedArray } {
    const info = this.info(path);
    if (info.dtype === null || info.shape === null) {
      throw new TensorioError('ERR_UNSUPPORTED_DTYPE', `dataset '${info.path}' is not a numeric array (strings, references and other compound types are not read)`, { path: this.path });
    }
    const dtypeName = info.dtype;
    const shape = info.shape;
    const dtype = dtypeInfo(dtypeName);
    const length = shapeSize(shape) * dtype.lanes;
    const storage = info.storage;
    const wantMap = options.mmap ?? this.options.mmap ?? false;
    if (storage.layout === 'contiguous' || storage.layout === 'compact') {
      let copyReason: string | undefined;
      if (wantMap && storage.layout === 'contiguous') {
        const mapping = this.mapped();
        if (typeof mapping === 'string') copyReason = mapping;
        else if (info.bigEndian) copyReason = 'the data is big-endian';
        else if (storage.offset % dtype.array.BYTES_PER_ELEMENT !== 0) copyReason = `offset ${storage.offset} is not aligned for ${dtypeName}`;
        else return { kind: 'done', result: { dtype: dtypeName, shape: [...shape], data: new dtype.array(mapping, storage.offset, length), mapped: true } };
      }
      const data = new dtype.array(length);
      const finish = (): LoadedArray => {
        if (info.bigEndian) byteswap(data, dtype.swapSize);
        const result: LoadedArray = { dtype: dtypeName, shape: [...shape], data, mapped: false };
        return wantMap ? { ...result, copyReason: copyReason ?? `the dataset is ${storage.layout}` } : result;
      };
      return { kind: 'copy', info, data, offset: storage.offset, finish };
    }
    if (storage.layout === 'chunked' || storage.layout === 'filtered') {
      const data = this.readChunkedOwn(info, dtype, length);
      if (data) {
        const result: LoadedArray = { dtype: dtypeName, shape: [...shape], data, mapped: false };
        return { kind: 'done', result: wantMap ? { ...result, copyReason: `the dataset is ${storage.layout}` } : result };
      }
    }
    const finish = (data: NdArray['data']): LoadedArray => {
      const result: LoadedArray = { dtype: dtypeName, shape: [...shape], data, mapped: false };
      return wantMap ? { ...result, copyReason: `the dataset is ${storage.layout}; read through h5wasm` } : result;
    };
    return { kind: 'wasm', info, dtype, length, finish };
  }

  /** The messages of a dataset's object header (through an object reference when h5wasm reads the structure). */
  private headerOf(p: string): HeaderMessage[] {
    if (this.lite) return this.liteObject(p).messages;
    const ref = this.wasmCall(() => this.module.create_object_reference(this.h5.file_id, `/${p}`), `locate dataset '${p}'`);
    return headerMessages(this.source, this.superblock, this.superblock.base + readUint(ref, 0, Math.min(8, ref.length), this.path));
  }

  /** A chunked dataset through tensorio's chunk reader; undefined when h5wasm must read it (src/formats/hdf5/chunks.ts). */
  private readChunkedOwn(info: H5DatasetInfo, dtype: DTypeInfo, length: number): NdArray['data'] | undefined {
    const data = readChunkedDataset(this.source, this.superblock, this.headerOf(info.path), info.path, info.shape as number[], dtype, length, this.source.fd === null);
    if (data === 'needs-h5wasm') return undefined;
    if (info.bigEndian) byteswap(data, dtype.swapSize);
    return data;
  }


  private readThroughHeap(info: H5DatasetInfo, dtype: DTypeInfo, length: number): NdArray['data'] {
    const data = new dtype.array(length);
    const bytes = data.byteLength;
    if (bytes === 0) return data;
    if (bytes > this.module.MAXIMUM_MEMORY / 2) {
      throw new TensorioError('ERR_TOO_LARGE', `dataset '${info.path}' (${bytes} bytes, ${info.storage.layout}) does not fit h5wasm's heap; only contiguous datasets are read outside it`, { path: this.path });
    }
    const ptr = this.module._malloc(bytes);
    if (ptr === 0) throw new TensorioError('ERR_TOO_LARGE', `h5wasm could not allocate ${bytes} bytes for dataset '${info.path}'`, { path: this.path });
    try {
      const filters = this.wasmCall(() => this.module.get_dataset_filters(this.h5.file_id, `/${info.path}`), `read the filters of dataset '${info.path}'`);
      const read = () => this.module.get_dataset_data(this.h5.file_id, `/${info.path}`, null, null, null, BigInt(ptr));
      let refusal = '';
      const status = this.wasmCall(read, `read dataset '${info.path}'`, (error) => ((refusal = error.message), -1));
      if (status < 0) {
        const names = filters.map((f) => f.name || `#${f.id}`).join(', ');
        // h5wasm has HDF5's own filters only (ids below 256): a registered one (LZF, blosc, ...) is missing there.
        const code = filters.some((f) => f.id >= 256) ? 'ERR_UNSUPPORTED_FILTER' : 'ERR_UNSUPPORTED_DTYPE';
        throw new TensorioError(code, `h5wasm could not read dataset '${info.path}'${names ? ` (filters: ${names}; a filter may be unavailable)` : ''}${refusal ? `: ${refusal}` : ''}`, { path: this.path });
      }
      new Uint8Array(data.buffer).set(this.module.HEAPU8.subarray(ptr, ptr + bytes));
    } finally {
      this.module._free(ptr);
    }
    return data;
  }

  /** Closes h5wasm's handle and the file descriptor. Mapped arrays stay valid. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      if (this.wasmHandle) this.wasmCall(() => this.h5.close(), 'close the file');
    } catch {
      // Opened read-only, so nothing is lost; HDF5 may refuse to close a damaged file, and
      // an instance retired after a deadline is not called again.
    } finally {
      if (this.source.fd !== null) closeQuietly(this.source.fd);
    }
  }
}

/**
 * HDF5 calls abort() on some damaged structures; in WebAssembly that throws a RuntimeError
 * ("Aborted(...)") and h5wasm stays usable (tested), so it is a refusal of this file.
 */
function isWasmAbort(error: unknown): boolean {
  return error instanceof Error && error.name === 'RuntimeError';
}


/** An open file whose structure tensorio's reader walked; `lite` is null when h5wasm must read it. */
interface OpenedStructure {
  source: ByteSource;
  superblock: Superblock;
  lite: LiteIndex | null;
}

/** Opens `path` and walks its structure; the descriptor is closed if that fails. */
function openStructure(path: string, options: H5ReadOptions): OpenedStructure {
  const { fd, size } = openForRead(path);
  try {
    const source = ByteSource.ofFile(fd, size, path);
    const superblock = readSuperblock(source);
    return { source, superblock, lite: options.h5wasm ? null : buildLiteIndex(source, superblock) };
  } catch (error) {
    closeQuietly(fd);
    throw error;
  }
}

/**
 * The H5File over an opened structure, through h5wasm (`wasm`, undefined when not loaded)
 * when tensorio's reader does not cover it. The descriptor is closed if that fails.
 */
function fileOver(path: string, options: H5ReadOptions, { source, superblock, lite }: OpenedStructure, wasm: LoadedH5wasm | undefined): H5File {
  if (lite) return new H5File(path, source, superblock, options, lite);
  try {
    if (!wasm) throw h5wasmNeeded(path, false, 'the file uses HDF5 structures only h5wasm reads');
    return new H5File(path, source, superblock, options, null, wasm);
  } catch (error) {
    closeQuietly(source.fd as number);
    throw error;
  }
}

/**
 * Opens an HDF5 file for lazy, dataset-by-dataset reading.
 * @throws TensorioError `ERR_NOT_FOUND` when the file does not exist, `ERR_BAD_MAGIC` when
 * it is not HDF5.
 */
export async function openH5(path: string, options: H5ReadOptions = {}): Promise<H5File> {
  checkOptions(options, OPTIONS.readH5, 'openH5', path);
  const opened = openStructure(path, options);
  let wasm: LoadedH5wasm | undefined;
  if (!opened.lite) {
    try {
      wasm = await loadH5wasm();
    } catch (error) {
      closeQuietly(opened.source.fd as number);
      throw error;
    }
  }
  return fileOver(path, options, opened, wasm);
}

/**
 * {@link openH5}, synchronously. Files whose structure tensorio's own reader does not walk
 * need h5wasm loaded first (`await h5wasmReady()`).
 * @throws TensorioError as {@link openH5}, and `ERR_NEEDS_H5WASM`.
 */
export function openH5Sync(path: string, options: H5ReadOptions = {}): H5File {
  checkOptions(options, OPTIONS.readH5, 'openH5Sync', path);
  return fileOver(path, options, openStructure(path, options), loadedH5wasm);
}

/**
 * An HDF5 file held in memory (an archive member, a download), read with tensorio's own
 * structure reader; `name` names it in errors. Dataset reads are copies.
 * @throws TensorioError `ERR_NEEDS_H5WASM` for files or datasets only h5wasm reads (it
 * reads only files), and the errors of {@link openH5}.
 */
export function openH5Bytes(bytes: Uint8Array, name = '<memory>'): H5File {
  const source = ByteSource.ofBytes(bytes, name);
  const superblock = readSuperblock(source);
  const lite = buildLiteIndex(source, superblock);
  if (!lite) throw h5wasmNeeded(name, true, 'the file uses HDF5 structures only h5wasm reads');
  return new H5File(name, source, superblock, {}, lite);
}

/**
 * Reads every numeric dataset of an HDF5 file, keyed by its full path without the leading
 * slash (`'group1/dataset2'`). Datasets that are not numeric arrays (strings, references,
 * other compound types) and null dataspaces are left out.
 * @throws TensorioError as {@link openH5} and {@link H5File.read}.
 */
export async function readH5(path: string, options: H5ReadOptions = {}): Promise<Record<string, LoadedArray>> {
  checkOptions(options, OPTIONS.readH5, 'readH5', path);
  const file = await openH5(path, options);
  try {
    const out: Record<string, LoadedArray> = {};
    for (const name of numericDatasets(file)) out[name] = await file.read(name);
    return out;
  } finally {
    file.close();
  }
}

/** {@link readH5}, synchronously; see {@link openH5Sync} for when h5wasm must be loaded first. */
export function readH5Sync(path: string, options: H5ReadOptions = {}): Record<string, LoadedArray> {
  checkOptions(options, OPTIONS.readH5, 'readH5Sync', path);
  return readEvery(openH5Sync(path, options));
}

/** {@link readH5} over bytes in memory; see {@link openH5Bytes}. */
export function decodeH5(bytes: Uint8Array, name = '<memory>'): Record<string, LoadedArray> {
  return readEvery(openH5Bytes(bytes, name));
}

function numericDatasets(file: H5File): string[] {
  return file.datasets().filter((name) => {
    const info = file.info(name);
    return info.dtype !== null && info.shape !== null;
  });
}

function readEvery(file: H5File): Record<string, LoadedArray> {
  try {
    const out: Record<string, LoadedArray> = {};
    for (const name of numericDatasets(file)) out[name] = file.readSync(name);
    return out;
  } finally {
    file.close();
  }
}

// ---------------------------------------------------------------------------------------
// Writing

/** Datasets up to this size go through h5wasm's heap; larger ones are streamed past it. */
const HEAP_WRITE_LIMIT = 1 << 20;

/** Options of {@link writeH5}. */
export interface H5WriteOptions extends WriteOptions {
  /** @internal Datasets above this many bytes bypass h5wasm's heap. Default 1 MiB. */
  heapWriteLimit?: number;
}

/** A dataset handed to h5wasm, to be located, completed and checked in the file it wrote. */
interface Written {
  path: string;
  bytes: Uint8Array;
  float16: boolean;
  /** Created as a placeholder compound; its datatype message becomes h5py's bool enum. */
  bool?: boolean;
  /** h5wasm wrote placeholder bytes; the real ones are written over them. */
  placeholder: boolean;
}

const BOOL_PLACEHOLDER_MEMBER = 'tensorio_bool_as_h5py_enum';

function h5TypeOf(dtype: DType): object {
  const base = { vlen: false, littleEndian: true, signed: false };
  switch (dtype) {
    case 'float32':
      return { ...base, type: H5T_FLOAT, size: 4 };
    case 'float64':
      return { ...base, type: H5T_FLOAT, size: 8 };
    case 'complex64':
    case 'complex128': {
      const part = dtype === 'complex64' ? 4 : 8;
      const member = (name: string, offset: number) => ({ ...base, type: H5T_FLOAT, size: part, name, offset, shape: null });
      return { ...base, type: H5T_COMPOUND, size: 2 * part, compound_type: { nmembers: 2, members: [member('r', 0), member('i', part)] } };
    }
    case 'float16': {
      const member = { ...base, type: H5T_INTEGER, size: 2, name: 'float16', offset: 0, shape: null };
      return { ...base, type: H5T_COMPOUND, size: 2, compound_type: { nmembers: 1, members: [member] } };
    }
    case 'bool': {
      // h5py's bool is an enum (int8 FALSE=0, TRUE=1) that h5wasm cannot create: a one-member
      // compound of size 1 stands in and its datatype message is rewritten (boolDatatypeMessage).
      // The long member name makes the placeholder message longer than the enum's in any
      // compound message version.
      const member = { ...base, type: H5T_INTEGER, size: 1, signed: true, name: BOOL_PLACEHOLDER_MEMBER, offset: 0, shape: null };
      return { ...base, type: H5T_COMPOUND, size: 1, compound_type: { nmembers: 1, members: [member] } };
    }
    case 'bfloat16':
    case 'float8_e4m3fn':
    case 'float8_e5m2':
      // HDF5 and h5py have no such type: stored as integers they would read back as uint16 /
      // uint8, a silent change of type. Refused; convert with toFloat32 first.
      throw new TensorioError('ERR_UNSUPPORTED_DTYPE', `HDF5 has no ${dtype} type (h5py would read its bits as ${dtype === 'bfloat16' ? 'uint16' : 'uint8'}); convert it first (toFloat32)`);
    default: {
      // float16 is created as a placeholder compound and retyped afterwards (see
      // float16DatatypeMessage), bool likewise (boolDatatypeMessage).
      const info = dtypeInfo(dtype);
      const signed = dtype === 'int8' || dtype === 'int16' || dtype === 'int32' || dtype === 'int64';
      return { ...base, type: H5T_INTEGER, size: info.itemSize, signed };
    }
  }
}

/** {@link h5TypeOf} for a dataset, its refusal naming the dataset and the file. */
function h5TypeOfDataset(dtype: DType, name: string, file: string): object {
  try {
    return h5TypeOf(dtype);
  } catch (error) {
    if (error instanceof TensorioError) throw new TensorioError(error.code, `dataset '${name}': ${error.message}`, { path: file });
    throw error;
  }
}

/**
 * Builds an HDF5 file: groups, attributes and datasets, written atomically on
 * {@link commit}. Intermediate groups are created as needed (h5wasm does not create them,
 * and fails silently when asked to).
 */
export class H5Writer {
  private readonly written: Written[] = [];
  private readonly groups = new Set<string>(['']);
  private done = false;

  private constructor(
    private readonly target: string,
    private readonly scratch: AtomicWriter,
    private readonly lib: H5Lib,
    private readonly module: H5Module,
    private readonly h5: H5FileObject,
    private readonly options: H5WriteOptions,
    /** The h5wasm instance this writer uses, retired when one of its writes fails. */
    private readonly generation: number,
  ) {}

  /** Starts a new file that will replace `target` on {@link commit}. */
  static async create(target: string, options: H5WriteOptions = {}): Promise<H5Writer> {
    const { lib, module, generation } = await loadH5wasm();
    const scratch = AtomicWriter.openSync(target, options);
    let h5: H5FileObject;
    try {
      // libver ('earliest', 'latest'), h5py's default, keeps superblock v0 and old-style groups, as h5py and Keras write.
      h5 = new lib.File(scratch.tempPath, 'w', { libver: ['earliest', 'latest'] });
    } catch (error) {
      // HDF5 says only that its write failed: a write of our own past the superblock gets the
      // system's reason (ENOSPC, EFBIG), typed.
      const probe = await scratch.writeAt(64 << 10, [new Uint8Array(1)]).then(
        () => undefined,
        (systemError: unknown) => systemError,
      );
      releaseErrorFiles(module as unknown as ErrorHandlingModule, scratch.tempPath);
      // HDF5 keeps the file it failed to create in its list of open files, and refuses the
      // next file that gets the same inode ("unable to truncate a file which is already
      // open"): the next write starts a fresh h5wasm.
      retireH5wasm(generation);
      await scratch.abort();
      if (probe instanceof TensorioError) throw probe;
      throw new TensorioError('ERR_IO', `h5wasm could not create the file: ${isHdf5Stack(error) ? hdf5StackSummary(error.message) : (error as Error).message}`, { path: target, cause: error });
    }
    return new H5Writer(target, scratch, lib, module, h5, options, generation);
  }

  private requireOpen(): void {
    if (this.done) throw new TensorioError('ERR_CLOSED', 'the HDF5 writer is already committed or aborted', { path: this.target });
  }

  /** Creates the group at `path` and every missing group above it. */
  group(path: string): void {
    this.requireOpen();
    const parts = normalise(path).split('/').filter((p) => p !== '');
    let current = '';
    for (const part of parts) {
      if (part === '.' || part === '..') throw new TensorioError('ERR_INVALID_ARGUMENT', `invalid HDF5 path component '${part}' in '${path}'`, { path: this.target });
      current = current === '' ? part : `${current}/${part}`;
      if (this.groups.has(current)) continue;
      if (this.datasetPaths.has(current)) throw new TensorioError('ERR_INVALID_ARGUMENT', `'${current}' is a dataset, it cannot hold '${path}'`, { path: this.target });
      const parent = this.groupObject(current.includes('/') ? current.slice(0, current.lastIndexOf('/')) : '');
      parent.create_group(part);
      this.groups.add(current);
    }
  }

  private readonly datasetPaths = new Set<string>();
  /** The first write h5wasm reported failed (HDF5's error stack), reported by commit(). */
  private failure: Error | undefined;

  private groupObject(path: string): H5Group {
    return path === '' ? this.h5 : new this.lib.Group(this.h5.file_id, `/${path}`);
  }

  /**
   * Sets an attribute on the group or dataset at `path` (groups are created as needed).
   * Strings and string arrays are stored as fixed-length ASCII (what h5py reads as bytes
   * and every Keras 2 loader decodes); NdArrays as numeric arrays.
   * @throws TensorioError `ERR_INVALID_ARGUMENT` for a non-ASCII string.
   */
  attribute(path: string, name: string, value: string | string[] | NdArray): void {
    this.requireOpen();
    const p = normalise(path);
    if (!this.datasetPaths.has(p)) this.group(p);
    const object = this.datasetPaths.has(p) ? (this.h5.get(p) as H5Group) : this.groupObject(p);
    if (typeof value === 'string' || Array.isArray(value)) {
      const list = typeof value === 'string' ? [value] : value;
      for (const s of list) {
        if (!/^[\x00-\x7f]*$/.test(s)) throw new TensorioError('ERR_INVALID_ARGUMENT', `attribute '${name}': '${s}' is not ASCII; fixed-length ASCII strings are required`, { path: this.target });
      }
      const width = Math.max(1, ...list.map((s) => s.length));
      object.create_attribute(name, value, typeof value === 'string' ? null : [value.length], `A${width}`);
      return;
    }
    validateNdArray(value, this.target);
    const array = asCOrder(value);
    const meta = h5TypeOf(array.dtype) as { type: number; size: number; signed: boolean };
    const letter = meta.type === H5T_FLOAT ? ({ 4: 'f', 8: 'd' } as Record<number, string>)[meta.size] : ({ 1: 'b', 2: 'h', 4: 'i', 8: 'q' } as Record<number, string>)[meta.size];
    if (!letter || meta.type === H5T_COMPOUND) throw new TensorioError('ERR_UNSUPPORTED_DTYPE', `attribute '${name}': ${array.dtype} attributes are not supported`, { path: this.target });
    const code = `<${meta.type === H5T_INTEGER && !meta.signed ? letter.toUpperCase() : letter}`;
    object.create_attribute(name, array.data, array.shape, code);
  }

  /**
   * Adds a dataset at `path` (intermediate groups created). The data is not copied: it must
   * stay unchanged until {@link commit} resolves.
   * @throws TensorioError `ERR_INVALID_ARGUMENT` when the path exists, `ERR_TOO_LARGE` when
   * the dataset does not fit h5wasm's heap even as a placeholder (about 2 GiB).
   */
  dataset(path: string, value: NdArray): void {
    this.requireOpen();
    validateNdArray(value, this.target);
    const p = normalise(path);
    if (p === '' || this.groups.has(p) || this.datasetPaths.has(p)) throw new TensorioError('ERR_INVALID_ARGUMENT', `'${p || '/'}' already exists in the file`, { path: this.target });
    const slash = p.lastIndexOf('/');
    if (slash >= 0) this.group(p.slice(0, slash));
    const array = asCOrder(value);
    const bytes = bytesOf(array.data);
    const limit = this.options.heapWriteLimit ?? HEAP_WRITE_LIMIT;
    const placeholder = bytes.byteLength > limit;
    const size = Math.max(1, bytes.byteLength);
    if (size > this.module.MAXIMUM_MEMORY / 2) {
      throw new TensorioError('ERR_TOO_LARGE', `dataset '${p}' has ${bytes.byteLength} bytes; h5wasm must allocate that much of its ${this.module.MAXIMUM_MEMORY}-byte heap to create it`, { path: this.target });
    }
    const ptr = this.module._malloc(size);
    if (ptr === 0) throw new TensorioError('ERR_TOO_LARGE', `h5wasm could not allocate ${size} bytes to create dataset '${p}'`, { path: this.target });
    try {
      // A placeholder's bytes are whatever the heap holds: the real ones replace them in commit().
      if (!placeholder) this.module.HEAPU8.set(bytes, ptr);
      const meta = { ...h5TypeOfDataset(array.dtype, p, this.target), shape: array.shape.map(BigInt), maxshape: array.shape.map(BigInt), chunks: null, compression: 0, compression_opts: [], track_order: false };
      this.module.create_dataset(this.h5.file_id, `/${p}`, BigInt(ptr), meta);
    } catch (error) {
      // h5wasm throws HDF5's stack when its write fails (a full disk, a file size limit). The
      // file is checked whole in commit(), which names the system's error; keep HDF5's line.
      if (!isHdf5Stack(error)) throw error;
      this.failure ??= error;
    } finally {
      this.module._free(ptr);
    }
    this.datasetPaths.add(p);
    this.written.push({ path: p, bytes, float16: array.dtype === 'float16', bool: array.dtype === 'bool', placeholder });
  }

  /** Writes the file and moves it over the target. */
  async commit(): Promise<void> {
    this.requireOpen();
    this.done = true;
    try {
      try {
        this.h5.close();
      } catch (error) {
        if (!isHdf5Stack(error)) throw error;
        this.failure ??= error;
        releaseErrorFiles(this.module as unknown as ErrorHandlingModule, this.scratch.tempPath);
      }
      await this.complete();
      if (this.failure) throw await this.writeFailure(new Error(hdf5StackSummary(this.failure.message)));
      await this.scratch.commit();
    } catch (error) {
      // A write that failed inside HDF5 can leave its descriptor of the file open, which would
      // keep the removed file's blocks allocated (a full disk stayed full).
      releaseErrorFiles(this.module as unknown as ErrorHandlingModule, this.scratch.tempPath);
      // HDF5 may still list the file as open (see create()): the next write starts afresh.
      if (this.failure) retireH5wasm(this.generation);
      await this.scratch.abort();
      throw error;
    }
  }

  /**
   * Finishes and checks the temporary file h5wasm wrote. h5wasm reports a failed write (a
   * full disk, a file size limit) only on stderr and closes the file anyway, leaving it short
   * or with holes, so nothing it wrote is trusted: the structure is walked again, each
   * dataset located, the bytes h5wasm wrote compared with the arrays, and placeholders and
   * float16 datatype messages written over with positioned writes, whose errors are typed.
   */
  private async complete(): Promise<void> {
    const path = this.scratch.tempPath;
    const { fd, size } = openForRead(path);
    const patches: { offset: number; bytes: Uint8Array }[] = [];
    try {
      const source = ByteSource.ofFile(fd, size, path);
      const sb = await this.orWriteFailure(() => readSuperblock(source, { allowShort: true }));
      if (sb.end > size) {
        // Writing the last byte ourselves gets the system's error (EFBIG, ENOSPC), typed.
        await this.scratch.writeAt(sb.end - 1, [new Uint8Array(1)]);
        throw await this.writeFailure(new Error(`h5wasm wrote ${size} of the ${sb.end} bytes of the file`));
      }
      const located = await this.orWriteFailure(() => this.locateAll(source, sb));
      // Read back on the thread pool, into one buffer reused for every dataset compared.
      let readBack = new Uint8Array(0);
      for (const item of this.written) {
        const { storage, datatypeMessage } = located.get(item.path) as Located;
        if (item.bytes.byteLength > 0) {
          if (storage.layout !== 'contiguous' || storage.length !== item.bytes.byteLength || storage.offset + storage.length > size) {
            throw await this.writeFailure(new Error(`dataset '${item.path}' is stored as ${storage.layout}; expected ${item.bytes.byteLength} contiguous bytes inside the file`));
          }
          if (item.placeholder) {
            patches.push({ offset: storage.offset, bytes: item.bytes });
          } else {
            if (readBack.length < storage.length) readBack = new Uint8Array(storage.length);
            const stored = readBack.subarray(0, storage.length);
            await source.readIntoAsync(storage.offset, stored, `dataset '${item.path}'`);
            if (Buffer.compare(stored, item.bytes) !== 0) throw await this.writeFailure(new Error(`the bytes of dataset '${item.path}' differ from the array`));
          }
        }
        if (item.bool) {
          if (!datatypeMessage) throw new TensorioError('ERR_IO', `no datatype message for dataset '${item.path}'`, { path: this.target });
          patches.push({ offset: datatypeMessage.offset, bytes: boolDatatypeMessage(source.read(datatypeMessage.offset, datatypeMessage.size, 'datatype message'), this.target) });
        }
        if (item.float16) {
          if (!datatypeMessage) throw new TensorioError('ERR_IO', `no datatype message for dataset '${item.path}'`, { path: this.target });
          patches.push({ offset: datatypeMessage.offset, bytes: float16DatatypeMessage(source.read(datatypeMessage.offset, datatypeMessage.size, 'datatype message'), this.target) });
        }
      }
    } finally {
      closeQuietly(fd);
    }
    patches.sort((a, b) => a.offset - b.offset);
    let end = 0;
    for (const patch of patches) {
      if (patch.offset < end || patch.offset + patch.bytes.byteLength > size) {
        throw new TensorioError('ERR_IO', `region at offset ${patch.offset} overlaps another or lies past the end of the file being written`, { path: this.target });
      }
      await this.scratch.writeAt(patch.offset, [patch.bytes]);
      end = patch.offset + patch.bytes.byteLength;
    }
  }

  /**
   * Where every dataset is in the written file: found by tensorio's structure reader (which
   * also checks every object header), or, for files it does not walk (attributes in dense
   * storage), through h5wasm's object references.
   */
  private locateAll(source: ByteSource, sb: Superblock): Map<string, Located> {
    const out = new Map<string, Located>();
    const index = buildLiteIndex(source, sb);
    if (index) {
      for (const item of this.written) {
        const object = index.get(item.path);
        if (object?.kind !== 'dataset') throw new Error(`dataset '${item.path}' is missing from the file h5wasm wrote`);
        out.set(item.path, storageOf(source, sb, object.messages));
      }
      return out;
    }
    const reader = new this.lib.File(this.scratch.tempPath, 'r');
    try {
      for (const item of this.written) {
        const ref = this.module.create_object_reference(reader.file_id, `/${item.path}`);
        out.set(item.path, locateStorage(source, sb, readUint(ref, 0, 8, this.target)));
      }
    } finally {
      reader.close();
    }
    return out;
  }

  /** Runs a check of the written file; whatever it throws becomes {@link writeFailure}'s error. */
  private async orWriteFailure<T>(check: () => T): Promise<T> {
    try {
      return check();
    } catch (error) {
      throw await this.writeFailure(error);
    }
  }

  /**
   * The error for a file h5wasm did not write whole: `ERR_NO_SPACE` when the disk has less
   * room left than the file needs (the usual cause), else `ERR_IO` with what was wrong.
   */
  private async writeFailure(problem: unknown): Promise<TensorioError> {
    const what = problem instanceof Error ? problem.message : String(problem);
    const needed = this.written.reduce((sum, item) => sum + item.bytes.byteLength, 0) + (64 << 10);
    // A byte written where the file should end gets the system's reason (EFBIG under a file
    // size limit, ENOSPC), typed, when there is one.
    const probe = await this.scratch.writeAt(needed, [new Uint8Array(1)]).then(
      () => undefined,
      (systemError: unknown) => systemError,
    );
    if (probe instanceof TensorioError && probe.code === 'ERR_NO_SPACE') return probe;
    try {
      const { bavail, bsize } = fs.statfsSync(nodePath.dirname(this.scratch.tempPath));
      if (bavail * bsize < needed) {
        return new TensorioError('ERR_NO_SPACE', `no space left on the device: h5wasm could not write the whole file (${what})`, { path: this.target, cause: problem });
      }
    } catch {
      // No statfs here: say what was found.
    }
    return new TensorioError('ERR_IO', `h5wasm wrote a damaged file (${what})`, { path: this.target, cause: problem });
  }

  /** Discards the file; the target is untouched. */
  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    try {
      this.h5.close();
    } catch (error) {
      if (!isHdf5Stack(error)) throw error;
    } finally {
      releaseErrorFiles(this.module as unknown as ErrorHandlingModule, this.scratch.tempPath);
      await this.scratch.abort();
    }
  }
}

/**
 * The datatype message of an IEEE little-endian half-precision float, padded with zeros to
 * the size of the message it replaces. h5wasm cannot create a 2-byte float type, so a
 * float16 dataset is created with a one-member compound type of the same element size
 * (whose message is longer than the 20 bytes a float one needs) and this message is written
 * over it. Object headers of version 1 (libver 'earliest', what h5py writes) carry no
 * checksum, and HDF5 ignores a message's padding.
 */
function float16DatatypeMessage(current: Uint8Array, file: string): Uint8Array {
  const body = [
    0x11, 0x20, 0x0f, 0x00, // version 1, class 1 (float); LE, implied mantissa msb, sign at bit 15
    2, 0, 0, 0, // element size
    0, 0, 16, 0, // bit offset 0, precision 16
    10, 5, 0, 10, // exponent at bit 10, 5 bits; mantissa at bit 0, 10 bits
    15, 0, 0, 0, // exponent bias
  ];
  if (current.length < body.length) {
    throw new TensorioError('ERR_IO', `the datatype message has ${current.length} bytes; a float16 one needs ${body.length}`, { path: file });
  }
  const message = new Uint8Array(current.length);
  message.set(body);
  return message;
}

/**
 * The datatype message h5py writes for bool: an enum (class 8, version 1) of two members over
 * a signed 8-bit little-endian integer, FALSE = 0 and TRUE = 1, names null-padded to 8 bytes;
 * h5py reads such an enum as NumPy bool, and so does tensorio. Padded with zeros to the size
 * of the placeholder's message it replaces (see float16DatatypeMessage).
 */
function boolDatatypeMessage(current: Uint8Array, file: string): Uint8Array {
  const name = (text: string) => [...text].map((c) => c.charCodeAt(0)).concat(new Array(8 - text.length).fill(0));
  const body = [
    0x18, 2, 0, 0, // version 1, class 8 (enum); 2 members
    1, 0, 0, 0, // element size
    0x10, 0x08, 0, 0, 1, 0, 0, 0, 0, 0, 8, 0, // base: integer v1, little-endian signed, size 1, offset 0, precision 8
    ...name('FALSE'),
    ...name('TRUE'),
    0, 1, // the values
  ];
  if (current.length < body.length) {
    throw new TensorioError('ERR_IO', `the datatype message has ${current.length} bytes; a bool enum one needs ${body.length}`, { path: file });
  }
  const message = new Uint8Array(current.length);
  message.set(body);
  return message;
}

/**
 * Writes a record of arrays as an HDF5 file, one dataset per key (`'a/b/c'` creates groups
 * `a` and `a/b`). The file replaces `path` atomically. float16 is stored as IEEE half
 * precision, bool as h5py's enum (h5py reads both back as `<f2` and `bool`).
 * @throws TensorioError `ERR_INVALID_ARGUMENT` for a key that collides with a group,
 * `ERR_UNSUPPORTED_DTYPE` for bfloat16 and float8 (HDF5 has no such type), `ERR_TOO_LARGE`
 * for a dataset beyond h5wasm's heap (about 1 GiB).
 */
export async function writeH5(path: string, record: Record<string, NdArray>, options: H5WriteOptions = {}): Promise<void> {
  checkOptions(options, OPTIONS.writeH5, 'writeH5', path);
  const writer = await H5Writer.create(path, options);
  try {
    for (const [name, array] of Object.entries(record)) writer.dataset(name, array);
  } catch (error) {
    await writer.abort();
    throw error;
  }
  await writer.commit();
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


/**
 * @internal Exposed for the truncation tests: where the structure of an HDF5 file in memory
 * changes (the end of the superblock, each object header message's start and end, each
 * dataset's data start and end), as tensorio's structure reader sees it. [] when it cannot
 * walk the file.
 */
export function structureOffsets(bytes: Uint8Array): number[] {
  try {
    const source = ByteSource.ofBytes(bytes, '<memory>');
    const sb = readSuperblock(source);
    const index = buildLiteIndex(source, sb);
    if (!index) return [];
    const offsets: number[] = [];
    for (const object of index.values()) {
      for (const m of object.messages) offsets.push(m.offset - 1, m.offset, m.offset + m.size);
      if (object.kind !== 'dataset') continue;
      const { storage } = storageOf(source, sb, object.messages);
      if (storage.layout === 'contiguous' || storage.layout === 'compact') offsets.push(storage.offset, storage.offset + 1, storage.offset + storage.length - 1, storage.offset + storage.length);
    }
    return offsets;
  } catch {
    return [];
  }
}
