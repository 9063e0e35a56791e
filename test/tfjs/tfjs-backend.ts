/**
 * Which TensorFlow.js the tfjs tests run on, chosen by TENSORIO_TFJS:
 * - unset or `tfjs`: `@tensorflow/tfjs` alone (its `cpu` backend), what tensorio needs at least;
 * - `node`: `@tensorflow/tfjs-node` is loaded first, as a user's `import '@tensorflow/tfjs-node'`
 *   would: the `tensorflow` backend (TensorFlow's C library) runs every op and its `file://`
 *   router is registered. scripts/run-tfjs-node-tests.cjs builds it (scripts/tfjs-node-offline.cjs)
 *   and puts it on NODE_PATH.
 * tfjs-node re-exports the very `@tensorflow/tfjs` module the tests import (one copy, as in a
 * user's deduplicated install), so the test files keep `import * as tf from '@tensorflow/tfjs'`
 * and the same `tf` then runs on tfjs-node; {@link tfjsNode} checks it is one copy.
 */
import * as tf from '@tensorflow/tfjs';

function mode(): 'tfjs' | 'node' {
  const value = process.env.TENSORIO_TFJS ?? 'tfjs';
  if (value !== 'tfjs' && value !== 'node') throw new Error(`TENSORIO_TFJS must be 'tfjs' or 'node', not '${value}'`);
  return value;
}

export const TFJS_MODE = mode();

/** The backend every tfjs test must run on in this mode. */
export const EXPECTED_BACKEND = TFJS_MODE === 'node' ? 'tensorflow' : 'cpu';

/** What tfjs-node exports beyond `@tensorflow/tfjs` (its own types are not installed in the repo). */
export interface TfjsNode {
  version: Record<string, string>;
  io: typeof tf.io;
  tensor: typeof tf.tensor;
  node: Record<string, unknown>;
}

function loadTfjsNode(): TfjsNode {
  let node: TfjsNode;
  try {
    node = require('@tensorflow/tfjs-node') as TfjsNode;
  } catch (error) {
    throw new Error(`TENSORIO_TFJS=node but @tensorflow/tfjs-node does not load (run the tests with scripts/run-tfjs-node-tests.cjs): ${(error as Error).message}`);
  }
  // tfjs-node's `io` is tfjs's spread with its own additions, hence a new object: compare members.
  if (node.tensor !== tf.tensor || node.io.getSaveHandlers !== tf.io.getSaveHandlers) {
    throw new Error('@tensorflow/tfjs-node uses another copy of @tensorflow/tfjs than the tests: their tensors and registries would not be shared');
  }
  return node;
}

/** `@tensorflow/tfjs-node`, loaded, in `node` mode; undefined otherwise. */
export const tfjsNode: TfjsNode | undefined = TFJS_MODE === 'node' ? loadTfjsNode() : undefined;
