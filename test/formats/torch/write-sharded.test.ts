/**
 * Sharded PyTorch checkpoints written by writeTorch's `maxShardSize` (and `tensorio convert
 * --max-shard-size` into a .bin), read by real torch.load(weights_only=True) shard by shard:
 * the transformers names, an index whose weight_map names every tensor, tied weights kept in
 * one shard and still one storage.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';

import { readTorch, writeSafetensors, writeTorch, type NdArray } from '../../../src/index.js';
import { expectCode } from '../../expect-code.js';
import { ROOT, runTorch, tempDir } from '../../helpers.js';

const dir = tempDir('torch-write-sharded');
const at = (name: string): string => path.join(dir, name);
const f32 = (n: number, seed: number): NdArray => ({ dtype: 'float32', shape: [n], data: Float32Array.from({ length: n }, (_, i) => i * 0.5 + seed) });

// Loads every shard the index names with torch.load(weights_only=True) and reports what it holds.
const LOAD = `
import sys, json, os, torch
index = json.load(open(sys.argv[1]))
folder = os.path.dirname(sys.argv[1])
shards, ptr = {}, {}
for f in sorted(set(index['weight_map'].values())):
    sd = torch.load(os.path.join(folder, f), weights_only=True)
    shards[f] = list(sd)
    for k, v in sd.items(): ptr[k] = v.untyped_storage().data_ptr()
    sums = {k: float(v.double().sum()) for k, v in sd.items()}
    shards[f + ':sums'] = sums
print(json.dumps({'index': index, 'shards': shards, 'tied': ptr.get('a') == ptr.get('tie')}))
`;

describe('sharded PyTorch checkpoints written as transformers writes them', () => {
  test('writeTorch maxShardSize: shards in the state dict order by storage size, tied weights together, an index torch can follow', async () => {
    const target = at('pytorch_model.bin');
    const a = f32(100, 1);
    const record = { a, b: f32(100, 2), tie: a, c: f32(100, 3), d: f32(300, 4) };
    await writeTorch(target, record, { maxShardSize: 1000 });
    const names = ['pytorch_model-00001-of-00003.bin', 'pytorch_model-00002-of-00003.bin', 'pytorch_model-00003-of-00003.bin'];
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.startsWith('pytorch_model')).sort(), [...names, 'pytorch_model.bin.index.json']);
    const got = JSON.parse(runTorch(LOAD, [`${target}.index.json`]).trim()) as {
      index: { metadata: { total_size: number }; weight_map: Record<string, string> };
      shards: Record<string, unknown>;
      tied: boolean;
    };
    // A tensor over the limit gets its own shard, placed before the one being filled (huggingface_hub's rule).
    assert.deepEqual(got.index, { metadata: { total_size: 2400 }, weight_map: { a: names[0], b: names[0], c: names[2], d: names[1], tie: names[0] } });
    assert.deepEqual(got.shards[names[0] as string], ['a', 'tie', 'b']);
    assert.deepEqual(got.shards[names[1] as string], ['d']);
    assert.deepEqual(got.shards[names[2] as string], ['c']);
    const sum = (x: NdArray): number => [...(x.data as Float32Array)].reduce((s, v) => s + v, 0);
    assert.deepEqual(got.shards[`${names[0]}:sums`], { a: sum(a), tie: sum(a), b: sum(record.b) });
    assert.equal(got.tied, true, 'the tied weights are one storage in their shard');
    // tensorio reads the sharded checkpoint back through its index.
    const back = (await readTorch(`${target}.index.json`)) as Record<string, NdArray>;
    assert.deepEqual(Object.keys(back).sort(), ['a', 'b', 'c', 'd', 'tie']);
    assert.deepEqual([...(back.d as NdArray).data], [...record.d.data]);

    // Saved again small enough for one file: pytorch_model.bin alone, the earlier shards and index gone.
    await writeTorch(target, { a }, { maxShardSize: '1MB' });
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.startsWith('pytorch_model')), ['pytorch_model.bin']);
  });

  test('refused: a value that is not a flat state dict, a bad size', async () => {
    const target = at('nested.bin');
    await expectCode(() => writeTorch(target, { model: { w: f32(2, 0) } }, { maxShardSize: 100 }), 'ERR_INVALID_ARGUMENT', /'model' is not a tensor/);
    await expectCode(() => writeTorch(target, [f32(2, 0)], { maxShardSize: 100 }), 'ERR_INVALID_ARGUMENT', /not a record or Map of tensors/);
    await expectCode(() => writeTorch(target, { w: f32(2, 0) }, { maxShardSize: 0 }), 'ERR_INVALID_ARGUMENT', /maxShardSize must be a positive/);
    assert.equal(fs.existsSync(target), false);
  });

  test('tensorio convert model.safetensors pytorch_model.bin --max-shard-size', async () => {
    const sub = at('cli');
    fs.mkdirSync(sub);
    const src = path.join(sub, 'model.safetensors');
    await writeSafetensors(src, { x: f32(200, 1), y: f32(200, 2) });
    const run = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'cli', 'main.js'), 'convert', src, path.join(sub, 'pytorch_model.bin'), '--max-shard-size', '1KB'], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stderr, /wrote 3 files: .*pytorch_model-00001-of-00002\.bin, .*pytorch_model-00002-of-00002\.bin, .*pytorch_model\.bin\.index\.json/);
    const got = JSON.parse(runTorch(LOAD, [path.join(sub, 'pytorch_model.bin.index.json')]).trim()) as { index: { weight_map: Record<string, string> } };
    assert.deepEqual(got.index.weight_map, { x: 'pytorch_model-00001-of-00002.bin', y: 'pytorch_model-00002-of-00002.bin' });
  });
});
