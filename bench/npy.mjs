// .npy benchmark: tensorio against NumPy (same machine, same run), plain fs, and dd as the
// throughput ceiling. Warm page cache: the file is read once before the read trials.
//   node bench/npy.mjs [--size-mb 512] [--repeat 5] [--dir /tmp]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { nativeStatus, writeNpy, zeros } from 'tensorio';
import { ddRead, ddWrite, formatTable, machine, measureInterleaved, PYTHON, pythonVersions, saveResults } from './lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: { 'size-mb': { type: 'string', default: '512' }, repeat: { type: 'string', default: '5' }, dir: { type: 'string', default: os.tmpdir() } },
});
const sizeMb = Number(values['size-mb']);
const repeat = Number(values.repeat);
const dir = fs.mkdtempSync(path.join(values.dir, 'tensorio-bench-'));
const file = path.join(dir, 'input.npy');
const out = path.join(dir, 'out.npy');
const bytes = sizeMb * 2 ** 20;

try {
  const array = zeros([bytes / 4], 'float32');
  const data = array.data;
  for (let i = 0; i < data.length; i += 1024) data[i] = i;
  await writeNpy(file, array, { fsync: false });
  ddRead(file, 1); // warm the page cache

  const node = (label, op, before) => ({ label, command: process.execPath, args: [path.join(here, 'npy_trial.mjs'), op, file, out], before });
  const py = (label, op, before) => ({ label, command: PYTHON, args: [path.join(here, 'npy_peer.py'), op, file, out], before });
  const clean = () => fs.rmSync(out, { force: true });
  const rows = [];
  const group = (name, specs, ceiling) => {
    for (const r of measureInterleaved(specs, repeat)) {
      rows.push({ group: name, ...r, mbps: sizeMb / r.seconds });
      console.error(`${name.padEnd(7)} ${r.label.padEnd(36)} ${(r.seconds * 1000).toFixed(2)} ms`);
    }
    if (ceiling) rows.push({ group: name, label: ceiling.label, seconds: ceiling.seconds, mbps: sizeMb / ceiling.seconds });
  };

  group('open', [node('tensorio readNpy mmap', 'open-mmap'), py('numpy np.load mmap_mode=r', 'load-mmap')]);
  group('mapped', [node('tensorio mmap + touch every page', 'read-mmap-touch'), py('numpy mmap + touch every page', 'load-mmap-touch')]);
  group(
    'read',
    [node('tensorio readNpy', 'read'), py('numpy np.load', 'load'), node('fs.readFile (bytes only)', 'fs-readFile')],
    { label: 'dd to /dev/null (ceiling)', seconds: ddRead(file, repeat) },
  );
  group(
    'write',
    [node('tensorio writeNpy fsync:false', 'write-nofsync', clean), py('numpy np.save (no fsync)', 'save', clean), node('fs.writeFile (no fsync)', 'fs-writeFile', clean)],
    { label: 'dd from /dev/zero (ceiling)', seconds: ddWrite(out, bytes, { fsync: false }, repeat) },
  );
  group(
    'durable',
    [node('tensorio writeNpy (fsync, default)', 'write', clean), py('numpy np.save + fsync', 'save-fsync', clean)],
    { label: 'dd conv=fsync (ceiling)', seconds: ddWrite(out, bytes, { fsync: true }, repeat) },
  );

  // Ratio to the NumPy row of the same group (>1 means tensorio is slower).
  const numpyOf = (group) => rows.find((r) => r.group === group && r.label.startsWith('numpy'));
  const table = formatTable(rows, [
    { title: 'group', value: (r) => r.group },
    { title: 'operation', value: (r) => r.label },
    { title: 'median ms', value: (r) => (r.seconds * 1000).toFixed(2) },
    { title: 'MiB/s', value: (r) => (r.group === 'open' ? '-' : r.mbps.toFixed(0)) },
    { title: 'x NumPy time', value: (r) => (numpyOf(r.group) ? (r.seconds / numpyOf(r.group).seconds).toFixed(2) : '-') },
    { title: 'peak RSS MiB', value: (r) => (r.maxRssMb === undefined ? '-' : r.maxRssMb.toFixed(0)) },
    { title: 'RSS growth / file', value: (r) => (r.deltaRssMb === undefined ? '-' : (r.deltaRssMb / sizeMb).toFixed(2)) },
  ]);
  const header = `.npy benchmark, ${sizeMb} MiB float32, warm page cache, median of ${repeat} fresh-process trials\n${new Date().toISOString()} | ${machine()} | ${pythonVersions()} | tensorio native: ${nativeStatus().loaded}`;
  console.log(`${header}\n\n${table}`);
  const saved = saveResults('npy', { header, sizeMb, repeat, rows });
  console.error(`saved ${path.relative(process.cwd(), saved)}`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
