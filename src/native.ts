/**
 * The one place that loads the native addon. Everything else asks {@link native} and takes
 * the pure-TypeScript path when it is null.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

type Callback<T> = (error: Error | null, result?: T) => void;

/** The functions native/addon.cc exports. Byte-level only: no format knowledge. */
export interface NativeBinding {
  readonly abiVersion: number;
  map(fd: number, length: number, writable: boolean): ArrayBuffer;
  unmap(buffer: ArrayBuffer): boolean;
  sync(buffer: ArrayBuffer): void;
  isMapped(buffer: ArrayBuffer): boolean;
  liveMappings(): number;
  /**
   * A zero-filled ArrayBuffer for an eager read, in memory whose release the addon tracks
   * (see native/mapping.cc). Absent from addons built before it.
   */
  allocate?(length: number): ArrayBuffer;
  /** Bytes of {@link allocate}d buffers not yet freed, on this thread. */
  readBuffersHeld?(): number;
  open(path: string, writable: boolean, prefixLength: number, callback: (error: Error | null, fd?: number, size?: number, prefix?: ArrayBuffer) => void): void;
  read(fd: number, position: number, target: ArrayBufferView, callback: Callback<number>): void;
  /** With `partLength`, reads in parts of that many bytes at once, on threads (at most 16 parts). */
  readSync(fd: number, position: number, target: ArrayBufferView, partLength?: number): number;
  write(fd: number, position: number, chunks: ArrayBufferView[], callback: Callback<number>): void;
  writeSync(fd: number, position: number, chunks: ArrayBufferView[]): number;
  writeDirect(
    directFd: number,
    fd: number,
    position: number,
    chunks: ArrayBufferView[],
    callback: (error: Error | null, bytes?: number, directBytes?: number, refused?: boolean) => void,
  ): void;
  writeDirectSync(directFd: number, fd: number, position: number, chunks: ArrayBufferView[]): { bytes: number; directBytes: number; refused: boolean };
  /**
   * Writes through the page cache, starting each 16 MiB block's writeback at once and dropping
   * its pages two blocks later, for a write that is fsynced next (native/io_core.h,
   * WriteThrough). Absent from addons built before it.
   */
  writeThrough?(fd: number, position: number, chunks: ArrayBufferView[], callback: Callback<number>): void;
  writeThroughSync?(fd: number, position: number, chunks: ArrayBufferView[]): number;
  /**
   * Swaps two paths atomically (Linux renameat2 RENAME_EXCHANGE). False, with nothing
   * changed, where the system or file system cannot, or when `to` does not exist.
   */
  exchange(from: string, to: string): boolean;
  convert(name: string, src: ArrayBufferView, dst: ArrayBufferView): void;
  byteswap(bytes: ArrayBufferView, itemSize: number): void;
  features(): { f16c: boolean };
}

/** Whether the addon is in use, and if not, why. */
export interface NativeStatus {
  readonly loaded: boolean;
  /** Where the addon was loaded from, when it was. */
  readonly file?: string;
  /** Why the pure-TypeScript path is in use, when it is. */
  readonly reason?: string;
}

const EXPECTED_ABI = 3;

function packageRoot(): string {
  // dist/native.js and dist-test/src/native.js both sit below the package root.
  let dir = __dirname;
  for (let i = 0; i < 4; i++) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'native'))) return dir;
    dir = path.dirname(dir);
  }
  return path.resolve(__dirname, '..');
}

function load(): { binding: NativeBinding | null; status: NativeStatus } {
  if (process.env.TENSORIO_NO_NATIVE === '1') {
    return { binding: null, status: { loaded: false, reason: 'TENSORIO_NO_NATIVE=1 is set' } };
  }
  const root = packageRoot();
  const candidates = [path.join(root, 'build', 'Release', 'tensorio.node'), path.join(root, 'build', 'Debug', 'tensorio.node')];
  const failures: string[] = [];
  for (const file of candidates) {
    if (!fs.existsSync(file)) continue;
    try {
      const binding = require(file) as NativeBinding;
      if (binding.abiVersion !== EXPECTED_ABI) {
        failures.push(`${file} is a stale build (abi ${binding.abiVersion}, expected ${EXPECTED_ABI}); run npm run build:native`);
        continue;
      }
      return { binding, status: { loaded: true, file } };
    } catch (error) {
      failures.push(`${file}: ${(error as Error).message}`);
    }
  }
  const reason = failures.length > 0 ? failures.join('; ') : `no built addon under ${path.join(root, 'build')}`;
  // No warning on stderr: a library prints nothing its caller did not ask for. The install
  // script said why the build failed; nativeStatus() and every read's copyReason say it here.
  return { binding: null, status: { loaded: false, reason } };
}

const loaded = load();

/** The addon, or null on the pure-TypeScript path. */
export const native: NativeBinding | null = loaded.binding;

/** Whether the native addon is in use, where it came from, or why not. */
export function nativeStatus(): NativeStatus {
  return loaded.status;
}
