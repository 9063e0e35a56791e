/**
 * The one interface of an HDF5 structure reader, which {@link H5File} (file.ts) reads
 * through: tensorio's own reader (own-reader.ts) and h5wasm's (h5wasm.ts) both implement it,
 * so the file object never asks which one it has. Paths are normalised (no leading or
 * trailing slash, '' for the root group).
 */
import { TensorioError } from '../../errors.js';
import type { NdArray } from '../../ndarray.js';
import type { HeaderMessage } from './format.js';
import type { H5ExternalLink } from './links.js';
import type { H5Metadata } from './types.js';

/** What a path names. */
export type ObjectKind = 'group' | 'dataset' | 'other' | 'external' | 'missing';

/** An attribute's value as tensorio returns it: strings, numbers, or an NdArray. */
export type H5AttributeValue = string | string[] | number | bigint | boolean | NdArray | null;

export interface StructureReader {
  /** What `p` names ('missing' when nothing). */
  kind(p: string): ObjectKind;
  /** The names in the group `p` (known to be a group), in the file's order; the caller copies. */
  children(group: string): string[];
  /** The target of the external link at `p` (known to be one). */
  externalLink(p: string): H5ExternalLink | undefined;
  /** @throws TensorioError `ERR_NOT_FOUND_IN_ARCHIVE` when there is no object `p`. */
  attributeNames(p: string): string[];
  /** An attribute's value, undefined when the object has none of that name. */
  attribute(p: string, name: string): H5AttributeValue | undefined;
  /** The type and shape of the dataset `p` (known to be a dataset), as h5wasm describes them. */
  metadata(p: string): H5Metadata;
  /** The messages of the object header of `p` (a dataset). */
  header(p: string): HeaderMessage[];
}

/** The error for a path that names no object. */
export function notFound(file: string, p: string): TensorioError {
  return new TensorioError('ERR_NOT_FOUND_IN_ARCHIVE', `no object '${p}' in the file`, { path: file });
}
