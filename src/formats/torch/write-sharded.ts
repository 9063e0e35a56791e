/**
 * Sharded PyTorch checkpoints written as `transformers`' `save_pretrained(safe_serialization=
 * False)` writes them: `pytorch_model-00001-of-0000N.bin` ... (each a `torch.save` of part of
 * the state dict) and `pytorch_model.bin.index.json` (`weight_map`, `metadata.total_size`, the
 * safetensors index layout). The split is `huggingface_hub.split_torch_state_dict_into_shards`'s:
 * in the state dict's order, by storage size, a tensor on a storage already placed joining the
 * shard of that storage (tied weights are never split across files), and `total_size` counting
 * each storage once.
 */
import * as fs from 'node:fs';
import * as nodePath from 'node:path';

import { TensorioError } from '../../errors.js';
import { AtomicWriter, type WriteOptions } from '../../io/atomic-writer.js';
import { type NdArray } from '../../ndarray.js';
import { isNdArrayLike } from '../pickle/pickler.js';
import { encodeSafetensorsIndex, INDEX_SUFFIX, parseShardSize, planShards, shardFileName, shardNamePattern } from '../safetensors/sharded.js';
import { planStorages } from './storage-plan.js';

// writeTorch's one-file writer, passed in so this module does not import write.ts back.
type WriteOne = (path: string, value: never, options: WriteOptions) => Promise<void>;

/** The state dict's entries, or an error saying a sharded checkpoint holds nothing else. */
function stateDictEntries(value: unknown, path: string): [string, NdArray][] {
  const entries: [unknown, unknown][] =
    value instanceof Map ? [...(value as ReadonlyMap<unknown, unknown>)] : value !== null && typeof value === 'object' && !Array.isArray(value) && !isNdArrayLike(value) ? Object.entries(value) : [];
  const bad = entries.find(([k, v]) => typeof k !== 'string' || !isNdArrayLike(v));
  if (entries.length === 0 || bad) {
    const why = entries.length === 0 ? 'it is not a record or Map of tensors, or it is empty' : `'${String(bad?.[0])}' is not a tensor named by a string`;
    throw new TensorioError('ERR_INVALID_ARGUMENT', `maxShardSize shards a state dict (a record or Map of name → NdArray), and ${why}`, { path });
  }
  return entries as [string, NdArray][];
}

/** The shards, each a list of names in the state dict's order, and the storages' bytes in total. */
function planTorchShards(entries: [string, NdArray][], limit: number): { shards: string[][]; totalSize: number } {
  const placed = planStorages(entries.map(([, a]) => a));
  const firstOn = new Map<unknown, string>();
  const followers = new Map<string, string[]>();
  const sizes: [string, number][] = [];
  for (const [name, array] of entries) {
    const storage = placed.get(array)?.storage;
    const first = storage && firstOn.get(storage);
    if (first !== undefined) (followers.get(first) as string[]).push(name);
    else {
      if (storage) firstOn.set(storage, name);
      followers.set(name, []);
      sizes.push([name, storage ? storage.end - storage.start : array.data.byteLength]);
    }
  }
  const shards = planShards(sizes, limit).map((names) => names.flatMap((n) => [n, ...(followers.get(n) ?? [])]));
  return { shards, totalSize: sizes.reduce((sum, [, size]) => sum + size, 0) };
}

/** Removes shards and the index of an earlier save of `path` that this one did not write. */
function removeEarlier(path: string, keep: ReadonlySet<string>, index: string | undefined): void {
  const folder = nodePath.dirname(path);
  const pattern = shardNamePattern(path);
  let doomed: string[] = [];
  try {
    doomed = fs.readdirSync(folder).filter((name) => pattern.test(name) && !keep.has(name)).map((name) => nodePath.join(folder, name));
  } catch {
    return;
  }
  // A stale shard is harmless once the index moved on; one already gone is fine.
  for (const file of index === undefined ? doomed : [...doomed, index]) fs.rmSync(file, { force: true });
}

/**
 * Writes a state dict as shards of at most `maxShardSize` bytes and their index (see the
 * module's comment); one that fits one shard goes to `path` alone, as transformers writes it.
 * Each file is written atomically, the index last. Returns the files written.
 */
export async function writeTorchShards(path: string, value: unknown, maxShardSize: number | string, options: WriteOptions, writeOne: WriteOne): Promise<string[]> {
  const limit = parseShardSize(maxShardSize);
  const entries = stateDictEntries(value, path);
  const byName = new Map(entries);
  const { shards, totalSize } = planTorchShards(entries, limit);
  const indexPath = path + INDEX_SUFFIX;
  if (shards.length <= 1) {
    await writeOne(path, value as never, options);
    removeEarlier(path, new Set(), indexPath);
    return [path];
  }
  const weightMap = new Map<string, string>();
  const files: string[] = [];
  for (const [i, names] of shards.entries()) {
    const file = shardFileName(path, i, shards.length);
    const shard: Record<string, NdArray> = {};
    for (const name of names) {
      Object.defineProperty(shard, name, { value: byName.get(name), enumerable: true, writable: true, configurable: true });
      weightMap.set(name, file);
    }
    const target = nodePath.join(nodePath.dirname(path), file);
    await writeOne(target, shard as never, options);
    files.push(target);
  }
  const out = await AtomicWriter.open(indexPath, options);
  try {
    await out.write([encodeSafetensorsIndex(totalSize, weightMap)]);
    await out.commit();
  } catch (error) {
    await out.abort();
    throw error;
  }
  removeEarlier(path, new Set(files.map((f) => nodePath.basename(f))), undefined);
  return [...files, indexPath];
}
