/**
 * Pickled object arrays keep NumPy's element order in C and Fortran order: NumPy pickles the
 * elements in C (logical) order whatever the array's flag, and tensorio reads and writes them
 * the same way (checked against NumPy both ways).
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';

import { load, objectArray, save, type PyObject } from '../../../src/index.js';
import { expectCode } from '../../expect-code.js';
import { numpyPythons, runPythonWith, tempDir } from '../../helpers.js';

const dir = tempDir('object-arrays');

/** np.arange(n).reshape(shape) as nested lists, indexed logically. */
function logical(shape: number[], at: (index: number[]) => number): unknown {
  const level = (axis: number, prefix: number[]): unknown =>
    axis === shape.length ? at(prefix) : Array.from({ length: shape[axis] as number }, (_, i) => level(axis + 1, [...prefix, i]));
  return level(0, []);
}

for (const { label, python } of numpyPythons()) {
  test(`${label}: np.save of object arrays in C and Fortran order loads in NumPy's logical order`, async () => {
    const folder = path.join(dir, label.replace(/\W+/g, '-'));
    runPythonWith(
      python(),
      `import sys, os, numpy as np
d = sys.argv[1]; os.makedirs(d, exist_ok=True)
a = np.arange(1500).astype(object).reshape(30, 50)
np.save(d + '/c.npy', a)
np.save(d + '/f.npy', a.T)                                   # fortran_order: True
np.save(d + '/f3.npy', np.arange(24).astype(object).reshape(2, 3, 4).T)
np.savez(d + '/z.npz', c=a, f=a.T)
assert a.T.flags.f_contiguous and not a.T.flags.c_contiguous`,
      [folder],
    );
    const c = (await load(path.join(folder, 'c.npy'), { allowPickle: true })) as PyObject[][];
    assert.deepEqual(c, logical([30, 50], ([i, j]) => (i as number) * 50 + (j as number)));
    const f = (await load(path.join(folder, 'f.npy'), { allowPickle: true })) as PyObject[][];
    assert.equal(f.length, 50);
    assert.deepEqual(f, logical([50, 30], ([i, j]) => (j as number) * 50 + (i as number)));
    const f3 = await load(path.join(folder, 'f3.npy'), { allowPickle: true });
    assert.deepEqual(f3, logical([4, 3, 2], ([i, j, k]) => (k as number) * 12 + (j as number) * 4 + (i as number)));
    const z = (await load(path.join(folder, 'z.npz'), { allowPickle: true })) as unknown as Record<string, PyObject>;
    assert.deepEqual(z.c, c);
    assert.deepEqual(z.f, f);
  });

  test(`${label}: objectArray in C and Fortran order is written as np.save writes it, and NumPy reads the same array`, async () => {
    const folder = path.join(dir, `w-${label.replace(/\W+/g, '-')}`);
    const shape = [50, 30];
    const nested = logical(shape, ([i, j]) => (j as number) * 50 + (i as number)) as PyObject[][];
    await save(path.join(folder + '-f.npy'), objectArray(nested, shape, 'F'));
    await save(path.join(folder + '-c.npy'), objectArray(nested, shape));
    // Flat values in C order give the same array; a 3-d Fortran one with mixed elements.
    await save(path.join(folder + '-flat.npy'), objectArray(nested.flat(), shape, 'F'));
    await save(path.join(folder + '-mixed.npy'), objectArray(['a', 1, null, [2, 3], { k: 1.5 }, true], [1, 2, 3], 'F'));
    const out = runPythonWith(
      python(),
      `import sys, json, numpy as np
p = sys.argv[1]
want = np.arange(1500).astype(object).reshape(30, 50).T
res = {}
for name in ['f', 'c', 'flat']:
    with open(p + '-' + name + '.npy', 'rb') as fh:
        np.lib.format.read_magic(fh); hdr = np.lib.format.read_array_header_1_0(fh)
    a = np.load(p + '-' + name + '.npy', allow_pickle=True)
    res[name] = [a.dtype == object, a.shape == want.shape, bool((a == want).all()), hdr[1], bool(a.flags.f_contiguous and not a.flags.c_contiguous)]
m = np.load(p + '-mixed.npy', allow_pickle=True)
res['mixed'] = [m.shape, m[0, 0, 0], m[0, 1, 0], bool(m.flags.f_contiguous), m[0, 0, 1], m[0, 1, 1]]
print(json.dumps(res))`,
      [folder],
    );
    const res = JSON.parse(out) as Record<string, unknown[]>;
    assert.deepEqual(res.f, [true, true, true, true, true]);
    assert.deepEqual(res.c, [true, true, true, false, false]);
    assert.deepEqual(res.flat, [true, true, true, true, true]);
    // Logical order: element [0][0][1] is the second item, [0][1][0] the fourth.
    assert.deepEqual(res.mixed, [[1, 2, 3], 'a', [2, 3], true, 1, { k: 1.5 }]);
    // And tensorio reads back what it wrote.
    assert.deepEqual(await load(path.join(folder + '-f.npy'), { allowPickle: true }), nested);
  });
}

test('objectArray refuses values that fit neither the shape nested nor flat, and .npz', async () => {
  await expectCode(() => objectArray([1, 2, 3], [2, 2]), 'ERR_SHAPE_MISMATCH', /fit neither shape \(2, 2\)/);
  await expectCode(() => objectArray([[1, 2], [3]], [2, 2]), 'ERR_SHAPE_MISMATCH');
  await expectCode(() => save(path.join(dir, 'o.npz'), objectArray([1], [1]) as never), 'ERR_INVALID_ARGUMENT', /saved to \.npy/);
});
