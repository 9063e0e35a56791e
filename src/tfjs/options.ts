/**
 * The option lists of tensorio/tfjs's public functions, for the checker in src/options.ts
 * (typed against each options interface, so a list that misses or adds a key does not compile).
 */
import { keysOf, OPTIONS } from '../options.js';
import type { IOHandlerOptions } from './handler.js';
import type { LoadTensorOptions } from './tensors.js';
import type { LoadWeightsOptions, SaveWeightsOptions } from './weights.js';

export const TFJS_OPTIONS = {
  saveWeights: keysOf<SaveWeightsOptions>({ fsync: true, kerasVersion: true, backend: true, layout: true, compress: true }),
  loadWeights: keysOf<LoadWeightsOptions>({ byName: true, skipMismatch: true, mmap: true, allowUnmatched: true }),
  ioHandler: keysOf<IOHandlerOptions>({ fsync: true, directIo: true, quantize: true }),
  save: OPTIONS.save,
  load: keysOf<LoadTensorOptions>({ mmap: true, allowPickle: true, maxMemberSize: true, maxHeaderSize: true, maxPickleSize: true, voidAs: true, convert: true }),
} as const;
