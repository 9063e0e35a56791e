/**
 * `tensorio convert model.pt model.safetensors` against Hugging Face's conversion: a state dict
 * torch.save wrote with tied weights, a view, slices and a transposed tensor; the result read
 * by the real `safetensors.torch.load_file` and `safe_open` (the torch environment's own
 * safetensors, the oracle's version, pinned in test/python/requirements-torch.txt), tensors equal to
 * torch.load's and the metadata the one Hugging Face's `_remove_duplicate_names` rule gives,
 * computed there with `safetensors.torch._find_shared_tensors` and `_is_complete`. The read-back
 * check is also called directly, an internal module on purpose (the CLI's only calls pass).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';

import { verifySafetensorsCopy } from '../../../src/formats/torch/to-safetensors.js';
import { expectCode } from '../../expect-code.js';
import { ROOT, runTorch, tempDir } from '../../helpers.js';

const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');
const dir = tempDir('torch-to-safetensors');
const at = (name: string): string => path.join(dir, name);

function cli(...args: string[]): { code: number; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

const SAVE = `
import sys, torch
torch.manual_seed(0)
emb = torch.randn(4, 3)
whole = torch.arange(6.)
halves = torch.arange(10, 16, dtype=torch.int64)
sd = {
  'emb.weight': emb, 'lm_head.weight': emb,           # tied: one storage, both cover it
  'whole': whole, 'part': whole[2:4],                 # a view inside a tensor that covers the storage
  'a': halves[:3], 'b': halves[3:],                   # slices that do not overlap: each its own tensor
  'proj.t': torch.randn(3, 5).t(),                    # transposed, alone: made contiguous
  'h': torch.randn(2, 2).bfloat16(),
}
torch.save(sd, sys.argv[1])
`;

// Reads the converted file(s) with the real safetensors and compares with torch.load, and
// derives the metadata Hugging Face's conversion writes for the same state dict.
const CHECK = `
import sys, json, os
import torch
from safetensors import safe_open
from safetensors.torch import load_file, _find_shared_tensors, _is_complete
src = torch.load(sys.argv[1], weights_only=True)
expected = {'format': 'pt'}
for shared in _find_shared_tensors(src):
    complete = sorted(n for n in shared if _is_complete(src[n]))
    if len(shared) < 2: continue
    for n in sorted(shared):
        if n != complete[0]: expected.setdefault(n, complete[0])
out = sys.argv[2]
if out.endswith('.index.json'):
    index = json.load(open(out))
    files = sorted(set(index['weight_map'].values()))
    paths = [os.path.join(os.path.dirname(out), f) for f in files]
else:
    index, paths = None, [out]
loaded, metas, contiguous = {}, [], True
for p in paths:
    loaded.update(load_file(p))
    with safe_open(p, 'pt') as f:
        metas.append(f.metadata())
equal = {k: torch.equal(src[k].contiguous(), v) for k, v in loaded.items()}
print(json.dumps({'keys': sorted(loaded), 'equal': equal, 'metadata': metas, 'expected': expected,
                  'weight_map': index and sorted(index['weight_map']),
                  'contiguous': all(v.is_contiguous() for v in loaded.values())}))
`;

interface Checked {
  keys: string[];
  equal: Record<string, boolean>;
  metadata: Record<string, string>[];
  expected: Record<string, string>;
  weight_map: string[] | null;
  contiguous: boolean;
}

const check = (pt: string, out: string): Checked => {
  const lines = runTorch(CHECK, [pt, out]).trim().split('\n');
  return JSON.parse(lines[lines.length - 1] as string) as Checked;
};

describe('convert PyTorch to safetensors as Hugging Face does', () => {
  const pt = at('pytorch_model.bin');
  runTorch(SAVE, [pt]);
  const kept = ['a', 'b', 'emb.weight', 'h', 'proj.t', 'whole'];

  test('shared storages written once, the removed names in the metadata with format pt, read by safetensors', () => {
    const out = at('model.safetensors');
    const run = cli('convert', pt, out);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /'lm_head\.weight' shares its storage with 'emb\.weight': written once/);
    assert.match(run.stderr, /'part' shares its storage with 'whole'/);
    const got = check(pt, out);
    assert.deepEqual(got.expected, { format: 'pt', 'lm_head.weight': 'emb.weight', part: 'whole' }, 'the rule, applied by safetensors\' own functions');
    assert.deepEqual(got.metadata, [got.expected]);
    assert.deepEqual(got.keys, kept);
    assert.deepEqual(Object.values(got.equal), kept.map(() => true), JSON.stringify(got.equal));
    assert.equal(got.contiguous, true);
  });

  test('the read-back check names the tensor that differs or is missing', async () => {
    const out = at('model.safetensors');
    const zeros = async (): Promise<{ dtype: 'float32'; shape: number[]; data: Float32Array }> => ({ dtype: 'float32', shape: [6], data: new Float32Array(6) });
    await expectCode(() => verifySafetensorsCopy(out, ['whole'], zeros), 'ERR_BAD_VALUE', /tensor 'whole': its bytes differ from the source/);
    await expectCode(() => verifySafetensorsCopy(out, ['lm_head.weight'], zeros), 'ERR_BAD_VALUE', /tensor 'lm_head\.weight': it is missing/);
    await expectCode(() => verifySafetensorsCopy(out, ['h'], zeros), 'ERR_BAD_VALUE', /tensor 'h': its dtype is bfloat16, not float32/);
  });

  test('--max-shard-size: every shard carries the metadata, the index names every kept tensor', () => {
    const out = at('sharded.safetensors');
    const run = cli('convert', pt, out, '--max-shard-size', '100B');
    assert.equal(run.code, 0, run.stderr);
    const index = fs.readdirSync(dir).find((f) => f.startsWith('sharded') && f.endsWith('.index.json'));
    assert.ok(index, fs.readdirSync(dir).join(', '));
    const got = check(pt, at(index));
    assert.ok(got.metadata.length > 1, 'more than one shard');
    for (const m of got.metadata) assert.deepEqual(m, got.expected);
    assert.deepEqual(got.weight_map, kept);
    assert.deepEqual(Object.values(got.equal), kept.map(() => true));
  });

  test('refused: overlapping views of which none covers the storage; nothing is written', () => {
    const bad = at('views.pt');
    runTorch(`import sys, torch
z = torch.arange(10.)
torch.save({'p': z[0:6], 'q': z[4:10]}, sys.argv[1])`, [bad]);
    const run = cli('convert', bad, at('views.safetensors'));
    assert.notEqual(run.code, 0);
    assert.match(run.stderr, /ERR_INVALID_ARGUMENT: .*'p', 'q' share one storage and none of them covers all of it/);
    assert.equal(fs.existsSync(at('views.safetensors')), false);
  });
});
