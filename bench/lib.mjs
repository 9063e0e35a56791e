// Shared benchmark harness: every trial runs in a fresh process (node or python) that
// times one operation itself and reports its own peak RSS, so one trial's heap, page
// cache warm-up or JIT state never flatters the next.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';

export const PYTHON = process.env.TENSORIO_PYTHON ?? '/usr/bin/python3';

/**
 * Whether the Node package `name` (a peer such as npyjs, h5wasm, @tensorflow/tfjs) can be
 * imported here. The peers are devDependencies: from an installed tensorio they are usually
 * absent, and their rows are skipped with a line saying so. TENSORIO_BENCH_MISSING (a comma
 * list) makes the named ones count as absent, so that path can be tested from a clone.
 */
export function hasNodePeer(name) {
  if ((process.env.TENSORIO_BENCH_MISSING ?? '').split(',').includes(name)) return false;
  try {
    createRequire(import.meta.url).resolve(name);
    return true;
  } catch {
    try {
      import.meta.resolve(name);
      return true;
    } catch {
      return false;
    }
  }
}

// OpenBLAS variables slow numpy on some CPUs here; they do not affect file I/O, but unset
// them for the peer processes so NumPy runs as users run it.
export function peerEnv() {
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  return env;
}

/** Runs `command args` in a fresh process; it must print one JSON line {seconds, rssBeforeKb, maxRssKb}. */
export function trial(command, args, options = {}) {
  const result = spawnSync(command, args, { encoding: 'utf8', env: peerEnv(), maxBuffer: 16 << 20, ...options });
  // A trial that could not start (EAGAIN, ENOMEM on a loaded machine), was killed (a signal) or
  // overflowed maxBuffer has no stderr to show: name that instead of an empty reason.
  if (result.status !== 0) {
    const how = result.error ? `could not run (${result.error.message})` : result.signal ? `was killed by ${result.signal}` : `exited ${result.status}`;
    throw new Error(`${command} ${args.join(' ')} ${how}: ${result.stderr ?? ''}`);
  }
  const line = result.stdout.trim().split('\n').pop();
  return JSON.parse(line);
}

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * Runs competing trials interleaved after one discarded warm-up round, so drift on a shared
 * machine (page-cache writeback, other processes) hits every peer alike. The order rotates
 * each round (A B C, B C A, C A B, ...): with transparent huge pages, a process that follows
 * one which freed small pages pays for compaction, and a fixed order would always hand that
 * cost to the same peer. Each spec is {label, command, args, before?}; returns one summary
 * per spec.
 */
export function measureInterleaved(specs, repeat = 5) {
  const runs = specs.map(() => []);
  for (let round = -1; round < repeat; round++) {
    for (let k = 0; k < specs.length; k++) {
      const i = (k + Math.max(round, 0)) % specs.length;
      const spec = specs[i];
      spec.before?.();
      const result = trial(spec.command, spec.args);
      if (round >= 0) runs[i].push(result);
    }
  }
  return specs.map((spec, i) => ({
    label: spec.label,
    seconds: median(runs[i].map((r) => r.seconds)),
    maxRssMb: median(runs[i].map((r) => r.maxRssKb / 1024)),
    deltaRssMb: median(runs[i].map((r) => (r.maxRssKb - r.rssBeforeKb) / 1024)),
  }));
}

/** Time of `dd` moving the file through the page cache: the throughput ceiling. */
export function ddRead(file, repeat = 5) {
  const times = [];
  for (let i = 0; i < repeat; i++) {
    const start = process.hrtime.bigint();
    execFileSync('dd', [`if=${file}`, 'of=/dev/null', 'bs=16M'], { stdio: 'ignore' });
    times.push(Number(process.hrtime.bigint() - start) / 1e9);
  }
  return median(times);
}

export function ddWrite(file, bytes, { fsync }, repeat = 5) {
  const times = [];
  const count = Math.ceil(bytes / (16 << 20));
  for (let i = 0; i < repeat; i++) {
    const start = process.hrtime.bigint();
    execFileSync('dd', ['if=/dev/zero', `of=${file}`, 'bs=16M', `count=${count}`, ...(fsync ? ['conv=fsync'] : [])], { stdio: 'ignore' });
    times.push(Number(process.hrtime.bigint() - start) / 1e9);
    fs.rmSync(file, { force: true });
  }
  return median(times);
}

/**
 * Evicts one file from the page cache (GNU dd's documented idiom: posix_fadvise DONTNEED
 * over the whole file). Needs no privileges and leaves other processes' cache alone.
 */
export function evictFromCache(file) {
  execFileSync('dd', ['if=/dev/null', `of=${file}`, 'oflag=nocache', 'conv=notrunc,fdatasync', 'count=0'], { stdio: 'ignore' });
}

/** The fraction of a file resident in the page cache (util-linux fincore), to check eviction. */
export function cachedFraction(file) {
  const resident = Number(execFileSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', file], { encoding: 'utf8' }).trim());
  const size = fs.statSync(file).size;
  return size === 0 ? 0 : resident / size;
}

export function machine() {
  const cpu = os.cpus()[0]?.model ?? 'unknown cpu';
  return `${os.cpus().length} × ${cpu}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, ${os.type()} ${os.release()}, Node ${process.version}`;
}

export function pythonVersions() {
  return execFileSync(PYTHON, ['-c', 'import sys, numpy; print(f"Python {sys.version.split()[0]}, NumPy {numpy.__version__}")'], {
    encoding: 'utf8',
    env: peerEnv(),
  }).trim();
}

export function formatTable(rows, columns) {
  const widths = columns.map((c) => Math.max(c.title.length, ...rows.map((r) => String(c.value(r)).length)));
  const line = (cells) => `| ${cells.map((cell, i) => String(cell).padEnd(widths[i])).join(' | ')} |`;
  return [line(columns.map((c) => c.title)), line(widths.map((w) => '-'.repeat(w))), ...rows.map((r) => line(columns.map((c) => c.value(r))))].join('\n');
}

export function saveResults(name, data) {
  // The suite points smoke runs elsewhere, so they never overwrite the committed records.
  const dir = process.env.TENSORIO_BENCH_RESULTS ?? path.join(path.dirname(new URL(import.meta.url).pathname), 'results');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}-${new Date().toISOString().slice(0, 10)}.json`);
  fs.writeFileSync(file, JSON.stringify(data, null, 2));
  return file;
}
