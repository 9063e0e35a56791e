/**
 * save/load of tfjs tensors (the chapter's first half with tfjs tensors): one tensor, an
 * array of them, or a record of them, as `.npy` (one tensor) or HDF5 (`.h5`: a record, or
 * an array stored as datasets `0`, `1`, ...).
 *
 * tfjs has float32, int32, bool and complex64. Reading other dtypes converts them:
 * float16, bfloat16, float64 and float8 → float32; (u)int8/16, uint32 and (u)int64 → int32
 * with a range check that throws `ERR_BAD_VALUE` rather than wrapping; complex128 →
 * complex64. `{ convert: false }` refuses any conversion with `ERR_UNSUPPORTED_DTYPE`.
 */
import * as tf from '@tensorflow/tfjs';

import { toFloat32 } from '../convert.js';
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

function toInt32(array: NdArray, path: string): Int32Array {
  const out = new Int32Array(array.data.length);
  const src = array.data as ArrayLike<number | bigint>;
  for (let i = 0; i < src.length; i++) {
    const v = src[i] as number | bigint;
    if (v > 2147483647 || v < -2147483648) {
      throw new TensorioError('ERR_BAD_VALUE', `${array.dtype} value ${String(v)} at index ${i} does not fit tfjs's int32`, { path });
    }
    out[i] = Number(v);
  }
  return out;
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
  if (integer.includes(array.dtype)) return tf.tensor(toInt32(array, path), shape, 'int32');
  if (array.dtype === 'complex128') {
    const d = array.data as Float64Array;
    return toTensor({ dtype: 'complex64', shape, data: Float32Array.from(d) }, path);
  }
  return tf.tensor(toFloat32(array).data as Float32Array, shape, 'float32');
}

function isH5(path: string): boolean {
  return /\.(h5|hdf5)$/i.test(path);
}

/**
 * Saves tfjs tensors: `.npy` for one tensor, `.h5` for a tensor, an array (datasets `0`,
 * `1`, ...) or a record (one dataset per key; `a/b` creates group `a`).
 * @throws TensorioError `ERR_INVALID_ARGUMENT` for another extension or value.
 */
export async function save(path: string, value: TensorValue, options: WriteOptions = {}): Promise<void> {
  if (value instanceof tf.Tensor) {
    const array = await toNdArray(value);
    if (isH5(path)) return writeH5(path, { x: array }, options);
    if (/\.npy$/i.test(path)) return writeNpy(path, array, options);
    throw new TensorioError('ERR_INVALID_ARGUMENT', 'expected a .npy or .h5 path for one tensor', { path });
  }
  if (!isH5(path)) throw new TensorioError('ERR_INVALID_ARGUMENT', 'arrays and records of tensors are saved as .h5 (.npz and .safetensors are not wired in yet)', { path });
  const record: Record<string, NdArray> = {};
  const entries = Array.isArray(value) ? value.map((t, i) => [String(i), t] as const) : Object.entries(value);
  for (const [key, tensor] of entries) {
    if (!(tensor instanceof tf.Tensor)) throw new TensorioError('ERR_INVALID_ARGUMENT', `entry '${key}' is not a tf.Tensor`, { path });
    record[key] = await toNdArray(tensor);
  }
  await writeH5(path, record, options);
}

/**
 * Loads what {@link save} wrote: `.npy` → a tensor; `.h5` → the lone `x` dataset as a
 * tensor, datasets `0..n-1` as an array, anything else as a record keyed by full path.
 */
export async function load(path: string, options: LoadTensorOptions = {}): Promise<TensorValue> {
  const convert = options.convert ?? true;
  if (/\.npy$/i.test(path)) return toTensor(await readNpy(path), path, convert);
  if (!isH5(path)) throw new TensorioError('ERR_INVALID_ARGUMENT', 'expected a .npy or .h5 path', { path });
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
