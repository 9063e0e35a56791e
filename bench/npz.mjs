// .npz benchmark: tensorio against NumPy (same machine, same run, same input arrays):
// writeNpz stored / deflated vs np.savez / np.savez_compressed, reading every member vs
// np.load, and a mapped open of an aligned stored archive at two sizes. Warm page cache.
//   node bench/npz.mjs [--size-mb 512] [--repeat 5] [--deflate-repeat 1] [--dir /tmp] [--groups write,read,...]
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { nativeStatus } from 'tensorio';
import { formatTable, machine, measureInterleaved, peerEnv, PYTHON, pythonVersions, saveResults } from './lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    'size-mb': { type: 'string', default: '512' },
    repeat: { type: 'string', default: '5' },
    'deflate-repeat': { type: 'string', default: '1' },
    dir: { type: 'string', default: os.tmpdir() },
    groups: { type: 'string', default: 'write,deflate,read,read-ours,inflate,mmap' },
  },
});
const wanted = new Set(values.groups.split(','));
const sizeMb = Number(values['size-mb']);
const repeat = Number(values.repeat);
const deflateRepeat = Number(values['deflate-repeat']);
const dir = fs.mkdtempSync(path.join(values.dir, 'tensorio-bench-npz-'));
const at = (name) => path.join(dir, name);
const COUNT = 8;

const make = (folder, mib) => execFileSync(PYTHON, [path.join(here, 'npz_peer.py'), 'make', folder, String(mib), String(COUNT)], { env: peerEnv() });
const node = (label, ...args) => ({ label, command: process.execPath, args: [path.join(here, 'npz_trial.mjs'), ...args] });
const py = (label, ...args) => ({ label, command: PYTHON, args: [path.join(here, 'npz_peer.py'), ...args] });
// Writes go to a new path each time, as in bench/npy.mjs: replacing a large file costs more
// than the write itself on ext4 (a rename over a file, or a truncation, flushes the new data).
// `sync` first, so no trial is throttled by the dirty pages of the one before it (or of other
// processes on a shared machine).
const fresh = (spec) => ({
  ...spec,
  before: () => {
    fs.rmSync(spec.args[spec.args.length - 1], { force: true });
    execFileSync('sync');
  },
});

try {
  make(at('inputs'), sizeMb);
  const rows = [];
  const group = (name, specs, times = repeat, mib = sizeMb) => {
    if (!wanted.has(name)) return;
    for (const r of measureInterleaved(specs, times)) {
      rows.push({ group: name, ...r, mbps: mib / r.seconds });
      console.error(`${name.padEnd(9)} ${r.label.padEnd(40)} ${(r.seconds * 1000).toFixed(2)} ms`);
    }
  };
  group('write', [fresh(node('tensorio writeNpz (stored, aligned)', 'write', at('inputs'), at('ours.npz'))), fresh(py('numpy np.savez', 'savez', at('inputs'), at('numpy.npz')))]);
  group(
    'deflate',
    [fresh(node('tensorio writeNpz compress: true', 'write-compressed', at('inputs'), at('ours-c.npz'))), fresh(py('numpy np.savez_compressed', 'savez_compressed', at('inputs'), at('numpy-c.npz')))],
    deflateRepeat,
  );
  // The read groups read what the write groups wrote; made untimed when those were skipped.
  const ensure = (file, spec) => fs.existsSync(file) || execFileSync(spec.command, spec.args, { env: peerEnv() });
  ensure(at('numpy.npz'), py('', 'savez', at('inputs'), at('numpy.npz')));
  ensure(at('ours.npz'), node('', 'write', at('inputs'), at('ours.npz')));
  if (wanted.has('inflate')) ensure(at('numpy-c.npz'), py('', 'savez_compressed', at('inputs'), at('numpy-c.npz')));
  group('read', [node('tensorio readNpz (numpy archive)', 'read', at('numpy.npz')), py('numpy np.load (numpy archive)', 'load', at('numpy.npz'))]);
  group('read-ours', [node('tensorio readNpz (tensorio archive)', 'read', at('ours.npz')), py('numpy np.load (tensorio archive)', 'load', at('ours.npz'))]);
  group('inflate', [node('tensorio readNpz (numpy deflated)', 'read', at('numpy-c.npz')), py('numpy np.load (numpy deflated)', 'load', at('numpy-c.npz'))], deflateRepeat);
  // Mapped open at two sizes: its cost must not grow with the archive.
  const smallMb = Math.max(8, sizeMb / 64);
  make(at('small'), smallMb);
  execFileSync(process.execPath, [path.join(here, 'npz_trial.mjs'), 'write', at('small'), at('ours-small.npz')]);
  group('mmap', [node(`tensorio readNpz mmap (${sizeMb} MiB)`, 'read-mmap', at('ours.npz'))]);
  group('mmap', [node(`tensorio readNpz mmap (${smallMb} MiB)`, 'read-mmap', at('ours-small.npz'))], repeat, smallMb);

  const sizes = Object.fromEntries(['ours.npz', 'numpy.npz', 'ours-c.npz', 'numpy-c.npz'].filter((f) => fs.existsSync(at(f))).map((f) => [f, fs.statSync(at(f)).size]));
  const numpyOf = (g) => rows.find((r) => r.group === g && r.label.startsWith('numpy'));
  const table = formatTable(rows, [
    { title: 'group', value: (r) => r.group },
    { title: 'operation', value: (r) => r.label },
    { title: 'median ms', value: (r) => (r.seconds * 1000).toFixed(2) },
    { title: 'MiB/s', value: (r) => (r.group === 'mmap' ? '-' : r.mbps.toFixed(0)) },
    { title: 'x NumPy time', value: (r) => (numpyOf(r.group) ? (r.seconds / numpyOf(r.group).seconds).toFixed(2) : '-') },
    { title: 'peak RSS MiB', value: (r) => r.maxRssMb.toFixed(0) },
  ]);
  const header = `.npz benchmark, ${sizeMb} MiB across ${COUNT} float32 arrays, warm page cache, median of ${repeat} fresh-process trials (deflate: ${deflateRepeat})\n${new Date().toISOString()} | ${machine()} | ${pythonVersions()} | tensorio native: ${nativeStatus().loaded}`;
  console.log(`${header}\n\n${table}\n\narchive sizes (bytes): ${JSON.stringify(sizes)}`);
  const saved = saveResults('npz', { header, sizeMb, repeat, deflateRepeat, rows, sizes });
  console.error(`saved ${path.relative(process.cwd(), saved)}`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
