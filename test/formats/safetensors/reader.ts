/**
 * safetensors test helpers shared by test/formats/safetensors/safetensors.test.ts and the
 * fixtures suite: an independent reader (Python's json and numpy.memmap) to compare with, the
 * check that every reader entry point refuses a bad file with the same code, and the check
 * that files re-encode to their own bytes.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { decodeSafetensors, encodeSafetensors, openSafetensors, readSafetensors, readSafetensorsSync, toFloat32, TensorioError, writeSafetensors, type LoadedArray, type NdArray, type TypedArray } from '../../../src/index.js';
import { expectCode } from '../../expect-code.js';
import { runPythonJson, tempDir } from '../../helpers.js';

const dir = tempDir('safetensors-helpers');
let counter = 0;

const rejectsWith = (code: string, fn: () => unknown): Promise<TensorioError> => expectCode(fn, code as Parameters<typeof expectCode>[1]);

export function bytes(data: TypedArray): Buffer {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

export function sha(data: TypedArray): string {
  return createHash('sha256').update(bytes(data)).digest('hex');
}

function writeTemp(content: Uint8Array): string {
  const file = path.join(dir, `${counter++}.safetensors`);
  fs.writeFileSync(file, content);
  return file;
}


/** Every reader entry point must refuse a bad file with the same code. */
export async function allReadersRefuse(content: Uint8Array, code: string): Promise<void> {
  const file = writeTemp(content);
  const error = await rejectsWith(code, () => readSafetensors(file));
  assert.equal(error.path, file);
  await rejectsWith(code, () => readSafetensors(file, { mmap: true }));
  await rejectsWith(code, () => readSafetensorsSync(file));
  await rejectsWith(code, () => openSafetensors(file));
  await rejectsWith(code, () => decodeSafetensors(content));
}

// An independent reader: Python's json and numpy.memmap, nothing from tensorio.
export const PY_READER = String.raw`
import hashlib, json, struct, sys
import numpy as np
NP = {'BOOL': '?', 'U8': 'u1', 'I8': 'i1', 'U16': '<u2', 'I16': '<i2', 'U32': '<u4', 'I32': '<i4',
      'U64': '<u8', 'I64': '<i8', 'F16': '<f2', 'BF16': '<u2', 'F32': '<f4', 'F64': '<f8',
      'C64': '<c8', 'F8_E4M3': 'u1', 'F8_E5M2': 'u1'}
NUMERIC = {'BOOL', 'U8', 'I8', 'U16', 'I16', 'U32', 'I32', 'U64', 'I64', 'F16', 'F32', 'F64'}
def read(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
    meta = header.pop('__metadata__', None)
    mm = np.memmap(path, dtype=np.uint8, mode='r')
    out = {}
    for name, e in header.items():
        b, end = e['data_offsets']
        raw = bytes(mm[8 + n + b: 8 + n + end])
        arr = np.frombuffer(raw, dtype=NP[e['dtype']]).reshape(e['shape'])
        values = None
        if e['dtype'] in NUMERIC:
            values = [v if np.isfinite(v) else None for v in arr.astype(np.float64).ravel().tolist()]
        out[name] = {'dtype': e['dtype'], 'shape': list(arr.shape), 'sha': hashlib.sha256(raw).hexdigest(), 'values': values}
    order = sorted(header, key=lambda k: header[k]['data_offsets'])
    return {'n': n, 'size': len(mm), 'metadata': meta, 'order': order, 'tensors': out}
result = {}
for p in sys.argv[1:]:
    if p.endswith('.json'):
        index = json.load(open(p))
        folder = p[:p.rfind('/') + 1]
        result[p] = {'index': index, 'shards': {s: read(folder + s) for s in sorted(set(index['weight_map'].values()))}}
    else:
        result[p] = read(p)
print(json.dumps(result))
`;

export interface PyTensor {
  dtype: string;
  shape: number[];
  sha: string;
  values: Array<number | null> | null;
}
export interface PyFile {
  n: number;
  size: number;
  metadata: Record<string, string> | null;
  order: string[];
  tensors: Record<string, PyTensor>;
}

export function pyRead(...files: string[]): Record<string, PyFile> {
  return runPythonJson<Record<string, PyFile>>(PY_READER, files);
}

function numericValues(array: NdArray): Array<number | null> {
  const asFloat = array.dtype === 'float16' ? toFloat32(array) : array;
  return Array.from(asFloat.data as ArrayLike<number | bigint>, (v) => {
    const x = Number(v);
    return Number.isFinite(x) ? x : null;
  });
}

export function assertMatchesPython(ours: Record<string, LoadedArray | NdArray>, py: PyFile): void {
  assert.deepEqual(Object.keys(ours).sort(), Object.keys(py.tensors).sort());
  for (const [name, expected] of Object.entries(py.tensors)) {
    const array = ours[name] as NdArray;
    assert.deepEqual(array.shape, expected.shape, name);
    assert.equal(sha(array.data), expected.sha, `${name} bytes`);
    if (expected.values) assert.deepEqual(numericValues(array), expected.values, `${name} values`);
  }
}

/** Every reader entry point (eager, mapped, synchronous, in memory, lazy) reads `files` as the independent reader does. */
export async function assertReadsLikePython(files: string[]): Promise<void> {
  const py = pyRead(...files);
  for (const file of files) {
    const expected = py[file] as PyFile;
    const eager = await readSafetensors(file);
    assertMatchesPython(eager.tensors, expected);
    assert.deepEqual(eager.metadata, expected.metadata ?? {});
    for (const array of Object.values(eager.tensors)) assert.equal(array.mapped, false);
    assertMatchesPython((await readSafetensors(file, { mmap: true })).tensors, expected);
    assertMatchesPython(readSafetensorsSync(file, { mmap: true }).tensors, expected);
    assertMatchesPython(decodeSafetensors(fs.readFileSync(file)).tensors, expected);
    const view = await openSafetensors(file);
    assert.deepEqual(view.offsetKeys(), expected.order);
    view.close();
  }
}

/** The chunks of an encoding as one buffer. */
export function concat(chunks: Uint8Array[]): Buffer {
  return Buffer.concat(chunks.map((c) => Buffer.from(c.buffer, c.byteOffset, c.byteLength)));
}

/** Each file, read and encoded again (in memory, and written to `out()`), gives its own bytes. */
export async function assertReencodes(files: string[], out: () => string): Promise<void> {
  for (const file of files) {
    const { tensors, metadata } = await readSafetensors(file);
    const options = Object.keys(metadata).length > 0 ? { metadata } : {};
    assert.ok(concat(encodeSafetensors(tensors, options)).equals(fs.readFileSync(file)), path.basename(file));
    const written = out();
    await writeSafetensors(written, tensors, options);
    assert.ok(fs.readFileSync(written).equals(fs.readFileSync(file)), `${path.basename(file)} written`);
  }
}
