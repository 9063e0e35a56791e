/**
 * The fuzzing engine shared by the suite's short run (test/reliability/fuzz.test.ts) and the
 * long campaign (scripts/fuzz.mjs). Each target is a parser over bytes; every input must be
 * read or refused with the target's typed error, within a time budget and an allocation
 * bound derived from the input's size. Failing inputs are saved under test/regressions/.
 * Internal on purpose: targets call the parsers themselves (pickler, Python literals, headers).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import fc from 'fast-check';

import {
  DTYPES,
  dtypeInfo,
  encodeNpy,
  encodeNpyHeader,
  ndarray,
  openH5Sync,
  parseNpyHeader,
  TensorioError,
  unmap,
  unpickle,
  type NdArray,
} from '../../src/index.js';
import { pickleChunks, type PicklableValue } from '../../src/formats/pickle/pickler.js';
import { parsePyLiteral, PyLiteralError } from '../../src/formats/pyliteral.js';
import { isObjectDescr, parseNpyRawHeader } from '../../src/formats/numpy/header.js';
import { crc32 } from '../../src/formats/zip.js';
import { ROOT } from '../helpers.js';
import { FORMATS, formatFixtures, type ReliabilityFormat } from './formats.js';
import { generatedFiles } from './generated.js';
import { torchFuzzTarget } from './fuzz-torch.js';

// PyTorch's seeds: files real torch.save wrote (generated.ts), or ../shared/fixtures/pytorch.
const TORCH_SEEDS = { name: 'torch', extension: '.pt', fixtures: 'pytorch' } as ReliabilityFormat;

/** A parser under fuzz. */
export interface FuzzTarget {
  name: string;
  /** Runs the parser; returns the number of output bytes it produced (for the allocation bound). */
  run(bytes: Uint8Array): number;
  /** Whether an error is this parser's typed refusal. */
  typed(error: unknown): boolean;
  /** Real inputs the mutator starts from. */
  seeds(): Uint8Array[];
  /** Generators of well-formed-looking inputs that reach deep into the parser. */
  structured: fc.Arbitrary<Uint8Array>[];
  /**
   * The most bytes the parser may allocate for an input of `length` bytes. Default: twice
   * the input plus 1 MiB (a copy of the data, plus headroom for small bookkeeping).
   */
  allocationBound?(length: number): number;
  /**
   * Set for targets that only the long campaign runs (each says why): the inputs saved for
   * them are replayed in the suite through this target.
   */
  replayThrough?: string;
  /** Per-input time budget in ms, when the target's own deadline is above {@link TIME_BUDGET_MS}. */
  timeBudgetMs?: number;
}

/** Per-input time budget in ms: generous enough for a GC pause, far below any hang. */
export const TIME_BUDGET_MS = Number(process.env.TENSORIO_FUZZ_TIME_BUDGET_MS ?? 500);

export const REGRESSIONS = path.join(ROOT, 'test', 'regressions');

/** The h5wasm deadline of the `h5wasm-file` target: far above any sound input's time. */
const H5WASM_FUZZ_DEADLINE_MS = 1000;

const isTensorioError = (error: unknown): boolean => error instanceof TensorioError;

function dataBytes(arrays: { data: { byteLength: number } }[]): number {
  return arrays.reduce((sum, a) => sum + a.data.byteLength, 0);
}

// ---------------------------------------------------------------------------------------
// Mutations of real files

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'set'; at: number; value: number }
  | { kind: 'int'; at: number; width: 1 | 2 | 4; value: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; length: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'duplicate'; at: number; length: number; to: number };

const INTERESTING = [0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff, 10000, 10001, 65535, 65536];

// Most structure sits in the first few hundred bytes; positions are biased there.
const position = fc.oneof({ weight: 4, arbitrary: fc.nat(400) }, { weight: 1, arbitrary: fc.nat() });

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: position, bit: fc.nat(7) }),
  fc.record({ kind: fc.constant('set' as const), at: position, value: fc.nat(255) }),
  fc.record({
    kind: fc.constant('int' as const),
    at: position,
    width: fc.constantFrom(1 as const, 2 as const, 4 as const),
    value: fc.oneof(fc.constantFrom(...INTERESTING), fc.nat()),
  }),
  fc.record({ kind: fc.constant('insert' as const), at: position, bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: position, length: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: position }),
  fc.record({ kind: fc.constant('duplicate' as const), at: position, length: fc.integer({ min: 1, max: 64 }), to: position }),
);

function applyMutation(input: Uint8Array, m: Mutation): Uint8Array {
  const n = input.length;
  const at = n === 0 ? 0 : m.at % (n + 1);
  switch (m.kind) {
    case 'flip': {
      if (at >= n) return input;
      const out = input.slice();
      out[at] = (out[at] as number) ^ (1 << m.bit);
      return out;
    }
    case 'set': {
      if (at >= n) return input;
      const out = input.slice();
      out[at] = m.value;
      return out;
    }
    case 'int': {
      const out = input.slice();
      for (let i = 0; i < m.width && at + i < n; i++) out[at + i] = (m.value >>> (8 * i)) & 0xff;
      return out;
    }
    case 'insert': {
      const out = new Uint8Array(n + m.bytes.length);
      out.set(input.subarray(0, at), 0);
      out.set(m.bytes, at);
      out.set(input.subarray(at), at + m.bytes.length);
      return out;
    }
    case 'delete': {
      const end = Math.min(n, at + m.length);
      const out = new Uint8Array(n - (end - at));
      out.set(input.subarray(0, at), 0);
      out.set(input.subarray(end), at);
      return out;
    }
    case 'truncate':
      return input.slice(0, at);
    case 'duplicate': {
      const piece = input.slice(at, Math.min(n, at + m.length));
      const to = n === 0 ? 0 : m.to % (n + 1);
      const out = new Uint8Array(n + piece.length);
      out.set(input.subarray(0, to), 0);
      out.set(piece, to);
      out.set(input.subarray(to), to + piece.length);
      return out;
    }
  }
}

/** Inputs made by mutating the seeds: 1 to 8 mutations each. */
export function mutated(seeds: Uint8Array[]): fc.Arbitrary<Uint8Array> {
  if (seeds.length === 0) return fc.uint8Array({ maxLength: 64 });
  return fc
    .tuple(fc.nat(seeds.length - 1), fc.array(mutation, { minLength: 1, maxLength: 8 }))
    .map(([index, mutations]) => mutations.reduce(applyMutation, seeds[index] as Uint8Array));
}

// ---------------------------------------------------------------------------------------
// Structured .npy headers: plausible dicts with hostile values

const latin1 = (text: string): Uint8Array => Uint8Array.from(text, (c) => c.charCodeAt(0) & 0xff);

const descrs = fc.oneof(
  fc.constantFrom(...DTYPES.flatMap((d) => dtypeInfo(d).numpy ?? []).flatMap((code) => ['<', '>', '|', '='].map((o) => `${o}${code}`))),
  fc.constantFrom('<U8', '|S3', 'O', '<M8[ns]', '|V16', '<f3', '<i16', 'f4', 'b1', '', '<', '<f4x'),
  fc.string({ maxLength: 8 }),
);
const dim = fc.oneof(
  { weight: 5, arbitrary: fc.nat(8) },
  { weight: 1, arbitrary: fc.constantFrom(2 ** 31, 2 ** 32, 2 ** 53 - 1, 2 ** 53, 2 ** 64, -1, 1e300) },
  { weight: 1, arbitrary: fc.nat() },
);
const shapeText = fc.oneof(
  fc.array(dim, { maxLength: 6 }).map((dims) => (dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`)),
  fc.constantFrom('()', '(,)', '[2, 3]', '(2, 3', '(2.5,)', "('a',)", '(True,)', '2', '(-0,)', '(1_0,)', '(0x10,)', '(10L,)'),
);
const dictText = fc
  .record({
    descr: descrs,
    fortran: fc.constantFrom('True', 'False', '0', '1', 'None', "'False'"),
    shape: shapeText,
    order: fc.boolean(),
    extra: fc.constantFrom('', "'extra': 1, ", "'descr': '<f4', "),
    pad: fc.nat(80),
    newline: fc.boolean(),
  })
  .map(({ descr, fortran, shape, order, extra, pad, newline }) => {
    const parts = [`'descr': '${descr}'`, `'fortran_order': ${fortran}`, `'shape': ${shape}`];
    if (order) parts.reverse();
    return `{${parts.join(', ')}, ${extra}}${' '.repeat(pad)}${newline ? '\n' : ''}`;
  });

const npyStructured: fc.Arbitrary<Uint8Array> = fc
  .record({
    text: dictText,
    major: fc.constantFrom(1, 1, 2, 3, 0, 4),
    minor: fc.constantFrom(0, 0, 0, 1),
    lengthDelta: fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -8, max: 8 }) }),
    data: fc.oneof(fc.nat(64), fc.constantFrom(0, 1, 7, 24, 48, 96, 4096)),
    fill: fc.nat(255),
  })
  .map(({ text, major, minor, lengthDelta, data, fill }) => {
    const header = latin1(text);
    const lengthBytes = major === 1 ? 2 : 4;
    const out = new Uint8Array(8 + lengthBytes + header.length + data).fill(fill);
    out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, minor], 0);
    const declared = Math.max(0, header.length + lengthDelta);
    const view = new DataView(out.buffer);
    if (lengthBytes === 2) view.setUint16(8, declared & 0xffff, true);
    else view.setUint32(8, declared, true);
    out.set(header, 8 + lengthBytes);
    return out;
  });

// ---------------------------------------------------------------------------------------
// Python literals: a small grammar plus noise

const pyText: fc.Arbitrary<string> = fc.letrec<{ value: string }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom('True', 'False', 'None', '0', '-1', '1L', '1_000', '1e308', '1e309', '.5', '0x1', "''", '""', "b'\\x00'", "u'\\u00e9'", "r'\\n'", "'\\U0010ffff'", "'\\U00110000'", "'\\x4'", "'unterminated", "'a\\"),
    fc.string({ maxLength: 6 }).map((s) => `'${s.replace(/['\\\n]/g, '')}'`),
    fc.integer().map(String),
    fc.double({ noNaN: true }).map(String),
    fc.array(tie('value'), { maxLength: 4 }).map((items) => `[${items.join(', ')}]`),
    fc.array(tie('value'), { maxLength: 4 }).map((items) => `(${items.join(', ')}${items.length === 1 ? ',' : ''})`),
    fc.array(fc.tuple(tie('value'), tie('value')), { maxLength: 3 }).map((entries) => `{${entries.map(([k, v]) => `${k}: ${v}`).join(', ')}}`),
  ),
})).value;

const deepNesting = fc
  .tuple(fc.integer({ min: 1, max: 5000 }), fc.constantFrom('(', '[', '{', "{'a': "), fc.boolean())
  .map(([depth, open, close]) => {
    const closer = open === '(' ? ')' : open === '[' ? ']' : '}';
    return open.repeat(depth) + '1' + (close ? closer.repeat(depth) : '');
  });

const pyStructured: fc.Arbitrary<Uint8Array> = fc
  .oneof(
    { weight: 4, arbitrary: pyText },
    { weight: 1, arbitrary: deepNesting },
    { weight: 1, arbitrary: fc.tuple(pyText, fc.nat(200), fc.string({ maxLength: 3 })).map(([t, at, noise]) => t.slice(0, at) + noise + t.slice(at)) },
  )
  .map(latin1);

// ---------------------------------------------------------------------------------------
// Targets

function sampleNpyFiles(): Uint8Array[] {
  const arrays: NdArray[] = [
    { dtype: 'float32', shape: [2, 3], data: new Float32Array(6).fill(1.5) },
    { dtype: 'bool', shape: [3], data: Uint8Array.from([0, 1, 1]) },
    { dtype: 'int64', shape: [], data: new BigInt64Array(1) },
    { dtype: 'complex64', shape: [2, 0], data: new Float32Array(0) },
    { dtype: 'float16', shape: [2, 2], order: 'F', data: new Uint16Array(4) },
  ];
  return arrays.map((array) => new Uint8Array(Buffer.concat(encodeNpy(array))));
}

const seedCache = new Map<string, Uint8Array[]>();

/**
 * Which files seed the mutations: files written at test time by NumPy, h5py and safetensors
 * (test/reliability/generated.ts; the main suite), or the real files of other tools in
 * ../shared/fixtures (the fixtures suite and `npm run fuzz`). Set by {@link fuzzTargets}.
 */
let seedCorpus: 'generated' | 'fixtures' = 'generated';

function fixtureSeeds(format: ReliabilityFormat): Uint8Array[] {
  const key = `${seedCorpus}:${format.name}`;
  let seeds = seedCache.get(key);
  if (!seeds) {
    // Large files are cut to their first 16 KiB: the structure is at the front, and
    // mutating megabytes per input would slow the campaign for nothing.
    const files = seedCorpus === 'fixtures' ? formatFixtures(format) : generatedFiles(format);
    seeds = files.map((file) => {
      const bytes = new Uint8Array(fs.readFileSync(file));
      return bytes.length > 16384 ? bytes.slice(0, 16384) : bytes;
    });
    seedCache.set(key, seeds);
  }
  return seeds;
}

/**
 * One `.npy` stored as `x.npy` in a minimal zip with a correct CRC, optionally with a hostile
 * size in the central directory: mutated fixtures mostly die at the CRC or directory checks,
 * this reaches the member's `.npy` parser (and the stored fast paths) with hostile headers.
 */
function storedZip(npy: Uint8Array, declared: number | undefined): Uint8Array {
  const name = new TextEncoder().encode('x.npy');
  const out = new Uint8Array(30 + name.length + npy.length + 46 + name.length + 22);
  const view = new DataView(out.buffer);
  const crc = crc32(npy);
  const size = declared ?? npy.length;
  view.setUint32(0, 0x04034b50, true);
  view.setUint32(14, crc, true);
  view.setUint32(18, size, true);
  view.setUint32(22, size, true);
  view.setUint16(26, name.length, true);
  out.set(name, 30);
  out.set(npy, 30 + name.length);
  const cd = 30 + name.length + npy.length;
  view.setUint32(cd, 0x02014b50, true);
  view.setUint32(cd + 16, crc, true);
  view.setUint32(cd + 20, size, true);
  view.setUint32(cd + 24, size, true);
  view.setUint16(cd + 28, name.length, true);
  out.set(name, cd + 46);
  const end = cd + 46 + name.length;
  view.setUint32(end, 0x06054b50, true);
  view.setUint16(end + 8, 1, true);
  view.setUint16(end + 10, 1, true);
  view.setUint32(end + 12, 46 + name.length, true);
  view.setUint32(end + 16, cd, true);
  return out;
}

const npzStoredStructured: fc.Arbitrary<Uint8Array> = fc
  .tuple(npyStructured, fc.oneof({ weight: 6, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom(0, 1, 0x7fffffff, 0xffffffff) }))
  .map(([npy, declared]) => storedZip(npy, declared));

/** Hostile choices for a ZIP64 field: the true value (most of the time) or one past it, zero, just past 32 bits, the largest safe integer, 2^63, 2^64 - 1. */
function zip64Value(real: number): fc.Arbitrary<bigint> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.constant(BigInt(real)) },
    { weight: 1, arbitrary: fc.constantFrom(BigInt(real) + 1n, 0n, 2n ** 32n, BigInt(Number.MAX_SAFE_INTEGER), 2n ** 63n, 2n ** 64n - 1n) },
  );
}

/**
 * A stored `.npz` in NumPy's ZIP64 form (ZIP64 extra fields in the local header and the
 * directory, a ZIP64 end record and locator), with hostile 64-bit sizes and offsets, and
 * extra fields whose declared length may be cut short or run past the header.
 */
function zip64Zip(npy: Uint8Array, fields: { local: bigint; central: bigint; offset: bigint; cdOffset: bigint; entries: bigint; extraDelta: number }): Uint8Array {
  const name = new TextEncoder().encode('x.npy');
  const localExtra = 4 + 16;
  const centralExtra = 4 + 24;
  const cd = 30 + name.length + localExtra + npy.length;
  const cdSize = 46 + name.length + centralExtra;
  const eocd64 = cd + cdSize;
  const out = new Uint8Array(eocd64 + 56 + 20 + 22);
  const view = new DataView(out.buffer);
  const crc = crc32(npy);
  // Local header: 32-bit sizes say "see the ZIP64 extra field".
  view.setUint32(0, 0x04034b50, true);
  view.setUint16(4, 45, true);
  view.setUint32(14, crc, true);
  view.setUint32(18, 0xffffffff, true);
  view.setUint32(22, 0xffffffff, true);
  view.setUint16(26, name.length, true);
  view.setUint16(28, Math.max(0, localExtra + fields.extraDelta), true);
  out.set(name, 30);
  view.setUint16(30 + name.length, 0x0001, true);
  view.setUint16(32 + name.length, Math.max(0, 16 + fields.extraDelta), true);
  view.setBigUint64(34 + name.length, fields.local, true);
  view.setBigUint64(42 + name.length, fields.local, true);
  out.set(npy, 30 + name.length + localExtra);
  // Central directory entry, sizes and the local header's offset in its ZIP64 extra field.
  view.setUint32(cd, 0x02014b50, true);
  view.setUint16(cd + 6, 45, true);
  view.setUint32(cd + 16, crc, true);
  view.setUint32(cd + 20, 0xffffffff, true);
  view.setUint32(cd + 24, 0xffffffff, true);
  view.setUint16(cd + 28, name.length, true);
  view.setUint16(cd + 30, Math.max(0, centralExtra + fields.extraDelta), true);
  view.setUint32(cd + 42, 0xffffffff, true);
  out.set(name, cd + 46);
  const extra = cd + 46 + name.length;
  view.setUint16(extra, 0x0001, true);
  view.setUint16(extra + 2, Math.max(0, 24 + fields.extraDelta), true);
  view.setBigUint64(extra + 4, fields.central, true);
  view.setBigUint64(extra + 12, fields.central, true);
  view.setBigUint64(extra + 20, fields.offset, true);
  // ZIP64 end record and locator, then the classic end record full of markers.
  view.setUint32(eocd64, 0x06064b50, true);
  view.setBigUint64(eocd64 + 4, 44n, true);
  view.setBigUint64(eocd64 + 24, fields.entries, true);
  view.setBigUint64(eocd64 + 32, fields.entries, true);
  view.setBigUint64(eocd64 + 40, BigInt(cdSize), true);
  view.setBigUint64(eocd64 + 48, fields.cdOffset, true);
  const locator = eocd64 + 56;
  view.setUint32(locator, 0x07064b50, true);
  view.setBigUint64(locator + 8, BigInt(eocd64), true);
  view.setUint32(locator + 16, 1, true);
  const end = locator + 20;
  view.setUint32(end, 0x06054b50, true);
  view.setUint16(end + 8, 0xffff, true);
  view.setUint16(end + 10, 0xffff, true);
  view.setUint32(end + 12, 0xffffffff, true);
  view.setUint32(end + 16, 0xffffffff, true);
  return out;
}

const npzZip64Structured: fc.Arbitrary<Uint8Array> = npyStructured.chain((npy) => {
  const cd = 30 + 5 + 20 + npy.length;
  return fc
    .record({
      local: zip64Value(npy.length),
      central: zip64Value(npy.length),
      offset: zip64Value(0),
      cdOffset: zip64Value(cd),
      entries: zip64Value(1),
      extraDelta: fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constantFrom(-20, -8, -1, 1, 8, 100) }),
    })
    .map((fields) => zip64Zip(npy, fields));
});

const structuredFor = (format: ReliabilityFormat): fc.Arbitrary<Uint8Array>[] =>
  format.name === 'npy' ? [npyStructured] : format.name === 'npz' ? [npzStoredStructured, npzZip64Structured] : [];

/**
 * Deflate (`.npz`) legitimately expands up to 1,032x, and the reader accepts a member's
 * declared size up to 1,032x its compressed size plus 1 KiB (at most one member per 46-byte
 * directory entry); its output may be copied once more (unaligned or big-endian data).
 */
function boundFor(format: ReliabilityFormat): Pick<FuzzTarget, 'allocationBound'> {
  if (format.name !== 'npz') return {};
  return { allocationBound: (length) => 2 * (1032 * length + 1024 * Math.ceil(length / 46)) + 2 * length + (1 << 20) };
}

/** The pickles of NumPy's object-array fixtures (the bytes after the .npy header). */
function pickleSeeds(): Uint8Array[] {
  const npy = FORMATS.find((f) => f.name === 'npy') as ReliabilityFormat;
  return fixtureSeeds(npy).flatMap((bytes) => {
    try {
      const raw = parseNpyRawHeader(bytes);
      return isObjectDescr(raw.descr) ? [bytes.slice(raw.dataOffset)] : [];
    } catch {
      return []; // the fixtures include damaged files
    }
  });
}

/** Pickles written by tensorio's pickler (protocol 2 with NumPy's reconstruct globals) of nested values. */
const pickleStructured: fc.Arbitrary<Uint8Array> = fc
  .letrec<{ node: PicklableValue }>((tie) => ({
    node: fc.oneof(
      { depthSize: 'small' },
      fc.constant(null),
      fc.boolean(),
      fc.integer(),
      fc.bigInt({ min: -(2n ** 80n), max: 2n ** 80n }),
      fc.double(),
      fc.string({ maxLength: 20 }),
      fc.uint8Array({ maxLength: 20 }),
      fc.float32Array({ maxLength: 8 }).map((a) => ndarray(a, [a.length]) as PicklableValue),
      fc.array(tie('node'), { maxLength: 4 }),
      fc.dictionary(fc.string({ maxLength: 8 }), tie('node'), { maxKeys: 4, noNullPrototype: true }),
    ),
  }))
  .node.map((value) => Buffer.concat(pickleChunks(value)));

/**
 * Loads what the formats' readers may need synchronously (h5wasm, which the HDF5 file reader
 * falls back to for structures its own walker does not cover), so the file targets fuzz
 * that path too. Call before fuzzing.
 */
export async function prepareTargets(): Promise<void> {
  for (const format of FORMATS) await format.prepare?.();
}

/**
 * Every fuzz target: two per format in the table (bytes in memory, a file), plus the npy header
 * and literal parsers. `corpus` picks the seed files (see {@link seedCorpus}).
 */
export function fuzzTargets(corpus: 'generated' | 'fixtures' = 'generated'): FuzzTarget[] {
  seedCorpus = corpus;
  const formats = FORMATS.map(
    (format): FuzzTarget => ({
      name: format.name,
      run: (bytes) => dataBytes(format.parse(bytes)),
      typed: isTensorioError,
      seeds: () => [...fixtureSeeds(format), ...(format.name === 'npy' ? sampleNpyFiles() : [])],
      structured: structuredFor(format),
      ...boundFor(format),
    }),
  );
  // The same inputs through each format's file reader (eager or mapped by the input's
  // length), which has its own paths: a first read of the header, a second for long ones,
  // size checks against the real file, the mapping.
  const files = FORMATS.map(
    (format): FuzzTarget => ({
      name: `${format.name}-file`,
      run: (bytes) => {
        const file = scratchFile(format.extension);
        fs.writeFileSync(file, bytes);
        const arrays = format.readSync(file, bytes.length % 2 === 0);
        const produced = dataBytes(arrays);
        // Unmapped now: a synchronous loop never yields to the finalizers that would.
        for (const array of arrays) unmap(array.data.buffer);
        return produced;
      },
      typed: isTensorioError,
      seeds: () => fixtureSeeds(format),
      structured: structuredFor(format),
      ...boundFor(format),
    }),
  );
  const npy = FORMATS.find((f) => f.name === 'npy') as ReliabilityFormat;
  const kerasH5 = FORMATS.find((f) => f.name === 'keras-h5') as ReliabilityFormat;
  return [
    ...formats,
    ...files,
    {
      // The Keras reader hands a file to h5wasm only when its own walker cannot read the
      // structure, which few mutated inputs reach; this target sends every input through
      // h5wasm's walk (groups, attributes, dataset metadata, reads), where HDF5's own
      // errors must come out as TensorioErrors.
      name: 'h5wasm-file',
      // Campaign only: HDF5 loops on some damaged files until the h5wasm deadline stops it
      // (ERR_TIMEOUT), which retires the h5wasm instance; a synchronous run cannot load a
      // fresh one, so the campaign reloads it between chunks of inputs.
      replayThrough: 'keras-h5-file',
      timeBudgetMs: 2 * H5WASM_FUZZ_DEADLINE_MS + TIME_BUDGET_MS,
      run: (bytes) => {
        const file = scratchFile('.h5');
        fs.writeFileSync(file, bytes);
        const h5 = openH5Sync(file, { h5wasm: true, h5wasmTimeoutMs: H5WASM_FUZZ_DEADLINE_MS });
        try {
          let produced = 0;
          for (const name of h5.attributeNames()) h5.attribute('', name);
          for (const dataset of h5.datasets()) {
            for (const name of h5.attributeNames(dataset)) h5.attribute(dataset, name);
            if (h5.info(dataset).dtype !== null) produced += h5.readSync(dataset).data.byteLength;
          }
          return produced;
        } finally {
          h5.close();
        }
      },
      typed: isTensorioError,
      seeds: () => fixtureSeeds(kerasH5),
      structured: structuredFor(kerasH5),
    },
    torchFuzzTarget({ seeds: () => fixtureSeeds(TORCH_SEEDS), mutation, applyMutation, scratchFile }),
    {
      name: 'npy-header',
      run: (bytes) => {
        // A raised limit reaches the long-header paths NumPy files never use.
        parseNpyHeader(bytes, '<fuzz>', { maxHeaderSize: bytes.length % 2 === 0 ? 10000 : 1 << 20 });
        return 0;
      },
      typed: isTensorioError,
      seeds: () => [...fixtureSeeds(npy).map((b) => b.slice(0, 512)), encodeNpyHeader('float64', [3, 4], false)],
      structured: [npyStructured],
    },
    {
      name: 'pickle',
      run: (bytes) => {
        unpickle(bytes);
        return 0;
      },
      typed: isTensorioError,
      seeds: pickleSeeds,
      structured: [pickleStructured],
    },
    {
      name: 'pyliteral',
      run: (bytes) => {
        parsePyLiteral(String.fromCharCode(...bytes.subarray(0, 65536)));
        return 0;
      },
      // The literal parser's own typed refusal; readers wrap it as ERR_BAD_HEADER.
      typed: (error) => error instanceof PyLiteralError,
      seeds: () => fixtureSeeds(npy).map((b) => b.slice(10, Math.min(b.length, 300))),
      structured: [pyStructured],
    },
  ];
}

let scratchDir: string | undefined;

/** A file in a private folder (one per process and thread), removed at exit. */
function scratchFile(extension: string): string {
  if (!scratchDir) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tensorio-fuzz-'));
    scratchDir = dir;
    process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  }
  return path.join(scratchDir, `input${extension}`);
}

/** What a fuzz run found. */
export interface FuzzFigures {
  target: string;
  runs: number;
  accepted: number;
  refused: number;
  failures: number;
  maxMs: number;
  /** Largest (allocated bytes / bound) seen: must stay at or below 1. */
  maxAllocationRatio: number;
  /** Largest growth of the JS heap across one input, in bytes. */
  maxHeapGrowth: number;
  /** Inputs over the time budget once that met it on a retry (load, GC pauses). */
  retriedSlow: number;
  seconds: number;
  saved: string[];
  /** Why each saved input failed. */
  messages: string[];
  /** How many refusals had each error code. */
  codes: Record<string, number>;
}

/**
 * Checks one input; throws an Error describing any violation. Returns whether it was accepted.
 * An input over the time budget is run twice more before it counts: a real hang or a slow
 * path is slow every time, while a machine under load (or a GC pause) stalls one run at random.
 */
export function checkInput(target: FuzzTarget, bytes: Uint8Array, figures?: FuzzFigures): boolean {
  for (let attempt = 1; ; attempt++) {
    try {
      return checkOnce(target, bytes, figures);
    } catch (error) {
      if (!(error instanceof SlowInput) || attempt === 3) throw error;
      if (figures) figures.retriedSlow++;
    }
  }
}

class SlowInput extends Error {}

function checkOnce(target: FuzzTarget, bytes: Uint8Array, figures?: FuzzFigures): boolean {
  const bound = target.allocationBound ? target.allocationBound(bytes.length) : 2 * bytes.length + (1 << 20);
  const memoryBefore = process.memoryUsage();
  const before = memoryBefore.arrayBuffers;
  const start = performance.now();
  let accepted = false;
  let produced = 0;
  try {
    produced = target.run(bytes);
    accepted = true;
  } catch (error) {
    if (!target.typed(error)) {
      throw new Error(`${target.name}: untyped failure ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`, { cause: error });
    }
    if (figures) {
      const code = String((error as { code?: unknown }).code ?? (error as Error).name);
      figures.codes[code] = (figures.codes[code] ?? 0) + 1;
    }
  }
  const ms = performance.now() - start;
  const memoryAfter = process.memoryUsage();
  const allocated = Math.max(produced, memoryAfter.arrayBuffers - before);
  // Growth of the JS heap across the call (a collection in between only lowers it): strings
  // and objects the parser builds. Generous, since a parser builds a few objects per byte.
  const heapGrowth = memoryAfter.heapUsed - memoryBefore.heapUsed;
  const heapBound = 512 * bytes.length + (16 << 20);
  if (heapGrowth > heapBound) throw new Error(`${target.name}: the heap grew by ${heapGrowth} bytes for a ${bytes.length}-byte input (bound ${heapBound})`);
  const budget = target.timeBudgetMs ?? TIME_BUDGET_MS;
  if (ms > budget) throw new SlowInput(`${target.name}: ${ms.toFixed(1)} ms for a ${bytes.length}-byte input (budget ${budget} ms)`);
  if (allocated > bound) throw new Error(`${target.name}: allocated ${allocated} bytes for a ${bytes.length}-byte input (bound ${bound})`);
  if (figures) {
    figures.maxMs = Math.max(figures.maxMs, ms);
    figures.maxAllocationRatio = Math.max(figures.maxAllocationRatio, allocated / bound);
    figures.maxHeapGrowth = Math.max(figures.maxHeapGrowth, heapGrowth);
  }
  return accepted;
}

/** Saves a failing input under test/regressions/<target>/ and returns its path. */
export function saveRegression(target: string, bytes: Uint8Array): string {
  const dir = path.join(REGRESSIONS, target);
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${createHash('sha256').update(bytes).digest('hex').slice(0, 16)}.bin`);
  fs.writeFileSync(file, bytes);
  return file;
}

/** The saved regression inputs of a target. */
export function regressionInputs(target: string): string[] {
  const dir = path.join(REGRESSIONS, target);
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((n) => n.endsWith('.bin')).sort().map((n) => path.join(dir, n));
}

/** The input arbitrary of a target: raw bytes, mutated seeds and its structured generators. */
export function inputs(target: FuzzTarget): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 512 }) },
    { weight: 4, arbitrary: mutated(target.seeds()) },
    ...target.structured.map((arbitrary) => ({ weight: 4, arbitrary })),
  );
}

/**
 * Fuzzes one target for `runs` inputs (in batches, so one failure does not end the run).
 * `onInput` sees each input before it runs (the long campaign's hang watchdog records it).
 */
/** Figures of a run that has not started. */
export function emptyFigures(target: string): FuzzFigures {
  return { target, runs: 0, accepted: 0, refused: 0, failures: 0, maxMs: 0, maxAllocationRatio: 0, maxHeapGrowth: 0, retriedSlow: 0, seconds: 0, saved: [], messages: [], codes: {} };
}

/**
 * Runs `runs` more inputs through `target`. `figures`, when given, is added to (a campaign
 * runs in chunks); else a fresh record is returned.
 */
export function fuzz(target: FuzzTarget, runs: number, options: { seed?: number; batch?: number; onInput?: (bytes: Uint8Array) => void; figures?: FuzzFigures } = {}): FuzzFigures {
  const figures = options.figures ?? emptyFigures(target.name);
  const goal = figures.runs + runs;
  const arbitrary = inputs(target);
  const batch = options.batch ?? 10000;
  const started = performance.now();
  let seed = options.seed ?? Date.now() | 0;
  while (figures.runs < goal) {
    const numRuns = Math.min(batch, goal - figures.runs);
    const result = fc.check(
      fc.property(arbitrary, (bytes) => {
        options.onInput?.(bytes);
        if (checkInput(target, bytes, figures)) figures.accepted++;
        else figures.refused++;
      }),
      { numRuns, seed },
    );
    figures.runs += result.numRuns;
    if (result.failed) {
      figures.failures++;
      const example = result.counterexample?.[0];
      if (example) figures.saved.push(saveRegression(target.name, example));
      figures.messages.push(result.errorInstance instanceof Error ? result.errorInstance.message : String(result.errorInstance));
      // Continue with a fresh seed so one bug does not hide the rest.
      if (result.numRuns === 0) figures.runs++;
    }
    seed = (seed * 1103515245 + 12345) | 0;
  }
  figures.seconds += (performance.now() - started) / 1000;
  return figures;
}
