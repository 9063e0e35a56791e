/**
 * The zip layout of `torch.save` (torch 1.6 and later), read over the zip walkers of
 * src/formats/zip.ts: finding the archive's top folder, refusing TorchScript, `data.pkl`
 * unpickled with the weights-only profile, the `byteorder` record, and the storages
 * `data/<key>` (views of the mapping, or read; an eager read of the whole object reads
 * consecutive stored storages as regions of at most 64 MiB).
 *
 * Layout (torch/serialization.py, caffe2's PyTorchStreamWriter): one top folder, whatever its
 * name, holding `data.pkl` (protocol 2), `data/<key>` per storage (stored, data 64-byte
 * aligned), `byteorder`, `version` and newer records.
 */
import { TensorioError } from '../../errors.js';
import { type Reads } from '../../io/source.js';
import { unpickle } from '../pickle/unpickler.js';
import { centralDirectory, checkMemberSize, dataOffset, wholeMember, type ZipEntry } from '../zip.js';
import { DEFAULT_MAX_PICKLE, type FileFacts, type Layout } from './layout.js';
import { type StorageRef, torchProfile, type StorageClaims } from './profile.js';
import { type StorageBytes } from './tensor.js';
import { type TorchReadOptions } from './types.js';

/**
 * A member's bytes (zip.ts's walker): a view of a stored member when the file is mapped, else
 * fresh memory; a deflated member inflated in one call capped at its declared size (itself
 * bounded by `maxMemberSize`), so a member that lies about its size allocates no more than it
 * claims.
 */
function memberBytes(file: FileFacts, entry: ZipEntry, maxMemberSize: number | undefined, verify: boolean): Reads<Uint8Array> {
  return wholeMember(file.size, entry, file.path, { maxMemberSize, verify });
}

/** Opens the zip layout: the directory, the checks, and `data.pkl` unpickled. */
export function* zipLayout(file: FileFacts, options: TorchReadOptions): Reads<Layout> {
  const path = file.path;
  const entries = yield* centralDirectory(file.size, path);
  const byName = new Map<string, ZipEntry>(entries.map((e) => [e.name, e]));
  const first = entries[0]?.name ?? '';
  const slash = first.indexOf('/');
  if (slash <= 0) throw new TensorioError('ERR_BAD_HEADER', `not a PyTorch archive: its first member '${first}' is not inside a top folder`, { path });
  const prefix = first.slice(0, slash + 1);
  if (entries.some((e) => e.name.startsWith(`${prefix}code/`))) {
    throw new TensorioError('ERR_UNSAFE_PICKLE', 'a TorchScript archive (torch.jit.save): it holds code that torch.jit.load runs; tensorio reads torch.save files only, nothing was run', { path });
  }
  const pkl = byName.get(`${prefix}data.pkl`);
  if (!pkl) throw new TensorioError('ERR_BAD_HEADER', `not a PyTorch archive: no ${prefix}data.pkl`, { path });
  const maxPickle = options.maxPickleSize ?? DEFAULT_MAX_PICKLE;
  if (pkl.uncompressedSize > maxPickle) throw new TensorioError('ERR_TOO_LARGE', `data.pkl is ${pkl.uncompressedSize} bytes, over the limit of ${maxPickle}; pass { maxPickleSize } if you trust this file`, { path });
  // torch.save(compute_crc32=False) writes records with a zero CRC, and torch.load never checks
  // CRCs: a record's CRC is checked only when it was written.
  const written = (entry: ZipEntry): boolean => entry.crc32 !== 0;
  let bigEndian = false;
  const order = byName.get(`${prefix}byteorder`);
  if (order) {
    const text = new TextDecoder().decode(yield* memberBytes(file, order, 16, written(order)));
    if (text !== 'little' && text !== 'big') throw new TensorioError('ERR_BAD_HEADER', `the byteorder record says '${text.slice(0, 20)}', expected 'little' or 'big'`, { path });
    bigEndian = text === 'big';
  }
  checkNoOverlap(entries.filter((e) => e.name.startsWith(`${prefix}data/`)), path);
  const claims: StorageClaims = new Map();
  const root = unpickle(yield* memberBytes(file, pkl, maxPickle, written(pkl)), { path: `${path}[data.pkl]`, profile: torchProfile(`${path}[data.pkl]`, claims) });
  const entryOf = (ref: StorageRef): ZipEntry => {
    const name = `${prefix}data/${ref.key}`;
    const entry = byName.get(name);
    if (!entry) throw new TensorioError('ERR_NOT_FOUND_IN_ARCHIVE', `the pickle names storage '${ref.key}', and the archive has no member ${name}`, { path });
    checkMemberSize(entry, path, options.maxMemberSize);
    return entry;
  };
  return {
    format: 'zip',
    bigEndian,
    root,
    *storage(ref: StorageRef): Reads<StorageBytes> {
      const entry = entryOf(ref);
      if (file.mapped && entry.method === 0) {
        const start = yield* dataOffset(file.size, entry, path);
        return { bytes: yield [start, entry.compressedSize, `storage '${ref.key}'`], mapped: true, bigEndian };
      }
      return { bytes: yield* memberBytes(file, entry, options.maxMemberSize, options.verifyCrc === true), mapped: false, bigEndian };
    },
    *preload(refs: readonly StorageRef[]): Reads<Map<string, StorageBytes>> {
      const out = new Map<string, StorageBytes>();
      // CRCs are checked member by member; a mapping needs no reads.
      if (file.mapped || options.verifyCrc === true) return out;
      const wanted = refs.flatMap((ref) => {
        const entry = byName.get(`${prefix}data/${ref.key}`);
        if (!entry || entry.method !== 0) return [];
        checkMemberSize(entry, path, options.maxMemberSize);
        return [{ key: ref.key, entry }];
      });
      for (const run of storageRuns(wanted, entries, file.size)) {
        // The region is read into V8's own memory (what the byte source gives), not io's
        // allocateForRead (the addon's huge-page mappings): the preloaded 64 MiB regions read 2-5
        // times slower into those on this shared machine (512 MiB state dict, fresh processes
        // interleaved: 1.6-4.2 s against 0.37-0.74 s).
        const region = yield [run.start, run.end - run.start, `storages ${run.members[0]?.key}..${run.members[run.members.length - 1]?.key}`];
        for (const { key, entry } of run.members) {
          const start = dataOffsetIn(region, run.start, entry, path);
          // A local header that does not fit the region is read (and reported) on its own.
          if (start !== undefined) out.set(key, { bytes: region.subarray(start - run.start, start - run.start + entry.compressedSize), mapped: false, bigEndian });
        }
      }
      return out;
    },
  };
}

/** At most this many bytes of storages are read into one buffer: a tensor kept alive keeps its region. */
const REGION_LIMIT = 64 << 20;
/** Members between wanted storages up to this size are read along rather than starting a new region. */
const REGION_GAP = 1 << 20;

/**
 * The wanted stored members grouped into regions of the file to read whole: in file order,
 * each member's slot running to the next member's local header (or the file's end), a region
 * closed when it would pass {@link REGION_LIMIT} or the next slot is more than
 * {@link REGION_GAP} away.
 */
function storageRuns<T extends { entry: ZipEntry }>(wanted: T[], all: readonly ZipEntry[], size: number): { start: number; end: number; members: T[] }[] {
  const offsets = [...new Set(all.map((e) => e.localHeaderOffset))].sort((a, b) => a - b);
  const next = (at: number): number => {
    let lo = 0;
    let hi = offsets.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((offsets[mid] as number) <= at) lo = mid + 1;
      else hi = mid;
    }
    return lo < offsets.length ? (offsets[lo] as number) : size;
  };
  const runs: { start: number; end: number; members: T[] }[] = [];
  for (const item of [...wanted].sort((a, b) => a.entry.localHeaderOffset - b.entry.localHeaderOffset)) {
    const start = item.entry.localHeaderOffset;
    const end = Math.min(size, next(start));
    const last = runs[runs.length - 1];
    if (last && start >= last.end && start - last.end <= REGION_GAP && end - last.start <= REGION_LIMIT) {
      last.end = end;
      last.members.push(item);
    } else {
      // From a multiple of 64 before the local header: torch aligns the data to 64 bytes in the
      // file, so the views into the (page-aligned) region are aligned for every dtype too.
      runs.push({ start: start - (start % 64), end, members: [item] });
    }
  }
  return runs;
}

/** A stored member's data offset from its local header inside `region` (at file offset `base`), or undefined when it does not fit. */
function dataOffsetIn(region: Uint8Array, base: number, entry: ZipEntry, path: string): number | undefined {
  const end = base + region.length;
  try {
    // The local header walker, answered from the region instead of the file.
    const walk = dataOffset(end, entry, path);
    let step = walk.next();
    while (!step.done) {
      const [position, length] = step.value;
      if (position < base || position + length > end) throw new RangeError('outside the region');
      step = walk.next(region.subarray(position - base, position - base + length));
    }
    const start = step.value;
    return start + entry.compressedSize <= end ? start : undefined;
  } catch (error) {
    if (error instanceof RangeError || (error instanceof TensorioError && error.code === 'ERR_TRUNCATED')) return undefined;
    throw error;
  }
}

/**
 * Storage members must not overlap: torch writes each once, one after another. A directory whose
 * entries share bytes would make each storage read the same bytes again, so a small file could
 * make an eager read allocate its size once per entry. Each member spans at least its 30-byte
 * local header and its data from its offset.
 */
function checkNoOverlap(entries: ZipEntry[], path: string): void {
  const sorted = [...entries].sort((a, b) => a.localHeaderOffset - b.localHeaderOffset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1] as ZipEntry;
    const next = sorted[i] as ZipEntry;
    if (next.localHeaderOffset < prev.localHeaderOffset + 30 + prev.compressedSize) {
      throw new TensorioError('ERR_BAD_ZIP', `members '${prev.name}' and '${next.name}' overlap (at offsets ${prev.localHeaderOffset} and ${next.localHeaderOffset})`, { path });
    }
  }
}
