/**
 * The fused-epilogue part of a SIMD request, as the activation records decide
 * it (apart from simd-def.ts, which the activation records import: no cycle).
 */
import { getActivation } from './activations/records.js';
import type { Common } from './simd-def.js';

/** The request fields of a bias and an epilogue: those the activation records name (relu, relu6, tanh, sigmoid) run in the kernel, others remain. */
export function simdCommon(bias: boolean, epilogue: { readonly op: string } | undefined): { common: Pick<Common, 'bias' | 'epilogue'>; remaining?: { readonly op: string } } {
  if (epilogue === undefined) return { common: { bias } };
  const record = getActivation(epilogue.op);
  // Only functions without attributes (their records say so).
  const fused = record?.form === 'elementwise' ? (record.simd ?? record.simdEpilogue) : undefined;
  if (fused !== undefined) return { common: { bias, epilogue: fused } };
  return { common: { bias }, remaining: epilogue };
}
