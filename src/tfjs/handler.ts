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
 */
import * as nodePath from 'node:path';
import { checkOptions } from '../options.js';
import { TFJS_OPTIONS } from './options.js';

import * as tf from '@tensorflow/tfjs';

import { toFloat32 } from '../convert.js';
import { tfjsArray } from './tfjs-arrays.js';
import { dtypeInfo } from '../dtype.js';
import { TensorioError } from '../errors.js';
import { isObject, kerasToTfjsTopology, tfjsToKerasTopology, type Json, type JsonObject } from '../formats/keras/config.js';
import { keras3LayerNames, keras3LayerWeights } from '../formats/keras/naming.js';
import { readKerasWeights, writeKerasWeights, type KerasLayerToWrite, type KerasLayerWeights } from '../formats/keras/weights-h5.js';
import { readSafetensors } from '../formats/safetensors.js';
import { extensionsFor, formatForPath, formatOfName, identifyFile, type FormatId } from '../formats/registry.js';
import { closeQuietly, openForRead, readExactly, writeAtomic, type WriteOptions } from '../io.js';
import { type NdArray } from '../ndarray.js';
// Registers GRUResetAfter, which Keras GRUs with reset_after=True load as.
import './gru-reset-after.js';
import { readKerasArchive } from '../formats/keras/archive.js';
import { plainWeights, quantizeArtifacts, storedByteLength } from './quantized-artifacts.js';
import { writeWeightsFile, type LayerToWrite } from './weight-files.js';
import type { TfjsQuantizationDtype } from '../formats/tfjs-quantization.js';


async function readWhole(path: string, what: string): Promise<Uint8Array> {
  const { fd, size } = openForRead(path);
  try {
    const bytes = new Uint8Array(size);
    await readExactly(fd, 0, bytes, path, what);
    return bytes;
  } finally {
    closeQuietly(fd);
  }
}

function parseJson(bytes: Uint8Array | string, path: string, what: string): Json {
  try {
    return JSON.parse(typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('utf8')) as Json;
  } catch (error) {
    throw new TensorioError('ERR_BAD_METADATA', `${what} is not valid JSON: ${(error as Error).message}`, { path, cause: error });
  }
}

/** Each weight's bytes, as its own ArrayBuffer (a view when aligned, else a copy). */
function splitWeightData(specs: tf.io.WeightsManifestEntry[], data: tf.io.WeightData): ArrayBuffer[] {
  const composite = new tf.io.CompositeArrayBuffer(data);
  const out: ArrayBuffer[] = [];
  let offset = 0;
  for (const spec of specs) {
    const count = spec.shape.reduce((a, b) => a * b, 1);
    const size = count * (spec.dtype === 'bool' ? 1 : 4);
    out.push(composite.slice(offset, offset + size));
    offset += size;
  }
  return out;
}

function arrayBufferOf(view: ArrayBufferView): ArrayBuffer {
  if (view.byteOffset === 0 && view.byteLength === view.buffer.byteLength && view.buffer instanceof ArrayBuffer) return view.buffer;
  return view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength) as ArrayBuffer;
}

// ---------------------------------------------------------------------------------------
// Keras configurations → something tfjs-layers deserialises.

function layerConfigs(topology: JsonObject): JsonObject[] {
  const config = topology.config;
  const layers = isObject(config) ? config.layers : Array.isArray(config) ? config : undefined;
  return Array.isArray(layers) ? layers.filter(isObject) : [];
}

function layerName(layer: JsonObject): string | undefined {
  if (typeof layer.name === 'string') return layer.name;
  const config = layer.config;
  return isObject(config) && typeof config.name === 'string' ? config.name : undefined;
}

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
        pieces.push(arrayBufferOf(data));
      });
    }
    return { modelTopology: topology as unknown as tf.io.ModelArtifacts['modelTopology'], format: 'layers-model', weightSpecs: specs, weightData: pieces, convertedBy: 'tensorio' };
  } finally {
    probe.dispose();
  }
}

async function loadKeras(path: string): Promise<tf.io.ModelArtifacts> {
  // A Keras 3 .keras archive is a zip; a legacy Keras model (.h5, or .keras from some tf.keras versions) is HDF5.
  if ((await identifyFile(path, 'ioHandlerLoad')).container === 'zip') return loadKerasArchive(path);
  const file = await readKerasWeights(path);
  if (file.modelConfig === undefined) {
    throw new TensorioError('ERR_BAD_METADATA', "no 'model_config' attribute: this is a weights-only file; build the model and use loadWeights()", { path });
  }
  const config = parseJson(file.modelConfig, path, 'model_config');
  if (!isObject(config)) throw new TensorioError('ERR_BAD_METADATA', 'model_config is not a JSON object', { path });
  const flavour = file.kerasVersion?.startsWith('3.') ? 'keras3' : 'keras2';
  return kerasArtifacts(kerasToTfjsTopology(config, flavour, knownTfjsClass, path), 'legacy', file.layers, path);
}

async function loadKerasArchive(path: string): Promise<tf.io.ModelArtifacts> {
  const { config: text, weights } = await readKerasArchive(path);
  const config = parseJson(text, path, 'config.json');
  if (!isObject(config)) throw new TensorioError('ERR_BAD_METADATA', 'config.json is not a JSON object', { path });
  return kerasArtifacts(kerasToTfjsTopology(config, 'keras3', knownTfjsClass, path), 'keras3', weights.layers, path);
}

/** What a save needs from tfjs's artifacts: the topology, the weight specs, each weight's bytes, the layer names. */
function artifactParts(artifacts: tf.io.ModelArtifacts, path: string, format: string) {
  if (!isObject(artifacts.modelTopology as Json)) {
    throw new TensorioError('ERR_INVALID_ARGUMENT', `the model artifacts carry no JSON topology (a graph model cannot be saved as ${format})`, { path });
  }
  // The tensorflowjs converter wraps the config: {keras_version, backend, model_config}.
  const raw = artifacts.modelTopology as unknown as JsonObject;
  const topology = isObject(raw.model_config) ? raw.model_config : raw;
  // Quantized weights (the converter's --quantize_*) are dequantized as tfjs does it.
  const plain = plainWeights(artifacts, path);
  const specs = plain?.specs ?? artifacts.weightSpecs ?? [];
  const pieces = plain?.pieces ?? (artifacts.weightData ? splitWeightData(specs, artifacts.weightData) : []);
  const layerNames = layerConfigs(topology).map(layerName).filter((n): n is string => n !== undefined);
  return { topology, specs, pieces, layerNames };
}

async function saveKeras(path: string, artifacts: tf.io.ModelArtifacts, options: WriteOptions): Promise<tf.io.SaveResult> {
  const { topology, specs, pieces, layerNames } = artifactParts(artifacts, path, 'Keras .h5');
  const byLayer = new Map<string, KerasLayerToWrite>();
  for (const name of layerNames) byLayer.set(name, { name, weights: [] });
  specs.forEach((spec, i) => {
    const layer = spec.name.includes('/') ? spec.name.slice(0, spec.name.indexOf('/')) : spec.name;
    let entry = byLayer.get(layer);
    if (!entry) byLayer.set(layer, (entry = { name: layer, weights: [] }));
    const buffer = pieces[i] as ArrayBuffer;
    const data = spec.dtype === 'int32' ? new Int32Array(buffer) : spec.dtype === 'bool' ? new Uint8Array(buffer) : new Float32Array(buffer);
    entry.weights.push({ name: `${spec.name}:0`, array: { dtype: spec.dtype === 'int32' ? 'int32' : spec.dtype === 'bool' ? 'bool' : 'float32', shape: [...spec.shape], data } });
  });
  const modelConfig = JSON.stringify(tfjsToKerasTopology({ class_name: topology.class_name ?? null, config: topology.config ?? null }));
  const writeOptions: Parameters<typeof writeKerasWeights>[2] = { modelConfig, kerasVersion: `tfjs-layers ${tf.version_layers}`, backend: 'tensorflow' };
  if (options.fsync !== undefined) writeOptions.fsync = options.fsync;
  if (artifacts.trainingConfig) writeOptions.trainingConfig = JSON.stringify(artifacts.trainingConfig);
  await writeKerasWeights(path, [...byLayer.values()], writeOptions);
  return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
}

// ---------------------------------------------------------------------------------------
// The tfjs format: model.json + .bin shards.

async function loadTfjs(path: string): Promise<tf.io.ModelArtifacts> {
  const json = parseJson(await readWhole(path, 'model.json'), path, 'model.json');
  if (!isObject(json) || !('modelTopology' in json)) throw new TensorioError('ERR_BAD_METADATA', "model.json has no 'modelTopology'", { path });
  const manifest = json.weightsManifest;
  const specs: tf.io.WeightsManifestEntry[] = [];
  const shards: ArrayBuffer[] = [];
  const folder = nodePath.dirname(path);
  if (manifest !== undefined) {
    if (!Array.isArray(manifest)) throw new TensorioError('ERR_BAD_METADATA', 'weightsManifest is not a list', { path });
    for (const group of manifest) {
      if (!isObject(group) || !Array.isArray(group.paths) || !Array.isArray(group.weights)) throw new TensorioError('ERR_BAD_METADATA', 'a weightsManifest entry lacks paths or weights', { path });
      for (const shard of group.paths) {
        if (typeof shard !== 'string' || nodePath.isAbsolute(shard) || shard.split(/[\\/]/).includes('..')) {
          throw new TensorioError('ERR_BAD_METADATA', `weight shard path ${JSON.stringify(shard)} must be relative and stay in the model's folder`, { path });
        }
        const bytes = await readWhole(nodePath.join(folder, shard), 'weight shard');
        shards.push(arrayBufferOf(bytes));
      }
      specs.push(...(group.weights as unknown as tf.io.WeightsManifestEntry[]));
    }
  }
  const actual = shards.reduce((sum, b) => sum + b.byteLength, 0);
  const declared = specs.every((s) => s.dtype !== 'string') ? specs.reduce((sum, s) => sum + storedByteLength(s, path), 0) : 0;
  if (declared > actual) {
    throw new TensorioError('ERR_TRUNCATED', `the weight manifest declares ${declared} bytes, the shards hold ${actual}`, { path });
  }
  const artifacts: tf.io.ModelArtifacts = { modelTopology: json.modelTopology as unknown as tf.io.ModelArtifacts['modelTopology'], weightSpecs: specs, weightData: shards };
  for (const key of ['format', 'generatedBy', 'convertedBy'] as const) if (typeof json[key] === 'string') artifacts[key] = json[key] as string;
  if (isObject(json.trainingConfig)) artifacts.trainingConfig = json.trainingConfig as unknown as tf.io.TrainingConfig;
  if (isObject(json.userDefinedMetadata)) artifacts.userDefinedMetadata = json.userDefinedMetadata as unknown as Record<string, object>;
  return artifacts;
}

async function saveTfjs(path: string, given: tf.io.ModelArtifacts, options: IOHandlerOptions): Promise<tf.io.SaveResult> {
  const artifacts = options.quantize ? quantizeArtifacts(given, options.quantize, path) : given;
  const stem = nodePath.basename(path).replace(/\.json$/i, '');
  const binName = `${stem}.weights.bin`;
  const pieces = artifacts.weightData === undefined ? [] : Array.isArray(artifacts.weightData) ? artifacts.weightData : [artifacts.weightData];
  await writeAtomic(nodePath.join(nodePath.dirname(path), binName), pieces.map((b) => new Uint8Array(b)), options);
  const json: Record<string, unknown> = {
    modelTopology: artifacts.modelTopology,
    format: artifacts.format ?? 'layers-model',
    generatedBy: artifacts.generatedBy ?? `TensorFlow.js tfjs-layers v${tf.version_layers}`,
    convertedBy: artifacts.convertedBy ?? null,
    weightsManifest: [{ paths: [binName], weights: artifacts.weightSpecs ?? [] }],
  };
  if (artifacts.trainingConfig) json.trainingConfig = artifacts.trainingConfig;
  if (artifacts.userDefinedMetadata) json.userDefinedMetadata = artifacts.userDefinedMetadata;
  await writeAtomic(path, [Buffer.from(JSON.stringify(json))], options);
  return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
}

// ---------------------------------------------------------------------------------------
// safetensors: weights as tensors, topology and weight specs in __metadata__ (JSON strings).

function weightArrayOf(spec: tf.io.WeightsManifestEntry, buffer: ArrayBuffer, path: string): NdArray {
  if (spec.quantization) throw new TensorioError('ERR_UNSUPPORTED_DTYPE', `weight '${spec.name}' is quantized; .safetensors stores plain weights`, { path });
  const shape = [...spec.shape];
  if (spec.dtype === 'float32') return { dtype: 'float32', shape, data: new Float32Array(buffer) };
  if (spec.dtype === 'int32') return { dtype: 'int32', shape, data: new Int32Array(buffer) };
  if (spec.dtype === 'bool') return { dtype: 'bool', shape, data: new Uint8Array(buffer) };
  throw new TensorioError('ERR_UNSUPPORTED_DTYPE', `weight '${spec.name}' has dtype ${spec.dtype}; .safetensors model files hold float32, int32 and bool weights`, { path });
}

/** Where optimizer state goes in a `.safetensors` model file: `optimizer/<tfjs weight name>`. */
const OPTIMIZER_PREFIX = 'optimizer/';

async function saveSafetensors(path: string, artifacts: tf.io.ModelArtifacts, options: WriteOptions): Promise<tf.io.SaveResult> {
  const { topology, specs, pieces, layerNames } = artifactParts(artifacts, path, '.safetensors');
  // Layers in topology order; tfjs names each weight '<layer>/<weight>', so the part before the
  // first '/' is its layer (nested models' weights name their inner layers, appended here).
  // Optimizer state (model.save(h, { includeOptimizer: true })) is kept outside the layers.
  const layers = new Map<string, LayerToWrite>();
  for (const name of layerNames) layers.set(name, { name, weights: [] });
  const extra = new Map<string, NdArray>();
  const stored: tf.io.WeightsManifestEntry[] = [];
  specs.forEach((spec, i) => {
    const array = weightArrayOf(spec, pieces[i] as ArrayBuffer, path);
    const entry: tf.io.WeightsManifestEntry = { name: spec.name, shape: [...spec.shape], dtype: spec.dtype };
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
    format: artifacts.format ?? 'layers-model',
    model_topology: JSON.stringify(topology),
    weight_specs: JSON.stringify(stored),
    generated_by: artifacts.generatedBy ?? `TensorFlow.js tfjs-layers v${tf.version_layers}`,
  };
  if (artifacts.convertedBy) metadata.converted_by = artifacts.convertedBy;
  if (artifacts.trainingConfig) metadata.training_config = JSON.stringify(artifacts.trainingConfig);
  if (artifacts.userDefinedMetadata) metadata.user_defined_metadata = JSON.stringify(artifacts.userDefinedMetadata);
  await writeWeightsFile(path, 'safetensors', [...layers.values()], { ...options, metadata, extra });
  return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
}

async function loadSafetensors(path: string): Promise<tf.io.ModelArtifacts> {
  const { tensors, metadata } = await readSafetensors(path);
  if (metadata.model_topology === undefined) {
    throw new TensorioError('ERR_BAD_METADATA', "__metadata__ has no 'model_topology': this is a weights-only file; build the model and use loadWeights()", { path });
  }
  const topology = parseJson(metadata.model_topology, path, '__metadata__.model_topology');
  if (!isObject(topology)) throw new TensorioError('ERR_BAD_METADATA', '__metadata__.model_topology is not a JSON object', { path });
  const specs = parseJson(metadata.weight_specs ?? '[]', path, '__metadata__.weight_specs');
  if (!Array.isArray(specs)) throw new TensorioError('ERR_BAD_METADATA', '__metadata__.weight_specs is not a JSON list', { path });
  const weightSpecs: tf.io.WeightsManifestEntry[] = [];
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
    pieces.push(arrayBufferOf(dtype === 'float32' ? toFloat32(array).data : array.data));
  }
  const artifacts: tf.io.ModelArtifacts = { modelTopology: topology as unknown as tf.io.ModelArtifacts['modelTopology'], format: metadata.format ?? 'layers-model', weightSpecs, weightData: pieces };
  if (metadata.generated_by !== undefined) artifacts.generatedBy = metadata.generated_by;
  if (metadata.converted_by !== undefined) artifacts.convertedBy = metadata.converted_by;
  if (metadata.training_config !== undefined) {
    const training = parseJson(metadata.training_config, path, '__metadata__.training_config');
    if (isObject(training)) artifacts.trainingConfig = training as unknown as tf.io.TrainingConfig;
  }
  if (metadata.user_defined_metadata !== undefined) {
    const user = parseJson(metadata.user_defined_metadata, path, '__metadata__.user_defined_metadata');
    if (isObject(user)) artifacts.userDefinedMetadata = user as unknown as Record<string, object>;
  }
  return artifacts;
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
  checkOptions(options, TFJS_OPTIONS.ioHandler, 'ioHandler', path);
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
    tfjs: { load: () => loadTfjs(path), save: (artifacts) => saveTfjs(path, artifacts, options) },
    hdf5: { load: () => loadKeras(path), save: (artifacts) => saveKeras(path, artifacts, options) },
    keras: { load: () => loadKeras(path), save: () => Promise.reject(unwritable(path)) },
    safetensors: { load: () => loadSafetensors(path), save: (artifacts) => saveSafetensors(path, artifacts, options) },
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
