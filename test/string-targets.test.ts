// NumPy string arrays (StringArray, from readNpy/readNpz with { strings: true }) going into each
// target: formats that hold strings write them (writeH5, judged by h5py 3.7 and 3.16), formats
// that do not (safetensors, the main save's numeric members, tf.Tensor) refuse them with
// ERR_UNSUPPORTED_DTYPE naming the member, never a dtype of 'undefined'. TypeScript already refuses
// these calls (the casts); the checks are for JavaScript callers.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';

import { save, stringArray, writeH5, writeSafetensors, TensorioError } from '../src/index.js';
import { toTensor } from '../src/tfjs/index.js';
import { h5pyPythons, runPythonWith, tempDir } from './helpers.js';

const dir = tempDir('tensorio-string-targets');
const unicode = stringArray(['héllo', '', 'wörld', '😀'], [2, 2]);
const bytes = stringArray([new Uint8Array([0x61, 0x62]), new Uint8Array([0xff]), new Uint8Array([])], [3], { width: 3 });

async function refuses(what: () => unknown, name: RegExp): Promise<void> {
  await assert.rejects(async () => what(), (error: unknown) => {
    assert.ok(error instanceof TensorioError, String(error));
    assert.equal(error.code, 'ERR_UNSUPPORTED_DTYPE', error.message);
    assert.match(error.message, name);
    assert.match(error.message, /string array/);
    return true;
  });
}

test('formats without strings refuse a string array, naming the member', async () => {
  await refuses(() => writeSafetensors(path.join(dir, 'a.safetensors'), { labels: unicode } as never), /tensor 'labels'/);
  await refuses(() => save(path.join(dir, 'b.safetensors'), { labels: unicode } as never), /entry 'labels'/);
  await refuses(() => save(path.join(dir, 'c.npz'), [bytes] as never), /entry 'arr_0'/);
  await refuses(() => save(path.join(dir, 'd.h5'), { w: bytes } as never), /entry 'w'/);
  await refuses(() => toTensor(unicode as never, { name: 'labels' }), /tensor 'labels'/);
});

for (const { label, python } of h5pyPythons()) {
  test(`writeH5 writes NumPy's S as fixed-length ASCII and U as variable-length UTF-8, read back by ${label}`, async () => {
    const file = path.join(dir, `strings-${label.replace(/\W+/g, '-')}.h5`);
    await writeH5(file, { u: unicode, s: bytes });
    const seen = JSON.parse(
      runPythonWith(
        python(),
        `import sys, json, h5py, numpy as np
with h5py.File(sys.argv[1], 'r') as f:
    out = {}
    for k in ('u', 's'):
        d = f[k]
        info = h5py.check_string_dtype(d.dtype)
        v = np.asarray(d[()], dtype=object)
        out[k] = {'encoding': info.encoding, 'length': info.length, 'shape': list(d.shape), 'hex': [x.hex() for x in v.ravel()]}
print(json.dumps(out))`,
        [file],
      ),
    ) as Record<string, { encoding: string; length: number | null; shape: number[]; hex: string[] }>;
    assert.deepEqual(seen.u, { encoding: 'utf-8', length: null, shape: [2, 2], hex: ['héllo', '', 'wörld', '😀'].map((s) => Buffer.from(s).toString('hex')) });
    assert.deepEqual(seen.s, { encoding: 'ascii', length: 3, shape: [3], hex: ['6162', 'ff', ''] });
  });
}
