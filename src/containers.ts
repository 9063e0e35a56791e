/**
 * `save` and `load`: NumPy's np.save / np.load for Node. The file's extension picks the
 * format: `.npy` for one array (or, pickled, a list or dict of them), `.npz` or
 * `.safetensors` for a list or record of arrays.
 */
import { TensorioError } from './errors.js';
import { AtomicWriter, closeQuietly, openForReadAsync, readAt, type WriteOptions } from './io.js';
import { tensorHint, type LoadedArray, type NdArray } from './ndarray.js';
import { DEFAULT_MAX_HEADER_SIZE, encodeNpyHeaderDescr, isObjectDescr, parseNpyRawHeader, readNpy, writeNpy } from './formats/npy.js';
import { readNpz, writeNpz, type NpzReadOptions } from './formats/npz.js';
import { readSafetensors, writeSafetensors } from './formats/safetensors.js';
import { readH5, writeH5 } from './formats/h5.js';
import { h5Datasets, h5Value } from './formats/h5-values.js';
import { isFortranLayout, isNdArrayLike, pickleNdObjectArray, unpickle, type PicklableValue, type PyObject } from './formats/pickle.js';
import { isObjectArray, objectArray, type ObjectArray } from './formats/pickle/object-array.js';
import { looksLikeTorch, readTorch, writeTorch, type TorchSaveValue } from './formats/torch/index.js';

/** What {@link save} writes: an array, a list of arrays, or a record of arrays. */
export type SaveValue = NdArray | readonly NdArray[] | Readonly<Record<string, NdArray>>;

/** Options of {@link save}. */
export interface SaveOptions extends WriteOptions {
  /** `.npz` only: deflate the members (see {@link NpzWriteOptions.compress}). Default false. */
  compress?: boolean | number;
}

/** Options of {@link load}. */
export interface LoadOptions extends NpzReadOptions {
  /** Largest pickled `.npy` file read with `allowPickle`, in bytes. Default 4 GiB. */
  maxPickleSize?: number;
}

/** What {@link load} returns without `allowPickle`. */
export type Loaded = LoadedArray | LoadedArray[] | Record<string, LoadedArray>;

type Format = 'npy' | 'npz' | 'safetensors' | 'h5' | 'torch';

function formatOf(path: string): Format {
  const lower = path.toLowerCase();
  if (lower.endsWith('.npy')) return 'npy';
  if (lower.endsWith('.npz')) return 'npz';
  if (lower.endsWith('.safetensors') || lower.endsWith('.safetensors.index.json')) return 'safetensors';
  if (lower.endsWith('.h5') || lower.endsWith('.hdf5')) return 'h5';
  // PyTorch's extensions (and a sharded checkpoint's index); `.bin` is sniffed when read, since other formats use it too.
  if (/\.(pt|pth|ckpt|bin)(\.index\.json)?$/.test(lower)) return 'torch';
  throw new TensorioError('ERR_INVALID_ARGUMENT', `cannot tell the format from the file name: expected a .npy, .npz, .safetensors, .pt, .pth, .ckpt, .bin, .h5 or .hdf5 extension`, { path });
}

/** The members of a list or record of arrays, named as np.savez names them (arr_0, arr_1, ...). */
function namedArrays(path: string, value: SaveValue | PicklableValue, format: string): [string, NdArray][] {
  if (isNdArrayLike(value)) return [['arr_0', value]];
  if (isObjectArray(value)) throw new TensorioError('ERR_INVALID_ARGUMENT', `an object array is saved to .npy, not ${format}`, { path });
  if (Array.isArray(value) || isRecord(value)) {
    const entries: [string, unknown][] = Array.isArray(value) ? value.map((v, i) => [`arr_${i}`, v]) : Object.entries(value);
    const bad = entries.find(([, v]) => !isNdArrayLike(v));
    if (bad) {
      throw new TensorioError('ERR_INVALID_ARGUMENT', `a ${format} file holds only arrays, and entry '${bad[0]}' is not an NdArray${tensorHint(bad[1])}; save nested values to .npy`, { path });
    }
    return entries as [string, NdArray][];
  }
  throw new TensorioError('ERR_INVALID_ARGUMENT', `save to ${format} needs an NdArray, a list of NdArrays or a record of NdArrays${tensorHint(value)}`, { path });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || ArrayBuffer.isView(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Saves `value` like np.save / np.savez.
 *
 * - `.npz`: an NdArray becomes member `arr_0`, a list members `arr_0`, `arr_1`, ... (as
 *   `np.savez(path, *arrays)`), a record one member per key. This is the portable choice.
 * - `.safetensors`: the same naming as `.npz` (a record's keys, or arr_0, arr_1, ...), written
 *   as the reference writer does; `fsync` applies, `compress` does not.
 * - `.h5` / `.hdf5`: an NdArray is dataset `x`, a list datasets `0`, `1`, ..., a record one
 *   dataset per key (`a/b` creates group `a`), as the tfjs entry's `save` writes them.
 * - `.npy`: an NdArray is written as is. A list or record (or any nesting of lists, records,
 *   arrays, numbers, strings) is written as NumPy writes them: a pickled object array (a
 *   list gives shape (n,), anything else a 0-d array), which Python reads with
 *   `np.load(path, allow_pickle=True)` (`.item()` for a dict). Note that `np.save` of a list of
 *   equal-shape arrays would stack them into one array; `save` always keeps the list.
 *   An {@link objectArray} is written with its shape and order, as `np.save` writes an n-d
 *   object array (elements pickled in C order, `fortran_order` from its order).
 *
 * - `.pt`, `.pth`, `.ckpt`, `.bin`: a PyTorch checkpoint that `torch.load(weights_only=True)`
 *   reads, nested values as they are (see {@link writeTorch}).
 *
 * Atomic and streamed like every write.
 * @param options `compress` (`.npz`, default false), `fsync` (default true).
 * @throws TensorioError `ERR_INVALID_ARGUMENT` (unknown extension, values that are not
 * arrays), `ERR_UNSUPPORTED_DTYPE`, `ERR_SHAPE_MISMATCH`, and the file-system errors.
 */
export async function save(path: string, value: SaveValue | PicklableValue, options: SaveOptions = {}): Promise<void> {
  const format = formatOf(path);
  if (format === 'torch' || format === 'h5') {
    if (options.compress !== undefined && options.compress !== false) throw new TensorioError('ERR_INVALID_ARGUMENT', 'compress applies to .npz only', { path });
    const fsync = options.fsync === undefined ? {} : { fsync: options.fsync };
    if (format === 'torch') return writeTorch(path, value as TorchSaveValue, fsync);
    return writeH5(path, h5Datasets(value as SaveValue, isNdArrayLike, path), fsync);
  }
  if (format === 'npz') return writeNpz(path, Object.fromEntries(namedArrays(path, value, '.npz')), options);
  if (format === 'safetensors') {
    if (options.compress !== undefined && options.compress !== false) {
      throw new TensorioError('ERR_INVALID_ARGUMENT', 'compress applies to .npz only', { path });
    }
    await writeSafetensors(path, new Map(namedArrays(path, value, '.safetensors')), options.fsync === undefined ? {} : { fsync: options.fsync });
    return;
  }
  if (options.compress !== undefined && options.compress !== false) {
    throw new TensorioError('ERR_INVALID_ARGUMENT', 'compress applies to .npz only', { path });
  }
  if (isNdArrayLike(value)) return writeNpy(path, value, options);
  if (!Array.isArray(value) && !isRecord(value) && !isObjectArray(value)) {
    throw new TensorioError('ERR_INVALID_ARGUMENT', `save to .npy needs an NdArray, a list, a record or an objectArray()${tensorHint(value)}`, { path });
  }
  // np.save of an object array: its own shape and order (elements pickled in C order).
  const array: ObjectArray<PicklableValue> = isObjectArray(value)
    ? (value as ObjectArray<PicklableValue>)
    : Array.isArray(value)
      ? objectArray(value as PicklableValue[], [(value as PicklableValue[]).length])
      : objectArray([value as PicklableValue], []);
  const pickle = pickleNdObjectArray(array, path);
  const header = encodeNpyHeaderDescr('|O', array.shape as number[], isFortranLayout(array.shape, array.order));
  const out = await AtomicWriter.open(path, options);
  try {
    await out.write([header, ...pickle]);
    await out.commit();
  } catch (error) {
    await out.abort();
    throw error;
  }
}

/** Turns the members of a `.npz` back into a list when they are exactly arr_0 ... arr_{n-1}. */
function listIfSavedAsList<T>(record: Record<string, T>): T[] | Record<string, T> {
  const keys = Object.keys(record);
  if (keys.length === 0 || !keys.every((k, i) => k === `arr_${i}`)) return record;
  return keys.map((k) => record[k] as T);
}

/**
 * Loads what {@link save} or NumPy wrote, like np.load.
 *
 * - `.npy`: the array. A pickled object array (np.save of a list, dict or ragged array)
 *   needs `allowPickle: true` and returns the Python structure (see {@link PyObject}): an
 *   object array of shape (n,) is an Array, a 0-d one its element (the dict).
 * - `.npz` and `.safetensors` (a single file or a sharded checkpoint's index): a record of
 *   the tensors, or an Array when they are exactly `arr_0` ... `arr_{n-1}` (what np.savez of
 *   positional arrays and `save` of a list write).
 * - `.pt`, `.pth`, `.ckpt`, and `.bin` when its first bytes are PyTorch's: the checkpoint as
 *   {@link readTorch} returns it (`mmap` applies); `*.bin.index.json` (and `.pt`, `.pth`,
 *   `.ckpt`): a sharded checkpoint's tensors as one record.
 * - `.h5` / `.hdf5`: every numeric dataset; a lone `x` is returned as the array, datasets
 *   exactly `0` ... `n-1` as a list, anything else as a record keyed by full path.
 *
 * @param options `mmap` (default false), `allowPickle` (default false), `maxMemberSize`,
 * `maxHeaderSize`, `maxPickleSize` (default 4 GiB).
 * @throws TensorioError `ERR_PICKLE_DISALLOWED` (a pickled file without `allowPickle`),
 * `ERR_UNSAFE_PICKLE`, `ERR_BAD_PICKLE`, `ERR_INVALID_ARGUMENT` (unknown extension), and every
 * error of {@link readNpy} and {@link readNpz}.
 */
export async function load(path: string, options?: LoadOptions & { allowPickle?: false }): Promise<Loaded>;
export async function load(path: string, options: LoadOptions): Promise<PyObject>;
export async function load(path: string, options: LoadOptions = {}): Promise<Loaded | PyObject> {
  const format = formatOf(path);
  const mmap = options.mmap === undefined ? {} : { mmap: options.mmap };
  if (format === 'torch') {
    if (path.toLowerCase().endsWith('.bin')) {
      const { fd, prefix } = await openForReadAsync(path, 64);
      closeQuietly(fd);
      if (!looksLikeTorch(prefix)) throw new TensorioError('ERR_BAD_MAGIC', 'a .bin file that is not a PyTorch checkpoint (neither a zip archive nor a legacy torch pickle); load reads .bin as PyTorch only', { path });
    }
    return (await readTorch(path, mmap)) as PyObject;
  }
  if (format === 'h5') return h5Value(await readH5(path, mmap));
  if (format === 'npz') return listIfSavedAsList(await readNpz(path, options));
  if (format === 'safetensors') return listIfSavedAsList((await readSafetensors(path, mmap)).tensors);
  const pickled = await readPickledNpy(path, options);
  if (pickled !== undefined) return pickled.value;
  const npyOptions = { ...mmap, ...(options.maxHeaderSize === undefined ? {} : { maxHeaderSize: options.maxHeaderSize }) };
  return readNpy(path, npyOptions);
}

/** The unpickled contents of an object-array `.npy`, or undefined for any other `.npy`. */
async function readPickledNpy(path: string, options: LoadOptions): Promise<{ value: PyObject } | undefined> {
  const maxHeaderSize = options.maxHeaderSize ?? DEFAULT_MAX_HEADER_SIZE;
  const { fd, size, prefix } = await openForReadAsync(path, 12 + maxHeaderSize);
  try {
    let raw;
    try {
      raw = parseNpyRawHeader(prefix, path, { maxHeaderSize }, size);
    } catch {
      return undefined; // readNpy reports the problem with its own message
    }
    if (!isObjectDescr(raw.descr)) return undefined;
    if (!options.allowPickle) {
      throw new TensorioError(
        'ERR_PICKLE_DISALLOWED',
        `the file holds an object array stored as a Python pickle (descr ${String(raw.descr)}); pass { allowPickle: true } to load it with the restricted unpickler, which runs no code`,
        { path },
      );
    }
    const length = size - raw.dataOffset;
    const limit = options.maxPickleSize ?? 2 ** 32;
    if (length > limit) {
      throw new TensorioError('ERR_TOO_LARGE', `the pickle is ${length} bytes, over the limit of ${limit}; pass { maxPickleSize } if you trust this file`, { path });
    }
    const body = new Uint8Array(length);
    const got = await readAt(fd, raw.dataOffset, body, path);
    if (got !== length) throw new TensorioError('ERR_TRUNCATED', `file ends inside the pickle: expected ${length} bytes, found ${got}`, { path });
    return { value: unpickle(body, { path }) };
  } finally {
    closeQuietly(fd);
  }
}
