/**
 * The one error class of tensorio. Every failure a caller can cause (a bad file, a bad
 * argument, a full disk) is a {@link TensorioError} with a stable {@link ErrorCode}, the path
 * it concerns, and a message that says what was expected and what was found.
 */

/** Stable error codes. New codes may be added; existing ones never change meaning. */
export const ERROR_CODES = [
  // File structure
  'ERR_BAD_MAGIC',
  'ERR_TRUNCATED',
  'ERR_HEADER_TOO_LARGE',
  'ERR_BAD_HEADER',
  'ERR_UNSUPPORTED_DTYPE',
  'ERR_UNSUPPORTED_VERSION',
  'ERR_BAD_VALUE',
  'ERR_TOO_LARGE',
  // Arguments and shapes
  'ERR_INVALID_ARGUMENT',
  'ERR_SHAPE_MISMATCH',
  // A Keras layer class that TensorFlow.js does not have (tensorio/tfjs).
  'ERR_UNSUPPORTED_LAYER',
  // tensorio/tfjs imported without its optional peer dependency @tensorflow/tfjs installed.
  'ERR_TFJS_MISSING',
  'ERR_CLOSED',
  'ERR_NOT_MAPPABLE',
  // Containers and pickles (npz, pickled object arrays)
  'ERR_BAD_ZIP',
  'ERR_CRC_MISMATCH',
  'ERR_NOT_FOUND_IN_ARCHIVE',
  'ERR_PICKLE_DISALLOWED',
  'ERR_UNSAFE_PICKLE',
  'ERR_BAD_PICKLE',
  // safetensors
  'ERR_BAD_OFFSETS',
  'ERR_BAD_METADATA',
  // HDF5: a synchronous or in-memory read of a file only h5wasm can read (it loads
  // asynchronously and reads only files).
  'ERR_NEEDS_H5WASM',
  // HDF5: an h5wasm operation ran past its deadline (HDF5 loops on some damaged files) and
  // was stopped.
  'ERR_TIMEOUT',
  // HDF5: a dataset's filter pipeline names a filter tensorio cannot apply.
  'ERR_UNSUPPORTED_FILTER',
  // The file system
  'ERR_NOT_FOUND',
  'ERR_PERMISSION',
  'ERR_NO_SPACE',
  'ERR_READ_ONLY',
  'ERR_IS_DIRECTORY',
  'ERR_IO',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** Optional details attached to an error. */
export interface ErrorDetails {
  /** The file the error concerns. */
  path?: string;
  /** The underlying error (a Node system error, a JSON syntax error, ...). */
  cause?: unknown;
}

/**
 * Thrown for every failure a user can cause. `code` is stable and meant for programs;
 * `message` is meant for people and names the file, what was expected and what was found.
 */
export class TensorioError extends Error {
  readonly code: ErrorCode;
  readonly path: string | undefined;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}) {
    const where = details.path === undefined ? '' : `${details.path}: `;
    super(`${where}${message}`, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'TensorioError';
    this.code = code;
    this.path = details.path;
  }
}

const SYSTEM_CODES: Record<string, ErrorCode> = {
  ENOENT: 'ERR_NOT_FOUND',
  ENOTDIR: 'ERR_NOT_FOUND',
  EACCES: 'ERR_PERMISSION',
  EPERM: 'ERR_PERMISSION',
  ENOSPC: 'ERR_NO_SPACE',
  EDQUOT: 'ERR_NO_SPACE',
  EFBIG: 'ERR_NO_SPACE',
  EROFS: 'ERR_READ_ONLY',
  EISDIR: 'ERR_IS_DIRECTORY',
};

/**
 * Wraps a Node or native system error (anything with an `errno`-style `code`) in a
 * TensorioError; TensorioErrors pass through unchanged.
 */
export function fromSystemError(error: unknown, path: string, action: string): TensorioError {
  if (error instanceof TensorioError) return error;
  const systemCode = (error as { code?: unknown } | null)?.code;
  const code = (typeof systemCode === 'string' && SYSTEM_CODES[systemCode]) || 'ERR_IO';
  const reason = error instanceof Error ? error.message : String(error);
  return new TensorioError(code, `cannot ${action}: ${reason}`, { path, cause: error });
}
