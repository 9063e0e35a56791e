/**
 * TensorFlow.js weight quantization, both ways, shared by `ioHandler` and the command line:
 * - {@link dequantizeWeight} turns a quantized manifest entry's bytes into the values tfjs's
 *   own `decodeWeights` (tfjs-core `io/io_utils.ts`) gives: uint8/uint16 as
 *   `q * scale + min` in double precision, stored as float32 (int32 weights: `Math.round` of
 *   it), float16 widened exactly;
 * - {@link quantizeWeight} quantizes a float32 weight the way the Python converter
 *   (`tensorflowjs/quantization.py`, `quantize_weights`) does, so a model tensorio writes
 *   with `quantize` has the converter's bytes and manifest numbers.
 * No tfjs import: this is bytes and arithmetic only.
 */
import { numberToHalf } from '../convert.js';
import { TensorioError } from '../errors.js';

/** The quantization dtypes tfjs reads. */
export type TfjsQuantizationDtype = 'float16' | 'uint8' | 'uint16';

/** A manifest entry's `quantization` field, as the converter writes it. */
export interface TfjsQuantization {
  dtype: TfjsQuantizationDtype;
  /** Affine quantization (uint8/uint16): value = q * scale + min. */
  min?: number;
  scale?: number;
  /** The weight's dtype before quantization ('float32'); tfjs ignores it. */
  original_dtype?: string;
}

/** What {@link dequantizeWeight} needs of a manifest entry. */
export interface QuantizedSpec {
  name: string;
  shape: readonly number[];
  dtype: string;
  quantization?: { dtype: string; min?: number; scale?: number } | undefined;
}

const SIZES: Record<TfjsQuantizationDtype, number> = { float16: 2, uint8: 1, uint16: 2 };

/** Bytes one element of a quantized weight takes, or undefined for a dtype tfjs does not know. */
export function quantizedItemSize(dtype: string): number | undefined {
  return Object.hasOwn(SIZES, dtype) ? SIZES[dtype as TfjsQuantizationDtype] : undefined;
}

function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * The values of a quantized weight, as tfjs's `decodeWeights` computes them. `bytes` holds
 * exactly the weight's stored elements (little-endian).
 * @throws TensorioError `ERR_BAD_METADATA` for a quantization tfjs refuses (unknown dtype,
 * uint8/uint16 without `min` and `scale`, float16 of a non-float32 weight),
 * `ERR_TRUNCATED` when `bytes` is shorter than the shape needs.
 */
export function dequantizeWeight(spec: QuantizedSpec, bytes: Uint8Array, path?: string): Float32Array | Int32Array {
  const q = spec.quantization;
  if (!q) throw new TensorioError('ERR_INVALID_ARGUMENT', `weight '${spec.name}' is not quantized`, { path });
  const itemSize = quantizedItemSize(q.dtype);
  if (itemSize === undefined) {
    throw new TensorioError('ERR_BAD_METADATA', `weight '${spec.name}' has quantization dtype '${q.dtype}'; tfjs reads uint8, uint16 and float16`, { path });
  }
  const count = elementCount(spec.shape);
  if (bytes.byteLength < count * itemSize) {
    throw new TensorioError('ERR_TRUNCATED', `weight '${spec.name}' needs ${count * itemSize} bytes of ${q.dtype}, the shards hold ${bytes.byteLength}`, { path });
  }
  const read = (i: number): number => (itemSize === 1 ? (bytes[i] as number) : (bytes[2 * i] as number) | ((bytes[2 * i + 1] as number) << 8));
  if (q.dtype === 'float16') {
    if (spec.dtype !== 'float32') throw new TensorioError('ERR_BAD_METADATA', `weight '${spec.name}' is quantized to float16, which tfjs allows for float32 weights only, not ${spec.dtype}`, { path });
    // Bit by bit, as tfjs's table decoder does, so NaN payloads survive too.
    const bits = new Uint32Array(count);
    for (let i = 0; i < count; i++) bits[i] = halfBitsToFloatBits(read(i));
    return new Float32Array(bits.buffer);
  }
  if (typeof q.min !== 'number' || typeof q.scale !== 'number') {
    throw new TensorioError('ERR_BAD_METADATA', `weight '${spec.name}' is quantized to ${q.dtype} without numeric 'min' and 'scale'`, { path });
  }
  const { min, scale } = q;
  if (spec.dtype === 'float32') {
    const out = new Float32Array(count);
    // In doubles, then rounded once to float32 by the store: what tfjs does.
    for (let i = 0; i < count; i++) out[i] = read(i) * scale + min;
    return out;
  }
  if (spec.dtype === 'int32') {
    const out = new Int32Array(count);
    for (let i = 0; i < count; i++) out[i] = Math.round(read(i) * scale + min);
    return out;
  }
  throw new TensorioError('ERR_BAD_METADATA', `weight '${spec.name}' of dtype ${spec.dtype} is quantized; tfjs dequantizes float32 and int32 weights only`, { path });
}

/** float16 bits → float32 bits: exact for every half (zeros, subnormals, infinities, NaN payloads). */
function halfBitsToFloatBits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exponent = (h >> 10) & 0x1f;
  let mantissa = h & 0x3ff;
  if (exponent === 0x1f) return (sign | 0x7f800000 | (mantissa << 13)) >>> 0;
  if (exponent !== 0) return (sign | ((exponent + 112) << 23) | (mantissa << 13)) >>> 0;
  if (mantissa === 0) return sign >>> 0;
  // A subnormal half is a normal float32: shift the leading 1 out of the mantissa.
  let e = 113;
  while ((mantissa & 0x400) === 0) {
    mantissa <<= 1;
    e--;
  }
  return (sign | (e << 23) | ((mantissa & 0x3ff) << 13)) >>> 0;
}

/** NumPy's `np.round`: halves go to the even neighbour. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** A quantized weight: its stored bytes and the manifest's `quantization` field. */
export interface QuantizedWeight {
  bytes: Uint8Array;
  quantization: TfjsQuantization;
}

/**
 * Quantizes a float32 weight as the tensorflowjs converter does (`quantize_weights` with
 * NumPy 2): float16 rounds to nearest even; uint8/uint16 take the range [min, max] of the
 * data (in doubles), nudge it so 0 is exactly representable when the range holds 0 (as
 * TF-Lite does), and store `round_half_even((clip(x) - min) / scale)`. A constant weight
 * becomes zeros with `scale` 1 and `min` its value.
 */
export function quantizeWeight(data: Float32Array, dtype: TfjsQuantizationDtype): QuantizedWeight {
  const n = data.length;
  if (dtype === 'float16') {
    const bytes = new Uint8Array(2 * n);
    for (let i = 0; i < n; i++) {
      const h = numberToHalf(data[i] as number);
      bytes[2 * i] = h & 0xff;
      bytes[2 * i + 1] = h >>> 8;
    }
    return { bytes, quantization: { dtype, original_dtype: 'float32' } };
  }
  const quantMax = dtype === 'uint8' ? 255 : 65535;
  const bytes = new Uint8Array(n * (dtype === 'uint8' ? 1 : 2));
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = data[i] as number;
    // NumPy's min/max propagate NaN; the converter then writes NaN into the manifest.
    if (Number.isNaN(v)) {
      lo = hi = NaN;
      break;
    }
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo === hi || n === 0 || Number.isNaN(lo)) {
    return { bytes, quantization: { dtype, min: n === 0 ? NaN : lo, scale: 1, original_dtype: 'float32' } };
  }
  const scale = (hi - lo) / quantMax;
  let min = lo;
  let max = hi;
  if (lo <= 0 && 0 <= hi) {
    const zeroPoint = roundHalfEven((0 - lo) / scale);
    min = -zeroPoint * scale;
    max = quantMax * scale + min;
  }
  for (let i = 0; i < n; i++) {
    const v = Math.min(Math.max(data[i] as number, min), max);
    const q = roundHalfEven((v - min) / scale);
    if (dtype === 'uint8') bytes[i] = q;
    else {
      bytes[2 * i] = q & 0xff;
      bytes[2 * i + 1] = q >>> 8;
    }
  }
  return { bytes, quantization: { dtype, min, scale, original_dtype: 'float32' } };
}
