/**
 * The public types of the PyTorch reader: its options, what it returns, and the lazy file
 * objects (read.ts implements them, sharded.ts gives the same interface over shards).
 */
import { type LoadedArray } from '../../ndarray.js';

/** Options of `readTorch` and `openTorch`. */
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

/** What `readTorch` returns: the saved object with an NdArray for every tensor. */
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
  /**
   * 'zip' (torch 1.6 and later), 'legacy' (the magic-number format before it), 'tar' (the
   * layout of torch before 0.1.10), 'sharded' for a `*.bin.index.json` checkpoint (sharded.ts).
   */
  readonly format: 'zip' | 'legacy' | 'tar' | 'sharded';
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
  /** The whole object with every tensor read (what `readTorch` returns). */
  value(): Promise<TorchValue>;
  /** Closes the file; arrays already returned stay valid. */
  close(): void;
}

/** {@link TorchFile} read synchronously: what `openTorchSync` returns. */
export interface TorchFileSync extends Omit<TorchFile, 'get' | 'value'> {
  /** Reads one tensor. @throws TensorioError as {@link TorchFile.get}. */
  get(name: string): LoadedArray;
  /** The whole object with every tensor read (what `readTorchSync` returns). */
  value(): TorchValue;
}
