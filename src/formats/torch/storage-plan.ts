/**
 * Which arrays a PyTorch write puts on one storage: arrays that view overlapping bytes of one
 * buffer with one dtype (tied weights, a view and its base) share one, written once, as
 * torch.save writes a storage once for every tensor on it.
 */
import { dtypeInfo, type DType } from '../../dtype.js';
import { type NdArray } from '../../ndarray.js';

export interface Storage {
  key: string;
  dtype: DType;
  buffer: ArrayBufferLike;
  start: number;
  end: number;
}

export interface Placed {
  storage: Storage;
  /** In elements. */
  offset: number;
}

/** Groups the arrays into storages: overlapping byte ranges of one buffer with one dtype share one. */
export function planStorages(arrays: NdArray[]): Map<NdArray, Placed> {
  const byBuffer = new Map<ArrayBufferLike, NdArray[]>();
  for (const a of arrays) {
    const list = byBuffer.get(a.data.buffer) ?? [];
    list.push(a);
    byBuffer.set(a.data.buffer, list);
  }
  const placed = new Map<NdArray, Placed>();
  let next = 0;
  for (const list of byBuffer.values()) {
    list.sort((x, y) => x.data.byteOffset - y.data.byteOffset);
    let current: Storage | undefined;
    for (const a of list) {
      const start = a.data.byteOffset;
      const end = start + a.data.byteLength;
      const itemSize = dtypeInfo(a.dtype).itemSize;
      const joins = current !== undefined && current.dtype === a.dtype && start < current.end && (start - current.start) % itemSize === 0 && a.data.byteLength > 0;
      if (!joins || !current) {
        current = { key: String(next++), dtype: a.dtype, buffer: a.data.buffer, start, end };
      } else current.end = Math.max(current.end, end);
      placed.set(a, { storage: current, offset: 0 });
    }
  }
  for (const [a, p] of placed) p.offset = (a.data.byteOffset - p.storage.start) / dtypeInfo(a.dtype).itemSize;
  return placed;
}
