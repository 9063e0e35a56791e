/**
 * Large writes around the page cache (O_DIRECT; src/io/atomic-writer.ts AtomicWriter, native WriteDirect).
 * Imports AtomicWriter and the addon binding (src/native.ts) on purpose: they are what it tests.
 * The bytes on disk must be exactly those of a plain write for every position and chunk
 * layout (an unaligned head and tail go through the page cache, the aligned interior through
 * a bounce buffer), a refusal must fall back without losing a byte, and a full disk must
 * still give ERR_NO_SPACE with the old file kept. Whether a folder accepts direct I/O is
 * asked of an independent tool, `dd oflag=direct`, so the tests know which path to expect.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';

import { readNpy, readSafetensors, writeH5, writeNpy, writeSafetensors, writeSafetensorsSync, TensorioError } from '../../src/index.js';
import { AtomicWriter } from '../../src/io/atomic-writer.js';
import { native, type NativeBinding } from '../../src/native.js';
import { chunked, mountTmpfs, NATIVE_MODE, pattern, runPython, tempDir } from '../helpers.js';

const MiB = 1 << 20;

function acceptsDirectIo(dir: string): boolean {
  const probe = path.join(dir, '.direct-probe');
  const run = spawnSync('dd', ['if=/dev/zero', `of=${probe}`, 'bs=4096', 'count=1', 'oflag=direct'], { stdio: 'ignore' });
  fs.rmSync(probe, { force: true });
  return run.status === 0;
}

/** The bytes a write of `length` at `position` can send direct: its whole aligned pages. */
function alignedInterior(position: number, length: number): number {
  const begin = Math.ceil(position / 4096) * 4096;
  const end = Math.floor((position + length) / 4096) * 4096;
  return Math.max(0, end - begin);
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (all.set(p, at), at + p.length), 0);
  return all;
}

/** The addon; undefined in the pure-TypeScript run, which the test then checks it is. */
function addon(): NativeBinding | undefined {
  if (!native) assert.equal(NATIVE_MODE, false);
  return native ?? undefined;
}

/** Runs `body` with one of the addon's write functions replaced, then puts the real one back. */
async function withReplaced<K extends 'write' | 'writeDirect'>(binding: NativeBinding, name: K, replace: (real: NativeBinding[K]) => NativeBinding[K], body: () => Promise<void>): Promise<void> {
  const real = binding[name];
  binding[name] = replace(real.bind(binding) as NativeBinding[K]);
  try {
    await body();
  } finally {
    binding[name] = real;
  }
}

function sameBytes(file: string, expected: Uint8Array): void {
  const got = fs.readFileSync(file);
  assert.equal(got.length, expected.length, 'file length');
  const first = got.findIndex((b, i) => b !== expected[i]);
  assert.equal(first, -1, `first differing byte at ${first}`);
}

const dir = tempDir('tensorio-direct');
const directHere = NATIVE_MODE && acceptsDirectIo(dir);

describe('direct I/O writes', () => {
  test(`the folder ${directHere ? 'accepts' : 'refuses'} direct I/O (dd oflag=direct), and the writer agrees`, async () => {
    const target = path.join(dir, 'probe.bin');
    const bytes = pattern(3 * MiB + 5, 1);
    const writer = await AtomicWriter.open(target, { directIo: true });
    await writer.write([bytes]);
    const direct = writer.bytesWrittenDirect;
    await writer.commit();
    sameBytes(target, bytes);
    if (directHere) assert.equal(direct, 3 * MiB, 'every whole aligned block goes direct');
    else assert.equal(direct, 0);
  });

  // Heads and tails of every alignment, chunks smaller and larger than a page, empty chunks,
  // several bounce blocks (16 MiB each), and writes appended after one another.
  const layouts: Array<{ name: string; writes: Array<{ length: number; chunks: number[] }> }> = [
    { name: 'one aligned write', writes: [{ length: 8 * MiB, chunks: [8 * MiB] }] },
    { name: 'odd head and tail', writes: [{ length: 4096 * 300 + 4095, chunks: [1, 4095, 4097, 100000] }] },
    { name: 'small writes then a large one', writes: [{ length: 17, chunks: [17] }, { length: 100, chunks: [0, 50] }, { length: 5 * MiB + 1, chunks: [777777] }] },
    { name: 'more than two bounce blocks', writes: [{ length: 40 * MiB + 12345, chunks: [3 * MiB + 1, 0, 9 * MiB, 1] }] },
    { name: 'a write smaller than one page after an unaligned one', writes: [{ length: 5000, chunks: [5000] }, { length: 3000, chunks: [3000] }, { length: 9000, chunks: [9000] }] },
  ];
  for (const { name, writes } of layouts) {
    for (const sync of [false, true]) {
      test(`${name} (${sync ? 'sync' : 'async'}): the file holds exactly the bytes written`, async () => {
        const target = path.join(dir, `layout-${sync}.bin`);
        const parts = writes.map((w, i) => pattern(w.length, i + 7));
        const writer = sync ? AtomicWriter.openSync(target, { directIo: true }) : await AtomicWriter.open(target, { directIo: true });
        for (let i = 0; i < writes.length; i++) {
          const chunks = chunked(parts[i] as Uint8Array, (writes[i] as { chunks: number[] }).chunks, 3);
          if (sync) writer.writeSync(chunks);
          else await writer.write(chunks);
        }
        const direct = writer.bytesWrittenDirect;
        if (sync) writer.commitSync();
        else await writer.commit();
        let expectedDirect = 0;
        parts.reduce((at, p) => (expectedDirect += alignedInterior(at, p.length), at + p.length), 0);
        sameBytes(target, concat(...parts));
        assert.equal(direct, directHere ? expectedDirect : 0);
      });
    }
  }

  test('writeAt regions: direct interiors beside page-cache writes on shared pages', async () => {
    const target = path.join(dir, 'regions.bin');
    const writer = await AtomicWriter.open(target, { directIo: true });
    // A region written first far out, then the start, then the span between: the pages
    // where they meet are written through the page cache by both neighbours.
    const a = pattern(3 * MiB + 333, 21);
    const b = pattern(2 * MiB + 4444, 22);
    const between = new Uint8Array(4096 * 1000 + 10 - a.length).fill(7);
    await writer.writeAt(4096 * 1000 + 10, [b]);
    await writer.writeAt(0, [a]);
    await writer.writeAt(a.length, [between]);
    const direct = writer.bytesWrittenDirect;
    await writer.commit();
    assert.equal(direct, directHere ? alignedInterior(4096 * 1000 + 10, b.length) + alignedInterior(0, a.length) + alignedInterior(a.length, between.length) : 0);
    sameBytes(target, concat(a, between, b));
  });

  // The default large durable write streams through the page cache instead (test/io/write-through.test.ts).
  test('by default no write goes direct; directIo: true does, with or without fsync; directIo: false never', async () => {
    const type = fs.statfsSync(dir).type;
    const big = pattern(64 * MiB + 4096, 31);
    for (const [options, bytes, expectDirect] of [
      [{}, big, false],
      [{}, big.subarray(0, 64 * MiB - 1), false],
      [{ directIo: false }, big, false],
      [{ fsync: false }, big, false],
      [{ fsync: false, directIo: true }, big, directHere],
    ] as const) {
      const target = path.join(dir, 'auto.bin');
      const writer = await AtomicWriter.open(target, options);
      await writer.write([bytes]);
      const direct = writer.bytesWrittenDirect;
      await writer.commit();
      sameBytes(target, bytes);
      assert.equal(direct > 0, expectDirect, `${JSON.stringify(options)} ${bytes.length} bytes on file system 0x${type.toString(16)}`);
    }
  });

  test('a refusal (EINVAL from the direct descriptor) sends the rest through the page cache', async () => {
    const binding = addon();
    if (!binding) return;
    const target = path.join(dir, 'refused.bin');
    const bytes = pattern(20 * MiB + 77, 41);
    const fd = fs.openSync(target, 'w');
    // /proc/self/clear_refs answers EINVAL to anything but a small number: a descriptor whose
    // every write is refused, as a file system without direct I/O would refuse. Its first
    // direct block (file offset 4096, written at 3 and at 3 + length) must not start with a
    // digit, or the stand-in would take it ("5" resets this process's peak RSS).
    bytes[4093] = 0xff;
    bytes[(4096 * Math.ceil((3 + bytes.length) / 4096) - 3 - bytes.length) % bytes.length] = 0xff;
    const refusing = fs.openSync('/proc/self/clear_refs', 'w');
    try {
      const result = binding.writeDirectSync(refusing, fd, 3, [bytes.subarray(0, 1000), bytes.subarray(1000)]);
      assert.deepEqual(result, { bytes: bytes.length, directBytes: 0, refused: true });
      const async = await new Promise<unknown[]>((resolve, reject) =>
        binding.writeDirect(refusing, fd, 3 + bytes.length, [bytes], (error, n, d, r) => (error ? reject(error) : resolve([n, d, r]))),
      );
      assert.deepEqual(async, [bytes.length, 0, true]);
    } finally {
      fs.closeSync(refusing);
      fs.closeSync(fd);
    }
    sameBytes(target, concat(new Uint8Array(3), bytes, bytes));
  });

  test('after a refusal, the writer sends its later writes through the page cache', async () => {
    const binding = addon();
    if (!binding) return;
    const refusing = fs.openSync('/proc/self/clear_refs', 'w');
    const directCalls: number[] = [];
    // The writer's own O_DIRECT descriptor swapped for the refusing stand-in.
    const toStandIn = (real: NativeBinding['writeDirect']): NativeBinding['writeDirect'] => (_directFd, fd, position, chunks, callback) => {
      directCalls.push(position);
      real(refusing, fd, position, chunks, callback);
    };
    await withReplaced(binding, 'writeDirect', toStandIn, async () => {
      const target = path.join(dir, 'refused-writer.bin');
      const first = pattern(2 * MiB, 81);
      first[0] = 0xff; // the stand-in takes bytes that start with a number
      const second = pattern(3 * MiB + 5, 82);
      const writer = await AtomicWriter.open(target, { directIo: true });
      await writer.write([first]);
      await writer.write([second]);
      // Where the folder has no direct I/O, the writer never asks (the open with O_DIRECT fails).
      assert.deepEqual(directCalls, directHere ? [0] : []);
      assert.equal(writer.bytesWrittenDirect, 0);
      await writer.commit();
      sameBytes(target, concat(first, second));
    }).finally(() => fs.closeSync(refusing));
  });

  test('a failed write aborts only after the writes still running have ended (their descriptors stay theirs)', async () => {
    const binding = addon();
    if (!binding) return;
    const fdsBefore = fs.readdirSync('/proc/self/fd').length;
    const outcomes: string[] = [];
    // The write at 0 fails at once with ENOSPC; the one at 1 MiB starts 300 ms later, the way
    // another shard's large write is still running when the first shard fails.
    const failOrDelay = (real: NativeBinding['write']): NativeBinding['write'] => (fd, position, chunks, callback) => {
      if (position === 0) {
        setImmediate(() => callback(Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC', syscall: 'pwritev' })));
        return;
      }
      setTimeout(() => {
        real(fd, position, chunks, (error, n) => {
          outcomes.push(error ? `error ${(error as NodeJS.ErrnoException).code}` : `wrote ${n}`);
          callback(error, n);
        });
      }, 300);
    };
    const target = path.join(dir, 'aborted.bin');
    fs.writeFileSync(target, 'old');
    await withReplaced(binding, 'write', failOrDelay, async () => {
      const writer = await AtomicWriter.open(target, { directIo: false });
      const results = await Promise.allSettled([writer.writeAt(0, [pattern(4096, 91)]), writer.writeAt(MiB, [pattern(MiB, 92)])]);
      assert.equal(results[0].status, 'rejected');
      assert.ok((results[0] as PromiseRejectedResult).reason instanceof TensorioError);
      assert.equal(((results[0] as PromiseRejectedResult).reason as TensorioError).code, 'ERR_NO_SPACE');
    });
    // The late write found its descriptor open (not EBADF, not another file's), and only then
    // was the temporary file removed.
    assert.deepEqual(outcomes, [`wrote ${MiB}`]);
    assert.equal(fs.readFileSync(target, 'utf8'), 'old');
    assert.deepEqual(fs.readdirSync(dir).filter((n) => n.startsWith('.aborted.bin.')), []);
    assert.equal(fs.readdirSync('/proc/self/fd').length, fdsBefore);
  });

  test('a write error on the direct descriptor is reported, not retried through the page cache', () => {
    const binding = addon();
    if (!binding) return;
    const target = path.join(dir, 'ebadf.bin');
    const fd = fs.openSync(target, 'w');
    const readOnly = fs.openSync(target, 'r');
    try {
      assert.throws(() => binding.writeDirectSync(readOnly, fd, 0, [pattern(MiB, 5)]), (error: NodeJS.ErrnoException) => error.code === 'EBADF');
    } finally {
      fs.closeSync(readOnly);
      fs.closeSync(fd);
    }
  });

  test('NumPy reads a .npy and a .safetensors written directly, byte for byte', async () => {
    const data = new Float32Array(pattern(12 * MiB + 4, 51).buffer);
    const npy = path.join(dir, 'direct.npy');
    await writeNpy(npy, { dtype: 'float32', shape: [data.length], data }, { directIo: true });
    const st = path.join(dir, 'direct.safetensors');
    await writeSafetensors(st, { b: { dtype: 'float32', shape: [3], data: new Float32Array([1, 2, 3]) }, a: { dtype: 'float32', shape: [data.length], data } }, { directIo: true });
    const script = `
import sys, json, struct, hashlib, numpy as np
a = np.load(sys.argv[1])
with open(sys.argv[2], 'rb') as f:
    n = struct.unpack('<Q', f.read(8))[0]; header = json.loads(f.read(n)); body = f.read()
e = header['a']['data_offsets']
t = np.frombuffer(body[e[0]:e[1]], '<f4')
print(json.dumps([hashlib.sha256(a.tobytes()).hexdigest(), hashlib.sha256(t.tobytes()).hexdigest(), body[header['b']['data_offsets'][0]:].hex()]))`;
    const [npyHash, stHash, tail] = JSON.parse(runPython(script, [npy, st])) as string[];
    const { createHash } = await import('node:crypto');
    const expected = createHash('sha256').update(new Uint8Array(data.buffer)).digest('hex');
    assert.equal(npyHash, expected);
    assert.equal(stHash, expected);
    assert.equal(tail, Buffer.from(new Float32Array([1, 2, 3]).buffer).toString('hex'));
    assert.deepEqual(Array.from(((await readNpy(npy)).data as Float32Array).subarray(0, 4)), Array.from(data.subarray(0, 4)));
    assert.equal(((await readSafetensors(st)).tensors.b?.data as Float32Array)[2], 3);
  });
});

test('h5py reads an HDF5 file whose large datasets were written directly beside what h5wasm wrote', async () => {
  // Datasets over 1 MiB bypass h5wasm's heap: tensorio writes them into the space h5wasm
  // reserved (AtomicWriter.writeAt), here through O_DIRECT, next to h5wasm's own writes.
  const file = path.join(dir, 'direct.h5');
  const a = new Float32Array(pattern(3 * MiB + 4096, 71).buffer);
  const b = new Int32Array(pattern(1_500_004, 72).buffer);
  await writeH5(file, { 'g/a': { dtype: 'float32', shape: [a.length / 1024, 1024], data: a }, b: { dtype: 'int32', shape: [b.length], data: b }, c: { dtype: 'float64', shape: [3], data: new Float64Array([1, 2, 3]) } }, { directIo: true });
  const script = `
import sys, json, hashlib, h5py
with h5py.File(sys.argv[1], 'r') as f:
    print(json.dumps([hashlib.sha256(f[n][...].tobytes()).hexdigest() for n in ('g/a', 'b', 'c')]))`;
  const { createHash } = await import('node:crypto');
  const hash = (view: ArrayBufferView) => createHash('sha256').update(new Uint8Array(view.buffer, view.byteOffset, view.byteLength)).digest('hex');
  assert.deepEqual(JSON.parse(runPython(script, [file])), [hash(a), hash(b), hash(new Float64Array([1, 2, 3]))]);
});

describe('direct I/O on a full disk', () => {
  test('a full tmpfs gives ERR_NO_SPACE through the direct path too, keeping the old file', async () => {
    const mount = mountTmpfs('size=4m');
    if (!mount) return;
    const target = path.join(mount, 'old.safetensors');
    const small = { w: { dtype: 'float32' as const, shape: [1024], data: new Float32Array(1024).fill(1) } };
    await writeSafetensors(target, small);
    // Which path fills the disk: a write that fits goes direct exactly when dd says it can.
    const probe = await AtomicWriter.open(path.join(mount, 'probe.bin'), { directIo: true });
    await probe.write([pattern(MiB, 61)]);
    assert.equal(probe.bytesWrittenDirect, NATIVE_MODE && acceptsDirectIo(mount) ? MiB : 0);
    await probe.abort();
    const big = { w: { dtype: 'float32' as const, shape: [2 * MiB], data: new Float32Array(2 * MiB).fill(2) } };
    for (const write of [() => writeSafetensors(target, big, { directIo: true }), async () => writeSafetensorsSync(target, big, { directIo: true })]) {
      await assert.rejects(write(), (error: unknown) => error instanceof TensorioError && error.code === 'ERR_NO_SPACE');
      assert.equal(((await readSafetensors(target)).tensors.w?.data as Float32Array)[1023], 1);
      assert.deepEqual(fs.readdirSync(mount).filter((n) => n.endsWith('.tensorio-tmp')), []);
    }
  });
});
