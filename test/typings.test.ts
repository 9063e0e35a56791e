/**
 * The README's examples type-check as a user's TypeScript project would compile them, under
 * each moduleResolution a project may use (node10, node16/nodenext in CommonJS and ESM files,
 * bundler), against the package as installed (a node_modules/tensorio link). The code
 * blocks are read from README.md, so the check follows the README.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

import { DTYPES, dtypeInfo, zeros, type DType } from '../src/index.js';
import { ROOT, tempDir } from './helpers.js';

/**
 * The README's js blocks, each as a module: imports on top, the rest in an async function (so
 * top-level `await` compiles under CommonJS too). They are checked as JavaScript (`checkJs`),
 * which uses the same declarations a .ts file does, and lets the README cast tfjs's own
 * `predict` (typed Tensor | Tensor[]) with a JSDoc cast that still runs as plain JS.
 */
function readmeExamples(): string[] {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  return [...readme.matchAll(/```(?:js|ts|typescript)\n([\s\S]*?)```/g)].map((m) => {
    const lines = (m[1] as string).split('\n');
    const imports = lines.filter((l) => /^import /.test(l));
    const body = lines.filter((l) => !/^import /.test(l));
    return `${imports.join('\n')}\n\nexport async function example() {\n${body.map((l) => `  ${l}`).join('\n')}\n}\n`;
  });
}

/** A project folder with tensorio (and its peer, and Node's types) installed as links. */
function project(): string {
  const dir = tempDir('typings');
  fs.mkdirSync(path.join(dir, 'node_modules'));
  fs.symlinkSync(ROOT, path.join(dir, 'node_modules', 'tensorio'), 'dir');
  for (const dep of ['@tensorflow', '@types']) fs.symlinkSync(path.join(ROOT, 'node_modules', dep), path.join(dir, 'node_modules', dep), 'dir');
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'user-project', private: true }));
  return dir;
}

const setups: { name: string; ext: string; options: Record<string, string> }[] = [
  { name: 'node10 (CommonJS)', ext: 'js', options: { module: 'commonjs', moduleResolution: 'node10' } },
  { name: 'node16 (CommonJS file)', ext: 'cjs', options: { module: 'node16', moduleResolution: 'node16' } },
  { name: 'nodenext (ESM file)', ext: 'mjs', options: { module: 'nodenext', moduleResolution: 'nodenext' } },
  { name: 'bundler', ext: 'js', options: { module: 'esnext', moduleResolution: 'bundler' } },
];

for (const setup of setups) {
  test(`the README's examples compile with moduleResolution ${setup.name}`, () => {
    const examples = readmeExamples();
    assert.ok(examples.length >= 6, 'the README has examples');
    assert.ok(examples.some((e) => e.includes("from 'tensorio/tfjs'")), 'one imports tensorio/tfjs');
    const dir = project();
    const files = examples.map((code, i) => {
      const file = `example-${i}.${setup.ext}`;
      fs.writeFileSync(path.join(dir, file), code);
      return file;
    });
    const tsconfig = {
      compilerOptions: { ...setup.options, target: 'es2022', lib: ['es2022'], types: ['node'], strict: true, allowJs: true, checkJs: true, noEmit: true, skipLibCheck: true, esModuleInterop: true },
      files,
    };
    fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify(tsconfig, null, 2));
    const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const result = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: dir, encoding: 'utf8' });
    assert.equal(result.status, 0, `tsc (${setup.name}):\n${result.stdout}${result.stderr}`);
  });
}

test('data types follow the dtype: zeros/ones by their dtype argument, hasDType on a read array', () => {
  const dir = project();
  const code = `import { hasDType, ones, readNpy, zeros, type NdArrayOf, type TypedArrayOf } from 'tensorio';

export async function example(): Promise<void> {
  const f: Float32Array = ones([2]).data;
  const b: BigInt64Array = zeros([2], 'int64').data;
  const h: TypedArrayOf<'float16'> = new Uint16Array(1);
  const a = await readNpy('a.npy');
  if (hasDType(a, 'float64')) {
    const d: Float64Array = a.data;
    console.log(d, a.mapped);
  }
  const c: NdArrayOf<'complex64'> = zeros([1], 'complex64');
  // @ts-expect-error: float32 data is not a Float64Array
  const wrong: Float64Array = ones([2]).data;
  // @ts-expect-error: a read array's data is any TypedArray until its dtype is checked
  const unknown: Float64Array = a.data;
  console.log(f, b, h, c, wrong, unknown);
}
`;
  fs.writeFileSync(path.join(dir, 'narrow.ts'), code);
  const tsconfig = { compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', lib: ['es2022'], types: ['node'], strict: true, noEmit: true, skipLibCheck: true }, files: ['narrow.ts'] };
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify(tsconfig));
  const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const result = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: dir, encoding: 'utf8' });
  assert.equal(result.status, 0, `${result.stdout}${result.stderr}`);
});

test('DTypeStorage names the TypedArray the dtype table stores each dtype in', () => {
  // The runtime side of src/ndarray-types.ts: the same storage as DTypeStorage, dtype by dtype.
  const storage: { [D in DType]: string } = {
    bool: 'Uint8Array', int8: 'Int8Array', uint8: 'Uint8Array', int16: 'Int16Array', uint16: 'Uint16Array', int32: 'Int32Array',
    uint32: 'Uint32Array', int64: 'BigInt64Array', uint64: 'BigUint64Array', float16: 'Uint16Array', bfloat16: 'Uint16Array',
    float32: 'Float32Array', float64: 'Float64Array', complex64: 'Float32Array', complex128: 'Float64Array',
    float8_e4m3fn: 'Uint8Array', float8_e5m2: 'Uint8Array',
  };
  const types = fs.readFileSync(path.join(ROOT, 'src', 'ndarray-types.ts'), 'utf8');
  for (const dtype of DTYPES) {
    assert.equal(dtypeInfo(dtype).array.name, storage[dtype], dtype);
    assert.match(types, new RegExp(`^  ${dtype}: ${storage[dtype]};$`, 'm'), `DTypeStorage.${dtype}`);
    assert.equal(zeros([1], dtype).data.constructor.name, storage[dtype]);
  }
});
