/**
 * The one dtype table. Every format (NumPy, safetensors, HDF5, tfjs) looks its names up
 * here; no format keeps a switch of its own.
 */
import { TensorioError } from './errors.js';

/** Element types tensorio reads and writes. */
export type DType =
  | 'bool'
  | 'int8'
  | 'uint8'
  | 'int16'
  | 'uint16'
  | 'int32'
  | 'uint32'
  | 'int64'
  | 'uint64'
  | 'float16'
  | 'bfloat16'
  | 'float32'
  | 'float64'
  | 'complex64'
  | 'complex128'
  | 'float8_e4m3fn'
  | 'float8_e5m2';

/** Any TypedArray tensorio stores elements in. */
export type TypedArray =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | BigInt64Array
  | BigUint64Array
  | Float32Array
  | Float64Array;

/** A constructor of one of the {@link TypedArray} types. */
export interface TypedArrayConstructor {
  readonly BYTES_PER_ELEMENT: number;
  readonly name: string;
  new (length: number): TypedArray;
  new (buffer: ArrayBufferLike, byteOffset?: number, length?: number): TypedArray;
}

export interface DTypeInfo {
  readonly name: DType;
  /** Bytes per element (complex64: 8, both parts). */
  readonly itemSize: number;
  /** The TypedArray elements are stored in. */
  readonly array: TypedArrayConstructor;
  /** TypedArray entries per element: 2 for complex (real, imaginary), else 1. */
  readonly lanes: number;
  /** The unit a byte-order swap reverses (a complex number's parts are swapped separately). */
  readonly swapSize: number;
  /** NumPy's type code without the byte-order character, or null when NumPy has none. */
  readonly numpy: string | null;
  /** The safetensors dtype name, or null when safetensors has none. */
  readonly safetensors: string | null;
  /** The tfjs dtype this maps to without conversion, or null. */
  readonly tfjs: 'float32' | 'int32' | 'bool' | 'complex64' | null;
  /**
   * NumPy's one-character type codes for this dtype (`np.dtype('d')` is float64), as NumPy
   * reads them on Linux and macOS x86-64/arm64 (LP64: C `long` is 64 bits, so 'l' is int64;
   * on Windows NumPy reads 'l' as int32). 'n' and 'N' are NumPy 2's intp codes (1.x refuses
   * them); 'p' and 'P' are intp in both. Empty when NumPy has none.
   */
  readonly numpyChars: string;
  /** How HDF5 stores this dtype as h5py writes and reads it, or null when HDF5 has no such type. */
  readonly hdf5: Hdf5Type | null;
}

/**
 * An HDF5 datatype as h5py maps NumPy dtypes to it: the datatype class (H5T_class_t: 0
 * integer, 1 float, 6 compound, 8 enum), the element size, and for integers the sign. h5py
 * writes complex as a compound of two floats named `r` and `i`, and bool as an enum of int8
 * with FALSE = 0 and TRUE = 1 (src/formats/hdf5/types.ts checks those shapes).
 */
export interface Hdf5Type {
  readonly class: 0 | 1 | 6 | 8;
  readonly size: number;
  /** Integers: signed. False for the other classes. */
  readonly signed: boolean;
}

// NumPy's one-character codes, a column of the table below (checked with np.dtype(code) in
// NumPy 1.24 and 2.1 on Linux x86-64; 'g'/'G' long double have no tensorio dtype).
const NUMPY_CHARS: Readonly<Partial<Record<DType, string>>> = {
  bool: '?',
  int8: 'b',
  uint8: 'B',
  int16: 'h',
  uint16: 'H',
  int32: 'i',
  uint32: 'I',
  int64: 'lqpn',
  uint64: 'LQPN',
  float16: 'e',
  float32: 'f',
  float64: 'd',
  complex64: 'F',
  complex128: 'D',
};

// The HDF5 column (h5py 3.7 and 3.16 read these back as the same NumPy dtype). bfloat16 and
// float8 have none: stored as integers, h5py would read them as uint16 / uint8.
const int = (size: number, signed: boolean): Hdf5Type => ({ class: 0, size, signed });
const float = (size: number): Hdf5Type => ({ class: 1, size, signed: false });
const HDF5_TYPES: Readonly<Partial<Record<DType, Hdf5Type>>> = {
  bool: { class: 8, size: 1, signed: false },
  int8: int(1, true),
  uint8: int(1, false),
  int16: int(2, true),
  uint16: int(2, false),
  int32: int(4, true),
  uint32: int(4, false),
  int64: int(8, true),
  uint64: int(8, false),
  float16: float(2),
  float32: float(4),
  float64: float(8),
  complex64: { class: 6, size: 8, signed: false },
  complex128: { class: 6, size: 16, signed: false },
};

const ROWS: readonly Omit<DTypeInfo, 'numpyChars' | 'hdf5'>[] = [
  { name: 'bool', itemSize: 1, array: Uint8Array, lanes: 1, swapSize: 1, numpy: 'b1', safetensors: 'BOOL', tfjs: 'bool' },
  { name: 'int8', itemSize: 1, array: Int8Array, lanes: 1, swapSize: 1, numpy: 'i1', safetensors: 'I8', tfjs: null },
  { name: 'uint8', itemSize: 1, array: Uint8Array, lanes: 1, swapSize: 1, numpy: 'u1', safetensors: 'U8', tfjs: null },
  { name: 'int16', itemSize: 2, array: Int16Array, lanes: 1, swapSize: 2, numpy: 'i2', safetensors: 'I16', tfjs: null },
  { name: 'uint16', itemSize: 2, array: Uint16Array, lanes: 1, swapSize: 2, numpy: 'u2', safetensors: 'U16', tfjs: null },
  { name: 'int32', itemSize: 4, array: Int32Array, lanes: 1, swapSize: 4, numpy: 'i4', safetensors: 'I32', tfjs: 'int32' },
  { name: 'uint32', itemSize: 4, array: Uint32Array, lanes: 1, swapSize: 4, numpy: 'u4', safetensors: 'U32', tfjs: null },
  { name: 'int64', itemSize: 8, array: BigInt64Array, lanes: 1, swapSize: 8, numpy: 'i8', safetensors: 'I64', tfjs: null },
  { name: 'uint64', itemSize: 8, array: BigUint64Array, lanes: 1, swapSize: 8, numpy: 'u8', safetensors: 'U64', tfjs: null },
  { name: 'float16', itemSize: 2, array: Uint16Array, lanes: 1, swapSize: 2, numpy: 'f2', safetensors: 'F16', tfjs: null },
  { name: 'bfloat16', itemSize: 2, array: Uint16Array, lanes: 1, swapSize: 2, numpy: null, safetensors: 'BF16', tfjs: null },
  { name: 'float32', itemSize: 4, array: Float32Array, lanes: 1, swapSize: 4, numpy: 'f4', safetensors: 'F32', tfjs: 'float32' },
  { name: 'float64', itemSize: 8, array: Float64Array, lanes: 1, swapSize: 8, numpy: 'f8', safetensors: 'F64', tfjs: null },
  { name: 'complex64', itemSize: 8, array: Float32Array, lanes: 2, swapSize: 4, numpy: 'c8', safetensors: 'C64', tfjs: 'complex64' },
  { name: 'complex128', itemSize: 16, array: Float64Array, lanes: 2, swapSize: 8, numpy: 'c16', safetensors: null, tfjs: null },
  { name: 'float8_e4m3fn', itemSize: 1, array: Uint8Array, lanes: 1, swapSize: 1, numpy: null, safetensors: 'F8_E4M3', tfjs: null },
  { name: 'float8_e5m2', itemSize: 1, array: Uint8Array, lanes: 1, swapSize: 1, numpy: null, safetensors: 'F8_E5M2', tfjs: null },
];

const TABLE: readonly DTypeInfo[] = ROWS.map((row) => ({ ...row, numpyChars: NUMPY_CHARS[row.name] ?? '', hdf5: HDF5_TYPES[row.name] ?? null }));

const BY_NAME = new Map<string, DTypeInfo>(TABLE.map((info) => [info.name, info]));
const BY_NUMPY = new Map<string, DTypeInfo>(TABLE.filter((i) => i.numpy).map((info) => [info.numpy as string, info]));
const BY_SAFETENSORS = new Map<string, DTypeInfo>(
  TABLE.filter((i) => i.safetensors).map((info) => [info.safetensors as string, info]),
);

/** Every dtype, in table order. */
export const DTYPES: readonly DType[] = TABLE.map((info) => info.name);

/** True when `name` is a {@link DType}. */
export function isDType(name: unknown): name is DType {
  return typeof name === 'string' && BY_NAME.has(name);
}

/**
 * The table row of a dtype.
 * @throws TensorioError `ERR_UNSUPPORTED_DTYPE` for a name that is not a {@link DType}.
 */
export function dtypeInfo(dtype: DType): DTypeInfo {
  const info = BY_NAME.get(dtype);
  if (!info) throw new TensorioError('ERR_UNSUPPORTED_DTYPE', `unknown dtype '${String(dtype)}'; expected one of ${DTYPES.join(', ')}`);
  return info;
}

/** The dtype of a NumPy type code without byte order ('f4', 'c16', 'b1'), if any. */
export function dtypeFromNumpyCode(code: string): DTypeInfo | undefined {
  return BY_NUMPY.get(code);
}

const BY_NUMPY_CHAR = new Map<string, DTypeInfo>(TABLE.flatMap((info) => [...info.numpyChars].map((c) => [c, info] as const)));

/** The dtype of one of NumPy's one-character type codes ('d' is float64, 'l' int64), if any. */
export function dtypeFromNumpyChar(code: string): DTypeInfo | undefined {
  return BY_NUMPY_CHAR.get(code);
}

/** The dtype of a safetensors dtype name ('F32', 'BF16'), if any. */
export function dtypeFromSafetensors(name: string): DTypeInfo | undefined {
  return BY_SAFETENSORS.get(name);
}

/** The dtype whose storage a TypedArray is, for the unambiguous cases (Uint8Array is uint8). */
export function dtypeOfTypedArray(data: TypedArray): DType {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof Uint32Array) return 'uint32';
  if (data instanceof Int16Array) return 'int16';
  if (data instanceof Uint16Array) return 'uint16';
  if (data instanceof Int8Array) return 'int8';
  if (data instanceof Uint8Array) return 'uint8';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof BigUint64Array) return 'uint64';
  throw new TensorioError('ERR_INVALID_ARGUMENT', 'data must be a TypedArray');
}

/**
 * The dtype of an HDF5 datatype class and size (for integers, and sign) in the HDF5 column,
 * if any. The caller checks the class's shape first (an enum's members, a compound's).
 */
export function dtypeFromHdf5(cls: number, size: number, signed: boolean): DTypeInfo | undefined {
  return TABLE.find((info) => info.hdf5 !== null && info.hdf5.class === cls && info.hdf5.size === size && (cls !== 0 || info.hdf5.signed === signed));
}
