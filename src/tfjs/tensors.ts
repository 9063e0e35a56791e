/**
 * The tfjs entry's save/load (the chapter's first half with tfjs tensors) and the bridge
 * between NdArray and tf.Tensor. save/load are the main entry's (containers.ts), with
 * tf.Tensors in place of NdArrays: the same formats, layouts and options, so the two entries
 * cannot disagree. Every array reaches tfjs through {@link toTensor}, every tensor leaves it
 * through {@link fromTensor}.
 *
 * tfjs has float32, int32, bool and complex64. Reading other dtypes converts them:
 * float16, bfloat16, float64 and float8 → float32; (u)int8/16, uint32 and (u)int64 → int32
 * when every value fits (else `ERR_UNSUPPORTED_DTYPE` naming the tensor); complex128 →
 * complex64. `{ convert: false }` refuses any conversion with `ERR_UNSUPPORTED_DTYPE`.
 */
import * as tf from '@tensorflow/tfjs';
import { SAVE_OPTIONS } from '../containers.js';
import { checkOptions, keysOf } from '../options.js';
import type { ArraysPath, NpyPath } from '../load-types.js';
import type { LoadedTensors } from './load-types.js';

import {
  load as loadContainer,
  save as saveContainer,
  type LoadOptions,
  type SaveOptions,
} from '../containers.js';
import { TensorioError } from '../errors.js';
import { isNdArrayLike, type PicklableValue } from '../formats/pickle/pickler.js';
import { isObjectArray, objectArray, type ObjectArray } from '../formats/pickle/object-array.js';
import type { PyLeaf } from '../formats/pickle/values.js';
import { isStringArrayLike, validateNdArray, type NdArray } from '../ndarray.js';
import { tfjsArray, type TfjsArrayOptions } from './tfjs-arrays.js';

/** The options tensorio/tfjs's load takes (checked: a misspelt key is ERR_INVALID_ARGUMENT). */
const LOAD_TENSOR_OPTIONS = keysOf<LoadTensorOptions>({ mmap: true, allowPickle: true, maxMemberSize: true, maxHeaderSize: true, maxPickleSize: true, voidAs: true, convert: true });

/** What {@link load} returns without `allowPickle`: a tensor, a list or a record of them. */
export type TensorValue = tf.Tensor | tf.Tensor[] | Record<string, tf.Tensor>;

/**
 * A tf.Tensor as an NdArray (float32, int32, bool or complex64, C order), from
 * `tensor.data()`, so it works on every backend. float32 and int32 data is what tfjs returns
 * (no further copy); complex64 is interleaved real, imaginary.
 * @param name Named in error messages.
 * @throws TensorioError `ERR_UNSUPPORTED_DTYPE` for a string tensor, naming it.
 */
export async function fromTensor(tensor: tf.Tensor, name?: string): Promise<NdArray> {
  if (!(tensor instanceof tf.Tensor)) throw new TensorioError('ERR_INVALID_ARGUMENT', `${name === undefined ? 'the value' : `'${name}'`} is not a tf.Tensor`);
  const what = name === undefined ? 'a tfjs tensor' : `tensor '${name}'`;
  if (tensor.dtype === 'string') throw new TensorioError('ERR_UNSUPPORTED_DTYPE', `${what} has dtype string; tensorio stores numeric tensors only`);
  const data = await tensor.data();
  const shape = [...tensor.shape];
  switch (tensor.dtype) {
    case 'float32':
      return { dtype: 'float32', shape, data: data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>) };
    case 'int32':
      return { dtype: 'int32', shape, data: data instanceof Int32Array ? data : Int32Array.from(data as ArrayLike<number>) };
    case 'bool':
      // Backends keep bool as bytes or as int32; tensorio's bool is a Uint8Array of 0/1.
      return { dtype: 'bool', shape, data: Uint8Array.from(data as ArrayLike<number>, (v) => (v ? 1 : 0)) };
    case 'complex64':
      return { dtype: 'complex64', shape, data: data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>) };
    default:
      throw new TensorioError('ERR_UNSUPPORTED_DTYPE', `${what} has dtype ${String(tensor.dtype)}, which tensorio cannot store`);
  }
}

/**
 * An NdArray as a tf.Tensor: the one way tensorio turns arrays into tensors (loadWeights and
 * load use it too). A Fortran-order array (`order: 'F'`) is copied to C order; dtypes tfjs
 * lacks convert (float16, bfloat16, float8, float64 → float32; int8 ... uint64 → int32 when
 * every value fits; complex128 → complex64) unless `convert: false`. A float32, int32 or
 * bool array in C order is handed to tfjs without a copy.
 * @param options `name` and `path` (named in errors), `convert` (default true), `dtype`
 * (the tfjs dtype wanted; default the array's natural one).
 * @throws TensorioError `ERR_UNSUPPORTED_DTYPE` naming the tensor: an integer outside int32,
 * a conversion refused, a dtype that cannot become `dtype`.
 */
export function toTensor(array: NdArray, options: TfjsArrayOptions = {}): tf.Tensor {
  if (isStringArrayLike(array)) {
    const name = options.name === undefined ? '' : `tensor '${options.name}': `;
    throw new TensorioError('ERR_UNSUPPORTED_DTYPE', `${name}a string array; tensorio's tfjs entry moves numeric tensors only (model.json weights hold no strings)`, options.path === undefined ? {} : { path: options.path });
  }
  validateNdArray(array, options.path);
  const ready = tfjsArray(array, options);
  const shape = ready.shape;
  if (ready.dtype === 'complex64') {
    const d = ready.data as Float32Array;
    const re = new Float32Array(d.length / 2);
    const im = new Float32Array(d.length / 2);
    for (let i = 0; i < re.length; i++) {
      re[i] = d[2 * i] as number;
      im[i] = d[2 * i + 1] as number;
    }
    return tf.tidy(() => tf.complex(tf.tensor(re, shape), tf.tensor(im, shape)));
  }
  return tf.tensor(ready.data as Float32Array | Int32Array | Uint8Array, shape, ready.dtype);
}

/** A value of tensors as tfjs `save` takes it: what the main `save` takes (leaves: null, booleans, numbers, bigints, strings, bytes, NdArrays), with tf.Tensors too. */
export type TensorTree = tf.Tensor | PyLeaf | ObjectArray<TensorTree> | readonly TensorTree[] | { readonly [key: string]: TensorTree };

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || ArrayBuffer.isView(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** The value with every tf.Tensor replaced by its NdArray (names are key paths, for errors). */
async function arraysOf(value: unknown, name: string | undefined): Promise<PicklableValue> {
  if (value instanceof tf.Tensor) return fromTensor(value, name);
  const child = (key: string | number): string => (name === undefined ? String(key) : `${name}/${key}`);
  if (Array.isArray(value)) {
    const out: PicklableValue[] = [];
    for (let i = 0; i < value.length; i++) out.push(await arraysOf(value[i], child(i)));
    return out;
  }
  if (isObjectArray(value)) {
    const items: PicklableValue[] = [];
    for (let i = 0; i < value.items.length; i++) items.push(await arraysOf(value.items[i], child(i)));
    return objectArray(items, value.shape, value.order) as PicklableValue;
  }
  if (isPlainObject(value)) {
    const out: Record<string, PicklableValue> = {};
    for (const [k, v] of Object.entries(value)) Object.defineProperty(out, k, { value: await arraysOf(v, child(k)), enumerable: true, writable: true, configurable: true });
    return out;
  }
  return value as PicklableValue; // NdArrays, numbers, strings, ...: the main save checks them
}

/** The loaded value with every NdArray turned into a tf.Tensor through {@link toTensor}. */
function tensorsOf(value: unknown, name: string | undefined, options: TfjsArrayOptions): unknown {
  if (isNdArrayLike(value)) return toTensor(value, { ...options, ...(name === undefined ? {} : { name }) });
  const child = (key: string | number): string => (name === undefined ? String(key) : `${name}/${key}`);
  if (Array.isArray(value)) return value.map((v, i) => tensorsOf(v, child(i), options));
  if (value instanceof Map) return new Map([...value].map(([k, v]) => [k, tensorsOf(v, child(String(k)), options)]));
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) Object.defineProperty(out, k, { value: tensorsOf(v, child(k), options), enumerable: true, writable: true, configurable: true });
    return out;
  }
  return value;
}

/**
 * Saves tfjs tensors: whatever the main entry's `save` takes, with tf.Tensors in place of
 * NdArrays (NdArrays are taken too), in the same formats and layouts:
 * - `.npy`: one tensor as an array; a list, a record or any nesting of them (with numbers,
 *   strings, ...) as the pickled object array `np.save` writes for a list or a dict
 *   (`np.load(path, allow_pickle=True)` reads it);
 * - `.npz` and `.safetensors`: a tensor is `arr_0`, a list `arr_0`, `arr_1`, ... (as
 *   `np.savez(f, *arrays)` names them), a record one member or tensor per key;
 * - `.h5` / `.hdf5`: a tensor is dataset `x`, a list datasets `0`, `1`, ..., a record one
 *   dataset per key (`a/b` creates group `a`).
 * float32, int32, bool and complex64 are stored as such (`<f4`, `<i4`, `|b1`, `<c8`;
 * safetensors F32, I32, BOOL, C64; HDF5 bool as h5py's enum).
 * @param options `fsync` (default true), `compress` (`.npz` only).
 * @throws TensorioError `ERR_INVALID_ARGUMENT` for another extension or a value the format
 * cannot hold (nesting in `.npz`, `.safetensors`, `.h5`), `ERR_UNSUPPORTED_DTYPE` for a
 * string tensor, and the errors of the format's writer.
 */
export async function save(path: string, value: TensorTree, options: SaveOptions = {}): Promise<void> {
  checkOptions(options, SAVE_OPTIONS, 'save', path);
  await saveContainer(path, await arraysOf(value, undefined), options);
}

/** Options of {@link load}: the main `load`'s, and the dtype conversion of {@link toTensor}. */
export interface LoadTensorOptions extends LoadOptions {
  /** Convert dtypes tfjs lacks (see the module notes). Default true; false throws instead. */
  convert?: boolean;
}

/**
 * Loads what {@link save} (or NumPy, h5py, safetensors) wrote, as the main entry's `load`
 * does, with tf.Tensors in place of NdArrays: `.npy` → a tensor (a pickled list or dict, with
 * `allowPickle: true`, → the same structure of tensors); `.npz` and `.safetensors` (or a
 * sharded checkpoint's index) → a list when the names are exactly `arr_0` ... `arr_{n-1}`,
 * else a record; `.h5` → the lone `x` dataset as a tensor, datasets `0..n-1` as a list,
 * anything else as a record keyed by full path. Fortran-order arrays come back in C order and
 * dtypes tfjs lacks convert as {@link toTensor} says.
 * @param options `convert` (default true), `allowPickle` (default false), `mmap`, and the
 * main `load`'s limits.
 * @throws TensorioError `ERR_INVALID_ARGUMENT` for another extension, `ERR_PICKLE_DISALLOWED`,
 * `ERR_UNSUPPORTED_DTYPE` (with `convert: false`, or an integer outside int32, naming the
 * tensor), and the reader's errors.
 */
export async function load(path: NpyPath, options?: LoadTensorOptions & { allowPickle?: false }): Promise<tf.Tensor>;
export async function load(path: ArraysPath, options?: LoadTensorOptions & { allowPickle?: false }): Promise<LoadedTensors>;
export async function load(path: string, options?: LoadTensorOptions & { allowPickle?: false }): Promise<TensorValue>;
export async function load(path: string, options: LoadTensorOptions): Promise<unknown>;
export async function load(path: string, options: LoadTensorOptions = {}): Promise<unknown> {
  checkOptions(options, LOAD_TENSOR_OPTIONS, 'load', path);
  const { convert, ...rest } = options;
  const loaded: unknown = await loadContainer(path, rest as LoadOptions);
  return tensorsOf(loaded, undefined, { path, ...(convert === undefined ? {} : { convert }) });
}
