/** The package as users see it: ESM and CommonJS entry points, types, and the README's examples. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

import { ROOT, tempDir } from './helpers.js';

function node(args: string[], cwd: string): string {
  return execFileSync(process.execPath, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

test('ESM import and require share one module with the same exports', () => {
  const script = `import { createRequire } from 'node:module';
    import * as esm from 'tensorio';
    const cjs = createRequire(import.meta.url)('tensorio');
    const esmNames = Object.keys(esm).filter((k) => k !== 'default').sort();
    const cjsNames = Object.keys(cjs).filter((k) => k !== '__esModule').sort();
    console.log(JSON.stringify({ same: JSON.stringify(esmNames) === JSON.stringify(cjsNames), count: esmNames.length, oneClass: esm.TensorioError === cjs.TensorioError }));`;
  const result = JSON.parse(node(['--input-type=module', '-e', script], ROOT)) as { same: boolean; count: number; oneClass: boolean };
  assert.equal(result.same, true);
  assert.ok(result.count > 20);
  assert.equal(result.oneClass, true);
});

test('type declarations ship for every entry point', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, { types?: string; import?: string; require?: string } | string> };
  for (const [entry, target] of Object.entries(pkg.exports)) {
    if (typeof target === 'string') continue;
    for (const file of [target.types, target.import, target.require]) {
      assert.ok(file && fs.existsSync(path.join(ROOT, file)), `${entry}: ${file} exists`);
    }
  }
});

test('every js example in the README runs', () => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1] as string);
  assert.ok(blocks.length >= 3, 'the README has examples');
  const dir = tempDir('readme');
  fs.mkdirSync(path.join(dir, 'node_modules'));
  fs.symlinkSync(ROOT, path.join(dir, 'node_modules', 'tensorio'), 'dir');
  // The tfjs example imports the peer dependency the way a user's project would.
  fs.symlinkSync(path.join(ROOT, 'node_modules', '@tensorflow'), path.join(dir, 'node_modules', '@tensorflow'), 'dir');
  blocks.forEach((code, i) => {
    const file = path.join(dir, `example-${i}.mjs`);
    fs.writeFileSync(file, code);
    const output = node([file], dir);
    // Where an example states its output in a comment, check it.
    for (const [, expected] of code.matchAll(/console\.log\([^;]*\);\s*\/\/ (.+)$/gm)) {
      const wanted = (expected as string).replace(/ \(false on the TypeScript path\)/, '');
      const line = output.trim().split('\n').pop() ?? '';
      if (/TypeScript path/.test(expected as string) && process.env.TENSORIO_NO_NATIVE === '1') continue;
      assert.equal(line.replace(/\s+/g, ' '), wanted.replace(/\s+/g, ' '), `example ${i}: ${code.slice(0, 80)}`);
    }
  });
});
