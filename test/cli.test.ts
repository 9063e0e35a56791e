/** The tensorio command line, run as users run it (a child process of the built CLI). */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';

import { ndarray, readNpy, writeNpy } from '../src/index.js';
import { ROOT, runOracle, runPython, tempDir } from './helpers.js';

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
