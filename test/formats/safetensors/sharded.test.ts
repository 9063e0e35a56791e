/**
 * Sharded safetensors checkpoints (src/formats/safetensors/sharded.ts and the index half of
 * open.ts): which path opens an index, shards that are missing or broken, a tensor that two
 * shards hold, a weight_map naming a tensor its shard does not hold, and hostile index JSON.
 * Through the public entry, except the split into shards and the shard-size parser, which are
 * internal (imported from sharded.ts on purpose: the writer is their only caller).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

import { openSafetensors, openSafetensorsSync, readSafetensors, readSafetensorsSync, writeSafetensorsSync, type NdArray, type SafetensorsFile } from '../../../src/index.js';
import { parseShardSize, planShards } from '../../../src/formats/safetensors/sharded.js';
import { expectCode } from '../../expect-code.js';
import { tempDir } from '../../helpers.js';

const dir = tempDir('safetensors-sharded');
let counter = 0;
function folder(): string {
  const sub = path.join(dir, String(counter++));
  fs.mkdirSync(sub);
  return sub;
}

const u8 = (...values: number[]): NdArray => ({ dtype: 'uint8', shape: [values.length], data: new Uint8Array(values) });

/** A folder with shards s1 (a = [1], b = [2]) and s2 (a = [3], c = [4]), and an index writer. */
function checkpoint(): { at: string; index: (content: unknown) => string } {
  const at = folder();
  writeSafetensorsSync(path.join(at, 's1.safetensors'), { a: u8(1), b: u8(2) });
  writeSafetensorsSync(path.join(at, 's2.safetensors'), { a: u8(3), c: u8(4) });
  const index = (content: unknown): string => {
    const file = path.join(at, 'model.safetensors.index.json');
    fs.writeFileSync(file, typeof content === 'string' || content instanceof Uint8Array ? content : JSON.stringify(content));
    return file;
  };
  return { at, index };
}

/** Both opens, for a test that each must pass alike. */
const OPENS: Array<[string, (file: string) => Promise<SafetensorsFile> | SafetensorsFile]> = [
  ['async', (file) => openSafetensors(file)],
  ['sync', (file) => openSafetensorsSync(file)],
];

/** Open descriptors of this process (Linux), to see that a failed open leaks none. */
function openFds(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

test('shards split as huggingface_hub splits them', () => {
  assert.deepEqual(planShards([['a', 6], ['b', 6], ['c', 2], ['d', 6], ['e', 2], ['f', 2]], 10), [['a'], ['b', 'c'], ['d', 'e', 'f']]);
  // A tensor over the limit takes a shard of its own, placed before the one being filled.
  assert.deepEqual(planShards([['a', 2], ['big', 20], ['b', 2]], 10), [['big'], ['a', 'b']]);
  assert.equal(parseShardSize('5GB'), 5e9);
  assert.equal(parseShardSize('2GiB'), 2 * 2 ** 30);
  assert.equal(parseShardSize(1000), 1000);
});

test('index resolution: a .json path, the sibling index of a missing file, never past an existing file', async () => {
  const { at, index } = checkpoint();
  const indexPath = index({ weight_map: { b: 's1.safetensors', c: 's2.safetensors' } });
  const missing = path.join(at, 'model.safetensors');
  for (const [how, open] of OPENS) {
    for (const target of [indexPath, missing]) {
      const view = await open(target);
      assert.deepEqual(view.keys(), ['b', 'c'], `${how} ${target}`);
      assert.equal(view.path, target);
      assert.deepEqual(view.files, [path.join(at, 's1.safetensors'), path.join(at, 's2.safetensors')]);
      view.close();
    }
    // X.safetensors exists: it is the file opened, whatever index lies beside it.
    fs.copyFileSync(path.join(at, 's1.safetensors'), missing);
    const plain = await open(missing);
    assert.equal(plain.index, undefined, how);
    assert.deepEqual(plain.keys(), ['a', 'b']);
    plain.close();
    fs.unlinkSync(missing);
    // Neither the file nor an index: the error names the file asked for.
    const nothing = path.join(at, 'none.safetensors');
    const error = await expectCode(() => open(nothing), 'ERR_NOT_FOUND');
    assert.equal(error.path, nothing);
    await expectCode(() => open(path.join(at, 'none.json')), 'ERR_NOT_FOUND');
  }
  const eager = await readSafetensors(missing);
  assert.deepEqual(Object.keys(eager.tensors), ['b', 'c']);
  assert.deepEqual([...readSafetensorsSync(indexPath).tensors.c!.data], [4]);
});

test('a missing or broken shard fails the open, names the shard and leaves no descriptor open', async () => {
  const { at, index } = checkpoint();
  fs.writeFileSync(path.join(at, 'bad.safetensors'), 'xx');
  for (const [how, open] of OPENS) {
    for (const [shard, code] of [['gone.safetensors', 'ERR_NOT_FOUND'], ['bad.safetensors', 'ERR_TRUNCATED']] as const) {
      const file = index({ weight_map: { a: 's1.safetensors', z: shard, c: 's2.safetensors' } });
      const before = openFds();
      const error = await expectCode(() => open(file), code);
      assert.equal(error.path, path.join(at, shard), how);
      assert.equal(openFds(), before, `${how}: the shards that opened are closed again`);
    }
  }
});

test('a tensor two shards hold is read from the shard the weight_map names (the last duplicate key, as Python json)', async () => {
  const { at, index } = checkpoint();
  // JSON.parse, like Python's json, keeps the last value of a duplicated key.
  const file = index('{"weight_map":{"a":"s1.safetensors","b":"s1.safetensors","c":"s2.safetensors","a":"s2.safetensors"}}');
  for (const [how, open] of OPENS) {
    const view = await open(file);
    assert.deepEqual(view.keys(), ['a', 'b', 'c'], how);
    assert.equal(view.info('a').file, path.join(at, 's2.safetensors'));
    assert.deepEqual([...view.getSync('a').data], [3]);
    assert.deepEqual([...(await view.get('a')).data], [3]);
    // Each name once, in its own shard's data order, shards in the index's order.
    assert.deepEqual(view.offsetKeys(), ['a', 'c', 'b']);
    view.close();
  }
  const all = await readSafetensors(file);
  assert.deepEqual(Object.entries(all.tensors).map(([name, array]) => [name, [...array.data]]), [['a', [3]], ['b', [2]], ['c', [4]]]);
  // A tensor a shard holds but the weight_map does not list is not part of the checkpoint.
  const partial = await openSafetensors(index({ weight_map: { a: 's1.safetensors' } }));
  assert.deepEqual(partial.keys(), ['a']);
  assert.equal(partial.has('b'), false);
  partial.close();
});

test('a weight_map naming a tensor its shard does not hold is refused, naming both', async () => {
  const { index } = checkpoint();
  for (const [how, open] of OPENS) {
    for (const name of ['zz', 'c', '__proto__', '__metadata__']) {
      const file = index(`{"weight_map":{"a":"s1.safetensors",${JSON.stringify(name)}:"s1.safetensors"}}`);
      const before = openFds();
      const error = await expectCode(() => open(file), 'ERR_BAD_HEADER', new RegExp(`tensor '${name}' in 's1.safetensors', which does not hold it`));
      assert.equal(error.path, file, how);
      assert.equal(openFds(), before, `${how}: the shards are closed again`);
    }
  }
});

test('hostile index JSON is refused with ERR_BAD_HEADER or ERR_HEADER_TOO_LARGE, never followed outside the folder', async () => {
  const { at, index } = checkpoint();
  const refused: Array<[string, unknown, RegExp]> = [
    ['not UTF-8', new Uint8Array([0x7b, 0xff, 0x7d]), /not UTF-8 JSON/],
    ['not JSON', '{"weight_map":', /not UTF-8 JSON/],
    ['null', 'null', /expected a JSON object/],
    ['an array', '[]', /expected a JSON object/],
    ['no weight_map', { metadata: {} }, /'weight_map' object/],
    ['weight_map an array', { weight_map: ['s1.safetensors'] }, /'weight_map' object/],
    ['deeply nested', `{"weight_map":${'['.repeat(100_000)}${']'.repeat(100_000)}}`, /'weight_map' object/],
    ['metadata not an object', { metadata: [], weight_map: {} }, /'metadata' must be an object/],
    ['a shard name not a string', { weight_map: { a: 5 } }, /weight_map\['a'\] must be a file name/],
    ['a parent path', { weight_map: { a: '../s1.safetensors' } }, /not a file inside the index's folder/],
    ['a Windows parent path', { weight_map: { a: '..\\..\\etc\\passwd' } }, /not a file inside/],
    ['an absolute path', { weight_map: { a: path.join(at, 's1.safetensors') } }, /not a file inside/],
    ['an empty name', { weight_map: { a: '' } }, /not a file inside/],
    ['a NUL byte', { weight_map: { a: 's1.safetensors\u0000' } }, /not a file inside/],
  ];
  for (const [how, open] of OPENS) {
    for (const [what, content, message] of refused) {
      const file = index(content);
      const error = await expectCode(() => open(file), 'ERR_BAD_HEADER', message);
      assert.equal(error.path, file, `${how}: ${what}`);
    }
    // The folder itself is not a shard.
    await expectCode(() => open(index({ weight_map: { a: '.' } })), 'ERR_IS_DIRECTORY');
    // A path that stays inside the folder is followed.
    const inside = await open(index({ weight_map: { a: 'sub/../s1.safetensors' } }));
    assert.deepEqual([...inside.getSync('a').data], [1]);
    inside.close();
  }
  // Sized before it is read: an index over 100 MB is refused without reading it (a sparse file).
  const big = path.join(at, 'big.index.json');
  fs.writeFileSync(big, '');
  fs.truncateSync(big, 100_000_001);
  for (const [, open] of OPENS) await expectCode(() => open(big), 'ERR_HEADER_TOO_LARGE', /100000001 bytes/);
  // A total_size that is not a byte count is kept as written and not believed.
  const odd = await openSafetensors(index({ metadata: { total_size: -1 }, weight_map: { a: 's1.safetensors' } }));
  assert.equal(odd.index?.totalSize, undefined);
  assert.deepEqual(odd.index?.metadata, { total_size: -1 });
  odd.close();
});
