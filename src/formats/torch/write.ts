/**
 * Writing PyTorch checkpoints: the zip format that `torch.load(path, weights_only=True)` reads,
 * with a protocol-2 `data.pkl` naming only `torch._utils._rebuild_tensor_v2`/`_v3`, storage
 * classes, dtypes and `collections.OrderedDict`, and one stored, 64-byte-aligned `data/<key>`
 * member per storage. Arrays that view overlapping bytes of one buffer with one dtype (tied
 * weights, a view and its base) become one storage, written once, as torch.save does.
 */
import { checkOptions, keysOf } from '../../options.js';
import { dtypeInfo, type DType } from '../../dtype.js';
import { TensorioError } from '../../errors.js';
import { AtomicWriter, type WriteOptions, WRITE_OPTION_KEYS } from '../../io/atomic-writer.js';
import { bytesOf, validateNdArray, type NdArray } from '../../ndarray.js';
import { OP } from '../pickle/opcodes.js';
import { encodeLong, isNdArrayLike } from '../pickle/pickler.js';
import { ZipWriter } from '../zip.js';
import { planStorages, type Placed } from './storage-plan.js';
import { writeTorchShards } from './write-sharded.js';

/** The options writeTorch takes (checked: a misspelt key is ERR_INVALID_ARGUMENT). */
export const WRITE_TORCH_OPTIONS = keysOf<TorchWriteOptions>({ ...WRITE_OPTION_KEYS, maxShardSize: true });

/** What {@link writeTorch} writes: an NdArray, or lists, records and Maps of NdArrays and plain values. */
export type TorchSaveValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | NdArray
  | readonly TorchSaveValue[]
  | ReadonlyMap<string | number, TorchSaveValue>
  | { readonly [key: string]: TorchSaveValue };

/** The legacy storage class torch.save names for a dtype; absent: an UntypedStorage with a dtype (`_rebuild_tensor_v3`). */
const STORAGE_CLASS: Partial<Record<DType, string>> = {
  float32: 'FloatStorage',
  float64: 'DoubleStorage',
  float16: 'HalfStorage',
  bfloat16: 'BFloat16Storage',
  int64: 'LongStorage',
  int32: 'IntStorage',
  int16: 'ShortStorage',
  int8: 'CharStorage',
  uint8: 'ByteStorage',
  bool: 'BoolStorage',
  complex64: 'ComplexFloatStorage',
  complex128: 'ComplexDoubleStorage',
};

class PickleSink {
  private parts: Uint8Array[] = [];
  private bytes: number[] = [];
  private readonly memo = new Map<string, number>();

  op(...codes: number[]): void {
    for (const c of codes) this.bytes.push(c);
  }

  raw(data: Uint8Array): void {
    for (const b of data) this.bytes.push(b);
    if (this.bytes.length > 1 << 16) this.flush();
  }

  private flush(): void {
    this.parts.push(Uint8Array.from(this.bytes));
    this.bytes = [];
  }

  u32(value: number): void {
    this.op(value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, (value >>> 24) & 0xff);
  }

  /** A global, written once and fetched from the memo afterwards. */
  global(module: string, name: string): void {
    const id = `${module}\n${name}`;
    const index = this.memo.get(id);
    if (index !== undefined) {
      if (index < 256) this.op(OP.BINGET, index);
      else {
        this.op(OP.LONG_BINGET);
        this.u32(index);
      }
      return;
    }
    this.op(OP.GLOBAL);
    this.raw(new TextEncoder().encode(`${id}\n`));
    const at = this.memo.size;
    this.memo.set(id, at);
    if (at < 256) this.op(OP.BINPUT, at);
    else {
      this.op(OP.LONG_BINPUT);
      this.u32(at);
    }
  }

  str(text: string): void {
    const utf8 = new TextEncoder().encode(text);
    this.op(OP.BINUNICODE);
    this.u32(utf8.length);
    this.raw(utf8);
  }

  int(value: number | bigint): void {
    if (typeof value === 'number' && Number.isInteger(value) && value >= -(2 ** 31) && value < 2 ** 31) {
      this.op(OP.BININT);
      this.u32(value >>> 0);
      return;
    }
    const out = encodeLong(value);
    this.op(OP.LONG1, out.length, ...out);
  }

  float(value: number): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, value, false);
    this.op(OP.BINFLOAT);
    this.raw(b);
  }

  tuple(write: () => void): void {
    this.op(OP.MARK);
    write();
    this.op(OP.TUPLE);
  }

  finish(): Uint8Array[] {
    this.op(OP.STOP);
    this.flush();
    return this.parts;
  }
}

function stridesOf(array: NdArray): number[] {
  const shape = array.shape;
  const out = new Array<number>(shape.length);
  let s = 1;
  if (array.order === 'F') {
    for (let i = 0; i < shape.length; i++) {
      out[i] = s;
      s *= shape[i] as number;
    }
  } else {
    for (let i = shape.length - 1; i >= 0; i--) {
      out[i] = s;
      s *= shape[i] as number;
    }
  }
  return out;
}

function isPlainRecord(value: unknown): value is Record<string, TorchSaveValue> {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || ArrayBuffer.isView(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Collects the NdArrays of a value, checking each, and refusing what torch.save could not have written. */
function collect(value: TorchSaveValue, path: string, where: string, out: NdArray[], active: Set<object>): void {
  if (value === null || typeof value === 'boolean' || typeof value === 'string' || typeof value === 'bigint') return;
  if (typeof value === 'number') return;
  if (isNdArrayLike(value)) {
    try {
      validateNdArray(value, path);
    } catch (error) {
      if (error instanceof TensorioError) throw new TensorioError(error.code, `${where || 'the value'}: ${error.message.replace(`${path}: `, '')}`, { path, cause: error });
      throw error;
    }
    out.push(value);
    return;
  }
  if (typeof value !== 'object') throw new TensorioError('ERR_INVALID_ARGUMENT', `${where || 'the value'} is a ${typeof value}, which writeTorch cannot write`, { path });
  if (active.has(value)) throw new TensorioError('ERR_INVALID_ARGUMENT', `${where || 'the value'} contains itself`, { path });
  active.add(value);
  const join = (k: string): string => (where === '' ? k : `${where}.${k}`);
  if (Array.isArray(value)) value.forEach((v: TorchSaveValue, i: number) => collect(v, path, join(String(i)), out, active));
  else if (value instanceof Map) {
    for (const [k, v] of value) {
      if (typeof k !== 'string' && !(typeof k === 'number' && Number.isSafeInteger(k))) throw new TensorioError('ERR_INVALID_ARGUMENT', `${where || 'a Map'} has a key that is neither a string nor an integer`, { path });
      collect(v, path, join(String(k)), out, active);
    }
  } else if (isPlainRecord(value)) for (const [k, v] of Object.entries(value)) collect(v, path, join(k), out, active);
  else throw new TensorioError('ERR_INVALID_ARGUMENT', `${where || 'the value'} is an object writeTorch cannot write (not an NdArray, Array, Map or plain record)`, { path });
  active.delete(value);
}

function writeValue(sink: PickleSink, value: TorchSaveValue, placed: Map<NdArray, Placed>): void {
  if (value === null) sink.op(OP.NONE);
  else if (value === true) sink.op(OP.NEWTRUE);
  else if (value === false) sink.op(OP.NEWFALSE);
  else if (typeof value === 'bigint') sink.int(value);
  else if (typeof value === 'number') {
    if (Number.isSafeInteger(value) && !Object.is(value, -0)) sink.int(value);
    else sink.float(value);
  } else if (typeof value === 'string') sink.str(value);
  else if (isNdArrayLike(value)) writeTensor(sink, value, placed.get(value) as Placed);
  else if (Array.isArray(value)) {
    sink.op(OP.EMPTY_LIST, OP.MARK);
    for (const item of value as TorchSaveValue[]) writeValue(sink, item, placed);
    sink.op(OP.APPENDS);
  } else {
    // A dict; records as torch's state dicts are written: an OrderedDict.
    sink.global('collections', 'OrderedDict');
    sink.op(OP.EMPTY_TUPLE, OP.REDUCE, OP.MARK);
    const entries: [string | number, TorchSaveValue][] = value instanceof Map ? [...(value as ReadonlyMap<string | number, TorchSaveValue>)] : Object.entries(value);
    for (const [k, v] of entries) {
      if (typeof k === 'number') sink.int(k);
      else sink.str(k);
      writeValue(sink, v, placed);
    }
    sink.op(OP.SETITEMS);
  }
}

function writeTensor(sink: PickleSink, array: NdArray, place: Placed): void {
  const storageClass = STORAGE_CLASS[array.dtype];
  const itemSize = dtypeInfo(array.dtype).itemSize;
  const storageBytes = place.storage.end - place.storage.start;
  sink.global('torch._utils', storageClass ? '_rebuild_tensor_v2' : '_rebuild_tensor_v3');
  sink.op(OP.MARK);
  // The persistent id ('storage', class, key, location, numel); an UntypedStorage counts bytes.
  sink.tuple(() => {
    sink.str('storage');
    if (storageClass) sink.global('torch', storageClass);
    else sink.global('torch.storage', 'UntypedStorage');
    sink.str(place.storage.key);
    sink.str('cpu');
    sink.int(storageClass ? storageBytes / itemSize : storageBytes);
  });
  sink.op(OP.BINPERSID);
  sink.int(place.offset);
  sink.tuple(() => array.shape.forEach((d) => sink.int(d)));
  sink.tuple(() => stridesOf(array).forEach((d) => sink.int(d)));
  sink.op(OP.NEWFALSE);
  sink.global('collections', 'OrderedDict');
  sink.op(OP.EMPTY_TUPLE, OP.REDUCE);
  if (!storageClass) sink.global('torch', array.dtype);
  sink.op(OP.TUPLE, OP.REDUCE);
}

/** Options of {@link writeTorch}. */
export interface TorchWriteOptions extends WriteOptions {
  /**
   * Split a state dict into shards of at most this many bytes of storage (a number, or '5GB' =
   * 5×10^9, '2GiB' = 2×2^30): `pytorch_model-00001-of-0000N.bin` ... beside `path` and
   * `path + '.index.json'`, as `transformers`' `save_pretrained(safe_serialization=False)`
   * writes them. Tensors on one storage stay in one shard. Default: one file.
   */
  maxShardSize?: number | string;
}

/**
 * Writes `value` as `torch.save(value, path)` would (the zip format, pickle protocol 2), so
 * `torch.load(path, weights_only=True)` reads it back: NdArrays become tensors (Fortran-order
 * arrays keep their layout as strides), records and Maps become OrderedDicts, Arrays lists,
 * numbers ints or floats, bigints ints. Storages are stored uncompressed with their data at a
 * multiple of 64 bytes; arrays that view overlapping bytes of one buffer with one dtype share a
 * storage, written once. Atomic (temporary file, fsync, rename) like every write. With
 * `maxShardSize`, a state dict (a record or Map of NdArrays) is written as shards and an index
 * (see {@link TorchWriteOptions}); one that fits one shard is written to `path` alone.
 * @param options `fsync` (default true), `maxShardSize`.
 * @throws TensorioError `ERR_INVALID_ARGUMENT` (a value writeTorch cannot write, a cycle, a
 * sharded value that is not a state dict), `ERR_SHAPE_MISMATCH`, `ERR_UNSUPPORTED_DTYPE`, and
 * the file-system errors.
 */
export async function writeTorch(path: string, value: TorchSaveValue, options: TorchWriteOptions = {}): Promise<void> {
  await writeTorchFiles(path, value, options);
}

/** {@link writeTorch}, returning the files written (the shards and then the index, when sharded). */
export async function writeTorchFiles(path: string, value: TorchSaveValue, options: TorchWriteOptions = {}): Promise<string[]> {
  checkOptions(options, WRITE_TORCH_OPTIONS, 'writeTorch', path);
  if (path.toLowerCase().endsWith('.index.json')) {
    throw new TensorioError('ERR_INVALID_ARGUMENT', 'writeTorch writes one checkpoint file; it does not write a sharded checkpoint\'s index (name the file .pt, .pth, .ckpt or .bin)', { path });
  }
  const { maxShardSize, ...write } = options;
  if (maxShardSize !== undefined) return writeTorchShards(path, value, maxShardSize, write, writeOne);
  await writeOne(path, value, write);
  return [path];
}

/** One checkpoint file. */
async function writeOne(path: string, value: TorchSaveValue, options: WriteOptions): Promise<void> {
  const arrays: NdArray[] = [];
  collect(value, path, '', arrays, new Set());
  const placed = planStorages(arrays);
  const sink = new PickleSink();
  sink.op(OP.PROTO, 2);
  writeValue(sink, value, placed);
  const pickle = sink.finish();
  const storages = [...new Set([...placed.values()].map((p) => p.storage))];
  const out = await AtomicWriter.open(path, options);
  try {
    const zip = new ZipWriter(out, path);
    const text = (s: string): Uint8Array[] => [new TextEncoder().encode(s)];
    await zip.addStored('archive/data.pkl', pickle);
    await zip.addStored('archive/.format_version', text('1'));
    await zip.addStored('archive/.storage_alignment', text('64'));
    await zip.addStored('archive/byteorder', text('little'));
    for (const s of storages) {
      const bytes = bytesOf(new Uint8Array(s.buffer, s.start, s.end - s.start));
      await zip.addStored(`archive/data/${s.key}`, [bytes], 64);
    }
    await zip.addStored('archive/version', text('3\n'));
    await zip.finish();
    await out.commit();
  } catch (error) {
    await out.abort();
    throw error;
  }
}
