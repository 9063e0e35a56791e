/**
 * Writing `.npy` files as `np.save` writes them: the header, then the array's own bytes.
 */
import { checkOptions, keysOf } from '../../options.js';
import { writeAtomic, writeAtomicSync, WRITE_OPTION_KEYS, type WriteOptions } from '../../io/atomic-writer.js';
import { bytesOf, validateNdArray, type NdArray } from '../../ndarray.js';
import { encodeNpyHeader, encodeNpyHeaderDescr, storesFortran } from './header.js';
import { encodeStrings, isStringArray, storesStringsFortran, stringDescrOf, type StringArray } from './strings.js';

/** The options writeNpy takes (checked: a misspelt key is ERR_INVALID_ARGUMENT). */
export const WRITE_NPY_OPTIONS = keysOf<WriteOptions>(WRITE_OPTION_KEYS);

/**
 * The chunks of a `.npy` file for an array: its header, then the array's own bytes (no
 * copy). Fortran-order arrays are written as stored, with fortran_order True.
 */
export function encodeNpy(array: NdArray | StringArray, file?: string): Uint8Array[] {
  if (isStringArray(array)) return [encodeNpyHeaderDescr(stringDescrOf(array), array.shape, storesStringsFortran(array)), encodeStrings(array, file)];
  validateNdArray(array, file);
  return [encodeNpyHeader(array.dtype, array.shape, storesFortran(array)), bytesOf(array.data)];
}

/**
 * Writes an array as a `.npy` file, as `np.save` writes it. Atomic: a temporary file in the
 * same folder, fsync, rename, so the old file survives any failure.
 * @param options `fsync` (default true); see {@link WriteOptions}.
 * @throws TensorioError `ERR_UNSUPPORTED_DTYPE` (bfloat16, float8: NumPy has no such dtype),
 * `ERR_INVALID_ARGUMENT`/`ERR_SHAPE_MISMATCH` for an inconsistent array, `ERR_NO_SPACE`,
 * `ERR_PERMISSION`, `ERR_NOT_FOUND` (missing folder), `ERR_IO`.
 */
export async function writeNpy(path: string, array: NdArray | StringArray, options: WriteOptions = {}): Promise<void> {
  checkOptions(options, WRITE_NPY_OPTIONS, 'writeNpy', path);
  await writeAtomic(path, encodeNpy(array, path), options);
}

/** Synchronous {@link writeNpy}. */
export function writeNpySync(path: string, array: NdArray | StringArray, options: WriteOptions = {}): void {
  checkOptions(options, WRITE_NPY_OPTIONS, 'writeNpySync', path);
  writeAtomicSync(path, encodeNpy(array, path), options);
}
