/**
 * The tar container under torch's oldest layout (tar-layout.ts): a walker over the 512-byte
 * headers of a POSIX (ustar, pax) or GNU tar archive that lists its members and where their
 * data lies, reading no data but pax and GNU long-name records. What Python's tarfile writes
 * (torch used `tarfile.open(mode='w:', format=PAX_FORMAT)`) and reads back: checksums checked,
 * sizes in octal or base-256, pax `path`/`size` records, the ustar name prefix.
 */
import { TensorioError } from '../../errors.js';
import { type Reads } from '../../io/source.js';

/** One member of a tar archive. */
export interface TarMember {
  readonly name: string;
  /** The header's type flag: '0' a regular file ('\0' and '7' are read as '0'), '5' a folder, ... */
  readonly type: string;
  /** Where the member's data starts (after its header). */
  readonly offset: number;
  readonly size: number;
}

/** The archive's members and whether it ended with its end-of-archive block. */
export interface TarDirectory {
  readonly members: TarMember[];
  /** False when the file ended where a header could start, without the zero block tar writes last. */
  readonly ended: boolean;
}

const BLOCK = 512;
/** A torch tar has four members (and perhaps a pax header each); more headers than this are not one. */
const MAX_HEADERS = 1024;
/** Largest pax or GNU long-name record read. */
const MAX_RECORD = 1 << 20;

const latin1 = new TextDecoder('latin1');

function bad(path: string, what: string): TensorioError {
  return new TensorioError('ERR_BAD_HEADER', `malformed tar archive: ${what}`, { path });
}

/** A NUL-terminated field. */
function text(bytes: Uint8Array, start: number, length: number): string {
  const field = bytes.subarray(start, start + length);
  const nul = field.indexOf(0);
  return latin1.decode(nul < 0 ? field : field.subarray(0, nul));
}

/** A numeric field: octal digits (NUL or space padded), or GNU's base-256 when the high bit of its first byte is set. */
function number(header: Uint8Array, start: number, length: number, what: string, at: number, path: string): number {
  const field = header.subarray(start, start + length);
  const first = field[0] as number;
  if (first & 0x80) {
    if (first === 0xff) throw bad(path, `the ${what} of the header at offset ${at} is negative`);
    let value = 0n;
    for (const byte of field.subarray(1)) value = (value << 8n) | BigInt(byte);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(path, `the ${what} of the header at offset ${at} is beyond any real file`);
    return Number(value);
  }
  const digits = text(header, start, length).trim();
  if (!/^[0-7]*$/.test(digits)) throw bad(path, `the ${what} of the header at offset ${at} is not an octal number: '${digits.slice(0, 12)}'`);
  return digits === '' ? 0 : parseInt(digits, 8);
}

/** The header checksum: the sum of its bytes with the checksum field read as spaces (tarfile accepts the signed sum too). */
function checkChecksum(header: Uint8Array, at: number, path: string): void {
  const stored = number(header, 148, 8, 'checksum', at, path);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : (header[i] as number);
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  if (stored !== unsigned && stored !== signed) throw bad(path, `the header at offset ${at} has checksum ${stored}, its bytes sum to ${unsigned}`);
}

/** The `path` and `size` records of a pax extended header ("<length> <key>=<value>\n" each). */
function paxRecords(data: Uint8Array, at: number, path: string): { name?: string; size?: number } {
  const out: { name?: string; size?: number } = {};
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    const length = space < 0 ? NaN : Number(latin1.decode(data.subarray(pos, space)));
    if (!Number.isSafeInteger(length) || length <= space - pos + 1 || pos + length > data.length || data[pos + length - 1] !== 0x0a) {
      throw bad(path, `the pax header at offset ${at} has a malformed record at byte ${pos}`);
    }
    const record = new TextDecoder().decode(data.subarray(space + 1, pos + length - 1));
    const eq = record.indexOf('=');
    if (eq < 0) throw bad(path, `the pax header at offset ${at} has a record without '='`);
    const key = record.slice(0, eq);
    const value = record.slice(eq + 1);
    if (key === 'path') out.name = value;
    if (key === 'size') {
      if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(Number(value))) throw bad(path, `the pax header at offset ${at} gives size '${value.slice(0, 20)}'`);
      out.size = Number(value);
    }
    pos += length;
  }
  return out;
}

/**
 * Lists the archive's members. Every header is bounds-checked and checksummed, and every
 * member's data must lie inside the file, before anything else is read.
 * @throws TensorioError `ERR_BAD_HEADER` (a bad checksum, field or record, too many headers),
 * `ERR_TRUNCATED` (a header or a member's data past the end), `ERR_UNSUPPORTED_VERSION` (a pax
 * global header that sets a path or size).
 */
export function* tarDirectory(size: number, path: string): Reads<TarDirectory> {
  const members: TarMember[] = [];
  // What a pax extended header or a GNU long name says of the next member.
  let next: { name?: string; size?: number } = {};
  let at = 0;
  for (let headers = 0; at < size; headers++) {
    if (headers >= MAX_HEADERS) throw bad(path, `more than ${MAX_HEADERS} headers (a torch.save tar has four members)`);
    const header = yield [at, Math.min(BLOCK, size - at), 'tar header'];
    // The end block, perhaps cut short (tar pads the archive with zeros after it).
    if (header.every((b) => b === 0)) return { members, ended: true };
    if (header.length < BLOCK) throw new TensorioError('ERR_TRUNCATED', `file ends inside the tar header at offset ${at}: ${BLOCK} bytes needed, ${size - at} left`, { path });
    checkChecksum(header, at, path);
    const flag = String.fromCharCode(header[156] as number);
    const type = flag === '\0' || flag === '7' ? '0' : flag;
    let name = text(header, 0, 100);
    // POSIX ustar ("ustar\0") keeps a name prefix at 345; GNU's "ustar  \0" uses those bytes for times.
    if (latin1.decode(header.subarray(257, 263)) === 'ustar\0' && header[345] !== 0) name = `${text(header, 345, 155)}/${name}`;
    const length = next.size ?? number(header, 124, 12, 'size', at, path);
    name = next.name ?? name;
    const offset = at + BLOCK;
    if (offset + length > size) {
      throw new TensorioError('ERR_TRUNCATED', `file ends inside tar member '${name}': ${length} bytes at offset ${offset}, the file has ${size}`, { path });
    }
    at = offset + Math.ceil(length / BLOCK) * BLOCK;
    if (type === 'x' || type === 'g' || type === 'L') {
      if (length > MAX_RECORD) throw bad(path, `the ${type === 'L' ? 'long name' : 'pax header'} at offset ${offset - BLOCK} is ${length} bytes, over ${MAX_RECORD}`);
      const data = yield [offset, length, 'tar extended header'];
      if (type === 'L') next = { ...next, name: text(data, 0, data.length) };
      else if (type === 'x') next = { ...next, ...paxRecords(data, offset - BLOCK, path) };
      else if (Object.keys(paxRecords(data, offset - BLOCK, path)).length > 0) {
        // A global header would apply its path or size to every member after it.
        throw new TensorioError('ERR_UNSUPPORTED_VERSION', `the tar archive has a pax global header at offset ${offset - BLOCK} that sets a path or size`, { path });
      }
      continue;
    }
    members.push({ name, type, offset, size: length });
    next = {};
  }
  return { members, ended: false };
}
