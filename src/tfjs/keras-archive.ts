/**
 * Just enough ZIP to open a Keras 3 `.keras` archive: the central directory, and members
 * stored (method 0, what Keras writes) or deflated (method 8, via node:zlib). Members are
 * read one at a time with positioned reads, bounded by the real file size.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { inflateRawSync } from 'node:zlib';

import { TensorioError } from '../errors.js';
import { readKerasWeights, type KerasWeightsFile } from '../formats/keras-h5.js';
import { closeQuietly, openForRead, readExactlySync, writeAtomic } from '../io.js';

interface Member {
  name: string;
  method: number;
  compressedSize: number;
  size: number;
  localHeader: number;
}

const EOCD_SIGNATURE = 0x06054b50;
const CENTRAL_SIGNATURE = 0x02014b50;
const LOCAL_SIGNATURE = 0x04034b50;
// Members of a .keras archive worth reading whole: config.json, metadata.json and the
// weights file. Anything larger than this would be hostile for JSON.
const MAX_MEMBERS = 10000;

/** A `.keras` archive open for reading. */
export class KerasArchive {
  private constructor(
    readonly path: string,
    private readonly fd: number,
    private readonly size: number,
    private readonly members: Map<string, Member>,
  ) {}

  /**
   * Opens the archive and reads its central directory.
   * @throws TensorioError `ERR_BAD_ZIP` when the file is not a ZIP archive or its
   * directory lies outside the file.
   */
  static open(path: string): KerasArchive {
    const { fd, size } = openForRead(path);
    try {
      const tailLength = Math.min(size, 22 + 65535);
      const tail = new Uint8Array(tailLength);
      readExactlySync(fd, size - tailLength, tail, path, 'ZIP end of central directory');
      const view = new DataView(tail.buffer);
      let eocd = -1;
      for (let i = tailLength - 22; i >= 0; i--) {
        if (view.getUint32(i, true) === EOCD_SIGNATURE) {
          eocd = i;
          break;
        }
      }
      if (eocd < 0) throw new TensorioError('ERR_BAD_ZIP', 'no ZIP end-of-central-directory record: not a .keras archive', { path });
      const count = view.getUint16(eocd + 10, true);
      const dirSize = view.getUint32(eocd + 12, true);
      const dirOffset = view.getUint32(eocd + 16, true);
      if (count > MAX_MEMBERS || dirOffset + dirSize > size) {
        throw new TensorioError('ERR_BAD_ZIP', `central directory of ${dirSize} bytes at ${dirOffset} (${count} members) does not fit the file of ${size} bytes`, { path });
      }
      const dir = new Uint8Array(dirSize);
      readExactlySync(fd, dirOffset, dir, path, 'ZIP central directory');
      const dv = new DataView(dir.buffer);
      const members = new Map<string, Member>();
      let at = 0;
      for (let i = 0; i < count; i++) {
        if (at + 46 > dirSize || dv.getUint32(at, true) !== CENTRAL_SIGNATURE) throw new TensorioError('ERR_BAD_ZIP', `bad central directory entry ${i}`, { path });
        const nameLength = dv.getUint16(at + 28, true);
        const extraLength = dv.getUint16(at + 30, true);
        const commentLength = dv.getUint16(at + 32, true);
        if (at + 46 + nameLength > dirSize) throw new TensorioError('ERR_BAD_ZIP', `central directory entry ${i} runs past the directory`, { path });
        const name = Buffer.from(dir.subarray(at + 46, at + 46 + nameLength)).toString('utf8');
        members.set(name, {
          name,
          method: dv.getUint16(at + 10, true),
          compressedSize: dv.getUint32(at + 20, true),
          size: dv.getUint32(at + 24, true),
          localHeader: dv.getUint32(at + 42, true),
        });
        at += 46 + nameLength + extraLength + commentLength;
      }
      return new KerasArchive(path, fd, size, members);
    } catch (error) {
      closeQuietly(fd);
      throw error;
    }
  }

  /** True when the archive has a member of that name. */
  has(name: string): boolean {
    return this.members.has(name);
  }

  /**
   * A member's bytes.
   * @throws TensorioError `ERR_NOT_FOUND_IN_ARCHIVE`, `ERR_BAD_ZIP`.
   */
  read(name: string): Uint8Array {
    const member = this.members.get(name);
    if (!member) throw new TensorioError('ERR_NOT_FOUND_IN_ARCHIVE', `no member '${name}' in the archive`, { path: this.path });
    const header = new Uint8Array(30);
    if (member.localHeader + 30 > this.size) throw new TensorioError('ERR_BAD_ZIP', `local header of '${name}' lies outside the file`, { path: this.path });
    readExactlySync(this.fd, member.localHeader, header, this.path, 'ZIP local header');
    const hv = new DataView(header.buffer);
    if (hv.getUint32(0, true) !== LOCAL_SIGNATURE) throw new TensorioError('ERR_BAD_ZIP', `bad local header for '${name}'`, { path: this.path });
    const start = member.localHeader + 30 + hv.getUint16(26, true) + hv.getUint16(28, true);
    if (start + member.compressedSize > this.size) throw new TensorioError('ERR_BAD_ZIP', `member '${name}' (${member.compressedSize} bytes at ${start}) runs past the end of the file`, { path: this.path });
    const raw = new Uint8Array(member.compressedSize);
    readExactlySync(this.fd, start, raw, this.path, `member '${name}'`);
    if (member.method === 0) return raw;
    if (member.method === 8) return new Uint8Array(inflateRawSync(raw, { maxOutputLength: Math.max(1, member.size) }));
    throw new TensorioError('ERR_BAD_ZIP', `member '${name}' uses compression method ${member.method}; expected 0 (stored) or 8 (deflate)`, { path: this.path });
  }

  close(): void {
    closeQuietly(this.fd);
  }
}

/** True when the file starts like a ZIP archive (a Keras 3 `.keras` file). */
export function isZipFile(path: string): boolean {
  const { fd, size } = openForRead(path);
  try {
    if (size < 4) return false;
    const head = new Uint8Array(4);
    readExactlySync(fd, 0, head, path, 'file signature');
    return head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04;
  } finally {
    closeQuietly(fd);
  }
}

/**
 * The config.json text and the weights of a Keras 3 `.keras` archive. h5wasm and the
 * structure reader open files by path, so the weights member is written to a private
 * temporary folder, read, and removed.
 */
export async function readKerasArchive(path: string): Promise<{ config: Uint8Array; weights: KerasWeightsFile }> {
  const archive = KerasArchive.open(path);
  let tempDir: string | undefined;
  try {
    const config = archive.read('config.json');
    tempDir = fs.mkdtempSync(nodePath.join(os.tmpdir(), 'tensorio-keras-'));
    const weightsPath = nodePath.join(tempDir, 'model.weights.h5');
    await writeAtomic(weightsPath, [archive.read('model.weights.h5')], { fsync: false });
    // Read eagerly: the temporary copy is removed right after.
    const weights = await readKerasWeights(weightsPath);
    return { config, weights };
  } finally {
    archive.close();
    if (tempDir) fs.rmSync(tempDir, { recursive: true, force: true });
  }
}
