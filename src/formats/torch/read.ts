/**
 * Reading PyTorch checkpoints: `openTorch`/`readTorch` and their synchronous twins, and the
 * lazy file objects they return. The file is one ByteSource (src/io/source.ts), mapped when
 * asked; its layout (detect.ts: zip, legacy or tar) is opened by one walker, and every storage
 * read is a walker too, so the sync and the async reader are the same code driven by
 * `runSync` or `runAsync`. Tensors become NdArrays in tensor.ts; the object's values in
 * objects.ts.
 */
import { checkOptions, keysOf } from '../../options.js';
import { TensorioError } from '../../errors.js';
import { closeQuietly, openForRead, openForReadAsync } from '../../io/read.js';
import { ByteSource, runAsync, runSync, type Reads } from '../../io/source.js';
import { type LoadedArray } from '../../ndarray.js';
import { readLayout } from './detect.js';
import { type FileFacts, type Layout } from './layout.js';
import { asTensor, storagesOf, tensorPaths, toValue, type Ref } from './objects.js';
import type { StorageRef, TensorRef } from './profile.js';
import { isTorchIndexPath, openShardedTorch, openShardedTorchSync } from './sharded.js';
import { copyBudget, isCContiguous, tensorFromStorage, type CopyBudget, type StorageBytes } from './tensor.js';
import type { TorchFile, TorchFileSync, TorchReadOptions, TorchTensorInfo, TorchValue } from './types.js';

/** The options readTorch takes (checked: a misspelt key is ERR_INVALID_ARGUMENT). */
export const READ_TORCH_OPTIONS = keysOf<TorchReadOptions>({ mmap: true, maxMemberSize: true, maxPickleSize: true, maxCopySize: true, verifyCrc: true });

// The types' home is types.ts; options.ts and older imports name them here.
export type { TorchFile, TorchFileSync, TorchReadOptions, TorchTensorInfo, TorchValue } from './types.js';

/** Bytes read with the open to tell the layout (a tar's magic is at 257). */
const PREFIX = 512;

/** The opened file and its object; the file classes below run its walkers over the source. */
class Core {
  readonly paths: Map<string, Ref>;
  /** Each storage read so far, by key: tensors on one storage share its memory. */
  private readonly storages = new Map<string, StorageBytes>();
  closed = false;

  constructor(
    readonly source: ByteSource,
    readonly fd: number,
    readonly layout: Layout,
    readonly options: TorchReadOptions,
  ) {
    this.paths = tensorPaths(layout.root);
  }

  get path(): string {
    return this.source.path;
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

  /**
   * Reads the storages not read yet: for an eager read of the whole object, the layout's
   * regions first, then one by one. A key keeps the first bytes read for it, so tensors on one
   * storage share memory even when two async reads of it raced.
   */
  private *load(refs: readonly StorageRef[], whole: boolean): Reads<void> {
    const missing = [...new Map(refs.filter((r) => !this.storages.has(r.key)).map((r) => [r.key, r])).values()];
    const keep = (key: string, bytes: StorageBytes): void => {
      if (!this.storages.has(key)) this.storages.set(key, bytes);
    };
    if (whole && !this.options.mmap && missing.length > 0 && this.layout.preload) {
      for (const [key, bytes] of yield* this.layout.preload(missing)) keep(key, bytes);
    }
    for (const ref of missing) if (!this.storages.has(ref.key)) keep(ref.key, yield* this.layout.storage(ref));
  }

  private array(t: TensorRef, budget: CopyBudget): LoadedArray {
    const bytes = this.storages.get(t.storage.key) as StorageBytes;
    return tensorFromStorage(t, bytes, this.options.mmap === true, this.path, this.source.mapReason, budget);
  }

  private budget(): CopyBudget {
    return copyBudget(this.source.size, this.options.maxCopySize);
  }

  /** Reads one tensor. */
  *tensor(name: string): Reads<LoadedArray> {
    const t = asTensor(this.ref(name));
    yield* this.load([t.storage], false);
    return this.array(t, this.budget());
  }

  /** The whole object with every tensor read. */
  *value(): Reads<TorchValue> {
    if (this.closed) throw new TensorioError('ERR_CLOSED', 'the file is closed', { path: this.path });
    yield* this.load(storagesOf(this.layout.root), true);
    const budget = this.budget();
    return toValue(this.layout.root, (ref) => this.array(asTensor(ref), budget));
  }
}

/** What the async and the sync file share: everything but reading tensor data. */
abstract class TorchFileBase {
  constructor(protected readonly core: Core) {}

  get path(): string {
    return this.core.path;
  }
  get format(): Layout['format'] {
    return this.core.layout.format;
  }
  get byteOrder(): 'little' | 'big' {
    return this.core.layout.bigEndian ? 'big' : 'little';
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
  /** Reads under way: close() closes the descriptor after them. */
  private readonly pending = new Set<Promise<unknown>>();

  private run<T>(walk: Reads<T>): Promise<T> {
    const running = runAsync(walk, this.core.source);
    this.pending.add(running);
    const settled = (): boolean => this.pending.delete(running);
    running.then(settled, settled);
    return running;
  }

  get(name: string): Promise<LoadedArray> {
    return this.run(this.core.tensor(name));
  }
  value(): Promise<TorchValue> {
    return this.run(this.core.value());
  }
  close(): void {
    if (this.core.closed) return;
    this.core.closed = true;
    void Promise.allSettled([...this.pending]).then(() => closeQuietly(this.core.fd));
  }
}

class TorchFileSyncImpl extends TorchFileBase implements TorchFileSync {
  get(name: string): LoadedArray {
    return runSync(this.core.tensor(name), this.core.source);
  }
  value(): TorchValue {
    return runSync(this.core.value(), this.core.source);
  }
  close(): void {
    if (this.core.closed) return;
    this.core.closed = true;
    closeQuietly(this.core.fd);
  }
}

function sourceOf(fd: number, size: number, path: string, options: TorchReadOptions): { source: ByteSource; facts: FileFacts } {
  const source = ByteSource.ofFile(fd, size, path, { map: options.mmap === true });
  return { source, facts: { path, size, mapped: source.mapped } };
}

/**
 * Opens a PyTorch checkpoint (`torch.save`: zip, legacy or tar layout) lazily: the pickle is read
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
  checkOptions(options, READ_TORCH_OPTIONS, 'openTorch', path);
  if (isTorchIndexPath(path)) return openShardedTorch(path, options);
  return openTorchFile(path, options);
}

/** {@link openTorch} of one file (a shard, or a whole checkpoint). */
export async function openTorchFile(path: string, options: TorchReadOptions = {}): Promise<TorchFile> {
  const { fd, size, prefix } = await openForReadAsync(path, PREFIX);
  try {
    const { source, facts } = sourceOf(fd, size, path, options);
    const layout = await runAsync(readLayout(facts, prefix, options), source);
    return new TorchFileImpl(new Core(source, fd, layout, options));
  } catch (error) {
    closeQuietly(fd);
    throw error;
  }
}

/** Synchronous {@link openTorch} (the same parser, read with synchronous calls). */
export function openTorchSync(path: string, options: TorchReadOptions = {}): TorchFileSync {
  checkOptions(options, READ_TORCH_OPTIONS, 'openTorchSync', path);
  if (isTorchIndexPath(path)) return openShardedTorchSync(path, options);
  return openTorchFileSync(path, options);
}

/** {@link openTorchSync} of one file. */
export function openTorchFileSync(path: string, options: TorchReadOptions = {}): TorchFileSync {
  const { fd, size } = openForRead(path);
  try {
    const { source, facts } = sourceOf(fd, size, path, options);
    const prefix = source.read(0, Math.min(size, PREFIX), 'first bytes');
    const layout = runSync(readLayout(facts, prefix, options), source);
    return new TorchFileSyncImpl(new Core(source, fd, layout, options));
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
  checkOptions(options, READ_TORCH_OPTIONS, 'readTorch', path);
  const file = await openTorch(path, options);
  try {
    return await file.value();
  } finally {
    file.close();
  }
}

/** Synchronous {@link readTorch}. */
export function readTorchSync(path: string, options: TorchReadOptions = {}): TorchValue {
  checkOptions(options, READ_TORCH_OPTIONS, 'readTorchSync', path);
  const file = openTorchSync(path, options);
  try {
    return file.value();
  } finally {
    file.close();
  }
}
