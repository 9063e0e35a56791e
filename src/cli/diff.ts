/**
 * Comparing two sets of tensors by name: shapes, dtypes and the largest absolute and
 * relative differences, with NumPy's allclose rule |a - b| <= atol + rtol * |b| (NaN equal
 * to NaN), so `tensorio diff` answers the chapter's `Y2 == Y` for files.
 */
import { toFloat32 } from '../convert.js';
import { dtypeInfo } from '../dtype.js';
import { asCOrder, type NdArray } from '../ndarray.js';
import type { TensorSource } from './formats.js';

export interface Tolerance {
  rtol: number;
  atol: number;
  /** Count tensors with equal values but different dtypes as equal (after --dtype casts). */
  ignoreDtype?: boolean;
}

export interface TensorDiff {
  name: string;
  status: 'equal' | 'different' | 'only in A' | 'only in B' | 'shape differs' | 'dtype differs';
  dtypes?: [string, string];
  shapes?: [number[], number[]];
  maxAbs?: number;
  maxRel?: number;
  /** Elements outside the tolerance. */
  mismatched?: number;
}

/** Element i of an array as a number (complex: real and imaginary are separate lanes). */
function lanes(array: NdArray): { count: number; at: (i: number) => number } {
  const data = array.data;
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) return { count: data.length, at: (i) => Number(data[i]) };
  if (array.dtype === 'float16' || array.dtype === 'bfloat16' || array.dtype.startsWith('float8')) {
    const converted = toFloat32(array).data as Float32Array;
    return { count: converted.length, at: (i) => converted[i] as number };
  }
  const numbers = data as Exclude<typeof data, BigInt64Array | BigUint64Array>;
  return { count: numbers.length, at: (i) => numbers[i] as number };
}

/** Compares two arrays element by element (both in their stored order, which must match). */
export function compareArrays(name: string, a: NdArray, b: NdArray, tolerance: Tolerance): TensorDiff {
  const result: TensorDiff = { name, status: 'equal', dtypes: [a.dtype, b.dtype], shapes: [a.shape, b.shape] };
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) return { ...result, status: 'shape differs' };
  if (dtypeInfo(a.dtype).lanes !== dtypeInfo(b.dtype).lanes) return { ...result, status: 'dtype differs' };
  // Different layouts (a Fortran-order .npy against a C-order tensor): compare in C order.
  if ((a.order ?? 'C') !== (b.order ?? 'C')) return compareArrays(name, asCOrder(a), asCOrder(b), tolerance);
  const left = lanes(a);
  const right = lanes(b);
  let maxAbs = 0;
  let maxRel = 0;
  let mismatched = 0;
  for (let i = 0; i < left.count; i++) {
    const x = left.at(i);
    const y = right.at(i);
    if (x === y || (Number.isNaN(x) && Number.isNaN(y))) continue; // equal infinities and NaNs included
    const abs = Math.abs(x - y); // NaN when one side is NaN or infinite
    if (!(abs <= tolerance.atol + tolerance.rtol * Math.abs(y))) mismatched++;
    maxAbs = Number.isNaN(abs) || Number.isNaN(maxAbs) ? NaN : Math.max(maxAbs, abs);
    maxRel = Number.isNaN(abs) || Number.isNaN(maxRel) ? NaN : Math.max(maxRel, abs / Math.abs(y));
  }
  result.maxAbs = maxAbs;
  result.maxRel = maxRel;
  result.mismatched = mismatched;
  if (mismatched > 0) result.status = 'different';
  else if (a.dtype !== b.dtype && !tolerance.ignoreDtype) result.status = 'dtype differs';
  return result;
}

/**
 * Compares every tensor of two sources by name, one pair in memory at a time. Two sources
 * of one tensor each (two .npy files) are compared whatever their names.
 */
export async function diffSources(a: TensorSource, b: TensorSource, tolerance: Tolerance): Promise<TensorDiff[]> {
  const [onlyA, onlyB] = [a.summary.tensors, b.summary.tensors];
  if (onlyA.length === 1 && onlyB.length === 1 && onlyA[0]?.name !== onlyB[0]?.name) {
    const [nameA, nameB] = [onlyA[0]?.name as string, onlyB[0]?.name as string];
    return [compareArrays(`${nameA} vs ${nameB}`, await a.get(nameA), await b.get(nameB), tolerance)];
  }
  const namesA = a.summary.tensors.map((t) => t.name);
  const namesB = new Set(b.summary.tensors.map((t) => t.name));
  const results: TensorDiff[] = [];
  for (const name of namesA) {
    if (!namesB.has(name)) {
      results.push({ name, status: 'only in A' });
      continue;
    }
    results.push(compareArrays(name, await a.get(name), await b.get(name), tolerance));
  }
  const inA = new Set(namesA);
  for (const name of namesB) if (!inA.has(name)) results.push({ name, status: 'only in B' });
  return results;
}
