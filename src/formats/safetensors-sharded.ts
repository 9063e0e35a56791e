/**
 * The sharded-checkpoint index, re-exported from its home in safetensors/sharded.ts for the
 * modules that import it here (src/index.ts, the PyTorch sharded reader).
 */
export * from './safetensors/sharded.js';
