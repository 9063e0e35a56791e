/**
 * The unpickler: an interpreter of the pickle virtual machine (protocols 0 to 5) that never
 * calls or evaluates anything. {@link Unpickler} holds the machine's state (position, stack,
 * marks, memo) and one table of actions per group of opcodes, each action a method of the
 * machine, looked up by opcode (opcodes.ts names them); globals are looked up in the
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

/** What an opcode does to the machine; its arguments follow it in the pickle. */
type Action = (this: Unpickler, op: number) => void;
/** A group of opcodes' actions, by opcode. */
type Actions = Readonly<Record<number, Action>>;

/** One action for several opcodes (the forms of one operation that share their handling). */
function same(ops: readonly number[], action: Action): Actions {
  return Object.fromEntries(ops.map((op) => [op, action]));
}

/**
 * The pickle machine over one pickle. {@link run} reads an opcode at a time and runs its
 * action from {@link actions}: the union of the opcode groups below, one table of actions
 * per group, each a method of the machine.
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
      const action = Unpickler.actions[op];
      if (!action) throw bad(this.path, `unknown opcode 0x${op.toString(16).padStart(2, '0')} at byte ${this.pos - 1}`);
      action.call(this, op);
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

  /** The `n` bytes of a fixed-size argument at the position (checked), read by `get`; the position moves past them. */
  private fixed<T>(n: number, what: string, get: (at: number) => T): T {
    this.need(n, what);
    const at = this.pos;
    this.pos += n;
    return get(at);
  }

  private u16(): number {
    return this.fixed(2, 'an argument', (at) => this.view.getUint16(at, true));
  }

  private u32(): number {
    return this.fixed(4, 'an argument', (at) => this.view.getUint32(at, true));
  }

  private i32(what: string): number {
    return this.fixed(4, what, (at) => this.view.getInt32(at, true));
  }

  private u64(): number {
    const v = this.fixed(8, 'an argument', (at) => this.view.getBigUint64(at, true));
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
  private static readonly control: Actions = {
    [OP.PROTO]() {
      if (this.u8() > 5) throw bad(this.path, `pickle protocol ${this.bytes[this.pos - 1]} is newer than 5`);
    },
    [OP.FRAME]() {
      // a length hint only
      this.u64();
    },
    [OP.MARK]() {
      this.marks.push(this.stack);
      this.stack = [];
    },
    [OP.POP]() {
      if (this.stack.length === 0 && this.marks.length > 0) this.popMark();
      else this.pop();
    },
    [OP.POP_MARK]() {
      this.popMark();
    },
    [OP.DUP]() {
      this.push(this.top());
    },
  };

  /** None, booleans, integers and floats. */
  private static readonly numbers: Actions = {
    [OP.NONE]() {
      this.push(null);
    },
    [OP.NEWTRUE]() {
      this.push(true);
    },
    [OP.NEWFALSE]() {
      this.push(false);
    },
    [OP.INT]() {
      // protocol 0; I01/I00 are True/False
      const t = this.line('INT').trim();
      if (t === '01') this.push(true);
      else if (t === '00') this.push(false);
      else if (/^[-+]?\d+$/.test(t)) this.push(pyInt(BigInt(t)));
      else throw bad(this.path, `invalid INT '${t.slice(0, 40)}'`);
    },
    [OP.LONG]() {
      // protocol 0
      const t = this.line('LONG').trim().replace(/L$/, '');
      if (!/^[-+]?\d+$/.test(t)) throw bad(this.path, `invalid LONG '${t.slice(0, 40)}'`);
      this.push(pyInt(BigInt(t)));
    },
    [OP.BININT]() {
      this.push(this.i32('BININT'));
    },
    [OP.BININT1]() {
      this.push(this.u8());
    },
    [OP.BININT2]() {
      this.push(this.u16());
    },
    [OP.LONG1]() {
      this.push(decodeLong(this.take(this.u8(), 'LONG1')));
    },
    [OP.LONG4]() {
      const n = this.i32('LONG4');
      if (n < 0) throw bad(this.path, 'LONG4 with a negative length');
      this.push(decodeLong(this.take(n, 'LONG4')));
    },
    [OP.FLOAT]() {
      // protocol 0
      const t = this.line('FLOAT').trim();
      if (/^[-+]?inf$/i.test(t)) this.push(t.startsWith('-') ? -Infinity : Infinity);
      else if (/^[-+]?nan$/i.test(t)) this.push(NaN);
      else if (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(t)) this.push(Number(t));
      else throw bad(this.path, `invalid FLOAT '${t.slice(0, 40)}'`);
    },
    [OP.BINFLOAT]() {
      // big-endian
      this.push(this.fixed(8, 'BINFLOAT', (at) => this.view.getFloat64(at, false)));
    },
  };

  /** Text and byte strings, and buffers. */
  private static readonly strings: Actions = {
    [OP.STRING]() {
      // protocol 0: a quoted Python 2 byte string, read as latin-1
      const t = this.line('STRING').trimEnd();
      const quote = t[0];
      if ((quote !== "'" && quote !== '"') || t.length < 2 || t[t.length - 1] !== quote) throw bad(this.path, 'STRING is not quoted');
      this.push(unescapePy2(t.slice(1, -1), this.path));
    },
    [OP.BINSTRING]() {
      const n = this.i32('BINSTRING');
      if (n < 0) throw bad(this.path, 'BINSTRING with a negative length');
      this.push(latin1.decode(this.take(n, 'BINSTRING')));
    },
    [OP.SHORT_BINSTRING]() {
      this.push(latin1.decode(this.take(this.u8(), 'SHORT_BINSTRING')));
    },
    [OP.UNICODE]() {
      // protocol 0
      const end = this.bytes.indexOf(0x0a, this.pos);
      if (end < 0) throw bad(this.path, 'the data ends inside UNICODE (no newline)');
      this.push(rawUnicodeEscape(this.bytes.subarray(this.pos, end), this.path));
      this.pos = end + 1;
    },
    [OP.BINUNICODE]() {
      this.push(this.text(this.take(this.u32(), 'BINUNICODE')));
    },
    [OP.SHORT_BINUNICODE]() {
      this.push(this.text(this.take(this.u8(), 'SHORT_BINUNICODE')));
    },
    [OP.BINUNICODE8]() {
      this.push(this.text(this.take(this.u64(), 'BINUNICODE8')));
    },
    [OP.BINBYTES]() {
      this.push(this.take(this.u32(), 'BINBYTES'));
    },
    [OP.SHORT_BINBYTES]() {
      this.push(this.take(this.u8(), 'SHORT_BINBYTES'));
    },
    [OP.BINBYTES8]() {
      this.push(this.take(this.u64(), 'BINBYTES8'));
    },
    [OP.BYTEARRAY8]() {
      this.push(this.take(this.u64(), 'BYTEARRAY8'));
    },
    [OP.NEXT_BUFFER]() {
      throw bad(this.path, 'out-of-band buffers (NEXT_BUFFER) are not supported');
    },
    [OP.READONLY_BUFFER]() {
      this.top();
    },
  };

  /** Tuples, lists, dicts and sets. */
  private static readonly containers: Actions = {
    [OP.EMPTY_TUPLE]() {
      this.push(new Tuple([]));
    },
    [OP.TUPLE]() {
      // popMark() swaps the stack, so it must run before the push.
      const items = this.popMark();
      this.push(new Tuple(items));
    },
    [OP.TUPLE1]() {
      this.push(new Tuple([this.pop()]));
    },
    [OP.TUPLE2]() {
      const b = this.pop();
      this.push(new Tuple([this.pop(), b]));
    },
    [OP.TUPLE3]() {
      const c = this.pop();
      const b = this.pop();
      this.push(new Tuple([this.pop(), b, c]));
    },
    [OP.EMPTY_LIST]() {
      this.push([]);
    },
    [OP.LIST]() {
      const items = this.popMark();
      this.push(items);
    },
    [OP.APPEND]() {
      const item = this.pop();
      this.appendTo(this.top(), [item]);
    },
    [OP.APPENDS]() {
      const items = this.popMark();
      this.appendTo(this.top(), items);
    },
    [OP.EMPTY_DICT]() {
      this.push(new Dict());
    },
    [OP.DICT]() {
      const d = new Dict();
      this.setItems(d, this.popMark());
      this.push(d);
    },
    [OP.SETITEM]() {
      const value = this.pop();
      const key = this.pop();
      this.setItems(this.top(), [key, value]);
    },
    [OP.SETITEMS]() {
      const items = this.popMark();
      this.setItems(this.top(), items);
    },
    [OP.EMPTY_SET]() {
      this.push(new PySet([], false));
    },
    [OP.ADDITEMS]() {
      const items = this.popMark();
      const target = this.top();
      if (!(target instanceof PySet) || target.frozen) throw bad(this.path, 'ADDITEMS to something that is not a set');
      target.items.push(...items);
    },
    [OP.FROZENSET]() {
      const items = this.popMark();
      this.push(new PySet(items, true));
    },
  };

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
  private static readonly memoOps: Actions = {
    [OP.PUT]() {
      const t = this.line('PUT');
      if (!/^\d+$/.test(t)) throw bad(this.path, `invalid PUT index '${t.slice(0, 40)}'`);
      this.memo.set(Number(t), this.top());
    },
    [OP.BINPUT]() {
      this.memo.set(this.u8(), this.top());
    },
    [OP.LONG_BINPUT]() {
      this.memo.set(this.u32(), this.top());
    },
    [OP.MEMOIZE]() {
      this.memo.set(this.memo.size, this.top());
    },
    [OP.GET]() {
      const t = this.line('GET');
      if (!/^\d+$/.test(t)) throw bad(this.path, `invalid GET index '${t.slice(0, 40)}'`);
      this.push(this.memoGet(Number(t)));
    },
    [OP.BINGET]() {
      this.push(this.memoGet(this.u8()));
    },
    [OP.LONG_BINGET]() {
      this.push(this.memoGet(this.u32()));
    },
  };

  private memoGet(index: number): unknown {
    if (!this.memo.has(index)) throw bad(this.path, `memo entry ${index} is read before it is written`);
    return this.memo.get(index);
  }

  /** Globals, calls, BUILD and persistent ids: what the allowlist or the profile decides. */
  private static readonly objects: Actions = {
    [OP.GLOBAL]() {
      const module = this.line('GLOBAL');
      const name = this.line('GLOBAL');
      this.push(this.findGlobal(module, name));
    },
    [OP.STACK_GLOBAL]() {
      const name = this.pop();
      const module = this.pop();
      if (typeof module !== 'string' || typeof name !== 'string') throw bad(this.path, 'STACK_GLOBAL needs two strings');
      this.push(this.findGlobal(module, name));
    },
    [OP.REDUCE]() {
      const args = this.pop();
      const callable = this.pop();
      this.push(this.call(callable, args));
    },
    [OP.NEWOBJ]() {
      const profile = this.profile;
      // cls.__new__(cls, *args); only OrderedDict is ever built this way here.
      const args = this.pop();
      const cls = this.pop();
      if (profile && this.isOwned(cls) && args instanceof Tuple) this.push(this.owned(profile.call(cls, args.items.map((a) => this.plain(a)), true)));
      else if (cls instanceof Global && cls.handler === 'ordereddict' && args instanceof Tuple && args.items.length === 0) this.push(new Dict());
      else throw unsafeCall(cls, this.path);
    },
    [OP.INST]() {
      const module = this.line('INST');
      const name = this.line('INST');
      this.findGlobal(module, name);
      throw unsafeCall(new Global(module, name, 'value'), this.path);
    },
    [OP.NEWOBJ_EX]() {
      throw unsafeCall(this.stack[this.stack.length - 3], this.path);
    },
    [OP.OBJ]() {
      throw unsafeCall(this.stack[0], this.path);
    },
    [OP.BUILD]() {
      const profile = this.profile;
      const state = this.pop();
      const target = this.top();
      if (profile && this.isOwned(target)) {
        if (!profile.build) throw bad(this.path, `BUILD of an object the ${profile.name} profile does not build`);
        profile.build(target, this.plain(state));
      } else if (profile?.dictState === 'attributes' && target instanceof Dict && state instanceof Dict) {
        // An OrderedDict's __dict__ (a state dict's _metadata): attributes, not items.
      } else build(target, state, this.path);
    },
    ...same([OP.PERSID, OP.BINPERSID], function (op) {
      const profile = this.profile;
      if (profile?.persistentLoad) {
        const pid = op === OP.PERSID ? this.line('PERSID') : this.pop();
        this.push(this.owned(profile.persistentLoad(this.plain(pid))));
        return;
      }
      throw new TensorioError('ERR_UNSAFE_PICKLE', 'the pickle uses persistent ids, which need caller code to resolve; nothing was run', { path: this.path });
    }),
    ...same([OP.EXT1, OP.EXT2, OP.EXT4], function () {
      throw new TensorioError('ERR_UNSAFE_PICKLE', 'the pickle uses the copyreg extension registry, which names arbitrary globals; nothing was run', { path: this.path });
    }),
  };

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

  /** Every opcode's action, indexed by opcode (declared after the groups: static fields initialize in order). */
  private static readonly actions: readonly (Action | undefined)[] = Object.assign(
    new Array<Action | undefined>(256).fill(undefined),
    Unpickler.control,
    Unpickler.numbers,
    Unpickler.strings,
    Unpickler.containers,
    Unpickler.memoOps,
    Unpickler.objects,
  );

}
