/** Shared test helpers: temporary folders, the fixtures, and the Python interpreter with NumPy. */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after } from 'node:test';

export const ROOT = path.resolve(__dirname, '..', '..');
/** The third-party files of the fixtures suite (test/fixtures/): TENSORIO_FIXTURES, else ../shared/fixtures. */
export const FIXTURES = path.resolve(process.env.TENSORIO_FIXTURES || path.join(ROOT, '..', 'shared', 'fixtures'));
export const NATIVE_MODE = process.env.TENSORIO_NO_NATIVE !== '1';

/** Bytes that differ at every position (a shifted or dropped block cannot go unnoticed). */
export function pattern(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < length; i += 4) {
    x = (x * 1103515245 + 12345) >>> 0;
    bytes[i] = x & 0xff;
    if (i + 1 < length) bytes[i + 1] = (x >>> 8) & 0xff;
    if (i + 2 < length) bytes[i + 2] = (x >>> 16) & 0xff;
    if (i + 3 < length) bytes[i + 3] = x >>> 24;
  }
  return bytes;
}

/** A fresh temporary folder, removed when the test file ends. */
export function tempDir(label = 'tensorio'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${label}-`));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A fixture's path (only test/fixtures/ may call it); fails loudly when the folder or file is missing. */
export function fixture(...parts: string[]): string {
  const file = path.join(FIXTURES, ...parts);
  if (!fs.existsSync(file)) throw new Error(`fixture ${file} is missing: the fixtures suite needs ../shared/fixtures beside the repository, or TENSORIO_FIXTURES naming the folder`);
  return file;
}

export function fixtureFiles(folder: string, suffix: string): string[] {
  const dir = path.join(FIXTURES, folder);
  if (!fs.existsSync(dir)) throw new Error(`fixture folder ${dir} is missing`);
  return fs.readdirSync(dir).filter((name) => name.endsWith(suffix)).sort().map((name) => path.join(dir, name));
}

let pythonCache: string | undefined;

/**
 * The Python interpreter that has NumPy (Debian's python3-numpy, installed by .ci/run).
 * TENSORIO_PYTHON overrides. Throws (failing the test, never skipping it) when none has it.
 */
export function pythonWithNumpy(): string {
  if (pythonCache) return pythonCache;
  const candidates = [process.env.TENSORIO_PYTHON, '/usr/bin/python3', 'python3'].filter((c): c is string => !!c);
  for (const candidate of candidates) {
    const probe = spawnSync(candidate, ['-c', 'import numpy'], { stdio: 'ignore' });
    if (probe.status === 0) return (pythonCache = candidate);
  }
  throw new Error('no Python with NumPy found: install python3-numpy (see .ci/run) or set TENSORIO_PYTHON');
}

let oracleCache: string | undefined;

/**
 * The interpreter of the oracle environment (test/python/requirements.txt: TensorFlow 2.19,
 * tf-keras, Keras 3, tensorflowjs, safetensors, ml_dtypes, h5py 3.16, NumPy 2.1). The test
 * runner builds it and passes it as TENSORIO_ORACLE_PYTHON; a test file run on its own builds it
 * here. It is never optional: when it cannot be made, the test fails.
 */
export function oraclePython(): string {
  if (oracleCache) return oracleCache;
  if (process.env.TENSORIO_ORACLE_PYTHON) return (oracleCache = process.env.TENSORIO_ORACLE_PYTHON);
  const env = require(path.join(ROOT, 'scripts', 'python-env.cjs')) as { ensurePythonEnv(name: string, o: object): string };
  return (oracleCache = env.ensurePythonEnv('oracle', { log: (line: string) => console.log(line) }));
}

function runWith(python: string, script: string, args: string[], cwd?: string): string {
  try {
    // TensorFlow logs its start-up (oneDNN, CUDA probing) to stderr: keep it out of the output,
    // and keep it in the error when the script fails.
    return execFileSync(python, ['-c', script, ...args], {
      encoding: 'utf8',
      maxBuffer: 256 << 20,
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd,
      env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2', PYTHONHASHSEED: '0' },
    });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(`python (${python}) failed: ${stderr || (error as Error).message}`);
  }
}

/** Runs a Python script with Debian's NumPy 1.24 and returns its stdout; throws with stderr on failure. */
export function runPython(script: string, args: string[] = []): string {
  return runWith(pythonWithNumpy(), script, args);
}

/** Runs Python and parses its stdout as JSON. */
export function runPythonJson<T = unknown>(script: string, args: string[] = []): T {
  return JSON.parse(runPython(script, args)) as T;
}

let torchCache: string | undefined;

/**
 * The interpreter of the `torch` environment (test/python/requirements-torch.txt: PyTorch 2.15,
 * NumPy 2.1). The test runner builds it and passes it as TENSORIO_TORCH_PYTHON; a test file run
 * on its own builds it here. Never optional: when it cannot be made, the test fails.
 */
export function torchPython(): string {
  if (torchCache) return torchCache;
  if (process.env.TENSORIO_TORCH_PYTHON) return (torchCache = process.env.TENSORIO_TORCH_PYTHON);
  const env = require(path.join(ROOT, 'scripts', 'python-env.cjs')) as { ensurePythonEnv(name: string, o: object): string };
  return (torchCache = env.ensurePythonEnv('torch', { log: (line: string) => console.log(line) }));
}

/** Runs a script with real PyTorch (see {@link torchPython}), optionally in `cwd`. */
export function runTorch(script: string, args: string[] = [], cwd?: string): string {
  return runWith(torchPython(), script, args, cwd);
}

/** Runs a script in the oracle environment (TensorFlow, Keras, NumPy 2, ...), optionally in `cwd`. */
export function runOracle(script: string, args: string[] = [], cwd?: string): string {
  return runWith(oraclePython(), script, args, cwd);
}

/** Runs a script in the oracle environment and parses its stdout (its last line) as JSON. */
export function runOracleJson<T = unknown>(script: string, args: string[] = [], cwd?: string): T {
  const lines = runOracle(script, args, cwd).trim().split('\n');
  return JSON.parse(lines[lines.length - 1] ?? 'null') as T;
}

/** Both NumPy interpreters of the interop matrix: Debian's NumPy 1.24 and the oracle's NumPy 2. */
export function numpyPythons(): { label: string; python: () => string }[] {
  return [
    { label: 'Debian NumPy 1.24', python: pythonWithNumpy },
    { label: 'NumPy 2 (oracle)', python: oraclePython },
  ];
}

/** Both h5py interpreters of the HDF5 matrix: Debian's h5py 3.7 (HDF5 1.10) and the oracle's h5py 3.16 (HDF5 2.0). */
export function h5pyPythons(): { label: string; python: () => string }[] {
  return [
    { label: 'Debian h5py 3.7', python: pythonWithNumpy },
    { label: 'h5py 3.16 (oracle)', python: oraclePython },
  ];
}

/** Runs a script with the given interpreter (one of numpyPythons()). */
export function runPythonWith(python: string, script: string, args: string[] = [], cwd?: string): string {
  return runWith(python, script, args, cwd);
}

/**
 * A tmpfs mounted for this test file, unmounted (then removed) when it ends. Mounting needs
 * root (CI runs as root); where it is impossible this fails loudly, unless TENSORIO_NO_MOUNT=1
 * acknowledges it, and then returns undefined.
 */
export function mountTmpfs(options: string): string | undefined {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tensorio-mnt-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (error) {
    fs.rmdirSync(dir);
    const message = `CANNOT MOUNT A TMPFS (${(error as Error).message.trim()}): the full-disk tests need root`;
    console.error(`\n!!!!!!!! ${message} !!!!!!!!\n`);
    if (process.env.TENSORIO_NO_MOUNT === '1') return undefined;
    throw new Error(`${message}; set TENSORIO_NO_MOUNT=1 to run without the checks that mount one (the full-disk checks then rely on RLIMIT_FSIZE alone)`);
  }
  after(() => {
    spawnSync('umount', ['-l', dir]);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/**
 * `bytes` cut into chunks of the given lengths (cycled), each a view `skew` bytes into a buffer
 * of its own, so a writer meets unaligned chunk addresses (test/io/direct-io, write-through).
 */
export function chunked(bytes: Uint8Array, lengths: number[], skew: number): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const length = Math.min(lengths[i % lengths.length] as number, bytes.length - at);
    const own = new Uint8Array(length + skew);
    own.set(bytes.subarray(at, at + length), skew);
    chunks.push(own.subarray(skew));
    at += length;
  }
  return chunks;
}
