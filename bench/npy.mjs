// .npy benchmark: tensorio against NumPy (same machine, same run), npyjs, plain fs, and dd
// as the throughput ceiling. Each trial is a fresh process; peers are interleaved.
//   node bench/npy.mjs [--size-mb 512] [--repeat 5] [--cache warm|cold] [--dir /tmp]
// Warm: the input is read once first and stays in the page cache. Cold: the input is evicted
// from the page cache before every read trial (posix_fadvise DONTNEED through dd).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { nativeStatus, writeNpy, zeros } from 'tensorio';
import { hasNodePeer, ddRead, ddWrite, evictFromCache, formatTable, machine, measureInterleaved, PYTHON, pythonVersions, saveResults } from './lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

/** Runs every .npy case at one size; returns rows {group, label, seconds, mbps, maxRssMb, deltaRssMb}. */
export async function npyBench({ sizeMb, repeat = 5, cache = 'warm', dir = os.tmpdir(), log = () => {} }) {
  const work = fs.mkdtempSync(path.join(dir, 'tensorio-bench-'));
  const file = path.join(work, 'input.npy');
  const out = path.join(work, 'out.npy');
  const bytes = Math.round(sizeMb * 2 ** 20);
  try {
    const array = zeros([Math.floor(bytes / 4)], 'float32');
    for (let i = 0; i < array.data.length; i += 1024) array.data[i] = i;
    // fsync: trials on a file whose pages are still being written back measure the
    // writeback (a mapped open of a dirty 1 GiB file took 5 ms instead of 1.3 ms).
    await writeNpy(file, array);
    const prepare = cache === 'cold' ? () => evictFromCache(file) : () => undefined;
    if (cache === 'warm') ddRead(file, 1);

    const node = (label, op, before = prepare) => ({ label, command: process.execPath, args: [path.join(here, 'npy_trial.mjs'), op, file, out], before });
    const py = (label, op, before = prepare) => ({ label, command: PYTHON, args: [path.join(here, 'npy_peer.py'), op, file, out], before });
    const clean = () => fs.rmSync(out, { force: true });
    const rows = [];
    const group = (name, specs, ceiling) => {
      for (const r of measureInterleaved(specs, repeat)) {
        rows.push({ group: name, ...r, mbps: sizeMb / r.seconds });
        log(`${String(sizeMb).padStart(6)} MiB ${cache} ${name.padEnd(7)} ${r.label.padEnd(36)} ${(r.seconds * 1000).toFixed(2)} ms`);
      }
      if (ceiling) rows.push({ group: name, label: ceiling.label, seconds: ceiling.seconds, mbps: sizeMb / ceiling.seconds });
    };

    group('open', [node('tensorio readNpy mmap', 'open-mmap'), node('tensorio readNpySync mmap', 'open-mmap-sync'), py('numpy np.load mmap_mode=r', 'load-mmap')]);
    group('mapped', [node('tensorio mmap + touch every page', 'read-mmap-touch'), py('numpy mmap + touch every page', 'load-mmap-touch')]);
    // fs.readFile, and so npyjs, stop at 2 GiB.
    const small = bytes < 2 ** 31;
    const readers = [node('tensorio readNpy', 'read'), py('numpy np.load', 'load')];
    if (small) readers.push(node('fs.readFile (bytes only)', 'fs-readFile'));
    if (small && hasNodePeer('npyjs')) readers.push(node('npyjs (fs.readFile + parse)', 'npyjs'));
    else if (small) log('skipped npyjs (fs.readFile + parse): the npyjs package is not installed');
    const ddTimes = [];
    for (let i = 0; i < repeat; i++) {
      prepare();
      ddTimes.push(ddRead(file, 1));
    }
    group('read', readers, { label: 'dd to /dev/null (ceiling)', seconds: ddTimes.sort((a, b) => a - b)[ddTimes.length >> 1] });
    if (cache === 'warm') {
      group(
        'write',
        [node('tensorio writeNpy fsync:false', 'write-nofsync', clean), py('numpy np.save (no fsync)', 'save', clean), ...(small ? [node('fs.writeFile (no fsync)', 'fs-writeFile', clean)] : [])],
        { label: 'dd from /dev/zero (ceiling)', seconds: ddWrite(out, bytes, { fsync: false }, repeat) },
      );
      group(
        'durable',
        [
          node('tensorio writeNpy (fsync, default)', 'write', clean),
          node('tensorio writeNpy (fsync, directIo:false)', 'write-buffered', clean),
          py('numpy np.save + fsync', 'save-fsync', clean),
        ],
        { label: 'dd conv=fsync (ceiling)', seconds: ddWrite(out, bytes, { fsync: true }, repeat) },
      );
    }
    return rows;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** Many small arrays: `count` files of 4 KiB each (1,000 by default), read one by one. */
export async function manySmallBench({ count = 1000, repeat = 5, dir = os.tmpdir(), log = () => {} }) {
  const work = fs.mkdtempSync(path.join(dir, 'tensorio-many-'));
  try {
    for (let i = 0; i < count; i++) await writeNpy(path.join(work, `${String(i).padStart(5, '0')}.npy`), zeros([1024]), { fsync: false });
    const node = (label, op) => ({ label, command: process.execPath, args: [path.join(here, 'npy_trial.mjs'), op, work] });
    const py = (label, op) => ({ label, command: PYTHON, args: [path.join(here, 'npy_peer.py'), op, work] });
    const rows = measureInterleaved(
      [node(`tensorio readNpy x${count}`, 'many-read'), py(`numpy np.load x${count}`, 'many-load'), node(`tensorio readNpy mmap x${count}`, 'many-read-mmap'), py(`numpy mmap_mode=r x${count}`, 'many-load-mmap')],
      repeat,
    ).map((r) => ({ group: 'many', count, ...r, mbps: (count * 4096) / 2 ** 20 / r.seconds }));
    for (const r of rows) log(`${count} x 4 KiB ${r.label.padEnd(32)} ${(r.seconds * 1000).toFixed(2)} ms`);
    return rows;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

export function npyTable(rows, sizeMb) {
  const numpyOf = (group) => rows.find((r) => r.group === group && r.label.startsWith('numpy'));
  return formatTable(rows, [
    { title: 'group', value: (r) => r.group },
    { title: 'operation', value: (r) => r.label },
    { title: 'median ms', value: (r) => (r.seconds * 1000).toFixed(2) },
    { title: 'MiB/s', value: (r) => (r.group === 'open' ? '-' : r.mbps.toFixed(0)) },
    { title: 'time / NumPy', value: (r) => (numpyOf(r.group) ? (r.seconds / numpyOf(r.group).seconds).toFixed(2) : '-') },
    { title: 'peak RSS MiB', value: (r) => (r.maxRssMb === undefined ? '-' : r.maxRssMb.toFixed(0)) },
    { title: 'RSS growth / data', value: (r) => (r.deltaRssMb === undefined || !sizeMb ? '-' : (r.deltaRssMb / sizeMb).toFixed(2)) },
  ]);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      'size-mb': { type: 'string', default: '512' },
      repeat: { type: 'string', default: '5' },
      cache: { type: 'string', default: 'warm' },
      dir: { type: 'string', default: os.tmpdir() },
    },
  });
  const sizeMb = Number(values['size-mb']);
  const rows = await npyBench({ sizeMb, repeat: Number(values.repeat), cache: values.cache, dir: values.dir, log: (l) => console.error(l) });
  const header = `.npy benchmark, ${sizeMb} MiB float32, ${values.cache} page cache, median of ${values.repeat} fresh-process trials (interleaved, after a discarded warm-up round)\n${new Date().toISOString()} | ${machine()} | ${pythonVersions()} | tensorio native: ${nativeStatus().loaded}`;
  console.log(`${header}\n\n${npyTable(rows, sizeMb)}`);
  const saved = saveResults(`npy-${sizeMb}MiB-${values.cache}`, { header, sizeMb, cache: values.cache, repeat: Number(values.repeat), rows });
  console.error(`saved ${path.relative(process.cwd(), saved)}`);
}
