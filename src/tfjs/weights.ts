/**
 * saveWeights / loadWeights for TensorFlow.js LayersModels, with Keras's matching rules:
 * topological by default (the layers that have weights, in model order, each layer's
 * weights in its own order: trainable then non-trainable, which is not the order of
 * `model.weights`), or by layer name.
 */
import * as tf from '@tensorflow/tfjs';
import { checkOptions, keysOf } from '../options.js';

import { TensorioError } from '../errors.js';
import { keras3LayerNames, keras3LayerWeights } from '../formats/keras/naming.js';
import { readKerasWeights, writeKerasWeights, type KerasLayerToWrite, type KerasLayerWeights, type KerasWriteOptions } from '../formats/keras/weights-h5.js';
import { type NdArray } from '../ndarray.js';
import { readKerasArchive } from '../formats/keras/archive.js';
import { fromTensor, toTensor } from './tensors.js';
import { formatForPath, identifyFile } from '../formats/registry.js';
import { readWeightsFile, writeWeightsFile, type LayerToWrite, type WeightsFileWriteOptions } from '../formats/weight-files.js';

/** The options saveWeights and loadWeights take (checked: a misspelt key is ERR_INVALID_ARGUMENT). */
const SAVE_WEIGHTS_OPTIONS = keysOf<SaveWeightsOptions>({ fsync: true, kerasVersion: true, backend: true, layout: true, compress: true });
const LOAD_WEIGHTS_OPTIONS = keysOf<LoadWeightsOptions>({ byName: true, skipMismatch: true, mmap: true, allowUnmatched: true });

/** Options of {@link loadWeights}. */
export interface LoadWeightsOptions {
  /** Match file layers to model layers by name instead of by position. Default false. */
  byName?: boolean;
  /**
   * Skip a layer whose weight count or shapes differ (with a warning) instead of throwing
   * `ERR_SHAPE_MISMATCH`. Default false.
   */
  skipMismatch?: boolean;
  /**
   * Read contiguous datasets (`.h5`), stored aligned members (`.npz`) or aligned tensors
   * (`.safetensors`) as views into a mapping of the file. Default false.
   */
  mmap?: boolean;
  /**
   * Allow model layers with weights that the file has no weights for (left as they are),
   * and file layers with weights that no model layer takes (ignored). Default false: either
   * is `ERR_SHAPE_MISMATCH` naming them, so nothing is left unset or dropped unseen.
   */
  allowUnmatched?: boolean;
}

/** Options of {@link saveWeights}. */
export interface SaveWeightsOptions extends Pick<KerasWriteOptions, 'fsync' | 'kerasVersion' | 'backend'> {
  /** Override the layout chosen by extension ('.weights.h5' → 'keras3', '.h5' → 'legacy'). */
  layout?: 'legacy' | 'keras3';
  /** `.npz` only: deflate the members (as `np.savez_compressed`; level 0-9 or true = 6). Default false. */
  compress?: boolean | number;
}

/** Keras 3 group names for a model's layers (input layers have none). */
function keras3Names(model: tf.LayersModel): Map<tf.layers.Layer, string> {
  const names = keras3LayerNames(model.layers.map((layer) => layer.getClassName()));
  return new Map(model.layers.flatMap((layer, i) => (names[i] === undefined ? [] : [[layer, names[i] as string] as const])));
}

async function weightArray(variable: tf.LayerVariable): Promise<NdArray> {
  return fromTensor(variable.read(), variable.originalName);
}

/** A weight's name within its layer: tfjs's `originalName` without the `<layer>/` prefix. */
function weightNameInLayer(layer: tf.layers.Layer, variable: tf.LayerVariable): string {
  const prefix = `${layer.name}/`;
  return variable.originalName.startsWith(prefix) ? variable.originalName.slice(prefix.length) : variable.originalName;
}

async function saveWeightsFile(model: tf.LayersModel, path: string, format: 'npz' | 'safetensors', options: SaveWeightsOptions): Promise<void> {
  if (options.layout !== undefined) throw new TensorioError('ERR_INVALID_ARGUMENT', `layout applies to .h5 files, not .${format}`, { path });
  const layers: LayerToWrite[] = [];
  for (const layer of model.layers) {
    const weights = [];
    for (const variable of layer.weights) {
      weights.push({ weight: weightNameInLayer(layer, variable as tf.LayerVariable), array: await weightArray(variable as tf.LayerVariable) });
    }
    layers.push({ name: layer.name, weights });
  }
  const write: WeightsFileWriteOptions = {};
  if (options.fsync !== undefined) write.fsync = options.fsync;
  if (options.compress !== undefined) write.compress = options.compress;
  await writeWeightsFile(path, format, layers, write);
}

/**
 * Saves a model's weights, in a layout chosen by extension:
 * - `.h5` → Keras 2 legacy (every layer in `layer_names`, weights named `<layer>/<weight>:0`);
 * - `.weights.h5` → Keras 3 (`layers/<snake_case class>/vars/<i>`);
 * - `.npz` → one member per weight named `<layer>/<weight>` (`dense_Dense1/kernel`), layers
 *   in model order and each layer's weights in its order (`np.load` reads it);
 * - `.safetensors` → the same tensor names, with the order in `__metadata__` (`layer_names`,
 *   `weight_names`, JSON).
 *
 * The file replaces `path` atomically.
 * @param options `fsync` (default true); `.h5`: `layout`, `kerasVersion` (default '2.13.1'),
 * `backend` (default 'tensorflow'); `.npz`: `compress` (default false).
 * @throws TensorioError `ERR_INVALID_ARGUMENT` for another extension, duplicate layer names,
 * a layer name containing `/` (`.npz`, `.safetensors`), or an option of another format.
 */
export async function saveWeights(model: tf.LayersModel, path: string, options: SaveWeightsOptions = {}): Promise<void> {
  checkOptions(options, SAVE_WEIGHTS_OPTIONS, 'saveWeights', path);
  const { id } = formatForPath(path, 'saveWeights');
  if (id === 'npz' || id === 'safetensors') return saveWeightsFile(model, path, id, options);
  if (options.compress !== undefined) throw new TensorioError('ERR_INVALID_ARGUMENT', 'compress applies to .npz only', { path });
  // The registry tells .weights.h5 (Keras 3) from .h5/.hdf5 (legacy); `layout` overrides it.
  const layout = options.layout ?? (id === 'keras3-weights' ? 'keras3' : 'legacy');
  const layers: KerasLayerToWrite[] = [];
  const k3 = layout === 'keras3' ? keras3Names(model) : undefined;
  for (const layer of model.layers) {
    const name = k3 ? k3.get(layer) : layer.name;
    if (name === undefined) continue;
    const weights = [];
    for (const variable of layer.weights) {
      const array = await weightArray(variable as tf.LayerVariable);
      weights.push({ name: layout === 'keras3' ? String(weights.length) : `${variable.originalName}:0`, array });
    }
    layers.push({ name, weights });
  }
  const write: KerasWriteOptions = { layout };
  if (options.fsync !== undefined) write.fsync = options.fsync;
  if (options.kerasVersion !== undefined) write.kerasVersion = options.kerasVersion;
  if (options.backend !== undefined) write.backend = options.backend;
  await writeKerasWeights(path, layers, write);
}

function shapeText(shape: readonly number[]): string {
  return `(${shape.join(', ')}${shape.length === 1 ? ',' : ''})`;
}

/**
 * Pairs each model layer that has weights with the file layer holding its weights, as
 * Keras's `load_weights_from_hdf5_group` (topological) or `..._by_name` does.
 */
function pairLayers(
  model: tf.LayersModel,
  file: { layout: 'legacy' | 'keras3'; layers: KerasLayerWeights[] },
  byName: boolean,
  path: string,
  allowUnmatched: boolean,
): [tf.layers.Layer, KerasLayerWeights][] {
  const modelLayers = model.layers.filter((l) => l.weights.length > 0);
  /** Refuses a pairing that leaves model weights unset or file weights unused, naming both. */
  const checkUnmatched = (pairs: [tf.layers.Layer, KerasLayerWeights][]): [tf.layers.Layer, KerasLayerWeights][] => {
    if (allowUnmatched) return pairs;
    const usedModel = new Set(pairs.map(([layer]) => layer));
    const usedFile = new Set(pairs.map(([, stored]) => stored));
    const unset = modelLayers.filter((layer) => !usedModel.has(layer)).map((layer) => `'${layer.name}' (${layer.weights.map((w) => (w as tf.LayerVariable).originalName).join(', ')})`);
    const unused = file.layers.filter((l) => l.weights.length > 0 && !usedFile.has(l)).map((l) => `'${l.name}' (${l.weights.map((w) => w.name).join(', ')})`);
    if (unset.length === 0 && unused.length === 0) return pairs;
    const parts = [unset.length > 0 ? `model layers left unset: ${unset.join(', ')}` : '', unused.length > 0 ? `file layers no model layer takes: ${unused.join(', ')}` : ''].filter(Boolean);
    throw new TensorioError('ERR_SHAPE_MISMATCH', `${parts.join('; ')}; pass { allowUnmatched: true } to load the rest`, { path });
  };
  if (file.layout === 'keras3') {
    const names = keras3Names(model);
    const byPath = new Map(file.layers.map((l) => [l.name, l]));
    return checkUnmatched(
      modelLayers.flatMap((layer) => {
        const found = keras3LayerWeights(byPath, names.get(layer) ?? '');
        if (!found && !allowUnmatched) throw new TensorioError('ERR_SHAPE_MISMATCH', `layer '${layer.name}' expects weights at layers/${names.get(layer) ?? '?'}/vars in the file, which has none`, { path });
        return found ? [[layer, found] as [tf.layers.Layer, KerasLayerWeights]] : [];
      }),
    );
  }
  if (byName) {
    const byLayerName = new Map(file.layers.map((l) => [l.name, l]));
    return checkUnmatched(
      model.layers.flatMap((layer) => {
        const found = byLayerName.get(layer.name);
        return found && (found.weights.length > 0 || layer.weights.length > 0) ? [[layer, found] as [tf.layers.Layer, KerasLayerWeights]] : [];
      }),
    );
  }
  const fileLayers = file.layers.filter((l) => l.weights.length > 0);
  if (fileLayers.length !== modelLayers.length) {
    throw new TensorioError(
      'ERR_SHAPE_MISMATCH',
      `the file has ${fileLayers.length} layers with weights, the model ${modelLayers.length} (file: ${fileLayers.map((l) => l.name).join(', ')}; model: ${modelLayers.map((l) => l.name).join(', ')})`,
      { path },
    );
  }
  return modelLayers.map((layer, i) => [layer, fileLayers[i] as KerasLayerWeights]);
}

/**
 * Loads weights (`.h5` legacy, weights-only or full model; `.weights.h5` Keras 3; the
 * weights of a `.keras` archive; `.npz` and `.safetensors` written by {@link saveWeights} or,
 * for `.safetensors`, by `ioHandler`) into
 * a model, matching layers topologically (default) or by name, and each layer's weights in
 * order. Data goes to tfjs without an extra copy when it is float32 (the tensor wraps the
 * array read from the file); float64 and other types are converted to float32.
 * @throws TensorioError `ERR_SHAPE_MISMATCH` naming the layer, the weight and both shapes
 * (unless `skipMismatch`), `ERR_BAD_METADATA` for a `.npz` or `.safetensors` file not laid
 * out as {@link saveWeights} writes it, and the errors of {@link readKerasWeights}, `readNpz`
 * and `readSafetensors`.
 */
export async function loadWeights(model: tf.LayersModel, path: string, options: LoadWeightsOptions = {}): Promise<void> {
  checkOptions(options, LOAD_WEIGHTS_OPTIONS, 'loadWeights', path);
  // The registry picks the reader; an HDF5 file's layout (legacy or Keras 3) is read from its content.
  const { entry, container } = await identifyFile(path, 'loadWeights');
  const file =
    entry.id === 'npz' || entry.id === 'safetensors' || entry.id === 'safetensors-index'
      ? { layout: 'legacy' as const, layers: (await readWeightsFile(path, entry.id === 'npz' ? 'npz' : 'safetensors', options.mmap ?? false)).layers }
      : entry.id === 'keras' && container === 'zip'
        ? (await readKerasArchive(path)).weights
        : await readKerasWeights(path, options.mmap ? { mmap: true } : {});
  const pairs = pairLayers(model, file, options.byName ?? false, path, options.allowUnmatched ?? false);
  const assignments: [tf.layers.Layer, tf.Tensor[]][] = [];
  for (const [layer, stored] of pairs) {
    const expected = layer.weights;
    let problem: string | undefined;
    if (stored.weights.length !== expected.length) {
      problem = `layer '${layer.name}' (${layer.getClassName()}) expects ${expected.length} weights, file layer '${stored.name}' has ${stored.weights.length}`;
    } else {
      for (let i = 0; i < expected.length; i++) {
        const want = expected[i] as tf.LayerVariable;
        const got = stored.weights[i]?.array as NdArray;
        if (want.shape.length !== got.shape.length || want.shape.some((d, j) => d !== got.shape[j])) {
          problem = `layer '${layer.name}', weight '${want.originalName}': the model expects shape ${shapeText(want.shape as number[])}, file weight '${stored.weights[i]?.name}' has shape ${shapeText(got.shape)}`;
          break;
        }
      }
    }
    if (problem) {
      if (options.skipMismatch) {
        process.emitWarning(`skipping ${problem}`, { code: 'TENSORIO_SKIP_MISMATCH' });
        continue;
      }
      throw new TensorioError('ERR_SHAPE_MISMATCH', problem, { path });
    }
    const tensors = stored.weights.map((w, i) => {
      const variable = expected[i] as tf.LayerVariable;
      return toTensor(w.array, { name: w.name, path, dtype: variable.dtype === 'int32' ? 'int32' : 'float32' });
    });
    assignments.push([layer, tensors]);
  }
  // Assign only after every check passed, so a failed load leaves the model unchanged.
  for (const [layer, tensors] of assignments) {
    layer.setWeights(tensors);
    tf.dispose(tensors);
  }
}
