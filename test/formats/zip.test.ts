/**
 * The ZIP container under .npz and PyTorch files (src/formats/zip.ts), imported on purpose: it is
 * internal. Its central directory (plain and ZIP64, with an archive comment), stored members
 * aligned for mapping, deflated members, CRC checks, the sync and async readers agreeing, and
 * truncated and hostile directories refused with typed errors. Python's zipfile (Debian's
 * python3) writes archives for the reader and reads the ones ZipWriter writes.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import test from 'node:test';

import {
  crc32,
  memberDataOffset,
  memberDataOffsetSync,
  readCentralDirectory,
  readCentralDirectorySync,
  readMember,
  readMemberSync,
  ZipWriter,
  type ZipEntry,
} from '../../src/formats/zip.js';
import { AtomicWriter } from '../../src/io/atomic-writer.js';
import { ByteSource } from '../../src/io/source.js';
import { TensorioError } from '../../src/index.js';
import { pattern, pythonWithNumpy, runPythonWith, tempDir } from '../helpers.js';

interface Member {
  name: string;
  data: Uint8Array;
  deflate?: boolean;
}

async function writeZip(file: string, members: Member[], options: { forceZip64?: boolean } = {}): Promise<void> {
  const out = await AtomicWriter.open(file, { fsync: false });
  const zip = new ZipWriter(out, file, options);
  for (const m of members) {
    if (m.deflate) await zip.addDeflated(m.name, [m.data], 6);
    else await zip.addStored(m.name, [m.data]);
  }
  await zip.finish();
  await out.commit();
}

/** Reads every member of `bytes` through both readers and both kinds of source. */
async function readAll(bytes: Uint8Array, file: string): Promise<Map<string, Uint8Array>> {
  const memory = ByteSource.ofBytes(bytes, file);
  const entries = await readCentralDirectory(memory, file);
  assert.deepEqual(readCentralDirectorySync(memory, file), entries);
  const out = new Map<string, Uint8Array>();
  for (const entry of entries) {
    const data = await readMember(memory, entry, file);
    assert.deepEqual(readMemberSync(memory, entry, file), data);
    out.set(entry.name, data);
  }
  return out;
}

function codeOf(action: () => unknown): string | undefined {
  try {
    action();
  } catch (error) {
    assert.ok(error instanceof TensorioError, `expected a TensorioError, got ${String(error)}`);
    return error.code;
  }
  return undefined;
}

async function asyncCodeOf(action: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await action();
  } catch (error) {
    assert.ok(error instanceof TensorioError, `expected a TensorioError, got ${String(error)}`);
    return error.code;
  }
  return undefined;
}

const MEMBERS: Member[] = [
  { name: 'a.npy', data: pattern(1000, 1) },
  { name: 'empty', data: new Uint8Array(0) },
  { name: 'squeezed.bin', data: new Uint8Array(50_000).fill(7), deflate: true },
  { name: 'dir/ünïcode name.npy', data: pattern(333, 2) },
];

for (const forceZip64 of [false, true]) {
  test(`ZipWriter's archive${forceZip64 ? ' (ZIP64 everywhere)' : ''}: the central directory lists every member, stored data starts on 64-byte boundaries, and both readers return the bytes`, async () => {
    const file = path.join(tempDir('zip'), forceZip64 ? 'z64.zip' : 'plain.zip');
    await writeZip(file, MEMBERS, { forceZip64 });
    const bytes = new Uint8Array(fs.readFileSync(file));
    const source = ByteSource.ofBytes(bytes, file);
    const entries = await readCentralDirectory(source, file);
    assert.deepEqual(entries.map((e) => e.name), MEMBERS.map((m) => m.name));
    for (const [i, entry] of entries.entries()) {
      const member = MEMBERS[i] as Member;
      assert.equal(entry.method, member.deflate ? 8 : 0);
      assert.equal(entry.uncompressedSize, member.data.length);
      assert.equal(entry.crc32 >>> 0, crc32(member.data));
      const start = await memberDataOffset(source, entry, file);
      assert.equal(memberDataOffsetSync(source, entry, file), start);
      if (!member.deflate) {
        assert.equal(start % 64, 0, `member '${entry.name}' data at ${start}`);
        assert.deepEqual(bytes.subarray(start, start + member.data.length), member.data);
      }
    }
    const read = await readAll(bytes, file);
    for (const m of MEMBERS) assert.deepEqual(read.get(m.name), m.data);
    // A stored member of bytes in memory is a view, not a copy: what lets .npz members be mapped.
    const stored = entries[0] as ZipEntry;
    assert.equal((await readMember(source, stored, file)).buffer, bytes.buffer);
    // Over a file, with positioned reads, the same bytes.
    const fd = fs.openSync(file, 'r');
    try {
      const onDisk = ByteSource.ofFile(fd, bytes.length, file);
      assert.deepEqual(await readCentralDirectory(onDisk, file), entries);
      for (const [i, entry] of entries.entries()) assert.deepEqual(await readMember(onDisk, entry, file), (MEMBERS[i] as Member).data);
    } finally {
      fs.closeSync(fd);
    }
    // Python's zipfile agrees on names, sizes and bytes (and so on the ZIP64 records).
    const report = JSON.parse(
      runPythonWith(
        pythonWithNumpy(),
        `import json, sys, zipfile, hashlib
with zipfile.ZipFile(sys.argv[1]) as z:
    assert z.testzip() is None
    print(json.dumps([[i.filename, i.file_size, hashlib.sha256(z.read(i)).hexdigest()] for i in z.infolist()]))`,
        [file],
      ),
    ) as [string, number, string][];
    const { createHash } = await import('node:crypto');
    assert.deepEqual(
      report,
      MEMBERS.map((m) => [m.name, m.data.length, createHash('sha256').update(m.data).digest('hex')]),
    );
  });
}

test("Python's archives: a comment after the end record, ZIP64 records (force_zip64) and deflated members are read", async () => {
  const dir = tempDir('zip-python');
  const file = path.join(dir, 'python.zip');
  runPythonWith(
    pythonWithNumpy(),
    `import sys, zipfile
with zipfile.ZipFile(sys.argv[1], 'w') as z:
    z.comment = b'a comment of some length ' * 20
    z.writestr('stored.bin', bytes(range(256)) * 4, compress_type=zipfile.ZIP_STORED)
    z.writestr('deflated.bin', b'abc' * 10000, compress_type=zipfile.ZIP_DEFLATED)
    with z.open('big.bin', 'w', force_zip64=True) as f:
        f.write(b'z' * 5000)`,
    [file],
  );
  const read = await readAll(new Uint8Array(fs.readFileSync(file)), file);
  assert.deepEqual([...read.keys()], ['stored.bin', 'deflated.bin', 'big.bin']);
  assert.deepEqual(read.get('stored.bin'), new Uint8Array(Array.from({ length: 1024 }, (_, i) => i % 256)));
  assert.equal(Buffer.from(read.get('deflated.bin') as Uint8Array).toString(), 'abc'.repeat(10000));
  assert.equal(Buffer.from(read.get('big.bin') as Uint8Array).toString(), 'z'.repeat(5000));
});

test('truncated archives: every cut of a small archive is refused with a TensorioError, the same code sync and async, ERR_TRUNCATED when the start survives', async () => {
  const file = path.join(tempDir('zip-cut'), 'whole.zip');
  await writeZip(file, [{ name: 'x', data: pattern(200, 3) }, { name: 'y', data: pattern(100, 4), deflate: true }]);
  const whole = new Uint8Array(fs.readFileSync(file));
  for (let at = 0; at < whole.length; at++) {
    const cut = whole.subarray(0, at);
    const source = ByteSource.ofBytes(cut, '<cut>');
    const walk = () => {
      for (const entry of readCentralDirectorySync(source, '<cut>')) readMemberSync(source, entry, '<cut>');
    };
    const syncCode = codeOf(walk);
    const asyncCode = await asyncCodeOf(async () => {
      for (const entry of await readCentralDirectory(source, '<cut>')) await readMember(source, entry, '<cut>');
    });
    assert.ok(syncCode !== undefined, `a cut at ${at} of ${whole.length} bytes was read as whole`);
    assert.equal(asyncCode, syncCode, `cut at ${at}`);
    // Every cut keeps the first member's local header signature once it has four bytes.
    if (at < 22) assert.equal(syncCode, 'ERR_TRUNCATED', `cut at ${at}`);
  }
});

/** A copy of `bytes` with the little-endian u16/u32 at `at` set to `value`. */
function patched(bytes: Uint8Array, at: number, value: number, size: 2 | 4): Uint8Array {
  const out = bytes.slice();
  const view = new DataView(out.buffer);
  if (size === 2) view.setUint16(at, value, true);
  else view.setUint32(at, value, true);
  return out;
}

test('hostile directories: forged counts, sizes and offsets are ERR_BAD_ZIP or ERR_TOO_LARGE before any allocation, never a crash', async () => {
  const file = path.join(tempDir('zip-hostile'), 'base.zip');
  await writeZip(file, [{ name: 'm.bin', data: pattern(300, 5) }]);
  const base = new Uint8Array(fs.readFileSync(file));
  const eocd = base.length - 22;
  const cdOffset = new DataView(base.buffer).getUint32(eocd + 16, true);
  const cases: [string, Uint8Array, string][] = [
    ['65535 entries in a 1-entry directory', patched(base, eocd + 10, 0xffff, 2), 'ERR_BAD_ZIP'],
    ['a directory that runs past its end record', patched(base, eocd + 12, 0xfffffff0, 4), 'ERR_BAD_ZIP'],
    ['a directory offset past the file', patched(base, eocd + 16, 0x7ffffff0, 4), 'ERR_BAD_ZIP'],
    ['a multi-disk archive', patched(base, eocd + 4, 1, 2), 'ERR_BAD_ZIP'],
    ['a member claiming 3 GiB stored', patched(patched(base, cdOffset + 20, 0xc0000000, 4), cdOffset + 24, 0xc0000000, 4), 'ERR_BAD_ZIP'],
    ['an encrypted member', patched(base, cdOffset + 8, 1, 2), 'ERR_BAD_ZIP'],
    ['compression method 12 (bzip2)', patched(base, cdOffset + 10, 12, 2), 'ERR_BAD_ZIP'],
    ['a local header offset inside the directory', patched(base, cdOffset + 42, cdOffset - 10, 4), 'ERR_BAD_ZIP'],
    ['a wrong CRC', patched(base, cdOffset + 16, 0x12345678, 4), 'ERR_CRC_MISMATCH'],
    ['not a zip at all', new Uint8Array(100).fill(0x41), 'ERR_BAD_ZIP'],
  ];
  for (const [what, bytes, code] of cases) {
    const source = ByteSource.ofBytes(bytes, '<hostile>');
    const read = () => {
      for (const entry of readCentralDirectorySync(source, '<hostile>')) readMemberSync(source, entry, '<hostile>', { maxMemberSize: 1 << 20 });
    };
    assert.equal(codeOf(read), code, what);
    assert.equal(
      await asyncCodeOf(async () => {
        for (const entry of await readCentralDirectory(source, '<hostile>')) await readMember(source, entry, '<hostile>', { maxMemberSize: 1 << 20 });
      }),
      code,
      what,
    );
  }
  // A deflated member that claims more than deflate can produce, or more than the limit.
  const deflatedFile = path.join(tempDir('zip-hostile'), 'deflated.zip');
  await writeZip(deflatedFile, [{ name: 'd', data: new Uint8Array(10_000), deflate: true }]);
  const deflated = new Uint8Array(fs.readFileSync(deflatedFile));
  const dcd = new DataView(deflated.buffer).getUint32(deflated.length - 22 + 16, true);
  const bomb = ByteSource.ofBytes(patched(deflated, dcd + 24, 0xfffffff0, 4), '<bomb>');
  const [entry] = readCentralDirectorySync(bomb, '<bomb>');
  assert.equal(codeOf(() => readMemberSync(bomb, entry as ZipEntry, '<bomb>')), 'ERR_BAD_ZIP');
  assert.equal(codeOf(() => readMemberSync(bomb, entry as ZipEntry, '<bomb>', { maxMemberSize: 1000 })), 'ERR_TOO_LARGE');
});

test('a member whose local header names another file is ERR_BAD_ZIP', async () => {
  const file = path.join(tempDir('zip-names'), 'names.zip');
  await writeZip(file, [{ name: 'aaaa', data: pattern(10, 6) }]);
  const bytes = new Uint8Array(fs.readFileSync(file));
  bytes[30] = 'b'.charCodeAt(0); // the local header's copy of the name
  const source = ByteSource.ofBytes(bytes, '<names>');
  const [entry] = readCentralDirectorySync(source, '<names>');
  assert.equal(codeOf(() => memberDataOffsetSync(source, entry as ZipEntry, '<names>')), 'ERR_BAD_ZIP');
});
