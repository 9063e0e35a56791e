// Warm-process .npy benchmark: N operations in one process (tensorio, NumPy), the median and p90
// of each and the peak RSS, beside the first one. The users this is for run for hours; the
// fresh-process trials in bench/npy.mjs do not show what the thousandth operation costs.
//   node bench/warm.mjs [--size-mb 512] [--opens 300] [--reads 30] [--writes 9] [--dir /tmp]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { writeNpy, zeros } from 'tensorio';
import { formatTable, machine, PYTHON, pythonVersions, saveResults, trial } from './lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: { 'size-mb': { type: 'string', default: '512' }, opens: { type: 'string', default: '300' }, reads: { type: 'string', default: '30' }, writes: { type: 'string', default: '9' }, dir: { type: 'string', default: os.tmpdir() } },
});
const sizeMb = Number(values['size-mb']);
const work = fs.mkdtempSync(path.join(values.dir, 'tensorio-warm-'));
const file = path.join(work, 'input.npy');
const out = path.join(work, 'out.npy');
try {
  const array = zeros([Math.floor((sizeMb * 2 ** 20) / 4)], 'float32');
  for (let i = 0; i < array.data.length; i += 1024) array.data[i] = i;
  await writeNpy(file, array);
  const cases = [
    ['open-mmap', values.opens],
    ['read', values.reads],
    ['read-sync', values.reads],
    ['write-nofsync', values.writes],
    ['write', values.writes],
  ];
  const rows = [];
  for (const [op, n] of cases) {
    // Alternate who goes first, so page-cache writeback from one does not always land on the other.
    const t = () => trial(process.execPath, [path.join(here, 'warm_trial.mjs'), op, file, out, n]);
    const p = () => trial(PYTHON, [path.join(here, 'warm_peer.py'), op, file, out, n]);
    let ours, numpy;
    if (rows.length % 2) (ours = t()), (numpy = p());
    else (numpy = p()), (ours = t());
    fs.rmSync(out, { force: true });
    rows.push({ op, n, ours, numpy });
    console.log(`${op.padEnd(14)} x${n}: tensorio ${ours.medianMs.toFixed(3)} ms, numpy ${numpy.medianMs.toFixed(3)} ms`);
  }
  const mb = (kb) => (kb / 1024).toFixed(0);
  console.log(`\n${machine()}; ${pythonVersions()}; ${sizeMb} MiB float32 .npy, warm page cache, ${new Date().toISOString().slice(0, 10)}\n`);
  console.log(
    formatTable(rows, [
      { title: 'operation (n in one process)', value: (r) => `${r.op} (${r.n})` },
      { title: 'tensorio median ms', value: (r) => r.ours.medianMs.toFixed(3) },
      { title: 'numpy median ms', value: (r) => r.numpy.medianMs.toFixed(3) },
      { title: 'ratio', value: (r) => `${(r.ours.medianMs / r.numpy.medianMs).toFixed(2)}x` },
      { title: 'tensorio first ms', value: (r) => r.ours.firstMs.toFixed(3) },
      { title: 'tensorio peak RSS MiB (baseline)', value: (r) => `${mb(r.ours.maxRssKb)} (${mb(r.ours.baselineKb)})` },
      { title: 'numpy peak RSS MiB (baseline)', value: (r) => `${mb(r.numpy.maxRssKb)} (${mb(r.numpy.baselineKb)})` },
    ]),
  );
  console.log(`results: ${saveResults('warm', { machine: machine(), python: pythonVersions(), sizeMb, rows })}`);
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
