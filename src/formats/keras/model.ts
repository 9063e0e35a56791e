/**
 * Keras full-model files, without tfjs: the model configuration (JSON) and the weights of a
 * legacy `.h5` model (`model_config` + `model_weights`, or the HDF5 file some tf.keras
 * versions wrote as `.keras`) or of a Keras 3 `.keras` archive (config.json +
 * model.weights.h5); and the `.h5` full model written from a tfjs topology and plain weights.
 * The pairing with a tfjs model's variables is the glue's (src/tfjs/handler.ts).
 */
import { TensorioError } from '../../errors.js';
import { type WriteOptions } from '../../io/atomic-writer.js';
import { identifyFile } from '../registry.js';
import { parseJson, weightArray, type TfjsWeightSpec } from '../tfjs-model.js';
import { readKerasArchive } from './archive.js';
import { isObject, tfjsToKerasTopology, type JsonObject, type KerasFlavour } from './config.js';
import { readKerasWeights, writeKerasWeights, type KerasLayerToWrite, type KerasLayerWeights, type KerasWriteOptions } from './weights-h5.js';

/** What {@link readKerasModel} returns. */
export interface KerasModelFile {
  /** The Keras model configuration (`model_config` or config.json). */
  config: JsonObject;
  /** Which Keras wrote the configuration (Keras 3 changed some functions under the same name). */
  flavour: KerasFlavour;
  /** How the weights are matched: by layer name (legacy) or by structure (Keras 3). */
  layout: 'legacy' | 'keras3';
  layers: KerasLayerWeights[];
}

/**
 * Reads a Keras full model: a `.keras` archive (a zip) or a legacy HDF5 model.
 * @throws TensorioError `ERR_BAD_METADATA` for a weights-only file or a configuration that
 * is not a JSON object, and the errors of `readKerasWeights` and the archive reader.
 */
export async function readKerasModel(path: string): Promise<KerasModelFile> {
  // A Keras 3 .keras archive is a zip; a legacy Keras model (.h5, or .keras from some tf.keras versions) is HDF5.
  if ((await identifyFile(path, 'ioHandlerLoad')).container === 'zip') {
    const { config: text, weights } = await readKerasArchive(path);
    const config = parseJson(text, path, 'config.json');
    if (!isObject(config)) throw new TensorioError('ERR_BAD_METADATA', 'config.json is not a JSON object', { path });
    return { config, flavour: 'keras3', layout: 'keras3', layers: weights.layers };
  }
  const file = await readKerasWeights(path);
  if (file.modelConfig === undefined) {
    throw new TensorioError('ERR_BAD_METADATA', "no 'model_config' attribute: this is a weights-only file; build the model and use loadWeights()", { path });
  }
  const config = parseJson(file.modelConfig, path, 'model_config');
  if (!isObject(config)) throw new TensorioError('ERR_BAD_METADATA', 'model_config is not a JSON object', { path });
  return { config, flavour: file.kerasVersion?.startsWith('3.') ? 'keras3' : 'keras2', layout: 'legacy', layers: file.layers };
}

/** What {@link writeKerasModel} writes: a tfjs topology, the layer order, plain weights (one buffer each). */
export interface KerasModelToWrite {
  topology: JsonObject;
  layerNames: readonly string[];
  specs: readonly TfjsWeightSpec[];
  pieces: readonly ArrayBuffer[];
  /** Root `keras_version`. */
  kerasVersion: string;
  trainingConfig?: unknown;
}

/**
 * Writes a legacy `.h5` full model as `model.save('m.h5')` does: the topology turned back
 * into Keras's (`GRUResetAfter` → GRU), every layer in order, each weight named
 * `<tfjs weight name>:0` in the layer its name starts with.
 * @throws TensorioError `ERR_UNSUPPORTED_DTYPE`, and the errors of `writeKerasWeights`.
 */
export async function writeKerasModel(path: string, model: KerasModelToWrite, options: WriteOptions): Promise<void> {
  const byLayer = new Map<string, KerasLayerToWrite>();
  for (const name of model.layerNames) byLayer.set(name, { name, weights: [] });
  model.specs.forEach((spec, i) => {
    const layer = spec.name.includes('/') ? spec.name.slice(0, spec.name.indexOf('/')) : spec.name;
    let entry = byLayer.get(layer);
    if (!entry) byLayer.set(layer, (entry = { name: layer, weights: [] }));
    entry.weights.push({ name: `${spec.name}:0`, array: weightArray(spec, model.pieces[i] as ArrayBuffer, path, 'Keras .h5 model files') });
  });
  const { topology } = model;
  const modelConfig = JSON.stringify(tfjsToKerasTopology({ class_name: topology.class_name ?? null, config: topology.config ?? null }));
  const writeOptions: KerasWriteOptions = { modelConfig, kerasVersion: model.kerasVersion, backend: 'tensorflow' };
  if (options.fsync !== undefined) writeOptions.fsync = options.fsync;
  if (model.trainingConfig) writeOptions.trainingConfig = JSON.stringify(model.trainingConfig);
  await writeKerasWeights(path, [...byLayer.values()], writeOptions);
}
