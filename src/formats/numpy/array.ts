/**
 * A `.npy` array from its parsed header and its data bytes, with no I/O: the NdArray over a
 * buffer (big-endian data swapped in place, bool bytes checked) and a whole `.npy` held in
 * memory decoded into a view or a copy.
 */
import { byteswap } from '../../convert.js';
import { dtypeInfo } from '../../dtype.js';
import { TensorioError } from '../../errors.js';
import { type LoadedArray } from '../../ndarray.js';
import { checkDataFits, fortranDiffersFromC, parseNpyHeader, type NpyHeader, type NpyReadOptions } from './header.js';

/** Rejects bool data holding bytes other than 0 and 1 (NumPy reads them silently as True). */
function checkBool(data: Uint8Array, file: string): void {
  for (let i = 0; i < data.length; i++) {
    if ((data[i] as number) > 1) {
      throw new TensorioError('ERR_BAD_VALUE', `bool array holds the byte ${data[i]} at element ${i}; expected 0 or 1`, { path: file });
    }
  }
}

/**
 * Builds the NdArray over `buffer` (at `byteOffset`), converting big-endian data to native
 * order in place. The buffer must be ours to modify unless the data is already native.
 */
export function arrayFromBuffer(header: NpyHeader, buffer: ArrayBuffer, byteOffset: number, file: string, read: { mapped: boolean; copyReason?: string }): LoadedArray {
  const info = dtypeInfo(header.dtype);
  const data = new info.array(buffer, byteOffset, (header.dataLength / info.itemSize) * info.lanes);
  if (header.bigEndian) byteswap(data, info.swapSize);
  if (header.dtype === 'bool') checkBool(data as Uint8Array, file);
  const array: LoadedArray = { dtype: header.dtype, shape: header.shape, data, ...read };
  // Files may say fortran_order for shapes whose two layouts coincide ((6, 1), (11,)); like
  // NumPy's flags, only a layout that differs from C order is reported as 'F'.
  if (header.fortranOrder && fortranDiffersFromC(header.shape)) array.order = 'F';
  return array;
}

/**
 * Parses a whole `.npy` file held in memory (an `.npz` member, a fetched response).
 * The returned data is a view into `bytes` when the data is aligned and native-endian,
 * else a copy.
 */
export function decodeNpy(bytes: Uint8Array, file = '<buffer>', options: NpyReadOptions = {}): LoadedArray {
  const header = parseNpyHeader(bytes, file, options);
  checkDataFits(header, bytes.length, file);
  const alignment = dtypeInfo(header.dtype).array.BYTES_PER_ELEMENT;
  const start = bytes.byteOffset + header.dataOffset;
  if (!header.bigEndian && start % alignment === 0 && bytes.buffer instanceof ArrayBuffer) {
    return arrayFromBuffer(header, bytes.buffer, start, file, { mapped: false });
  }
  const copy = bytes.slice(header.dataOffset, header.dataOffset + header.dataLength);
  return arrayFromBuffer(header, copy.buffer, 0, file, { mapped: false });
}
