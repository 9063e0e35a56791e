/**
 * The native core: mappings released by the garbage collector and by unmap, argument checks
 * at the binding, reads and writes that leave the event loop free, and the build files.
 * Imports the addon binding (src/native.ts) on purpose: it is what it tests.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';

import { nativeStatus, ones, readNpy, writeNpy } from '../../src/index.js';
import { native } from '../../src/native.js';
import { NATIVE_MODE, pattern, ROOT, tempDir } from '../helpers.js';

const dir = tempDir('native');

describe('addon status', () => {
  test('the addon is loaded in native mode and reported absent otherwise', () => {
    const status = nativeStatus();
    assert.equal(status.loaded, NATIVE_MODE);
    if (NATIVE_MODE) assert.match(status.file ?? '', /tensorio\.node$/);
    else assert.match(status.reason ?? '', /TENSORIO_NO_NATIVE/);
  });

  test('a missing addon falls back to TypeScript and says so in a warning', () => {
    // A copy of the compiled package without build/ next to it.
    const copy = path.join(dir, 'no-addon');
    fs.mkdirSync(copy);
    fs.cpSync(path.join(ROOT, 'dist'), path.join(copy, 'dist'), { recursive: true });
    fs.mkdirSync(path.join(copy, 'native'));
    fs.writeFileSync(path.join(copy, 'package.json'), '{"name":"tensorio-copy"}');
    const script = `const t = require(${JSON.stringify(path.join(copy, 'dist', 'index.js'))});
      const file = ${JSON.stringify(path.join(dir, 'fallback.npy'))};
      t.writeNpySync(file, t.ones([3]));
      const a = t.readNpySync(file, { mmap: true });
      console.log(JSON.stringify({ status: t.nativeStatus(), mapped: a.mapped, reason: a.copyReason, sum: a.data.reduce((x, y) => x + y) }));`;
    const env = { ...process.env };
    delete env.TENSORIO_NO_NATIVE;
    const child = spawnSync(process.execPath, ['-e', script], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    assert.equal(child.status, 0, child.stderr);
    assert.equal(child.stderr, '', 'the fallback prints nothing: nativeStatus() says why');
    const result = JSON.parse(child.stdout) as { status: { loaded: boolean; reason: string }; mapped: boolean; reason: string; sum: number };
    assert.equal(result.status.loaded, false);
    assert.match(result.status.reason, /no built addon/);
    assert.equal(result.mapped, false);
    assert.match(result.reason, /native addon is not loaded/);
    assert.equal(result.sum, 3);
  });
});

describe('mappings and the garbage collector', () => {
  test('a mapping is released when its last view is collected', () => {
    if (!NATIVE_MODE) {
      assert.equal(native, null);
      return;
    }
    const file = path.join(dir, 'gc.npy');
    fs.writeFileSync(file, ''); // replaced below by a real array
    const script = `
      const { readNpySync, writeNpySync, ones } = require(${JSON.stringify(path.join(ROOT, 'dist-test', 'src', 'index.js'))});
      const { native } = require(${JSON.stringify(path.join(ROOT, 'dist-test', 'src', 'native.js'))});
      const file = ${JSON.stringify(file)};
      writeNpySync(file, ones([1 << 16]));
      const counts = [];
      (async () => {
        let arrays = [];
        for (let i = 0; i < 50; i++) arrays.push(readNpySync(file, { mmap: true }));
        counts.push(native.liveMappings());
        let view = arrays[0].data.subarray(10, 20); // a view keeps its mapping alive
        arrays = null;
        for (let i = 0; i < 10; i++) { global.gc(); await new Promise((r) => setImmediate(r)); }
        counts.push(native.liveMappings());
        const stillReadable = view[0];
        view = null;
        for (let i = 0; i < 10; i++) { global.gc(); await new Promise((r) => setImmediate(r)); }
        counts.push(native.liveMappings());
        console.log(JSON.stringify({ counts, stillReadable }));
      })();`;
    const output = execFileSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8' });
    const { counts, stillReadable } = JSON.parse(output) as { counts: number[]; stillReadable: number };
    assert.equal(counts[0], 50);
    assert.equal(counts[1], 1, 'only the mapping with a live view remains');
    assert.equal(stillReadable, 1);
    assert.equal(counts[2], 0, 'released after its last view is collected');
  });

  test('unmap then garbage collection releases once (no double unmap)', () => {
    if (!NATIVE_MODE) return;
    const script = `
      const { readNpySync, writeNpySync, ones, unmap } = require(${JSON.stringify(path.join(ROOT, 'dist-test', 'src', 'index.js'))});
      const { native } = require(${JSON.stringify(path.join(ROOT, 'dist-test', 'src', 'native.js'))});
      const file = ${JSON.stringify(path.join(dir, 'unmap.npy'))};
      writeNpySync(file, ones([4096]));
      (async () => {
        for (let i = 0; i < 200; i++) { const a = readNpySync(file, { mmap: true }); unmap(a.data.buffer); }
        const afterUnmap = native.liveMappings();
        for (let i = 0; i < 10; i++) { global.gc(); await new Promise((r) => setImmediate(r)); }
        // Map again: addresses are reused after munmap, and stale finalizers must not touch them.
        const kept = []; for (let i = 0; i < 20; i++) kept.push(readNpySync(file, { mmap: true }));
        for (let i = 0; i < 10; i++) { global.gc(); await new Promise((r) => setImmediate(r)); }
        console.log(JSON.stringify({ afterUnmap, live: native.liveMappings(), sum: kept.reduce((s, a) => s + a.data[4095], 0) }));
      })();`;
    const result = JSON.parse(execFileSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8' })) as Record<string, number>;
    assert.deepEqual(result, { afterUnmap: 0, live: 20, sum: 20 });
  });
});

describe('mappings and V8 external memory', () => {
  test('mapping large files starts no garbage collection for external memory pressure', () => {
    if (!NATIVE_MODE) return; // nothing is mapped on the TypeScript path
    const file = path.join(dir, 'sparse-1g.bin');
    const fd = fs.openSync(file, 'w');
    fs.ftruncateSync(fd, 2 ** 30);
    fs.closeSync(fd);
    const script = `
      const fs = require('node:fs');
      const { native } = require(${JSON.stringify(path.join(ROOT, 'dist-test', 'src', 'native.js'))});
      const fd = fs.openSync(${JSON.stringify(file)}, 'r');
      const kept = [];
      for (let i = 0; i < 16; i++) kept.push(native.map(fd, 2 ** 30, false));
      for (const buffer of kept.splice(0, 8)) native.unmap(buffer);
      for (let i = 0; i < 8; i++) kept.push(native.map(fd, 2 ** 30, false));
      console.log('mapped', kept.length);`;
    const output = execFileSync(process.execPath, ['--trace-gc', '-e', script], { encoding: 'utf8' });
    assert.match(output, /mapped 16/);
    assert.doesNotMatch(output, /external memory pressure/, 'a mapping is not allocated memory');
  });
});

describe('mappings larger than 4 GiB', () => {
  test('a 5 GiB sparse .npy maps as one zero-copy array, and is released by the collector', () => {
    if (!NATIVE_MODE) return; // the TypeScript path would read 5 GiB; mapping is the point here
    const file = path.join(dir, 'huge.npy');
    const script = `
      const fs = require('node:fs');
      const { encodeNpyHeader, readNpy } = require(${JSON.stringify(path.join(ROOT, 'dist-test', 'src', 'index.js'))});
      const { native } = require(${JSON.stringify(path.join(ROOT, 'dist-test', 'src', 'native.js'))});
      const file = ${JSON.stringify(file)};
      const count = 5 * 2 ** 30 / 4;
      const header = encodeNpyHeader('float32', [count], false);
      const fd = fs.openSync(file, 'w');
      fs.writeSync(fd, header);
      fs.ftruncateSync(fd, header.length + count * 4); // sparse: no disk, no memory
      fs.writeSync(fd, new Uint8Array(new Float32Array([2.5]).buffer), 0, 4, header.length + (count - 1) * 4);
      fs.closeSync(fd);
      (async () => {
        const t = process.hrtime.bigint();
        let array = await readNpy(file, { mmap: true });
        const ms = Number(process.hrtime.bigint() - t) / 1e6;
        const result = { mapped: array.mapped, length: array.data.length, last: array.data[count - 1], first: array.data[0], live: native.liveMappings(), rssMb: process.memoryUsage().rss / 2 ** 20 };
        array = null;
        for (let i = 0; i < 10; i++) { global.gc(); await new Promise((r) => setImmediate(r)); }
        result.liveAfterGc = native.liveMappings();
        fs.unlinkSync(file);
        console.log(JSON.stringify(result));
      })();`;
    const result = JSON.parse(execFileSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8' })) as Record<string, number | boolean>;
    assert.equal(result.mapped, true);
    assert.equal(result.length, (5 * 2 ** 30) / 4);
    assert.equal(result.last, 2.5);
    assert.equal(result.first, 0);
    assert.equal(result.live, 1);
    assert.ok((result.rssMb as number) < 500, `RSS ${String(result.rssMb)} MiB: nothing was read`);
    assert.equal(result.liveAfterGc, 0);
  });
});

describe('the binding checks its arguments', () => {
  test('wrong types and ranges throw TypeError or RangeError, never crash', () => {
    if (!NATIVE_MODE || !native) return;
    const binding = native as unknown as Record<string, (...args: unknown[]) => unknown>;
    const bad: Array<[string, unknown[], ErrorConstructor]> = [
      ['map', [], TypeError],
      ['map', ['x', 1, false], TypeError],
      ['map', [-1, 1, false], RangeError],
      ['map', [0, 1.5, false], RangeError],
      ['map', [0, 1, 'yes'], TypeError],
      ['readSync', [0, 0, 'not a buffer'], TypeError],
      ['readSync', [0, -1, new Uint8Array(1)], RangeError],
      ['readSync', [0, 0, new Uint8Array(17), 1], RangeError], // 17 parts: one thread each past the first
      ['readSync', [0, 0, new Uint8Array(1), 'x'], TypeError],
      ['readSync', [0, 0, new Uint8Array(1), -1], RangeError],
      ['writeSync', [0, 0, [1, 2]], TypeError],
      ['writeSync', [0, 0, 'x'], TypeError],
      ['read', [0, 0, new Uint8Array(1)], TypeError],
      ['convert', ['nope', new Uint8Array(2), new Uint8Array(4)], TypeError],
      ['convert', ['float16:float32', new Uint8Array(3), new Float32Array(1)], RangeError],
      ['convert', ['float16:float32', new Uint16Array(2), new Float32Array(1)], RangeError],
      ['convert', ['float16:float32', new Uint8Array(5).subarray(1), new Float32Array(2)], RangeError],
      ['byteswap', [new Uint8Array(4), 3], RangeError],
      ['sync', [new ArrayBuffer(4)], TypeError],
      ['unmap', [{}], TypeError],
    ];
    for (const [name, args, kind] of bad) {
      assert.throws(() => (binding[name] as (...a: unknown[]) => unknown)(...args), kind, `${name}(${args.map(String).join(', ')})`);
    }
    assert.equal(native.unmap(new ArrayBuffer(8)), false);
    assert.equal(native.isMapped(new ArrayBuffer(8)), false);
  });

  test('system errors carry code, errno and syscall', () => {
    if (!NATIVE_MODE || !native) return;
    assert.throws(() => native?.readSync(987654, 0, new Uint8Array(1)), (e: unknown) => (e as { code?: string }).code === 'EBADF' && (e as { syscall?: string }).syscall === 'pread');
  });
});

describe('readSync in parts (ReadFullyInParts, on threads of its own)', () => {
  const MiB = 1 << 20;
  function patterned(name: string, length: number): string {
    const file = path.join(dir, name);
    fs.writeFileSync(file, pattern(length, length));
    return file;
  }

  test('every part lands in place, the last one short, and nothing is written past the target', () => {
    if (!NATIVE_MODE || !native) return;
    const file = patterned('parts.bin', 4 * MiB);
    const expected = fs.readFileSync(file);
    const fd = fs.openSync(file, 'r');
    try {
      // 3 MiB + 5 bytes in 1 MiB parts: four parts, the last 5 bytes, then a zeroed guard that
      // a last part read at full length would overwrite with file bytes.
      const length = 3 * MiB + 5;
      const backing = new Uint8Array(length + MiB);
      assert.equal(native.readSync(fd, 123, backing.subarray(0, length), MiB), length);
      assert.ok(Buffer.from(backing.buffer, 0, length).equals(expected.subarray(123, 123 + length)));
      assert.ok(backing.subarray(length).every((b) => b === 0), 'bytes were written past the target');
      // The file ends inside the second part: the count is the bytes up to its end.
      const tail = new Uint8Array(4 * MiB);
      assert.equal(native.readSync(fd, 3 * MiB - 17, tail, MiB), MiB + 17);
      assert.ok(Buffer.from(tail.buffer, 0, MiB + 17).equals(expected.subarray(3 * MiB - 17)));
      // Sixteen parts is the limit, and is accepted.
      const small = new Uint8Array(16);
      assert.equal(native.readSync(fd, 0, small, 1), 16);
      assert.deepEqual(Array.from(small), Array.from(expected.subarray(0, 16)));
    } finally {
      fs.closeSync(fd);
    }
  });

  test('an error met by a thread, not the calling one, is thrown', () => {
    if (!NATIVE_MODE || !native) return;
    const source = patterned('parts-source.bin', 4 * MiB);
    // The target is a writable mapping of a file cut to 1 MiB after mapping: the first part
    // (the calling thread's) lands in the file's first MiB, the kernel refuses the others'
    // copies past its end (EFAULT). JS never touches those pages, so there is no SIGBUS.
    const sinkPath = path.join(dir, 'parts-sink.bin');
    fs.writeFileSync(sinkPath, new Uint8Array(4 * MiB));
    const sink = fs.openSync(sinkPath, 'r+');
    const fd = fs.openSync(source, 'r');
    const mapping = native.map(sink, 4 * MiB, true);
    try {
      fs.ftruncateSync(sink, MiB);
      assert.throws(() => native?.readSync(fd, 0, new Uint8Array(mapping), MiB), (e: unknown) => (e as { syscall?: string }).syscall === 'pread');
      // The same read without parts fails too: the check is the kernel's, not the split's.
      assert.throws(() => native?.readSync(fd, 0, new Uint8Array(mapping)), (e: unknown) => (e as { syscall?: string }).syscall === 'pread');
      assert.equal(native.readSync(fd, 0, new Uint8Array(mapping, 0, MiB), MiB / 4), MiB);
    } finally {
      native.unmap(mapping);
      fs.closeSync(fd);
      fs.closeSync(sink);
    }
  });

  test('mapping a directory or past the end of a file is refused', () => {
    if (!NATIVE_MODE || !native) return;
    const file = path.join(dir, 'small.bin');
    fs.writeFileSync(file, new Uint8Array(10));
    const fd = fs.openSync(file, 'r');
    try {
      assert.throws(() => native?.map(fd, 11, false), RangeError);
      assert.equal(native.map(fd, 0, false).byteLength, 0);
    } finally {
      fs.closeSync(fd);
    }
  });
});

describe('asynchronous I/O', () => {
  test('a large read and write leave the event loop running', async () => {
    const file = path.join(dir, 'big.npy');
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    try {
      await writeNpy(file, ones([16 << 20]), { fsync: false }); // 64 MiB
      const afterWrite = ticks;
      const array = await readNpy(file);
      assert.equal(array.data.length, 16 << 20);
      assert.equal((array.data as Float32Array)[(16 << 20) - 1], 1);
      assert.ok(afterWrite > 0, 'timers ran during the write');
      assert.ok(ticks > afterWrite, 'timers ran during the read');
    } finally {
      clearInterval(timer);
    }
  });
});

describe('build files', () => {
  test('binding.gyp builds a working addon with node-gyp (the fallback build)', () => {
    if (!NATIVE_MODE) return; // built once, in the native run of the suite
    const work = tempDir('gyp');
    for (const name of ['native', 'binding.gyp', 'package.json']) fs.cpSync(path.join(ROOT, name), path.join(work, name), { recursive: true });
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(work, 'node_modules'), 'dir');
    const npmGyp = path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
    const gyp = fs.existsSync(npmGyp) ? npmGyp : require.resolve('node-gyp/bin/node-gyp.js');
    // Node's own headers, as npm passes them to install scripts; never a download.
    const nodedir = path.resolve(path.dirname(process.execPath), '..');
    execFileSync(process.execPath, [gyp, 'rebuild', `--nodedir=${nodedir}`, '--jobs=2'], { cwd: work, stdio: 'ignore' });
    const script = `const b = require('./build/Release/tensorio.node');
      const out = new Float32Array(1); b.convert('float16:float32', new Uint16Array([0x3c00]), out);
      console.log(JSON.stringify({ abi: b.abiVersion, one: out[0] }));`;
    assert.deepEqual(JSON.parse(execFileSync(process.execPath, ['-e', script], { cwd: work, encoding: 'utf8' })), { abi: 3, one: 1 });
  });

  test('CMakeLists.txt and binding.gyp list the same sources and defines', () => {
    const cmake = fs.readFileSync(path.join(ROOT, 'CMakeLists.txt'), 'utf8');
    const gyp = JSON.parse(fs.readFileSync(path.join(ROOT, 'binding.gyp'), 'utf8')) as {
      targets: Array<{ sources: string[]; defines: string[] }>;
    };
    const block = (name: string): string[] => {
      const match = new RegExp(`# ${name} begin([\\s\\S]*?)# ${name} end`).exec(cmake);
      assert.ok(match, `${name} block in CMakeLists.txt`);
      return (match[1] as string)
        .replace(/\(|\)|set|target_compile_definitions|\$\{PROJECT_NAME\}|PRIVATE|TENSORIO_SOURCES/g, ' ')
        .split(/\s+/)
        .filter(Boolean)
        .sort();
    };
    const target = gyp.targets[0];
    assert.ok(target);
    assert.deepEqual(block('TENSORIO_SOURCES'), [...target.sources].sort());
    assert.deepEqual(block('TENSORIO_DEFINES'), [...target.defines].sort());
    const onDisk = fs.readdirSync(path.join(ROOT, 'native')).filter((n) => n.endsWith('.cc')).map((n) => `native/${n}`).sort();
    assert.deepEqual(onDisk, [...target.sources].sort(), 'every .cc file is built');
  });
});
