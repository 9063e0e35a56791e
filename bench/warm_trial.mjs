// N of one operation in one warm Node process: `node bench/warm_trial.mjs OP INPUT OUT N`.
// Prints {medianMs, p90Ms, firstMs, baselineKb, maxRssKb[, steps]}: what a long-running
// pipeline sees after many of the same operation, beside the first one. OP is FORMAT:WHAT
// (npy:read, npz:open-mmap, safetensors:write-durable, small:read-sync, npy:durable-steps, ...);
// bench/warm_peer.py takes the same names.
import * as fs from 'node:fs';
import * as path from 'node:path';

import {
  openNpz,
  openSafetensors,
  openSafetensorsSync,
  readNpy,
  readNpySync,
  readNpz,
  readNpzSync,
  readSafetensors,
  readSafetensorsSync,
  writeNpy,
  writeNpz,
  writeSafetensors,
} from 'tensorio';

// Peak RSS is the kernel's high-water mark (VmHWM), reset at the start: ru_maxrss survives
// execve, so a child of a parent holding 512 MiB would report at least that.
try {
  fs.writeFileSync('/proc/self/clear_refs', '5');
} catch {
  // Kernels before 4.0 cannot reset it; the mark then includes the parent's.
}
const peakRssKb = () => Number(/VmHWM:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1] ?? process.resourceUsage().maxRSS);

const [op, input, out, count] = process.argv.slice(2);
const n = Number(count);
const [format, what] = op.split(':');

async function loadInput() {
  if (!what.startsWith('write') && !what.includes('steps')) return undefined;
  if (format === 'npy') return readNpy(input);
  if (format === 'npz') return readNpz(input);
  if (format === 'safetensors') return (await readSafetensors(input)).tensors;
  return undefined;
}
const data = await loadInput();
const smallFiles = format === 'small' ? fs.readdirSync(input).map((name) => path.join(input, name)) : [];

async function openNpzMapped() {
  const file = await openNpz(input, { mmap: true });
  for (const name of file.keys()) await file.get(name);
  file.close();
}

async function openGet() {
  const file = await openSafetensors(input, { mmap: false });
  for (const name of file.keys()) await file.get(name);
  file.close?.();
}

async function openGetMapped() {
  const file = await openSafetensors(input, { mmap: true });
  for (const name of file.keys()) await file.get(name);
}

// Synchronous operations are called without `await`: an async frame keeps the last awaited
// value (the previous result) alive until the next await, which would hold one more buffer.
const ops = {
  'npy:open-mmap': () => readNpySync(input, { mmap: true }),
  'npy:read': () => readNpy(input),
  'npy:read-sync': () => void readNpySync(input),
  'npy:write': () => writeNpy(out, data, { fsync: false }),
  // The same write; the peer replaces atomically too (np.save into a temporary file + os.replace).
  'npy:write-atomic': () => writeNpy(out, data, { fsync: false }),
  'npy:write-steps': () => writeSteps(),
  'npy:write-durable': () => writeNpy(out, data),
  'npy:write-durable-buffered': () => writeNpy(out, data, { directIo: false }),
  'npy:write-durable-direct': () => writeNpy(out, data, { directIo: true }),
  // The default path (streamed through the page cache) and O_DIRECT (directIo: true).
  'npy:durable-steps': () => durableSteps(native?.writeThroughSync ? 'through' : 'direct'),
  'npy:durable-steps-direct': () => durableSteps('direct'),
  'npz:open-mmap': openNpzMapped,
  'npz:open-mmap-sync': () => void readNpzSync(input, { mmap: true }),
  'npz:read': () => readNpz(input),
  'npz:write': () => writeNpz(out, data, { fsync: false }),
  'npz:write-durable': () => writeNpz(out, data),
  'safetensors:open-mmap': openGetMapped,
  'safetensors:open-mmap-sync': () => {
    const file = openSafetensorsSync(input, { mmap: true });
    for (const name of file.keys()) file.getSync(name);
  },
  'safetensors:read': () => readSafetensors(input),
  'safetensors:read-sync': () => void readSafetensorsSync(input),
  'safetensors:read-mmap': () => readSafetensors(input, { mmap: true }),
  'safetensors:open-get': openGet,
  'safetensors:write': () => writeSafetensors(out, data, { fsync: false }),
  'safetensors:write-durable': () => writeSafetensors(out, data),
  'small:read': () => Promise.all(smallFiles.map((file) => readNpy(file))),
  'small:read-serial': async () => {
    for (const file of smallFiles) await readNpy(file);
  },
  'small:read-sync': () => {
    for (const file of smallFiles) readNpySync(file);
  },
};

// ---- where a durable write's time goes -----------------------------------------------------
// The steps of writeNpy's default (fsync) path, done one at a time with the same primitives
// (src/io.ts AtomicWriter), each timed: temporary file, the bytes (O_DIRECT for 64 MiB and
// more on local disk file systems), fsync of the file, close, the exchange or rename, the
// folder's fsync.
const io = await import('../dist/io/atomic-writer.js');
const { native } = await import('../dist/native.js');
const { encodeNpy } = await import('../dist/formats/numpy/write.js');
const steps = {};
const step = (name, start) => (steps[name] ??= []).push(Number(process.hrtime.bigint() - start) / 1e6);

// The steps of writeNpy(p, a, { fsync: false }) one at a time, each timed: what a write without
// fsync costs beside np.save, which truncates the old file in place instead of replacing it.
function writeSteps() {
  const chunks = encodeNpy(data, out);
  let t = process.hrtime.bigint();
  const { tempPath, fd } = io.createTempFor(out);
  step('create the file (NumPy: open with O_TRUNC, which frees the old file)', t);
  t = process.hrtime.bigint();
  if (native) native.writeSync(fd, 0, chunks);
  else for (const chunk of chunks) fs.writeSync(fd, chunk);
  step('write the bytes', t);
  closeAndReplace(fd, tempPath);
}

// The last steps both write tables share: close the temporary file, put it in place, and
// unlink the replaced file (its blocks are freed here, as NumPy's O_TRUNC frees them).
function closeAndReplace(fd, tempPath) {
  let t = process.hrtime.bigint();
  fs.closeSync(fd);
  step('close', t);
  t = process.hrtime.bigint();
  const swapped = native?.exchange(tempPath, out) === true;
  if (!swapped) fs.renameSync(tempPath, out);
  step('exchange or rename', t);
  t = process.hrtime.bigint();
  if (swapped) fs.unlinkSync(tempPath);
  step('unlink the replaced file', t);
}

function durableSteps(how = 'direct') {
  let t = process.hrtime.bigint();
  const chunks = encodeNpy(data, out);
  step('encode header', t);
  t = process.hrtime.bigint();
  const { tempPath, fd } = io.createTempFor(out);
  step('create temporary file', t);
  const total = chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0);
  t = process.hrtime.bigint();
  let directFd;
  if (native && total >= 64 << 20 && how === 'direct') {
    try {
      directFd = fs.openSync(tempPath, fs.constants.O_WRONLY | fs.constants.O_DIRECT);
    } catch {
      directFd = undefined;
    }
  }
  if (directFd !== undefined) native.writeDirectSync(directFd, fd, 0, chunks);
  else if (how === 'through' && native?.writeThroughSync) native.writeThroughSync(fd, 0, chunks);
  else if (native) native.writeSync(fd, 0, chunks);
  else for (const chunk of chunks) fs.writeSync(fd, chunk);
  if (directFd !== undefined) fs.closeSync(directFd);
  step(directFd !== undefined ? 'write the bytes (O_DIRECT)' : how === 'through' ? 'write the bytes (through, dropped as written back)' : 'write the bytes', t);
  t = process.hrtime.bigint();
  fs.fsyncSync(fd);
  step('fsync the file', t);
  closeAndReplace(fd, tempPath);
  t = process.hrtime.bigint();
  const dir = fs.openSync(path.dirname(path.resolve(out)), 'r');
  fs.fsyncSync(dir);
  fs.closeSync(dir);
  step('fsync the folder', t);
}

const run = ops[op];
if (!run) throw new Error(`unknown op ${op}`);
const baselineKb = process.memoryUsage().rss / 1024;
const times = [];
// CPU time of the whole process (all threads: the thread pool does the async I/O), beside the
// wall time: on a shared machine the wall time includes waiting for a CPU, the CPU time does not.
const cpuTimes = [];
for (let i = 0; i < n; i++) {
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  const pending = run();
  if (pending) await pending;
  times.push(Number(process.hrtime.bigint() - start) / 1e6);
  const used = process.cpuUsage(cpu);
  cpuTimes.push((used.user + used.system) / 1e3);
}
const medianOf = (values) => [...values].sort((a, b) => a - b)[values.length >> 1];
const sorted = [...times].sort((a, b) => a - b);
const stepMedians = Object.fromEntries(Object.entries(steps).map(([name, values]) => [name, medianOf(values)]));
console.log(
  JSON.stringify({
    medianMs: sorted[n >> 1],
    p90Ms: sorted[Math.floor(n * 0.9)],
    firstMs: times[0],
    cpuMedianMs: medianOf(cpuTimes),
    times,
    cpuTimes,
    baselineKb,
    maxRssKb: peakRssKb(),
    ...(Object.keys(steps).length ? { steps: stepMedians } : {}),
  }),
);
