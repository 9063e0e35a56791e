/**
 * From a {@link TensorRef} and its storage's bytes to an NdArray: a zero-copy view when the
 * tensor is C-contiguous, little-endian and aligned, else a C-order copy (strided gather, then
 * a byte swap for big-endian files) that says why it was copied.
 */
import { byteswap } from '../../convert.js';
import { dtypeInfo } from '../../dtype.js';
import { TensorioError } from '../../errors.js';
import { shapeSize, type LoadedArray } from '../../ndarray.js';
import { checkExtent, type TensorRef } from './profile.js';

/** A storage's bytes as read: its own buffer, or a view of the file's mapping. */
export interface StorageBytes {
  readonly bytes: Uint8Array;
  /** True when `bytes` is a view of a mapping. */
  readonly mapped: boolean;
  readonly bigEndian: boolean;
  /** Why a storage of a mapped file was copied (it is then its own buffer). */
  readonly copyReason?: string;
}

/** True when the strides are C order's for the shape (dimensions of size 1 may have any stride). */
export function isCContiguous(shape: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    const size = shape[i] as number;
    if (size !== 1 && stride[i] !== expected) return false;
    expected *= size;
  }
  return true;
}

/**
 * The tensor's NdArray. Bounds are checked against the bytes really present, so a storage
 * shorter than its persistent id claims is an error, never a view past its end.
 * @param mmapAsked whether the caller asked for a mapping (then copies carry a `copyReason`).
 * @throws TensorioError `ERR_TRUNCATED` (the storage holds fewer bytes than the tensor needs),
 * `ERR_BAD_VALUE`, `ERR_TOO_LARGE`.
 */
/**
 * Bytes the C-order copies of one read may still take. A stride-0 view (`expand`) of a tiny
 * storage may describe gigabytes, and every view of one storage is a copy of its own; the budget
 * keeps what a file can make tensorio allocate proportional to the file.
 */
export interface CopyBudget {
  left: number;
  readonly limit: number;
}

/** The default budget of one read: twice the file's size plus 64 MiB. */
export function copyBudget(fileSize: number, maxCopySize: number | undefined): CopyBudget {
  const limit = maxCopySize ?? 2 * fileSize + 64 * 2 ** 20;
  return { left: limit, limit };
}

export function tensorFromStorage(ref: TensorRef, storage: StorageBytes, mmapAsked: boolean, where: string, unmappedReason?: string, budget?: CopyBudget): LoadedArray {
  const info = dtypeInfo(ref.dtype);
  const itemSize = info.itemSize;
  const available = Math.floor(storage.bytes.length / itemSize);
  const claimedBytes = ref.storage.numel * ref.storage.itemSize;
  if (storage.bytes.length < claimedBytes) {
    throw new TensorioError('ERR_TRUNCATED', `storage '${ref.storage.key}' holds ${storage.bytes.length} bytes, its persistent id claims ${ref.storage.numel} elements of ${ref.storage.itemSize} bytes`, { path: where });
  }
  checkExtent(ref.offset, ref.shape, ref.stride, available, `tensor on storage '${ref.storage.key}'`, where);
  const size = shapeSize(ref.shape, where);
  const contiguous = isCContiguous(ref.shape, ref.stride);
  const start = ref.offset * itemSize;
  const byteStart = storage.bytes.byteOffset + start;
  let reason: string | undefined;
  if (storage.bigEndian && info.swapSize > 1) reason = 'the file is big-endian and was converted to native order';
  else if (!contiguous) reason = `the tensor is not contiguous (stride (${ref.stride.join(', ')}) for size (${ref.shape.join(', ')})) and was copied into C order`;
  else if (byteStart % info.array.BYTES_PER_ELEMENT !== 0) reason = `the tensor's data starts at byte ${byteStart}, not a multiple of the ${ref.dtype} size`;
  if (reason === undefined) {
    const data = new info.array(storage.bytes.buffer, byteStart, size * info.lanes);
    const out: LoadedArray = { dtype: ref.dtype, shape: [...ref.shape], data, mapped: storage.mapped };
    if (mmapAsked && !storage.mapped) return { ...out, copyReason: storage.copyReason ?? unmappedReason ?? 'the file is not mapped' };
    return out;
  }
  const bytes = size * itemSize;
  if (budget) {
    if (bytes > budget.left) {
      throw new TensorioError(
        'ERR_TOO_LARGE',
        `the C-order copy of a tensor of size (${ref.shape.join(', ')}) on storage '${ref.storage.key}' needs ${bytes} bytes, and this read's copies may take ${budget.limit} bytes in all (twice the file plus 64 MiB: strided or expanded views of a storage are copied, each on its own); pass { maxCopySize } if you trust this file`,
        { path: where },
      );
    }
    budget.left -= bytes;
  }
  const copy = new Uint8Array(bytes);
  if (contiguous) copy.set(storage.bytes.subarray(start, start + copy.length));
  else gather(storage.bytes, copy, ref.offset, ref.shape, ref.stride, itemSize);
  if (storage.bigEndian && info.swapSize > 1) byteswap(copy, info.swapSize);
  const out: LoadedArray = { dtype: ref.dtype, shape: [...ref.shape], data: new info.array(copy.buffer, 0, size * info.lanes), mapped: false };
  return mmapAsked ? { ...out, copyReason: reason } : out;
}

/** Copies the elements a strided tensor reaches into `out`, in C order. */
function gather(src: Uint8Array, out: Uint8Array, offset: number, shape: readonly number[], stride: readonly number[], itemSize: number): void {
  const ndim = shape.length;
  const size = out.length / itemSize;
  if (size === 0) return;
  const index = new Array<number>(ndim).fill(0);
  const last = ndim - 1;
  const innerSize = ndim === 0 ? 1 : (shape[last] as number);
  const innerStride = (ndim === 0 ? 0 : (stride[last] as number)) * itemSize;
  let at = 0;
  let base = offset * itemSize;
  while (at < out.length) {
    let p = base;
    for (let i = 0; i < innerSize; i++) {
      for (let b = 0; b < itemSize; b++) out[at + b] = src[p + b] as number;
      at += itemSize;
      p += innerStride;
    }
    // Advance the outer index (all axes but the last), C order.
    let axis = last - 1;
    for (; axis >= 0; axis--) {
      const next = (index[axis] as number) + 1;
      if (next < (shape[axis] as number)) {
        index[axis] = next;
        base += (stride[axis] as number) * itemSize;
        break;
      }
      base -= (index[axis] as number) * (stride[axis] as number) * itemSize;
      index[axis] = 0;
    }
    if (axis < 0) break;
  }
}
