/**
 * HDF5 datatypes as tensorio maps them to its dtypes (moved out of h5.ts unchanged): h5wasm's
 * metadata record, the datatype classes, and h5py's mapping of types to NumPy dtypes.
 */
import { dtypeInfo, type DType, type DTypeInfo } from '../../dtype.js';

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
  if (meta.type === H5T_INTEGER) {
    const name = ({ 1: 'int8', 2: 'int16', 4: 'int32', 8: 'int64' } as Record<number, DType>)[meta.size];
    if (!name) return null;
    return dtypeInfo(meta.signed ? name : (`u${name}` as DType));
  }
  if (meta.type === H5T_FLOAT) {
    const name = ({ 2: 'float16', 4: 'float32', 8: 'float64' } as Record<number, DType>)[meta.size];
    return name ? dtypeInfo(name) : null;
  }
  if (meta.type === H5T_ENUM && meta.size === 1 && meta.enum_type) {
    const members = meta.enum_type.members;
    const names = Object.keys(members);
    if (names.length === 2 && members.FALSE === 0 && members.TRUE === 1) return dtypeInfo('bool');
    return null;
  }
  if (meta.type === H5T_COMPOUND && meta.compound_type && meta.compound_type.nmembers === 2) {
    const [re, im] = meta.compound_type.members;
    if (!re || !im || re.type !== H5T_FLOAT || im.type !== H5T_FLOAT || re.size !== im.size) return null;
    if (re.name !== 'r' || im.name !== 'i' || re.offset !== 0 || im.offset !== re.size || meta.size !== 2 * re.size) return null;
    if (re.size === 4) return dtypeInfo('complex64');
    if (re.size === 8) return dtypeInfo('complex128');
  }
  return null;
}

