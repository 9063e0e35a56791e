// Event-loop responsiveness during big I/O: p99 event-loop delay (perf_hooks
// monitorEventLoopDelay, 1 ms resolution) while one 1 GiB .npy is read and another 1 GiB .npy
// is written at the same time. Target: p99 < 20 ms. Peers in the same run: tensorio without
// the addon (TENSORIO_NO_NATIVE=1) and plain fs.promises doing the same bytes. Each trial runs
// in a fresh process, with the page cache dropped first when that is allowed (root).
//   node bench/event-loop.mjs [--size-mb 1024] [--repeat 3] [--dir /tmp]
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { dropCaches, formatTable, machine, median, saveResults } from './lib.mjs';

const self = fileURLToPath(import.meta.url);

if (process.argv[2] === '--trial') {
  await runTrial(process.argv[3], process.argv[4], process.argv[5], Number(process.argv[6]));
} else {
  await main();
}

async function main() {
  const { values } = parseArgs({
    options: { 'size-mb': { type: 'string', default: '1024' }, repeat: { type: 'string', default: '3' }, dir: { type: 'string', default: os.tmpdir() } },
  });
  const sizeMb = Number(values['size-mb']);
  const repeat = Number(values.repeat);
  const dir = fs.mkdtempSync(path.join(values.dir, 'tensorio-evloop-'));
  const source = path.join(dir, 'source.npy');
  try {
    const { writeNpy, zeros } = await import('tensorio');
    const array = zeros([(sizeMb * 2 ** 20) / 4], 'float32');
    for (let i = 0; i < array.data.length; i += 1024) array.data[i] = i;
    await writeNpy(source, array, { fsync: false });
    const modes = ['tensorio', 'tensorio-ts', 'fs-peer'];
    const runs = Object.fromEntries(modes.map((m) => [m, []]));
    let cold = true;
    for (let round = 0; round < repeat; round++) {
      for (const mode of modes) {
        cold = dropCaches() && cold;
        const env = { ...process.env };
        if (mode === 'tensorio-ts') env.TENSORIO_NO_NATIVE = '1';
        const result = spawnSync(process.execPath, [self, '--trial', mode, source, path.join(dir, `out-${mode}.npy`), String(sizeMb)], { encoding: 'utf8', env });
        if (result.status !== 0) throw new Error(`${mode} trial failed: ${result.stderr}`);
        runs[mode].push(JSON.parse(result.stdout.trim().split('\n').pop()));
      }
    }
    const rows = modes.map((mode) => {
      const r = runs[mode];
      return {
        mode,
        p50: median(r.map((x) => x.p50)),
        p99: median(r.map((x) => x.p99)),
        max: median(r.map((x) => x.max)),
        seconds: median(r.map((x) => x.seconds)),
        maxRssMb: median(r.map((x) => x.maxRssKb / 1024)),
      };
    });
    const peer = rows.find((r) => r.mode === 'fs-peer');
    console.log(`event-loop delay while reading and writing ${sizeMb} MiB .npy files at once; ${machine()}; page cache ${cold ? 'dropped before each trial' : 'warm (could not drop it)'}; median of ${repeat} trials`);
    console.log(
      formatTable(rows, [
        { title: 'mode', value: (r) => r.mode },
        { title: 'p50 ms', value: (r) => r.p50.toFixed(2) },
        { title: 'p99 ms', value: (r) => r.p99.toFixed(2) },
        { title: 'max ms', value: (r) => r.max.toFixed(1) },
        { title: 'p99 / fs', value: (r) => (r.p99 / peer.p99).toFixed(2) },
        { title: 'read+write s', value: (r) => r.seconds.toFixed(2) },
        { title: 'peak RSS MiB', value: (r) => r.maxRssMb.toFixed(0) },
      ]),
    );
    const verdict = rows.filter((r) => r.mode !== 'fs-peer').every((r) => r.p99 < 20);
    console.log(verdict ? 'p99 < 20 ms: met' : 'p99 < 20 ms: NOT met');
    console.log(`saved ${saveResults('event-loop', { date: new Date().toISOString(), machine: machine(), sizeMb, repeat, cacheDropped: cold, rows, runs })}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function runTrial(mode, source, target, sizeMb) {
  const elements = (sizeMb * 2 ** 20) / 4;
  // The array to write is made before measuring: filling it is the caller's work, not I/O.
  const data = new Float32Array(elements);
  for (let i = 0; i < data.length; i += 1024) data[i] = -i;
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  let work;
  if (mode === 'fs-peer') {
    const { encodeNpyHeader } = await import('tensorio');
    work = () => Promise.all([fsRead(source), fsWrite(target, encodeNpyHeader('float32', [elements], false), data)]);
  } else {
    const { readNpy, writeNpy } = await import('tensorio');
    work = () => Promise.all([readNpy(source), writeNpy(target, { dtype: 'float32', shape: [elements], data })]);
  }
  histogram.enable();
  const start = performance.now();
  const [read] = await work();
  const seconds = (performance.now() - start) / 1000;
  histogram.disable();
  if ((read.data ?? read).byteLength < elements * 4) throw new Error('short read');
  const ms = (ns) => ns / 1e6;
  console.log(JSON.stringify({ seconds, p50: ms(histogram.percentile(50)), p99: ms(histogram.percentile(99)), max: ms(histogram.max), maxRssKb: process.resourceUsage().maxRSS }));
}

async function fsRead(file) {
  // Plain fs the way an application would read a big file: one buffer, 1 GiB reads.
  const handle = await fs.promises.open(file, 'r');
  try {
    const { size } = await handle.stat();
    const buffer = new Uint8Array(size);
    for (let done = 0; done < size; ) {
      const { bytesRead } = await handle.read(buffer, done, Math.min(size - done, 2 ** 30), done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return buffer;
  } finally {
    await handle.close();
  }
}

async function fsWrite(file, header, data) {
  const temp = `${file}.tmp`;
  const handle = await fs.promises.open(temp, 'w');
  try {
    await handle.write(header);
    const bytes = new Uint8Array(data.buffer);
    for (let done = 0; done < bytes.length; ) {
      const { bytesWritten } = await handle.write(bytes, done, Math.min(bytes.length - done, 2 ** 30));
      done += bytesWritten;
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.promises.rename(temp, file);
}
