/**
 * Opt-in WebAssembly SIMD kernels that modelc generates itself (no
 * dependencies): a binary writer (encode.ts), kernel builders with every size
 * baked in (kernels.ts and depthwise.ts for inference, with window.ts for the
 * convolutions' window walk; for the Trainer, train-kernels.ts (dense
 * gradients), columns.ts (window copies), batchnorm.ts, pool.ts (max pooling),
 * relu.ts and channel-stats.ts (per-channel sums, means and variances);
 * kernel-common.ts for what they all share), the module and the TypeScript
 * that loads it (module.ts), and the bridge from IR nodes to the requests
 * their ops' `simd` rules make (select.ts; the request types are in
 * ops/simd-def.ts).
 */
export { ByteWriter, Code, ModuleBuilder, type F32Op, type F32x4Op, type I32Op, type Label, type Local, type V128Op, type ValType } from './encode.js';
export { packedFloats, type SimdKernel, type SimdKernelLayout } from './kernel-common.js';
export { buildSimdModule, packWeights, padBias, simdKernel, simdRuntimeSource, toBase64, type SimdModule } from './module.js';
export { simdRequestFor } from './select.js';
