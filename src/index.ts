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
export { hasDType, type DTypeStorage, type NdArrayOf, type TypedArrayOf } from './ndarray-types.js';
export { byteswap, toBfloat16, toFloat16, toFloat32, toFloat64, toInt32 } from './convert.js';
export { nativeStatus, type NativeStatus } from './native.js';
export { unmapBuffer as unmap, isMappedBuffer as isMapped } from './io/map.js';
export type { WriteOptions } from './io/atomic-writer.js';
export { decodeNpy } from './formats/numpy/array.js';
export { encodeNpy, writeNpy, writeNpySync } from './formats/numpy/write.js';
export {
  encodeNpyHeader,
  parseNpyHeader,
  DEFAULT_MAX_HEADER_SIZE,
  type NpyHeader,
  type NpyReadOptions,
} from './formats/numpy/header.js';
export { openNpy, type NpyMemmap, type OpenNpyOptions } from './formats/numpy/memmap.js';
export { readNpy, readNpyHeader, readNpySync } from './formats/numpy/read.js';
// safetensors: single files, lazy views and Hugging Face sharded checkpoints.
export { decodeSafetensors, readSafetensors, readSafetensorsSync } from './formats/safetensors/read.js';
export {
  encodeSafetensors,
  writeSafetensors,
  writeSafetensorsSync,
  type SafetensorsWriteOptions,
  type SafetensorsWriteResult,
  type TensorDict,
} from './formats/safetensors/write.js';
export { openSafetensors, openSafetensorsSync } from './formats/safetensors/open.js';
export {
  parseSafetensorsHeader,
  safetensorsHeaderLength,
  SAFETENSORS_MAX_HEADER_SIZE,
  type SafetensorsEntry,
  type SafetensorsHeader,
} from './formats/safetensors/header.js';
export {
  type SafetensorsContents,
  type SafetensorsFile,
  type SafetensorsOpenOptions,
  type SafetensorsReadOptions,
  type SafetensorsTensorInfo,
  type SliceRange,
} from './formats/safetensors/types.js';
export { type SafetensorsIndex } from './formats/safetensors/sharded.js';

// HDF5 (generic, through h5wasm with contiguous data read outside its heap) and Keras HDF5.
export {
  decodeH5,
  openH5,
  openH5Bytes,
  openH5Sync,
  readH5,
  readH5Sync,
  H5File,
  type H5DatasetInfo,
  type H5ReadOptions,
} from './formats/hdf5/file.js';
export { h5wasmReady } from './formats/hdf5/h5wasm.js';
export { writeH5, H5Writer, type H5WriteOptions } from './formats/hdf5/writer.js';
export { type H5AttributeValue } from './formats/hdf5/reader.js';
export { type H5Storage } from './formats/hdf5/format.js';
export { type H5StringArray } from './formats/hdf5/strings.js';
export type { H5ExternalLink } from './formats/hdf5/links.js';
export {
  decodeKerasWeights,
  readKerasWeights,
  readKerasWeightsSync,
  writeKerasWeights,
  HDF5_OBJECT_HEADER_LIMIT,
  type KerasLayerToWrite,
  type KerasLayerWeights,
  type KerasWeight,
  type KerasWeightsFile,
  type KerasWriteOptions,
} from './formats/keras/weights-h5.js';

// Containers and pickles: .npz archives, pickled object .npy files, save()/load() (issue 3).
export { save, load, type Loaded, type LoadOptions, type SaveOptions, type SaveValue } from './containers.js';
export type { ArraysPath, LoadedArrays, LoadedPickle, NpyPath } from './load-types.js';
export { openNpz, readNpz, type NpzFile, type NpzReadOptions } from './formats/numpy/npz-read.js';
export { writeNpz, type NpzWriteOptions } from './formats/numpy/npz-write.js';
export { isStringArray, stringArray, type StringArray } from './formats/numpy/strings.js';
export { unpickle, type UnpickleOptions } from './formats/pickle/unpickler.js';
export { PythonGlobal, type PyObject } from './formats/pickle/values.js';
export { type PicklableValue } from './formats/pickle/pickler.js';
export { objectArray, type ObjectArray } from './formats/pickle/object-array.js';

// Reliability (issue 7): synchronous .npz readers, so the reliability table covers .npz.
export { decodeNpz, readNpzSync } from './formats/numpy/npz-read.js';

// PyTorch checkpoints (issue 19): torch.save's zip and legacy formats, read as torch.load(weights_only=True) would.
export {
  openTorch,
  openTorchSync,
  readTorch,
  readTorchSync,
  writeTorch,
  type TorchFile,
  type TorchFileSync,
  type TorchReadOptions,
  type TorchSaveValue,
  type TorchTensorInfo,
  type TorchValue,
} from './formats/torch/index.js';
export {
  listTorchTensors,
  scanTorchGlobals,
  sharedTorchTensors,
  type TorchGlobalUse,
  type TorchSharedGroup,
} from './formats/torch/index.js';
