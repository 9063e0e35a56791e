/**
 * Child process of the h5wasm abort test (test/h5.test.ts): reads a good Keras file, then a
 * file on which HDF5 calls abort() inside h5wasm, then the good file again, all through
 * h5wasm, and prints what happened as JSON. A fresh process, because whether HDF5 reaches
 * that abort() depends on the state earlier files left in its heap.
 */
import { openH5, TensorioError } from '../../src/index.js';

async function readAll(file: string): Promise<number> {
  const h5 = await openH5(file, { h5wasm: true });
  try {
    for (const name of h5.attributeNames()) h5.attribute('', name);
    let bytes = 0;
    for (const dataset of h5.datasets()) bytes += (await h5.read(dataset)).data.byteLength;
    return bytes;
  } finally {
    h5.close();
  }
}

async function main(): Promise<void> {
  const [good, aborting] = process.argv.slice(2) as [string, string];
  const before = await readAll(good);
  let refusal: { typed: boolean; code?: string; message: string } | null = null;
  try {
    await readAll(aborting);
  } catch (error) {
    refusal = { typed: error instanceof TensorioError, code: (error as TensorioError).code, message: (error as Error).message };
  }
  const after = await readAll(good);
  process.stdout.write(JSON.stringify({ before, refusal, after }));
}

void main();
