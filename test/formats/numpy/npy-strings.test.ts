/**
 * NumPy's fixed-width string arrays (issue 14, item 4) in `.npy` and `.npz`, against NumPy 1.24
 * and 2.1 both ways: `|S<n>`, `<U<n>`, `>U<n>` (and the `'c'` code, S1) read with
 * `strings: true` as a StringArray (S elements Uint8Array, U elements strings, trailing NULs
 * removed as NumPy removes them), written back byte for byte as np.save writes them; refused
 * by name without the option; one unsupported member never hides the others from openNpz.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';

import { decodeNpz, isStringArray, openNpz, readNpy, readNpySync, readNpz, readNpzSync, stringArray, writeNpy, writeNpz, type StringArray } from '../../../src/index.js';
import { expectCode } from '../../expect-code.js';
import { numpyPythons, runPythonWith, tempDir } from '../../helpers.js';

/** Writes the string arrays with np.save / np.savez and prints each one's elements, NumPy's way. */
const GENERATE = String.raw`
import json, os, sys
import numpy as np
out = sys.argv[1]
arrays = {
    's5': np.array([[b'abc', b'', b'\xff\x00z'], [b'hello', b'a\x00', b'\x01\x02\x03\x04\x05']], dtype='|S5'),
    'u4': np.array(['\u00e9t\u00e9', '', '\U0001F600x', 'abcd', 'z'], dtype='<U4'),
    'u3be': np.array(['big', 'e\u00df', '\u4e2d'], dtype='>U3'),
    'uF': np.asfortranarray(np.array([['a', 'bb', 'ccc'], ['dd', 'e', '']], dtype='<U3')),
    'sF': np.asfortranarray(np.array([[b'a', b'bb'], [b'ccc', b'd'], [b'', b'ee']], dtype='|S3')),
    's0d': np.array(b'scalar', dtype='|S6'),
    'u0d': np.array('\u00fcber', dtype='<U4'),
    'empty': np.zeros((0, 3), dtype='<U2'),
    'c': np.array([b'x', b'y'], dtype='c'),
    'u3d': np.array([[['a', 'b'], ['c', 'd']], [['e', 'f'], ['g', 'h']]], dtype='<U1'),
    'surrogate': np.array(['\ud800x', 'ok'], dtype='<U2'),
}
report = {}
for name, a in arrays.items():
    np.save(os.path.join(out, name + '.npy'), a)
    flat = a.flatten(order='C').tolist()
    kind = 'bytes' if a.dtype.kind == 'S' else 'unicode'
    report[name] = {'kind': kind, 'width': a.dtype.itemsize // (4 if kind == 'unicode' else 1), 'shape': list(a.shape),
                    'values': [v.hex() for v in flat] if kind == 'bytes' else flat}
np.savez(os.path.join(out, 'mixed.npz'), num=np.arange(3.0), labels=np.array(['cat', 'dog']), when=np.array(['2020-01-01'], dtype='M8[D]'), raw=np.array([b'\x00\x01'], dtype='S2'))
np.savez_compressed(os.path.join(out, 'mixed_deflated.npz'), num=np.arange(3.0), labels=np.array(['cat', 'dog']), when=np.array(['2020-01-01'], dtype='M8[D]'), raw=np.array([b'\x00\x01'], dtype='S2'))
print(json.dumps(report))
`;

/** np.load of each file: the elements NumPy's way (flat, C order). */
const READ_BACK = String.raw`
import json, sys
import numpy as np
out = {}
for f in sys.argv[1:]:
    d = np.load(f)
    items = d.items() if hasattr(d, 'files') else [('', d)]
    for k, a in items:
        flat = a.flatten(order='C').tolist()
        out[f + ':' + k] = {'descr': a.dtype.str, 'shape': list(a.shape), 'fortran': bool(a.flags.f_contiguous and not a.flags.c_contiguous),
                            'values': [v.hex() for v in flat] if a.dtype.kind == 'S' else flat}
print(json.dumps(out))
`;

interface Expected {
  kind: 'bytes' | 'unicode';
  width: number;
  shape: number[];
  values: string[];
}

/** The elements as NumPy's report spells them (hex for bytes). */
function spelled(array: StringArray): string[] {
  return array.kind === 'bytes' ? (array.values as Uint8Array[]).map((v) => Buffer.from(v).toString('hex')) : (array.values as string[]);
}

function assertMatches(array: unknown, expected: Expected, what: string): void {
  assert.ok(isStringArray(array), `${what}: not a StringArray`);
  assert.equal(array.kind, expected.kind, what);
  assert.equal(array.width, expected.width, what);
  assert.deepEqual(array.shape, expected.shape, what);
  assert.deepEqual(spelled(array), expected.values, what);
  if (array.kind === 'bytes') assert.ok((array.values as unknown[]).every((v) => v instanceof Uint8Array), what);
}

for (const { label, python } of numpyPythons()) {
  describe(`string arrays, both ways with ${label}`, () => {
    const dir = tempDir('npy-strings');
    const numpyDir = path.join(dir, 'numpy');
    const oursDir = path.join(dir, 'ours');
    fs.mkdirSync(numpyDir);
    fs.mkdirSync(oursDir);
    const report = JSON.parse(runPythonWith(python(), GENERATE, [numpyDir])) as Record<string, Expected>;
    const names = Object.keys(report);

    test('np.save of S, U (both byte orders), F-order, 0-d, empty and c arrays reads equal with strings: true, eager, mapped and sync', async () => {
      assert.equal(names.length, 11);
      for (const name of names) {
        const file = path.join(numpyDir, `${name}.npy`);
        const expected = report[name] as Expected;
        assertMatches(await readNpy(file, { strings: true }), expected, name);
        assertMatches(await readNpy(file, { strings: true, mmap: true }), expected, `${name} mmap`);
        assertMatches(readNpySync(file, { strings: true }), expected, `${name} sync`);
      }
    });

    test('a U element that is not a code point is ERR_BAD_VALUE; a header claiming more data than the file holds is ERR_TRUNCATED', async () => {
      const good = fs.readFileSync(path.join(numpyDir, 'u4.npy'));
      const bad = Buffer.from(good);
      bad.writeUInt32LE(0x110000, bad.length - 4);
      const file = path.join(oursDir, 'bad-code-point.npy');
      fs.writeFileSync(file, bad);
      await expectCode(() => readNpy(file, { strings: true }), 'ERR_BAD_VALUE', /code point/);
      const cut = path.join(oursDir, 'cut-strings.npy');
      fs.writeFileSync(cut, good.subarray(0, good.length - 1));
      await expectCode(() => readNpy(cut, { strings: true }), 'ERR_TRUNCATED');
      assert.throws(() => readNpySync(cut, { strings: true }), /ends inside the data/);
    });

    test('without strings: true they are ERR_UNSUPPORTED_DTYPE naming the option', async () => {
      for (const name of names) {
        const file = path.join(numpyDir, `${name}.npy`);
        await expectCode(() => readNpy(file), 'ERR_UNSUPPORTED_DTYPE', /strings: true/);
        assert.throws(() => readNpySync(file), /strings: true/);
      }
    });

    test('written back, each is np.save\'s file byte for byte, and np.load reads the same elements', async () => {
      const ours: string[] = [];
      for (const name of names) {
        const file = path.join(numpyDir, `${name}.npy`);
        const target = path.join(oursDir, `${name}.npy`);
        await writeNpy(target, (await readNpy(file, { strings: true })) as StringArray);
        assert.ok(fs.readFileSync(target).equals(fs.readFileSync(file)), `${name}: not np.save's bytes`);
        ours.push(target);
      }
      const back = JSON.parse(runPythonWith(python(), READ_BACK, ours)) as Record<string, { values: string[]; shape: number[] }>;
      for (const [index, name] of names.entries()) {
        const got = back[`${ours[index]}:`];
        assert.deepEqual(got?.values, report[name]?.values, name);
        assert.deepEqual(got?.shape, report[name]?.shape, name);
      }
    });

    test('stringArray() from JavaScript values writes what np.save writes for np.array(values)', async () => {
      const cases: [string, StringArray, string][] = [
        ['labels', stringArray(['cat', 'horse', '\u00e9']), "np.array(['cat', 'horse', '\\u00e9'])"],
        ['bytes', stringArray([new Uint8Array([104, 105]), new Uint8Array([0xff])]), "np.array([b'hi', b'\\xff'])"],
        ['grid', stringArray(['a', 'bb', 'c', 'dd'], [2, 2]), "np.array([['a', 'bb'], ['c', 'dd']])"],
        ['fortran', stringArray(['a', 'bb', 'c', 'dd'], [2, 2], { order: 'F' }), "np.asfortranarray(np.array([['a', 'bb'], ['c', 'dd']]))"],
        ['wide', stringArray(['x'], [1], { width: 7 }), "np.array(['x'], dtype='<U7')"],
      ];
      for (const [name, array, expression] of cases) {
        const ours = path.join(oursDir, `js-${name}.npy`);
        const theirs = path.join(numpyDir, `js-${name}.npy`);
        await writeNpy(ours, array);
        runPythonWith(python(), `import numpy as np, sys; np.save(sys.argv[1], ${expression})`, [theirs]);
        assert.ok(fs.readFileSync(ours).equals(fs.readFileSync(theirs)), name);
      }
      assert.throws(() => stringArray(['abc'], [1], { width: 2 }), /width/);
      assert.throws(() => stringArray(['a', new Uint8Array(1)] as unknown as string[]), /only strings/);
    });

    test('.npz: string members read with strings: true on every reader; an unsupported member fails readNpz naming it, openNpz serves the others', async () => {
      for (const name of ['mixed.npz', 'mixed_deflated.npz']) {
        const file = path.join(numpyDir, name);
        // The datetime member stops every whole-archive read, naming the member.
        await expectCode(() => readNpz(file, { strings: true }), 'ERR_UNSUPPORTED_DTYPE', /when\.npy/);
        assert.throws(() => readNpzSync(file, { strings: true }), /when\.npy/);
        for (const mmap of [false, true]) {
          const archive = await openNpz(file, { strings: true, mmap });
          try {
            assert.deepEqual(archive.keys(), ['num', 'labels', 'when', 'raw']);
            assert.deepEqual([...((await archive.get('num')) as { data: Float64Array }).data], [0, 1, 2]);
            assertMatches(await archive.get('labels'), { kind: 'unicode', width: 3, shape: [2], values: ['cat', 'dog'] }, `${name} labels`);
            assertMatches(await archive.get('raw'), { kind: 'bytes', width: 2, shape: [1], values: ['0001'] }, `${name} raw`);
            await expectCode(() => archive.get('when'), 'ERR_UNSUPPORTED_DTYPE', /datetime/);
            const info = await archive.info('labels');
            assert.equal(info.dtype, null);
            assert.deepEqual(info.strings, { kind: 'unicode', width: 3, bigEndian: false });
            assert.deepEqual([info.shape, info.dataLength], [[2], 24]);
            assert.deepEqual((await archive.info('raw')).strings, { kind: 'bytes', width: 2, bigEndian: false });
            assert.deepEqual([...((await archive.get('num')) as { data: Float64Array }).data], [0, 1, 2], 'still served after a refusal');
          } finally {
            archive.close();
          }
          // Without strings: the string members are refused, the numeric one still served.
          const plain = await openNpz(file, { mmap });
          await expectCode(() => plain.get('labels'), 'ERR_UNSUPPORTED_DTYPE', /strings: true/);
          assert.equal(((await plain.get('num')) as { shape: number[] }).shape[0], 3);
          plain.close();
        }
      }
    });

    test('.npz of strings both ways: every reader, and writeNpz (stored and deflated) np.load reads equal', async () => {
      const members = { labels: stringArray(['cat', 'dog', '\u{1F600}']), raw: stringArray([new Uint8Array([0, 1]), new Uint8Array([2])]) };
      for (const compress of [false, true]) {
        const file = path.join(oursDir, `strings-${compress}.npz`);
        await writeNpz(file, members, { compress });
        const readers = [
          await readNpz(file, { strings: true }),
          await readNpz(file, { strings: true, mmap: true }),
          readNpzSync(file, { strings: true }),
          readNpzSync(file, { strings: true, mmap: true }),
          decodeNpz(new Uint8Array(fs.readFileSync(file)), { strings: true }),
        ];
        for (const arrays of readers) {
          assertMatches(arrays.labels, { kind: 'unicode', width: 3, shape: [3], values: ['cat', 'dog', '\u{1F600}'] }, 'labels');
          assertMatches(arrays.raw, { kind: 'bytes', width: 2, shape: [2], values: ['0001', '02'] }, 'raw');
        }
        const back = JSON.parse(runPythonWith(python(), READ_BACK, [file])) as Record<string, { descr: string; values: string[] }>;
        assert.deepEqual(back[`${file}:labels`], { descr: '<U3', shape: [3], fortran: false, values: ['cat', 'dog', '\u{1F600}'] });
        assert.deepEqual(back[`${file}:raw`], { descr: '|S2', shape: [2], fortran: false, values: ['0001', '02'] });
      }
    });
  });
}
