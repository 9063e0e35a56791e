/**
 * How `save`/`load` (main and tfjs entries alike) lay an array, a list or a record out as
 * HDF5 datasets, so both entries write and read `.h5` the same way: one array is dataset
 * `x`, a list is datasets `0`, `1`, ..., a record one dataset per key (`a/b` creates group
 * `a`); reading, a lone `x` is an array, exactly `0` ... `n-1` a list, anything else a record
 * keyed by full path.
 */
import { TensorioError } from '../errors.js';
import { isStringArrayLike, stringMemberError, tensorHint } from '../ndarray.js';

/** The datasets for a value: `{ x }`, `{ 0, 1, ... }` or the record itself. */
export function h5Datasets<T>(value: T | readonly T[] | Readonly<Record<string, T>>, isArray: (v: unknown) => v is T, path: string): Record<string, T> {
  if (isStringArrayLike(value)) throw stringMemberError(path, 'x', '.h5');
  if (isArray(value)) return { x: value };
  const entries: [string, unknown][] = Array.isArray(value) ? value.map((v, i) => [String(i), v]) : Object.entries(value as object);
  const plain = value !== null && typeof value === 'object' && [Object.prototype, null].includes(Object.getPrototypeOf(value));
  if (!Array.isArray(value) && !plain) {
    throw new TensorioError('ERR_INVALID_ARGUMENT', `an HDF5 file holds an array, a list of arrays or a record of arrays${tensorHint(value)}`, { path });
  }
  const strings = entries.find(([, v]) => isStringArrayLike(v));
  if (strings) throw stringMemberError(path, strings[0], '.h5');
  const bad = entries.find(([, v]) => !isArray(v));
  if (bad) throw new TensorioError('ERR_INVALID_ARGUMENT', `an HDF5 file holds arrays only (one level of a list or record), and entry '${bad[0]}' is not one${tensorHint(bad[1])}; save nested values to .npy`, { path });
  return Object.fromEntries(entries) as Record<string, T>;
}

/** The value read back from datasets: the lone `x`, a list for `0` ... `n-1`, else the record. */
export function h5Value<T>(record: Record<string, T>): T | T[] | Record<string, T> {
  const keys = Object.keys(record);
  if (keys.length === 1 && keys[0] === 'x') return record.x as T;
  const sorted = keys.every((k) => /^(0|[1-9]\d*)$/.test(k)) ? keys.map(Number).sort((a, b) => a - b) : [];
  if (keys.length > 0 && sorted.length === keys.length && sorted.every((k, i) => k === i)) return sorted.map((k) => record[String(k)] as T);
  return record;
}
