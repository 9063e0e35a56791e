#!/usr/bin/env node
// Builds @tensorflow/tfjs-node's native binding from source against the C library of a
// TensorFlow *Python wheel*, with no download from storage.googleapis.com.
//
// Why: tfjs-node's install script (scripts/install.js) downloads libtensorflow 2.9.1 and a
// prebuilt binding from Google's bucket; where that bucket is unreachable the install fails and
// tfjs-node cannot load. The PyPI wheels `tensorflow` and `tensorflow-cpu` ship the same C API
// (TF_* and TFE_* symbols) in libtensorflow_cc.so.2 + libtensorflow_framework.so.2, and its
// headers under tensorflow/include. tfjs-node's binding.gyp links `-ltensorflow
// -ltensorflow_framework` from deps/lib (rpath $ORIGIN/../../deps/lib) and includes
// deps/include/tensorflow/c/{c_api.h,eager/c_api.h}; so this script lays the wheel's files
// there under the names the linker and the loader look for, and runs node-gyp itself:
//   deps/include                       -> <wheel>/tensorflow/include (tsl/ and xla/tsl/ included:
//                                         TF 2.19's c_api.h reaches xla/tsl/c/tsl_status.h)
//   deps/lib/libtensorflow.so          -> libtensorflow_cc.so.2   (what -ltensorflow finds)
//   deps/lib/libtensorflow_framework.so -> libtensorflow_framework.so.2
//   deps/lib/libtensorflow_cc.so.2, libtensorflow_framework.so.2 (the sonames the loader wants)
// Tried and working: TensorFlow 2.19.0 (`tensorflow` in the oracle venv, and `tensorflow-cpu`):
// tfjs-node 4.22's binding compiles without a warning and its C API calls all resolve.
//
// Two ways to use it:
//   node scripts/tfjs-node-offline.cjs --package node_modules/@tensorflow/tfjs-node [source]
//     builds the binding of a tfjs-node you installed with `npm install --ignore-scripts`
//     (your project's copy), in place.
//   node scripts/tfjs-node-offline.cjs [source]
//     installs tfjs-node 4.22.0 (npm, --ignore-scripts) into tensorio's cache folder and builds
//     it there; that copy is what tensorio's tests load (scripts/run-tfjs-node-tests.cjs). Its
//     own copy of @tensorflow/tfjs is removed, so that it uses the one of the project that puts
//     the folder on NODE_PATH (one tfjs, as in a user's deduplicated install).
// The source of the C library (first that applies):
//   --tensorflow DIR     an installed wheel's site-packages/tensorflow folder
//   --wheel FILE         a tensorflow or tensorflow-cpu .whl; its library and headers are
//                        unpacked into the cache folder
//   --pip-download[=VER] pip downloads the tensorflow-cpu==VER wheel (default 2.19.0)
//   (none)               the TensorFlow of tensorio's oracle venv (scripts/python-env.cjs)
// --python PY runs pip and the unpacking (default: $TENSORIO_VENV_PYTHON, else python3).
// Running it again does nothing when the same binding is already built (and checks it loads).
// Prints the tfjs-node package folder on stdout; progress goes to stderr.
'use strict';
const { spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const TFJS_NODE_VERSION = '4.22.0';
const DEFAULT_WHEEL_VERSION = '2.19.0';
const STAMP = '.tensorio-offline.json';
// What the binding needs from a wheel: the two libraries and the headers c_api.h reaches.
const WHEEL_MEMBERS = ['tensorflow/libtensorflow_cc.so.2', 'tensorflow/libtensorflow_framework.so.2'];
const WHEEL_HEADER_PREFIXES = ['tensorflow/include/tensorflow/c/', 'tensorflow/include/tensorflow/core/public/', 'tensorflow/include/tensorflow/core/platform/', 'tensorflow/include/tsl/', 'tensorflow/include/xla/tsl/'];

function cacheRoot() {
  // The same folder as scripts/python-env.cjs's environments.
  if (process.env.TENSORIO_VENV_CACHE) return process.env.TENSORIO_VENV_CACHE;
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'tensorio');
}

function run(command, args, label, options = {}) {
  const result = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 256 << 20, ...options });
  if (result.status !== 0) {
    const out = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim().split('\n').slice(-30).join('\n');
    throw new Error(`tfjs-node-offline: ${label} failed (exit ${result.status ?? result.signal}):\n${out || result.error?.message || ''}`);
  }
  return result.stdout;
}

/** The TensorFlow version its headers declare (tensorflow/core/public/version.h), for the logs and the key. */
function headerVersion(includeDir) {
  const file = path.join(includeDir, 'tensorflow', 'core', 'public', 'version.h');
  if (!fs.existsSync(file)) return 'unknown';
  const text = fs.readFileSync(file, 'utf8');
  const part = (name) => (text.match(new RegExp(`#define TF_${name}_VERSION (\\d+)`)) ?? [])[1];
  return [part('MAJOR'), part('MINOR'), part('PATCH')].every(Boolean) ? `${part('MAJOR')}.${part('MINOR')}.${part('PATCH')}` : 'unknown';
}

/** Checks a folder holds what the binding needs and describes it. */
function tensorflowSource(dir, how) {
  const tf = fs.realpathSync(dir);
  const missing = ['libtensorflow_cc.so.2', 'libtensorflow_framework.so.2', 'include/tensorflow/c/c_api.h', 'include/tensorflow/c/eager/c_api.h'].filter(
    (f) => !fs.existsSync(path.join(tf, f)),
  );
  if (missing.length > 0) throw new Error(`tfjs-node-offline: ${tf} (${how}) lacks ${missing.join(', ')}: not a TensorFlow wheel's tensorflow folder`);
  const lib = fs.statSync(path.join(tf, 'libtensorflow_cc.so.2'));
  return { dir: tf, how, version: headerVersion(path.join(tf, 'include')), identity: `${tf}:${lib.size}:${lib.mtimeMs}` };
}

/** Unpacks the library and headers of a wheel into the cache (once per wheel). */
function unpackWheel(wheel, log, python) {
  const file = fs.realpathSync(wheel);
  const name = path.basename(file).replace(/\.whl$/, '');
  const dest = path.join(cacheRoot(), `tensorflow-c-${name}`);
  if (fs.existsSync(path.join(dest, STAMP))) return tensorflowSource(path.join(dest, 'tensorflow'), `unpacked from ${file}`);
  log(`tfjs-node-offline: unpacking the C library and headers of ${path.basename(file)} into ${dest}`);
  const partial = `${dest}.partial-${process.pid}`;
  fs.rmSync(partial, { recursive: true, force: true });
  // A wheel is a zip; Python's zipfile is at hand wherever pip is, and reads the members we name.
  const script = `
import sys, zipfile
members, prefixes = sys.argv[3].split(','), tuple(sys.argv[4].split(','))
with zipfile.ZipFile(sys.argv[1]) as z:
    names = [n for n in z.namelist() if n in members or (n.startswith(prefixes) and not n.endswith('/'))]
    missing = [m for m in members if m not in names]
    if missing: sys.exit('the wheel has no ' + ', '.join(missing) + ' (2.9.1 keeps its C API in python/_pywrap_tensorflow_internal.so, which needs libpython to load: see docs/tfjs.md)')
    for n in names: z.extract(n, sys.argv[2])
`;
  run(python, ['-c', script, file, partial, WHEEL_MEMBERS.join(','), WHEEL_HEADER_PREFIXES.join(',')], `unpacking ${file}`);
  fs.writeFileSync(path.join(partial, STAMP), JSON.stringify({ wheel: file }) + '\n');
  try {
    fs.renameSync(partial, dest);
  } catch (error) {
    // Another process unpacked the same wheel meanwhile: its copy is complete, use it.
    if (!fs.existsSync(path.join(dest, STAMP))) throw error;
    fs.rmSync(partial, { recursive: true, force: true });
  }
  return tensorflowSource(path.join(dest, 'tensorflow'), `unpacked from ${file}`);
}

/** A Python with pip and zipfile: the caller's (the runner gives the oracle venv's), else python3. */
function pythonFor(options) {
  return options.python || process.env.TENSORIO_VENV_PYTHON || 'python3';
}

function pipDownload(version, log, python) {
  const dir = path.join(cacheRoot(), 'wheels');
  fs.mkdirSync(dir, { recursive: true });
  const pattern = new RegExp(`^tensorflow_cpu-${version.replace(/\./g, '\\.')}-.*\\.whl$`);
  const unpacked = fs.readdirSync(cacheRoot()).find((f) => pattern.test(`${f.replace(/^tensorflow-c-/, '')}.whl`) && fs.existsSync(path.join(cacheRoot(), f, STAMP)));
  if (unpacked) return tensorflowSource(path.join(cacheRoot(), unpacked, 'tensorflow'), `tensorflow-cpu ${version} from pip`);
  let wheel = fs.readdirSync(dir).find((f) => pattern.test(f));
  if (!wheel) {
    log(`tfjs-node-offline: pip download tensorflow-cpu==${version} into ${dir}`);
    run(python, ['-m', 'pip', 'download', '--quiet', '--no-deps', '--only-binary=:all:', '-d', dir, `tensorflow-cpu==${version}`], 'pip download', {
      env: { ...process.env, PIP_DISABLE_PIP_VERSION_CHECK: '1' },
    });
    wheel = fs.readdirSync(dir).find((f) => pattern.test(f));
    if (!wheel) throw new Error(`tfjs-node-offline: pip download left no tensorflow_cpu-${version} wheel in ${dir}`);
  }
  const source = unpackWheel(path.join(dir, wheel), log, python);
  // Unpacked, the wheel is no longer needed (252 MB for tensorflow-cpu 2.19.0).
  fs.rmSync(path.join(dir, wheel), { force: true });
  return source;
}

function oracleTensorflow(log) {
  const { ensurePythonEnv } = require('./python-env.cjs');
  const python = ensurePythonEnv('oracle', { log });
  const dir = run(python, ['-c', 'import importlib.util, os; print(os.path.dirname(importlib.util.find_spec("tensorflow").origin))'], 'finding the oracle venv TensorFlow').trim();
  return tensorflowSource(dir, 'the oracle venv');
}

function resolveSource(options, log) {
  if (options.tensorflow) return tensorflowSource(options.tensorflow, '--tensorflow');
  if (options.wheel) return unpackWheel(options.wheel, log, pythonFor(options));
  if (options.pipDownload) return pipDownload(options.pipDownload, log, pythonFor(options));
  return oracleTensorflow(log);
}

/** npm's bundled node-gyp (npm tells lifecycle scripts; otherwise it lies beside npm). */
function nodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  const found = candidates.find((c) => c && fs.existsSync(c));
  if (!found) throw new Error(`tfjs-node-offline: no node-gyp found (looked at ${candidates.filter(Boolean).join(', ')}); set npm_config_node_gyp`);
  return found;
}

/** This Node's own headers, so node-gyp needs no download (Debian's and nodejs.org's layouts). */
function nodeDir() {
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir;
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  return fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h')) && fs.existsSync(path.join(prefix, 'include', 'node', 'common.gypi')) ? prefix : undefined;
}

function link(target, at) {
  fs.rmSync(at, { recursive: true, force: true });
  fs.symlinkSync(target, at);
}

/** Where tfjs-node will look for its binding (node-pre-gyp's rule: lib/napi-v<highest common N-API>). */
function bindingPath(pkg) {
  const preGyp = require.resolve('@mapbox/node-pre-gyp', { paths: [pkg] });
  return require(preGyp).find(path.join(pkg, 'package.json'));
}

/** Loads tfjs-node in a child process: the tensorflow backend, a matMul, the C library's version. */
function verify(pkg, nodePath) {
  const script = `
const tf = require(${JSON.stringify(pkg)});
const y = tf.matMul(tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[5, 6], [7, 8]])).arraySync();
if (JSON.stringify(y) !== '[[19,22],[43,50]]') throw new Error('matMul gave ' + JSON.stringify(y));
console.log(JSON.stringify({ backend: tf.getBackend(), tensorflow: tf.backend().binding.TF_Version }));
`;
  const env = { ...process.env, TF_CPP_MIN_LOG_LEVEL: '3' };
  if (nodePath) env.NODE_PATH = nodePath;
  const out = run(process.execPath, ['-e', script], `loading ${pkg}`, { env });
  const info = JSON.parse(out.trim().split('\n').pop());
  if (info.backend !== 'tensorflow') throw new Error(`tfjs-node-offline: ${pkg} loaded with backend '${info.backend}', not 'tensorflow'`);
  return info;
}

/** Lays the wheel's files into <pkg>/deps and runs node-gyp; the binding lands where tfjs-node loads it. */
function buildBinding(pkg, source, log) {
  const deps = path.join(pkg, 'deps');
  const lib = path.join(deps, 'lib');
  fs.mkdirSync(lib, { recursive: true });
  link(path.join(source.dir, 'include'), path.join(deps, 'include'));
  link(path.join(source.dir, 'libtensorflow_cc.so.2'), path.join(lib, 'libtensorflow_cc.so.2'));
  link(path.join(source.dir, 'libtensorflow_framework.so.2'), path.join(lib, 'libtensorflow_framework.so.2'));
  link('libtensorflow_cc.so.2', path.join(lib, 'libtensorflow.so'));
  link('libtensorflow_framework.so.2', path.join(lib, 'libtensorflow_framework.so'));
  const target = bindingPath(pkg);
  const napi = (target.match(/napi-v(\d+)/) ?? [])[1];
  if (!napi) throw new Error(`tfjs-node-offline: cannot tell the N-API version from ${target}`);
  const args = [nodeGyp(), 'rebuild', `--directory=${pkg}`, '--module_name=tfjs_binding', `--module_path=${path.dirname(target)}`, `--napi_build_version=${napi}`, `--jobs=${Math.max(1, Math.min(2, os.cpus().length))}`];
  const nodedir = nodeDir();
  if (nodedir) args.push(`--nodedir=${nodedir}`);
  log(`tfjs-node-offline: building the binding against TensorFlow ${source.version} (${source.how}: ${source.dir})`);
  run(process.execPath, args, 'node-gyp rebuild', { cwd: pkg });
  if (!fs.existsSync(target)) throw new Error(`tfjs-node-offline: node-gyp succeeded but ${target} is missing`);
  fs.rmSync(path.join(pkg, 'build'), { recursive: true, force: true });
  return target;
}

function stampOf(source) {
  return { tfjsNode: TFJS_NODE_VERSION, tensorflow: source.version, source: source.identity, node: process.version, modules: process.versions.modules };
}

function stampMatches(pkg, stamp) {
  try {
    return JSON.stringify(JSON.parse(fs.readFileSync(path.join(pkg, 'deps', STAMP), 'utf8'))) === JSON.stringify(stamp) && fs.existsSync(bindingPath(pkg));
  } catch {
    return false;
  }
}

/** Builds (if needed) the binding of an existing tfjs-node package folder, in place. */
function buildInPlace(pkg, options = {}) {
  const log = options.log ?? ((line) => console.error(line));
  const dir = path.resolve(pkg);
  const version = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).version;
  const source = resolveSource(options, log);
  const stamp = { ...stampOf(source), tfjsNode: version };
  if (!stampMatches(dir, stamp)) {
    buildBinding(dir, source, log);
    fs.writeFileSync(path.join(dir, 'deps', STAMP), JSON.stringify(stamp) + '\n');
  }
  return { packageDir: dir, ...verify(dir) };
}

/**
 * tfjs-node 4.22.0 in the cache folder, built against the given TensorFlow; made when missing.
 * `tfjsModules` is a node_modules folder holding the @tensorflow/tfjs it should use (its own
 * copy is removed). Returns the package folder and the NODE_PATH that loads it.
 */
function ensureTfjsNode(options = {}) {
  const log = options.log ?? ((line) => console.error(line));
  const tfjsModules = path.resolve(options.tfjsModules ?? path.join(root, 'node_modules'));
  const wanted = JSON.parse(fs.readFileSync(path.join(tfjsModules, '@tensorflow', 'tfjs', 'package.json'), 'utf8')).version;
  if (wanted !== TFJS_NODE_VERSION) {
    throw new Error(`tfjs-node-offline: ${tfjsModules} has @tensorflow/tfjs ${wanted}; tfjs-node ${TFJS_NODE_VERSION} needs ${TFJS_NODE_VERSION} (it pins it)`);
  }
  const source = resolveSource(options, log);
  const stamp = stampOf(source);
  const key = crypto.createHash('sha256').update(JSON.stringify(stamp)).digest('hex').slice(0, 12);
  const prefix = path.join(cacheRoot(), `tfjs-node-${TFJS_NODE_VERSION}-${key}`);
  const pkg = path.join(prefix, 'node_modules', '@tensorflow', 'tfjs-node');
  const nodePath = [path.join(prefix, 'node_modules'), tfjsModules].join(path.delimiter);
  let broken = false;
  if (stampMatches(pkg, stamp)) {
    try {
      return { packageDir: pkg, nodePath, ...verify(pkg, nodePath) };
    } catch (error) {
      // E.g. a library it links to was deleted: build it again rather than fail for good.
      broken = true;
      const reason = error.message.split('\n').find((line) => /Error/.test(line)) ?? error.message.split('\n')[0];
      log(`tfjs-node-offline: the copy in ${prefix} does not load (${reason.trim()}); building it again`);
    }
  }

  const started = Date.now();
  const partial = `${prefix}.partial-${process.pid}`;
  fs.rmSync(partial, { recursive: true, force: true });
  fs.mkdirSync(partial, { recursive: true });
  fs.writeFileSync(path.join(partial, 'package.json'), JSON.stringify({ name: 'tensorio-tfjs-node', private: true }) + '\n');
  log(`tfjs-node-offline: npm install @tensorflow/tfjs-node@${TFJS_NODE_VERSION} --ignore-scripts into ${prefix}`);
  // --ignore-scripts: its install script is the download this script replaces.
  run('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error', `@tensorflow/tfjs-node@${TFJS_NODE_VERSION}`], 'npm install', { cwd: partial });
  // Its own @tensorflow/tfjs* would be a second tfjs beside the project's (two engines' worth of
  // registries, tensors of one failing checks of the other); a user's npm install dedupes it.
  for (const name of fs.readdirSync(path.join(partial, 'node_modules', '@tensorflow'))) {
    if (name !== 'tfjs-node') fs.rmSync(path.join(partial, 'node_modules', '@tensorflow', name), { recursive: true, force: true });
  }
  const partialPkg = path.join(partial, 'node_modules', '@tensorflow', 'tfjs-node');
  buildBinding(partialPkg, source, log);
  fs.writeFileSync(path.join(partialPkg, 'deps', STAMP), JSON.stringify(stamp) + '\n');
  if (!broken && stampMatches(pkg, stamp)) {
    // Another process finished the same build meanwhile: its copy is complete, keep it.
    fs.rmSync(partial, { recursive: true, force: true });
  } else {
    fs.rmSync(prefix, { recursive: true, force: true });
    fs.renameSync(partial, prefix);
  }
  const info = verify(pkg, nodePath);
  log(`tfjs-node-offline: tfjs-node ${TFJS_NODE_VERSION} on TensorFlow ${info.tensorflow} is ready in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return { packageDir: pkg, nodePath, ...info };
}

function parseArgs(argv) {
  const options = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.split(/=(.*)/s, 2);
    const value = () => inline ?? argv[++i];
    if (flag === '--package') options.package = value();
    else if (flag === '--tensorflow') options.tensorflow = value();
    else if (flag === '--wheel') options.wheel = value();
    else if (flag === '--pip-download') options.pipDownload = inline ?? DEFAULT_WHEEL_VERSION;
    else if (flag === '--tfjs-modules') options.tfjsModules = value();
    else if (flag === '--python') options.python = value();
    else throw new Error(`tfjs-node-offline: unknown argument '${arg}' (see the comment at the top of ${__filename})`);
  }
  return options;
}

module.exports = { ensureTfjsNode, buildInPlace, TFJS_NODE_VERSION };

if (require.main === module) {
  try {
    const options = parseArgs(process.argv.slice(2));
    const info = options.package ? buildInPlace(options.package, options) : ensureTfjsNode(options);
    console.error(`tfjs-node-offline: ${info.packageDir} loads with the '${info.backend}' backend, TensorFlow ${info.tensorflow}${info.nodePath ? ` (NODE_PATH=${info.nodePath})` : ''}`);
    console.log(info.packageDir);
  } catch (error) {
    console.error(error.message);
    process.exit(1);
  }
}
