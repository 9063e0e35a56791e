/**
 * What a PyTorch pickle may name: the unpickler profile that accepts the globals of
 * `torch/_weights_only_unpickler.py` (`torch.load(weights_only=True)`) that tensors and state
 * dicts use, and turns `_rebuild_tensor_v2` and its variants, storage persistent ids,
 * `torch.Size` and dtypes into {@link TensorRef}s and {@link StorageRef}s: descriptions of
 * tensors whose bytes are read later (src/formats/torch/tensor.ts). Nothing is called.
 */
import { dtypeInfo, type DType } from '../../dtype.js';
import { TensorioError } from '../../errors.js';
import type { UnpickleProfile } from '../pickle/allowlist.js';
import type { PyObject } from '../pickle/values.js';

/** A storage a persistent id names: its key, element type, and the element count it claims. */
export class StorageRef {
  constructor(
    /** The key (`data/<key>` in a zip, the storage's number in a legacy file). */
    readonly key: string,
    /** Null for an UntypedStorage (bytes; the tensor's dtype comes from `_rebuild_tensor_v3`). */
    readonly dtype: DType | null,
    /** Bytes per element of the storage as written (1 for an UntypedStorage). */
    readonly itemSize: number,
    /** Elements of the root storage, as the persistent id claims. */
    readonly numel: number,
    /** A legacy (before 0.4) view into the root storage: element offset and length. */
    readonly view: { offset: number; size: number } | null,
  ) {}
}

/** A tensor as the pickle describes it: a storage, an element type, an offset, a shape and strides. */
export class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly dtype: DType,
    /** In elements of `dtype`. */
    readonly offset: number,
    readonly shape: number[],
    /** In elements of `dtype`. */
    readonly stride: number[],
    /** Whether the pickle rebuilt it as an `nn.Parameter`. */
    readonly parameter: boolean,
  ) {}
}

/** Legacy storage classes (`torch.FloatStorage`, ...) and the dtype each holds. */
const STORAGE_TYPES: Readonly<Record<string, DType>> = {
  FloatStorage: 'float32',
  DoubleStorage: 'float64',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  LongStorage: 'int64',
  IntStorage: 'int32',
  ShortStorage: 'int16',
  CharStorage: 'int8',
  ByteStorage: 'uint8',
  BoolStorage: 'bool',
  ComplexFloatStorage: 'complex64',
  ComplexDoubleStorage: 'complex128',
};
/** Dense legacy tensor classes (`torch.FloatTensor`, `torch.cuda.LongTensor`, ...). */
const TENSOR_TYPES = new Set(['Float', 'Double', 'Half', 'BFloat16', 'Long', 'Int', 'Short', 'Char', 'Byte', 'Bool'].map((t) => `${t}Tensor`));
// Storage classes weights_only allows whose elements tensorio has no dtype for.
const UNSUPPORTED_STORAGES = new Set(['QInt8Storage', 'QInt32Storage', 'QUInt8Storage', 'QUInt4x2Storage', 'QUInt2x4Storage']);

/** `torch.<name>` dtype globals and tensorio's dtype for each. */
export const TORCH_DTYPES: Readonly<Record<string, DType>> = {
  float32: 'float32',
  float64: 'float64',
  float16: 'float16',
  bfloat16: 'bfloat16',
  int64: 'int64',
  int32: 'int32',
  int16: 'int16',
  int8: 'int8',
  uint8: 'uint8',
  uint16: 'uint16',
  uint32: 'uint32',
  uint64: 'uint64',
  bool: 'bool',
  complex64: 'complex64',
  complex128: 'complex128',
  float8_e4m3fn: 'float8_e4m3fn',
  float8_e5m2: 'float8_e5m2',
};
// dtype globals weights_only allows that tensorio cannot hold.
const UNSUPPORTED_DTYPES = new Set([
  'float8_e5m2fnuz', 'float8_e4m3fnuz', 'float8_e8m0fnu', 'float4_e2m1fn_x2', 'complex32', 'bcomplex32',
  'qint8', 'quint8', 'qint32', 'quint4x2', 'quint2x4', 'bits8', 'bits16', 'bits1x8', 'bits2x4', 'bits4x2',
  'uint1', 'uint2', 'uint3', 'uint4', 'uint5', 'uint6', 'uint7', 'int1', 'int2', 'int3', 'int4', 'int5', 'int6', 'int7',
  'per_tensor_affine', 'per_tensor_symmetric', 'per_channel_affine', 'per_channel_symmetric', 'per_channel_affine_float_qparams',
]);

type Kind =
  | 'rebuild_tensor'
  | 'rebuild_tensor_v2'
  | 'rebuild_tensor_v3'
  | 'rebuild_parameter'
  | 'rebuild_parameter_with_state'
  | 'rebuild_from_type_v2'
  | 'unsupported_rebuild'
  | 'parameter'
  | 'tensor_class'
  | 'tensor_type'
  | 'size'
  | 'device'
  | 'layout'
  | 'storage'
  | 'untyped_storage'
  | 'dtype';

/** The stand-in the unpickler holds for an allowed global. */
class TorchGlobal {
  constructor(
    readonly qualified: string,
    readonly kind: Kind,
    readonly dtype: DType | null = null,
  ) {}
}

const REBUILDS: Readonly<Record<string, Kind>> = {
  _rebuild_tensor: 'rebuild_tensor',
  _rebuild_tensor_v2: 'rebuild_tensor_v2',
  _rebuild_tensor_v3: 'rebuild_tensor_v3',
  _rebuild_parameter: 'rebuild_parameter',
  _rebuild_parameter_with_state: 'rebuild_parameter_with_state',
  // Allowed by weights_only, but quantized, sparse, meta, subclass and device-copied tensors are
  // not dense CPU storages: refused as unsupported when called.
  _rebuild_qtensor: 'unsupported_rebuild',
  _rebuild_sparse_tensor: 'unsupported_rebuild',
  _rebuild_meta_tensor_no_storage: 'unsupported_rebuild',
  _rebuild_wrapper_subclass: 'unsupported_rebuild',
  _rebuild_device_tensor_from_numpy: 'unsupported_rebuild',
  _rebuild_device_tensor_from_cpu_tensor: 'unsupported_rebuild',
};

function lookup(module: string, name: string): TorchGlobal | undefined {
  const q = `${module}.${name}`;
  if (module === 'torch._utils' && REBUILDS[name]) return new TorchGlobal(q, REBUILDS[name] as Kind);
  if (q === 'torch._tensor._rebuild_from_type_v2') return new TorchGlobal(q, 'rebuild_from_type_v2');
  if (q === 'torch.nn.parameter.Parameter') return new TorchGlobal(q, 'parameter');
  if (q === 'torch.Tensor') return new TorchGlobal(q, 'tensor_class');
  if (q === 'torch.Size') return new TorchGlobal(q, 'size');
  if (q === 'torch.device') return new TorchGlobal(q, 'device');
  if (q === 'torch.serialization._get_layout') return new TorchGlobal(q, 'layout');
  if (q === 'torch.storage.UntypedStorage') return new TorchGlobal(q, 'untyped_storage');
  if (module === 'torch' || module === 'torch.cuda') {
    // The legacy tensor classes (torch.FloatTensor, ...): values only, as the tar layout's
    // tensor records name them (weights_only allows torch._tensor_classes).
    if (TENSOR_TYPES.has(name)) return new TorchGlobal(q, 'tensor_type');
    const storage = STORAGE_TYPES[name];
    if (storage) return new TorchGlobal(q, 'storage', storage);
    if (UNSUPPORTED_STORAGES.has(name)) return new TorchGlobal(q, 'storage');
  }
  if (module === 'torch') {
    const dtype = TORCH_DTYPES[name];
    if (dtype) return new TorchGlobal(q, 'dtype', dtype);
    if (UNSUPPORTED_DTYPES.has(name)) return new TorchGlobal(q, 'dtype');
  }
  return undefined;
}

function badValue(path: string | undefined, what: string): TensorioError {
  return new TensorioError('ERR_BAD_VALUE', what, { path });
}

/** A non-negative safe integer, or a typed error naming what it is. */
export function nonNegativeInt(value: PyObject, what: string, path: string | undefined): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw badValue(path, `${what} must be a non-negative integer, got ${typeof value === 'bigint' ? `${value}` : JSON.stringify(value) ?? String(value)}`);
  }
  return value;
}

function dims(value: PyObject, what: string, path: string | undefined): number[] {
  if (!Array.isArray(value)) throw badValue(path, `${what} must be a tuple of integers`);
  if (value.length > 64) throw badValue(path, `${what} has ${value.length} dimensions, more than 64`);
  return value.map((d, i) => nonNegativeInt(d, `${what}[${i}]`, path));
}

/**
 * The last element a tensor reaches in its storage is inside it: offset + sum((size - 1) *
 * stride) < numel, computed in safe integers. An empty tensor reaches nothing.
 */
export function checkExtent(offset: number, shape: number[], stride: number[], numel: number, what: string, path: string | undefined): void {
  if (shape.length !== stride.length) throw badValue(path, `${what}: size has ${shape.length} dimensions, stride ${stride.length}`);
  if (shape.some((d) => d === 0)) {
    if (offset > numel) throw badValue(path, `${what}: storage offset ${offset} is past the storage's ${numel} elements`);
    return;
  }
  let last = offset;
  for (let i = 0; i < shape.length; i++) {
    last += ((shape[i] as number) - 1) * (stride[i] as number);
    if (!Number.isSafeInteger(last)) throw new TensorioError('ERR_TOO_LARGE', `${what}: size and stride reach past any real storage`, { path });
  }
  if (last >= numel) {
    throw badValue(path, `${what}: offset ${offset}, size (${shape.join(', ')}) and stride (${stride.join(', ')}) reach element ${last}, the storage holds ${numel}`);
  }
}

/**
 * The element type of a legacy storage class the pickle names as a value (the tar layout's
 * storage records: `(key, location, torch.FloatStorage)`).
 * @throws TensorioError `ERR_BAD_VALUE` (not a storage class), `ERR_UNSUPPORTED_DTYPE` (quantized).
 */
export function storageClassOf(value: PyObject, what: string, path: string | undefined): { dtype: DType; itemSize: number } {
  if (!(value instanceof TorchGlobal) || value.kind !== 'storage') throw badValue(path, `${what} does not name a storage class`);
  if (value.dtype === null) throw new TensorioError('ERR_UNSUPPORTED_DTYPE', `${value.qualified} holds quantized elements, which tensorio does not read`, { path });
  return { dtype: value.dtype, itemSize: dtypeInfo(value.dtype).itemSize };
}

/** Storage keys every persistent id named, with their element size: what a legacy file's data section must hold. */
export type StorageClaims = Map<string, StorageRef>;

/**
 * The profile for one pickle of one file. `claims` collects every storage the persistent ids
 * name (a legacy reader needs their element sizes to walk the data section).
 */
export function torchProfile(path: string | undefined, claims: StorageClaims = new Map()): UnpickleProfile {
  const tensorOf = (storage: PyObject, offset: PyObject, size: PyObject, stride: PyObject, dtype: DType | null, fn: string): TensorRef => {
    if (!(storage instanceof StorageRef)) throw badValue(path, `${fn} needs a storage as its first argument`);
    const resolved = dtype ?? storage.dtype;
    if (resolved === null) throw badValue(path, `${fn} of an UntypedStorage names no dtype`);
    const shape = dims(size, `${fn} size`, path);
    const strides = dims(stride, `${fn} stride`, path);
    const start = nonNegativeInt(offset, `${fn} storage offset`, path);
    // Offsets and bounds in elements of the tensor's dtype (an UntypedStorage counts bytes); a
    // legacy view's tensor counts from the view's start.
    const itemSize = dtypeInfo(resolved).itemSize;
    if (storage.dtype !== null && storage.dtype !== resolved) throw badValue(path, `${fn}: a ${resolved} tensor on a ${storage.dtype} storage`);
    const elements = storage.dtype === null ? Math.floor(storage.numel / itemSize) : storage.numel;
    checkExtent(start, shape, strides, storage.view ? storage.view.size : elements, `tensor on storage '${storage.key}'`, path);
    return new TensorRef(storage, resolved, start + (storage.view?.offset ?? 0), shape, strides, false);
  };
  const call = (fn: object, args: PyObject[], newobj: boolean): unknown => {
    if (!(fn instanceof TorchGlobal)) throw badValue(path, 'a REDUCE of an object that is not a torch global');
    const arity = (min: number, max = min): void => {
      if (args.length < min || args.length > max) throw new TensorioError('ERR_BAD_PICKLE', `malformed pickle: ${fn.qualified} called with ${args.length} arguments`, { path });
    };
    if (newobj && fn.kind !== 'parameter') throw new TensorioError('ERR_UNSAFE_PICKLE', `the pickle builds ${fn.qualified} with NEWOBJ, which weights_only refuses; nothing was run`, { path });
    switch (fn.kind) {
      case 'rebuild_tensor':
        arity(4);
        return tensorOf(args[0] as PyObject, args[1] as PyObject, args[2] as PyObject, args[3] as PyObject, null, fn.qualified);
      case 'rebuild_tensor_v2':
        arity(6, 7);
        return tensorOf(args[0] as PyObject, args[1] as PyObject, args[2] as PyObject, args[3] as PyObject, null, fn.qualified);
      case 'rebuild_tensor_v3': {
        arity(7, 8);
        const dtype = args[6];
        if (!(dtype instanceof TorchGlobal) || dtype.kind !== 'dtype') throw badValue(path, `${fn.qualified} needs a torch dtype as its seventh argument`);
        if (dtype.dtype === null) throw new TensorioError('ERR_UNSUPPORTED_DTYPE', `the tensor's dtype ${dtype.qualified} has no tensorio dtype`, { path });
        return tensorOf(args[0] as PyObject, args[1] as PyObject, args[2] as PyObject, args[3] as PyObject, dtype.dtype, fn.qualified);
      }
      case 'rebuild_parameter':
      case 'rebuild_parameter_with_state':
      case 'parameter': {
        // Parameter(data, requires_grad) and the rebuild functions: the tensor, marked.
        arity(fn.kind === 'parameter' ? 0 : 3, fn.kind === 'rebuild_parameter_with_state' ? 4 : 3);
        const data = args[0];
        if (data === undefined) throw badValue(path, 'an nn.Parameter without data');
        if (!(data instanceof TensorRef)) throw badValue(path, `${fn.qualified} of something that is not a tensor`);
        return new TensorRef(data.storage, data.dtype, data.offset, data.shape, data.stride, true);
      }
      case 'rebuild_from_type_v2': {
        // (func, new_type, args, state): a plain Tensor or Parameter rebuilt through func.
        arity(4);
        const [inner, type, innerArgs] = args;
        if (!(type instanceof TorchGlobal) || (type.kind !== 'tensor_class' && type.kind !== 'parameter')) {
          throw new TensorioError('ERR_UNSAFE_PICKLE', 'the pickle rebuilds a tensor subclass, which tensorio does not build; nothing was run', { path });
        }
        if (!(inner instanceof TorchGlobal) || !Array.isArray(innerArgs)) throw badValue(path, `${fn.qualified} needs a rebuild function and its arguments`);
        return call(inner, innerArgs, false);
      }
      case 'size':
        arity(0, 1);
        return dims(args[0] ?? [], 'torch.Size', path);
      case 'device':
        arity(1, 2);
        return args.map(String).join(':');
      case 'layout':
        arity(1);
        if (args[0] !== 'torch.strided') throw new TensorioError('ERR_UNSUPPORTED_DTYPE', `tensors of layout ${String(args[0])} are not supported (only torch.strided)`, { path });
        return 'torch.strided';
      case 'unsupported_rebuild':
        throw new TensorioError('ERR_UNSUPPORTED_DTYPE', `the pickle rebuilds a tensor with ${fn.qualified} (quantized, sparse, meta or device tensors), which tensorio does not read`, { path });
      default:
        throw new TensorioError('ERR_UNSAFE_PICKLE', `the pickle calls ${fn.qualified}, which is accepted only as a value; nothing was run`, { path });
    }
  };
  const persistentLoad = (pid: PyObject): StorageRef => {
    if (!Array.isArray(pid) || pid[0] !== 'storage') {
      throw new TensorioError('ERR_UNSAFE_PICKLE', 'the pickle loads a persistent id that is not a storage, which weights_only refuses; nothing was run', { path });
    }
    if (pid.length !== 5 && pid.length !== 6) throw badValue(path, `a storage persistent id has ${pid.length} items, expected 5 or 6`);
    const [, type, key, , numel, view] = pid;
    if (!(type instanceof TorchGlobal) || (type.kind !== 'storage' && type.kind !== 'untyped_storage')) throw badValue(path, 'a storage persistent id does not name a storage class');
    if (type.kind === 'storage' && type.dtype === null) throw new TensorioError('ERR_UNSUPPORTED_DTYPE', `${type.qualified} holds quantized elements, which tensorio does not read`, { path });
    if (typeof key !== 'string' && typeof key !== 'number') throw badValue(path, 'a storage key is not a string');
    const itemSize = type.dtype === null ? 1 : dtypeInfo(type.dtype).itemSize;
    let viewOf: StorageRef['view'] = null;
    if (view !== undefined && view !== null) {
      if (!Array.isArray(view) || view.length !== 3) throw badValue(path, 'a storage view is not (key, offset, size)');
      viewOf = { offset: nonNegativeInt(view[1] as PyObject, 'a storage view offset', path), size: nonNegativeInt(view[2] as PyObject, 'a storage view size', path) };
    }
    const ref = new StorageRef(String(key), type.dtype, itemSize, nonNegativeInt(numel as PyObject, 'a storage size', path), viewOf);
    if (viewOf) checkExtent(viewOf.offset, [viewOf.size], [1], ref.numel, `storage view of '${ref.key}'`, path);
    const seen = claims.get(ref.key);
    if (seen && (seen.itemSize !== ref.itemSize || seen.dtype !== ref.dtype)) throw badValue(path, `storage '${ref.key}' is named with two element types`);
    if (!seen || seen.numel < ref.numel) claims.set(ref.key, ref);
    return ref;
  };
  return {
    name: 'PyTorch weights-only',
    // The NumPy profile's own globals that weights_only also allows.
    baseGlobals: new Set(['collections.OrderedDict', '_codecs.encode', 'builtins.bytearray', 'builtins.set']),
    global: lookup,
    call,
    persistentLoad,
    dictState: 'attributes',
  };
}
