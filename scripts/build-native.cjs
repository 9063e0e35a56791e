#!/usr/bin/env node
// Builds the native addon at install time: cmake-js first (CMakeLists.txt), node-gyp
// (binding.gyp) as the fallback. When neither can build it (no compiler, no cmake), the
// install still succeeds and tensorio runs on its pure-TypeScript path; `--strict` makes
// that a failure instead, for CI and for `npm run build:native`.
//
// Without --strict the outcome is one line on stderr, never the compilers' pages of output:
// the addon was built, or it was not, why, and that the TypeScript path is in use. The
// builds' own output goes to build/native-build.log. (npm 7 and later show a dependency's
// install-script output only with --foreground-scripts or when the script fails, so a user
// installing tensorio as a dependency sees the line there, and nativeStatus() says the same
// at run time; in a clone, `npm install` runs this as the root package's script and shows it.)
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const strict = process.argv.includes('--strict');
const addon = path.join(root, 'build', 'Release', 'tensorio.node');
const logFile = path.join(root, 'build', 'native-build.log');
const FALLBACK = 'using the pure-TypeScript path (everything works, without memory mapping)';

/** The first match of `names` among the PATH's folders (an absolute or relative path is taken as is). */
function onPath(names) {
  const dirs = (process.env.PATH || '').split(path.delimiter).filter(Boolean);
  const exts = process.platform === 'win32' ? (process.env.PATHEXT || '.EXE;.CMD;.BAT').split(';') : [''];
  for (const name of names) {
    if (!name) continue;
    const candidates = name.includes('/') || name.includes('\\') ? [name] : dirs.flatMap((dir) => exts.map((ext) => path.join(dir, name + ext)));
    for (const file of candidates) {
      try {
        fs.accessSync(file, fs.constants.X_OK);
        if (fs.statSync(file).isFile()) return file;
      } catch {
        // not there, or not executable: look further
      }
    }
  }
  return undefined;
}

/**
 * Why no build can succeed here, before trying one (on Windows, where the compiler is found
 * through Visual Studio's installer rather than PATH, nothing is ruled out in advance).
 */
function missingTools() {
  if (process.platform === 'win32') return undefined;
  const cxx = (process.env.CXX || '').trim().split(/\s+/)[0];
  if (!onPath([cxx, 'c++', 'g++', 'clang++'])) return `no C++ compiler found (looked for ${cxx ? `$CXX (${cxx}), ` : ''}c++, g++ and clang++ on PATH)`;
  if (!onPath(['cmake']) && !(onPath(['python3', 'python']) && onPath(['make']))) return 'no cmake found on PATH, and no python3 and make for node-gyp';
  return undefined;
}

let log = '';
function run(command, args) {
  if (strict) console.log(`tensorio: ${command} ${args.join(' ')}`);
  const result = spawnSync(command, args, { cwd: root, stdio: strict ? 'inherit' : 'pipe', env: process.env, encoding: 'utf8' });
  log += `$ ${command} ${args.join(' ')}\n${result.stdout || ''}${result.stderr || ''}${result.error ? `${result.error.message}\n` : ''}exit ${result.status}\n\n`;
  return result.status === 0 && fs.existsSync(addon);
}

function cmakeJs() {
  let bin;
  try {
    bin = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
  } catch {
    log += 'cmake-js is not installed\n\n';
    return false;
  }
  return run(process.execPath, [bin, 'compile', '--log-level', 'warn']);
}

function nodeGyp() {
  // npm tells lifecycle scripts where its bundled node-gyp is.
  const bundled = process.env.npm_config_node_gyp;
  if (bundled && fs.existsSync(bundled)) return run(process.execPath, [bundled, 'rebuild']);
  return run('node-gyp', ['rebuild']);
}

/** The line of a failed build's output that says what went wrong (compilers print many). */
function firstError(output) {
  const lines = output.split('\n').map((line) => line.trim()).filter((line) => line.length > 0 && !line.startsWith('$ '));
  const at = lines.findIndex((line) => /\berror\b/i.test(line));
  if (at < 0) return lines[0] || 'no output';
  // CMake's "CMake Error at <file>:<line> (message):" says what on the next line.
  return lines[at].endsWith(':') && lines[at + 1] ? `${lines[at]} ${lines[at + 1]}` : lines[at];
}

function fail(reason) {
  if (strict) {
    console.error(`tensorio: could not build the native addon: ${reason}`);
    process.exit(1);
  }
  console.error(`tensorio: the native addon was not built: ${reason}; ${FALLBACK}.`);
  process.exit(0);
}

if (process.env.TENSORIO_SKIP_NATIVE_BUILD === '1') {
  console.error(`tensorio: the native addon was not built: TENSORIO_SKIP_NATIVE_BUILD=1; ${FALLBACK}.`);
  process.exit(0);
}
const missing = missingTools();
if (missing) fail(missing);
if (cmakeJs() || nodeGyp()) {
  console.error(`tensorio: built the native addon (${path.relative(root, addon)}).`);
  process.exit(0);
}
let where = '';
if (!strict) {
  try {
    fs.mkdirSync(path.dirname(logFile), { recursive: true });
    fs.writeFileSync(logFile, log);
    where = ` (full output: ${logFile})`;
  } catch {
    // an unwritable package folder: the one line still says why
  }
}
fail(`the build failed: ${firstError(log)}${where}`);
