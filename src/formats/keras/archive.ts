/**
 * Keras 3 `.keras` archives: a ZIP holding config.json, metadata.json and model.weights.h5,
 * read with the ZIP code the `.npz` reader uses (central directory, ZIP64, CRCs, bounded
 * inflation) over the one byte source.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';

import { TensorioError } from '../../errors.js';
import { writeAtomic } from '../../io/atomic-writer.js';
import { closeQuietly, openForRead } from '../../io/read.js';
import { ByteSource } from '../../io/source.js';
import { readCentralDirectorySync, readMemberSync, type ZipEntry } from '../zip.js';
import { decodeKerasWeights, readKerasWeights, type KerasWeightsFile } from './weights-h5.js';

/** A `.keras` archive open for reading. */
export class KerasArchive {
  private constructor(
    readonly path: string,
    private readonly fd: number,
    private readonly source: ByteSource,
    private readonly members: Map<string, ZipEntry>,
  ) {}

  /**
   * Opens the archive and reads its central directory.
   * @throws TensorioError `ERR_BAD_ZIP` when the file is not a ZIP archive or its
   * directory lies outside the file.
   */
  static open(path: string): KerasArchive {
    const { fd, size } = openForRead(path);
    try {
      const source = ByteSource.ofFile(fd, size, path);
      const members = new Map(readCentralDirectorySync(source, path).map((entry) => [entry.name, entry]));
      return new KerasArchive(path, fd, source, members);
    } catch (error) {
      closeQuietly(fd);
      // The ZIP reader calls an archive without its directory truncated (right for a cut
      // .npz); for a .keras file the documented answer is ERR_BAD_ZIP: not a usable archive.
      if (error instanceof TensorioError && error.code === 'ERR_TRUNCATED') {
        throw new TensorioError('ERR_BAD_ZIP', `not a usable .keras archive: ${error.message.replace(`${path}: `, '')}`, { path, cause: error });
      }
      throw error;
    }
  }

  /** True when the archive has a member of that name. */
  has(name: string): boolean {
    return this.members.has(name);
  }

  /**
   * A member's bytes, CRC checked.
   * @throws TensorioError `ERR_NOT_FOUND_IN_ARCHIVE`, `ERR_BAD_ZIP`, `ERR_CRC_MISMATCH`.
   */
  read(name: string): Uint8Array {
    const member = this.members.get(name);
    if (!member) throw new TensorioError('ERR_NOT_FOUND_IN_ARCHIVE', `no member '${name}' in the archive`, { path: this.path });
    return readMemberSync(this.source, member, this.path);
  }

  close(): void {
    closeQuietly(this.fd);
  }
}

/**
 * The config.json text and the weights of a Keras 3 `.keras` archive. The weights member is
 * read in memory by tensorio's HDF5 structure reader; a member that needs h5wasm (which
 * opens files by path) is written to a private temporary folder, read, and removed.
 */
export async function readKerasArchive(path: string): Promise<{ config: Uint8Array; weights: KerasWeightsFile }> {
  const archive = KerasArchive.open(path);
  let tempDir: string | undefined;
  try {
    const config = archive.read('config.json');
    const member = archive.read('model.weights.h5');
    const memberName = `${path}!model.weights.h5`;
    try {
      return { config, weights: decodeKerasWeights(member, memberName) };
    } catch (error) {
      if (!(error instanceof TensorioError) || error.code !== 'ERR_NEEDS_H5WASM') throw error;
    }
    tempDir = fs.mkdtempSync(nodePath.join(os.tmpdir(), 'tensorio-keras-'));
    const weightsPath = nodePath.join(tempDir, 'model.weights.h5');
    await writeAtomic(weightsPath, [member], { fsync: false });
    // Read eagerly: the temporary copy is removed right after.
    const weights = await readKerasWeights(weightsPath);
    return { config, weights };
  } finally {
    archive.close();
    if (tempDir) fs.rmSync(tempDir, { recursive: true, force: true });
  }
}
