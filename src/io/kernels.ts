/**
 * The addon's byte kernels for src/convert.ts: byte swapping and dtype conversion of whole
 * buffers (vectorised, F16C for half precision). Each returns false when the addon is not
 * loaded, and the caller runs its TypeScript loop instead.
 */
import { native } from '../native.js';

/** Swaps every `itemSize`-byte item of `bytes` in place, natively; false without the addon. */
export function byteswapNative(bytes: ArrayBufferView, itemSize: number): boolean {
  if (!native) return false;
  native.byteswap(bytes, itemSize);
  return true;
}

/**
 * Converts `src` into `dst` with the addon's kernel `name` ('<from>:<to>', e.g.
 * 'float16:float32'); false without the addon.
 */
export function convertNative(name: string, src: ArrayBufferView, dst: ArrayBufferView): boolean {
  if (!native) return false;
  native.convert(name, src, dst);
  return true;
}
