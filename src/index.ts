/**
 * tensorio: tensor and checkpoint I/O for Node.js.
 *
 * Every export is listed here explicitly; the ESM entry (dist/index.mjs) is generated from
 * this module's exports at build time.
 */
export { TensorioError, ERROR_CODES, type ErrorCode, type ErrorDetails } from './errors.js';
export { DTYPES, dtypeInfo, isDType, type DType, type DTypeInfo, type TypedArray } from './dtype.js';
export {
  asCOrder,
  byteLength,
  ndarray,
  ones,
  shapeSize,
  validateNdArray,
  zeros,
  type LoadedArray,
  type NdArray,
  type ReadInfo,
} from './ndarray.js';
export { byteswap, toBfloat16, toFloat16, toFloat32, toFloat64 } from './convert.js';
export { nativeStatus, type NativeStatus } from './native.js';
export { unmapBuffer as unmap, isMappedBuffer as isMapped, type WriteOptions } from './io.js';
export {
  decodeNpy,
  encodeNpy,
  encodeNpyHeader,
  openNpy,
  parseNpyHeader,
  readNpy,
  readNpyHeader,
  readNpySync,
  writeNpy,
  writeNpySync,
  DEFAULT_MAX_HEADER_SIZE,
  type NpyHeader,
  type NpyMemmap,
  type NpyReadOptions,
  type OpenNpyOptions,
} from './formats/npy.js';
// Containers and pickles: .npz archives, pickled object .npy files, save()/load() (issue 3).
export { save, load, type Loaded, type LoadOptions, type SaveOptions, type SaveValue } from './containers.js';
export { openNpz, readNpz, writeNpz, type NpzFile, type NpzReadOptions, type NpzWriteOptions } from './formats/npz.js';
export { unpickle, PythonGlobal, type PyObject, type PicklableValue, type UnpickleOptions } from './formats/pickle.js';
