/**
 * A restricted Python pickle reader and a small pickle writer, for NumPy's object arrays
 * (`np.save('xy.npy', [x, y])`, `np.save('d.npy', {'w': w})`), re-exported from their
 * modules in src/formats/pickle/: unpickler.ts (the machine), allowlist.ts (the globals a
 * pickle may name, and the profile hook PyTorch's reader uses), values.ts (conversion to
 * JavaScript), opcodes.ts (the one opcode table) and pickler.ts (the writer).
 */
export { unpickle, type UnpickleOptions } from './pickle/unpickler.js';
export type { UnpickleProfile } from './pickle/allowlist.js';
export { PythonGlobal, type PyObject } from './pickle/values.js';
export { OP } from './pickle/opcodes.js';
export {
  encodeLong,
  isFortranLayout,
  isNdArrayLike,
  pickleChunks,
  pickleNdObjectArray,
  pickleObjectArray,
  type PicklableValue,
} from './pickle/pickler.js';
