/** PyTorch checkpoints (`.pt`, `.pth`, `.ckpt`, `pytorch_model.bin`): the format's public surface. */
export { looksLikeTorch } from './detect.js';
export { openTorch, openTorchSync, readTorch, readTorchSync } from './read.js';
export type { TorchFile, TorchFileSync, TorchReadOptions, TorchTensorInfo, TorchValue } from './types.js';
export { writeTorch, writeTorchFiles, type TorchSaveValue, type TorchWriteOptions } from './write.js';
export { listTorchTensors, scanTorchGlobals, sharedTorchTensors, type TorchGlobalUse, type TorchSharedGroup } from './inspect.js';
export { planTorchSafetensors, verifySafetensorsCopy, type TorchSafetensorsPlan } from './to-safetensors.js';
