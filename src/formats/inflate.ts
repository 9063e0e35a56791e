/**
 * The old home of the bounded inflaters, kept while zip.ts still imports it: a re-export of
 * src/formats/numpy/inflate.ts.
 */
export * from './numpy/inflate.js';
