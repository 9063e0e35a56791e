/**
 * Child process of the SIGKILL test: writes generation start, start + 1, ... of the sample array to one
 * target with a format's writer, forever, until it is killed.
 * argv: format name, target, element count, 'sync' | 'async', start generation.
 */
import { FORMATS, sampleArray } from './formats.js';

const [formatName, target, elements, mode, start] = process.argv.slice(2) as [string, string, string, string, string];
const format = FORMATS.find((f) => f.name === formatName);
if (!format) throw new Error(`unknown format ${formatName}`);

async function main(): Promise<void> {
  let generation = Number(start);
  await format?.prepare?.();
  process.stdout.write('writing\n');
  for (;;) {
    await (format as NonNullable<typeof format>).write(target, sampleArray(generation++, Number(elements)), mode === 'sync');
  }
}
void main();
