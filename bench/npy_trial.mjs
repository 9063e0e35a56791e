// One timed .npy operation in a fresh Node process: `node bench/npy_trial.mjs OP FILE [OUT]`.
// Prints {seconds, rssBeforeKb, maxRssKb}.
import * as fs from 'node:fs';
import { readNpy, readNpySync, writeNpy } from 'tensorio';

const [op, file, out] = process.argv.slice(2);
const rssKb = () => process.memoryUsage().rss / 1024;
let input;
if (op.startsWith('write') || op === 'fs-writeFile') {
  input = await readNpy(file); // the data to write, read before the clock starts
}
// Imported only for its own trial (before the clock): npyjs is a devDependency, absent from an
// installed tensorio.
const npyjs = op === 'npyjs' ? await import('npyjs') : undefined;
const rssBeforeKb = rssKb();
const start = process.hrtime.bigint();
let checksum = 0;
switch (op) {
  case 'open-mmap': {
    const a = await readNpy(file, { mmap: true });
    checksum = a.data.length;
    break;
  }
  case 'open-mmap-sync': {
    const a = readNpySync(file, { mmap: true });
    checksum = a.data.length;
    break;
  }
  case 'read-mmap-touch': {
    // Map, then read every page: what a mapped open costs once the data is used.
    const a = await readNpy(file, { mmap: true });
    const bytes = new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength);
    for (let i = 0; i < bytes.length; i += 4096) checksum += bytes[i];
    break;
  }
  case 'read': {
    const a = await readNpy(file);
    checksum = a.data.length;
    break;
  }
  case 'npyjs': {
    // npyjs parses a buffer the caller reads (fs.readFile: at most 2 GiB).
    const b = await fs.promises.readFile(file);
    const a = npyjs.parse(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    checksum = a.data.length;
    break;
  }
  case 'many-read': {
    // `file` is a folder of small .npy files.
    for (const name of fs.readdirSync(file)) checksum += (await readNpy(`${file}/${name}`)).data.length;
    break;
  }
  case 'many-read-mmap': {
    for (const name of fs.readdirSync(file)) checksum += (await readNpy(`${file}/${name}`, { mmap: true })).data.length;
    break;
  }
  case 'fs-readFile': {
    const b = await fs.promises.readFile(file);
    checksum = b.length;
    break;
  }
  case 'write': {
    await writeNpy(out, input);
    break;
  }
  case 'write-buffered': {
    await writeNpy(out, input, { directIo: false });
    break;
  }
  case 'write-nofsync': {
    await writeNpy(out, input, { fsync: false });
    break;
  }
  case 'fs-writeFile': {
    await fs.promises.writeFile(out, new Uint8Array(input.data.buffer, input.data.byteOffset, input.data.byteLength));
    break;
  }
  default:
    throw new Error(`unknown op ${op}`);
}
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
console.log(JSON.stringify({ seconds, rssBeforeKb, maxRssKb: process.resourceUsage().maxRSS, checksum }));
