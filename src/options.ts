/**
 * Option checking for the public functions: an options object may hold only the options the
 * function knows, so a misspelling (`allowPickel`) is `ERR_INVALID_ARGUMENT` naming the known
 * options instead of being ignored (and a pickled file then refused for the wrong reason, or a
 * limit silently left at its default).
 *
 * Each function's list is written once, beside the function, with {@link keysOf}: typed
 * against its options interface, so a list that misses or adds a key does not compile and the
 * lists follow the interfaces. Keys whose value is `undefined` are accepted
 * (`{ mmap: flag ? true : undefined }`).
 */
import { TensorioError } from './errors.js';

/** The keys of an options interface, as a list the compiler checks against the interface. */
export function keysOf<T>(keys: { [K in keyof Required<T>]: true }): readonly string[] {
  return Object.keys(keys);
}

/**
 * Throws `ERR_INVALID_ARGUMENT` unless `options` is undefined or an object whose keys (with a
 * defined value) are all in `known`; the message names the function, the unknown key, the
 * closest known one and the whole list.
 */
export function checkOptions(options: unknown, known: readonly string[], fn: string, path?: string): void {
  if (options === undefined) return;
  const details = path === undefined ? {} : { path };
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TensorioError('ERR_INVALID_ARGUMENT', `${fn}: options must be an object, not ${options === null ? 'null' : Array.isArray(options) ? 'an array' : typeof options}`, details);
  }
  for (const key of Object.keys(options)) {
    if (known.includes(key) || (options as Record<string, unknown>)[key] === undefined) continue;
    const near = closest(key, known);
    throw new TensorioError(
      'ERR_INVALID_ARGUMENT',
      `${fn}: unknown option '${key}'${near ? ` (did you mean '${near}'?)` : ''}; known options: ${known.length > 0 ? known.join(', ') : 'none'}`,
      details,
    );
  }
}

/** The known key within edit distance 2 of `key` (case ignored), if any. */
function closest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of known) {
    const d = distance(key.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min((previous[j] as number) + 1, (row[j - 1] as number) + 1, (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = row;
  }
  return previous[b.length] as number;
}
