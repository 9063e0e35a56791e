/**
 * What real NumPy (`np.load`) and every tensorio `.npy` read path make of the same files, for
 * the header and conformance tests (npy-header.test.ts, npy-format-conformance.test.ts).
 * NumPy's verdict is the oracle: the tests assert that tensorio reads what NumPy reads, with the
 * same dtype, shape and bytes, and refuses what NumPy refuses, with a typed error.
 *
 * Internal on purpose: bytesOf and dtypeFromNumpyCode (src/ndarray.ts, src/dtype.ts) compare
 * what tensorio read with NumPy's dtype and bytes.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { TensorioError, asCOrder, decodeNpy, load, openNpy, readNpy, readNpyHeader, readNpySync, type DType, type NdArray } from '../../../src/index.js';
import { dtypeFromNumpyCode } from '../../../src/dtype.js';
import { bytesOf } from '../../../src/ndarray.js';
import { runPythonWith } from '../../helpers.js';

/** np.load of each file: its dtype, shape, layout and little-endian C-order bytes, or the exception. */
const NUMPY_VERDICT = String.raw`
import json, sys, time, warnings
import numpy as np
warnings.simplefilter('ignore')
allow = sys.argv[1] == '1'
def verdict(get):
    start = time.perf_counter()
    try:
        a = get()
    except Exception as e:
        return {'ok': False, 'error': type(e).__name__, 'message': str(e)[:300]}
    if isinstance(a, np.lib.npyio.NpzFile):
        members = {k: verdict(lambda k=k: a[k]) for k in a.files}
        return {'ok': True, 'members': members, 'ms': (time.perf_counter() - start) * 1000}
    if not isinstance(a, np.ndarray):
        return {'ok': False, 'error': 'NotAnArray', 'message': type(a).__name__}
    ms = (time.perf_counter() - start) * 1000
    if a.dtype == object:
        return {'ok': True, 'descr': '|O', 'shape': list(a.shape), 'list': a.tolist(), 'ms': ms}
    le = a.astype(a.dtype.newbyteorder('<')) if a.dtype.byteorder == '>' else a
    return {'ok': True, 'descr': a.dtype.str, 'shape': list(a.shape),
            'fortran': bool(a.flags.f_contiguous and not a.flags.c_contiguous),
            'hex': le.tobytes(order='C').hex(), 'ms': ms}
out = {f: verdict(lambda f=f: np.load(f, allow_pickle=allow)) for f in sys.argv[2:]}
print(json.dumps(out))
`;

/** np.load's verdict: an array (descr, shape, ...), an .npz (members), or the exception (error, message). */
export interface NumpyVerdict {
  ok: boolean;
  descr?: string;
  shape?: number[];
  fortran?: boolean;
  hex?: string;
  members?: Record<string, NumpyVerdict>;
  /** An object array's elements, as `tolist()` gives them. */
  list?: unknown;
  error?: string;
  message?: string;
  /** Time np.load (and, for an .npz, reading every member) took, in ms. */
  ms?: number;
}

/** NumPy's verdict on a member of an `.npz` it opened (np.load gives an NpzFile). */
export function memberVerdict(verdict: NumpyVerdict | undefined, key: string): NumpyVerdict {
  assert.ok(verdict?.ok && verdict.members, `NumPy did not open it as an .npz: ${JSON.stringify(verdict)}`);
  const member = verdict.members[key];
  assert.ok(member, `NumPy has no member '${key}'`);
  return member;
}

/** np.load's verdict on each file (keyed by the path given), with the given interpreter. */
export function numpyVerdicts(python: string, files: string[], allowPickle = false): Record<string, NumpyVerdict> {
  const out: Record<string, NumpyVerdict> = {};
  // Batches keep the command line short.
  for (let i = 0; i < files.length; i += 200) {
    Object.assign(out, JSON.parse(runPythonWith(python, NUMPY_VERDICT, [allowPickle ? '1' : '0', ...files.slice(i, i + 200)])));
  }
  return out;
}

export type Outcome = { ok: true; dtype: DType; shape: number[]; hex: string } | { ok: false; code: string; message: string };

function summary(array: NdArray): Outcome {
  return { ok: true, dtype: array.dtype, shape: [...array.shape], hex: Buffer.from(bytesOf(asCOrder(array).data)).toString('hex') };
}

async function outcomeOf(action: () => unknown): Promise<Outcome> {
  try {
    return summary((await action()) as NdArray);
  } catch (error) {
    assert.ok(error instanceof TensorioError, `expected a TensorioError, got ${String(error)}`);
    return { ok: false, code: error.code, message: error.message };
  }
}

const withoutMessage = (o: Outcome): unknown => (o.ok ? o : { ok: false, code: o.code });

/**
 * What tensorio makes of a `.npy` file, after asserting that every read path agrees: readNpy
 * (eager and mapped), readNpySync (both), openNpy 'r+', decodeNpy of the bytes, load() and, for
 * a readable file, readNpyHeader. `scratch` is a folder for the copy openNpy opens.
 */
export async function tensorioOutcome(file: string, scratch: string): Promise<Outcome> {
  const expected = await outcomeOf(() => readNpy(file));
  const copy = path.join(scratch, `r+-${path.basename(file)}`);
  fs.copyFileSync(file, copy);
  const paths: [string, () => unknown][] = [
    ['readNpy mmap', () => readNpy(file, { mmap: true })],
    ['readNpySync', () => readNpySync(file)],
    ['readNpySync mmap', () => readNpySync(file, { mmap: true })],
    ['decodeNpy', () => decodeNpy(new Uint8Array(fs.readFileSync(file)), file)],
    ['load', () => load(file)],
    [
      'openNpy r+',
      () => {
        const memmap = openNpy(copy, { mode: 'r+', fsync: false });
        // A copy of the values: close() empties the mapped view.
        const array = { ...memmap, data: memmap.data.slice() } as NdArray;
        memmap.close();
        return array;
      },
    ],
  ];
  for (const [label, action] of paths) {
    assert.deepEqual(withoutMessage(await outcomeOf(action)), withoutMessage(expected), `${label} of ${path.basename(file)} disagrees with readNpy`);
  }
  fs.rmSync(copy);
  if (expected.ok) {
    const header = await readNpyHeader(file);
    assert.equal(header.dtype, expected.dtype, `readNpyHeader of ${path.basename(file)}`);
    assert.deepEqual(header.shape, expected.shape, `readNpyHeader of ${path.basename(file)}`);
  }
  return expected;
}

/** The tensorio dtype of a NumPy dtype string ('<f8'), if it has one. */
export function dtypeOfNumpy(descr: string): DType | undefined {
  return dtypeFromNumpyCode(descr.replace(/^[<>|=]/, ''))?.name;
}

/** Asserts tensorio read what NumPy read: same dtype, shape and bytes. */
export function assertSameArray(ours: Outcome, numpy: NumpyVerdict, what: string): void {
  assert.ok(numpy.ok, `${what}: NumPy refused it (${numpy.ok ? '' : `${numpy.error}: ${numpy.message}`})`);
  assert.ok(numpy.descr !== undefined, `${what}: NumPy opened an .npz`);
  assert.ok(ours.ok, `${what}: NumPy reads it as ${numpy.descr} ${JSON.stringify(numpy.shape)}, tensorio refused it: ${ours.ok ? '' : `${ours.code} ${ours.message}`}`);
  assert.equal(ours.dtype, dtypeOfNumpy(numpy.descr), `${what}: dtype`);
  assert.deepEqual(ours.shape, numpy.shape, `${what}: shape`);
  assert.equal(ours.hex, numpy.hex, `${what}: values`);
}

/** Asserts NumPy refused the file and tensorio refused it with `code`. */
export function assertBothRefuse(ours: Outcome, numpy: NumpyVerdict, code: string, what: string): void {
  assert.ok(!numpy.ok, `${what}: NumPy reads it; the test expects a refusal`);
  assert.ok(!ours.ok, `${what}: NumPy refuses it (${numpy.error}: ${numpy.message}), tensorio read it`);
  assert.equal(ours.code, code, `${what}: NumPy says ${numpy.error}: ${numpy.message}; tensorio: ${ours.message}`);
}

/**
 * A `.npy` file from a header text and raw data, framed as NumPy frames it: magic, version,
 * header length, the text padded with spaces and a newline to a multiple of `align`.
 */
export function rawNpy(dict: string, data: Uint8Array = new Uint8Array(0), version = 1, align = 64): Uint8Array {
  const lengthBytes = version === 1 ? 2 : 4;
  const body = Buffer.from(dict, version === 3 ? 'utf8' : 'latin1');
  const padding = (align - ((8 + lengthBytes + body.length + 1) % align)) % align;
  const text = Buffer.concat([body, Buffer.from(' '.repeat(padding) + '\n')]);
  const out = new Uint8Array(8 + lengthBytes + text.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  const view = new DataView(out.buffer);
  if (version === 1) view.setUint16(8, text.length, true);
  else view.setUint32(8, text.length, true);
  out.set(text, 8 + lengthBytes);
  out.set(data, 8 + lengthBytes + text.length);
  return out;
}
