/**
 * `ioHandler(path)`: a `tf.io.IOHandler` for full models on disk, without tfjs-node:
 * - `model.json` (the tfjs format: topology + `.bin` shards), read and write;
 * - Keras `.h5` full models (`model_config` + `model_weights`), read and write;
 * - `.keras` archives (Keras 3 zip, or the HDF5 file some tf.keras versions wrote under
 *   that name), read;
 * - `.safetensors`, read and write: the weights as tensors named as `saveWeights` names them,
 *   the topology and weight specs in `__metadata__`.
 * Weight data is handed to tfjs as `ArrayBuffer[]` (one piece per weight or shard), so a
 * large model never needs one giant buffer.
 *
 * The formats themselves live in src/formats/ (`tfjs-model.ts`, `weight-files.ts`, `keras/`);
 * this module is the glue to tfjs's objects: `ModelArtifacts` in and out, and the probe model
 * that tells how tfjs names and orders a Keras model's weights.
 */
import { checkOptions, keysOf } from '../options.js';

import * as tf from '@tensorflow/tfjs';

import { tfjsArray } from './tfjs-arrays.js';
import { TensorioError } from '../errors.js';
import { isObject, kerasToTfjsTopology, topologyLayerNames, type Json, type JsonObject } from '../formats/keras/config.js';
import { keras3LayerNames, keras3LayerWeights } from '../formats/keras/naming.js';
import { readKerasModel, writeKerasModel } from '../formats/keras/model.js';
import { type KerasLayerWeights } from '../formats/keras/weights-h5.js';
import { extensionsFor, formatForPath, formatOfName, type FormatId } from '../formats/registry.js';
import { ownBuffer, plainWeights, quantizeWeights, readTfjsModel, writeTfjsModel } from '../formats/tfjs-model.js';
import type { TfjsQuantizationDtype } from '../formats/tfjs-quantization.js';
import { readSafetensorsModel, writeSafetensorsModel } from '../formats/weight-files.js';
import { type WriteOptions } from '../io/atomic-writer.js';
// Registers GRUResetAfter, which Keras GRUs with reset_after=True load as.
import './gru-reset-after.js';

/** The options ioHandler takes (checked: a misspelt key is ERR_INVALID_ARGUMENT). */
const IO_HANDLER_OPTIONS = keysOf<IOHandlerOptions>({ fsync: true, directIo: true, quantize: true });

/** What tfjs writes as `generatedBy` when the artifacts name no generator. */
const GENERATED_BY = `TensorFlow.js tfjs-layers v${tf.version_layers}`;

// ---------------------------------------------------------------------------------------
// Keras models (src/formats/keras/model.ts): a probe model pairs the file's weights with tfjs's variables.

function knownTfjsClass(name: string): boolean {
  return name in (tf.serialization.SerializationMap.getMap().classNameMap as Record<string, unknown>);
}

function withZeroInitializers(value: Json): Json {
  if (Array.isArray(value)) return value.map(withZeroInitializers);
  if (!isObject(value)) return value;
  const out: JsonObject = {};
  for (const [key, item] of Object.entries(value)) {
    out[key] = key.endsWith('_initializer') && item !== null ? { class_name: 'Zeros', config: {} } : withZeroInitializers(item);
  }
  return out;
}

/**
 * Builds the model once to learn tfjs's names and order for each layer's weights, then pairs
 * them with the file's layers (by name for legacy files, by structure for Keras 3).
 */
async function kerasArtifacts(topology: JsonObject, layout: 'legacy' | 'keras3', fileLayers: KerasLayerWeights[], path: string): Promise<tf.io.ModelArtifacts> {
  let probe: tf.LayersModel;
  try {
    // The probe only tells names, order and shapes: zero initializers keep it cheap (a large
    // untouched zero-filled buffer costs no resident memory; random ones would cost its size).
    const probeTopology = withZeroInitializers(topology);
    probe = await tf.models.modelFromJSON({ modelTopology: probeTopology as unknown as tf.io.ModelJSON['modelTopology'] } as tf.io.ModelJSON);
  } catch (error) {
    throw new TensorioError('ERR_BAD_METADATA', `TensorFlow.js cannot build the model from its configuration: ${(error as Error).message}`, { path, cause: error });
  }
  try {
    const specs: tf.io.WeightsManifestEntry[] = [];
    const pieces: ArrayBuffer[] = [];
    const byName = new Map(fileLayers.map((l) => [l.name, l]));
    const keras3Names = keras3LayerNames(probe.layers.map((layer) => layer.getClassName()));
    for (const [index, layer] of probe.layers.entries()) {
      let stored: KerasLayerWeights | undefined;
      if (layout === 'keras3') {
        const name = keras3Names[index];
        if (name === undefined) continue;
        stored = keras3LayerWeights(byName, name);
      } else {
        stored = byName.get(layer.name);
      }
      if (layer.weights.length === 0) continue;
      if (!stored || stored.weights.length !== layer.weights.length) {
        throw new TensorioError('ERR_SHAPE_MISMATCH', `layer '${layer.name}' has ${layer.weights.length} weights; the file has ${stored ? stored.weights.length : 'none'} for it`, { path });
      }
      layer.weights.forEach((variable, i) => {
        const array = (stored as KerasLayerWeights).weights[i]?.array;
        if (!array) return;
        if (array.shape.join() !== variable.shape.join()) {
          throw new TensorioError('ERR_SHAPE_MISMATCH', `layer '${layer.name}', weight '${variable.originalName}': the model expects (${variable.shape.join(', ')}), the file has (${array.shape.join(', ')})`, { path });
        }
        const data = tfjsArray(array, { name: variable.originalName, path, dtype: variable.dtype === 'int32' ? 'int32' : 'float32' }).data;
        specs.push({ name: variable.originalName, shape: [...array.shape], dtype: variable.dtype === 'int32' ? 'int32' : 'float32' });
        pieces.push(ownBuffer(data));
      });
    }
    return { modelTopology: topology as unknown as tf.io.ModelArtifacts['modelTopology'], format: 'layers-model', weightSpecs: specs, weightData: pieces, convertedBy: 'tensorio' };
  } finally {
    probe.dispose();
  }
}

async function loadKeras(path: string): Promise<tf.io.ModelArtifacts> {
  const { config, flavour, layout, layers } = await readKerasModel(path);
  return kerasArtifacts(kerasToTfjsTopology(config, flavour, knownTfjsClass, path), layout, layers, path);
}

/** What a save needs from tfjs's artifacts: the topology, the weight specs, each weight's bytes, the layer names. */
function artifactParts(artifacts: tf.io.ModelArtifacts, path: string, format: string) {
  if (!isObject(artifacts.modelTopology as Json)) {
    throw new TensorioError('ERR_INVALID_ARGUMENT', `the model artifacts carry no JSON topology (a graph model cannot be saved as ${format})`, { path });
  }
  // The tensorflowjs converter wraps the config: {keras_version, backend, model_config}.
  const raw = artifacts.modelTopology as unknown as JsonObject;
  const topology = isObject(raw.model_config) ? raw.model_config : raw;
  // Each weight in a buffer of its own; quantized weights (the converter's --quantize_*)
  // dequantized as tfjs does it.
  const { specs, pieces } = plainWeights(artifacts.weightSpecs ?? [], artifacts.weightData, path);
  const layerNames = topologyLayerNames(topology);
  return { topology, specs, pieces, layerNames };
}

async function saveKeras(path: string, artifacts: tf.io.ModelArtifacts, options: WriteOptions): Promise<tf.io.SaveResult> {
  const { topology, specs, pieces, layerNames } = artifactParts(artifacts, path, 'Keras .h5');
  await writeKerasModel(path, { topology, layerNames, specs, pieces, kerasVersion: `tfjs-layers ${tf.version_layers}`, trainingConfig: artifacts.trainingConfig }, options);
  return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
}

// ---------------------------------------------------------------------------------------
// The tfjs format: model.json + .bin shards.

async function saveTfjs(path: string, given: tf.io.ModelArtifacts, options: IOHandlerOptions): Promise<tf.io.SaveResult> {
  let artifacts = given;
  if (options.quantize) {
    const { specs, data } = quantizeWeights(given.weightSpecs ?? [], given.weightData, options.quantize, path);
    artifacts = { ...given, weightSpecs: specs, weightData: data };
  }
  await writeTfjsModel(path, artifacts, GENERATED_BY, options);
  return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
}

// ---------------------------------------------------------------------------------------
// safetensors: weights as tensors, topology and weight specs in __metadata__ (JSON strings).

async function saveSafetensors(path: string, artifacts: tf.io.ModelArtifacts, options: WriteOptions): Promise<tf.io.SaveResult> {
  const { topology, specs, pieces, layerNames } = artifactParts(artifacts, path, '.safetensors');
  const { format = 'layers-model', generatedBy = GENERATED_BY, convertedBy, trainingConfig, userDefinedMetadata } = artifacts;
  await writeSafetensorsModel(path, { topology, layerNames, specs, pieces, format, generatedBy, convertedBy, trainingConfig, userDefinedMetadata }, options);
  return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
}

/** Options of {@link ioHandler}. */
export interface IOHandlerOptions extends WriteOptions {
  /**
   * model.json only: store float32 weights quantized as the tensorflowjs converter's
   * `--quantize_float16` / `--quantize_uint8` / `--quantize_uint16` do (same bytes). Default: none.
   */
  quantize?: TfjsQuantizationDtype;
}

/**
 * A `tf.io.IOHandler` for a model file, chosen by extension:
 * `.json` (tfjs format, load and save), `.h5` / `.hdf5` (Keras full model, load and save),
 * `.keras` (Keras 3 archive or HDF5, load), `.safetensors` (weights as tensors, topology in
 * `__metadata__`, load and save). `.npz` has no place for a topology and is refused.
 *
 * @example
 * await model.save(ioHandler('model.h5'));
 * const again = await tf.loadLayersModel(ioHandler('model.h5'));
 * @throws TensorioError `ERR_INVALID_ARGUMENT` for another extension or `.npz`; on load,
 * `ERR_UNSUPPORTED_LAYER` naming a Keras layer class tfjs lacks, `ERR_SHAPE_MISMATCH`,
 * `ERR_BAD_METADATA`, and the file errors.
 */
export function ioHandler(path: string, options: IOHandlerOptions = {}): tf.io.IOHandler {
  checkOptions(options, IO_HANDLER_OPTIONS, 'ioHandler', path);
  const entry = formatOfName(path);
  if (options.quantize !== undefined && (entry?.id !== 'tfjs' || !['float16', 'uint8', 'uint16'].includes(options.quantize))) {
    throw new TensorioError('ERR_INVALID_ARGUMENT', `quantize is 'float16', 'uint8' or 'uint16', for model.json only (got ${JSON.stringify(options.quantize)})`, { path });
  }
  // Formats the registry lists without a model topology get a message saying what to use instead.
  if (entry?.id === 'keras3-weights') {
    throw new TensorioError('ERR_INVALID_ARGUMENT', 'a .weights.h5 file holds weights only: use saveWeights()/loadWeights() with a built model', { path });
  }
  if (entry?.id === 'npz') {
    throw new TensorioError(
      'ERR_INVALID_ARGUMENT',
      'a .npz file holds arrays only, with no place for the model topology: save the whole model as .safetensors, .h5 or model.json, or only its weights with saveWeights(model, path.npz)',
      { path },
    );
  }
  const { id } = formatForPath(path, 'ioHandlerLoad');
  const handlers: Record<FormatId, tf.io.IOHandler | undefined> = {
    tfjs: { load: async () => (await readTfjsModel(path)) as tf.io.ModelArtifacts, save: (artifacts) => saveTfjs(path, artifacts, options) },
    hdf5: { load: () => loadKeras(path), save: (artifacts) => saveKeras(path, artifacts, options) },
    keras: { load: () => loadKeras(path), save: () => Promise.reject(unwritable(path)) },
    safetensors: { load: async () => (await readSafetensorsModel(path)) as tf.io.ModelArtifacts, save: (artifacts) => saveSafetensors(path, artifacts, options) },
    npy: undefined,
    npz: undefined,
    'safetensors-index': undefined,
    'keras3-weights': undefined,
    torch: undefined,
    'torch-index': undefined,
  };
  return handlers[id] as tf.io.IOHandler;
}

/** Why `ioHandler(path).save` refuses a format the registry lists as read-only for it. */
function unwritable(path: string): TensorioError {
  return new TensorioError('ERR_INVALID_ARGUMENT', `writing .keras archives is not supported; ioHandler saves ${extensionsFor('ioHandlerSave')}`, { path });
}

/** The URL scheme {@link registerRouters} claims. */
export const TENSORIO_SCHEME = 'tensorio://';

let routersRegistered = false;

/**
 * Registers tfjs routers for `tensorio://<path>` URLs, so `model.save('tensorio://m.h5')`
 * and `tf.loadLayersModel('tensorio://m.h5')` use {@link ioHandler}. The scheme is ours on
 * purpose: tfjs-node claims `file://`, and tfjs throws when two routers match one URL.
 * Calling it again does nothing.
 */
export function registerRouters(): void {
  if (routersRegistered) return;
  routersRegistered = true;
  // tfjs's IORouter type says IOHandler, but routers return null for URLs they do not claim.
  const route = ((url: string | string[]) => {
    const one = Array.isArray(url) ? url[0] : url;
    if (typeof one !== 'string' || !one.startsWith(TENSORIO_SCHEME)) return null;
    return ioHandler(one.slice(TENSORIO_SCHEME.length));
  }) as (url: string | string[]) => tf.io.IOHandler;
  tf.io.registerSaveRouter(route);
  tf.io.registerLoadRouter(route);
}
