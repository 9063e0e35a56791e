/**
 * Types that follow an array's dtype to its storage: `NdArrayOf<'float32'>` has a
 * `Float32Array` as `data`, and {@link hasDType} narrows a read array whose dtype only the
 * file knows (`if (hasDType(a, 'float64')) a.data` is a Float64Array). The storage types are
 * the dtype table's (src/dtype.ts); a test checks the two agree for every dtype.
 */
import type { DType } from './dtype.js';
import type { NdArray } from './ndarray.js';

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
