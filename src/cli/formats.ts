/**
 * The formats the command line reads and writes, behind one small interface: open a file
 * lazily (a table of its tensors without their data), get one tensor, and write a set of
 * named tensors supplied one at a time. Each format adds one entry to {@link FORMATS}.
 */
import * as path from 'node:path';

import { dtypeInfo, type DType } from '../dtype.js';
import { TensorioError } from '../errors.js';
import { readNpy, readNpyHeader, writeNpy } from '../formats/npy.js';
import type { WriteOptions } from '../io.js';
import type { NdArray } from '../ndarray.js';

/** One tensor as a file's table lists it. */
export interface TensorInfo {
  name: string;
  dtype: DType;
  shape: number[];
  byteLength: number;
  /** Where the data starts in the file, when it is stored contiguously. */
  byteOffset?: number;
  /** Whether a read can map it without copying (aligned, native byte order, stored). */
  mappable?: boolean;
  /** Format-specific remarks ('big-endian', 'deflated', 'fortran order'). */
  note?: string;
}

/** What `inspect` shows of a file, without reading tensor data. */
export interface FileSummary {
  format: string;
  version?: string;
  tensors: TensorInfo[];
  metadata?: Record<string, string>;
  /** For model files: layers with the names of their weights. */
  layers?: Array<{ name: string; className?: string; weights: string[] }>;
}

/** An opened file: its summary and its tensors one at a time. */
export interface TensorSource {
  readonly summary: FileSummary;
  get(name: string): Promise<NdArray>;
  close(): Promise<void> | void;
}

/** Options every writer accepts from the command line. */
export interface SinkOptions extends WriteOptions {
  /** Shard size limit in bytes, for formats that shard. */
  maxShardSize?: number;
}

export interface FormatHandler {
  /** Short name shown to users ('npy'). */
  readonly name: string;
  /** True when the handler reads and writes this path (by its extension). */
  matches(file: string): boolean;
  open(file: string): Promise<TensorSource>;
  /**
   * Writes tensors `names` (in that order), fetching each with `get` only when it is written,
   * so a conversion holds at most what the target format needs at once.
   */
  write(file: string, names: string[], get: (name: string) => Promise<NdArray>, options: SinkOptions): Promise<void>;
}

const npy: FormatHandler = {
  name: 'npy',
  matches: (file) => file.toLowerCase().endsWith('.npy'),
  async open(file) {
    const header = await readNpyHeader(file);
    const name = path.basename(file, path.extname(file));
    const notes = [header.bigEndian ? 'big-endian' : '', header.fortranOrder ? 'fortran order' : ''].filter(Boolean);
    const aligned = header.dataOffset % dtypeInfo(header.dtype).array.BYTES_PER_ELEMENT === 0;
    const info: TensorInfo = {
      name,
      dtype: header.dtype,
      shape: header.shape,
      byteLength: header.dataLength,
      byteOffset: header.dataOffset,
      mappable: !header.bigEndian && aligned,
    };
    if (notes.length > 0) info.note = notes.join(', ');
    return {
      summary: { format: 'npy', version: header.version.join('.'), tensors: [info] },
      get: async (wanted) => {
        if (wanted !== name) throw new TensorioError('ERR_NOT_FOUND_IN_ARCHIVE', `a .npy file holds one array, '${name}'; there is no '${wanted}'`, { path: file });
        return readNpy(file, { mmap: true });
      },
      close: () => undefined,
    };
  },
  async write(file, names, get, options) {
    if (names.length !== 1) {
      throw new TensorioError(
        'ERR_INVALID_ARGUMENT',
        `a .npy file holds exactly one array, and the source has ${names.length}; write .npz or .safetensors instead`,
        { path: file },
      );
    }
    await writeNpy(file, await get(names[0] as string), options);
  },
};

/** Every format the command line knows, most specific first. */
export const FORMATS: FormatHandler[] = [npy];

/**
 * The handler for a path, by its extension.
 * @throws TensorioError `ERR_INVALID_ARGUMENT` naming the known extensions.
 */
export function formatFor(file: string): FormatHandler {
  const handler = FORMATS.find((format) => format.matches(file));
  if (!handler) {
    throw new TensorioError('ERR_INVALID_ARGUMENT', `unknown file type; tensorio reads and writes ${FORMATS.map((f) => f.name).join(', ')}`, { path: file });
  }
  return handler;
}
