/**
 * Library arguments: unknown options refused at every public function that takes an options
 * object (ERR_INVALID_ARGUMENT naming the function, the option, the closest known one and the
 * list); Uint8ClampedArray data as uint8; arrays over a SharedArrayBuffer written by every
 * writer. Run on both paths (the addon's and, with TENSORIO_NO_NATIVE=1, the TypeScript one).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

import * as tio from '../src/index.js';
import * as tfio from '../src/tfjs/index.js';
import { expectCode } from './expect-code.js';
import { tempDir } from './helpers.js';

test('a misspelled option is ERR_INVALID_ARGUMENT naming the function, the closest option and the known ones', async () => {
  const dir = tempDir('options');
  const file = (name: string) => path.join(dir, name);
  const x = tio.ones([2]);
  await tio.writeNpy(file('x.npy'), x);
  await tio.writeNpz(file('x.npz'), { x });
  await tio.writeSafetensors(file('x.safetensors'), { x });
  await tio.writeH5(file('x.h5'), { x });
  await tio.writeTorch(file('x.pt'), { x });
  const bad = { allowPickel: true } as never;
  const cases: [string, () => unknown, RegExp][] = [
    ['readNpy', () => tio.readNpy(file('x.npy'), bad), /mmap, maxHeaderSize/],
    ['readNpySync', () => tio.readNpySync(file('x.npy'), bad), /mmap, maxHeaderSize/],
    ['writeNpy', () => tio.writeNpy(file('y.npy'), x, bad), /fsync, directIo/],
    ['writeNpySync', () => tio.writeNpySync(file('y.npy'), x, bad), /fsync, directIo/],
    ['openNpy', () => tio.openNpy(file('x.npy'), { mode: 'r+', allowPickel: true } as never), /mode/],
    ['readNpz', () => tio.readNpz(file('x.npz'), bad), /did you mean 'allowPickle'\?/],
    ['readNpzSync', () => tio.readNpzSync(file('x.npz'), bad), /did you mean 'allowPickle'\?/],
    ['openNpz', () => tio.openNpz(file('x.npz'), bad), /did you mean 'allowPickle'\?/],
    ['writeNpz', () => tio.writeNpz(file('y.npz'), { x }, bad), /compress/],
    ['readSafetensors', () => tio.readSafetensors(file('x.safetensors'), bad), /known options: mmap$/],
    ['readSafetensorsSync', () => tio.readSafetensorsSync(file('x.safetensors'), bad), /mmap/],
    ['openSafetensors', () => tio.openSafetensors(file('x.safetensors'), bad), /mmap/],
    ['openSafetensorsSync', () => tio.openSafetensorsSync(file('x.safetensors'), bad), /mmap/],
    ['writeSafetensors', () => tio.writeSafetensors(file('y.safetensors'), { x }, bad), /maxShardSize/],
    ['writeSafetensorsSync', () => tio.writeSafetensorsSync(file('y.safetensors'), { x }, bad), /maxShardSize/],
    ['readH5', () => tio.readH5(file('x.h5'), bad), /h5wasmTimeoutMs/],
    ['readH5Sync', () => tio.readH5Sync(file('x.h5'), bad), /h5wasmTimeoutMs/],
    ['openH5', () => tio.openH5(file('x.h5'), bad), /h5wasm/],
    ['openH5Sync', () => tio.openH5Sync(file('x.h5'), bad), /h5wasm/],
    ['writeH5', () => tio.writeH5(file('y.h5'), { x }, bad), /heapWriteLimit/],
    ['readKerasWeights', () => tio.readKerasWeights(file('x.h5'), bad), /mmap/],
    ['readKerasWeightsSync', () => tio.readKerasWeightsSync(file('x.h5'), bad), /mmap/],
    ['writeKerasWeights', () => tio.writeKerasWeights(file('y.h5'), [], bad), /kerasVersion/],
    ['readTorch', () => tio.readTorch(file('x.pt'), bad), /maxPickleSize/],
    ['openTorch', () => tio.openTorch(file('x.pt'), bad), /maxPickleSize/],
    ['writeTorch', () => tio.writeTorch(file('y.pt'), { x }, bad), /fsync/],
    ['save', () => tio.save(file('y.npz'), [x], bad), /compress/],
    ['load', () => tio.load(file('x.npy'), bad), /did you mean 'allowPickle'\?.*maxPickleSize/],
    // tensorio/tfjs: the check comes first, so the model argument is never touched.
    ['saveWeights', () => tfio.saveWeights({} as never, file('w.h5'), bad), /kerasVersion/],
    ['loadWeights', () => tfio.loadWeights({} as never, file('w.h5'), bad), /byName/],
    ['ioHandler', () => tfio.ioHandler(file('m.h5'), bad), /quantize/],
    ['save', () => tfio.save(file('t.npz'), [], bad), /compress/],
    ['load', () => tfio.load(file('x.npy'), bad), /convert/],
  ];
  for (const [fn, action, known] of cases) {
    const error = await expectCode(action, 'ERR_INVALID_ARGUMENT', new RegExp(`${fn}: unknown option 'allowPickel'`));
    assert.match(error.message, /known options: /, fn);
    assert.match(error.message, known, fn);
  }
  // Files the refused calls would have written do not exist.
  for (const name of ['y.npy', 'y.npz', 'y.safetensors', 'y.h5', 'y.pt', 'w.h5', 't.npz']) assert.ok(!fs.existsSync(file(name)), name);
});

test('options: undefined values are accepted, and options must be an object', async () => {
  const dir = tempDir('options');
  const file = path.join(dir, 'x.npy');
  await tio.writeNpy(file, tio.ones([2]), { fsync: undefined, directIo: undefined });
  assert.deepEqual([...(await tio.readNpy(file, { mmap: undefined })).data], [1, 1]);
  assert.deepEqual([...(tio.readNpySync(file, {})).data], [1, 1]);
  await expectCode(() => tio.readNpy(file, 'mmap' as never), 'ERR_INVALID_ARGUMENT', /readNpy: options must be an object, not string/);
  await expectCode(() => tio.readNpy(file, null as never), 'ERR_INVALID_ARGUMENT', /options must be an object, not null/);
  // Options one call forwards to another are not refused by the inner one.
  await tio.save(path.join(dir, 'y.npy'), tio.ones([2]), { compress: false, fsync: false });
  await tio.save(path.join(dir, 'y.npz'), [tio.ones([2])], { compress: true });
  assert.equal(((await tio.load(path.join(dir, 'y.npz'), { maxPickleSize: 100, mmap: false })) as unknown as tio.LoadedArray[]).length, 1);
});

test('a Uint8ClampedArray is uint8 data', async () => {
  const dir = tempDir('clamped');
  const clamped = new Uint8ClampedArray([0, 7, 255, 128]);
  const a = tio.ndarray(clamped, [2, 2]);
  assert.equal(a.dtype, 'uint8');
  assert.ok(a.data instanceof Uint8Array);
  assert.equal(a.data.buffer, clamped.buffer, 'a view of the same bytes, not a copy');
  // Also as the data of a hand-made NdArray, in every writer.
  const raw = { dtype: 'uint8' as const, shape: [4], data: clamped as unknown as Uint8Array };
  await tio.writeNpy(path.join(dir, 'a.npy'), raw);
  tio.writeNpySync(path.join(dir, 'b.npy'), a);
  await tio.writeSafetensors(path.join(dir, 'c.safetensors'), { raw });
  await tio.writeNpz(path.join(dir, 'd.npz'), { raw });
  assert.deepEqual([...(await tio.readNpy(path.join(dir, 'a.npy'))).data], [0, 7, 255, 128]);
  assert.deepEqual((await tio.readNpy(path.join(dir, 'b.npy'))).shape, [2, 2]);
  assert.deepEqual([...(await tio.readSafetensors(path.join(dir, 'c.safetensors'))).tensors.raw!.data], [0, 7, 255, 128]);
  assert.deepEqual([...(await tio.readNpz(path.join(dir, 'd.npz'))).raw!.data], [0, 7, 255, 128]);
  // Other dtypes still want their own storage type.
  await expectCode(() => tio.writeNpy(path.join(dir, 'e.npy'), { dtype: 'int8', shape: [4], data: clamped as never }), 'ERR_INVALID_ARGUMENT', /int8 data must be a Int8Array, got Uint8ClampedArray/);
});

test('arrays over a SharedArrayBuffer are written by every writer', async () => {
  const dir = tempDir('sab');
  const shared = new SharedArrayBuffer(64);
  const floats = new Float32Array(shared, 16, 4);
  floats.set([1.5, -2, 3.25, 4]);
  const x = tio.ndarray(floats);
  const bytes = tio.ndarray(new Uint8Array(shared, 0, 3));
  const expected = [1.5, -2, 3.25, 4];
  await tio.writeNpy(path.join(dir, 'a.npy'), x);
  tio.writeNpySync(path.join(dir, 'b.npy'), x);
  await tio.writeSafetensors(path.join(dir, 'c.safetensors'), { x, bytes });
  tio.writeSafetensorsSync(path.join(dir, 'd.safetensors'), { x });
  await tio.writeNpz(path.join(dir, 'e.npz'), { x });
  await tio.writeTorch(path.join(dir, 'f.pt'), { x });
  await tio.save(path.join(dir, 'g.npy'), [x, bytes]);
  for (const name of ['a.npy', 'b.npy']) assert.deepEqual([...(await tio.readNpy(path.join(dir, name))).data], expected, name);
  for (const name of ['c.safetensors', 'd.safetensors']) assert.deepEqual([...(await tio.readSafetensors(path.join(dir, name))).tensors.x!.data], expected, name);
  assert.deepEqual([...(await tio.readNpz(path.join(dir, 'e.npz'))).x!.data], expected);
  assert.deepEqual([...((await tio.readTorch(path.join(dir, 'f.pt'))) as Record<string, tio.NdArray>).x!.data], expected);
  const pickled = (await tio.load(path.join(dir, 'g.npy'), { allowPickle: true })) as unknown as tio.NdArray[];
  assert.deepEqual([...pickled[0]!.data], expected);
  // The same bytes as from an ordinary buffer.
  await tio.writeNpy(path.join(dir, 'plain.npy'), tio.ndarray(new Float32Array(expected)));
  assert.deepEqual(fs.readFileSync(path.join(dir, 'a.npy')), fs.readFileSync(path.join(dir, 'plain.npy')));
});
