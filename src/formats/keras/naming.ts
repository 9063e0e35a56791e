/**
 * How Keras 3 names things in a weights file, written once for the readers, the writers and
 * the tfjs glue: the snake-case group name of a layer class, the de-duplication of those
 * names in model order (`dense`, `dense_1`, ...), the natural order of group names, and where
 * a layer's variables sit (its own `vars`, or its cell's for a recurrent layer).
 */
import { kerasClassName } from './config.js';

/** The Keras 3 group name of a class: `to_snake_case` from keras/src/utils/naming.py. */
export function kerasSnakeCase(name: string): string {
  const step = name.replace(/(.)([A-Z][a-z]+)/g, '$1_$2').replace(/\W+/g, '');
  return step.replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase();
}

/**
 * The Keras 3 group name of each layer, given the tfjs class names of a model's layers in
 * order: the snake-case class name, de-duplicated in order as Keras 3 auto-names layers
 * (`dense`, `dense_1`, `dense_2`). Input layers have no group (undefined).
 */
export function keras3LayerNames(tfjsClassNames: readonly string[]): (string | undefined)[] {
  const counts = new Map<string, number>();
  return tfjsClassNames.map((className) => {
    if (className === 'InputLayer') return undefined;
    const base = kerasSnakeCase(kerasClassName(className));
    const n = counts.get(base) ?? 0;
    counts.set(base, n + 1);
    return n === 0 ? base : `${base}_${n}`;
  });
}

/** Natural order for Keras 3 group names: dense, dense_1, dense_2, ..., dense_10. */
export function naturalCompare(a: string, b: string): number {
  const split = (s: string) => s.split(/(\d+)/).map((part, i) => (i % 2 ? Number(part) : part));
  const pa = split(a);
  const pb = split(b);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i];
    const y = pb[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    if (x === y) continue;
    if (typeof x === 'number' && typeof y === 'number') return x - y;
    return String(x) < String(y) ? -1 : 1;
  }
  return 0;
}

/**
 * A layer's weights in a Keras 3 weights file, by its group name below `layers/`: the
 * group's own `vars`, or, for a recurrent layer (whose variables belong to its cell), those of
 * `<name>/cell` (Keras 3 saves `layers/gru/cell/vars/0..2` and an empty `layers/gru/vars`).
 */
export function keras3LayerWeights<T extends { name: string; weights: unknown[] }>(byPath: Map<string, T>, name: string): T | undefined {
  const own = byPath.get(name);
  if (own && own.weights.length > 0) return own;
  return byPath.get(`${name}/cell`) ?? own;
}
