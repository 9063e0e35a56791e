/**
 * Keras model configurations ↔ what TensorFlow.js's layers deserialise, as JSON, without tfjs:
 * - Keras 3 (`.keras` config.json) and tf.keras (`.h5` model_config) → tfjs: dtype policies,
 *   `batch_shape`, Keras 3 call nodes (`{args, kwargs}` with `__keras_tensor__`s) and single
 *   `input_layers`/`output_layers`, GRU `reset_after: true` → tensorio's `GRUResetAfter`, a
 *   Flatten on a rank-2 input (a no-op in Keras, refused by tfjs) → a Reshape to the same shape;
 * - the layers and options tfjs would build into a model that predicts something else (or not
 *   at all) are refused, all at once, with `ERR_UNSUPPORTED_LAYER` naming each;
 * - tfjs → Keras (for `.h5` written from tfjs): `GRUResetAfter` back to Keras's GRU.
 */
import { TensorioError } from '../../errors.js';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** The tfjs class tensorio registers for Keras's GRU(reset_after=True) (src/tfjs/gru-reset-after.ts). */
export const GRU_RESET_AFTER = 'GRUResetAfter';

export function isObject(value: Json | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The Keras class name of a tfjs layer class (they are the same but for tensorio's own). */
export function kerasClassName(tfjsClassName: string): string {
  return tfjsClassName === GRU_RESET_AFTER ? 'GRU' : tfjsClassName;
}

/** Where a config came from: Keras 3 changed some functions under the same name. */
export type KerasFlavour = 'keras2' | 'keras3';

/**
 * Options whose value tfjs ignores or cannot build. Each entry: the option, the value(s) tfjs
 * builds faithfully, and why. A layer class not listed, or an option not listed, is passed on.
 */
const FAITHFUL: Record<string, { option: string; ok: (value: Json) => boolean; why: string }[]> = {
  Conv1D: [{ option: 'groups', ok: (v) => v === null || v === 1, why: 'tfjs has no grouped convolution' }],
  Conv2D: [{ option: 'groups', ok: (v) => v === null || v === 1, why: 'tfjs has no grouped convolution' }],
  Conv3D: [{ option: 'groups', ok: (v) => v === null || v === 1, why: 'tfjs has no grouped convolution' }],
  LSTM: [{ option: 'time_major', ok: (v) => v === null || v === false, why: 'tfjs reads (batch, time, features) only' }],
  GRU: [{ option: 'time_major', ok: (v) => v === null || v === false, why: 'tfjs reads (batch, time, features) only' }],
  SimpleRNN: [{ option: 'time_major', ok: (v) => v === null || v === false, why: 'tfjs reads (batch, time, features) only' }],
  BatchNormalization: [
    { option: 'renorm', ok: (v) => v === null || v === false, why: 'tfjs has no batch renormalization' },
    { option: 'virtual_batch_size', ok: (v) => v === null, why: 'tfjs has no ghost batch normalization' },
    { option: 'synchronized', ok: (v) => v === null || v === false, why: 'a training-time option tfjs lacks' },
  ],
  LayerNormalization: [{ option: 'rms_scaling', ok: (v) => v === null || v === false, why: 'tfjs has no RMS scaling' }],
  Dense: [{ option: 'lora_rank', ok: (v) => v === null, why: 'tfjs has no LoRA weights' }],
  Embedding: [{ option: 'lora_rank', ok: (v) => v === null, why: 'tfjs has no LoRA weights' }],
};

const ACTIVATION_KEYS = ['activation', 'recurrent_activation'];

/** A dtype (policy) name tfjs computes in: float32, or int32 for integer inputs. */
function faithfulDtype(value: Json): boolean {
  return value === null || value === 'float32' || value === 'int32';
}

interface Problem {
  layer: string;
  what: string;
}

/** A layer config's name: its own `name` (functional models) or its config's (Sequential). */
export function kerasLayerName(layer: JsonObject): string | undefined {
  if (typeof layer.name === 'string') return layer.name;
  const config = layer.config;
  return isObject(config) && typeof config.name === 'string' ? config.name : undefined;
}

function layerName(layer: JsonObject): string {
  return kerasLayerName(layer) ?? '?';
}

/** The names of a model topology's layers, in order (`config.layers`, or the old Sequential's `config` list). */
export function topologyLayerNames(topology: JsonObject): string[] {
  const config = topology.config;
  const layers = isObject(config) ? config.layers : Array.isArray(config) ? config : undefined;
  return (Array.isArray(layers) ? layers.filter(isObject) : []).map(kerasLayerName).filter((n): n is string => n !== undefined);
}

/** A Keras 3 tensor reference `{class_name: '__keras_tensor__', config: {keras_history}}` as a tfjs node entry. */
function nodeEntry(value: Json, kwargs: JsonObject): Json[] | undefined {
  if (!isObject(value) || value.class_name !== '__keras_tensor__' || !isObject(value.config)) return undefined;
  const history = value.config.keras_history;
  if (!Array.isArray(history) || history.length !== 3) return undefined;
  return [history[0] as Json, history[1] as Json, history[2] as Json, kwargs];
}

/** Keras 3 call nodes `[{args, kwargs}]` → the Keras 2 form tfjs reads: `[[[layer, node, tensor, {}], ...]]`. */
function legacyInboundNodes(nodes: Json): Json {
  if (!Array.isArray(nodes)) return nodes;
  return nodes.map((node) => {
    if (!isObject(node) || !Array.isArray(node.args)) return node;
    // Call kwargs (training, mask) are not graph inputs; tfjs takes its own at call time.
    const tensors = node.args.length === 1 && Array.isArray(node.args[0]) ? node.args[0] : node.args;
    return tensors.map((t) => nodeEntry(t, {})).filter((e): e is Json[] => e !== undefined);
  });
}

/** `["a", 0, 0]` (Keras 3, one input) → `[["a", 0, 0]]`. */
function nestedEndpoints(value: Json): Json {
  return Array.isArray(value) && typeof value[0] === 'string' ? [value] : value;
}

/** The input shape a Keras config records for a layer, if any (Keras 3's build_config, the first layer's batch shape). */
function recordedInputShape(layer: JsonObject): Json[] | undefined {
  const build = layer.build_config;
  if (isObject(build) && Array.isArray(build.input_shape)) return build.input_shape;
  const config = layer.config;
  if (isObject(config)) {
    const shape = config.batch_input_shape ?? config.batch_shape;
    if (Array.isArray(shape)) return shape;
  }
  return undefined;
}

/** A Flatten tfjs refuses (rank-2 input, where Keras's Flatten does nothing) as the Reshape it equals. */
function flattenAsReshape(layer: JsonObject, inputShape: Json[] | undefined): JsonObject | undefined {
  if (layer.class_name !== 'Flatten' || !inputShape || inputShape.length !== 2 || typeof inputShape[1] !== 'number') return undefined;
  const config = isObject(layer.config) ? layer.config : {};
  const { data_format: _ignored, ...rest } = config;
  return { ...layer, class_name: 'Reshape', config: { ...rest, target_shape: [inputShape[1]] } };
}

/** The shape of the InputLayer a model's layer list starts with, or that a functional layer reads. */
function inputLayerShapes(layers: JsonObject[]): Map<string, Json[]> {
  const shapes = new Map<string, Json[]>();
  for (const layer of layers) {
    if (layer.class_name !== 'InputLayer') continue;
    const shape = recordedInputShape(layer);
    if (shape) shapes.set(layerName(layer), shape);
  }
  return shapes;
}

function firstInboundLayer(layer: JsonObject): string | undefined {
  const nodes = layer.inbound_nodes;
  if (!Array.isArray(nodes) || nodes.length !== 1) return undefined;
  const node = nodes[0];
  if (isObject(node) && Array.isArray(node.args)) {
    const entry = node.args.length === 1 ? nodeEntry(node.args[0] as Json, {}) : undefined;
    return entry && typeof entry[0] === 'string' ? entry[0] : undefined;
  }
  if (Array.isArray(node) && node.length === 1 && Array.isArray(node[0]) && typeof node[0][0] === 'string') return node[0][0];
  return undefined;
}

/** Rewrites the Flattens on rank-2 inputs of one model's layer list (Sequential or functional). */
function rewriteFlattens(model: JsonObject): void {
  const config = model.config;
  const layers = isObject(config) && Array.isArray(config.layers) ? config.layers : Array.isArray(config) ? config : undefined;
  if (!layers) return;
  const objects = layers.filter(isObject);
  const inputs = inputLayerShapes(objects);
  let previous: Json[] | undefined;
  layers.forEach((item, i) => {
    if (!isObject(item)) return;
    let shape = recordedInputShape(item);
    if (item.class_name === 'Flatten' && !shape) {
      const from = firstInboundLayer(item);
      shape = from !== undefined ? inputs.get(from) : model.class_name === 'Sequential' && i <= 1 ? previous : undefined;
    }
    const replaced = flattenAsReshape(item, shape);
    if (replaced) layers[i] = replaced;
    previous = item.class_name === 'InputLayer' ? recordedInputShape(item) : undefined;
  });
}

function checkLayer(layer: JsonObject, flavour: KerasFlavour, problems: Problem[]): void {
  const name = layerName(layer);
  const cls = layer.class_name as string;
  const config = isObject(layer.config) ? layer.config : {};
  for (const rule of FAITHFUL[cls] ?? []) {
    const value = config[rule.option];
    if (value !== undefined && !rule.ok(value)) problems.push({ layer: name, what: `${cls} ${rule.option}=${JSON.stringify(value)} (${rule.why})` });
  }
  for (const key of ACTIVATION_KEYS) {
    // Keras 3's hard_sigmoid is relu6(x + 3) / 6; Keras 2's and tfjs's are 0.2x + 0.5.
    if (flavour === 'keras3' && config[key] === 'hard_sigmoid') {
      problems.push({ layer: name, what: `${cls} ${key}='hard_sigmoid' (Keras 3's is relu6(x + 3) / 6, tfjs's is Keras 2's 0.2x + 0.5)` });
    }
  }
  const dtype = config.dtype;
  const policy = isObject(dtype) && isObject(dtype.config) ? dtype.config.name : dtype;
  if (!faithfulDtype(policy ?? null) && cls !== 'InputLayer') {
    problems.push({ layer: name, what: `${cls} dtype ${JSON.stringify(policy)} (tfjs computes in float32)` });
  }
}

/** Objects shaped like a layer config ({class_name, config: {name}}) that are not layers. */
const NOT_LAYERS = new Set(['DTypePolicy', 'Policy', 'DTypePolicyMap', 'function', '__keras_tensor__', '__tuple__']);

/** Walks every layer config (nested models, wrapped layers), applying `visit` before descending. */
function walkLayers(value: Json, visit: (layer: JsonObject) => void): void {
  if (Array.isArray(value)) value.forEach((v) => walkLayers(v, visit));
  else if (isObject(value)) {
    if (typeof value.class_name === 'string' && !NOT_LAYERS.has(value.class_name) && isObject(value.config) && typeof value.config.name === 'string') visit(value);
    for (const item of Object.values(value)) walkLayers(item, visit);
  }
}

/** tf.keras 2.13+ and Keras 3 bookkeeping keys tfjs does not know. */
const DROPPED_KEYS = new Set(['module', 'registered_name', 'build_config', 'compile_config', 'shared_object_id']);

/**
 * Rewrites a Keras config into the Keras 2 shape tfjs reads: dtype policies become their
 * name, `batch_shape` becomes `batch_input_shape`, Keras 3 call nodes become Keras 2 nodes,
 * Keras 3 bookkeeping keys go, GRU(reset_after) becomes {@link GRU_RESET_AFTER}.
 */
function normalise(value: Json): Json {
  if (Array.isArray(value)) return value.map(normalise);
  if (!isObject(value)) return value;
  if (value.class_name === 'DTypePolicy' || value.class_name === 'Policy') {
    const config = value.config;
    if (isObject(config) && typeof config.name === 'string') return config.name;
  }
  // tf.keras 2.13 writes activations as {module: 'builtins', class_name: 'function', config: 'relu'}.
  if (value.class_name === 'function' && typeof value.config === 'string') return value.config;
  const out: JsonObject = {};
  for (const [key, item] of Object.entries(value)) {
    if (DROPPED_KEYS.has(key)) continue;
    if (key.endsWith('_initializer') && isObject(item) && item.class_name === 'function') {
      // A Python function used as initializer cannot exist in tfjs; the loaded weights
      // replace whatever it would initialise, so Zeros stands in for it.
      out[key] = { class_name: 'Zeros', config: {} };
      continue;
    }
    if (key === 'inbound_nodes') out[key] = legacyInboundNodes(item);
    else if (key === 'input_layers' || key === 'output_layers') out[key] = nestedEndpoints(item);
    else out[key === 'batch_shape' ? 'batch_input_shape' : key] = normalise(item);
  }
  if (out.class_name === 'GRU' && isObject(out.config) && out.config.reset_after === true) out.class_name = GRU_RESET_AFTER;
  return out;
}

/**
 * A Keras model config (parsed JSON) as a topology tfjs builds into the same model.
 * @throws TensorioError `ERR_UNSUPPORTED_LAYER` naming every layer whose class tfjs lacks
 * (`knownClass` says which it has) or whose options tfjs would not honour.
 */
export function kerasToTfjsTopology(config: JsonObject, flavour: KerasFlavour, knownClass: (name: string) => boolean, path?: string): JsonObject {
  const problems: Problem[] = [];
  const missing = new Set<string>();
  const copy = JSON.parse(JSON.stringify(config)) as JsonObject;
  walkLayers(copy, (layer) => {
    if (isObject(layer.config) && Array.isArray(layer.config.layers)) rewriteFlattens(layer);
  });
  if (Array.isArray(copy.config) || isObject(copy.config)) rewriteFlattens(copy);
  walkLayers(copy, (layer) => {
    const cls = layer.class_name as string;
    if (['Sequential', 'Functional', 'Model'].includes(cls)) return;
    const tfjsClass = cls === 'GRU' && isObject(layer.config) && layer.config.reset_after === true ? GRU_RESET_AFTER : cls;
    if (!knownClass(tfjsClass)) {
      missing.add(cls);
      return;
    }
    checkLayer(layer, flavour, problems);
  });
  const top = copy.class_name;
  if (typeof top === 'string' && !['Sequential', 'Functional', 'Model'].includes(top) && !knownClass(top)) missing.add(top);
  if (missing.size > 0 || problems.length > 0) {
    const parts: string[] = [];
    if (missing.size > 0) parts.push(`TensorFlow.js has no layer class ${[...missing].map((n) => `'${n}'`).join(', ')} (register a custom layer with tf.serialization.registerClass first)`);
    for (const p of problems) parts.push(`layer '${p.layer}': ${p.what}`);
    throw new TensorioError('ERR_UNSUPPORTED_LAYER', `the model cannot be built faithfully in tfjs: ${parts.join('; ')}`, path === undefined ? {} : { path });
  }
  return normalise(copy) as JsonObject;
}

/** A tfjs topology as Keras config JSON: tensorio's own classes back to Keras's. */
export function tfjsToKerasTopology(value: Json): Json {
  if (Array.isArray(value)) return value.map(tfjsToKerasTopology);
  if (!isObject(value)) return value;
  const out: JsonObject = {};
  for (const [key, item] of Object.entries(value)) out[key] = tfjsToKerasTopology(item);
  if (out.class_name === GRU_RESET_AFTER && isObject(out.config)) {
    out.class_name = 'GRU';
    out.config = { ...out.config, reset_after: true };
  }
  return out;
}
