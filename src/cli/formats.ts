/**
 * How the command line reads and writes each format of the registry (formats/registry.ts),
 * behind one small interface: open a file lazily (a table of its tensors without their
 * data), get one tensor, and write a set of named tensors supplied one at a time. The
 * registry picks the format; {@link HANDLERS} has one handler per registry id.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { tfjsArray } from '../tfjs/tfjs-arrays.js';
import { dtypeInfo, type DType } from '../dtype.js';
import { TensorioError } from '../errors.js';
import { load } from '../containers.js';
import { DEFAULT_MAX_HEADER_SIZE, isObjectDescr, parseNpyRawHeader } from '../formats/numpy/header.js';
import { readNpy, readNpyHeader } from '../formats/numpy/read.js';
import { writeNpy } from '../formats/numpy/write.js';
import { isNdArrayLike } from '../formats/pickle/pickler.js';
import { openH5, type H5File } from '../formats/hdf5/file.js';
import { writeH5 } from '../formats/hdf5/writer.js';
import { openNpz } from '../formats/numpy/npz-read.js';
import { writeNpz } from '../formats/numpy/npz-write.js';
import {
  formatForPath,
  formatOfName,
  hdf5Flavour,
  identifyFile,
  type FormatId,
} from '../formats/registry.js';
import { openSafetensors } from '../formats/safetensors/open.js';
import { writeSafetensors, type SafetensorsWriteOptions } from '../formats/safetensors/write.js';
import { openTorch, planTorchSafetensors, writeTorchFiles } from '../formats/torch/index.js';
import { readKerasArchive } from '../formats/keras/archive.js';
import { dequantizeWeight } from '../formats/tfjs-quantization.js';
import { storedItemSize } from '../formats/tfjs-model.js';
import type { WriteOptions } from '../io/atomic-writer.js';
import { closeQuietly, openForReadAsync } from '../io/read.js';
import { byteLength, type NdArray } from '../ndarray.js';

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
  /** A `.npy` file's header when its dtype is not a numeric one (object, string, structured). */
  header?: { descr: string; shape: number[]; order: 'C' | 'F' };
  /** Entries that hold no tensor tensorio reads (strings, pickles), with why. */
  skipped?: Array<{ name: string; why: string }>;
}

/** An opened file: its summary and its tensors one at a time. */
export interface TensorSource {
  readonly summary: FileSummary;
  /**
   * Values that are not tensors (a checkpoint's epoch, an optimizer's hyperparameters), found
   * by reading the whole object: convert and diff call it so nothing is dropped unseen, while
   * inspect stays header-only.
   */
  nonTensors?(): Promise<Array<{ name: string; why: string }>>;
  /**
   * For a safetensors target (a PyTorch source): the names to leave out, each to the name kept
   * for its shared storage, and the metadata recording them (formats/torch/to-safetensors.ts).
   */
  safetensorsPlan?(names: string[]): { omit: Map<string, string>; metadata: Record<string, string> };
  /** True when the one array has no name of its own (a `.npy`: its name is the file's). */
  readonly unnamed?: boolean;
  get(name: string): Promise<NdArray>;
  close(): Promise<void> | void;
}

/** A source over arrays already read: `get` of a name not among them is `ERR_NOT_FOUND_IN_ARCHIVE`. */
function inMemorySource(summary: FileSummary, arrays: Map<string, NdArray>, file: string, kind: string, where: string): TensorSource {
  return {
    summary,
    get: async (name) => {
      const array = arrays.get(name);
      if (!array) throw new TensorioError('ERR_NOT_FOUND_IN_ARCHIVE', `no ${kind} '${name}' in ${where}`, { path: file });
      return array;
    },
    close: () => undefined,
  };
}

/** Options every reader accepts from the command line (--max-header-size, --allow-pickle). */
export interface SourceOptions {
  /** Largest `.npy` header accepted (`.npy` and `.npz` members). Default NumPy's 10,000. */
  maxHeaderSize?: number;
  /** Unpickle a pickled `.npy` (np.save of a list or dict) and serve its arrays by key path. */
  allowPickle?: boolean;
}

/** Options every writer accepts from the command line. */
export interface SinkOptions extends WriteOptions {
  /** Shard size limit in bytes, for formats that shard. */
  maxShardSize?: number;
  /** The source's string metadata, for targets that hold it (safetensors' `__metadata__`). */
  metadata?: Record<string, string>;
}

export interface FormatHandler {
  /** Short name shown to users ('npy'). */
  readonly name: string;
  open(file: string, options?: SourceOptions): Promise<TensorSource>;
  /**
   * Writes tensors `names` (in that order), fetching each with `get` only when it is written,
   * so a conversion holds at most what the target format needs at once. Returns the files
   * written when they are not just `file` (shards and their index).
   */
  write?(file: string, names: string[], get: (name: string) => Promise<NdArray>, options: SinkOptions): Promise<string[] | void>;
}

/** Key paths of every array in an unpickled value (`0`, `1` for a list; `x`, `a/b` for dicts), and what is not an array. */
function arraysIn(value: unknown, prefix: string, arrays: Map<string, NdArray>, others: Array<{ name: string; why: string }>): void {
  const at = (key: string | number): string => (prefix === '' ? String(key) : `${prefix}/${key}`);
  if (isNdArrayLike(value)) arrays.set(prefix === '' ? 'arr_0' : prefix, value);
  else if (Array.isArray(value)) value.forEach((v, i) => arraysIn(v, at(i), arrays, others));
  else if (value instanceof Map) for (const [k, v] of value) arraysIn(v, at(String(k)), arrays, others);
  else if (value !== null && typeof value === 'object' && !ArrayBuffer.isView(value)) for (const [k, v] of Object.entries(value)) arraysIn(v, at(k), arrays, others);
  else others.push({ name: prefix === '' ? '(value)' : prefix, why: `a Python ${value === null ? 'None' : typeof value}, not an array` });
}

/**
 * A `.npy` whose dtype tensorio does not read as numbers (object, string, structured): its
 * header is shown; with --allow-pickle, a pickled list or dict serves its arrays by key path.
 */
async function openUnsupportedNpy(file: string, name: string, error: TensorioError, options: SourceOptions): Promise<TensorSource> {
  const maxHeaderSize = options.maxHeaderSize ?? DEFAULT_MAX_HEADER_SIZE;
  const { fd, size, prefix } = await openForReadAsync(file, 12 + maxHeaderSize);
  closeQuietly(fd);
  const raw = parseNpyRawHeader(prefix, file, { maxHeaderSize }, size);
  const pickled = isObjectDescr(raw.descr);
  const descr = typeof raw.descr === 'string' ? raw.descr : (/unsupported dtype (.*?): /.exec(error.message)?.[1] ?? 'structured');
  const summary: FileSummary = { format: 'npy', version: raw.version.join('.'), tensors: [], header: { descr, shape: raw.shape, order: raw.fortranOrder ? 'F' : 'C' } };
  const arrays = new Map<string, NdArray>();
  if (pickled && options.allowPickle) {
    const others: Array<{ name: string; why: string }> = [];
    arraysIn(await load(file, { allowPickle: true, maxHeaderSize }), '', arrays, others);
    summary.format = 'npy (pickled object array)';
    summary.tensors = [...arrays].map(([key, a]) => ({ name: key, dtype: a.dtype, shape: a.shape, byteLength: byteLength(a.dtype, a.shape) }));
    if (others.length > 0) summary.skipped = others;
  } else {
    const why = pickled ? 'a pickled object array (pass --allow-pickle to read its arrays with the restricted unpickler)' : error.message.slice(Math.max(0, error.message.indexOf('unsupported')));
    summary.skipped = [{ name, why }];
  }
  return inMemorySource(summary, arrays, file, 'array', 'the file');
}

const npy: FormatHandler = {
  name: 'npy',
  async open(file, options = {}) {
    const limits = options.maxHeaderSize === undefined ? {} : { maxHeaderSize: options.maxHeaderSize };
    const name = path.basename(file, path.extname(file));
    let header;
    try {
      header = await readNpyHeader(file, limits);
    } catch (error) {
      if (!(error instanceof TensorioError) || error.code !== 'ERR_UNSUPPORTED_DTYPE') throw error;
      return openUnsupportedNpy(file, name, error, options);
    }
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
      unnamed: true,
      get: async (wanted) => {
        if (wanted !== name) throw new TensorioError('ERR_NOT_FOUND_IN_ARCHIVE', `a .npy file holds one array, '${name}'; there is no '${wanted}'`, { path: file });
        return readNpy(file, { mmap: true, ...limits });
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

const safetensors: FormatHandler = {
  name: 'safetensors',
  async open(file) {
    const opened = await openSafetensors(file);
    const tensors = opened.offsetKeys().map((name): TensorInfo => {
      const info = opened.info(name);
      const aligned = info.byteOffset % dtypeInfo(info.dtype).array.BYTES_PER_ELEMENT === 0;
      const entry: TensorInfo = { name, dtype: info.dtype, shape: info.shape, byteLength: info.byteLength, byteOffset: info.byteOffset, mappable: aligned };
      if (opened.files.length > 1) entry.note = path.basename(info.file);
      return entry;
    });
    const summary: FileSummary = { format: opened.files.length > 1 ? `safetensors (${opened.files.length} shards)` : 'safetensors', tensors };
    if (Object.keys(opened.metadata).length > 0) summary.metadata = opened.metadata;
    return { summary, get: (name) => opened.get(name), close: () => opened.close() };
  },
  async write(file, names, get, options) {
    // The header lists every tensor first, so all are gathered; sources that map (npy,
    // safetensors, stored npz) give views whose pages the kernel can drop again.
    const tensors = new Map<string, NdArray>();
    for (const name of names) tensors.set(name, await get(name));
    // A target named `*.safetensors.index.json` asks for shards: 5 GB each unless told (Hugging Face's default).
    const index = formatOfName(file)?.id === 'safetensors-index';
    const write: SafetensorsWriteOptions = { ...(options.fsync === undefined ? {} : { fsync: options.fsync }), ...(options.metadata ? { metadata: options.metadata } : {}) };
    if (options.maxShardSize !== undefined || index) write.maxShardSize = options.maxShardSize ?? 5e9;
    const result = await writeSafetensors(index ? file.slice(0, -'.index.json'.length) : file, tensors, write);
    return result.index ? [...result.files, result.index] : result.files;
  },
};

const npz: FormatHandler = {
  name: 'npz',
  async open(file, options = {}) {
    const archive = await openNpz(file, { mmap: true, ...(options.maxHeaderSize === undefined ? {} : { maxHeaderSize: options.maxHeaderSize }) });
    const tensors: TensorInfo[] = [];
    const skipped: Array<{ name: string; why: string }> = [];
    for (const key of archive.keys()) {
      let member;
      try {
        member = await archive.info(key);
      } catch (error) {
        if (!(error instanceof TensorioError) || error.code !== 'ERR_UNSUPPORTED_DTYPE') throw error;
        skipped.push({ name: key, why: error.message.replace(/^.*?: unsupported/, 'unsupported') });
        continue;
      }
      if (member.dtype === null) {
        skipped.push({ name: key, why: 'a pickled object array' });
        continue;
      }
      const notes = [member.compressed ? 'deflated' : 'stored', member.bigEndian ? 'big-endian' : '', member.fortranOrder ? 'fortran order' : ''].filter(Boolean);
      const entry: TensorInfo = { name: key, dtype: member.dtype, shape: member.shape, byteLength: member.dataLength, note: notes.join(', ') };
      entry.mappable = member.dataOffset !== undefined && !member.bigEndian && member.dataOffset % dtypeInfo(member.dtype).array.BYTES_PER_ELEMENT === 0;
      if (member.dataOffset !== undefined) entry.byteOffset = member.dataOffset;
      tensors.push(entry);
    }
    const summary: FileSummary = { format: 'npz', tensors };
    if (skipped.length > 0) summary.skipped = skipped;
    return { summary, get: (name) => archive.get(name), close: () => archive.close() };
  },
  async write(file, names, get, options) {
    // writeNpz streams member by member; the arrays are views where the source maps.
    const arrays: Record<string, NdArray> = {};
    for (const name of names) arrays[name] = await get(name);
    await writeNpz(file, arrays, options);
  },
};

/** Layers and their weight names as a Keras file lists them, from attributes only. */
function kerasLayers(h5: H5File): FileSummary['layers'] {
  const asList = (value: unknown): string[] => (Array.isArray(value) ? value.map(String) : typeof value === 'string' ? [value] : []);
  const base = h5.isGroup('model_weights') ? 'model_weights' : '';
  let names = asList(h5.attribute(base, 'layer_names'));
  // Past 64 KiB Keras splits the list into layer_names0, layer_names1, ...
  for (let i = 0; names.length === 0 && h5.attribute(base, `layer_names${i}`) !== undefined; i++) names = names.concat(asList(h5.attribute(base, `layer_names${i}`)));
  if (names.length > 0) {
    return names.map((name) => ({ name, weights: asList(h5.attribute(base ? `${base}/${name}` : name, 'weight_names')) }));
  }
  if (h5.isGroup('layers')) {
    // Keras 3 .weights.h5: layers/<name>/vars/<i>
    return h5.keys('layers').map((name) => ({ name, weights: h5.isGroup(`layers/${name}/vars`) ? h5.keys(`layers/${name}/vars`) : [] }));
  }
  return undefined;
}

const hdf5: FormatHandler = {
  name: 'hdf5 (.h5, .hdf5, Keras .weights.h5)',
  async open(file) {
    const h5 = await openH5(file);
    const tensors: TensorInfo[] = [];
    const skipped: Array<{ name: string; why: string }> = [];
    for (const name of h5.datasets()) {
      const info = h5.info(name);
      if (info.dtype === null || info.shape === null) {
        skipped.push({ name, why: 'not a numeric array (strings, compound or reference data)' });
        continue;
      }
      const entry: TensorInfo = { name, dtype: info.dtype, shape: info.shape, byteLength: byteLength(info.dtype, info.shape), note: info.storage.layout };
      if (info.storage.layout === 'contiguous' || info.storage.layout === 'compact') entry.byteOffset = info.storage.offset;
      entry.mappable = info.storage.layout === 'contiguous' && !info.bigEndian && info.storage.offset % dtypeInfo(info.dtype).array.BYTES_PER_ELEMENT === 0;
      tensors.push(entry);
    }
    const layers = kerasLayers(h5);
    const flavour = hdf5Flavour(h5);
    const summary: FileSummary = { format: flavour === 'keras3-weights' ? 'keras 3 weights (hdf5)' : flavour === 'hdf5' ? 'hdf5' : 'keras (hdf5)', tensors };
    if (layers) summary.layers = layers;
    if (skipped.length > 0) summary.skipped = skipped;
    const version = h5.attribute('', 'keras_version');
    if (typeof version === 'string') summary.version = `keras ${version}`;
    return { summary, get: (name) => h5.read(name, { mmap: true }), close: () => h5.close() };
  },
  async write(file, names, get, options) {
    // Datasets at the tensors' names (groups created as needed): a conversion keeps every
    // name, so a Keras file converted to .safetensors and back has the same paths.
    const record: Record<string, NdArray> = {};
    for (const name of names) record[name] = await get(name);
    await writeH5(file, record, options);
  },
};

/** The tfjs entry point, loaded only when a tfjs file is involved (@tensorflow/tfjs is a peer dependency). */
export async function loadTfjsEntry(file: string): Promise<typeof import('../tfjs/index.js')> {
  try {
    return await import('../tfjs/index.js');
  } catch (error) {
    throw new TensorioError('ERR_INVALID_ARGUMENT', `the TensorFlow.js format needs @tensorflow/tfjs installed (npm install @tensorflow/tfjs): ${(error as Error).message}`, { path: file, cause: error });
  }
}

const TFJS_DTYPES: Record<string, DType> = { float32: 'float32', int32: 'int32', bool: 'bool', complex64: 'complex64' };

/** Bytes [start, start + length) of weight data split across buffers (tfjs shards cut weights anywhere). */
function sliceAcross(pieces: readonly ArrayBuffer[], start: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let base = 0;
  let copied = 0;
  for (const piece of pieces) {
    const end = base + piece.byteLength;
    if (end > start && base < start + length) {
      const from = Math.max(start, base) - base;
      const to = Math.min(start + length, end) - base;
      out.set(new Uint8Array(piece, from, to - from), copied);
      copied += to - from;
    }
    base = end;
  }
  return out;
}

/** A model.json whose weight files are missing: its manifest is shown, reading a tensor fails with why. */
async function manifestOnly(file: string, missing: TensorioError): Promise<TensorSource> {
  const json = JSON.parse(await fs.promises.readFile(file, 'utf8')) as { format?: string; weightsManifest?: Array<{ paths?: string[]; weights?: Array<{ name: string; shape: number[]; dtype: string }> }> };
  const tensors: TensorInfo[] = [];
  const skipped: Array<{ name: string; why: string }> = [];
  for (const group of json.weightsManifest ?? []) {
    for (const w of group.weights ?? []) {
      const dtype = TFJS_DTYPES[w.dtype];
      if (dtype === undefined) skipped.push({ name: w.name, why: `tfjs dtype ${w.dtype}` });
      else tensors.push({ name: w.name, dtype, shape: w.shape, byteLength: byteLength(dtype, w.shape), note: `data missing (${(group.paths ?? []).join(', ')})` });
    }
  }
  const summary: FileSummary = { format: `tfjs ${json.format ?? ''} (manifest only: ${path.basename(missing.path ?? '?')} is missing)`.trim(), tensors };
  if (skipped.length > 0) summary.skipped = skipped;
  return { summary, get: () => Promise.reject(missing), close: () => undefined };
}

const tfjsFormat: FormatHandler = {
  name: 'tfjs (model.json + .bin)',
  async open(file) {
    const { ioHandler } = await loadTfjsEntry(file);
    let artifacts: import('@tensorflow/tfjs').io.ModelArtifacts;
    try {
      artifacts = await (ioHandler(file).load as () => Promise<import('@tensorflow/tfjs').io.ModelArtifacts>)();
    } catch (error) {
      if (!(error instanceof TensorioError) || error.code !== 'ERR_NOT_FOUND' || error.path === file) throw error;
      return manifestOnly(file, error);
    }
    const pieces = artifacts.weightData === undefined ? [] : Array.isArray(artifacts.weightData) ? artifacts.weightData : [artifacts.weightData];
    const tensors: TensorInfo[] = [];
    const skipped: Array<{ name: string; why: string }> = [];
    const arrays = new Map<string, () => NdArray>();
    let offset = 0;
    for (const spec of artifacts.weightSpecs ?? []) {
      const size = spec.shape.reduce((a, b) => a * b, 1);
      const quantization = spec.quantization;
      const itemSize = storedItemSize(spec) ?? 4;
      const start = offset;
      offset += size * itemSize;
      const dtype: DType | undefined = TFJS_DTYPES[spec.dtype];
      if (dtype === undefined) {
        skipped.push({ name: spec.name, why: `tfjs dtype ${spec.dtype}` });
        continue;
      }
      tensors.push({ name: spec.name, dtype, shape: spec.shape, byteLength: byteLength(dtype, spec.shape), note: quantization ? `quantized ${quantization.dtype}` : '' });
      arrays.set(spec.name, () => {
        const bytes = sliceAcross(pieces, start, size * itemSize);
        const info = dtypeInfo(dtype);
        if (!quantization) return { dtype, shape: spec.shape, data: new info.array(bytes.buffer, 0, size * info.lanes) };
        // The values tfjs's decodeWeights gives (float32, or int32 for quantized int32 weights).
        const data = dequantizeWeight(spec, bytes, file);
        return { dtype: data instanceof Int32Array ? 'int32' : 'float32', shape: spec.shape, data };
      });
    }
    const summary: FileSummary = { format: `tfjs ${artifacts.format ?? ''}`.trim(), tensors };
    if (skipped.length > 0) summary.skipped = skipped;
    const topology = artifacts.modelTopology as { config?: { layers?: Array<{ class_name?: string; config?: { name?: string } }> } } | null | undefined;
    const layers = topology?.config?.layers;
    if (Array.isArray(layers)) {
      summary.layers = layers.map((layer) => {
        const name = layer.config?.name ?? '?';
        const entry: { name: string; className?: string; weights: string[] } = { name, weights: tensors.filter((t) => t.name.startsWith(`${name}/`)).map((t) => t.name) };
        if (layer.class_name) entry.className = layer.class_name;
        return entry;
      });
    }
    return {
      summary,
      get: async (name) => {
        const make = arrays.get(name);
        if (!make) throw new TensorioError('ERR_NOT_FOUND_IN_ARCHIVE', `no weight '${name}' in the manifest`, { path: file });
        return make();
      },
      close: () => undefined,
    };
  },
  async write(file, names, get, options) {
    // Weights only (no model topology): tf.io.loadWeights reads the manifest. A Keras model
    // file converted to model.json keeps its topology instead (see convert).
    const { ioHandler } = await loadTfjsEntry(file);
    const weightSpecs: Array<{ name: string; shape: number[]; dtype: 'float32' | 'int32' | 'bool' | 'complex64' }> = [];
    const weightData: ArrayBuffer[] = [];
    for (const name of names) {
      const array = tfjsArray(await get(name), { name, path: file });
      weightSpecs.push({ name, shape: array.shape, dtype: dtypeInfo(array.dtype).tfjs as 'float32' });
      weightData.push(array.data.buffer.slice(array.data.byteOffset, array.data.byteOffset + array.data.byteLength) as ArrayBuffer);
    }
    const handler = ioHandler(file, options);
    await (handler.save as (a: object) => Promise<unknown>)({ modelTopology: null, format: 'weights-only', weightSpecs, weightData });
  },
};

/** The non-tensor leaves of a checkpoint's object, by the key paths openTorch uses (`epoch`, `opt.param_groups.0.lr`). */
function leavesOf(value: unknown, name: string, out: Array<{ name: string; why: string }>): void {
  const at = (key: string): string => (name === '' ? key : `${name}.${key}`);
  if (isNdArrayLike(value)) return;
  if (Array.isArray(value)) value.forEach((v, i) => leavesOf(v, at(String(i)), out));
  else if (value instanceof Map) for (const [k, v] of value) leavesOf(v, at(String(k)), out);
  else if (value instanceof Set) out.push({ name: name || '(value)', why: 'a Python set, not a tensor' });
  else if (value !== null && typeof value === 'object' && !ArrayBuffer.isView(value)) for (const [k, v] of Object.entries(value)) leavesOf(v, at(k), out);
  else out.push({ name: name || '(value)', why: `a Python ${value === null ? 'None' : ArrayBuffer.isView(value) ? 'bytes' : typeof value === 'bigint' || typeof value === 'number' ? 'number' : typeof value}, not a tensor` });
}

/** A PyTorch checkpoint: its tensors by their path through the object (openTorch reads the pickle only). */
const torch: FormatHandler = {
  name: 'pytorch',
  async open(file) {
    const opened = await openTorch(file, { mmap: true });
    const tensors = opened.keys().map((name): TensorInfo => {
      const info = opened.info(name);
      const notes = [info.contiguous ? '' : 'strided', info.parameter ? 'parameter' : '', opened.byteOrder === 'big' ? 'big-endian' : ''].filter(Boolean);
      const entry: TensorInfo = { name: name === '' ? 'tensor' : name, dtype: info.dtype, shape: info.shape, byteLength: byteLength(info.dtype, info.shape) };
      if (notes.length > 0) entry.note = notes.join(', ');
      return entry;
    });
    const summary: FileSummary = { format: `pytorch (${opened.format})`, tensors };
    return {
      summary,
      get: (name) => opened.get(name === 'tensor' && !opened.has('tensor') ? '' : name),
      safetensorsPlan: (names) => planTorchSafetensors(opened, names.filter((n) => opened.has(n))),
      nonTensors: async () => {
        const others: Array<{ name: string; why: string }> = [];
        leavesOf(await opened.value(), '', others);
        return others;
      },
      close: () => opened.close(),
    };
  },
  async write(file, names, get, options) {
    // A state dict: one tensor per name, as torch.save(model.state_dict()) writes it.
    const record: Record<string, NdArray> = {};
    for (const name of names) Object.defineProperty(record, name, { value: await get(name), enumerable: true, writable: true, configurable: true });
    // --max-shard-size: pytorch_model-00001-of-0000N.bin ... and the index, as transformers writes them.
    return writeTorchFiles(file, record, { ...(options.fsync === undefined ? {} : { fsync: options.fsync }), ...(options.maxShardSize === undefined ? {} : { maxShardSize: options.maxShardSize }) });
  },
};

/** A Keras 3 `.keras` archive (a zip: its weights member), or the HDF5 file older tf.keras wrote under that name. */
const keras: FormatHandler = {
  name: 'keras',
  async open(file) {
    const { container } = await identifyFile(file, 'cliRead');
    if (container !== 'zip') return hdf5.open(file);
    const { weights } = await readKerasArchive(file);
    const arrays = new Map<string, NdArray>();
    const tensors: TensorInfo[] = [];
    for (const layer of weights.layers) {
      for (const weight of layer.weights) {
        const name = `layers/${layer.name}/vars/${weight.name}`;
        arrays.set(name, weight.array);
        tensors.push({ name, dtype: weight.array.dtype, shape: weight.array.shape, byteLength: byteLength(weight.array.dtype, weight.array.shape) });
      }
    }
    const summary: FileSummary = { format: 'keras 3 archive', tensors, layers: weights.layers.map((l) => ({ name: l.name, weights: l.weights.map((w) => w.name) })) };
    return inMemorySource(summary, arrays, file, 'weight', 'the archive');
  },
};

/** The command line's handler of each registry format (undefined: the CLI does not take it). */
export const HANDLERS: Record<FormatId, FormatHandler | undefined> = {
  npy,
  npz,
  safetensors,
  'safetensors-index': safetensors,
  hdf5,
  'keras3-weights': hdf5,
  keras,
  torch,
  'torch-index': torch,
  tfjs: tfjsFormat,
};

/**
 * The handler for a path: the registry picks the format by extension (and, reading, by the
 * file's first bytes where the extension is ambiguous).
 * @throws TensorioError `ERR_INVALID_ARGUMENT` naming the extensions the command takes.
 */
export function formatFor(file: string, use: 'cliRead' | 'cliWrite'): FormatHandler {
  const handler = HANDLERS[formatForPath(file, use).id];
  if (!handler || (use === 'cliWrite' && !handler.write)) throw new TensorioError('ERR_INVALID_ARGUMENT', `tensorio cannot ${use === 'cliRead' ? 'read' : 'write'} this format`, { path: file });
  return handler;
}

/** Opens a file for reading, its format chosen by the registry (`.bin` must be PyTorch's). */
/** Adds a source's non-tensor values (see {@link TensorSource.nonTensors}) to what it lists as skipped. */
export async function withNonTensors(source: TensorSource): Promise<TensorSource> {
  if (!source.nonTensors) return source;
  const others = await source.nonTensors();
  if (others.length > 0) source.summary.skipped = [...(source.summary.skipped ?? []), ...others];
  return source;
}

export async function openSource(file: string, options: SourceOptions = {}): Promise<TensorSource> {
  // A folder is named as such before its name is judged as a file name.
  if (fs.statSync(file, { throwIfNoEntry: false })?.isDirectory()) throw new TensorioError('ERR_IS_DIRECTORY', 'is a directory, not a file', { path: file });
  const { entry } = await identifyFile(file, 'cliRead');
  return (HANDLERS[entry.id] as FormatHandler).open(file, options);
}
