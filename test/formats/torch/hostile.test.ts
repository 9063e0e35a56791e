/**
 * Hostile PyTorch files made by hand (Debian's Python writes the pickles with stand-in torch
 * globals, no torch needed): each is a typed error, nothing allocated from a claim, nothing run.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';

import assert from 'node:assert/strict';

import { writeTorch, TensorioError } from '../../../src/index.js';
import { expectCode } from '../../expect-code.js';
import { runPython, tempDir } from '../../helpers.js';
import { readBoth } from './read-both.js';

const dir = tempDir('torch-hostile');

const file = (name: string): string => path.join(dir, name);

// Writes <dir>/<name>.pt: a zip whose data.pkl rebuilds one tensor with the given storage
// claim, offset, size and stride, over a storage member of `nbytes` bytes.
const MAKE = `
import pickle, sys, types, zipfile, collections, json
utils = types.ModuleType('torch._utils'); torch = types.ModuleType('torch'); sys.modules['torch'] = torch; sys.modules['torch._utils'] = utils
def _rebuild_tensor_v2(*a): pass
_rebuild_tensor_v2.__module__ = 'torch._utils'; utils._rebuild_tensor_v2 = _rebuild_tensor_v2
class FloatStorage: pass
FloatStorage.__module__ = 'torch'; torch.FloatStorage = FloatStorage
class S:
    def __init__(self, numel): self.numel = numel
class T:
    def __init__(self, numel, off, size, stride): self.a = (S(numel), off, size, stride, False, collections.OrderedDict())
    def __reduce__(self): return (_rebuild_tensor_v2, self.a)
class P(pickle.Pickler):
    def persistent_id(self, o):
        return ('storage', FloatStorage, '0', 'cpu', o.numel) if isinstance(o, S) else None
for name, numel, off, size, stride, nbytes in json.loads(sys.argv[2]):
    import io; b = io.BytesIO(); P(b, protocol=2).dump({'w': T(numel, off, tuple(size), tuple(stride))})
    with zipfile.ZipFile(sys.argv[1] + '/' + name + '.pt', 'w') as z:
        z.writestr('archive/data.pkl', b.getvalue()); z.writestr('archive/data/0', bytes(nbytes)); z.writestr('archive/version', '3')
`;

describe('hand-made hostile checkpoints', () => {
  test('offsets, strides and sizes outside the storage; storages shorter than claimed; huge counts', async () => {
    const cases: [string, number, number, number[], number[], number, string][] = [
      ['offset', 4, 3, [2], [1], 16, 'ERR_BAD_VALUE'],
      ['stride', 4, 0, [2, 2], [3, 1], 16, 'ERR_BAD_VALUE'],
      ['overflow', 4, 0, [2 ** 40, 2 ** 40], [2 ** 40, 1], 16, 'ERR_TOO_LARGE'],
      ['short', 8, 0, [8], [1], 16, 'ERR_TRUNCATED'],
      ['huge', 2 ** 50, 0, [2 ** 50], [1], 16, 'ERR_TRUNCATED'],
      ['negative', 4, 0, [2], [-1], 16, 'ERR_BAD_VALUE'],
      // Stride 0 (torch's expand) over one element: a copy of 1 GiB, then of 128 TiB, from a tiny file.
      ['expand', 1, 0, [2 ** 28], [0], 4, 'ERR_TOO_LARGE'],
      ['expand-huge', 1, 0, [2 ** 45], [0], 4, 'ERR_TOO_LARGE'],
    ];
    runPython(MAKE, [dir, JSON.stringify(cases.map((c) => c.slice(0, 6)))]);
    for (const [name, , , , , , code] of cases) {
      for (const mmap of [false, true]) await expectCode(() => readBoth(file(`${name}.pt`), { mmap }), code as TensorioError['code']);
    }
    // The copy budget is the caller's to raise: a 4 MiB expansion of one float reads with it.
    const expanded = file('expand-small.pt');
    runPython(MAKE, [dir, JSON.stringify([['expand-small', 1, 0, [2 ** 20], [0], 4]])]);
    await expectCode(() => readBoth(expanded, { maxCopySize: 2 ** 21 }), 'ERR_TOO_LARGE', /maxCopySize/);
    assert.equal(((await readBoth(expanded, { maxCopySize: 2 ** 22 })) as unknown as { w: { data: Float32Array } }).w.data.length, 2 ** 20);
  });

  test('forbidden globals and opcodes', async () => {
    runPython(
      `import sys, pickle, zipfile
cases = {'eval': b'\\x80\\x02cbuiltins\\neval\\nX\\x01\\x00\\x00\\x001\\x85R.', 'inst': b'(ios\\nsystem\\n.', 'ext': b'\\x80\\x02\\x82\\x01.', 'unknown': b'\\x80\\x02\\xff.', 'persid': b'\\x80\\x02X\\x06\\x00\\x00\\x00moduleQ.'}
for name, pkl in cases.items():
    with zipfile.ZipFile(sys.argv[1] + '/' + name + '.pt', 'w') as z: z.writestr('archive/data.pkl', pkl)`,
      [dir],
    );
    await expectCode(() => readBoth(file('eval.pt')), 'ERR_UNSAFE_PICKLE', /builtins\.eval/);
    await expectCode(() => readBoth(file('inst.pt')), 'ERR_UNSAFE_PICKLE', /os\.system/);
    await expectCode(() => readBoth(file('ext.pt')), 'ERR_UNSAFE_PICKLE');
    await expectCode(() => readBoth(file('unknown.pt')), 'ERR_BAD_PICKLE');
    await expectCode(() => readBoth(file('persid.pt')), 'ERR_UNSAFE_PICKLE', /not a storage/);
  });

  test('members that overlap; a pickle of shared lists nested 40 deep (2^40 paths)', async () => {
    runPython(
      `${MAKE.split('for name, numel')[0]}
import io
class K:
    def __init__(self, key): self.key = key
class U:
    def __init__(self, key): self.a = (K(key), 0, (4,), (1,), False, collections.OrderedDict())
    def __reduce__(self): return (_rebuild_tensor_v2, self.a)
class Q(pickle.Pickler):
    def persistent_id(self, o):
        return ('storage', FloatStorage, o.key, 'cpu', 4) if isinstance(o, K) else None
b = io.BytesIO(); Q(b, protocol=2).dump({'a': U('0'), 'b': U('1')})
path = sys.argv[1] + '/overlap.pt'
with zipfile.ZipFile(path, 'w') as z:
    z.writestr('archive/data.pkl', b.getvalue()); z.writestr('archive/data/0', bytes(16)); z.writestr('archive/data/1', bytes(16))
# Storage '1''s directory entry points at storage '0''s bytes.
raw = bytearray(open(path, 'rb').read())
cd = [i for i in range(len(raw)) if raw[i:i+4] == b'PK' + bytes([1, 2])]
entry = {bytes(raw[i+46:i+46+14]): i for i in cd}
raw[entry[b'archive/data/1']+42:entry[b'archive/data/1']+46] = raw[entry[b'archive/data/0']+42:entry[b'archive/data/0']+46]
open(path, 'wb').write(bytes(raw))
a = []
for i in range(40): a = [a, a]
with zipfile.ZipFile(sys.argv[1] + '/dag.pt', 'w') as z: z.writestr('archive/data.pkl', pickle.dumps(a, protocol=2))`,
      [dir],
    );
    await expectCode(() => readBoth(file('overlap.pt')), 'ERR_BAD_ZIP', /overlap/);
    const dag = (await readBoth(file('dag.pt'))) as unknown[];
    assert.equal(dag[0], dag[1]);
  });

  test('truncated archives, not a checkpoint, a tar', async () => {
    const good = file('good.pt');
    await writeTorch(good, { w: { dtype: 'float32', shape: [64], data: new Float32Array(64) } });
    const bytes = fs.readFileSync(good);
    for (const cut of [0, 10, 100, bytes.length / 2, bytes.length - 30, bytes.length - 1]) {
      fs.writeFileSync(file('cut.pt'), bytes.subarray(0, Math.floor(cut)));
      await expectCode(
        async () => {
          try {
            await readBoth(file('cut.pt'));
          } catch (error) {
            if (!(error instanceof TensorioError)) throw new Error(`not typed: ${String(error)}`);
            throw new TensorioError('ERR_BAD_ZIP', error.message);
          }
        },
        'ERR_BAD_ZIP',
      );
    }
    fs.writeFileSync(file('text.pt'), 'hello');
    await expectCode(() => readBoth(file('text.pt')), 'ERR_BAD_MAGIC');
    const tar = Buffer.alloc(1024);
    tar.write('ustar', 257);
    fs.writeFileSync(file('old.pt'), tar);
    // The tar layout is read now (tar.test.ts): a header of zeros and the magic is a bad tar header.
    await expectCode(() => readBoth(file('old.pt')), 'ERR_BAD_HEADER', /checksum/);
  });
});
