/**
 * Writing NumPy's `.npz` archives as `np.savez` and `np.savez_compressed` write them: each
 * array a `.npy` member, streamed into the ZIP writer (stored members 64-byte aligned).
 */
import { checkOptions, keysOf } from '../../options.js';
import { TensorioError } from '../../errors.js';
import { AtomicWriter, type WriteOptions, WRITE_OPTION_KEYS } from '../../io/atomic-writer.js';
import { validateNdArray, type NdArray } from '../../ndarray.js';
import { CrcCursor, ZipWriter } from '../zip.js';
import { isStringArray, type StringArray } from './strings.js';
import { encodeNpy } from './write.js';

/** The options writeNpz takes (checked: a misspelt key is ERR_INVALID_ARGUMENT). */
export const WRITE_NPZ_OPTIONS = keysOf<NpzWriteOptions>({ ...WRITE_OPTION_KEYS, compress: true });

/** Options of {@link writeNpz}. */
export interface NpzWriteOptions extends WriteOptions {
  /**
   * Deflate the members (`np.savez_compressed`). `true` is zlib level 6, as NumPy uses; a
   * number 0-9 chooses the level. Default false: stored members (`np.savez`), their data
   * aligned to 64 bytes so `readNpz(path, { mmap: true })` maps them.
   */
  compress?: boolean | number;
}

/** Member names of a list (`arr_0`, `arr_1`, ..., as `np.savez(path, *arrays)` names them) or a record. */
export function npzMemberNames<T = NdArray>(arrays: readonly T[] | Readonly<Record<string, T>>): [string, T][] {
  return Array.isArray(arrays) ? arrays.map((a, i) => [`arr_${i}`, a]) : Object.entries(arrays as Record<string, T>);
}

/**
 * Writes arrays as an `.npz` archive that `np.load` reads: a list becomes members `arr_0`,
 * `arr_1`, ...; a record's keys name its members. Streamed (the archive is never assembled in
 * memory) and atomic (temporary file, fsync, rename).
 * @param options `compress` (default false), `fsync` (default true).
 * @throws TensorioError `ERR_INVALID_ARGUMENT` (not a list or record of NdArrays, bad
 * compression level), `ERR_SHAPE_MISMATCH`, `ERR_UNSUPPORTED_DTYPE` (bfloat16, float8),
 * `ERR_NO_SPACE`, `ERR_PERMISSION`, `ERR_NOT_FOUND` (missing folder), `ERR_IO`.
 */
export async function writeNpz(
  path: string,
  arrays: readonly (NdArray | StringArray)[] | Readonly<Record<string, NdArray | StringArray>>,
  options: NpzWriteOptions = {},
): Promise<void> {
  checkOptions(options, WRITE_NPZ_OPTIONS, 'writeNpz', path);
  if (arrays === null || typeof arrays !== 'object') {
    throw new TensorioError('ERR_INVALID_ARGUMENT', 'writeNpz needs an array or a record of NdArrays', { path });
  }
  const compress = options.compress ?? false;
  const level = compress === true ? 6 : compress === false ? -1 : compress;
  if (!Number.isInteger(level) || level < -1 || level > 9) {
    throw new TensorioError('ERR_INVALID_ARGUMENT', `compress must be a boolean or a level 0-9, got ${String(compress)}`, { path });
  }
  // Every member is checked before the file is created, so a bad argument leaves nothing behind.
  const members = npzMemberNames(arrays).map(([name, array]) => {
    try {
      if (!isStringArray(array)) validateNdArray(array, path);
      return { name: `${name}.npy`, chunks: encodeNpy(array, path) };
    } catch (error) {
      if (error instanceof TensorioError) {
        throw new TensorioError(error.code, `member '${name}': ${error.message.replace(`${path}: `, '')}`, { path, cause: error });
      }
      throw error;
    }
  });
  const out = await AtomicWriter.open(path, options);
  try {
    const zip = new ZipWriter(out, path);
    if (level < 0) {
      // The CRC of member k + 1 is computed here, a piece at a time, while the pieces of
      // member k are written on libuv's pool.
      let crc = members.length > 0 ? new CrcCursor((members[0] as { chunks: Uint8Array[] }).chunks).finish() : 0;
      for (const [index, member] of members.entries()) {
        const next = members[index + 1];
        const cursor = next ? new CrcCursor(next.chunks) : undefined;
        await zip.addStored(member.name, member.chunks, 64, crc, () => cursor?.step(16 << 20));
        if (cursor) crc = cursor.finish();
      }
    } else {
      for (const member of members) await zip.addDeflated(member.name, member.chunks, level);
    }
    await zip.finish();
    await out.commit();
  } catch (error) {
    await out.abort();
    throw error;
  }
}
