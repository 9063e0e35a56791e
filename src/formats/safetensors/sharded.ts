/**
 * Sharded safetensors checkpoints, laid out as the Hugging Face tools lay them out:
 * `model-00001-of-00003.safetensors` ... plus `model.safetensors.index.json`, whose
 * `weight_map` names the shard holding each tensor and whose `metadata.total_size` is the
 * sum of the tensors' byte sizes.
 *
 * This module holds the pure parts (index parsing and encoding, the split into shards, shard
 * names); opening a checkpoint through its index lives in open.ts, writing shards in write.ts.
 */
import * as nodePath from 'node:path';

import { TensorioError } from '../../errors.js';
import { isPlainObject } from './header.js';

/** The suffix of an index file: `model.safetensors` → `model.safetensors.index.json`. */
export const INDEX_SUFFIX = '.index.json';

/** What a `*.safetensors.index.json` file says. */
export interface SafetensorsIndex {
  /** The index's `metadata` object as written (Hugging Face writes `{ total_size }`). */
  metadata: Record<string, unknown>;
  /** `metadata.total_size` when it is a non-negative integer. */
  totalSize: number | undefined;
  /** Tensor name → shard file name (relative to the index's folder), in file order. */
  weightMap: Map<string, string>;
}

/** The largest index file read, like the header bound of a shard. */
export const MAX_INDEX_SIZE = 100_000_000;

function badIndexOf(file: string, what: string, format = 'safetensors'): TensorioError {
  return new TensorioError('ERR_BAD_HEADER', `malformed ${format} index: ${what}`, { path: file });
}

/**
 * Parses an index file's bytes. Shard names must be plain file names in the index's own
 * folder (a hostile index cannot point at `../../etc/passwd`). PyTorch's sharded checkpoints
 * (`pytorch_model.bin.index.json`) use the same layout; `format` names it in errors.
 * @throws TensorioError `ERR_BAD_HEADER` for invalid UTF-8 or JSON, a missing or malformed
 * `weight_map`, or a shard name that leaves the folder.
 */
export function parseSafetensorsIndex(bytes: Uint8Array, file: string, format = 'safetensors'): SafetensorsIndex {
  const badIndex = (f: string, what: string): TensorioError => badIndexOf(f, what, format);
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (error) {
    throw badIndex(file, `not UTF-8 JSON (${(error as Error).message})`);
  }
  if (!isPlainObject(parsed)) throw badIndex(file, 'expected a JSON object');
  const metadata = parsed.metadata ?? {};
  if (!isPlainObject(metadata)) throw badIndex(file, "'metadata' must be an object");
  const weightMap = parsed.weight_map;
  if (!isPlainObject(weightMap)) throw badIndex(file, "expected a 'weight_map' object of tensor name → shard file");
  const map = new Map<string, string>();
  for (const [name, shard] of Object.entries(weightMap)) {
    if (typeof shard !== 'string') throw badIndex(file, `weight_map['${name}'] must be a file name, found ${JSON.stringify(shard)}`);
    checkShardName(shard, file, format);
    map.set(name, shard);
  }
  const total = metadata.total_size;
  const totalSize = typeof total === 'number' && Number.isSafeInteger(total) && total >= 0 ? total : undefined;
  return { metadata, totalSize, weightMap: map };
}

function checkShardName(shard: string, file: string, format: string): void {
  const normal = nodePath.posix.normalize(shard.replace(/\\/g, '/'));
  if (shard === '' || nodePath.isAbsolute(shard) || normal.startsWith('../') || normal === '..' || normal.includes('\0')) {
    throw badIndexOf(file, `shard '${shard}' is not a file inside the index's folder`, format);
  }
}

/**
 * Compares strings by Unicode code point, which is the order of their UTF-8 bytes: the
 * order Rust's `String` and Python's `str` sort in. JavaScript's `<` compares UTF-16 code
 * units, which puts U+10000 and above before U+E000..U+FFFF.
 */
export function compareCodePoints(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // Lift surrogates above the rest of the BMP so code-unit order becomes code-point order.
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}

/** Python's `json.dumps(value, indent=2, sort_keys=True)`, ASCII-only like its default. */
function pythonJson(value: unknown, indent: string): string {
  if (isPlainObject(value) || value instanceof Map) {
    const entries = value instanceof Map ? [...value.entries()] : Object.entries(value);
    if (entries.length === 0) return '{}';
    entries.sort(([a], [b]) => compareCodePoints(a, b));
    const inner = `${indent}  `;
    return `{\n${entries.map(([k, v]) => `${inner}${asciiJson(k)}: ${pythonJson(v, inner)}`).join(',\n')}\n${indent}}`;
  }
  if (typeof value === 'string') return asciiJson(value);
  return JSON.stringify(value);
}

function asciiJson(text: string): string {
  return JSON.stringify(text).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * The bytes of an index file as `transformers` writes it: `json.dumps(index, indent=2,
 * sort_keys=True) + "\n"`.
 */
export function encodeSafetensorsIndex(totalSize: number, weightMap: Map<string, string>): Uint8Array {
  const text = `${pythonJson({ metadata: { total_size: totalSize }, weight_map: weightMap }, '')}\n`;
  return new TextEncoder().encode(text);
}

const SIZE_UNITS: Record<string, number> = {
  B: 1,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  KIB: 2 ** 10,
  MIB: 2 ** 20,
  GIB: 2 ** 30,
  TIB: 2 ** 40,
};

/**
 * A shard size in bytes: a positive integer, or a string like Hugging Face's `"5GB"` (10^9)
 * or `"500MiB"` (2^20).
 * @throws TensorioError `ERR_INVALID_ARGUMENT` for anything else.
 */
export function parseShardSize(size: number | string): number {
  let bytes = Number.NaN;
  if (typeof size === 'number') bytes = size;
  else if (typeof size === 'string') {
    const match = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$/i.exec(size);
    if (match) bytes = Math.floor(Number(match[1]) * (SIZE_UNITS[(match[2] ?? 'B').toUpperCase()] ?? Number.NaN));
  }
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    throw new TensorioError('ERR_INVALID_ARGUMENT', `maxShardSize must be a positive number of bytes or a size like '5GB', got ${JSON.stringify(size)}`);
  }
  return bytes;
}

/**
 * Splits tensors into shards exactly as `huggingface_hub.split_state_dict_into_shards_factory`
 * does: in the given order, a new shard starts when the next tensor would push the current
 * one over the limit, and a tensor larger than the limit gets a shard of its own (placed
 * before the shard being filled).
 */
export function planShards(sizes: ReadonlyArray<readonly [string, number]>, maxShardSize: number): string[][] {
  const shards: string[][] = [];
  let current: string[] = [];
  let currentSize = 0;
  for (const [name, size] of sizes) {
    if (size > maxShardSize) {
      shards.push([name]);
      continue;
    }
    if (currentSize + size > maxShardSize) {
      shards.push(current);
      current = [];
      currentSize = 0;
    }
    current.push(name);
    currentSize += size;
  }
  if (current.length > 0) shards.push(current);
  return shards;
}

function splitName(target: string): { stem: string; ext: string } {
  const base = nodePath.basename(target);
  const ext = base.endsWith('.safetensors') ? '.safetensors' : nodePath.extname(base);
  return { stem: base.slice(0, base.length - ext.length), ext };
}

/**
 * The shard file names for `target` (`dir/model.safetensors` → `model-00001-of-00002.safetensors`),
 * as the `model{suffix}.safetensors` pattern of the Hugging Face tools makes them.
 */
export function shardFileName(target: string, index: number, count: number): string {
  const { stem, ext } = splitName(target);
  const pad = (n: number) => String(n).padStart(5, '0');
  return `${stem}-${pad(index + 1)}-of-${pad(count)}${ext}`;
}

/** Matches any shard name of `target` (to remove shards left by an earlier, larger save). */
export function shardNamePattern(target: string): RegExp {
  const { stem, ext } = splitName(target);
  const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^${escape(stem)}-\\d{5}-of-\\d{5}${escape(ext)}$`);
}
