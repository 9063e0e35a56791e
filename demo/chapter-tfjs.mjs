// The chapter's "file I/O" section in Node with TensorFlow.js: tensors to disk and back,
// then an MLP's parameters saved with saveWeights and loaded into a fresh instance.
// Run after `npm run build`: node demo/chapter-tfjs.mjs
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import * as tf from '@tensorflow/tfjs';
import { load, loadWeights, save, saveWeights } from 'tensorio/tfjs';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tensorio-chapter-'));
process.chdir(dir);

// Loading and saving tensors.
const x = tf.range(0, 4);
await save('x-file.npy', x);
const x2 = await load('x-file.npy');
console.log('x2:', x2.toString());

const y = tf.zeros([4]);
await save('x-files.h5', [x, y]);
const [x3, y2] = await load('x-files.h5');
console.log('(x2, y2):', x3.toString(), y2.toString());

await save('mydict.h5', { x, y });
const mydict2 = await load('mydict.h5');
console.log('mydict2:', Object.fromEntries(Object.entries(mydict2).map(([k, v]) => [k, v.arraySync()])));

// Loading and saving model parameters. tfjs's Flatten needs rank >= 3 input (Keras's also
// accepts rank 2 and is then a no-op), so X of shape (2, 20) is fed as (2, 4, 5).
function MLP() {
  return tf.sequential({
    layers: [
      tf.layers.flatten({ inputShape: [4, 5] }),
      tf.layers.dense({ units: 256, activation: 'relu' }),
      tf.layers.dense({ units: 10 }),
    ],
  });
}
const net = MLP();
const X = tf.randomUniform([2, 20]);
const Y = net.predict(X.reshape([2, 4, 5]));

await saveWeights(net, '4.5saved_model.h5');
const clone = MLP();
await loadWeights(clone, '4.5saved_model.h5');
const Y_clone = clone.predict(X.reshape([2, 4, 5]));
console.log('Y_clone == Y:');
console.log(Y_clone.equal(Y).arraySync().map((row) => row.map(Boolean)));

fs.rmSync(dir, { recursive: true, force: true });
