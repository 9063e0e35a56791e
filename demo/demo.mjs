// `npm run demo`: the file I/O chapter this library comes from, in Node.
// Part 1: save a tensor to x.npy, load it back, and print both.
// Files go to demo/output/ (kept, so Python can open them: np.load('demo/output/x.npy')).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { nativeStatus, ones, readNpy, writeNpy } from 'tensorio';

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.join(here, 'output');
fs.mkdirSync(out, { recursive: true });

/** Prints an NdArray the way NumPy prints a small array. */
export function show(name, array) {
  const values = Array.from(array.data, (v) => (typeof v === 'bigint' ? v.toString() : Number.isInteger(v) ? `${v}.` : String(v)));
  console.log(`${name} = array([${values.join(', ')}], dtype=${array.dtype}, shape=(${array.shape.join(', ')}${array.shape.length === 1 ? ',' : ''}))`);
}

const status = nativeStatus();
console.log(`tensorio ${status.loaded ? 'with its native addon' : `without its native addon (${status.reason})`}\n`);

console.log('# Loading and saving tensors');
const x = ones([4]);
show('x', x);
const file = path.join(out, 'x.npy');
await writeNpy(file, x);
console.log(`saved x to ${path.relative(process.cwd(), file)} (${fs.statSync(file).size} bytes)`);
const x2 = await readNpy(file);
show('x2', x2);
const mapped = await readNpy(file, { mmap: true });
show('x2 (memory-mapped)', mapped);
console.log(`x2 == x: ${x2.data.every((v, i) => v === x.data[i])}`);

// Part 2: lists and dicts of tensors (.npz and pickled .npy, as NumPy reads them).
await import('./containers.mjs');

// Part 3: the same with TensorFlow.js tensors, then an MLP's parameters saved and loaded.
console.log('\n# TensorFlow.js: tensors and model parameters');
await import('./chapter-tfjs.mjs');
