/**
 * Sharded PyTorch checkpoints (`pytorch_model.bin.index.json`) written by real PyTorch the way
 * `transformers`' save_pretrained(safe_serialization=False) writes them: one torch.save per
 * shard, the index as `json.dumps(index, indent=2, sort_keys=True) + "\n"`. Read whole, lazily
 * and through `load`; indexes that lie about their shards are typed errors.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';

import { load, openTorch, openTorchSync, readTorch, readTorchSync, save, type LoadedArray, type NdArray, type TorchValue } from '../../../src/index.js';
import { expectCode } from '../../expect-code.js';
import { runTorch, tempDir } from '../../helpers.js';

const dir = tempDir('torch-sharded');

const hex = (a: NdArray): string => Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength).toString('hex');
const rec = (v: TorchValue | undefined): Record<string, TorchValue> => v as Record<string, TorchValue>;

// The split follows huggingface_hub's split_state_dict_into_shards_factory: tensors in order, a
// new shard when the next storage would push the current one over the limit, a tensor whose
// storage is already placed (tied weights) goes with it; total_size counts each storage once.
// File names are transformers' `pytorch_model{suffix}.bin` with suffix `-00001-of-00003`.
const SAVE_SHARDED = `
import torch, json, sys, os
out, legacy = sys.argv[1], sys.argv[2] == 'legacy'
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)
emb = torch.randn(50, 16)
sd = {'model.embed.weight': emb, 'model.l0.weight': torch.randn(16, 16), 'model.l0.bias': torch.randn(16),
      'model.l1.weight': torch.randn(16, 16).half(), 'model.l1.bias': torch.zeros(16, dtype=torch.bfloat16),
      'lm_head.weight': emb, 'model.l2.weight': torch.randn(16, 8).t(), 'steps': torch.tensor(7)}
max_shard = 1100
shards, cur, size, total, placed = [], {}, 0, 0, {}
for name, t in sd.items():
    sid = (t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
    if sid in placed:
        placed[sid][name] = t
        continue
    n = t.untyped_storage().nbytes()
    if size + n > max_shard and cur:
        shards.append(cur); cur, size = {}, 0
    cur[name] = t; size += n; total += n; placed[sid] = cur
shards.append(cur)
weight_map = {}
for i, shard in enumerate(shards):
    fname = 'pytorch_model-%05d-of-%05d.bin' % (i + 1, len(shards))
    torch.save(shard, os.path.join(out, fname), _use_new_zipfile_serialization=not legacy)
    for k in shard: weight_map[k] = fname
index = {'metadata': {'total_size': total}, 'weight_map': weight_map}
with open(os.path.join(out, 'pytorch_model.bin.index.json'), 'w', encoding='utf-8') as f:
    f.write(json.dumps(index, indent=2, sort_keys=True) + '\\n')
def describe(t):
    flat = t.contiguous().reshape(-1)
    return {'dtype': str(t.dtype).replace('torch.', ''), 'shape': list(t.shape), 'hex': flat.view(torch.uint8).numpy().tobytes().hex()}
print(json.dumps({'shards': len(shards), 'tensors': {k: describe(v) for k, v in sd.items()}}))
`;

type Saved = { shards: number; tensors: Record<string, { dtype: string; shape: number[]; hex: string }> };

function saveSharded(folder: string, format: 'zip' | 'legacy'): Saved {
  const lines = runTorch(SAVE_SHARDED, [folder, format]).trim().split('\n');
  return JSON.parse(lines[lines.length - 1] ?? 'null') as Saved;
}

describe('sharded checkpoints written as transformers writes them', () => {
  for (const format of ['zip', 'legacy'] as const) {
    test(`${format} shards: readTorch, openTorch and load of the index`, async () => {
      const folder = path.join(dir, format);
      const saved = saveSharded(folder, format);
      assert.ok(saved.shards >= 3, `the script wrote ${saved.shards} shards`);
      const index = path.join(folder, 'pytorch_model.bin.index.json');
      const names = Object.keys(saved.tensors).sort();
      for (const mmap of [false, true]) {
        const whole = rec(await readTorch(index, { mmap }));
        assert.deepEqual(Object.keys(whole), names, 'the index order (transformers sorts it)');
        for (const [name, want] of Object.entries(saved.tensors)) {
          const a = whole[name] as LoadedArray;
          assert.equal(a.dtype, want.dtype, name);
          assert.deepEqual(a.shape, want.shape, name);
          assert.equal(hex(a), want.hex, `${name} (mmap ${mmap})`);
        }
        // Tied weights live in one shard and share its storage's memory.
        assert.equal((whole['lm_head.weight'] as LoadedArray).data.buffer, (whole['model.embed.weight'] as LoadedArray).data.buffer);
        const sync = rec(readTorchSync(index, { mmap }));
        assert.deepEqual(Object.keys(sync), names);
        for (const name of names) assert.equal(hex(sync[name] as LoadedArray), saved.tensors[name]?.hex, `${name} (sync, mmap ${mmap})`);
        assert.equal((sync['lm_head.weight'] as LoadedArray).data.buffer, (sync['model.embed.weight'] as LoadedArray).data.buffer);
      }
      const lazy = await openTorch(index);
      assert.equal(lazy.format, 'sharded');
      assert.equal(lazy.byteOrder, 'little');
      assert.deepEqual(lazy.keys(), names);
      assert.deepEqual(lazy.files.map((f) => path.basename(f)), Array.from({ length: saved.shards }, (_, i) => `pytorch_model-${String(i + 1).padStart(5, '0')}-of-${String(saved.shards).padStart(5, '0')}.bin`));
      const weightMap = (JSON.parse(fs.readFileSync(index, 'utf8')) as { weight_map: Record<string, string> }).weight_map;
      for (const name of names) {
        const info = lazy.info(name);
        assert.equal(path.basename(info.file), weightMap[name], name);
        assert.deepEqual(info.shape, saved.tensors[name]?.shape, name);
      }
      assert.equal(lazy.info('model.l2.weight').contiguous, false);
      assert.equal(hex(await lazy.get('model.l1.weight')), saved.tensors['model.l1.weight']?.hex);
      await expectCode(() => lazy.info('nope'), 'ERR_NOT_FOUND_IN_ARCHIVE', /no tensor 'nope'/);
      lazy.close();
      await expectCode(() => lazy.get('steps'), 'ERR_CLOSED');
      const loaded = (await load(index)) as unknown as Record<string, LoadedArray>;
      assert.equal(hex(loaded['model.l0.bias'] as LoadedArray), saved.tensors['model.l0.bias']?.hex);
    });
  }

  test('an index that lies about its shards is refused, naming the tensor and the shard', async () => {
    const folder = path.join(dir, 'hostile');
    saveSharded(folder, 'zip');
    const index = JSON.parse(fs.readFileSync(path.join(folder, 'pytorch_model.bin.index.json'), 'utf8')) as { metadata: unknown; weight_map: Record<string, string> };
    let n = 0;
    const withMap = (change: (map: Record<string, string>) => void): string => {
      const map = { ...index.weight_map };
      change(map);
      const target = path.join(folder, `case${n++}.bin.index.json`);
      fs.writeFileSync(target, JSON.stringify({ metadata: index.metadata, weight_map: map }));
      return target;
    };
    const first = index.weight_map['steps'] as string;
    const other = Object.values(index.weight_map).find((f) => f !== first) as string;
    // Out of the index's folder: parent paths and absolute paths, before any file is opened.
    await expectCode(() => openTorch(withMap((m) => (m['steps'] = `../${first}`))), 'ERR_BAD_HEADER', /not a file inside the index's folder/);
    await expectCode(() => openTorch(withMap((m) => (m['steps'] = `sub/../../${first}`))), 'ERR_BAD_HEADER', /not a file inside/);
    await expectCode(() => openTorch(withMap((m) => (m['steps'] = path.join(folder, first)))), 'ERR_BAD_HEADER', /not a file inside/);
    // A shard file that is not there, named with the tensors it should hold.
    await expectCode(() => openTorch(withMap((m) => (m['steps'] = 'pytorch_model-00009-of-00009.bin'))), 'ERR_NOT_FOUND', /'steps' in shard 'pytorch_model-00009-of-00009\.bin', and there is no such file/);
    // A tensor put in a shard that does not hold it; a shard tensor the index leaves out.
    const lying = withMap((m) => (m['steps'] = other));
    await expectCode(() => openTorchSync(lying), 'ERR_BAD_HEADER', /puts 'steps' in shard/);
    await expectCode(() => openTorchSync(withMap((m) => (m['steps'] = '../x.bin'))), 'ERR_BAD_HEADER', /not a file inside/);
    await expectCode(() => openTorchSync(withMap((m) => (m['steps'] = 'gone.bin'))), 'ERR_NOT_FOUND', /'steps' in shard 'gone\.bin'/);
    await expectCode(() => openTorch(lying), 'ERR_BAD_HEADER', new RegExp(`puts 'steps' in shard '${other.replace(/[.]/g, '\\.')}', which does not hold it`));
    await expectCode(() => openTorch(withMap((m) => (m['ghost'] = first))), 'ERR_BAD_HEADER', /'ghost'/);
    await expectCode(() => readTorch(withMap((m) => delete m['steps'])), 'ERR_BAD_HEADER', /holds 'steps', which the index does not list/);
    const broken = path.join(folder, 'broken.bin.index.json');
    fs.writeFileSync(broken, '{"weight_map": ');
    await expectCode(() => load(broken), 'ERR_BAD_HEADER', /malformed PyTorch index: not UTF-8 JSON/);
    fs.writeFileSync(broken, '{"weight_map": {"a": 3}}');
    await expectCode(() => openTorch(broken), 'ERR_BAD_HEADER', /weight_map\['a'\] must be a file name/);
    await expectCode(() => save(path.join(folder, 'out.bin.index.json'), { a: { dtype: 'float32', shape: [1], data: new Float32Array(1) } }), 'ERR_INVALID_ARGUMENT', /sharded/);
  });
});
