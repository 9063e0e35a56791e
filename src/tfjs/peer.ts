/**
 * The check that `@tensorflow/tfjs` is installed, run before anything in tensorio/tfjs loads
 * it. `@tensorflow/tfjs` is an optional peer dependency (a required one would make npm
 * install all of TensorFlow.js for users who only read `.npy` files), so its absence is an
 * error of tensorio's own, with its own code and the command that fixes it, instead of
 * Node's bare MODULE_NOT_FOUND from deep inside the entry point.
 */
import { TensorioError } from '../errors.js';

/** The peer package tensorio/tfjs imports (`@tensorflow/tfjs-node` re-exports it and depends on it). */
export const TFJS_PEER = '@tensorflow/tfjs';

/**
 * Throws `ERR_TFJS_MISSING` when `@tensorflow/tfjs` cannot be resolved from tensorio's own
 * folder (where tensorio/tfjs's `import` will look for it).
 */
export function requireTfjsPeer(): void {
  try {
    require.resolve(TFJS_PEER);
  } catch (error) {
    if ((error as { code?: unknown } | null)?.code !== 'MODULE_NOT_FOUND') throw error;
    throw new TensorioError(
      'ERR_TFJS_MISSING',
      `tensorio/tfjs needs ${TFJS_PEER}, which is not installed: run \`npm install ${TFJS_PEER}\` ` +
        '(or `npm install @tensorflow/tfjs-node`, which brings it). The main entry, tensorio, works without it.',
      { cause: error },
    );
  }
}
