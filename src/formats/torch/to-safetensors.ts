/**
 * What converting a PyTorch checkpoint to safetensors needs beyond copying tensors, decided as
 * Hugging Face's conversion does it (safetensors' `bindings/python/convert.py`,
 * `_remove_duplicate_names`, over `safetensors.torch._find_shared_tensors`): tensors whose
 * bytes overlap in one storage (tied weights) are written once, under the first of the names
 * that cover the whole storage, and each name left out is noted in the metadata as
 * `"<removed>": "<kept>"` next to `"format": "pt"`; then the written file is read back and
 * compared with the source, tensor by tensor.
 */
import { dtypeInfo } from '../../dtype.js';
import { TensorioError } from '../../errors.js';
import { type NdArray } from '../../ndarray.js';
import { openSafetensors } from '../safetensors/open.js';
import { torchStorageByteLength } from './read.js';
import type { TorchFile, TorchFileSync, TorchTensorInfo } from './types.js';

/** The names a safetensors copy of a checkpoint leaves out, and the metadata that records them. */
export interface TorchSafetensorsPlan {
  /** Each name left out, to the name written in its place (they share a storage). */
  omit: Map<string, string>;
  /** `format: 'pt'` and one `removed: kept` entry per name left out, as Hugging Face writes it. */
  metadata: Record<string, string>;
}

/** Python's sort of str: by code point (JavaScript's default compares UTF-16 units). */
function byCodePoint(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = (x[i] as string).codePointAt(0)! - (y[i] as string).codePointAt(0)!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

interface Area {
  name: string;
  start: number;
  stop: number;
  complete: boolean;
}

/** Bytes [start, stop) of the storage a tensor reaches; stop is start for an empty tensor. */
function areaOf(info: TorchTensorInfo, storageBytes: number): Area {
  const itemSize = dtypeInfo(info.dtype).itemSize;
  const start = info.storageOffset * itemSize;
  const numel = info.shape.reduce((a, b) => a * b, 1);
  // Hugging Face takes the last element of view(-1), which only contiguous tensors allow; the
  // furthest element reached is the same for them and defined for strided tensors too.
  const reach = info.shape.reduce((sum, d, i) => sum + (d - 1) * Math.max(0, info.stride[i] as number), 0);
  const stop = numel === 0 ? start : start + (reach + 1) * itemSize;
  return { name: info.name, start, stop, complete: start === 0 && numel * itemSize === storageBytes };
}

/**
 * Which names a safetensors copy of `file` leaves out (safetensors refuses two names on one
 * storage), chosen as Hugging Face's conversion chooses. Tensors of one storage whose byte
 * ranges overlap form a group (ranges that do not overlap are separate tensors, each written);
 * the group keeps its first name in code-point order among those covering the whole storage
 * from its start, the others are left out and recorded in the metadata.
 * @param names The tensors to be written (default: every tensor of the file).
 * @throws TensorioError `ERR_INVALID_ARGUMENT` for a group in which no tensor covers the whole
 * storage (writing each would store more than the checkpoint holds; Hugging Face refuses too).
 */
export function planTorchSafetensors(file: TorchFile | TorchFileSync, names: readonly string[] = file.keys()): TorchSafetensorsPlan {
  const storages = new Map<string, { bytes: number; areas: Area[] }>();
  for (const name of names) {
    const info = file.info(name);
    const bytes = torchStorageByteLength(file, name);
    // Empty storages share nothing (storage_size 0 is left out of the search, as there).
    if (bytes === 0) continue;
    const key = `${info.file}\n${info.storage}`;
    const entry = storages.get(key) ?? { bytes, areas: [] };
    entry.areas.push(areaOf(info, bytes));
    storages.set(key, entry);
  }
  const omit = new Map<string, string>();
  const metadata: Record<string, string> = { format: 'pt' };
  for (const { areas } of storages.values()) {
    if (areas.length < 2) continue;
    areas.sort((a, b) => a.start - b.start || a.stop - b.stop || byCodePoint(a.name, b.name));
    const groups: Area[][] = [];
    let lastStop = -1;
    for (const area of areas) {
      const current = groups[groups.length - 1];
      if (!current || area.start >= lastStop) groups.push([area]);
      else current.push(area);
      lastStop = area.stop;
    }
    for (const group of groups) {
      if (group.length < 2) continue;
      const complete = group.filter((a) => a.complete).map((a) => a.name).sort(byCodePoint);
      const keep = complete[0];
      if (keep === undefined) {
        const shown = group.map((a) => `'${a.name}'`).join(', ');
        throw new TensorioError('ERR_INVALID_ARGUMENT', `tensors ${shown} share one storage and none of them covers all of it: safetensors holds no views, and writing each would store more than the checkpoint holds (Hugging Face's conversion refuses them too); save clones of them in PyTorch first`, { path: file.path });
      }
      for (const name of group.map((a) => a.name).sort(byCodePoint)) {
        if (name === keep) continue;
        omit.set(name, keep);
        if (!Object.hasOwn(metadata, name)) Object.defineProperty(metadata, name, { value: keep, enumerable: true, writable: true, configurable: true });
      }
    }
  }
  return { omit, metadata };
}

/**
 * Reads a written safetensors file (or sharded checkpoint, by its index) back and checks that
 * every tensor of `names` has the dtype, shape and bytes of `expected(name)`, one tensor at a
 * time. Bytes are compared, not values: NaNs compare equal, and -0 differs from 0.
 * @throws TensorioError `ERR_BAD_VALUE` naming the first tensor that differs or is missing.
 */
export async function verifySafetensorsCopy(written: string, names: readonly string[], expected: (name: string) => Promise<NdArray>): Promise<void> {
  const copy = await openSafetensors(written);
  const bytes = (a: NdArray): Buffer => Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength);
  try {
    const held = new Set(copy.keys());
    for (const name of names) {
      const want = await expected(name);
      const got = held.has(name) ? await copy.get(name) : undefined;
      const why = !got
        ? 'it is missing'
        : got.dtype !== want.dtype
          ? `its dtype is ${got.dtype}, not ${want.dtype}`
          : got.shape.join() !== want.shape.join()
            ? `its shape is (${got.shape.join(', ')}), not (${want.shape.join(', ')})`
            : !bytes(got).equals(bytes(want))
              ? 'its bytes differ from the source'
              : undefined;
      if (why) throw new TensorioError('ERR_BAD_VALUE', `the written file does not read back equal: tensor '${name}': ${why}`, { path: written });
    }
  } finally {
    await copy.close();
  }
}
