/**
 * The Python literal parser of .npy headers (src/formats/pyliteral.ts), imported on purpose: it
 * is internal (readers wrap its PyLiteralError as ERR_BAD_HEADER). Python's own
 * `ast.literal_eval` (Debian's python3) judges a table of literals: both accept with the same
 * value, or both refuse. Then what tensorio refuses on purpose where Python would not, and
 * hostile nesting.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import test from 'node:test';

import { parsePyLiteral, PyBytes, PyDict, PyFloat, PyLiteralError, PyTuple, type PyValue } from '../../src/formats/pyliteral.js';
import { pythonWithNumpy, runPythonWith, tempDir } from '../helpers.js';

/** A value in one notation both sides can print: tags keep tuples, bytes, ints and floats apart. */
type Tagged = null | boolean | { s: string } | { b: string } | { i: string } | { f: number } | { j: number } | { l: Tagged[] } | { t: Tagged[] } | { d: [string, Tagged][] };

function tag(value: PyValue): Tagged {
  if (value === null || typeof value === 'boolean') return value;
  if (typeof value === 'string') return { s: value };
  if (typeof value === 'number' || typeof value === 'bigint') return { i: String(value) };
  if (value instanceof PyBytes) return { b: value.text };
  if (value instanceof PyFloat) return value.imaginary ? { j: value.value } : { f: value.value };
  if (value instanceof PyTuple) return { t: value.items.map(tag) };
  if (value instanceof PyDict) {
    assert.deepEqual(value.otherKeys, [], 'the table holds str keys only');
    return { d: [...value.entries].map(([k, v]) => [k, tag(v)]) };
  }
  return { l: value.map(tag) };
}

// Python prints floats with repr(): inf and nan are not JSON, so they come as strings.
const PYTHON = String.raw`
import ast, json, sys
def tag(v):
    if v is None or isinstance(v, bool): return v
    if isinstance(v, str): return {'s': v}
    if isinstance(v, bytes): return {'b': v.decode('latin-1')}
    if isinstance(v, int): return {'i': str(v)}
    if isinstance(v, float): return {'f': repr(v)}
    if isinstance(v, complex): return {'j': repr(v.imag)}
    if isinstance(v, tuple): return {'t': [tag(x) for x in v]}
    if isinstance(v, list): return {'l': [tag(x) for x in v]}
    if isinstance(v, dict): return {'d': [[k, tag(x)] for k, x in v.items()]}
    raise TypeError(type(v))
out = []
for text in json.load(open(sys.argv[1])):
    try:
        out.append({'ok': tag(ast.literal_eval(text))})
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as e:
        out.append({'error': type(e).__name__})
print(json.dumps(out))
`;

function untagFloats(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(untagFloats);
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).map(([k, v]) => {
      if ((k === 'f' || k === 'j') && typeof v === 'string') return [k, v === 'inf' ? Infinity : v === '-inf' ? -Infinity : Number(v)];
      return [k, untagFloats(v)];
    });
    return Object.fromEntries(entries);
  }
  return value;
}

const AGREED = [
  // What NumPy writes, and what it accepted over the years.
  "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }",
  "{'descr': [('x', '<i4'), ('y', '|S3')], 'fortran_order': True, 'shape': ()}",
  "{'descr': '<U5', 'shape': (2,), 'fortran_order': False}                                      ",
  // Tuples, lists and parentheses.
  '(1,)', '(1)', '()', '[]', '[1, [2, (3,)], ()]', '((1, 2), (3,),)',
  // Strings: concatenation, prefixes, escapes.
  "'a' 'b'", '"double" \'single\'', "b'x' b'y'", "r'\\n'", "u'text'", "rb'\\x00'", "'\\x41\\u00e9\\U0001F600'", "'\\101\\0\\7'", "'tab\\tnew\\nquote\\''", "'\\q'",
  // Numbers: bases, underscores, signs, floats, imaginary, big ints.
  '0', '00', '-5', '+5', '- 5', '1_000', '0x_fF', '0o17', '0b1010', '9007199254740993', '-9007199254740993', '12345678901234567890123',
  '1e3', '.5', '5.', '1_0.2_5e-1_0', '1e400', '-1e400', '2j', '1.5J',
  // Constants, comments, line continuations, duplicate keys.
  'True', 'False', 'None', '# a comment\n(1, 2)', '(1,\\\n 2)', "{'a': 1, 'a': 2, 'b': 3}",
  // Refused by both.
  '', '1 +', '[1, 2', "'abc", 'abc', '0777', '1__0', '1_', '0x', '(', '[1 2]', "b'\u00e9'", '3L', "{'a' 1}", "'a' b'b'", "'line\nbreak'", '1.2.3', 'true', '--1e', '[1,,2]',
];

test("ast.literal_eval and parsePyLiteral agree on a table of literals: same value, or both refuse", () => {
  const file = path.join(tempDir('pyliteral'), 'inputs.json');
  fs.writeFileSync(file, JSON.stringify(AGREED));
  const python = untagFloats(JSON.parse(runPythonWith(pythonWithNumpy(), PYTHON, [file]))) as Array<{ ok?: Tagged; error?: string }>;
  assert.equal(python.length, AGREED.length);
  for (const [i, text] of AGREED.entries()) {
    const judged = python[i] as { ok?: Tagged; error?: string };
    let ours: { ok?: Tagged; error?: string };
    try {
      ours = { ok: tag(parsePyLiteral(text)) };
    } catch (error) {
      assert.ok(error instanceof PyLiteralError, `${JSON.stringify(text)}: ${String(error)}`);
      ours = { error: 'refused' };
    }
    if (judged.error) assert.ok(ours.error, `${JSON.stringify(text)}: Python refuses it (${judged.error}), tensorio read ${JSON.stringify(ours.ok)}`);
    else assert.deepEqual(ours.ok, judged.ok, `${JSON.stringify(text)}`);
  }
});

test("Python 2's L suffix only when asked, as NumPy's _filter_header strips it", () => {
  assert.throws(() => parsePyLiteral('(3L, 4L)'), PyLiteralError);
  const value = parsePyLiteral('(3L, 4 L)', { longSuffix: true });
  assert.ok(value instanceof PyTuple);
  assert.deepEqual(value.items, [3, 4]);
  assert.throws(() => parsePyLiteral('3l', { longSuffix: true }), PyLiteralError);
});

test('dict keys that are not str are kept apart (no .npy header may hold one)', () => {
  const value = parsePyLiteral("{'a': 1, 2: 'x', b'k': 3, (1,): 4}");
  assert.ok(value instanceof PyDict);
  assert.deepEqual([...value.entries], [['a', 1]]);
  assert.equal(value.otherKeys.length, 3);
  assert.ok(value.otherKeys[1] instanceof PyBytes);
});

test('refused on purpose where Python accepts: triple quotes, and nesting deeper than 64', () => {
  assert.throws(() => parsePyLiteral("'''x'''"), /triple-quoted/);
  assert.ok(Array.isArray(parsePyLiteral('['.repeat(64) + ']'.repeat(64))));
  assert.throws(() => parsePyLiteral('['.repeat(66) + ']'.repeat(66)), /nesting too deep/);
});

test('hostile input: deep nesting and long runs are refused or read in bounded time, without a stack overflow', () => {
  for (const text of ['['.repeat(100_000), '('.repeat(100_000) + ')'.repeat(100_000), '{'.repeat(50_000), "'" + 'a'.repeat(1_000_000)]) {
    const started = Date.now();
    assert.throws(() => parsePyLiteral(text), PyLiteralError);
    assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
  }
  const started = Date.now();
  const long = parsePyLiteral('(' + '1, '.repeat(100_000) + ')');
  assert.ok(long instanceof PyTuple && long.items.length === 100_000);
  assert.ok(Date.now() - started < 2000);
});

test('errors say where: the character position and what is near it', () => {
  assert.throws(() => parsePyLiteral("{'descr': <f4}"), (e: unknown) => e instanceof PyLiteralError && /at character 10 \(near '<f4}'\)/.test(e.message));
  assert.throws(() => parsePyLiteral('(1, 2'), (e: unknown) => e instanceof PyLiteralError && /\(at the end\)/.test(e.message));
});
