/**
 * h5wasm (the HDF5 C library compiled to WebAssembly): loading it lazily, retiring an
 * instance an operation ran past its deadline on, and {@link WasmFile}, the structure reader
 * over h5wasm for the files tensorio's own reader does not walk (own-reader.ts). Every call
 * into h5wasm on a file runs under that file's deadline (deadline.ts), and HDF5's error
 * stacks become TensorioErrors (h5wasm-errors.ts).
 */
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { pathToFileURL } from 'node:url';

import type { DTypeInfo } from '../../dtype.js';
import { TensorioError } from '../../errors.js';
import { shapeSize, type NdArray } from '../../ndarray.js';
import { insideDeadline, isDeadlineError, withDeadline } from './deadline.js';
import type { ByteSource } from '../../io/source.js';
import { headerMessages, readUint, type H5Storage, type HeaderMessage, type Superblock } from './format.js';
import { hdf5StackSummary, isHdf5Stack, releaseErrorFiles, throwHdf5Errors, withoutStderr, type ErrorHandlingModule } from './h5wasm-errors.js';
import type { H5ExternalLink } from './links.js';
import { notFound, type H5AttributeValue, type ObjectKind, type StructureReader } from './reader.js';
import { dtypeOfMetadata, H5T_STRING, type H5Metadata } from './types.js';

// h5wasm, loaded lazily. It is an ES module; this package is CommonJS, and TypeScript keeps
// `import()` as a real dynamic import under module node16.

export interface H5Module extends ErrorHandlingModule {
  HEAPU8: Uint8Array;
  _malloc(size: number): number;
  _free(ptr: number): void;
  MAXIMUM_MEMORY: number;
  get_dataset_metadata(fileId: bigint, path: string): H5Metadata;
  get_dataset_filters(fileId: bigint, path: string): { id: number; name: string }[];
  get_dataset_data(fileId: bigint, path: string, count: null, offset: null, strides: null, ptr: bigint): number;
  create_dataset(fileId: bigint, path: string, ptr: bigint, metadata: object): number;
  create_vlen_str_dataset(fileId: bigint, path: string, data: string[], metadata: object): number;
  create_object_reference(fileId: bigint, path: string): Uint8Array;
  get_type(fileId: bigint, path: string): number;
  get_external_link(fileId: bigint, path: string): { filename?: string; obj_path?: string };
  H5O_TYPE_DATASET: number;
  H5O_TYPE_GROUP: number;
}

export interface H5Group {
  file_id: bigint;
  path: string;
  keys(): string[];
  get(name: string): unknown;
  attrs: Record<string, { metadata: H5Metadata }>;
  get_attribute(name: string, json: false): unknown;
  create_attribute(name: string, data: unknown, shape?: number[] | null, dtype?: string | null): void;
  create_group(name: string): H5Group;
}

export interface H5FileObject extends H5Group {
  close(): number;
}

export interface H5Lib {
  File: new (filename: string, mode: 'r' | 'w', options?: { libver?: string | [string, string] }) => H5FileObject;
  Group: new (fileId: bigint, path: string) => H5Group;
  ready: Promise<H5Module>;
}

/** One instance of h5wasm; `generation` counts the instances replaced after a deadline. */
export interface LoadedH5wasm {
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
export function retireH5wasm(generation: number): void {
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

export function h5wasmNeeded(file: string, inMemory: boolean, why: string): TensorioError {
  if (inMemory) {
    return new TensorioError('ERR_NEEDS_H5WASM', `${why}, which needs h5wasm, and h5wasm reads only files: write the bytes to a file and read that`, { path: file });
  }
  return new TensorioError('ERR_NEEDS_H5WASM', `${why}, which needs h5wasm; it loads asynchronously, so await h5wasmReady() once before synchronous HDF5 reads, or use the asynchronous reader`, { path: file });
}

export function loadedH5wasmOrThrow(file: string, inMemory: boolean, why: string): LoadedH5wasm {
  if (inMemory || !loadedH5wasm) throw h5wasmNeeded(file, inMemory, why);
  return loadedH5wasm;
}

/** h5wasm if it is loaded, for the synchronous readers. */
export function loadedH5wasmIfAny(): LoadedH5wasm | undefined {
  return loadedH5wasm;
}


/**
 * HDF5 calls abort() on some damaged structures; in WebAssembly that throws a RuntimeError
 * ("Aborted(...)") and h5wasm stays usable (tested), so it is a refusal of this file.
 */
function isWasmAbort(error: unknown): boolean {
  return error instanceof Error && error.name === 'RuntimeError';
}


/**
 * One file open in h5wasm: the {@link StructureReader} for files tensorio's own reader does
 * not walk, and the reader of datasets only HDF5 decodes (through h5wasm's heap). Every call
 * runs under the file's deadline ({@link H5ReadOptions.h5wasmTimeoutMs}, summed over the
 * file's calls) through {@link call}.
 */
export class WasmFile implements StructureReader {
  private readonly kinds = new Map<string, ObjectKind>();
  private readonly childNames = new Map<string, string[]>();
  /** External links met through h5wasm, by path. */
  private readonly externals = new Map<string, H5ExternalLink>();
  /** h5wasm's handle of the file. */
  private readonly h5: H5FileObject;
  /** Time h5wasm has worked on this file, against {@link H5ReadOptions.h5wasmTimeoutMs}. */
  private wasmSpentMs = 0;

  /** Opens `path` with h5wasm `wasm`, under the file's deadline like every h5wasm call. */
  constructor(
    private readonly wasm: LoadedH5wasm,
    private readonly path: string,
    private readonly source: ByteSource,
    private readonly superblock: Superblock,
    private readonly options: { h5wasmTimeoutMs?: number },
  ) {
    this.h5 = this.call(() => new wasm.lib.File(this.path, 'r'), 'open the file');
  }

  private get lib(): H5Lib {
    return this.wasm.lib;
  }

  private get module(): H5Module {
    return this.wasm.module;
  }

  /**
   * Every h5wasm call of the reader goes through here: it runs under the deadline, and
   * HDF5's refusals (plain Errors, and the RuntimeError of an abort()) become TensorioErrors
   * saying HDF5 could not do `what`. `onRefusal`, when given, answers a plain Error instead
   * (h5wasm also signals "not there" or "not convertible" that way); an abort() is always
   * damage.
   */
  call<T>(call: () => T, what: string, onRefusal?: (error: Error) => T): T {
    const wasm = this.wasm;
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

  kind(path: string): ObjectKind {
    const p = `/${path}`;
    // The file does not change while open: each path is asked of h5wasm once (a walk asks
    // for every parent of every path, and each h5wasm lookup walks the path again).
    let kind = this.kinds.get(p);
    if (kind === undefined) this.kinds.set(p, (kind = this.wasmKind(p)));
    return kind;
  }

  children(group: string): string[] {
    return this.wasmChildren(`/${group}`);
  }

  /** The names in the group at `p` (absolute, known to be a group), through h5wasm, once. */
  private wasmChildren(p: string): string[] {
    let names = this.childNames.get(p);
    if (names === undefined) {
      const group = p === '/' ? this.h5 : new this.lib.Group(this.h5.file_id, p);
      this.childNames.set(p, (names = this.call(() => group.keys(), `list group '${p}'`)));
    }
    return names;
  }

  private wasmKind(p: string): ObjectKind {
    if (p === '/') return 'group';
    // Ask the parent first: HDF5 prints an error stack for every lookup of a missing name.
    const slash = p.lastIndexOf('/');
    const parent = p.slice(0, slash);
    const name = p.slice(slash + 1);
    if (parent !== '' && this.kind(parent.slice(1)) !== 'group') return 'missing';
    if (!this.wasmChildren(parent || '/').includes(name)) return 'missing';
    // Before get_type, which follows an external link into the file it names.
    const link = this.call(() => this.module.get_external_link(this.h5.file_id, p), `look up '${p}'`, () => ({}) as { filename?: string; obj_path?: string });
    if (typeof link.filename === 'string') {
      this.externals.set(p.slice(1), { path: p.slice(1), file: link.filename, target: link.obj_path ?? '' });
      return 'external';
    }
    const type = this.call(() => this.module.get_type(this.h5.file_id, p), `look up '${p}'`, () => -1);
    if (type === this.module.H5O_TYPE_GROUP) return 'group';
    if (type === this.module.H5O_TYPE_DATASET) return 'dataset';
    return type < 0 ? 'missing' : 'other';
  }

  externalLink(p: string): H5ExternalLink | undefined {
    return this.externals.get(p);
  }

  attributeNames(path: string): string[] {
    const object = this.object(path);
    return this.call(() => Object.keys(object.attrs), `list the attributes of '${path || '/'}'`);
  }

  private object(p: string): H5Group {
    if (this.kind(p) === 'missing') throw notFound(this.path, p);
    return p === '' ? this.h5 : this.call(() => this.h5.get(p) as H5Group, `open '${p}'`);
  }

  attribute(path: string, name: string): H5AttributeValue | undefined {
    const object = this.object(path);
    const attr = this.call(() => object.attrs[name], `read attribute '${name}'`);
    if (!attr) return undefined;
    const meta = attr.metadata;
    const where = `attribute '${name}' of '${path || '/'}'`;
    const value = this.call(() => object.get_attribute(name, false), `read ${where}`, (error) => {
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
    throw new TensorioError('ERR_UNSUPPORTED_DTYPE', `attribute '${name}' of '${path || '/'}' has an HDF5 type tensorio does not read (class ${meta.type})`, { path: this.path });
  }

  metadata(p: string): H5Metadata {
    return this.call(() => this.module.get_dataset_metadata(this.h5.file_id, `/${p}`), `open dataset '${p}'`);
  }

  /** The messages of a dataset's object header, found through an object reference. */
  header(p: string): HeaderMessage[] {
    const ref = this.call(() => this.module.create_object_reference(this.h5.file_id, `/${p}`), `locate dataset '${p}'`);
    return headerMessages(this.source, this.superblock, this.superblock.base + readUint(ref, 0, Math.min(8, ref.length), this.path));
  }

  /** A dataset HDF5 itself decodes, through h5wasm's heap (so at most half of it). */
  readThroughHeap(info: { path: string; storage: H5Storage }, dtype: DTypeInfo, length: number): NdArray['data'] {
    const data = new dtype.array(length);
    const bytes = data.byteLength;
    if (bytes === 0) return data;
    if (bytes > this.module.MAXIMUM_MEMORY / 2) {
      throw new TensorioError('ERR_TOO_LARGE', `dataset '${info.path}' (${bytes} bytes, ${info.storage.layout}) does not fit h5wasm's heap; only contiguous datasets are read outside it`, { path: this.path });
    }
    const ptr = this.module._malloc(bytes);
    if (ptr === 0) throw new TensorioError('ERR_TOO_LARGE', `h5wasm could not allocate ${bytes} bytes for dataset '${info.path}'`, { path: this.path });
    try {
      const filters = this.call(() => this.module.get_dataset_filters(this.h5.file_id, `/${info.path}`), `read the filters of dataset '${info.path}'`);
      const read = () => this.module.get_dataset_data(this.h5.file_id, `/${info.path}`, null, null, null, BigInt(ptr));
      let refusal = '';
      const status = this.call(read, `read dataset '${info.path}'`, (error) => ((refusal = error.message), -1));
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

  /** Closes h5wasm's handle of the file. */
  close(): void {
    this.call(() => this.h5.close(), 'close the file');
  }
}
