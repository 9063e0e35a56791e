/**
 * The old home of the `.npy` format, kept while other modules still import it: a re-export of
 * src/formats/numpy/ (header.ts, array.ts, read.ts, write.ts, memmap.ts). New code imports
 * those modules.
 */
export {
  DEFAULT_MAX_HEADER_SIZE,
  descrFor,
  dtypeFromDescr,
  encodeNpyHeader,
  encodeNpyHeaderDescr,
  headerLimitOf,
  headerProbeLength,
  isObjectDescr,
  npyHeaderEnd,
  parseNpyHeader,
  parseNpyRawHeader,
  stringHeader,
  type NpyHeader,
  type NpyRawHeader,
  type NpyReadOptions,
} from './numpy/header.js';
export { arrayFromBuffer, decodeNpy } from './numpy/array.js';
export { readNpy, readNpyHeader, readNpySync } from './numpy/read.js';
export { encodeNpy, writeNpy, writeNpySync } from './numpy/write.js';
export { openNpy, type NpyMemmap, type OpenNpyOptions } from './numpy/memmap.js';
