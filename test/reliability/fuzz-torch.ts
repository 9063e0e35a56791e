/**
 * The PyTorch reader under fuzz (a target of test/reliability/fuzz.ts): files torch.save wrote
 * (zip and legacy formats), mutated, and zips rebuilt around a mutated `data.pkl` with correct
 * CRCs (mutated archives mostly die at the CRC check; these reach the unpickler and the tensor
 * checks). Every input is read by readTorchSync, eager or mapped, or refused with a
 * TensorioError, in bounded time and memory. Internal on purpose: the zip reader and ByteSource
 * rebuild archives around a mutated pickle.
 */
import * as fs from 'node:fs';

import fc from 'fast-check';

import { readTorchSync, TensorioError, unmap, type LoadedArray, type TorchValue } from '../../src/index.js';
import { crc32, readCentralDirectorySync, readMemberSync } from '../../src/formats/zip.js';
import { ByteSource } from '../../src/io/source.js';
import { scanPickle } from '../../src/formats/torch/inspect.js';
import type { FuzzTarget } from './fuzz.js';

/** What the engine lends the target (kept there, private to it). */
export interface TorchFuzzParts<M> {
  seeds(): Uint8Array[];
  mutation: fc.Arbitrary<M>;
  applyMutation(input: Uint8Array, m: M): Uint8Array;
  scratchFile(extension: string): string;
}

/** A stored zip of `members`, each with its right CRC and sizes (no alignment, no ZIP64). */
function storedZip(members: readonly (readonly [string, Uint8Array])[]): Uint8Array {
  const enc = new TextEncoder();
  const names = members.map(([name]) => enc.encode(name));
  const local = members.reduce((n, [, data], i) => n + 30 + (names[i] as Uint8Array).length + data.length, 0);
  const central = names.reduce((n, name) => n + 46 + name.length, 0);
  const out = new Uint8Array(local + central + 22);
  const view = new DataView(out.buffer);
  const offsets: number[] = [];
  let at = 0;
  members.forEach(([, data], i) => {
    const name = names[i] as Uint8Array;
    offsets.push(at);
    view.setUint32(at, 0x04034b50, true);
    view.setUint32(at + 14, crc32(data), true);
    view.setUint32(at + 18, data.length, true);
    view.setUint32(at + 22, data.length, true);
    view.setUint16(at + 26, name.length, true);
    out.set(name, at + 30);
    out.set(data, at + 30 + name.length);
    at += 30 + name.length + data.length;
  });
  const cd = at;
  members.forEach(([, data], i) => {
    const name = names[i] as Uint8Array;
    view.setUint32(at, 0x02014b50, true);
    view.setUint32(at + 16, crc32(data), true);
    view.setUint32(at + 20, data.length, true);
    view.setUint32(at + 24, data.length, true);
    view.setUint16(at + 28, name.length, true);
    view.setUint32(at + 42, offsets[i] as number, true);
    out.set(name, at + 46);
    at += 46 + name.length;
  });
  view.setUint32(at, 0x06054b50, true);
  view.setUint16(at + 8, members.length, true);
  view.setUint16(at + 10, members.length, true);
  view.setUint32(at + 12, at - cd, true);
  view.setUint32(at + 16, cd, true);
  return out;
}

/** The members of a zip seed, or undefined for a legacy file. */
function zipMembers(bytes: Uint8Array): [string, Uint8Array][] | undefined {
  if (bytes[0] !== 0x50 || bytes[1] !== 0x4b) return undefined;
  const source = ByteSource.ofBytes(bytes, '<seed>');
  return readCentralDirectorySync(source, '<seed>').map((entry) => [entry.name, readMemberSync(source, entry, '<seed>').slice()]);
}

/** Bytes the arrays hold outside the file's mapping, each buffer once (tied views share one). */
function producedBytes(value: TorchValue): number {
  const buffers = new Set<ArrayBufferLike>();
  const seen = new Set<object>();
  let produced = 0;
  const visit = (v: unknown): void => {
    if (v === null || typeof v !== 'object' || seen.has(v)) return;
    seen.add(v);
    if ('data' in v && 'dtype' in v && ArrayBuffer.isView((v as LoadedArray).data)) {
      const array = v as LoadedArray;
      const buffer = array.data.buffer;
      if (!buffers.has(buffer)) {
        buffers.add(buffer);
        if (array.mapped) unmap(buffer);
        else produced += buffer.byteLength;
      }
      return;
    }
    if (ArrayBuffer.isView(v)) return;
    if (v instanceof Map) for (const [k, x] of v) (visit(k), visit(x));
    else if (v instanceof Set || Array.isArray(v)) for (const x of v) visit(x);
    else for (const x of Object.values(v)) visit(x);
  };
  visit(value);
  return produced;
}

/** The `torch-file` target. */
export function torchFuzzTarget<M>(parts: TorchFuzzParts<M>): FuzzTarget {
  let cached: [string, Uint8Array][][] | undefined;
  const pickled = fc.constant(null).chain(() => {
    cached ??= parts.seeds().flatMap((seed) => {
      const members = zipMembers(seed);
      return members ? [members] : [];
    });
    const seeds = cached;
    if (seeds.length === 0) return fc.constant(new Uint8Array(0));
    return fc.tuple(fc.nat(seeds.length - 1), fc.array(parts.mutation, { minLength: 1, maxLength: 6 })).map(([index, mutations]) => {
      const members = seeds[index] as [string, Uint8Array][];
      return storedZip(members.map(([name, data]) => [name, name.endsWith('/data.pkl') ? mutations.reduce(parts.applyMutation, data) : data] as const));
    });
  });
  return {
    name: 'torch-file',
    run: (bytes) => {
      const file = parts.scratchFile('.pt');
      fs.writeFileSync(file, bytes);
      // The globals scan (`inspect --globals`) walks the same opcodes without building anything.
      try {
        scanPickle(bytes, 0, '<fuzz>');
      } catch (error) {
        if (!(error instanceof TensorioError)) throw error;
      }
      return producedBytes(readTorchSync(file, { mmap: bytes.length % 2 === 0 }));
    },
    typed: (error) => error instanceof TensorioError,
    seeds: parts.seeds,
    structured: [pickled],
    // A storage may be a deflated member (up to 1,032 times its compressed bytes, one per 46-byte
    // directory entry), read once; the C-order copies of one read take at most twice the file
    // plus 64 MiB (maxCopySize's default); the pickle and the directory are a copy of the input.
    allocationBound: (length) => 2 * (1032 * length + 1024 * Math.ceil(length / 46)) + 4 * length + (64 << 20) + (1 << 20),
  };
}
