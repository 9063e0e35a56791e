/**
 * Slicing a tensor along its leading axes: the shape of the selection and the contiguous
 * byte runs it covers in the file, computed from the entry alone (no I/O).
 */
import { dtypeInfo } from '../../dtype.js';
import { TensorioError } from '../../errors.js';
import { shapeSize } from '../../ndarray.js';
import type { SafetensorsEntry } from './header.js';
import type { SliceRange } from './types.js';

/** A contiguous byte run of a tensor, relative to the tensor's first byte. */
export interface Run {
  start: number;
  length: number;
}

function sliceArgument(message: string, file: string): TensorioError {
  return new TensorioError('ERR_INVALID_ARGUMENT', message, { path: file });
}

/** The shape and byte runs of a selection along leading axes. */
export function planSlice(entry: SafetensorsEntry, ranges: readonly SliceRange[], file: string): { shape: number[]; runs: Run[]; length: number } {
  const shape = entry.shape;
  if (!Array.isArray(ranges)) throw sliceArgument('ranges must be an array of [start, end] pairs or null', file);
  if (ranges.length > shape.length) {
    throw sliceArgument(`tensor '${entry.name}' has ${shape.length} axes, ${ranges.length} ranges were given`, file);
  }
  const starts = shape.map(() => 0);
  const outShape = [...shape];
  let lastPartial = -1;
  ranges.forEach((range, axis) => {
    if (range === null || range === undefined) return;
    const dim = shape[axis] as number;
    const [start, end] = Array.isArray(range) ? range : [Number.NaN, Number.NaN];
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start || end > dim) {
      throw sliceArgument(`tensor '${entry.name}' axis ${axis} has length ${dim}; range ${JSON.stringify(range)} is not [start, end] with 0 <= start <= end <= ${dim}`, file);
    }
    starts[axis] = start;
    outShape[axis] = end - start;
    if (start !== 0 || end !== dim) lastPartial = axis;
  });
  const itemSize = dtypeInfo(entry.dtype).itemSize;
  const length = shapeSize(outShape, file) * itemSize;
  if (lastPartial < 0) return { shape: outShape, runs: [{ start: 0, length }], length };
  if (length === 0) return { shape: outShape, runs: [], length: 0 };
  // strides[i]: bytes between consecutive indices of axis i.
  const strides = new Array<number>(shape.length);
  let stride = itemSize;
  for (let axis = shape.length - 1; axis >= 0; axis--) {
    strides[axis] = stride;
    stride *= shape[axis] as number;
  }
  const runLength = (outShape[lastPartial] as number) * (strides[lastPartial] as number);
  const runs: Run[] = [];
  const index = starts.slice(0, lastPartial);
  const tail = (starts[lastPartial] as number) * (strides[lastPartial] as number);
  for (;;) {
    let start = tail;
    for (let axis = 0; axis < lastPartial; axis++) start += (index[axis] as number) * (strides[axis] as number);
    runs.push({ start, length: runLength });
    let axis = lastPartial - 1;
    for (; axis >= 0; axis--) {
      const next = (index[axis] as number) + 1;
      if (next < (starts[axis] as number) + (outShape[axis] as number)) {
        index[axis] = next;
        break;
      }
      index[axis] = starts[axis] as number;
    }
    if (axis < 0) break;
  }
  return { shape: outShape, runs, length };
}
