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
import { fromSystemError, TensorioError } from '../errors.js';
import { byteLength, type NdArray } from '../ndarray.js';
import { diffSources, type TensorDiff } from './diff.js';
import {
  formatFor,
  loadTfjsEntry,
  openSource,
  withNonTensors,
  type FileSummary,
  type SourceOptions,
  type TensorSource,
} from './formats.js';
import { openH5 } from '../formats/hdf5/file.js';
import { FORMATS, formatForPath, formatOfName, hdf5Flavour } from '../formats/registry.js';
import { scanTorchGlobals, verifySafetensorsCopy } from '../formats/torch/index.js';
import { formatBytes, Progress } from './progress.js';
import { tfjsDtypeOf } from '../tfjs/tfjs-arrays.js';

/** The help lines of the reading flags inspect, convert and diff share ({@link READ_FLAGS}). */
const READ_FLAGS_HELP = `  --max-header-size N   accept .npy headers (files and .npz members) up to N bytes (default 10000, NumPy's)
  --allow-pickle        read a pickled .npy (np.save of a list or dict) with the restricted
                        unpickler, which runs no code: its arrays by key path (0, 1 or x, a/b)`;

const HELP: Record<string, string> = {
  main: `Usage: tensorio <command> [options]

Commands:
  inspect FILE            show a file's format, tensors, metadata and layers (no data is read)
  convert SRC DST         convert between formats, chosen by extension (whole Keras/tfjs models too)
  diff A B                compare the tensors of two files by name
  bench                   run the benchmark suite

Run 'tensorio <command> --help' for a command's options. Formats: ${FORMATS.filter((f) => f.entryPoints.includes('cliRead')).map((f) => f.title).join(', ')}.`,
  inspect: `Usage: tensorio inspect FILE [--json] [--max-header-size N] [--allow-pickle] [--globals]

Shows the format and version, a table of tensors (name, dtype, shape, size, byte offset,
whether a read can map it), metadata, and for model files the layers with their weights.
Only headers are read.

  --json    print the summary as JSON
${READ_FLAGS_HELP}
  --globals             PyTorch files: every global the pickles name, and whether the reader
                        (and torch.load(weights_only=True)) accepts it, by a scan of the pickles'
                        opcodes that builds and runs nothing: check a file before Python loads it`,
  convert: `Usage: tensorio convert SRC DST [--dtype DTYPE] [--max-shard-size SIZE] [--no-fsync]

Converts tensor by tensor (each read mapped where possible, so memory stays bounded) with a
progress line on stderr. The output is written atomically. Formats by extension: .npy, .npz,
.safetensors (a sharded checkpoint by its .safetensors.index.json), .h5/.hdf5/.weights.h5,
.pt/.pth/.ckpt/.bin (PyTorch), .keras (read) and model.json (TensorFlow.js; needs
@tensorflow/tfjs; dtypes tfjs lacks are converted and each conversion is named). A Keras full-model .h5 (or .keras)
converted to model.json or .h5, or a model.json to .h5, moves the whole model: topology,
training config and weights.

  --dtype DTYPE           cast every floating-point tensor: float32, float16, bfloat16, float64
  --skip-unsupported      convert what the target can hold and name each member skipped
                          (without it, a member the target cannot hold fails the command,
                          one line per member, and nothing is written)
  --max-shard-size SIZE   shard the output (formats that shard), e.g. 5GB, 500MB, 1048576
  --no-fsync              skip fsync (faster; see the README on atomic writes)
  --quantize DTYPE        a whole model to model.json: store float32 weights as float16, uint8
                          or uint16, byte for byte as tensorflowjs_converter --quantize_<DTYPE>
${READ_FLAGS_HELP}`,
  diff: `Usage: tensorio diff A B [--rtol R] [--atol A] [--ignore-dtype] [--json]

Compares tensors by name across formats: shape, dtype, largest absolute and relative
difference. Equal when both files hold the same member names and every element satisfies
|a - b| <= atol + rtol * |b| (NaN equals NaN; 64-bit integers compared exactly). Members on
one side only and members that could not be compared (strings, pickles) are listed and make
the files different. A .npy (one unnamed array) is compared with the other file's single
member. Exit code 0 when equal, 1 when not, 2 on error.

  --rtol R         relative tolerance (default 0: exact)
  --atol A         absolute tolerance (default 0: exact)
  --ignore-dtype   equal values in different dtypes count as equal (after convert --dtype)
  --json           print the comparison as JSON
${READ_FLAGS_HELP}`,
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
  lines.push(summary.tensors.length === 0 ? '(no numeric tensors)' : table(rows), '', `total: ${summary.tensors.length} tensor${summary.tensors.length === 1 ? '' : 's'}, ${formatBytes(total)} (${total} bytes)`);
  if (summary.header) lines.push('', `header: descr ${summary.header.descr}, shape ${shapeText(summary.header.shape)}, ${summary.header.order === 'F' ? 'Fortran' : 'C'} order`);
  const metadata = Object.entries(summary.metadata ?? {});
  if (metadata.length > 0) {
    lines.push('', 'metadata:');
    for (const [key, value] of metadata) lines.push(`  ${key}: ${value.length > 200 ? `${value.slice(0, 197)}...` : value}`);
  }
  if (summary.skipped && summary.skipped.length > 0) {
    lines.push('', 'not tensors:');
    for (const entry of summary.skipped) lines.push(`  ${entry.name}: ${entry.why}`);
  }
  if (summary.layers && summary.layers.length > 0) {
    lines.push('', 'layers:');
    for (const layer of summary.layers) lines.push(`  ${layer.name}${layer.className ? ` (${layer.className})` : ''}: ${layer.weights.length === 0 ? 'no weights' : layer.weights.join(', ')}`);
  }
  return lines.join('\n');
}

/** The reading flags inspect, convert and diff share: the library options their messages name. */
const READ_FLAGS = { 'max-header-size': { type: 'string' }, 'allow-pickle': { type: 'boolean' } } as const;

function sourceOptions(values: { 'max-header-size'?: string | undefined; 'allow-pickle'?: boolean | undefined }): SourceOptions {
  const options: SourceOptions = {};
  if (values['max-header-size'] !== undefined) {
    const size = Number(values['max-header-size']);
    if (!Number.isSafeInteger(size) || size <= 0) throw new UsageError(`--max-header-size must be a positive number of bytes, got '${values['max-header-size']}'`);
    options.maxHeaderSize = size;
  }
  if (values['allow-pickle']) options.allowPickle = true;
  return options;
}

async function inspect(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { json: { type: 'boolean' }, globals: { type: 'boolean' }, help: { type: 'boolean', short: 'h' }, ...READ_FLAGS } });
  if (values.help) return help('inspect');
  if (positionals.length !== 1) throw new UsageError('inspect takes one FILE');
  const file = positionals[0] as string;
  if (values.globals) return inspectGlobals(file, values.json ?? false);
  const source = await openSource(file, sourceOptions(values));
  try {
    console.log(values.json ? JSON.stringify({ file, ...source.summary }, null, 2) : renderSummary(file, source.summary));
  } finally {
    await source.close();
  }
  return 0;
}

/** `inspect --globals`: the scan of a PyTorch file's pickles, refused globals marked. */
async function inspectGlobals(file: string, json: boolean): Promise<number> {
  const id = formatForPath(file, 'cliRead').id;
  if (id !== 'torch' && id !== 'torch-index') throw new UsageError('--globals applies to PyTorch files (.pt, .pth, .ckpt, .bin, a sharded index)');
  const uses = await scanTorchGlobals(file);
  const refused = uses.filter((u) => !u.allowed);
  if (json) {
    console.log(JSON.stringify({ file, globals: uses }, null, 2));
    return 0;
  }
  const names = uses.map((u) => `${u.module}.${u.name}`);
  const width = Math.max(0, ...names.map((n) => n.length));
  console.log(`${file}: ${uses.length} ${uses.length === 1 ? 'global' : 'globals'} named by its pickles, ${refused.length} refused by the reader`);
  uses.forEach((u, i) => console.log(`  ${(names[i] as string).padEnd(width)}  ${u.allowed ? 'allowed' : 'REFUSED'}  ${u.count}×  ${u.pickle} @ ${u.offset}`));
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
    options: {
      dtype: { type: 'string' },
      'max-shard-size': { type: 'string' },
      'no-fsync': { type: 'boolean' },
      quantize: { type: 'string' },
      'skip-unsupported': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      ...READ_FLAGS,
    },
  });
  if (values.help) return help('convert');
  if (positionals.length !== 2) throw new UsageError('convert takes SRC and DST');
  const [src, dst] = positionals as [string, string];
  const readOptions = sourceOptions(values);
  // Every option is checked before any work: nothing is read or written for a refused command.
  const cast = values.dtype === undefined ? undefined : CASTS[values.dtype];
  if (values.dtype !== undefined && !cast) throw new UsageError(`--dtype must be one of ${Object.keys(CASTS).join(', ')}`);
  const quantize = values.quantize;
  if (quantize !== undefined && !['float16', 'uint8', 'uint16'].includes(quantize)) throw new UsageError('--quantize must be one of float16, uint8, uint16');
  const target = formatForPath(dst, 'cliWrite');
  formatForPath(src, 'cliRead');
  const dtype = values.dtype as DType | undefined;
  if (dtype !== undefined && !target.holds.dtypes.includes(dtype)) {
    throw new TensorioError('ERR_UNSUPPORTED_DTYPE', `--dtype ${dtype}: ${target.title} cannot hold ${dtype} (it holds ${target.holds.dtypes.join(', ')})`, { path: dst });
  }
  let maxShardSize: number | undefined;
  if (values['max-shard-size'] !== undefined) {
    if (target.id !== 'safetensors' && target.id !== 'safetensors-index' && target.id !== 'torch') throw new UsageError('--max-shard-size applies to .safetensors and PyTorch targets only');
    maxShardSize = parseSize(values['max-shard-size']);
    if (!(maxShardSize > 0)) throw new UsageError(`--max-shard-size must be more than 0 bytes, got '${values['max-shard-size']}'`);
  }
  const modelConversion = cast === undefined && maxShardSize === undefined && isModelTarget(dst) && (await isModelFile(src));
  if (quantize !== undefined && !(modelConversion && target.id === 'tfjs')) throw new UsageError('--quantize applies to a whole model converted to model.json');
  if (modelConversion) {
    // A whole Keras or tfjs model: topology, training config and weights move together,
    // as the tfjs converter moves them (tensor-level conversion would keep only weights).
    const { ioHandler } = await loadTfjsEntry(src);
    const artifacts = await (ioHandler(src).load as () => Promise<object>)();
    await (ioHandler(dst, { fsync: !values['no-fsync'], ...(quantize ? { quantize: quantize as 'uint8' } : {}) }).save as (a: object) => Promise<unknown>)(artifacts);
    console.error(`wrote ${dst} (model topology and weights)`);
    return 0;
  }
  const sink = formatFor(dst, 'cliWrite');
  const source = await withNonTensors(await openSource(src, readOptions));
  let written: string[] | void;
  const notes: string[] = [];
  try {
    const outDtype = (t: { dtype: DType }): DType => (cast && castable(t.dtype) ? (dtype as DType) : t.dtype);
    // What the target cannot hold is refused member by member, or skipped by name when asked.
    // model.json converts what tfjs lacks as toTensor does (float64 → float32, int64 → int32
    // when every value fits, else an error naming the tensor), and says so member by member.
    if (target.id === 'tfjs') {
      for (const t of source.summary.tensors) {
        if (!target.holds.dtypes.includes(outDtype(t))) notes.push(`converted '${t.name}': ${outDtype(t)} → ${tfjsDtypeOf(outDtype(t))} (tfjs has no ${outDtype(t)})`);
      }
    }
    const refused = [
      ...(source.summary.skipped ?? []).map((s) => ({ name: s.name, why: `not a numeric array tensorio converts (${s.why})` })),
      ...source.summary.tensors
        .filter((t) => target.id !== 'tfjs' && !target.holds.dtypes.includes(outDtype(t)))
        .map((t) => ({ name: t.name, why: `${outDtype(t)}, which ${target.title} cannot hold${castable(t.dtype) ? ' (--dtype converts floating-point tensors)' : ''}` })),
    ];
    if (refused.length > 0 && !values['skip-unsupported']) {
      const lines = refused.map((r) => `tensorio: ERR_UNSUPPORTED_DTYPE: ${src}: member '${r.name}': ${r.why}`);
      console.error(`${lines.join('\n')}\ntensorio: nothing written; pass --skip-unsupported to convert the other members`);
      return 2;
    }
    for (const r of refused) notes.push(`skipped '${r.name}': ${r.why}`);
    const skippedNames = new Set(refused.map((r) => r.name));
    // Tied weights go into safetensors once, the other names noted in the metadata (Hugging Face's way).
    const toSafetensors = target.id === 'safetensors' || target.id === 'safetensors-index';
    const plan = toSafetensors ? source.safetensorsPlan?.(source.summary.tensors.map((t) => t.name).filter((n) => !skippedNames.has(n))) : undefined;
    for (const [removed, kept] of plan?.omit ?? []) notes.push(`'${removed}' shares its storage with '${kept}': written once, as '${kept}' (the metadata notes '${removed}')`);
    const tensors = source.summary.tensors.filter((t) => !skippedNames.has(t.name) && !plan?.omit.has(t.name));
    if (tensors.length === 0) throw new TensorioError('ERR_INVALID_ARGUMENT', 'nothing to convert: the source holds no member the target can hold', { path: src });
    const metadata = plan ? { ...plan.metadata, ...source.summary.metadata } : source.summary.metadata;
    if (metadata && Object.keys(metadata).length > 0 && !(target.id === 'safetensors' || target.id === 'safetensors-index')) {
      notes.push(`metadata not kept (${Object.keys(metadata).join(', ')}): ${target.title} has no place for it`);
    }
    const outputBytes = (name: string): number => {
      const t = tensors.find((x) => x.name === name);
      if (!t) return 0;
      return cast && castable(t.dtype) ? byteLength(dtype as DType, t.shape) : t.byteLength;
    };
    const progress = new Progress(tensors.reduce((sum, t) => sum + outputBytes(t.name), 0));
    const get = async (name: string): Promise<NdArray> => {
      const array = await source.get(name);
      const result = cast && castable(array.dtype) ? cast(array) : array;
      progress.advance(outputBytes(name), name);
      return result;
    };
    const options = { fsync: !values['no-fsync'], ...(maxShardSize === undefined ? {} : { maxShardSize }), ...(metadata && Object.keys(metadata).length > 0 ? { metadata } : {}) };
    try {
      written = await (sink.write as NonNullable<typeof sink.write>)(dst, tensors.map((t) => t.name), get, options);
    } finally {
      progress.finish();
    }
    if (plan) await verifySafetensorsCopy((written || []).find((f) => f.endsWith('.index.json')) ?? dst, tensors.map((t) => t.name), async (n) => ((a) => (cast && castable(a.dtype) ? cast(a) : a))(await source.get(n)));
  } finally {
    await source.close();
  }
  for (const note of notes) console.error(`tensorio: ${note}`);
  const files = written && written.length > 0 ? written : [dst];
  console.error(files.length === 1 ? `wrote ${files[0]}` : `wrote ${files.length} files: ${files.join(', ')}`);
  return 0;
}

/** True for a target that holds a whole model: model.json, or a Keras .h5 (not a Keras 3 .weights.h5). */
function isModelTarget(file: string): boolean {
  const id = formatOfName(file)?.id;
  return id === 'tfjs' || id === 'hdf5';
}

/** True for a Keras full-model file (model_config, or a .keras archive) or a tfjs model.json with a topology. */
async function isModelFile(file: string): Promise<boolean> {
  const id = formatOfName(file)?.id;
  if (id === 'keras') return true;
  if (id === 'tfjs') {
    try {
      const json = JSON.parse(await fs.promises.readFile(file, 'utf8')) as { modelTopology?: unknown };
      return json.modelTopology !== null && json.modelTopology !== undefined;
    } catch {
      return false; // the tensor-level reader reports what is wrong with the file
    }
  }
  if (id !== 'hdf5') return false;
  const h5 = await openH5(file);
  try {
    return hdf5Flavour(h5) === 'keras-model';
  } finally {
    h5.close();
  }
}

function describeDiff(d: TensorDiff): string {
  const numbers = d.maxAbs === undefined ? '' : ` max |a-b| ${d.maxAbs}, max rel ${d.maxRel}${d.mismatched ? `, ${d.mismatched} elements outside tolerance` : ''}`;
  const types = d.dtypes && d.dtypes[0] !== d.dtypes[1] ? ` dtypes ${d.dtypes[0]} vs ${d.dtypes[1]}` : '';
  const shapes = d.status === 'shape differs' && d.shapes ? ` shapes ${shapeText(d.shapes[0])} vs ${shapeText(d.shapes[1])}` : '';
  return `${d.status.padEnd(13)} ${d.name}${shapes}${types}${numbers}${d.reason ? ` (${d.reason})` : ''}`;
}

async function diff(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { rtol: { type: 'string', default: '0' }, atol: { type: 'string', default: '0' }, 'ignore-dtype': { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' }, ...READ_FLAGS },
  });
  if (values.help) return help('diff');
  if (positionals.length !== 2) throw new UsageError('diff takes two files');
  const tolerance = { rtol: Number(values.rtol), atol: Number(values.atol), ignoreDtype: values['ignore-dtype'] === true };
  if (!(tolerance.rtol >= 0) || !(tolerance.atol >= 0)) throw new UsageError('--rtol and --atol must be non-negative numbers');
  const [fileA, fileB] = positionals as [string, string];
  const sources: TensorSource[] = [];
  try {
    const readOptions = sourceOptions(values);
    sources.push(await withNonTensors(await openSource(fileA, readOptions)));
    sources.push(await withNonTensors(await openSource(fileB, readOptions)));
    const results = await diffSources(sources[0] as TensorSource, sources[1] as TensorSource, tolerance);
    const equal = results.every((r) => r.status === 'equal');
    if (values.json) console.log(JSON.stringify({ equal, tolerance, tensors: results }, null, 2));
    else {
      for (const r of results) console.log(describeDiff(r));
      const count = (n: number): string => `${n} tensor${n === 1 ? '' : 's'}`;
      console.log(equal ? `equal: ${count(results.length)}` : `different: ${results.filter((r) => r.status !== 'equal').length} of ${count(results.length)}`);
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

/** A message on one line: the CLI prints every error as exactly one line. */
function oneLine(text: string): string {
  // Node's own wording of a system error ("ENOENT: no such file or directory, open '<temp>'")
  // names the temporary file of an atomic write; the error already names the target.
  return text
    .replace(/\s*\n\s*/g, ' ')
    .replace(/\bE[A-Z]+: ([^,]+), \w+ '[^']*'/g, '$1')
    .replace(/\s*'?[^\s']*\.tensorio-tmp'?/g, '');
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
        // No command is a usage error: the usage goes to stderr, the exit code says so.
        console.error(HELP.main);
        return 2;
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
    const code = (error as { code?: unknown }).code;
    const syscall = error as { path?: unknown; syscall?: unknown };
    if (error instanceof TensorioError) {
      console.error(`tensorio: ${error.code}: ${oneLine(error.message)}`);
    } else if (error instanceof UsageError || (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS'))) {
      console.error(`tensorio: ${oneLine((error as Error).message)}\nRun 'tensorio --help' for usage.`);
    } else if (typeof code === 'string' && typeof syscall.path === 'string') {
      // A system error that escaped a reader (ENOENT, EACCES, ...): named as the library names it.
      const wrapped = fromSystemError(error, syscall.path, typeof syscall.syscall === 'string' ? syscall.syscall : 'open');
      console.error(`tensorio: ${wrapped.code}: ${oneLine(wrapped.message)}`);
    } else {
      console.error(`tensorio: internal error: ${oneLine(error instanceof Error ? error.message : String(error))} (please report it)`);
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
