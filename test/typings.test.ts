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
