/**
 * The unpickled object of a PyTorch file as the reader hands it out: every tensor by its path
 * through the object (`model.fc1.weight`, `state.0.exp_avg`), the storages an eager read
 * needs, and the conversion to plain JavaScript values with an NdArray for every tensor.
 * Pure functions over the object; the bytes come from read.ts.
 */
import { TensorioError } from '../../errors.js';
import { type LoadedArray } from '../../ndarray.js';
import type { PyObject } from '../pickle/values.js';
import { StorageRef, TensorRef } from './profile.js';
import { type TorchValue } from './types.js';

/** What the object holds where a tensor is: a tensor, or a storage saved as a value. */
export type Ref = TensorRef | StorageRef;

/** A storage saved as a value (pre-0.4 files): a flat tensor of its elements. */
export function asTensor(ref: Ref): TensorRef {
  if (ref instanceof TensorRef) return ref;
  const size = ref.view ? ref.view.size : ref.numel;
  if (ref.dtype === null) throw new TensorioError('ERR_BAD_VALUE', `an UntypedStorage '${ref.key}' saved on its own has no dtype`);
  return new TensorRef(ref, ref.dtype, ref.view?.offset ?? 0, [size], [1], false);
}

/**
 * Calls `visit` for every tensor reachable from `root` with its path (keys joined with '.'). A
 * container the pickle shares (the memo makes a DAG) is walked once, under its first path:
 * walking it again for each path would let a pickle of a few hundred bytes, nesting shared
 * lists, take exponential time.
 */
function eachRef(root: PyObject, visit: (ref: Ref, name: string) => void): void {
  const seen = new Set<object>();
  const walk = (value: unknown, name: string): void => {
    if (value instanceof TensorRef || value instanceof StorageRef) return visit(value, name);
    if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value) || seen.has(value)) return;
    seen.add(value);
    const join = (key: string): string => (name === '' ? key : `${name}.${key}`);
    if (Array.isArray(value)) value.forEach((v, i) => walk(v, join(String(i))));
    else if (value instanceof Map) for (const [k, v] of value) walk(v, join(String(k)));
    else if (!(value instanceof Set)) for (const [k, v] of Object.entries(value)) walk(v, join(k));
  };
  walk(root, '');
}

/** Every tensor reachable from `root`, by its first path. */
export function tensorPaths(root: PyObject): Map<string, Ref> {
  const out = new Map<string, Ref>();
  eachRef(root, (ref, name) => {
    if (!out.has(name)) out.set(name, ref);
  });
  return out;
}

/** Every storage the tensors reachable from `root` are on (what an eager read of the whole object reads). */
export function storagesOf(root: PyObject): StorageRef[] {
  const out = new Set<StorageRef>();
  eachRef(root, (ref) => out.add(ref instanceof TensorRef ? ref.storage : ref));
  return [...out];
}

/**
 * The object as JavaScript values, each tensor made an array by `array` (once: a tensor the
 * pickle shares is one array). Dicts with string keys become records, others Maps.
 */
export function toValue(root: PyObject, array: (ref: Ref) => LoadedArray): TorchValue {
  const done = new Map<unknown, TorchValue>();
  const convert = (value: unknown): TorchValue => {
    if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value)) return value as TorchValue;
    const seen = done.get(value);
    if (seen !== undefined) return seen;
    if (value instanceof TensorRef || value instanceof StorageRef) {
      const out = array(value);
      done.set(value, out);
      return out;
    }
    if (Array.isArray(value)) {
      const out: TorchValue[] = [];
      done.set(value, out);
      for (const item of value) out.push(convert(item));
      return out;
    }
    if (value instanceof Map) {
      const out = new Map<TorchValue, TorchValue>();
      done.set(value, out);
      for (const [k, v] of value) out.set(convert(k), convert(v));
      return out;
    }
    if (value instanceof Set) {
      const out = new Set<TorchValue>();
      done.set(value, out);
      for (const item of value) out.add(convert(item));
      return out;
    }
    const out: { [key: string]: TorchValue } = {};
    done.set(value, out);
    for (const [k, v] of Object.entries(value)) {
      Object.defineProperty(out, k, { value: convert(v), enumerable: true, writable: true, configurable: true });
    }
    return out;
  };
  return convert(root);
}
