/**
 * The one registry of file formats. Every entry point (the main and tfjs `save`/`load`,
 * `saveWeights`/`loadWeights`, `ioHandler`, the CLI's `inspect`/`convert`/`diff`) picks a
 * file's format here and nowhere else: by the longest matching extension, then, where an
 * extension is ambiguous, by the file's first bytes (`.bin` and `.pt` PyTorch or not,
 * `.keras` a Keras 3 zip or an HDF5 file, `.h5` a legacy Keras file, a Keras 3 weights file or
 * plain HDF5). Each entry says what the format can hold and which entry points take it, and
 * carries the main entry's reader and writer (main-io.ts). Adding a format is adding an entry
 * here; the entry points' own tables are keyed by {@link FormatId}, so the compiler names each
 * place that must decide about a new one, and test/format-matrix.test.ts walks the registry.
 */
import { DTYPES, dtypeInfo, type DType } from '../dtype.js';
import { TensorioError } from '../errors.js';
import { closeQuietly, openForReadAsync } from '../io/read.js';
import type { H5File } from './hdf5/file.js';
import { mainReaders, mainWriters, type MainReader, type MainWriter } from './main-io.js';
import { looksLikeTorch } from './torch/index.js';

/** The formats tensorio knows. */
export type FormatId = 'npy' | 'npz' | 'safetensors' | 'safetensors-index' | 'hdf5' | 'keras3-weights' | 'keras' | 'torch' | 'torch-index' | 'tfjs';

/**
 * The places a format can be used:
 * - `load` / `save`: the main entry's (and so the tfjs entry's, which goes through it);
 * - `loadWeights` / `saveWeights`: tensorio/tfjs's, into and out of a built model;
 * - `ioHandlerLoad` / `ioHandlerSave`: a whole model through `ioHandler(path)`;
 * - `cliRead` / `cliWrite`: `tensorio inspect`, `diff` and a `convert` source / target.
 */
export type EntryPoint = 'load' | 'save' | 'loadWeights' | 'saveWeights' | 'ioHandlerLoad' | 'ioHandlerSave' | 'cliRead' | 'cliWrite';

export const ENTRY_POINTS: readonly EntryPoint[] = ['load', 'save', 'loadWeights', 'saveWeights', 'ioHandlerLoad', 'ioHandlerSave', 'cliRead', 'cliWrite'];

/** How users name an entry point in messages. */
const ENTRY_POINT_NAMES: Record<EntryPoint, string> = {
  load: 'load()',
  save: 'save()',
  loadWeights: 'loadWeights()',
  saveWeights: 'saveWeights()',
  ioHandlerLoad: 'ioHandler() loading',
  ioHandlerSave: 'ioHandler() saving',
  cliRead: 'tensorio inspect/diff/convert (source)',
  cliWrite: 'tensorio convert (target)',
};

/** What a format can hold. */
export interface FormatHolds {
  /** The dtypes its reference tool reads back as the same dtype. */
  readonly dtypes: readonly DType[];
  /** Arrays of strings. */
  readonly strings: boolean;
  /** Pickled Python objects (object arrays, lists and dicts of arrays). */
  readonly objects: boolean;
  /** Nested lists and records (more than one level of names). */
  readonly nesting: boolean;
  /** String metadata beside the tensors. */
  readonly metadata: boolean;
  /** Fortran-order arrays as such (otherwise they are written in C order). */
  readonly fortranOrder: boolean;
  /** More than one array per file. */
  readonly many: boolean;
}

/** One format. */
export interface FormatEntry {
  readonly id: FormatId;
  /** Shown to users. */
  readonly title: string;
  /** Lower-case file name endings, with the dot; the longest match over all entries wins. */
  readonly extensions: readonly string[];
  /** True when the first bytes are this format's (undefined: the extension decides alone). */
  readonly magic?: (prefix: Uint8Array) => boolean;
  readonly holds: FormatHolds;
  readonly entryPoints: readonly EntryPoint[];
  /** The main entry's `load` for this format. */
  readonly read?: MainReader;
  /** The main entry's `save` for this format. */
  readonly write?: MainWriter;
}

/** Bytes read from a file's start to sniff it (HDF5 allows a user block of 512 or 1024 bytes before its signature). */
export const SNIFF_BYTES = 1032;

const HDF5_SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

/** True when `prefix` holds HDF5's signature at offset 0, 512 or 1024. */
export function isHdf5Prefix(prefix: Uint8Array): boolean {
  return [0, 512, 1024].some((at) => HDF5_SIGNATURE.every((b, i) => prefix[at + i] === b));
}

/** True when `prefix` starts like a ZIP archive (a local header, or the directory end of an empty one). */
export function isZipPrefix(prefix: Uint8Array): boolean {
  return prefix[0] === 0x50 && prefix[1] === 0x4b && ((prefix[2] === 0x03 && prefix[3] === 0x04) || (prefix[2] === 0x05 && prefix[3] === 0x06));
}

function isNpyPrefix(prefix: Uint8Array): boolean {
  return [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59].every((b, i) => prefix[i] === b);
}

/** safetensors: an 8-byte little-endian header length, then the JSON header's '{'. */
function isSafetensorsPrefix(prefix: Uint8Array): boolean {
  return prefix.length > 8 && prefix[8] === 0x7b && prefix[6] === 0 && prefix[7] === 0;
}

function isJsonPrefix(prefix: Uint8Array): boolean {
  for (const b of prefix) {
    if (b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09) continue;
    return b === 0x7b;
  }
  return false;
}

const ALL_BUT_NUMPY_LESS = DTYPES.filter((d) => dtypeInfo(d).numpy !== null);
const SAFETENSORS_DTYPES = DTYPES.filter((d) => dtypeInfo(d).safetensors !== null);
// HDF5 has no bfloat16 or float8 (h5py would read their bits as integers), see writeH5.
const HDF5_DTYPES = DTYPES.filter((d) => d !== 'bfloat16' && !d.startsWith('float8'));
const TFJS_DTYPES: readonly DType[] = ['float32', 'int32', 'bool', 'complex64'];

const ARRAYS_ONLY = { strings: false, objects: false, nesting: false, fortranOrder: false, many: true } as const;

/** The `load()` reader and `save()` writer of a format that has both (src/formats/main-io.ts). */
function readAndWrite(id: keyof typeof mainReaders & keyof typeof mainWriters): { read: MainReader; write: MainWriter } {
  return { read: mainReaders[id], write: mainWriters[id] };
}

/** Every format, in the order users see them listed. */
export const FORMATS: readonly FormatEntry[] = [
  {
    id: 'npy',
    title: 'NumPy .npy',
    extensions: ['.npy'],
    magic: isNpyPrefix,
    // np.save of a list or dict is a pickled object array: nesting lives in the pickle.
    holds: { dtypes: ALL_BUT_NUMPY_LESS, strings: true, objects: true, nesting: true, metadata: false, fortranOrder: true, many: false },
    entryPoints: ['load', 'save', 'cliRead', 'cliWrite'],
    ...readAndWrite('npy'),
  },
  {
    id: 'npz',
    title: 'NumPy .npz',
    extensions: ['.npz'],
    magic: isZipPrefix,
    holds: { dtypes: ALL_BUT_NUMPY_LESS, strings: true, objects: true, nesting: false, metadata: false, fortranOrder: true, many: true },
    entryPoints: ['load', 'save', 'loadWeights', 'saveWeights', 'cliRead', 'cliWrite'],
    ...readAndWrite('npz'),
  },
  {
    id: 'safetensors',
    title: 'safetensors',
    extensions: ['.safetensors'],
    magic: isSafetensorsPrefix,
    holds: { ...ARRAYS_ONLY, dtypes: SAFETENSORS_DTYPES, metadata: true },
    entryPoints: ['load', 'save', 'loadWeights', 'saveWeights', 'ioHandlerLoad', 'ioHandlerSave', 'cliRead', 'cliWrite'],
    ...readAndWrite('safetensors'),
  },
  {
    id: 'safetensors-index',
    title: 'sharded safetensors (.safetensors.index.json)',
    extensions: ['.safetensors.index.json'],
    magic: isJsonPrefix,
    holds: { ...ARRAYS_ONLY, dtypes: SAFETENSORS_DTYPES, metadata: true },
    // Written only by the CLI, which knows the shard size (--max-shard-size).
    entryPoints: ['load', 'loadWeights', 'cliRead', 'cliWrite'],
    read: mainReaders.safetensors,
  },
  {
    id: 'torch',
    title: 'PyTorch (.pt, .pth, .ckpt, .bin)',
    extensions: ['.pt', '.pth', '.ckpt', '.bin'],
    magic: looksLikeTorch,
    holds: { dtypes: DTYPES, strings: true, objects: true, nesting: true, metadata: false, fortranOrder: false, many: true },
    entryPoints: ['load', 'save', 'cliRead', 'cliWrite'],
    ...readAndWrite('torch'),
  },
  {
    id: 'torch-index',
    title: 'sharded PyTorch (pytorch_model.bin.index.json)',
    extensions: ['.bin.index.json', '.pt.index.json', '.pth.index.json', '.ckpt.index.json'],
    magic: isJsonPrefix,
    holds: { dtypes: DTYPES, strings: true, objects: true, nesting: true, metadata: false, fortranOrder: false, many: true },
    // readTorch reads the index as one view over its shards; save does not write one (writeTorch
    // with maxShardSize does, since the shard size is the caller's choice).
    entryPoints: ['load', 'cliRead'],
    read: mainReaders.torch,
  },
  {
    id: 'hdf5',
    title: 'HDF5 (.h5, .hdf5; Keras legacy)',
    extensions: ['.h5', '.hdf5'],
    magic: isHdf5Prefix,
    holds: { ...ARRAYS_ONLY, dtypes: HDF5_DTYPES, nesting: true, metadata: true },
    entryPoints: ['load', 'save', 'loadWeights', 'saveWeights', 'ioHandlerLoad', 'ioHandlerSave', 'cliRead', 'cliWrite'],
    ...readAndWrite('hdf5'),
  },
  {
    id: 'keras3-weights',
    title: 'Keras 3 weights (.weights.h5)',
    extensions: ['.weights.h5'],
    magic: isHdf5Prefix,
    holds: { ...ARRAYS_ONLY, dtypes: HDF5_DTYPES, nesting: true, metadata: true },
    // A weights file has no topology, so ioHandler refuses it.
    entryPoints: ['load', 'save', 'loadWeights', 'saveWeights', 'cliRead', 'cliWrite'],
    ...readAndWrite('hdf5'),
  },
  {
    id: 'keras',
    title: 'Keras model (.keras)',
    extensions: ['.keras'],
    // A Keras 3 zip, or the HDF5 file some tf.keras versions wrote under this name.
    magic: (prefix) => isZipPrefix(prefix) || isHdf5Prefix(prefix),
    holds: { ...ARRAYS_ONLY, dtypes: HDF5_DTYPES, nesting: true, metadata: true },
    entryPoints: ['loadWeights', 'ioHandlerLoad', 'cliRead'],
  },
  {
    id: 'tfjs',
    title: 'TensorFlow.js (model.json + .bin)',
    extensions: ['.json'],
    magic: isJsonPrefix,
    holds: { ...ARRAYS_ONLY, dtypes: TFJS_DTYPES, metadata: true },
    entryPoints: ['ioHandlerLoad', 'ioHandlerSave', 'cliRead', 'cliWrite'],
  },
];

const BY_ID = new Map(FORMATS.map((f) => [f.id, f]));

/** The entry of a format id. */
export function formatEntry(id: FormatId): FormatEntry {
  return BY_ID.get(id) as FormatEntry;
}

/** The entry whose extension is the longest ending of `path`, or undefined. */
export function formatOfName(path: string): FormatEntry | undefined {
  const lower = path.toLowerCase();
  let best: { entry: FormatEntry; length: number } | undefined;
  for (const entry of FORMATS) {
    for (const ext of entry.extensions) {
      if (lower.endsWith(ext) && lower.length > ext.length && (!best || ext.length > best.length)) best = { entry, length: ext.length };
    }
  }
  return best?.entry;
}

/** The formats an entry point takes, as a list of extensions for messages. */
export function extensionsFor(entryPoint: EntryPoint): string {
  const all = FORMATS.filter((f) => f.entryPoints.includes(entryPoint)).flatMap((f) => (f.id === 'tfjs' ? ['model.json'] : f.extensions));
  // '.weights.h5' is an '.h5' name: listing '.h5' says it.
  const exts = all.filter((ext) => !all.some((other) => other !== ext && other.startsWith('.') && ext.endsWith(other)));
  return exts.length <= 1 ? exts.join('') : `${exts.slice(0, -1).join(', ')} or ${exts[exts.length - 1]}`;
}

/**
 * The format `path` names for `entryPoint`, by extension alone.
 * @throws TensorioError `ERR_INVALID_ARGUMENT` for an unknown extension or a format the entry
 * point does not take, listing the extensions it takes.
 */
export function formatForPath(path: string, entryPoint: EntryPoint): FormatEntry {
  const entry = formatOfName(path);
  if (!entry) {
    throw new TensorioError('ERR_INVALID_ARGUMENT', `cannot tell the format from the file name: ${ENTRY_POINT_NAMES[entryPoint]} takes ${extensionsFor(entryPoint)}`, { path });
  }
  if (!entry.entryPoints.includes(entryPoint)) {
    throw new TensorioError('ERR_INVALID_ARGUMENT', `${ENTRY_POINT_NAMES[entryPoint]} does not take ${entry.title} files; it takes ${extensionsFor(entryPoint)}`, { path });
  }
  return entry;
}

/** What the first bytes of a file say it is, as far as a prefix can tell. */
export type Container = 'npy' | 'zip' | 'hdf5' | 'safetensors' | 'torch-legacy' | 'json' | 'unknown';

/** The container a prefix shows. */
export function containerOf(prefix: Uint8Array): Container {
  if (isNpyPrefix(prefix)) return 'npy';
  if (isZipPrefix(prefix)) return 'zip';
  if (isHdf5Prefix(prefix)) return 'hdf5';
  if (looksLikeTorch(prefix)) return 'torch-legacy';
  if (isSafetensorsPrefix(prefix)) return 'safetensors';
  if (isJsonPrefix(prefix)) return 'json';
  return 'unknown';
}

/** A file's format, sniffed: the entry and the container its bytes show. */
export interface Identified {
  entry: FormatEntry;
  container: Container;
}

/**
 * The format of an existing file for `entryPoint`: by extension, checked against the first
 * bytes where the extension is ambiguous (`.bin` is read as PyTorch only when its bytes are
 * PyTorch's; `.keras` may be a zip or HDF5, which `container` tells).
 * @throws TensorioError `ERR_INVALID_ARGUMENT` (see {@link formatForPath}), `ERR_BAD_MAGIC`
 * for a `.bin` that is not PyTorch, and the file-system errors of opening it.
 */
export async function identifyFile(path: string, entryPoint: EntryPoint): Promise<Identified> {
  const entry = formatForPath(path, entryPoint);
  const { fd, prefix } = await openForReadAsync(path, SNIFF_BYTES);
  closeQuietly(fd);
  const container = containerOf(prefix);
  if (entry.id === 'torch' && path.toLowerCase().endsWith('.bin') && !looksLikeTorch(prefix)) {
    // A tfjs weight shard, a raw dump, ...: many tools use .bin, so only PyTorch's bytes count.
    throw new TensorioError('ERR_BAD_MAGIC', 'a .bin file that is not a PyTorch checkpoint (neither a zip archive nor a legacy torch pickle); tensorio reads .bin as PyTorch only', { path });
  }
  return { entry, container };
}

/** The kinds of HDF5 file, told apart by their attributes and groups. */
export type Hdf5Flavour = 'keras-model' | 'keras-weights' | 'keras3-weights' | 'hdf5';

/**
 * What an open HDF5 file holds: a legacy Keras full model (`model_config`), legacy Keras
 * weights (`layer_names`, at the root or in `model_weights`), Keras 3 weights (a `layers`
 * group and no root `layer_names`), or anything else.
 */
export function hdf5Flavour(h5: H5File): Hdf5Flavour {
  if (h5.attribute('', 'model_config') !== undefined) return 'keras-model';
  const base = h5.isGroup('model_weights') ? 'model_weights' : '';
  if (h5.attribute(base, 'layer_names') !== undefined || h5.attribute(base, 'layer_names0') !== undefined) return 'keras-weights';
  if (h5.isGroup('layers')) return 'keras3-weights';
  return 'hdf5';
}
