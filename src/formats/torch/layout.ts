/**
 * What every layout of a PyTorch file gives the reader (zip-layout.ts, legacy-layout.ts,
 * tar-layout.ts), and the pieces the layouts share: a pickle of unknown length unpickled where
 * it starts, and a storage read at a known place.
 *
 * A layout is sans-IO: its walkers yield the reads they need (`Reads<T>` of src/io/source.ts)
 * and receive their bytes, so the synchronous and the asynchronous reader (read.ts) are the
 * same code, driven by `runSync` or `runAsync` over the file's one ByteSource. A walker never
 * reads the file itself; it only knows the facts below.
 */
import { TensorioError } from '../../errors.js';
import { type Reads } from '../../io/source.js';
import type { UnpickleProfile } from '../pickle/allowlist.js';
import { unpickle } from '../pickle/unpickler.js';
import type { PyObject } from '../pickle/values.js';
import { type StorageRef } from './profile.js';
import { type StorageBytes } from './tensor.js';
import { type TorchReadOptions } from './types.js';

/** What a layout's walkers know of the file (its bytes come only through their reads). */
export interface FileFacts {
  readonly path: string;
  readonly size: number;
  /** True when the source is a mapping of the file: reads are then views into it. */
  readonly mapped: boolean;
}

/** An opened PyTorch file: the unpickled object and how to read the storages it names. */
export interface Layout {
  readonly format: 'zip' | 'legacy' | 'tar';
  readonly bigEndian: boolean;
  /** The saved object, with {@link StorageRef}s and `TensorRef`s for its storages and tensors. */
  readonly root: PyObject;
  /** Reads one storage (a view of the mapping when the file is mapped and the storage can be). */
  storage(ref: StorageRef): Reads<StorageBytes>;
  /**
   * Reads many storages at once, for an eager read of the whole object (zip: consecutive stored
   * members as one region). Those it leaves out are read one by one by {@link storage}.
   */
  preload?(refs: readonly StorageRef[]): Reads<Map<string, StorageBytes>>;
}

/** The default of `maxPickleSize`. */
export const DEFAULT_MAX_PICKLE = 2 ** 30;

/**
 * Unpickles the pickle that starts at `at` and ends before `end` (or is cut off there),
 * reading more of the file until it is whole: first `first` bytes, then four times as many.
 * Returns its value and the offset just past its STOP.
 */
export function* pickleAt(file: FileFacts, at: number, end: number, options: TorchReadOptions, profile: UnpickleProfile, first = 1 << 16): Reads<{ value: PyObject; end: number }> {
  const limit = Math.min(end - at, options.maxPickleSize ?? DEFAULT_MAX_PICKLE);
  let length = Math.min(limit, first);
  for (;;) {
    const bytes = yield [at, Math.max(0, length), 'pickle'];
    let stop = -1;
    try {
      const value = unpickle(bytes, { path: file.path, profile, onStop: (e) => (stop = e) });
      return { value, end: at + stop };
    } catch (error) {
      // A pickle cut off by the read's end is read again with more bytes; any other error, or
      // one at the limit, is the file's.
      const cut = error instanceof TensorioError && error.code === 'ERR_BAD_PICKLE' && /ends|STOP/.test(error.message);
      if (!cut || length >= limit) throw error;
      length = Math.min(limit, length * 4);
    }
  }
}

/** Where a storage's bytes lie in a file whose storages follow each other unpadded (legacy, tar). */
export interface Placement {
  readonly offset: number;
  readonly length: number;
}

/**
 * A storage read at its place. Legacy and tar storages follow each other unpadded, so a mapped
 * one may start off its dtype's alignment: it is then copied once, whole, so the tensors on it
 * (tied weights) still share memory.
 */
export function* placedStorage(file: FileFacts, place: Placement, itemSize: number, key: string, layout: string): Reads<StorageBytes> {
  const bytes = yield [place.offset, place.length, `storage '${key}'`];
  if (!file.mapped) return { bytes, mapped: false, bigEndian: false };
  const align = Math.min(itemSize, 8);
  if (place.offset % align === 0) return { bytes, mapped: true, bigEndian: false };
  return { bytes: bytes.slice(), mapped: false, bigEndian: false, copyReason: `storage '${key}' starts at byte ${place.offset} of the ${layout} file, off its ${align}-byte alignment, and was copied` };
}

/**
 * An int64 element count of a storage at `at` followed by its bytes, checked against `end`
 * (the file's or the member's end) before anything is read or allocated. The counts of legacy
 * and tar files are little-endian: torch swapped on big-endian hosts when it wrote them.
 */
export function* storageCount(file: FileFacts, at: number, end: number, key: string, itemSize: number): Reads<Placement> {
  const head = yield [at, 8, `count of storage '${key}'`];
  const n = new DataView(head.buffer, head.byteOffset, 8).getBigInt64(0, true);
  const left = end - at - 8;
  if (n < 0n || n * BigInt(itemSize) > BigInt(left)) {
    throw new TensorioError('ERR_TRUNCATED', `storage '${key}' claims ${n} elements of ${itemSize} bytes at offset ${at + 8}, and ${left} bytes are left`, { path: file.path });
  }
  return { offset: at + 8, length: Number(n) * itemSize };
}

/**
 * The layout of a file whose storages lie at known places (legacy, tar): each read where it
 * lies; `holder` names what lists them, for the error when the pickle names another.
 */
export function placedLayout(file: FileFacts, format: 'legacy' | 'tar', root: PyObject, places: ReadonlyMap<string, Placement>, holder: string): Layout {
  return {
    format,
    bigEndian: false,
    root,
    storage(ref: StorageRef): Reads<StorageBytes> {
      const place = places.get(ref.key);
      if (!place) throw new TensorioError('ERR_NOT_FOUND_IN_ARCHIVE', `the pickle names storage '${ref.key}', which ${holder} does not hold`, { path: file.path });
      return placedStorage(file, place, ref.itemSize, ref.key, format);
    },
  };
}
