/**
 * The formats the reliability suite exercises. Every reliability test (fuzzing, truncation,
 * SIGKILL, full disk, mapped-file safety, concurrency, leaks) loops over this table, so a new
 * format is covered by adding one entry here; see docs/reliability.md, "Adding a format".
 * Internal on purpose: HDF5 structure offsets and zip member offsets say where to damage a file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import {
  decodeKerasWeights,
  decodeNpy,
  decodeNpz,
  h5wasmReady,
  decodeSafetensors,
  parseNpyHeader,
  parseSafetensorsHeader,
  readNpy,
  readNpySync,
  readNpz,
  readNpzSync,
  readKerasWeights,
  readKerasWeightsSync,
  readSafetensors,
  readSafetensorsSync,
  safetensorsHeaderLength,
  writeNpy,
  writeNpySync,
  writeKerasWeights,
  writeNpz,
  writeSafetensors,
  writeSafetensorsSync,
} from '../../src/index.js';
import type { KerasWeightsFile, LoadedArray, NdArray } from '../../src/index.js';
import { structureOffsets } from '../../src/formats/hdf5/own-reader.js';
import { readCentralDirectorySync, memberDataOffsetSync } from '../../src/formats/zip.js';
import { ByteSource } from '../../src/io/source.js';
import { FIXTURES } from '../helpers.js';

/** One format as the reliability tests see it. */
export interface ReliabilityFormat {
  /** Short name, used in test names, regression folders and figures ('npy'). */
  name: string;
  /** File extension including the dot. */
  extension: string;
  /** Folder under ../shared/fixtures holding real files of this format. */
  fixtures: string;
  /**
   * Writes one array atomically (the format's own writer; containers hold it as their only
   * entry). Make it an async function, so a sync writer's throw becomes a rejection.
   */
  write(file: string, array: NdArray, sync: boolean): Promise<void>;
  /** Reads every array of a file, mapped when asked and supported. */
  read(file: string, mmap: boolean): Promise<LoadedArray[]>;
  /** Synchronous {@link read}, for the tight leak loops. */
  readSync(file: string, mmap: boolean): LoadedArray[];
  /** The parser over bytes in memory: returns the arrays or throws a TensorioError. */
  parse(bytes: Uint8Array): LoadedArray[];
  /**
   * Offsets where the file's structure changes (end of magic, of a length field, of the
   * header, start of data, element boundaries). The truncation test cuts at each of them.
   * Return [] for bytes this function does not understand.
   */
  boundaries(bytes: Uint8Array): number[];
  /** Whether `read(file, true)` maps (with the native addon). */
  mappable: boolean;
  /**
   * Loads what the writer needs before its first write (h5wasm), so the SIGKILL test's
   * random kills land in writes rather than in start-up.
   */
  prepare?(): Promise<void>;
}

/** Extra fuzz targets that are not whole-file parsers (a header parser, a literal parser). */
export interface ExtraParser {
  name: string;
  parse(bytes: Uint8Array): unknown;
}

function npyBoundaries(bytes: Uint8Array): number[] {
  const cuts = [0, 1, 6, 7, 8];
  if (bytes.length < 10) return cuts;
  const major = bytes[6] as number;
  const lengthBytes = major === 1 ? 2 : 4;
  cuts.push(9, 8 + lengthBytes);
  let header;
  try {
    header = parseNpyHeader(bytes, '<fixture>', { maxHeaderSize: 1 << 20 });
  } catch {
    // Unsupported dtypes still have a well-defined header end.
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (bytes.length >= 8 + lengthBytes) {
      const end = 8 + lengthBytes + (major === 1 ? view.getUint16(8, true) : view.getUint32(8, true));
      cuts.push(end - 1, end);
    }
    return cuts;
  }
  const start = 8 + lengthBytes;
  cuts.push(start + 1, Math.floor((start + header.dataOffset) / 2), header.dataOffset - 1, header.dataOffset);
  const itemSize = header.dataLength / Math.max(1, header.shape.reduce((a, b) => a * b, 1));
  const elements = itemSize > 0 ? header.dataLength / itemSize : 0;
  for (let i = 1; i <= elements; i++) cuts.push(header.dataOffset + i * itemSize, header.dataOffset + i * itemSize - 1);
  return cuts;
}

function safetensorsBoundaries(bytes: Uint8Array): number[] {
  const cuts = [0, 1, 4, 7, 8];
  if (bytes.length < 8) return cuts;
  let headerLength: number;
  try {
    headerLength = safetensorsHeaderLength(bytes.subarray(0, 8), bytes.length);
  } catch {
    return cuts;
  }
  const dataStart = 8 + headerLength;
  cuts.push(9, dataStart - 1, dataStart);
  try {
    const header = parseSafetensorsHeader(bytes.subarray(8, dataStart), bytes.length);
    for (const entry of header.entries) {
      const [begin, end] = entry.dataOffsets;
      cuts.push(dataStart + begin, dataStart + begin + 1, dataStart + end - 1, dataStart + end);
    }
  } catch {
    // A header we cannot parse has no data boundaries to cut at.
  }
  return cuts;
}

const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;

function npzBoundaries(bytes: Uint8Array): number[] {
  const cuts = [0, 1, 4, 30];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // The end record (searched from the end, as the reader does), and ZIP64's before it.
  let eocd = -1;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 0xffff); i--) {
    if (view.getUint32(i, true) === SIG_EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) return cuts;
  cuts.push(eocd, eocd + 4, eocd + 12, eocd + 21, eocd + 22);
  const cdOffset = view.getUint32(eocd + 16, true);
  cuts.push(cdOffset, cdOffset + 4, cdOffset + 46);
  if (eocd >= 20 && view.getUint32(eocd - 20, true) === SIG_ZIP64_LOCATOR) {
    const record = Number(view.getBigUint64(eocd - 12, true));
    cuts.push(eocd - 20, eocd - 1, record, record + 4, record + 56);
  }
  try {
    const source = ByteSource.ofBytes(bytes, '<fixture>');
    for (const entry of readCentralDirectorySync(source, '<fixture>')) {
      const local = entry.localHeaderOffset;
      cuts.push(local, local + 4, local + 29, local + 30);
      const start = memberDataOffsetSync(source, entry, '<fixture>');
      const end = start + entry.compressedSize;
      cuts.push(start - 1, start, start + 1, start + 10, Math.floor((start + end) / 2), end - 1, end);
    }
  } catch {
    // A directory we cannot read has no member boundaries to cut at.
  }
  return cuts;
}

export const FORMATS: ReliabilityFormat[] = [
  {
    name: 'npy',
    extension: '.npy',
    fixtures: 'npy',
    write: async (file, array, sync) => (sync ? writeNpySync(file, array) : writeNpy(file, array)),
    read: async (file, mmap) => [await readNpy(file, { mmap })],
    readSync: (file, mmap) => [readNpySync(file, { mmap })],
    parse: (bytes) => [decodeNpy(bytes)],
    boundaries: npyBoundaries,
    mappable: true,
  },
  {
    name: 'safetensors',
    extension: '.safetensors',
    fixtures: 'safetensors',
    write: async (file, array, sync) => {
      if (sync) writeSafetensorsSync(file, { x: array });
      else await writeSafetensors(file, { x: array });
    },
    read: async (file, mmap) => Object.values((await readSafetensors(file, { mmap })).tensors),
    readSync: (file, mmap) => Object.values(readSafetensorsSync(file, { mmap }).tensors),
    parse: (bytes) => Object.values(decodeSafetensors(bytes).tensors),
    boundaries: safetensorsBoundaries,
    mappable: true,
  },
  {
    name: 'npz',
    extension: '.npz',
    fixtures: 'npz',
    // No synchronous writer exists: the "sync" trials also go through writeNpz (atomic, streamed).
    write: async (file, array) => writeNpz(file, { x: array }),
    read: async (file, mmap) => Object.values(await readNpz(file, { mmap })),
    readSync: (file, mmap) => Object.values(readNpzSync(file, { mmap })),
    parse: (bytes) => Object.values(decodeNpz(bytes)),
    boundaries: npzBoundaries,
    mappable: true,
  },
  {
    name: 'keras-h5',
    extension: '.h5',
    fixtures: 'keras-h5',
    // Keras's legacy layout, one layer with one weight. h5wasm builds the file, so there is no
    // synchronous writer: the "sync" trials also go through writeKerasWeights (atomic).
    write: async (file, array) => writeKerasWeights(file, [{ name: 'dense', weights: [{ name: 'dense/kernel:0', array }] }]),
    read: async (file, mmap) => kerasArrays(await readKerasWeights(file, { mmap })),
    readSync: (file, mmap) => kerasArrays(readKerasWeightsSync(file, { mmap })),
    parse: (bytes) => kerasArrays(decodeKerasWeights(bytes)),
    boundaries: h5Boundaries,
    mappable: true,
    prepare: h5wasmReady,
  },
];

function kerasArrays(file: KerasWeightsFile): LoadedArray[] {
  return file.layers.flatMap((layer) => layer.weights.map((weight) => weight.array));
}

/**
 * Inside the signature, the version, the size fields, the end-of-file address and the root
 * entry of the superblock; then every object header message's start and end and every
 * dataset's data start and end.
 */
function h5Boundaries(bytes: Uint8Array): number[] {
  return [0, 1, 7, 8, 9, 14, 24, 40, 56, 80, 95, 96, ...structureOffsets(bytes)];
}

/** Every fixture file of a format. */
export function formatFixtures(format: ReliabilityFormat): string[] {
  const dir = path.join(FIXTURES, format.fixtures);
  if (!fs.existsSync(dir)) throw new Error(`fixture folder ${dir} is missing`);
  return fs
    .readdirSync(dir)
    .filter((name) => name.endsWith(format.extension))
    .sort()
    .map((name) => path.join(dir, name));
}

/** The sample a writer writes: every element equals `generation`, so a mix of two writes shows. */
export function sampleArray(generation: number, elements: number): NdArray {
  return { dtype: 'float32', shape: [elements], data: new Float32Array(elements).fill(generation) };
}

/** The generation every element of `arrays` holds, or throws naming the first mismatch. */
export function uniformGeneration(arrays: LoadedArray[], elements: number): number {
  const array = arrays[0];
  if (arrays.length !== 1 || !array) throw new Error(`expected one array, found ${arrays.length}`);
  if (array.dtype !== 'float32' || array.shape.length !== 1 || array.shape[0] !== elements) {
    throw new Error(`expected float32 (${elements},), found ${array.dtype} (${array.shape.join(', ')})`);
  }
  const data = array.data as Float32Array;
  const first = data[0] as number;
  for (let i = 0; i < data.length; i++) {
    if (data[i] !== first) throw new Error(`mixed file: element 0 is ${first}, element ${i} is ${data[i]}`);
  }
  return first;
}
