/**
 * Dtype conversions and byte swapping: native (vectorised, F16C for half precision) when
 * the addon is loaded, TypeScript loops otherwise. Both paths round the same way NumPy's
 * `astype` does (to nearest, ties to even), and the tests check them against each other.
 */
import { dtypeInfo, type DType, type TypedArray } from './dtype.js';
import { TensorioError } from './errors.js';
import { shapeSize, validateNdArray, type NdArray } from './ndarray.js';
import { byteswapNative, convertNative } from './io/kernels.js';

/**
 * Reverses the byte order of each element of `bytes` in place. `itemSize` is the unit
 * swapped: 2, 4 or 8 (for complex data, the size of one part).
 */
export function byteswap(bytes: ArrayBufferView, itemSize: number): void {
  if (itemSize === 1) return;
  if (itemSize !== 2 && itemSize !== 4 && itemSize !== 8) {
    throw new TensorioError('ERR_INVALID_ARGUMENT', `itemSize must be 1, 2, 4 or 8, got ${itemSize}`);
  }
  if (bytes.byteLength % itemSize !== 0) {
    throw new TensorioError('ERR_INVALID_ARGUMENT', `${bytes.byteLength} bytes are not a whole number of ${itemSize}-byte items`);
  }
  if (byteswapNative(bytes, itemSize)) return;
  const u8 = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const half = itemSize >> 1;
  for (let base = 0; base < u8.length; base += itemSize) {
    for (let i = 0; i < half; i++) {
      const a = base + i;
      const b = base + itemSize - 1 - i;
      const t = u8[a] as number;
      u8[a] = u8[b] as number;
      u8[b] = t;
    }
  }
}

// ---- scalar helpers for the TypeScript path ------------------------------------------

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

let halfTable: Float32Array | undefined;

/** float16 bits → number, exact (subnormals, infinities, NaN). */
export function halfToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

function halfLookup(): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let bits = 0; bits < 65536; bits++) halfTable[bits] = halfToNumber(bits);
  }
  return halfTable;
}

/** number → float16 bits, rounded to nearest even (via float32 first, as NumPy does from float32). */
export function numberToHalf(value: number): number {
  f32[0] = value;
  const bits = u32[0] as number;
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  let mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 | (mantissa >>> 13) : 0);
  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent <= 0) {
    if (halfExponent < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - halfExponent;
    let halfMantissa = mantissa >>> shift;
    const remainder = mantissa & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (remainder > halfway || (remainder === halfway && halfMantissa & 1)) halfMantissa++;
    return sign | halfMantissa;
  }
  let half = sign | (halfExponent << 10) | (mantissa >>> 13);
  const remainder = mantissa & 0x1fff;
  if (remainder > 0x1000 || (remainder === 0x1000 && half & 1)) half++;
  return half;
}

/** number → bfloat16 bits, rounded to nearest even from float32. */
export function numberToBfloat16(value: number): number {
  f32[0] = value;
  const bits = u32[0] as number;
  if ((bits & 0x7fffffff) > 0x7f800000) return (bits >>> 16) | 0x40;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/** float8 bits → number, for the two OCP formats safetensors stores. */
export function float8ToNumber(bits: number, format: 'e4m3fn' | 'e5m2'): number {
  const sign = bits & 0x80 ? -1 : 1;
  if (format === 'e5m2') {
    const exponent = (bits >> 2) & 0x1f;
    const mantissa = bits & 0x3;
    if (exponent === 0) return sign * mantissa * 2 ** -16;
    if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
    return sign * (1 + mantissa / 4) * 2 ** (exponent - 15);
  }
  // e4m3fn: no infinities; only S.1111.111 is NaN.
  const exponent = (bits >> 3) & 0xf;
  const mantissa = bits & 0x7;
  if (exponent === 0xf && mantissa === 0x7) return NaN;
  if (exponent === 0) return sign * mantissa * 2 ** -9;
  return sign * (1 + mantissa / 8) * 2 ** (exponent - 7);
}

/** A 64-bit integer → the nearest float32 with a single rounding (no double rounding via float64). */
function bigintToFloat32(value: bigint): number {
  const negative = value < 0n;
  let magnitude = negative ? -value : value;
  if (magnitude <= 9007199254740992n) return Math.fround(Number(value));
  // Keep 26 significant bits plus a sticky bit, so fround's one rounding is the right one.
  const bits = magnitude.toString(2).length;
  const shift = BigInt(bits - 26);
  const sticky = (magnitude & ((1n << shift) - 1n)) !== 0n ? 1n : 0n;
  magnitude = (magnitude >> shift) | sticky;
  const result = Math.fround(Number(magnitude) * 2 ** Number(shift));
  return negative ? -result : result;
}

// ---- conversions ----------------------------------------------------------------------

function convertInto(from: DType, src: TypedArray, dst: Float32Array): void {
  const name = `${from === 'bool' ? 'uint8' : from}:float32`;
  if (from !== 'float8_e4m3fn' && from !== 'float8_e5m2' && convertNative(name, src, dst)) return;
  const n = dst.length;
  switch (from) {
    case 'float16': {
      const table = halfLookup();
      const bits = src as Uint16Array;
      for (let i = 0; i < n; i++) dst[i] = table[bits[i] as number] as number;
      return;
    }
    case 'bfloat16': {
      const bits = src as Uint16Array;
      const out = new Uint32Array(dst.buffer, dst.byteOffset, n);
      for (let i = 0; i < n; i++) out[i] = (bits[i] as number) << 16;
      return;
    }
    case 'float8_e4m3fn':
    case 'float8_e5m2': {
      const format = from === 'float8_e4m3fn' ? 'e4m3fn' : 'e5m2';
      const table = new Float32Array(256);
      for (let b = 0; b < 256; b++) table[b] = float8ToNumber(b, format);
      const bits = src as Uint8Array;
      for (let i = 0; i < n; i++) dst[i] = table[bits[i] as number] as number;
      return;
    }
    case 'int64':
    case 'uint64': {
      const values = src as BigInt64Array | BigUint64Array;
      for (let i = 0; i < n; i++) dst[i] = bigintToFloat32(values[i] as bigint);
      return;
    }
    default: {
      // Every remaining source holds plain numbers; Float32Array's setter rounds once.
      dst.set(src as Exclude<TypedArray, BigInt64Array | BigUint64Array>);
    }
  }
}

/**
 * A float32 copy of a real-valued array (float16, bfloat16, float8, float64, any integer or
 * bool). A float32 array is returned as it is. Shape and order are kept.
 * @throws TensorioError `ERR_UNSUPPORTED_DTYPE` for complex input (the imaginary part would be lost).
 */
export function toFloat32(array: NdArray): NdArray {
  validateNdArray(array);
  if (array.dtype === 'float32') return array;
  if (array.dtype === 'complex64' || array.dtype === 'complex128') {
    throw new TensorioError('ERR_UNSUPPORTED_DTYPE', `cannot convert ${array.dtype} to float32 without dropping the imaginary part`);
  }
  const out = new Float32Array(shapeSize(array.shape));
  convertInto(array.dtype, array.data, out);
  return withData(array, 'float32', out);
}

function withData(array: NdArray, dtype: DType, data: TypedArray): NdArray {
  const result: NdArray = { dtype, shape: [...array.shape], data };
  if (array.order) result.order = array.order;
  return result;
}

function fromFloat32(array: NdArray, to: 'float16' | 'bfloat16'): NdArray {
  const source = toFloat32(array).data as Float32Array;
  const out = new Uint16Array(source.length);
  if (!convertNative(`float32:${to}`, source, out)) {
    const one = to === 'float16' ? numberToHalf : numberToBfloat16;
    for (let i = 0; i < source.length; i++) out[i] = one(source[i] as number);
  }
  return withData(array, to, out);
}

/**
 * A float16 copy of a real-valued array, rounded to nearest even like NumPy's
 * `astype(np.float16)` (values go through float32 first; float64 input is rounded twice).
 */
export function toFloat16(array: NdArray): NdArray {
  return array.dtype === 'float16' ? array : fromFloat32(array, 'float16');
}

/** A bfloat16 copy of a real-valued array, rounded to nearest even from float32. */
export function toBfloat16(array: NdArray): NdArray {
  return array.dtype === 'bfloat16' ? array : fromFloat32(array, 'bfloat16');
}

/** A float64 copy of a real-valued array (exact for every source except 64-bit integers past 2^53). */
export function toFloat64(array: NdArray): NdArray {
  validateNdArray(array);
  if (array.dtype === 'float64') return array;
  if (array.dtype === 'float32') {
    const source = array.data as Float32Array;
    const out = new Float64Array(source.length);
    if (!convertNative('float32:float64', source, out)) out.set(source);
    return withData(array, 'float64', out);
  }
  if (array.dtype === 'int64' || array.dtype === 'uint64') {
    const values = array.data as BigInt64Array | BigUint64Array;
    const out = new Float64Array(values.length);
    for (let i = 0; i < values.length; i++) out[i] = Number(values[i]);
    return withData(array, 'float64', out);
  }
  if (dtypeInfo(array.dtype).lanes === 2) {
    throw new TensorioError('ERR_UNSUPPORTED_DTYPE', `cannot convert ${array.dtype} to float64 without dropping the imaginary part`);
  }
  // Small integers and bool are exact in float64; 16-bit and 8-bit floats via float32 are exact too.
  const viaFloat32 = array.dtype === 'float16' || array.dtype === 'bfloat16' || array.dtype.startsWith('float8');
  const source = viaFloat32 ? (toFloat32(array).data as Float32Array) : (array.data as Exclude<TypedArray, BigInt64Array | BigUint64Array>);
  const out = new Float64Array(source.length);
  out.set(source);
  return withData(array, 'float64', out);
}

/**
 * An int32 copy of an integer array (int8 ... uint64), checked: a value outside int32's range
 * is an error rather than wrapping. This is the rule tfjs's int32 needs.
 * @throws TensorioError `ERR_BAD_VALUE` naming the value and its index.
 */
export function toInt32(array: NdArray, path?: string): NdArray {
  validateNdArray(array, path);
  const out = new Int32Array(array.data.length);
  const src = array.data as ArrayLike<number | bigint>;
  for (let i = 0; i < src.length; i++) {
    const v = src[i] as number | bigint;
    if (v > 2147483647 || v < -2147483648) {
      throw new TensorioError('ERR_BAD_VALUE', `${array.dtype} value ${String(v)} at index ${i} does not fit tfjs's int32`, { path });
    }
    out[i] = Number(v);
  }
  return withData(array, 'int32', out);
}
