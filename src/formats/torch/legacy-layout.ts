/**
 * The legacy layout of `torch.save` (torch 0.1.10 to 1.5, or `_use_new_zipfile_serialization=
 * False`): consecutive pickles of the magic number, the protocol version 1001, sys_info, the
 * object and the list of storage keys, then per key an int64 element count and the storage's
 * bytes (always little-endian: torch swapped on big-endian hosts when it wrote them). Read as
 * torch/serialization.py's `_legacy_load` reads it after its tar attempt, with the weights-only
 * profile for every pickle.
 */
import { TensorioError } from '../../errors.js';
import { type Reads } from '../../io/source.js';
import { pickleAt, placedLayout, storageCount, type FileFacts, type Layout, type Placement } from './layout.js';
import { torchProfile, type StorageClaims } from './profile.js';
import { type TorchReadOptions } from './types.js';

/** The first pickle of a legacy file. */
export const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;

/** Opens the legacy layout: its five pickles, then the storages' places (their bytes are not read). */
export function* legacyLayout(file: FileFacts, options: TorchReadOptions): Reads<Layout> {
  const path = file.path;
  const claims: StorageClaims = new Map();
  const next = (at: number) => pickleAt(file, at, file.size, options, torchProfile(path, claims));
  const magic = yield* next(0);
  if (magic.value !== LEGACY_MAGIC) throw new TensorioError('ERR_BAD_MAGIC', 'not a PyTorch file: the first pickle is not torch\'s magic number', { path });
  const protocol = yield* next(magic.end);
  if (protocol.value !== LEGACY_PROTOCOL) throw new TensorioError('ERR_UNSUPPORTED_VERSION', `legacy protocol version ${String(protocol.value)}, expected ${LEGACY_PROTOCOL}`, { path });
  const sysInfo = yield* next(protocol.end);
  const main = yield* next(sysInfo.end);
  const keys = yield* next(main.end);
  if (!Array.isArray(keys.value) || !keys.value.every((k) => typeof k === 'string')) throw new TensorioError('ERR_BAD_HEADER', 'the legacy storage key list is not a list of strings', { path });
  // The data section: per key, an int64 element count and the bytes. Each count is checked
  // against what is left of the file before anything is read or allocated.
  const places = new Map<string, Placement>();
  let at = keys.end;
  for (const key of keys.value as string[]) {
    const claim = claims.get(key);
    if (!claim) throw new TensorioError('ERR_BAD_HEADER', `the legacy key list names storage '${key}', which no tensor uses`, { path });
    const place = yield* storageCount(file, at, file.size, key, claim.itemSize);
    places.set(key, place);
    at = place.offset + place.length;
  }
  return placedLayout(file, 'legacy', main.value, places, "the file's key list");
}
