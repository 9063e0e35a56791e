// .npz speed against NumPy, same run, same files: writeNpz (stored, deflated) vs np.savez /
// np.savez_compressed, reading every member vs np.load, and a mapped open vs archive size.
// Each trial runs in a fresh process and reports its own time and peak RSS. The page cache
// is warm (files were just written; nothing here can drop caches without root).
//
//   node bench/npz.mjs            512 MiB across 8 float32 arrays, 5 trials (deflate: 2)
//   NPZ_BENCH_MIB=64 node bench/npz.mjs
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const PEER = path.join(here, 'npz_peer.py');
const PYTHON = process.env.TENSORIO_PYTHON ?? '/usr/bin/python3';

async function trial(op, args) {
  const t = await import(path.join(here, '..', 'dist', 'index.mjs'));
  const { performance } = await import('node:perf_hooks');
  let start = performance.now();
  if (op === 'write' || op === 'write-compressed') {
    const names = fs.readdirSync(args[0]).filter((n) => n.endsWith('.npy')).sort();
    const arrays = {};
    for (const n of names) arrays[n.slice(0, -4)] = await t.readNpy(path.join(args[0], n));
    start = performance.now();
    // fsync off: np.savez does not fsync either.
    await t.writeNpz(args[1], arrays, { compress: op === 'write-compressed', fsync: false });
  } else if (op === 'read' || op === 'read-mmap') {
    const got = await t.readNpz(args[0], { mmap: op === 'read-mmap' });
    let checksum = 0;
    for (const a of Object.values(got)) checksum += a.data.length;
    if (checksum === 0) throw new Error('nothing read');
    if (op === 'read-mmap' && !Object.values(got).every((a) => a.mapped)) throw new Error('not mapped');
  } else throw new Error(`unknown op ${op}`);
  const seconds = (performance.now() - start) / 1000;
  console.log(JSON.stringify({ seconds, maxRssMiB: process.resourceUsage().maxRSS / 1024 }));
}

function run(cmd, args) {
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  const result = spawnSync(cmd, args, { encoding: 'utf8', env, maxBuffer: 1 << 20 });
  if (result.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${result.stderr}`);
  return JSON.parse(result.stdout.trim().split('\n').pop());
}
const node = (op, ...args) => run(process.execPath, [fileURLToPath(import.meta.url), '--trial', op, ...args]);
const numpy = (op, ...args) => run(PYTHON, [PEER, op, ...args]);

const bestOf = (results) => ({ seconds: Math.min(...results.map((r) => r.seconds)), maxRssMiB: Math.max(...results.map((r) => r.maxRssMiB)) });

/** Trials of both tools interleaved (ours, theirs, ours, ...), so load from other processes hits both alike. */
function pair(trials, ours, theirs) {
  const a = [];
  const b = [];
  for (let i = 0; i < trials; i++) {
    a.push(ours());
    if (theirs) b.push(theirs());
  }
  return [bestOf(a), theirs ? bestOf(b) : undefined];
}
function row(label, ours, theirs, bytes) {
  const ratio = theirs ? (theirs.seconds / ours.seconds).toFixed(2) : '';
  const speed = (r) => `${r.seconds.toFixed(3)} s (${(bytes / 2 ** 20 / r.seconds).toFixed(0)} MiB/s, peak RSS ${r.maxRssMiB.toFixed(0)} MiB)`;
  console.log(`${label.padEnd(34)} tensorio ${speed(ours)}${theirs ? `   numpy ${speed(theirs)}   numpy/tensorio ${ratio}x` : ''}`);
}

async function main() {
  if (process.argv[2] === '--trial') return trial(process.argv[3], process.argv.slice(4));
  const mib = Number(process.env.NPZ_BENCH_MIB ?? 512);
  const trials = Number(process.env.NPZ_BENCH_TRIALS ?? 5);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'npz-bench-'));
  try {
    console.log(`# .npz benchmark, ${new Date().toISOString()}, ${os.cpus().length}x ${os.cpus()[0]?.model}, node ${process.version}`);
    console.log(`# ${mib} MiB across 8 float32 arrays; best of ${trials} trials (deflate: ${Number(process.env.NPZ_BENCH_DEFLATE_TRIALS ?? 2)}), each a fresh process; warm page cache`);
    const inputs = path.join(work, 'inputs');
    numpy('make', inputs, String(mib), '8');
    const bytes = mib * 2 ** 20;
    const ours = path.join(work, 'ours.npz');
    const theirs = path.join(work, 'numpy.npz');
    row('write stored (np.savez)', ...pair(trials, () => node('write', inputs, ours), () => numpy('savez', inputs, theirs)), bytes);
    const ct = Number(process.env.NPZ_BENCH_DEFLATE_TRIALS ?? 2);
    const deflate = process.env.NPZ_BENCH_SKIP_DEFLATE !== '1';
    const oursC = path.join(work, 'ours-c.npz');
    const theirsC = path.join(work, 'numpy-c.npz');
    if (deflate) row('write deflated (savez_compressed)', ...pair(ct, () => node('write-compressed', inputs, oursC), () => numpy('savez_compressed', inputs, theirsC)), bytes);
    if (deflate) console.log(`# sizes: stored ${fs.statSync(ours).size} (numpy ${fs.statSync(theirs).size}), deflated ${fs.statSync(oursC).size} (numpy ${fs.statSync(theirsC).size})`);
    row('read all, numpy stored archive', ...pair(trials, () => node('read', theirs), () => numpy('load', theirs)), bytes);
    row('read all, tensorio stored archive', ...pair(trials, () => node('read', ours), () => numpy('load', ours)), bytes);
    if (deflate) row('read all, deflated (numpy archive)', ...pair(ct, () => node('read', theirsC), () => numpy('load', theirsC)), bytes);
    // Mapped open: the same layout at 1/64 of the size must take about the same time.
    const small = path.join(work, 'small');
    numpy('make', small, String(Math.max(8, mib / 64)), '8');
    const oursSmall = path.join(work, 'ours-small.npz');
    node('write', small, oursSmall);
    const [big] = pair(trials, () => node('read-mmap', ours));
    const [little] = pair(trials, () => node('read-mmap', oursSmall));
    console.log(`${'mapped readNpz (all 8 members)'.padEnd(34)} ${mib} MiB: ${(big.seconds * 1000).toFixed(2)} ms, peak RSS ${big.maxRssMiB.toFixed(0)} MiB;  ${Math.max(8, mib / 64)} MiB: ${(little.seconds * 1000).toFixed(2)} ms, peak RSS ${little.maxRssMiB.toFixed(0)} MiB`);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

await main();
