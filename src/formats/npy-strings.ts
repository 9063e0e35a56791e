/**
 * The old home of NumPy's string arrays, kept while other modules still import it: a re-export
 * of src/formats/numpy/strings.ts.
 */
export * from './numpy/strings.js';
