// PyTorch benchmark: a state dict of 1,000 float32 tensors (2,000 MiB by default) written by
// real torch.save, read by tensorio against real PyTorch in the same run.
//
//   node bench/torch.mjs [--size-mb 2000,256] [--trials 5] [--dir /tmp]
//
// For each size (MiB, comma-separated; each its own table, peers in the same run), each trial
// a fresh process (interleaved, after a discarded warm-up round, page cache warm):
//   - eager: readTorch against torch.load(weights_only=True), and readTorch without the addon
//     (TENSORIO_NO_NATIVE=1: plain fs reads into 4 KiB pages; the addon asks for transparent
//     huge pages on its read buffers, which costs far more here after a process that freed
//     memory, see bench/README.md);
//   - mapped: readTorch({ mmap: true }) against torch.load(mmap=True, weights_only=True);
//   - the mapped open (openTorch({ mmap: true }) and the mapped readTorch) of this file and of a
//     file with the same 1,000 names and tiny tensors: its time must not depend on the data.
// Python's time excludes `import torch` (about 3 s here). Peak RSS is each process's own.
// Needs `npm run build` and the torch environment (TENSORIO_TORCH_PYTHON, or
// `node scripts/python-env.cjs torch`). The files are removed at the end.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { formatTable, machine, measureInterleaved, saveResults } from './lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const TENSORS = 1000;
const MiB = 2 ** 20;

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

function torchPython() {
  if (process.env.TENSORIO_TORCH_PYTHON) return process.env.TENSORIO_TORCH_PYTHON;
  const env = require(path.join(here, '..', 'scripts', 'python-env.cjs'));
  return env.ensurePythonEnv('torch', { log: (line) => console.error(line) });
}

// ---------------------------------------------------------------------------------------
// Child processes: one measurement each, one JSON line.

const PEER = `
import sys, time, resource, torch
mode, path = sys.argv[1], sys.argv[2]
def rss_kb():
    with open('/proc/self/statm') as f: return int(f.read().split()[1]) * resource.getpagesize() // 1024
before = rss_kb()
t = time.perf_counter()
sd = torch.load(path, weights_only=True, mmap=(mode == 'mmap'))
seconds = time.perf_counter() - t
assert len(sd) == ${TENSORS}
print('{"seconds": %f, "rssBeforeKb": %d, "maxRssKb": %d}' % (seconds, before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
`;

async function child(mode, file) {
  // The addon is chosen when tensorio loads: the pure-TypeScript read is asked for before that.
  if (mode === 'eager-no-native') process.env.TENSORIO_NO_NATIVE = '1';
  const tensorio = require(path.join(here, '..', 'dist', 'index.js'));
  const rssBeforeKb = Math.round(process.memoryUsage().rss / 1024);
  const start = performance.now();
  let count;
  if (mode === 'open') {
    const f = await tensorio.openTorch(file, { mmap: true });
    count = f.keys().length;
    f.close();
  } else {
    count = Object.keys(await tensorio.readTorch(file, { mmap: mode === 'mapped' })).length;
    // The tensors stay alive to here: what was read is what is counted.
  }
  const seconds = (performance.now() - start) / 1000;
  if (count !== TENSORS) throw new Error(`read ${count} tensors`);
  console.log(JSON.stringify({ seconds, rssBeforeKb, maxRssKb: process.resourceUsage().maxRSS }));
}

// ---------------------------------------------------------------------------------------

async function main() {
  const sizes = String(arg('size-mb', '2000,256')).split(',').map(Number);
  const trials = Number(arg('trials', 5));
  const python = torchPython();
  const runs = [];
  for (const sizeMb of sizes) runs.push(benchSize(python, sizeMb, trials));
  console.log(`results: ${saveResults('torch', { date: new Date().toISOString(), machine: machine(), load: os.loadavg(), trials, runs })}`);
}

function benchSize(python, sizeMb, trials) {
  const dir = fs.mkdtempSync(path.join(arg('dir', os.tmpdir()), 'tensorio-bench-torch-'));
  const cols = 1024;
  const rows = Math.max(1, Math.round((sizeMb * MiB) / TENSORS / 4 / cols));
  const big = path.join(dir, 'big.pt');
  const small = path.join(dir, 'small.pt');
  try {
    const write = spawnSync(
      python,
      [
        '-c',
        `import sys, torch
for path, rows, cols in ((sys.argv[1], int(sys.argv[3]), int(sys.argv[4])), (sys.argv[2], 1, 4)):
    torch.save({'model.layers.%04d.weight' % i: torch.full((rows, cols), float(i)) for i in range(${TENSORS})}, path)`,
        big,
        small,
        String(rows),
        String(cols),
      ],
      { stdio: 'inherit' },
    );
    if (write.status !== 0) throw new Error('torch.save failed');
    // Warm the page cache: every trial reads a cached file.
    for (const file of [big, small]) spawnSync('cat', [file], { stdio: ['ignore', 'ignore', 'inherit'] });
    const node = (mode, file) => [process.execPath, [fileURLToPath(import.meta.url), '--child', mode, file]];
    const spec = (label, group, [command, args]) => ({ label, group, command, args });
    const specs = [
      spec('tensorio readTorch', 'eager', node('eager', big)),
      spec('tensorio readTorch, no addon (4 KiB pages)', 'eager', node('eager-no-native', big)),
      spec('torch.load(weights_only=True)', 'eager', [python, ['-c', PEER, 'eager', big]]),
      spec('tensorio readTorch mmap', 'mapped', node('mapped', big)),
      spec('torch.load(mmap=True, weights_only=True)', 'mapped', [python, ['-c', PEER, 'mmap', big]]),
      spec('tensorio openTorch mmap, big file', 'open', node('open', big)),
      spec('tensorio openTorch mmap, tiny tensors', 'open', node('open', small)),
      spec('tensorio readTorch mmap, tiny tensors', 'open', node('mapped', small)),
      spec('torch.load(mmap=True), tiny tensors', 'open', [python, ['-c', PEER, 'mmap', small]]),
    ];
    const loadBefore = os.loadavg();
    const results = measureInterleaved(specs, trials);
    const loadAfter = os.loadavg();
    const by = Object.fromEntries(results.map((r) => [r.label, r]));
    const ratio = (a, b) => (by[a].seconds / by[b].seconds).toFixed(2);
    const dataMb = (fs.statSync(big).size / MiB).toFixed(0);
    const header = `PyTorch benchmark, ${TENSORS} float32 tensors (${dataMb} MiB file by torch.save), warm page cache, median of ${trials} fresh-process trials (interleaved, after a discarded warm-up round)\n${new Date().toISOString()} | ${machine()} | ${spawnSync(python, ['-c', 'import torch, sys; print(f"Python {sys.version.split()[0]}, torch {torch.__version__}")'], { encoding: 'utf8' }).stdout.trim()} | load average ${loadBefore.map((l) => l.toFixed(2)).join(' ')} before, ${loadAfter.map((l) => l.toFixed(2)).join(' ')} after`;
    const table = formatTable(
      results.map((r, i) => ({ ...r, group: specs[i].group })),
      [
        { title: 'group', value: (r) => r.group },
        { title: 'operation', value: (r) => r.label },
        { title: 'median ms', value: (r) => (r.seconds * 1000).toFixed(1) },
        { title: 'peak RSS MiB', value: (r) => r.maxRssMb.toFixed(0) },
        { title: 'RSS growth MiB', value: (r) => r.deltaRssMb.toFixed(0) },
      ],
    );
    const ratios = [
      `eager: readTorch / torch.load = ${ratio('tensorio readTorch', 'torch.load(weights_only=True)')} (no addon: ${ratio('tensorio readTorch, no addon (4 KiB pages)', 'torch.load(weights_only=True)')})`,
      `mapped: readTorch mmap / torch.load(mmap=True) = ${ratio('tensorio readTorch mmap', 'torch.load(mmap=True, weights_only=True)')}`,
      `mapped open, ${dataMb} MiB / tiny tensors = ${ratio('tensorio openTorch mmap, big file', 'tensorio openTorch mmap, tiny tensors')} (readTorch mmap: ${ratio('tensorio readTorch mmap', 'tensorio readTorch mmap, tiny tensors')}; torch.load mmap: ${ratio('torch.load(mmap=True, weights_only=True)', 'torch.load(mmap=True), tiny tensors')})`,
    ];
    console.log(`${header}\n\n${table}\n\n${ratios.join('\n')}\n`);
    return { sizeMb: Number(dataMb), loadBefore, loadAfter, results, ratios };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--child') await child(process.argv[3], process.argv[4]);
else await main();
