/**
 * ObjectArray: an n-dimensional NumPy object array to write (`np.save` of
 * `np.empty((2, 3), dtype=object)`, or of its `.T`). NumPy pickles an object array's elements
 * in C (logical) order whatever its memory order: `ndarray.__reduce__` builds the list with
 * an array iterator (`_getlist_pkl` in numpy/_core/src/multiarray/methods.c), and
 * `__setstate__` fills the new array with the same iterator, so the `is_fortran` flag (and the
 * .npy header's `fortran_order`) only chooses the memory layout of the rebuilt array. The
 * reader follows the same rule (values.ts, `nest`).
 */
import { TensorioError } from '../../errors.js';
import { shapeSize } from '../../ndarray.js';

/** An object array for {@link objectArray}: `items` in C (logical) order. */
export interface ObjectArray<T = unknown> {
  readonly kind: 'object-array';
  readonly shape: readonly number[];
  /** The elements in C (row-major, logical) order, as NumPy pickles them. */
  readonly items: readonly T[];
  /** The memory order NumPy rebuilds the array in (`fortran_order`). Default 'C'. */
  readonly order: 'C' | 'F';
}

/** Flattens nested Arrays following `shape` in C order; undefined when they do not fit it. */
function flatten(nested: unknown, shape: readonly number[], axis: number, out: unknown[]): boolean {
  if (axis === shape.length) {
    out.push(nested);
    return true;
  }
  if (!Array.isArray(nested) || nested.length !== shape[axis]) return false;
  for (const item of nested) if (!flatten(item, shape, axis + 1, out)) return false;
  return true;
}

/**
 * An object array NumPy reads back with this shape, these elements and this memory order:
 * `save('a.npy', objectArray(nested, [30, 50]))` writes what `np.save` writes for an object
 * array of shape (30, 50), and `order: 'F'` what it writes for a Fortran-ordered one (its
 * `.T`, say). `values` are the elements nested following `shape` (what `load` returns for an
 * n-d object array; tried first), or flat in C (logical) order; for shape `[]`, `[element]`. Elements are anything `save` pickles.
 * @throws TensorioError `ERR_SHAPE_MISMATCH` when `values` do not fit `shape`,
 * `ERR_INVALID_ARGUMENT` for a bad shape or order.
 */
export function objectArray<T>(values: readonly unknown[], shape: readonly number[], order: 'C' | 'F' = 'C'): ObjectArray<T> {
  if (order !== 'C' && order !== 'F') throw new TensorioError('ERR_INVALID_ARGUMENT', `order must be 'C' or 'F', got '${String(order)}'`);
  const size = shapeSize(shape);
  // Nested following the shape first (load's form); else flat. A 0-d array is [element].
  let items: unknown[] = [];
  if (shape.length === 0 || !flatten(values, shape, 0, items)) {
    if (values.length !== size) {
      throw new TensorioError('ERR_SHAPE_MISMATCH', `the values fit neither shape (${shape.join(', ')}) as nested lists nor its ${size} elements flat (got ${values.length})`);
    }
    items = [...values];
  }
  return Object.freeze({ kind: 'object-array', shape: Object.freeze([...shape]), items: Object.freeze(items) as readonly T[], order });
}

/** True for a value made by {@link objectArray}. */
export function isObjectArray(value: unknown): value is ObjectArray {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'object-array' && Array.isArray((value as ObjectArray).items);
}
