/**
 * A restricted Python pickle reader and a small pickle writer, for NumPy's object arrays
 * (`np.save('xy.npy', [x, y])`, `np.save('d.npy', {'w': w})`).
 *
 * The reader is an interpreter of the pickle virtual machine (protocols 0 to 5) that never
 * calls or evaluates anything: the only globals it accepts are the few NumPy and Python
 * functions that NumPy's own pickles name, and REDUCE of one of them is carried out by code
 * here that knows what that function would return. Any other global (`os.system`,
 * `builtins.eval`, `subprocess.Popen`, ...) is refused with `ERR_UNSAFE_PICKLE` the moment
 * it is named, before anything is built from it.
 *
 * The writer emits protocol 3 (what `np.save` uses) with only NumPy's reconstruct globals,
 * in the `numpy.core.multiarray` spelling that NumPy 1.x and 2.x both resolve.
 */
import { halfToNumber } from '../convert.js';
import { dtypeFromNumpyCode, dtypeInfo, type DType } from '../dtype.js';
import { TensorioError } from '../errors.js';
import { bytesOf, shapeSize, tensorHint, validateNdArray, type NdArray } from '../ndarray.js';
import { arrayFromBuffer, descrFor, type NpyHeader } from './npy.js';
import { isObjectArray, type ObjectArray } from './pickle/object-array.js';

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
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | NdArray
  | PythonGlobal
  | PyObject[]
  | { [key: string]: PyObject }
  | Map<PyObject, PyObject>
  | Set<PyObject>;

/** Options of {@link unpickle}. */
export interface UnpickleOptions {
  /** Named in error messages. */
  path?: string;
  /** Deepest nesting of containers accepted. Default 1,000. */
  maxDepth?: number;
  /**
   * Another format's globals in place of NumPy's (PyTorch's, in src/formats/torch/). Default:
   * the NumPy allowlist.
   */
  profile?: UnpickleProfile;
  /** Called with the offset just past STOP (a file of consecutive pickles reads on from there). */
  onStop?: (end: number) => void;
}

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

// ---------------------------------------------------------------------------------------
// Values on the pickle machine's stack. Tuples, dicts and NumPy objects get classes of their
// own while unpickling; `toJs` turns the finished graph into plain JavaScript once.

class Tuple {
  constructor(readonly items: unknown[]) {}
}
class Dict {
  readonly map = new Map<unknown, unknown>();
}
class PySet {
  constructor(
    readonly items: unknown[],
    readonly frozen: boolean,
  ) {}
}
class Dtype {
  byteorder = '|';
  hasFields = false;
  constructor(readonly code: string) {}
}
/**
 * A NumPy scalar (`numpy.core.multiarray.scalar`): its plain value in the result, and a 0-d array
 * where TensorFlow's convert_to_tensor wraps it (a 0-d EagerTensor's `_numpy()` is a scalar).
 */
class Scalar {
  constructor(
    readonly dtype: Dtype,
    readonly raw: Uint8Array,
    readonly value: unknown,
  ) {}
}
class Ndarray {
  dtype: Dtype | undefined;
  shape: number[] = [0];
  fortran = false;
  raw: unknown;
  built = false;
}

/** The ml_dtypes types tensorio holds (the names are tensorio's dtype names). */
const ML_DTYPES = ['bfloat16', 'float8_e4m3fn', 'float8_e5m2'] as const;

/** The arrays convert_to_tensor returned. */
const TENSORS = new WeakSet<object>();

type Handler = 'tensor' | 'reconstruct' | 'frombuffer' | 'ndarray' | 'dtype' | 'scalar' | 'encode' | 'bytes' | 'bytearray' | 'ordereddict' | 'set' | 'frozenset' | 'value';

/**
 * The accepted globals. Everything else is refused. `value` globals may only appear as data
 * (NumPy's own test pickles hold the class `range`); they are never called.
 */
const ALLOWED: ReadonlyMap<string, Handler> = new Map<string, Handler>([
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

class Global {
  constructor(
    readonly module: string,
    readonly name: string,
    readonly handler: Handler,
  ) {}
}

// Python 2 module names, as Python 3's unpickler maps them (fix_imports).
const PY2_MODULES: Record<string, string> = { __builtin__: 'builtins', copy_reg: 'copyreg' };

const DEFAULT_MAX_DEPTH = 1000;

function bad(path: string | undefined, what: string): TensorioError {
  return new TensorioError('ERR_BAD_PICKLE', `malformed pickle: ${what}`, { path });
}

const latin1 = new TextDecoder('latin1');
const utf8 = new TextDecoder('utf-8', { fatal: true });

function latin1Bytes(text: string, path: string | undefined): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code > 255) throw bad(path, 'a text string was given where NumPy expects bytes');
    out[i] = code;
  }
  return out;
}

function pyInt(value: bigint): number | bigint {
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
}

/** Python's little-endian two's-complement long (LONG1/LONG4). */
function decodeLong(bytes: Uint8Array): number | bigint {
  if (bytes.length === 0) return 0;
  let hex = '';
  for (let i = bytes.length - 1; i >= 0; i--) hex += (bytes[i] as number).toString(16).padStart(2, '0');
  let value = BigInt(`0x${hex}`);
  if (((bytes[bytes.length - 1] as number) & 0x80) !== 0) value -= 1n << BigInt(bytes.length * 8);
  return pyInt(value);
}

/** Python 2 string literal escapes (protocol 0 STRING), as codecs.escape_decode reads them. */
function unescapePy2(body: string, path: string | undefined): string {
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const ch = body[i] as string;
    if (ch !== '\\') {
      out += ch;
      continue;
    }
    const next = body[++i];
    const simple: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', "'": "'", '"': '"', a: '\x07', b: '\b', f: '\f', v: '\v', '\n': '' };
    if (next === undefined) throw bad(path, 'string ends with a backslash');
    if (next in simple) out += simple[next];
    else if (next === 'x') {
      const hex = body.slice(i + 1, i + 3);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw bad(path, `invalid \\x escape '\\x${hex}'`);
      out += String.fromCharCode(parseInt(hex, 16));
      i += 2;
    } else if (/[0-7]/.test(next)) {
      let digits = next;
      while (digits.length < 3 && /[0-7]/.test(body[i + 1] ?? '')) digits += body[++i];
      out += String.fromCharCode(parseInt(digits, 8) & 0xff);
    } else out += `\\${next}`;
  }
  return out;
}

/** Protocol 0 UNICODE: raw-unicode-escape (only \uXXXX and \UXXXXXXXX are escapes). */
function rawUnicodeEscape(bytes: Uint8Array, path: string | undefined): string {
  const text = latin1.decode(bytes);
  return text.replace(/\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g, (_m, u: string | undefined, big: string | undefined) => {
    const code = parseInt((u ?? big) as string, 16);
    if (code > 0x10ffff) throw bad(path, `invalid code point \\U${big}`);
    return String.fromCodePoint(code);
  });
}

/**
 * Reads a pickle, executing nothing. See {@link PyObject} for how Python values map to
 * JavaScript.
 * @throws TensorioError `ERR_UNSAFE_PICKLE` naming any global outside the NumPy allowlist,
 * `ERR_BAD_PICKLE` for malformed or truncated input, `ERR_UNSUPPORTED_DTYPE` for NumPy
 * arrays of dtypes tensorio does not hold (strings, records, datetimes).
 */
export function unpickle(bytes: Uint8Array, options: UnpickleOptions = {}): PyObject {
  const path = options.path;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  let stack: unknown[] = [];
  const marks: unknown[][] = [];
  const memo = new Map<number, unknown>();
  const profile = options.profile;
  // Values the profile made: opaque here, passed through to JavaScript unchanged.
  const own = new WeakSet<object>();
  const owned = (value: unknown): unknown => {
    if (value !== null && typeof value === 'object') own.add(value);
    return value;
  };
  const plain = (value: unknown): PyObject => toJs(value, path, options.maxDepth ?? DEFAULT_MAX_DEPTH, own);

  const need = (n: number, what: string): void => {
    if (!Number.isSafeInteger(n) || n < 0 || pos + n > bytes.length) {
      throw bad(path, `the data ends inside ${what} at byte ${pos} (needs ${n} bytes, ${bytes.length - pos} left)`);
    }
  };
  const take = (n: number, what: string): Uint8Array => {
    need(n, what);
    const out = bytes.subarray(pos, pos + n);
    pos += n;
    return out;
  };
  const u8 = (): number => {
    need(1, 'an argument');
    return bytes[pos++] as number;
  };
  const u16 = (): number => {
    need(2, 'an argument');
    const v = view.getUint16(pos, true);
    pos += 2;
    return v;
  };
  const u32 = (): number => {
    need(4, 'an argument');
    const v = view.getUint32(pos, true);
    pos += 4;
    return v;
  };
  const u64 = (): number => {
    need(8, 'an argument');
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(bytes.length)) throw bad(path, `a length of ${v} bytes exceeds the pickle's ${bytes.length}`);
    return Number(v);
  };
  const line = (what: string): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) throw bad(path, `the data ends inside ${what} (no newline)`);
    const text = latin1.decode(bytes.subarray(pos, end));
    pos = end + 1;
    return text;
  };
  const pop = (): unknown => {
    if (stack.length === 0) throw bad(path, `stack underflow at byte ${pos - 1}`);
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0) throw bad(path, `stack underflow at byte ${pos - 1}`);
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const items = stack;
    const previous = marks.pop();
    if (previous === undefined) throw bad(path, `no MARK before byte ${pos - 1}`);
    stack = previous;
    return items;
  };
  const memoGet = (index: number): unknown => {
    if (!memo.has(index)) throw bad(path, `memo entry ${index} is read before it is written`);
    return memo.get(index);
  };
  const text = (raw: Uint8Array): string => {
    try {
      return utf8.decode(raw);
    } catch {
      throw bad(path, 'a str is not valid UTF-8');
    }
  };
  const findGlobal = (module: string, name: string): Global => {
    const mod = PY2_MODULES[module] ?? module;
    if (mod === 'builtins' && name === 'xrange') name = 'range'; // as Python 3 reads it
    if (profile && !profile.baseGlobals.has(`${mod}.${name}`)) {
      const standIn = profile.global(mod, name);
      if (standIn === undefined) {
        throw new TensorioError('ERR_UNSAFE_PICKLE', `the pickle refers to ${module}.${name}, which is not one of the ${profile.name} globals tensorio accepts; nothing was run. Load only files you trust with Python`, { path });
      }
      return owned(standIn) as Global;
    }
    const handler = ALLOWED.get(`${mod}.${name}`);
    if (handler === undefined) {
      throw new TensorioError(
        'ERR_UNSAFE_PICKLE',
        `the pickle refers to ${module}.${name}, which is not one of the NumPy globals tensorio accepts; nothing was run. Load only files you trust with Python`,
        { path },
      );
    }
    return new Global(mod, name, handler);
  };
  const call = (callable: unknown, args: unknown): unknown => {
    if (profile && callable !== null && typeof callable === 'object' && own.has(callable)) {
      if (!(args instanceof Tuple)) throw bad(path, 'the arguments of a REDUCE are not a tuple');
      return owned(profile.call(callable, args.items.map(plain), false));
    }
    if (!(callable instanceof Global)) throw bad(path, 'REDUCE of something that is not a global');
    if (!(args instanceof Tuple)) throw bad(path, `the arguments of ${callable.module}.${callable.name} are not a tuple`);
    return reduce(callable, args.items, path);
  };
  const appendTo = (target: unknown, items: unknown[]): void => {
    if (Array.isArray(target)) {
      for (const item of items) target.push(item);
    } else if (target instanceof PySet && !target.frozen) {
      target.items.push(...items);
    } else throw bad(path, 'APPEND to something that is not a list');
  };
  const setItems = (target: unknown, items: unknown[]): void => {
    if (!(target instanceof Dict)) throw bad(path, 'SETITEM on something that is not a dict');
    if (items.length % 2 !== 0) throw bad(path, 'SETITEMS with an odd number of items');
    for (let i = 0; i < items.length; i += 2) target.map.set(hashable(items[i], path), items[i + 1]);
  };

  for (;;) {
    if (pos >= bytes.length) throw bad(path, 'the data ends before STOP');
    const op = bytes[pos++] as number;
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) throw bad(path, `pickle protocol ${bytes[pos - 1]} is newer than 5`);
        break;
      case 0x95: // FRAME: a length hint only
        u64();
        break;
      case 0x2e: // STOP
        if (stack.length !== 1 || marks.length !== 0) throw bad(path, `STOP with ${stack.length} values on the stack`);
        options.onStop?.(pos);
        return plain(stack[0]);
      case 0x28: // MARK
        marks.push(stack);
        stack = [];
        break;
      case 0x30: // POP
        if (stack.length === 0 && marks.length > 0) popMark();
        else pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x49: {
        // INT (protocol 0; I01/I00 are True/False)
        const t = line('INT').trim();
        if (t === '01') stack.push(true);
        else if (t === '00') stack.push(false);
        else if (/^[-+]?\d+$/.test(t)) stack.push(pyInt(BigInt(t)));
        else throw bad(path, `invalid INT '${t.slice(0, 40)}'`);
        break;
      }
      case 0x4c: {
        // LONG (protocol 0)
        const t = line('LONG').trim().replace(/L$/, '');
        if (!/^[-+]?\d+$/.test(t)) throw bad(path, `invalid LONG '${t.slice(0, 40)}'`);
        stack.push(pyInt(BigInt(t)));
        break;
      }
      case 0x4a: // BININT
        need(4, 'BININT');
        stack.push(view.getInt32(pos, true));
        pos += 4;
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: // LONG1
        stack.push(decodeLong(take(u8(), 'LONG1')));
        break;
      case 0x8b: {
        // LONG4
        need(4, 'LONG4');
        const n = view.getInt32(pos, true);
        pos += 4;
        if (n < 0) throw bad(path, 'LONG4 with a negative length');
        stack.push(decodeLong(take(n, 'LONG4')));
        break;
      }
      case 0x46: {
        // FLOAT (protocol 0)
        const t = line('FLOAT').trim();
        if (/^[-+]?inf$/i.test(t)) stack.push(t.startsWith('-') ? -Infinity : Infinity);
        else if (/^[-+]?nan$/i.test(t)) stack.push(NaN);
        else if (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(t)) stack.push(Number(t));
        else throw bad(path, `invalid FLOAT '${t.slice(0, 40)}'`);
        break;
      }
      case 0x47: // BINFLOAT (big-endian)
        need(8, 'BINFLOAT');
        stack.push(view.getFloat64(pos, false));
        pos += 8;
        break;
      case 0x53: {
        // STRING (protocol 0): a quoted Python 2 byte string, read as latin-1
        const t = line('STRING').trimEnd();
        const quote = t[0];
        if ((quote !== "'" && quote !== '"') || t.length < 2 || t[t.length - 1] !== quote) throw bad(path, 'STRING is not quoted');
        stack.push(unescapePy2(t.slice(1, -1), path));
        break;
      }
      case 0x54: {
        // BINSTRING
        need(4, 'BINSTRING');
        const n = view.getInt32(pos, true);
        pos += 4;
        if (n < 0) throw bad(path, 'BINSTRING with a negative length');
        stack.push(latin1.decode(take(n, 'BINSTRING')));
        break;
      }
      case 0x55: // SHORT_BINSTRING
        stack.push(latin1.decode(take(u8(), 'SHORT_BINSTRING')));
        break;
      case 0x56: // UNICODE (protocol 0)
        {
          const end = bytes.indexOf(0x0a, pos);
          if (end < 0) throw bad(path, 'the data ends inside UNICODE (no newline)');
          stack.push(rawUnicodeEscape(bytes.subarray(pos, end), path));
          pos = end + 1;
        }
        break;
      case 0x58: // BINUNICODE
        stack.push(text(take(u32(), 'BINUNICODE')));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(text(take(u8(), 'SHORT_BINUNICODE')));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(text(take(u64(), 'BINUNICODE8')));
        break;
      case 0x42: // BINBYTES
        stack.push(take(u32(), 'BINBYTES'));
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(take(u8(), 'SHORT_BINBYTES'));
        break;
      case 0x8e: // BINBYTES8
        stack.push(take(u64(), 'BINBYTES8'));
        break;
      case 0x96: // BYTEARRAY8
        stack.push(take(u64(), 'BYTEARRAY8'));
        break;
      case 0x97: // NEXT_BUFFER
        throw bad(path, 'out-of-band buffers (NEXT_BUFFER) are not supported');
      case 0x98: // READONLY_BUFFER
        top();
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push(new Tuple([]));
        break;
      case 0x74: // TUPLE
        {
          // popMark() swaps `stack`, so it must run before `stack.push` is looked up.
          const items = popMark();
          stack.push(new Tuple(items));
        }
        break;
      case 0x85: // TUPLE1
        stack.push(new Tuple([pop()]));
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        stack.push(new Tuple([pop(), b]));
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        stack.push(new Tuple([pop(), b, c]));
        break;
      }
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x6c: {
        // LIST
        const items = popMark();
        stack.push(items);
        break;
      }
      case 0x61: {
        // APPEND
        const item = pop();
        appendTo(top(), [item]);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        appendTo(top(), items);
        break;
      }
      case 0x7d: // EMPTY_DICT
        stack.push(new Dict());
        break;
      case 0x64: {
        // DICT
        const d = new Dict();
        setItems(d, popMark());
        stack.push(d);
        break;
      }
      case 0x73: {
        // SETITEM
        const value = pop();
        const key = pop();
        setItems(top(), [key, value]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x8f: // EMPTY_SET
        stack.push(new PySet([], false));
        break;
      case 0x90: {
        // ADDITEMS
        const items = popMark();
        const target = top();
        if (!(target instanceof PySet) || target.frozen) throw bad(path, 'ADDITEMS to something that is not a set');
        target.items.push(...items);
        break;
      }
      case 0x91: // FROZENSET
        {
          const items = popMark();
          stack.push(new PySet(items, true));
        }
        break;
      case 0x70: // PUT
        {
          const t = line('PUT');
          if (!/^\d+$/.test(t)) throw bad(path, `invalid PUT index '${t.slice(0, 40)}'`);
          memo.set(Number(t), top());
        }
        break;
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x67: {
        // GET
        const t = line('GET');
        if (!/^\d+$/.test(t)) throw bad(path, `invalid GET index '${t.slice(0, 40)}'`);
        stack.push(memoGet(Number(t)));
        break;
      }
      case 0x68: // BINGET
        stack.push(memoGet(u8()));
        break;
      case 0x6a: // LONG_BINGET
        stack.push(memoGet(u32()));
        break;
      case 0x63: {
        // GLOBAL
        const module = line('GLOBAL');
        const name = line('GLOBAL');
        stack.push(findGlobal(module, name));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') throw bad(path, 'STACK_GLOBAL needs two strings');
        stack.push(findGlobal(module, name));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        const callable = pop();
        stack.push(call(callable, args));
        break;
      }
      case 0x81: {
        // NEWOBJ: cls.__new__(cls, *args); only OrderedDict is ever built this way here.
        const args = pop();
        const cls = pop();
        if (profile && cls !== null && typeof cls === 'object' && own.has(cls) && args instanceof Tuple) stack.push(owned(profile.call(cls, args.items.map(plain), true)));
        else if (cls instanceof Global && cls.handler === 'ordereddict' && args instanceof Tuple && args.items.length === 0) stack.push(new Dict());
        else throw unsafeCall(cls, path);
        break;
      }
      case 0x92: // NEWOBJ_EX
      case 0x69: // INST
      case 0x6f: // OBJ
        if (op === 0x69) {
          const module = line('INST');
          const name = line('INST');
          findGlobal(module, name);
          throw unsafeCall(new Global(module, name, 'value'), path);
        }
        throw unsafeCall(op === 0x92 ? stack[stack.length - 3] : stack[0], path);
      case 0x62: {
        // BUILD
        const state = pop();
        const target = top();
        if (profile && target !== null && typeof target === 'object' && own.has(target)) {
          if (!profile.build) throw bad(path, `BUILD of an object the ${profile.name} profile does not build`);
          profile.build(target, plain(state));
        } else if (profile?.dictState === 'attributes' && target instanceof Dict && state instanceof Dict) {
          // An OrderedDict's __dict__ (a state dict's _metadata): attributes, not items.
        } else build(target, state, path);
        break;
      }
      case 0x50: // PERSID
      case 0x51: // BINPERSID
        if (profile?.persistentLoad) {
          const pid = op === 0x50 ? line('PERSID') : pop();
          stack.push(owned(profile.persistentLoad(plain(pid))));
          break;
        }
        throw new TensorioError('ERR_UNSAFE_PICKLE', 'the pickle uses persistent ids, which need caller code to resolve; nothing was run', { path });
      case 0x82: // EXT1
      case 0x83: // EXT2
      case 0x84: // EXT4
        throw new TensorioError('ERR_UNSAFE_PICKLE', 'the pickle uses the copyreg extension registry, which names arbitrary globals; nothing was run', { path });
      default:
        throw bad(path, `unknown opcode 0x${op.toString(16).padStart(2, '0')} at byte ${pos - 1}`);
    }
  }
}

function unsafeCall(what: unknown, path: string | undefined): TensorioError {
  const name = what instanceof Global ? `${what.module}.${what.name}` : 'an object';
  return new TensorioError('ERR_UNSAFE_PICKLE', `the pickle builds an instance of ${name} with NEWOBJ/INST/OBJ, which tensorio does not do; nothing was run`, { path });
}

function hashable(key: unknown, path: string | undefined): unknown {
  if (key instanceof Uint8Array) return latin1.decode(key); // bytes keys (Python 2 dicts read with encoding='bytes')
  if (key === null || typeof key !== 'object') return key;
  if (key instanceof Scalar) return hashable(key.value, path);
  if (key instanceof Tuple || key instanceof Global || key instanceof PySet) return key;
  throw bad(path, 'an unhashable dict key (list, dict or array)');
}

function reduce(fn: Global, args: unknown[], path: string | undefined): unknown {
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

function build(target: unknown, state: unknown, path: string | undefined): void {
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

function resolveDtype(dtype: Dtype, path: string | undefined): { name: DType; bigEndian: boolean; descr: string } {
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

function ndarrayFrom(dtype: Dtype, shape: number[], fortran: boolean, raw: Uint8Array, path: string | undefined): NdArray {
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

function scalarOf(array: NdArray): number | bigint | boolean {
  const value = array.data[0] as number | bigint;
  if (array.dtype === 'bool') return value === 1;
  if (typeof value === 'bigint') return pyInt(value);
  if (array.dtype === 'float16') return halfToNumber(value);
  return value;
}

/** Turns the finished stack value into plain JavaScript, keeping shared and cyclic references. */
function toJs(root: unknown, path: string | undefined, maxDepth: number, own?: WeakSet<object>): PyObject {
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
function nest(flat: PyObject[], shape: number[]): PyObject {
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

// ---------------------------------------------------------------------------------------
// Writing

/** What {@link pickleChunks} can write. */
export type PicklableValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | NdArray
  | ObjectArray<PicklableValue>
  | readonly PicklableValue[]
  | { readonly [key: string]: PicklableValue };

/** True for an object shaped like an NdArray ({ dtype, shape, data }). */
export function isNdArrayLike(value: unknown): value is NdArray {
  return (
    typeof value === 'object' && value !== null && 'dtype' in value && 'shape' in value && 'data' in value && ArrayBuffer.isView((value as NdArray).data)
  );
}

/** Pickle opcodes the writers emit (this one and the PyTorch writer's). */
export const OP = {
  PROTO: 0x80,
  STOP: 0x2e,
  MARK: 0x28,
  NONE: 0x4e,
  NEWTRUE: 0x88,
  NEWFALSE: 0x89,
  BININT: 0x4a,
  LONG1: 0x8a,
  BINFLOAT: 0x47,
  BINUNICODE: 0x58,
  BINBYTES: 0x42,
  BINBYTES8: 0x8e,
  BINUNICODE8: 0x8d,
  EMPTY_LIST: 0x5d,
  APPENDS: 0x65,
  EMPTY_DICT: 0x7d,
  SETITEMS: 0x75,
  TUPLE: 0x74,
  TUPLE1: 0x85,
  TUPLE3: 0x87,
  EMPTY_TUPLE: 0x29,
  GLOBAL: 0x63,
  REDUCE: 0x52,
  BUILD: 0x62,
  BINPUT: 0x71,
  LONG_BINPUT: 0x72,
  BINGET: 0x68,
  LONG_BINGET: 0x6a,
  BINPERSID: 0x51,
} as const;

const FOUR_GIB = 2 ** 32;

/**
 * Collects opcodes into small buffers and passes big byte payloads (array data) through as
 * views, so a pickle of large arrays is never copied.
 */
class ChunkSink {
  readonly chunks: Uint8Array[] = [];
  private buffer = new Uint8Array(4096);
  private used = 0;
  private readonly memo = new Map<string, number>();
  protocol: number;

  constructor(protocol: number) {
    this.protocol = protocol;
  }

  byte(b: number): void {
    this.ensure(1);
    this.buffer[this.used++] = b;
  }
  bytes(b: Uint8Array): void {
    if (b.length > 1024) {
      this.flush();
      this.chunks.push(b);
      return;
    }
    this.ensure(b.length);
    this.buffer.set(b, this.used);
    this.used += b.length;
  }
  u32(v: number): void {
    this.ensure(4);
    new DataView(this.buffer.buffer).setUint32(this.used, v, true);
    this.used += 4;
  }
  i32(v: number): void {
    this.ensure(4);
    new DataView(this.buffer.buffer).setInt32(this.used, v, true);
    this.used += 4;
  }
  u64(v: number): void {
    this.ensure(8);
    new DataView(this.buffer.buffer).setBigUint64(this.used, BigInt(v), true);
    this.used += 8;
  }
  text(s: string): void {
    const encoded = new TextEncoder().encode(s);
    if (encoded.length >= FOUR_GIB) {
      this.byte(OP.BINUNICODE8);
      this.u64(encoded.length);
    } else {
      this.byte(OP.BINUNICODE);
      this.u32(encoded.length);
    }
    this.bytes(encoded);
  }
  /** A global, memoized so each is spelled once (as Python's pickler does). */
  global(module: string, name: string): void {
    const key = `${module}\n${name}`;
    const index = this.memo.get(key);
    if (index !== undefined) {
      if (index < 256) {
        this.byte(OP.BINGET);
        this.byte(index);
      } else {
        this.byte(OP.LONG_BINGET);
        this.u32(index);
      }
      return;
    }
    this.bytes(new TextEncoder().encode(`c${module}\n${name}\n`));
    const next = this.memo.size;
    this.memo.set(key, next);
    if (next < 256) {
      this.byte(OP.BINPUT);
      this.byte(next);
    } else {
      this.byte(OP.LONG_BINPUT);
      this.u32(next);
    }
  }
  flush(): void {
    if (this.used === 0) return;
    this.chunks.push(this.buffer.slice(0, this.used));
    this.used = 0;
  }
  private ensure(n: number): void {
    if (this.used + n <= this.buffer.length) return;
    this.flush();
    if (n > this.buffer.length) this.buffer = new Uint8Array(n);
  }
}

// The spelling NumPy 1.x writes and NumPy 2.x still resolves.
const MULTIARRAY = 'numpy.core.multiarray';

function writeDtype(sink: ChunkSink, code: string, byteorder: string): void {
  sink.global('numpy', 'dtype');
  sink.text(code);
  sink.byte(OP.NEWFALSE);
  sink.byte(OP.NEWTRUE);
  sink.byte(OP.TUPLE3);
  sink.byte(OP.REDUCE);
  sink.byte(OP.MARK);
  writeInt(sink, 3);
  sink.text(byteorder);
  sink.byte(OP.NONE);
  sink.byte(OP.NONE);
  sink.byte(OP.NONE);
  writeInt(sink, -1);
  writeInt(sink, -1);
  writeInt(sink, code === 'O8' ? 63 : 0);
  sink.byte(OP.TUPLE);
  sink.byte(OP.BUILD);
}

/** An integer as LONG1's payload: little-endian two's complement, as short as Python's encode_long. */
export function encodeLong(value: number | bigint): number[] {
  let v = BigInt(value);
  const out: number[] = [];
  for (;;) {
    const byte = Number(v & 0xffn);
    out.push(byte);
    v >>= 8n;
    if ((v === 0n && (byte & 0x80) === 0) || (v === -1n && (byte & 0x80) !== 0)) return out;
  }
}

function writeInt(sink: ChunkSink, value: number | bigint): void {
  if (typeof value === 'number' && Number.isInteger(value) && value >= -(2 ** 31) && value < 2 ** 31) {
    sink.byte(OP.BININT);
    sink.i32(value);
    return;
  }
  const out = encodeLong(value);
  sink.byte(OP.LONG1);
  sink.byte(out.length);
  sink.bytes(Uint8Array.from(out));
}

function writeNdarrayHead(sink: ChunkSink): void {
  sink.global(MULTIARRAY, '_reconstruct');
  sink.global('numpy', 'ndarray');
  writeInt(sink, 0);
  sink.byte(OP.TUPLE1);
  sink.bytes(Uint8Array.of(0x43, 1, 0x62)); // SHORT_BINBYTES b'b'
  sink.byte(OP.TUPLE3);
  sink.byte(OP.REDUCE);
  sink.byte(OP.MARK);
  writeInt(sink, 1);
}

function writeShape(sink: ChunkSink, shape: readonly number[]): void {
  if (shape.length === 0) {
    sink.byte(OP.EMPTY_TUPLE);
    return;
  }
  sink.byte(OP.MARK);
  for (const d of shape) writeInt(sink, d);
  sink.byte(OP.TUPLE);
}

function writeArray(sink: ChunkSink, array: NdArray, path: string | undefined): void {
  const bytes = validateNdArray(array, path);
  const descr = descrFor(array.dtype);
  writeNdarrayHead(sink);
  writeShape(sink, array.shape);
  writeDtype(sink, descr.slice(1), descr[0] as string);
  sink.byte(isFortranLayout(array.shape, array.order) ? OP.NEWTRUE : OP.NEWFALSE);
  if (bytes >= FOUR_GIB) {
    sink.protocol = 4;
    sink.byte(OP.BINBYTES8);
    sink.u64(bytes);
  } else {
    sink.byte(OP.BINBYTES);
    sink.u32(bytes);
  }
  sink.bytes(bytesOf(array.data));
  sink.byte(OP.TUPLE);
  sink.byte(OP.BUILD);
}

function writeValue(sink: ChunkSink, value: PicklableValue, path: string | undefined, active: Set<object>): void {
  if (value === null || value === undefined) sink.byte(OP.NONE);
  else if (typeof value === 'boolean') sink.byte(value ? OP.NEWTRUE : OP.NEWFALSE);
  else if (typeof value === 'bigint' || (typeof value === 'number' && Number.isInteger(value) && !Object.is(value, -0))) writeInt(sink, value);
  else if (typeof value === 'number') {
    sink.byte(OP.BINFLOAT);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, value, false);
    sink.bytes(b);
  } else if (typeof value === 'string') sink.text(value);
  else if (value instanceof Uint8Array) {
    if (value.length >= FOUR_GIB) {
      sink.protocol = 4;
      sink.byte(OP.BINBYTES8);
      sink.u64(value.length);
    } else {
      sink.byte(OP.BINBYTES);
      sink.u32(value.length);
    }
    sink.bytes(value);
  } else if (typeof value === 'object') {
    if (active.has(value)) throw new TensorioError('ERR_INVALID_ARGUMENT', 'the value contains itself (a cycle); it cannot be saved', { path });
    active.add(value);
    if (isNdArrayLike(value)) writeArray(sink, value, path);
    else if (isObjectArray(value)) writeObjectArray(sink, value as ObjectArray<PicklableValue>, path, active);
    else if (Array.isArray(value)) {
      sink.byte(OP.EMPTY_LIST);
      for (let i = 0; i < value.length; i += 1000) {
        sink.byte(OP.MARK);
        for (const item of value.slice(i, i + 1000)) writeValue(sink, item as PicklableValue, path, active);
        sink.byte(OP.APPENDS);
      }
    } else if (Object.getPrototypeOf(value) === Object.prototype || Object.getPrototypeOf(value) === null) {
      sink.byte(OP.EMPTY_DICT);
      const entries = Object.entries(value);
      for (let i = 0; i < entries.length; i += 1000) {
        sink.byte(OP.MARK);
        for (const [k, v] of entries.slice(i, i + 1000)) {
          sink.text(k);
          writeValue(sink, v as PicklableValue, path, active);
        }
        sink.byte(OP.SETITEMS);
      }
    } else {
      const name = (value as object).constructor?.name ?? 'object';
      throw new TensorioError('ERR_INVALID_ARGUMENT', `cannot pickle a ${name}${tensorHint(value)}: expected NdArrays, arrays, plain objects, numbers, strings, booleans, null or Uint8Array`, { path });
    }
    active.delete(value);
  } else {
    throw new TensorioError('ERR_INVALID_ARGUMENT', `cannot pickle a ${typeof value}`, { path });
  }
}

/**
 * The pickle NumPy writes for an object array holding `items` (shape `(items.length,)`, or
 * `()` for a single item when `zeroD`), as chunks: opcodes in small buffers, array data as
 * views into the arrays (never copied). Protocol 3, or 4 when an item exceeds 4 GiB.
 * @throws TensorioError `ERR_INVALID_ARGUMENT` for values that cannot be pickled (functions,
 * class instances, cycles), `ERR_UNSUPPORTED_DTYPE` for dtypes NumPy lacks (bfloat16, float8).
 */
export function pickleObjectArray(items: readonly PicklableValue[], zeroD: boolean, path?: string): Uint8Array[] {
  return pickleNdObjectArray({ kind: 'object-array', shape: zeroD ? [] : [items.length], items: zeroD ? items.slice(0, 1) : items, order: 'C' }, path);
}

/** True when NumPy stores an array of this shape and order as Fortran (F- but not C-contiguous). */
export function isFortranLayout(shape: readonly number[], order: 'C' | 'F' | undefined): boolean {
  return order === 'F' && shape.filter((d) => d > 1).length >= 2;
}

/**
 * The pickle `np.save` writes for an n-d object array: its shape, the Fortran flag of its
 * order, and the elements in C (logical) order whatever the order (as NumPy pickles them).
 */
export function pickleNdObjectArray(array: ObjectArray<PicklableValue>, path?: string): Uint8Array[] {
  const sink = new ChunkSink(3);
  writeObjectArray(sink, array, path, new Set());
  sink.byte(OP.STOP);
  sink.flush();
  return [Uint8Array.of(OP.PROTO, sink.protocol), ...sink.chunks];
}

function writeObjectArray(sink: ChunkSink, array: ObjectArray<PicklableValue>, path: string | undefined, active: Set<object>): void {
  if (array.items.length !== shapeSize(array.shape, path)) {
    throw new TensorioError('ERR_SHAPE_MISMATCH', `an object array of shape (${array.shape.join(', ')}) needs ${shapeSize(array.shape, path)} items, it has ${array.items.length}`, { path });
  }
  writeNdarrayHead(sink);
  writeShape(sink, array.shape);
  writeDtype(sink, 'O8', '|');
  sink.byte(isFortranLayout(array.shape, array.order) ? OP.NEWTRUE : OP.NEWFALSE);
  writeValue(sink, array.items, path, active);
  sink.byte(OP.TUPLE);
  sink.byte(OP.BUILD);
}

/** A general pickle of one value (protocol 3, or 4 past 4 GiB), as chunks. */
export function pickleChunks(value: PicklableValue, path?: string): Uint8Array[] {
  const sink = new ChunkSink(3);
  writeValue(sink, value, path, new Set());
  sink.byte(OP.STOP);
  sink.flush();
  return [Uint8Array.of(OP.PROTO, sink.protocol), ...sink.chunks];
}
