/**
 * The tar layout of `torch.save` before torch 0.1.10: a tar archive (tar.ts) of four members,
 * read as torch/serialization.py's `_legacy_load` reads its tar branch, with the weights-only
 * profile for every pickle (torch.load itself refuses this layout with `weights_only=True`):
 *
 * - `sys_info`: a pickle of `{protocol_version, little_endian, type_sizes}`;
 * - `storages`: a pickle of the storage count, then per storage a pickle of
 *   `(key, location, storage class)`, an int64 element count and the raw bytes, then a pickle of
 *   the list of views `(view key, root key, element offset, element count)`;
 * - `tensors`: a pickle of the tensor count, then per tensor a pickle of `(key, storage key,
 *   tensor class)` and its metadata: int32 ndim, 4 unused bytes, ndim int64 sizes, ndim int64
 *   strides, an int64 storage offset (all little-endian);
 * - `pickle`: the object, whose persistent ids are the keys (as strings) of those tensors and
 *   storages.
 *
 * Every count, size and offset is checked against its member's end before it is used.
 */
import { TensorioError } from '../../errors.js';
import { type Reads } from '../../io/source.js';
import type { PyObject } from '../pickle/values.js';
import { pickleAt, placedLayout, storageCount, type FileFacts, type Layout, type Placement } from './layout.js';
import { type Ref } from './objects.js';
import { checkExtent, nonNegativeInt, storageClassOf, StorageRef, TensorRef, torchProfile } from './profile.js';
import { tarDirectory, type TarMember } from './tar.js';
import { type TorchReadOptions } from './types.js';

/** The members torch wrote, in the order they are read. */
const MEMBERS = ['sys_info', 'storages', 'tensors', 'pickle'] as const;
/** The small record pickles are read 256 bytes at first (a 64 KiB read would mostly be storage data). */
const RECORD_READ = 256;
const MAX_NDIM = 64;

/** True when a tar header at the start (`prefix`, at least 263 bytes) looks like torch's: ustar, first member `sys_info` or a pax header. */
export function looksLikeTorchTar(prefix: Uint8Array): boolean {
  if (prefix.length < 263 || new TextDecoder('latin1').decode(prefix.subarray(257, 262)) !== 'ustar') return false;
  const name = new TextDecoder('latin1').decode(prefix.subarray(0, 16));
  return name.startsWith('sys_info\0') || (prefix[156] === 0x78 && name.startsWith('././@PaxHeader'));
}

function badHeader(path: string, what: string): TensorioError {
  return new TensorioError('ERR_BAD_HEADER', what, { path });
}

/** A key as torch wrote it (an int, or its decimal string in a persistent id), as one string. */
function keyOf(value: PyObject, what: string, path: string): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'bigint' || (typeof value === 'number' && Number.isSafeInteger(value))) return String(value);
  if (value instanceof Uint8Array) return new TextDecoder('latin1').decode(value);
  throw new TensorioError('ERR_BAD_VALUE', `${what} is not an integer key`, { path });
}

function tuple(value: PyObject, length: number, what: string, path: string): PyObject[] {
  if (!Array.isArray(value) || value.length !== length) throw new TensorioError('ERR_BAD_VALUE', `${what} is not a tuple of ${length} items`, { path });
  return value;
}

/** Opens the tar layout: the directory, sys_info, the storages' and tensors' records, then the object. */
export function* tarLayout(file: FileFacts, options: TorchReadOptions): Reads<Layout> {
  const path = file.path;
  const { members, ended } = yield* tarDirectory(file.size, path);
  const byName = new Map<string, TarMember>();
  for (const member of members) {
    if (byName.has(member.name)) throw badHeader(path, `the tar archive holds member '${member.name}' twice`);
    byName.set(member.name, member);
  }
  const [sysInfo, storages, tensors, main] = MEMBERS.map((name) => {
    const member = byName.get(name);
    if (!member) {
      if (!ended) throw new TensorioError('ERR_TRUNCATED', `the tar archive ends without its end block and without member '${name}'`, { path });
      throw badHeader(path, `not a PyTorch tar archive: no member '${name}'`);
    }
    if (member.type !== '0') throw badHeader(path, `tar member '${name}' is not a regular file (type '${member.type}')`);
    return member;
  }) as [TarMember, TarMember, TarMember, TarMember];
  const profile = torchProfile(path);
  // The reading position in each member, advanced record by record.
  const cursor = (member: TarMember) => {
    const end = member.offset + member.size;
    let at = member.offset;
    return {
      *pickle(): Reads<PyObject> {
        const read = yield* pickleAt(file, at, end, options, profile, RECORD_READ);
        at = read.end;
        return read.value;
      },
      *bytes(length: number, what: string): Reads<Uint8Array> {
        if (at + length > end) throw new TensorioError('ERR_TRUNCATED', `tar member '${member.name}' ends inside the ${what}: ${length} bytes needed at offset ${at}, ${end - at} left`, { path });
        const bytes = yield [at, length, what];
        at += length;
        return bytes;
      },
      *storage(key: string, itemSize: number): Reads<Placement> {
        const place = yield* storageCount(file, at, end, key, itemSize);
        at = place.offset + place.length;
        return place;
      },
    };
  };

  const info = yield* cursor(sysInfo).pickle();
  if (info !== null && typeof info === 'object' && (info as { little_endian?: unknown }).little_endian === false) {
    // torch wrote storages in the host's order then, and today's torch.load reads them as little-endian.
    throw new TensorioError('ERR_UNSUPPORTED_VERSION', 'a tar-layout file written on a big-endian machine (sys_info says little_endian False): its storages are in that order, which torch.load misreads too', { path });
  }

  // Tensors and storages by key: what the object's persistent ids name.
  const objects = new Map<string, Ref>();
  const define = (key: string, ref: Ref): void => {
    if (objects.has(key)) throw badHeader(path, `the tar layout defines key '${key}' twice`);
    objects.set(key, ref);
  };
  const places = new Map<string, Placement>();
  const s = cursor(storages);
  const storageCountValue = nonNegativeInt(yield* s.pickle(), 'the storage count', path);
  for (let i = 0; i < storageCountValue; i++) {
    const [rawKey, , type] = tuple(yield* s.pickle(), 3, `storage record ${i}`, path);
    const key = keyOf(rawKey as PyObject, `the key of storage record ${i}`, path);
    const { dtype, itemSize } = storageClassOf(type as PyObject, `storage record '${key}'`, path);
    const place = yield* s.storage(key, itemSize);
    places.set(key, place);
    define(key, new StorageRef(key, dtype, itemSize, place.length / itemSize, null));
  }
  const views = yield* s.pickle();
  if (!Array.isArray(views)) throw new TensorioError('ERR_BAD_VALUE', 'the storage views are not a list', { path });
  for (const view of views) {
    const [target, rootKey, offset, numel] = tuple(view, 4, 'a storage view', path);
    const root = objects.get(keyOf(rootKey as PyObject, 'the root of a storage view', path));
    if (!(root instanceof StorageRef) || root.view) throw badHeader(path, `a storage view names root '${String(rootKey)}', which is not a stored storage`);
    const at = { offset: nonNegativeInt(offset as PyObject, 'a storage view offset', path), size: nonNegativeInt(numel as PyObject, 'a storage view size', path) };
    checkExtent(at.offset, [at.size], [1], root.numel, `storage view of '${root.key}'`, path);
    define(keyOf(target as PyObject, 'a storage view key', path), new StorageRef(root.key, root.dtype, root.itemSize, root.numel, at));
  }

  const t = cursor(tensors);
  const tensorCount = nonNegativeInt(yield* t.pickle(), 'the tensor count', path);
  for (let i = 0; i < tensorCount; i++) {
    const [rawKey, storageKey] = tuple(yield* t.pickle(), 3, `tensor record ${i}`, path);
    const key = keyOf(rawKey as PyObject, `the key of tensor record ${i}`, path);
    const head = yield* t.bytes(8, `dimensions of tensor '${key}'`);
    const ndim = new DataView(head.buffer, head.byteOffset, 8).getInt32(0, true);
    if (ndim < 0 || ndim > MAX_NDIM) throw new TensorioError('ERR_BAD_VALUE', `tensor '${key}' has ${ndim} dimensions, expected 0 to ${MAX_NDIM}`, { path });
    const body = yield* t.bytes(16 * ndim + 8, `sizes and strides of tensor '${key}'`);
    const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
    const int = (at: number, what: string): number => {
      const value = view.getBigInt64(at, true);
      if (value < 0n || value > BigInt(Number.MAX_SAFE_INTEGER)) throw new TensorioError('ERR_BAD_VALUE', `tensor '${key}': its ${what} is ${value}`, { path });
      return Number(value);
    };
    const shape = Array.from({ length: ndim }, (_, d) => int(8 * d, `size ${d}`));
    const stride = Array.from({ length: ndim }, (_, d) => int(8 * (ndim + d), `stride ${d}`));
    const offset = int(16 * ndim, 'storage offset');
    const storage = storageKey === null ? undefined : objects.get(keyOf(storageKey as PyObject, `the storage of tensor '${key}'`, path));
    if (!(storage instanceof StorageRef)) throw badHeader(path, `tensor '${key}' names storage '${String(storageKey)}', which the storages member does not hold`);
    checkExtent(offset, shape, stride, storage.view ? storage.view.size : storage.numel, `tensor '${key}' on storage '${storage.key}'`, path);
    define(key, new TensorRef(storage, storage.dtype as NonNullable<StorageRef['dtype']>, offset + (storage.view?.offset ?? 0), shape, stride, false));
  }

  const persistentLoad = (pid: PyObject): Ref => {
    // torch wrote (class, source file, source) for an nn.Module class, which it then imports.
    if (Array.isArray(pid)) throw new TensorioError('ERR_UNSAFE_PICKLE', 'the pickle names a module class by a persistent id (a pickled nn.Module), which weights_only refuses; nothing was run', { path });
    const key = keyOf(pid, 'a persistent id', path);
    const ref = objects.get(key);
    if (!ref) throw badHeader(path, `the pickle names object '${key.slice(0, 40)}', which the tensors and storages members do not hold`);
    return ref;
  };
  const root = yield* pickleAt(file, main.offset, main.offset + main.size, options, { ...profile, persistentLoad });
  return placedLayout(file, 'tar', root.value, places, 'the storages member');
}
