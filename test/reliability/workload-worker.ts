/** A worker thread that loads the library on its own and runs the concurrency workload. */
import { parentPort, workerData } from 'node:worker_threads';

import { nativeStatus } from '../../src/index.js';
import { mixedWorkload } from './workload.js';

const { dir, seed } = workerData as { dir: string; seed: number };
mixedWorkload(dir, seed).then(
  (result) => parentPort?.postMessage({ ok: true, native: nativeStatus().loaded, ...result }),
  (error: unknown) => parentPort?.postMessage({ ok: false, error: error instanceof Error ? error.stack : String(error) }),
);
