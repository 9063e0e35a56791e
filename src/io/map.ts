/**
 * Memory mappings: mapping a file (or a whole archive) as one ArrayBuffer, flushing and
 * releasing one, and telling a mapping from other memory. Only the native addon maps; without
 * it every function says why not, and the formats copy.
 */
import { markAsUntransferable } from 'node:worker_threads';

import { fromSystemError } from '../errors.js';
import { native } from '../native.js';
import { COPY_REASONS } from './copy-reasons.js';

/** True when files can be mapped here (the native addon is loaded). */
export function canMap(): boolean {
  return native !== null;
}

/** A mapping of a file, or why there is none. */
export type MapResult = { buffer: ArrayBuffer; reason?: undefined } | { buffer?: undefined; reason: string };

/**
 * Maps bytes [0, length) of an open file as one ArrayBuffer. The caller has checked that the
 * file holds `length` bytes. Returns a reason instead when mapping is not possible here
 * (no addon, a host that refuses external memory, a file system without mmap).
 */
export function mapFile(fd: number, length: number, writable: boolean, file: string): MapResult {
  if (!native) return { reason: COPY_REASONS.noAddon };
  try {
    const buffer = native.map(fd, length, writable);
    // The addon releases the pages when this buffer object is collected, so no other
    // ArrayBuffer may share its memory: postMessage with a transfer list copies it instead.
    markAsUntransferable(buffer);
    return { buffer };
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'ERR_EXTERNAL_MEMORY_REFUSED' || code === 'ENODEV' || code === 'EINVAL' || code === 'ENOMEM') {
      return { reason: COPY_REASONS.mappingRefused((error as Error).message) };
    }
    throw fromSystemError(error, file, 'map');
  }
}

/**
 * Releases a mapping at once. Every view into it becomes empty (length 0), so no stale view
 * can reach unmapped memory. Returns false when the buffer is not a live mapping.
 */
export function unmapBuffer(buffer: ArrayBufferLike): boolean {
  if (!native || !(buffer instanceof ArrayBuffer)) return false;
  return native.unmap(buffer);
}

/** True when the buffer is a live memory mapping. */
export function isMappedBuffer(buffer: ArrayBufferLike): boolean {
  return native !== null && buffer instanceof ArrayBuffer && native.isMapped(buffer);
}

/** Flushes a writable mapping's dirty pages to its file (msync). */
export function syncMapping(buffer: ArrayBuffer): void {
  if (!native) throw new TypeError('syncMapping: the native addon is not loaded, so there is no mapping');
  native.sync(buffer);
}
