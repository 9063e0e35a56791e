/**
 * scripts/build-native.cjs, the install script, on machines that cannot build the addon: one
 * line that says the addon was not built, why, and that the TypeScript path is in use; exit 0
 * (exit 1 with --strict). Each case runs a copy of the script and the build files in a temp
 * folder (never the repository, whose build/ is the addon the tests load).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

import { ROOT, tempDir } from './helpers.js';

/** A package folder holding the install script, the build files and the build tools' packages. */
function packageCopy(): string {
  const dir = tempDir('install-script');
  fs.mkdirSync(path.join(dir, 'scripts'));
  fs.copyFileSync(path.join(ROOT, 'scripts', 'build-native.cjs'), path.join(dir, 'scripts', 'build-native.cjs'));
  for (const file of ['package.json', 'CMakeLists.txt', 'binding.gyp']) fs.copyFileSync(path.join(ROOT, file), path.join(dir, file));
  fs.cpSync(path.join(ROOT, 'native'), path.join(dir, 'native'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'node_modules'));
  for (const dep of ['cmake-js', 'node-addon-api']) fs.symlinkSync(path.join(ROOT, 'node_modules', dep), path.join(dir, 'node_modules', dep), 'dir');
  return dir;
}

/** A PATH of one folder holding only `node` and the given tools (symlinks to the real ones). */
function barePath(tools: string[] = []): string {
  const bin = tempDir('bare-path');
  fs.symlinkSync(process.execPath, path.join(bin, 'node'));
  for (const tool of tools) {
    const real = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
    assert.ok(real, `${tool} is installed (the test links it into a bare PATH)`);
    fs.symlinkSync(real, path.join(bin, tool));
  }
  return bin;
}

function install(dir: string, env: Record<string, string | undefined>, args: string[] = []) {
  const clean: Record<string, string> = {};
  for (const [key, value] of Object.entries({ ...process.env, ...env })) {
    if (value !== undefined && key !== 'TENSORIO_SKIP_NATIVE_BUILD' && key !== 'CXX') clean[key] = value;
  }
  if (env.CXX) clean.CXX = env.CXX;
  const result = spawnSync(process.execPath, [path.join(dir, 'scripts', 'build-native.cjs'), ...args], { cwd: dir, env: clean, encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, lines: result.stderr.split('\n').filter((l) => l.length > 0) };
}

const TYPESCRIPT_PATH = /; using the pure-TypeScript path \(everything works, without memory mapping\)\.$/;

test('no C++ compiler on PATH: one line saying so, exit 0', () => {
  const dir = packageCopy();
  const result = install(dir, { PATH: barePath() });
  assert.equal(result.status, 0);
  assert.equal(result.stdout, '');
  assert.equal(result.lines.length, 1, result.stderr);
  assert.match(result.lines[0]!, /^tensorio: the native addon was not built: no C\+\+ compiler found \(looked for c\+\+, g\+\+ and clang\+\+ on PATH\)/);
  assert.match(result.lines[0]!, TYPESCRIPT_PATH);
  assert.ok(!fs.existsSync(path.join(dir, 'build', 'Release', 'tensorio.node')));
});

test('a compiler but neither cmake nor python3 and make: one line saying so, exit 0', () => {
  const result = install(packageCopy(), { PATH: barePath(['c++']) });
  assert.equal(result.status, 0);
  assert.equal(result.stdout, '');
  assert.equal(result.lines.length, 1, result.stderr);
  assert.match(result.lines[0]!, /^tensorio: the native addon was not built: no cmake found on PATH, and no python3 and make for node-gyp/);
  assert.match(result.lines[0]!, TYPESCRIPT_PATH);
});

test('a build that fails: one line with its first error and the log file, exit 0', () => {
  const dir = packageCopy();
  // A compiler that fails every compilation: cmake's compiler check refuses it, as it would a
  // broken toolchain. (The node headers come from npm's nodedir where npm has one, as under npm.)
  const fake = path.join(tempDir('fake-cxx'), 'c++');
  fs.writeFileSync(fake, '#!/bin/sh\necho "c++: error: this compiler fails every compilation" >&2\nexit 1\n', { mode: 0o755 });
  const result = install(dir, { CXX: fake, npm_config_nodedir: process.env.npm_config_nodedir ?? (fs.existsSync('/usr/include/node/node.h') ? '/usr' : undefined) });
  assert.equal(result.status, 0);
  assert.equal(result.stdout, '', 'the builds\' own output goes to the log, not to the terminal');
  assert.equal(result.lines.length, 1, result.stderr);
  const log = path.join(dir, 'build', 'native-build.log');
  assert.match(result.lines[0]!, /^tensorio: the native addon was not built: the build failed: .*error/i);
  assert.ok(result.lines[0]!.includes(`(full output: ${log})`), result.lines[0]);
  assert.match(result.lines[0]!, TYPESCRIPT_PATH);
  assert.match(fs.readFileSync(log, 'utf8'), /cmake-js compile/);
});

test('--strict (npm run build:native, CI): the same condition is a failure', () => {
  const result = install(packageCopy(), { PATH: barePath() }, ['--strict']);
  assert.equal(result.status, 1);
  assert.match(result.stderr, /could not build the native addon: no C\+\+ compiler found/);
});

test('TENSORIO_SKIP_NATIVE_BUILD=1: one line, exit 0', () => {
  const dir = packageCopy();
  const clean = { ...process.env, TENSORIO_SKIP_NATIVE_BUILD: '1' };
  const result = spawnSync(process.execPath, [path.join(dir, 'scripts', 'build-native.cjs')], { cwd: dir, env: clean, encoding: 'utf8' });
  assert.equal(result.status, 0);
  assert.equal(result.stdout, '');
  assert.match(result.stderr, /^tensorio: the native addon was not built: TENSORIO_SKIP_NATIVE_BUILD=1; using the pure-TypeScript path [^\n]*\n$/);
});
