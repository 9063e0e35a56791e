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

/** The files `npm pack` would put in the tarball (the package.json "files" list, as npm applies it). */
let packed: string[] | undefined;
function packedFiles(): string[] {
  if (!packed) {
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    // --ignore-scripts: `prepare` would rebuild dist/, which the test run has just built.
    const json = execFileSync(npm, ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    packed = (JSON.parse(json) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path).sort();
  }
  return packed;
}

/**
 * A project folder with tensorio installed as the tarball would install it (a copy of the
 * packed files, not a symlink, so Node resolves tensorio's imports from the copy) and its
 * dependencies, but without @tensorflow/tfjs.
 */
function projectWithoutTfjs(): string {
  const dir = tempDir('no-tfjs');
  const pkg = path.join(dir, 'node_modules', 'tensorio');
  for (const file of packedFiles()) {
    fs.mkdirSync(path.dirname(path.join(pkg, file)), { recursive: true });
    fs.copyFileSync(path.join(ROOT, file), path.join(pkg, file));
  }
  const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  for (const dep of Object.keys(manifest.dependencies)) {
    fs.symlinkSync(path.join(ROOT, 'node_modules', dep), path.join(dir, 'node_modules', dep), 'dir');
  }
  assert.ok(!fs.existsSync(path.join(dir, 'node_modules', '@tensorflow')));
  return dir;
}

const noNodePath = { ...process.env, NODE_PATH: '' };

test('@tensorflow/tfjs is an optional peer dependency', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
    peerDependencies: Record<string, string>;
    peerDependenciesMeta: Record<string, { optional?: boolean }>;
    dependencies: Record<string, string>;
  };
  for (const peer of Object.keys(pkg.peerDependencies)) {
    assert.equal(pkg.peerDependenciesMeta[peer]?.optional, true, `${peer} is optional (npm 7+ installs required peers)`);
  }
  assert.ok(!Object.keys(pkg.dependencies).some((d) => d.startsWith('@tensorflow/')));
});

test('the main entry never loads @tensorflow/tfjs, even where it is installed', () => {
  const script = `require('tensorio');
    console.log(JSON.stringify(Object.keys(require.cache).filter((f) => f.includes('@tensorflow'))));`;
  assert.equal(node(['-e', script], ROOT).trim(), '[]');
});

test('without @tensorflow/tfjs: tensorio works, tensorio/tfjs throws ERR_TFJS_MISSING saying what to install', () => {
  const dir = projectWithoutTfjs();
  const run = (args: string[]) => execFileSync(process.execPath, args, { cwd: dir, encoding: 'utf8', env: noNodePath, stdio: ['ignore', 'pipe', 'pipe'] });
  // The main entry loads and round-trips an array.
  const main = `const t = require('tensorio');
    t.writeNpySync('x.npy', t.ones([2]));
    console.log(t.readNpySync('x.npy').data.join(','));`;
  assert.equal(run(['-e', main]).trim(), '1,1');
  const cjs = `try { require('tensorio/tfjs'); console.log('loaded'); }
    catch (e) { console.log(JSON.stringify({ name: e.name, code: e.code, message: e.message, same: e instanceof require('tensorio').TensorioError })); }`;
  const esm = `try { await import('tensorio/tfjs'); console.log('loaded'); }
    catch (e) { const t = await import('tensorio'); console.log(JSON.stringify({ name: e.name, code: e.code, message: e.message, same: e instanceof t.TensorioError })); }`;
  for (const output of [run(['-e', cjs]), run(['--input-type=module', '-e', esm])]) {
    const result = JSON.parse(output) as { name: string; code: string; message: string; same: boolean };
    assert.equal(result.name, 'TensorioError');
    assert.equal(result.code, 'ERR_TFJS_MISSING');
    assert.equal(result.same, true);
    assert.match(result.message, /npm install @tensorflow\/tfjs/);
  }
});

test('the tarball holds what a user needs and none of the repository\'s own work', () => {
  const files = packedFiles();
  const has = (file: string) => files.includes(file);
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
    license: string;
    main: string;
    bin: Record<string, string>;
    exports: Record<string, { types?: string; import?: string; require?: string } | string>;
    scripts: Record<string, string>;
  };
  for (const file of ['package.json', 'README.md', 'LICENSE']) assert.ok(has(file), `${file} ships`);
  // The license file is the text of the license package.json names.
  assert.equal(pkg.license, 'MIT');
  const license = fs.readFileSync(path.join(ROOT, 'LICENSE'), 'utf8');
  assert.match(license, /^MIT License\n\nCopyright \(c\) \d{4} /);
  assert.match(license, /THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND/);
  // Every entry point, its types and the CLI.
  const entries = [pkg.main, ...Object.values(pkg.bin)];
  for (const target of Object.values(pkg.exports)) {
    if (typeof target === 'string') continue;
    entries.push(...[target.types, target.import, target.require].filter((f): f is string => f !== undefined));
  }
  for (const entry of entries) assert.ok(has(path.posix.normalize(entry)), `${entry} ships`);
  // Every local document the README links to (and the documents they link to, if shipped).
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const linked = [...readme.matchAll(/\]\(([^)#:]+\.md)(?:#[^)]*)?\)/g)].map((m) => path.posix.normalize(m[1] as string));
  assert.ok(linked.length >= 4, 'the README links to its documents');
  for (const doc of linked) assert.ok(has(doc), `${doc} (linked from the README) ships`);
  // The install script and the sources it builds: CMakeLists.txt's and binding.gyp's sources
  // and every header they include, transitively.
  const install = /node (\S+)/.exec(pkg.scripts.install ?? '')?.[1];
  assert.ok(install && has(install), `the install script ${install} ships`);
  for (const file of ['CMakeLists.txt', 'binding.gyp']) assert.ok(has(file), `${file} ships`);
  const cmake = fs.readFileSync(path.join(ROOT, 'CMakeLists.txt'), 'utf8');
  const gyp = fs.readFileSync(path.join(ROOT, 'binding.gyp'), 'utf8');
  const queue = [...cmake.matchAll(/^\s*(native\/\S+\.cc)$/gm), ...gyp.matchAll(/"(native\/[^"]+\.cc)"/g)].map((m) => m[1] as string);
  assert.ok(queue.length >= 4);
  const seen = new Set<string>();
  while (queue.length > 0) {
    const file = queue.pop() as string;
    if (seen.has(file)) continue;
    seen.add(file);
    assert.ok(has(file), `${file} (built at install time) ships`);
    const source = fs.readFileSync(path.join(ROOT, file), 'utf8');
    for (const m of source.matchAll(/^#include "([^"]+)"/gm)) queue.push(path.posix.join(path.posix.dirname(file), m[1] as string));
  }
  // Nothing of the repository's own work: results, tests, fuzzers, built artefacts.
  const refused: [RegExp, string][] = [
    [/^bench\/results\//, 'benchmark results'],
    [/^(test|dist-test)\//, 'tests'],
    [/^native\/fuzz\//, 'fuzz harnesses'],
    [/^build\/|\.(node|o|obj|a|so|dylib|dll|tsbuildinfo)$/, 'build artefacts'],
    [/^src\//, 'TypeScript sources (dist/ holds the build)'],
    [/^(\.ci|demo|node_modules)\//, 'repository tooling'],
  ];
  for (const [pattern, what] of refused) {
    assert.deepEqual(files.filter((f) => pattern.test(f)), [], `no ${what} in the tarball`);
  }
});
