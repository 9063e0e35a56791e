#!/usr/bin/env node
// The long fuzz campaign: every target of test/reliability/fuzz.ts for N inputs each
// (default 100,000; `node scripts/fuzz.mjs 1000000` or TENSORIO_FUZZ_RUNS=...), each target in
// a worker thread under a watchdog: an input that runs longer than the hang limit is saved to
// test/regressions/<target>/ before the worker is killed. Figures go to stdout and to
// bench/results/fuzz-<date>.json. Needs `npm run build:test` first (npm run fuzz does it).
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { createRequire } from 'node:module';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const engine = require(path.join(root, 'dist-test', 'test', 'reliability', 'fuzz.js'));
const HANG_MS = 10000;
const CHUNK = 1000;
const MAX_INPUT = 1 << 20;

if (isMainThread) {
  const runs = Number(process.argv[2] ?? process.env.TENSORIO_FUZZ_RUNS ?? 100000);
  const only = process.argv.slice(3);
  const names = engine.fuzzTargets('fixtures').map((t) => t.name).filter((n) => only.length === 0 || only.includes(n));
  const results = [];
  for (const name of names) {
    results.push(await runTarget(name, runs));
    const r = results.at(-1);
    console.log(`${r.target.padEnd(12)} ${String(r.runs).padStart(9)} inputs  accepted ${String(r.accepted).padStart(7)}  refused ${String(r.refused).padStart(8)}  failures ${r.failures}  slow-then-fine ${r.retriedSlow}  hangs ${r.hangs ?? 0}  max ${r.maxMs.toFixed(1)} ms/input  max alloc ${(r.maxAllocationRatio * 100).toFixed(2)}% of bound  max heap growth ${((r.maxHeapGrowth ?? 0) / 1048576).toFixed(1)} MiB  ${r.seconds.toFixed(1)} s`);
    if (r.codes?.ERR_TIMEOUT) console.log(`${''.padEnd(12)} of the refusals, ${r.codes.ERR_TIMEOUT} stopped at the h5wasm deadline (ERR_TIMEOUT)`);
  }
  const record = {
    date: new Date().toISOString(),
    machine: `${os.cpus()[0]?.model} x${os.cpus().length}, node ${process.version}`,
    path: process.env.TENSORIO_NO_NATIVE === '1' ? 'pure-typescript' : 'native',
    runsPerTarget: runs,
    results,
  };
  const suffix = `${only.length > 0 ? `-${only.join('-')}` : ''}${record.path === 'pure-typescript' ? '-ts' : ''}`;
  const out = path.join(root, 'bench', 'results', `fuzz-${record.date.slice(0, 10)}${suffix}.json`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify(record, null, 2) + '\n');
  console.log(`figures written to ${path.relative(root, out)}`);
  const bad = results.filter((r) => r.failures > 0 || r.hangs > 0);
  if (bad.length > 0) {
    console.error(`FAILURES: ${bad.map((r) => `${r.target}: ${r.saved.map((file, i) => `${file} (${r.messages[i]})`).join(', ')}`).join('; ')}`);
    process.exit(1);
  }
} else {
  // Shared with the watchdog: [0] counter, [1] input length, then the input's bytes.
  const control = new Int32Array(workerData.shared, 0, 2);
  const bytes = new Uint8Array(workerData.shared, 8);
  const target = engine.fuzzTargets('fixtures').find((t) => t.name === workerData.name);
  const onInput = (input) => {
    const n = Math.min(input.length, MAX_INPUT);
    bytes.set(input.subarray(0, n));
    control[1] = n;
    Atomics.add(control, 0, 1);
  };
  // In chunks, with the targets prepared again before each: an h5wasm instance retired after
  // a deadline (ERR_TIMEOUT) is replaced by a fresh one, which a synchronous run cannot do.
  const figures = engine.emptyFigures(target.name);
  for (let chunk = 0; figures.runs < workerData.runs; chunk++) {
    await engine.prepareTargets();
    engine.fuzz(target, Math.min(CHUNK, workerData.runs - figures.runs), { onInput, figures, seed: (Date.now() ^ (chunk * 0x9e3779b1)) | 0 });
  }
  parentPort.postMessage(figures);
}

function runTarget(name, runs) {
  const shared = new SharedArrayBuffer(8 + MAX_INPUT);
  const control = new Int32Array(shared, 0, 2);
  const worker = new Worker(fileURLToPath(import.meta.url), { workerData: { name, runs, shared } });
  return new Promise((resolve, reject) => {
    let last = -1;
    let still = 0;
    const timer = setInterval(() => {
      const now = Atomics.load(control, 0);
      still = now === last ? still + 1000 : 0;
      last = now;
      if (still >= HANG_MS) {
        clearInterval(timer);
        const input = new Uint8Array(shared, 8, control[1]).slice();
        const saved = engine.saveRegression(name, input);
        console.error(`${name}: an input ran over ${HANG_MS} ms; saved as ${saved}`);
        void worker.terminate();
        resolve({ ...engine.emptyFigures(name), runs: now, hangs: 1, maxMs: HANG_MS, saved: [saved], messages: ['hang'] });
      }
    }, 1000);
    worker.once('message', (figures) => {
      clearInterval(timer);
      resolve({ ...figures, hangs: 0 });
    });
    worker.once('error', (error) => {
      clearInterval(timer);
      reject(error);
    });
  });
}
