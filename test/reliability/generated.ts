/**
 * The files the main suite's reliability tests (fuzz seeds, truncation) use in place of
 * ../shared/fixtures: written at test time by the real tools (Debian's NumPy and h5py, the
 * oracle's safetensors), a few per format, covering the structures those tools write (every
 * header version NumPy picks, Fortran order, big-endian, object and string arrays; stored and
 * deflated .npz members; padded safetensors headers with metadata; Keras's legacy HDF5 layout).
 * The real third-party files run in the fixtures suite (test/fixtures/reliability.test.ts).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { runOracle, runPython, runTorch } from '../helpers.js';
import type { ReliabilityFormat } from './formats.js';

const SCRIPTS: Record<string, { oracle: boolean; torch?: boolean; script: string }> = {
  npy: {
    oracle: false,
    script: `import sys, os, numpy as np
d = sys.argv[1]
rng = np.random.default_rng(7)
arrays = {
    'f4': rng.standard_normal((2, 3)).astype('<f4'),
    'be-fortran': np.asfortranarray(np.arange(24, dtype='>f8').reshape(2, 3, 4)),
    'bool': np.array([True, False, True]),
    'i8-scalar': np.array(-5, dtype='<i8'),
    'c8': (rng.standard_normal(4) + 1j).astype('<c8'),
    'f2': np.arange(10, dtype='<f2'),
    'u1-empty': np.zeros((0, 3), 'u1'),
    'object': np.array([1, 'two', None, [3.5]], dtype=object),
    'strings': np.array(['ab', 'cde']),
    'structured': np.zeros(2, dtype=[('a', '<i4'), ('b', '<f8')]),
}
for name, a in arrays.items():
    np.save(os.path.join(d, name + '.npy'), a, allow_pickle=True)
# A header past 65,535 bytes makes NumPy pick format version 2.0.
np.save(os.path.join(d, 'v2.npy'), np.zeros(1, dtype=[('f%d' % i, '<u1') for i in range(5000)]))`,
  },
  npz: {
    oracle: false,
    script: `import sys, os, numpy as np
d = sys.argv[1]
arrays = dict(f4=np.arange(12, dtype='<f4').reshape(3, 4), be=np.arange(5, dtype='>i8'), fort=np.asfortranarray(np.arange(6.).reshape(2, 3)),
              scalar=np.array(2.5), flags=np.array([True, False]))
np.savez(os.path.join(d, 'stored.npz'), **arrays)
np.savez_compressed(os.path.join(d, 'compressed.npz'), **arrays)
np.savez(os.path.join(d, 'positional.npz'), np.ones(3, '<f2'), np.array([1, 'two'], dtype=object))`,
  },
  safetensors: {
    oracle: true,
    script: `import sys, os, numpy as np
from safetensors.numpy import save_file
d = sys.argv[1]
rng = np.random.default_rng(7)
save_file({'w': rng.standard_normal((4, 5)).astype(np.float32), 'b': np.zeros(5, np.float16), 'n': np.array(3, np.int64)}, os.path.join(d, 'model.safetensors'), metadata={'format': 'np'})
save_file({'x': np.arange(7, dtype=np.uint8), 'flags': np.array([True, False])}, os.path.join(d, 'small.safetensors'))`,
  },
  'keras-h5': {
    oracle: false,
    // Keras's legacy layout as its save_weights writes it: layer_names, weight_names, a weightless layer.
    script: `import sys, os, h5py, numpy as np
d = sys.argv[1]
rng = np.random.default_rng(7)
def write(path, layers):
    with h5py.File(path, 'w') as f:
        f.attrs['layer_names'] = [name.encode() for name, _ in layers]
        f.attrs['backend'] = b'tensorflow'
        f.attrs['keras_version'] = b'2.2.4'
        for name, weights in layers:
            g = f.create_group(name)
            g.attrs['weight_names'] = [w.encode() for w, _ in weights] if weights else np.zeros((0,), np.float64)
            for w, value in weights:
                g[w] = value
write(os.path.join(d, 'dense.h5'), [('input_1', []), ('dense', [('dense/kernel:0', rng.standard_normal((4, 3)).astype('<f4')), ('dense/bias:0', np.zeros(3, '<f4'))])])
write(os.path.join(d, 'two.h5'), [('fc1', [('fc1/kernel:0', rng.standard_normal((8, 2)).astype('<f8'))]), ('fc2', [('fc2/kernel:0', np.arange(6, dtype='<f4').reshape(2, 3)), ('fc2/bias:0', np.ones(3, '<f4'))])])`,
  },
  // Real PyTorch's torch.save, both formats: a state dict of several dtypes, tied and strided
  // views, a training checkpoint with optimizer state, a bare tensor, a protocol-5 legacy file.
  torch: {
    oracle: false,
    torch: true,
    script: `import sys, os, torch
d = sys.argv[1]
torch.manual_seed(7)
x = torch.arange(12, dtype=torch.float32).reshape(3, 4)
sd = {'w': x, 'tied': x, 't': x.t(), 'col': x[:, 1], 'h': torch.ones(3, dtype=torch.float16), 'i': torch.tensor([1, -2], dtype=torch.int64), 'b': torch.tensor([True, False])}
lin = torch.nn.Linear(3, 2)
opt = torch.optim.Adam(lin.parameters())
lin(torch.ones(1, 3)).sum().backward(); opt.step()
ckpt = {'model': lin.state_dict(), 'optimizer': opt.state_dict(), 'epoch': 3, 'name': 'run'}
for fmt, zipped in (('zip', True), ('legacy', False)):
    torch.save(sd, os.path.join(d, 'state-%s.pt' % fmt), _use_new_zipfile_serialization=zipped)
    torch.save(ckpt, os.path.join(d, 'checkpoint-%s.pt' % fmt), _use_new_zipfile_serialization=zipped)
torch.save(torch.tensor(2.5, dtype=torch.bfloat16), os.path.join(d, 'bare.pt'))
torch.save({'p': torch.nn.Parameter(torch.zeros(2))}, os.path.join(d, 'proto5-legacy.pt'), _use_new_zipfile_serialization=False, pickle_protocol=5)`,
  },
};

let root: string | undefined;
const cache = new Map<string, string[]>();

/** The files of a format written at test time (once per process, removed at exit), sorted. */
export function generatedFiles(format: Pick<ReliabilityFormat, 'name' | 'extension'>): string[] {
  const cached = cache.get(format.name);
  if (cached) return cached;
  const entry = SCRIPTS[format.name];
  if (!entry) throw new Error(`test/reliability/generated.ts writes no files for the format '${format.name}': add a script for it`);
  if (!root) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tensorio-generated-'));
    root = dir;
    process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  }
  const dir = path.join(root, format.name);
  fs.mkdirSync(dir);
  if (entry.torch) runTorch(entry.script, [dir]);
  else if (entry.oracle) runOracle(entry.script, [dir]);
  else runPython(entry.script, [dir]);
  const files = fs
    .readdirSync(dir)
    .filter((name) => name.endsWith(format.extension))
    .sort()
    .map((name) => path.join(dir, name));
  if (files.length === 0) throw new Error(`the script for '${format.name}' wrote no ${format.extension} file`);
  cache.set(format.name, files);
  return files;
}
