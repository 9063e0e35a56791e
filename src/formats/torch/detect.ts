/**
 * Which layout a PyTorch file has (zip, legacy or tar), from its first bytes: the sniff the format registry uses
 * (`looksLikeTorch`), and the walker that opens the file in its layout.
 */
import { TensorioError } from '../../errors.js';
import { type Reads } from '../../io/source.js';
import { type FileFacts, type Layout } from './layout.js';
import { legacyLayout } from './legacy-layout.js';
import { looksLikeTorchTar, tarLayout } from './tar-layout.js';
import { type TorchReadOptions } from './types.js';
import { zipLayout } from './zip-layout.js';

/**
 * True when the first bytes look like a PyTorch file: a zip, a legacy pickle of torch's magic
 * number, or torch's tar (its header at 0, so at least 263 bytes are needed to tell).
 */
export function looksLikeTorch(prefix: Uint8Array): boolean {
  if (looksLikeTorchTar(prefix)) return true;
  if (prefix[0] === 0x50 && prefix[1] === 0x4b && prefix[2] === 0x03 && prefix[3] === 0x04) return true;
  // Protocol 2: PROTO 2, LONG1 of 10 bytes, the magic's little-endian bytes.
  const p2 = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
  if (p2.every((b, i) => prefix[i] === b)) return true;
  // Protocols 0 and 1 write the magic as a text LONG.
  return new TextDecoder('latin1').decode(prefix.subarray(0, 27)) === 'L119547037146038801333356L\n';
}

/** Opens the file in the layout its first bytes (`prefix`) show. */
export function* readLayout(file: FileFacts, prefix: Uint8Array, options: TorchReadOptions): Reads<Layout> {
  const path = file.path;
  if (prefix[0] === 0x50 && prefix[1] === 0x4b) return yield* zipLayout(file, options);
  // Tried before the legacy pickles, as torch.load does; any tar, not only one whose first
  // header is torch's: the tar walker says what is wrong with it.
  if (new TextDecoder('latin1').decode(prefix.subarray(257, 262)) === 'ustar') return yield* tarLayout(file, options);
  if (looksLikeTorch(prefix)) return yield* legacyLayout(file, options);
  throw new TensorioError('ERR_BAD_MAGIC', 'not a PyTorch file: neither a zip archive, a tar archive nor a legacy pickle of torch\'s magic number', { path });
}
