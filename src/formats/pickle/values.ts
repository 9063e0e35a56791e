/**
 * The values of the pickle machine and their conversion to JavaScript: {@link PyObject}, the
 * stand-ins the unpickler builds while it runs (tuples, dicts, sets, NumPy dtypes and arrays,
 * globals), and `toJs`, which turns the finished graph into plain JavaScript once (NumPy
 * arrays into NdArrays, object arrays into nested Arrays following their shape).
 */
import { halfToNumber } from '../../convert.js';
import { dtypeFromNumpyCode, dtypeInfo, type DType } from '../../dtype.js';
import { TensorioError } from '../../errors.js';
import { shapeSize, type NdArray } from '../../ndarray.js';
import { arrayFromBuffer } from '../numpy/array.js';
import { type NpyHeader } from '../numpy/header.js';

/** A Python global that appears in a pickle as a value (e.g. the class `range`), never called. */
export class PythonGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {
    Object.freeze(this);
  }

  toString(): string {
    return `${this.module}.${this.name}`;
  }
}

/** The values a pickle holds as they are in JavaScript, both ways: what is not a container. */
export type PyLeaf = null | boolean | number | bigint | string | Uint8Array | NdArray;

/**
 * What an unpickled value becomes in JavaScript: list and tuple → Array; dict → plain object
 * when every key is a string, else a Map; set/frozenset → Set; ndarray → NdArray (object
 * arrays → nested Arrays following the shape, a 0-d one → its element); int → number when
 * it is a safe integer, else bigint; float → number; str → string (Python 2 byte strings
 * read as latin-1); bytes/bytearray → Uint8Array; bool → boolean; None → null; NumPy
 * scalars → number/bigint/boolean (complex scalars → 0-d NdArray); numpy.dtype → its
 * tensorio dtype name; a bare class reference such as `range` → {@link PythonGlobal}.
 */
export type PyObject =
  | PyLeaf
  | PythonGlobal
  | PyObject[]
  | { [key: string]: PyObject }
  | Map<PyObject, PyObject>
  | Set<PyObject>;

// ---------------------------------------------------------------------------------------
// Values on the pickle machine's stack. Tuples, dicts and NumPy objects get classes of their
// own while unpickling; `toJs` turns the finished graph into plain JavaScript once.

export class Tuple {
  constructor(readonly items: unknown[]) {}
}
export class Dict {
  readonly map = new Map<unknown, unknown>();
}
export class PySet {
  constructor(
    readonly items: unknown[],
    readonly frozen: boolean,
  ) {}
}
export class Dtype {
  byteorder = '|';
  hasFields = false;
  constructor(readonly code: string) {}
}
/**
 * A NumPy scalar (`numpy.core.multiarray.scalar`): its plain value in the result, and a 0-d array
 * where TensorFlow's convert_to_tensor wraps it (a 0-d EagerTensor's `_numpy()` is a scalar).
 */
export class Scalar {
  constructor(
    readonly dtype: Dtype,
    readonly raw: Uint8Array,
    readonly value: unknown,
  ) {}
}
export class Ndarray {
  dtype: Dtype | undefined;
  shape: number[] = [0];
  fortran = false;
  raw: unknown;
  built = false;
}

/** The ml_dtypes types tensorio holds (the names are tensorio's dtype names). */
export const ML_DTYPES = ['bfloat16', 'float8_e4m3fn', 'float8_e5m2'] as const;

export type Handler = 'tensor' | 'reconstruct' | 'frombuffer' | 'ndarray' | 'dtype' | 'scalar' | 'encode' | 'bytes' | 'bytearray' | 'ordereddict' | 'set' | 'frozenset' | 'value';

export class Global {
  constructor(
    readonly module: string,
    readonly name: string,
    readonly handler: Handler,
  ) {}
}


export function bad(path: string | undefined, what: string): TensorioError {
  return new TensorioError('ERR_BAD_PICKLE', `malformed pickle: ${what}`, { path });
}

export const latin1 = new TextDecoder('latin1');
export const utf8 = new TextDecoder('utf-8', { fatal: true });

export function latin1Bytes(text: string, path: string | undefined): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code > 255) throw bad(path, 'a text string was given where NumPy expects bytes');
    out[i] = code;
  }
  return out;
}

export function pyInt(value: bigint): number | bigint {
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
}


export function hashable(key: unknown, path: string | undefined): unknown {
  if (key instanceof Uint8Array) return latin1.decode(key); // bytes keys (Python 2 dicts read with encoding='bytes')
  if (key === null || typeof key !== 'object') return key;
  if (key instanceof Scalar) return hashable(key.value, path);
  if (key instanceof Tuple || key instanceof Global || key instanceof PySet) return key;
  throw bad(path, 'an unhashable dict key (list, dict or array)');
}

export function resolveDtype(dtype: Dtype, path: string | undefined): { name: DType; bigEndian: boolean; descr: string } {
  const code = dtype.code;
  const unsupported = (why: string): never => {
    throw new TensorioError('ERR_UNSUPPORTED_DTYPE', `unsupported NumPy dtype '${code}' in the pickle: ${why}`, { path });
  };
  if (dtype.hasFields) return unsupported('structured and subarray dtypes are not supported');
  const ml = ML_DTYPES.find((name) => code === `ml_dtypes.${name}`);
  if (ml) return { name: ml, bigEndian: dtype.byteorder === '>' && dtypeInfo(ml).swapSize > 1, descr: code };
  const match = /^([a-zA-Z])(\d*)$/.exec(code);
  if (!match) return unsupported('not a NumPy type code');
  const info = dtypeFromNumpyCode(code === 'b1' ? 'b1' : code) ?? unsupported('no matching tensorio dtype (strings, datetimes and records are not supported)');
  return { name: info.name, bigEndian: dtype.byteorder === '>' && info.swapSize > 1, descr: `${dtype.byteorder}${code}` };
}

export function ndarrayFrom(dtype: Dtype, shape: number[], fortran: boolean, raw: Uint8Array, path: string | undefined): NdArray {
  const { name, bigEndian, descr } = resolveDtype(dtype, path);
  const dataLength = shapeSize(shape, path) * dtypeInfo(name).itemSize;
  if (raw.length !== dataLength) {
    throw bad(path, `a ${name} array of shape (${shape.join(', ')}) needs ${dataLength} bytes, the pickle holds ${raw.length}`);
  }
  const header: NpyHeader = { version: [1, 0], descr, dtype: name, bigEndian, fortranOrder: fortran, shape, dataOffset: 0, dataLength };
  // A copy: the pickle's bytes may be unaligned, and the array must not pin the whole file.
  const { mapped: _mapped, ...array } = arrayFromBuffer(header, raw.slice().buffer, 0, path ?? '<pickle>', { mapped: false });
  return array;
}

export function scalarOf(array: NdArray): number | bigint | boolean {
  const value = array.data[0] as number | bigint;
  if (array.dtype === 'bool') return value === 1;
  if (typeof value === 'bigint') return pyInt(value);
  if (array.dtype === 'float16') return halfToNumber(value);
  return value;
}

/** Turns the finished stack value into plain JavaScript, keeping shared and cyclic references. */
export function toJs(root: unknown, path: string | undefined, maxDepth: number, own?: WeakSet<object>): PyObject {
  const done = new Map<unknown, PyObject>();
  const convert = (value: unknown, depth: number): PyObject => {
    if (value === null || typeof value !== 'object') {
      if (value === undefined) throw bad(path, 'an undefined value');
      return value as PyObject;
    }
    if (own?.has(value)) return value as PyObject;
    if (value instanceof Scalar) return convert(value.value, depth);
    if (value instanceof Uint8Array) return value.slice();
    const seen = done.get(value);
    if (seen !== undefined) return seen;
    if (depth > maxDepth) throw bad(path, `containers nested deeper than ${maxDepth}`);
    if (value instanceof Global) {
      if (value.handler !== 'value') throw bad(path, `${value.module}.${value.name} is left uncalled`);
      const out = new PythonGlobal(value.module, value.name);
      done.set(value, out);
      return out;
    }
    if (value instanceof Dtype) return resolveDtype(value, path).name;
    if (Array.isArray(value) || value instanceof Tuple) {
      const out: PyObject[] = [];
      done.set(value, out);
      for (const item of Array.isArray(value) ? value : value.items) out.push(convert(item, depth + 1));
      return out;
    }
    if (value instanceof PySet) {
      const out = new Set<PyObject>();
      done.set(value, out);
      for (const item of value.items) out.add(convert(item, depth + 1));
      return out;
    }
    if (value instanceof Dict) {
      if ([...value.map.keys()].every((k) => typeof k === 'string')) {
        const out: { [key: string]: PyObject } = {};
        done.set(value, out);
        for (const [k, v] of value.map) {
          // defineProperty, so a key named __proto__ is a key and not a prototype change.
          Object.defineProperty(out, k as string, { value: convert(v, depth + 1), enumerable: true, writable: true, configurable: true });
        }
        return out;
      }
      const out = new Map<PyObject, PyObject>();
      done.set(value, out);
      for (const [k, v] of value.map) out.set(convert(k, depth + 1), convert(v, depth + 1));
      return out;
    }
    if (value instanceof Ndarray) {
      if (!value.built || value.dtype === undefined) throw bad(path, 'a numpy.ndarray without state');
      if (value.dtype.code.startsWith('O')) {
        const items = value.raw;
        if (!Array.isArray(items)) throw bad(path, 'an object array whose data is not a list');
        if (items.length !== shapeSize(value.shape, path)) {
          throw bad(path, `an object array of shape (${value.shape.join(', ')}) holds ${items.length} items`);
        }
        const placeholder: PyObject[] = [];
        done.set(value, placeholder);
        const flat = items.map((item) => convert(item, depth + 1));
        // The list is in C (logical) order even when the array is Fortran-ordered (see
        // pickle/object-array.ts): the flag is the rebuilt array's memory layout only.
        const out = nest(flat, value.shape);
        if (Array.isArray(out) && out !== placeholder) {
          placeholder.push(...out);
          return placeholder;
        }
        done.set(value, out);
        return out;
      }
      const raw = typeof value.raw === 'string' ? latin1Bytes(value.raw, path) : value.raw;
      if (!(raw instanceof Uint8Array)) throw bad(path, 'numpy.ndarray data is not bytes');
      const out = ndarrayFrom(value.dtype, value.shape, value.fortran, raw, path);
      done.set(value, out);
      return out;
    }
    throw bad(path, 'an object of unknown kind');
  };
  return convert(root, 0);
}

/** Nested arrays following `shape`, `flat` in C order; a 0-d array is its element. */
export function nest(flat: PyObject[], shape: number[]): PyObject {
  if (shape.length === 0) return flat[0] as PyObject;
  const strides = shape.map(() => 1);
  for (let a = shape.length - 2; a >= 0; a--) strides[a] = (strides[a + 1] as number) * (shape[a + 1] as number);
  const level = (axis: number, offset: number): PyObject[] => {
    const out: PyObject[] = [];
    for (let i = 0; i < (shape[axis] as number); i++) {
      const at = offset + i * (strides[axis] as number);
      out.push(axis === shape.length - 1 ? (flat[at] as PyObject) : level(axis + 1, at));
    }
    return out;
  };
  return level(0, 0);
}
