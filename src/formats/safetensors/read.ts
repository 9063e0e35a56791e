/**
 * Reading whole safetensors files: every tensor of a file or checkpoint (one buffer per file,
 * or views into mappings), and a file already in memory (decodeSafetensors). The plan (which
 * bytes of which file, and the arrays over them) is written once; the sync and async readers
 * differ only in how they fill the buffers.
 */
import { dtypeInfo } from '../../dtype.js';
import { allocateForRead } from '../../io/read.js';
import { ByteSource, runSync } from '../../io/source.js';
import type { LoadedArray } from '../../ndarray.js';
import { checkOptions, keysOf } from '../../options.js';
import { elementCount, type Shard } from './file.js';
import { headerReads, ownSet, type SafetensorsEntry } from './header.js';
import { openView, openViewSync } from './open.js';
import { compareCodePoints } from './sharded.js';
import type { SafetensorsContents, SafetensorsReadOptions, SafetensorsTensorInfo } from './types.js';
import type { SafetensorsView } from './view.js';

/** The options readSafetensors takes (checked: a misspelt key is ERR_INVALID_ARGUMENT). */
export const READ_SAFETENSORS_OPTIONS = keysOf<SafetensorsReadOptions>({ mmap: true });

// Concurrent reads keep the disk (or the page cache copy) busy while JS builds the next one.
const READ_CONCURRENCY = 4;

/**
 * Reads every tensor of a safetensors file or sharded checkpoint (see {@link openSafetensors}
 * for which paths are sharded).
 * @param options `mmap` (default false): map and return views, copying only unaligned tensors.
 * @returns `{ tensors, metadata }`; each array carries `mapped` and, when mapping was asked
 * for but not used, `copyReason`.
 * @throws TensorioError as {@link openSafetensors}.
 */
export async function readSafetensors(path: string, options: SafetensorsReadOptions = {}): Promise<SafetensorsContents> {
  checkOptions(options, READ_SAFETENSORS_OPTIONS, 'readSafetensors', path);
  const view = await openView(path, { mmap: options.mmap ?? false });
  try {
    const names = view.keys();
    if (!options.mmap) {
      const files = filesOf(view, names);
      await Promise.all(files.map((f) => f.shard.readIntoAsync(f.start, new Uint8Array(f.buffer), 'safetensors data')));
      return contents(view, names, arraysIn(files, names));
    }
    const loaded = new Array<LoadedArray>(names.length);
    let next = 0;
    const worker = async () => {
      while (next < names.length) {
        const i = next++;
        loaded[i] = await view.get(names[i] as string);
      }
    };
    await Promise.all(Array.from({ length: Math.min(READ_CONCURRENCY, names.length) }, worker));
    return contents(view, names, loaded);
  } finally {
    view.close({ unmap: false });
  }
}

/** Synchronous {@link readSafetensors}. */
export function readSafetensorsSync(path: string, options: SafetensorsReadOptions = {}): SafetensorsContents {
  checkOptions(options, READ_SAFETENSORS_OPTIONS, 'readSafetensorsSync', path);
  const view = openViewSync(path, { mmap: options.mmap ?? false });
  try {
    const names = view.keys();
    if (!options.mmap) {
      const files = filesOf(view, names);
      for (const f of files) f.shard.readInto(f.start, new Uint8Array(f.buffer), 'safetensors data');
      return contents(view, names, arraysIn(files, names));
    }
    return contents(view, names, names.map((name) => view.getSync(name)));
  } finally {
    view.close({ unmap: false });
  }
}

/** One file's share of an eager read: the byte range its tensors cover, and its buffer. */
interface FileRead {
  shard: Shard;
  start: number;
  buffer: ArrayBuffer;
  infos: SafetensorsTensorInfo[];
}

/**
 * An eager read puts each file's data in one buffer, filled by one read, with tensors as
 * views into it: the kernel copies at page-cache speed into memory that (past 4 MiB) gets
 * huge pages, where a buffer per tensor paid a page fault per 4 KiB page. The price: a tensor
 * keeps its file's buffer alive. Tensors whose offset is not aligned for their dtype (files
 * whose writer did not pad the header) are copied out.
 */
function filesOf(view: SafetensorsView, names: string[]): FileRead[] {
  const byFile = new Map<Shard, SafetensorsTensorInfo[]>();
  for (const name of names) {
    const { shard, info } = view.locate(name);
    const list = byFile.get(shard) ?? [];
    list.push(info);
    byFile.set(shard, list);
  }
  return [...byFile].map(([shard, infos]) => {
    let start = Infinity;
    let end = 0;
    for (const info of infos) {
      start = Math.min(start, info.byteOffset);
      end = Math.max(end, info.byteOffset + info.byteLength);
    }
    // Every info is checked before any buffer is made (ERR_TOO_LARGE for a giant tensor).
    for (const info of infos) elementCount(info, info.byteLength, shard.path);
    return { shard, start, buffer: allocateForRead(end - start), infos };
  });
}

/** The contents: `arrays[i]` is the tensor named `names[i]`. */
function contents(view: SafetensorsView, names: string[], arrays: LoadedArray[]): SafetensorsContents {
  const tensors: Record<string, LoadedArray> = {};
  names.forEach((name, i) => ownSet(tensors, name, arrays[i] as LoadedArray));
  return { tensors, metadata: view.metadata };
}

/** The arrays of `names` over the buffers of an eager read. */
function arraysIn(files: FileRead[], names: string[]): LoadedArray[] {
  const found = new Map<string, LoadedArray>();
  for (const { shard, start, buffer, infos } of files) {
    for (const info of infos) found.set(info.name, arrayAt(buffer, info.byteOffset - start, info, info.byteLength, shard.path));
  }
  return names.map((name) => found.get(name) as LoadedArray);
}

/** A tensor's array over `buffer` at `offset`: a view when aligned for its dtype, else a copy. */
function arrayAt(buffer: ArrayBufferLike, offset: number, entry: Pick<SafetensorsEntry, 'name' | 'dtype' | 'shape'>, byteLength: number, file: string): LoadedArray {
  const info = dtypeInfo(entry.dtype);
  const elements = elementCount(entry, byteLength, file);
  // A copy into a fresh buffer (Buffer#slice would return a view, so it is not used).
  const data =
    offset % info.array.BYTES_PER_ELEMENT === 0
      ? new info.array(buffer as ArrayBuffer, offset, elements)
      : new info.array(new Uint8Array(buffer, offset, byteLength).slice().buffer, 0, elements);
  return { dtype: entry.dtype, shape: entry.shape, data, mapped: false };
}

/**
 * Parses a whole safetensors file held in memory (a fetched response, a buffer). Arrays are
 * views into `bytes` where aligned, else copies.
 * @throws TensorioError as {@link parseSafetensorsHeader} and {@link safetensorsHeaderLength}.
 */
export function decodeSafetensors(bytes: Uint8Array, file = '<buffer>'): SafetensorsContents {
  const header = runSync(headerReads(bytes.length, file), ByteSource.ofBytes(bytes, file));
  const tensors: Record<string, LoadedArray> = {};
  for (const name of [...header.names].sort(compareCodePoints)) {
    const entry = header.entry(name);
    const [begin, end] = entry.dataOffsets;
    ownSet(tensors, name, arrayAt(bytes.buffer, bytes.byteOffset + header.dataStart + begin, { ...entry, shape: [...entry.shape] }, end - begin, file));
  }
  return { tensors, metadata: header.metadata };
}
