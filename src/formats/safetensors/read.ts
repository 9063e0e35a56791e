/**
 * Reading whole safetensors files: every tensor of a file or checkpoint (one buffer per file,
 * or views into mappings), and a file already in memory (decodeSafetensors).
 */
import { dtypeInfo } from '../../dtype.js';
import { TensorioError } from '../../errors.js';
import { allocateForRead, closeQuietly, openForRead, openForReadAsync, readExactly, readExactlySync } from '../../io.js';
import type { LoadedArray } from '../../ndarray.js';
import { checkOptions, OPTIONS } from '../../options.js';
import { MAX_TYPED_ARRAY_LENGTH } from './file.js';
import { ownSet, parseSafetensorsHeader, safetensorsHeaderLength } from './header.js';
import { openSafetensors, openSafetensorsSync } from './open.js';
import { compareCodePoints } from './sharded.js';
import type { SafetensorsContents, SafetensorsFile, SafetensorsReadOptions, SafetensorsTensorInfo } from './types.js';

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
  checkOptions(options, OPTIONS.readSafetensors, 'readSafetensors', path);
  const view = await openSafetensors(path, { mmap: options.mmap ?? false });
  try {
    const names = view.keys();
    if (!options.mmap) {
      const arrays = await Promise.all(filesOf(view, names).map(async ({ file, start, length, infos }) => {
        const buffer = allocateForRead(length);
        const { fd } = await openForReadAsync(file, 0);
        try {
          await readExactly(fd, start, new Uint8Array(buffer), file, 'safetensors data');
        } finally {
          closeQuietly(fd);
        }
        return viewsInto(buffer, start, infos, file);
      }));
      return { tensors: inNameOrder(names, arrays), metadata: view.metadata };
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
    const tensors: Record<string, LoadedArray> = {};
    names.forEach((name, i) => ownSet(tensors, name, loaded[i] as LoadedArray));
    return { tensors, metadata: view.metadata };
  } finally {
    view.close({ unmap: false });
  }
}

/**
 * An eager read puts each file's data in one buffer, filled by one read, with tensors as
 * views into it: the kernel copies at page-cache speed into memory that (past 4 MiB) gets
 * huge pages, where a buffer per tensor paid a page fault per 4 KiB page. The price: a tensor
 * keeps its file's buffer alive. Tensors whose offset is not aligned for their dtype (files
 * whose writer did not pad the header) are copied out.
 */
function filesOf(view: SafetensorsFile, names: string[]): Array<{ file: string; start: number; length: number; infos: SafetensorsTensorInfo[] }> {
  const byFile = new Map<string, SafetensorsTensorInfo[]>();
  for (const name of names) {
    const info = view.info(name);
    const list = byFile.get(info.file) ?? [];
    list.push(info);
    byFile.set(info.file, list);
  }
  return [...byFile].map(([file, infos]) => {
    let start = Infinity;
    let end = 0;
    for (const info of infos) {
      start = Math.min(start, info.byteOffset);
      end = Math.max(end, info.byteOffset + info.byteLength);
    }
    return { file, start, length: end - start, infos };
  });
}

function inNameOrder(names: string[], parts: Record<string, LoadedArray>[]): Record<string, LoadedArray> {
  const found = new Map<string, LoadedArray>();
  for (const part of parts) for (const [name, array] of Object.entries(part)) found.set(name, array);
  const tensors: Record<string, LoadedArray> = {};
  for (const name of names) ownSet(tensors, name, found.get(name) as LoadedArray);
  return tensors;
}

function viewsInto(buffer: ArrayBuffer, start: number, infos: SafetensorsTensorInfo[], file: string): Record<string, LoadedArray> {
  const tensors: Record<string, LoadedArray> = {};
  for (const entry of infos) {
    const info = dtypeInfo(entry.dtype);
    const elements = (entry.byteLength / info.itemSize) * info.lanes;
    if (elements > MAX_TYPED_ARRAY_LENGTH) {
      throw new TensorioError('ERR_TOO_LARGE', `tensor '${entry.name}' has ${elements} elements, more than one TypedArray holds here (${MAX_TYPED_ARRAY_LENGTH}); read it in parts with getSlice`, { path: file });
    }
    const offset = entry.byteOffset - start;
    const data = offset % info.array.BYTES_PER_ELEMENT === 0 ? new info.array(buffer, offset, elements) : new info.array(buffer.slice(offset, offset + entry.byteLength), 0, elements);
    ownSet(tensors, entry.name, { dtype: entry.dtype, shape: entry.shape, data, mapped: false });
  }
  return tensors;
}

/** Synchronous {@link readSafetensors}. */
export function readSafetensorsSync(path: string, options: SafetensorsReadOptions = {}): SafetensorsContents {
  checkOptions(options, OPTIONS.readSafetensors, 'readSafetensorsSync', path);
  const view = openSafetensorsSync(path, { mmap: options.mmap ?? false });
  try {
    if (!options.mmap) {
      const arrays = filesOf(view, view.keys()).map(({ file, start, length, infos }) => {
        const buffer = allocateForRead(length);
        const { fd } = openForRead(file);
        try {
          readExactlySync(fd, start, new Uint8Array(buffer), file, 'safetensors data');
        } finally {
          closeQuietly(fd);
        }
        return viewsInto(buffer, start, infos, file);
      });
      return { tensors: inNameOrder(view.keys(), arrays), metadata: view.metadata };
    }
    const tensors: Record<string, LoadedArray> = {};
    for (const name of view.keys()) ownSet(tensors, name, view.getSync(name));
    return { tensors, metadata: view.metadata };
  } finally {
    view.close({ unmap: false });
  }
}

// A copy into a fresh buffer (Buffer#slice would return a view, so it is not used).
function copyOf(bytes: Uint8Array): ArrayBuffer {
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return copy.buffer;
}

/**
 * Parses a whole safetensors file held in memory (a fetched response, a buffer). Arrays are
 * views into `bytes` where aligned, else copies.
 * @throws TensorioError as {@link parseSafetensorsHeader} and {@link safetensorsHeaderLength}.
 */
export function decodeSafetensors(bytes: Uint8Array, file = '<buffer>'): SafetensorsContents {
  const n = safetensorsHeaderLength(bytes, bytes.length, file);
  const header = parseSafetensorsHeader(bytes.subarray(8, 8 + n), bytes.length, file);
  const tensors: Record<string, LoadedArray> = {};
  for (const entry of [...header.entries].sort((a, b) => compareCodePoints(a.name, b.name))) {
    const info = dtypeInfo(entry.dtype);
    const [begin, end] = entry.dataOffsets;
    const start = bytes.byteOffset + header.dataStart + begin;
    const elements = ((end - begin) / info.itemSize) * info.lanes;
    const data =
      start % info.array.BYTES_PER_ELEMENT === 0
        ? new info.array(bytes.buffer, start, elements)
        : new info.array(copyOf(bytes.subarray(header.dataStart + begin, header.dataStart + end)), 0, elements);
    ownSet(tensors, entry.name, { dtype: entry.dtype, shape: [...entry.shape], data, mapped: false });
  }
  return { tensors, metadata: header.metadata };
}
