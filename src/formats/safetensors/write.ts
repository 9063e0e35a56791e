/**
 * Writing safetensors files byte for byte as the reference writer does, one file or
 * Hugging Face shards plus their index, atomically. One plan (planWrite: the files' chunks,
 * the index, the stale shards to remove) and two thin drivers, async and sync.
 */
import * as fs from 'node:fs';
import * as nodePath from 'node:path';

import { dtypeInfo, type DTypeInfo } from '../../dtype.js';
import { TensorioError } from '../../errors.js';
import {
  AtomicWriter,
  writeAtomic,
  writeAtomicSync,
  type WriteOptions,
  WRITE_OPTION_KEYS,
} from '../../io/atomic-writer.js';
import { asCOrder, bytesOf, validateNdArray, type NdArray } from '../../ndarray.js';
import { checkOptions, keysOf } from '../../options.js';
import { isPlainObject, REFERENCE_DTYPE_ORDER, SAFETENSORS_MAX_HEADER_SIZE } from './header.js';
import {
  compareCodePoints,
  encodeSafetensorsIndex,
  INDEX_SUFFIX,
  parseShardSize,
  planShards,
  shardFileName,
  shardNamePattern,
} from './sharded.js';

/** The options writeSafetensors takes (checked: a misspelt key is ERR_INVALID_ARGUMENT). */
export const WRITE_SAFETENSORS_OPTIONS = keysOf<SafetensorsWriteOptions>({ ...WRITE_OPTION_KEYS, metadata: true, maxShardSize: true });


/** Tensors to write: a plain object or a Map of name → array. */
export type TensorDict = Record<string, NdArray> | Map<string, NdArray>;

/** Options of {@link writeSafetensors}. */
export interface SafetensorsWriteOptions extends WriteOptions {
  /** Written as `__metadata__` (in every shard, when sharded). Values must be strings. */
  metadata?: Record<string, string>;
  /**
   * Split into shards of at most this many bytes of tensor data (a number, or '5GB' = 5×10^9,
   * '2GiB' = 2×2^30), named and indexed as the Hugging Face tools do. A tensor larger than the
   * limit gets a shard of its own. Default: one file.
   */
  maxShardSize?: number | string;
}

/** What {@link writeSafetensors} wrote. */
export interface SafetensorsWriteResult {
  /** The safetensors file(s) written. */
  files: string[];
  /** The index file, when the checkpoint was split into more than one shard. */
  index?: string;
  /** The tensors' data bytes in total (`metadata.total_size` of the index). */
  totalSize: number;
}

interface Prepared {
  name: string;
  array: NdArray;
  info: DTypeInfo;
  bytes: number;
}

function entriesOf(tensors: TensorDict): Array<[string, NdArray]> {
  if (tensors instanceof Map) return [...tensors.entries()];
  if (tensors === null || typeof tensors !== 'object') {
    throw new TensorioError('ERR_INVALID_ARGUMENT', 'tensors must be an object or a Map of name → NdArray');
  }
  return Object.entries(tensors);
}

function prepareTensors(tensors: TensorDict, file: string): Prepared[] {
  return entriesOf(tensors).map(([name, array]) => {
    if (typeof name !== 'string' || name === '__metadata__' || !wellFormed(name)) {
      throw new TensorioError('ERR_INVALID_ARGUMENT', `invalid tensor name ${JSON.stringify(name)}: names are UTF-8 strings other than '__metadata__'`, { path: file });
    }
    let bytes: number;
    try {
      bytes = validateNdArray(array, file);
    } catch (error) {
      if (error instanceof TensorioError) throw new TensorioError(error.code, `tensor '${name}': ${error.message.replace(`${file}: `, '')}`, { path: file });
      throw error;
    }
    const info = dtypeInfo(array.dtype);
    if (info.safetensors === null) {
      throw new TensorioError('ERR_UNSUPPORTED_DTYPE', `tensor '${name}': safetensors has no ${array.dtype} dtype; convert it first`, { path: file });
    }
    // safetensors is C order only; a Fortran-order array is copied into C order.
    return { name, array: array.order === 'F' ? asCOrder(array) : array, info, bytes };
  });
}

// A lone surrogate has no UTF-8 encoding (TextEncoder would silently write U+FFFD).
function wellFormed(text: string): boolean {
  return !/\p{Cs}/u.test(text);
}

function checkMetadata(metadata: unknown, file: string): Record<string, string> | undefined {
  if (metadata === undefined) return undefined;
  if (!isPlainObject(metadata)) throw new TensorioError('ERR_INVALID_ARGUMENT', 'metadata must be an object of strings', { path: file });
  for (const [key, value] of Object.entries(metadata)) {
    if (typeof value !== 'string' || !wellFormed(value) || !wellFormed(key)) {
      throw new TensorioError('ERR_INVALID_ARGUMENT', `metadata['${key}'] must be a string, got ${typeof value}`, { path: file });
    }
  }
  return metadata as Record<string, string>;
}

function rank(prepared: Prepared): number {
  return REFERENCE_DTYPE_ORDER.indexOf(prepared.info.safetensors as string);
}

/** The chunks of one file: length, padded header, then each tensor's own bytes. */
function encodePrepared(prepared: Prepared[], metadata: Record<string, string> | undefined, file: string): Uint8Array[] {
  const ordered = [...prepared].sort((a, b) => rank(b) - rank(a) || compareCodePoints(a.name, b.name));
  const parts: string[] = [];
  if (metadata !== undefined) {
    parts.push(`"__metadata__":{${Object.entries(metadata).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`);
  }
  let offset = 0;
  for (const { name, array, info, bytes } of ordered) {
    parts.push(`${JSON.stringify(name)}:{"dtype":"${info.safetensors}","shape":[${array.shape.join(',')}],"data_offsets":[${offset},${offset + bytes}]}`);
    offset += bytes;
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const headerLength = Math.ceil(json.length / 8) * 8;
  if (headerLength > SAFETENSORS_MAX_HEADER_SIZE) {
    throw new TensorioError('ERR_HEADER_TOO_LARGE', `the header would be ${headerLength} bytes, over the limit of ${SAFETENSORS_MAX_HEADER_SIZE} readers accept`, { path: file });
  }
  const head = new Uint8Array(8 + headerLength).fill(0x20, 8 + json.length);
  new DataView(head.buffer).setUint32(0, headerLength, true);
  head.set(json, 8);
  const chunks: Uint8Array[] = [head];
  for (const { array, bytes } of ordered) if (bytes > 0) chunks.push(bytesOf(array.data));
  return chunks;
}

/**
 * The bytes of a safetensors file as chunks (the header, then each tensor's own bytes, not
 * copied), exactly as the reference `serialize` lays them out: tensors ordered by dtype
 * alignment (largest first) then name, the header padded with spaces to a multiple of 8.
 * @throws TensorioError `ERR_INVALID_ARGUMENT`, `ERR_SHAPE_MISMATCH`, `ERR_UNSUPPORTED_DTYPE`
 * (complex128), `ERR_HEADER_TOO_LARGE`.
 */
export function encodeSafetensors(tensors: TensorDict, options: { metadata?: Record<string, string> } = {}): Uint8Array[] {
  const file = '<buffer>';
  return encodePrepared(prepareTensors(tensors, file), checkMetadata(options.metadata, file), file);
}

interface Plan {
  files: Array<{ path: string; chunks: Uint8Array[] }>;
  index?: { path: string; bytes: Uint8Array };
  totalSize: number;
  stale: () => void;
}

function planWrite(path: string, tensors: TensorDict, options: SafetensorsWriteOptions): Plan {
  const metadata = checkMetadata(options.metadata, path);
  const prepared = prepareTensors(tensors, path);
  const totalSize = prepared.reduce((sum, p) => sum + p.bytes, 0);
  if (options.maxShardSize === undefined) {
    return { files: [{ path, chunks: encodePrepared(prepared, metadata, path) }], totalSize, stale: () => undefined };
  }
  const limit = parseShardSize(options.maxShardSize);
  const groups = planShards(prepared.map((p) => [p.name, p.bytes] as const), limit);
  const byName = new Map(prepared.map((p) => [p.name, p]));
  const indexPath = path + INDEX_SUFFIX;
  const folder = nodePath.dirname(path);
  if (groups.length <= 1) {
    return {
      files: [{ path, chunks: encodePrepared(prepared, metadata, path) }],
      totalSize,
      stale: () => removeStale(folder, shardNamePattern(path), new Set(), indexPath),
    };
  }
  const weightMap = new Map<string, string>();
  const files = groups.map((names, i) => {
    const name = shardFileName(path, i, groups.length);
    for (const tensor of names) weightMap.set(tensor, name);
    return { path: nodePath.join(folder, name), chunks: encodePrepared(names.map((n) => byName.get(n) as Prepared), metadata, path) };
  });
  const keep = new Set(files.map((f) => nodePath.basename(f.path)));
  return {
    files,
    index: { path: indexPath, bytes: encodeSafetensorsIndex(totalSize, weightMap) },
    totalSize,
    stale: () => removeStale(folder, shardNamePattern(path), keep, undefined),
  };
}

/** Removes shards of an earlier save of the same checkpoint that this save did not write. */
function removeStale(folder: string, pattern: RegExp, keep: Set<string>, staleIndex: string | undefined): void {
  let names: string[] = [];
  try {
    names = fs.readdirSync(folder);
  } catch {
    return;
  }
  const doomed = names.filter((name) => pattern.test(name) && !keep.has(name)).map((name) => nodePath.join(folder, name));
  if (staleIndex !== undefined) doomed.push(staleIndex);
  for (const file of doomed) {
    try {
      fs.unlinkSync(file);
    } catch {
      // Already gone, or not ours to remove: a stale shard is harmless once the index moved on.
    }
  }
}

/** After the files and the index are in place: earlier shards removed, the result. */
function finish(plan: Plan): SafetensorsWriteResult {
  plan.stale();
  const out: SafetensorsWriteResult = { files: plan.files.map((f) => f.path), totalSize: plan.totalSize };
  if (plan.index) out.index = plan.index.path;
  return out;
}

/**
 * Writes tensors as a safetensors file, byte for byte as the reference writer does (see
 * {@link encodeSafetensors}), streamed from the arrays' own buffers, atomically (temporary
 * file, fsync, rename). With `maxShardSize`, writes `model-00001-of-0000N.safetensors` shards
 * concurrently next to `path` and then `path + '.index.json'`; a checkpoint that fits one
 * shard is written to `path` alone, as the Hugging Face tools do. Shards of an earlier save of
 * the same `path` that this one did not write are removed after the index is in place.
 * @param options `metadata`, `maxShardSize`, `fsync` (default true).
 * @throws TensorioError `ERR_INVALID_ARGUMENT`, `ERR_SHAPE_MISMATCH`, `ERR_UNSUPPORTED_DTYPE`,
 * `ERR_HEADER_TOO_LARGE`, `ERR_NO_SPACE`, `ERR_PERMISSION`, `ERR_NOT_FOUND`, `ERR_IO`.
 */
export async function writeSafetensors(path: string, tensors: TensorDict, options: SafetensorsWriteOptions = {}): Promise<SafetensorsWriteResult> {
  checkOptions(options, WRITE_SAFETENSORS_OPTIONS, 'writeSafetensors', path);
  const plan = planWrite(path, tensors, options);
  const writers: AtomicWriter[] = [];
  try {
    for (const file of plan.files) writers.push(await AtomicWriter.open(file.path, options));
    // Every shard is complete on disk before any replaces an older file of the same name.
    await Promise.all(plan.files.map((file, i) => (writers[i] as AtomicWriter).write(file.chunks)));
    await Promise.all(writers.map((writer) => writer.commit()));
  } catch (error) {
    await Promise.all(writers.map((writer) => writer.abort()));
    throw error;
  }
  if (plan.index) await writeAtomic(plan.index.path, [plan.index.bytes], options);
  return finish(plan);
}

/** Synchronous {@link writeSafetensors} (shards are written one after another). */
export function writeSafetensorsSync(path: string, tensors: TensorDict, options: SafetensorsWriteOptions = {}): SafetensorsWriteResult {
  checkOptions(options, WRITE_SAFETENSORS_OPTIONS, 'writeSafetensorsSync', path);
  const plan = planWrite(path, tensors, options);
  const writers: AtomicWriter[] = [];
  try {
    for (const file of plan.files) {
      const writer = AtomicWriter.openSync(file.path, options);
      writers.push(writer);
      writer.writeSync(file.chunks);
    }
    for (const writer of writers) writer.commitSync();
  } catch (error) {
    for (const writer of writers) writer.abortSync();
    throw error;
  }
  if (plan.index) writeAtomicSync(plan.index.path, [plan.index.bytes], options);
  return finish(plan);
}
