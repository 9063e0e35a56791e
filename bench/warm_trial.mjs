// N of one .npy operation in one warm Node process: `node bench/warm_trial.mjs OP FILE OUT N`.
// Prints {medianMs, p90Ms, firstMs, baselineKb, maxRssKb}: what a long-running pipeline sees
// after many of the same operation, beside the first one.
import { readNpy, readNpySync, writeNpy } from 'tensorio';

const [op, file, out, count] = process.argv.slice(2);
const n = Number(count);
const input = op.startsWith('write') ? await readNpy(file) : undefined;
const baselineKb = process.memoryUsage().rss / 1024;
const ops = {
  'open-mmap': () => readNpySync(file, { mmap: true }),
  read: () => readNpy(file),
  'read-sync': () => readNpySync(file),
  'write-nofsync': () => writeNpy(out, input, { fsync: false }),
  write: () => writeNpy(out, input),
};
const run = ops[op];
if (!run) throw new Error(`unknown op ${op}`);
const times = [];
for (let i = 0; i < n; i++) {
  const start = process.hrtime.bigint();
  await run();
  times.push(Number(process.hrtime.bigint() - start) / 1e6);
}
const sorted = [...times].sort((a, b) => a - b);
console.log(JSON.stringify({ medianMs: sorted[n >> 1], p90Ms: sorted[Math.floor(n * 0.9)], firstMs: times[0], baselineKb, maxRssKb: process.resourceUsage().maxRSS }));
