/**
 * Model weights in `.npz` and `.safetensors` files: the naming scheme shared by
 * `saveWeights`/`loadWeights` and by `ioHandler('m.safetensors')`.
 *
 * Each weight is one tensor named `<layer name>/<weight name>` (`dense_Dense1/kernel`),
 * which is also tfjs's own name for it (`originalName`) and the shape of a Keras weight path
 * without the `:0`. A layer's weights are stored in the layer's own order, layers in model
 * order. What makes the topological order recoverable:
 * - `.npz`: the member order (NumPy keeps it: `np.load(f).files`); a layer is the run of keys
 *   sharing the part before the first `/`, so layer names may not contain `/` (Keras forbids
 *   it too).
 * - `.safetensors`: the reference format sorts tensors by name, so the order is kept in
 *   `__metadata__`: `layer_names` (a JSON list of every layer, weightless ones included, as
 *   Keras's `layer_names` attribute) and `weight_names` (a JSON object: layer → its tensor
 *   names in order).
 *
 * A whole model in `.safetensors` (ioHandler's model file) adds the topology and the weight
 * specs to `__metadata__` as JSON strings, and keeps optimizer state under `optimizer/`.
 */
import { toFloat32 } from '../convert.js';
import { dtypeInfo } from '../dtype.js';
import { TensorioError } from '../errors.js';
import { type WriteOptions } from '../io/atomic-writer.js';
import { type LoadedArray, type NdArray } from '../ndarray.js';
import { isObject, type JsonObject } from './keras/config.js';
import { type KerasLayerWeights } from './keras/weights-h5.js';
import { readNpz } from './numpy/npz-read.js';
import { writeNpz } from './numpy/npz-write.js';
import { readSafetensors } from './safetensors/read.js';
import { writeSafetensors } from './safetensors/write.js';
import {
  ownBuffer,
  parseJson,
  weightArray,
  type TfjsModelArtifacts,
  type TfjsWeightSpec,
} from './tfjs-model.js';

/** The two formats of this module (a sharded safetensors index reads as 'safetensors'). */
export type WeightsFormat = 'npz' | 'safetensors';

/** One layer to write: its name and its weights in the layer's order. */
export interface LayerToWrite {
  name: string;
  /** `weight` is the name after `<layer>/` (`kernel`, `forward_lstm_LSTM1/kernel`). */
  weights: { weight: string; array: NdArray }[];
}

/** Options of {@link writeWeightsFile}. */
export interface WeightsFileWriteOptions extends WriteOptions {
  /** `.npz` only: deflate the members (as `np.savez_compressed`). Default false. */
  compress?: boolean | number;
  /** `.safetensors` only: more `__metadata__` entries (the model topology, for ioHandler). */
  metadata?: Record<string, string>;
  /** `.safetensors` only: tensors outside any layer (optimizer state, for ioHandler), by name. */
  extra?: Map<string, NdArray>;
}

/**
 * The tensor names of each layer, checked: layer names must be unique and free of `/`
 * (they delimit the layer in a tensor name), tensor names unique.
 */
function plan(layers: readonly LayerToWrite[], path: string): { keys: Map<string, NdArray>; weightNames: Record<string, string[]> } {
  const keys = new Map<string, NdArray>();
  const weightNames: Record<string, string[]> = {};
  const seen = new Set<string>();
  for (const layer of layers) {
    if (layer.name.includes('/') || layer.name === '') {
      throw new TensorioError('ERR_INVALID_ARGUMENT', `layer name ${JSON.stringify(layer.name)} cannot name weights in a .npz or .safetensors file: it must be non-empty and without '/'`, { path });
    }
    if (seen.has(layer.name)) throw new TensorioError('ERR_INVALID_ARGUMENT', `two layers are named '${layer.name}'; weights files need unique layer names`, { path });
    seen.add(layer.name);
    if (layer.weights.length === 0) continue;
    const names: string[] = [];
    for (const { weight, array } of layer.weights) {
      const key = `${layer.name}/${weight}`;
      if (keys.has(key)) throw new TensorioError('ERR_INVALID_ARGUMENT', `two weights are named '${key}'`, { path });
      keys.set(key, array);
      names.push(key);
    }
    Object.defineProperty(weightNames, layer.name, { value: names, enumerable: true, writable: true, configurable: true });
  }
  return { keys, weightNames };
}

/** The `__metadata__` entries that record the layer order in a safetensors file. */
export function layerOrderMetadata(layerNames: readonly string[], weightNames: Record<string, string[]>): Record<string, string> {
  return { layer_names: JSON.stringify(layerNames), weight_names: JSON.stringify(weightNames) };
}

/**
 * Writes a model's weights as `.npz` or `.safetensors` under the naming scheme of this
 * module. Atomic and streamed, as every write.
 * @throws TensorioError `ERR_INVALID_ARGUMENT` (a layer name with `/`, duplicate names), and
 * the errors of `writeNpz` / `writeSafetensors`.
 */
export async function writeWeightsFile(path: string, format: WeightsFormat, layers: readonly LayerToWrite[], options: WeightsFileWriteOptions = {}): Promise<void> {
  const { keys, weightNames } = plan(layers, path);
  const fsync = options.fsync === undefined ? {} : { fsync: options.fsync };
  if (format === 'npz') {
    if (options.metadata !== undefined || options.extra !== undefined) throw new TensorioError('ERR_INVALID_ARGUMENT', 'a .npz file has no place for metadata', { path });
    await writeNpz(path, Object.fromEntries(keys), { ...fsync, ...(options.compress === undefined ? {} : { compress: options.compress }) });
    return;
  }
  if (options.compress !== undefined && options.compress !== false) throw new TensorioError('ERR_INVALID_ARGUMENT', 'compress applies to .npz only', { path });
  for (const [key, array] of options.extra ?? []) {
    if (keys.has(key)) throw new TensorioError('ERR_INVALID_ARGUMENT', `tensor name '${key}' is used twice`, { path });
    keys.set(key, array);
  }
  const metadata = { ...options.metadata, ...layerOrderMetadata(layers.map((l) => l.name), weightNames) };
  await writeSafetensors(path, keys, { ...fsync, metadata });
}

function parseStringList(text: string | undefined, what: string, path: string): string[] {
  let value: unknown;
  try {
    value = text === undefined ? undefined : JSON.parse(text);
  } catch (error) {
    throw new TensorioError('ERR_BAD_METADATA', `__metadata__.${what} is not valid JSON: ${(error as Error).message}`, { path, cause: error });
  }
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
    throw new TensorioError('ERR_BAD_METADATA', `__metadata__.${what} must be a JSON list of strings, found ${text === undefined ? 'nothing' : JSON.stringify(text.slice(0, 80))}`, { path });
  }
  return value as string[];
}

/** The layers of a safetensors file, in the order its `__metadata__` records. */
function safetensorsLayers(tensors: Record<string, LoadedArray>, metadata: Record<string, string>, path: string): KerasLayerWeights[] {
  if (metadata.weight_names === undefined || metadata.layer_names === undefined) {
    throw new TensorioError(
      'ERR_BAD_METADATA',
      "__metadata__ has no 'layer_names' and 'weight_names', so the layer order is unknown: this file was not written by saveWeights() or ioHandler(); read its tensors with readSafetensors()",
      { path },
    );
  }
  const layerNames = parseStringList(metadata.layer_names, 'layer_names', path);
  let weightNames: unknown;
  try {
    weightNames = JSON.parse(metadata.weight_names);
  } catch (error) {
    throw new TensorioError('ERR_BAD_METADATA', `__metadata__.weight_names is not valid JSON: ${(error as Error).message}`, { path, cause: error });
  }
  if (weightNames === null || typeof weightNames !== 'object' || Array.isArray(weightNames)) {
    throw new TensorioError('ERR_BAD_METADATA', '__metadata__.weight_names must be a JSON object: layer name → list of tensor names', { path });
  }
  const table = weightNames as Record<string, unknown>;
  const listed = new Set(layerNames);
  const stray = Object.keys(table).find((name) => !listed.has(name));
  if (stray !== undefined) throw new TensorioError('ERR_BAD_METADATA', `__metadata__.weight_names has layer '${stray}', which layer_names lacks`, { path });
  return layerNames.map((name) => {
    const keys = Object.hasOwn(table, name) ? parseStringList(JSON.stringify(table[name]), `weight_names['${name}']`, path) : [];
    const weights = keys.map((key) => {
      if (!Object.hasOwn(tensors, key)) throw new TensorioError('ERR_BAD_METADATA', `__metadata__.weight_names lists tensor '${key}', which the file lacks`, { path });
      return { name: key, array: tensors[key] as LoadedArray };
    });
    return { name, weights };
  });
}

/** The layers of a `.npz` file: runs of members sharing the part before the first `/`. */
function npzLayers(members: Record<string, LoadedArray>, path: string): KerasLayerWeights[] {
  const layers = new Map<string, KerasLayerWeights>();
  for (const [key, array] of Object.entries(members)) {
    const slash = key.indexOf('/');
    if (slash <= 0) {
      throw new TensorioError('ERR_BAD_METADATA', `member '${key}' is not named '<layer>/<weight>': this .npz was not written by saveWeights(); read it with readNpz()`, { path });
    }
    const name = key.slice(0, slash);
    let layer = layers.get(name);
    if (!layer) layers.set(name, (layer = { name, weights: [] }));
    layer.weights.push({ name: key, array });
  }
  return [...layers.values()];
}

/**
 * Reads a weights file written by {@link writeWeightsFile} as layers with their weights in
 * order, the shape `loadWeights` pairs with a model.
 * @param mmap map the file and return views where aligned (default false).
 * @throws TensorioError `ERR_BAD_METADATA` (a file without the naming scheme), and the errors
 * of `readNpz` / `readSafetensors`.
 */
export async function readWeightsFile(path: string, format: WeightsFormat, mmap = false): Promise<{ layers: KerasLayerWeights[]; metadata: Record<string, string> }> {
  if (format === 'npz') return { layers: npzLayers(await readNpz(path, { mmap }), path), metadata: {} };
  const { tensors, metadata } = await readSafetensors(path, { mmap });
  return { layers: safetensorsLayers(tensors, metadata, path), metadata };
}

/** Where optimizer state goes in a `.safetensors` model file: `optimizer/<tfjs weight name>`. */
const OPTIMIZER_PREFIX = 'optimizer/';

/** What a `.safetensors` model file holds: the topology, the layer order, plain weights (one buffer each). */
export interface SafetensorsModel {
  topology: JsonObject;
  layerNames: readonly string[];
  specs: readonly TfjsWeightSpec[];
  pieces: readonly ArrayBuffer[];
  format: string;
  generatedBy: string;
  convertedBy?: string | null | undefined;
  trainingConfig?: unknown;
  userDefinedMetadata?: unknown;
}

/**
 * Writes a whole model as `.safetensors`: the weights as tensors named as `saveWeights` names
 * them, the topology and weight specs in `__metadata__`.
 * @throws TensorioError `ERR_INVALID_ARGUMENT` for a weight name not `<layer>/<weight>`,
 * `ERR_UNSUPPORTED_DTYPE`, and the errors of {@link writeWeightsFile}.
 */
export async function writeSafetensorsModel(path: string, model: SafetensorsModel, options: WriteOptions): Promise<void> {
  // Layers in topology order; tfjs names each weight '<layer>/<weight>', so the part before the
  // first '/' is its layer (nested models' weights name their inner layers, appended here).
  // Optimizer state (model.save(h, { includeOptimizer: true })) is kept outside the layers.
  const layers = new Map<string, LayerToWrite>();
  for (const name of model.layerNames) layers.set(name, { name, weights: [] });
  const extra = new Map<string, NdArray>();
  const stored: TfjsWeightSpec[] = [];
  model.specs.forEach((spec, i) => {
    const array = weightArray(spec, model.pieces[i] as ArrayBuffer, path, '.safetensors model files');
    const entry: TfjsWeightSpec = { name: spec.name, shape: [...spec.shape], dtype: spec.dtype };
    if (spec.group !== undefined) entry.group = spec.group;
    stored.push(entry);
    if (spec.group === 'optimizer') {
      extra.set(`${OPTIMIZER_PREFIX}${spec.name}`, array);
      return;
    }
    const slash = spec.name.indexOf('/');
    if (slash <= 0) throw new TensorioError('ERR_INVALID_ARGUMENT', `weight name '${spec.name}' is not '<layer>/<weight>'`, { path });
    const layer = spec.name.slice(0, slash);
    let owner = layers.get(layer);
    if (!owner) layers.set(layer, (owner = { name: layer, weights: [] }));
    owner.weights.push({ weight: spec.name.slice(slash + 1), array });
  });
  const metadata: Record<string, string> = {
    format: model.format,
    model_topology: JSON.stringify(model.topology),
    weight_specs: JSON.stringify(stored),
    generated_by: model.generatedBy,
  };
  if (model.convertedBy) metadata.converted_by = model.convertedBy;
  if (model.trainingConfig) metadata.training_config = JSON.stringify(model.trainingConfig);
  if (model.userDefinedMetadata) metadata.user_defined_metadata = JSON.stringify(model.userDefinedMetadata);
  await writeWeightsFile(path, 'safetensors', [...layers.values()], { ...options, metadata, extra });
}

/** A JSON object from `__metadata__`, or undefined when the entry is absent or not an object. */
function metadataObject(metadata: Record<string, string>, key: string, path: string): JsonObject | undefined {
  const text = metadata[key];
  if (text === undefined) return undefined;
  const value = parseJson(text, path, `__metadata__.${key}`);
  return isObject(value) ? value : undefined;
}

/**
 * Reads a whole model from a `.safetensors` file {@link writeSafetensorsModel} wrote (or any
 * with the same `__metadata__`); other float widths convert to float32 weights.
 * @throws TensorioError `ERR_BAD_METADATA` (no `model_topology`: a weights-only file; specs
 * that do not match the tensors), `ERR_SHAPE_MISMATCH`, and the errors of `readSafetensors`.
 */
export async function readSafetensorsModel(path: string): Promise<TfjsModelArtifacts> {
  const { tensors, metadata } = await readSafetensors(path);
  if (metadata.model_topology === undefined) {
    throw new TensorioError('ERR_BAD_METADATA', "__metadata__ has no 'model_topology': this is a weights-only file; build the model and use loadWeights()", { path });
  }
  const topology = parseJson(metadata.model_topology, path, '__metadata__.model_topology');
  if (!isObject(topology)) throw new TensorioError('ERR_BAD_METADATA', '__metadata__.model_topology is not a JSON object', { path });
  const specs = parseJson(metadata.weight_specs ?? '[]', path, '__metadata__.weight_specs');
  if (!Array.isArray(specs)) throw new TensorioError('ERR_BAD_METADATA', '__metadata__.weight_specs is not a JSON list', { path });
  const weightSpecs: TfjsWeightSpec[] = [];
  const pieces: ArrayBuffer[] = [];
  for (const spec of specs) {
    if (!isObject(spec) || typeof spec.name !== 'string' || !Array.isArray(spec.shape) || !['float32', 'int32', 'bool'].includes(spec.dtype as string)) {
      throw new TensorioError('ERR_BAD_METADATA', `a weight spec in __metadata__.weight_specs is not {name, shape, dtype: float32|int32|bool}: ${JSON.stringify(spec).slice(0, 200)}`, { path });
    }
    const optimizer = spec.group === 'optimizer';
    const key = optimizer ? `${OPTIMIZER_PREFIX}${spec.name}` : spec.name;
    const array = Object.hasOwn(tensors, key) ? tensors[key] : undefined;
    if (!array) throw new TensorioError('ERR_BAD_METADATA', `weight spec '${spec.name}' has no tensor '${key}' in the file`, { path });
    if (array.shape.join() !== spec.shape.join()) {
      throw new TensorioError('ERR_SHAPE_MISMATCH', `weight '${spec.name}': the spec says (${spec.shape.join(', ')}), the tensor has (${array.shape.join(', ')})`, { path });
    }
    const dtype = spec.dtype as 'float32' | 'int32' | 'bool';
    const tfjsDtype = dtypeInfo(array.dtype).tfjs;
    // Other float widths (float16, bfloat16, float64) convert to float32, as loadWeights does.
    const convertible = dtype === 'float32' && tfjsDtype === null && (array.dtype.startsWith('float') || array.dtype === 'bfloat16');
    if (tfjsDtype !== dtype && !convertible) {
      throw new TensorioError('ERR_BAD_METADATA', `weight '${spec.name}': the spec says ${dtype}, the tensor is ${array.dtype}`, { path });
    }
    weightSpecs.push({ name: spec.name, shape: array.shape, dtype, ...(optimizer ? { group: 'optimizer' as const } : {}) });
    pieces.push(ownBuffer(dtype === 'float32' ? toFloat32(array).data : array.data));
  }
  const artifacts: TfjsModelArtifacts = { modelTopology: topology, format: metadata.format ?? 'layers-model', weightSpecs, weightData: pieces };
  if (metadata.generated_by !== undefined) artifacts.generatedBy = metadata.generated_by;
  if (metadata.converted_by !== undefined) artifacts.convertedBy = metadata.converted_by;
  const training = metadataObject(metadata, 'training_config', path);
  if (training) artifacts.trainingConfig = training;
  const user = metadataObject(metadata, 'user_defined_metadata', path);
  if (user) artifacts.userDefinedMetadata = user;
  return artifacts;
}
