/**
 * The one rule for what an NdArray becomes in TensorFlow.js: which tfjs dtype, which
 * conversion, and C order. `toTensor` (tensors.ts), `loadWeights`, `ioHandler` and the
 * CLI's model.json writer all go through {@link tfjsArray}, so they cannot disagree. This
 * module does not import tfjs: the CLI uses it to write model.json bytes without tensors.
 */
import { toFloat32, toInt32 } from '../convert.js';
import { dtypeInfo, type DType } from '../dtype.js';
import { TensorioError } from '../errors.js';
import { asCOrder, type NdArray } from '../ndarray.js';

/** The dtypes a tf.Tensor holds numerically. */
export type TfjsDType = 'float32' | 'int32' | 'bool' | 'complex64';

/** Options of {@link tfjsArray} (and of `toTensor`). */
export interface TfjsArrayOptions {
  /** The tensor's name, used in error messages ('dense/kernel', 'arr_0'). */
  name?: string;
  /** The file it came from, for error messages. */
  path?: string;
  /** Convert dtypes tfjs lacks (float16 → float32, ...). Default true; false throws instead. */
  convert?: boolean;
  /**
   * The tfjs dtype wanted (a model variable's): integers and bool to 'float32' convert, and
   * 'int32' takes integers only. Default: the natural one for the array's dtype.
   */
  dtype?: TfjsDType;
}

function label(options: TfjsArrayOptions): string {
  return options.name === undefined ? 'the array' : `tensor '${options.name}'`;
}

/** The tfjs dtype an array of `dtype` becomes by default (the CLI names these conversions). */
export function tfjsDtypeOf(dtype: DType): TfjsDType {
  const info = dtypeInfo(dtype);
  if (info.tfjs !== null) return info.tfjs;
  if (info.lanes === 2) return 'complex64';
  if (dtype.startsWith('float') || dtype === 'bfloat16') return 'float32';
  return 'int32';
}

function naturalTfjs(array: NdArray): TfjsDType {
  return tfjsDtypeOf(array.dtype);
}

/**
 * The array as tfjs holds it: C order (a Fortran-order array is copied, since tfjs has no
 * strides) and a tfjs dtype. float16, bfloat16, float8 and float64 become float32; int8 ...
 * uint64 become int32 only when every value fits (otherwise `ERR_UNSUPPORTED_DTYPE` naming
 * the tensor, the value and its index: nothing wraps); complex128 becomes complex64. An
 * array that needs neither (float32, int32, bool, complex64 in C order) is returned as it
 * is, so its data is handed to tfjs without a copy.
 * @throws TensorioError `ERR_UNSUPPORTED_DTYPE` for a conversion refused (`convert: false`),
 * an integer outside int32, or a dtype that cannot become the `dtype` asked for.
 */
export function tfjsArray(array: NdArray, options: TfjsArrayOptions = {}): NdArray & { dtype: TfjsDType } {
  const { path } = options;
  const want = options.dtype ?? naturalTfjs(array);
  let out = array;
  if (array.dtype !== want) {
    if (options.convert === false) {
      throw new TensorioError('ERR_UNSUPPORTED_DTYPE', `${label(options)} is ${array.dtype}, which tfjs does not hold, and conversion was refused ({ convert: false })`, { path });
    }
    const complex = dtypeInfo(array.dtype).lanes === 2;
    if (want === 'complex64') {
      if (!complex) throw new TensorioError('ERR_UNSUPPORTED_DTYPE', `${label(options)} is ${array.dtype}, not complex`, { path });
      out = { dtype: 'complex64', shape: [...array.shape], data: Float32Array.from(array.data as Float64Array), ...(array.order ? { order: array.order } : {}) };
    } else if (complex) {
      throw new TensorioError('ERR_UNSUPPORTED_DTYPE', `${label(options)} is ${array.dtype}; a ${want} tensor would drop the imaginary part`, { path });
    } else if (want === 'float32') {
      out = toFloat32(array);
    } else if (want === 'bool') {
      throw new TensorioError('ERR_UNSUPPORTED_DTYPE', `${label(options)} is ${array.dtype}, and a bool tensor is wanted`, { path });
    } else {
      if (array.dtype.startsWith('float') || array.dtype === 'bfloat16') {
        throw new TensorioError('ERR_UNSUPPORTED_DTYPE', `${label(options)} is ${array.dtype}, and an int32 tensor is wanted`, { path });
      }
      try {
        out = toInt32(array); // no path: its message is quoted below
      } catch (error) {
        if (!(error instanceof TensorioError) || error.code !== 'ERR_BAD_VALUE') throw error;
        throw new TensorioError('ERR_UNSUPPORTED_DTYPE', `${label(options)} is ${array.dtype} and tfjs has int32 only: ${error.message}`, { path, cause: error });
      }
    }
  }
  return asCOrder(out) as NdArray & { dtype: TfjsDType };
}
