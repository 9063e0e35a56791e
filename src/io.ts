/**
 * The former home of file access, kept during the reorganisation of issue 13 as a re-export
 * of src/io/* so that imports not yet switched keep compiling. Import from src/io/<module>.js.
 */
export * from './io/read.js';
export * from './io/map.js';
export * from './io/atomic-writer.js';
export * from './io/source.js';
export * from './io/kernels.js';
