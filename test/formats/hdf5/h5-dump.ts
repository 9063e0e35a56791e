/**
 * What h5py reads from an HDF5 file (every numeric dataset), shared by test/formats/hdf5/h5.test.ts
 * and the fixtures suite. Imports the internal storage locator (src/formats/hdf5/format.ts) on
 * purpose: it checks that the own reader finds each dataset's bytes where h5py says they are.
 */
import assert from 'node:assert/strict';

import { openH5, type DType, type NdArray } from '../../../src/index.js';
import { locateDatasetStorage } from '../../../src/formats/hdf5/format.js';
import { runPythonJson, runPythonWith } from '../../helpers.js';

/** An array's bytes as hex, for comparing with h5py's dump. */
export function hex(array: NdArray): string {
  return Buffer.from(array.data.buffer, array.data.byteOffset, array.data.byteLength).toString('hex');
}

// h5py's reading of every numeric dataset: dtype kind, shape, and the little-endian bytes.
export const H5PY_DUMP = `
import sys, json, h5py, numpy as np
out = {}
def walk(group, prefix, depth):
    # Follows soft and hard links like tensorio does (h5py's visititems visits an object once).
    for key in group.keys():
        name = prefix + key
        try:
            obj = group[key]
        except KeyError:
            continue
        if isinstance(obj, h5py.Group):
            if depth < 8:
                walk(obj, name + '/', depth + 1)
            continue
        if not isinstance(obj, h5py.Dataset) or obj.shape is None:
            continue
        dt = obj.dtype
        if dt.kind not in 'iufbc':
            continue
        try:
            value = obj[()]
        except Exception as e:
            out[name] = {'error': str(e)}
            continue
        value = np.asarray(value).astype(dt.newbyteorder('<'))
        out[name] = {'dtype': dt.newbyteorder('<').str, 'shape': list(obj.shape), 'hex': value.tobytes().hex()}
with h5py.File(sys.argv[1], 'r') as f:
    walk(f, '', 0)
print(json.dumps(out))
`;

export const NUMPY_NAMES: Record<string, DType> = {
  '|b1': 'bool', '|i1': 'int8', '|u1': 'uint8', '<i2': 'int16', '<u2': 'uint16', '<i4': 'int32', '<u4': 'uint32',
  '<i8': 'int64', '<u8': 'uint64', '<f2': 'float16', '<f4': 'float32', '<f8': 'float64', '<c8': 'complex64', '<c16': 'complex128',
};

export type Dump = Record<string, { dtype: string; shape: number[]; hex: string } | { error: string }>;

/** Every contiguous dataset of `file` is found where h5py says its data lies, by tensorio's own reader. */
export async function assertStorageAsH5pyReports(file: string, python?: string): Promise<void> {
  const run = <T>(script: string, args: string[]): T => (python === undefined ? runPythonJson<T>(script, args) : (JSON.parse(runPythonWith(python, script, args)) as T));
  const offsets = run<Record<string, [number, number]>>(
    `
import sys, json, h5py
out = {}
with h5py.File(sys.argv[1], 'r') as f:
    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            out[name] = [h5py.h5o.get_info(obj.id).addr, obj.id.get_offset()]
    f.visititems(visit)
print(json.dumps(out))
`,
    [file],
  );
  const h5 = await openH5(file);
  try {
    for (const [name, [address, offset]] of Object.entries(offsets)) {
      const storage = locateDatasetStorage(file, address);
      assert.equal(storage.layout, 'contiguous');
      assert.equal((storage as { offset: number }).offset, offset, name);
      assert.deepEqual(h5.info(name).storage, storage);
    }
  } finally {
    h5.close();
  }
}

/** What a child process saw when h5wasm met a damaged file (test/formats/hdf5/h5.test.ts, test/fixtures/h5.test.ts). */
export interface DamageReport {
  before: number;
  damage: { typed: boolean; code: string; message: string; ms: number } | null;
  earlierAfter: { code: string } | null;
  syncAfter: { code: string } | null;
  after: number;
  syncAfterReady: { code: string } | null;
}

/**
 * Points a dataset's data address (8 little-endian bytes in its layout message, found after
 * its object header at `header`) 4 KiB past the end of the file.
 */
export function pointDataPastEnd(bytes: Buffer, header: number, offset: number): void {
  const needle = Buffer.alloc(8);
  needle.writeBigUInt64LE(BigInt(offset));
  const at = bytes.indexOf(needle, header);
  assert.ok(at > 0, 'the data address is in the layout message');
  bytes.writeBigUInt64LE(BigInt(bytes.length + 4096), at);
}
