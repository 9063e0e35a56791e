/**
 * Reading PyTorch checkpoints: the zip format of `torch.save` (1.6 and later) through the zip
 * reader, and the legacy format (consecutive pickles, then the raw storages), both unpickled
 * with the weights-only profile (profile.ts); tensors become NdArrays in tensor.ts.
 *
 * Zip layout (torch/serialization.py, caffe2's PyTorchStreamWriter): one top folder, whatever
 * its name, holding `data.pkl` (protocol 2), `data/<key>` per storage (stored, data 64-byte
 * aligned), `byteorder`, `version` and newer records. Legacy layout: pickles of the magic
 * number, the protocol version 1001, sys_info, the object and the list of storage keys, then per
 * key an int64 element count and the storage's bytes (always little-endian: torch swapped on
 * big-endian hosts when it wrote them).
 */
import { checkOptions, OPTIONS } from '../../options.js';
import { TensorioError } from '../../errors.js';
import { mapWholeFile } from '../../io/map.js';
import { closeQuietly, openForRead, openForReadAsync, readExactly, readExactlySync } from '../../io/read.js';
import { type LoadedArray } from '../../ndarray.js';
import { unpickle } from '../pickle/unpickler.js';
import type { PyObject } from '../pickle/values.js';
import {
  bytesSource,
  bytesSourceSync,
  checkMemberSize,
  fdSource,
  fdSourceSync,
  memberDataOffset,
  dataOffset,
  memberDataOffsetSync,
  readCentralDirectory,
  readCentralDirectorySync,
  readMember,
  readMemberSync,
  type ZipEntry,
  type ZipSource,
  type ZipSourceSync,
} from '../zip.js';
import { StorageRef, TensorRef, torchProfile, type StorageClaims } from './profile.js';
import { isTorchIndexPath, openShardedTorch, openShardedTorchSync } from './sharded.js';
import { copyBudget, isCContiguous, tensorFromStorage, type CopyBudget, type StorageBytes } from './tensor.js';

/** Options of {@link readTorch} and {@link openTorch}. */
export interface TorchReadOptions {
  /**
   * Map the file and return contiguous little-endian tensors as views into the mapping.
   * Default false: each storage is read once, and the tensors on it share it; an eager read of
   * the whole object reads consecutive storages of a zip as regions of up to 64 MiB, one buffer
   * each (a tensor kept alive keeps its region). Each array's `mapped` and `copyReason` say which path was taken.
   */
  mmap?: boolean;
  /** Largest storage (zip member) accepted, in bytes. Default 16 GiB. */
  maxMemberSize?: number;
  /** Largest pickle accepted, in bytes. Default 1 GiB. */
  maxPickleSize?: number;
  /**
   * Most bytes the C-order copies of one read (one `get`, or the whole `value`/`readTorch`) may
   * take: copies of strided, expanded (stride 0), big-endian or unaligned tensors. Default twice
   * the file's size plus 64 MiB, so a small file cannot make tensorio allocate gigabytes.
   */
  maxCopySize?: number;
  /**
   * Check each storage's CRC-32 when it is read (not when it is mapped). Default false, as
   * torch.load does (and torch.save with `set_crc32_options(False)` writes none): a CRC of
   * gigabytes costs more than reading them from the page cache. `data.pkl` is always checked
   * when its CRC was written.
   */
  verifyCrc?: boolean;
}

/** What {@link readTorch} returns: the saved object with an NdArray for every tensor. */
export type TorchValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | LoadedArray
  | TorchValue[]
  | { [key: string]: TorchValue }
  | Map<TorchValue, TorchValue>
  | Set<TorchValue>;

/** What {@link TorchFile.info} reports about one tensor, from the pickle alone. */
export interface TorchTensorInfo {
  name: string;
  dtype: LoadedArray['dtype'];
  shape: number[];
  /** In elements. */
  stride: number[];
  /** In elements of the tensor's dtype. */
  storageOffset: number;
  /** The storage's key (`data/<key>` in a zip). */
  storage: string;
  /** The file holding the tensor (a shard, for a sharded checkpoint). */
  file: string;
  /** Elements the storage claims (bytes for an UntypedStorage). */
  storageNumel: number;
  contiguous: boolean;
  /** Rebuilt as an `nn.Parameter`. */
  parameter: boolean;
}

/** A checkpoint opened lazily: the pickle is read, no storage yet. */
export interface TorchFile {
  readonly path: string;
  /** 'sharded' for a `*.bin.index.json` checkpoint (see sharded.ts). */
  readonly format: 'zip' | 'legacy' | 'sharded';
  /** 'mixed' when a sharded checkpoint's shards disagree. */
  readonly byteOrder: 'little' | 'big' | 'mixed';
  /** The files behind this view: the file itself, or every shard in the index's order. */
  readonly files: readonly string[];
  /** Every tensor by its path through the object (`model.fc1.weight`, `state.0.exp_avg`, `0`; '' for a bare tensor). */
  keys(): string[];
  has(name: string): boolean;
  /** @throws TensorioError `ERR_NOT_FOUND_IN_ARCHIVE`, `ERR_CLOSED`. */
  info(name: string): TorchTensorInfo;
  /** Reads one tensor. @throws TensorioError `ERR_NOT_FOUND_IN_ARCHIVE`, `ERR_CLOSED`, storage errors. */
  get(name: string): Promise<LoadedArray>;
  /** The whole object with every tensor read (what {@link readTorch} returns). */
  value(): Promise<TorchValue>;
  /** Closes the file; arrays already returned stay valid. */
  close(): void;
}

const DEFAULT_MAX_PICKLE = 2 ** 30;
const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;

/** True when the first bytes look like a PyTorch file (a zip, or a legacy pickle of torch's magic number). */
export function looksLikeTorch(prefix: Uint8Array): boolean {
  if (prefix[0] === 0x50 && prefix[1] === 0x4b && prefix[2] === 0x03 && prefix[3] === 0x04) return true;
  // Protocol 2: PROTO 2, LONG1 of 10 bytes, the magic's little-endian bytes.
  const p2 = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
  if (p2.every((b, i) => prefix[i] === b)) return true;
  // Protocols 0 and 1 write the magic as a text LONG.
  return new TextDecoder('latin1').decode(prefix.subarray(0, 27)) === 'L119547037146038801333356L\n';
}

// The parser is written once, as generators that yield what they need from the file (bytes,
// the zip directory, a member, a member's data offset, a storage): the async entry points and
// the sync ones drive the same code (as zip.ts does for its directory walkers).
type Need =
  | { readonly op: 'bytes'; readonly position: number; readonly length: number; readonly what: string }
  | { readonly op: 'directory' }
  | { readonly op: 'member'; readonly entry: ZipEntry; readonly maxMemberSize: number | undefined; readonly verify: boolean }
  | { readonly op: 'dataOffset'; readonly entry: ZipEntry }
  | { readonly op: 'storage'; readonly ref: StorageRef }
  | { readonly op: 'storages'; readonly refs: readonly StorageRef[] };
type Walk<T> = Generator<Need, T, unknown>;

function* bytesAt(position: number, length: number, what: string): Walk<Uint8Array> {
  return (yield { op: 'bytes', position, length, what }) as Uint8Array;
}
// torch.save(compute_crc32=False) writes records with a zero CRC, and torch.load never checks
// CRCs: a record's CRC is checked only when it was written.
function* member(entry: ZipEntry, maxMemberSize?: number, verify = entry.crc32 !== 0): Walk<Uint8Array> {
  return (yield { op: 'member', entry, maxMemberSize, verify }) as Uint8Array;
}

interface Container {
  readonly format: 'zip' | 'legacy';
  readonly bigEndian: boolean;
  readonly root: PyObject;
  storage(ref: StorageRef): Walk<StorageBytes>;
  /**
   * Reads many storages at once, for an eager read of the whole object: stored members that
   * follow each other in the file are read as one region (one split, parallel read instead of
   * two small reads per storage), each storage a view of it. Those it leaves out are read one
   * by one by {@link storage}.
   */
  preload?(refs: readonly StorageRef[]): Walk<Map<string, StorageBytes>>;
}

/** What the drivers know of the open file. */
interface FileState {
  readonly path: string;
  readonly size: number;
  readonly mapping: Uint8Array | undefined;
}

function checkRange(file: FileState, position: number, length: number, what: string): void {
  if (position + length > file.size) {
    throw new TensorioError('ERR_TRUNCATED', `file ends inside the ${what}: ${length} bytes needed at offset ${position}, the file has ${file.size}`, { path: file.path });
  }
}

function* zipContainer(file: FileState, options: TorchReadOptions): Walk<Container> {
  const path = file.path;
  const entries = (yield { op: 'directory' }) as ZipEntry[];
  const byName = new Map<string, ZipEntry>(entries.map((e) => [e.name, e]));
  const first = entries[0]?.name ?? '';
  const slash = first.indexOf('/');
  if (slash <= 0) throw new TensorioError('ERR_BAD_HEADER', `not a PyTorch archive: its first member '${first}' is not inside a top folder`, { path });
  const prefix = first.slice(0, slash + 1);
  if (entries.some((e) => e.name.startsWith(`${prefix}code/`))) {
    throw new TensorioError('ERR_UNSAFE_PICKLE', 'a TorchScript archive (torch.jit.save): it holds code that torch.jit.load runs; tensorio reads torch.save files only, nothing was run', { path });
  }
  const pkl = byName.get(`${prefix}data.pkl`);
  if (!pkl) throw new TensorioError('ERR_BAD_HEADER', `not a PyTorch archive: no ${prefix}data.pkl`, { path });
  const maxPickle = options.maxPickleSize ?? DEFAULT_MAX_PICKLE;
  if (pkl.uncompressedSize > maxPickle) throw new TensorioError('ERR_TOO_LARGE', `data.pkl is ${pkl.uncompressedSize} bytes, over the limit of ${maxPickle}; pass { maxPickleSize } if you trust this file`, { path });
  let bigEndian = false;
  const order = byName.get(`${prefix}byteorder`);
  if (order) {
    const text = new TextDecoder().decode(yield* member(order, 16));
    if (text !== 'little' && text !== 'big') throw new TensorioError('ERR_BAD_HEADER', `the byteorder record says '${text.slice(0, 20)}', expected 'little' or 'big'`, { path });
    bigEndian = text === 'big';
  }
  checkNoOverlap(entries.filter((e) => e.name.startsWith(`${prefix}data/`)), path);
  const claims: StorageClaims = new Map();
  const root = unpickle(yield* member(pkl, maxPickle), { path: `${path}[data.pkl]`, profile: torchProfile(`${path}[data.pkl]`, claims) });
  return {
    format: 'zip',
    bigEndian,
    root,
    *storage(ref: StorageRef): Walk<StorageBytes> {
      const name = `${prefix}data/${ref.key}`;
      const entry = byName.get(name);
      if (!entry) throw new TensorioError('ERR_NOT_FOUND_IN_ARCHIVE', `the pickle names storage '${ref.key}', and the archive has no member ${name}`, { path });
      checkMemberSize(entry, path, options.maxMemberSize);
      if (file.mapping && entry.method === 0) {
        const start = (yield { op: 'dataOffset', entry }) as number;
        return { bytes: file.mapping.subarray(start, start + entry.compressedSize), mapped: true, bigEndian };
      }
      return { bytes: yield* member(entry, options.maxMemberSize, options.verifyCrc === true), mapped: false, bigEndian };
    },
    *preload(refs: readonly StorageRef[]): Walk<Map<string, StorageBytes>> {
      const out = new Map<string, StorageBytes>();
      // CRCs are checked member by member; a mapping needs no reads.
      if (file.mapping || options.verifyCrc === true) return out;
      const wanted = refs.flatMap((ref) => {
        const entry = byName.get(`${prefix}data/${ref.key}`);
        if (!entry || entry.method !== 0) return [];
        checkMemberSize(entry, path, options.maxMemberSize);
        return [{ key: ref.key, entry }];
      });
      for (const run of storageRuns(wanted, entries, file.size)) {
        const region = yield* bytesAt(run.start, run.end - run.start, `storages ${run.members[0]?.key}..${run.members[run.members.length - 1]?.key}`);
        for (const { key, entry } of run.members) {
          const start = dataOffsetIn(region, run.start, entry, path);
          // A local header that does not fit the region is read (and reported) on its own.
          if (start !== undefined) out.set(key, { bytes: region.subarray(start - run.start, start - run.start + entry.compressedSize), mapped: false, bigEndian });
        }
      }
      return out;
    },
  };
}

/** At most this many bytes of storages are read into one buffer: a tensor kept alive keeps its region. */
const REGION_LIMIT = 64 << 20;
/** Members between wanted storages up to this size are read along rather than starting a new region. */
const REGION_GAP = 1 << 20;

/**
 * The wanted stored members grouped into regions of the file to read whole: in file order,
 * each member's slot running to the next member's local header (or the file's end), a region
 * closed when it would pass {@link REGION_LIMIT} or the next slot is more than
 * {@link REGION_GAP} away.
 */
function storageRuns<T extends { entry: ZipEntry }>(wanted: T[], all: readonly ZipEntry[], size: number): { start: number; end: number; members: T[] }[] {
  const offsets = [...new Set(all.map((e) => e.localHeaderOffset))].sort((a, b) => a - b);
  const next = (at: number): number => {
    let lo = 0;
    let hi = offsets.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((offsets[mid] as number) <= at) lo = mid + 1;
      else hi = mid;
    }
    return lo < offsets.length ? (offsets[lo] as number) : size;
  };
  const runs: { start: number; end: number; members: T[] }[] = [];
  for (const item of [...wanted].sort((a, b) => a.entry.localHeaderOffset - b.entry.localHeaderOffset)) {
    const start = item.entry.localHeaderOffset;
    const end = Math.min(size, next(start));
    const last = runs[runs.length - 1];
    if (last && start >= last.end && start - last.end <= REGION_GAP && end - last.start <= REGION_LIMIT) {
      last.end = end;
      last.members.push(item);
    } else {
      // From a multiple of 64 before the local header: torch aligns the data to 64 bytes in the
      // file, so the views into the (page-aligned) region are aligned for every dtype too.
      runs.push({ start: start - (start % 64), end, members: [item] });
    }
  }
  return runs;
}

/** A stored member's data offset from its local header inside `region` (at file offset `base`), or undefined when it does not fit. */
function dataOffsetIn(region: Uint8Array, base: number, entry: ZipEntry, path: string): number | undefined {
  const end = base + region.length;
  try {
    // The local header walker, answered from the region instead of the file.
    const walk = dataOffset(end, entry, path);
    let step = walk.next();
    while (!step.done) {
      const [position, length] = step.value;
      if (position < base || position + length > end) throw new RangeError('outside the region');
      step = walk.next(region.subarray(position - base, position - base + length));
    }
    const start = step.value;
    return start + entry.compressedSize <= end ? start : undefined;
  } catch (error) {
    if (error instanceof RangeError || (error instanceof TensorioError && error.code === 'ERR_TRUNCATED')) return undefined;
    throw error;
  }
}

/**
 * Storage members must not overlap: torch writes each once, one after another. A directory whose
 * entries share bytes would make each storage read the same bytes again, so a small file could
 * make an eager read allocate its size once per entry. Each member spans at least its 30-byte
 * local header and its data from its offset.
 */
function checkNoOverlap(entries: ZipEntry[], path: string): void {
  const sorted = [...entries].sort((a, b) => a.localHeaderOffset - b.localHeaderOffset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1] as ZipEntry;
    const next = sorted[i] as ZipEntry;
    if (next.localHeaderOffset < prev.localHeaderOffset + 30 + prev.compressedSize) {
      throw new TensorioError('ERR_BAD_ZIP', `members '${prev.name}' and '${next.name}' overlap (at offsets ${prev.localHeaderOffset} and ${next.localHeaderOffset})`, { path });
    }
  }
}

/** Unpickles the pickle starting at `at`, reading more of the file until it is whole. */
function* pickleAt(file: FileState, at: number, options: TorchReadOptions, claims: StorageClaims): Walk<{ value: PyObject; end: number }> {
  const limit = Math.min(file.size - at, options.maxPickleSize ?? DEFAULT_MAX_PICKLE);
  let length = Math.min(limit, 1 << 16);
  for (;;) {
    const bytes = yield* bytesAt(at, length, 'pickle');
    let end = -1;
    try {
      const value = unpickle(bytes, { path: file.path, profile: torchProfile(file.path, claims), onStop: (e) => (end = e) });
      return { value, end: at + end };
    } catch (error) {
      // A pickle cut off by the read's end is read again with more bytes; any other error, or
      // one at the limit, is the file's.
      const cut = error instanceof TensorioError && error.code === 'ERR_BAD_PICKLE' && /ends|STOP/.test(error.message);
      if (!cut || length >= limit) throw error;
      length = Math.min(limit, length * 4);
    }
  }
}

function* legacyContainer(file: FileState, options: TorchReadOptions): Walk<Container> {
  const path = file.path;
  const claims: StorageClaims = new Map();
  const magic = yield* pickleAt(file, 0, options, claims);
  if (magic.value !== LEGACY_MAGIC) throw new TensorioError('ERR_BAD_MAGIC', 'not a PyTorch file: the first pickle is not torch\'s magic number', { path });
  const protocol = yield* pickleAt(file, magic.end, options, claims);
  if (protocol.value !== LEGACY_PROTOCOL) throw new TensorioError('ERR_UNSUPPORTED_VERSION', `legacy protocol version ${String(protocol.value)}, expected ${LEGACY_PROTOCOL}`, { path });
  const sysInfo = yield* pickleAt(file, protocol.end, options, claims);
  const main = yield* pickleAt(file, sysInfo.end, options, claims);
  const keys = yield* pickleAt(file, main.end, options, claims);
  if (!Array.isArray(keys.value) || !keys.value.every((k) => typeof k === 'string')) throw new TensorioError('ERR_BAD_HEADER', 'the legacy storage key list is not a list of strings', { path });
  // The data section: per key, an int64 element count and the bytes. Each count is checked
  // against what is left of the file before anything is read or allocated.
  const places = new Map<string, { offset: number; length: number }>();
  let at = keys.end;
  for (const key of keys.value as string[]) {
    const claim = claims.get(key);
    if (!claim) throw new TensorioError('ERR_BAD_HEADER', `the legacy key list names storage '${key}', which no tensor uses`, { path });
    const head = yield* bytesAt(at, 8, `count of storage '${key}'`);
    const n = new DataView(head.buffer, head.byteOffset, 8).getBigInt64(0, true);
    const left = file.size - at - 8;
    if (n < 0n || n * BigInt(claim.itemSize) > BigInt(left)) {
      throw new TensorioError('ERR_TRUNCATED', `storage '${key}' claims ${n} elements of ${claim.itemSize} bytes at offset ${at + 8}, the file has ${left} bytes left`, { path });
    }
    const length = Number(n) * claim.itemSize;
    places.set(key, { offset: at + 8, length });
    at += 8 + length;
  }
  return {
    format: 'legacy',
    bigEndian: false,
    root: main.value,
    *storage(ref: StorageRef): Walk<StorageBytes> {
      const place = places.get(ref.key);
      if (!place) throw new TensorioError('ERR_NOT_FOUND_IN_ARCHIVE', `the pickle names storage '${ref.key}', which the file's key list does not hold`, { path });
      const bytes = yield* bytesAt(place.offset, place.length, `storage '${ref.key}'`);
      if (!file.mapping) return { bytes, mapped: false, bigEndian: false };
      // Legacy storages follow each other unpadded, so one may start off its dtype's alignment.
      // It is then copied once, whole, so the tensors on it (tied weights) still share memory.
      const align = Math.min(claims.get(ref.key)?.itemSize ?? 1, 8);
      if (place.offset % align === 0) return { bytes, mapped: true, bigEndian: false };
      return { bytes: bytes.slice(), mapped: false, bigEndian: false, copyReason: `storage '${ref.key}' starts at byte ${place.offset} of the legacy file, off its ${align}-byte alignment, and was copied` };
    },
  };
}

/** The container from the file's first bytes. */
function* container(file: FileState, prefix: Uint8Array, options: TorchReadOptions): Walk<Container> {
  const path = file.path;
  if (prefix[0] === 0x50 && prefix[1] === 0x4b) return yield* zipContainer(file, options);
  if (looksLikeTorch(prefix)) return yield* legacyContainer(file, options);
  if (new TextDecoder('latin1').decode(prefix.subarray(257, 262)) === 'ustar') {
    throw new TensorioError('ERR_UNSUPPORTED_VERSION', 'a tar archive: the tar layout of torch before 0.1.10 is not read', { path });
  }
  throw new TensorioError('ERR_BAD_MAGIC', 'not a PyTorch file: neither a zip archive nor a legacy pickle of torch\'s magic number', { path });
}

type Ref = TensorRef | StorageRef;

/** A legacy storage saved as a value (pre-0.4 files): a flat tensor of its elements. */
function asTensor(ref: Ref): TensorRef {
  if (ref instanceof TensorRef) return ref;
  const size = ref.view ? ref.view.size : ref.numel;
  if (ref.dtype === null) throw new TensorioError('ERR_BAD_VALUE', `an UntypedStorage '${ref.key}' saved on its own has no dtype`);
  return new TensorRef(ref, ref.dtype, ref.view?.offset ?? 0, [size], [1], false);
}

/**
 * Every tensor reachable from `root`, by its path (keys joined with '.'). A container the pickle
 * shares (the memo makes a DAG) is walked once, under its first path: walking it again for each
 * path would let a pickle of a few hundred bytes, nesting shared lists, take exponential time.
 */
function tensorPaths(root: PyObject): Map<string, Ref> {
  const out = new Map<string, Ref>();
  const seen = new Set<object>();
  const visit = (value: unknown, name: string): void => {
    if (value instanceof TensorRef || value instanceof StorageRef) {
      if (!out.has(name)) out.set(name, value);
      return;
    }
    if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value) || seen.has(value)) return;
    seen.add(value);
    const join = (key: string): string => (name === '' ? key : `${name}.${key}`);
    if (Array.isArray(value)) value.forEach((v, i) => visit(v, join(String(i))));
    else if (value instanceof Map) for (const [k, v] of value) visit(v, join(String(k)));
    else if (!(value instanceof Set)) for (const [k, v] of Object.entries(value)) visit(v, join(k));
  };
  visit(root, '');
  return out;
}

/** The parsed pickle and its tensors; the drivers below read storages for it. */
class Core {
  readonly paths: Map<string, Ref>;
  closed = false;

  constructor(
    readonly path: string,
    readonly fd: number,
    readonly size: number,
    readonly container: Container,
    readonly options: TorchReadOptions,
    readonly mapReason: string | undefined,
  ) {
    this.paths = tensorPaths(container.root);
  }

  ref(name: string): Ref {
    if (this.closed) throw new TensorioError('ERR_CLOSED', 'the file is closed', { path: this.path });
    const ref = this.paths.get(name);
    if (!ref) {
      const keys = [...this.paths.keys()].slice(0, 20).map((k) => `'${k}'`).join(', ');
      throw new TensorioError('ERR_NOT_FOUND_IN_ARCHIVE', `no tensor '${name}'; the file holds ${keys || 'none'}${this.paths.size > 20 ? ', ...' : ''}`, { path: this.path });
    }
    return ref;
  }

  info(name: string): TorchTensorInfo {
    const t = asTensor(this.ref(name));
    return {
      name,
      dtype: t.dtype,
      shape: [...t.shape],
      stride: [...t.stride],
      storageOffset: t.offset,
      storage: t.storage.key,
      file: this.path,
      storageNumel: t.storage.numel,
      contiguous: isCContiguous(t.shape, t.stride),
      parameter: t.parameter,
    };
  }

  /** Bytes of the storage a tensor is on (the root storage's, for a legacy view). */
  storageBytes(name: string): number {
    const s = asTensor(this.ref(name)).storage;
    return s.numel * s.itemSize;
  }

  *tensor(ref: Ref, budget = copyBudget(this.size, this.options.maxCopySize)): Walk<LoadedArray> {
    const t = asTensor(ref);
    const bytes = (yield { op: 'storage', ref: t.storage }) as StorageBytes;
    return tensorFromStorage(t, bytes, this.options.mmap === true, this.path, this.mapReason, budget);
  }

  *value(): Walk<TorchValue> {
    if (this.closed) throw new TensorioError('ERR_CLOSED', 'the file is closed', { path: this.path });
    const done = new Map<unknown, TorchValue>();
    const self = this;
    const budget: CopyBudget = copyBudget(this.size, this.options.maxCopySize);
    function* convert(value: unknown): Walk<TorchValue> {
      if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value)) return value as TorchValue;
      const seen = done.get(value);
      if (seen !== undefined) return seen;
      if (value instanceof TensorRef || value instanceof StorageRef) {
        const array = yield* self.tensor(value, budget);
        done.set(value, array);
        return array;
      }
      if (Array.isArray(value)) {
        const out: TorchValue[] = [];
        done.set(value, out);
        for (const item of value) out.push(yield* convert(item));
        return out;
      }
      if (value instanceof Map) {
        const out = new Map<TorchValue, TorchValue>();
        done.set(value, out);
        for (const [k, v] of value) out.set(yield* convert(k), yield* convert(v));
        return out;
      }
      if (value instanceof Set) {
        const out = new Set<TorchValue>();
        done.set(value, out);
        for (const item of value) out.add(yield* convert(item));
        return out;
      }
      const out: { [key: string]: TorchValue } = {};
      done.set(value, out);
      for (const [k, v] of Object.entries(value)) {
        Object.defineProperty(out, k, { value: yield* convert(v), enumerable: true, writable: true, configurable: true });
      }
      return out;
    }
    if (!this.options.mmap && this.container.preload) {
      const storages = new Set<StorageRef>();
      for (const ref of this.paths.values()) storages.add(ref instanceof TensorRef ? ref.storage : ref);
      yield { op: 'storages', refs: [...storages] };
    }
    return yield* convert(this.container.root);
  }
}

/**
 * Answers a walk's needs, with synchronous reads or with async ones (the same code: `answer`
 * gives a value when sync, a promise when async). Storages are read once per open file, so
 * tensors on one share its memory.
 */
class Driver {
  private readonly storages = new Map<string, StorageBytes | Promise<StorageBytes>>();
  private readonly preloads: Promise<unknown>[] = [];
  private readonly source: ZipSource;
  private readonly sourceSync: ZipSourceSync;

  constructor(
    private readonly file: FileState,
    private readonly fd: number,
    private readonly sync: boolean,
    private readonly container?: Container,
  ) {
    this.source = file.mapping ? bytesSource(file.mapping, file.path) : fdSource(fd, file.size, file.path);
    this.sourceSync = file.mapping ? bytesSourceSync(file.mapping, file.path) : fdSourceSync(fd, file.size, file.path);
  }

  /** The same driver over the opened container (storage reads need it). */
  over(container: Container): Driver {
    return new Driver(this.file, this.fd, this.sync, container);
  }

  private answer(need: Need): unknown {
    const { file, sync } = this;
    const then = <A, B>(value: A | Promise<A>, next: (a: A) => B): B | Promise<B> => (sync ? next(value as A) : (value as Promise<A>).then(next));
    switch (need.op) {
      case 'bytes': {
        checkRange(file, need.position, need.length, need.what);
        if (file.mapping) return file.mapping.subarray(need.position, need.position + need.length);
        // V8's own buffers, not io's allocateForRead (huge-page mappings from the addon): the
        // preloaded 64 MiB regions read 2-5 times slower into those on this shared machine
        // (512 MiB state dict, fresh processes interleaved: 1.6-4.2 s against 0.37-0.74 s).
        const out = new Uint8Array(need.length);
        return then(sync ? readExactlySync(this.fd, need.position, out, file.path, need.what) : readExactly(this.fd, need.position, out, file.path, need.what), () => out);
      }
      case 'directory':
        return sync ? readCentralDirectorySync(this.sourceSync, file.path) : readCentralDirectory(this.source, file.path);
      case 'member': {
        const options = { verify: need.verify, ...(need.maxMemberSize === undefined ? {} : { maxMemberSize: need.maxMemberSize }) };
        return sync ? readMemberSync(this.sourceSync, need.entry, file.path, options) : readMember(this.source, need.entry, file.path, options);
      }
      case 'dataOffset':
        return sync ? memberDataOffsetSync(this.sourceSync, need.entry, file.path) : memberDataOffset(this.source, need.entry, file.path);
      case 'storage': {
        let bytes = this.storages.get(need.ref.key);
        if (!bytes) {
          bytes = this.run(this.opened().storage(need.ref));
          this.storages.set(need.ref.key, bytes);
        }
        return bytes;
      }
      case 'storages': {
        const container = this.opened();
        const missing = need.refs.filter((ref) => !this.storages.has(ref.key));
        if (missing.length === 0 || !container.preload) return undefined;
        const done = then(this.run(container.preload(missing)), (read) => {
          for (const [key, bytes] of read) if (!this.storages.has(key)) this.storages.set(key, bytes);
        });
        // close() waits for these reads too before it closes the descriptor.
        if (done instanceof Promise) this.preloads.push(done);
        return done;
      }
    }
  }

  private opened(): Container {
    if (!this.container) throw new Error('a storage asked for while opening');
    return this.container;
  }

  /** Runs a walk: its value when sync, a promise of it when async. */
  run<T>(walk: Walk<T>): T | Promise<T> {
    if (this.sync) {
      let step = walk.next();
      while (!step.done) step = walk.next(this.answer(step.value));
      return step.value;
    }
    return (async () => {
      let step = walk.next();
      while (!step.done) step = walk.next(await this.answer(step.value));
      return step.value;
    })();
  }

  runSync<T>(walk: Walk<T>): T {
    return this.run(walk) as T;
  }

  runAsync<T>(walk: Walk<T>): Promise<T> {
    return this.run(walk) as Promise<T>;
  }

  /** Settles when every storage read started so far has. */
  idle(): Promise<unknown> {
    return Promise.allSettled([...this.storages.values(), ...this.preloads]);
  }
}

/** What the async and the sync file share: everything but reading tensor data. */
abstract class TorchFileBase {
  constructor(protected readonly core: Core) {}

  get path(): string {
    return this.core.path;
  }
  get format(): 'zip' | 'legacy' {
    return this.core.container.format;
  }
  get byteOrder(): 'little' | 'big' {
    return this.core.container.bigEndian ? 'big' : 'little';
  }
  get files(): string[] {
    return [this.core.path];
  }
  keys(): string[] {
    return [...this.core.paths.keys()];
  }
  has(name: string): boolean {
    return this.core.paths.has(name);
  }
  info(name: string): TorchTensorInfo {
    return this.core.info(name);
  }
  storageByteLength(name: string): number {
    return this.core.storageBytes(name);
  }
}

/**
 * Bytes of the storage tensor `name` of an open checkpoint is on (not part of TorchFile's
 * interface: the converter to safetensors needs it, to tell a tensor that covers its storage).
 */
export function torchStorageByteLength(file: TorchFile | TorchFileSync, name: string): number {
  return (file as unknown as { storageByteLength(name: string): number }).storageByteLength(name);
}

class TorchFileImpl extends TorchFileBase implements TorchFile {
  constructor(
    core: Core,
    private readonly driver: Driver,
  ) {
    super(core);
  }

  async get(name: string): Promise<LoadedArray> {
    return this.driver.runAsync(this.core.tensor(this.core.ref(name)));
  }
  async value(): Promise<TorchValue> {
    return this.driver.runAsync(this.core.value());
  }
  close(): void {
    if (this.core.closed) return;
    this.core.closed = true;
    // Reads already started finish first; the descriptor is closed after them.
    void this.driver.idle().then(() => closeQuietly(this.core.fd));
  }
}

/** {@link TorchFile} read synchronously: what {@link openTorchSync} returns. */
export interface TorchFileSync extends Omit<TorchFile, 'get' | 'value'> {
  /** Reads one tensor. @throws TensorioError as {@link TorchFile.get}. */
  get(name: string): LoadedArray;
  /** The whole object with every tensor read (what {@link readTorchSync} returns). */
  value(): TorchValue;
}

class TorchFileSyncImpl extends TorchFileBase implements TorchFileSync {
  constructor(
    core: Core,
    private readonly driver: Driver,
  ) {
    super(core);
  }

  get(name: string): LoadedArray {
    return this.driver.runSync(this.core.tensor(this.core.ref(name)));
  }
  value(): TorchValue {
    return this.driver.runSync(this.core.value());
  }
  close(): void {
    if (this.core.closed) return;
    this.core.closed = true;
    closeQuietly(this.core.fd);
  }
}

function mapIfAsked(fd: number, size: number, path: string, options: TorchReadOptions): { mapping: Uint8Array | undefined; mapReason: string | undefined } {
  if (!options.mmap) return { mapping: undefined, mapReason: undefined };
  const mapped = mapWholeFile(fd, size, path);
  return { mapping: mapped.bytes, mapReason: mapped.reason };
}

/**
 * Opens a PyTorch checkpoint (`torch.save`, zip or legacy format) lazily: the pickle is read
 * and checked, no tensor data yet. With `mmap`, the file is mapped once here. A path ending
 * in `.index.json` (`pytorch_model.bin.index.json`) opens a sharded checkpoint as one view
 * over its shards (see {@link openShardedTorch}).
 * @throws TensorioError `ERR_BAD_MAGIC` (not a PyTorch file), `ERR_UNSAFE_PICKLE` (a global
 * or persistent id `torch.load(weights_only=True)` refuses, a TorchScript archive),
 * `ERR_BAD_PICKLE`, `ERR_BAD_VALUE` (sizes, strides or offsets outside their storage),
 * `ERR_UNSUPPORTED_DTYPE`, `ERR_UNSUPPORTED_VERSION`, `ERR_BAD_ZIP`, `ERR_TRUNCATED`,
 * `ERR_TOO_LARGE`, `ERR_NOT_FOUND`, `ERR_PERMISSION`, `ERR_IO`; for an index, `ERR_BAD_HEADER`
 * (malformed index, a shard outside the index's folder, a tensor missing from its shard).
 */
export async function openTorch(path: string, options: TorchReadOptions = {}): Promise<TorchFile> {
  checkOptions(options, OPTIONS.readTorch, 'openTorch', path);
  if (isTorchIndexPath(path)) return openShardedTorch(path, options);
  return openTorchFile(path, options);
}

/** {@link openTorch} of one file (a shard, or a whole checkpoint). */
export async function openTorchFile(path: string, options: TorchReadOptions = {}): Promise<TorchFile> {
  const { fd, size, prefix } = await openForReadAsync(path, 512);
  try {
    const { mapping, mapReason } = mapIfAsked(fd, size, path, options);
    const file: FileState = { path, size, mapping };
    const driver = new Driver(file, fd, false);
    const parsed = await driver.runAsync(container(file, prefix, options));
    return new TorchFileImpl(new Core(path, fd, size, parsed, options, mapReason), driver.over(parsed));
  } catch (error) {
    closeQuietly(fd);
    throw error;
  }
}

/** Synchronous {@link openTorch} (the same parser, read with synchronous calls). */
export function openTorchSync(path: string, options: TorchReadOptions = {}): TorchFileSync {
  checkOptions(options, OPTIONS.readTorch, 'openTorchSync', path);
  if (isTorchIndexPath(path)) return openShardedTorchSync(path, options);
  return openTorchFileSync(path, options);
}

/** {@link openTorchSync} of one file. */
export function openTorchFileSync(path: string, options: TorchReadOptions = {}): TorchFileSync {
  const { fd, size } = openForRead(path);
  try {
    const prefix = new Uint8Array(Math.min(size, 512));
    readExactlySync(fd, 0, prefix, path, 'first bytes');
    const { mapping, mapReason } = mapIfAsked(fd, size, path, options);
    const file: FileState = { path, size, mapping };
    const driver = new Driver(file, fd, true);
    const parsed = driver.runSync(container(file, prefix, options));
    return new TorchFileSyncImpl(new Core(path, fd, size, parsed, options, mapReason), driver.over(parsed));
  } catch (error) {
    closeQuietly(fd);
    throw error;
  }
}

/**
 * Reads a PyTorch checkpoint as `torch.load(path, weights_only=True)` would, running no code:
 * a state dict becomes a record of name → NdArray, a bare tensor an NdArray, lists, tuples and
 * dicts stay Arrays and records (dicts with non-string keys, such as an optimizer's `state`,
 * Maps), numbers, strings, booleans and None stay themselves. Tensors that share a storage
 * share memory. See {@link TorchReadOptions} for `mmap`.
 * @throws TensorioError every error of {@link openTorch}.
 */
export async function readTorch(path: string, options: TorchReadOptions = {}): Promise<TorchValue> {
  checkOptions(options, OPTIONS.readTorch, 'readTorch', path);
  const file = await openTorch(path, options);
  try {
    return await file.value();
  } finally {
    file.close();
  }
}

/** Synchronous {@link readTorch}. */
export function readTorchSync(path: string, options: TorchReadOptions = {}): TorchValue {
  checkOptions(options, OPTIONS.readTorch, 'readTorchSync', path);
  const file = openTorchSync(path, options);
  try {
    return file.value();
  } finally {
    file.close();
  }
}
