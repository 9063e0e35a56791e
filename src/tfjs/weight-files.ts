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
 */
import { TensorioError } from '../errors.js';
import { type KerasLayerWeights } from '../formats/keras/weights-h5.js';
import { readNpz, writeNpz } from '../formats/npz.js';
import { readSafetensors, writeSafetensors } from '../formats/safetensors.js';
import { type WriteOptions } from '../io.js';
import { type LoadedArray, type NdArray } from '../ndarray.js';

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
