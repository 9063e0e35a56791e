/** How Keras's own loaders see a Keras HDF5 file (run with h5py), shared by test/formats/keras/keras.test.ts and the fixtures suite. */
import type { NdArray } from '../../../src/index.js';

/** An array's bytes as hex. */
export function hex(array: NdArray): string {
  return Buffer.from(array.data.buffer, array.data.byteOffset, array.data.byteLength).toString('hex');
}

// Reads a Keras file the way Keras's loaders do: legacy (load_weights_from_hdf5_group:
// layer_names -> weight_names -> datasets, decoding bytes, joining layer_names0..N) or
// Keras 3 (layers/<name>/vars/<i>).
export const KERAS_READ = `
import sys, json, h5py, numpy as np
def attr_list(group, name):
    if name in group.attrs:
        data = [n.decode('utf8') if hasattr(n, 'decode') else n for n in group.attrs[name]]
    else:
        data, i = [], 0
        while '%s%d' % (name, i) in group.attrs:
            data.extend([n.decode('utf8') if hasattr(n, 'decode') else n for n in group.attrs['%s%d' % (name, i)]])
            i += 1
    return [str(n) for n in data]
def dump(d):
    v = np.asarray(d[()])
    return {'dtype': v.dtype.str, 'shape': list(v.shape), 'hex': np.ascontiguousarray(v.astype(v.dtype.newbyteorder('<'))).tobytes().hex()}
out = []
with h5py.File(sys.argv[1], 'r') as f:
    if 'layer_names' in f.attrs or 'layer_names0' in f.attrs or 'model_weights' in f:
        g = f['model_weights'] if ('layer_names' not in f.attrs and 'layer_names0' not in f.attrs and 'model_weights' in f) else f
        for layer in attr_list(g, 'layer_names'):
            names = attr_list(g[layer], 'weight_names')
            out.append([layer, [[n, dump(g[layer][n])] for n in names]])
    else:
        def visit(name, obj):
            if isinstance(obj, h5py.Group) and 'vars' in obj and name.startswith('layers/'):
                vs = sorted(obj['vars'].keys(), key=int)
                out.append([name[len('layers/'):], [[v, dump(obj['vars'][v])] for v in vs]])
        f.visititems(visit)
print(json.dumps(out))
`;

export type KerasDump = [string, [string, { dtype: string; shape: number[]; hex: string }][]][];
