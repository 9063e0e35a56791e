/**
 * A parser for the Python literals NumPy writes in `.npy` headers: dicts, lists, tuples,
 * strings, integers (with Python 2's `L` suffix), floats, True/False/None. It evaluates
 * nothing: anything else is a syntax error, like `ast.literal_eval` refusing it.
 */

export type PyValue = string | number | boolean | null | PyValue[] | PyTuple | PyDict;

/** A Python tuple (kept apart from lists because NumPy's shape must be a tuple). */
export class PyTuple {
  constructor(readonly items: PyValue[]) {}
}

/** A Python dict with string keys, in insertion order. */
export class PyDict {
  constructor(readonly entries: Map<string, PyValue>) {}
}

/** Thrown for malformed input; callers wrap it in a TensorioError with the file's path. */
export class PyLiteralError extends Error {}

// Nesting this deep is never a real header: a hostile one must not overflow the stack.
const MAX_DEPTH = 64;

/** Parses one Python literal occupying all of `text` (surrounding whitespace allowed). */
export function parsePyLiteral(text: string): PyValue {
  let pos = 0;

  const fail = (what: string): never => {
    const near = text.slice(pos, pos + 20);
    throw new PyLiteralError(`${what} at character ${pos}${near ? ` (near '${near}')` : ' (at the end)'}`);
  };

  const skipSpace = (): void => {
    while (pos < text.length && ' \t\n\r\f\v'.includes(text[pos] as string)) pos++;
  };

  const parseString = (): string => {
    let prefixEnd = pos;
    while (prefixEnd < text.length && 'bBuUrR'.includes(text[prefixEnd] as string)) prefixEnd++;
    const raw = text.slice(pos, prefixEnd).toLowerCase().includes('r');
    pos = prefixEnd;
    const quote = text[pos];
    if (quote !== "'" && quote !== '"') return fail('expected a string');
    pos++;
    let out = '';
    while (pos < text.length && text[pos] !== quote) {
      const ch = text[pos] as string;
      if (ch === '\n') fail('newline inside a string');
      if (ch === '\\' && !raw) {
        pos++;
        const esc = text[pos];
        const simple: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', "'": "'", '"': '"', '0': '\0', a: '\x07', b: '\b', f: '\f', v: '\v' };
        if (esc === undefined) return fail('unterminated escape');
        if (esc in simple) {
          out += simple[esc];
          pos++;
        } else if (esc === 'x' || esc === 'u' || esc === 'U') {
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
      out += ch;
      pos++;
    }
    if (pos >= text.length) fail('unterminated string');
    pos++;
    return out;
  };

  const parseNumber = (): number => {
    const match = /^[+-]?(?:\d[\d_]*(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)[lL]?/.exec(text.slice(pos));
    if (!match) return fail('expected a value');
    pos += match[0].length;
    const literal = match[0].replace(/[lL]$/, '').replace(/_/g, '');
    const value = Number(literal);
    if (!Number.isFinite(value)) fail('number out of range');
    return value;
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
      skipSpace();
      while (text[pos] !== '}') {
        const key = parseValue(depth + 1);
        if (typeof key !== 'string') fail('dict keys must be strings');
        skipSpace();
        if (text[pos] !== ':') fail("expected ':'");
        pos++;
        if (entries.has(key as string)) fail(`duplicate key '${key as string}'`);
        entries.set(key as string, parseValue(depth + 1));
        skipSpace();
        if (text[pos] === ',') {
          pos++;
          skipSpace();
        } else if (text[pos] !== '}') {
          fail("expected ',' or '}'");
        }
      }
      pos++;
      return new PyDict(entries);
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
    if (ch === "'" || ch === '"' || (/[bBuUrR]/.test(ch) && /^[bBuUrR]{1,2}['"]/.test(text.slice(pos, pos + 3)))) {
      return parseString();
    }
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
