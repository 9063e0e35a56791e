/**
 * The TensorFlow.js model format, without tfjs: `model.json` (topology, training config,
 * metadata and the weights manifest) and its `.bin` shards, read and written; and the weight
 * data the manifest describes: every weight's stored size (the one place tfjs byte sizes are
 * computed), each weight's bytes cut out of the shards (tfjs cuts shards anywhere), and
 * quantized weights dequantized as tfjs does or quantized as the converter does (the
 * arithmetic is in `tfjs-quantization.ts`).
 *
 * The types mirror tfjs's `ModelArtifacts` and `WeightsManifestEntry` (tfjs's own objects
 * pass as they are; the glue in src/tfjs/ casts what this module returns).
 */
import * as nodePath from 'node:path';

import { dtypeInfo, isDType } from '../dtype.js';
import { TensorioError } from '../errors.js';
import { writeAtomic, type WriteOptions } from '../io/atomic-writer.js';
import { closeQuietly, openForRead } from '../io/read.js';
import { ByteSource } from '../io/source.js';
import { type NdArray } from '../ndarray.js';
import { isObject, type Json } from './keras/config.js';
import { dequantizeWeight, quantizedItemSize, quantizeWeight, type TfjsQuantization, type TfjsQuantizationDtype } from './tfjs-quantization.js';

/** A weights manifest entry (tfjs's `WeightsManifestEntry`). */
export interface TfjsWeightSpec {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32' | 'bool' | 'string' | 'complex64';
  group?: 'model' | 'optimizer';
  quantization?: TfjsQuantization;
}

/** A model as `model.json` and its shards hold it (tfjs's `ModelArtifacts`, the fields tensorio keeps). */
export interface TfjsModelArtifacts {
  modelTopology?: unknown;
  weightSpecs?: TfjsWeightSpec[];
  weightData?: ArrayBuffer | ArrayBuffer[];
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
  trainingConfig?: unknown;
  userDefinedMetadata?: unknown;
}

export function parseJson(bytes: Uint8Array | string, path: string, what: string): Json {
  try {
    return JSON.parse(typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('utf8')) as Json;
  } catch (error) {
    throw new TensorioError('ERR_BAD_METADATA', `${what} is not valid JSON: ${(error as Error).message}`, { path, cause: error });
  }
}

/** The bytes of a view as an ArrayBuffer of their own: the view's buffer when it is exactly that, else a copy. */
export function ownBuffer(view: ArrayBufferView): ArrayBuffer {
  if (view.byteOffset === 0 && view.byteLength === view.buffer.byteLength && view.buffer instanceof ArrayBuffer) return view.buffer;
  return view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength) as ArrayBuffer;
}

/**
 * Bytes one element of a manifest entry takes in the shards (quantized or not), or undefined
 * for a dtype of no fixed size (string) or one tfjs does not know. A plain dtype's size is
 * the dtype table's (tfjs's dtype names are tensorio's).
 */
export function storedItemSize(spec: Pick<TfjsWeightSpec, 'dtype' | 'quantization'>): number | undefined {
  if (spec.quantization) return quantizedItemSize(spec.quantization.dtype);
  return isDType(spec.dtype) && dtypeInfo(spec.dtype).tfjs === spec.dtype ? dtypeInfo(spec.dtype).itemSize : undefined;
}

/** Bytes a manifest entry takes in the shards (its quantized size when quantized). */
export function storedByteLength(spec: TfjsWeightSpec, path?: string): number {
  const count = spec.shape.reduce((a, b) => a * b, 1);
  const size = storedItemSize(spec);
  if (size === undefined) {
    const what = spec.quantization ? `quantization dtype '${spec.quantization.dtype}'` : `dtype '${spec.dtype}'`;
    throw new TensorioError('ERR_UNSUPPORTED_DTYPE', `weight '${spec.name}' has ${what}, which tensorio does not store`, { path });
  }
  return count * size;
}

/** The whole weight data as byte views, in order. */
function piecesOf(data: ArrayBuffer | ArrayBuffer[] | undefined): Uint8Array[] {
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

/** Each manifest entry with its stored bytes, in order. */
function* eachWeight(specs: readonly TfjsWeightSpec[], data: ArrayBuffer | ArrayBuffer[] | undefined, path?: string): Generator<[TfjsWeightSpec, Uint8Array]> {
  const pieces = piecesOf(data);
  let offset = 0;
  for (const spec of specs) {
    const length = storedByteLength(spec, path);
    yield [spec, bytesAt(pieces, offset, length, path)];
    offset += length;
  }
}

/**
 * Each weight as a plain spec (no quantization) and its own buffer; quantized weights
 * dequantized as tfjs's `decodeWeights` does it.
 * @throws TensorioError `ERR_TRUNCATED` when the data is shorter than the manifest says,
 * `ERR_UNSUPPORTED_DTYPE` for a dtype of no fixed size (string), and the errors of
 * `dequantizeWeight`.
 */
export function plainWeights(specs: readonly TfjsWeightSpec[], data: ArrayBuffer | ArrayBuffer[] | undefined, path?: string): { specs: TfjsWeightSpec[]; pieces: ArrayBuffer[] } {
  const out: TfjsWeightSpec[] = [];
  const pieces: ArrayBuffer[] = [];
  for (const [spec, bytes] of eachWeight(specs, data, path)) {
    const plain: TfjsWeightSpec = { name: spec.name, shape: [...spec.shape], dtype: spec.dtype };
    if (spec.group !== undefined) plain.group = spec.group;
    out.push(plain);
    pieces.push(ownBuffer(spec.quantization ? dequantizeWeight(spec, bytes, path) : bytes));
  }
  return { specs: out, pieces };
}

/**
 * The weights with every float32 one quantized to `dtype` as the tensorflowjs converter
 * quantizes it (`--quantize_float16`, `--quantize_uint8`, `--quantize_uint16`); int32 and bool
 * weights stay as they are, as the converter leaves them. Already quantized weights are
 * dequantized first.
 */
export function quantizeWeights(specs: readonly TfjsWeightSpec[], data: ArrayBuffer | ArrayBuffer[] | undefined, dtype: TfjsQuantizationDtype, path?: string): { specs: TfjsWeightSpec[]; data: ArrayBuffer[] } {
  const plain = specs.some((s) => s.quantization) ? plainWeights(specs, data, path) : { specs, pieces: data };
  const outSpecs: TfjsWeightSpec[] = [];
  const outData: ArrayBuffer[] = [];
  for (const [spec, bytes] of eachWeight(plain.specs, plain.pieces, path)) {
    if (spec.dtype !== 'float32') {
      outSpecs.push(spec);
      outData.push(ownBuffer(bytes));
      continue;
    }
    const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
    const q = quantizeWeight(new Float32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4), dtype);
    outSpecs.push({ ...spec, shape: [...spec.shape], quantization: q.quantization });
    outData.push(ownBuffer(q.bytes));
  }
  return { specs: outSpecs, data: outData };
}

async function readWhole(path: string, what: string): Promise<Uint8Array> {
  const { fd, size } = openForRead(path);
  try {
    return await ByteSource.ofFile(fd, size, path).readAsync(0, size, what);
  } finally {
    closeQuietly(fd);
  }
}

/**
 * Reads a `model.json` and the shards its manifest names (relative paths inside the model's
 * folder only), one ArrayBuffer per shard.
 * @throws TensorioError `ERR_BAD_METADATA` (not JSON, no `modelTopology`, a malformed
 * manifest, a shard path leaving the folder), `ERR_TRUNCATED` when the shards hold fewer
 * bytes than the manifest declares, and the file errors.
 */
export async function readTfjsModel(path: string): Promise<TfjsModelArtifacts> {
  const json = parseJson(await readWhole(path, 'model.json'), path, 'model.json');
  if (!isObject(json) || !('modelTopology' in json)) throw new TensorioError('ERR_BAD_METADATA', "model.json has no 'modelTopology'", { path });
  const manifest = json.weightsManifest;
  const specs: TfjsWeightSpec[] = [];
  const shards: ArrayBuffer[] = [];
  const folder = nodePath.dirname(path);
  if (manifest !== undefined) {
    if (!Array.isArray(manifest)) throw new TensorioError('ERR_BAD_METADATA', 'weightsManifest is not a list', { path });
    for (const group of manifest) {
      if (!isObject(group) || !Array.isArray(group.paths) || !Array.isArray(group.weights)) throw new TensorioError('ERR_BAD_METADATA', 'a weightsManifest entry lacks paths or weights', { path });
      for (const shard of group.paths) {
        if (typeof shard !== 'string' || nodePath.isAbsolute(shard) || shard.split(/[\\/]/).includes('..')) {
          throw new TensorioError('ERR_BAD_METADATA', `weight shard path ${JSON.stringify(shard)} must be relative and stay in the model's folder`, { path });
        }
        const bytes = await readWhole(nodePath.join(folder, shard), 'weight shard');
        shards.push(ownBuffer(bytes));
      }
      specs.push(...(group.weights as unknown as TfjsWeightSpec[]));
    }
  }
  const actual = shards.reduce((sum, b) => sum + b.byteLength, 0);
  const declared = specs.every((s) => s.dtype !== 'string') ? specs.reduce((sum, s) => sum + storedByteLength(s, path), 0) : 0;
  if (declared > actual) {
    throw new TensorioError('ERR_TRUNCATED', `the weight manifest declares ${declared} bytes, the shards hold ${actual}`, { path });
  }
  const artifacts: TfjsModelArtifacts = { modelTopology: json.modelTopology, weightSpecs: specs, weightData: shards };
  for (const key of ['format', 'generatedBy', 'convertedBy'] as const) if (typeof json[key] === 'string') artifacts[key] = json[key] as string;
  if (isObject(json.trainingConfig)) artifacts.trainingConfig = json.trainingConfig;
  if (isObject(json.userDefinedMetadata)) artifacts.userDefinedMetadata = json.userDefinedMetadata;
  return artifacts;
}

/**
 * Writes a `model.json` and one shard beside it, `<stem>.weights.bin`, holding the weight
 * data as given; each file replaces its path atomically. `generatedBy` is written when the
 * artifacts carry none.
 */
export async function writeTfjsModel(path: string, artifacts: TfjsModelArtifacts, generatedBy: string, options: WriteOptions): Promise<void> {
  const stem = nodePath.basename(path).replace(/\.json$/i, '');
  const binName = `${stem}.weights.bin`;
  const pieces = artifacts.weightData === undefined ? [] : Array.isArray(artifacts.weightData) ? artifacts.weightData : [artifacts.weightData];
  await writeAtomic(nodePath.join(nodePath.dirname(path), binName), pieces.map((b) => new Uint8Array(b)), options);
  const json: Record<string, unknown> = {
    modelTopology: artifacts.modelTopology,
    format: artifacts.format ?? 'layers-model',
    generatedBy: artifacts.generatedBy ?? generatedBy,
    convertedBy: artifacts.convertedBy ?? null,
    weightsManifest: [{ paths: [binName], weights: artifacts.weightSpecs ?? [] }],
  };
  if (artifacts.trainingConfig) json.trainingConfig = artifacts.trainingConfig;
  if (artifacts.userDefinedMetadata) json.userDefinedMetadata = artifacts.userDefinedMetadata;
  await writeAtomic(path, [Buffer.from(JSON.stringify(json))], options);
}

/**
 * A plain weight's own buffer as an NdArray (float32, int32 or bool, the dtypes a model file
 * other than model.json stores); `what` names that file kind in the error.
 * @throws TensorioError `ERR_UNSUPPORTED_DTYPE` for another dtype.
 */
export function weightArray(spec: TfjsWeightSpec, buffer: ArrayBuffer, path: string, what: string): NdArray {
  const shape = [...spec.shape];
  if (spec.dtype === 'float32') return { dtype: 'float32', shape, data: new Float32Array(buffer) };
  if (spec.dtype === 'int32') return { dtype: 'int32', shape, data: new Int32Array(buffer) };
  if (spec.dtype === 'bool') return { dtype: 'bool', shape, data: new Uint8Array(buffer) };
  throw new TensorioError('ERR_UNSUPPORTED_DTYPE', `weight '${spec.name}' has dtype ${spec.dtype}; ${what} hold float32, int32 and bool weights`, { path });
}
