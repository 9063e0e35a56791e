/**
 * The types tensorio/tfjs's `load` returns, by the path's extension, as the main entry's
 * (src/load-types.ts explains the list-or-record type): `.npy` gives a tensor, `.npz`,
 * `.safetensors` and `.h5` a list or record of tensors, without a cast at every use.
 */
import type * as tf from '@tensorflow/tfjs';

/** What tfjs `load` returns for `.npz`, `.safetensors` and `.h5`: a list or a record of tensors. */
export interface LoadedTensors {
  readonly [name: string]: tf.Tensor;
  [Symbol.iterator](): IterableIterator<tf.Tensor>;
}
