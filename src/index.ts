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
// safetensors: single files, lazy views and Hugging Face sharded checkpoints.
export {
  decodeSafetensors,
  encodeSafetensors,
  openSafetensors,
  openSafetensorsSync,
  parseSafetensorsHeader,
  readSafetensors,
  readSafetensorsSync,
  safetensorsHeaderLength,
  writeSafetensors,
  writeSafetensorsSync,
  SAFETENSORS_MAX_HEADER_SIZE,
  type SafetensorsContents,
  type SafetensorsEntry,
  type SafetensorsFile,
  type SafetensorsHeader,
  type SafetensorsOpenOptions,
  type SafetensorsReadOptions,
  type SafetensorsTensorInfo,
  type SafetensorsWriteOptions,
  type SafetensorsWriteResult,
  type SliceRange,
  type TensorDict,
} from './formats/safetensors.js';
export { type SafetensorsIndex } from './formats/safetensors-sharded.js';

// HDF5 (generic, through h5wasm with contiguous data read outside its heap) and Keras HDF5.
export {
  decodeH5,
  h5wasmReady,
  openH5,
  openH5Bytes,
  openH5Sync,
  readH5,
  readH5Sync,
  writeH5,
  H5File,
  H5Writer,
  type H5AttributeValue,
  type H5DatasetInfo,
  type H5ReadOptions,
  type H5Storage,
  type H5StringArray,
  type H5WriteOptions,
} from './formats/h5.js';
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
export { openNpz, readNpz, writeNpz, type NpzFile, type NpzReadOptions, type NpzWriteOptions } from './formats/npz.js';
export { isStringArray, stringArray, type StringArray } from './formats/npy-strings.js';
export { unpickle, PythonGlobal, type PyObject, type PicklableValue, type UnpickleOptions } from './formats/pickle.js';
export { objectArray, type ObjectArray } from './formats/pickle/object-array.js';

// Reliability (issue 7): synchronous .npz readers, so the reliability table covers .npz.
export { decodeNpz, readNpzSync } from './formats/npz.js';

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
export { listTorchTensors, scanTorchGlobals, sharedTorchTensors, type TorchGlobalUse, type TorchSharedGroup } from './formats/torch/index.js';
