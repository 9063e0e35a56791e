/**
 * What a CLI's `inspect` and `convert` need from a PyTorch checkpoint without loading it:
 * every global its pickles name (an opcode scan, like picklescan's, that builds and calls
 * nothing, so a file that would be refused is still reported in full), the tensors with
 * their storage placement, and the groups of tensors that share a storage (tied weights).
 */
import * as nodePath from 'node:path';

import { TensorioError } from '../../errors.js';
import { closeQuietly, openForReadAsync } from '../../io/read.js';
import { ByteSource } from '../../io/source.js';
import { readCentralDirectory, readMember } from '../zip.js';
import { torchProfile } from './profile.js';
import { looksLikeTorch } from './detect.js';
import { looksLikeTorchTar } from './tar-layout.js';
import type { TorchFile, TorchFileSync, TorchTensorInfo } from './types.js';
import { isTorchIndexPath, torchShardPaths } from './sharded.js';

/** One global a pickle names (GLOBAL, STACK_GLOBAL, INST, or an extension code). */
export interface TorchGlobalUse {
  /** `posix`, `torch._utils`; '?' when STACK_GLOBAL's operands are computed, not literal strings. */
  module: string;
  name: string;
  /** Whether tensorio's reader (and `torch.load(weights_only=True)`) accepts it. */
  allowed: boolean;
  /** Which pickle: the zip member (`archive/data.pkl`) or `legacy pickle <n>` (0-based). */
  pickle: string;
  /** Byte offset of the first use in that pickle. */
  offset: number;
  /** How many times that pickle names it. */
  count: number;
}

const profile = torchProfile(undefined);
function isAllowed(module: string, name: string): boolean {
  if (module === '?') return false;
  const mod = module === '__builtin__' ? 'builtins' : module;
  return profile.baseGlobals.has(`${mod}.${name}`) || profile.global(mod, name) !== undefined;
}

// Argument layout of every opcode of protocols 0-5: a fixed width, a length prefix, or lines.
const NO_ARG = new Set([0x28, 0x2e, 0x30, 0x31, 0x32, 0x4e, 0x88, 0x89, 0x5d, 0x29, 0x7d, 0x61, 0x65, 0x6c, 0x74, 0x85, 0x86, 0x87, 0x64, 0x73, 0x75, 0x62, 0x52, 0x81, 0x92, 0x93, 0x94, 0x8f, 0x90, 0x91, 0x6f, 0x51, 0x97, 0x98]);
const FIXED: Record<number, number> = { 0x80: 1, 0x4b: 1, 0x68: 1, 0x71: 1, 0x82: 1, 0x4d: 2, 0x83: 2, 0x4a: 4, 0x6a: 4, 0x72: 4, 0x84: 4, 0x47: 8, 0x95: 8 };
const LENGTH: Record<number, 1 | 4 | 8> = { 0x55: 1, 0x43: 1, 0x8c: 1, 0x8a: 1, 0x54: 4, 0x42: 4, 0x58: 4, 0x8b: 4, 0x8d: 8, 0x8e: 8, 0x96: 8 };
const ONE_LINE = new Set([0x49, 0x4c, 0x46, 0x53, 0x56, 0x50, 0x67, 0x70]);
const STRING_OPS = new Set([0x55, 0x54, 0x8c, 0x58, 0x8d]);
const latin1 = new TextDecoder('latin1');
const utf8 = new TextDecoder('utf-8');

/**
 * Scans one pickle from `start` to its STOP. Returns the globals it names and where it ends.
 * @throws TensorioError `ERR_BAD_PICKLE` for an unknown opcode or an argument past the end.
 */
export function scanPickle(bytes: Uint8Array, start: number, label: string, path?: string): { globals: TorchGlobalUse[]; end: number } {
  const found = new Map<string, TorchGlobalUse>();
  const record = (module: string, name: string, offset: number): void => {
    const key = `${module}\n${name}`;
    const seen = found.get(key);
    if (seen) seen.count++;
    else found.set(key, { module, name, allowed: isAllowed(module, name), pickle: label, offset, count: 1 });
  };
  const bad = (what: string, at: number): TensorioError => new TensorioError('ERR_BAD_PICKLE', `malformed pickle ${label}: ${what} at byte ${at}`, { path });
  // The last values pushed, only as far as STACK_GLOBAL needs: strings, or undefined for anything else.
  const stack: (string | undefined)[] = [];
  const memo = new Map<number, string | undefined>();
  const push = (v: string | undefined): void => {
    stack.push(v);
    if (stack.length > 64) stack.shift();
  };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = start;
  const line = (at: number): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) throw bad('a line without its newline', at);
    const text = latin1.decode(bytes.subarray(pos, end));
    pos = end + 1;
    return text;
  };
  for (;;) {
    const at = pos;
    if (pos >= bytes.length) throw bad('the data ends before STOP', pos);
    const op = bytes[pos++] as number;
    if (op === 0x2e) return { globals: [...found.values()], end: pos };
    if (op === 0x63 || op === 0x69) {
      record(line(at), line(at), at);
      push(undefined);
    } else if (op === 0x93) {
      const name = stack.pop();
      const module = stack.pop();
      record(module ?? '?', module === undefined || name === undefined ? '?' : name, at);
      push(undefined);
    } else if (op === 0x82 || op === 0x83 || op === 0x84) {
      const width = FIXED[op] as number;
      if (pos + width > bytes.length) throw bad('an argument past the end', at);
      const code = width === 1 ? (bytes[pos] as number) : width === 2 ? view.getUint16(pos, true) : view.getUint32(pos, true);
      pos += width;
      record('copyreg', `extension ${code}`, at);
      push(undefined);
    } else if (op === 0x94) {
      memo.set(memo.size, stack[stack.length - 1]);
    } else if (NO_ARG.has(op)) {
      push(undefined);
    } else if (op in FIXED) {
      const width = FIXED[op] as number;
      if (pos + width > bytes.length) throw bad('an argument past the end', at);
      const index = width === 1 ? (bytes[pos] as number) : width === 4 ? view.getUint32(pos, true) : -1;
      pos += width;
      if (op === 0x68 || op === 0x6a) push(memo.get(index));
      else if (op === 0x71 || op === 0x72) memo.set(index, stack[stack.length - 1]);
      else if (op !== 0x80 && op !== 0x95) push(undefined);
    } else if (op in LENGTH) {
      const width = LENGTH[op] as 1 | 4 | 8;
      if (pos + width > bytes.length) throw bad('a length past the end', at);
      const n = width === 1 ? (bytes[pos] as number) : width === 4 ? view.getUint32(pos, true) : Number(view.getBigUint64(pos, true));
      pos += width;
      if (!Number.isSafeInteger(n) || pos + n > bytes.length) throw bad(`a length of ${n} past the end`, at);
      const raw = bytes.subarray(pos, pos + n);
      pos += n;
      push(STRING_OPS.has(op) ? (op === 0x55 || op === 0x54 ? latin1 : utf8).decode(raw) : undefined);
    } else if (ONE_LINE.has(op)) {
      const text = line(at);
      if (op === 0x67) push(memo.get(Number(text)));
      else if (op === 0x70) memo.set(Number(text), stack[stack.length - 1]);
      else if (op === 0x53) push(text.replace(/^(['"])(.*)\1$/s, '$2'));
      else if (op === 0x56) push(text);
      else push(undefined);
    } else {
      throw bad(`unknown opcode 0x${op.toString(16).padStart(2, '0')}`, at);
    }
  }
}

const LEGACY_PICKLES = 5;

/**
 * Every global the pickles of a PyTorch file name, found by scanning their opcodes: nothing is
 * built or called, and a file the reader refuses (`os.system`, an `nn.Module`, a TorchScript
 * archive) is reported in full. A zip's every `*.pkl` member is scanned; a legacy file's five
 * pickles (magic, protocol, sys_info, the object, the storage keys). Sharded checkpoints: scan
 * each of `openTorch(index).files`.
 * @param options `maxPickleSize`: largest pickle read, default 1 GiB.
 * @throws TensorioError `ERR_BAD_MAGIC` (neither zip nor legacy), `ERR_UNSUPPORTED_VERSION` (the tar
 * layout, which this scan does not walk), `ERR_BAD_PICKLE`, `ERR_BAD_ZIP`,
 * `ERR_TOO_LARGE`, `ERR_NOT_FOUND`, `ERR_IO`.
 */
export async function scanTorchGlobals(path: string, options: { maxPickleSize?: number } = {}): Promise<TorchGlobalUse[]> {
  if (isTorchIndexPath(path)) {
    // A sharded checkpoint: every shard's pickles, each named by its shard.
    const out: TorchGlobalUse[] = [];
    for (const shard of await torchShardPaths(path)) {
      const name = nodePath.basename(shard);
      for (const use of await scanTorchGlobals(shard, options)) out.push({ ...use, pickle: `${name}: ${use.pickle}` });
    }
    return out;
  }
  const limit = options.maxPickleSize ?? 2 ** 30;
  const { fd, size, prefix } = await openForReadAsync(path, 512);
  try {
    const source = ByteSource.ofFile(fd, size, path);
    if (prefix[0] === 0x50 && prefix[1] === 0x4b) {
      const out: TorchGlobalUse[] = [];
      for (const entry of await readCentralDirectory(source, path)) {
        if (!entry.name.endsWith('.pkl')) continue;
        if (entry.uncompressedSize > limit) throw new TensorioError('ERR_TOO_LARGE', `${entry.name} is ${entry.uncompressedSize} bytes, over the limit of ${limit}`, { path });
        out.push(...scanPickle(await readMember(source, entry, path, { maxMemberSize: limit }), 0, entry.name, path).globals);
      }
      return out;
    }
    if (looksLikeTorchTar(prefix)) {
      // Its record pickles sit between raw storage bytes that only the layout's walk can skip.
      throw new TensorioError('ERR_UNSUPPORTED_VERSION', 'the tar layout (torch before 0.1.10) is not scanned; readTorch reads it with the weights-only checks, naming any global it refuses', { path });
    }
    // The legacy pickles lead the file; the storages' raw bytes follow and are not read.
    const bytes = await source.readAsync(0, Math.min(size, limit), 'legacy pickles');
    if (!looksLikeTorch(prefix)) throw new TensorioError('ERR_BAD_MAGIC', 'not a PyTorch file: neither a zip archive nor a legacy pickle', { path });
    const out: TorchGlobalUse[] = [];
    let at = 0;
    for (let i = 0; i < LEGACY_PICKLES; i++) {
      const { globals, end } = scanPickle(bytes, at, `legacy pickle ${i}`, path);
      out.push(...globals);
      at = end;
    }
    return out;
  } finally {
    closeQuietly(fd);
  }
}

/** Every tensor of an open checkpoint with dtype, shape, stride, storage key and offset, file (for `inspect`). */
export function listTorchTensors(file: TorchFile | TorchFileSync): TorchTensorInfo[] {
  return file.keys().map((name) => file.info(name));
}

/** Tensors that share one storage: `names[0]` is the first in the file's order, the rest alias it. */
export interface TorchSharedGroup {
  file: string;
  storage: string;
  names: string[];
  /** Every tensor of the group has the same dtype, shape, stride and offset (tied weights, not views). */
  identical: boolean;
}

/**
 * The groups of two or more tensors on one storage (tied weights, views of one tensor), what a
 * converter to safetensors must write once or refuse, as Hugging Face's conversion does.
 */
export function sharedTorchTensors(file: TorchFile | TorchFileSync): TorchSharedGroup[] {
  const groups = new Map<string, TorchTensorInfo[]>();
  for (const info of listTorchTensors(file)) {
    const key = `${info.file}\n${info.storage}`;
    const group = groups.get(key);
    if (group) group.push(info);
    else groups.set(key, [info]);
  }
  const same = (a: TorchTensorInfo, b: TorchTensorInfo): boolean =>
    a.dtype === b.dtype && a.storageOffset === b.storageOffset && a.shape.join() === b.shape.join() && a.stride.join() === b.stride.join();
  return [...groups.values()]
    .filter((g) => g.length > 1)
    .map((g) => ({ file: (g[0] as TorchTensorInfo).file, storage: (g[0] as TorchTensorInfo).storage, names: g.map((i) => i.name), identical: g.every((i) => same(i, g[0] as TorchTensorInfo)) }));
}
