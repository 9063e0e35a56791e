/**
 * Files written at test time by NumPy, h5py and safetensors (test/reliability/generated.ts), one
 * per structure those tools write, cut at each structural boundary and at a sample of other
 * offsets, are refused with a TensorioError (test/reliability/truncation.ts). The real files of
 * other tools get the same check in the fixtures suite (test/fixtures/reliability.test.ts).
 */
import { FORMATS } from './formats.js';
import { generatedFiles } from './generated.js';
import { truncationTests } from './truncation.js';

for (const format of FORMATS) truncationTests(format, 'file written by the real tool', () => generatedFiles(format));
