/**
 * The n-dimensional array every format reads into and writes from, and the few helpers
 * around it (checked sizes, C-order copies, constructors).
 */
import { dtypeInfo, dtypeOfTypedArray, type DType, type TypedArray } from './dtype.js';
import { TensorioError } from './errors.js';
import type { LoadedArray, NdArray, NdArrayOf } from './ndarray-types.js';

// The array types live in ndarray-types.ts beside their dtype-typed forms; every module names them here.
export type { LoadedArray, NdArray, ReadInfo } from './ndarray-types.js';

/**
 * The element count of a shape, checked: every dimension a non-negative safe integer and
 * the product below 2^53.
 * @throws TensorioError `ERR_BAD_VALUE` for an invalid dimension, `ERR_TOO_LARGE` on overflow.
 */
export function shapeSize(shape: readonly number[], path?: string): number {
  let size = 1;
  // An indexed loop, not for-of: in a cold process every for-of allocates an iterator and a
  // result per step (125 KiB over a 1,000-entry safetensors header), and young-generation
  // collections are most of a cold open's time.
  for (let i = 0; i < shape.length; i++) {
    const dim = shape[i] as number;
    if (!Number.isSafeInteger(dim) || dim < 0) {
      throw new TensorioError('ERR_BAD_VALUE', `invalid dimension ${String(dim)} in shape (${shape.join(', ')})`, { path });
    }
    size *= dim;
    if (!Number.isSafeInteger(size)) {
      throw new TensorioError('ERR_TOO_LARGE', `shape (${shape.join(', ')}) has more elements than fit in a safe integer`, { path });
    }
  }
  return size;
}

/** The byte length of an array of `dtype` and `shape`, checked like {@link shapeSize}. */
export function byteLength(dtype: DType, shape: readonly number[], path?: string): number {
  const bytes = shapeSize(shape, path) * dtypeInfo(dtype).itemSize;
  if (!Number.isSafeInteger(bytes)) {
    throw new TensorioError('ERR_TOO_LARGE', `an array of ${dtype} with shape (${shape.join(', ')}) is too large`, { path });
  }
  return bytes;
}

/**
 * A string array of either reader (.npy/.npz `StringArray`, HDF5 `H5StringArray`), told by
 * shape alone so this module needs neither: they have a `kind` and no `dtype`.
 */
export function isStringArrayLike(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return false;
  const kind = (value as { kind?: unknown }).kind;
  return (value as { dtype?: unknown }).dtype === undefined && (kind === 'bytes' || kind === 'unicode' || kind === 'string-array');
}

/** `save`'s refusal of a string member: its containers hold numeric arrays (and pickles) only. */
export function stringMemberError(path: string, name: string, format: string): TensorioError {
  return new TensorioError('ERR_UNSUPPORTED_DTYPE', `entry '${name}' is a string array: save writes numeric arrays to ${format} (write strings with writeNpy, writeNpz or writeH5)`, { path });
}

/**
 * Checks that an NdArray is consistent (known dtype, valid shape, data of the right type
 * and length) and returns its byte length.
 * @throws TensorioError `ERR_INVALID_ARGUMENT` or `ERR_SHAPE_MISMATCH`.
 */
export function validateNdArray(array: NdArray, path?: string): number {
  if (array === null || typeof array !== 'object') {
    throw new TensorioError('ERR_INVALID_ARGUMENT', 'expected an NdArray { dtype, shape, data }', { path });
  }
  if (!Array.isArray(array.shape)) {
    throw new TensorioError('ERR_INVALID_ARGUMENT', `shape must be an array of integers, got ${typeof array.shape}`, { path });
  }
  if (isStringArrayLike(array)) {
    throw new TensorioError('ERR_UNSUPPORTED_DTYPE', 'a string array, which this target does not hold (it holds numeric arrays; .npy, .npz and .h5 hold strings)', { path });
  }
  const info = dtypeInfo(array.dtype);
  // A Uint8ClampedArray (canvas ImageData, some image decoders) holds the same bytes as a
  // Uint8Array and differs only in how it converts on assignment: accepted as uint8 storage.
  const clampedBytes = array.data instanceof Uint8ClampedArray && info.array === Uint8Array;
  if (!(array.data instanceof info.array) && !clampedBytes) {
    const got = (array.data as object | undefined)?.constructor?.name ?? typeof array.data;
    throw new TensorioError('ERR_INVALID_ARGUMENT', `${array.dtype} data must be a ${info.array.name}, got ${got}`, { path });
  }
  if (array.order !== undefined && array.order !== 'C' && array.order !== 'F') {
    throw new TensorioError('ERR_INVALID_ARGUMENT', `order must be 'C' or 'F', got '${String(array.order)}'`, { path });
  }
  const size = shapeSize(array.shape, path);
  if (array.data.length !== size * info.lanes) {
    throw new TensorioError(
      'ERR_SHAPE_MISMATCH',
      `shape (${array.shape.join(', ')}) of ${array.dtype} needs ${size * info.lanes} ${info.array.name} entries, data has ${array.data.length}`,
      { path },
    );
  }
  return size * info.itemSize;
}

/** The bytes of an array's data (a view, no copy). */
export function bytesOf(data: TypedArray): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * The array in C (row-major) order: the array itself when it already is, else a copy with
 * its axes reordered. Complex elements move as pairs.
 */
export function asCOrder(array: NdArray): NdArray {
  validateNdArray(array);
  if (array.order !== 'F' || array.shape.length <= 1) {
    return array.order === 'F' ? { ...array, order: 'C' } : array;
  }
  const info = dtypeInfo(array.dtype);
  const shape = array.shape;
  const ndim = shape.length;
  const size = shapeSize(shape);
  const out = new info.array(size * info.lanes);
  // Strides (in elements) of the Fortran source for each axis.
  const fStrides = new Array<number>(ndim);
  let stride = 1;
  for (let axis = 0; axis < ndim; axis++) {
    fStrides[axis] = stride;
    stride *= shape[axis] as number;
  }
  const index = new Array<number>(ndim).fill(0);
  const lanes = info.lanes;
  const src = array.data as unknown as ArrayLike<number | bigint> & { [i: number]: number | bigint };
  const dst = out as unknown as { [i: number]: number | bigint };
  let srcOffset = 0;
  for (let c = 0; c < size; c++) {
    for (let lane = 0; lane < lanes; lane++) dst[c * lanes + lane] = src[srcOffset * lanes + lane] as number | bigint;
    // Advance the C-order index (last axis fastest) and the Fortran offset with it.
    for (let axis = ndim - 1; axis >= 0; axis--) {
      const next = (index[axis] as number) + 1;
      if (next < (shape[axis] as number)) {
        index[axis] = next;
        srcOffset += fStrides[axis] as number;
        break;
      }
      srcOffset -= (index[axis] as number) * (fStrides[axis] as number);
      index[axis] = 0;
    }
  }
  return { dtype: array.dtype, shape: [...shape], data: out, order: 'C' };
}

/**
 * Wraps a TypedArray as an NdArray. The dtype defaults to the TypedArray's own
 * (Float32Array → float32, Uint8ClampedArray → uint8 as a Uint8Array view of the same bytes);
 * pass it for bool, float16, bfloat16 or complex storage.
 * @throws TensorioError `ERR_SHAPE_MISMATCH` when the data does not fit the shape.
 */
export function ndarray(source: TypedArray | Uint8ClampedArray, shape?: number[], dtype?: DType): NdArray {
  // A Uint8ClampedArray becomes a Uint8Array view of the same bytes (no copy): uint8 data.
  const data: TypedArray = source instanceof Uint8ClampedArray ? new Uint8Array(source.buffer, source.byteOffset, source.length) : source;
  const resolvedDtype = dtype ?? dtypeOfTypedArray(data);
  const lanes = dtypeInfo(resolvedDtype).lanes;
  const array: NdArray = { dtype: resolvedDtype, shape: shape ?? [data.length / lanes], data };
  validateNdArray(array);
  return array;
}

/** A new C-order array of `shape` filled with zeros. Defaults to float32. */
export function zeros<D extends DType = 'float32'>(shape: number[], dtype: D = 'float32' as D): NdArrayOf<D> {
  const info = dtypeInfo(dtype);
  return { dtype, shape: [...shape], data: new info.array(shapeSize(shape) * info.lanes) } as NdArrayOf<D>;
}

/** A new C-order array of `shape` filled with ones (1 + 0i for complex). Defaults to float32. */
export function ones<D extends DType = 'float32'>(shape: number[], dtype: D = 'float32' as D): NdArrayOf<D> {
  const array = zeros(shape, dtype);
  const info = dtypeInfo(dtype);
  const one: number | bigint = ONE_BITS[dtype] ?? (info.array === BigInt64Array || info.array === BigUint64Array ? 1n : 1);
  const data = array.data as unknown as { [i: number]: number | bigint; length: number };
  for (let i = 0; i < data.length; i += info.lanes) data[i] = one;
  return array;
}

// Raw bit patterns of 1.0 for the dtypes stored as bits.
const ONE_BITS: Partial<Record<DType, number>> = {
  float16: 0x3c00,
  bfloat16: 0x3f80,
  float8_e4m3fn: 0x38,
  float8_e5m2: 0x3c,
};

/**
 * ' (a tf.Tensor: ...)' when `value` looks like a TensorFlow.js tensor, else ''. The main
 * entry does not load tfjs, so it tells the caller where tensors are taken instead.
 */
export function tensorHint(value: unknown): string {
  const looksLikeTensor = typeof value === 'object' && value !== null && typeof (value as { dataSync?: unknown }).dataSync === 'function' && 'dtype' in value && 'shape' in value;
  return looksLikeTensor ? " (a tf.Tensor: use save() from 'tensorio/tfjs', which takes tensors, or turn it into an NdArray with fromTensor())" : '';
}
