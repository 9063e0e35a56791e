/**
 * The lazy view over one safetensors file or the shards of a checkpoint: name lookup (through
 * the index for shards), info, whole-tensor and sliced reads, close.
 */
import * as nodePath from 'node:path';

import { TensorioError } from '../../errors.js';
import type { LoadedArray } from '../../ndarray.js';
import type { Shard } from './file.js';
import type { SafetensorsEntry } from './header.js';
import { compareCodePoints, type SafetensorsIndex } from './sharded.js';
import { planSlice } from './slice.js';
import type { SafetensorsFile, SafetensorsTensorInfo, SliceRange } from './types.js';

export class SafetensorsView implements SafetensorsFile {
  readonly path: string;
  readonly metadata: Record<string, string>;
  readonly index: SafetensorsIndex | undefined;
  private readonly shards: Shard[];
  // Sharded checkpoints only: which shard holds each tensor, in the index's order. A single
  // file's tensors are looked up in its header (see ParsedHeader).
  private readonly shardByName: Map<string, Shard> | undefined;
  private closed = false;

  constructor(path: string, shards: Shard[], index: SafetensorsIndex | undefined, indexPath?: string) {
    this.path = path;
    this.shards = shards;
    this.index = index;
    this.metadata = shards[0]?.header.metadata ?? {};
    if (!index) return;
    this.shardByName = new Map();
    const byPath = new Map(shards.map((shard) => [shard.path, shard]));
    const folder = nodePath.dirname(indexPath ?? path);
    for (const [name, file] of index.weightMap) {
      const shard = byPath.get(nodePath.join(folder, file));
      if (!shard?.header.has(name)) {
        throw new TensorioError('ERR_BAD_HEADER', `malformed safetensors index: it puts tensor '${name}' in '${file}', which does not hold it`, { path: indexPath ?? path });
      }
      this.shardByName.set(name, shard);
    }
  }

  /** The shard holding `name`, or undefined. */
  private shardOf(name: string): Shard | undefined {
    if (this.shardByName) return this.shardByName.get(name);
    const shard = this.shards[0] as Shard;
    return shard.header.has(name) ? shard : undefined;
  }

  get files(): readonly string[] {
    return this.shards.map((shard) => shard.path);
  }

  get mapped(): boolean {
    return this.shards.length > 0 && this.shards.every((shard) => shard.mapped);
  }

  get copyReason(): string | undefined {
    return this.shards.find((shard) => shard.mapReason !== undefined)?.mapReason;
  }

  keys(): string[] {
    const names = this.shardByName ? [...this.shardByName.keys()] : [...(this.shards[0] as Shard).header.names];
    return names.sort(compareCodePoints);
  }

  offsetKeys(): string[] {
    if (!this.shardByName) return [...(this.shards[0] as Shard).header.names];
    const order: string[] = [];
    for (const shard of this.shards) {
      for (const name of shard.header.names) if (this.shardByName.get(name) === shard) order.push(name);
    }
    return order;
  }

  has(name: string): boolean {
    return this.shardOf(name) !== undefined;
  }

  private lookup(name: string): { shard: Shard; entry: SafetensorsEntry } {
    if (this.closed) throw new TensorioError('ERR_CLOSED', 'the safetensors file is closed', { path: this.path });
    const shard = this.shardOf(name);
    if (!shard) {
      const count = this.shardByName?.size ?? (this.shards[0] as Shard).header.names.length;
      throw new TensorioError('ERR_NOT_FOUND_IN_ARCHIVE', `no tensor named '${String(name).slice(0, 200)}' (the file holds ${count})`, { path: this.path });
    }
    return { shard, entry: shard.header.entry(name) };
  }

  info(name: string): SafetensorsTensorInfo {
    return this.locate(name).info;
  }

  /** The shard holding `name` and the tensor's {@link info} (for the whole-file reader). */
  locate(name: string): { shard: Shard; info: SafetensorsTensorInfo } {
    const { shard, entry } = this.lookup(name);
    const [begin, end] = entry.dataOffsets;
    const info: SafetensorsTensorInfo = {
      name: entry.name,
      dtype: entry.dtype,
      shape: [...entry.shape],
      dataOffsets: [begin, end],
      file: shard.path,
      byteOffset: shard.header.dataStart + begin,
      byteLength: end - begin,
    };
    return { shard, info };
  }

  get(name: string): Promise<LoadedArray> {
    try {
      const { shard, entry } = this.lookup(name);
      const length = entry.dataOffsets[1] - entry.dataOffsets[0];
      return shard.load(entry, [...entry.shape], [{ start: 0, length }], length);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  getSync(name: string): LoadedArray {
    const { shard, entry } = this.lookup(name);
    const length = entry.dataOffsets[1] - entry.dataOffsets[0];
    return shard.loadSync(entry, [...entry.shape], [{ start: 0, length }], length);
  }

  getSlice(name: string, ranges: readonly SliceRange[]): Promise<LoadedArray> {
    try {
      const { shard, entry } = this.lookup(name);
      const plan = planSlice(entry, ranges, shard.path);
      return shard.load(entry, plan.shape, plan.runs, plan.length);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  getSliceSync(name: string, ranges: readonly SliceRange[]): LoadedArray {
    const { shard, entry } = this.lookup(name);
    const plan = planSlice(entry, ranges, shard.path);
    return shard.loadSync(entry, plan.shape, plan.runs, plan.length);
  }

  close(options: { unmap?: boolean } = {}): void {
    this.closed = true;
    for (const shard of this.shards) shard.close(options.unmap === true);
  }
}

