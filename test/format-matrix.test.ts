/**
 * The format matrix: every registry entry × every entry point that takes it (main and tfjs
 * save/load, saveWeights/loadWeights, ioHandler, CLI convert then read back by the real
 * tool, CLI diff) × C and Fortran order × every dtype the format holds, compared with the
 * logical (C-order) values. Files are checked by the reference tools in one Python process
 * per tool: NumPy (both interpreters), h5py, the independent safetensors reader, PyTorch.
 * Plus: a tfjs model loaded from Fortran-order kernels (np.savez of W.T) predicts what NumPy's
 * forward pass computes.
 * Internal on purpose: the dtype table and conversions (src/dtype.ts, src/convert.ts) list the
 * cells and compute the expected values.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';

import * as tf from '@tensorflow/tfjs';
import './tfjs/tfjs-backend.js';

import { float8ToNumber, toBfloat16, toFloat16 } from '../src/convert.js';
import { dtypeFromSafetensors, dtypeInfo, DTYPES, type DType } from '../src/dtype.js';
import { load, save, type NdArray } from '../src/index.js';
import { asCOrder } from '../src/ndarray.js';
import { HANDLERS } from '../src/cli/formats.js';
import { ENTRY_POINTS, FORMATS, formatForPath, type FormatEntry } from '../src/formats/registry.js';
import { fromTensor, ioHandler, load as tfjsLoad, loadWeights, save as tfjsSave, saveWeights, toTensor } from '../src/tfjs/index.js';
import { tfjsArray } from '../src/tfjs/tfjs-arrays.js';
import { numpyPythons, oraclePython, ROOT, runPythonWith, runTorch, tempDir } from './helpers.js';
import { pyRead } from './formats/safetensors/reader.js';

const dir = tempDir('format-matrix');
const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');
const SHAPE = [2, 3, 4];
const N = 24;
const ORDERS = ['C', 'F'] as const;
type Order = (typeof ORDERS)[number];

/** Values every small float type holds exactly (2 mantissa bits: float8_e5m2 too). */
const SMALL = [-4, -3, -2, -1.5, -1, -0.75, -0.5, -0.25, 0, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2, 2.5, 3, 3.5, 4, 5, 6, 8];

/** The logical values of the test array of `dtype`, in C order (64-bit integers past 2^53, to catch rounding). */
function logical(dtype: DType): NdArray {
  const i = Array.from({ length: N }, (_, k) => k);
  const info = dtypeInfo(dtype);
  switch (dtype) {
    case 'bool':
      return { dtype, shape: SHAPE, data: Uint8Array.from(i, (k) => (k % 3 === 0 ? 1 : 0)) };
    case 'int64':
      return { dtype, shape: SHAPE, data: BigInt64Array.from(i, (k) => 2n ** 60n + BigInt(k) - 12n) };
    case 'uint64':
      return { dtype, shape: SHAPE, data: BigUint64Array.from(i, (k) => 2n ** 63n + BigInt(k)) };
    case 'float16':
      return toFloat16({ dtype: 'float32', shape: SHAPE, data: Float32Array.from(SMALL) });
    case 'bfloat16':
      return toBfloat16({ dtype: 'float32', shape: SHAPE, data: Float32Array.from(SMALL) });
    case 'float8_e4m3fn':
    case 'float8_e5m2': {
      const format = dtype === 'float8_e4m3fn' ? 'e4m3fn' : 'e5m2';
      const bits = SMALL.map((v) => {
        for (let b = 0; b < 256; b++) if (float8ToNumber(b, format) === v) return b;
        throw new Error(`${v} is not a ${dtype}`);
      });
      return { dtype, shape: SHAPE, data: Uint8Array.from(bits) };
    }
    case 'complex64':
    case 'complex128':
      return { dtype, shape: SHAPE, data: new info.array(i.flatMap((k) => [SMALL[k] as number, k * 0.25]) as never) as Float32Array };
    default: {
      const scale: Partial<Record<DType, [number, number]>> = {
        int8: [1, -12], uint8: [10, 0], int16: [1000, -12], uint16: [2000, 0], int32: [100000000, -12], uint32: [150000000, 0], float64: [0.1, -12],
      };
      const [mul, add] = scale[dtype] ?? [0.125, -12];
      return { dtype, shape: SHAPE, data: new info.array(i.map((k) => (k + add) * mul) as never) };
    }
  }
}

/** The array laid out in `order` (Fortran: the same logical values, column-major data). */
function inOrder(array: NdArray, order: Order): NdArray {
  if (order === 'C') return array;
  const lanes = dtypeInfo(array.dtype).lanes;
  const out = new (array.data.constructor as new (n: number) => typeof array.data)(array.data.length);
  const [a, b, c] = SHAPE as [number, number, number];
  for (let i = 0; i < a; i++)
    for (let j = 0; j < b; j++)
      for (let k = 0; k < c; k++) for (let l = 0; l < lanes; l++) out[(i + a * (j + b * k)) * lanes + l] = array.data[(i * b * c + j * c + k) * lanes + l] as never;
  return { ...array, data: out, order: 'F' };
}

function sha(array: NdArray): string {
  const data = asCOrder(array).data;
  return createHash('sha256').update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)).digest('hex');
}

const EXPECTED = new Map(DTYPES.map((d) => [d, { dtype: d, sha: sha(logical(d)) }]));

/** Checks a read-back array against the logical values of `dtype`. */
function assertLogical(got: NdArray, dtype: DType, where: string): void {
  assert.equal(got.dtype, dtype, `${where}: dtype`);
  assert.deepEqual([...got.shape], SHAPE, `${where}: shape`);
  assert.equal(sha(got), EXPECTED.get(dtype)?.sha, `${where}: values`);
}

function entry(id: FormatEntry['id']): FormatEntry {
  return FORMATS.find((f) => f.id === id) as FormatEntry;
}

/** A file name for a registry entry. */
function fileFor(e: FormatEntry, stem: string): string {
  const ext = e.id === 'tfjs' ? '.json' : (e.extensions[0] as string);
  return path.join(dir, `${stem}${ext}`);
}

// Files to hand to each reference tool at the end, with what each must hold: member → dtype.
type Expect = Record<string, DType>;
const forNumpy: Record<string, Expect> = {};
const forH5py: Record<string, Expect> = {};
const forSafetensors: Record<string, Expect> = {};
const forTorch: Record<string, Expect> = {};

function toolFor(e: FormatEntry): Record<string, Expect> | undefined {
  if (e.id === 'npy' || e.id === 'npz') return forNumpy;
  if (e.id === 'hdf5' || e.id === 'keras3-weights') return forH5py;
  if (e.id === 'safetensors') return forSafetensors;
  if (e.id === 'torch') return forTorch;
  return undefined;
}

function cli(...args: string[]): { code: number; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

describe('the registry', () => {
  test('every entry point of every entry has its reader or writer, and every extension resolves to its entry', () => {
    for (const e of FORMATS) {
      if (e.entryPoints.includes('load')) assert.ok(e.read, `${e.id}: load without a reader`);
      if (e.entryPoints.includes('save')) assert.ok(e.write, `${e.id}: save without a writer`);
      if (e.entryPoints.includes('cliRead')) assert.ok(HANDLERS[e.id], `${e.id}: cliRead without a CLI handler`);
      if (e.entryPoints.includes('cliWrite')) assert.ok(HANDLERS[e.id]?.write, `${e.id}: cliWrite without a CLI writer`);
      for (const ext of e.extensions) {
        for (const point of ENTRY_POINTS) {
          if (e.entryPoints.includes(point)) assert.equal(formatForPath(`a/model${ext.toUpperCase()}`, point).id, e.id);
          else assert.throws(() => formatForPath(`model${ext}`, point), /does not take/);
        }
      }
    }
    assert.throws(() => formatForPath('x.unknown', 'load'), /cannot tell the format/);
  });
});

describe('main save/load and the tfjs save/load, every dtype, both orders', () => {
  for (const e of FORMATS.filter((f) => f.entryPoints.includes('save'))) {
    test(`${e.id}: main save then load gives the logical values; the tfjs load gives them in C order`, async () => {
      for (const order of ORDERS) {
        if (e.holds.many) {
          const file = fileFor(e, `main-${e.id}-${order}`);
          const record = Object.fromEntries(e.holds.dtypes.map((d) => [d, inOrder(logical(d), order)]));
          await save(file, record);
          const back = (await load(file)) as Record<string, NdArray>;
          for (const d of e.holds.dtypes) assertLogical(back[d] as NdArray, d, `${file} ${d}`);
          const tool = toolFor(e);
          if (tool) tool[file] = Object.fromEntries(e.holds.dtypes.map((d) => [d, d]));
          // The tfjs entry reads the same file as tf.Tensors in C order, dtypes converted as toTensor does.
          const convertible = e.holds.dtypes.filter((d) => {
            try {
              tfjsArray(logical(d));
              return true;
            } catch {
              return false;
            }
          });
          const tfjsFile = fileFor(e, `tfjs-src-${e.id}-${order}`);
          await save(tfjsFile, Object.fromEntries(convertible.map((d) => [d, inOrder(logical(d), order)])));
          const tensors = (await tfjsLoad(tfjsFile)) as Record<string, tf.Tensor>;
          for (const d of convertible) {
            const want = tfjsArray(logical(d));
            const got = await fromTensor(tensors[d] as tf.Tensor);
            assert.equal(got.dtype, want.dtype, `${tfjsFile} ${d}`);
            assert.equal(sha(got), sha(want), `${tfjsFile} ${d}: tfjs values`);
          }
          tf.dispose(Object.values(tensors));
        } else {
          for (const d of e.holds.dtypes) {
            const file = fileFor(e, `main-${d}-${order}`);
            await save(file, inOrder(logical(d), order));
            assertLogical((await load(file)) as NdArray, d, file);
            const tool = toolFor(e);
            if (tool) tool[file] = { '': d };
          }
        }
      }
    });

    test(`${e.id}: the tfjs save of tf.Tensors (float32, int32, bool, complex64) reads back with both loads`, async () => {
      const dtypes = e.holds.dtypes.filter((d) => dtypeInfo(d).tfjs !== null);
      // Tensors built from Fortran-order arrays: the bridge lays them out in C order.
      const tensors = Object.fromEntries(dtypes.map((d) => [d, toTensor(inOrder(logical(d), 'F'))]));
      if (!e.holds.many) {
        for (const d of dtypes) {
          const file = fileFor(e, `tfjs-${d}`);
          await tfjsSave(file, tensors[d] as tf.Tensor);
          assertLogical((await load(file)) as NdArray, d, file);
          const again = (await tfjsLoad(file)) as tf.Tensor;
          assert.equal(sha(await fromTensor(again)), EXPECTED.get(d)?.sha);
          again.dispose();
          const tool = toolFor(e);
          if (tool) tool[file] = { '': d };
        }
      } else {
        const file = fileFor(e, `tfjs-${e.id}`);
        await tfjsSave(file, tensors);
        const back = (await load(file)) as Record<string, NdArray>;
        for (const d of dtypes) assertLogical(back[d] as NdArray, d, `${file} ${d}`);
        const tool = toolFor(e);
        if (tool) tool[file] = Object.fromEntries(dtypes.map((d) => [d, d]));
      }
      tf.dispose(Object.values(tensors));
    });
  }
});

describe('CLI convert, read back by the real tool, and CLI diff', () => {
  // Sources: a .npz per order for NumPy's dtypes (Fortran order kept), a .safetensors for the rest.
  const npzSources: Record<Order, string> = { C: path.join(dir, 'cli-src-C.npz'), F: path.join(dir, 'cli-src-F.npz') };
  const extraSource = path.join(dir, 'cli-src-extra.safetensors');
  const numpyDtypes = entry('npz').holds.dtypes;
  const otherDtypes = DTYPES.filter((d) => !numpyDtypes.includes(d));

  for (const target of FORMATS.filter((f) => f.entryPoints.includes('cliWrite'))) {
    test(`convert into ${target.id}, both orders, every dtype it holds; diff of source and target is equal`, async () => {
      for (const order of ORDERS) {
        if (!fs.existsSync(npzSources[order])) await save(npzSources[order], Object.fromEntries(numpyDtypes.map((d) => [d, inOrder(logical(d), order)])));
      }
      if (!fs.existsSync(extraSource)) await save(extraSource, Object.fromEntries(otherDtypes.map((d) => [d, logical(d)])));
      const jobs: { src: string; dtypes: DType[]; stem: string }[] = [];
      for (const order of ORDERS) jobs.push({ src: npzSources[order], dtypes: numpyDtypes.filter((d) => target.holds.dtypes.includes(d)), stem: order });
      const extra = otherDtypes.filter((d) => target.holds.dtypes.includes(d));
      if (extra.length > 0) jobs.push({ src: extraSource, dtypes: extra, stem: 'extra' });
      for (const job of jobs) {
        // The source holds exactly what the target holds: convert refuses members it cannot write.
        const src = path.join(dir, `cli-${target.id}-${job.stem}-src${path.extname(job.src)}`);
        const all = (await load(job.src)) as Record<string, NdArray>;
        if (target.holds.many) {
          await save(src, Object.fromEntries(job.dtypes.map((d) => [d, all[d] as NdArray])));
          const dst = target.id === 'tfjs' ? path.join(dir, `cli-${job.stem}`, 'model.json') : fileFor(target, `cli-${target.id}-${job.stem}`);
          fs.mkdirSync(path.dirname(dst), { recursive: true });
          // An index target is sharded: small shards, so there is more than one.
          const converted = cli('convert', src, dst, '--no-fsync', ...(target.id === 'safetensors-index' ? ['--max-shard-size', '40B'] : []));
          assert.equal(converted.code, 0, converted.stderr);
          if (target.id === 'safetensors-index') assert.match(converted.stderr, /wrote \d+ files: .*-00001-of-.*\.safetensors.*\.index\.json/);
          const diff = cli('diff', src, dst);
          assert.equal(diff.code, 0, `${src} vs ${dst}: ${diff.stdout}${diff.stderr}`);
          assert.match(diff.stdout, new RegExp(`equal: ${job.dtypes.length} tensors?`));
          const tool = toolFor(target);
          if (tool) tool[dst] = Object.fromEntries(job.dtypes.map((d) => [d, d]));
          if (target.id === 'tfjs') await assertTfjsWeights(dst, job.dtypes);
        } else {
          for (const d of job.dtypes) {
            const one = path.join(dir, `cli-one-${d}-${job.stem}.npy`);
            await save(one, all[d] as NdArray);
            const dst = fileFor(target, `cli-${target.id}-${d}-${job.stem}`);
            const converted = cli('convert', one, dst, '--no-fsync');
            assert.equal(converted.code, 0, converted.stderr);
            assert.equal(cli('diff', one, dst).code, 0);
            const tool = toolFor(target);
            if (tool) tool[dst] = { '': d };
          }
        }
      }
    });
  }
});

/** A model.json's weights as tfjs itself decodes them (tf.io.decodeWeights), against the logical values. */
async function assertTfjsWeights(file: string, dtypes: DType[]): Promise<void> {
  const artifacts = await (ioHandler(file).load as () => Promise<tf.io.ModelArtifacts>)();
  const decoded = tf.io.decodeWeights(artifacts.weightData as ArrayBuffer, artifacts.weightSpecs ?? []);
  for (const d of dtypes) {
    const got = await fromTensor(decoded[d] as tf.Tensor);
    assert.equal(sha(got), sha(tfjsArray(logical(d))), `${file} ${d}`);
  }
  tf.dispose(Object.values(decoded));
}

describe('saveWeights/loadWeights and ioHandler for every entry that takes them', () => {
  function model(): tf.LayersModel {
    const m = tf.sequential();
    m.add(tf.layers.dense({ units: 3, inputShape: [4], name: 'd1' }));
    m.add(tf.layers.dense({ units: 2, name: 'd2' }));
    return m;
  }
  const X = tf.tensor2d([[1, -2, 0.5, 3], [0, 1, 2, -1]]);

  for (const e of FORMATS.filter((f) => f.entryPoints.includes('saveWeights'))) {
    test(`${e.id}: saveWeights then loadWeights into a fresh model gives the same predictions`, async () => {
      const a = model();
      const file = fileFor(e, `weights-${e.id}`);
      await saveWeights(a, file);
      const b = model();
      await loadWeights(b, file);
      assert.deepEqual(await (b.predict(X) as tf.Tensor).array(), await (a.predict(X) as tf.Tensor).array());
    });
  }

  test('loadWeights byName: file weights no model layer takes, and a model matching none, are errors naming them unless allowUnmatched', async () => {
    const a = model();
    const file = path.join(dir, 'unmatched.npz');
    await saveWeights(a, file);
    const fewer = tf.sequential();
    fewer.add(tf.layers.dense({ units: 3, inputShape: [4], name: 'd1' }));
    await assert.rejects(loadWeights(fewer, file, { byName: true }), (e: Error & { code?: string }) => e.code === 'ERR_SHAPE_MISMATCH' && /file layers no model layer takes: 'd2' \(d2\/kernel, d2\/bias\)/.test(e.message));
    await loadWeights(fewer, file, { byName: true, allowUnmatched: true });
    assert.deepEqual(await (fewer.layers[0] as tf.layers.Layer).getWeights()[0]?.array(), await (a.layers[0] as tf.layers.Layer).getWeights()[0]?.array());
    const other = tf.sequential();
    other.add(tf.layers.dense({ units: 3, inputShape: [4], name: 'x1' }));
    other.add(tf.layers.dense({ units: 2, name: 'x2' }));
    await assert.rejects(loadWeights(other, file, { byName: true }), /model layers left unset: 'x1' .*'x2' .*file layers no model layer takes: 'd1' .*'d2'/);
  });

  test('safetensors-index: loadWeights reads a sharded checkpoint the CLI wrote from saveWeights output', async () => {
    const a = model();
    const single = path.join(dir, 'sharded-src.safetensors');
    await saveWeights(a, single);
    const target = path.join(dir, 'sharded', 'model.safetensors');
    fs.mkdirSync(path.dirname(target), { recursive: true });
    const converted = cli('convert', single, target, '--max-shard-size', '60B', '--no-fsync');
    assert.equal(converted.code, 0, converted.stderr);
    const index = path.join(dir, 'sharded', 'model.safetensors.index.json');
    assert.ok(fs.existsSync(index));
    const b = model();
    await loadWeights(b, index);
    assert.deepEqual(await (b.predict(X) as tf.Tensor).array(), await (a.predict(X) as tf.Tensor).array());
  });

  for (const e of FORMATS.filter((f) => f.entryPoints.includes('ioHandlerSave'))) {
    test(`${e.id}: ioHandler save then tf.loadLayersModel predicts the same`, async () => {
      const a = model();
      const file = e.id === 'tfjs' ? path.join(dir, 'io-model', 'model.json') : fileFor(e, `io-${e.id}`);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      await a.save(ioHandler(file));
      const b = await tf.loadLayersModel(ioHandler(file));
      assert.deepEqual(await (b.predict(X) as tf.Tensor).array(), await (a.predict(X) as tf.Tensor).array());
    });
  }
});

test('a tfjs model loaded from Fortran-order kernels (np.savez of W.T) predicts what NumPy computes', async () => {
  const file = path.join(dir, 'fortran-kernels.npz');
  const expected = JSON.parse(
    runPythonWith(
      oraclePython(),
      `import sys, json, numpy as np
rng = np.random.default_rng(3)
W1 = rng.standard_normal((5, 4)).astype(np.float32); b1 = rng.standard_normal(5).astype(np.float32)
W2 = rng.standard_normal((2, 5)).astype(np.float32); b2 = rng.standard_normal(2).astype(np.float32)
# Keras kernels are (in, out): W.T of a PyTorch-style (out, in) matrix, which NumPy saves in Fortran order.
assert W1.T.flags.f_contiguous and not W1.T.flags.c_contiguous
np.savez(sys.argv[1], **{'d1/kernel': W1.T, 'd1/bias': b1, 'd2/kernel': W2.T, 'd2/bias': b2})
X = rng.standard_normal((3, 4)).astype(np.float32)
Y = np.maximum(X @ W1.T + b1, 0) @ W2.T + b2
print(json.dumps({'x': X.tolist(), 'y': Y.tolist()}))`,
      [file],
    ),
  ) as { x: number[][]; y: number[][] };
  const m = tf.sequential();
  m.add(tf.layers.dense({ units: 5, inputShape: [4], activation: 'relu', name: 'd1' }));
  m.add(tf.layers.dense({ units: 2, name: 'd2' }));
  await loadWeights(m, file);
  const y = (await (m.predict(tf.tensor2d(expected.x)) as tf.Tensor).array()) as number[][];
  y.flat().forEach((v, i) => assert.ok(Math.abs(v - (expected.y.flat()[i] as number)) < 1e-4, `prediction ${i}: ${v} vs ${expected.y.flat()[i]}`));
});

// The reference tools, one process each, on every file collected above. Each reports
// {file: {member: [dtype, shape, sha256 of the C-order bytes]}}.
const READERS = String.raw`
import sys, json, hashlib
import numpy as np
kind, files = sys.argv[1], json.loads(sys.argv[2])
def show(a):
    a = np.asarray(a)
    return [a.dtype.name, list(a.shape), hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()]
out = {}
for f in files:
    if kind == 'numpy' and f.endswith('.npy'):
        out[f] = {'': show(np.load(f))}
    elif kind == 'numpy':
        with np.load(f) as z:
            out[f] = {k: show(z[k]) for k in z.files}
    elif kind == 'h5py':
        import h5py
        d = {}
        with h5py.File(f, 'r') as h:
            h.visititems(lambda name, obj: d.__setitem__(name, show(obj[()])) if isinstance(obj, h5py.Dataset) else None)
        out[f] = d
    elif kind == 'torch':
        import torch
        v = torch.load(f, weights_only=True)
        def t(x):
            x = x.contiguous()
            return [str(x.dtype).replace('torch.', ''), list(x.shape), hashlib.sha256(x.view(torch.uint8).numpy().tobytes() if x.numel() else b'').hexdigest()]
        out[f] = {'': t(v)} if isinstance(v, torch.Tensor) else {k: t(x) for k, x in v.items()}
print(json.dumps(out))
`;

function assertToolSaw(seen: Record<string, Record<string, [string, number[], string]>>, files: Record<string, Expect>, tool: string): void {
  for (const [file, members] of Object.entries(files)) {
    const got = seen[file];
    assert.ok(got, `${tool} did not read ${file}`);
    assert.deepEqual(Object.keys(got).sort(), Object.keys(members).sort(), `${tool}: members of ${file}`);
    for (const [member, dtype] of Object.entries(members)) {
      const [gotDtype, shape, digest] = got[member] as [string, number[], string];
      assert.equal(gotDtype, dtype, `${tool}: dtype of ${file} ${member}`);
      assert.deepEqual(shape, SHAPE, `${tool}: shape of ${file} ${member}`);
      assert.equal(digest, EXPECTED.get(dtype)?.sha, `${tool}: values of ${file} ${member}`);
    }
  }
}

describe('the reference tools read every file written above', () => {
  for (const { label, python } of numpyPythons()) {
    test(`NumPy (${label})`, () => {
      const files = Object.keys(forNumpy);
      assert.ok(files.length > 30);
      assertToolSaw(JSON.parse(runPythonWith(python(), READERS, ['numpy', JSON.stringify(files)])), forNumpy, label);
    });
  }
  test('h5py', () => {
    assert.ok(Object.keys(forH5py).length >= 6);
    assertToolSaw(JSON.parse(runPythonWith(oraclePython(), READERS, ['h5py', JSON.stringify(Object.keys(forH5py))])), forH5py, 'h5py');
  });
  test('PyTorch', () => {
    assert.ok(Object.keys(forTorch).length >= 3);
    assertToolSaw(JSON.parse(runTorch(READERS, ['torch', JSON.stringify(Object.keys(forTorch))])), forTorch, 'torch');
  });
  test('the independent safetensors reader', () => {
    const files = Object.keys(forSafetensors);
    assert.ok(files.length >= 3);
    const seen = pyRead(...files);
    const asShown: Record<string, Record<string, [string, number[], string]>> = {};
    for (const file of files) {
      asShown[file] = Object.fromEntries(Object.entries(seen[file]?.tensors ?? {}).map(([k, t]) => [k, [dtypeFromSafetensors(t.dtype)?.name ?? t.dtype, t.shape, t.sha]]));
    }
    assertToolSaw(asShown, forSafetensors, 'safetensors');
  });
});

test('keras: a Keras 3 .keras archive and a legacy HDF5 model named .keras through loadWeights, ioHandler, CLI inspect/convert/diff', async () => {
  const archive = path.join(dir, 'k3.keras');
  const legacy = path.join(dir, 'legacy.keras');
  const out = JSON.parse(
    runPythonWith(
      oraclePython(),
      `import sys, json, shutil, os
os.environ['KERAS_BACKEND'] = 'tensorflow'
import numpy as np, keras
rng = np.random.default_rng(7)
m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation='relu', name='d1'), keras.layers.Dense(2, name='d2')])
m.set_weights([rng.standard_normal(w.shape).astype(np.float32) for w in m.get_weights()])
m.save(sys.argv[1])
m.save(sys.argv[2] + '.h5')
shutil.move(sys.argv[2] + '.h5', sys.argv[2])
X = rng.standard_normal((3, 4)).astype(np.float32)
print(json.dumps({'x': X.tolist(), 'y': m.predict(X, verbose=0).tolist()}))`,
      [archive, legacy],
    )
      .trim()
      .split('\n')
      .pop() as string,
  ) as { x: number[][]; y: number[][] };
  const close = (got: number[][], where: string): void => got.flat().forEach((v, i) => assert.ok(Math.abs(v - (out.y.flat()[i] as number)) < 1e-4, `${where} ${i}: ${v} vs ${out.y.flat()[i]}`));
  const X = tf.tensor2d(out.x);
  for (const file of [archive, legacy]) {
    const loaded = await tf.loadLayersModel(ioHandler(file));
    close((await (loaded.predict(X) as tf.Tensor).array()) as number[][], `${file} ioHandler`);
    const m = tf.sequential();
    m.add(tf.layers.dense({ units: 3, inputShape: [4], activation: 'relu', name: 'd1' }));
    m.add(tf.layers.dense({ units: 2, name: 'd2' }));
    await loadWeights(m, file);
    close((await (m.predict(X) as tf.Tensor).array()) as number[][], `${file} loadWeights`);
    const shown = cli('inspect', file);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /4 tensors/);
    const st = `${file}.safetensors`;
    const converted = cli('convert', file, st, '--no-fsync');
    assert.equal(converted.code, 0, converted.stderr);
    const diff = cli('diff', file, st);
    assert.equal(diff.code, 0, diff.stdout);
    const seen = pyRead(st)[st];
    assert.deepEqual(Object.values(seen?.tensors ?? {}).map((t) => t.shape).sort(), [[2], [3], [3, 2], [4, 3]]);
  }
});
