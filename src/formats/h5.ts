/**
 * Generic HDF5, re-exported from its modules in src/formats/hdf5/ for the importers of this
 * path: file.ts (H5File, openH5, readH5, ...), writer.ts (H5Writer, writeH5), h5wasm.ts
 * (loading h5wasm), format.ts and own-reader.ts (internals the tests use).
 */
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
} from './hdf5/file.js';
export { H5Writer, writeH5, type H5WriteOptions } from './hdf5/writer.js';
export { h5wasmReady, loadH5wasm, H5WASM_TIMEOUT_MS } from './hdf5/h5wasm.js';
export { locateDatasetStorage, type H5Storage } from './hdf5/format.js';
export type { H5AttributeValue } from './hdf5/reader.js';
export { structureOffsets } from './hdf5/own-reader.js';
export type { H5StringArray } from './hdf5/strings.js';
