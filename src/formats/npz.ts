/**
 * The old home of the `.npz` format, kept while other modules still import it: a re-export of
 * src/formats/numpy/npz-read.ts and npz-write.ts. New code imports those modules.
 */
export { decodeNpz, openNpz, readNpz, readNpzSource, readNpzSync, type NpzFile, type NpzMemberInfo, type NpzReadOptions } from './numpy/npz-read.js';
export { npzMemberNames, writeNpz, type NpzWriteOptions } from './numpy/npz-write.js';
