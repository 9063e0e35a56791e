#!/usr/bin/env node
/**
 * The `tensorio` command: inspect, convert and diff tensor files, and run the benchmarks.
 * Errors are one line naming the file and the TensorioError code; exit codes: 0 success (or
 * equal), 1 different (diff), 2 error.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

import { toBfloat16, toFloat16, toFloat32, toFloat64 } from '../convert.js';
import { dtypeInfo, type DType } from '../dtype.js';
import { TensorioError } from '../errors.js';
import { byteLength, type NdArray } from '../ndarray.js';
import { diffSources, type TensorDiff } from './diff.js';
import { formatFor, FORMATS, loadTfjsEntry, type FileSummary, type TensorSource } from './formats.js';
import { openH5 } from '../formats/h5.js';
import { formatBytes, Progress } from './progress.js';

const HELP: Record<string, string> = {
  main: `Usage: tensorio <command> [options]

Commands:
  inspect FILE            show a file's format, tensors, metadata and layers (no data is read)
  convert SRC DST         convert between formats, chosen by extension (whole Keras/tfjs models too)
  diff A B                compare the tensors of two files by name
  bench                   run the benchmark suite

Run 'tensorio <command> --help' for a command's options. Formats: ${FORMATS.map((f) => f.name).join(', ')}.`,
  inspect: `Usage: tensorio inspect FILE [--json]

Shows the format and version, a table of tensors (name, dtype, shape, size, byte offset,
whether a read can map it), metadata, and for model files the layers with their weights.
Only headers are read.

  --json    print the summary as JSON`,
  convert: `Usage: tensorio convert SRC DST [--dtype DTYPE] [--max-shard-size SIZE] [--no-fsync]

Converts tensor by tensor (each read mapped where possible, so memory stays bounded) with a
progress line on stderr. The output is written atomically. Formats by extension: .npy, .npz,
.safetensors (a sharded checkpoint by its .safetensors.index.json), .h5/.hdf5/.weights.h5,
and model.json (TensorFlow.js; needs @tensorflow/tfjs). A Keras full-model .h5 (or .keras)
converted to model.json or .h5, or a model.json to .h5, moves the whole model: topology,
training config and weights.

  --dtype DTYPE           cast every floating-point tensor: float32, float16, bfloat16, float64
  --max-shard-size SIZE   shard the output (formats that shard), e.g. 5GB, 500MB, 1048576
  --no-fsync              skip fsync (faster; see the README on atomic writes)
  --quantize DTYPE        a whole model to model.json: store float32 weights as float16, uint8
                          or uint16, byte for byte as tensorflowjs_converter --quantize_<DTYPE>`,
  diff: `Usage: tensorio diff A B [--rtol R] [--atol A] [--ignore-dtype] [--json]

Compares tensors by name across formats: shape, dtype, largest absolute and relative
difference. Equal when every element satisfies |a - b| <= atol + rtol * |b| (NaN equals NaN)
and both files hold the same names. Exit code 0 when equal, 1 when not, 2 on error.

  --rtol R         relative tolerance (default 0: exact)
  --atol A         absolute tolerance (default 0: exact)
  --ignore-dtype   equal values in different dtypes count as equal (after convert --dtype)
  --json           print the comparison as JSON`,
  bench: `Usage: tensorio bench [--smoke] [-- options for bench/run.mjs]

Runs the benchmark suite (each trial in a fresh process, peers in the same run) and writes
results to --out DIR, else ./tensorio-bench-results (bench/results/ in a clone). Peers that
are not installed are skipped with a line naming them. --smoke runs tiny sizes in seconds.`,
};

class UsageError extends Error {}

function shapeText(shape: readonly number[]): string {
  return `(${shape.join(', ')}${shape.length === 1 ? ',' : ''})`;
}

function table(rows: string[][]): string {
  const widths = (rows[0] ?? []).map((_, col) => Math.max(...rows.map((r) => (r[col] ?? '').length)));
  return rows.map((r) => r.map((cell, col) => (col === r.length - 1 ? cell : cell.padEnd(widths[col] ?? 0))).join('  ').trimEnd()).join('\n');
}

export function renderSummary(file: string, summary: FileSummary): string {
  const lines = [`${file}: ${summary.format}${summary.version ? ` ${summary.version}` : ''}, ${summary.tensors.length} tensor${summary.tensors.length === 1 ? '' : 's'}`, ''];
  const rows = [['name', 'dtype', 'shape', 'size', 'offset', 'mapped', 'note']];
  let total = 0;
  for (const t of summary.tensors) {
    total += t.byteLength;
    rows.push([t.name, t.dtype, shapeText(t.shape), formatBytes(t.byteLength), t.byteOffset === undefined ? '-' : String(t.byteOffset), t.mappable ? 'yes' : 'no', t.note ?? '']);
  }
  lines.push(table(rows), '', `total: ${summary.tensors.length} tensors, ${formatBytes(total)} (${total} bytes)`);
  const metadata = Object.entries(summary.metadata ?? {});
  if (metadata.length > 0) {
    lines.push('', 'metadata:');
    for (const [key, value] of metadata) lines.push(`  ${key}: ${value.length > 200 ? `${value.slice(0, 197)}...` : value}`);
  }
  if (summary.skipped && summary.skipped.length > 0) {
    lines.push('', 'not tensors:');
    for (const entry of summary.skipped) lines.push(`  ${entry}`);
  }
  if (summary.layers && summary.layers.length > 0) {
    lines.push('', 'layers:');
    for (const layer of summary.layers) lines.push(`  ${layer.name}${layer.className ? ` (${layer.className})` : ''}: ${layer.weights.length === 0 ? 'no weights' : layer.weights.join(', ')}`);
  }
  return lines.join('\n');
}

async function inspect(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { json: { type: 'boolean' }, help: { type: 'boolean' } } });
  if (values.help) return help('inspect');
  if (positionals.length !== 1) throw new UsageError('inspect takes one FILE');
  const file = positionals[0] as string;
  const source = await formatFor(file).open(file);
  try {
    console.log(values.json ? JSON.stringify({ file, ...source.summary }, null, 2) : renderSummary(file, source.summary));
  } finally {
    await source.close();
  }
  return 0;
}

const CASTS: Record<string, (a: NdArray) => NdArray> = { float32: toFloat32, float16: toFloat16, bfloat16: toBfloat16, float64: toFloat64 };

/** --dtype casts floating-point tensors only: integer, bool and complex tensors keep their type. */
function castable(dtype: DType): boolean {
  return dtypeInfo(dtype).lanes === 1 && (dtype.startsWith('float') || dtype === 'bfloat16');
}

/** Parses '5GB', '500MB', '2GiB', '1048576' into bytes (decimal units as Hugging Face uses them). */
export function parseSize(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?$/i.exec(text.trim());
  if (!match) throw new UsageError(`cannot read '${text}' as a size (examples: 5GB, 500MB, 2GiB, 1048576)`);
  const units: Record<string, number> = { b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40 };
  return Math.floor(Number(match[1]) * (units[(match[2] ?? 'b').toLowerCase()] as number));
}

async function convert(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { dtype: { type: 'string' }, 'max-shard-size': { type: 'string' }, 'no-fsync': { type: 'boolean' }, quantize: { type: 'string' }, help: { type: 'boolean' } },
  });
  if (values.help) return help('convert');
  if (positionals.length !== 2) throw new UsageError('convert takes SRC and DST');
  const [src, dst] = positionals as [string, string];
  const cast = values.dtype === undefined ? undefined : CASTS[values.dtype];
  if (values.dtype !== undefined && !cast) throw new UsageError(`--dtype must be one of ${Object.keys(CASTS).join(', ')}`);
  const quantize = values.quantize;
  if (quantize !== undefined && !['float16', 'uint8', 'uint16'].includes(quantize)) throw new UsageError('--quantize must be one of float16, uint8, uint16');
  const modelConversion = cast === undefined && values['max-shard-size'] === undefined && isModelTarget(dst) && (await isModelFile(src));
  if (quantize !== undefined && !(modelConversion && /\.json$/i.test(dst))) throw new UsageError('--quantize applies to a whole model converted to model.json');
  if (modelConversion) {
    // A whole Keras or tfjs model: topology, training config and weights move together,
    // as the tfjs converter moves them (tensor-level conversion would keep only weights).
    const { ioHandler } = await loadTfjsEntry(src);
    const artifacts = await (ioHandler(src).load as () => Promise<object>)();
    await (ioHandler(dst, { fsync: !values['no-fsync'], ...(quantize ? { quantize: quantize as 'uint8' } : {}) }).save as (a: object) => Promise<unknown>)(artifacts);
    console.error(`wrote ${dst} (model topology and weights)`);
    return 0;
  }
  const sink = formatFor(dst);
  const source = await formatFor(src).open(src);
  try {
    const tensors = source.summary.tensors;
    const outputBytes = (name: string): number => {
      const t = tensors.find((x) => x.name === name);
      if (!t) return 0;
      return cast && castable(t.dtype) ? byteLength(values.dtype as DType, t.shape) : t.byteLength;
    };
    const progress = new Progress(tensors.reduce((sum, t) => sum + outputBytes(t.name), 0));
    const get = async (name: string): Promise<NdArray> => {
      const array = await source.get(name);
      const result = cast && castable(array.dtype) ? cast(array) : array;
      progress.advance(outputBytes(name), name);
      return result;
    };
    const options = { fsync: !values['no-fsync'], ...(values['max-shard-size'] === undefined ? {} : { maxShardSize: parseSize(values['max-shard-size']) }) };
    await sink.write(dst, tensors.map((t) => t.name), get, options);
    progress.finish();
  } finally {
    await source.close();
  }
  console.error(`wrote ${dst}`);
  return 0;
}

function isModelTarget(file: string): boolean {
  return /\.json$/i.test(file) ? !/\.safetensors\.index\.json$/i.test(file) : /\.(h5|hdf5)$/i.test(file) && !/\.weights\.h5$/i.test(file);
}

/** True for a Keras full-model file (model_config) or a tfjs model.json with a topology. */
async function isModelFile(file: string): Promise<boolean> {
  if (/\.keras$/i.test(file)) return true;
  if (/\.json$/i.test(file) && !/\.safetensors\.index\.json$/i.test(file)) {
    try {
      const json = JSON.parse(await fs.promises.readFile(file, 'utf8')) as { modelTopology?: unknown };
      return json.modelTopology !== null && json.modelTopology !== undefined;
    } catch {
      return false; // the tensor-level reader reports what is wrong with the file
    }
  }
  if (!/\.(h5|hdf5)$/i.test(file) || /\.weights\.h5$/i.test(file)) return false;
  const h5 = await openH5(file);
  try {
    return h5.attribute('', 'model_config') !== undefined;
  } finally {
    h5.close();
  }
}

function describeDiff(d: TensorDiff): string {
  const numbers = d.maxAbs === undefined ? '' : ` max |a-b| ${d.maxAbs}, max rel ${d.maxRel}${d.mismatched ? `, ${d.mismatched} elements outside tolerance` : ''}`;
  const types = d.dtypes && d.dtypes[0] !== d.dtypes[1] ? ` dtypes ${d.dtypes[0]} vs ${d.dtypes[1]}` : '';
  const shapes = d.status === 'shape differs' && d.shapes ? ` shapes ${shapeText(d.shapes[0])} vs ${shapeText(d.shapes[1])}` : '';
  return `${d.status.padEnd(13)} ${d.name}${shapes}${types}${numbers}`;
}

async function diff(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { rtol: { type: 'string', default: '0' }, atol: { type: 'string', default: '0' }, 'ignore-dtype': { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean' } },
  });
  if (values.help) return help('diff');
  if (positionals.length !== 2) throw new UsageError('diff takes two files');
  const tolerance = { rtol: Number(values.rtol), atol: Number(values.atol), ignoreDtype: values['ignore-dtype'] === true };
  if (!(tolerance.rtol >= 0) || !(tolerance.atol >= 0)) throw new UsageError('--rtol and --atol must be non-negative numbers');
  const [fileA, fileB] = positionals as [string, string];
  const sources: TensorSource[] = [];
  try {
    sources.push(await formatFor(fileA).open(fileA));
    sources.push(await formatFor(fileB).open(fileB));
    const results = await diffSources(sources[0] as TensorSource, sources[1] as TensorSource, tolerance);
    const equal = results.every((r) => r.status === 'equal');
    if (values.json) console.log(JSON.stringify({ equal, tolerance, tensors: results }, null, 2));
    else {
      for (const r of results) console.log(describeDiff(r));
      console.log(equal ? `equal: ${results.length} tensors` : `different: ${results.filter((r) => r.status !== 'equal').length} of ${results.length} tensors`);
    }
    return equal ? 0 : 1;
  } finally {
    for (const source of sources) await source.close();
  }
}

function bench(args: string[]): number {
  if (args.includes('--help')) return help('bench');
  const script = path.resolve(__dirname, '..', '..', 'bench', 'run.mjs');
  if (!fs.existsSync(script)) throw new UsageError(`the benchmark suite is not installed (${script} is missing)`);
  const result = spawnSync(process.execPath, [script, ...args.filter((a) => a !== '--')], { stdio: 'inherit' });
  return result.status ?? 2;
}

function help(command: string): number {
  console.log(HELP[command] ?? HELP.main);
  return 0;
}

/** Runs the command line; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'inspect':
        return await inspect(rest);
      case 'convert':
        return await convert(rest);
      case 'diff':
        return await diff(rest);
      case 'bench':
        return bench(rest);
      case undefined:
      case '--help':
      case '-h':
      case 'help':
        return help(rest[0] ?? 'main');
      case '--version': {
        const pkg = JSON.parse(fs.readFileSync(path.resolve(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string };
        console.log(pkg.version);
        return 0;
      }
      default:
        throw new UsageError(`unknown command '${command}'`);
    }
  } catch (error) {
    if (error instanceof TensorioError) {
      console.error(`tensorio: ${error.code}: ${error.message}`);
    } else if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`tensorio: ${(error as Error).message}\nRun 'tensorio --help' for usage.`);
    } else {
      throw error;
    }
    return 2;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      console.error(error);
      process.exitCode = 2;
    },
  );
}
