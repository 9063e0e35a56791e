/**
 * The restricted unpickler and the pickler: NumPy fixtures, Python both ways, malicious pickles, bounds.
 * Internal on purpose: pickleChunks (src/formats/pickle/pickler.ts), the pickler, has no public entry of its own.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import * as fc from 'fast-check';

import {
  TensorioError,
  load,
  ndarray,
  unpickle,
  type NdArray,
  type PicklableValue,
  type PyObject,
} from '../../../src/index.js';
import { pickleChunks } from '../../../src/formats/pickle/pickler.js';
import { expectCode } from '../../expect-code.js';
import { numpyPythons, pythonWithNumpy, runPythonWith, tempDir } from '../../helpers.js';

const dir = tempDir('pickle');


function concat(chunks: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(chunks));
}

/** Pickles of a Python expression at each protocol, made by Python's own pickle module. */
function pythonPickles(expression: string, protocols = [0, 1, 2, 3, 4, 5], python = pythonWithNumpy()): Uint8Array[] {
  const hexes = JSON.parse(
    runPythonWith(
      python,
      `import pickle, json, sys, collections, numpy as np
value = ${expression}
print(json.dumps([pickle.dumps(value, protocol=p).hex() for p in ${JSON.stringify(protocols)}]))`,
    ),
  ) as string[];
  return hexes.map((h) => new Uint8Array(Buffer.from(h, 'hex')));
}

function plain(array: NdArray): { dtype: string; shape: number[]; data: unknown[]; order?: string } {
  const out: { dtype: string; shape: number[]; data: unknown[]; order?: string } = { dtype: array.dtype, shape: array.shape, data: Array.from(array.data as ArrayLike<unknown>) };
  if (array.order === 'F') out.order = 'F';
  return out;
}

for (const { label, python } of numpyPythons()) {
  const run = (script: string, args: string[] = []): string => runPythonWith(python(), script, args);
  const runJson = <T>(script: string, args: string[] = []): T => JSON.parse(run(script, args)) as T;
  describe(`pickles written by Python, every protocol, ${label}`, () => {
    test('arrays of every layout and dtype, NumPy scalars, Python values', async () => {
      const expression = `[np.arange(6, dtype='<f4').reshape(2, 3), np.array([[1, 2], [3, 4]], dtype='>i2', order='F'),
      np.array([True, False]), np.arange(3, dtype=np.uint64) + 2**63, np.array([1+2j], dtype=np.complex64), np.zeros((0, 3)),
      np.float16(1.5), np.float32(2.5), np.int64(-7), np.uint64(2**64 - 1), np.bool_(True),
      {'k': [1, 2.5, 'x', b'yz', None, True, False]}, (1, 2), 2**70, -2**70, -5, 1e300, float('inf'), b'', bytearray(b'ab'),
      collections.OrderedDict([('b', 1), ('a', 2)]), {1: 'one'}, {'s'} , 'é€𝄞']`;
      for (const [protocol, bytes] of pythonPickles(expression, undefined, python()).entries()) {
        const value = unpickle(bytes) as PyObject[];
        const label = `protocol ${protocol}`;
        assert.deepEqual(plain(value[0] as NdArray), { dtype: 'float32', shape: [2, 3], data: [0, 1, 2, 3, 4, 5] }, label);
        assert.deepEqual(plain(value[1] as NdArray), { dtype: 'int16', shape: [2, 2], data: [1, 3, 2, 4], order: 'F' }, label);
        assert.deepEqual(plain(value[2] as NdArray), { dtype: 'bool', shape: [2], data: [1, 0] }, label);
        assert.deepEqual(plain(value[3] as NdArray).data, [2n ** 63n, 2n ** 63n + 1n, 2n ** 63n + 2n], label);
        assert.deepEqual(plain(value[4] as NdArray), { dtype: 'complex64', shape: [1], data: [1, 2] }, label);
        assert.deepEqual(plain(value[5] as NdArray), { dtype: 'float64', shape: [0, 3], data: [] }, label);
        assert.deepEqual(value.slice(6, 11), [1.5, 2.5, -7, 2n ** 64n - 1n, true], label);
        assert.deepEqual(value[11], { k: [1, 2.5, 'x', new Uint8Array([0x79, 0x7a]), null, true, false] }, label);
        assert.deepEqual(value.slice(12, 18), [[1, 2], 2n ** 70n, -(2n ** 70n), -5, 1e300, Infinity], label);
        assert.deepEqual(value.slice(18, 20), [new Uint8Array(0), new Uint8Array([0x61, 0x62])], label);
        assert.deepEqual(Object.entries(value[20] as object), [['b', 1], ['a', 2]], label);
        assert.deepEqual(value[21], new Map([[1, 'one']]), label);
        assert.deepEqual(value[22], new Set(['s']), label);
        assert.equal(value[23], 'é€𝄞', label);
      }
    });

    test('shared references and cycles keep their identity', async () => {
      for (const bytes of pythonPickles('(lambda a: [a, a, a.append(a)])([1])', [0, 2, 4], python())) {
        const value = unpickle(bytes) as PyObject[][];
        assert.equal(value[0], value[1]);
        assert.equal(value[0]?.[1], value[0]);
      }
    });

    test('vgg16 style: a dict of [W, b] lists with byte-string keys (as Python 2 wrote them) is a plain object', async () => {
      for (const bytes of pythonPickles("{b'conv1_1': [np.ones((2, 2), 'f4'), np.zeros(2, 'f4')], b'fc8': [np.ones(1, 'f4'), np.zeros(1, 'f4')]}", [0, 2], python())) {
        const value = unpickle(bytes) as Record<string, NdArray[]>;
        assert.deepEqual(Object.keys(value), ['conv1_1', 'fc8']);
        assert.deepEqual(value.conv1_1?.map((a) => a.shape), [[2, 2], [2]]);
      }
    });

    test('a dict key named __proto__ stays a key', async () => {
      const [bytes] = pythonPickles("{'__proto__': 1, 'a': 2}", [2], python());
      const value = unpickle(bytes as Uint8Array) as Record<string, number>;
      assert.equal(Object.getPrototypeOf(value), Object.prototype);
      assert.deepEqual(Object.keys(value), ['__proto__', 'a']);
    });
  });
}

for (const { label, python } of numpyPythons()) {
  const run = (script: string, args: string[] = []): string => runPythonWith(python(), script, args);
  const runJson = <T>(script: string, args: string[] = []): T => JSON.parse(run(script, args)) as T;
  describe(`pickles written by tensorio, read by Python, ${label}`, () => {
    test('values and arrays come back equal', async () => {
      const value: PicklableValue = {
        w: ndarray(new Float32Array([1.5, -2, 3]), [3]),
        nested: [ndarray(new BigInt64Array([1n, -2n]), [2]), 'é€𝄞', 7, -2.5, 2n ** 80n, -(2n ** 70n), true, null, new Uint8Array([0, 255])],
        f: { ...ndarray(new Int16Array([1, 2, 3, 4, 5, 6]), [2, 3]), order: 'F' },
        empty: [],
      };
      const file = path.join(dir, 'ours.pkl');
      fs.writeFileSync(file, concat(pickleChunks(value)));
      const seen = runJson<Record<string, unknown>>(
        `import pickle, json, sys, numpy as np
v = pickle.load(open(sys.argv[1], 'rb'))
f = v['f']
print(json.dumps({'w': [str(v['w'].dtype), v['w'].tolist()], 'n0': [str(v['nested'][0].dtype), v['nested'][0].tolist()],
  'rest': [repr(x) for x in v['nested'][1:]], 'f': [str(f.dtype), f.shape, f.tolist(), bool(f.flags.f_contiguous)], 'empty': v['empty']}))`,
        [file],
      );
      assert.deepEqual(seen, {
        w: ['float32', [1.5, -2, 3]],
        n0: ['int64', [1, -2]],
        rest: ["'é€𝄞'", '7', '-2.5', String(2n ** 80n), String(-(2n ** 70n)), 'True', 'None', "b'\\x00\\xff'"],
        f: ['int16', [2, 3], [[1, 3, 5], [2, 4, 6]], true],
        empty: [],
      });
    });

    test('fast-check: pickle then unpickle is the identity', async () => {
      const leaf = fc.oneof(
        fc.constant(null),
        fc.boolean(),
        fc.integer(),
        fc.bigInt({ min: -(2n ** 100n), max: 2n ** 100n }).filter((b) => b < BigInt(Number.MIN_SAFE_INTEGER) || b > BigInt(Number.MAX_SAFE_INTEGER)),
        fc.double({ noNaN: true }).filter((d) => !Number.isInteger(d)),
        fc.string(),
        fc.uint8Array({ maxLength: 40 }),
        fc.float32Array({ maxLength: 10, noDefaultInfinity: false }).map((a) => ndarray(a, [a.length])),
      );
      const value = fc.letrec((tie) => ({
        node: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('node'), { maxLength: 4 }), fc.dictionary(fc.string(), tie('node'), { maxKeys: 4, noNullPrototype: true })),
      })).node;
      fc.assert(
        fc.property(value, (v) => {
          const back = unpickle(concat(pickleChunks(v as PicklableValue)));
          assert.deepEqual(back, v);
        }),
        { numRuns: 200 },
      );
    });
  });
}

for (const { label, python } of numpyPythons()) {
  const run = (script: string, args: string[] = []): string => runPythonWith(python(), script, args);
  const runJson = <T>(script: string, args: string[] = []): T => JSON.parse(run(script, args)) as T;
  describe(`malicious pickles are refused and run nothing, ${label}`, () => {
    const marker = path.join(dir, 'pwned');
    const payloads: Array<[string, string, RegExp]> = [
      ['os.system', `import os\nclass P:\n    def __reduce__(self): return (os.system, ('touch ${marker}',))`, /(posix|os)\.system/],
      ['eval', `class P:\n    def __reduce__(self): return (eval, ("open('${marker}', 'w').close()",))`, /(builtins|__builtin__)\.eval/],
      ['subprocess', `import subprocess\nclass P:\n    def __reduce__(self): return (subprocess.check_call, (['touch', '${marker}'],))`, /(subprocess|commands)\.check_call/],
      ['exec inside an object array', `import builtins\nclass P:\n    def __reduce__(self): return (builtins.exec, ("open('${marker}', 'w').close()",))`, /(builtins|__builtin__)\.exec/],
    ];
    for (const [name, cls, named] of payloads) {
      test(name, async () => {
        const hexes = runJson<string[]>(`import pickle, json, numpy as np\n${cls}\nprint(json.dumps([pickle.dumps([np.zeros(2), {'x': P()}], protocol=p).hex() for p in range(6)]))`);
        for (const hex of hexes) {
          await expectCode(() => unpickle(new Uint8Array(Buffer.from(hex, 'hex'))), 'ERR_UNSAFE_PICKLE', named);
        }
        // The same payload inside a real np.save'd object array, through load().
        const file = path.join(dir, `evil-${name.replace(/\W/g, '')}.npy`);
        run(`import numpy as np, sys\n${cls}\narr = np.empty(2, dtype=object); arr[0] = np.zeros(2); arr[1] = P()\nnp.save(sys.argv[1], arr, allow_pickle=True)`, [file]);
        await assert.rejects(load(file, { allowPickle: true }), (e: TensorioError) => e.code === 'ERR_UNSAFE_PICKLE' && named.test(e.message));
        assert.equal(fs.existsSync(marker), false, 'the payload ran');
      });
    }

    test('the payloads are live: Python itself runs them (so the tests above prove something)', async () => {
      const probe = path.join(dir, 'probe');
      run(`import pickle, os\nclass P:\n    def __reduce__(self): return (os.system, ('touch ${probe}',))\npickle.loads(pickle.dumps(P()))`);
      assert.equal(fs.existsSync(probe), true);
    });

    test('instance building opcodes (INST, OBJ, NEWOBJ) and extension codes are refused', async () => {
      // protocol 0 INST of an allowlisted name is still refused: tensorio never instantiates.
      await expectCode(() => unpickle(new Uint8Array(Buffer.from('(icollections\nOrderedDict\n.', 'latin1'))), 'ERR_UNSAFE_PICKLE');
      await expectCode(() => unpickle(new Uint8Array(Buffer.from('(ios\nsystem\n.', 'latin1'))), 'ERR_UNSAFE_PICKLE', /os\.system/);
      await expectCode(() => unpickle(Uint8Array.of(0x80, 2, 0x82, 1, 0x2e)), 'ERR_UNSAFE_PICKLE', /extension registry/);
      await expectCode(() => unpickle(new Uint8Array(Buffer.from('\x80\x02cbuiltins\nrange\nK\x05\x85R.', 'latin1'))), 'ERR_UNSAFE_PICKLE', /only as a value/);
      await expectCode(() => unpickle(new Uint8Array(Buffer.from('\x80\x02U\x05hello.', 'latin1').subarray(0, 2))), 'ERR_BAD_PICKLE');
    });
  });
}

describe('error codes and bounds, hand-made bytes', () => {
  test('ERR_UNSAFE_PICKLE names the global', async () => {
    await expectCode(() => unpickle(new Uint8Array(Buffer.from('cos\nsystem\n(S"true"\ntR.', 'latin1'))), 'ERR_UNSAFE_PICKLE', /os\.system/);
  });

  test('ERR_BAD_PICKLE: no STOP, unknown opcode, underflow, memo miss, lengths past the end', async () => {
    const cases: Array<[number[], RegExp]> = [
      [[0x80, 2, 0x5d], /ends before STOP/],
      [[0xff], /unknown opcode 0xff/],
      [[0x80, 2, 0x61, 0x2e], /underflow/],
      [[0x80, 2, 0x68, 7, 0x2e], /memo entry 7/],
      [[0x80, 3, 0x42, 0xff, 0xff, 0xff, 0x7f, 0x2e], /ends inside BINBYTES/],
      [[0x80, 4, 0x8e, 0, 0, 0, 0, 0, 0, 0, 0x40, 0x2e], /exceeds the pickle/],
      [[0x80, 2, 0x4b, 1, 0x4b, 2, 0x2e], /STOP with 2 values/],
      [[0x80, 9, 0x2e], /protocol 9/],
    ];
    for (const [bytes, message] of cases) await expectCode(() => unpickle(Uint8Array.from(bytes)), 'ERR_BAD_PICKLE', message);
  });

  test('every truncation of a real NumPy pickle is ERR_BAD_PICKLE', async () => {
    const [bytes] = pythonPickles("[np.arange(4.0), {'a': np.int32(3)}]", [3]);
    const whole = bytes as Uint8Array;
    for (let n = 0; n < whole.length; n++) await expectCode(() => unpickle(whole.subarray(0, n)), 'ERR_BAD_PICKLE');
  });

  test('random corruption of real NumPy pickles is a TensorioError or a value, never anything else', async () => {
    const wholes = pythonPickles("[np.arange(6.0).reshape(2, 3), {'k': [1, 'two', b'3', None]}, np.float32(1.5), 2**70]", [0, 2, 3, 4, 5]);
    fc.assert(
      fc.property(fc.nat(wholes.length - 1), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), (which, edits) => {
        const bytes = Uint8Array.from(wholes[which] as Uint8Array);
        for (const [at, value] of edits) bytes[at % bytes.length] = value;
        try {
          unpickle(bytes);
        } catch (error) {
          assert.ok(error instanceof TensorioError, `not a TensorioError: ${String(error)}`);
        }
      }),
      { numRuns: 2000 },
    );
  });

  test('an array whose data disagrees with its shape is refused before any allocation', async () => {
    const [bytes] = pythonPickles('np.arange(4.0)', [3]);
    const edited = Buffer.from(bytes as Uint8Array);
    // The shape tuple (4,) is BININT1 4: make it claim a billion elements.
    const at = edited.indexOf(Buffer.from([0x4b, 0x04, 0x85]));
    const grown = Buffer.concat([edited.subarray(0, at), Buffer.from([0x4a, 0, 0xca, 0x9a, 0x3b]), edited.subarray(at + 2)]);
    await expectCode(() => unpickle(new Uint8Array(grown)), 'ERR_BAD_PICKLE', /needs 8000000000 bytes/);
  });

  test('deep nesting is bounded', async () => {
    const deep = new Uint8Array(2 + 3000 + 3000 + 1);
    deep.set([0x80, 2]);
    deep.fill(0x5d, 2, 3002); // 3000 EMPTY_LIST
    deep.fill(0x61, 3002, 6001); // 2999 APPEND
    deep[6001] = 0x2e;
    await expectCode(() => unpickle(deep), 'ERR_BAD_PICKLE', /nested deeper/);
  });

  test('ERR_UNSUPPORTED_DTYPE for arrays tensorio cannot hold', async () => {
    const [bytes] = pythonPickles("np.array(['ab'])", [3]);
    await expectCode(() => unpickle(bytes as Uint8Array), 'ERR_UNSUPPORTED_DTYPE', /U2/);
  });
});
