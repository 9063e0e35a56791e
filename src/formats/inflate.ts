/**
 * Streaming inflation of zip members that stops when its consumer has what it wants: the
 * async inflater over a zip source, and the synchronous prefix inflater (node:zlib has no
 * synchronous streaming API). Used by zip.ts's member readers and npz-member.ts, so that no
 * read inflates more of a member than the caller asked for.
 */
import * as zlib from 'node:zlib';

import { TensorioError } from '../errors.js';
import type { ZipSource } from './zip.js';

// Compressed bytes read per step while inflating: memory stays bounded by this, not the member.
const INFLATE_SLICE = 4 << 20;

function badZip(path: string, what: string): TensorioError {
  return new TensorioError('ERR_BAD_ZIP', what, { path });
}

// Output chunk of the streaming inflater: also the most it produces past the point where its
// consumer stops it.
const INFLATE_CHUNK = 1 << 20;
// The first compressed slice read; slices then double up to INFLATE_SLICE, so a consumer that
// wants only a member's first bytes reads little of a large member.
const FIRST_INFLATE_SLICE = 64 << 10;

/**
 * Inflates raw deflate data read from the source in slices (the next slice read while the
 * current one inflates), handing each output chunk (at most 1 MiB) to `take`. When `take`
 * returns false, inflation stops at once, whatever the stream still holds: zlib is destroyed
 * from inside its own callback, so it produces nothing more, and no further input is read. So
 * a consumer that wants a member's first bytes costs work in proportion to those bytes, not
 * to the member. `take` may throw (a TensorioError) to fail the read.
 * @returns true when the stream reached its end, false when `take` stopped it.
 * @throws TensorioError `ERR_BAD_ZIP` for data that is not deflate, or what `take` threw.
 */
export async function inflateChunks(source: ZipSource, start: number, length: number, name: string, path: string, take: (chunk: Uint8Array) => boolean): Promise<boolean> {
  const inflate = zlib.createInflateRaw({ chunkSize: INFLATE_CHUNK });
  let failure: unknown;
  let stopped = false;
  let ended = false;
  const halt = (): void => {
    inflate.destroy();
  };
  inflate.on('data', (chunk: Buffer) => {
    if (failure !== undefined || stopped) return;
    try {
      if (!take(chunk)) {
        stopped = true;
        halt();
      }
    } catch (error) {
      failure = error;
      halt();
    }
  });
  const finished = new Promise<void>((resolve) => {
    inflate.on('error', (error) => {
      failure ??= new TensorioError('ERR_BAD_ZIP', `member '${name}' is not valid deflate data: ${error.message}`, { path, cause: error });
      halt();
    });
    inflate.on('end', () => {
      ended = true;
      resolve();
    });
    inflate.on('close', resolve);
  });
  let sliceLength = FIRST_INFLATE_SLICE;
  const slice = (at: number): Promise<Uint8Array> => {
    const read = source.readAsync(start + at, Math.min(sliceLength, length - at), `member '${name}'`);
    sliceLength = Math.min(INFLATE_SLICE, sliceLength * 2);
    return read;
  };
  let next = length > 0 ? slice(0) : undefined;
  for (let at = 0; next && failure === undefined && !stopped; ) {
    const input = await next;
    at += input.length;
    next = at < length && !stopped ? slice(at) : undefined;
    if (failure !== undefined || stopped) break;
    if (!inflate.write(input)) {
      await new Promise<void>((resolve) => {
        inflate.once('drain', resolve);
        inflate.once('close', resolve);
      });
    }
  }
  await next?.catch(() => undefined); // a read still in flight after a stop or failure
  if (failure === undefined && !stopped) inflate.end();
  await finished;
  if (failure !== undefined) throw failure;
  return ended && !stopped;
}

/**
 * The first bytes of a raw deflate stream held in memory: at least `want` bytes (fewer only
 * when the whole stream holds fewer), at most `want` plus max(`want`, 64 KiB). node:zlib has
 * no synchronous streaming inflater, and its one-shot inflate either inflates everything or,
 * past `maxOutputLength`, throws without output; so this inflates ever longer prefixes of the
 * input (a prefix inflates as far as it goes with a sync flush), each capped at the bound,
 * doubling, then halving the interval, until one ends inside the wanted range. Each attempt
 * costs at most the bound, so a stream that inflates to gigabytes past what is wanted costs
 * some twenty small inflates, never the gigabytes.
 * @throws TensorioError `ERR_BAD_ZIP` for data that is not deflate.
 */
export function inflatePrefixSync(raw: Uint8Array, want: number, name: string, path: string): Uint8Array {
  const cap = want + Math.max(want, 64 << 10);
  const attempt = (k: number): Uint8Array | undefined => {
    try {
      const out = zlib.inflateRawSync(raw.subarray(0, k), { finishFlush: zlib.constants.Z_SYNC_FLUSH, maxOutputLength: cap });
      return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
    } catch (error) {
      if ((error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') return undefined;
      throw new TensorioError('ERR_BAD_ZIP', `member '${name}' is not valid deflate data: ${(error as Error).message}`, { path, cause: error });
    }
  };
  // Invariant: prefix `low` inflates to fewer than `want` bytes; prefix `high` (when set) to more than `cap`.
  let low = 0;
  let high: number | undefined;
  let k = Math.min(raw.length, Math.max(64, Math.ceil(want / 8)));
  for (;;) {
    const out = attempt(k);
    if (out !== undefined && (out.length >= want || k === raw.length)) return out;
    if (out === undefined) high = k;
    else low = k;
    const nextK = high === undefined ? Math.min(raw.length, k * 2) : Math.floor((low + high) / 2);
    // Deflate emits at most ~258 bytes per code of a few bits, far less than the 64 KiB of
    // slack, so the interval cannot close without an attempt landing inside it.
    if (nextK <= low || nextK === high) throw badZip(path, `member '${name}': cannot find where its first ${want} bytes end in the deflate stream`);
    k = nextK;
  }
}
