/**
 * save/load of tfjs tensors (the chapter's first half with tfjs tensors): one tensor, an
 * array of them, or a record of them, as `.npy` (one tensor), HDF5 (`.h5`: a record, or
 * an array stored as datasets `0`, `1`, ...), `.npz` or `.safetensors` (a record, or an
 * array stored as `arr_0`, `arr_1`, ... as `np.savez` names positional arrays).
 *
 * tfjs has float32, int32, bool and complex64. Reading other dtypes converts them:
 * float16, bfloat16, float64 and float8 → float32; (u)int8/16, uint32 and (u)int64 → int32
 * with a range check that throws `ERR_BAD_VALUE` rather than wrapping; complex128 →
 * complex64. `{ convert: false }` refuses any conversion with `ERR_UNSUPPORTED_DTYPE`.
 */
import * as tf from '@tensorflow/tfjs';

import { load as loadContainer, save as saveContainer } from '../containers.js';
import { TensorioError } from '../errors.js';
import { readH5, writeH5 } from '../formats/h5.js';
import { readNpy, writeNpy } from '../formats/npy.js';
import { validateNdArray, type NdArray } from '../ndarray.js';
import { type WriteOptions } from '../io.js';
import { tfjsArray, type TfjsArrayOptions } from './tfjs-arrays.js';

/** What {@link save} accepts and {@link load} returns. */
export type TensorValue = tf.Tensor | tf.Tensor[] | Record<string, tf.Tensor>;

/** Options of {@link load}. */
export interface LoadTensorOptions {
  /** Convert dtypes tfjs lacks (see the module notes). Default true; false throws instead. */
  convert?: boolean;
}

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

function isH5(path: string): boolean {
  return /\.(h5|hdf5)$/i.test(path);
}

function isContainer(path: string): boolean {
  return /\.(npz|safetensors)$/i.test(path);
}

/**
 * Saves tfjs tensors: `.npy` for one tensor; `.h5` for a tensor, an array (datasets `0`,
 * `1`, ...) or a record (one dataset per key; `a/b` creates group `a`); `.npz` and
 * `.safetensors` for an array (`arr_0`, `arr_1`, ..., as `np.savez(f, *arrays)` names them)
 * or a record (one member or tensor per key). float32, int32, bool and complex64 are stored
 * as such (`<f4`, `<i4`, `|b1`, `<c8`; safetensors F32, I32, BOOL, C64).
 * @param options `fsync` (default true).
 * @throws TensorioError `ERR_INVALID_ARGUMENT` for another extension or value (one tensor
 * to `.npz`/`.safetensors`: wrap it in an array or a record), `ERR_UNSUPPORTED_DTYPE` for a
 * string tensor, and the errors of the format's writer.
 */
export async function save(path: string, value: TensorValue, options: WriteOptions = {}): Promise<void> {
  if (value instanceof tf.Tensor) {
    const array = await fromTensor(value);
    if (isH5(path)) return writeH5(path, { x: array }, options);
    if (/\.npy$/i.test(path)) return writeNpy(path, array, options);
    if (isContainer(path)) {
      throw new TensorioError('ERR_INVALID_ARGUMENT', 'one tensor is saved as .npy or .h5; for .npz or .safetensors pass an array [t] or a record { name: t }', { path });
    }
    throw new TensorioError('ERR_INVALID_ARGUMENT', 'expected a .npy or .h5 path for one tensor', { path });
  }
  if (!isH5(path) && !isContainer(path)) throw new TensorioError('ERR_INVALID_ARGUMENT', 'arrays and records of tensors are saved as .h5, .npz or .safetensors', { path });
  const entries = Array.isArray(value) ? value.map((t, i) => [String(i), t] as const) : Object.entries(value);
  const arrays: [string, NdArray][] = [];
  for (const [key, tensor] of entries) {
    if (!(tensor instanceof tf.Tensor)) throw new TensorioError('ERR_INVALID_ARGUMENT', `entry '${key}' is not a tf.Tensor`, { path });
    arrays.push([key, await fromTensor(tensor, key)]);
  }
  if (isH5(path)) return writeH5(path, Object.fromEntries(arrays), options);
  // containers.save names a list's members arr_0, arr_1, ... as np.savez does, and load turns
  // them back into a list.
  await saveContainer(path, Array.isArray(value) ? arrays.map(([, a]) => a) : Object.fromEntries(arrays), options);
}

/**
 * Loads what {@link save} wrote: `.npy` → a tensor; `.h5` → the lone `x` dataset as a
 * tensor, datasets `0..n-1` as an array, anything else as a record keyed by full path;
 * `.npz` and `.safetensors` → an array when the names are exactly `arr_0` ... `arr_{n-1}`,
 * else a record. Dtypes tfjs lacks convert as the module notes say.
 * @param options `convert` (default true).
 * @throws TensorioError `ERR_INVALID_ARGUMENT` for another extension, `ERR_UNSUPPORTED_DTYPE`
 * with `convert: false`, `ERR_BAD_VALUE` for an integer outside int32, and the reader's errors.
 */
export async function load(path: string, options: LoadTensorOptions = {}): Promise<TensorValue> {
  const convert = options.convert ?? true;
  if (/\.npy$/i.test(path)) return toTensor(await readNpy(path), { path, convert });
  if (isContainer(path)) {
    // For these two formats containers.load returns a list or a record, never one array.
    const loaded = (await loadContainer(path)) as NdArray[] | Record<string, NdArray>;
    if (Array.isArray(loaded)) return loaded.map((a, i) => toTensor(a, { name: `arr_${i}`, path, convert }));
    return Object.fromEntries(Object.entries(loaded).map(([k, a]) => [k, toTensor(a, { name: k, path, convert })]));
  }
  if (!isH5(path)) throw new TensorioError('ERR_INVALID_ARGUMENT', 'expected a .npy, .h5, .npz or .safetensors path', { path });
  const record = await readH5(path);
  const keys = Object.keys(record);
  if (keys.length === 1 && keys[0] === 'x') return toTensor(record.x as NdArray, { name: 'x', path, convert });
  if (keys.length > 0 && keys.every((k) => /^\d+$/.test(k)) && keys.map(Number).sort((a, b) => a - b).every((k, i) => k === i)) {
    return keys.sort((a, b) => Number(a) - Number(b)).map((k) => toTensor(record[k] as NdArray, { name: k, path, convert }));
  }
  const out: Record<string, tf.Tensor> = {};
  for (const k of keys) out[k] = toTensor(record[k] as NdArray, { name: k, path, convert });
  return out;
}
