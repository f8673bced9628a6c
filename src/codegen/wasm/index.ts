/**
 * Opt-in WebAssembly SIMD kernels that modelc generates itself (no
 * dependencies): a binary writer (encode.ts), kernel generators with every
 * size baked in (kernels.ts), the module and the TypeScript that loads it
 * (module.ts), and the mapping from IR nodes to kernels (select.ts).
 */
export { ByteWriter, Code, ModuleBuilder, type F32Op, type F32x4Op, type I32Op, type Label, type Local, type ValType } from './encode.js';
export {
  packedFloats,
  simdKernel,
  type Conv2dRequest,
  type DenseRequest,
  type DepthwiseRequest,
  type SimdEpilogue,
  type SimdKernel,
  type SimdKernelLayout,
  type SimdKernelRequest,
} from './kernels.js';
export { buildSimdModule, packWeights, padBias, simdRuntimeSource, toBase64, type SimdModule } from './module.js';
export { simdRequestFor, type SimdSelection } from './select.js';
