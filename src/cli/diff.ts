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
  status: 'equal' | 'different' | 'only in A' | 'only in B' | 'shape differs' | 'dtype differs' | 'not compared';
  /** Why a member was not compared (a string or object array, a structured dtype, ...). */
  reason?: string;
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

/** Element i as an exact integer, for 64-bit integers (which a double cannot hold past 2^53). */
function bigLanes(array: NdArray): ((i: number) => bigint) | undefined {
  const data = array.data;
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) return (i) => data[i] as bigint;
  const info = dtypeInfo(array.dtype);
  if (info.lanes === 1 && !array.dtype.startsWith('float') && array.dtype !== 'bfloat16') {
    const numbers = data as Exclude<typeof data, BigInt64Array | BigUint64Array>;
    return (i) => BigInt(numbers[i] as number);
  }
  return undefined;
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
  // Two integer arrays with a 64-bit side compare exactly, as integers: 2^60 + 1 is not 2^60.
  const [bigA, bigB] = [bigLanes(a), bigLanes(b)];
  const exact = bigA && bigB && (a.data instanceof BigInt64Array || a.data instanceof BigUint64Array || b.data instanceof BigInt64Array || b.data instanceof BigUint64Array);
  for (let i = 0; i < left.count; i++) {
    if (exact) {
      const [p, q] = [bigA(i), bigB(i)];
      if (p === q) continue;
      const diff = p > q ? p - q : q - p;
      if (!(Number(diff) <= tolerance.atol + tolerance.rtol * Math.abs(Number(q)))) mismatched++;
      maxAbs = Math.max(maxAbs, Number(diff));
      maxRel = Math.max(maxRel, q === 0n ? Infinity : Number(diff) / Math.abs(Number(q)));
      continue;
    }
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
 * Compares every member of two sources by name, one pair in memory at a time. Equal means
 * the same member names and every member equal. A source of one unnamed array (a `.npy`,
 * whose "name" is only its file name) matches the other side's single member. Members one
 * side could not read (strings, pickles) are listed as 'not compared', never as equal.
 */
export async function diffSources(a: TensorSource, b: TensorSource, tolerance: Tolerance): Promise<TensorDiff[]> {
  const [onlyA, onlyB] = [a.summary.tensors, b.summary.tensors];
  const unnamed = (a.unnamed === true || b.unnamed === true) && onlyA.length === 1 && onlyB.length === 1 && !a.summary.skipped?.length && !b.summary.skipped?.length;
  if (unnamed && onlyA[0]?.name !== onlyB[0]?.name) {
    const [nameA, nameB] = [onlyA[0]?.name as string, onlyB[0]?.name as string];
    return [compareArrays(`${nameA} vs ${nameB}`, await a.get(nameA), await b.get(nameB), tolerance)];
  }
  const namesA = a.summary.tensors.map((t) => t.name);
  const namesB = new Set(b.summary.tensors.map((t) => t.name));
  const skippedA = new Map((a.summary.skipped ?? []).map((s) => [s.name, s.why]));
  const skippedB = new Map((b.summary.skipped ?? []).map((s) => [s.name, s.why]));
  const results: TensorDiff[] = [];
  for (const name of namesA) {
    if (!namesB.has(name)) {
      const why = skippedB.get(name);
      results.push(why === undefined ? { name, status: 'only in A' } : { name, status: 'not compared', reason: `B: ${why}` });
      continue;
    }
    results.push(compareArrays(name, await a.get(name), await b.get(name), tolerance));
  }
  const inA = new Set(namesA);
  for (const name of namesB) {
    if (inA.has(name)) continue;
    const why = skippedA.get(name);
    results.push(why === undefined ? { name, status: 'only in B' } : { name, status: 'not compared', reason: `A: ${why}` });
  }
  for (const [name, why] of skippedA) if (!namesB.has(name)) results.push({ name, status: 'not compared', reason: skippedB.has(name) ? `A: ${why}; B: ${skippedB.get(name)}` : `A: ${why}` });
  for (const [name, why] of skippedB) if (!inA.has(name) && !skippedA.has(name)) results.push({ name, status: 'not compared', reason: `B: ${why}` });
  return results;
}
