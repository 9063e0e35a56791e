/**
 * tensorio/tfjs: TensorFlow.js models and tensors on disk, in Keras's and tfjs's formats,
 * without tfjs-node. Requires `@tensorflow/tfjs` (or `@tensorflow/tfjs-node`, which
 * re-exports it) as a peer dependency.
 */
// First: a missing peer is ERR_TFJS_MISSING, before the modules below import it. (The ESM
// entry runs the same check from an ES module of its own: scripts/make-esm.cjs says why.)
import { requireTfjsPeer } from './peer.js';
requireTfjsPeer();

export { saveWeights, loadWeights, type LoadWeightsOptions, type SaveWeightsOptions } from './weights.js';
export { kerasSnakeCase } from '../formats/keras/naming.js';
export { ioHandler, registerRouters, TENSORIO_SCHEME, type IOHandlerOptions } from './handler.js';
export { save, load, toTensor, fromTensor, type LoadTensorOptions, type TensorTree, type TensorValue } from './tensors.js';
export { type TfjsArrayOptions, type TfjsDType } from './tfjs-arrays.js';
export type { LoadedTensors } from './load-types.js';
