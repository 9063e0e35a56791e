/**
 * Sharded PyTorch checkpoints as `transformers`' `save_pretrained(safe_serialization=False)`
 * writes them: `pytorch_model-00001-of-00003.bin` ... (each a `torch.save` of a flat state
 * dict) plus `pytorch_model.bin.index.json`, whose `weight_map` names the shard holding each
 * tensor and whose `metadata.total_size` is the tensors' storage bytes. The index's layout is
 * the safetensors one, so its parsing (and the rule that a shard stays inside the index's
 * folder) is shared with safetensors/sharded.ts.
 *
 * One view over all shards: opening reads the index and every shard's pickle (not its data),
 * checks that index and shards agree, and tensors are read from their shard on demand.
 */
import * as nodePath from 'node:path';

import { TensorioError } from '../../errors.js';
import { closeQuietly, openForRead, openForReadAsync } from '../../io/read.js';
import { ByteSource, runAsync, runSync, type Reads } from '../../io/source.js';
import { type LoadedArray } from '../../ndarray.js';
import { MAX_INDEX_SIZE, parseSafetensorsIndex, type SafetensorsIndex } from '../safetensors/sharded.js';
import { openTorchFile, openTorchFileSync, torchStorageByteLength } from './read.js';
import type { TorchFile, TorchFileSync, TorchReadOptions, TorchTensorInfo, TorchValue } from './types.js';

/** True for the index of a sharded checkpoint (`*.index.json`, as `pytorch_model.bin.index.json`). */
export function isTorchIndexPath(path: string): boolean {
  return path.toLowerCase().endsWith('.index.json');
}

/** The index, read whole once its size is known to be within the limit. */
function* indexReads(path: string, size: number): Reads<SafetensorsIndex> {
  if (size > MAX_INDEX_SIZE) throw new TensorioError('ERR_HEADER_TOO_LARGE', `index is ${size} bytes, over the limit of ${MAX_INDEX_SIZE}`, { path });
  return parseSafetensorsIndex(yield [0, size, 'PyTorch index'], path, 'PyTorch');
}

async function readIndex(path: string): Promise<SafetensorsIndex> {
  const { fd, size } = await openForReadAsync(path, 0);
  try {
    return await runAsync(indexReads(path, size), ByteSource.ofFile(fd, size, path));
  } finally {
    closeQuietly(fd);
  }
}

function readIndexSync(path: string): SafetensorsIndex {
  const { fd, size } = openForRead(path);
  try {
    return runSync(indexReads(path, size), ByteSource.ofFile(fd, size, path));
  } finally {
    closeQuietly(fd);
  }
}

function listed(names: readonly string[]): string {
  const shown = names.slice(0, 5).map((n) => `'${n}'`).join(', ');
  return names.length > 5 ? `${shown} and ${names.length - 5} more` : shown;
}

/** The shard files a sharded checkpoint's index names, in its order (paths beside the index). */
export async function torchShardPaths(indexPath: string): Promise<string[]> {
  return plan(indexPath, await readIndex(indexPath)).paths;
}

/** What the view needs of a shard, opened with the async or the sync reads. */
type ShardFile = TorchFile | TorchFileSync;

/** The shards to open, in the index's order, with the tensors the index puts in each. */
function plan(indexPath: string, index: SafetensorsIndex): { files: string[]; paths: string[]; byFile: Map<string, string[]> } {
  const folder = nodePath.dirname(indexPath);
  const byFile = new Map<string, string[]>();
  for (const [name, file] of index.weightMap) {
    const names = byFile.get(file);
    if (names) names.push(name);
    else byFile.set(file, [name]);
  }
  const files = [...byFile.keys()];
  return { files, paths: files.map((file) => nodePath.join(folder, file)), byFile };
}

/** A missing shard, named with the tensors the index puts in it. */
function missingShard(error: unknown, file: string, path: string, names: readonly string[]): unknown {
  if (error instanceof TensorioError && error.code === 'ERR_NOT_FOUND') {
    return new TensorioError('ERR_NOT_FOUND', `the index puts ${listed(names)} in shard '${file}', and there is no such file`, { path });
  }
  return error;
}

/** Checks that index and shards agree; the shard of every tensor. */
function matchShards<F extends ShardFile>(indexPath: string, files: readonly string[], byFile: Map<string, string[]>, shards: readonly F[]): Map<string, F> {
  const shardOf = new Map<string, F>();
  shards.forEach((shard, i) => {
    const file = files[i] as string;
    const expected = byFile.get(file) ?? [];
    const missing = expected.filter((name) => !shard.has(name));
    if (missing.length > 0) {
      throw new TensorioError('ERR_BAD_HEADER', `malformed PyTorch index: it puts ${listed(missing)} in shard '${file}', which does not hold ${missing.length === 1 ? 'it' : 'them'}`, { path: indexPath });
    }
    // A tensor the index does not list in this shard would be dropped without a word.
    const assigned = new Set(expected);
    const extra = shard.keys().filter((name) => !assigned.has(name));
    if (extra.length > 0) {
      throw new TensorioError('ERR_BAD_HEADER', `malformed PyTorch index: shard '${file}' holds ${listed(extra)}, which the index does not list in that shard`, { path: indexPath });
    }
    for (const name of expected) shardOf.set(name, shard);
  });
  return shardOf;
}

class ShardedView<F extends ShardFile> {
  readonly format = 'sharded';
  protected closed = false;

  constructor(
    readonly path: string,
    readonly index: SafetensorsIndex,
    protected readonly shards: F[],
    protected readonly shardOf: Map<string, F>,
  ) {}

  get byteOrder(): 'little' | 'big' | 'mixed' {
    const orders = new Set(this.shards.map((s) => s.byteOrder));
    return orders.size === 1 ? ([...orders][0] as 'little' | 'big') : 'mixed';
  }

  get files(): string[] {
    return this.shards.map((s) => s.path);
  }

  keys(): string[] {
    return [...this.index.weightMap.keys()];
  }

  has(name: string): boolean {
    return this.shardOf.has(name);
  }

  protected shard(name: string): F {
    if (this.closed) throw new TensorioError('ERR_CLOSED', 'the checkpoint is closed', { path: this.path });
    const shard = this.shardOf.get(name);
    if (!shard) throw new TensorioError('ERR_NOT_FOUND_IN_ARCHIVE', `no tensor '${name}'; the index lists ${listed(this.keys())}`, { path: this.path });
    return shard;
  }

  info(name: string): TorchTensorInfo {
    return this.shard(name).info(name);
  }

  storageByteLength(name: string): number {
    return torchStorageByteLength(this.shard(name), name);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const shard of this.shards) shard.close();
  }
}

function define(out: { [key: string]: TorchValue }, name: string, value: TorchValue): void {
  Object.defineProperty(out, name, { value, enumerable: true, writable: true, configurable: true });
}

class ShardedTorchFile extends ShardedView<TorchFile> implements TorchFile {
  get(name: string): Promise<LoadedArray> {
    return this.shard(name).get(name);
  }

  /** A record of every tensor in the index's order (a shard's tied weights still share memory). */
  async value(): Promise<TorchValue> {
    const out: { [key: string]: TorchValue } = {};
    for (const name of this.keys()) define(out, name, await this.get(name));
    return out;
  }
}

class ShardedTorchFileSync extends ShardedView<TorchFileSync> implements TorchFileSync {
  get(name: string): LoadedArray {
    return this.shard(name).get(name);
  }

  value(): TorchValue {
    const out: { [key: string]: TorchValue } = {};
    for (const name of this.keys()) define(out, name, this.get(name));
    return out;
  }
}

/**
 * Opens a sharded checkpoint from its index: every shard's pickle is read and checked (no
 * tensor data), and the view lists every tensor of every shard in the index's order.
 * @throws TensorioError `ERR_BAD_HEADER` (malformed index, a shard name that leaves the index's
 * folder, a tensor the index puts in a shard that does not hold it, a tensor of a shard the index
 * does not list there), `ERR_NOT_FOUND` (a shard file is missing, named with its tensors),
 * `ERR_HEADER_TOO_LARGE`, and every error of {@link openTorch} for each shard.
 */
export async function openShardedTorch(indexPath: string, options: TorchReadOptions = {}): Promise<TorchFile> {
  const index = await readIndex(indexPath);
  const { files, paths, byFile } = plan(indexPath, index);
  const results = await Promise.allSettled(paths.map((path) => openTorchFile(path, options)));
  const shards = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  try {
    results.forEach((result, i) => {
      if (result.status === 'rejected') throw missingShard(result.reason, files[i] as string, paths[i] as string, byFile.get(files[i] as string) ?? []);
    });
    return new ShardedTorchFile(indexPath, index, shards, matchShards(indexPath, files, byFile, shards));
  } catch (error) {
    for (const shard of shards) shard.close();
    throw error;
  }
}

/** Synchronous {@link openShardedTorch}. */
export function openShardedTorchSync(indexPath: string, options: TorchReadOptions = {}): TorchFileSync {
  const index = readIndexSync(indexPath);
  const { files, paths, byFile } = plan(indexPath, index);
  const shards: TorchFileSync[] = [];
  try {
    paths.forEach((path, i) => {
      try {
        shards.push(openTorchFileSync(path, options));
      } catch (error) {
        throw missingShard(error, files[i] as string, path, byFile.get(files[i] as string) ?? []);
      }
    });
    return new ShardedTorchFileSync(indexPath, index, shards, matchShards(indexPath, files, byFile, shards));
  } catch (error) {
    for (const shard of shards) shard.close();
    throw error;
  }
}
