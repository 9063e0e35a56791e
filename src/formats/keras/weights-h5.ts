/**
 * Keras weights in HDF5: the legacy layout of Keras 1.x, Keras 2.x and tf.keras (`.h5`,
 * weights-only or full model), and the Keras 3 layout (`.weights.h5`).
 *
 * Legacy layout (keras/src/legacy/saving/legacy_h5_format.py):
 * - root (or `model_weights` in a full-model file) attributes `layer_names`, `backend`,
 *   `keras_version`; `layer_names` lists every layer, weightless ones included, and is split
 *   into `layer_names0`, `layer_names1`, ... when it exceeds HDF5's 64 KiB object header;
 * - a group per layer with a `weight_names` attribute (an empty float64 array when the layer
 *   has no weights), and a dataset per weight at `<layer>/<weight name>`
 *   (`dense_1/dense_1/kernel:0`, or `dense_1/dense_1_W` in Keras 1).
 * Keras 3 layout (keras/src/saving/saving_lib.py): no root attributes;
 * `layers/<snake_case name>/vars/<i>`, containers nesting further `layers/...` groups,
 * matched by structure rather than by name.
 */
import { checkOptions, keysOf } from '../../options.js';
import { TensorioError } from '../../errors.js';
import { type LoadedArray, type NdArray } from '../../ndarray.js';
import { openH5, openH5Bytes, openH5Sync, type H5File, type H5ReadOptions, READ_H5_OPTIONS } from '../hdf5/file.js';
import { H5Writer, type H5WriteOptions } from '../hdf5/writer.js';
import { naturalCompare } from './naming.js';
import { WRITE_OPTION_KEYS } from '../../io/atomic-writer.js';

/** The options writeKerasWeights takes (checked: a misspelt key is ERR_INVALID_ARGUMENT). */
export const WRITE_KERAS_WEIGHTS_OPTIONS = keysOf<KerasWriteOptions>({ ...WRITE_OPTION_KEYS, heapWriteLimit: true, layout: true, kerasVersion: true, backend: true, modelConfig: true, trainingConfig: true });

/** One weight of a layer as stored in the file. */
export interface KerasWeight {
  /** The stored name: `dense_1/kernel:0` (Keras 2), `dense_1_W` (Keras 1), `0` (Keras 3). */
  name: string;
  array: LoadedArray;
}

/** A layer's weights, in the layer's own order. */
export interface KerasLayerWeights {
  /** The layer name (legacy) or its group path below `layers/` (Keras 3). */
  name: string;
  weights: KerasWeight[];
}

/** What {@link readKerasWeights} returns. */
export interface KerasWeightsFile {
  /** 'legacy' for `.h5` (Keras 1, 2, tf.keras), 'keras3' for `.weights.h5`. */
  layout: 'legacy' | 'keras3';
  /** Every layer in the file's order, weightless ones included (legacy: `layer_names`). */
  layers: KerasLayerWeights[];
  kerasVersion?: string;
  backend?: string;
  /** The JSON `model_config` of a full-model file. */
  modelConfig?: string;
  /** The JSON `training_config` of a full-model file. */
  trainingConfig?: string;
}

/** 64512 bytes: the limit Keras applies before splitting an attribute (HDF5's object header). */
export const HDF5_OBJECT_HEADER_LIMIT = 64512;

function asString(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && value.length === 1 && typeof value[0] === 'string') return value[0];
  return undefined;
}

/**
 * A string-list attribute as Keras's `load_attributes_from_hdf5_group` reads it: `name`, or
 * `name0`, `name1`, ... concatenated. An empty numeric array (a weightless layer's
 * `weight_names`) is an empty list.
 */
function stringListAttribute(h5: H5File, group: string, name: string): string[] | undefined {
  const read = (attr: string): string[] | undefined => {
    const value = h5.attribute(group, attr);
    if (value === undefined || value === null) return undefined;
    if (typeof value === 'string') return [value];
    if (Array.isArray(value)) return value;
    if (typeof value === 'object' && 'shape' in value && value.data.length === 0) return [];
    throw new TensorioError('ERR_BAD_VALUE', `attribute '${attr}' of '${group || '/'}' is not a list of strings`, { path: h5.path });
  };
  const whole = read(name);
  if (whole !== undefined) return whole;
  const names = new Set(h5.attributeNames(group));
  if (!names.has(`${name}0`)) return undefined;
  const out: string[] = [];
  for (let i = 0; names.has(`${name}${i}`); i++) out.push(...(read(`${name}${i}`) ?? []));
  return out;
}

/** A weight whose dataset is still to be read: where it goes, and its path in the file. */
interface WeightJob {
  target: KerasWeight;
  path: string;
}

function describeLegacy(h5: H5File, root: string, jobs: WeightJob[]): KerasLayerWeights[] {
  const layerNames = stringListAttribute(h5, root, 'layer_names');
  if (layerNames === undefined) {
    throw new TensorioError('ERR_BAD_HEADER', `no 'layer_names' attribute on '${root || '/'}': not a Keras weights file`, { path: h5.path });
  }
  const layers: KerasLayerWeights[] = [];
  for (const layer of layerNames) {
    const group = root === '' ? layer : `${root}/${layer}`;
    if (!h5.isGroup(group)) throw new TensorioError('ERR_BAD_HEADER', `layer '${layer}' is listed in layer_names but has no group`, { path: h5.path });
    const weightNames = stringListAttribute(h5, group, 'weight_names') ?? [];
    const weights: KerasWeight[] = [];
    for (const name of weightNames) {
      if (!h5.isDataset(`${group}/${name}`)) throw new TensorioError('ERR_BAD_HEADER', `weight '${name}' of layer '${layer}' is listed in weight_names but has no dataset`, { path: h5.path });
      const weight: KerasWeight = { name, array: undefined as unknown as LoadedArray };
      weights.push(weight);
      jobs.push({ target: weight, path: `${group}/${name}` });
    }
    layers.push({ name: layer, weights });
  }
  return layers;
}

function describeKeras3(h5: H5File, jobs: WeightJob[]): KerasLayerWeights[] {
  const layers: KerasLayerWeights[] = [];
  const budget = h5.pathBudget();
  const visit = (group: string, depth: number): void => {
    if (depth > 32) return;
    budget.spend();
    const names = h5.keys(group).sort(naturalCompare);
    if (names.includes('vars') && h5.isGroup(`${group}/vars`)) {
      const vars = h5.keys(`${group}/vars`).filter((n) => /^\d+$/.test(n)).sort((a, b) => Number(a) - Number(b));
      const weights: KerasWeight[] = vars.map((v) => ({ name: v, array: undefined as unknown as LoadedArray }));
      jobs.push(...weights.map((w) => ({ target: w, path: `${group}/vars/${w.name}` })));
      layers.push({ name: group.replace(/^layers\//, ''), weights });
    }
    for (const name of names) {
      if (name === 'vars') continue;
      if (h5.isGroup(`${group}/${name}`)) visit(`${group}/${name}`, depth + 1);
    }
  };
  if (h5.isGroup('layers')) {
    for (const name of h5.keys('layers').sort(naturalCompare)) if (h5.isGroup(`layers/${name}`)) visit(`layers/${name}`, 0);
  }
  return layers;
}

/**
 * Walks a Keras file's layout (attributes and groups only) and lists the weight datasets to
 * read; {@link kerasWeightsWalk} has them read and fills them in.
 */
function describeKerasFile(h5: H5File): { result: KerasWeightsFile; jobs: WeightJob[] } {
  const rootAttrs = new Set(h5.attributeNames(''));
  const result: KerasWeightsFile = { layout: 'legacy', layers: [] };
  const jobs: WeightJob[] = [];
  const text = (name: string): string | undefined => (rootAttrs.has(name) ? asString(h5.attribute('', name)) : undefined);
  const kerasVersion = text('keras_version');
  const backend = text('backend');
  const modelConfig = text('model_config');
  const trainingConfig = text('training_config');
  if (kerasVersion !== undefined) result.kerasVersion = kerasVersion;
  if (backend !== undefined) result.backend = backend;
  if (modelConfig !== undefined) result.modelConfig = modelConfig;
  if (trainingConfig !== undefined) result.trainingConfig = trainingConfig;
  const hasLayerNames = rootAttrs.has('layer_names') || rootAttrs.has('layer_names0');
  if (!hasLayerNames && h5.isGroup('model_weights')) {
    result.layers = describeLegacy(h5, 'model_weights', jobs);
  } else if (hasLayerNames) {
    result.layers = describeLegacy(h5, '', jobs);
  } else if (h5.isGroup('layers') || h5.isGroup('vars')) {
    result.layout = 'keras3';
    result.layers = describeKeras3(h5, jobs);
  } else {
    throw new TensorioError('ERR_BAD_HEADER', "neither 'layer_names', 'model_weights' nor 'layers': not a Keras weights file", { path: h5.path });
  }
  return { result, jobs };
}

/**
 * The one walker of a Keras file, for every reader below: it walks the layout (attributes and
 * groups), hands its driver the paths of all weight datasets at once (the `yield`), and fills
 * the layers in with the arrays the driver read, asynchronously or not.
 */
function* kerasWeightsWalk(h5: H5File): Generator<string[], KerasWeightsFile, LoadedArray[]> {
  const { result, jobs } = h5.batch(() => describeKerasFile(h5), 'walk the Keras layout');
  const arrays = yield jobs.map((job) => job.path);
  jobs.forEach((job, i) => (job.target.array = arrays[i] as LoadedArray));
  return result;
}

// Reads run on the thread pool, a few at a time: one thread faulting in fresh pages and
// copying from the page cache leaves the other cores idle.
const READ_CONCURRENCY = 4;

async function readAllAsync(h5: H5File, paths: readonly string[]): Promise<LoadedArray[]> {
  const arrays: LoadedArray[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < paths.length) {
      const i = next++;
      arrays[i] = await h5.read(paths[i] as string);
    }
  };
  await Promise.all(Array.from({ length: Math.min(READ_CONCURRENCY, paths.length) }, worker));
  return arrays;
}

/** The async driver of {@link kerasWeightsWalk}; it closes the file. */
async function runWalkAsync(h5: H5File): Promise<KerasWeightsFile> {
  const walk = kerasWeightsWalk(h5);
  try {
    let step = walk.next();
    while (!step.done) step = walk.next(await readAllAsync(h5, step.value));
    return step.value;
  } finally {
    h5.close();
  }
}

/** The sync driver of {@link kerasWeightsWalk}; it closes the file. */
function runWalkSync(h5: H5File): KerasWeightsFile {
  const walk = kerasWeightsWalk(h5);
  try {
    let step = walk.next();
    while (!step.done) step = walk.next(step.value.map((path) => h5.readSync(path)));
    return step.value;
  } finally {
    h5.close();
  }
}

/**
 * Reads the weights of a Keras HDF5 file, whichever layout it has: legacy weights-only,
 * legacy full model (`model_weights`, with `model_config`), or Keras 3 `.weights.h5`.
 * Datasets are read a few at a time, contiguous ones outside h5wasm's heap.
 * @throws TensorioError `ERR_BAD_HEADER` when the file is HDF5 but not Keras weights, and
 * the errors of {@link openH5}.
 */
export async function readKerasWeights(path: string, options: H5ReadOptions = {}): Promise<KerasWeightsFile> {
  checkOptions(options, READ_H5_OPTIONS, 'readKerasWeights', path);
  return runWalkAsync(await openH5(path, options));
}

/**
 * {@link readKerasWeights}, synchronously. Files that need h5wasm (chunked or compressed
 * weights, newer HDF5 structures) need it loaded first: `await h5wasmReady()`.
 * @throws TensorioError as {@link readKerasWeights}, and `ERR_NEEDS_H5WASM`.
 */
export function readKerasWeightsSync(path: string, options: H5ReadOptions = {}): KerasWeightsFile {
  checkOptions(options, READ_H5_OPTIONS, 'readKerasWeightsSync', path);
  return runWalkSync(openH5Sync(path, options));
}

/**
 * {@link readKerasWeights} over a file in memory (the `model.weights.h5` member of a
 * `.keras` archive, a download); `name` names it in errors. Weights are copies.
 * @throws TensorioError as {@link readKerasWeights}, and `ERR_NEEDS_H5WASM` for files
 * only h5wasm reads (it reads only files: write such bytes to a file first).
 */
export function decodeKerasWeights(bytes: Uint8Array, name = '<memory>'): KerasWeightsFile {
  return runWalkSync(openH5Bytes(bytes, name));
}

/** A layer to write: its name and its weights (name and array), in the layer's order. */
export interface KerasLayerToWrite {
  name: string;
  weights: { name: string; array: NdArray }[];
}

/** Options of {@link writeKerasWeights}. */
export interface KerasWriteOptions extends H5WriteOptions {
  /** 'legacy' (Keras 2 `.h5`, the default) or 'keras3' (`.weights.h5`). */
  layout?: 'legacy' | 'keras3';
  /** Root `keras_version` (legacy). Default '2.13.1', the last Keras 2 layout revision. */
  kerasVersion?: string;
  /** Root `backend` (legacy). Default 'tensorflow'. */
  backend?: string;
  /**
   * A full model: `model_config` (JSON text) at the root and the weights under
   * `model_weights`, as `model.save('m.h5')` writes. Default: weights only.
   */
  modelConfig?: string;
  /** `training_config` JSON of a full model, if any. */
  trainingConfig?: string;
}

/**
 * The chunks Keras's `save_attributes_to_hdf5_group` splits a string list into: one when it
 * fits in {@link HDF5_OBJECT_HEADER_LIMIT} bytes (as fixed-length strings of the longest
 * name's length), else as few as needed, sized like `np.array_split`.
 */
export function kerasAttributeChunks(data: string[]): string[][] {
  const width = Math.max(1, ...data.map((s) => Buffer.byteLength(s)));
  if (data.some((s) => Buffer.byteLength(s) > HDF5_OBJECT_HEADER_LIMIT)) {
    throw new TensorioError('ERR_TOO_LARGE', `a name longer than ${HDF5_OBJECT_HEADER_LIMIT} bytes cannot be stored in an HDF5 attribute`);
  }
  for (let chunks = 1; ; chunks++) {
    const split: string[][] = [];
    const base = Math.floor(data.length / chunks);
    const extra = data.length % chunks;
    let at = 0;
    for (let i = 0; i < chunks; i++) {
      const n = base + (i < extra ? 1 : 0);
      split.push(data.slice(at, at + n));
      at += n;
    }
    if (split.every((chunk) => chunk.length * width <= HDF5_OBJECT_HEADER_LIMIT)) return split;
  }
}

function writeStringList(writer: H5Writer, group: string, name: string, data: string[]): void {
  if (data.length === 0) {
    // What `np.asarray([])` gives Keras: an empty float64 array.
    writer.attribute(group, name, { dtype: 'float64', shape: [0], data: new Float64Array(0) });
    return;
  }
  const chunks = kerasAttributeChunks(data);
  if (chunks.length === 1) writer.attribute(group, name, data);
  else chunks.forEach((chunk, i) => writer.attribute(group, `${name}${i}`, chunk));
}

/**
 * Writes Keras weights. Legacy layout: exactly as Keras 2 writes it, string attributes as
 * fixed-length ASCII (every Keras 2.x loader reads them; variable-length strings break the
 * older ones under h5py 3). Keras 3 layout: `layers/<name>/vars/<i>`, layer names being the
 * group names to use. The file replaces `path` atomically.
 * @throws TensorioError `ERR_INVALID_ARGUMENT` for duplicate layer or weight names.
 */
export async function writeKerasWeights(path: string, layers: KerasLayerToWrite[], options: KerasWriteOptions = {}): Promise<void> {
  checkOptions(options, WRITE_KERAS_WEIGHTS_OPTIONS, 'writeKerasWeights', path);
  const seen = new Set<string>();
  for (const layer of layers) {
    if (seen.has(layer.name)) throw new TensorioError('ERR_INVALID_ARGUMENT', `two layers are named '${layer.name}'`, { path });
    seen.add(layer.name);
  }
  const writer = await H5Writer.create(path, options);
  try {
    if ((options.layout ?? 'legacy') === 'keras3') {
      writer.group('layers');
      for (const layer of layers) {
        writer.group(`layers/${layer.name}/vars`);
        layer.weights.forEach((w, i) => writer.dataset(`layers/${layer.name}/vars/${i}`, w.array));
      }
      writer.group('vars');
    } else {
      const backend = options.backend ?? 'tensorflow';
      const kerasVersion = options.kerasVersion ?? '2.13.1';
      let root = '';
      if (options.modelConfig !== undefined) {
        writer.attribute('', 'backend', backend);
        writer.attribute('', 'keras_version', kerasVersion);
        writer.attribute('', 'model_config', options.modelConfig);
        if (options.trainingConfig !== undefined) writer.attribute('', 'training_config', options.trainingConfig);
        root = 'model_weights';
        writer.group(root);
      }
      writeStringList(writer, root, 'layer_names', layers.map((l) => l.name));
      writer.attribute(root, 'backend', backend);
      writer.attribute(root, 'keras_version', kerasVersion);
      for (const layer of layers) {
        const group = root === '' ? layer.name : `${root}/${layer.name}`;
        writer.group(group);
        const names = layer.weights.map((w) => w.name);
        if (new Set(names).size !== names.length) throw new TensorioError('ERR_INVALID_ARGUMENT', `layer '${layer.name}' has two weights with the same name`, { path });
        writeStringList(writer, group, 'weight_names', names);
        for (const w of layer.weights) writer.dataset(`${group}/${w.name}`, w.array);
      }
    }
  } catch (error) {
    await writer.abort();
    throw error;
  }
  await writer.commit();
}
