/**
 * HDF5 datatypes as tensorio maps them to its dtypes: h5wasm's metadata record, the datatype
 * classes, and the shapes h5py gives bool (an enum) and complex (a compound) checked before
 * the type is looked up in the HDF5 column of the dtype table (src/dtype.ts).
 */
import { dtypeFromHdf5, type DTypeInfo } from '../../dtype.js';

/** The part of h5wasm's metadata record tensorio uses. */
export interface H5Metadata {
  type: number;
  size: number;
  signed: boolean;
  littleEndian: boolean;
  vlen: boolean;
  shape: number[] | null;
  total_size: number;
  chunks: number[] | null;
  enum_type?: { members: Record<string, number>; nmembers: number; type: number };
  compound_type?: { members: (H5Metadata & { name: string; offset: number })[]; nmembers: number };
}

// HDF5 datatype classes (H5T_class_t).
export const H5T_INTEGER = 0;
export const H5T_FLOAT = 1;
export const H5T_STRING = 3;
export const H5T_COMPOUND = 6;
export const H5T_ENUM = 8;

/**
 * The tensorio dtype of an HDF5 type, as h5py maps it: integers and floats by size, an
 * int8 enum {FALSE, TRUE} is bool, a compound of two equal floats named r and i is complex.
 * Returns null for types that are not numeric arrays (strings, references, other compounds).
 */
export function dtypeOfMetadata(meta: H5Metadata): DTypeInfo | null {
  if (meta.type === H5T_INTEGER || meta.type === H5T_FLOAT) return dtypeFromHdf5(meta.type, meta.size, meta.signed) ?? null;
  if (meta.type === H5T_ENUM && meta.size === 1 && meta.enum_type) {
    const members = meta.enum_type.members;
    const names = Object.keys(members);
    if (names.length === 2 && members.FALSE === 0 && members.TRUE === 1) return dtypeFromHdf5(H5T_ENUM, 1, false) ?? null;
    return null;
  }
  if (meta.type === H5T_COMPOUND && meta.compound_type && meta.compound_type.nmembers === 2) {
    const [re, im] = meta.compound_type.members;
    if (!re || !im || re.type !== H5T_FLOAT || im.type !== H5T_FLOAT || re.size !== im.size) return null;
    if (re.name !== 'r' || im.name !== 'i' || re.offset !== 0 || im.offset !== re.size || meta.size !== 2 * re.size) return null;
    return dtypeFromHdf5(H5T_COMPOUND, meta.size, false) ?? null;
  }
  return null;
}
