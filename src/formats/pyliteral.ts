/**
 * A parser for the Python literals NumPy writes in `.npy` headers: dicts, lists, tuples,
 * strings and bytes, integers (decimal, hex, octal, binary, with `_`), floats and imaginary
 * numbers, True/False/None, with comments and line continuations between tokens. It evaluates nothing: anything else is a syntax error, like
 * `ast.literal_eval` refusing it. Python 2's `L` suffix is accepted only when the caller asks
 * (NumPy's `_filter_header` strips it from version 1.0 and 2.0 headers only).
 */

export type PyValue = string | number | bigint | boolean | null | PyValue[] | PyTuple | PyDict | PyFloat | PyBytes;

/** A Python tuple (kept apart from lists because NumPy's shape must be a tuple). */
export class PyTuple {
  constructor(readonly items: PyValue[]) {}
}

/**
 * A Python dict: its str keys in insertion order (a repeated key keeps its first place and
 * its last value, as in Python), and how many keys of other types (bytes, numbers, tuples)
 * it had, which no `.npy` header may hold.
 */
export class PyDict {
  constructor(
    readonly entries: Map<string, PyValue>,
    readonly otherKeys: PyValue[] = [],
  ) {}
}

/**
 * A float or imaginary literal (`6.0`, `1e3`, `2j`), kept apart from ints because NumPy
 * refuses a shape of floats. Ints are plain numbers (bigint beyond 2^53).
 */
export class PyFloat {
  constructor(
    readonly value: number,
    readonly imaginary = false,
  ) {}
}

/** A bytes literal (`b'descr'`), kept apart from str: NumPy refuses bytes keys and descrs. */
export class PyBytes {
  constructor(readonly text: string) {}
}

/** Options of {@link parsePyLiteral}. */
export interface PyLiteralOptions {
  /** Accept Python 2's `L` after a number (`3L`), as NumPy's `_filter_header` does. */
  longSuffix?: boolean;
}

/** Thrown for malformed input; callers wrap it in a TensorioError with the file's path. */
export class PyLiteralError extends Error {}

// Nesting this deep is never a real header: a hostile one must not overflow the stack.
const MAX_DEPTH = 64;

/** Parses one Python literal occupying all of `text` (surrounding whitespace allowed). */
export function parsePyLiteral(text: string, options: PyLiteralOptions = {}): PyValue {
  let pos = 0;

  const fail = (what: string): never => {
    const near = text.slice(pos, pos + 20);
    throw new PyLiteralError(`${what} at character ${pos}${near ? ` (near '${near}')` : ' (at the end)'}`);
  };

  // Whitespace, and what Python's tokenizer drops with it: `#` comments to the end of the line
  // and backslash line continuations (ast.literal_eval, so NumPy, accepts both in a header).
  const skipSpace = (): void => {
    while (pos < text.length) {
      const ch = text[pos] as string;
      if (' \t\n\r\f\v'.includes(ch)) pos++;
      else if (ch === '#') {
        while (pos < text.length && text[pos] !== '\n' && text[pos] !== '\r') pos++;
      } else if (ch === '\\' && (text[pos + 1] === '\n' || (text[pos + 1] === '\r' && text[pos + 2] === '\n'))) pos += text[pos + 1] === '\n' ? 2 : 3;
      else break;
    }
  };

  // One string or bytes literal; `prefix` is its lower-cased prefix ('', 'u', 'r', 'b', 'br').
  const parseOneString = (): { text: string; bytes: boolean } => {
    const prefix = /^(?:[bB][rR]?|[rR][bB]?|[uU])?/.exec(text.slice(pos, pos + 2))?.[0].toLowerCase() ?? '';
    pos += prefix.length;
    const raw = prefix.includes('r');
    const bytes = prefix.includes('b');
    const quote = text[pos];
    if (quote !== "'" && quote !== '"') return fail('expected a string');
    if (text.startsWith(quote.repeat(3), pos)) return fail('triple-quoted strings are not supported');
    pos++;
    let out = '';
    while (pos < text.length && text[pos] !== quote) {
      const ch = text[pos] as string;
      if (ch === '\n') fail('newline inside a string');
      if (ch === '\\' && raw) {
        // A raw string keeps the backslash, but it still stops the quote after it ending the string.
        out += ch + (text[pos + 1] ?? '');
        pos += 2;
        continue;
      }
      if (ch === '\\') {
        pos++;
        const esc = text[pos];
        const simple: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', "'": "'", '"': '"', a: '\x07', b: '\b', f: '\f', v: '\v', '\n': '' };
        if (esc === undefined) return fail('unterminated escape');
        const octal = /^[0-7]{1,3}/.exec(text.slice(pos, pos + 3));
        if (octal) {
          out += String.fromCharCode(parseInt(octal[0], 8));
          pos += octal[0].length;
        } else if (esc in simple) {
          out += simple[esc];
          pos++;
        } else if (esc === 'x' || (!bytes && (esc === 'u' || esc === 'U'))) {
          const len = esc === 'x' ? 2 : esc === 'u' ? 4 : 8;
          const hex = text.slice(pos + 1, pos + 1 + len);
          if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== len) fail(`bad \\${esc} escape`);
          const code = parseInt(hex, 16);
          if (code > 0x10ffff) fail('escape beyond Unicode');
          out += String.fromCodePoint(code);
          pos += 1 + len;
        } else {
          out += '\\' + esc;
          pos++;
        }
        continue;
      }
      if (bytes && ch.charCodeAt(0) > 0x7f) fail('bytes can only contain ASCII characters');
      out += ch;
      pos++;
    }
    if (pos >= text.length) fail('unterminated string');
    pos++;
    return { text: out, bytes };
  };

  const startsString = (): boolean => /^(?:[bB][rR]?|[rR][bB]?|[uU])?['"]/.test(text.slice(pos, pos + 3));

  // Adjacent literals concatenate ('<' 'f4' is '<f4'); str and bytes do not mix.
  const parseString = (): string | PyBytes => {
    const first = parseOneString();
    let out = first.text;
    for (;;) {
      const save = pos;
      skipSpace();
      if (!startsString()) {
        pos = save;
        break;
      }
      const next = parseOneString();
      if (next.bytes !== first.bytes) fail('cannot mix bytes and nonbytes literals');
      out += next.text;
    }
    return first.bytes ? new PyBytes(out) : out;
  };

  // Python 3's number grammar: no leading zeros on decimal ints, `_` only between digits.
  const DIGITS = String.raw`\d(?:_?\d)*`;
  const EXPONENT = String.raw`[eE][+-]?${DIGITS}`;
  const NUMBER = new RegExp(
    String.raw`^(?:(?<float>(?:${DIGITS}\.(?:${DIGITS})?|\.${DIGITS})(?:${EXPONENT})?|${DIGITS}${EXPONENT})|` +
      String.raw`(?<int>0[xX](?:_?[0-9a-fA-F])+|0[oO](?:_?[0-7])+|0[bB](?:_?[01])+|[1-9](?:_?\d)*|0(?:_?0)*))(?<imag>[jJ])?`,
  );

  const parseNumber = (): number | bigint | PyFloat => {
    const sign = text[pos] === '-' ? -1 : 1;
    if (text[pos] === '-' || text[pos] === '+') {
      pos++;
      skipSpace();
    }
    const match = NUMBER.exec(text.slice(pos, pos + 1000));
    if (!match) return fail('expected a value');
    pos += match[0].length;
    if (options.longSuffix) {
      // `3L`, or `3 L`: the tokenizer reads NUMBER then NAME 'L' either way (lower-case `l` is not stripped).
      const suffix = /^[ \t]*L(?!\w)/.exec(text.slice(pos, pos + 1000));
      if (suffix) pos += suffix[0].length;
    }
    if (/[\w.]/.test(text[pos] ?? '')) return fail('invalid number');
    const groups = match.groups as { float?: string; int?: string; imag?: string };
    const literal = match[0].replace(/_/g, '').replace(/[jJ]$/, '');
    if (groups.float !== undefined || groups.imag !== undefined) {
      // 1e400 is inf in Python too; no header field accepts a float anyway.
      const value = Number(literal);
      return new PyFloat(sign * value, groups.imag !== undefined);
    }
    const big = BigInt(literal) * BigInt(sign);
    return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
  };

  const parseSequence = (close: string, depth: number): { items: PyValue[]; trailingComma: boolean } => {
    const items: PyValue[] = [];
    let trailingComma = false;
    skipSpace();
    while (text[pos] !== close) {
      items.push(parseValue(depth + 1));
      skipSpace();
      trailingComma = false;
      if (text[pos] === ',') {
        pos++;
        trailingComma = true;
        skipSpace();
      } else if (text[pos] !== close) {
        fail(`expected ',' or '${close}'`);
      }
    }
    pos++;
    return { items, trailingComma };
  };

  const parseValue = (depth: number): PyValue => {
    if (depth > MAX_DEPTH) fail('nesting too deep');
    skipSpace();
    const ch = text[pos];
    if (ch === undefined) return fail('expected a value');
    if (ch === '{') {
      pos++;
      const entries = new Map<string, PyValue>();
      const otherKeys: PyValue[] = [];
      skipSpace();
      while (text[pos] !== '}') {
        const key = parseValue(depth + 1);
        skipSpace();
        if (text[pos] !== ':') fail("expected ':'");
        pos++;
        const value = parseValue(depth + 1);
        if (typeof key === 'string') entries.set(key, value);
        else otherKeys.push(key);
        skipSpace();
        if (text[pos] === ',') {
          pos++;
          skipSpace();
        } else if (text[pos] !== '}') {
          fail("expected ',' or '}'");
        }
      }
      pos++;
      return new PyDict(entries, otherKeys);
    }
    if (ch === '[') {
      pos++;
      return parseSequence(']', depth).items;
    }
    if (ch === '(') {
      pos++;
      const { items, trailingComma } = parseSequence(')', depth);
      // (x) is just x in Python; only (x,) is a one-element tuple.
      if (items.length === 1 && !trailingComma) return items[0] as PyValue;
      return new PyTuple(items);
    }
    if (startsString()) return parseString();
    for (const [word, value] of [['True', true], ['False', false], ['None', null]] as const) {
      if (text.startsWith(word, pos) && !/[\w]/.test(text[pos + word.length] ?? '')) {
        pos += word.length;
        return value;
      }
    }
    return parseNumber();
  };

  const value = parseValue(0);
  skipSpace();
  if (pos !== text.length) fail('unexpected text after the value');
  return value;
}
