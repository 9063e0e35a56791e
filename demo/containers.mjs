// The chapter's list and dict examples (issue 3), in .npz and in pickled .npy form:
//   x = torch.arange(4); y = torch.zeros(4); torch.save([x, y], 'x-files'); mydict = {'x': x, 'y': y}
// Run alone with `node demo/containers.mjs`, or from demo.mjs with `await import('./containers.mjs')`.
// Files go to demo/output/, so Python can open them: np.load('demo/output/xy.npz').
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { load, ndarray, save, zeros } from 'tensorio';

const out = path.join(path.dirname(fileURLToPath(import.meta.url)), 'output');
fs.mkdirSync(out, { recursive: true });
const show = (name, a) => console.log(`${name} = array([${Array.from(a.data).join(', ')}], dtype=${a.dtype})`);
const where = (file) => `${path.relative(process.cwd(), file)} (${fs.statSync(file).size} bytes)`;

console.log('\n# A list of tensors');
const x = ndarray(new Float32Array([0, 1, 2, 3]));
const y = zeros([4]);
for (const name of ['xy.npz', 'xy.npy']) {
  const file = path.join(out, name);
  await save(file, [x, y]);
  // A list in a .npy is a pickled object array, as np.save writes it: loading it needs allowPickle.
  const [x2, y2] = await load(file, { allowPickle: name.endsWith('.npy') });
  console.log(`saved [x, y] to ${where(file)}`);
  show('  x2', x2);
  show('  y2', y2);
}

console.log('\n# A dict of tensors');
const mydict = { x, y };
for (const name of ['mydict.npz', 'mydict.npy']) {
  const file = path.join(out, name);
  await save(file, mydict);
  const mydict2 = await load(file, { allowPickle: name.endsWith('.npy') });
  console.log(`saved {x, y} to ${where(file)}; keys: ${Object.keys(mydict2).join(', ')}`);
  show('  mydict2.x', mydict2.x);
}
