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
import { toFloat32, toInt32 } from '../convert.js';
import { dtypeInfo, type DType } from '../dtype.js';
import { TensorioError } from '../errors.js';
import { readH5, writeH5 } from '../formats/h5.js';
import { readNpy, writeNpy } from '../formats/npy.js';
import { type NdArray } from '../ndarray.js';
import { type WriteOptions } from '../io.js';

/** What {@link save} accepts and {@link load} returns. */
export type TensorValue = tf.Tensor | tf.Tensor[] | Record<string, tf.Tensor>;

/** Options of {@link load}. */
export interface LoadTensorOptions {
  /** Convert dtypes tfjs lacks (see the module notes). Default true; false throws instead. */
  convert?: boolean;
}

async function toNdArray(tensor: tf.Tensor): Promise<NdArray> {
  const data = await tensor.data();
  const shape = [...tensor.shape];
  switch (tensor.dtype) {
    case 'float32':
      return { dtype: 'float32', shape, data: data as Float32Array };
    case 'int32':
      return { dtype: 'int32', shape, data: data as Int32Array };
    case 'bool':
      return { dtype: 'bool', shape, data: new Uint8Array(data as Uint8Array) };
    case 'complex64':
      return { dtype: 'complex64', shape, data: data as Float32Array };
    default:
      throw new TensorioError('ERR_UNSUPPORTED_DTYPE', `cannot save a tfjs tensor of dtype ${tensor.dtype}`);
  }
}

/** An NdArray as a tfjs tensor, converting dtypes tfjs lacks unless `convert` is false. */
export function toTensor(array: NdArray, path = '<array>', convert = true): tf.Tensor {
  const info = dtypeInfo(array.dtype);
  const shape = array.shape;
  if (info.tfjs === 'float32') return tf.tensor(array.data as Float32Array, shape, 'float32');
  if (info.tfjs === 'int32') return tf.tensor(array.data as Int32Array, shape, 'int32');
  if (info.tfjs === 'bool') return tf.tensor(array.data as Uint8Array, shape, 'bool');
  if (info.tfjs === 'complex64') {
    const d = array.data as Float32Array;
    const re = new Float32Array(d.length / 2);
    const im = new Float32Array(d.length / 2);
    for (let i = 0; i < re.length; i++) {
      re[i] = d[2 * i] as number;
      im[i] = d[2 * i + 1] as number;
    }
    return tf.complex(tf.tensor(re, shape), tf.tensor(im, shape));
  }
  if (!convert) throw new TensorioError('ERR_UNSUPPORTED_DTYPE', `tfjs has no ${array.dtype} and conversion was refused ({ convert: false })`, { path });
  const integer: DType[] = ['int8', 'uint8', 'int16', 'uint16', 'uint32', 'int64', 'uint64'];
  if (integer.includes(array.dtype)) return tf.tensor(toInt32(array, path).data as Int32Array, shape, 'int32');
  if (array.dtype === 'complex128') {
    const d = array.data as Float64Array;
    return toTensor({ dtype: 'complex64', shape, data: Float32Array.from(d) }, path);
  }
  return tf.tensor(toFloat32(array).data as Float32Array, shape, 'float32');
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
    const array = await toNdArray(value);
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
    arrays.push([key, await toNdArray(tensor)]);
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
  if (/\.npy$/i.test(path)) return toTensor(await readNpy(path), path, convert);
  if (isContainer(path)) {
    // For these two formats containers.load returns a list or a record, never one array.
    const loaded = (await loadContainer(path)) as NdArray[] | Record<string, NdArray>;
    if (Array.isArray(loaded)) return loaded.map((a) => toTensor(a, path, convert));
    return Object.fromEntries(Object.entries(loaded).map(([k, a]) => [k, toTensor(a, path, convert)]));
  }
  if (!isH5(path)) throw new TensorioError('ERR_INVALID_ARGUMENT', 'expected a .npy, .h5, .npz or .safetensors path', { path });
  const record = await readH5(path);
  const keys = Object.keys(record);
  if (keys.length === 1 && keys[0] === 'x') return toTensor(record.x as NdArray, path, convert);
  if (keys.length > 0 && keys.every((k) => /^\d+$/.test(k)) && keys.map(Number).sort((a, b) => a - b).every((k, i) => k === i)) {
    return keys.sort((a, b) => Number(a) - Number(b)).map((k) => toTensor(record[k] as NdArray, path, convert));
  }
  const out: Record<string, tf.Tensor> = {};
  for (const k of keys) out[k] = toTensor(record[k] as NdArray, path, convert);
  return out;
}
