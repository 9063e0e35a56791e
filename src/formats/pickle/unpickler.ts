/**
 * The unpickler: an interpreter of the pickle virtual machine (protocols 0 to 5) that never
 * calls or evaluates anything. {@link Unpickler} holds the machine's state (position, stack,
 * marks, memo) and has one method per group of opcodes; globals are looked up in the
 * allowlist (allowlist.ts), and the finished value is converted to JavaScript (values.ts).
 */
import { TensorioError } from '../../errors.js';
import { build, reduce, resolveGlobal, unsafeCall, type UnpickleProfile } from './allowlist.js';
import { OP } from './opcodes.js';
import { bad, Dict, Global, hashable, latin1, pyInt, PySet, toJs, Tuple, utf8, type PyObject } from './values.js';

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

const DEFAULT_MAX_DEPTH = 1000;

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
  return new Unpickler(bytes, options).run();
}

/**
 * The pickle machine over one pickle. {@link run} reads an opcode at a time and hands it to
 * the group that knows it (each group method returns false for opcodes not its own).
 */
class Unpickler {
  private readonly path: string | undefined;
  private readonly view: DataView;
  private pos = 0;
  private stack: unknown[] = [];
  private readonly marks: unknown[][] = [];
  private readonly memo = new Map<number, unknown>();
  private readonly profile: UnpickleProfile | undefined;
  /** Values the profile made: opaque here, passed through to JavaScript unchanged. */
  private readonly own = new WeakSet<object>();

  constructor(
    private readonly bytes: Uint8Array,
    private readonly options: UnpickleOptions,
  ) {
    this.path = options.path;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.profile = options.profile;
  }

  run(): PyObject {
    const bytes = this.bytes;
    for (;;) {
      if (this.pos >= bytes.length) throw bad(this.path, 'the data ends before STOP');
      const op = bytes[this.pos++] as number;
      if (op === OP.STOP) return this.stop();
      const handled = this.control(op) || this.numbers(op) || this.strings(op) || this.containers(op) || this.memoOps(op) || this.objects(op);
      if (!handled) throw bad(this.path, `unknown opcode 0x${op.toString(16).padStart(2, '0')} at byte ${this.pos - 1}`);
    }
  }

  // --- Reading arguments.

  private need(n: number, what: string): void {
    if (!Number.isSafeInteger(n) || n < 0 || this.pos + n > this.bytes.length) {
      throw bad(this.path, `the data ends inside ${what} at byte ${this.pos} (needs ${n} bytes, ${this.bytes.length - this.pos} left)`);
    }
  }

  private take(n: number, what: string): Uint8Array {
    this.need(n, what);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  private u8(): number {
    this.need(1, 'an argument');
    return this.bytes[this.pos++] as number;
  }

  private u16(): number {
    this.need(2, 'an argument');
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }

  private u32(): number {
    this.need(4, 'an argument');
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  private i32(what: string): number {
    this.need(4, what);
    const v = this.view.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }

  private u64(): number {
    this.need(8, 'an argument');
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    if (v > BigInt(this.bytes.length)) throw bad(this.path, `a length of ${v} bytes exceeds the pickle's ${this.bytes.length}`);
    return Number(v);
  }

  private line(what: string): string {
    const end = this.bytes.indexOf(0x0a, this.pos);
    if (end < 0) throw bad(this.path, `the data ends inside ${what} (no newline)`);
    const text = latin1.decode(this.bytes.subarray(this.pos, end));
    this.pos = end + 1;
    return text;
  }

  private text(raw: Uint8Array): string {
    try {
      return utf8.decode(raw);
    } catch {
      throw bad(this.path, 'a str is not valid UTF-8');
    }
  }

  // --- The stack.

  private push(value: unknown): void {
    this.stack.push(value);
  }

  private pop(): unknown {
    if (this.stack.length === 0) throw bad(this.path, `stack underflow at byte ${this.pos - 1}`);
    return this.stack.pop();
  }

  private top(): unknown {
    if (this.stack.length === 0) throw bad(this.path, `stack underflow at byte ${this.pos - 1}`);
    return this.stack[this.stack.length - 1];
  }

  private popMark(): unknown[] {
    const items = this.stack;
    const previous = this.marks.pop();
    if (previous === undefined) throw bad(this.path, `no MARK before byte ${this.pos - 1}`);
    this.stack = previous;
    return items;
  }

  private owned(value: unknown): unknown {
    if (value !== null && typeof value === 'object') this.own.add(value);
    return value;
  }

  private isOwned(value: unknown): value is object {
    return this.profile !== undefined && value !== null && typeof value === 'object' && this.own.has(value);
  }

  private plain(value: unknown): PyObject {
    return toJs(value, this.path, this.options.maxDepth ?? DEFAULT_MAX_DEPTH, this.own);
  }

  private stop(): PyObject {
    if (this.stack.length !== 1 || this.marks.length !== 0) throw bad(this.path, `STOP with ${this.stack.length} values on the stack`);
    this.options.onStop?.(this.pos);
    return this.plain(this.stack[0]);
  }

  // --- The opcode groups.

  /** Framing, marks and stack manipulation. */
  private control(op: number): boolean {
    switch (op) {
      case OP.PROTO:
        if (this.u8() > 5) throw bad(this.path, `pickle protocol ${this.bytes[this.pos - 1]} is newer than 5`);
        return true;
      case OP.FRAME: // a length hint only
        this.u64();
        return true;
      case OP.MARK:
        this.marks.push(this.stack);
        this.stack = [];
        return true;
      case OP.POP:
        if (this.stack.length === 0 && this.marks.length > 0) this.popMark();
        else this.pop();
        return true;
      case OP.POP_MARK:
        this.popMark();
        return true;
      case OP.DUP:
        this.push(this.top());
        return true;
      default:
        return false;
    }
  }

  /** None, booleans, integers and floats. */
  private numbers(op: number): boolean {
    const path = this.path;
    switch (op) {
      case OP.NONE:
        this.push(null);
        return true;
      case OP.NEWTRUE:
        this.push(true);
        return true;
      case OP.NEWFALSE:
        this.push(false);
        return true;
      case OP.INT: {
        // protocol 0; I01/I00 are True/False
        const t = this.line('INT').trim();
        if (t === '01') this.push(true);
        else if (t === '00') this.push(false);
        else if (/^[-+]?\d+$/.test(t)) this.push(pyInt(BigInt(t)));
        else throw bad(path, `invalid INT '${t.slice(0, 40)}'`);
        return true;
      }
      case OP.LONG: {
        // protocol 0
        const t = this.line('LONG').trim().replace(/L$/, '');
        if (!/^[-+]?\d+$/.test(t)) throw bad(path, `invalid LONG '${t.slice(0, 40)}'`);
        this.push(pyInt(BigInt(t)));
        return true;
      }
      case OP.BININT:
        this.push(this.i32('BININT'));
        return true;
      case OP.BININT1:
        this.push(this.u8());
        return true;
      case OP.BININT2:
        this.push(this.u16());
        return true;
      case OP.LONG1:
        this.push(decodeLong(this.take(this.u8(), 'LONG1')));
        return true;
      case OP.LONG4: {
        const n = this.i32('LONG4');
        if (n < 0) throw bad(path, 'LONG4 with a negative length');
        this.push(decodeLong(this.take(n, 'LONG4')));
        return true;
      }
      case OP.FLOAT: {
        // protocol 0
        const t = this.line('FLOAT').trim();
        if (/^[-+]?inf$/i.test(t)) this.push(t.startsWith('-') ? -Infinity : Infinity);
        else if (/^[-+]?nan$/i.test(t)) this.push(NaN);
        else if (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(t)) this.push(Number(t));
        else throw bad(path, `invalid FLOAT '${t.slice(0, 40)}'`);
        return true;
      }
      case OP.BINFLOAT: // big-endian
        this.need(8, 'BINFLOAT');
        this.push(this.view.getFloat64(this.pos, false));
        this.pos += 8;
        return true;
      default:
        return false;
    }
  }

  /** Text and byte strings, and buffers. */
  private strings(op: number): boolean {
    const path = this.path;
    switch (op) {
      case OP.STRING: {
        // protocol 0: a quoted Python 2 byte string, read as latin-1
        const t = this.line('STRING').trimEnd();
        const quote = t[0];
        if ((quote !== "'" && quote !== '"') || t.length < 2 || t[t.length - 1] !== quote) throw bad(path, 'STRING is not quoted');
        this.push(unescapePy2(t.slice(1, -1), path));
        return true;
      }
      case OP.BINSTRING: {
        const n = this.i32('BINSTRING');
        if (n < 0) throw bad(path, 'BINSTRING with a negative length');
        this.push(latin1.decode(this.take(n, 'BINSTRING')));
        return true;
      }
      case OP.SHORT_BINSTRING:
        this.push(latin1.decode(this.take(this.u8(), 'SHORT_BINSTRING')));
        return true;
      case OP.UNICODE: {
        // protocol 0
        const end = this.bytes.indexOf(0x0a, this.pos);
        if (end < 0) throw bad(path, 'the data ends inside UNICODE (no newline)');
        this.push(rawUnicodeEscape(this.bytes.subarray(this.pos, end), path));
        this.pos = end + 1;
        return true;
      }
      case OP.BINUNICODE:
        this.push(this.text(this.take(this.u32(), 'BINUNICODE')));
        return true;
      case OP.SHORT_BINUNICODE:
        this.push(this.text(this.take(this.u8(), 'SHORT_BINUNICODE')));
        return true;
      case OP.BINUNICODE8:
        this.push(this.text(this.take(this.u64(), 'BINUNICODE8')));
        return true;
      case OP.BINBYTES:
        this.push(this.take(this.u32(), 'BINBYTES'));
        return true;
      case OP.SHORT_BINBYTES:
        this.push(this.take(this.u8(), 'SHORT_BINBYTES'));
        return true;
      case OP.BINBYTES8:
        this.push(this.take(this.u64(), 'BINBYTES8'));
        return true;
      case OP.BYTEARRAY8:
        this.push(this.take(this.u64(), 'BYTEARRAY8'));
        return true;
      case OP.NEXT_BUFFER:
        throw bad(path, 'out-of-band buffers (NEXT_BUFFER) are not supported');
      case OP.READONLY_BUFFER:
        this.top();
        return true;
      default:
        return false;
    }
  }

  /** Tuples, lists, dicts and sets. */
  private containers(op: number): boolean {
    switch (op) {
      case OP.EMPTY_TUPLE:
        this.push(new Tuple([]));
        return true;
      case OP.TUPLE: {
        // popMark() swaps the stack, so it must run before the push.
        const items = this.popMark();
        this.push(new Tuple(items));
        return true;
      }
      case OP.TUPLE1:
        this.push(new Tuple([this.pop()]));
        return true;
      case OP.TUPLE2: {
        const b = this.pop();
        this.push(new Tuple([this.pop(), b]));
        return true;
      }
      case OP.TUPLE3: {
        const c = this.pop();
        const b = this.pop();
        this.push(new Tuple([this.pop(), b, c]));
        return true;
      }
      case OP.EMPTY_LIST:
        this.push([]);
        return true;
      case OP.LIST: {
        const items = this.popMark();
        this.push(items);
        return true;
      }
      case OP.APPEND: {
        const item = this.pop();
        this.appendTo(this.top(), [item]);
        return true;
      }
      case OP.APPENDS: {
        const items = this.popMark();
        this.appendTo(this.top(), items);
        return true;
      }
      case OP.EMPTY_DICT:
        this.push(new Dict());
        return true;
      case OP.DICT: {
        const d = new Dict();
        this.setItems(d, this.popMark());
        this.push(d);
        return true;
      }
      case OP.SETITEM: {
        const value = this.pop();
        const key = this.pop();
        this.setItems(this.top(), [key, value]);
        return true;
      }
      case OP.SETITEMS: {
        const items = this.popMark();
        this.setItems(this.top(), items);
        return true;
      }
      case OP.EMPTY_SET:
        this.push(new PySet([], false));
        return true;
      case OP.ADDITEMS: {
        const items = this.popMark();
        const target = this.top();
        if (!(target instanceof PySet) || target.frozen) throw bad(this.path, 'ADDITEMS to something that is not a set');
        target.items.push(...items);
        return true;
      }
      case OP.FROZENSET: {
        const items = this.popMark();
        this.push(new PySet(items, true));
        return true;
      }
      default:
        return false;
    }
  }

  private appendTo(target: unknown, items: unknown[]): void {
    if (Array.isArray(target)) {
      for (const item of items) target.push(item);
    } else if (target instanceof PySet && !target.frozen) {
      target.items.push(...items);
    } else throw bad(this.path, 'APPEND to something that is not a list');
  }

  private setItems(target: unknown, items: unknown[]): void {
    if (!(target instanceof Dict)) throw bad(this.path, 'SETITEM on something that is not a dict');
    if (items.length % 2 !== 0) throw bad(this.path, 'SETITEMS with an odd number of items');
    for (let i = 0; i < items.length; i += 2) target.map.set(hashable(items[i], this.path), items[i + 1]);
  }

  /** The memo: PUT and GET in their forms. */
  private memoOps(op: number): boolean {
    const path = this.path;
    switch (op) {
      case OP.PUT: {
        const t = this.line('PUT');
        if (!/^\d+$/.test(t)) throw bad(path, `invalid PUT index '${t.slice(0, 40)}'`);
        this.memo.set(Number(t), this.top());
        return true;
      }
      case OP.BINPUT:
        this.memo.set(this.u8(), this.top());
        return true;
      case OP.LONG_BINPUT:
        this.memo.set(this.u32(), this.top());
        return true;
      case OP.MEMOIZE:
        this.memo.set(this.memo.size, this.top());
        return true;
      case OP.GET: {
        const t = this.line('GET');
        if (!/^\d+$/.test(t)) throw bad(path, `invalid GET index '${t.slice(0, 40)}'`);
        this.push(this.memoGet(Number(t)));
        return true;
      }
      case OP.BINGET:
        this.push(this.memoGet(this.u8()));
        return true;
      case OP.LONG_BINGET:
        this.push(this.memoGet(this.u32()));
        return true;
      default:
        return false;
    }
  }

  private memoGet(index: number): unknown {
    if (!this.memo.has(index)) throw bad(this.path, `memo entry ${index} is read before it is written`);
    return this.memo.get(index);
  }

  /** Globals, calls, BUILD and persistent ids: what the allowlist or the profile decides. */
  private objects(op: number): boolean {
    const path = this.path;
    const profile = this.profile;
    switch (op) {
      case OP.GLOBAL: {
        const module = this.line('GLOBAL');
        const name = this.line('GLOBAL');
        this.push(this.findGlobal(module, name));
        return true;
      }
      case OP.STACK_GLOBAL: {
        const name = this.pop();
        const module = this.pop();
        if (typeof module !== 'string' || typeof name !== 'string') throw bad(path, 'STACK_GLOBAL needs two strings');
        this.push(this.findGlobal(module, name));
        return true;
      }
      case OP.REDUCE: {
        const args = this.pop();
        const callable = this.pop();
        this.push(this.call(callable, args));
        return true;
      }
      case OP.NEWOBJ: {
        // cls.__new__(cls, *args); only OrderedDict is ever built this way here.
        const args = this.pop();
        const cls = this.pop();
        if (profile && this.isOwned(cls) && args instanceof Tuple) this.push(this.owned(profile.call(cls, args.items.map((a) => this.plain(a)), true)));
        else if (cls instanceof Global && cls.handler === 'ordereddict' && args instanceof Tuple && args.items.length === 0) this.push(new Dict());
        else throw unsafeCall(cls, path);
        return true;
      }
      case OP.INST: {
        const module = this.line('INST');
        const name = this.line('INST');
        this.findGlobal(module, name);
        throw unsafeCall(new Global(module, name, 'value'), path);
      }
      case OP.NEWOBJ_EX:
        throw unsafeCall(this.stack[this.stack.length - 3], path);
      case OP.OBJ:
        throw unsafeCall(this.stack[0], path);
      case OP.BUILD: {
        const state = this.pop();
        const target = this.top();
        if (profile && this.isOwned(target)) {
          if (!profile.build) throw bad(path, `BUILD of an object the ${profile.name} profile does not build`);
          profile.build(target, this.plain(state));
        } else if (profile?.dictState === 'attributes' && target instanceof Dict && state instanceof Dict) {
          // An OrderedDict's __dict__ (a state dict's _metadata): attributes, not items.
        } else build(target, state, path);
        return true;
      }
      case OP.PERSID:
      case OP.BINPERSID:
        if (profile?.persistentLoad) {
          const pid = op === OP.PERSID ? this.line('PERSID') : this.pop();
          this.push(this.owned(profile.persistentLoad(this.plain(pid))));
          return true;
        }
        throw new TensorioError('ERR_UNSAFE_PICKLE', 'the pickle uses persistent ids, which need caller code to resolve; nothing was run', { path });
      case OP.EXT1:
      case OP.EXT2:
      case OP.EXT4:
        throw new TensorioError('ERR_UNSAFE_PICKLE', 'the pickle uses the copyreg extension registry, which names arbitrary globals; nothing was run', { path });
      default:
        return false;
    }
  }

  private findGlobal(module: string, name: string): unknown {
    const found = resolveGlobal(module, name, this.profile, this.path);
    return 'value' in found ? found.value : this.owned(found.standIn);
  }

  private call(callable: unknown, args: unknown): unknown {
    const profile = this.profile;
    if (profile && this.isOwned(callable)) {
      if (!(args instanceof Tuple)) throw bad(this.path, 'the arguments of a REDUCE are not a tuple');
      return this.owned(profile.call(callable, args.items.map((a) => this.plain(a)), false));
    }
    if (!(callable instanceof Global)) throw bad(this.path, 'REDUCE of something that is not a global');
    if (!(args instanceof Tuple)) throw bad(this.path, `the arguments of ${callable.module}.${callable.name} are not a tuple`);
    return reduce(callable, args.items, this.path);
  }
}
