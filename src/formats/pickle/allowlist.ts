/**
 * What a pickle may name: the allowlist of NumPy and Python globals (everything else is
 * refused with `ERR_UNSAFE_PICKLE` the moment it is named), what REDUCE and BUILD of those
 * globals give (computed here, never called), and the {@link UnpickleProfile} hook through
 * which another library's globals stand in for them (PyTorch's: src/formats/torch/profile.ts).
 */
import { TensorioError } from '../../errors.js';
import { bad, Dict, Dtype, Global, hashable, latin1Bytes, ML_DTYPES, ndarrayFrom, Ndarray, PySet, Scalar, scalarOf, Tuple, type Handler, type PyObject } from './values.js';

/** The arrays convert_to_tensor returned. */
const TENSORS = new WeakSet<object>();

/**
 * A set of globals for pickles written by another library than NumPy. The unpickler still
 * runs nothing: the profile is asked for a stand-in value for each global it knows and
 * computes what REDUCE, NEWOBJ, BUILD and persistent ids give from plain JavaScript values.
 * Every value the profile returns passes through the conversion to JavaScript unchanged.
 */
export interface UnpickleProfile {
  /** Named in refusals ("not one of the <name> globals"). */
  readonly name: string;
  /** Which of the unpickler's own globals (`collections.OrderedDict`, `_codecs.encode`, ...) stay allowed. */
  readonly baseGlobals: ReadonlySet<string>;
  /** A stand-in object for `module.name`, or undefined to refuse it. */
  global(module: string, name: string): object | undefined;
  /** REDUCE (or NEWOBJ when `newobj`) of a stand-in, with its arguments as JavaScript values. */
  call(fn: object, args: PyObject[], newobj: boolean): unknown;
  /** BUILD of a value the profile made; throws to refuse. */
  build?(target: object, state: PyObject): void;
  /** BINPERSID / PERSID; absent: persistent ids are refused. */
  persistentLoad?(pid: PyObject): unknown;
  /**
   * BUILD of a dict with a dict state: 'items' adds the state's entries (the NumPy default),
   * 'attributes' treats them as the dict's attributes (an OrderedDict's `__dict__`, as PyTorch's
   * state dicts carry `_metadata`) and leaves the items alone.
   */
  readonly dictState?: 'items' | 'attributes';
}

/**
 * The accepted globals. Everything else is refused. `value` globals may only appear as data
 * (NumPy's own test pickles hold the class `range`); they are never called.
 */
export const ALLOWED: ReadonlyMap<string, Handler> = new Map<string, Handler>([
  ['numpy.core.multiarray._reconstruct', 'reconstruct'],
  ['numpy._core.multiarray._reconstruct', 'reconstruct'],
  // NumPy 0.x-era pickles (numpy/lib/tests/data/py2-np0-objarr.npy).
  ['numpy.core._internal._reconstruct', 'reconstruct'],
  ['numpy.core.numeric._frombuffer', 'frombuffer'],
  ['numpy._core.numeric._frombuffer', 'frombuffer'],
  ['numpy.ndarray', 'ndarray'],
  ['numpy.dtype', 'dtype'],
  ['numpy.core.multiarray.scalar', 'scalar'],
  ['numpy._core.multiarray.scalar', 'scalar'],
  ['_codecs.encode', 'encode'],
  ['builtins.bytes', 'bytes'],
  ['builtins.bytearray', 'bytearray'],
  ['builtins.set', 'set'],
  ['builtins.frozenset', 'frozenset'],
  ['collections.OrderedDict', 'ordereddict'],
  ['builtins.range', 'value'],
  // TensorFlow's EagerTensor.__reduce__ is (convert_to_tensor, (self._numpy(),)), so np.save of
  // a dict or object array of tensors names ops.convert_to_tensor. TF 1.14 and TF 2.2 to 2.19
  // spell it tensorflow.python...; TF 1.15, 2.0 and 2.1 shipped the package as tensorflow_core
  // (read in those wheels' ops.py). Accepted only as a call with one NumPy array or NumPy
  // scalar (a 0-d tensor's value), which becomes the array (see the 'tensor' case).
  ['tensorflow.python.framework.ops.convert_to_tensor', 'tensor'],
  ['tensorflow_core.python.framework.ops.convert_to_tensor', 'tensor'],
  // ml_dtypes' scalar types, as numpy.dtype's argument: how a bfloat16 or float8 array (a
  // TensorFlow bfloat16 tensor's _numpy()) pickles its dtype. Never called.
  ...ML_DTYPES.map((name): [string, Handler] => [`ml_dtypes.${name}`, 'value']),
]);

// Python 2 module names, as Python 3's unpickler maps them (fix_imports).
export const PY2_MODULES: Record<string, string> = { __builtin__: 'builtins', copy_reg: 'copyreg' };

/**
 * The global `module.name` names: a {@link Global} of the allowlist, or the profile's
 * stand-in for it.
 * @throws TensorioError `ERR_UNSAFE_PICKLE` for any other global.
 */
export function resolveGlobal(module: string, name: string, profile: UnpickleProfile | undefined, path: string | undefined): { value: Global } | { standIn: object } {
  const mod = PY2_MODULES[module] ?? module;
  if (mod === 'builtins' && name === 'xrange') name = 'range'; // as Python 3 reads it
  if (profile && !profile.baseGlobals.has(`${mod}.${name}`)) {
    const standIn = profile.global(mod, name);
    if (standIn === undefined) {
      throw new TensorioError('ERR_UNSAFE_PICKLE', `the pickle refers to ${module}.${name}, which is not one of the ${profile.name} globals tensorio accepts; nothing was run. Load only files you trust with Python`, { path });
    }
    return { standIn };
  }
  const handler = ALLOWED.get(`${mod}.${name}`);
  if (handler === undefined) {
    throw new TensorioError(
      'ERR_UNSAFE_PICKLE',
      `the pickle refers to ${module}.${name}, which is not one of the NumPy globals tensorio accepts; nothing was run. Load only files you trust with Python`,
      { path },
    );
  }
  return { value: new Global(mod, name, handler) };
}

export function unsafeCall(what: unknown, path: string | undefined): TensorioError {
  const name = what instanceof Global ? `${what.module}.${what.name}` : 'an object';
  return new TensorioError('ERR_UNSAFE_PICKLE', `the pickle builds an instance of ${name} with NEWOBJ/INST/OBJ, which tensorio does not do; nothing was run`, { path });
}

export function reduce(fn: Global, args: unknown[], path: string | undefined): unknown {
  const arity = (min: number, max = min): void => {
    if (args.length < min || args.length > max) throw bad(path, `${fn.module}.${fn.name} called with ${args.length} arguments`);
  };
  switch (fn.handler) {
    case 'tensor': {
      // A fresh array each time, marked, so convert_to_tensor(convert_to_tensor(a)), which
      // TensorFlow never writes, is refused like any other argument.
      const tensor = new Ndarray();
      TENSORS.add(tensor);
      if (args.length === 1 && args[0] instanceof Scalar) {
        return Object.assign(tensor, { dtype: args[0].dtype, shape: [], raw: args[0].raw, built: true });
      }
      if (args.length === 1 && args[0] instanceof Ndarray && args[0].built && !TENSORS.has(args[0])) {
        const { dtype, shape, fortran, raw } = args[0];
        return Object.assign(tensor, { dtype, shape, fortran, raw, built: true });
      }
      throw new TensorioError(
        'ERR_UNSAFE_PICKLE',
        `the pickle calls ${fn.module}.${fn.name} with something other than one NumPy array, which tensorio does not interpret; nothing was run`,
        { path },
      );
    }
    case 'reconstruct': {
      arity(3);
      if (!(args[0] instanceof Global) || args[0].handler !== 'ndarray') {
        throw bad(path, `${fn.module}.${fn.name} must reconstruct numpy.ndarray`);
      }
      return new Ndarray();
    }
    case 'dtype': {
      arity(1, 3);
      const code = args[0] instanceof Global && args[0].module === 'ml_dtypes' ? `ml_dtypes.${args[0].name}` : args[0];
      if (typeof code !== 'string') throw bad(path, 'numpy.dtype needs a type code string');
      return new Dtype(code);
    }
    case 'frombuffer': {
      // numpy.core.numeric._frombuffer(buf, dtype, shape, order) (protocol 5, in-band)
      arity(4);
      const [buf, dtype, shape, order] = args;
      const array = new Ndarray();
      build(array, new Tuple([1, shape, dtype, order === 'F', buf]), path);
      return array;
    }
    case 'scalar': {
      arity(1, 2);
      const [dtype, raw] = args;
      if (!(dtype instanceof Dtype)) throw bad(path, 'numpy scalar without a dtype');
      if (dtype.code.startsWith('O')) return raw;
      const bytes = typeof raw === 'string' ? latin1Bytes(raw, path) : raw;
      if (!(bytes instanceof Uint8Array)) throw bad(path, 'numpy scalar data is not bytes');
      const array = ndarrayFrom(dtype, [], false, bytes, path);
      // A complex, bfloat16 or float8 scalar has no plain JavaScript value: it stays a 0-d array.
      if (array.dtype === 'complex64' || array.dtype === 'complex128' || (ML_DTYPES as readonly string[]).includes(array.dtype)) return new Scalar(dtype, bytes, array);
      return new Scalar(dtype, bytes, scalarOf(array));
    }
    case 'encode': {
      // _codecs.encode(str, 'latin1'): how Python 3 writes bytes at protocols 0-2.
      arity(1, 2);
      const [value, encoding = 'utf-8'] = args;
      if (typeof value !== 'string' || typeof encoding !== 'string') throw bad(path, '_codecs.encode needs strings');
      const enc = encoding.toLowerCase().replace(/_/g, '-');
      if (enc === 'latin1' || enc === 'latin-1' || enc === 'iso-8859-1') return latin1Bytes(value, path);
      if (enc === 'utf-8' || enc === 'utf8') return new TextEncoder().encode(value);
      throw bad(path, `_codecs.encode with the unsupported encoding '${encoding}'`);
    }
    case 'bytes':
    case 'bytearray': {
      arity(0, 2);
      if (args.length === 0) return new Uint8Array(0);
      const [value, encoding] = args;
      if (value instanceof Uint8Array) return value.slice();
      if (typeof value === 'string' && args.length === 2) return reduce(new Global('_codecs', 'encode', 'encode'), [value, encoding], path);
      if (Array.isArray(value) && value.every((b) => typeof b === 'number' && Number.isInteger(b) && b >= 0 && b < 256)) return Uint8Array.from(value as number[]);
      throw bad(path, `${fn.name}() with arguments tensorio does not interpret`);
    }
    case 'set':
    case 'frozenset': {
      arity(0, 1);
      const items = args[0] ?? [];
      if (!Array.isArray(items) && !(items instanceof Tuple)) throw bad(path, `${fn.name}() of something that is not a list`);
      return new PySet([...(Array.isArray(items) ? items : items.items)], fn.handler === 'frozenset');
    }
    case 'ordereddict': {
      const d = new Dict();
      if (args.length === 1 && Array.isArray(args[0])) {
        for (const pair of args[0]) {
          if (!(pair instanceof Tuple) && !Array.isArray(pair)) throw bad(path, 'OrderedDict items must be pairs');
          const items = pair instanceof Tuple ? pair.items : pair;
          if (items.length !== 2) throw bad(path, 'OrderedDict items must be pairs');
          d.map.set(hashable(items[0], path), items[1]);
        }
      } else arity(0);
      return d;
    }
    case 'ndarray':
    case 'value':
      throw new TensorioError('ERR_UNSAFE_PICKLE', `the pickle calls ${fn.module}.${fn.name}, which tensorio accepts only as a value; nothing was run`, { path });
  }
}

export function build(target: unknown, state: unknown, path: string | undefined): void {
  if (target instanceof Dtype) {
    // (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata])
    if (!(state instanceof Tuple) || state.items.length < 8) throw bad(path, 'numpy.dtype state is not the expected tuple');
    const [, byteorder, subarray, names, fields] = state.items;
    if (typeof byteorder !== 'string') throw bad(path, 'numpy.dtype byte order is not a string');
    target.byteorder = byteorder;
    target.hasFields = subarray !== null || names !== null || fields !== null;
    return;
  }
  if (target instanceof Ndarray) {
    // (version, shape, dtype, is_fortran, rawdata) or the older (shape, dtype, is_fortran, rawdata)
    if (!(state instanceof Tuple)) throw bad(path, 'numpy.ndarray state is not a tuple');
    const items = state.items.length === 4 ? [1, ...state.items] : state.items;
    if (items.length !== 5) throw bad(path, `numpy.ndarray state has ${state.items.length} items, expected 5`);
    const [, shape, dtype, fortran, raw] = items;
    if (!(shape instanceof Tuple) || !shape.items.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
      throw bad(path, 'numpy.ndarray shape is not a tuple of non-negative integers');
    }
    if (!(dtype instanceof Dtype)) throw bad(path, 'numpy.ndarray state has no dtype');
    if (typeof fortran !== 'boolean' && fortran !== 0 && fortran !== 1) throw bad(path, 'numpy.ndarray fortran flag is not a bool');
    target.shape = shape.items as number[];
    target.dtype = dtype;
    target.fortran = fortran === true || fortran === 1;
    target.raw = raw;
    target.built = true;
    return;
  }
  if (target instanceof Dict && state instanceof Dict) {
    for (const [k, v] of state.map) target.map.set(k, v);
    return;
  }
  throw bad(path, 'BUILD of an object tensorio does not build');
}
