/**
 * The main entry's reader and writer for each format: how `save` lays an array, a list or a
 * record out in the format (np.savez's `arr_0`, `arr_1`, ...; HDF5 datasets `x`, `0`, `1`, ...;
 * np.save's pickled object array for a list or dict in `.npy`), and how `load` gives it back.
 * The registry (registry.ts) hands these to `save`/`load` (containers.ts); the tfjs entry's
 * `save`/`load` go through those, so both entries hold the same formats the same way.
 */
import { TensorioError } from '../errors.js';
import { type WriteOptions } from '../io/atomic-writer.js';
import {
  isStringArrayLike,
  stringMemberError,
  tensorHint,
  type LoadedArray,
  type NdArray,
} from '../ndarray.js';
import { readH5 } from './hdf5/file.js';
import { writeH5 } from './hdf5/writer.js';
import { h5Datasets, h5Value } from './h5-values.js';
import { headerLimitOf } from './numpy/header.js';
import { readNpy } from './numpy/read.js';
import { writeNpy } from './numpy/write.js';
import { readPickledNpy, writePickledNpy } from './numpy/pickled.js';
import { readNpz, type NpzReadOptions } from './numpy/npz-read.js';
import { writeNpz } from './numpy/npz-write.js';
import { isNdArrayLike, type PicklableValue } from './pickle/pickler.js';
import { type PyObject } from './pickle/values.js';
import { isObjectArray } from './pickle/object-array.js';
import { readSafetensors } from './safetensors/read.js';
import { writeSafetensors } from './safetensors/write.js';
import { readTorch, writeTorch, type TorchSaveValue } from './torch/index.js';

/** What `save` writes: an array, a list of arrays, or a record of arrays. */
export type SaveValue = NdArray | readonly NdArray[] | Readonly<Record<string, NdArray>>;

/** Options of `save`. */
export interface SaveOptions extends WriteOptions {
  /** `.npz` only: deflate the members (see {@link NpzWriteOptions.compress}). Default false. */
  compress?: boolean | number;
}

/** Options of `load`. */
/** `strings` is not one: load returns arrays, lists and records (string arrays: readNpy/readNpz). */
export interface LoadOptions extends Omit<NpzReadOptions, 'strings'> {
  /** Largest pickled `.npy` file read with `allowPickle`, in bytes. Default 4 GiB. */
  maxPickleSize?: number;
}

/** What `load` returns without `allowPickle`. */
export type Loaded = LoadedArray | LoadedArray[] | Record<string, LoadedArray>;

/** A format's `load`. */
export type MainReader = (path: string, options: LoadOptions) => Promise<Loaded | PyObject>;
/** A format's `save`. */
export type MainWriter = (path: string, value: SaveValue | PicklableValue, options: SaveOptions) => Promise<void>;

function isRecord(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || ArrayBuffer.isView(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** The members of a list or record of arrays, named as np.savez names them (arr_0, arr_1, ...). */
function namedArrays(path: string, value: SaveValue | PicklableValue, format: string): [string, NdArray][] {
  if (isNdArrayLike(value)) return [['arr_0', value]];
  if (isStringArrayLike(value)) throw stringMemberError(path, 'arr_0', format);
  if (isObjectArray(value)) throw new TensorioError('ERR_INVALID_ARGUMENT', `an object array is saved to .npy, not ${format}`, { path });
  if (Array.isArray(value) || isRecord(value)) {
    const entries: [string, unknown][] = Array.isArray(value) ? value.map((v, i) => [`arr_${i}`, v]) : Object.entries(value);
    const strings = entries.find(([, v]) => isStringArrayLike(v));
    if (strings) throw stringMemberError(path, strings[0], format);
    const bad = entries.find(([, v]) => !isNdArrayLike(v));
    if (bad) {
      throw new TensorioError('ERR_INVALID_ARGUMENT', `a ${format} file holds only arrays, and entry '${bad[0]}' is not an NdArray${tensorHint(bad[1])}; save nested values to .npy`, { path });
    }
    return entries as [string, NdArray][];
  }
  throw new TensorioError('ERR_INVALID_ARGUMENT', `save to ${format} needs an NdArray, a list of NdArrays or a record of NdArrays${tensorHint(value)}`, { path });
}

/** Turns members back into a list when they are exactly arr_0 ... arr_{n-1}. */
function listIfSavedAsList<T>(record: Record<string, T>): T[] | Record<string, T> {
  const keys = Object.keys(record);
  if (keys.length === 0 || !keys.every((k, i) => k === `arr_${i}`)) return record;
  return keys.map((k) => record[k] as T);
}

function refuseCompress(path: string, options: SaveOptions): void {
  if (options.compress !== undefined && options.compress !== false) throw new TensorioError('ERR_INVALID_ARGUMENT', 'compress applies to .npz only', { path });
}

function fsyncOnly(options: SaveOptions): WriteOptions {
  return options.fsync === undefined ? {} : { fsync: options.fsync };
}

function mmapOnly(options: LoadOptions): { mmap?: boolean } {
  return options.mmap === undefined ? {} : { mmap: options.mmap };
}

async function writeNpyValue(path: string, value: SaveValue | PicklableValue, options: SaveOptions): Promise<void> {
  refuseCompress(path, options);
  if (isNdArrayLike(value)) {
    const { compress: _compress, ...npyOptions } = options; // refused above unless absent or false
    return writeNpy(path, value, npyOptions);
  }
  if (!Array.isArray(value) && !isRecord(value) && !isObjectArray(value)) {
    throw new TensorioError('ERR_INVALID_ARGUMENT', `save to .npy needs an NdArray, a list, a record or an objectArray()${tensorHint(value)}`, { path });
  }
  return writePickledNpy(path, value as Parameters<typeof writePickledNpy>[1], options);
}

async function readNpyValue(path: string, options: LoadOptions): Promise<Loaded | PyObject> {
  const pickled = await readPickledNpy(path, options);
  if (pickled !== undefined) return pickled.value;
  // allowPickle lifts the header limit, as in NumPy (headerLimitOf).
  return readNpy(path, {
    ...mmapOnly(options),
    ...(options.maxHeaderSize === undefined && !options.allowPickle ? {} : { maxHeaderSize: headerLimitOf(options) }),
    ...(options.voidAs === undefined ? {} : { voidAs: options.voidAs }),
  });
}

/** `load` of each format that `load` takes (the registry names which). */
export const mainReaders = {
  npy: readNpyValue,
  npz: async (path, options) => {
    const { maxPickleSize: _pickleLimit, ...npzOptions } = options; // a .npy-only limit
    return listIfSavedAsList(await readNpz(path, { ...npzOptions, strings: false }));
  },
  // A single file or a sharded checkpoint's index.
  safetensors: async (path, options) => listIfSavedAsList((await readSafetensors(path, mmapOnly(options))).tensors),
  hdf5: async (path, options) => h5Value(await readH5(path, mmapOnly(options))),
  torch: async (path, options) => (await readTorch(path, mmapOnly(options))) as PyObject,
} satisfies Record<string, MainReader>;

/** `save` of each format that `save` takes. */
export const mainWriters = {
  npy: writeNpyValue,
  npz: (path, value, options) => writeNpz(path, Object.fromEntries(namedArrays(path, value, '.npz')), options),
  safetensors: async (path, value, options) => {
    refuseCompress(path, options);
    await writeSafetensors(path, new Map(namedArrays(path, value, '.safetensors')), fsyncOnly(options));
  },
  hdf5: (path, value, options) => {
    refuseCompress(path, options);
    return writeH5(path, h5Datasets(value as SaveValue, isNdArrayLike, path), fsyncOnly(options));
  },
  torch: (path, value, options) => {
    refuseCompress(path, options);
    return writeTorch(path, value as TorchSaveValue, fsyncOnly(options));
  },
} satisfies Record<string, MainWriter>;
