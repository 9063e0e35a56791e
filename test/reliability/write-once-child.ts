/**
 * Child process of the RLIMIT_FSIZE test: one write of the sample array; prints the
 * TensorioError code it got, or 'ok'. argv: format name, target, element count, 'sync' | 'async'.
 */
import { TensorioError } from '../../src/index.js';
import { FORMATS, sampleArray } from './formats.js';

const [formatName, target, elements, mode] = process.argv.slice(2) as [string, string, string, string];
const format = FORMATS.find((f) => f.name === formatName);
if (!format) throw new Error(`unknown format ${formatName}`);
format.write(target, sampleArray(2, Number(elements)), mode === 'sync').then(
  () => console.log('ok'),
  (error: unknown) => {
    console.log(error instanceof TensorioError ? error.code : `untyped: ${String(error)}`);
    if (!(error instanceof TensorioError)) console.error(error);
  },
);
