/**
 * NumPy's fixed-width string arrays in `.npy` and `.npz`: `|S<n>` (bytes, n bytes per element,
 * NUL-padded) and `<U<n>` / `>U<n>` (str, n UTF-32 code units per element). They are read
 * (with `strings: true`) as a {@link StringArray}: the elements in C (logical) order, each a
 * `Uint8Array` for S (bytes stay bytes, as h5py and tensorio's unpickler give Python bytes)
 * or a `string` for U, trailing NULs removed as NumPy removes them when it hands out an
 * element. The width, byte order and layout are kept, so writing it back gives the file
 * `np.save` writes, byte for byte.
 */
import { TensorioError } from '../../errors.js';
import { shapeSize } from '../../ndarray.js';
import type { PyValue } from '../pyliteral.js';

/** A NumPy `S<n>` or `U<n>` array. */
export interface StringArray {
  /** 'bytes' for NumPy's `S<n>` (elements are Uint8Array), 'unicode' for `U<n>` (elements are strings). */
  readonly kind: 'bytes' | 'unicode';
  /** The n of `S<n>`/`U<n>`: bytes (S) or code points (U) each element holds at most. */
  readonly width: number;
  readonly shape: number[];
  /** The elements in C (logical) order, trailing NULs removed. */
  readonly values: Uint8Array[] | string[];
  /** 'F' when the file stores the elements in Fortran order (written back the same way). */
  readonly order?: 'C' | 'F';
  /** True for `>U<n>` (big-endian UTF-32); written back the same way. */
  readonly bigEndian?: boolean;
}

/** True for a {@link StringArray} (made by a reader or {@link stringArray}). */
export function isStringArray(value: unknown): value is StringArray {
  if (value === null || typeof value !== 'object') return false;
  const v = value as Partial<StringArray>;
  return (v.kind === 'bytes' || v.kind === 'unicode') && typeof v.width === 'number' && Array.isArray(v.values) && Array.isArray(v.shape);
}

/**
 * A string array to write: `values` in C order (strings for `U`, Uint8Arrays for `S`), `shape`
 * by default `[values.length]`, `width` by default the longest element (at least 1), as
 * `np.array(values)` chooses it.
 * @throws TensorioError `ERR_INVALID_ARGUMENT` for mixed or other element types, a value wider
 * than `width`, or a shape that does not hold `values.length` elements.
 */
export function stringArray(values: readonly string[] | readonly Uint8Array[], shape?: readonly number[], options: { width?: number; order?: 'C' | 'F'; bigEndian?: boolean } = {}): StringArray {
  const bytes = values.length > 0 && values[0] instanceof Uint8Array;
  const kind = bytes ? 'bytes' : 'unicode';
  let widest = 1;
  for (const value of values) {
    if (bytes ? !(value instanceof Uint8Array) : typeof value !== 'string') {
      throw new TensorioError('ERR_INVALID_ARGUMENT', 'a string array holds only strings (NumPy U) or only Uint8Arrays (NumPy S)');
    }
    widest = Math.max(widest, bytes ? (value as Uint8Array).length : [...(value as string)].length);
  }
  const width = options.width ?? widest;
  if (!Number.isSafeInteger(width) || width < 1 || width < widest) {
    throw new TensorioError('ERR_INVALID_ARGUMENT', `width ${String(options.width)} is not a positive integer holding the longest element (${widest})`);
  }
  const dims = shape ? [...shape] : [values.length];
  if (shapeSize(dims) !== values.length) throw new TensorioError('ERR_INVALID_ARGUMENT', `shape (${dims.join(', ')}) does not hold ${values.length} elements`);
  const out: StringArray = { kind, width, shape: dims, values: [...values] as Uint8Array[] | string[] };
  if (options.order === 'F') Object.assign(out, { order: 'F' });
  if (options.bigEndian && kind === 'unicode') Object.assign(out, { bigEndian: true });
  return out;
}

/** What a string descr says, or undefined for any other descr ('c' is S1, 'a' is S, as in NumPy). */
export function stringDescr(descr: PyValue): { kind: 'bytes' | 'unicode'; width: number; bigEndian: boolean; itemSize: number } | undefined {
  if (typeof descr !== 'string') return undefined;
  const match = /^([<>|=]?)(?:(c)|([SaU])(\d+))$/.exec(descr);
  if (!match) return undefined;
  const [, order, c, code, digits] = match;
  const width = c ? 1 : Number(digits);
  if (!Number.isSafeInteger(width) || width < 1) return undefined;
  const kind = code === 'U' ? 'unicode' : 'bytes';
  const itemSize = kind === 'unicode' ? width * 4 : width;
  if (!Number.isSafeInteger(itemSize)) return undefined;
  return { kind, width, bigEndian: kind === 'unicode' && order === '>', itemSize };
}

/** The permutation between C (logical) order and Fortran storage: fortranIndex[c] is where C element c is stored. */
function fortranPositions(shape: readonly number[]): Uint32Array | number[] {
  const count = shapeSize(shape);
  const out = count < 2 ** 32 ? new Uint32Array(count) : new Array<number>(count);
  const index = new Array<number>(shape.length).fill(0);
  const stride: number[] = [];
  let s = 1;
  for (const dim of shape) {
    stride.push(s);
    s *= dim;
  }
  for (let c = 0; c < count; c++) {
    let f = 0;
    for (let axis = 0; axis < shape.length; axis++) f += (index[axis] as number) * (stride[axis] as number);
    out[c] = f;
    for (let axis = shape.length - 1; axis >= 0; axis--) {
      index[axis] = (index[axis] as number) + 1;
      if ((index[axis] as number) < (shape[axis] as number)) break;
      index[axis] = 0;
    }
  }
  return out;
}

function layoutDiffers(shape: readonly number[]): boolean {
  return shape.filter((d) => d > 1).length >= 2 && !shape.includes(0);
}

/**
 * Decodes the data of a string array: `data` holds exactly shape × item size bytes.
 * @throws TensorioError `ERR_BAD_VALUE` for a U element that is not a Unicode code point.
 */
export function decodeStrings(descr: string, shape: number[], fortranOrder: boolean, data: Uint8Array, file: string): StringArray {
  const spec = stringDescr(descr) as NonNullable<ReturnType<typeof stringDescr>>;
  const count = shapeSize(shape, file);
  const fortran = fortranOrder && layoutDiffers(shape);
  const positions = fortran ? fortranPositions(shape) : undefined;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const values: (string | Uint8Array)[] = new Array(count);
  for (let c = 0; c < count; c++) {
    const at = (positions ? (positions[c] as number) : c) * spec.itemSize;
    if (spec.kind === 'bytes') {
      let end = at + spec.itemSize;
      while (end > at && data[end - 1] === 0) end--;
      values[c] = data.slice(at, end);
    } else {
      let end = spec.width;
      while (end > 0 && view.getUint32(at + (end - 1) * 4, !spec.bigEndian) === 0) end--;
      let text = '';
      for (let k = 0; k < end; k++) {
        const code = view.getUint32(at + k * 4, !spec.bigEndian);
        if (code > 0x10ffff) throw new TensorioError('ERR_BAD_VALUE', `element ${c} of the ${descr} array holds ${code}, not a Unicode code point`, { path: file });
        text += String.fromCodePoint(code);
      }
      values[c] = text;
    }
  }
  const out: StringArray = { kind: spec.kind, width: spec.width, shape, values: values as Uint8Array[] | string[] };
  if (fortran) Object.assign(out, { order: 'F' });
  if (spec.bigEndian) Object.assign(out, { bigEndian: true });
  return out;
}

/** The descr np.save writes for a string array ('|S3', '<U5'). */
export function stringDescrOf(array: StringArray): string {
  return array.kind === 'bytes' ? `|S${array.width}` : `${array.bigEndian ? '>' : '<'}U${array.width}`;
}

/** True when the array is written with fortran_order True (as np.save decides it). */
export function storesStringsFortran(array: StringArray): boolean {
  return array.order === 'F' && layoutDiffers(array.shape);
}

/**
 * The data bytes np.save writes for a string array: each element NUL-padded to the width, in
 * the layout {@link storesStringsFortran} says.
 * @throws TensorioError `ERR_INVALID_ARGUMENT` for an element wider than the width or of the wrong type.
 */
export function encodeStrings(array: StringArray, file?: string): Uint8Array {
  const count = shapeSize(array.shape, file);
  if (array.values.length !== count) {
    throw new TensorioError('ERR_SHAPE_MISMATCH', `a string array of shape (${array.shape.join(', ')}) needs ${count} values, it has ${array.values.length}`, { path: file });
  }
  const itemSize = array.kind === 'bytes' ? array.width : array.width * 4;
  const out = new Uint8Array(count * itemSize);
  const view = new DataView(out.buffer);
  const positions = storesStringsFortran(array) ? fortranPositions(array.shape) : undefined;
  for (let c = 0; c < count; c++) {
    const at = (positions ? (positions[c] as number) : c) * itemSize;
    const value = array.values[c];
    if (array.kind === 'bytes') {
      if (!(value instanceof Uint8Array) || value.length > array.width) {
        throw new TensorioError('ERR_INVALID_ARGUMENT', `element ${c} of an S${array.width} array must be a Uint8Array of at most ${array.width} bytes`, { path: file });
      }
      out.set(value, at);
    } else {
      if (typeof value !== 'string') throw new TensorioError('ERR_INVALID_ARGUMENT', `element ${c} of a U${array.width} array must be a string`, { path: file });
      let k = 0;
      for (const ch of value) {
        if (k >= array.width) throw new TensorioError('ERR_INVALID_ARGUMENT', `element ${c} is longer than the width ${array.width}`, { path: file });
        view.setUint32(at + k * 4, ch.codePointAt(0) as number, !array.bigEndian);
        k++;
      }
    }
  }
  return out;
}
