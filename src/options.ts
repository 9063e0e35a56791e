/**
 * Option checking for the public functions: an options object may hold only the options the
 * function knows, so a misspelling (`allowPickel`) is `ERR_INVALID_ARGUMENT` naming the known
 * options instead of being ignored (and a pickled file then refused for the wrong reason, or a
 * limit silently left at its default).
 *
 * Each function's list is written once here, typed against its options interface: a list
 * that misses or adds a key of the interface does not compile, so the lists follow the
 * interfaces. Keys whose value is `undefined` are accepted (`{ mmap: flag ? true : undefined }`).
 */
import { TensorioError } from './errors.js';
import type { WriteOptions } from './io/atomic-writer.js';
import type { NpyReadOptions } from './formats/numpy/header.js';
import type { OpenNpyOptions } from './formats/numpy/memmap.js';
import type { NpzReadOptions } from './formats/numpy/npz-read.js';
import type { NpzWriteOptions } from './formats/numpy/npz-write.js';
import type { SafetensorsOpenOptions, SafetensorsReadOptions } from './formats/safetensors/types.js';
import type { SafetensorsWriteOptions } from './formats/safetensors/write.js';
import type { H5ReadOptions } from './formats/hdf5/file.js';
import type { H5WriteOptions } from './formats/hdf5/writer.js';
import type { KerasWriteOptions } from './formats/keras/weights-h5.js';
import type { TorchReadOptions } from './formats/torch/read.js';
import type { TorchWriteOptions } from './formats/torch/write.js';
import type { LoadOptions, SaveOptions } from './containers.js';

/** The keys of an options interface, as a list the compiler checks against the interface. */
export function keysOf<T>(keys: { [K in keyof Required<T>]: true }): readonly string[] {
  return Object.keys(keys);
}

const WRITE = { fsync: true, directIo: true } as const;
export const OPTIONS = {
  readNpy: keysOf<NpyReadOptions>({ mmap: true, maxHeaderSize: true, strings: true, voidAs: true }),
  writeNpy: keysOf<WriteOptions>(WRITE),
  openNpy: keysOf<OpenNpyOptions>({ ...WRITE, mode: true, dtype: true, shape: true, order: true, maxHeaderSize: true }),
  readNpz: keysOf<NpzReadOptions>({ mmap: true, allowPickle: true, maxMemberSize: true, maxHeaderSize: true, strings: true, voidAs: true }),
  writeNpz: keysOf<NpzWriteOptions>({ ...WRITE, compress: true }),
  readSafetensors: keysOf<SafetensorsReadOptions>({ mmap: true }),
  openSafetensors: keysOf<SafetensorsOpenOptions>({ mmap: true }),
  writeSafetensors: keysOf<SafetensorsWriteOptions>({ ...WRITE, metadata: true, maxShardSize: true }),
  readH5: keysOf<H5ReadOptions>({ mmap: true, h5wasm: true, h5wasmTimeoutMs: true }),
  writeH5: keysOf<H5WriteOptions>({ ...WRITE, heapWriteLimit: true }),
  writeKerasWeights: keysOf<KerasWriteOptions>({ ...WRITE, heapWriteLimit: true, layout: true, kerasVersion: true, backend: true, modelConfig: true, trainingConfig: true }),
  readTorch: keysOf<TorchReadOptions>({ mmap: true, maxMemberSize: true, maxPickleSize: true, maxCopySize: true, verifyCrc: true }),
  writeTorch: keysOf<TorchWriteOptions>({ ...WRITE, maxShardSize: true }),
  save: keysOf<SaveOptions>({ ...WRITE, compress: true }),
  load: keysOf<LoadOptions>({ mmap: true, allowPickle: true, maxMemberSize: true, maxHeaderSize: true, maxPickleSize: true, voidAs: true }),
} as const;

/**
 * Throws `ERR_INVALID_ARGUMENT` unless `options` is undefined or an object whose keys (with a
 * defined value) are all in `known`; the message names the function, the unknown key, the
 * closest known one and the whole list.
 */
export function checkOptions(options: unknown, known: readonly string[], fn: string, path?: string): void {
  if (options === undefined) return;
  const details = path === undefined ? {} : { path };
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TensorioError('ERR_INVALID_ARGUMENT', `${fn}: options must be an object, not ${options === null ? 'null' : Array.isArray(options) ? 'an array' : typeof options}`, details);
  }
  for (const key of Object.keys(options)) {
    if (known.includes(key) || (options as Record<string, unknown>)[key] === undefined) continue;
    const near = closest(key, known);
    throw new TensorioError(
      'ERR_INVALID_ARGUMENT',
      `${fn}: unknown option '${key}'${near ? ` (did you mean '${near}'?)` : ''}; known options: ${known.length > 0 ? known.join(', ') : 'none'}`,
      details,
    );
  }
}

/** The known key within edit distance 2 of `key` (case ignored), if any. */
function closest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of known) {
    const d = distance(key.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min((previous[j] as number) + 1, (row[j - 1] as number) + 1, (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = row;
  }
  return previous[b.length] as number;
}
