/**
 * Reading NumPy's `.npz` archives: a ZIP file whose members are `.npy` files, `x.npy` holding
 * the array NumPy calls `x` (numpy/lib/npyio.py, NpzFile): the lazy {@link NpzFile}, the whole
 * archive at once (async and sync), and an archive held in memory. Members are read by
 * npz-member.ts; a mapped archive's stored members become views here.
 */
import { checkOptions, keysOf } from '../../options.js';
import { dtypeInfo, type DType } from '../../dtype.js';
import { TensorioError } from '../../errors.js';
import { closeQuietly, openForRead, openForReadAsync } from '../../io/read.js';
import { ByteSource, COPY_REASONS } from '../../io/source.js';
import { type LoadedArray } from '../../ndarray.js';
import { unpickle } from '../pickle/unpickler.js';
import { type PyObject } from '../pickle/values.js';
import {
  checkMemberSize,
  DEFAULT_MAX_MEMBER_SIZE,
  memberDataOffset,
  memberDataOffsetSync,
  readCentralDirectory,
  readCentralDirectorySync,
  readMember,
  readMemberSync,
  type ZipEntry,
} from '../zip.js';
import { arrayFromBuffer } from './array.js';
import {
  headerLimitOf,
  isObjectDescr,
  parseNpyHeader,
  parseNpyRawHeader,
  stringHeader,
  type NpyReadOptions,
} from './header.js';
import { readMemberHeader, readNpyMember, readNpyMemberSync, type MemberResult } from './npz-member.js';
import { decodeStrings, isStringArray, stringDescr, type StringArray } from './strings.js';

/** The options readNpz takes (checked: a misspelt key is ERR_INVALID_ARGUMENT). */
export const READ_NPZ_OPTIONS = keysOf<NpzReadOptions>({ mmap: true, allowPickle: true, maxMemberSize: true, maxHeaderSize: true, strings: true, voidAs: true });

/** Options for reading `.npz` archives. */
export interface NpzReadOptions {
  /**
   * Map the archive (once) and return stored, aligned, little-endian members as views into
   * the mapping. Default false. Other members are read or inflated; each array's `mapped` and
   * `copyReason` say which path was taken. Mapped members are not CRC-checked, since that
   * would read every page. NumPy ignores mmap_mode for `.npz`.
   */
  mmap?: boolean;
  /**
   * Unpickle object-array members (lists, dicts, ragged arrays) with the restricted
   * unpickler. Default false, as in NumPy: an object member then throws
   * `ERR_PICKLE_DISALLOWED`.
   */
  allowPickle?: boolean;
  /** Largest uncompressed member accepted, in bytes. Default 16 GiB. */
  maxMemberSize?: number;
  /** Largest `.npy` header accepted. Default 10,000 (NumPy's limit). */
  maxHeaderSize?: number;
  /**
   * Read `|S<n>`, `<U<n>` and `>U<n>` members as {@link StringArray}s. Default false: such a
   * member is `ERR_UNSUPPORTED_DTYPE` naming it (`readNpz` fails; `openNpz` serves the others).
   */
  strings?: boolean;
  /** How to read raw void members ('<V2', as NumPy 2 saves ml_dtypes bfloat16): see {@link NpyReadOptions.voidAs}. */
  voidAs?: NpyReadOptions['voidAs'];
}

/** What a member reads as, whatever the options. */
type Member = LoadedArray | StringArray | PyObject;

/** An `.npz` archive opened lazily: only the central directory has been read. */
export interface NpzFile<T = LoadedArray> {
  readonly path: string;
  /** Member names with `.npy` removed, in archive order (NumPy's `NpzFile.files`). */
  keys(): string[];
  /** True when `name` (with or without `.npy`) is a member. */
  has(name: string): boolean;
  /**
   * Reads one member (by key, or by its full member name).
   * @throws TensorioError `ERR_NOT_FOUND_IN_ARCHIVE`, `ERR_CLOSED`, `ERR_PICKLE_DISALLOWED`,
   * and every error of {@link readNpz}.
   */
  get(name: string): Promise<T>;
  /**
   * What a member holds, from its `.npy` header alone (a deflated member inflates only its
   * first bytes): dtype, shape, whether it is compressed, and for stored members where its
   * data starts in the archive. Object (pickled) members report `dtype: null`.
   * @throws TensorioError `ERR_NOT_FOUND_IN_ARCHIVE`, `ERR_CLOSED`, header errors.
   */
  info(name: string): Promise<NpzMemberInfo>;
  /**
   * Closes the file. Arrays already returned stay valid (mapped ones keep their mapping
   * until they are collected, or until `unmap(array.data.buffer)`).
   */
  close(): void;
}

/** What {@link NpzFile.info} reports. */
export interface NpzMemberInfo {
  key: string;
  /** Null for an object (pickled) member and for a string member. */
  dtype: DType | null;
  /** For a string member (read with `strings: true`): NumPy's S (bytes) or U (unicode) and its width. */
  strings?: { kind: 'bytes' | 'unicode'; width: number; bigEndian: boolean };
  shape: number[];
  compressed: boolean;
  /** Bytes of array data (uncompressed). */
  dataLength: number;
  /** Absolute offset of the array data in the archive, for stored members. */
  dataOffset?: number;
  bigEndian: boolean;
  fortranOrder: boolean;
}

function keyOf(name: string): string {
  return name.endsWith('.npy') ? name.slice(0, -4) : name;
}

// allowPickle lifts the header limit, as NumPy's NpzFile passes allow_pickle to read_array.
function headerOptionsOf(options: NpzReadOptions): NpyReadOptions {
  const limit = options.maxHeaderSize === undefined && !options.allowPickle ? {} : { maxHeaderSize: headerLimitOf(options) };
  const voidAs = options.voidAs === undefined ? {} : { voidAs: options.voidAs };
  return options.strings ? { ...limit, ...voidAs, strings: true } : { ...limit, ...voidAs };
}

function unpickleMember(bytes: Uint8Array, where: string, options: NpzReadOptions): PyObject {
  checkPickleAllowed(where, options);
  return unpickle(bytes, { path: where });
}

function checkPickleAllowed(where: string, options: NpzReadOptions): void {
  if (!options.allowPickle) {
    throw new TensorioError(
      'ERR_PICKLE_DISALLOWED',
      'the member is an object array stored as a Python pickle; pass { allowPickle: true } to read it with the restricted unpickler',
      { path: where },
    );
  }
}

/**
 * A stored member of a mapped archive: a view into the mapping when its data is aligned and
 * little-endian, else a copy saying why. Not CRC-checked (that would read every page).
 */
function mappedMember(source: ByteSource, start: number, entry: ZipEntry, where: string, options: NpzReadOptions): Member {
  const headerOptions = headerOptionsOf(options);
  // A view into the mapping: its byteOffset is the member's place in the archive's buffer.
  const bytes = source.read(start, entry.compressedSize, 'member');
  const raw = parseNpyRawHeader(bytes, where, headerOptions);
  if (isObjectDescr(raw.descr)) return unpickleMember(bytes.subarray(raw.dataOffset), where, options);
  const strings = options.strings ? stringHeader(raw, where) : undefined;
  if (strings) {
    if (strings.dataOffset + strings.dataLength > bytes.length) {
      throw new TensorioError('ERR_TRUNCATED', `member ends inside the data: ${strings.dataLength} bytes needed at offset ${strings.dataOffset}, the member has ${bytes.length}`, { path: where });
    }
    // Decoded into JavaScript strings: nothing keeps the mapping.
    return decodeStrings(strings.descr, strings.shape, strings.fortranOrder, bytes.subarray(strings.dataOffset, strings.dataOffset + strings.dataLength), where);
  }
  const header = parseNpyHeader(bytes, where, headerOptions);
  const dataStart = bytes.byteOffset + header.dataOffset;
  if (header.dataOffset + header.dataLength > bytes.length) {
    throw new TensorioError('ERR_TRUNCATED', `member ends inside the data: ${header.dataLength} bytes needed at offset ${header.dataOffset}, the member has ${bytes.length}`, { path: where });
  }
  const alignment = dtypeInfo(header.dtype).array.BYTES_PER_ELEMENT;
  let reason: string | undefined;
  if (header.bigEndian) reason = COPY_REASONS.bigEndianConverted;
  else if (dataStart % alignment !== 0) {
    reason = `the member's data starts at offset ${start + header.dataOffset}, not a multiple of the ${header.dtype} size ${alignment} (NumPy does not align .npz members)`;
  }
  if (reason === undefined) return arrayFromBuffer(header, bytes.buffer as ArrayBuffer, dataStart, where, { mapped: true });
  const copy = bytes.slice(header.dataOffset, header.dataOffset + header.dataLength);
  return arrayFromBuffer(header, copy.buffer, 0, where, { mapped: false, copyReason: reason });
}

/**
 * The reads of one member that the synchronous and asynchronous readers make differently
 * (zip.ts and npz-member.ts have both forms): where its data starts, its `.npy` read through
 * the header, and the whole member (a pickle, which declares no length).
 */
type MemberRead = readonly ['offset', ZipEntry] | readonly ['npy', ZipEntry, number] | readonly ['whole', ZipEntry];
// What a MemberRead gives back; each yield takes the one its request asks for.
type MemberReply = number & MemberResult & Uint8Array;
type MemberWalk = Generator<MemberRead, Member, MemberReply>;

/**
 * Reads one member, as NumPy's NpzFile does: with `mmap` and a mapped archive, a stored
 * member is a view into the mapping (or a copy saying why); otherwise its header, then the
 * declared data and no further (npz-member.ts), so a member's stream that holds more than its
 * header declares costs only what it declares; a pickle is read whole (bounded by
 * maxMemberSize) and unpickled only with `allowPickle`.
 */
function* memberWalk(entry: ZipEntry, source: ByteSource, options: NpzReadOptions): MemberWalk {
  const where = `${source.path}[${entry.name}]`;
  checkMemberSize(entry, source.path, options.maxMemberSize);
  const start: number = yield ['offset', entry];
  if (options.mmap && entry.method === 0 && source.inMemory) return mappedMember(source, start, entry, where, options);
  const result: MemberResult = yield ['npy', entry, start];
  if ('array' in result) {
    if (!options.mmap || isStringArray(result.array)) return result.array;
    return { ...result.array, mapped: false, copyReason: entry.method !== 0 ? COPY_REASONS.compressed : (source.mapReason ?? COPY_REASONS.archiveNotMapped) };
  }
  checkPickleAllowed(where, options);
  const bytes: Uint8Array = yield ['whole', entry];
  return unpickleMember(bytes.subarray(result.pickle.dataOffset), where, options);
}

function wholeOptions(options: NpzReadOptions): { maxMemberSize: number } {
  return { maxMemberSize: options.maxMemberSize ?? DEFAULT_MAX_MEMBER_SIZE };
}

/** A {@link MemberRead} done with blocking reads. */
function replySync([kind, entry, start]: MemberRead, source: ByteSource, options: NpzReadOptions): unknown {
  if (kind === 'offset') return memberDataOffsetSync(source, entry, source.path);
  if (kind === 'whole') return readMemberSync(source, entry, source.path, wholeOptions(options));
  return readNpyMemberSync(source, entry, start, `${source.path}[${entry.name}]`, source.path, headerOptionsOf(options));
}

/** A {@link MemberRead} done on the thread pool (or with views, in memory). */
function reply([kind, entry, start]: MemberRead, source: ByteSource, options: NpzReadOptions): Promise<unknown> {
  if (kind === 'offset') return memberDataOffset(source, entry, source.path);
  if (kind === 'whole') return readMember(source, entry, source.path, wholeOptions(options));
  return readNpyMember(source, entry, start, `${source.path}[${entry.name}]`, source.path, headerOptionsOf(options));
}

function loadMemberSync(walk: MemberWalk, source: ByteSource, options: NpzReadOptions): Member {
  let step = walk.next();
  while (!step.done) step = walk.next(replySync(step.value, source, options) as MemberReply);
  return step.value;
}

async function loadMember(walk: MemberWalk, source: ByteSource, options: NpzReadOptions): Promise<Member> {
  let step = walk.next();
  while (!step.done) step = walk.next((await reply(step.value, source, options)) as MemberReply);
  return step.value;
}

class NpzFileImpl implements NpzFile<Member> {
  private readonly byName = new Map<string, ZipEntry>();
  private readonly order: string[] = [];
  private closed = false;
  private pending = 0;

  constructor(
    readonly path: string,
    private readonly fd: number,
    private readonly source: ByteSource,
    entries: ZipEntry[],
    private readonly options: NpzReadOptions,
  ) {
    for (const entry of entries) {
      // A repeated name resolves to the last entry, as Python's zipfile does.
      if (!this.byName.has(entry.name)) this.order.push(keyOf(entry.name));
      this.byName.set(entry.name, entry);
    }
  }

  keys(): string[] {
    return [...this.order];
  }

  private entry(name: string): ZipEntry | undefined {
    return this.byName.get(`${name}.npy`) ?? this.byName.get(name);
  }

  has(name: string): boolean {
    return this.entry(name) !== undefined;
  }

  async get(name: string): Promise<Member> {
    if (this.closed) throw new TensorioError('ERR_CLOSED', 'the archive is closed', { path: this.path });
    const entry = this.entry(name);
    if (!entry) {
      const keys = this.order.slice(0, 20).map((k) => `'${k}'`).join(', ');
      throw new TensorioError(
        'ERR_NOT_FOUND_IN_ARCHIVE',
        `no member '${name}' in the archive; it holds ${this.order.length === 0 ? 'nothing' : keys}${this.order.length > 20 ? ', ...' : ''}`,
        { path: this.path },
      );
    }
    this.pending++;
    try {
      return await this.load(entry);
    } finally {
      this.pending--;
      if (this.closed && this.pending === 0) closeQuietly(this.fd);
    }
  }

  async info(name: string): Promise<NpzMemberInfo> {
    if (this.closed) throw new TensorioError('ERR_CLOSED', 'the archive is closed', { path: this.path });
    const entry = this.entry(name);
    if (!entry) throw new TensorioError('ERR_NOT_FOUND_IN_ARCHIVE', `no member '${name}' in the archive`, { path: this.path });
    const where = `${this.path}[${entry.name}]`;
    const start = await memberDataOffset(this.source, entry, this.path);
    // Only the header is read (a deflated member inflates only as far as its header ends).
    const { raw, header } = await readMemberHeader(this.source, entry, start, where, this.path, headerOptionsOf(this.options));
    const common = { key: keyOf(entry.name), compressed: entry.method !== 0 };
    if (!header) {
      return { ...common, dtype: null, shape: raw.shape, dataLength: entry.uncompressedSize - raw.dataOffset, bigEndian: false, fortranOrder: raw.fortranOrder };
    }
    const text = this.options.strings ? stringDescr(raw.descr) : undefined;
    const info: NpzMemberInfo = text
      ? { ...common, dtype: null, strings: { kind: text.kind, width: text.width, bigEndian: text.bigEndian }, shape: header.shape, dataLength: header.dataLength, bigEndian: text.bigEndian, fortranOrder: header.fortranOrder }
      : { ...common, dtype: header.dtype, shape: header.shape, dataLength: header.dataLength, bigEndian: header.bigEndian, fortranOrder: header.fortranOrder };
    if (entry.method === 0) info.dataOffset = start + header.dataOffset;
    return info;
  }

  private load(entry: ZipEntry): Promise<Member> {
    return loadMember(memberWalk(entry, this.source, this.options), this.source, this.options);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.pending === 0) closeQuietly(this.fd);
  }
}

/**
 * Opens an `.npz` archive, reading only its central directory; members are read by
 * {@link NpzFile.get}. With `mmap`, the file is mapped once here (no bytes are read).
 * @throws TensorioError `ERR_BAD_ZIP`, `ERR_TRUNCATED`, `ERR_NOT_FOUND`, `ERR_PERMISSION`, `ERR_IO`.
 */
export async function openNpz(path: string, options?: NpzReadOptions & { allowPickle?: false; strings?: false }): Promise<NpzFile<LoadedArray>>;
export async function openNpz(path: string, options: NpzReadOptions & { strings?: false }): Promise<NpzFile<LoadedArray | PyObject>>;
export async function openNpz(path: string, options: NpzReadOptions & { allowPickle?: false }): Promise<NpzFile<LoadedArray | StringArray>>;
export async function openNpz(path: string, options: NpzReadOptions): Promise<NpzFile<Member>>;
export async function openNpz(path: string, options: NpzReadOptions = {}): Promise<NpzFile<Member>> {
  checkOptions(options, READ_NPZ_OPTIONS, 'openNpz', path);
  const { fd, size } = await openForReadAsync(path, 0);
  try {
    const source = ByteSource.ofFile(fd, size, path, { map: options.mmap === true });
    const entries = await readCentralDirectory(source, path);
    return new NpzFileImpl(path, fd, source, entries, options);
  } catch (error) {
    closeQuietly(fd);
    throw error;
  }
}

/**
 * Reads every member of an `.npz` archive into a record keyed like NumPy's `NpzFile`
 * (`x.npy` → `x`).
 * @param options `mmap` (default false), `allowPickle` (default false), `maxMemberSize`
 * (default 16 GiB), `maxHeaderSize` (default 10,000).
 * @throws TensorioError `ERR_BAD_ZIP` (not a zip, unsupported method, encrypted, corrupt
 * directory, a member inflating past its declared size), `ERR_CRC_MISMATCH`, `ERR_TRUNCATED`,
 * `ERR_TOO_LARGE` (a member over `maxMemberSize`), `ERR_PICKLE_DISALLOWED`, `ERR_UNSAFE_PICKLE`,
 * `ERR_BAD_PICKLE`, every `.npy` error of {@link readNpy} (with the member named in the path),
 * `ERR_NOT_FOUND`, `ERR_PERMISSION`, `ERR_IO`.
 */
export async function readNpz(path: string, options?: NpzReadOptions & { allowPickle?: false; strings?: false }): Promise<Record<string, LoadedArray>>;
export async function readNpz(path: string, options: NpzReadOptions & { strings?: false }): Promise<Record<string, LoadedArray | PyObject>>;
export async function readNpz(path: string, options: NpzReadOptions & { allowPickle?: false }): Promise<Record<string, LoadedArray | StringArray>>;
export async function readNpz(path: string, options: NpzReadOptions): Promise<Record<string, Member>>;
export async function readNpz(path: string, options: NpzReadOptions = {}): Promise<Record<string, Member>> {
  checkOptions(options, READ_NPZ_OPTIONS, 'readNpz', path);
  const file = await openNpz(path, options);
  try {
    // Two members in flight: one is read on libuv's pool while the other's CRC is checked here.
    const keys = file.keys();
    const values = new Array<Member>(keys.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < keys.length) {
        const index = next++;
        values[index] = await file.get(keys[index] as string);
      }
    };
    await Promise.all([worker(), worker()]);
    const out: Record<string, Member> = {};
    keys.forEach((key, index) => {
      Object.defineProperty(out, key, { value: values[index], enumerable: true, writable: true, configurable: true });
    });
    return out;
  } finally {
    file.close();
  }
}

/**
 * Reads every member of an archive from a synchronous source, as {@link readNpz} does: the
 * one loop behind {@link readNpzSync} (a file or its mapping) and {@link decodeNpz} (bytes).
 * A repeated member name resolves to its last entry, as Python's zipfile does. With `mmap`
 * and a mapped source, stored members go through the same view-or-copy rule as readNpz's.
 * @throws TensorioError every error of {@link readNpz}.
 */
export function readNpzSource(source: ByteSource, options: NpzReadOptions = {}): Record<string, Member> {
  const out: Record<string, Member> = {};
  for (const entry of readCentralDirectorySync(source, source.path)) {
    const value = loadMemberSync(memberWalk(entry, source, options), source, options);
    Object.defineProperty(out, keyOf(entry.name), { value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/**
 * Synchronous {@link readNpz}: the same result, read with blocking calls (one positioned
 * read per structure and member; deflated members inflate in one call capped at their
 * declared size). With `mmap` the archive is mapped once and aligned stored members are views.
 * @param options as {@link readNpz}.
 * @throws TensorioError every error of {@link readNpz}.
 */
export function readNpzSync(path: string, options?: NpzReadOptions & { allowPickle?: false; strings?: false }): Record<string, LoadedArray>;
export function readNpzSync(path: string, options: NpzReadOptions & { strings?: false }): Record<string, LoadedArray | PyObject>;
export function readNpzSync(path: string, options: NpzReadOptions & { allowPickle?: false }): Record<string, LoadedArray | StringArray>;
export function readNpzSync(path: string, options: NpzReadOptions): Record<string, Member>;
export function readNpzSync(path: string, options: NpzReadOptions = {}): Record<string, Member> {
  checkOptions(options, READ_NPZ_OPTIONS, 'readNpzSync', path);
  const { fd, size } = openForRead(path);
  try {
    return readNpzSource(ByteSource.ofFile(fd, size, path, { map: options.mmap === true }), options);
  } finally {
    closeQuietly(fd);
  }
}

/**
 * Parses an `.npz` archive held in memory. Stored members' arrays may be views into `bytes`
 * (when aligned); `mmap` is ignored.
 * @param path names the archive in error messages. Default `'<bytes>'`.
 * @throws TensorioError every error of {@link readNpz} but the file-system ones.
 */
export function decodeNpz(bytes: Uint8Array, options?: NpzReadOptions & { allowPickle?: false; strings?: false }, path?: string): Record<string, LoadedArray>;
export function decodeNpz(bytes: Uint8Array, options: NpzReadOptions & { strings?: false }, path?: string): Record<string, LoadedArray | PyObject>;
export function decodeNpz(bytes: Uint8Array, options: NpzReadOptions & { allowPickle?: false }, path?: string): Record<string, LoadedArray | StringArray>;
export function decodeNpz(bytes: Uint8Array, options: NpzReadOptions, path?: string): Record<string, Member>;
export function decodeNpz(bytes: Uint8Array, options: NpzReadOptions = {}, path = '<bytes>'): Record<string, Member> {
  return readNpzSource(ByteSource.ofBytes(bytes, path), { ...options, mmap: false });
}
