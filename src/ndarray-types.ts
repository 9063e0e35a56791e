/**
 * The array types (NdArray, and LoadedArray as readers return it), and the types that follow
 * an array's dtype to its storage: `NdArrayOf<'float32'>` has a `Float32Array` as `data`, and
 * {@link hasDType} narrows a read array whose dtype only the file knows (`if (hasDType(a, 'float64')) a.data` is a Float64Array). The storage types are
 * the dtype table's (src/dtype.ts); a test checks the two agree for every dtype.
 */
import type { DType, TypedArray } from './dtype.js';

/**
 * An n-dimensional array.
 *
 * Element storage: bool → Uint8Array of 0/1; int64/uint64 → BigInt64Array/BigUint64Array;
 * float16, bfloat16 and float8 → Uint16Array/Uint8Array of raw bits; complex64/complex128 →
 * Float32Array/Float64Array with real and imaginary parts interleaved (length 2 × size).
 * Data is always in native (little-endian) byte order.
 */
export interface NdArray {
  dtype: DType;
  shape: number[];
  data: TypedArray;
  /**
   * 'F' means the data is column-major as stored (NumPy's F-contiguous), so a mapped
   * Fortran-order file stays zero-copy; see {@link asCOrder}. Absent means 'C'.
   */
  order?: 'C' | 'F';
}

/** How a read array's data came to be in memory. */
export interface ReadInfo {
  /** True when `data` is a view into a memory-mapped file (no bytes were read up front). */
  readonly mapped: boolean;
  /** Why the data was read rather than mapped, when mapping was asked for. */
  readonly copyReason?: string;
}

/** An array returned by a reader, with how it was loaded. */
export type LoadedArray = NdArray & ReadInfo;

/** The TypedArray each dtype is stored in (raw bits for float16, bfloat16, float8; interleaved complex). */
export interface DTypeStorage {
  bool: Uint8Array;
  int8: Int8Array;
  uint8: Uint8Array;
  int16: Int16Array;
  uint16: Uint16Array;
  int32: Int32Array;
  uint32: Uint32Array;
  int64: BigInt64Array;
  uint64: BigUint64Array;
  float16: Uint16Array;
  bfloat16: Uint16Array;
  float32: Float32Array;
  float64: Float64Array;
  complex64: Float32Array;
  complex128: Float64Array;
  float8_e4m3fn: Uint8Array;
  float8_e5m2: Uint8Array;
}

// Every dtype has a storage type, and nothing else does (fails to compile otherwise).
type Exact<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
const _everyDType: Exact<keyof DTypeStorage, DType> = true;
void _everyDType;

/** The TypedArray a dtype is stored in. */
export type TypedArrayOf<D extends DType> = DTypeStorage[D];

/** An NdArray whose dtype is known, with its data typed accordingly. */
export type NdArrayOf<D extends DType> = NdArray & { dtype: D; data: DTypeStorage[D] };

/** True when `array.dtype` is `dtype`; narrows `array.data` to that dtype's TypedArray. */
export function hasDType<A extends NdArray, D extends DType>(array: A, dtype: D): array is A & NdArrayOf<D> {
  return array.dtype === dtype;
}
