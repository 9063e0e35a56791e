/**
 * Quantized weights in `tf.io.ModelArtifacts`: the handler's savers work on plain float32 /
 * int32 / bool weights, one buffer each, so a model.json the converter quantized is
 * dequantized first ({@link plainWeights}, the values tfjs's `decodeWeights` gives), and a
 * model.json written with `quantize` is quantized last ({@link quantizeArtifacts}, the
 * converter's bytes). The arithmetic lives in `formats/tfjs-quantization.ts`.
 */
import type * as tf from '@tensorflow/tfjs';

import { TensorioError } from '../errors.js';
import { dequantizeWeight, quantizedItemSize, quantizeWeight, type TfjsQuantizationDtype } from '../formats/tfjs-quantization.js';

const PLAIN_SIZES: Record<string, number> = { float32: 4, int32: 4, bool: 1, complex64: 8 };

/** Bytes a manifest entry takes in the shards (its quantized size when quantized). */
export function storedByteLength(spec: tf.io.WeightsManifestEntry, path?: string): number {
  const count = spec.shape.reduce((a, b) => a * b, 1);
  const size = spec.quantization ? quantizedItemSize(spec.quantization.dtype) : PLAIN_SIZES[spec.dtype];
  if (size === undefined) {
    const what = spec.quantization ? `quantization dtype '${spec.quantization.dtype}'` : `dtype '${spec.dtype}'`;
    throw new TensorioError('ERR_UNSUPPORTED_DTYPE', `weight '${spec.name}' has ${what}, which tensorio does not store`, { path });
  }
  return count * size;
}

/** The whole weight data as byte views, in order (tfjs shards cut weights anywhere). */
function piecesOf(data: tf.io.WeightData | undefined): Uint8Array[] {
  if (data === undefined) return [];
  return (Array.isArray(data) ? data : [data]).map((b) => new Uint8Array(b));
}

/** Bytes [start, start + length) across pieces: a view when one piece holds them, else a copy. */
function bytesAt(pieces: Uint8Array[], start: number, length: number, path?: string): Uint8Array {
  let base = 0;
  for (const piece of pieces) {
    if (start >= base && start + length <= base + piece.byteLength) return piece.subarray(start - base, start - base + length);
    base += piece.byteLength;
  }
  if (start + length > base) throw new TensorioError('ERR_TRUNCATED', `the weight manifest needs ${start + length} bytes, the shards hold ${base}`, { path });
  const out = new Uint8Array(length);
  base = 0;
  for (const piece of pieces) {
    const from = Math.max(start, base);
    const to = Math.min(start + length, base + piece.byteLength);
    if (to > from) out.set(piece.subarray(from - base, to - base), from - start);
    base += piece.byteLength;
  }
  return out;
}

function ownBuffer(bytes: Uint8Array | Float32Array | Int32Array): ArrayBuffer {
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer) return bytes.buffer;
  return bytes.slice().buffer as ArrayBuffer;
}

/**
 * Each weight as a plain spec and its own buffer; quantized weights dequantized as tfjs
 * does it. Returns undefined when no weight is quantized (the caller keeps its own path).
 */
export function plainWeights(artifacts: tf.io.ModelArtifacts, path?: string): { specs: tf.io.WeightsManifestEntry[]; pieces: ArrayBuffer[] } | undefined {
  const specs = artifacts.weightSpecs ?? [];
  if (!specs.some((s) => s.quantization)) return undefined;
  const data = piecesOf(artifacts.weightData);
  const out: tf.io.WeightsManifestEntry[] = [];
  const pieces: ArrayBuffer[] = [];
  let offset = 0;
  for (const spec of specs) {
    const length = storedByteLength(spec, path);
    const bytes = bytesAt(data, offset, length, path);
    offset += length;
    const plain: tf.io.WeightsManifestEntry = { name: spec.name, shape: [...spec.shape], dtype: spec.dtype };
    if (spec.group !== undefined) plain.group = spec.group;
    out.push(plain);
    pieces.push(spec.quantization ? ownBuffer(dequantizeWeight(spec, bytes, path)) : ownBuffer(bytes));
  }
  return { specs: out, pieces };
}

/**
 * The artifacts with every float32 weight quantized to `dtype` as the tensorflowjs converter
 * quantizes it (`--quantize_float16`, `--quantize_uint8`, `--quantize_uint16`); int32 and bool
 * weights stay as they are, as the converter leaves them. Already quantized weights are
 * dequantized first.
 */
export function quantizeArtifacts(artifacts: tf.io.ModelArtifacts, dtype: TfjsQuantizationDtype, path?: string): tf.io.ModelArtifacts {
  const plain = plainWeights(artifacts, path);
  const specs = plain?.specs ?? artifacts.weightSpecs ?? [];
  const data = plain ? plain.pieces.map((b) => new Uint8Array(b)) : piecesOf(artifacts.weightData);
  const outSpecs: tf.io.WeightsManifestEntry[] = [];
  const outData: ArrayBuffer[] = [];
  let offset = 0;
  for (const spec of specs) {
    const length = storedByteLength(spec, path);
    const bytes = bytesAt(data, offset, length, path);
    offset += length;
    if (spec.dtype !== 'float32') {
      outSpecs.push(spec);
      outData.push(ownBuffer(bytes));
      continue;
    }
    const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
    const q = quantizeWeight(new Float32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4), dtype);
    outSpecs.push({ ...spec, shape: [...spec.shape], quantization: q.quantization as tf.io.WeightsManifestEntry['quantization'] });
    outData.push(ownBuffer(q.bytes));
  }
  return { ...artifacts, weightSpecs: outSpecs, weightData: outData };
}
