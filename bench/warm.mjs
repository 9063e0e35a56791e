// Warm-process benchmark: N of one operation in one Node process (tensorio) and N in one
// Python process (NumPy, the reference `safetensors` package), the median and p90 of each and
// the peak RSS, beside the first one, for .npy, .npz (stored members), safetensors and many
// small .npy files; where a durable write's time goes, step by step; dd as the ceiling. The
// users this is for run for hours; the fresh-process trials in bench/npy.mjs and the format
// scripts do not show what the thousandth operation costs.
//   node bench/warm.mjs [--all] [--quick] [--only npy,npz,safetensors,small,steps]
//        [--size-mb 512] [--opens 300] [--reads 30] [--writes 9] [--small 10000] [--rounds 1] [--dir /tmp]
// --quick: 64 MiB, few repetitions, 1,000 small files (a minute or two). The peer Python is
// $TENSORIO_PYTHON, else $TENSORIO_ORACLE_PYTHON, else the oracle venv's, else /usr/bin/python3;
// rows whose peer module is missing are skipped with a line naming it.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { nativeStatus, writeNpy, writeNpz, writeSafetensors, zeros } from 'tensorio';
import { ddRead, ddWrite, formatTable, machine, median, peerEnv, saveResults } from './lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    all: { type: 'boolean' },
    quick: { type: 'boolean' },
    only: { type: 'string' },
    'size-mb': { type: 'string' },
    opens: { type: 'string' },
    reads: { type: 'string' },
    writes: { type: 'string' },
    small: { type: 'string' },
    rounds: { type: 'string' },
    dir: { type: 'string', default: os.tmpdir() },
  },
});
const quick = values.quick === true;
const sizeMb = Number(values['size-mb'] ?? (quick ? 64 : 512));
const opens = values.opens ?? (quick ? '50' : '300');
const reads = values.reads ?? (quick ? '10' : '30');
const writes = values.writes ?? (quick ? '5' : '9');
const smallCount = Number(values.small ?? (quick ? 1000 : 10000));
const rounds = Number(values.rounds ?? (quick ? 1 : 3));
const groups = new Set((values.only ?? 'npy,npz,safetensors,small,steps').split(','));

function peerPython() {
  const candidates = [process.env.TENSORIO_PYTHON, process.env.TENSORIO_ORACLE_PYTHON];
  const cache = path.join(os.homedir(), '.cache', 'tensorio');
  if (fs.existsSync(cache)) {
    for (const name of fs.readdirSync(cache).sort()) if (name.startsWith('python-oracle-')) candidates.push(path.join(cache, name, 'bin', 'python'));
  }
  candidates.push('/usr/bin/python3');
  return candidates.find((candidate) => candidate && fs.existsSync(candidate));
}
const PYTHON = peerPython();
const hasModule = (name) => spawnSync(PYTHON, ['-c', `import ${name}`], { env: peerEnv() }).status === 0;
const versions = execFileSync(
  PYTHON,
  ['-c', 'import sys, numpy\ntry:\n import safetensors; s = ", safetensors " + safetensors.__version__\nexcept ImportError: s = ""\nprint(f"Python {sys.version.split()[0]}, NumPy {numpy.__version__}{s}")'],
  { encoding: 'utf8', env: peerEnv() },
).trim();

const work = fs.mkdtempSync(path.join(values.dir, 'tensorio-warm-'));
const files = {
  npy: path.join(work, 'input.npy'),
  npz: path.join(work, 'input.npz'),
  safetensors: path.join(work, 'input.safetensors'),
  small: path.join(work, 'small'),
};

function trialJson(command, args) {
  const result = spawnSync(command, args, { encoding: 'utf8', env: peerEnv(), maxBuffer: 16 << 20 });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${result.stderr}`);
  return JSON.parse(result.stdout.trim().split('\n').pop());
}

/** Median over rounds of each field (and of each step), rounds alternating who goes first. */
function combine(results) {
  const pick = (key) => median(results.map((r) => r[key]));
  const combined = { medianMs: pick('medianMs'), p90Ms: pick('p90Ms'), firstMs: pick('firstMs'), cpuMedianMs: pick('cpuMedianMs'), baselineKb: pick('baselineKb'), maxRssKb: Math.max(...results.map((r) => r.maxRssKb)) };
  if (results[0].steps) combined.steps = Object.fromEntries(Object.keys(results[0].steps).map((k) => [k, median(results.map((r) => r.steps[k]))]));
  return combined;
}

try {
  const elements = Math.floor((sizeMb * 2 ** 20) / 4);
  const array = zeros([elements], 'float32');
  for (let i = 0; i < array.data.length; i += 1024) array.data[i] = i;
  await writeNpy(files.npy, array);
  // Four members / tensors of a quarter each: a checkpoint, not one array.
  const quarter = (k) => ({ dtype: 'float32', shape: [elements >> 2], data: array.data.subarray(k * (elements >> 2), (k + 1) * (elements >> 2)) });
  const parts = Object.fromEntries([0, 1, 2, 3].map((k) => [`w${k}`, quarter(k)]));
  await writeNpz(files.npz, parts);
  await writeSafetensors(files.safetensors, parts);
  fs.mkdirSync(files.small);
  const small = zeros([1024 - 32], 'float32'); // 128-byte header + 3,968 bytes = 4 KiB
  for (let i = 0; i < smallCount; i++) await writeNpy(path.join(files.small, `${i}.npy`), small, { fsync: false });

  const cases = [];
  if (groups.has('npy')) cases.push(['npy:open-mmap', opens], ['npy:read', reads], ['npy:read-sync', reads], ['npy:write', writes], ['npy:write-atomic', writes], ['npy:write-durable', writes], ['npy:write-durable-buffered', writes], ['npy:write-durable-direct', writes]);
  if (groups.has('npz')) cases.push(['npz:open-mmap', opens], ['npz:open-mmap-sync', opens], ['npz:read', reads], ['npz:write', writes], ['npz:write-durable', writes]);
  if (groups.has('safetensors')) {
    if (hasModule('safetensors')) {
      cases.push(['safetensors:open-mmap', opens], ['safetensors:open-mmap-sync', opens], ['safetensors:read', reads], ['safetensors:read-sync', reads], ['safetensors:open-get', reads], ['safetensors:write', writes], ['safetensors:write-durable', writes]);
    } else console.log(`skipped safetensors rows: ${PYTHON} has no 'safetensors' package (set TENSORIO_PYTHON to one that has)`);
  }
  if (groups.has('small')) cases.push(['small:read', '3'], ['small:read-serial', '3'], ['small:read-sync', '3']);
  if (groups.has('steps')) cases.push(['npy:write-steps', String(2 * Number(writes))], ['npy:durable-steps', writes]);

  const rows = [];
  for (const [op, n] of cases) {
    const input = files[op.split(':')[0]];
    const out = path.join(work, `out.${op.split(':')[0] === 'small' ? 'npy' : op.split(':')[0]}`);
    const ours = [];
    const peer = [];
    for (let round = 0; round < rounds; round++) {
      // Alternate who goes first, so page-cache writeback from one does not always land on the other.
      const t = () => ours.push(trialJson(process.execPath, [path.join(here, 'warm_trial.mjs'), op, input, out, n]));
      const p = () => peer.push(trialJson(PYTHON, [path.join(here, 'warm_peer.py'), op, input, out, n]));
      if ((rows.length + round) % 2) t(), p();
      else p(), t();
      fs.rmSync(out, { force: true });
    }
    const row = { op, n, ours: combine(ours), peer: combine(peer) };
    rows.push(row);
    console.error(`${op.padEnd(26)} x${n}: tensorio ${row.ours.medianMs.toFixed(3)} ms, peer ${row.peer.medianMs.toFixed(3)} ms`);
  }

  const dd = {
    read: ddRead(files.npy, 3) * 1000,
    write: ddWrite(path.join(work, 'dd.out'), sizeMb * 2 ** 20, { fsync: false }, 3) * 1000,
    durable: ddWrite(path.join(work, 'dd.out'), sizeMb * 2 ** 20, { fsync: true }, 3) * 1000,
  };
  const mb = (kb) => (kb / 1024).toFixed(0);
  const peerName = (op) => (op.startsWith('safetensors:') && !op.includes('mmap') ? 'safetensors' : op.startsWith('safetensors:') ? 'json+memmap' : 'numpy');
  const header = `${new Date().toISOString()} | ${machine()} | ${versions} | tensorio native: ${nativeStatus().loaded} | load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`;
  const what = `${sizeMb} MiB float32 (.npz and safetensors: 4 members / tensors of ${sizeMb / 4} MiB), small: ${smallCount} files of 4 KiB, warm page cache; median of ${rounds} round(s) of the per-process median`;
  const table = formatTable(rows.filter((r) => !r.op.endsWith('-steps')), [
    { title: 'operation (n in one process)', value: (r) => `${r.op} (${r.n})` },
    { title: 'tensorio median ms', value: (r) => r.ours.medianMs.toFixed(3) },
    { title: 'peer', value: (r) => peerName(r.op) },
    { title: 'peer median ms', value: (r) => r.peer.medianMs.toFixed(3) },
    { title: 'ratio', value: (r) => `${(r.ours.medianMs / r.peer.medianMs).toFixed(2)}x` },
    { title: 'CPU ms (peer)', value: (r) => `${r.ours.cpuMedianMs.toFixed(1)} (${r.peer.cpuMedianMs.toFixed(1)})` },
    { title: 'tensorio p90 / first ms', value: (r) => `${r.ours.p90Ms.toFixed(1)} / ${r.ours.firstMs.toFixed(1)}` },
    { title: 'tensorio peak RSS MiB (baseline)', value: (r) => `${mb(r.ours.maxRssKb)} (${mb(r.ours.baselineKb)})` },
    { title: 'peer peak RSS MiB (baseline)', value: (r) => `${mb(r.peer.maxRssKb)} (${mb(r.peer.baselineKb)})` },
  ]);
  const ATOMIC_STEPS = ['exchange or rename', 'unlink the replaced file', 'fsync the folder'];
  const sumOf = (steps, names) => names.reduce((total, name) => total + (steps[name] ?? 0), 0);
  const ms = (value) => (value === undefined ? '-' : value.toFixed(2));
  const tables = [];
  // Writes without fsync: tensorio's steps beside np.save in place and np.save atomically
  // (alternate operations of one peer process; the peer's atomic steps carry the mark [atomic]).
  const writeRow = rows.find((r) => r.op === 'npy:write-steps');
  if (writeRow) {
    const ours = writeRow.ours.steps;
    const inPlace = Object.fromEntries(Object.entries(writeRow.peer.steps).filter(([name]) => !name.endsWith(' [atomic]')));
    const atomic = Object.fromEntries(Object.entries(writeRow.peer.steps).filter(([name]) => name.endsWith(' [atomic]')).map(([name, v]) => [name.slice(0, -' [atomic]'.length), v]));
    const names = [...new Set([...Object.keys(ours), ...Object.keys(inPlace), ...Object.keys(atomic)])];
    const stepRows = names.map((name) => [name, ours[name], inPlace[name], atomic[name]]);
    const all = (steps) => sumOf(steps, Object.keys(steps));
    stepRows.push(['whole (sum of the steps)', all(ours), all(inPlace), all(atomic)]);
    stepRows.push(['of which atomicity (exchange or rename + unlink)', sumOf(ours, ATOMIC_STEPS), undefined, sumOf(atomic, ATOMIC_STEPS)]);
    tables.push(
      formatTable(stepRows, [
        { title: `.npy write without fsync, ${sizeMb} MiB, median of ${writeRow.n / 2} (step)`, value: (r) => r[0] },
        { title: 'tensorio ms', value: (r) => ms(r[1]) },
        { title: 'np.save in place ms', value: (r) => ms(r[2]) },
        { title: 'np.save to temp + os.replace ms', value: (r) => ms(r[3]) },
      ]),
    );
  }
  const stepsRow = rows.find((r) => r.op === 'npy:durable-steps');
  if (stepsRow) {
    const { ours, peer } = { ours: stepsRow.ours.steps, peer: stepsRow.peer.steps };
    const names = [...new Set([...Object.keys(ours), ...Object.keys(peer)])];
    const stepRows = names.map((name) => [name, ours[name], peer[name]]);
    const all = (steps) => sumOf(steps, Object.keys(steps));
    stepRows.push(['whole (sum of the steps)', all(ours), all(peer)]);
    stepRows.push(['of which atomicity (exchange or rename + unlink + folder fsync)', sumOf(ours, ATOMIC_STEPS), sumOf(peer, ATOMIC_STEPS)]);
    stepRows.push(['np.save + fsync alone (no atomicity)', undefined, all(peer) - sumOf(peer, ATOMIC_STEPS)]);
    tables.push(
      formatTable(stepRows, [
        { title: `durable .npy write, ${sizeMb} MiB, median of ${stepsRow.n} (step)`, value: (r) => r[0] },
        { title: 'tensorio ms', value: (r) => ms(r[1]) },
        { title: 'numpy ms', value: (r) => ms(r[2]) },
      ]),
    );
  }
  const stepsTable = tables.join('\n\n');
  const ddLine = `dd (ceiling), ${sizeMb} MiB: read to /dev/null ${dd.read.toFixed(1)} ms, write ${dd.write.toFixed(1)} ms, write conv=fsync ${dd.durable.toFixed(1)} ms`;
  console.log(`${header}\n${what}\n\n${table}\n\n${stepsTable ? `${stepsTable}\n\n` : ''}${ddLine}`);
  console.log(`results: ${saveResults(`warm${quick ? '-quick' : ''}`, { header, what, rows, dd })}`);
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
