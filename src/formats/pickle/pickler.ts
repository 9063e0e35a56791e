/**
 * The pickle writer: protocol 3 (what `np.save` uses; 4 past 4 GiB) with only NumPy's
 * reconstruct globals, in the `numpy.core.multiarray` spelling that NumPy 1.x and 2.x both
 * resolve. Values are written as chunks: opcodes in small buffers, array data as views into
 * the arrays (never copied). Also `encodeLong`, which the PyTorch writer shares.
 */
import { TensorioError } from '../../errors.js';
import { bytesOf, shapeSize, tensorHint, validateNdArray, type NdArray } from '../../ndarray.js';
import { descrFor } from '../numpy/header.js';
import { isObjectArray, type ObjectArray } from './object-array.js';
import { OP } from './opcodes.js';
import type { PyLeaf } from './values.js';


/** What {@link pickleChunks} can write. */
export type PicklableValue =
  | PyLeaf
  | ObjectArray<PicklableValue>
  | readonly PicklableValue[]
  | { readonly [key: string]: PicklableValue };

/** True for an object shaped like an NdArray ({ dtype, shape, data }). */
export function isNdArrayLike(value: unknown): value is NdArray {
  return (
    typeof value === 'object' && value !== null && 'dtype' in value && 'shape' in value && 'data' in value && ArrayBuffer.isView((value as NdArray).data)
  );
}

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
    this.sized(OP.BINUNICODE, OP.BINUNICODE8, encoded.length);
    this.bytes(encoded);
  }
  /** A bytes object: BINBYTES, or past 4 GiB protocol 4's BINBYTES8. */
  binbytes(payload: Uint8Array): void {
    if (payload.length >= FOUR_GIB) this.protocol = 4;
    this.sized(OP.BINBYTES, OP.BINBYTES8, payload.length);
    this.bytes(payload);
  }
  /** An opcode with a 4-byte length, or its 8-byte-length form past 4 GiB. */
  private sized(short: number, long: number, length: number): void {
    if (length >= FOUR_GIB) {
      this.byte(long);
      this.u64(length);
    } else {
      this.byte(short);
      this.u32(length);
    }
  }
  /** A global, memoized so each is spelled once (as Python's pickler does). */
  global(module: string, name: string): void {
    const key = `${module}\n${name}`;
    const index = this.memo.get(key);
    if (index !== undefined) {
      this.memoOp(OP.BINGET, OP.LONG_BINGET, index);
      return;
    }
    this.bytes(new TextEncoder().encode(`c${module}\n${name}\n`));
    const next = this.memo.size;
    this.memo.set(key, next);
    this.memoOp(OP.BINPUT, OP.LONG_BINPUT, next);
  }
  /** A memo get or put: the one-byte index form below 256, else the four-byte one. */
  private memoOp(short: number, long: number, index: number): void {
    this.byte(index < 256 ? short : long);
    if (index < 256) this.byte(index);
    else this.u32(index);
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
  sink.bytes(Uint8Array.of(OP.SHORT_BINBYTES, 1, 0x62)); // b'b'
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
  validateNdArray(array, path);
  const descr = descrFor(array.dtype);
  writeNdarrayHead(sink);
  writeShape(sink, array.shape);
  writeDtype(sink, descr.slice(1), descr[0] as string);
  sink.byte(isFortranLayout(array.shape, array.order) ? OP.NEWTRUE : OP.NEWFALSE);
  sink.binbytes(bytesOf(array.data));
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
    sink.binbytes(value);
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
