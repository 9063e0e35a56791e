/**
 * `save` and `load`: NumPy's np.save / np.load for Node. The file's extension picks the
 * format through the registry (formats/registry.ts); each format's reader and writer are in
 * formats/main-io.ts. This module holds the public API and its documentation.
 */
import { checkOptions, keysOf } from './options.js';
import { formatForPath, identifyFile } from './formats/registry.js';
import type { Loaded, LoadOptions, SaveOptions, SaveValue } from './formats/main-io.js';
import type { PicklableValue } from './formats/pickle/pickler.js';
import type { PyObject } from './formats/pickle/values.js';
import type { ArraysPath, LoadedArrays, LoadedPickle, NpyPath } from './load-types.js';
import type { LoadedArray } from './ndarray.js';
import { WRITE_OPTION_KEYS } from './io/atomic-writer.js';

/** The options load takes (checked: a misspelt key is ERR_INVALID_ARGUMENT). */
export const LOAD_OPTIONS = keysOf<LoadOptions>({ mmap: true, allowPickle: true, maxMemberSize: true, maxHeaderSize: true, maxPickleSize: true, voidAs: true });

/** The options save takes (checked: a misspelt key is ERR_INVALID_ARGUMENT). */
export const SAVE_OPTIONS = keysOf<SaveOptions>({ ...WRITE_OPTION_KEYS, compress: true });

export type { Loaded, LoadOptions, SaveOptions, SaveValue } from './formats/main-io.js';

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
  checkOptions(options, SAVE_OPTIONS, 'save', path);
  const entry = formatForPath(path, 'save');
  await (entry.write as NonNullable<typeof entry.write>)(path, value, options);
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
 *   {@link readTorch} returns it (`mmap` applies).
 * - `.h5` / `.hdf5`: every numeric dataset; a lone `x` is returned as the array, datasets
 *   exactly `0` ... `n-1` as a list, anything else as a record keyed by full path.
 *
 * @param options `mmap` (default false), `allowPickle` (default false), `maxMemberSize`,
 * `maxHeaderSize`, `maxPickleSize` (default 4 GiB).
 * @throws TensorioError `ERR_PICKLE_DISALLOWED` (a pickled file without `allowPickle`),
 * `ERR_UNSAFE_PICKLE`, `ERR_BAD_PICKLE`, `ERR_INVALID_ARGUMENT` (unknown extension), and every
 * error of {@link readNpy} and {@link readNpz}.
 */
export async function load(path: NpyPath, options?: LoadOptions & { allowPickle?: false }): Promise<LoadedArray>;
export async function load(path: NpyPath, options: LoadOptions & { allowPickle: true }): Promise<LoadedPickle>;
export async function load(path: ArraysPath, options?: LoadOptions & { allowPickle?: false }): Promise<LoadedArrays>;
export async function load(path: string, options?: LoadOptions & { allowPickle?: false }): Promise<Loaded>;
export async function load(path: string, options: LoadOptions): Promise<PyObject>;
export async function load(path: string, options: LoadOptions = {}): Promise<Loaded | PyObject> {
  checkOptions(options, LOAD_OPTIONS, 'load', path);
  const { entry } = await identifyFile(path, 'load');
  return (entry.read as NonNullable<typeof entry.read>)(path, options);
}
