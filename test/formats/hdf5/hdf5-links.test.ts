/**
 * HDF5 external links (h5py.ExternalLink): reported as links, never followed and never
 * misread as this file's datasets (src/formats/hdf5/links.ts). Files written at test time by
 * Debian's h5py 3.7 and the oracle's h5py 3.16, libver 'earliest' and 'latest', read by
 * tensorio's own structure reader, by h5wasm, in memory, synchronously.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

import { decodeH5, h5wasmReady, openH5, openH5Bytes, readH5, readH5Sync, TensorioError } from '../../../src/index.js';
import { numpyPythons, runPythonWith, tempDir } from '../../helpers.js';

const dir = tempDir('tensorio-hdf5-links');

const WRITE = `
import sys, os, json, h5py, numpy as np
folder, libver = sys.argv[1], sys.argv[2]
with h5py.File(os.path.join(folder, 'target.h5'), 'w', libver=libver) as f:
    f['data'] = np.arange(6, dtype='<f8')
    f.create_group('g')['inner'] = np.arange(3, dtype='<i4')
with h5py.File(os.path.join(folder, 'main.h5'), 'w', libver=libver) as f:
    f['own'] = np.arange(4, dtype='<i2')
    f['ext'] = h5py.ExternalLink('target.h5', '/data')
    g = f.create_group('group')
    g['missing'] = h5py.ExternalLink('no-such-file.h5', '/x')
    g['ext_group'] = h5py.ExternalLink('target.h5', '/g')
    g['chunked'] = np.arange(10, dtype='<f4')
with h5py.File(os.path.join(folder, 'main.h5'), 'r') as f:
    # What h5py sees: it follows the links that resolve.
    print(json.dumps({'ext': f['ext'][()].tolist(), 'keys': list(f.keys()), 'group': list(f['group'].keys())}))
`;

const LINKS = [
  { path: 'ext', file: 'target.h5', target: '/data' },
  { path: 'group/ext_group', file: 'target.h5', target: '/g' },
  { path: 'group/missing', file: 'no-such-file.h5', target: '/x' },
];

function isLinkRead(pathInFile: string, target: string) {
  return (error: unknown) =>
    error instanceof TensorioError &&
    error.code === 'ERR_NOT_FOUND_IN_ARCHIVE' &&
    error.message.includes(`'${pathInFile}' is not a dataset of this file but an external link to '${target}' in `);
}

for (const { label, python } of numpyPythons()) {
  for (const libver of ['earliest', 'latest']) {
    test(`external links of h5py (${label}, libver ${libver}) are listed as links, left out of datasets() and readH5, and not followed`, async () => {
      const folder = path.join(dir, `${label.replace(/\W+/g, '-')}-${libver}`);
      fs.mkdirSync(folder);
      const h5py = JSON.parse(runPythonWith(python(), WRITE, [folder, libver])) as { ext: number[]; keys: string[]; group: string[] };
      assert.deepEqual(h5py.ext, [0, 1, 2, 3, 4, 5], 'h5py follows the link');
      const file = path.join(folder, 'main.h5');
      for (const h5wasm of [false, true]) {
        const h5 = await openH5(file, { h5wasm });
        try {
          assert.deepEqual(h5.keys(), h5py.keys);
          assert.deepEqual(h5.keys('group'), h5py.group);
          assert.deepEqual(h5.datasets(), ['group/chunked', 'own']);
          assert.deepEqual(
            h5.externalLinks().sort((a, b) => a.path.localeCompare(b.path)),
            LINKS,
          );
          assert.deepEqual(h5.externalLink('/ext'), LINKS[0]);
          assert.equal(h5.externalLink('own'), undefined);
          assert.equal(h5.isDataset('ext'), false);
          assert.equal(h5.isGroup('group/ext_group'), false);
          assert.throws(() => h5.info('ext'), isLinkRead('ext', '/data'));
          await assert.rejects(h5.read('group/missing'), isLinkRead('group/missing', '/x'));
        } finally {
          h5.close();
        }
      }
      const all = await readH5(file);
      assert.deepEqual(Object.keys(all).sort(), ['group/chunked', 'own']);
      assert.deepEqual(Array.from(all.own?.data as Int16Array), [0, 1, 2, 3]);
      await h5wasmReady();
      assert.deepEqual(Object.keys(readH5Sync(file)).sort(), ['group/chunked', 'own']);
      if (libver === 'earliest') {
        // tensorio's own structure reader: also in memory, with no h5wasm.
        const memory = openH5Bytes(new Uint8Array(fs.readFileSync(file)), 'main.h5');
        try {
          assert.equal(memory.usesH5wasm, false);
          assert.deepEqual(memory.externalLinks().map((l) => l.path).sort(), LINKS.map((l) => l.path));
        } finally {
          memory.close();
        }
        assert.deepEqual(Object.keys(decodeH5(new Uint8Array(fs.readFileSync(file)))).sort(), ['group/chunked', 'own']);
      }
    });
  }
}
