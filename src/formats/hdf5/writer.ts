/**
 * Writing HDF5 files: {@link H5Writer} (groups, attributes, datasets) and writeH5.
 *
 * Writes build the file with h5wasm in the temporary file of an {@link AtomicWriter} next
 * to the target. Small datasets are written through the heap; a large one is created from
 * an uninitialised heap block (HDF5 insists on writing the whole dataset at creation), and
 * its real bytes are then written over that placeholder region with positioned writes
 * before the temporary file is renamed over the target. float16 datasets are created as uint16 and their datatype message is
 * rewritten in the final header, since h5wasm cannot create a 2-byte float type; bool
 * likewise becomes h5py's enum. The written file is walked again and checked before the
 * rename (h5wasm reports a failed write only on stderr).
 */
import { isStringArray, type StringArray } from '../numpy/strings.js';
import { checkOptions, keysOf } from '../../options.js';
import * as fs from 'node:fs';
import * as nodePath from 'node:path';

import { dtypeInfo, type DType } from '../../dtype.js';
import { TensorioError } from '../../errors.js';
import { AtomicWriter, type WriteOptions, WRITE_OPTION_KEYS } from '../../io/atomic-writer.js';
import { closeQuietly, openForRead } from '../../io/read.js';
import { ByteSource } from '../../io/source.js';
import { asCOrder, bytesOf, shapeSize, validateNdArray, type NdArray } from '../../ndarray.js';
import {
  checkInside,
  headerMessages,
  normalise,
  readStructure,
  readSuperblock,
  readUint,
  storageOf,
  type HeaderMessage,
  type Located,
  type Superblock,
} from './format.js';
import {
  loadH5wasm,
  retireH5wasm,
  type H5FileObject,
  type H5Group,
  type H5Lib,
  type H5Module,
} from './h5wasm.js';
import {
  hdf5StackSummary,
  isHdf5Stack,
  releaseErrorFiles,
  type ErrorHandlingModule,
} from './h5wasm-errors.js';
import { buildOwnIndex } from './own-reader.js';
import { readStringDataset, type H5StringArray } from './strings.js';
import { H5T_COMPOUND, H5T_FLOAT, H5T_INTEGER, H5T_STRING } from './types.js';

/** The options writeH5 takes (checked: a misspelt key is ERR_INVALID_ARGUMENT). */
export const WRITE_H5_OPTIONS = keysOf<H5WriteOptions>({ ...WRITE_OPTION_KEYS, heapWriteLimit: true });

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
  /** Fixed-length strings: their character set (0 ASCII, 1 UTF-8); the datatype message becomes null-padded, as h5py writes. */
  string?: number;
  /** Variable-length strings: the shape and each element's bytes, compared with what the file holds. */
  variableStrings?: { shape: number[]; bytes: Uint8Array[] };
  /** h5wasm wrote placeholder bytes; the real ones are written over them. */
  placeholder: boolean;
}

const BOOL_PLACEHOLDER_MEMBER = 'tensorio_bool_as_h5py_enum';

/**
 * h5wasm's metadata record for a dtype: the HDF5 column of the dtype table, except where
 * h5wasm cannot create the type h5py uses. float16 and bool are created as placeholder
 * compounds of their element size whose datatype message is rewritten afterwards
 * (float16DatatypeMessage, boolDatatypeMessage).
 */
function h5TypeOf(dtype: DType): object {
  const base = { vlen: false, littleEndian: true, signed: false };
  const hdf5 = dtypeInfo(dtype).hdf5;
  if (hdf5 === null) {
    // HDF5 and h5py have no such type: stored as integers they would read back as uint16 /
    // uint8, a silent change of type. Refused; convert with toFloat32 first.
    throw new TensorioError('ERR_UNSUPPORTED_DTYPE', `HDF5 has no ${dtype} type (h5py would read its bits as ${dtype === 'bfloat16' ? 'uint16' : 'uint8'}); convert it first (toFloat32)`);
  }
  if (dtype === 'float16') {
    const member = { ...base, type: H5T_INTEGER, size: 2, name: 'float16', offset: 0, shape: null };
    return { ...base, type: H5T_COMPOUND, size: 2, compound_type: { nmembers: 1, members: [member] } };
  }
  if (dtype === 'bool') {
    // h5py's bool is an enum (int8 FALSE=0, TRUE=1) that h5wasm cannot create: a one-member
    // compound of size 1 stands in. The long member name makes the placeholder message
    // longer than the enum's in any compound message version.
    const member = { ...base, type: H5T_INTEGER, size: 1, signed: true, name: BOOL_PLACEHOLDER_MEMBER, offset: 0, shape: null };
    return { ...base, type: H5T_COMPOUND, size: 1, compound_type: { nmembers: 1, members: [member] } };
  }
  if (hdf5.class === H5T_COMPOUND) {
    // complex, as h5py writes it: two floats named r and i.
    const part = hdf5.size / 2;
    const member = (name: string, offset: number) => ({ ...base, type: H5T_FLOAT, size: part, name, offset, shape: null });
    return { ...base, type: H5T_COMPOUND, size: hdf5.size, compound_type: { nmembers: 2, members: [member('r', 0), member('i', part)] } };
  }
  return { ...base, type: hdf5.class, size: hdf5.size, signed: hdf5.signed };
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
    const p = this.newDatasetPath(path);
    const array = asCOrder(value);
    this.create(p, bytesOf(array.data), h5TypeOfDataset(array.dtype, p, this.target), array.shape, { float16: array.dtype === 'float16', bool: array.dtype === 'bool' });
  }

  /**
   * Adds a dataset of fixed-length strings at `path`, as h5py writes a NumPy `|S<n>` array:
   * null-padded, `n` the longest element's bytes (at least 1). Strings are written as UTF-8;
   * Uint8Arrays as they are. The character set is ASCII (what NumPy `S` arrays get) unless a
   * string holds non-ASCII characters, then UTF-8 (h5py's `string_dtype('utf-8', n)`). h5py
   * reads it back as `|S<n>` bytes, and {@link H5File.readStrings} as the same bytes.
   * `shape` defaults to `[values.length]`; `options.encoding` sets the character set instead,
   * `options.width` the width (no element may be longer).
   * With `options.variable`, variable-length strings instead (h5py's `string_dtype()`, which
   * h5py reads as an object array of bytes): every value must then be valid UTF-8 text.
   * @throws TensorioError `ERR_SHAPE_MISMATCH` when `shape` does not hold `values.length`
   * elements, `ERR_INVALID_ARGUMENT` when the path exists or an element is neither a string
   * nor a Uint8Array.
   */
  strings(path: string, values: readonly (string | Uint8Array)[], shape: readonly number[] = [values.length], options: { encoding?: 'ascii' | 'utf-8'; variable?: boolean; width?: number } = {}): void {
    this.requireOpen();
    const count = shapeSize([...shape], this.target);
    if (count !== values.length) throw new TensorioError('ERR_SHAPE_MISMATCH', `shape (${shape.join(', ')}) holds ${count} strings, ${values.length} were given`, { path: this.target });
    const encoder = new TextEncoder();
    let utf8 = false;
    const encoded = values.map((value) => {
      if (value instanceof Uint8Array) return value;
      if (typeof value !== 'string') throw new TensorioError('ERR_INVALID_ARGUMENT', `dataset '${normalise(path)}': a string dataset holds strings or Uint8Arrays, got ${typeof value}`, { path: this.target });
      if (/[^\x00-\x7f]/.test(value)) utf8 = true;
      return encoder.encode(value);
    });
    const longest = Math.max(1, ...encoded.map((e) => e.length));
    const width = options.width ?? longest;
    if (!Number.isSafeInteger(width) || width < longest) throw new TensorioError('ERR_INVALID_ARGUMENT', `dataset '${normalise(path)}': a width of ${width} bytes does not hold its longest string (${longest} bytes)`, { path: this.target });
    const bytes = new Uint8Array(count * width);
    encoded.forEach((e, i) => bytes.set(e, i * width));
    if (options.encoding !== undefined) utf8 = options.encoding === 'utf-8';
    if (options.variable) return this.variableStrings(path, encoded, shape, utf8);
    const p = this.newDatasetPath(path);
    this.create(p, bytes, { type: H5T_STRING, size: width, vlen: false, cset: utf8 ? 1 : 0 }, [...shape], { float16: false, string: utf8 ? 1 : 0 });
  }

  /**
   * Variable-length strings through h5wasm, which takes them as JavaScript strings (and
   * stores their UTF-8): bytes that are not UTF-8 cannot be written so. commit() reads them
   * back from the file and compares each element's bytes.
   */
  private variableStrings(path: string, encoded: Uint8Array[], shape: readonly number[], utf8: boolean): void {
    const decoder = new TextDecoder('utf-8', { fatal: true });
    const texts = encoded.map((bytes, i) => {
      try {
        return decoder.decode(bytes);
      } catch {
        throw new TensorioError('ERR_INVALID_ARGUMENT', `dataset '${normalise(path)}': element ${i} is not UTF-8, which variable-length strings are written as; write fixed-length strings`, { path: this.target });
      }
    });
    if (texts.some((t) => t.includes('\0'))) throw new TensorioError('ERR_INVALID_ARGUMENT', `dataset '${normalise(path)}': a variable-length string cannot hold NUL`, { path: this.target });
    const p = this.newDatasetPath(path);
    const meta = { type: H5T_STRING, size: 4, vlen: true, cset: utf8 ? 1 : 0, shape: shape.map(BigInt), maxshape: shape.map(BigInt), chunks: null, compression: 0, compression_opts: [], track_order: false };
    try {
      this.module.create_vlen_str_dataset(this.h5.file_id, `/${p}`, texts, meta);
    } catch (error) {
      if (!isHdf5Stack(error)) throw error;
      this.failure ??= error;
    }
    this.datasetPaths.add(p);
    this.written.push({ path: p, bytes: new Uint8Array(0), float16: false, placeholder: false, variableStrings: { shape: [...shape], bytes: encoded } });
  }

  /** `path` normalised, known not to exist yet, its parent groups created. */
  private newDatasetPath(path: string): string {
    const p = normalise(path);
    if (p === '' || this.groups.has(p) || this.datasetPaths.has(p)) throw new TensorioError('ERR_INVALID_ARGUMENT', `'${p || '/'}' already exists in the file`, { path: this.target });
    const slash = p.lastIndexOf('/');
    if (slash >= 0) this.group(p.slice(0, slash));
    return p;
  }

  /** Has h5wasm create the dataset `p` of `bytes`, of h5wasm type `type`, to be completed and checked by commit(). */
  private create(p: string, bytes: Uint8Array, type: object, shape: readonly number[], retype: Pick<Written, 'float16' | 'bool' | 'string'>): void {
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
      const meta = { ...type, shape: shape.map(BigInt), maxshape: shape.map(BigInt), chunks: null, compression: 0, compression_opts: [], track_order: false };
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
    this.written.push({ path: p, bytes, ...retype, placeholder });
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
        const { storage, datatypeMessage, messages } = located.get(item.path) as Located & { messages: HeaderMessage[] };
        if (item.variableStrings) {
          const { shape, bytes } = item.variableStrings;
          const stored = await this.orWriteFailure(() => readStringDataset(source, sb, messages, item.path, shape, false).bytes);
          if (stored.length !== bytes.length || stored.some((b, i) => Buffer.compare(b, bytes[i] as Uint8Array) !== 0)) throw await this.writeFailure(new Error(`the strings of dataset '${item.path}' differ from the values`));
          continue;
        }
        if (item.bytes.byteLength > 0) {
          if (storage.layout !== 'contiguous' || storage.length !== item.bytes.byteLength || storage.offset + storage.length > size) {
            throw await this.writeFailure(new Error(`dataset '${item.path}' is stored as ${storage.layout}; expected ${item.bytes.byteLength} contiguous bytes inside the file`));
          }
          if (item.placeholder) {
            patches.push({ offset: storage.offset, bytes: item.bytes });
          } else {
            if (readBack.length < storage.length) readBack = new Uint8Array(storage.length);
            const stored = readBack.subarray(0, storage.length);
            checkInside(source, storage.offset, stored.byteLength, `dataset '${item.path}'`);
            await source.readIntoAsync(storage.offset, stored, `dataset '${item.path}'`);
            if (Buffer.compare(stored, item.bytes) !== 0) throw await this.writeFailure(new Error(`the bytes of dataset '${item.path}' differ from the array`));
          }
        }
        if (item.bool) {
          if (!datatypeMessage) throw new TensorioError('ERR_IO', `no datatype message for dataset '${item.path}'`, { path: this.target });
          patches.push({ offset: datatypeMessage.offset, bytes: boolDatatypeMessage(readStructure(source, datatypeMessage.offset, datatypeMessage.size, 'datatype message'), this.target) });
        }
        if (item.string !== undefined) {
          if (!datatypeMessage) throw new TensorioError('ERR_IO', `no datatype message for dataset '${item.path}'`, { path: this.target });
          patches.push({ offset: datatypeMessage.offset, bytes: nullPaddedStringMessage(readStructure(source, datatypeMessage.offset, datatypeMessage.size, 'datatype message'), item.string, this.target) });
        }
        if (item.float16) {
          if (!datatypeMessage) throw new TensorioError('ERR_IO', `no datatype message for dataset '${item.path}'`, { path: this.target });
          patches.push({ offset: datatypeMessage.offset, bytes: float16DatatypeMessage(readStructure(source, datatypeMessage.offset, datatypeMessage.size, 'datatype message'), this.target) });
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
  private locateAll(source: ByteSource, sb: Superblock): Map<string, Located & { messages: HeaderMessage[] }> {
    const out = new Map<string, Located & { messages: HeaderMessage[] }>();
    const index = buildOwnIndex(source, sb);
    if (index) {
      for (const item of this.written) {
        const object = index.get(item.path);
        if (object?.kind !== 'dataset') throw new Error(`dataset '${item.path}' is missing from the file h5wasm wrote`);
        out.set(item.path, { ...storageOf(source, sb, object.messages), messages: object.messages });
      }
      return out;
    }
    const reader = new this.lib.File(this.scratch.tempPath, 'r');
    try {
      for (const item of this.written) {
        const ref = this.module.create_object_reference(reader.file_id, `/${item.path}`);
        const messages = headerMessages(source, sb, sb.base + readUint(ref, 0, 8, this.target));
        out.set(item.path, { ...storageOf(source, sb, messages), messages });
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
 * The datatype message of a fixed-length string, null-padded (h5py's `|S<n>`), with the
 * character set `cset`. h5wasm creates C strings null-terminated and UTF-8 ones space-padded;
 * the class and padding nibbles of the message's first two bytes are all that differ.
 */
function nullPaddedStringMessage(current: Uint8Array, cset: number, file: string): Uint8Array {
  if (current.length < 8 || ((current[0] as number) & 0x0f) !== H5T_STRING) throw new TensorioError('ERR_IO', 'the datatype message of a string dataset is not a string type', { path: file });
  const message = current.slice();
  message[1] = (cset << 4) | 1;
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
 * precision, bool as h5py's enum (h5py reads both back as `<f2` and `bool`). A string array
 * ({@link H5File.readStrings}) is written as fixed-length or variable-length strings as it
 * was read ({@link H5Writer.strings}), its bytes and character set kept.
 * @throws TensorioError `ERR_INVALID_ARGUMENT` for a key that collides with a group,
 * `ERR_UNSUPPORTED_DTYPE` for bfloat16 and float8 (HDF5 has no such type), `ERR_TOO_LARGE`
 * for a dataset beyond h5wasm's heap (about 1 GiB).
 */
export async function writeH5(path: string, record: Record<string, NdArray | H5StringArray | StringArray>, options: H5WriteOptions = {}): Promise<void> {
  checkOptions(options, WRITE_H5_OPTIONS, 'writeH5', path);
  const writer = await H5Writer.create(path, options);
  try {
    for (const [name, array] of Object.entries(record)) {
      if ((array as H5StringArray).kind === 'string-array') {
        const strings = array as H5StringArray;
        writer.strings(name, strings.bytes, strings.shape, { encoding: strings.encoding, variable: strings.width === null, ...(strings.width === null ? {} : { width: strings.width }) });
      } else if (isStringArray(array)) {
        // NumPy's strings as h5py stores them: |S<n> as fixed-length ASCII, str as variable UTF-8
        // (h5py refuses NumPy's <U<n>, so variable-length UTF-8 is what h5py users meet).
        const bytes = array.kind === 'bytes';
        writer.strings(name, array.values, array.shape, bytes ? { encoding: 'ascii', width: Math.max(1, array.width) } : { encoding: 'utf-8', variable: true });
      } else writer.dataset(name, array as NdArray);
    }
  } catch (error) {
    await writer.abort();
    throw error;
  }
  await writer.commit();
}
