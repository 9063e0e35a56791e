/**
 * Generic HDF5 reading: {@link H5File}, the object a caller reads groups, attributes and
 * datasets through, and the open and read functions over it (openH5, openH5Sync,
 * openH5Bytes, readH5, readH5Sync, decodeH5).
 *
 * An H5File reads the structure through one {@link StructureReader}: tensorio's own
 * (own-reader.ts) for the files Keras and h5py write, h5wasm's (h5wasm.ts) for the rest.
 * Dataset payloads do not go through h5wasm when that can be avoided (its heap is capped at
 * 2 GiB, never shrinks, and its high-level API refuses float16): contiguous and compact data
 * is read or mapped straight from the file with src/io/*, the way h5py's
 * `dataset.id.get_offset()` allows, and chunked data by chunks.ts; the few datasets those
 * do not cover go through h5wasm's low-level `get_dataset_data`, which copies raw bytes
 * converted to little-endian (float16 too).
 */
import { checkOptions, keysOf } from '../../options.js';
import { byteswap } from '../../convert.js';
import { dtypeInfo, type DType, type DTypeInfo } from '../../dtype.js';
import { TensorioError } from '../../errors.js';
import { closeQuietly, openForRead } from '../../io/read.js';
import { ByteSource, COPY_REASONS } from '../../io/source.js';
import { shapeSize, type LoadedArray, type NdArray } from '../../ndarray.js';
import { readChunkedDataset } from './chunks.js';
import { checkInside, joinPath, normalise, readSuperblock, storageOf, type H5Storage, type Superblock } from './format.js';
import { H5WASM_TIMEOUT_MS, h5wasmNeeded, loadedH5wasmIfAny, loadedH5wasmOrThrow, loadH5wasm, WasmFile, type LoadedH5wasm } from './h5wasm.js';
import { externalLinkRead, type H5ExternalLink } from './links.js';
import { buildOwnIndex, OwnReader, pathBudget, tooManyPaths, type OwnIndex } from './own-reader.js';
import type { H5AttributeValue, ObjectKind, StructureReader } from './reader.js';
import { readStringDataset, type H5StringArray } from './strings.js';
import { dtypeOfMetadata, type H5Metadata } from './types.js';

/** The options readH5 takes (checked: a misspelt key is ERR_INVALID_ARGUMENT). */
export const READ_H5_OPTIONS = keysOf<H5ReadOptions>({ mmap: true, h5wasm: true, h5wasmTimeoutMs: true });

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

/**
 * An HDF5 file open for reading; see {@link openH5}. Datasets are read one at a time, so a
 * file larger than memory can be processed dataset by dataset.
 */
export class H5File {
  private closed = false;
  // The file mapped on the first mapped read (src/io/source.ts), or why it is not.
  private mapping: ByteSource | undefined;
  private mappingReason: string | undefined;
  private readonly infos = new Map<string, H5DatasetInfo>();
  /** Where the structure comes from: tensorio's own reader, or h5wasm's. */
  private readonly reader: StructureReader;
  /** The file open in h5wasm: the reader itself, or opened later for a dataset only HDF5 decodes. */
  private wasm: WasmFile | undefined;

  /** @internal */
  constructor(
    /** The file's path. */
    readonly path: string,
    private readonly source: ByteSource,
    private readonly superblock: Superblock,
    private readonly options: H5ReadOptions,
    /** The structure read without h5wasm, or null when h5wasm reads it. */
    own: OwnIndex | null,
    wasm?: LoadedH5wasm,
  ) {
    if (wasm) this.openThroughWasm(wasm);
    this.reader = own ? new OwnReader(source, superblock, own) : (this.wasm as WasmFile);
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

  /** Loads h5wasm if needed, then opens the file with it; `why` says what needs it. */
  private async ensureWasm(why: string): Promise<WasmFile> {
    // The instance just loaded, not the global one, which a deadline elsewhere may retire.
    if (!this.wasm && this.source.fd !== null) return this.openThroughWasm(await loadH5wasm());
    return this.ensureWasmSync(why);
  }

  /** Opens the file with h5wasm if it is loaded; `why` says what needs it. */
  private ensureWasmSync(why: string): WasmFile {
    return this.wasm ?? this.openThroughWasm(loadedH5wasmOrThrow(this.path, this.source.fd === null, why));
  }

  private openThroughWasm(wasm: LoadedH5wasm): WasmFile {
    return (this.wasm = new WasmFile(wasm, this.path, this.source, this.superblock, this.options));
  }

  private requireOpen(): void {
    if (this.closed) throw new TensorioError('ERR_CLOSED', 'the HDF5 file is closed', { path: this.path });
  }

  private kind(path: string): ObjectKind {
    return this.reader.kind(normalise(path));
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
    this.requireOpen();
    if (this.kind(group) !== 'group') throw new TensorioError('ERR_NOT_FOUND_IN_ARCHIVE', `no group '${normalise(group)}' in the file`, { path: this.path });
    return [...this.reader.children(normalise(group))];
  }

  /** Where the external link at `path` points, or undefined when `path` is not one (see src/formats/hdf5/links.ts). */
  externalLink(path: string): H5ExternalLink | undefined {
    this.requireOpen();
    const p = normalise(path);
    if (this.kind(p) !== 'external') return undefined;
    return { ...(this.reader.externalLink(p) as H5ExternalLink) };
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
   * errors. Files h5wasm has not opened run it directly.
   */
  batch<T>(walk: () => T, what: string): T {
    return this.wasm ? this.wasm.call(walk, what) : walk();
  }

  /** The names of the attributes of the object at `path`. */
  attributeNames(path = ''): string[] {
    this.requireOpen();
    return this.reader.attributeNames(normalise(path));
  }

  /**
   * An attribute of the object at `path`: strings (fixed or variable length) as strings,
   * numeric scalars as numbers, numeric arrays as NdArrays (an empty float64 array as one
   * of shape [0]). Returns undefined when there is no such attribute.
   * @throws TensorioError `ERR_UNSUPPORTED_DTYPE` for attribute types tensorio does not read.
   */
  attribute(path: string, name: string): H5AttributeValue | undefined {
    this.requireOpen();
    return this.reader.attribute(normalise(path), name);
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
    const meta = this.reader.metadata(p);
    return this.finishInfo(p, meta, () => storageOf(this.source, this.superblock, this.reader.header(p)).storage);
  }

  /**
   * Reads a string dataset (fixed- or variable-length strings, as h5py writes `|S<n>` arrays
   * and `str` data): each element's bytes as h5py returns them and the same decoded as UTF-8,
   * with the dataset's shape; see {@link H5StringArray}. Synchronous: strings are read by
   * tensorio, never through h5wasm's heap.
   * @throws TensorioError `ERR_NOT_FOUND_IN_ARCHIVE` when there is no such dataset,
   * `ERR_UNSUPPORTED_DTYPE` when it does not hold strings, `ERR_BAD_OFFSETS` when its data
   * lies outside the file, `ERR_UNSUPPORTED_FILTER` when it is compressed with a filter only
   * HDF5 applies.
   */
  readStrings(path: string): H5StringArray {
    const info = this.info(path);
    if (info.shape === null) throw new TensorioError('ERR_UNSUPPORTED_DTYPE', `dataset '${info.path}' has a null dataspace: it holds no strings, not even one`, { path: this.path });
    return readStringDataset(this.source, this.superblock, this.reader.header(info.path), info.path, info.shape, this.source.fd === null);
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

  private mapped(): ByteSource | string {
    if (this.mapping) return this.mapping;
    if (this.mappingReason) return this.mappingReason;
    if (this.source.fd === null) return (this.mappingReason = COPY_REASONS.inMemory);
    const mapped = this.source.withMapping();
    if (mapped.mapped) return (this.mapping = mapped);
    return (this.mappingReason = mapped.mapReason ?? COPY_REASONS.fileNotMapped);
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
      checkInside(this.source, plan.offset, plan.data.byteLength, `dataset '${plan.info.path}'`);
      await this.source.readIntoAsync(plan.offset, plan.data, `dataset '${plan.info.path}'`);
      return plan.finish();
    }
    const wasm = await this.ensureWasm(`dataset '${plan.info.path}' is ${plan.info.storage.layout}`);
    return plan.finish(wasm.readThroughHeap(plan.info, plan.dtype, plan.length));
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
      checkInside(this.source, plan.offset, plan.data.byteLength, `dataset '${plan.info.path}'`);
      this.source.readInto(plan.offset, plan.data, `dataset '${plan.info.path}'`);
      return plan.finish();
    }
    const wasm = this.ensureWasmSync(`dataset '${plan.info.path}' is ${plan.info.storage.layout}`);
    return plan.finish(wasm.readThroughHeap(plan.info, plan.dtype, plan.length));
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
      throw new TensorioError('ERR_UNSUPPORTED_DTYPE', `dataset '${info.path}' is not a numeric array (strings are read with readStrings; references and other compound types are not read)`, { path: this.path });
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
        else {
          const at = mapping.memoryAt(storage.offset, length * dtype.array.BYTES_PER_ELEMENT, `dataset '${info.path}'`);
          return { kind: 'done', result: { dtype: dtypeName, shape: [...shape], data: new dtype.array(at.buffer, at.byteOffset, length), mapped: true } };
        }
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


  private readChunkedOwn(info: H5DatasetInfo, dtype: DTypeInfo, length: number): NdArray['data'] | undefined {
    const data = readChunkedDataset(this.source, this.superblock, this.reader.header(info.path), info.path, info.shape as number[], dtype, length, this.source.fd === null);
    if (data === 'needs-h5wasm') return undefined;
    if (info.bigEndian) byteswap(data, dtype.swapSize);
    return data;
  }


  /** Closes h5wasm's handle and the file descriptor. Mapped arrays stay valid. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.wasm?.close();
    } catch {
      // Opened read-only, so nothing is lost; HDF5 may refuse to close a damaged file, and
      // an instance retired after a deadline is not called again.
    } finally {
      if (this.source.fd !== null) closeQuietly(this.source.fd);
    }
  }
}

/** An open file whose structure tensorio's reader walked; `own` is null when h5wasm must read it. */
interface OpenedStructure {
  source: ByteSource;
  superblock: Superblock;
  own: OwnIndex | null;
}

/** Opens `path` and walks its structure; the descriptor is closed if that fails. */
function openStructure(path: string, options: H5ReadOptions): OpenedStructure {
  const { fd, size } = openForRead(path);
  try {
    const source = ByteSource.ofFile(fd, size, path);
    const superblock = readSuperblock(source);
    return { source, superblock, own: options.h5wasm ? null : buildOwnIndex(source, superblock) };
  } catch (error) {
    closeQuietly(fd);
    throw error;
  }
}

/**
 * The H5File over an opened structure, through h5wasm (`wasm`, undefined when not loaded)
 * when tensorio's reader does not cover it. The descriptor is closed if that fails.
 */
function fileOver(path: string, options: H5ReadOptions, { source, superblock, own }: OpenedStructure, wasm: LoadedH5wasm | undefined): H5File {
  if (own) return new H5File(path, source, superblock, options, own);
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
  checkOptions(options, READ_H5_OPTIONS, 'openH5', path);
  const opened = openStructure(path, options);
  let wasm: LoadedH5wasm | undefined;
  if (!opened.own) {
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
  checkOptions(options, READ_H5_OPTIONS, 'openH5Sync', path);
  return fileOver(path, options, openStructure(path, options), loadedH5wasmIfAny());
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
  const own = buildOwnIndex(source, superblock);
  if (!own) throw h5wasmNeeded(name, true, 'the file uses HDF5 structures only h5wasm reads');
  return new H5File(name, source, superblock, {}, own);
}

/**
 * Reads every numeric dataset of an HDF5 file, keyed by its full path without the leading
 * slash (`'group1/dataset2'`). Datasets that are not numeric arrays (strings, references,
 * other compound types) and null dataspaces are left out.
 * @throws TensorioError as {@link openH5} and {@link H5File.read}.
 */
export async function readH5(path: string, options: H5ReadOptions = {}): Promise<Record<string, LoadedArray>> {
  checkOptions(options, READ_H5_OPTIONS, 'readH5', path);
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
  checkOptions(options, READ_H5_OPTIONS, 'readH5Sync', path);
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
