/**
 * The types `load` returns, chosen by the path's extension (template literal types), so that
 * code written as with NumPy compiles without casts: `const [x, y] = await load('xy.npz')`
 * and `(await load('d.safetensors')).x` both type-check.
 *
 * An `.npz`, `.safetensors` or `.h5` file is loaded as a list when its members are exactly
 * arr_0 ... arr_{n-1} (`0` ... `n-1` in HDF5), else as a record, and only the file says which.
 * {@link LoadedArrays} therefore types both uses: iterating (destructuring) and indexing by
 * name. It is an interface, not `Array & Record`, so `Array.isArray(v)` still narrows both
 * ways at run time instead of leaving `never` in the else branch.
 */
import type { LoadedArray } from './ndarray.js';
import type { PyObject } from './formats/pickle/values.js';

/** What `load` returns for `.npz`, `.safetensors` and `.h5`: a list or a record of arrays (see the module notes). */
export interface LoadedArrays {
  readonly [name: string]: LoadedArray;
  [Symbol.iterator](): IterableIterator<LoadedArray>;
}

/**
 * What `load` returns for a pickled `.npy` with `allowPickle: true`: the Python structure
 * (see {@link PyObject}). `np.save` of a list gives an Array, of a dict a record; typed so
 * both compile. Narrow with `Array.isArray`, `typeof` or `instanceof` where the file may hold either.
 */
export interface LoadedPickle {
  readonly [key: string]: PyObject;
  readonly length: number;
  [Symbol.iterator](): IterableIterator<PyObject>;
}

/** Paths `load` reads as one array (or, with `allowPickle`, a pickled object array). */
export type NpyPath = `${string}.npy`;
/** Paths `load` reads as a list or record of arrays. */
export type ArraysPath = `${string}.npz` | `${string}.safetensors` | `${string}.safetensors.index.json` | `${string}.h5` | `${string}.hdf5`;
