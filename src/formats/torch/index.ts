/** PyTorch checkpoints (`.pt`, `.pth`, `.ckpt`, `pytorch_model.bin`): the format's public surface. */
export {
  looksLikeTorch,
  openTorch,
  openTorchSync,
  readTorch,
  readTorchSync,
  type TorchFile,
  type TorchFileSync,
  type TorchReadOptions,
  type TorchTensorInfo,
  type TorchValue,
} from './read.js';
export { writeTorch, writeTorchFiles, type TorchSaveValue, type TorchWriteOptions } from './write.js';
export { listTorchTensors, scanTorchGlobals, sharedTorchTensors, type TorchGlobalUse, type TorchSharedGroup } from './inspect.js';
export { planTorchSafetensors, verifySafetensorsCopy, type TorchSafetensorsPlan } from './to-safetensors.js';
