/**
 * Child process of the h5wasm damage tests (test/formats/hdf5/h5.test.ts): reads a good file, then a file
 * that makes HDF5 abort() or loop inside h5wasm, then the good file again, all through
 * h5wasm, and prints what happened as JSON. A fresh process, because whether HDF5 reaches
 * that abort() or loop depends on the state earlier files left in its heap.
 *
 * Arguments: good file, damaged file, h5wasm deadline in ms.
 */
import { h5wasmReady, openH5, openH5Sync, TensorioError, type H5File } from '../../src/index.js';

interface Refusal {
  typed: boolean;
  code?: string;
  message: string;
  ms: number;
}

async function readAll(file: string, timeout: number): Promise<number> {
  const h5 = await openH5(file, { h5wasm: true, h5wasmTimeoutMs: timeout });
  try {
    for (const name of h5.attributeNames()) h5.attribute('', name);
    let bytes = 0;
    for (const dataset of h5.datasets()) bytes += (await h5.read(dataset)).data.byteLength;
    return bytes;
  } finally {
    h5.close();
  }
}

async function refusal(run: () => unknown): Promise<Refusal | null> {
  const start = performance.now();
  try {
    await run();
    return null;
  } catch (error) {
    return { typed: error instanceof TensorioError, code: (error as TensorioError).code, message: (error as Error).message, ms: performance.now() - start };
  }
}

async function main(): Promise<void> {
  const [good, damaged, timeout] = process.argv.slice(2) as [string, string, string];
  const deadline = Number(timeout);
  const before = await readAll(good, deadline);
  // A file opened before the damaged one, still open when h5wasm may be retired.
  const earlier: H5File = await openH5(good, { h5wasm: true });
  const damage = await refusal(() => readAll(damaged, deadline));
  const earlierAfter = await refusal(() => earlier.datasets());
  earlier.close();
  const syncAfter = await refusal(() => openH5Sync(good, { h5wasm: true }).close());
  const after = await readAll(good, deadline);
  await h5wasmReady();
  const syncAfterReady = await refusal(() => openH5Sync(good, { h5wasm: true }).close());
  process.stdout.write(JSON.stringify({ before, damage, earlierAfter, syncAfter, after, syncAfterReady }));
}

void main();
