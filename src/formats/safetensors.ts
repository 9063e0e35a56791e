/**
 * safetensors, as huggingface/safetensors defines it: the format's public surface. The code
 * lives in safetensors/: header.ts (validation over bytes), file.ts (one open file), view.ts
 * (the lazy view), slice.ts, sharded.ts (the index), open.ts, read.ts and write.ts.
 */
export {
  parseSafetensorsHeader,
  safetensorsHeaderLength,
  SAFETENSORS_MAX_HEADER_SIZE,
  type SafetensorsEntry,
  type SafetensorsHeader,
} from './safetensors/header.js';
export { openSafetensors, openSafetensorsSync } from './safetensors/open.js';
export { decodeSafetensors, readSafetensors, readSafetensorsSync } from './safetensors/read.js';
export type {
  SafetensorsContents,
  SafetensorsFile,
  SafetensorsOpenOptions,
  SafetensorsReadOptions,
  SafetensorsTensorInfo,
  SliceRange,
} from './safetensors/types.js';
export {
  encodeSafetensors,
  writeSafetensors,
  writeSafetensorsSync,
  type SafetensorsWriteOptions,
  type SafetensorsWriteResult,
  type TensorDict,
} from './safetensors/write.js';
