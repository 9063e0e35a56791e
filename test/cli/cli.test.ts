/**
 * The tensorio command line, run as users run it (a child process of the built CLI). Imports the
 * internal src/cli/progress.ts on purpose, for the progress line's own test.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';

import { load, ndarray, readNpy, writeNpy } from '../../src/index.js';
import { ROOT, runOracle, runPython, runTorch, tempDir } from '../helpers.js';

const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');
const dir = tempDir('cli');

// Files written by Debian's NumPy and the oracle's safetensors; other tools' real files: test/fixtures/cli.test.ts.
const npyDir = path.join(dir, 'numpy');
fs.mkdirSync(npyDir);
runPython(
  `import sys, os, numpy as np
d = sys.argv[1]
np.save(os.path.join(d, 'example_f64_big_endian_fortran.npy'), np.asfortranarray(np.arange(24, dtype='>f8').reshape(2, 3, 4)))
np.save(os.path.join(d, '4x4x4x4x4-float32.npy'), np.ones((4, 4, 4, 4, 4), '<f4'))
np.save(os.path.join(d, '10-int8.npy'), np.arange(10, dtype='i1'))
np.savez_compressed(os.path.join(d, 'py3-arr-savez-compressed.npz'), x=np.arange(12, dtype='<i8').reshape(4, 3), foo=np.array(['abc', 'de']))`,
  [npyDir],
);
const generated = (name: string): string => path.join(npyDir, name);

function cli(...args: string[]): { code: number; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

describe('tensorio inspect', () => {
  test('shows format, version, the tensor table and totals without reading data', () => {
    const { code, stdout } = cli('inspect', generated('example_f64_big_endian_fortran.npy'));
    assert.equal(code, 0);
    assert.match(stdout, /: npy 1\.0, 1 tensor/);
    assert.match(stdout, /example_f64_big_endian_fortran\s+float64\s+\(2, 3, 4\)\s+192 B\s+128\s+no\s+big-endian, fortran order/);
    assert.match(stdout, /total: 1 tensor, 192 B \(192 bytes\)/);
  });

  test('--json for scripts', () => {
    const { code, stdout } = cli('inspect', '--json', generated('4x4x4x4x4-float32.npy'));
    assert.equal(code, 0);
    const summary = JSON.parse(stdout) as { format: string; tensors: Array<{ dtype: string; shape: number[]; byteOffset: number; mappable: boolean }> };
    assert.equal(summary.format, 'npy');
    assert.deepEqual(summary.tensors[0], { name: '4x4x4x4x4-float32', dtype: 'float32', shape: [4, 4, 4, 4, 4], byteLength: 4096, byteOffset: 128, mappable: true });
  });

  test('a corrupted file is one line with the file and the code, exit code 2', () => {
    const bad = path.join(dir, 'bad.npy');
    const bytes = fs.readFileSync(generated('10-int8.npy'));
    fs.writeFileSync(bad, bytes.subarray(0, 100));
    const { code, stderr, stdout } = cli('inspect', bad);
    assert.equal(code, 2);
    assert.equal(stdout, '');
    assert.equal(stderr.trim().split('\n').length, 1);
    assert.match(stderr, /^tensorio: ERR_TRUNCATED: .*bad\.npy: /);
  });
});

describe('tensorio convert and diff', () => {
  test('converts with a cast, and diff tells equal from different', async () => {
    const src = path.join(dir, 'weights.npy');
    await writeNpy(src, ndarray(new Float64Array([1, 2.5, -3, 1e-3]), [2, 2]));
    const dst = path.join(dir, 'weights32.npy');
    const converted = cli('convert', src, dst, '--dtype', 'float32', '--no-fsync');
    assert.equal(converted.code, 0, converted.stderr);
    assert.match(converted.stderr, /100% .*wrote/s);
    const loaded = await readNpy(dst);
    assert.equal(loaded.dtype, 'float32');
    assert.deepEqual([...(loaded.data as Float32Array)], [1, 2.5, -3, Math.fround(1e-3)]);

    assert.equal(cli('diff', src, dst).code, 1, 'float64 against float32 differs by dtype');
    assert.equal(cli('diff', src, dst, '--ignore-dtype', '--rtol', '1e-7').code, 0);
    assert.equal(cli('diff', src, dst, '--ignore-dtype').code, 1, '1e-3 is not exact in float32');
    const json = JSON.parse(cli('diff', src, dst, '--ignore-dtype', '--json').stdout) as { equal: boolean; tensors: Array<{ maxAbs: number; mismatched: number }> };
    assert.equal(json.equal, false);
    assert.equal(json.tensors[0]?.mismatched, 1);
    assert.ok((json.tensors[0]?.maxAbs as number) > 0 && (json.tensors[0]?.maxAbs as number) < 1e-10);
  });

  test('diff finds shape differences and NaN equal to NaN', async () => {
    const a = path.join(dir, 'nan-a.npy');
    const b = path.join(dir, 'nan-b.npy');
    const c = path.join(dir, 'nan-c.npy');
    await writeNpy(a, ndarray(new Float32Array([NaN, 1, Infinity])));
    await writeNpy(b, ndarray(new Float32Array([NaN, 1, Infinity])));
    await writeNpy(c, ndarray(new Float32Array([NaN, 1, Infinity]), [3, 1]));
    assert.equal(cli('diff', a, b).code, 0);
    const shape = cli('diff', a, c);
    assert.equal(shape.code, 1);
    assert.match(shape.stdout, /shape differs .* shapes \(3,\) vs \(3, 1\)/);
  });

  test('refusals: one array into .npy from nothing, unknown extensions, bad options', () => {
    assert.equal(cli('convert', generated('10-int8.npy'), path.join(dir, 'x.unknown')).code, 2);
    const badDtype = cli('convert', generated('10-int8.npy'), path.join(dir, 'y.npy'), '--dtype', 'int3');
    assert.equal(badDtype.code, 2);
    assert.match(badDtype.stderr, /--dtype must be one of/);
    assert.equal(cli('diff', 'only-one.npy').code, 2);
    assert.equal(cli('frobnicate').code, 2);
  });
});

describe('safetensors through the CLI', () => {

  test('convert to a sharded checkpoint and back compares equal, tensor by tensor', () => {
    // burn's multi_layer.safetensors layout (9 tensors, one past 4 KB), written by the reference library.
    const src = path.join(dir, 'multi_layer.safetensors');
    runOracle(
      `import sys, numpy as np
from safetensors.numpy import save_file
shapes = {'norm1.num_batches_tracked': (), 'conv1.bias': (4,), 'conv1.weight': (4, 3, 3, 3), 'fc1.bias': (16,), 'fc1.weight': (16, 256),
          'norm1.bias': (4,), 'norm1.running_mean': (4,), 'norm1.running_var': (4,), 'norm1.weight': (4,)}
rng = np.random.default_rng(5)
save_file({k: (np.array(3, np.int64) if s == () else rng.standard_normal(s).astype(np.float32)) for k, s in shapes.items()}, sys.argv[1])`,
      [src],
    );
    const sharded = path.join(dir, 'model.safetensors');
    assert.equal(cli('convert', src, sharded, '--max-shard-size', '4KB', '--no-fsync').code, 0);
    assert.ok(fs.existsSync(path.join(dir, 'model.safetensors.index.json')));
    assert.ok(fs.existsSync(path.join(dir, 'model-00001-of-00002.safetensors')));
    const back = path.join(dir, 'single.safetensors');
    assert.equal(cli('convert', path.join(dir, 'model.safetensors.index.json'), back).code, 0);
    const compared = cli('diff', src, back);
    assert.equal(compared.code, 0, compared.stdout);
    assert.match(compared.stdout, /equal: 9 tensors/);
    const inspected = cli('inspect', path.join(dir, 'model.safetensors.index.json'));
    assert.match(inspected.stdout, /safetensors \(2 shards\), 9 tensors/);
  });

  test('a .npy into .safetensors keeps the array under the file name', async () => {
    const npy = path.join(dir, 'kernel.npy');
    await writeNpy(npy, ndarray(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]));
    const st = path.join(dir, 'kernel.safetensors');
    assert.equal(cli('convert', npy, st).code, 0);
    assert.equal(cli('diff', npy, st).code, 0);
    assert.match(cli('inspect', st).stdout, /kernel\s+float32\s+\(2, 3\)/);
  });
});

describe('npz through the CLI', () => {
  test('inspect a NumPy .npz: members from their headers, and what is not a tensor', () => {
    const { code, stdout } = cli('inspect', generated('py3-arr-savez-compressed.npz'));
    assert.equal(code, 0);
    assert.match(stdout, /x\s+int64\s+\(4, 3\)\s+96 B\s+-\s+no\s+deflated/);
    assert.match(stdout, /not tensors:\n  foo: unsupported dtype '<U3'/);
  });



});

describe('help', () => {
  test('every command has --help', () => {
    for (const command of ['inspect', 'convert', 'diff', 'bench']) {
      const { code, stdout } = cli(command, '--help');
      assert.equal(code, 0);
      assert.match(stdout, new RegExp(`Usage: tensorio ${command}`));
    }
    assert.match(cli('--help').stdout, /Commands:/);
    assert.match(cli('--version').stdout, /^\d+\.\d+\.\d+/);
  });
});

describe('what a user meets first (issue 18)', () => {
  const user = path.join(dir, 'user');
  fs.mkdirSync(user);
  runPython(
    `import sys, os, numpy as np
d = sys.argv[1]
np.save(os.path.join(d, 'obj.npy'), np.array([np.arange(3.0), np.arange(4)], dtype=object))
np.save(os.path.join(d, 'str.npy'), np.asfortranarray(np.array([['ab', 'cde'], ['f', 'g']])))
np.save(os.path.join(d, 'rec.npy'), np.zeros(3, dtype=[('a', '<i4'), ('b', '<f8')]))
np.save(os.path.join(d, 'dict.npy'), {'x': np.arange(4.0), 'y': np.ones((2, 2), np.int32), 'n': 3})
np.savez(os.path.join(d, 'mixed.npz'), a=np.arange(3), s=np.array(['x']))
np.savez(os.path.join(d, 'big.npz'), a=np.arange(3), b=np.arange(2**60, 2**60 + 3))
np.savez(os.path.join(d, 'big1.npz'), a=np.arange(3), b=np.arange(2**60, 2**60 + 3) + np.array([0, 1, 0]))
np.savez(os.path.join(d, 'renamed.npz'), a=np.arange(3), c=np.arange(2**60, 2**60 + 3))`,
    [user],
  );
  const at = (name: string): string => path.join(user, name);

  test('bare tensorio prints the usage and exits 2; -h works everywhere', () => {
    const bare = cli();
    assert.equal(bare.code, 2);
    assert.match(bare.stderr, /^Usage: tensorio <command>/);
    assert.match(cli('-h').stdout, /Commands:/);
    for (const command of ['inspect', 'convert', 'diff']) assert.match(cli(command, '-h').stdout, new RegExp(`Usage: tensorio ${command}`));
  });

  test('errors are one line naming the file and the code: a directory, a missing file, a failed save', () => {
    const folder = cli('inspect', user);
    assert.equal(folder.code, 2);
    assert.equal(folder.stderr, `tensorio: ERR_IS_DIRECTORY: ${user}: is a directory, not a file\n`);
    const missing = cli('inspect', at('nope.npy'));
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^tensorio: ERR_NOT_FOUND: .*nope\.npy: [^\n]*\n$/);
    assert.doesNotMatch(missing.stderr, /ENOENT/);
    const failed = cli('convert', at('big.npz'), path.join(user, 'no-such-folder', 'out.npz'));
    assert.equal(failed.code, 2);
    const last = failed.stderr.trim().split('\n').pop() as string;
    assert.match(last, /^tensorio: ERR_NOT_FOUND: .*no-such-folder\/out\.npz: /);
    assert.doesNotMatch(failed.stderr, /tensorio-tmp|ENOENT/);
  });

  test('inspect shows the header of object, string and structured .npy files', () => {
    for (const [file, descr, shape, order] of [['obj.npy', '\\|O', '\\(2,\\)', 'C'], ['str.npy', '<U3', '\\(2, 2\\)', 'Fortran'], ['rec.npy', "\\[\\('a', '<i4'\\), \\('b', '<f8'\\)\\]", '\\(3,\\)', 'C']] as const) {
      const { code, stdout } = cli('inspect', at(file));
      assert.equal(code, 0, file);
      assert.match(stdout, new RegExp(`header: descr ${descr}, shape ${shape}, ${order} order`), file);
      assert.match(stdout, /0 tensors/);
    }
    assert.match(cli('inspect', at('obj.npy')).stdout, /--allow-pickle/);
  });

  test('--allow-pickle reads the arrays of a pickled dict; convert names what it skips, or fails one line per member', async () => {
    const shown = cli('inspect', at('dict.npy'), '--allow-pickle');
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /x\s+float64\s+\(4,\)/);
    assert.match(shown.stdout, /n: a Python number, not an array/);
    const out = at('dict.npz');
    const refused = cli('convert', at('dict.npy'), out, '--allow-pickle');
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /^tensorio: ERR_UNSUPPORTED_DTYPE: .*dict\.npy: member 'n': /m);
    assert.equal(fs.existsSync(out), false, 'nothing written');
    const skipped = cli('convert', at('dict.npy'), out, '--allow-pickle', '--skip-unsupported');
    assert.equal(skipped.code, 0, skipped.stderr);
    assert.match(skipped.stderr, /skipped 'n': /);
    assert.deepEqual(Object.keys((await load(out)) as object), ['x', 'y']);
    const strings = cli('convert', at('mixed.npz'), at('mixed.safetensors'));
    assert.equal(strings.code, 2);
    assert.equal(strings.stderr.split('\n').filter((l) => l.startsWith('tensorio: ERR_')).length, 1);
    assert.match(strings.stderr, /member 's': .*<U1/);
  });

  test('options are checked before any work: --dtype bfloat16 into .npy, --max-shard-size 0 (the source is never opened)', () => {
    const dtype = cli('convert', at('absent.npz'), at('x.npy'), '--dtype', 'bfloat16');
    assert.equal(dtype.code, 2);
    assert.match(dtype.stderr, /ERR_UNSUPPORTED_DTYPE: .*x\.npy: --dtype bfloat16: NumPy \.npy cannot hold bfloat16/);
    const shard = cli('convert', at('absent.npz'), at('x.safetensors'), '--max-shard-size', '0');
    assert.equal(shard.code, 2);
    assert.match(shard.stderr, /--max-shard-size must be more than 0 bytes/);
    assert.equal(cli('convert', at('absent.npz'), at('x.npz'), '--max-shard-size', '1MB').code, 2);
  });

  test('diff: 64-bit integers exactly, the same member names, members it could not compare', () => {
    const exact = cli('diff', at('big.npz'), at('big1.npz'), '--json');
    assert.equal(exact.code, 1, '2^60 + 1 is not 2^60');
    const json = JSON.parse(exact.stdout) as { tensors: Array<{ name: string; status: string; mismatched?: number }> };
    assert.deepEqual(json.tensors.map((t) => [t.name, t.status]), [['a', 'equal'], ['b', 'different']]);
    const names = cli('diff', at('big.npz'), at('renamed.npz'));
    assert.equal(names.code, 1);
    assert.match(names.stdout, /only in A\s+b/);
    assert.match(names.stdout, /only in B\s+c/);
    const strings = cli('diff', at('mixed.npz'), at('mixed.npz'));
    assert.equal(strings.code, 1, 'a member that was not compared is not equal');
    assert.match(strings.stdout, /not compared\s+s/);
    assert.match(cli('diff', at('big.npz'), at('big.npz')).stdout, /equal: 2 tensors/);
  });

  test('sharded output names the shards and the index; a model.json whose .bin is missing shows its manifest', () => {
    const sharded = cli('convert', at('big.npz'), at('sharded.safetensors.index.json'), '--max-shard-size', '30B', '--no-fsync');
    assert.equal(sharded.code, 0, sharded.stderr);
    assert.match(sharded.stderr, /wrote 3 files: .*sharded-00001-of-00002\.safetensors, .*sharded-00002-of-00002\.safetensors, .*sharded\.safetensors\.index\.json/);
    const model = path.join(user, 'tfjs', 'model.json');
    fs.mkdirSync(path.dirname(model));
    const big = cli('convert', at('big.npz'), model);
    assert.equal(big.code, 2, 'int64 past 2^31 does not fit tfjs int32');
    assert.match(big.stderr, /ERR_UNSUPPORTED_DTYPE: .*tensor 'b'/);
    assert.equal(cli('convert', at('mixed.npz'), model, '--skip-unsupported').code, 0);
    fs.rmSync(path.join(user, 'tfjs', 'model.weights.bin'));
    const shown = cli('inspect', model);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /manifest only: model\.weights\.bin is missing\), 1 tensor\n/);
    assert.match(shown.stdout, /a\s+int32\s+\(3,\).*data missing/);
  });

  test('a PyTorch checkpoint: inspect lists its tensors, convert and diff take it', () => {
    const pt = at('m.pt');
    runTorch(`import sys, torch
torch.save({'w': torch.arange(6.).reshape(2, 3).t(), 'b': torch.zeros(2, dtype=torch.bfloat16)}, sys.argv[1])`, [pt]);
    const shown = cli('inspect', pt);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /pytorch \(zip\), 2 tensors/);
    assert.match(shown.stdout, /w\s+float32\s+\(3, 2\).*strided/);
    assert.match(shown.stdout, /b\s+bfloat16\s+\(2,\)/);
    assert.equal(cli('convert', pt, at('m.safetensors')).code, 0);
    assert.equal(cli('diff', pt, at('m.safetensors')).code, 0);
    assert.equal(cli('convert', pt, at('m-bf.npz')).code, 2, 'bfloat16 does not go into .npz');
    // A training checkpoint's other values are named, never dropped unseen.
    const ckpt = at('ckpt.pt');
    runTorch(`import sys, torch
torch.save({'model': {'w': torch.ones(2)}, 'epoch': 3, 'opt': {'param_groups': [{'lr': 0.1}]}}, sys.argv[1])`, [ckpt]);
    const refused = cli('convert', ckpt, at('ckpt.safetensors'));
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /member 'epoch': .*a Python number, not a tensor/);
    assert.match(refused.stderr, /member 'opt\.param_groups\.0\.lr'/);
    const skipped = cli('convert', ckpt, at('ckpt.safetensors'), '--skip-unsupported');
    assert.equal(skipped.code, 0, skipped.stderr);
    assert.match(skipped.stderr, /skipped 'epoch'/);
    assert.match(cli('diff', ckpt, at('ckpt.safetensors')).stdout, /not compared\s+epoch/);
  });

  test('inspect --globals lists what a PyTorch file names, refused globals marked, running nothing', () => {
    const pt = at('g.pt');
    runTorch(`import sys, torch
torch.save({'w': torch.ones(2)}, sys.argv[1])`, [pt]);
    const plain = cli('inspect', pt, '--globals');
    assert.equal(plain.code, 0, plain.stderr);
    assert.match(plain.stdout, /0 refused by the reader/);
    assert.match(plain.stdout, /torch\._utils\._rebuild_tensor_v2\s+allowed\s+1×\s+\S*data\.pkl @ \d+/);
    // A zip whose data.pkl calls os.system, as a hostile "checkpoint" would.
    const hostile = at('hostile.pt');
    const marker = at('marker-ran');
    runTorch(`import sys, os, pickle, zipfile
class P:
    def __reduce__(self): return (os.system, ('touch ' + sys.argv[2],))
with zipfile.ZipFile(sys.argv[1], 'w') as z:
    z.writestr('hostile/data.pkl', pickle.dumps({'w': P()}, protocol=2))
    z.writestr('hostile/version', '3')`, [hostile, marker]);
    const shown = cli('inspect', hostile, '--globals');
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /1 global named by its pickles, 1 refused by the reader/);
    assert.match(shown.stdout, /posix\.system\s+REFUSED\s+1×\s+hostile\/data\.pkl/);
    const json = JSON.parse(cli('inspect', hostile, '--globals', '--json').stdout) as { globals: { module: string; name: string; allowed: boolean }[] };
    assert.deepEqual(json.globals.map((g) => [g.module, g.name, g.allowed]), [['posix', 'system', false]]);
    const read = cli('inspect', hostile);
    assert.equal(read.code, 2, 'reading it is refused');
    assert.match(read.stderr, /ERR_UNSAFE_PICKLE.*posix\.system/);
    assert.equal(fs.existsSync(marker), false, 'nothing ran');
    assert.equal(cli('inspect', at('x.npy'), '--globals').code, 2, '--globals is for PyTorch files');
    // A sharded checkpoint: each shard's pickles, named by the shard.
    runTorch(`import sys, os, json, torch
d = sys.argv[1]
for i, name in enumerate(['a', 'b']):
    torch.save({name: torch.ones(2)}, os.path.join(d, 'pytorch_model-0000%d-of-00002.bin' % (i + 1)))
json.dump({'metadata': {'total_size': 16}, 'weight_map': {'a': 'pytorch_model-00001-of-00002.bin', 'b': 'pytorch_model-00002-of-00002.bin'}}, open(os.path.join(d, 'pytorch_model.bin.index.json'), 'w'))`, [user]);
    const sharded = cli('inspect', at('pytorch_model.bin.index.json'), '--globals');
    assert.equal(sharded.code, 0, sharded.stderr);
    assert.match(sharded.stdout, /_rebuild_tensor_v2\s+allowed\s+1×\s+pytorch_model-00001-of-00002\.bin: \S*data\.pkl/);
    assert.match(sharded.stdout, /_rebuild_tensor_v2\s+allowed\s+1×\s+pytorch_model-00002-of-00002\.bin: \S*data\.pkl/);
  });
});

describe('the progress bar', () => {
  test('on a terminal, finish() ends the bar line, so an error that follows is on its own line', async () => {
    const { Progress } = await import('../../src/cli/progress.js');
    let written = '';
    const out = { write: (text: string) => ((written += text), true) } as unknown as NodeJS.WriteStream;
    const bar = new Progress(100, out, true);
    bar.advance(40, 'a');
    assert.doesNotMatch(written, /\n/);
    bar.finish();
    assert.match(written, /^\r\[#+\.+\]\s+40% .*a\x1b\[K\n$/);
  });
});
