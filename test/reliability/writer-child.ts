/**
 * Child process of the SIGKILL test: writes generation start, start + 1, ... of the sample array to one
 * target with a format's writer, forever, until it is killed.
 * argv: format name, target, element count, 'sync' | 'async', start generation.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { FORMATS, sampleArray } from './formats.js';

const [formatName, target, elements, mode, start] = process.argv.slice(2) as [string, string, string, string, string];
const format = FORMATS.find((f) => f.name === formatName);
if (!format) throw new Error(`unknown format ${formatName}`);

async function main(): Promise<void> {
  let generation = Number(start);
  await format?.prepare?.();
  // One write elsewhere first: a fresh process's first write is several times slower (code
  // not yet compiled), and the parent's kill window is sized on warm writes.
  const warmup = path.join(path.dirname(target), `warmup-${process.pid}${path.extname(target)}`);
  await (format as NonNullable<typeof format>).write(warmup, sampleArray(0, Number(elements)), mode === 'sync');
  fs.rmSync(warmup, { force: true });
  process.stdout.write('writing\n');
  for (;;) {
    await (format as NonNullable<typeof format>).write(target, sampleArray(generation++, Number(elements)), mode === 'sync');
  }
}
void main();
