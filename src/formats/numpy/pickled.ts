/**
 * Pickled `.npy` files: `np.save` of an object array (a list, a dict, a ragged array) writes
 * the header with descr `|O` and then a Python pickle of the elements; `np.load(...,
 * allow_pickle=True)` reads it back. Here the writer pickles with pickler.ts and the reader
 * unpickles with the restricted unpickler, which runs no code. `load`/`save` (main-io.ts) call
 * these for `.npy` values that are not plain arrays.
 */
import { TensorioError } from '../../errors.js';
import { AtomicWriter, type WriteOptions } from '../../io/atomic-writer.js';
import { closeQuietly, openForReadAsync } from '../../io/read.js';
import { ByteSource, runAsync } from '../../io/source.js';
import { isFortranLayout, pickleNdObjectArray, type PicklableValue } from '../pickle/pickler.js';
import { unpickle } from '../pickle/unpickler.js';
import { type PyObject } from '../pickle/values.js';
import { objectArray, isObjectArray, type ObjectArray } from '../pickle/object-array.js';
import { encodeNpyHeaderDescr, headerLimitOf, headerProbeLength, isObjectDescr } from './header.js';
import { rawHeaderWalk } from './read.js';

/** What {@link readPickledNpy} takes: the `load` options that bear on a pickled `.npy`. */
export interface PickledNpyReadOptions {
  allowPickle?: boolean;
  maxHeaderSize?: number;
  /** Largest pickle read, in bytes. Default 4 GiB. */
  maxPickleSize?: number;
}

/**
 * Writes a list, a record or an object array as `np.save` writes it: an object array of its
 * own shape and order (a list is 1-d, a record a 0-d array holding the dict), its elements
 * pickled in C order, the file replaced atomically.
 */
export async function writePickledNpy(path: string, value: readonly PicklableValue[] | Readonly<Record<string, PicklableValue>> | ObjectArray<PicklableValue>, options: WriteOptions): Promise<void> {
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

/** The unpickled contents of an object-array `.npy`, or undefined for any other `.npy`. */
export async function readPickledNpy(path: string, options: PickledNpyReadOptions): Promise<{ value: PyObject } | undefined> {
  const maxHeaderSize = headerLimitOf(options);
  const { fd, size, prefix } = await openForReadAsync(path, headerProbeLength(maxHeaderSize));
  try {
    const source = ByteSource.ofFile(fd, size, path);
    let raw;
    try {
      raw = await runAsync(rawHeaderWalk(size, path, { maxHeaderSize }, prefix), source);
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
    return { value: unpickle(await source.readAsync(raw.dataOffset, length, 'pickle'), { path }) };
  } finally {
    closeQuietly(fd);
  }
}
