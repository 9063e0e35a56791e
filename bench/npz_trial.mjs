// One timed .npz operation in a fresh Node process: `node bench/npz_trial.mjs OP ARGS...`.
// Prints {seconds, rssBeforeKb, maxRssKb}.
//   write | write-compressed INPUTS OUT     writeNpz of the inputs (read before the clock starts)
//   read | read-mmap ARCHIVE                readNpz of every member
import * as fs from 'node:fs';
import * as path from 'node:path';
import { nativeStatus, readNpy, readNpz, writeNpz } from 'tensorio';

const [op, ...args] = process.argv.slice(2);
const rssKb = () => process.memoryUsage().rss / 1024;
let arrays;
if (op.startsWith('write')) {
  arrays = {};
  for (const name of fs.readdirSync(args[0]).filter((n) => n.endsWith('.npy')).sort()) {
    arrays[name.slice(0, -4)] = await readNpy(path.join(args[0], name));
  }
}
const rssBeforeKb = rssKb();
const start = process.hrtime.bigint();
let checksum = 0;
switch (op) {
  case 'write':
  case 'write-compressed':
    // fsync off: np.savez does not fsync either.
    await writeNpz(args[1], arrays, { compress: op === 'write-compressed', fsync: false });
    break;
  case 'read':
  case 'read-mmap': {
    const got = await readNpz(args[0], { mmap: op === 'read-mmap' });
    for (const a of Object.values(got)) {
      // A mapped open that silently read would time the wrong thing (the TypeScript path
      // has no mappings and says so instead of failing).
      if (op === 'read-mmap' && !a.mapped && nativeStatus().loaded) throw new Error(`not mapped: ${a.copyReason}`);
      checksum += a.data.length;
    }
    break;
  }
  default:
    throw new Error(`unknown op ${op}`);
}
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
console.log(JSON.stringify({ seconds, rssBeforeKb, maxRssKb: process.resourceUsage().maxRSS, checksum }));
