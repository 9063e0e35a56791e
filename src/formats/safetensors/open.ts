/**
 * Opening safetensors files: a single file, or a sharded checkpoint found through its index
 * (a `.json` path, or the sibling index of a missing `X.safetensors`). Which files to open
 * and what view to make of them is one walker (`opening`) for the sync and the async open;
 * they differ only in how they open a list of files (one after another, or all at once).
 */
import * as fs from 'node:fs';
import * as nodePath from 'node:path';

import { TensorioError } from '../../errors.js';
import { closeQuietly, openForRead } from '../../io/read.js';
import { ByteSource } from '../../io/source.js';
import { checkOptions, keysOf } from '../../options.js';
import { Shard } from './file.js';
import { INDEX_SUFFIX, MAX_INDEX_SIZE, parseSafetensorsIndex, type SafetensorsIndex } from './sharded.js';
import type { SafetensorsFile, SafetensorsOpenOptions } from './types.js';
import { SafetensorsView } from './view.js';

/** The options openSafetensors takes (checked: a misspelt key is ERR_INVALID_ARGUMENT). */
export const OPEN_SAFETENSORS_OPTIONS = keysOf<SafetensorsOpenOptions>({ mmap: true });

/** Whether `path` names an index, directly or as the sibling of a missing `.safetensors` file. */
function resolveIndex(path: string): string | undefined {
  return path.endsWith('.json') ? path : undefined;
}

/** The sibling index of a missing `X.safetensors`, looked for only once opening it failed. */
function siblingIndex(path: string, error: unknown): string | undefined {
  if (error instanceof TensorioError && error.code === 'ERR_NOT_FOUND' && fs.existsSync(path + INDEX_SUFFIX)) return path + INDEX_SUFFIX;
  return undefined;
}

function readIndexFile(indexPath: string): SafetensorsIndex {
  const { fd, size } = openForRead(indexPath);
  try {
    if (size > MAX_INDEX_SIZE) {
      throw new TensorioError('ERR_HEADER_TOO_LARGE', `index is ${size} bytes, over the limit of ${MAX_INDEX_SIZE}`, { path: indexPath });
    }
    return parseSafetensorsIndex(ByteSource.ofFile(fd, size, indexPath).read(0, size, 'safetensors index'), indexPath);
  } finally {
    closeQuietly(fd);
  }
}

function shardPaths(indexPath: string, index: SafetensorsIndex): string[] {
  const folder = nodePath.dirname(indexPath);
  return [...new Set(index.weightMap.values())].map((file) => nodePath.join(folder, file));
}

/**
 * The opening walker: yields the files to open and receives them all opened (a failure to
 * open any is thrown back into it, the others already closed).
 */
type Opening = Generator<readonly string[], SafetensorsView, Shard[]>;

function* opening(path: string): Opening {
  let indexPath = resolveIndex(path);
  if (indexPath === undefined) {
    try {
      return new SafetensorsView(path, yield [path], undefined);
    } catch (error) {
      indexPath = siblingIndex(path, error);
      if (indexPath === undefined) throw error;
    }
  }
  const index = readIndexFile(indexPath);
  const shards = yield shardPaths(indexPath, index);
  try {
    return new SafetensorsView(path, shards, index, indexPath);
  } catch (error) {
    for (const shard of shards) shard.close(true);
    throw error;
  }
}

/** {@link openSafetensors}, returning the view itself (for the whole-file reader). */
export async function openView(path: string, options: SafetensorsOpenOptions): Promise<SafetensorsView> {
  const mmap = options.mmap ?? true;
  const walk = opening(path);
  let step = walk.next();
  while (!step.done) {
    const results = await Promise.allSettled(step.value.map((file) => Shard.open(file, mmap)));
    const shards = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failure) for (const shard of shards) shard.close(true);
    step = failure ? walk.throw(failure.reason) : walk.next(shards);
  }
  return step.value;
}

/** Synchronous {@link openView}. */
export function openViewSync(path: string, options: SafetensorsOpenOptions): SafetensorsView {
  const mmap = options.mmap ?? true;
  const walk = opening(path);
  let step = walk.next();
  while (!step.done) {
    const shards: Shard[] = [];
    try {
      for (const file of step.value) shards.push(Shard.openSync(file, mmap));
    } catch (error) {
      for (const shard of shards) shard.close(true);
      step = walk.throw(error);
      continue;
    }
    step = walk.next(shards);
  }
  return step.value;
}

/**
 * Opens a safetensors file lazily, like Python's `safe_open`: the header is read and
 * validated, the file mapped (by default), and no tensor data is touched until asked for.
 * A path ending in `.json` (or a missing `X.safetensors` whose `X.safetensors.index.json`
 * exists) opens a sharded checkpoint: every shard's header is read and the view covers all
 * of them.
 * @param options `mmap` (default true).
 * @throws TensorioError `ERR_NOT_FOUND`, `ERR_TRUNCATED`, `ERR_HEADER_TOO_LARGE`,
 * `ERR_BAD_HEADER`, `ERR_BAD_METADATA`, `ERR_BAD_OFFSETS`, `ERR_SHAPE_MISMATCH`,
 * `ERR_UNSUPPORTED_DTYPE`, `ERR_TOO_LARGE`, `ERR_PERMISSION`, `ERR_IO`.
 */
export async function openSafetensors(path: string, options: SafetensorsOpenOptions = {}): Promise<SafetensorsFile> {
  checkOptions(options, OPEN_SAFETENSORS_OPTIONS, 'openSafetensors', path);
  return openView(path, options);
}

/** Synchronous {@link openSafetensors}. */
export function openSafetensorsSync(path: string, options: SafetensorsOpenOptions = {}): SafetensorsFile {
  checkOptions(options, OPEN_SAFETENSORS_OPTIONS, 'openSafetensorsSync', path);
  return openViewSync(path, options);
}
