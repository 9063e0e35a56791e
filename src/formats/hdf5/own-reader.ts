/**
 * tensorio's own structure reader for HDF5 (called "lite" before h5.ts was split): it walks
 * the files Keras and h5py write without h5wasm, builds an index of every object by path, reads attributes
 * (strings from the local and global heaps included) and dataset types and shapes, and serves
 * them through the {@link StructureReader} interface (reader.ts) that h5wasm's reader
 * (h5wasm.ts) implements too. Also the path budget that bounds every walk of a file.
 */
import { byteswap } from '../../convert.js';
import { TensorioError } from '../../errors.js';
import { shapeSize } from '../../ndarray.js';
import { ByteSource } from '../../io/source.js';
import {
  checkInside,
  headerMessages,
  isUndefinedAddress,
  joinPath,
  readStructure,
  readSuperblock,
  readUint,
  storageOf,
  MSG_ATTRIBUTE,
  MSG_ATTRIBUTE_INFO,
  MSG_DATASPACE,
  MSG_DATATYPE,
  MSG_LAYOUT,
  MSG_LINK,
  MSG_LINK_INFO,
  MSG_SYMBOL_TABLE,
  type HeaderMessage,
  type Superblock,
} from './format.js';
import { decodeExternalLink, type H5ExternalLink } from './links.js';
import { notFound, type H5AttributeValue, type ObjectKind, type StructureReader } from './reader.js';
import { dtypeOfMetadata, H5T_FLOAT, H5T_INTEGER, H5T_STRING, type H5Metadata } from './types.js';


// A structure reader for the files Keras and h5py write (superblock v0/v1, symbol-table
// groups, attributes in the object header, contiguous or compact datasets), so opening
// such a file does not need h5wasm at all: loading h5wasm costs about 0.4 s (it compiles
// the HDF5 library) and 80 MiB, more than reading a small model. Anything else (dense
// link or attribute storage, soft or external links, newer superblocks, compound or enum
// types, ...) makes buildOwnIndex return null and h5wasm reads the file instead.

/**
 * How many paths a walk of a file may visit. Every link takes at least 16 bytes of the file
 * (a 40-byte symbol table entry, or a link message with its 4-byte header, a name and an
 * address), so more paths than that can only come from hard links that fan out (a group
 * linked twice from its parent, and so on down: 2^40 paths in 50 KiB), which would make any
 * walk of the whole tree run for ever.
 */
export function pathBudget(fileSize: number): number {
  return Math.max(64, Math.floor(fileSize / 16));
}

export function tooManyPaths(file: string, fileSize: number): TensorioError {
  return new TensorioError('ERR_BAD_HEADER', `the file links more than ${pathBudget(fileSize)} paths in ${fileSize} bytes: hard links that fan out`, { path: file });
}

export class OwnReaderUnsupported extends Error {}

export interface ParsedType {
  cls: number;
  size: number;
  bigEndian: boolean;
  signed: boolean;
  /** Strings: true for variable length. */
  vlen: boolean;
  /** Strings: padding (0 null-terminated, 1 null-padded, 2 space-padded). */
  pad: number;
}

export interface ParsedSpace {
  /** null for a null dataspace. */
  shape: number[] | null;
}

export interface OwnAttribute {
  type: ParsedType;
  space: ParsedSpace;
  /** File offset and length of the raw value. */
  offset: number;
  length: number;
}

export interface OwnObject {
  kind: 'group' | 'dataset' | 'other' | 'external';
  /** An external link's target. */
  link?: H5ExternalLink;
  messages: HeaderMessage[];
  attributes: Map<string, OwnAttribute>;
  children?: string[];
}

/** Every object of a file by path ('' is the root), or null when h5wasm must read it. */
export type OwnIndex = Map<string, OwnObject>;

export function parseDatatype(bytes: Uint8Array, file: string): ParsedType {
  const b0 = bytes[0] as number;
  const cls = b0 & 0x0f;
  const bits = bytes[1] as number;
  const size = readUint(bytes, 4, 4, file);
  if (cls === H5T_INTEGER) return { cls, size, bigEndian: (bits & 1) === 1, signed: (bits & 8) === 8, vlen: false, pad: 0 };
  if (cls === H5T_FLOAT) {
    if (bits & 0x40) throw new OwnReaderUnsupported('VAX float');
    return { cls, size, bigEndian: (bits & 1) === 1, signed: true, vlen: false, pad: 0 };
  }
  if (cls === H5T_STRING) return { cls, size, bigEndian: false, signed: false, vlen: false, pad: bits & 0x0f };
  if (cls === 9 && (bits & 0x0f) === 1) return { cls: H5T_STRING, size, bigEndian: false, signed: false, vlen: true, pad: (bits >> 4) & 0x0f };
  throw new OwnReaderUnsupported(`datatype class ${cls}`);
}

export function parseDataspace(bytes: Uint8Array, sb: Superblock, file: string): ParsedSpace {
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
    throw new OwnReaderUnsupported(`dataspace version ${version}`);
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
  const body = readStructure(source, m.offset, m.size, `${what} info message`);
  const at = 2 + ((body[1] as number) & 1 ? optionalBytes : 0);
  if (!isUndefinedAddress(body, at, sb.offsetSize)) throw new OwnReaderUnsupported(`dense ${what} storage`);
}

function ownAttributes(source: ByteSource, sb: Superblock, messages: HeaderMessage[]): Map<string, OwnAttribute> {
  const out = new Map<string, OwnAttribute>();
  for (const m of messages) {
    if (m.type === MSG_ATTRIBUTE_INFO) requireCompactStorage(source, sb, m, 'attribute', 2);
    if (m.type !== MSG_ATTRIBUTE) continue;
    const body = readStructure(source, m.offset, m.size, 'attribute message');
    const version = body[0] as number;
    if (version < 1 || version > 3) throw new OwnReaderUnsupported(`attribute message version ${version}`);
    const nameSize = readUint(body, 2, 2, source.path);
    const typeSize = readUint(body, 4, 2, source.path);
    const spaceSize = readUint(body, 6, 2, source.path);
    if (version === 3 && body[8] !== 0 && body[8] !== 1) throw new OwnReaderUnsupported('attribute name encoding');
    const pad = (n: number) => (version === 1 ? Math.ceil(n / 8) * 8 : n);
    let at = version === 3 ? 9 : 8;
    const nameBytes = body.subarray(at, at + nameSize);
    const nul = nameBytes.indexOf(0);
    const name = Buffer.from(nul >= 0 ? nameBytes.subarray(0, nul) : nameBytes).toString('utf8');
    at += pad(nameSize);
    if (version >= 2 && (body[1] as number) & 3) throw new OwnReaderUnsupported('shared attribute datatype');
    const type = parseDatatype(body.subarray(at, at + typeSize), source.path);
    at += pad(typeSize);
    const space = parseDataspace(body.subarray(at, at + spaceSize), sb, source.path);
    at += pad(spaceSize);
    if (at > body.length) throw new TensorioError('ERR_BAD_HEADER', `attribute '${name}' runs past its message`, { path: source.path });
    out.set(name, { type, space, offset: m.offset + at, length: body.length - at });
  }
  return out;
}

/** The children (name → header address) of an old-style group: B-tree v1 → SNOD → local heap. */
function symbolTableChildren(source: ByteSource, sb: Superblock, body: Uint8Array): [string, number][] {
  const btree = sb.base + readUint(body, 0, sb.offsetSize, source.path);
  const heapAddress = sb.base + readUint(body, sb.offsetSize, sb.offsetSize, source.path);
  const heap = readStructure(source, heapAddress, 8 + 2 * sb.lengthSize + sb.offsetSize, 'local heap');
  if (Buffer.from(heap.subarray(0, 4)).toString('latin1') !== 'HEAP') throw new TensorioError('ERR_BAD_HEADER', `no local heap signature at offset ${heapAddress}`, { path: source.path });
  const heapSize = readUint(heap, 8, sb.lengthSize, source.path);
  const heapData = readStructure(source, sb.base + readUint(heap, 8 + 2 * sb.lengthSize, sb.offsetSize, source.path), heapSize, 'local heap data');
  const out: [string, number][] = [];
  const seen = new Set<number>();
  const visitNode = (address: number, depth: number): void => {
    if (depth > 64 || seen.has(address)) throw new TensorioError('ERR_BAD_HEADER', 'the group B-tree has a cycle', { path: source.path });
    seen.add(address);
    const head = readStructure(source, address, 8 + 2 * sb.offsetSize, 'group B-tree node');
    const signature = Buffer.from(head.subarray(0, 4)).toString('latin1');
    if (signature === 'SNOD') {
      const count = readUint(head, 6, 2, source.path);
      const entrySize = 2 * sb.offsetSize + 24;
      const entries = readStructure(source, address + 8, count * entrySize, 'symbol table node');
      for (let i = 0; i < count; i++) {
        const at = i * entrySize;
        const nameOffset = readUint(entries, at, sb.offsetSize, source.path);
        const header = readUint(entries, at + sb.offsetSize, sb.offsetSize, source.path);
        const cacheType = readUint(entries, at + 2 * sb.offsetSize, 4, source.path);
        if (cacheType === 2) throw new OwnReaderUnsupported('soft link');
        const end = heapData.indexOf(0, nameOffset);
        if (nameOffset >= heapData.length || end < 0) throw new TensorioError('ERR_BAD_HEADER', 'a link name lies outside the local heap', { path: source.path });
        out.push([Buffer.from(heapData.subarray(nameOffset, end)).toString('utf8'), sb.base + header]);
      }
      return;
    }
    if (signature !== 'TREE' || head[4] !== 0) throw new TensorioError('ERR_BAD_HEADER', `expected a group B-tree node at offset ${address}`, { path: source.path });
    const entries = readUint(head, 6, 2, source.path);
    const keyed = readStructure(source, address + 8 + 2 * sb.offsetSize, (entries + 1) * sb.lengthSize + entries * sb.offsetSize, 'group B-tree node');
    for (let i = 0; i < entries; i++) {
      const child = readUint(keyed, sb.lengthSize + i * (sb.lengthSize + sb.offsetSize), sb.offsetSize, source.path);
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
    const body = readStructure(source, m.offset, m.size, 'link message');
    const flags = body[1] as number;
    let at = 2;
    let linkType = 0;
    if (flags & 0x08) linkType = body[at++] as number;
    if (flags & 0x04) at += 8;
    if (flags & 0x10) at += 1;
    const lengthSize = 1 << (flags & 3);
    const nameLength = readUint(body, at, lengthSize, source.path);
    at += lengthSize;
    const name = Buffer.from(body.subarray(at, at + nameLength)).toString('utf8');
    at += nameLength;
    if (linkType === 64) out.push([name, decodeExternalLink(body.subarray(at + 2, at + 2 + readUint(body, at, 2, source.path)), joinPath(group, name), source.path)]);
    else if (linkType !== 0) throw new OwnReaderUnsupported('soft or user-defined link');
    else out.push([name, sb.base + readUint(body, at, sb.offsetSize, source.path)]);
  }
  // HDF5 (and so h5py and h5wasm) lists links by name unless asked for creation order.
  return out.sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

/** Walks the whole file from the root group; null when h5wasm is needed. */
export function buildOwnIndex(source: ByteSource, sb: Superblock): OwnIndex | null {
  if (sb.version > 1) return null;
  const index: OwnIndex = new Map();
  try {
    const visit = (path: string, address: number, depth: number): void => {
      if (index.size >= pathBudget(source.size)) throw tooManyPaths(source.path, source.size);
      if (depth > 64) throw new OwnReaderUnsupported('a hard-link cycle');
      const messages = headerMessages(source, sb, address);
      const attributes = ownAttributes(source, sb, messages);
      const table = messages.find((m) => m.type === MSG_SYMBOL_TABLE);
      const isGroup = table !== undefined || messages.some((m) => m.type === MSG_LINK_INFO || m.type === MSG_LINK || m.type === 0x0a);
      if (isGroup) {
        const children = table ? symbolTableChildren(source, sb, readStructure(source, table.offset, table.size, 'symbol table message')) : linkMessageChildren(source, sb, messages, path);
        index.set(path, { kind: 'group', messages, attributes, children: children.map(([name]) => name) });
        for (const [name, child] of children) {
          if (typeof child === 'number') visit(path === '' ? name : `${path}/${name}`, child, depth + 1);
          else index.set(child.path, { kind: 'external', messages: [], attributes: new Map(), link: child });
        }
        return;
      }
      if (messages.some((m) => m.type === MSG_LAYOUT)) {
        const typeMessage = messages.find((m) => m.type === MSG_DATATYPE);
        if (!typeMessage) throw new TensorioError('ERR_BAD_HEADER', `dataset '${path}' has no datatype message`, { path: source.path });
        parseDatatype(readStructure(source, typeMessage.offset, typeMessage.size, 'datatype message'), source.path);
        // Parsed now, so a dataspace this reader does not know hands the file to h5wasm
        // rather than failing later in info().
        const spaceMessage = messages.find((m) => m.type === MSG_DATASPACE);
        if (spaceMessage) parseDataspace(readStructure(source, spaceMessage.offset, spaceMessage.size, 'dataspace message'), sb, source.path);
        index.set(path, { kind: 'dataset', messages, attributes });
        return;
      }
      index.set(path, { kind: 'other', messages, attributes });
    };
    visit('', sb.rootAddress, 0);
    return index;
  } catch (error) {
    if (error instanceof OwnReaderUnsupported) return null;
    throw error;
  }
}

/** Reads a variable-length string from the global heap. */
export function globalHeapString(source: ByteSource, sb: Superblock, collection: number, objectIndex: number, cache: Map<number, Uint8Array>): Uint8Array {
  let bytes = cache.get(collection);
  if (!bytes) {
    const head = readStructure(source, collection, 8 + sb.lengthSize, 'global heap collection');
    if (Buffer.from(head.subarray(0, 4)).toString('latin1') !== 'GCOL') throw new TensorioError('ERR_BAD_HEADER', `no global heap signature at offset ${collection}`, { path: source.path });
    bytes = readStructure(source, collection, readUint(head, 8, sb.lengthSize, source.path), 'global heap collection');
    cache.set(collection, bytes);
  }
  let at = 8 + sb.lengthSize;
  while (at + 8 + sb.lengthSize <= bytes.length) {
    const index = readUint(bytes, at, 2, source.path);
    const size = readUint(bytes, at + 8, sb.lengthSize, source.path);
    const data = at + 8 + sb.lengthSize;
    if (index === objectIndex) {
      if (data + size > bytes.length) break;
      return bytes.subarray(data, data + size);
    }
    if (index === 0) break;
    at = data + Math.ceil(size / 8) * 8;
  }
  throw new TensorioError('ERR_BAD_HEADER', `global heap object ${objectIndex} not found in the collection at ${collection}`, { path: source.path });
}

/**
 * The bytes of the variable-length element (a string) at `at` of `raw`: its length, then the
 * global heap ID (collection address, object index) of its bytes.
 */
export function vlenElement(source: ByteSource, sb: Superblock, raw: Uint8Array, at: number, cache: Map<number, Uint8Array>): Uint8Array {
  const length = readUint(raw, at, 4, source.path);
  return length === 0 ? new Uint8Array(0) : globalHeapString(source, sb, sb.base + readUint(raw, at + 4, sb.offsetSize, source.path), readUint(raw, at + 4 + sb.offsetSize, 4, source.path), cache).subarray(0, length);
}

export function ownAttributeValue(source: ByteSource, sb: Superblock, attr: OwnAttribute, name: string, cache: Map<number, Uint8Array>): H5AttributeValue {
  const { type, space } = attr;
  if (space.shape === null) return null;
  const count = shapeSize(space.shape, source.path);
  if (type.cls === H5T_STRING) {
    const strings: string[] = [];
    const element = type.vlen ? 4 + sb.offsetSize + 4 : type.size;
    if (count * element > attr.length) throw new TensorioError('ERR_BAD_HEADER', `attribute '${name}' holds fewer bytes than its ${count} strings need`, { path: source.path });
    const raw = readStructure(source, attr.offset, count * element, 'attribute value');
    for (let i = 0; i < count; i++) {
      let bytes: Uint8Array;
      if (type.vlen) {
        bytes = vlenElement(source, sb, raw, i * element, cache);
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
  if (!info) throw new TensorioError('ERR_UNSUPPORTED_DTYPE', `attribute '${name}' has an HDF5 type tensorio does not read`, { path: source.path });
  if (count * info.itemSize > attr.length) throw new TensorioError('ERR_BAD_HEADER', `attribute '${name}' holds fewer bytes than its shape needs`, { path: source.path });
  const data = new info.array(count * info.lanes);
  checkInside(source, attr.offset, data.byteLength, 'attribute value');
  source.readInto(attr.offset, data, 'attribute value');
  if (type.bigEndian) byteswap(data, info.swapSize);
  if (space.shape.length === 0) {
    const value = data[0] as number | bigint;
    return value;
  }
  return { dtype: info.name, shape: [...space.shape], data };
}

/** The {@link StructureReader} over an index {@link buildOwnIndex} made: no h5wasm at all. */
export class OwnReader implements StructureReader {
  private readonly heapCache = new Map<number, Uint8Array>();

  constructor(
    private readonly source: ByteSource,
    private readonly superblock: Superblock,
    private readonly index: OwnIndex,
  ) {}

  kind(p: string): ObjectKind {
    return this.index.get(p)?.kind ?? 'missing';
  }

  children(group: string): string[] {
    return this.ownObject(group).children ?? [];
  }

  externalLink(p: string): H5ExternalLink | undefined {
    return this.index.get(p)?.link;
  }

  attributeNames(p: string): string[] {
    return [...this.ownObject(p).attributes.keys()];
  }

  attribute(p: string, name: string): H5AttributeValue | undefined {
    const attr = this.ownObject(p).attributes.get(name);
    return attr ? ownAttributeValue(this.source, this.superblock, attr, name, this.heapCache) : undefined;
  }

  metadata(p: string): H5Metadata {
    const object = this.ownObject(p);
    const typeMessage = object.messages.find((m) => m.type === MSG_DATATYPE) as HeaderMessage;
    const type = parseDatatype(readStructure(this.source, typeMessage.offset, typeMessage.size, 'datatype message'), this.source.path);
    const spaceMessage = object.messages.find((m) => m.type === MSG_DATASPACE);
    if (!spaceMessage) throw new TensorioError('ERR_BAD_HEADER', `dataset '${p}' has no dataspace message`, { path: this.source.path });
    const space = parseDataspace(readStructure(this.source, spaceMessage.offset, spaceMessage.size, 'dataspace message'), this.superblock, this.source.path);
    return { type: type.cls, size: type.size, signed: type.signed, littleEndian: !type.bigEndian, vlen: type.vlen, shape: space.shape, total_size: 0, chunks: null };
  }

  header(p: string): HeaderMessage[] {
    return this.ownObject(p).messages;
  }

  private ownObject(p: string): OwnObject {
    const object = this.index.get(p);
    if (!object) throw notFound(this.source.path, p);
    return object;
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
    const index = buildOwnIndex(source, sb);
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
