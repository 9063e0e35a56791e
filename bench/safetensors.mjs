// safetensors benchmark: a ~2 GiB checkpoint of 1,000 float32 tensors.
//
//   node bench/safetensors.mjs [--trials 3] [--dir /tmp] [--shape 512x1024]
//
// Measures, each trial in a fresh process, with the page cache warm (the file was just
// written and read once; `dd` to /dev/null gives the page cache's ceiling), and the eager
// load once more with the file dropped from the cache:
//   - mapped open (openSafetensors) of the 2 GiB file and of a tiny file with the same
//     1,000-entry header: the time must depend on the header, not the data;
//   - eager load (readSafetensors) against dd and Python json + numpy.memmap + np.array;
//   - write (writeSafetensors, fsync; by default around the page cache, and forced through it)
//     against dd writing the same bytes with conv=fsync (and with oflag=direct).
// Peak RSS is each process's own maxRSS. Big files are removed at the end.
// Needs `npm run build` first and /usr/bin/python3 with numpy.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const tensorio = require(path.join(here, '..', 'dist', 'index.js'));
const { timeOpen } = require(path.join(here, 'open-timing.cjs'));

const TENSORS = 1000;
// float32 512 x 1024: 2 MiB each, 2,000 MiB in all. `--shape 8x64` (passed to the trial
// processes through the environment) makes the suite's smoke run small.
const SHAPE = (process.env.TENSORIO_BENCH_SHAPE ?? '512x1024').split('x').map(Number);
const MiB = 2 ** 20;

function makeTensors(shape) {
  const tensors = {};
  const size = shape.reduce((a, b) => a * b, 1);
  for (let i = 0; i < TENSORS; i++) {
    const data = new Float32Array(size);
    data.fill(i); // touch every page, as real weights are
    tensors[`model.layers.${String(i).padStart(4, '0')}.weight`] = { dtype: 'float32', shape, data };
  }
  return tensors;
}

function rss() {
  return process.resourceUsage().maxRSS / 1024; // KiB → MiB
}

// ---------------------------------------------------------------------------------------
// Child processes: one measurement each.

async function child(op, file) {
  if (op === 'write' || op === 'write-buffered') {
    const tensors = makeTensors(SHAPE);
    const before = rss();
    const start = performance.now();
    // 'write' is the default (large writes go around the page cache on ext4, XFS, btrfs and
    // F2FS); 'write-buffered' forces the page cache.
    await tensorio.writeSafetensors(file, tensors, op === 'write' ? {} : { directIo: false });
    return { ms: performance.now() - start, maxRssMiB: rss(), dataRssMiB: before };
  }
  if (op === 'fs-write' || op === 'dd-write-held') {
    // Peers in the writer's memory state: this process holds the tensors (fresh memory), so
    // the page cache must find as many pages again. `fs-write`: plain fs.writeSync of each
    // tensor to a new file and fsync, no header, not atomic. `dd-write-held`: dd writing the
    // same number of bytes with conv=fsync while the tensors are held.
    const tensors = makeTensors(SHAPE);
    const start = performance.now();
    if (op === 'fs-write') {
      const fd = fs.openSync(file, 'w');
      for (const { data } of Object.values(tensors)) {
        const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
        for (let done = 0; done < bytes.length; ) done += fs.writeSync(fd, bytes, done, bytes.length - done);
      }
      fs.fsyncSync(fd);
      fs.closeSync(fd);
    } else {
      const total = Object.values(tensors).reduce((sum, t) => sum + t.data.byteLength, 0);
      const result = spawnSync('dd', ['if=/dev/zero', `of=${file}`, 'bs=16M', `count=${Math.ceil(total / (16 * MiB))}`, 'conv=fsync'], { encoding: 'utf8' });
      if (result.status !== 0) throw new Error(`dd failed: ${result.stderr}`);
    }
    return { ms: performance.now() - start, maxRssMiB: rss() };
  }
  if (op === 'open' || op === 'open-sync' || op === 'open-second') return timeOpen(tensorio, op, file);
  if (op === 'load') {
    const start = performance.now();
    const { tensors } = await tensorio.readSafetensors(file);
    const ms = performance.now() - start;
    return { ms, maxRssMiB: rss(), tensors: Object.keys(tensors).length };
  }
  if (op === 'load-sync') {
    const start = performance.now();
    const { tensors } = tensorio.readSafetensorsSync(file);
    const ms = performance.now() - start;
    return { ms, maxRssMiB: rss(), tensors: Object.keys(tensors).length };
  }
  if (op === 'fs-load') {
    // The floor for any eager load: plain fs reads of the same bytes into fresh memory of the
    // same shape (one buffer per tensor), without parsing anything.
    const start = performance.now();
    const fd = fs.openSync(file, 'r');
    const size = fs.fstatSync(fd).size;
    const chunk = SHAPE.reduce((a, b) => a * b, 4);
    const kept = [];
    for (let at = size - TENSORS * chunk; at < size; at += chunk) {
      const buffer = new Uint8Array(new ArrayBuffer(chunk));
      for (let done = 0; done < chunk; ) done += fs.readSync(fd, buffer, done, chunk - done, at + done);
      kept.push(buffer);
    }
    fs.closeSync(fd);
    return { ms: performance.now() - start, maxRssMiB: rss(), tensors: kept.length };
  }
  throw new Error(`unknown op ${op}`);
}

if (process.argv[2] === '--child') {
  const out = await child(process.argv[3], process.argv[4]);
  process.stdout.write(JSON.stringify(out));
  process.exit(0);
}

// ---------------------------------------------------------------------------------------
// The parent: trials in fresh processes, medians, ratios.

const args = process.argv.slice(2);
if (args.includes('--shape')) process.env.TENSORIO_BENCH_SHAPE = args[args.indexOf('--shape') + 1];
const trials = Number(args[args.indexOf('--trials') + 1]) || 3;
const root = fs.mkdtempSync(path.join(args.includes('--dir') ? args[args.indexOf('--dir') + 1] : os.tmpdir(), 'tensorio-bench-st-'));
const big = path.join(root, 'big.safetensors');
const tiny = path.join(root, 'tiny.safetensors');
const written = path.join(root, 'written.safetensors');
const env = { ...process.env };
delete env.OPENBLAS_CORETYPE;
delete env.OPENBLAS_L2_SIZE;

function run(cmd, argv) {
  const result = spawnSync(cmd, argv, { encoding: 'utf8', env, maxBuffer: 16 * MiB });
  if (result.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed: ${result.stderr}`);
  return result.stdout;
}

function nodeChild(op, file) {
  return JSON.parse(run(process.execPath, [fileURLToPath(import.meta.url), '--child', op, file]));
}

function cjsChild(op, file) {
  return JSON.parse(run(process.execPath, [path.join(here, 'open-timing.cjs'), op, file]));
}

function pyChild(op, file) {
  return JSON.parse(run('/usr/bin/python3', [path.join(here, 'safetensors_peer.py'), op, file]));
}

/** Runs a command under /usr/bin/time -v: wall ms and peak RSS. */
function timed(cmd, argv) {
  const start = performance.now();
  const result = spawnSync('/usr/bin/time', ['-v', cmd, ...argv], { encoding: 'utf8', env });
  const ms = performance.now() - start;
  if (result.status !== 0) throw new Error(`${cmd} failed: ${result.stderr}`);
  const peak = /Maximum resident set size \(kbytes\): (\d+)/.exec(result.stderr);
  return { ms, maxRssMiB: peak ? Number(peak[1]) / 1024 : Number.NaN };
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function trialsOf(fn, count = trials) {
  const results = Array.from({ length: count }, fn);
  const cpu = results.every((r) => r.cpuMs !== undefined) ? median(results.map((r) => r.cpuMs)) : undefined;
  const summary = { ms: median(results.map((r) => r.ms)), cpuMs: cpu, maxRssMiB: Math.max(...results.map((r) => r.maxRssMiB)), all: results };
  if (results.every((r) => r.gcMs !== undefined)) {
    const withGc = results.filter((r) => r.gcMs > 0);
    summary.withGc = withGc.length;
    summary.gcMs = withGc.length ? median(withGc.map((r) => r.gcMs)) : 0;
    summary.msWithoutGc = median(results.map((r) => r.ms - r.gcMs));
  }
  if (results.every((r) => r.pageFaults !== undefined)) summary.pageFaults = median(results.map((r) => r.pageFaults));
  const timedFaults = results.filter((r) => r.faultMicros !== undefined);
  if (timedFaults.length) summary.faultMicros = median(timedFaults.map((r) => r.faultMicros));
  return summary;
}

const fmt = (n, d = 1) => n.toFixed(d);

try {
  console.log(`safetensors bench, ${new Date().toISOString()}, ${os.cpus()[0]?.model} x${os.cpus().length}, ${fmt(os.totalmem() / 2 ** 30)} GiB, node ${process.version}, native: ${tensorio.nativeStatus().loaded}`);
  console.log(`${TENSORS} float32 tensors of (${process.env.TENSORIO_BENCH_SHAPE?.split('x').join(', ') ?? SHAPE.join(', ')}); ${trials} trials each in a fresh process; medians; page cache warm\n`);

  // Files: the big one written by us (its write time is not counted here), a tiny one with
  // the same 1,000 names.
  nodeChild('write', big);
  const size = fs.statSync(big).size;
  await tensorio.writeSafetensors(tiny, makeTensors([1]));
  fs.copyFileSync(tiny, `${big}.twin`);
  run('dd', [`if=${big}`, 'of=/dev/null', 'bs=16M']);

  // Opens are short: more trials, so the median is not one unlucky scheduling slice. Each
  // open is timed twice over: from this file's ES module child and from a CommonJS entry
  // point (bench/open-timing.cjs), which allocate different amounts before the open and so
  // differ in whether the process's first scavenge falls inside it.
  const opens = Math.max(trials, 9);
  const openBig = trialsOf(() => nodeChild('open', big), opens);
  const openBigSync = trialsOf(() => nodeChild('open-sync', big), opens);
  const openCjs = trialsOf(() => cjsChild('open', big), opens);
  const openCjsSync = trialsOf(() => cjsChild('open-sync', big), opens);
  const openTiny = trialsOf(() => nodeChild('open', tiny), opens);
  const openSecond = trialsOf(() => nodeChild('open-second', big), opens);
  const pyOpenBig = trialsOf(() => pyChild('open', big), opens);
  const openRow = (label, r) =>
    console.log(
      `  ${label.padEnd(44)} ${fmt(r.ms, 2)} ms wall, ${fmt(r.cpuMs, 2)} ms CPU; a GC fell inside in ${r.withGc}/${r.all.length} trials (median ${fmt(r.gcMs, 2)} ms), wall minus GC ${fmt(r.msWithoutGc, 2)} ms; ${r.pageFaults} page faults${r.faultMicros === undefined ? '' : ` (${fmt((r.pageFaults * r.faultMicros) / 1000, 2)} ms at ${fmt(r.faultMicros, 1)} µs each)`}`,
    );
  console.log(`mapped open (${opens} trials), ${fmt(size / 2 ** 30, 2)} GiB file, ${TENSORS} tensors, each the process's first unless said:`);
  openRow('openSafetensors (ES module entry):', openBig);
  openRow('openSafetensorsSync (ES module entry):', openBigSync);
  openRow('openSafetensors (CommonJS entry):', openCjs);
  openRow('openSafetensorsSync (CommonJS entry):', openCjsSync);
  openRow("openSafetensors, the process's second open:", openSecond);
  openRow(`tiny file, same header (${fmt(fs.statSync(tiny).size / 1024, 0)} KiB):`, openTiny);
  console.log(`  python json + numpy.memmap:                  ${fmt(pyOpenBig.ms, 2)} ms wall, ${fmt(pyOpenBig.cpuMs, 2)} ms CPU, ${pyOpenBig.pageFaults} page faults  -> tensorio ${fmt(pyOpenBig.ms / openBig.ms, 2)}x (ES module entry)`);

  const dd = trialsOf(() => timed('dd', [`if=${big}`, 'of=/dev/null', 'bs=16M']));
  // dd reading into one buffer as large as the file (Linux reads at most 2 GiB - 4 KiB per
  // call): the work an eager load must do, filling fresh memory, without any format.
  // A multiple of the page size: dd allocates its buffer with aligned_alloc(4096, bs).
  const ddBlock = Math.min(Math.ceil(size / 4096) * 4096, 2047 * MiB);
  const ddFresh = trialsOf(() => timed('dd', [`if=${big}`, 'of=/dev/null', `bs=${ddBlock}`, 'iflag=fullblock', `count=${Math.ceil(size / ddBlock)}`]));
  const fsLoad = trialsOf(() => nodeChild('fs-load', big));
  const load = trialsOf(() => nodeChild('load', big));
  const loadSync = trialsOf(() => nodeChild('load-sync', big));
  const pyLoad = trialsOf(() => pyChild('load', big));
  const gbps = (ms) => size / 2 ** 30 / (ms / 1000);
  console.log(`\neager load (warm page cache), ${fmt(size / MiB, 0)} MiB:`);
  console.log(`  dd to /dev/null (ceiling):  ${fmt(dd.ms, 0)} ms  ${fmt(gbps(dd.ms), 2)} GiB/s`);
  console.log(`  dd into one file-sized buffer (fresh memory): ${fmt(ddFresh.ms, 0)} ms  ${fmt(gbps(ddFresh.ms), 2)} GiB/s`);
  console.log(`  plain fs.readSync into 1,000 fresh buffers (fresh-memory floor): ${fmt(fsLoad.ms, 0)} ms  ${fmt(gbps(fsLoad.ms), 2)} GiB/s`);
  console.log(`  readSafetensors:            ${fmt(load.ms, 0)} ms  ${fmt(gbps(load.ms), 2)} GiB/s  = ${fmt((100 * dd.ms) / load.ms, 0)}% of dd, ${fmt((100 * ddFresh.ms) / load.ms, 0)}% of dd into fresh memory, ${fmt((100 * fsLoad.ms) / load.ms, 0)}% of plain fs  peak RSS ${fmt(load.maxRssMiB, 0)} MiB = ${fmt((load.maxRssMiB * MiB) / size, 2)}x the file`);
  console.log(`  readSafetensorsSync:        ${fmt(loadSync.ms, 0)} ms  ${fmt(gbps(loadSync.ms), 2)} GiB/s  = ${fmt((100 * dd.ms) / loadSync.ms, 0)}% of dd  peak RSS ${fmt(loadSync.maxRssMiB, 0)} MiB`);
  console.log(`  python json+memmap+np.array: ${fmt(pyLoad.ms, 0)} ms  ${fmt(gbps(pyLoad.ms), 2)} GiB/s  = ${fmt((100 * dd.ms) / pyLoad.ms, 0)}% of dd  peak RSS ${fmt(pyLoad.maxRssMiB, 0)} MiB`);

  // Cold: this file's pages are dropped from the page cache before each trial (dd
  // iflag=nocache count=0 asks the kernel to forget just this file, leaving the rest of the
  // machine's cache alone). The VM's disk is itself cached by the host, so these vary.
  const cold = (fn) => () => {
    run('dd', [`if=${big}`, 'iflag=nocache', 'count=0']);
    return fn();
  };
  const ddCold = trialsOf(cold(() => timed('dd', [`if=${big}`, 'of=/dev/null', 'bs=16M'])));
  const loadCold = trialsOf(cold(() => nodeChild('load', big)));
  const pyLoadCold = trialsOf(cold(() => pyChild('load', big)));
  console.log(`\neager load (cold: the file dropped from the page cache before each trial):`);
  console.log(`  dd to /dev/null:            ${fmt(ddCold.ms, 0)} ms  ${fmt(gbps(ddCold.ms), 2)} GiB/s`);
  console.log(`  readSafetensors:            ${fmt(loadCold.ms, 0)} ms  ${fmt(gbps(loadCold.ms), 2)} GiB/s  = ${fmt((100 * ddCold.ms) / loadCold.ms, 0)}% of dd`);
  console.log(`  python json+memmap+np.array: ${fmt(pyLoadCold.ms, 0)} ms  ${fmt(gbps(pyLoadCold.ms), 2)} GiB/s  = ${fmt((100 * ddCold.ms) / pyLoadCold.ms, 0)}% of dd`);
  run('dd', [`if=${big}`, 'of=/dev/null', 'bs=16M']);

  const ddWrite = trialsOf(() => {
    const r = timed('dd', ['if=/dev/zero', `of=${written}`, 'bs=16M', `count=${Math.ceil(size / (16 * MiB))}`, 'conv=fsync']);
    fs.unlinkSync(written);
    return r;
  });
  // Each trial writes a new file, as a first save of a checkpoint does.
  const writeTrials = (op) =>
    trialsOf(() => {
      const r = nodeChild(op, written);
      fs.unlinkSync(written);
      return r;
    });
  const ddWriteDirect = trialsOf(() => {
    const r = timed('dd', ['if=/dev/zero', `of=${written}`, 'bs=16M', `count=${Math.ceil(size / (16 * MiB))}`, 'oflag=direct', 'conv=fsync']);
    fs.unlinkSync(written);
    return r;
  });
  const write = writeTrials('write');
  const writeBuffered = writeTrials('write-buffered');
  const fsWrite = writeTrials('fs-write');
  const ddWriteHeld = writeTrials('dd-write-held');
  console.log(`\nwrite with fsync, ${fmt(size / MiB, 0)} MiB:`);
  console.log(`  dd conv=fsync:      ${fmt(ddWrite.ms, 0)} ms  ${fmt(gbps(ddWrite.ms), 2)} GiB/s`);
  console.log(`  dd conv=fsync while a process holds the tensors: ${fmt(ddWriteHeld.ms, 0)} ms  ${fmt(gbps(ddWriteHeld.ms), 2)} GiB/s`);
  console.log(`  dd oflag=direct conv=fsync: ${fmt(ddWriteDirect.ms, 0)} ms  ${fmt(gbps(ddWriteDirect.ms), 2)} GiB/s`);
  console.log(`  plain fs.writeSync + fsync of the tensors (not atomic): ${fmt(fsWrite.ms, 0)} ms  ${fmt(gbps(fsWrite.ms), 2)} GiB/s`);
  console.log(`  writeSafetensors { directIo: false }: ${fmt(writeBuffered.ms, 0)} ms  ${fmt(gbps(writeBuffered.ms), 2)} GiB/s  = ${fmt((100 * ddWrite.ms) / writeBuffered.ms, 0)}% of dd, ${fmt((100 * fsWrite.ms) / writeBuffered.ms, 0)}% of plain fs`);
  console.log(`  writeSafetensors (default):   ${fmt(write.ms, 0)} ms  ${fmt(gbps(write.ms), 2)} GiB/s  = ${fmt((100 * ddWrite.ms) / write.ms, 0)}% of dd, ${fmt((100 * ddWriteHeld.ms) / write.ms, 0)}% of dd with the tensors held, ${fmt((100 * fsWrite.ms) / write.ms, 0)}% of plain fs  peak RSS ${fmt(write.maxRssMiB, 0)} MiB (tensors alone ${fmt(median(write.all.map((r) => r.dataRssMiB)), 0)} MiB)`);
  console.log(`\nraw trials: ${JSON.stringify({ openBig: openBig.all.map((r) => r.ms), openBigSync: openBigSync.all.map((r) => r.ms), openCjs: openCjs.all.map((r) => r.ms), openCjsSync: openCjsSync.all.map((r) => r.ms), openGc: openBig.all.map((r) => r.gcMs), openTiny: openTiny.all.map((r) => r.ms), openSecond: openSecond.all.map((r) => r.ms), load: load.all.map((r) => r.ms), loadSync: loadSync.all.map((r) => r.ms), fsLoad: fsLoad.all.map((r) => r.ms), dd: dd.all.map((r) => r.ms), ddFresh: ddFresh.all.map((r) => r.ms), pyLoad: pyLoad.all.map((r) => r.ms), ddCold: ddCold.all.map((r) => r.ms), loadCold: loadCold.all.map((r) => r.ms), pyLoadCold: pyLoadCold.all.map((r) => r.ms), write: write.all.map((r) => r.ms), writeBuffered: writeBuffered.all.map((r) => r.ms), ddWriteDirect: ddWriteDirect.all.map((r) => r.ms), ddWrite: ddWrite.all.map((r) => r.ms), ddWriteHeld: ddWriteHeld.all.map((r) => r.ms), fsWrite: fsWrite.all.map((r) => r.ms) })}`);
} finally {
  fs.rmSync(root, { recursive: true, force: true });
}
