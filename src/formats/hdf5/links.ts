/**
 * HDF5 external links (`h5py.ExternalLink`, `H5Lcreate_external`): how tensorio reports them.
 *
 * tensorio does not follow them. A link names another file by a path that HDF5 resolves
 * against HDF5_EXT_PREFIX, the link access property list, the linking file's folder and the
 * process's working directory, in that order: following one would read a file the caller
 * never named, anywhere on the disk. So an external link is neither a group nor a dataset of
 * the file: `keys()` lists its name (as h5py does), `datasets()` does not, `readH5` leaves it
 * out, `externalLink(path)` and `externalLinks()` report where it points, and reading it is
 * `ERR_NOT_FOUND_IN_ARCHIVE` naming the target, which the caller may open themselves.
 */
import { TensorioError } from '../../errors.js';

/** Where an external link points: a file name as stored in the link, and a path in that file. */
export interface H5ExternalLink {
  /** The link's full path in this file (no leading slash). */
  path: string;
  /** The target file, as the link stores it (often relative: HDF5 resolves it as above). */
  file: string;
  /** The object's path in the target file, as the link stores it (h5py writes it absolute). */
  target: string;
}

/**
 * Decodes an external link's value (link message, spec IV.A.2.g): a version and flags byte
 * (0), then the file name and the object path, each NUL-terminated.
 */
export function decodeExternalLink(value: Uint8Array, linkPath: string, file: string): H5ExternalLink {
  const bad = () => new TensorioError('ERR_BAD_HEADER', `external link '${linkPath}': its value is not a version 0 file name and object path`, { path: file });
  if (value.length < 3 || ((value[0] as number) & 0xf0) !== 0) throw bad();
  const end = value.indexOf(0, 1);
  const end2 = end < 0 ? -1 : value.indexOf(0, end + 1);
  if (end < 0 || end2 < 0) throw bad();
  return { path: linkPath, file: Buffer.from(value.subarray(1, end)).toString('utf8'), target: Buffer.from(value.subarray(end + 1, end2)).toString('utf8') };
}

/** The error for reading an external link as a dataset or a group. */
export function externalLinkRead(link: H5ExternalLink, file: string, wanted: string): TensorioError {
  return new TensorioError(
    'ERR_NOT_FOUND_IN_ARCHIVE',
    `'${link.path}' is not a ${wanted} of this file but an external link to '${link.target}' in '${link.file}'; tensorio does not follow external links: open that file to read it`,
    { path: file },
  );
}
