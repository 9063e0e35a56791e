/**
 * The concurrency workload: 100 reads and writes of mixed arrays over every format in the
 * reliability table, all in flight at once, each checked byte for byte. Run directly by
 * test/reliability/concurrency.test.ts and inside worker threads by workload-worker.ts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { dtypeInfo, type DType, type LoadedArray, type NdArray } from '../../src/index.js';
import { FORMATS } from './formats.js';

const DTYPES: DType[] = ['float32', 'float64', 'int16', 'uint8', 'bool', 'int64', 'complex64', 'float16', 'int8', 'uint32'];

/** A deterministic array: dtype, shape and bytes all follow from `key`. */
export function mixedArray(key: number): NdArray {
  const dtype = DTYPES[key % DTYPES.length] as DType;
  const info = dtypeInfo(dtype);
  const shape = [1 + (key % 7), 1 + ((key * 13) % 97)];
  const elements = (shape[0] as number) * (shape[1] as number);
  const data = new info.array(elements * info.lanes);
  const bytes = new Uint8Array(data.buffer);
  let state = key * 2654435761;
  for (let i = 0; i < bytes.length; i++) {
    state = (state * 1103515245 + 12345) >>> 0;
    bytes[i] = dtype === 'bool' ? (state >>> 16) & 1 : state >>> 24;
  }
  return { dtype, shape, data };
}

function sameArray(got: LoadedArray[], want: NdArray, what: string): void {
  const array = got[0];
  if (got.length !== 1 || !array) throw new Error(`${what}: expected one array, found ${got.length}`);
  if (array.dtype !== want.dtype || array.shape.join() !== want.shape.join()) {
    throw new Error(`${what}: expected ${want.dtype} (${want.shape.join(', ')}), found ${array.dtype} (${array.shape.join(', ')})`);
  }
  const a = new Uint8Array(array.data.buffer, array.data.byteOffset, array.data.byteLength);
  const b = new Uint8Array(want.data.buffer, want.data.byteOffset, want.data.byteLength);
  if (a.length !== b.length) throw new Error(`${what}: ${a.length} bytes, expected ${b.length}`);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) throw new Error(`${what}: byte ${i} differs`);
}

/** Runs `operations` concurrent reads and writes in `dir`; throws on any wrong byte. */
export async function mixedWorkload(dir: string, seed: number, operations = 100): Promise<{ reads: number; writes: number }> {
  fs.mkdirSync(dir, { recursive: true });
  const files = Array.from({ length: operations }, (_, i) => {
    const format = FORMATS[i % FORMATS.length] as (typeof FORMATS)[number];
    return { format, file: path.join(dir, `a${i}${format.extension}`), key: seed * 1000 + i };
  });
  // Half the files exist before the storm (to be read), half are written during it.
  await Promise.all(files.filter((_, i) => i % 2 === 0).map(({ format, file, key }) => format.write(file, mixedArray(key), false)));
  let reads = 0;
  let writes = 0;
  const shared = path.join(dir, `shared${(FORMATS[0] as (typeof FORMATS)[number]).extension}`);
  await Promise.all([
    ...files.map(async ({ format, file, key }, i) => {
      if (i % 2 === 0) {
        sameArray(await format.read(file, i % 4 === 0), mixedArray(key), `read ${path.basename(file)}`);
        reads++;
      } else {
        await format.write(file, mixedArray(key), i % 3 === 0);
        writes++;
      }
    }),
    // Ten writers racing for one target: whichever renames last wins, whole.
    ...Array.from({ length: 10 }, (_, i) => (FORMATS[0] as (typeof FORMATS)[number]).write(shared, mixedArray(seed * 1000 + 500 + i), false)),
  ]);
  for (const [i, { format, file, key }] of files.entries()) {
    if (i % 2 === 1) sameArray(await format.read(file, i % 4 === 1), mixedArray(key), `written ${path.basename(file)}`);
  }
  const winner = await (FORMATS[0] as (typeof FORMATS)[number]).read(shared, false);
  const matches = Array.from({ length: 10 }, (_, i) => {
    try {
      sameArray(winner, mixedArray(seed * 1000 + 500 + i), 'shared');
      return true;
    } catch {
      return false;
    }
  });
  if (!matches.includes(true)) throw new Error('the shared target holds none of the ten arrays written to it');
  if (fs.readdirSync(dir).some((n) => n.endsWith('.tensorio-tmp'))) throw new Error('temporary files left behind');
  return { reads, writes };
}
